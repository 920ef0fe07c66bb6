#!/bin/bash
# demo.sh: set up access_audit and watch it work.
#
#   ./demo.sh            install missing packages, build, install, start a
#                        throwaway server, play a day in a shop, print what
#                        was recorded and the ranking, stop the server
#   ./demo.sh --keep     the same, but leave the server running and print
#                        how to connect
#   ./demo.sh --stop     stop a server left running by --keep, remove its data
#
# The server runs as the non-root OS user aa_test (AA_USER; created when run
# as root) with its data under /tmp/access_audit_demo (AA_DEMO_DIR), a unix
# socket there and 127.0.0.1 on port 55480 (AA_DEMO_PORT, or the next free
# port).  Every run starts from scratch: an old demo server is stopped and
# its data removed first.

set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=test/lib/common.sh
. "$ROOT/test/lib/common.sh"

DEMO_DIR=${AA_DEMO_DIR:-/tmp/access_audit_demo}
DATA=$DEMO_DIR/data
SOCK=$DEMO_DIR/sock
PORT=${AA_DEMO_PORT:-55480}
PACKAGES=(postgresql-15 postgresql-server-dev-15 libkrb5-dev make gcc)

keep=0
case "${1:-}" in
	--keep) keep=1 ;;
	--stop)
		aa_pg_stop "$DATA"
		rm -rf "$DEMO_DIR"
		echo "demo server stopped, $DEMO_DIR removed"
		exit 0
		;;
	"") ;;
	*)
		echo "usage: $0 [--keep | --stop]" >&2
		exit 2
		;;
esac

started=0
finish()
{
	local rc=$?
	if [ "$started" = 1 ] && { [ "$keep" = 0 ] || [ "$rc" != 0 ]; }; then
		aa_pg_stop "$DATA"
		echo "demo server stopped (data left in $DEMO_DIR until the next run)"
	fi
	[ "$rc" = 0 ] || echo "demo failed (exit code $rc)" >&2
	exit "$rc"
}
# shellcheck disable=SC2317  # called from the EXIT trap
trap finish EXIT
trap 'exit 130' INT TERM HUP

