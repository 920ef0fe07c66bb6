#!/bin/bash
# bench/ceiling.sh: how much of access_audit's cost is capture, how much storage.
#
# Interleaves three configurations over rounds (A B C A B C ...):
#   base     no extension preloaded
#   aa       access_audit as shipped
#   nostore  access_audit built with -DAA_BENCH_NO_STORE: the hooks capture
#            and queue every record as usual, the writer collects and frees
#            them without writing them (the ceiling any storage format could
#            reach)
#   noidx    (with -c) access_audit as shipped, with the primary key of
#            access_audit.log_data dropped after loading (what the btree
#            insert on seq costs)
#   packed   (with -c) built with -DAA_BENCH_PACKED: the writer does all its
#            work (chain, dictionaries, roll-up, state) but stores each batch
#            as one row of public.log_packs instead of one heap row and one
#            index entry per record (what many records per row would cost)
# and prints, per workload, median tps and server CPU per statement with
# ratios to baseline, split into the client backends, the access_audit
# writer (per record: one record per statement) and the other server
# processes (checkpointer, WAL writer, ...).  Only the library file differs between aa and nostore;
# it is swapped in before each start and the shipped build is put back at
# the end.
#
# Run as root, after bench/run.sh has installed pgaudit and built once:
#   bench/ceiling.sh [-T seconds] [-r rounds] [-n rows] [-w "w1 w2"] [-c "base aa nostore packed noidx"]
# Env: PGBIN, BASE (default /tmp/aa_ceiling), PORT0 (default 54370).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
BASE=${BASE:-/tmp/aa_ceiling}
PORT0=${PORT0:-54370}
T=10
ROUNDS=3
ROWS=1000000
WORKLOADS="w1 w2"
CFGS="base aa nostore"
while getopts "T:r:n:w:c:" o; do
	case $o in
		T) T=$OPTARG ;;
		r) ROUNDS=$OPTARG ;;
		n) ROWS=$OPTARG ;;
		w) WORKLOADS=$OPTARG ;;
		c) CFGS=$OPTARG ;;
		*) sed -n '2,27p' "$0"; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "ceiling.sh: run as root" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
. "$REPO/bench/lib.sh"

OUT=$REPO/bench/results/ceiling-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT"
LIB=$("$PGBIN/pg_config" --pkglibdir)/access_audit.so
port_of() { case $1 in base) echo "$PORT0" ;; aa) echo $((PORT0 + 1)) ;; nostore) echo $((PORT0 + 2)) ;; packed) echo $((PORT0 + 3)) ;; noidx) echo $((PORT0 + 4)) ;; esac; }

