#!/bin/bash
# bench/latency.sh: where access_audit's latency tail at a fixed load comes
# from (issue 22, "what users feel").  bench/run.sh's section 8 showed, on a
# quiet 2-core machine, tagged point reads at half the baseline's maximum
# rate with a p99 of about 160 ms under access_audit against about 4 ms at
# baseline.  This script tells the explanations apart by running the same
# fixed load against one baseline server and one access_audit server whose
# writer is varied between runs, rounds interleaved:
#   base       no extension
#   aa         the shipped writer (access_audit.flush_interval 200 ms,
#              batch_size 5000)
#   aa-fN      access_audit.flush_interval N ms: the same work in shorter,
#              more frequent batches (aa-f10, aa-f50, ...)
#   ...-nice   (suffix) the writer's nice value raised to 19 from outside
#              (renice): the scheduler lets client backends and pgbench
#              run first (aa-nice, aa-f50-nice, ...)
# For each run: p50/p90/p99/p99.9 latency from pgbench's per-transaction
# logs (counted from each transaction's scheduled start), the mean schedule
# lag, and the writer's CPU, voluntary and involuntary context switches
# over the run.
#
# Run as root:  bench/latency.sh [-R rate] [-T seconds] [-r rounds] [-c configs]
#   -R  offered rate (default: half of the baseline's maximum, measured first;
#       "max": no rate limit, for the throughput each writer setting keeps)
#   -T  seconds per run (default 10), -r rounds (default 3)
#   -c  configurations, space separated (default "base aa aa-f10 aa-nice")
# Env: PGBIN (default /usr/lib/postgresql/15/bin), BASE (/tmp/aa_latency),
# PORT0 (54460), BENCH_COPT (compiler options of the build, for the bench
# builds: -DAA_BENCH_NO_STORE, a writer that frees records without any
# work; -DAA_BENCH_BURN, one that does all but the insert and commit; see
# writer.c), BENCH_TAG (appended to the results directory's name).
# Results: bench/results/latency-<UTC timestamp>[-tag]/.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
BASE=${BASE:-/tmp/aa_latency}
PORT0=${PORT0:-54460}
RUNAS=${RUNAS:-aa_bench}
RATE='' T=10 ROUNDS=3 ROWS=100000
CONFIGS="base aa aa-f10 aa-nice"
while getopts "R:T:r:c:h" o; do
	case $o in
		R) RATE=$OPTARG ;;
		T) T=$OPTARG ;;
		r) ROUNDS=$OPTARG ;;
		c) CONFIGS=$OPTARG ;;
		*) sed -n '2,/^set -e/p' "$0" | sed '$d'; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "latency.sh: run as root" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
. "$REPO/bench/lib.sh"

OUT=$REPO/bench/results/latency-$(date -u +%Y%m%dT%H%M%SZ)${BENCH_TAG:+-$BENCH_TAG}
mkdir -p "$OUT"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/progress.log" >&2; }

(cd "$REPO" && make -s clean && make -s PG_CONFIG="$PGBIN/pg_config" ${BENCH_COPT:+COPT="$BENCH_COPT"} &&
	make -s PG_CONFIG="$PGBIN/pg_config" install && make -s clean) >"$OUT/build.log" 2>&1

server_of() { case $1 in base) echo base ;; *) echo aa ;; esac; }
port_of() { case $1 in base) echo "$PORT0" ;; *) echo $((PORT0 + 1)) ;; esac; }

