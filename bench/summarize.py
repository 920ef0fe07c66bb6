#!/usr/bin/env python3
"""bench/summarize.py RAW.tsv T ROUNDS ROWS: print the tables of bench/run.sh.

raw.tsv lines: round, config, metric, value.  One table per section.

bench/summarize.py --latency FILE...: percentiles of pgbench per-transaction
logs (pgbench -l; with -R each line ends with the schedule lag): prints
"p50 p90 p99 p99.9 mean_lag" in milliseconds.  The latency pgbench logs under
-R counts from the transaction's scheduled start, so a wait for the server
is in it.
"""
import sys
from collections import defaultdict
from statistics import median


def pct(sorted_xs, p):
    """nearest-rank percentile of a sorted list"""
    if not sorted_xs:
        return None
    k = max(0, min(len(sorted_xs) - 1, int(round(p / 100.0 * len(sorted_xs) + 0.5)) - 1))
    return sorted_xs[k]


def latency(files):
    lat, lag = [], []
    for f in files:
        for line in open(f):
            p = line.split()
            # client_id transaction_no time script_no time_epoch time_us [schedule_lag]
            if len(p) < 6 or not p[2].isdigit():
                continue            # "skipped" (only with --latency-limit)
            lat.append(int(p[2]))
            if len(p) >= 7:
                lag.append(int(p[6]))
    lat.sort()
    out = [pct(lat, q) for q in (50, 90, 99, 99.9)]
    out.append(sum(lag) / len(lag) if lag else 0)
    print(" ".join("%.3f" % (x / 1000.0) if x is not None else "nan" for x in out))


if len(sys.argv) > 1 and sys.argv[1] == "--latency":
    latency(sys.argv[2:])
    sys.exit(0)

raw, T, rounds, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
vals = defaultdict(list)
rounds_of = defaultdict(list)
for line in open(raw):
    parts = line.rstrip("\n").split("\t")
    if len(parts) != 4:
        continue
    rnd, cfg, metric, v = parts
    try:
        v = float(v)
    except ValueError:
        pass
    vals[(cfg, metric)].append(v)
    rounds_of[(cfg, metric)].append(rnd)

CFGS = ["base", "pgaudit", "pgaudit-collector", "aa"]
SHORT = {"base": "baseline", "pgaudit": "pgaudit", "pgaudit-collector": "pga-coll", "aa": "access_audit"}
RATIO = {"pgaudit": "pga/base", "pgaudit-collector": "coll/base", "aa": "aa/base"}


def nums(cfg, metric):
    return [x for x in vals.get((cfg, metric), []) if isinstance(x, float)]


def med(cfg, metric):
    xs = nums(cfg, metric)
    return median(xs) if xs else None


def one(cfg, metric):
    xs = vals.get((cfg, metric), [])
    return xs[-1] if xs else None


def fmt(x, nd=0):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:,.{nd}f}"


loads = [x for (c, m), xs in vals.items() if m.startswith("load_") and m not in ("load_start", "load_end")
         for x in xs if isinstance(x, float)]
loads += nums("aa", "sus_load")
print(f"access_audit benchmark: {rows} rows, pgbench -M prepared -c 2 -j 2, {T} s per run, "
      f"{rounds} rounds interleaved base/aa/pgaudit/pgaudit-collector, medians")
print(f"machine: {fmt(med('all', 'cores'))} cores; 1-minute load average {fmt(med('all', 'load_start'), 2)} at the start, "
      f"{fmt(med('all', 'load_end'), 2)} at the end, "
      + (f"{min(loads):.2f} / {median(loads):.2f} / {max(loads):.2f} (min / median / max) at the measurements"
         if loads else "not sampled"))
print("(a load above the core count means other work shared the machine: read the CPU rows before the tps rows)")
print()

# ------------------------------------------------------------ 1-4 throughput and CPU
hdr = (f"{'workload':<38} " + " ".join(f"{SHORT[c]:>12}" for c in CFGS) + " "
       + " ".join(f"{RATIO[c]:>9}" for c in CFGS[1:]) + f" {'target':>7}")
targets = {"w1": 0.90, "w2": 0.97, "w3": 0.99, "w4_s": 0.99}
names = {"w1": "1 tagged point read (tps)",
         "w2": "2 tagged 100-row range read (tps)",
         "w3": "3 untagged point read (tps)",
         "w4_s": "4 COPY 1M rows TO file (s per COPY)"}


def verdict(ratios, key):
    """ok when access_audit meets the target and is ahead of pgaudit in both modes"""
    ra = ratios.get("aa")
    if ra is None:
        return ""
    others = [ratios[c] for c in ("pgaudit", "pgaudit-collector") if ratios.get(c) is not None]
    return "ok" if ra >= targets[key] and all(ra > o for o in others) else "MISS"


