#!/bin/bash
# bench/why.sh: where the cost of storing records goes (issue 22's experiments).
#
# Interleaves, over rounds (A B C D A B C D ...), point reads (w1) or range
# reads (w2) on servers that differ only in the writer:
#   base     no extension preloaded
#   aa       access_audit as shipped
#   burn     built with -DAA_BENCH_BURN: the writer does every record's work
#            (chain hash, dictionary lookups, roll-up, tuple forming) and
#            aborts instead of inserting and committing (experiment 1: same
#            CPU, no storage)
#   burnspin built with -DAA_BENCH_BURN=1000: burn, then spinning 1000 ns
#            per record, standing in for the CPU that storing takes, so the
#            writer uses about the shipped one's CPU without storing
#   nostore  built with -DAA_BENCH_NO_STORE: the writer takes records off
#            the queue and frees them (capture and queue only)
#   aa:B:F   (with -x "B:F ...") the shipped build with batch_size B and
#            flush_interval F ms (experiment 3: the writer's rhythm)
# and reports, per statement (pgbench's count over the measured window):
#   - CPU (user+sys, and sys apart) of the client backends, the writer and pgbench, and
#     their run-queue delay (time runnable but not running) and sleep time,
#     from /proc/<pid>/stat and /proc/<pid>/schedstat read at 1 s and at T-1 s
#     of the run, for processes alive at both;
#   - voluntary and involuntary context switches of the same processes
#     (/proc/<pid>/status, and pgbench's threads);
#   - wait events of the client backends and the writer, sampled from
#     pg_stat_activity every 5 ms by a session in another database
#     (experiment 2; "CPU" is active without a wait event);
#   - WAL records, bytes, writes and syncs (pg_stat_wal deltas over the run
#     and the drain after it).
# Only the library file differs between the builds; it is swapped in before
# each start, in the pkglibdir of PGBIN.  Use a PostgreSQL copy no test suite
# runs from.
#
# Run as root:
#   PGBIN=/opt/pg-x/usr/lib/postgresql/15/bin bench/why.sh [-T s] [-r rounds] [-n rows] [-w w1] [-c "base aa burn burnspin nostore"] [-x "500:200 5000:10"]
# Env: PGBIN (required), BASE (default /tmp/aa_why), PORT0 (default 54380).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:?set PGBIN to a PostgreSQL copy of your own}
RUNAS=${RUNAS:-aa_bench}
BASE=${BASE:-/tmp/aa_why}
PORT0=${PORT0:-54380}
T=12
ROUNDS=3
ROWS=100000
W=w1
CFGS="base aa burn nostore"
RHYTHMS=""
while getopts "T:r:n:w:c:x:" o; do
	case $o in
		T) T=$OPTARG ;;
		r) ROUNDS=$OPTARG ;;
		n) ROWS=$OPTARG ;;
		w) W=$OPTARG ;;
		c) CFGS=$OPTARG ;;
		x) RHYTHMS=$OPTARG ;;
		*) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "why.sh: run as root" >&2; exit 2; }
[ "$T" -ge 5 ] || { echo "why.sh: -T must be at least 5" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
. "$REPO/bench/lib.sh"

OUT=$REPO/bench/results/why-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
LIB=$("$PGBIN/pg_config" --pkglibdir)/access_audit.so
# data directories: one per build; the rhythms run on aa's
DIRS=$(for c in $CFGS; do echo "$c"; done)
[ -z "$RHYTHMS" ] || DIRS=$(printf '%s\naa\n' "$DIRS" | sort -u)
port_of() { case ${1%%:*} in base) echo "$PORT0" ;; aa) echo $((PORT0 + 1)) ;; nostore) echo $((PORT0 + 2)) ;; burn) echo $((PORT0 + 3)) ;; burnspin) echo $((PORT0 + 4)) ;; esac; }
dir_of() { echo "$BASE/${1%%:*}"; }

