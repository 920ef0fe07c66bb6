#!/bin/sh
# bench/detect_eval.sh: evaluate access_audit.rank_exporters on the seeded
# synthetic population (test/gen_population.sql).
#
# Starts a throwaway PostgreSQL 15 server of PGBIN's installation (as a
# non-root user when run as root) with access_audit preloaded and creates the
# extension (install it there first: make PG_CONFIG=$PGBIN/pg_config
# install), then for each seed ranks 1,000 actors x 90 days and prints
# precision@10/@20, recall@20, the alerts check_exports would raise at its
# default threshold on the injection day (precision, injected alerted of all
# injected), false alerts per 1,000 actors per day over the FP_DAYS days up
# to it, every injected actor's rank, the legitimate actors in the top 10,
# the kinds of the false alerts and the injected not alerted with their
# scores.  Finally it times rank_exporters at
# 10,000 actors x 90 days.
#
# Before and after: with BEFORE=<git revision>, that revision of the
# extension is first built into a private copy of PGBIN's installation
# (under the temporary directory) and evaluated the same way, on the same
# generator (this tree's), so the two tables compare the scoring alone.
#
# Usage: bench/detect_eval.sh [seeds...]    (default: 1 2 3 4 5)
# Env:   PGBIN (default /usr/lib/postgresql/15/bin), PORT (default 55433),
#        N_ACTORS (1000), N_DAYS (90), BIG_ACTORS (10000; 0 skips the timing),
#        THRESHOLD (check_exports' default), FP_DAYS (10), BEFORE (unset),
#        SWEEP (unset; a comma-separated list of thresholds: also prints the
#        alert recall and false alerts at each, over all seeds)
set -eu

REPO=$(cd "$(dirname "$0")/.." && pwd)
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PORT=${PORT:-55433}
N_ACTORS=${N_ACTORS:-1000}
N_DAYS=${N_DAYS:-90}
BIG_ACTORS=${BIG_ACTORS:-10000}
SEEDS=${*:-1 2 3 4 5}
RUNAS=${RUNAS:-aa_helper}
BEFORE=${BEFORE:-}
SWEEP=${SWEEP:-}

DIR=$(mktemp -d ${TMPDIR:-/tmp}/detect_eval.XXXXXX)
chmod 755 "$DIR"
if [ "$(id -u)" = 0 ]; then
	id "$RUNAS" >/dev/null 2>&1 || useradd -m "$RUNAS"
	chown "$RUNAS" "$DIR"
	as() { su "$RUNAS" -s /bin/sh -c "$*"; }
else
	as() { sh -c "$*"; }