print("1-4 Throughput (pgbench tps; COPY: seconds per COPY), medians; ratio = configuration / baseline")
print("    (COPY: baseline time / configuration time, so higher is better everywhere)")
print(hdr)
print("-" * len(hdr))
for m in ("w1", "w2", "w3", "w4_s"):
    b = med("base", m)
    ratios = {}
    for c in CFGS[1:]:
        x = med(c, m)
        if b and x:
            ratios[c] = b / x if m == "w4_s" else x / b
    nd = 3 if m == "w4_s" else 0
    print(f"{names[m]:<38} " + " ".join(f"{fmt(med(c, m), nd):>12}" for c in CFGS) + " "
          + " ".join(f"{fmt(ratios.get(c), 3):>9}" for c in CFGS[1:])
          + f" {'>=' + str(targets[m]):>7} {verdict(ratios, m)}")
print()
print("1-4 Server CPU per statement (microseconds of CPU used by all the server's processes, the access_audit")
print("    writer included, / statements; from /proc, so it depends less on what else the machine runs).")
print("    Ratio = baseline CPU / configuration CPU = throughput kept when the server is CPU-bound.")
print(hdr)
print("-" * len(hdr))
for m in ("w1", "w2", "w3", "w4"):
    key = "w4_s" if m == "w4" else m
    b = med("base", "cpu_us_" + m)
    ratios = {c: b / med(c, "cpu_us_" + m) for c in CFGS[1:] if b and med(c, "cpu_us_" + m)}
    name = names[key].split(" (")[0] + (" (us per COPY)" if m == "w4" else " (us/stmt)")
    nd = 0 if m == "w4" else 1
    print(f"{name:<38} " + " ".join(f"{fmt(med(c, 'cpu_us_' + m), nd):>12}" for c in CFGS) + " "
          + " ".join(f"{fmt(ratios.get(c), 3):>9}" for c in CFGS[1:])
          + f" {'>=' + str(targets[key]):>7} {verdict(ratios, key)}")
print()
print("per-round values (tps / seconds per COPY / CPU us per statement / 1-minute load average at the start):")
for m in ("w1", "w2", "w3", "w4_s"):
    for cfg in CFGS:
        xs = vals.get((cfg, m), [])
        print(f"  {m:<9} {cfg:<18} " + " ".join(fmt(x, 3 if m == 'w4_s' else 0) for x in xs))
for m in ("w1", "w2", "w3", "w4"):
    for cfg in CFGS:
        xs = vals.get((cfg, "cpu_us_" + m), [])
        print(f"  cpu_{m:<5} {cfg:<18} " + " ".join(fmt(x, 1) for x in xs))
for cfg in CFGS:
    xs = vals.get((cfg, "load_w1"), [])
    print(f"  load_w1   {cfg:<18} " + " ".join(fmt(x, 2) for x in xs))
print()

# ------------------------------------------------------------ 8 latency at a fixed load
rate = med("all", "fixed_rate")
print(f"8 Latency at a fixed load: tagged point reads (w1) at pgbench -R {fmt(rate)}/s, half of the baseline's")
print(f"    maximum ({fmt(med('base', 'base_max_tps'))} tps, median of its rounds above), -c 2 -j 2, {T} s; latency from each")
print("    transaction's scheduled start (waits for the server included), per-transaction logs; medians over rounds")
lh = (f"{'configuration':<18} {'tps':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'p99.9 ms':>9} {'lag ms':>7} "
      f"{'CPU us/stmt':>11} {'base/CPU':>8} {'p50/base':>8} {'p99/base':>8}")
print(lh)
print("-" * len(lh))
bc, b50, b99 = med("base", "cpu_us_fixed"), med("base", "fixed_p50_ms"), med("base", "fixed_p99_ms")
for c in CFGS:
    cpu, p50, p99 = med(c, "cpu_us_fixed"), med(c, "fixed_p50_ms"), med(c, "fixed_p99_ms")
    print(f"{SHORT[c]:<18} {fmt(med(c, 'fixed_tps')):>9} {fmt(p50, 3):>8} {fmt(med(c, 'fixed_p90_ms'), 3):>8} "
          f"{fmt(p99, 3):>8} {fmt(med(c, 'fixed_p999_ms'), 3):>9} {fmt(med(c, 'fixed_lag_ms'), 3):>7} "
          f"{fmt(cpu, 1):>11} {fmt(bc / cpu if bc and cpu else None, 3):>8} "
          f"{fmt(p50 / b50 if b50 and p50 else None, 2):>8} {fmt(p99 / b99 if b99 and p99 else None, 2):>8}")
