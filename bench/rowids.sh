#!/bin/bash
# bench/rowids.sh: the cost of row identities (issue 25).
#
# Three configurations, interleaved per round:
#   base   no extension preloaded
#   aa     access_audit, customers.full_name/phone tagged (database bench)
#   rows   the same, and access_audit.track_rows('customers') (database
#          benchrows, same server as aa)
# Workloads (bench/w*.sql): w1 point read, w2 100-row range read, w4 COPY of
# the whole table.  Then: storage bytes per record (log and row sets) for
# point, range and COPY records; who_read() latency over the log made by
# the rounds and over 10 M synthetic row sets (inserted in maintenance
# mode: point reads of random customers, links to no record, so the log
# lookup is not part of their cost).
#
# Run as root: bench/rowids.sh [-T seconds] [-r rounds] [-n rows] [-m millions]
# Env: PGBIN, BASE (default /tmp/aa_rowids_bench), PORT0 (default 55460).
# Results: bench/results/<UTC>-rowids/ (raw.tsv, summary.txt).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_bench}
BASE=${BASE:-/tmp/aa_rowids_bench}
PORT0=${PORT0:-55460}
T=5
ROUNDS=3
ROWS=1000000
SYNTH_M=10
while getopts "T:r:n:m:" o; do
	case $o in
		T) T=$OPTARG ;;
		r) ROUNDS=$OPTARG ;;
		n) ROWS=$OPTARG ;;
		m) SYNTH_M=$OPTARG ;;
		*) sed -n '2,20p' "$0"; exit 2 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "rowids.sh: run as root" >&2; exit 2; }
id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
. "$REPO/bench/lib.sh"

OUT=$REPO/bench/results/$(date -u +%Y%m%dT%H%M%SZ)-rowids
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
: >"$RAW"
log() { echo "[$(date -u +%H:%M:%S)] $*" | tee -a "$OUT/progress.log" >&2; }
rec() { printf '%s\n' "$*" | tr ' ' '\t' >>"$RAW"; }

(cd "$REPO" && make -s PG_CONFIG="$PGBIN/pg_config" && make -s PG_CONFIG="$PGBIN/pg_config" install) >"$OUT/build.log" 2>&1 ||
	{ cat "$OUT/build.log"; exit 1; }

