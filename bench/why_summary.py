#!/usr/bin/env python3
"""bench/why_summary.py RAW WAITS "configs": the tables of bench/why.sh.

RAW: one line per run: round, config, tps, load average, then for the
client backends, the writer, pgbench and the other server processes seven
figures per statement (CPU us, run us, run-queue delay us, sleep us,
voluntary and involuntary context switches, system CPU us), then WAL records, bytes,
writes and syncs per statement.  WAITS: round, config, process kind, wait
event, samples.  Medians over the rounds.
"""
import sys
from collections import defaultdict
from statistics import median

raw, waits, cfgs = sys.argv[1], sys.argv[2], sys.argv[3].split()
KINDS = ("backend", "writer", "pgbench", "other")
rows = defaultdict(list)
for line in open(raw):
    f = line.split()
    rows[f[1]].append([float(x) for x in f[2:]])


def med(c, i):
    return median(r[i] for r in rows[c])


def col(kind, j):
    return 2 + KINDS.index(kind) * 7 + j


base_tps = med("base", 0) if "base" in rows else None
print("per statement, medians over rounds (us; csw = context switches)")
print("%-14s %8s %6s %5s | %-29s | %-17s | %-23s | %5s | %6s" % (
    "config", "tps", "/base", "load", "backends cpu runq sleep vcsw icsw",
    "writer cpu vcsw", "pgbench cpu runq vcsw", "other", "total"))
for c in cfgs:
    if c not in rows:
        continue
    t = med(c, 0)
    print("%-14s %8.0f %6s %5.1f | %5.2f %5.2f %5.2f %5.3f %5.3f | %5.2f %5.3f       | %5.2f %5.2f %5.3f       | %5.2f | %6.2f" % (
        c, t, "%.2f" % (t / base_tps) if base_tps else "-", med(c, 1),
        med(c, col("backend", 0)), med(c, col("backend", 2)), med(c, col("backend", 3)),
        med(c, col("backend", 4)), med(c, col("backend", 5)),
        med(c, col("writer", 0)), med(c, col("writer", 4)),
        med(c, col("pgbench", 0)), med(c, col("pgbench", 2)), med(c, col("pgbench", 4)),
        med(c, col("other", 0)),
        median(sum(r[col(k, 0)] for k in KINDS) for r in rows[c])))
print()
print("per round: tps, load, CPU us per statement (backends + writer + pgbench + other = total)")
for line in open(raw):
    f = line.split()
    v = [float(x) for x in f[2:]]
    parts = [v[col(k, 0)] for k in KINDS]
    print("%s %-14s %8.0f %5.1f  %5.2f + %5.2f + %5.2f + %5.2f = %6.2f" % (f[0], f[1], v[0], v[1], *parts, sum(parts)))
print()
print("system (kernel) CPU us per statement, medians: backends, writer, pgbench")
for c in cfgs:
    if c in rows:
        print("%-14s %6.2f %6.2f %6.2f" % (c, med(c, col("backend", 6)), med(c, col("writer", 6)), med(c, col("pgbench", 6))))
print()
print("WAL per statement (pg_stat_wal deltas over the run and its drain)")
print("%-14s %8s %8s %10s %10s" % ("config", "records", "bytes", "writes", "syncs"))
w0 = 2 + len(KINDS) * 7
for c in cfgs:
    if c in rows:
        print("%-14s %8.3f %8.1f %10.5f %10.5f" % (c, med(c, w0), med(c, w0 + 1), med(c, w0 + 2), med(c, w0 + 3)))
print()
print("wait events sampled every 5 ms (share of samples of that process kind, all rounds)")
cnt = defaultdict(lambda: defaultdict(int))
for line in open(waits):
    r, c, kind, ev, n = line.split()
    cnt[(c, kind)][ev] += int(n)
for kind in ("backend", "writer"):
    evs = sorted({e for (c, k) in cnt if k == kind for e in cnt[(c, k)]})
    if not evs:
        continue
    print("%-8s %-28s" % (kind, "event") + "".join("%14s" % c for c in cfgs))
    for e in evs:
        line = "%-8s %-28s" % ("", e)
        for c in cfgs:
            tot = sum(cnt[(c, kind)].values())
            line += "%14s" % ("%.3f" % (cnt[(c, kind)][e] / tot) if tot else "-")
        print(line)