print("  per round (p50 / p99 ms, CPU us/stmt, load):")
for c in CFGS:
    cells = zip(vals.get((c, "fixed_p50_ms"), []), vals.get((c, "fixed_p99_ms"), []),
                vals.get((c, "cpu_us_fixed"), []), vals.get((c, "load_fixed"), []))
    print(f"  {c:<18} " + "   ".join(f"{fmt(a, 3)}/{fmt(b, 3)} {fmt(u, 1)} {fmt(ld, 2)}" for a, b, u, ld in cells))
print()

# ------------------------------------------------------------ 9 largest sustained rate
bmax = med("base", "base_max_tps")
print("9 Largest sustained rate with no backend waiting for queue space (access_audit, tagged point reads,")
print(f"    -c 2 -j 2, {T} s per step; waits = access_audit.stats.waits, records whose backend found the queue full)")
sh = (f"{'step':>4} {'-R rate':>9} {'x base max':>10} {'tps':>9} {'waits':>6} {'written/s':>10} "
      f"{'oldest pending at end s':>23} {'load':>5}")
print(sh)
print("-" * len(sh))
steps = sorted({int(r) for r in rounds_of.get(("aa", "sus_rate"), [])})
for k in steps:
    def at(metric):
        for r, v in zip(rounds_of.get(("aa", metric), []), vals.get(("aa", metric), [])):
            if int(r) == k:
                return v
        return None
    rr = at("sus_rate")
    print(f"{k:>4} {fmt(rr):>9} {fmt(rr / bmax if bmax and rr else None, 2):>10} {fmt(at('sus_tps')):>9} "
          f"{fmt(at('sus_waits')):>6} {fmt(at('sus_written_per_s')):>10} {fmt(at('sus_age_end_s'), 3):>23} "
          f"{fmt(at('sus_load'), 2):>5}")
best, nxt, why = one("aa", "sus_best"), one("aa", "sus_next"), one("aa", "sus_why")
if best is not None:
    reason = {"waits": "backends waited for queue space there",
              "short": "the server did not reach it (CPU-bound), and no backend waited",
              "none": "no limit found up to 2x the baseline's maximum"}.get(why, str(why))
    print(f"  largest sustained rate without waits: {fmt(best)}/s = {fmt(best / bmax if bmax else None, 3)} "
          f"of the baseline's maximum; next rate tried {fmt(nxt)}/s: {reason}")
print()

# ------------------------------------------------------------ 5 writer capacity
print("5 Writer capacity (2 clients flooding tagged point reads, 3x run length)")
print(f"  reads/s (pgbench tps)            {fmt(med('aa', 'writer_read_tps'))}")
print(f"  records queued/s                 {fmt(med('aa', 'writer_queued_per_s'))}")
print(f"  records written (committed)/s    {fmt(med('aa', 'writer_written_per_s'))}")
print(f"  oldest pending age at end        {fmt(med('aa', 'writer_age_end_s'), 3)} s "
      f"(max sampled {fmt(med('aa', 'writer_age_max_s'), 3)} s, max pending {fmt(med('aa', 'writer_pending_max_bytes'))} bytes)")
print(f"  backends that waited for space   {fmt(med('aa', 'writer_waits'))}")
print(f"  flush('60 s') drain time         {fmt(med('aa', 'writer_drain_s'), 3)} s")
print()

# ------------------------------------------------------------ 6 storage
print("6 Storage per audited statement (workload 1)")
print(f"  access_audit: log_data+dictionaries bytes / record          {fmt(med('aa', 'bytes_per_stmt'))} "
      f"(records per statement {fmt(med('aa', 'records_per_stmt'), 3)}; target <= ~175)")
print(f"  pgaudit (stderr file): server log bytes / statement          {fmt(med('pgaudit', 'logbytes_per_stmt'))}")
print(f"  pgaudit (logging collector): log/ bytes / statement          {fmt(med('pgaudit-collector', 'logbytes_per_stmt'))}")
print(f"  baseline: server log bytes / statement                       {fmt(med('base', 'logbytes_per_stmt'))}")
print()

# ------------------------------------------------------------ 7 detection
print("7 Detection cost (rank_exporters reads only the roll-up table passed as source, never the raw log)")
print(f"  roll-up rows (actors x 90 days)          {fmt(med('detect', 'rollup_rows'))}")
sizes = sorted({int(m.split('_at_')[1]) for (c, m) in vals if c == 'detect' and '_at_' in m})
for s in sizes:
    recs = med('detect', f'log_records_at_{s}')
    r = med('detect', f'rank_ms_at_{s}')
    v = med('detect', f'verify_per_s_at_{s}')
    okv = vals.get(('detect', f'verify_ok_at_{s}'), [])
    print(f"  raw log {fmt(recs):>9} records: rank_exporters {fmt(r, 1):>8} ms (target < 1000)   "
          f"verify() {fmt(v):>10} records/s (target >= 500,000; ok={','.join(str(x) for x in okv)})")