for d in $DIRS; do
	[ -f "$BASE/$d/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$d -m immediate stop" >/dev/null 2>&1 || true
done
rm -rf "$BASE"
mkdir -p "$BASE/sock" "$BASE/so"

echo "building access_audit four times (shipped, -DAA_BENCH_BURN, -DAA_BENCH_BURN=1000, -DAA_BENCH_NO_STORE)" >&2
rm -rf "$BASE/src" && mkdir "$BASE/src"
(cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$BASE/src")
(cd "$BASE/src" && make -s PG_CONFIG="$PGBIN/pg_config" COPT=-DAA_BENCH_NO_STORE >/dev/null &&
	cp access_audit.so "$BASE/so/nostore.so" && make -s clean >/dev/null &&
	make -s PG_CONFIG="$PGBIN/pg_config" COPT=-DAA_BENCH_BURN >/dev/null &&
	cp access_audit.so "$BASE/so/burn.so" && make -s clean >/dev/null &&
	make -s PG_CONFIG="$PGBIN/pg_config" COPT=-DAA_BENCH_BURN=1000 >/dev/null &&
	cp access_audit.so "$BASE/so/burnspin.so" && make -s clean >/dev/null &&
	make -s PG_CONFIG="$PGBIN/pg_config" >/dev/null && cp access_audit.so "$BASE/so/aa.so" &&
	make -s PG_CONFIG="$PGBIN/pg_config" install >/dev/null)
cp "$REPO"/bench/w*.sql "$BASE/"
chown -R "$RUNAS" "$BASE" "$OUT"
chmod 755 "$BASE"
chmod 644 "$BASE"/*.sql

start() {
	local c=$1 d
	d=$(dir_of "$c")
	case ${c%%:*} in base) ;; *) cp "$BASE/so/${c%%:*}.so" "$LIB" ;; esac
	# a rhythm: batch_size and flush_interval for this start only
	if [ "${c#*:}" != "$c" ]; then
		local b f
		IFS=: read -r _ b f <<<"$c"
		printf 'access_audit.batch_size = %s\naccess_audit.flush_interval = %s\n' "$b" "$f" >"$d/rhythm.conf"
	else
		: >"$d/rhythm.conf"
	fi
	chown "$RUNAS" "$d/rhythm.conf"
	as "$PGBIN/pg_ctl -D $d -l $d/server.log -w -t 120 start" >/dev/null
}
stop() { as "$PGBIN/pg_ctl -D $(dir_of "$1") -w -t 300 -m fast stop" >/dev/null; }
cleanup() {
	for d in $DIRS; do
		[ -f "$BASE/$d/postmaster.pid" ] && stop "$d" 2>/dev/null || true
	done
	[ -f "$BASE/so/aa.so" ] && cp "$BASE/so/aa.so" "$LIB"
	rm -rf "$BASE"
}
trap cleanup EXIT

q() { as "$PGBIN/psql -X -q -h $BASE/sock -p $(port_of "$1") -d ${3:-bench} -tAc \"$2\""; }
for d in $DIRS; do
	echo "loading $ROWS rows into $d" >&2
	spl=access_audit tag=tag
	[ "$d" = base ] && spl='' tag=''
	bench_initdb "$BASE/$d" "$BASE/sock" "$(port_of "$d")" "$spl" 'checkpoint_timeout = 30min' "include_if_exists = 'rhythm.conf'"
	start "$d"
	bench_load_customers "$BASE/sock" "$(port_of "$d")" "$ROWS" $tag
	stop "$d"
done

# one line per live process of the server in $1's data directory, with its
# kind (backend: a pgbench client backend; writer; other):
#   pid kind utime+stime(ticks) run_ns runq_ns vol_csw invol_csw
procs() {
	local pm p kind
	pm=$(head -1 "$(dir_of "$1")/postmaster.pid")
	for p in $(ps --ppid "$pm" -o pid=); do
		case $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) in
			*"bench [local]"*) kind=backend ;;
			*"access_audit writer"*) kind=writer ;;
			*) kind=other ;;
		esac
		proc_line "$p" "$kind"
	done
}
# pgbench: all its threads
pgb_procs() {
	local t
	for t in /proc/"$1"/task/*; do proc_line "$1/task/${t##*/}" pgbench; done
}
proc_line() {
	local p=$1 kind=$2 st ss cs
	st=$(awk '{print $14 + $15, $15}' "/proc/$p/stat" 2>/dev/null) || return 0
	ss=$(awk '{print $1, $2}' "/proc/$p/schedstat" 2>/dev/null) || return 0
	cs=$(awk '/^voluntary_ctxt_switches/ {v = $2} /^nonvoluntary_ctxt_switches/ {n = $2} END {print v, n}' "/proc/$p/status" 2>/dev/null) || return 0
	read -r cpu sys <<<"$st"
	echo "$p $kind $cpu $ss $cs $sys"
}
now() { date +%s.%N; }
wal() { q "$1" "SELECT wal_records, wal_bytes, wal_write, wal_sync FROM pg_stat_wal" postgres | tr '|' ' '; }
settle() {
	[ "${1%%:*}" = base ] || q "$1" "SELECT access_audit.flush('120 s')" >/dev/null
	q "$1" "CHECKPOINT" >/dev/null
}
SAMPLER="CREATE TEMP TABLE s (k text);
DO \$\$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
  WHILE clock_timestamp() < t0 + interval '$((T - 2)) s' LOOP
    INSERT INTO s SELECT CASE WHEN application_name = 'pgbench' THEN 'backend' ELSE 'writer' END || ' ' ||
                         coalesce(wait_event_type || '/' || wait_event, CASE WHEN state = 'active' THEN 'CPU' ELSE state END)
                    FROM pg_stat_activity
                   WHERE datname = 'bench' AND application_name IN ('pgbench', 'access_audit writer');
    PERFORM pg_stat_clear_snapshot();
    PERFORM pg_sleep(0.005);
  END LOOP;
END \$\$;
SELECT k || ' ' || count(*) FROM s GROUP BY k ORDER BY k;"

