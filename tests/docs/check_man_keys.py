#!/usr/bin/env python3
"""Check that fcgihost.conf(5) documents the key table of src/config/keys.c, and fcgihost(8) the
live keys of `fcgihost ctl set`.

    check_man_keys.py SRC/config/keys.c DOCS/fcgihost.conf.5.scd DOCS/fcgihost.8.scd

The code is the truth. For every KEY(...) row of cfg_keys[] the man page must have, under the
heading of the key's section kind ([server], [fastcgi:NAME], [handler:NAME]), an entry line

    *key* = DEFAULT [(required)] [(repeatable)] [(live)]

where DEFAULT is the row's .def exactly (scdoc escapes removed; "(empty)" for ""), any placeholder
for a key without a default, and the marks match the row's flags. Entries for keys the table does
not have fail too, so the page cannot keep a removed key. fcgihost(8) must list exactly the live
keys under `set`. Exit status 0 when everything matches, 1 with one line per problem otherwise.
"""
import re
import sys

SECTIONS = {"SRV": "[server]", "APP": "[fastcgi:NAME]", "HND": "[handler:NAME]",
            "SITE": "[site:NAME]", "RW": "[rewrite:NAME]", "HDR": "[headers:NAME]"}
MARKS = ("required", "repeatable", "live")


def c_string(lit):
    """The value of a C string literal body (only the escapes keys.c could use)."""
    return re.sub(r"\\(.)", r"\1", lit)


def balanced_call(text, start):
    """text[start] is '(': return the text inside the matching ')'."""
    depth, i, in_str = 0, start, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    raise ValueError("unbalanced KEY(")


def parse_keys(path):
    text = open(path, encoding="utf-8").read()
    m = re.search(r"const cfg_key_t cfg_keys\[\] = \{(.*?)\n\};", text, re.S)
    if not m:
        raise SystemExit(f"{path}: cfg_keys[] not found")
    body = m.group(1)
    keys = []
    for km in re.finditer(r"\bKEY\(", body):
        args = balanced_call(body, km.end() - 1)
        name = re.match(r'\s*"([^"]+)"\s*,\s*(SRV|APP|HND|SITE|RW|HDR)(?:_ANY\b|\()', args)
        if not name:
            raise SystemExit(f"{path}: cannot read the row KEY({args[:60]}...)")
        dm = re.search(r'\.def\s*=\s*"((?:[^"\\]|\\.)*)"', args)
        keys.append({
            "name": name.group(1),
            "sect": name.group(2),
            "def": c_string(dm.group(1)) if dm else None,
            "required": "CFG_KEY_REQUIRED" in args,
            "repeatable": "CFG_KEY_REPEAT" in args,
            "live": "CFG_KEY_LIVE" in args,
        })
    if len(keys) < 10:
        raise SystemExit(f"{path}: only {len(keys)} keys found: the parser needs updating")
    return keys


def unescape_scd(s):
    return re.sub(r"\\(.)", r"\1", s)


def parse_conf_page(path):
    """{(sect, lower-case name): (line number, name, value, marks)}, plus problems."""
    entries, problems = {}, []
    sect = None
    for no, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("# "):
            sect = None
            for code, title in SECTIONS.items():
                if title.split(":")[0].rstrip("]") in line:
                    sect = code
            continue
        m = re.match(r"\*([A-Za-z0-9]+)\* = (.*)$", line)
        if not m or sect is None:
            continue
        name, value = m.group(1), m.group(2).rstrip()
        marks = set()
        while True:
            mm = re.search(r"\s*\((%s)\)$" % "|".join(MARKS), value)
            if not mm:
                break
            marks.add(mm.group(1))
            value = value[:mm.start()]
        key = (sect, name.lower())
        if key in entries:
            problems.append(f"{path}:{no}: {name} is documented twice in {SECTIONS[sect]}")
        entries[key] = (no, name, unescape_scd(value), marks)
    return entries, problems


def live_keys_in_ctl_page(path, fastcgi_names):
    """The key names given in the `set` entry of fcgihost(8)."""
    text = open(path, encoding="utf-8").read()
    m = re.search(r"^\*set\* .*?(?=^\*reload\*)", text, re.S | re.M)
    if not m:
        raise SystemExit(f"{path}: the *set* entry (up to *reload*) was not found")
    words = set(re.findall(r"\*([A-Za-z]+)\*", m.group(0)))
    return {w for w in words if w.lower() in fastcgi_names}


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[3].strip(), file=sys.stderr)
        return 2
    keys_c, conf_page, ctl_page = argv[1:]
    keys = parse_keys(keys_c)
    entries, problems = parse_conf_page(conf_page)

    table = {(k["sect"], k["name"].lower()): k for k in keys}
    for (sect, lname), k in table.items():
        where = f"{conf_page}: {k['name']} ({SECTIONS[sect]})"
        if (sect, lname) not in entries:
            problems.append(f"{where}: missing; add a line '*{k['name']}* = ...' under "
                            f"the {SECTIONS[sect]} heading")
            continue
        no, name, value, marks = entries[(sect, lname)]
        where = f"{conf_page}:{no}: {name}"
        if name != k["name"]:
            problems.append(f"{where}: spelt {k['name']} in keys.c")
        for mark in MARKS:
            if k[mark] and mark not in marks:
                problems.append(f"{where}: keys.c says {mark}: add '({mark})'")
            if not k[mark] and mark in marks:
                problems.append(f"{where}: marked ({mark}) but keys.c does not say so")
        if k["def"] is not None and not k["required"]:
            want = "(empty)" if k["def"] == "" else k["def"]
            if value != want:
                problems.append(f"{where}: default is '{value}' here but '{want}' in keys.c")
    for key, (no, name, _, _) in entries.items():
        if key not in table:
            problems.append(f"{conf_page}:{no}: {name} is not a key of {SECTIONS[key[0]]} "
                            f"in keys.c")

    fastcgi_names = {k["name"].lower() for k in keys if k["sect"] == "APP"}
    live = {k["name"] for k in keys if k["live"]}
    listed = live_keys_in_ctl_page(ctl_page, fastcgi_names)
    for name in sorted(live - listed):
        problems.append(f"{ctl_page}: live key {name} is missing from the 'set' command")
    for name in sorted(listed - live):
        problems.append(f"{ctl_page}: {name} is listed under 'set' but is not live in keys.c")

    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} problem(s)")
        return 1
    print(f"ok: {len(keys)} keys documented, {len(live)} live keys listed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
