#!/bin/bash
# bench/profile.sh: CPU cost of access_audit per statement, and where it goes.
# Run as root, after (not during) bench/run.sh: both use /tmp/aa_bench.
#
#   bench/profile.sh [-T seconds] [-n rows] [-w "w1 w2 w3"]   (defaults 12, 1000000, "w1 w2 w3")
#
# One data directory (/tmp/aa_bench/prof, port 54355) restarted as
#   base     shared_preload_libraries=''
#   pgaudit  shared_preload_libraries=pgaudit, object auditing, log_rows=on
#   aa       shared_preload_libraries=access_audit (full_name, phone tagged)
# For each workload and configuration, perf stat counts the CPU time
# (task-clock: hardware counters are not available in this VM) of the two
# pgbench backends and of the access_audit writer while pgbench runs: CPU per
# statement depends far less on what else the machine is doing than tps.  Then perf record -g of the
# backends and of the writer under workload 1 with access_audit: top symbols
# (self and inclusive).  Output in bench/results/profile-<timestamp>/.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
T=12
ROWS=1000000
WL=w1
WLS="w1 w2 w3"
while getopts "T:n:w:" o; do
	case $o in
		T) T=$OPTARG ;;
		n) ROWS=$OPTARG ;;
		w) WLS=$OPTARG ;;
		*) sed -n '2,14p' "$0"; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "profile.sh: run as root" >&2; exit 2; }
command -v perf >/dev/null || apt-get install -y linux-perf >/dev/null
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"

D=/tmp/aa_bench/prof
SOCK=/tmp/aa_bench/profsock
PORT=54355
OUT=$REPO/bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT" /tmp/aa_bench
. "$REPO/bench/lib.sh"
q() { as "$PGBIN/psql -X -q -h $SOCK -p $PORT -d bench -tAc \"$*\""; }
[ -f $D/postmaster.pid ] && as "$PGBIN/pg_ctl -D $D -m immediate stop" >/dev/null 2>&1 || true
rm -rf $D $SOCK
mkdir -p $SOCK
chown "$RUNAS" $SOCK /tmp/aa_bench
chmod 755 /tmp/aa_bench
cp "$REPO/bench/$WL.sql" /tmp/aa_bench/prof_$WL.sql
chmod 644 /tmp/aa_bench/prof_$WL.sql
trap 'as "$PGBIN/pg_ctl -D $D -m fast stop" >/dev/null 2>&1 || true; rm -rf $D $SOCK' EXIT

bench_initdb $D $SOCK $PORT access_audit
as "$PGBIN/pg_ctl -D $D -l $D/server.log -w start" >/dev/null
bench_load_customers $SOCK $PORT "$ROWS" tag

# run pgbench in the background, give it 2 s to connect, then measure
# CPU time of the backends (+ writer) for T-4 seconds.  Statements in that
# window come from pg_stat_database.xact_commit, which backends report at
# most once a second: the per-statement figures are good to about +-10%;
# bench/run.sh's CPU table (exact statement counts) is the precise one.
measure() {
	local label=$1 what=$2
	as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f /tmp/aa_bench/prof_$WL.sql bench" >"$OUT/pgbench-$label.txt" 2>&1 &
	local pgb=$!
	sleep 2
	local pids wpid
	pids=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend'")
	wpid=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE backend_type = 'access_audit writer'" 2>/dev/null || true)
	local c0 c1
	c0=$(q "SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = 'bench'")
	perf stat -x, -e task-clock -p "$pids" -o "$OUT/stat-$label-backends.txt" -- sleep $((T - 4)) &
	local s1=$!
	if [ -n "$wpid" ]; then
		perf stat -x, -e task-clock -p "$wpid" -o "$OUT/stat-$label-writer.txt" -- sleep $((T - 4)) &
	fi
	wait $s1
	c1=$(q "SELECT sum(xact_commit) FROM pg_stat_database WHERE datname = 'bench'")
	wait $pgb || true
	wait
	echo "$label: backends $pids writer ${wpid:-none} transactions $((c1 - c0))" >>"$OUT/pids.txt"
	local bi wi=0
	bi=$(awk -F, '$3 ~ /^task-clock/ {print $1}' "$OUT/stat-$label-backends.txt")
	[ -n "$wpid" ] && wi=$(awk -F, '$3 ~ /^task-clock/ {print $1}' "$OUT/stat-$label-writer.txt")
	echo "$label $((c1 - c0)) $bi $wi"
}