RAW=$OUT/raw.tsv
WAITS=$OUT/waits.tsv
: >"$RAW"
: >"$WAITS"
CFG_ALL="$CFGS"
for x in $RHYTHMS; do CFG_ALL="$CFG_ALL aa:$x"; done
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/load.txt" >&2
for r in $(seq 1 "$ROUNDS"); do
	for c in $CFG_ALL; do
		start "$c"
		q "$c" "SELECT count(*) FROM customers" >/dev/null
		as "$PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$c") -D rows=$ROWS -M prepared -c 2 -j 2 -T 2 -f $BASE/$W.sql bench" >/dev/null 2>&1
		settle "$c"
		read -r wr0 wb0 ww0 ws0 <<<"$(wal "$c")"
		su "$RUNAS" -s /bin/bash -c "exec $PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$c") -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f $BASE/$W.sql bench" >"$OUT/pgbench.out" 2>&1 &
		bgp=$!
		pgb=
		for _ in $(seq 1 50); do
			pgb=$(pgrep -P "$bgp" -x pgbench) && break
			sleep 0.1
		done
		as "$PGBIN/psql -X -q -h $BASE/sock -p $(port_of "$c") -d postgres -tA" <<<"$SAMPLER" >"$OUT/sample.out" 2>&1 &
		smp=$!
		sleep 0.7
		t0=$(now)
		{ procs "$c"; pgb_procs "$pgb"; } >"$OUT/p0"
		sleep $((T - 2))
		t1=$(now)
		{ procs "$c"; pgb_procs "$pgb"; } >"$OUT/p1"
		wait "$smp" || true
		wait "$bgp" || true
		settle "$c"
		sleep 1.2
		read -r wr1 wb1 ww1 ws1 <<<"$(wal "$c")"
		load=$(cut -d' ' -f1 /proc/loadavg)
		read -r tps n _ <<<"$(bench_pgbench_result "$OUT/pgbench.out")"
		# statements in the window: tps x window length
		python3 - "$OUT/p0" "$OUT/p1" "$r" "$c" "$tps" "$t0" "$t1" "$n" "$(getconf CLK_TCK)" \
			"$wr0 $wb0 $ww0 $ws0" "$wr1 $wb1 $ww1 $ws1" "$load" <<'EOF' | tee -a "$RAW" >&2
import sys
p0f, p1f, r, c, tps, t0, t1, n, tck, w0, w1, load = sys.argv[1:]
def rd(f):
    d = {}
    for line in open(f):
        p, kind, *v = line.split()
        d[p] = (kind, [float(x) for x in v])
    return d
a, b = rd(p0f), rd(p1f)
stmts = float(tps) * (float(t1) - float(t0))
wall = float(t1) - float(t0)
acc = {}
for p in a:
    if p not in b:
        continue
    kind = a[p][0]
    d = [y - x for x, y in zip(a[p][1], b[p][1])]
    s = acc.setdefault(kind, [0.0] * 6 + [0])
    # cpu (ticks), run ns, runq ns, vol, invol, system cpu (ticks), processes
    for i in range(6):
        s[i] += d[i]
    s[6] += 1
if acc.get("backend", [0] * 7)[6] != 2 or acc.get("pgbench", [0] * 7)[6] != 2:
    sys.stderr.write("round %s %s: not both client backends and pgbench threads seen in both readings, run left out\n" % (r, c))
    sys.exit(0)
out = [r, c, tps, load]
for kind in ("backend", "writer", "pgbench", "other"):
    s = acc.get(kind, [0.0] * 6 + [0])
    n_p = s[6]
    cpu = s[0] / float(tck) * 1e6 / stmts
    run = s[1] / 1e3 / stmts
    rq = s[2] / 1e3 / stmts
    # sleep: what is left of the processes' wall time
    slp = (n_p * wall * 1e6 - (s[1] + s[2]) / 1e3) / stmts
    sys_ = s[5] / float(tck) * 1e6 / stmts
    out += ["%.2f" % cpu, "%.2f" % run, "%.2f" % rq, "%.2f" % slp, "%.3f" % (s[3] / stmts), "%.3f" % (s[4] / stmts), "%.2f" % sys_]
w0 = [float(x) for x in w0.split()]
w1 = [float(x) for x in w1.split()]
nn = float(n)
out += ["%.3f" % ((y - x) / nn) for x, y in zip(w0, w1)]
print("\t".join(str(x) for x in out))
EOF
		awk -v r="$r" -v c="$c" -v n="$(wc -l <"$OUT/sample.out")" 'NF >= 3 {print r "\t" c "\t" $1 "\t" $2 "\t" $3}' "$OUT/sample.out" >>"$WAITS"
		stop "$c"
	done
done
# p0, p1: the last run's process readings

python3 "$REPO/bench/why_summary.py" "$RAW" "$WAITS" "$CFG_ALL" | tee "$OUT/summary.txt"
echo "results: $OUT" >&2
