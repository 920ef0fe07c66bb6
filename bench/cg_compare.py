#!/usr/bin/env python3
"""bench/cg_compare.py: per-function instructions per statement, one
configuration minus another, from bench/callgrind.sh output directories.

    cg_compare.py OUTDIR WORKLOAD N1 N2 [--inclusive] [--top K] [--cfg A B]
Prints (aa - base) per statement, self cost unless --inclusive.
"""
import os
import re
import subprocess
import sys
sys.path.insert(0, os.path.dirname(__file__))


def costs(path, inclusive):
    out = subprocess.run(['callgrind_annotate', '--inclusive=' + ('yes' if inclusive else 'no'),
                          '--threshold=100', '--auto=no', path],
                         capture_output=True, text=True).stdout
    res = {}
    for line in out.splitlines():
        m = re.match(r'\s*([\d,]+) \([^)]*\)\s+(\S.*?)\s*(\[.*\])?$', line)
        if not m or 'PROGRAM TOTALS' in line:
            continue
        fn = re.sub(r'^.*/(?=[^/]*:)', '', m.group(2))
        res[fn] = res.get(fn, 0) + int(m.group(1).replace(',', ''))
    return res


def per_stmt(outdir, cfg, wl, n1, n2, inclusive, which='backend'):
    def f(n):
        d = os.path.join(outdir, f'cg-{cfg}-{wl}-{n}')
        return os.path.join(d, open(os.path.join(d, which)).read().strip())
    c1, c2 = costs(f(n1), inclusive), costs(f(n2), inclusive)
    return {k: (c2.get(k, 0) - c1.get(k, 0)) / (n2 - n1) for k in set(c1) | set(c2)}


def main():
    a = sys.argv[1:]
    inclusive = '--inclusive' in a
    top = int(a[a.index('--top') + 1]) if '--top' in a else 40
    cfgs = (a[a.index('--cfg') + 1], a[a.index('--cfg') + 2]) if '--cfg' in a else ('aa', 'base')
    outdir, wl, n1, n2 = a[0], a[1], int(a[2]), int(a[3])
    x = per_stmt(outdir, cfgs[0], wl, n1, n2, inclusive)
    y = per_stmt(outdir, cfgs[1], wl, n1, n2, inclusive)
    d = {k: x.get(k, 0) - y.get(k, 0) for k in set(x) | set(y)}
    print(f'total {sum(v for v in d.values()) if not inclusive else float("nan"):.0f} Ir/stmt ({cfgs[0]} - {cfgs[1]})')
    for k, v in sorted(d.items(), key=lambda kv: -abs(kv[1]))[:top]:
        print(f'{v:10.0f}  {k}')


main()