for s in base aa; do
	[ -f "$BASE/$s/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$s -m immediate stop" >/dev/null 2>&1 || true
done
rm -rf "$BASE"
mkdir -p "$BASE/sock" "$BASE/lat"
chown -R "$RUNAS" "$BASE" "$OUT"
cp "$REPO/bench/w1.sql" "$BASE/"
chmod 644 "$BASE/w1.sql"
cleanup() {
	for s in base aa; do
		[ -f "$BASE/$s/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$s -w -m fast stop" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT

for s in base aa; do
	pre=''
	[ $s = aa ] && pre=access_audit
	bench_initdb "$BASE/$s" "$BASE/sock" "$(port_of $s)" "$pre" 'checkpoint_timeout = 30min'
	as "$PGBIN/pg_ctl -D $BASE/$s -l $BASE/$s/server.log -w start" >/dev/null
	tag=''
	[ $s = aa ] && tag=tag
	bench_load_customers "$BASE/sock" "$(port_of $s)" "$ROWS" $tag
done
Q() { as "$PGBIN/psql -X -qtA -h $BASE/sock -p $(port_of "$1") -d bench -c \"$2\""; }

# the writer's pid (it leaves after 1 s idle; a run keeps it busy)
writer_pid() { Q aa "SELECT pid FROM pg_stat_activity WHERE backend_type = 'access_audit writer' AND datname = 'bench'" | head -1; }
# utime+stime ticks, voluntary and involuntary switches of a pid
pstat() {
	local p=$1
	if [ -n "$p" ] && [ -r "/proc/$p/stat" ]; then
		echo "$(awk '{print $14 + $15}' "/proc/$p/stat") $(awk '/^voluntary_ctxt_switches/ {v=$2} /^nonvoluntary_ctxt_switches/ {n=$2} END {print v, n}' "/proc/$p/status")"
	else
		echo "0 0 0"
	fi
}

if [ -z "$RATE" ]; then
	read -r max _ <<<"$(as "$PGBIN/pgbench -n -h $BASE/sock -p $PORT0 -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f $BASE/w1.sql bench" |
		bench_pgbench_result)"
	max=${max%.*}
	RATE=$((max / 2))
	log "baseline maximum $max tps; offered rate $RATE/s"
fi

printf 'round\tconfig\ttps\tp50_ms\tp90_ms\tp99_ms\tp999_ms\tlag_ms\twriter_cpu_us_per_stmt\twriter_vol_cs\twriter_invol_cs\n' >"$OUT/raw.tsv"
for r in $(seq 1 "$ROUNDS"); do
	for c in $CONFIGS; do
		s=$(server_of "$c")
		if [ "$s" = aa ]; then
			fi=200ms
			case $c in aa-f*) fi=${c#aa-f}; fi=${fi%-nice}ms ;; esac
			Q aa "ALTER SYSTEM SET access_audit.flush_interval = '$fi'" >/dev/null
			Q aa "SELECT pg_reload_conf()" >/dev/null
			Q aa "SELECT access_audit.flush('60 s')" >/dev/null
		fi
		Q "$s" "CHECKPOINT" >/dev/null
		rm -f "$BASE"/lat/tx*
		rate_opt="-R $RATE"
		[ "$RATE" = max ] && rate_opt=''
		as "cd $BASE/lat && $PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$s") -D rows=$ROWS -M prepared -c 2 -j 2 -T $T $rate_opt -l --log-prefix=tx -f $BASE/w1.sql bench" >"$BASE/pgb.out" 2>&1 &
		pgb=$!
		wp='' w0='0 0 0'
		if [ "$s" = aa ]; then
			for _ in $(seq 1 50); do
				wp=$(writer_pid)
				[ -n "$wp" ] && break
				sleep 0.1
			done
			case $c in *-nice) [ -n "$wp" ] && renice -n 19 -p "$wp" >/dev/null ;; esac
			w0=$(pstat "$wp")
		fi
		wait $pgb
		w1=$(pstat "$wp")
		read -r tps n _ <<<"$(bench_pgbench_result "$BASE/pgb.out")"
		tps=${tps%.*}
		read -r p50 p90 p99 p999 lag <<<"$(python3 "$REPO/bench/summarize.py" --latency "$BASE"/lat/tx*)"
		read -r a0 v0 i0 <<<"$w0"
		read -r a1 v1 i1 <<<"$w1"
		wcpu=$(awk -v t=$((a1 - a0)) -v n="${n:-0}" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0)}')
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$tps" "$p50" "$p90" "$p99" "$p999" "$lag" "$wcpu" $((v1 - v0)) $((i1 - i0)) >>"$OUT/raw.tsv"
		log "round $r $c: $tps tps, p50 $p50 p90 $p90 p99 $p99 p99.9 $p999 ms, lag $lag ms, writer $wcpu us/stmt, switches $((v1 - v0)) vol $((i1 - i0)) invol"
	done
done
column -t "$OUT/raw.tsv" | tee "$OUT/summary.txt"
