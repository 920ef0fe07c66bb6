#!/bin/sh
# bench/detect_eval.sh: evaluate access_audit.rank_exporters on the seeded
# synthetic population (test/gen_population.sql).
#
# Starts a throwaway PostgreSQL 15 server of PGBIN's installation (as a
# non-root user when run as root) with access_audit preloaded and creates the
# extension (install it there first: make PG_CONFIG=$PGBIN/pg_config
# install), then for
# each seed ranks 1,000 actors x 90 days and prints precision@10/@20,
# recall@10/@20, every injected actor's rank and the legitimate heavy users
# in the top 10.  Finally it times rank_exporters at 10,000 actors x 90 days.
#
# Usage: bench/detect_eval.sh [seeds...]    (default: 1 2 3 4 5)
# Env:   PGBIN (default /usr/lib/postgresql/15/bin), PORT (default 55433),
#        N_ACTORS (1000), N_DAYS (90), BIG_ACTORS (10000)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PORT:-55433}
N_ACTORS=${N_ACTORS:-1000}
N_DAYS=${N_DAYS:-90}
BIG_ACTORS=${BIG_ACTORS:-10000}
SEEDS=${*:-1 2 3 4 5}
RUNAS=${RUNAS:-aa_helper}

DIR=$(mktemp -d ${TMPDIR:-/tmp}/detect_eval.XXXXXX)
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
as "$PSQL -c 'CREATE EXTENSION access_audit' -f $DIR/gen_population.sql -c 'CREATE TABLE ev (LIKE access_audit.actor_daily INCLUDING ALL)'" 2>&1 | grep -v NOTICE || true

cat > "$DIR/seed.sql" <<'SQL'
SET client_min_messages = warning;
CREATE TEMP TABLE ro AS SELECT * FROM access_audit_test.gen_population(:seed, 'ev', :n, :days);
ANALYZE ev;
CREATE TEMP TABLE rk AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev');
SELECT format('%s|%s|%s|%s|%s|%s|%s|%s|%s', :seed,
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 10)) / 10.0, 2),
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 20)) / 20.0, 2),
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 10))::numeric
			 / nullif(count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'), 0), 2),
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 20))::numeric
			 / nullif(count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'), 0), 2),
	   string_agg(replace(ro.actor, 'exfil-', '') || '=' || rk.rank, ' ' ORDER BY ro.actor)
		 FILTER (WHERE ro.kind LIKE 'exfil-%'),
	   coalesce(string_agg(ro.kind || ':' || ro.actor, ' ' ORDER BY rk.rank)
		 FILTER (WHERE ro.kind IN ('service', 'power', 'quarter_end', 'team_double', 'new_hire')
				 AND rk.rank <= 10), '-'),
	   round(min(rk.score) FILTER (WHERE ro.kind LIKE 'exfil-%')::numeric, 2),
	   round(max(rk.score) FILTER (WHERE ro.kind NOT LIKE 'exfil-%')::numeric, 2))
  FROM ro LEFT JOIN rk ON rk.actor = ro.actor;
SQL

echo "rank_exporters on $N_ACTORS actors x $N_DAYS days, 10 injected exfiltrators, window 1 day, baseline 30 days"
echo "seed|p@10|p@20|recall@10|recall@20|injected ranks|legit heavy users in top 10|min injected score|max legit score"
for s in $SEEDS; do
	as "$PSQL -t -A -v seed=$s -v n=$N_ACTORS -v days=$N_DAYS -f $DIR/seed.sql"
done

cat > "$DIR/big.sql" <<'SQL'
SET client_min_messages = warning;
SELECT count(*) FROM access_audit_test.gen_population(7, 'ev', :n, 90) \g /dev/null
ANALYZE ev;
SELECT count(*) AS rows FROM ev \gset
SELECT count(*) FROM access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') \g /dev/null
SELECT clock_timestamp() AS t0 \gset
SELECT count(*) FROM access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') \g /dev/null
SELECT clock_timestamp() AS t1 \gset
SELECT count(*) FROM access_audit.rank_exporters('7 days', '30 days', '2024-06-28 12:00', 'ev') \g /dev/null
SELECT clock_timestamp() AS t2 \gset
SELECT format('rank_exporters at %s actors x 90 days (%s roll-up rows): %s ms (1-day window), %s ms (7-day window)',
			  :n, :rows,
			  round(extract(epoch FROM (:'t1'::timestamptz - :'t0'::timestamptz)) * 1000),
			  round(extract(epoch FROM (:'t2'::timestamptz - :'t1'::timestamptz)) * 1000));
SQL
as "$PSQL -t -A -v n=$BIG_ACTORS -f $DIR/big.sql"