restart_as() {
	case $1 in
		base) as "$PGBIN/pg_ctl -D $D -l $D/server.log -w -m fast restart -o \"-c shared_preload_libraries=''\"" >/dev/null ;;
		pgaudit) as "$PGBIN/pg_ctl -D $D -l $D/server.log -w -m fast restart -o \"-c shared_preload_libraries=pgaudit -c pgaudit.role=auditor -c pgaudit.log_rows=on\"" >/dev/null
			q "CREATE EXTENSION IF NOT EXISTS pgaudit" >/dev/null ;;
		aa) as "$PGBIN/pg_ctl -D $D -l $D/server.log -w -m fast restart -o \"-c shared_preload_libraries=access_audit\"" >/dev/null
			q "SELECT access_audit.flush()" >/dev/null ;;
	esac
	q "SELECT count(*) FROM customers" >/dev/null
	q "CHECKPOINT" >/dev/null
}
q "CREATE ROLE auditor NOLOGIN; GRANT SELECT (full_name, phone) ON customers TO auditor" >/dev/null
: >"$OUT/instructions.txt"
for wl in $WLS; do
	cp "$REPO/bench/$wl.sql" /tmp/aa_bench/prof_$wl.sql; chmod 644 /tmp/aa_bench/prof_$wl.sql
	for cfg in base pgaudit aa; do
		restart_as $cfg
		WL=$wl
		read -r _ n bi wi <<<"$(measure $wl-$cfg stat)"
		awk -v wl=$wl -v c=$cfg -v n="$n" -v i="$bi" -v w="${wi:-0}" \
			'BEGIN{printf "%s %-8s %9d stmts  backends %7.2f us CPU/stmt  writer %6.2f us CPU/stmt  total %7.2f\n", wl, c, n, 1000*i/n, 1000*w/n, 1000*(i+w)/n}' |
			tee -a "$OUT/instructions.txt"
	done
done
WL=w1
restart_as aa

# call graphs: backends and writer, separately
as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f /tmp/aa_bench/prof_$WL.sql bench" >"$OUT/pgbench-record.txt" 2>&1 &
PGB=$!
sleep 2
PIDS=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench' AND backend_type = 'client backend'")
WPID=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE backend_type = 'access_audit writer'")
perf record -q -e cpu-clock -F 2999 -g -p "$PIDS" -o "$OUT/backends.data" -- sleep $((T - 4)) 2>/dev/null &
R1=$!
perf record -q -e cpu-clock -F 2999 -g -p "$WPID" -o "$OUT/writer.data" -- sleep $((T - 4)) 2>/dev/null &
R2=$!
wait $R1 $R2 || true
wait $PGB || true
for w in backends writer; do
	perf report -i "$OUT/$w.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
		grep -v '^#' | grep '%' | head -40 >"$OUT/top-$w.txt" || true
	perf report -i "$OUT/$w.data" --no-children --sort symbol --dsos access_audit.so --stdio -g none 2>/dev/null |
		grep -v '^#' | grep '%' | head -30 >"$OUT/aa-$w.txt" || true
	perf report -i "$OUT/$w.data" --children --sort symbol --stdio -g none 2>/dev/null |
		grep -v '^#' | grep '%' | head -40 >"$OUT/children-$w.txt" || true
	echo "== $w: top symbols (self) =="; cat "$OUT/top-$w.txt"
	echo "== $w: inclusive (children) =="; cat "$OUT/children-$w.txt"
	echo "== $w: access_audit.so symbols (self) =="; cat "$OUT/aa-$w.txt"
done
echo "profile: $OUT"
