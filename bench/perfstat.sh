#!/bin/bash
# bench/perfstat.sh: CPU, context switches, migrations and page faults per
# statement of the pgbench backends and of the access_audit writer, native
# (no valgrind), from perf stat software events.  Uses the data directory
# bench/callgrind.sh prepared ($BASE/data).  Run as root:
#   PGBIN=... bench/perfstat.sh [-c "base aa"] [-w "w1"] [-T 10] [-r 2]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
BASE=${BASE:-/tmp/aa_cg}
PORT=${PORT:-55710}
ROWS=${ROWS:-1000000}
EXTRA=${EXTRA:-}
T=10 R=2 CFGS="base aa" WLS=w1
while getopts "c:w:T:r:" o; do
	case $o in c) CFGS=$OPTARG ;; w) WLS=$OPTARG ;; T) T=$OPTARG ;; r) R=$OPTARG ;; *) exit 2 ;; esac
done
D=$BASE/data SOCK=$BASE/sock
. "$REPO/bench/lib.sh"
q() { as "$PGBIN/psql -X -q -h $SOCK -p $PORT -d bench -tAc \"$*\""; }
EV=task-clock,context-switches,cpu-migrations,page-faults
for w in $WLS; do cp "$REPO/bench/$w.sql" "$BASE/$w.sql"; chmod 644 "$BASE/$w.sql"; done
for r in $(seq 1 "$R"); do
for wl in $WLS; do
for cfg in $CFGS; do
	spl=''; [ "$cfg" = aa ] && spl=access_audit
	as "$PGBIN/pg_ctl -D $D -l $BASE/native.log -w -o \"-c shared_preload_libraries=$spl $EXTRA\" start" >/dev/null
	q "SELECT count(*) FROM customers" >/dev/null
	[ "$cfg" = aa ] && q "SELECT access_audit.flush('60 s')" >/dev/null
	as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T 3 -f $BASE/$wl.sql bench" >/dev/null 2>&1
	[ "$cfg" = aa ] && q "SELECT access_audit.flush('60 s')" >/dev/null
	q "CHECKPOINT" >/dev/null
	as "$PGBIN/pgbench -n -h $SOCK -p $PORT -D rows=$ROWS -M prepared -c 2 -j 2 -T $((T + 3)) -f $BASE/$wl.sql bench" >$BASE/pgb.out 2>&1 &
	pgb=$!
	sleep 1.5
	pids=$(q "SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE application_name = 'pgbench'")
	wpid=$(q "SELECT pid FROM pg_stat_activity WHERE backend_type = 'access_audit writer'" || true)
	# STOPWRITER=1: SIGSTOP the writer while measuring (records pile up in the
	# ring; give it room with EXTRA="-c access_audit.queue_size=...")
	[ "${STOPWRITER:-0}" = 1 ] && [ -n "$wpid" ] && kill -STOP "$wpid"
	x0=$(q "SELECT pg_stat_get_db_xact_commit(oid) FROM pg_database WHERE datname = 'bench'")
	perf stat -x, -e $EV -p "$pids" -o $BASE/ps-b.txt -- sleep "$T" &
	s1=$!
	if [ "${PERFREC:-0}" = 1 ]; then
		perf record -q -e cpu-clock -F 1999 -g -p "$pids" -o $BASE/rec-$cfg-$wl-b.data -- sleep "$T" 2>/dev/null &
		[ -n "$wpid" ] && perf record -q -e cpu-clock -F 1999 -g -p "$wpid" -o $BASE/rec-$cfg-$wl-w.data -- sleep "$T" 2>/dev/null &
	fi
	s2=''
	if [ -n "$wpid" ]; then
		perf stat -x, -e $EV -p "$wpid" -o $BASE/ps-w.txt -- sleep "$T" &
		s2=$!
	fi
	wait $s1 $s2
	x1=$(q "SELECT pg_stat_get_db_xact_commit(oid) FROM pg_database WHERE datname = 'bench'")
	[ "${STOPWRITER:-0}" = 1 ] && [ -n "$wpid" ] && kill -CONT "$wpid"
	wait
	n=$((x1 - x0))
	tps=$(awk '/^tps/ {print $3}' $BASE/pgb.out)
	line=$(awk -F, -v n="$n" '{v[$3]=$1} END {printf "backends %6.2f us/stmt cs %.3f mig %.3f pf %.3f", 1000*v["task-clock"]/n, v["context-switches"]/n, v["cpu-migrations"]/n, v["page-faults"]/n}' $BASE/ps-b.txt)
	wline=''
	[ -n "$wpid" ] && wline=$(awk -F, -v n="$n" '{v[$3]=$1} END {printf "writer %6.2f us/stmt cs %.4f pf %.3f", 1000*v["task-clock"]/n, v["context-switches"]/n, v["page-faults"]/n}' $BASE/ps-w.txt)
	echo "r$r $wl $cfg tps $tps n $n $line $wline" | tee -a $BASE/perfstat.txt
	as "$PGBIN/pg_ctl -D $D -w -m fast stop" >/dev/null
done; done; done