for c in $CFGS; do
	[ -f "$BASE/$c/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$c -m immediate stop" >/dev/null 2>&1 || true
done
rm -rf "$BASE"
mkdir -p "$BASE/sock" "$BASE/so"

# the builds from a copy of the tree, so the checkout's objects stay as they are
echo "building access_audit three times (shipped, -DAA_BENCH_NO_STORE, -DAA_BENCH_PACKED)" >&2
rm -rf "$BASE/src" && mkdir "$BASE/src"
(cd "$REPO" && git ls-files -z | xargs -0 cp --parents -t "$BASE/src")
(cd "$BASE/src" && make -s PG_CONFIG="$PGBIN/pg_config" COPT=-DAA_BENCH_NO_STORE >/dev/null &&
	cp access_audit.so "$BASE/so/nostore.so" && make -s clean >/dev/null &&
	make -s PG_CONFIG="$PGBIN/pg_config" COPT=-DAA_BENCH_PACKED >/dev/null &&
	cp access_audit.so "$BASE/so/packed.so" && make -s clean >/dev/null &&
	make -s PG_CONFIG="$PGBIN/pg_config" >/dev/null && cp access_audit.so "$BASE/so/aa.so" &&
	make -s PG_CONFIG="$PGBIN/pg_config" install >/dev/null)
cp "$REPO"/bench/w*.sql "$BASE/"
chown -R "$RUNAS" "$BASE" "$OUT"
chmod 755 "$BASE"
chmod 644 "$BASE"/*.sql

use_lib() {
	case $1 in
		base) ;;
		noidx) cp "$BASE/so/aa.so" "$LIB" ;;
		*) cp "$BASE/so/$1.so" "$LIB" ;;
	esac
}
start() { use_lib "$1"; as "$PGBIN/pg_ctl -D $BASE/$1 -l $BASE/$1/server.log -w -t 120 start" >/dev/null; }
stop() { as "$PGBIN/pg_ctl -D $BASE/$1 -w -t 300 -m fast stop" >/dev/null; }
cleanup() {
	for c in $CFGS; do
		[ -f "$BASE/$c/postmaster.pid" ] && stop "$c" 2>/dev/null || true
	done
	[ -f "$BASE/so/aa.so" ] && cp "$BASE/so/aa.so" "$LIB"
	rm -rf "$BASE"
}
trap cleanup EXIT

q() { as "$PGBIN/psql -X -q -h $BASE/sock -p $(port_of "$1") -d bench -tAc \"$2\""; }
for c in $CFGS; do
	echo "loading $ROWS rows into $c" >&2
	spl=access_audit tag=tag
	[ "$c" = base ] && spl='' tag=''
	bench_initdb "$BASE/$c" "$BASE/sock" "$(port_of "$c")" "$spl" 'checkpoint_timeout = 30min'
	start "$c"
	bench_load_customers "$BASE/sock" "$(port_of "$c")" "$ROWS" $tag
	# packs are stored as they are: compressing 500kB per batch would cost more than it saves
	[ "$c" != packed ] || q "$c" "CREATE TABLE public.log_packs (first_seq bigint, n integer, data bytea); ALTER TABLE public.log_packs ALTER data SET STORAGE EXTERNAL"
	[ "$c" != noidx ] || q "$c" "SET access_audit.maintenance = on; ALTER TABLE access_audit.log_data DROP CONSTRAINT log_data_pkey"
	stop "$c"
done

TCK=$(getconf CLK_TCK)
cpu_ticks() { bench_cpu_ticks "$BASE/$1"; }
# CPU ticks of the access_audit writer of configuration $1 (0 without one)
writer_ticks() {
	local pm wp
	pm=$(head -1 "$BASE/$1/postmaster.pid")
	wp=$(ps --ppid "$pm" -o pid=,args= | awk '/access_audit writer/ {print $1; exit}')
	[ -n "$wp" ] && awk '{print $14 + $15}' "/proc/$wp/stat" || echo 0
}
# CPU ticks of the live children of configuration $1 that are not client
# backends (those exit with pgbench; what they used is in the reaped total)
aux_ticks() {
	local pm p
	pm=$(head -1 "$BASE/$1/postmaster.pid")
	for p in $(ps --ppid "$pm" -o pid=); do
		tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q '\[local\]' && continue
		cat "/proc/$p/stat" 2>/dev/null || true
	done | awk '{s += $14 + $15} END {print s + 0}'
}
settle() {
	[ "$1" = base ] || q "$1" "SELECT access_audit.flush('120 s')" >/dev/null
	q "$1" "CHECKPOINT" >/dev/null
}
RAW=$OUT/raw.tsv
: >"$RAW"
for r in $(seq 1 "$ROUNDS"); do
	for c in $CFGS; do
		start "$c"
		q "$c" "SELECT count(*) FROM customers" >/dev/null
		for w in $WORKLOADS; do
			as "$PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$c") -D rows=$ROWS -M prepared -c 2 -j 2 -T 2 -f $BASE/$w.sql bench" >/dev/null 2>&1
			settle "$c"
			c0=$(cpu_ticks "$c")
			k0=$(writer_ticks "$c")
			x0=$(aux_ticks "$c")
			out=$(as "$PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$c") -D rows=$ROWS -M prepared -c 2 -j 2 -T $T -f $BASE/$w.sql bench" 2>&1)
			# the writer's share of these statements is included: drain first
			settle "$c"
			c1=$(cpu_ticks "$c")
			k1=$(writer_ticks "$c")
			x1=$(aux_ticks "$c")
			read -r tps n _ <<<"$(bench_pgbench_result <<<"$out")"
			cpu=$(awk -v a="$c0" -v b="$c1" -v n="$n" -v t="$TCK" 'BEGIN{printf "%.2f", (b - a) * 1e6 / t / n}')
			# one record per statement: writer CPU per record
			wcpu=$(awk -v a="$k0" -v b="$k1" -v n="$n" -v t="$TCK" 'BEGIN{printf "%.2f", (b - a) * 1e6 / t / n}')
			# client backends: everything but the live auxiliary processes
			bcpu=$(awk -v a="$c0" -v b="$c1" -v x="$x0" -v y="$x1" -v n="$n" -v t="$TCK" 'BEGIN{printf "%.2f", ((b - a) - (y - x)) * 1e6 / t / n}')
			printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$w" "$tps" "$cpu" "$wcpu" "$bcpu" | tee -a "$RAW" >&2
		done
		stop "$c"
	done
done

python3 - "$RAW" "$WORKLOADS" <<'EOF' | tee "$OUT/summary.txt"
import sys
from collections import defaultdict
from statistics import median
tps, cpu, wcpu, bcpu = defaultdict(list), defaultdict(list), defaultdict(list), defaultdict(list)
for line in open(sys.argv[1]):
    r, c, w, t, u, k, b = line.split()
    tps[(c, w)].append(float(t))
    cpu[(c, w)].append(float(u))
    wcpu[(c, w)].append(float(k))
    bcpu[(c, w)].append(float(b))
print("%-4s %-8s %10s %8s %12s %8s %14s %13s %12s" % ("", "config", "tps", "/base", "CPU us/stmt", "base/cfg",
                                                      "writer us/rec", "backends us", "others us"))
for w in sys.argv[2].split():
    bt, bc = median(tps[("base", w)]), median(cpu[("base", w)])
    for c in [c for c in ("base", "aa", "nostore", "packed", "noidx") if (c, w) in tps]:
        t, u, k = median(tps[(c, w)]), median(cpu[(c, w)]), median(wcpu[(c, w)])
        b = median(bcpu[(c, w)])
        o = median([x - y - z for x, y, z in zip(cpu[(c, w)], wcpu[(c, w)], bcpu[(c, w)])])
        print("%-4s %-8s %10.0f %8.2f %12.2f %8.2f %14.2f %13.2f %12.2f" % (w, c, t, t / bt, u, bc / u, k, b, o))
EOF
echo "results: $OUT" >&2