# psql_as ROLE [psql args...]: psql into database shop as ROLE over the
# unix socket (run as the server's OS user)
psql_as()
{
	local role=$1
	shift
	(cd "$DEMO_DIR" && aa_as_user "$AA_PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -P pager=off \
		-h "$SOCK" -p "$PORT" -U "$role" -d shop "$@")
}

# show TITLE SQL: a section with the result of SQL run as the superuser
show()
{
	aa_header "$1"
	psql_as postgres -c "$2"
}

# port_busy PORT: true if something listens on 127.0.0.1:PORT
port_busy()
{
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# ---------------------------------------------------------------------------
aa_header "set up"
aa_ensure_packages "${PACKAGES[@]}"
aa_ensure_user

# an earlier demo: stop its server, drop its data
aa_pg_stop "$DATA"
rm -rf "$DEMO_DIR"

echo "building and installing access_audit"
(cd "$ROOT" && make -s PG_CONFIG="$AA_PG_CONFIG") || aa_die "build failed"
if [ -w "$("$AA_PG_CONFIG" --pkglibdir)" ]; then
	(cd "$ROOT" && make -s PG_CONFIG="$AA_PG_CONFIG" install) || aa_die "make install failed"
else
	(cd "$ROOT" && aa_as_root make -s PG_CONFIG="$AA_PG_CONFIG" install) || aa_die "make install failed"
fi

while port_busy "$PORT"; do
	PORT=$((PORT + 1))
done

mkdir -p "$DEMO_DIR"
chmod 755 "$DEMO_DIR"
if aa_is_root; then
	chown "$AA_USER:" "$DEMO_DIR"
fi
aa_new_dir "$SOCK"
echo "starting a throwaway server as OS user $AA_USER: data $DATA, port $PORT"
# trust on the socket (its directory is private), passwords on 127.0.0.1
(cd "$DEMO_DIR" && aa_as_user "$AA_PGBIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C \
	--auth-local=trust --auth-host=scram-sha-256 --no-sync) >"$DEMO_DIR/initdb.log" 2>&1 ||
	{
		cat "$DEMO_DIR/initdb.log"
		aa_die "initdb failed"
	}
# Business hours are 8-18 in the business time zone: pick the zone where it
# is about 11:00 now, so that the day's reads are in business hours (and
# the off-hours signal stays out of the ranking) whatever the hour here.
utc_hour=$(date -u +%H)
tz_offset=$(((11 - 10#$utc_hour + 24) % 24))
[ "$tz_offset" -gt 14 ] && tz_offset=$((tz_offset - 24))
if [ "$tz_offset" -gt 0 ]; then
	BUSINESS_TZ="Etc/GMT-$tz_offset"	# POSIX sign: Etc/GMT-3 is UTC+3
elif [ "$tz_offset" -lt 0 ]; then
	BUSINESS_TZ="Etc/GMT+$((-tz_offset))"
else
	BUSINESS_TZ="Etc/GMT"
fi
cat >>"$DATA/postgresql.conf" <<EOF

# demo.sh
shared_preload_libraries = 'access_audit'
access_audit.business_timezone = '$BUSINESS_TZ'
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK'
compute_query_id = on
max_worker_processes = 16
access_audit.flush_interval = 100ms
fsync = off
EOF
(cd "$DEMO_DIR" && aa_pg_start "$DATA") || exit 1
started=1

# ---------------------------------------------------------------------------
echo "creating database shop: 20,000 customers; full_name, phone and email tagged"
(cd "$DEMO_DIR" && aa_as_user "$AA_PGBIN/createdb" -h "$SOCK" -p "$PORT" -U postgres shop) ||
	exit 1
psql_as postgres <<'SQL' || exit 1
SET client_min_messages = warning;
CREATE EXTENSION access_audit;

CREATE TABLE customers (
    id        int PRIMARY KEY,
    full_name text NOT NULL,
    phone     text NOT NULL,
    email     text NOT NULL,
    city      text NOT NULL
);
INSERT INTO customers
SELECT g,
       f.name || ' ' || l.name,
       '+33 6 ' || lpad((g * 7919 % 100000000)::text, 8, '0'),
       lower(f.name || '.' || l.name || g || '@example.com'),
       (ARRAY['Paris', 'Lyon', 'Lille', 'Nantes', 'Nice', 'Rennes', 'Toulouse', 'Bordeaux'])[1 + g % 8]
  FROM generate_series(1, 20000) g,
       LATERAL (SELECT (ARRAY['Anna', 'Marc', 'Lea', 'Hugo', 'Chloe', 'Louis', 'Emma', 'Paul',
                              'Jade', 'Noah', 'Ines', 'Lucas'])[1 + g % 12] AS name) f,
       LATERAL (SELECT (ARRAY['Martin', 'Bernard', 'Dubois', 'Thomas', 'Robert', 'Petit',
                              'Durand', 'Leroy', 'Moreau', 'Simon', 'Laurent'])[1 + (g / 12) % 11] AS name) l;
CREATE INDEX ON customers (phone);
ANALYZE customers;

-- tag the sensitive columns: from now on every read of them is recorded
SECURITY LABEL FOR access_audit ON COLUMN customers.full_name IS 'pii:name';
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii:phone';
SECURITY LABEL FOR access_audit ON COLUMN customers.email IS 'pii:email';

-- the employees: one login role each, allowed to read customers
DO $$
DECLARE
    e text;
BEGIN
    FOREACH e IN ARRAY ARRAY['alice', 'bob', 'carol', 'dave', 'erin', 'mallory'] LOOP
        EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L', e, e);
        EXECUTE format('GRANT SELECT ON customers TO %I', e);
    END LOOP;
END
$$;
SQL

# ---------------------------------------------------------------------------
# A history for the ranking.  The day below is the first this server has
# seen, so rank_exporters would have no baseline; the audit tables are
# append-only, so instead of writing into access_audit.actor_daily the demo
# keeps 30 days of ordinary history in its own table of the same shape
# (demo_history) and ranks with source => 'demo_history'.
psql_as postgres <<'SQL' || exit 1
CREATE TABLE demo_history (LIKE access_audit.actor_daily);
INSERT INTO demo_history (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
SELECT day, e, 'public.customers', n, n, n,
       CASE WHEN extract(isodow FROM day) >= 6 THEN n ELSE 0 END
  FROM unnest(ARRAY['alice', 'bob', 'carol', 'dave', 'erin', 'mallory']) e,
       generate_series(1, 30) d,
       LATERAL (SELECT access_audit.business_day(now()) - d AS day,
                       4 + abs(hashtext(e || d)) % 9 AS n) r;
SQL
echo "seeded 30 days of ordinary history (4-12 customers a day each, weekends off-hours) into table demo_history"
echo "(business hours 8-18 in time zone $BUSINESS_TZ, where it is about 11:00 now: today's reads are in business hours)"
# The zone fixes the hour, not the weekday: weekends are outside business
# hours all day, whatever the zone.
if [ "$(TZ=$BUSINESS_TZ date +%u)" -ge 6 ]; then
	echo "(today is a weekend day there, and weekends count as outside business hours: today's reads are off-hours)"
fi

# ---------------------------------------------------------------------------
aa_header "a day in the shop"

# employee ROLE APP: run the statements on stdin as ROLE, one record each
employee()
{
	local role=$1 app=$2
	shift 2
	PGAPPNAME=$app psql_as "$role" -v ON_ERROR_STOP=0 "$@" >/dev/null 2>&1
}

employee alice crm-desk <<'SQL'
SELECT full_name, phone FROM customers WHERE id = 1042;
SELECT full_name, phone FROM customers WHERE id = 7;
SELECT full_name, phone, email FROM customers WHERE id = 15230;
SELECT full_name, phone FROM customers WHERE id = 388;
SQL
echo "alice   (crm-desk)  looked up 4 customers by id"

# bob works over TCP with a password, like a desktop client
(cd "$DEMO_DIR" && PGPASSWORD=bob PGAPPNAME=crm-desk aa_as_user "$AA_PGBIN/psql" -X -q \
	-h 127.0.0.1 -p "$PORT" -U bob -d shop >/dev/null 2>&1) <<'SQL'
SELECT id, city FROM customers WHERE phone = '+33 6 00079190';
SELECT full_name, email FROM customers WHERE id = 10;
SELECT full_name FROM customers WHERE id = 11;
SQL
echo "bob     (crm-desk)  found a customer by phone number (a WHERE-only read), then read 2 more (over 127.0.0.1)"

employee carol support <<'SQL'
SELECT full_name, email FROM customers WHERE id IN (120, 121, 122, 123, 124);
SELECT city, count(*) FROM customers GROUP BY city;
SELECT phone::int FROM customers WHERE id = 12;
SQL
echo "carol   (support)   read 5 customers, counted customers per city (untagged: not recorded), one statement failed"

employee dave marketing <<'SQL'
SELECT id, city FROM customers WHERE email = 'lea.martin2@example.com';
SELECT count(*) FROM customers WHERE email LIKE 'hugo.dubois%' AND city = 'Nantes';
SQL
echo "dave    (marketing) probed emails in WHERE clauses only"

employee erin crm-desk <<'SQL'
SELECT full_name, phone FROM customers WHERE id = 501;
SELECT full_name, phone FROM customers WHERE id = 502;
SELECT full_name, email FROM customers WHERE id = 17777;
SQL
echo "erin    (crm-desk)  looked up 3 customers by id"

employee mallory psql <<'SQL'
SELECT full_name, phone FROM customers WHERE id = 300;
SELECT full_name, phone FROM customers WHERE id = 301;
COPY (SELECT full_name, phone, email FROM customers ORDER BY id) TO STDOUT WITH (FORMAT csv);
SELECT full_name, phone FROM customers WHERE city = 'Lyon' LIMIT 1500;
SQL
echo "mallory (psql)      looked up 2 customers, then exported all 20,000 (COPY ... TO STDOUT) and 1,500 more"

psql_as postgres -At -c 'SELECT access_audit.flush()' >/dev/null || exit 1
# today's roll-up joins the seeded history
psql_as postgres -c 'INSERT INTO demo_history SELECT * FROM access_audit.actor_daily' >/dev/null || exit 1

# ---------------------------------------------------------------------------
show "recorded reads (access_audit.reads)" "
SELECT seq, actor, application_name AS app, command,
       (SELECT string_agg(split_part(c, '.', 3), ',') FROM unnest(columns) c) AS columns,
       (SELECT string_agg(split_part(c, '.', 3), ',') FROM unnest(predicate_columns) c) AS in_where,
       rows, tagged_rows, outcome,
       CASE WHEN length(regexp_replace(query, '\s+', ' ', 'g')) > 60
            THEN left(regexp_replace(query, '\s+', ' ', 'g'), 59) || '…'
            ELSE regexp_replace(query, '\s+', ' ', 'g') END AS query
  FROM access_audit.reads
 ORDER BY seq"

show "tag changes (access_audit.tag_changes)" "
SELECT seq, changed_by, relation, \"column\", old_tag, new_tag FROM access_audit.tag_changes ORDER BY seq"

show "today per employee (access_audit.actor_daily)" "
SELECT actor, relation, statements, rows, tagged_rows, off_hours_rows
  FROM access_audit.actor_daily ORDER BY greatest(rows, tagged_rows) DESC, actor"

aa_header "queue and writer (access_audit.stats)"
psql_as postgres -x -c 'SELECT * FROM access_audit.stats'

has_rank=$(psql_as postgres -At -c "SELECT count(*) FROM pg_catalog.pg_proc p
	JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
	WHERE n.nspname = 'access_audit' AND p.proname = 'rank_exporters'") || exit 1
aa_header "ranking of employees by abnormal export volume (access_audit.rank_exporters)"
if [ "$has_rank" != 0 ]; then
	echo "(source => 'demo_history': today's access_audit.actor_daily plus 30 seeded days of history)"
	psql_as postgres -c "
SELECT rank, actor, volume, round(score::numeric, 2) AS score, reason
  FROM access_audit.rank_exporters(source => 'demo_history')
 ORDER BY rank"
else
	echo "ranking is not installed yet (access_audit.rank_exporters does not exist in this build)"
fi

show "hash chain (access_audit.verify())" "SELECT * FROM access_audit.verify()"

aa_header "the analyst's report (access_audit.report())"
if psql_as postgres -At -c "SELECT access_audit.report(source => 'demo_history')" \
	>"$DEMO_DIR/report.html"; then
	echo "written to $DEMO_DIR/report.html: open it in a browser"
	echo "(source => 'demo_history', as for the ranking; on a real server: psql -XAtc \"SELECT access_audit.report()\" shop > report.html)"
else
	echo "access_audit.report() is not installed in this build"
fi

# ---------------------------------------------------------------------------
aa_header "connect"
if [ "$keep" = 1 ]; then
	echo "the demo server keeps running (port $PORT). Connect as the superuser:"
	echo "  psql -h $SOCK -p $PORT -U postgres shop"
	echo "or as an employee over TCP (password = role name):"
	echo "  psql 'host=127.0.0.1 port=$PORT dbname=shop user=mallory password=mallory'"
	echo "stop it with: $ROOT/demo.sh --stop"
else
	echo "run '$0 --keep' to leave the server running and connect with psql"
fi