fi
BIN=
cleanup() {
	[ -z "$BIN" ] || as "$BIN/pg_ctl -D $DIR/data -m fast stop" >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap cleanup EXIT INT TERM
cp "$REPO/test/gen_population.sql" "$DIR/"

# evaluate BINDIR LABEL: one throwaway server of that installation
evaluate() {
	BIN=$1
	rm -rf "$DIR/data"
	as "$BIN/initdb -D $DIR/data -A trust" >/dev/null
	as "$BIN/pg_ctl -D $DIR/data -l $DIR/log -w -o \"-p $PORT -c listen_addresses='' -c unix_socket_directories=$DIR -c shared_preload_libraries=access_audit\" start" >/dev/null
	PSQL="$BIN/psql -X -q -h $DIR -p $PORT -d postgres -v ON_ERROR_STOP=1"
	as "$PSQL -c 'CREATE EXTENSION access_audit' -f $DIR/gen_population.sql -c 'CREATE TABLE ev (LIKE access_audit.actor_daily INCLUDING ALL)'" 2>&1 | grep -v NOTICE || true

	THR=${THRESHOLD:-$(as "$PSQL -t -A -c \"SELECT coalesce((regexp_match(pg_get_function_arguments('access_audit.check_exports'::regproc), 'threshold double precision DEFAULT ([0-9.]+)'))[1], '4')\"")}
	FP_DAYS=${FP_DAYS:-10}
	echo "== $2"
	echo "rank_exporters on $N_ACTORS actors x $N_DAYS days, injected exfiltrators act on 2024-06-28, window 1 day, baseline 30 days"
	echo "alerts: score > $THR (check_exports' default threshold); false alerts counted over the $FP_DAYS days ending 2024-06-28"
	echo "seed|p@10|p@20|recall@20|alert precision|injected alerted|false alerts/1000 actors/day|injected ranks|legit in top 10|kinds of false alerts|injected not alerted (score)"
	for s in $SEEDS; do
		as "$PSQL -t -A -v seed=$s -v n=$N_ACTORS -v days=$N_DAYS -v thr=$THR -v fp_days=$FP_DAYS -v sweep='{$SWEEP}' -f $DIR/seed.sql"
	done | tee "$DIR/all" | grep -v '^sweep|' | tee "$DIR/rows"
	grep '^sweep|' "$DIR/all" >"$DIR/sweep" || true
	# over all seeds: mean precision@10, injected alerted, false alerts
	[ -z "$SWEEP" ] || awk -F'|' '$1 == "sweep" { hit[$2] += $3; inj[$2] += $4; fp[$2] += $5; n[$2]++ }
		END { for (t in n) printf "threshold %s: alert recall %d/%d = %.2f, %.2f false alerts per 1,000 actors per day\n",
			t, hit[t], inj[t], hit[t] / inj[t], fp[t] / n[t] }' "$DIR/sweep" | sort
	awk -F'|' '{ n++; p10 += $2; split($6, a, "/"); hit += a[1]; inj += a[2]; fp += $7 }
		END { if (n) printf "all %d seeds: precision@10 %.2f, alert recall %d/%d = %.2f, %.2f false alerts per 1,000 actors per day\n",
			n, p10 / n, hit, inj, hit / inj, fp / n }' "$DIR/rows"
	[ "$BIG_ACTORS" = 0 ] || as "$PSQL -t -A -v n=$BIG_ACTORS -f $DIR/big.sql"
	as "$BIN/pg_ctl -D $DIR/data -m fast stop" >/dev/null
	BIN=
}

cat > "$DIR/seed.sql" <<'SQL'
SET client_min_messages = warning;
CREATE TEMP TABLE ro AS SELECT * FROM access_audit_test.gen_population(:seed, 'ev', :n, :days);
ANALYZE ev;
-- the ranking of the injection day, and of the FP_DAYS days before it
CREATE TEMP TABLE rk AS
SELECT d.day, r.*
  FROM generate_series(date '2024-06-28' - (:fp_days - 1), date '2024-06-28', '1 day') d(day)
 CROSS JOIN LATERAL access_audit.rank_exporters('1 day', '30 days', d.day + time '12:00', 'ev') r;
CREATE TEMP TABLE rk1 AS SELECT * FROM rk WHERE day = '2024-06-28';
SELECT format('%s|%s|%s|%s|%s|%s/%s|%s|%s|%s|%s|%s', :seed,
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.rank <= 10)) / 10.0, 2),
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.rank <= 20)) / 20.0, 2),
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.rank <= 20))::numeric
			 / nullif(count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'), 0), 2),
	   -- alerts at the default threshold on the injection day
	   round((count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.score > :thr))::numeric
			 / nullif(count(*) FILTER (WHERE rk1.score > :thr), 0), 2),
	   count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.score > :thr),
	   count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'),
	   -- false alerts per 1,000 actors per day over the last fp_days days
	   (SELECT round(count(*) * 1000.0 / :n / :fp_days, 2)
		  FROM rk JOIN ro r2 USING (actor) WHERE r2.kind NOT LIKE 'exfil-%' AND rk.score > :thr),
	   string_agg(replace(ro.actor, 'exfil-', '') || '=' || rk1.rank, ' ' ORDER BY ro.actor)
		 FILTER (WHERE ro.kind LIKE 'exfil-%'),
	   coalesce(string_agg(ro.kind || ':' || ro.actor, ' ' ORDER BY rk1.rank)
		 FILTER (WHERE ro.kind NOT LIKE 'exfil-%' AND rk1.rank <= 10), '-'),
	   coalesce((SELECT string_agg(r2.kind, ',' ORDER BY r2.kind)
				   FROM rk JOIN ro r2 USING (actor) WHERE r2.kind NOT LIKE 'exfil-%' AND rk.score > :thr), '-'),
	   -- the injected not alerted, with their scores
	   coalesce(string_agg(replace(ro.actor, 'exfil-', '') || '=' || round(rk1.score::numeric, 2), ' ' ORDER BY ro.actor)
		 FILTER (WHERE ro.kind LIKE 'exfil-%' AND NOT coalesce(rk1.score > :thr, false)), '-'))
  FROM ro LEFT JOIN rk1 ON rk1.actor = ro.actor;
-- with SWEEP: injected alerted, injected and false alerts per 1,000 actors
-- per day at each threshold listed
SELECT format('sweep|%s|%s|%s|%s', t,
	   count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk1.score > t),
	   count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'),
	   (SELECT round(count(*) * 1000.0 / :n / :fp_days, 2)
		  FROM rk JOIN ro r2 USING (actor) WHERE r2.kind NOT LIKE 'exfil-%' AND rk.score > t))
  FROM unnest(:'sweep'::float8[]) t CROSS JOIN ro LEFT JOIN rk1 ON rk1.actor = ro.actor
 GROUP BY t ORDER BY t;
SQL

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

if [ -n "$BEFORE" ]; then
	# a private copy of the installation, so the old build replaces nothing
	ROOT=$(cd "$PGBIN/../../../.." && pwd)
	mkdir -p "$DIR/before/inst" "$DIR/before/src"
	cp -a "$ROOT/." "$DIR/before/inst/"
	OLDBIN=$DIR/before/inst${PGBIN#"$ROOT"}
	git -C "$REPO" archive "$BEFORE" | tar -x -C "$DIR/before/src"
	make -s -C "$DIR/before/src" PG_CONFIG="$OLDBIN/pg_config" >/dev/null
	make -s -C "$DIR/before/src" PG_CONFIG="$OLDBIN/pg_config" install >/dev/null
	[ "$(id -u)" != 0 ] || chown -R "$RUNAS" "$DIR/before"
	evaluate "$OLDBIN" "before: $BEFORE"
	echo
fi
evaluate "$PGBIN" "after: the extension installed in $PGBIN"