for s in base aa; do
	[ -f "$BASE/$s/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$s -m immediate stop" >/dev/null 2>&1 || true
done
rm -rf "$BASE"
mkdir -p "$BASE/sock"
chown -R "$RUNAS" "$BASE" "$OUT"
cp "$REPO"/bench/w*.sql "$BASE/"
chmod 644 "$BASE"/*.sql

port_of() { case $1 in base) echo "$PORT0" ;; *) echo $((PORT0 + 1)) ;; esac; }
db_of() { case $1 in rows) echo benchrows ;; *) echo bench ;; esac; }
srv_of() { case $1 in base) echo base ;; *) echo aa ;; esac; }
PSQLB="$PGBIN/psql -X -q -v ON_ERROR_STOP=1 -h $BASE/sock"
q() { local c=$1; shift; as "$PSQLB -p $(port_of "$c") -d $(db_of "$c") -tAc \"$*\""; }
cleanup() {
	for s in base aa; do
		[ -f "$BASE/$s/postmaster.pid" ] && as "$PGBIN/pg_ctl -D $BASE/$s -w -m fast stop" >/dev/null 2>&1 || true
	done
	rm -rf "$BASE"
}
trap cleanup EXIT

load() {
	local c=$1
	as "$PGBIN/createdb -h $BASE/sock -p $(port_of "$c") $(db_of "$c")"
	as "$PSQLB -p $(port_of "$c") -d $(db_of "$c")" <<EOF
CREATE TABLE customers (id integer PRIMARY KEY, full_name text NOT NULL, phone text NOT NULL,
    city text NOT NULL, email text NOT NULL, created date NOT NULL);
INSERT INTO customers
SELECT i, 'Customer ' || md5(i::text)::varchar(12), '+1-555-' || lpad((i % 10000000)::text, 7, '0'),
       (ARRAY['Berlin','Paris','Lisbon','Oslo','Rome','Vienna','Prague','Dublin'])[1 + i % 8],
       'c' || i || '@example.com', date '2020-01-01' + (i % 1500)
  FROM generate_series(1, $ROWS) i;
VACUUM ANALYZE customers;
EOF
	if [ "$c" != base ]; then
		as "$PSQLB -p $(port_of "$c") -d $(db_of "$c")" <<EOF
CREATE EXTENSION access_audit;
SECURITY LABEL FOR access_audit ON COLUMN customers.full_name IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
EOF
	fi
	[ "$c" = rows ] && q rows "SELECT access_audit.track_rows('customers')" >/dev/null
	true
}

bench_initdb "$BASE/base" "$BASE/sock" "$(port_of base)" "" 'checkpoint_timeout = 30min'
bench_initdb "$BASE/aa" "$BASE/sock" "$(port_of aa)" access_audit 'checkpoint_timeout = 30min' 'access_audit.queue_size = 64MB'
for s in base aa; do as "$PGBIN/pg_ctl -D $BASE/$s -l $BASE/$s/server.log -w -t 120 start" >/dev/null; done
log "loading $ROWS customers x 3"
for c in base aa rows; do load "$c"; done

pgb() {
	local c=$1 script=$2; shift 2
	local f
	f=$(mktemp "$BASE/pgb.XXXXXX"); chown "$RUNAS" "$f"
	as "$PGBIN/pgbench -n -h $BASE/sock -p $(port_of "$c") -D rows=$ROWS $* -f $BASE/$script $(db_of "$c")" >"$f" 2>&1 ||
		{ cat "$f" >&2; return 1; }
	bench_pgbench_result "$f"
	rm -f "$f"
}
flush() { [ "$1" = base ] || q "$1" "SELECT access_audit.flush('300 s')" >/dev/null; }
log_bytes() { q "$1" "SELECT pg_total_relation_size('access_audit.log_data') + pg_total_relation_size('access_audit.strings') + pg_total_relation_size('access_audit.string_sets') + pg_total_relation_size('access_audit.sessions') + pg_total_relation_size('access_audit.shapes')"; }
rs_bytes() { q "$1" "SELECT pg_total_relation_size('access_audit.row_sets') + pg_total_relation_size('access_audit.row_set_reads')"; }
nrec() { q "$1" "SELECT coalesce(max(seq), 0) FROM access_audit.log_data"; }

# storage of one workload's records: log bytes and row-set bytes per record
storage() {
	local r=$1 c=$2 w=$3 b0=$4 s0=$5 n0=$6
	local b1 s1 n1 d
	q "$c" "CHECKPOINT" >/dev/null
	b1=$(log_bytes "$c"); n1=$(nrec "$c")
	d=$((n1 - n0 > 0 ? n1 - n0 : 1))
	rec "$r" "$c" "log_bytes_per_rec_$w" $(((b1 - b0) / d))
	if [ "$c" = rows ]; then
		s1=$(rs_bytes "$c")
		rec "$r" "$c" "rowset_bytes_per_rec_$w" $(((s1 - s0) / d))
	fi
}

for r in $(seq 1 "$ROUNDS"); do
	for c in base aa rows; do
		q "$c" "SELECT count(*) FROM customers" >/dev/null
		for w in w1 w2; do
			flush "$c"
			if [ "$c" != base ]; then b0=$(log_bytes "$c"); n0=$(nrec "$c"); s0=0; [ "$c" = rows ] && s0=$(rs_bytes "$c"); fi
			read -r tps n _ <<<"$(pgb "$c" $w.sql -M prepared -c 2 -j 2 -T "$T")"
			rec "$r" "$c" "$w" "$tps"
			t0=$(date +%s.%N); flush "$c"; t1=$(date +%s.%N)
			rec "$r" "$c" "${w}_drain_s" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", b - a}')"
			[ "$c" = base ] || storage "$r" "$c" "$w" "$b0" "$s0" "$n0"
			log "round $r $c $w $tps tps"
		done
		if [ "$c" != base ]; then b0=$(log_bytes "$c"); n0=$(nrec "$c"); s0=0; [ "$c" = rows ] && s0=$(rs_bytes "$c"); fi
		for k in 1 2 3; do
			read -r _ _ lat <<<"$(pgb "$c" w4.sql -M simple -c 1 -t 1)"
			rec "$r" "$c" w4_s "$(awk -v l="$lat" 'BEGIN{printf "%.4f", l/1000}')"
		done
		flush "$c"
		[ "$c" = base ] || storage "$r" "$c" w4 "$b0" "$s0" "$n0"
		log "round $r $c w4 done"
	done
done

# who_read latency over the rounds' log, then over synthetic row sets
whoread_ms() {
	as "$PSQLB -p $(port_of rows) -d benchrows -tA" <<EOF | tail -1
CREATE OR REPLACE FUNCTION pg_temp.t(n int) RETURNS float8 LANGUAGE plpgsql AS \$\$
DECLARE t0 timestamptz; k bigint; c bigint; total float8 := 0;
BEGIN
  FOR i IN 1..n LOOP
    k := 1 + (random() * ($ROWS - 1))::bigint;
    t0 := clock_timestamp();
    SELECT count(*) INTO c FROM access_audit.who_read('customers', k);
    total := total + extract(epoch FROM clock_timestamp() - t0) * 1000;
  END LOOP;
  RETURN round((total / n)::numeric, 3);
END \$\$;
SELECT pg_temp.t(50);
EOF
}
recs=$(nrec rows)
rec 0 rows log_records "$recs"
rec 0 rows row_set_chunks "$(q rows "SELECT count(*) FROM access_audit.row_sets")"
ms=$(whoread_ms); rec 0 rows whoread_ms_log "$ms"
log "who_read over $recs records: $ms ms"
log "synthesizing ${SYNTH_M} M row sets"
for m in $(seq 1 "$SYNTH_M"); do
	as "$PSQLB -p $(port_of rows) -d benchrows" <<EOF
SET access_audit.maintenance = on;
INSERT INTO access_audit.row_sets (id, link, relation, chunk, lo, hi, n, data, hash)
SELECT 1000000000 + ($m - 1) * 1000000 + g, -($m * 1000000 + g), 'public.customers', 1, k, k, 1, '\x0000', '\x00'
  FROM generate_series(1, 1000000) g, LATERAL (SELECT 1 + (random() * ($ROWS - 1) + g * 0)::bigint AS k) x;
INSERT INTO access_audit.row_set_reads (seq, link, hash)
SELECT -($m * 1000000 + g), -($m * 1000000 + g), '\x00' FROM generate_series(1, 1000000) g;
EOF
done
q rows "VACUUM ANALYZE access_audit.row_sets" >/dev/null
q rows "VACUUM ANALYZE access_audit.row_set_reads" >/dev/null
rec 0 rows row_set_chunks_synth "$(q rows "SELECT count(*) FROM access_audit.row_sets")"
ms=$(whoread_ms); rec 0 rows whoread_ms_synth "$ms"
log "who_read over ${SYNTH_M} M more row sets: $ms ms"
rec 0 rows rowsets_total_bytes "$(rs_bytes rows)"

python3 - "$RAW" <<'PYEOF' | tee "$OUT/summary.txt"
import sys, statistics, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    r, c, m, x = line.rstrip("\n").split("\t")
    try:
        v[(c, m)].append(float(x))
    except ValueError:
        pass
med = lambda c, m: statistics.median(v[(c, m)]) if v.get((c, m)) else float("nan")
print("medians; tps for w1 (point) and w2 (100-row range), seconds per COPY for w4")
print(f"{'workload':<12}{'base':>10}{'aa':>10}{'aa+rows':>10}{'aa/base':>9}{'rows/base':>10}{'rows/aa':>9}")
for w in ("w1", "w2", "w4_s"):
    b, a, r = med("base", w), med("aa", w), med("rows", w)
    if w == "w4_s":
        print(f"{w:<12}{b:>10.3f}{a:>10.3f}{r:>10.3f}{b/a:>9.2f}{b/r:>10.2f}{a/r:>9.2f}")
    else:
        print(f"{w:<12}{b:>10.0f}{a:>10.0f}{r:>10.0f}{a/b:>9.2f}{r/b:>10.2f}{r/a:>9.2f}")
print("writer drain after a run (s): " + ", ".join(f"{c} {w} {med(c, w + '_drain_s'):.2f}" for c in ("aa", "rows") for w in ("w1", "w2")))
print("storage bytes per record (log: log_data + dictionaries; row sets: row_sets + row_set_reads, with indexes)")
for w in ("w1", "w2", "w4"):
    print(f"  {w}: log {med('aa', 'log_bytes_per_rec_' + w):.0f} (aa) / {med('rows', 'log_bytes_per_rec_' + w):.0f} (rows); row sets {med('rows', 'rowset_bytes_per_rec_' + w):.0f}")
print(f"who_read: {med('rows', 'whoread_ms_log'):.3f} ms over {med('rows', 'log_records'):.0f} records ({med('rows', 'row_set_chunks'):.0f} chunks); "
      f"{med('rows', 'whoread_ms_synth'):.3f} ms with {med('rows', 'row_set_chunks_synth'):.0f} chunks; row sets total {med('rows', 'rowsets_total_bytes')/1e6:.0f} MB")
PYEOF
echo "results: $OUT"
