#!/bin/sh
# bench/detect_speed.sh: time access_audit.rank_exporters at full size.
#
# Starts a throwaway PostgreSQL 15 server of PGBIN's installation (as a
# non-root user when run as root) with access_audit preloaded, creates the
# extension (rank_exporters needs its C library: run
# "make PG_CONFIG=$PGBIN/pg_config install" first), loads
# test/gen_population.sql, generates N_ACTORS actors x
# N_DAYS days (seed 7) into a roll-up-shaped table, runs
# rank_exporters(source => that table) once to warm the cache, then RUNS
# more times for each window and prints every timing and the median.
#
# Usage: bench/detect_speed.sh
# Env:   PGBIN (default /usr/lib/postgresql/15/bin), PORT (default 54372),
#        N_ACTORS (10000), N_DAYS (90), RUNS (3), RUNAS (aa_dev),
#        TMPDIR (where the server's directory is made; default /tmp)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PORT:-54372}
N_ACTORS=${N_ACTORS:-10000}
N_DAYS=${N_DAYS:-90}
RUNS=${RUNS:-3}
RUNAS=${RUNAS:-aa_dev}

DIR=$(mktemp -d ${TMPDIR:-/tmp}/detect_speed.XXXXXX)
chmod 755 "$DIR"
if [ "$(id -u)" = 0 ]; then
	id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
	chown "$RUNAS" "$DIR"
	as() { su "$RUNAS" -s /bin/sh -c "$*"; }
else
	as() { sh -c "$*"; }
fi
cleanup() {
	as "$PGBIN/pg_ctl -D $DIR/data -m fast stop" >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM

as "$PGBIN/initdb -D $DIR/data -A trust" >/dev/null
as "$PGBIN/pg_ctl -D $DIR/data -l $DIR/log -w -o \"-p $PORT -c listen_addresses='' -c unix_socket_directories=$DIR -c shared_preload_libraries=access_audit\" start" >/dev/null
PSQL="$PGBIN/psql -X -q -h $DIR -p $PORT -d postgres -v ON_ERROR_STOP=1"
cp "$REPO/test/gen_population.sql" "$DIR/"
chmod 644 "$DIR"/*.sql
as "$PSQL -c 'CREATE EXTENSION access_audit' -f $DIR/gen_population.sql -c 'CREATE TABLE ev (LIKE access_audit.actor_daily INCLUDING ALL)'" 2>&1 | grep -v NOTICE || true
as "$PSQL -t -A -c \"SET client_min_messages = warning; SELECT count(*) FROM access_audit_test.gen_population(7, 'ev', $N_ACTORS, $N_DAYS)\" -c 'ANALYZE ev'" >/dev/null

# psql cannot loop; write the timed runs out instead.
cat > "$DIR/time.sql" <<SQL
SET client_min_messages = warning;
SELECT count(*) AS nrows FROM ev \\gset
SELECT count(*) FROM access_audit.rank_exporters(:'win', '30 days', '2024-06-28 12:00', 'ev') \\g /dev/null
CREATE TEMP TABLE t (ms float8);
SQL
i=0
while [ $i -lt "$RUNS" ]; do
	cat >> "$DIR/time.sql" <<'SQL'
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM access_audit.rank_exporters(:'win', '30 days', '2024-06-28 12:00', 'ev') \g /dev/null
INSERT INTO t SELECT extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000;
SQL
	i=$((i + 1))
done
cat >> "$DIR/time.sql" <<'SQL'
SELECT format('rank_exporters, window %s, %s actors x %s days (%s roll-up rows): median %s ms of %s runs (%s)',
			  :'win', :n, :days, :nrows,
			  round(percentile_disc(0.5) WITHIN GROUP (ORDER BY ms)), count(*),
			  string_agg(round(ms)::text || ' ms', ', '))
  FROM t;
SQL
for w in '1 day' '7 days'; do
	as "$PSQL -t -A -v win='$w' -v n=$N_ACTORS -v days=$N_DAYS -f $DIR/time.sql"
done
