#!/usr/bin/env python3
"""Check that contrib/fcgihost.conf (the example for packagers) is a valid configuration.

    check_example_conf.py FCGIHOST_BINARY contrib/fcgihost.conf

The example names /srv/www and /usr/bin/php-cgi, which a build machine may not have: a copy with
`root` pointing at a temporary directory and every `fullPath` at an executable that exists is
checked with `fcgihost -t`. Everything else (keys, values, sections) is checked as written.
"""
import os
import re
import subprocess
import sys
import tempfile


def main(argv):
    if len(argv) != 3:
        print("usage: check_example_conf.py FCGIHOST_BINARY CONF", file=sys.stderr)
        return 2
    binary, conf = argv[1:]
    text = open(conf, encoding="utf-8").read()
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "www")
        os.mkdir(root)
        text, n_root = re.subn(r"(?m)^root = .*$", "root = " + root, text)
        text, n_full = re.subn(r"(?m)^fullPath = .*$", "fullPath = " + os.path.realpath("/bin/sh"),
                               text)
        if n_root != 1 or n_full < 1:
            print(f"{conf}: expected one 'root = ' line and at least one 'fullPath = ' line")
            return 1
        copy = os.path.join(tmp, "fcgihost.conf")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(text)
        r = subprocess.run([binary, "-t", "-c", copy], capture_output=True, text=True, timeout=30)
        sys.stdout.write(r.stdout + r.stderr.replace(copy, conf))
        return 0 if r.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
