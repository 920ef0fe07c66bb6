#!/usr/bin/env python3
"""bench/summarize.py RAW.tsv T ROUNDS ROWS: print the figures table of bench/run.sh.

raw.tsv lines: round, config, metric, value.
"""
import sys
from collections import defaultdict
from statistics import median

raw, T, rounds, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
vals = defaultdict(list)
for line in open(raw):
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 4:
        continue
    _, cfg, metric, v = parts
    try:
        vals[(cfg, metric)].append(float(v))
    except ValueError:
        vals[(cfg, metric)].append(v)


def med(cfg, metric):
    xs = [x for x in vals.get((cfg, metric), []) if isinstance(x, float)]
    return median(xs) if xs else None


def fmt(x, nd=0):
    if x is None:
        return "-"
    return f"{x:,.{nd}f}"


print(f"access_audit benchmark: {rows} rows, pgbench -M prepared -c 2 -j 2, {T} s per run, "
      f"{rounds} rounds interleaved base/aa/pgaudit, medians")
print()
hdr = f"{'workload':<38} {'baseline':>10} {'pgaudit':>10} {'access_audit':>12} {'pgaudit/base':>12} {'aa/base':>8} {'target':>7}"
print("Throughput (pgbench tps; COPY: seconds per COPY), medians; ratio = configuration / baseline")
print(hdr)
print("-" * len(hdr))
targets = {"w1": 0.90, "w2": 0.97, "w3": 0.99, "w4_s": 0.99}
names = {"w1": "1 tagged point read (tps)",
         "w2": "2 tagged 100-row range read (tps)",
         "w3": "3 untagged point read (tps)",
         "w4_s": "4 COPY 1M rows TO file (s per COPY)"}
for m in ("w1", "w2", "w3", "w4_s"):
    b, p, a = med("base", m), med("pgaudit", m), med("aa", m)
    if m == "w4_s":
        # time: ratio as throughput (baseline time / config time)
        rp = b / p if b and p else None
        ra = b / a if b and a else None
        nd = 3
    else:
        rp = p / b if b and p else None
        ra = a / b if b and a else None
        nd = 0
    ok = ""
    if ra is not None:
        ok = "ok" if ra >= targets[m] and (rp is None or ra > rp) else "MISS"
    print(f"{names[m]:<38} {fmt(b, nd):>10} {fmt(p, nd):>10} {fmt(a, nd):>12} {fmt(rp, 3):>12} {fmt(ra, 3):>8} "
          f"{'>=' + str(targets[m]):>7} {ok}")
print()
print("Server CPU per statement (microseconds of CPU used by all the server's processes, the access_audit")
print("writer included, / statements; from /proc, so it does not depend on what else the machine runs).")
print("Ratio = baseline CPU / configuration CPU = throughput kept when the server is CPU-bound.")
print(hdr)
print("-" * len(hdr))
for m in ("w1", "w2", "w3", "w4"):
    b, p, a = med("base", "cpu_us_" + m), med("pgaudit", "cpu_us_" + m), med("aa", "cpu_us_" + m)
    rp = b / p if b and p else None
    ra = b / a if b and a else None
    key = "w4_s" if m == "w4" else m
    ok = ""
    if ra is not None:
        ok = "ok" if ra >= targets[key] and (rp is None or ra > rp) else "MISS"
    name = names[key].split(" (")[0] + (" (us per COPY)" if m == "w4" else " (us/stmt)")
    nd = 0 if m == "w4" else 1
    print(f"{name:<38} {fmt(b, nd):>10} {fmt(p, nd):>10} {fmt(a, nd):>12} {fmt(rp, 3):>12} {fmt(ra, 3):>8} "
          f"{'>=' + str(targets[key]):>7} {ok}")
print()
print("per-round values (tps / seconds per COPY / CPU us per statement):")
for m in ("w1", "w2", "w3", "w4_s"):
    for cfg in ("base", "pgaudit", "aa"):
        xs = vals.get((cfg, m), [])
        print(f"  {m:<5} {cfg:<8} " + " ".join(fmt(x, 3 if m == 'w4_s' else 0) for x in xs))
for m in ("w1", "w2", "w3", "w4"):
    for cfg in ("base", "pgaudit", "aa"):
        xs = vals.get((cfg, "cpu_us_" + m), [])
        print(f"  cpu_{m:<5} {cfg:<8} " + " ".join(fmt(x, 1) for x in xs))
print()
print("6 storage per audited statement (workload 1)")
print(f"  access_audit: log_data+strings+string_sets bytes / record   {fmt(med('aa', 'bytes_per_stmt'))} "
      f"(records per statement {fmt(med('aa', 'records_per_stmt'), 3)}; target <= ~175)")
print(f"  pgaudit: server log bytes / statement                       {fmt(med('pgaudit', 'logbytes_per_stmt'))}")
print(f"  baseline: server log bytes / statement                      {fmt(med('base', 'logbytes_per_stmt'))}")
print()
print("5 writer capacity (2 clients flooding tagged point reads, 3x run length)")
print(f"  reads/s (pgbench tps)            {fmt(med('aa', 'writer_read_tps'))}")
print(f"  records queued/s                 {fmt(med('aa', 'writer_queued_per_s'))}")
print(f"  records written (committed)/s    {fmt(med('aa', 'writer_written_per_s'))}")
print(f"  oldest pending age at end        {fmt(med('aa', 'writer_age_end_s'), 3)} s "
      f"(max sampled {fmt(med('aa', 'writer_age_max_s'), 3)} s, max pending {fmt(med('aa', 'writer_pending_max_bytes'))} bytes)")
print(f"  flush('60 s') drain time         {fmt(med('aa', 'writer_drain_s'), 3)} s")
print()
print("7 detection cost (rank_exporters reads only the roll-up table passed as source, never the raw log)")
print(f"  roll-up rows (10,000 actors x 90 days)   {fmt(med('detect', 'rollup_rows'))}")
sizes = sorted({int(m.split('_at_')[1]) for (c, m) in vals if c == 'detect' and '_at_' in m})
for s in sizes:
    recs = med('detect', f'log_records_at_{s}')
    r = med('detect', f'rank_ms_at_{s}')
    v = med('detect', f'verify_per_s_at_{s}')
    okv = vals.get(('detect', f'verify_ok_at_{s}'), [])
    print(f"  raw log {fmt(recs):>9} records: rank_exporters {fmt(r, 1):>8} ms (target < 1000)   "
          f"verify() {fmt(v):>10} records/s (target >= 500,000; ok={','.join(str(x) for x in okv)})")
