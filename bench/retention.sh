#!/bin/bash
# bench/retention.sh: records removed per second by access_audit.drop_before(),
# and the WAL it writes, for the 1.0 layout (a plain log_data, retention
# deletes row by row) and the 1.1 layout (log_data range-partitioned by seq,
# retention drops whole partitions and deletes rows only in the partition the
# cut falls into), in the same run on the same server.
#
# Usage, as root from the repository root (the extension must be installed
# into the server of PGBIN; the script makes its own data directory):
#   PGBIN=/usr/lib/postgresql/15/bin bench/retention.sh [-n records] [-p partition size] [-c cut]
# Defaults: 2,000,000 records in each log, partitions of 200,000 records, and
# the cut at the time of record 1,505,000 (records share the time of their
# DO statement, 10,000 at a time, so the cut falls at the end of that
# record's 10,000: 7 whole partitions are dropped and about 110,000 rows
# deleted in the eighth).  Two databases get the same number of
# records (captured reads made by a DO loop, written by the writer): "old"
# with CREATE EXTENSION access_audit VERSION '1.0', "new" with 1.1.  Each
# then runs verify() up to the cut twice (the part of drop_before() that does
# not depend on the layout; the second run, cache warm, is timed), then drop_before() at the time of the cut record, in
# a fresh session after a CHECKPOINT; the WAL written is the difference of
# pg_current_wal_insert_lsn() around the call.  Prints one line per layout:
#   layout records_removed drop_before_s records_per_s wal_bytes verify_s
#   removal_s removal_rec_per_s
# (removal: drop_before() less the verify() it runs first, timed apart.)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
RUNAS=${RUNAS:-aa_test}
N=2000000
PSIZE=200000
CUT=1505000
while getopts n:p:c: opt; do
	case $opt in
		n) N=$OPTARG ;;
		p) PSIZE=$OPTARG ;;
		c) CUT=$OPTARG ;;
		*) echo "usage: $0 [-n records] [-p partition size] [-c cut]" >&2; exit 2 ;;
	esac
done
[ "$CUT" -lt "$N" ] || { echo "the cut must be below the number of records" >&2; exit 2; }

# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aa_retention.XXXXXX")
chown "$RUNAS" "$WORK"
PORT=${AA_RETENTION_PORT:-54360}
DATA=$WORK/data
cleanup() {
	as "$PGBIN/pg_ctl -D $DATA -m immediate stop" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

bench_initdb "$DATA" "$WORK" "$PORT" access_audit \
	"access_audit.partition_size = $PSIZE" \
	"access_audit.queue_size = 256MB" \
	"access_audit.batch_size = 20000" \
	"access_audit.flush_interval = 20ms" \
	"max_wal_size = 16GB" \
	"checkpoint_timeout = 1h"
as "$PGBIN/pg_ctl -D $DATA -l $WORK/server.log -w start" >/dev/null

psql_in() { as "$PGBIN/psql -X -q -At -v ON_ERROR_STOP=1 -h $WORK -p $PORT -d $1"; }

for layout in old new; do
	as "$PGBIN/createdb -h $WORK -p $PORT $layout"
	version=$([ $layout = old ] && echo "VERSION '1.0'" || echo "")
	psql_in $layout <<EOF
CREATE EXTENSION access_audit $version;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 1000) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
EOF
	# N records: one per statement of the loops; a record's ts is its
	# top-level statement's, so each DO of 10,000 gives one ts; a flush
	# every 200,000 keeps them within the queue
	have=$(echo "SELECT coalesce(max(seq), 0) FROM access_audit.log_data" | psql_in $layout)
	while [ "$have" -lt "$N" ]; do
		left=$(( N - have ))
		{
			for _ in $(seq 1 20); do
				[ "$left" -gt 0 ] || break
				chunk=$(( left < 10000 ? left : 10000 ))
				echo "DO \$\$ BEGIN FOR i IN 1..$chunk LOOP PERFORM phone FROM customers WHERE id = 1 + i % 1000; END LOOP; END \$\$;"
				left=$(( left - chunk ))
			done
			echo "SELECT access_audit.flush('600 s');"
		} | psql_in $layout >/dev/null
		have=$(echo "SELECT coalesce(max(seq), 0) FROM access_audit.log_data" | psql_in $layout)
	done
done

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
printf '%-6s %15s %14s %14s %14s %9s %10s %16s\n' layout records_removed drop_before_s records_per_s wal_bytes verify_s removal_s removal_rec_per_s
for layout in old new; do
	echo "CHECKPOINT" | psql_in $layout
	out=$(psql_in $layout <<EOF
SET access_audit.maintenance = on;
SELECT ts + interval '1 microsecond' AS cut_ts FROM access_audit.log_data WHERE seq = $CUT \gset
SELECT ok FROM access_audit.verify(NULL, $CUT) \gset
SELECT extract(epoch FROM clock_timestamp()) AS v0 \gset
SELECT ok FROM access_audit.verify(NULL, $CUT) \gset
SELECT extract(epoch FROM clock_timestamp()) AS v1 \gset
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS l0, extract(epoch FROM clock_timestamp()) AS t0 \gset
SELECT access_audit.drop_before(:'cut_ts') AS removed \gset
SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0') AS wal,
       extract(epoch FROM clock_timestamp()) - :t0 AS secs \gset
SELECT :removed || ' ' || round(:secs::numeric, 3) || ' ' || round(:removed / :secs) || ' ' || :wal
       || ' ' || round((:v1 - :v0)::numeric, 3)
       || ' ' || round(greatest(:secs - (:v1 - :v0), 0.001)::numeric, 3)
       || ' ' || round(:removed / greatest(:secs - (:v1 - :v0), 0.001));
EOF
)
	read -r removed secs rate wal vsecs rsecs rrate <<<"$out"
	printf '%-6s %15s %14s %14s %14s %9s %10s %16s\n' "$layout" "$removed" "$secs" "$rate" "$wal" "$vsecs" "$rsecs" "$rrate"
done
