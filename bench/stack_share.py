#!/usr/bin/env python3
"""Share of perf samples with one of some functions on their stack.

    perf script -F ip,sym,dso | bench/stack_share.py "fn1 fn2 ..." [dso-part ...]

Reads the samples of `perf script -F ip,sym,dso` (one line per frame, "ip symbol (object)",
samples separated by blank lines; DWARF call chains show inlined functions as frames of their
own) and prints "SAMPLES HITS": how many samples there were and how many have one of the named
functions, or a frame in an object whose path contains one of the dso-parts, on their stack.
Code without unwind data (PCRE2's JIT code, for one) ends its chain: name its object to count it.
"""
import re
import sys

fns = set(sys.argv[1].split())
objs = sys.argv[2:]
frame = re.compile(r"^\s*[0-9a-f]+\s+(\S+)\s+\((.*)\)\s*$")
samples = hits = 0
in_sample = hit = False
for line in sys.stdin:
    m = frame.match(line)
    if m:
        in_sample = True
        sym, obj = m.group(1).split("+")[0], m.group(2)
        hit = hit or sym in fns or any(o in obj for o in objs)
    elif not line.strip() and in_sample:
        samples += 1
        hits += hit
        in_sample = hit = False
if in_sample:
    samples += 1
    hits += hit
print(samples, hits)
