/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- Every change made to extension/sql/*.sql after 1.0 is repeated here, so
-- that an updated 1.0 installation ends with the same objects as a fresh 1.1
-- install.

-- ---------------------------------------------------------------------------
-- crash (core regression suite): immutable functions that are safe to run
-- in parallel workers say so (opr_sanity flags them otherwise).
ALTER FUNCTION access_audit.valid_tag(text) PARALLEL SAFE;
ALTER FUNCTION access_audit.publication_tables() PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- guard: business hours checked at use time (issue 16, item 16).  A pair of
-- access_audit.business_hours_* settings with end <= start no longer stops
-- the server at start; the roll-up falls back to 8 to 18 with a WARNING.
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._business_hours(OUT h0 int, OUT h1 int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    h0 := pg_catalog.current_setting('access_audit.business_hours_start')::int;
    h1 := pg_catalog.current_setting('access_audit.business_hours_end')::int;
    IF h1 OPERATOR(pg_catalog.<=) h0 THEN
        RAISE WARNING 'access_audit.business_hours_end (%) is not after access_audit.business_hours_start (%), using business hours 8 to 18', h1, h0
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Business hours are [start, end) in the business time zone, for example 8 to 18; fix the settings and reload.';
        h0 := 8;
        h1 := 18;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION access_audit._business_hours() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._business_hours() TO PUBLIC;

-- ---------------------------------------------------------------------------
-- guard: trust and origins (issue 16 items 6, 7, 11).  The new event
-- commands (role changes, the previous log's end, ingest registrations) are
-- not reads; tag_changes shows where a record came from; ingest() binds
-- each standby ring and origin to the role that ships it.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE VIEW access_audit.reads AS
    SELECT seq, ts, actor, login_role, effective_role, claimed_actor, client_addr,
           application_name, command, relations, columns, predicate_columns, tags,
           rows, tagged_rows, greatest(rows, tagged_rows) AS volume, outcome, duration,
           nesting_level, query, origin
      FROM access_audit.log
     WHERE command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET',
                           'GRANT ROLE', 'REVOKE ROLE', 'ALTER ROLE', 'DROP ROLE',
                           'PREVIOUS LOG', 'INGEST SOURCE');

CREATE OR REPLACE VIEW access_audit.tag_changes AS
    SELECT seq, ts, (detail::jsonb) ->> 'by' AS changed_by, login_role, effective_role, actor,
           relations[1] AS relation, columns[1] AS "column",
           (detail::jsonb) ->> 'old' AS old_tag, (detail::jsonb) ->> 'new' AS new_tag,
           (detail::jsonb) ->> 'why' AS why, outcome, query, origin
      FROM access_audit.log
     WHERE command = 'SECURITY LABEL';

-- Which role ships which standby ring (and origin): the first role to ship
-- a ring registers it; only that role (or a superuser) may ship more for it,
-- and an origin belongs to one role.  Admins may set or change the mapping.
CREATE TABLE access_audit.ingest_sources (
    ring_id       bigint PRIMARY KEY,
    origin        text NOT NULL,
    role          name NOT NULL,
    registered_at timestamptz NOT NULL
);
COMMENT ON TABLE access_audit.ingest_sources IS
    'Standby rings and the origin and role each is bound to: ingest() takes a ring''s records only from its role. Admins may edit the rows.';
GRANT SELECT, INSERT, UPDATE, DELETE ON access_audit.ingest_sources TO access_audit_admin;
GRANT SELECT ON access_audit.ingest_sources TO access_audit_reader;


-- ==== detection (issue 19): window end, cold start, calendar rhythms, drill-down ====
-- Generated from extension/sql/10_detect.sql; keep the two in step.

-- _detect_actors returns more columns: it cannot be replaced in place.
DROP FUNCTION access_audit._detect_actors(regclass, date, int, int);

/*
 * window_last_day: the last business day of a window "as of" a moment.
 * As of T means the data up to T: the day containing the instant just
 * before T.  Midnight belongs to the day that starts there, so as of
 * '2026-04-01 00:00' the window ends on March 31st; as of now() it ends
 * today, which counts with what it holds so far.
 */
CREATE OR REPLACE FUNCTION access_audit.window_last_day(as_of timestamptz)
RETURNS date
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN access_audit.business_day(as_of - interval '1 microsecond');

COMMENT ON FUNCTION access_audit.window_last_day(timestamptz) IS
'Last business day of a detection window as of a moment: the day holding the instant just before it (as of midnight, the day before; as of now(), today).';

/*
 * _detect_actors: the per-actor terms of rank_exporters over source for the
 * window of nd days ending on d1 and a baseline of nb days (C, detect.c).
 * One row per actor active in the window or in the ramp period.  Runs with
 * the caller's rights on source and access_audit.actor_groups.
 */
CREATE OR REPLACE FUNCTION access_audit._detect_actors(source regclass, d1 date, nd int, nb int)
RETURNS TABLE (actor text, grp text, bulk boolean, v float8, n_base bigint,
			   base_median float8, s_self float8, self_typ float8, self_z float8,
			   peer_typ float8, peer_z float8, ramp_z float8, ramp_excess float8,
			   recent_ratio float8, ref_typ float8, off_share float8,
			   off_share_base float8, n_rel bigint, new_share float8,
			   n_hist bigint, peer_label text, cal_uplift float8,
			   cal_label text, cal_n int, cal_occ int, cold_n int,
			   cold_z float8, cold_ratio float8, team_z float8)
AS 'MODULE_PATHNAME', 'access_audit_detect_actors'
LANGUAGE C STABLE;

COMMENT ON FUNCTION access_audit._detect_actors(regclass, date, int, int) IS
'Internal: the per-actor terms that rank_exporters combines into a score.';

/*
 * rank_exporters: score every actor active in the window (or in the last
 * weeks, for the slow-ramp term) and rank them, most abnormal first.
 *
 * Days: the window is the nd = window / 1 day business days ending just
 * before as_of (window_last_day: as of midnight, the day before; with
 * as_of = now() the current, partial day counts).  Windows that are not a
 * whole number of days are refused: the roll-up has no hours.  The baseline is the nb = ceil(baseline / 1 day)
 * days before the window.  The ramp period is the last least(28, nb) days;
 * its reference level comes from the nb days before it.
 *
 * All statistics work on y = ln(1 + volume), volume = greatest(rows,
 * tagged_rows), because daily volumes are roughly log-normal.  A robust
 * spread is s = greatest(1.4826 * MAD, 1.2533 * mean absolute deviation,
 * 0.5): the mean-absolute-deviation term and the floor keep an actor whose
 * history is the same number every day from getting an infinite z.
 *
 * Terms (each is a z in robust-SD units):
 *   self_z  the window total vs the median of the actor's own totals of the
 *           same length ending on each active baseline day (active days only:
 *           counting empty weekends made every weekend export a spike).  For
 *           1-day windows daily values are first corrected for the
 *           organisation's day-of-week effect (quiet weekends).  NULL with
 *           fewer than 3 active baseline days.  Two shared excesses are
 *           taken off: the actor's calendar rhythm (for 1-day windows: the
 *           usual excess on earlier month ends, quarter ends or the same
 *           weekday, read from up to a year back; at least 2x, two robust
 *           SDs and two occurrences) and the team's (the median self_z of
 *           the peers active in the window, when positive), so a month-end
 *           reporter or a quarter-end team is judged on what is unusual
 *           beyond their rhythm.
 *   peer_z  ln(1+window total) vs the same quantity for the actor's peer
 *           group in the same window, which cancels team-wide changes
 *           (quarter-end reports, a team doubling).  Groups with fewer than
 *           5 human actors use all human actors; with fewer than 5 peers
 *           active in the window, the group's pooled baseline is used, and
 *           without one (a new installation) all humans in the window.
 *   cold_z  for actors with under 10 active days before the window (cold
 *           start): each active day of the last 14 against the peers of
 *           that day, combined as mean(z) * sqrt(min(n, 5)).
 *   ramp_z  Page's CUSUM S_t = max(0, S_{t-1} + u_t - 0.5) over the active
 *           days of the ramp period, where u_t is the day's excess over the
 *           actor's earlier level in robust SDs (clipped to [-3, 3] so one
 *           odd day cannot make a ramp) minus the peers' median excess of the
 *           same day when positive.  The value is S at the last day; Page's
 *           alarm level is about 5.
 *
 * Combination:
 *   spike = sqrt(max(self_z, 0) * max(peer_z, 0)): an AND, so a power user
 *           who is always high (peer only) or a team-wide surge (self only)
 *           stays low.  Cold start (under 10 active days of history, which
 *           is everyone in a new installation): the peers carry the score,
 *           greatest(peer_z, cold_z, the AND above).  No peers: self_z
 *           alone, or nothing for a cold start.  Bulk users: self_z alone.
 *   slow  = 0.25 * ramp_z: a CUSUM of 13 (about three weeks of a tripled
 *           volume) reaches the alert threshold 3.2.
 *   Each is scaled by a size gate min(1, excess rows / 1,000) (the ramp by
 *   the excess over the whole ramp period / 5,000; a cold start by the
 *   larger of the window's and their average day's excess over the peers'
 *   median), so tiny absolute excesses never top the list.
 *   score = max(spike, slow) + context * min(1, max(self_z, 0) / 3) * size
 *   gate, where context = 2.0 * rise in the off-hours share of rows over
 *   the actor's baseline + 1.5 * share of window rows from relations the
 *   actor had not read in the look-back (peer_z stands in for self_z without
 *   history).  Context only amplifies an excess over the actor's own usual.
 */
CREATE OR REPLACE FUNCTION access_audit.rank_exporters(
	"window" interval DEFAULT '1 day',
	baseline interval DEFAULT '30 days',
	as_of timestamptz DEFAULT now(),
	source regclass DEFAULT 'access_audit.actor_daily')
RETURNS TABLE (rank int, actor text, peer_group text, volume bigint,
			   baseline_median float8, baseline_mad float8, self_z float8,
			   peer_z float8, ramp_z float8, score float8, reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- The query below joins nothing; JIT would only add compile time.
SET jit = off
AS $fn$
DECLARE
	nd			int;			/* window length in days */
	nb			int;			/* baseline length in days */
	nr			int;			/* ramp period length in days */
	d1			date;			/* last day of the window */
	first_day	date;			/* the source's first day */
	data_days	int;			/* days from the source's first day to d1 */
BEGIN
	IF "window" IS NULL THEN
		RAISE EXCEPTION 'window must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF baseline IS NULL THEN
		RAISE EXCEPTION 'baseline must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''30 days''.';
	END IF;
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a timestamp such as now().';
	END IF;
	IF "window" <= interval '0' THEN
		RAISE EXCEPTION 'window must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF baseline <= interval '0' THEN
		RAISE EXCEPTION 'baseline must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''30 days''.';
	END IF;
	IF extract(epoch FROM "window") < 86400
	   OR pg_catalog.mod(extract(epoch FROM "window"), 86400) <> 0 THEN
		RAISE EXCEPTION 'window must be a whole number of days'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The window is %s; the roll-up rank_exporters reads counts whole business days.', "window"),
				  HINT = 'Pass ''1 day'' or a multiple of it; for reads within the last hours query access_audit.reads.';
	END IF;
	IF "window" > baseline THEN
		RAISE EXCEPTION 'window must not be longer than baseline'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The window is %s and the baseline %s.', "window", baseline),
				  HINT = 'Pass a baseline several times longer than the window, such as ''30 days'' for a window of ''1 day''.';
	END IF;
	PERFORM access_audit.check_rollup_shape(source);

	/* The roll-up is daily: the baseline is rounded up to whole days. */
	nd := (extract(epoch FROM "window") / 86400)::int;
	nb := pg_catalog.ceil(extract(epoch FROM baseline) / 86400.0)::int;
	nr := least(28, nb);
	d1 := access_audit.window_last_day(as_of);
	/* How long the installation (the source) has collected, for warm-up. */
	EXECUTE pg_catalog.format('SELECT min(s.day) FROM %s s WHERE s.day OPERATOR(pg_catalog.<=) $1',
							  source)
	   INTO first_day USING d1;
	data_days := CASE WHEN pg_catalog.isfinite(d1) AND pg_catalog.isfinite(first_day)
					  THEN d1 - first_day + 1 ELSE 0 END;

	/*
	 * Parameters: $1 d1, $2 nd, $3 nb, $4 nr, $5 source.  The per-actor
	 * terms (CTE z) come from access_audit._detect_actors, a one-pass C
	 * implementation of the CTEs this query used to run (agg, who, peerkey,
	 * season, days, self, win, relw, pws, pbs, ramp; see detect.c): grouping
	 * 350,000 actor-days by text and thousands of small percentile sorts
	 * took seconds at 10,000 actors.  Scoring and reasons stay here.
	 */
	RETURN QUERY EXECUTE $q$
WITH
z AS (
	SELECT x.actor COLLATE "C" AS actor, x.grp COLLATE "C" AS grp, x.bulk,
		   x.v, x.n_base, x.base_median, x.s_self, x.self_typ, x.self_z,
		   x.peer_typ, x.peer_z, x.ramp_z, x.ramp_excess, x.recent_ratio,
		   x.ref_typ, x.off_share, x.off_share_base, x.n_rel, x.new_share,
		   x.n_hist, x.peer_label, x.cal_uplift, x.cal_label, x.cal_n, x.cal_occ,
		   x.cold_n, x.cold_z, x.cold_ratio, x.team_z,
		   -- cold start: too little history of their own, peers decide
		   (NOT x.bulk AND x.n_hist < 10) AS cold
	  FROM access_audit._detect_actors($5, $1, $2, $3) x
),
-- What the actor is measured against: their own usual, or (cold start,
-- no history) the peers'; and the z that context may amplify.
zz AS (
	SELECT z.*,
		   -- a cold start is measured against peers, on their active days
		   CASE WHEN z.cold THEN least(z.peer_typ, z.v - greatest(0, z.peer_typ * (z.cold_ratio - 1)))
				ELSE coalesce(z.self_typ, z.peer_typ) END AS typ,
		   CASE WHEN z.cold THEN z.peer_z ELSE coalesce(z.self_z, z.peer_z) END AS zc
	  FROM z
),
-- Combine: soft AND of self and peers, size gates, context.
sc AS (
	SELECT zz.*,
		   least(1, greatest(0, zz.v - coalesce(zz.typ, 0)) / 1000.0)
		   * CASE WHEN zz.cold THEN greatest(coalesce(zz.peer_z, 0), coalesce(zz.cold_z, 0),
											 sqrt(greatest(coalesce(zz.self_z, 0), 0)
												  * greatest(coalesce(zz.peer_z, 0), 0)))
				  WHEN zz.bulk OR zz.peer_z IS NULL THEN greatest(coalesce(zz.self_z, 0), 0)
				  WHEN zz.self_z IS NULL THEN greatest(zz.peer_z, 0)
				  ELSE sqrt(greatest(zz.self_z, 0) * greatest(zz.peer_z, 0))
			 END AS spike,
		   0.25 * greatest(coalesce(zz.ramp_z, 0), 0) * least(1, zz.ramp_excess / 5000.0) AS slow,
		   2.0 * greatest(0, zz.off_share - zz.off_share_base) + 1.5 * zz.new_share AS context
	  FROM zz
),
-- Context amplifies an excess over the actor's own history (or, without
-- history, over peers): an off-hours dump of 7x one's usual is suspicious
-- even when peers read as much by day.
fin AS (
	SELECT sc.*,
		   greatest(sc.spike, sc.slow)
		   + sc.context * least(1, greatest(coalesce(sc.zc, 0), 0) / 3)
			 * least(1, greatest(0, sc.v - coalesce(sc.typ, 0)) / 1000.0) AS score
	  FROM sc
)
SELECT (row_number() OVER (ORDER BY f.score DESC, f.v DESC, f.actor))::int,
	   f.actor, f.grp, f.v::bigint, f.base_median, f.s_self,
	   f.self_z, f.peer_z, f.ramp_z, f.score,
	   CASE
		 WHEN f.slow > f.spike AND f.slow >= 1 THEN
		   'slow ramp: over the last ' || $4 || ' days daily volume rose to '
		   || access_audit.format_ratio(f.recent_ratio) || ' their earlier median of '
		   || access_audit.format_count(f.ref_typ) || ' rows (CUSUM '
		   || round(f.ramp_z::numeric, 1) || ' robust SDs); exported '
		   || access_audit.format_count(f.v) || ' rows in the last '
		   || $2 || CASE WHEN $2 = 1 THEN ' day' ELSE ' days' END
		 ELSE
		   'exported ' || access_audit.format_count(f.v) || ' rows in the last '
		   || $2 || CASE WHEN $2 = 1 THEN ' day' ELSE ' days' END
		   || CASE
				WHEN f.bulk AND f.self_typ IS NOT NULL THEN
				  ', ' || access_audit.format_ratio(f.v / greatest(f.self_typ, 1))
				  || ' its ' || $3 || '-day median of ' || access_audit.format_count(f.self_typ)
				  || ' (bulk account, judged against its own history only)'
				WHEN f.bulk THEN ' (bulk account without history)'
				WHEN f.cold THEN
				  ' with '
				  || CASE f.n_hist WHEN 0 THEN 'no history of their own'
						 WHEN 1 THEN '1 day of history'
						 ELSE f.n_hist || ' days of history' END
				  || coalesce(', ' || access_audit.format_ratio(f.v / greatest(f.peer_typ, 1))
							  || ' the median of ' || f.peer_label || ' ('
							  || access_audit.format_count(f.peer_typ) || ')'
							  || CASE WHEN f.cold_n > 1
									  THEN ' and ' || access_audit.format_ratio(f.cold_ratio)
										   || ' it on average over their ' || f.cold_n || ' active days'
									  ELSE '' END
							  || CASE WHEN f.n_hist > 0 THEN ', judged against peers until 10 days of history'
									  ELSE '' END,
							  ' and too few peers to compare')
				WHEN f.self_typ IS NOT NULL THEN
				  ', ' || access_audit.format_ratio(f.v / greatest(f.self_typ, 1))
				  || CASE WHEN f.cal_uplift >= 0.1 THEN ' their usual ' || f.cal_label || ' of '
						  ELSE ' their ' || $3 || '-day median of ' END
				  || access_audit.format_count(f.self_typ)
				  || coalesce(' and ' || access_audit.format_ratio(f.v / greatest(f.peer_typ, 1))
							  || ' their peers'' median', '')
				  || CASE WHEN f.cal_uplift >= 0.1 THEN
						  '; usual ' || f.cal_label || ' ('
						  || access_audit.format_ratio(exp(f.cal_uplift)) || ' their ordinary level on '
						  || f.cal_n || ' of ' || f.cal_occ || ' earlier ones)'
						  ELSE '' END
				ELSE
				  ' with ' || f.n_hist || ' days of history'
				  || coalesce(', ' || access_audit.format_ratio(f.v / greatest(f.peer_typ, 1))
							  || ' the median of ' || f.peer_label || ' ('
							  || access_audit.format_count(f.peer_typ) || ')', '')
			  END
	   END
	   || CASE WHEN f.off_share >= 0.5 AND f.off_share - f.off_share_base >= 0.25
			   THEN '; ' || round(100 * f.off_share) || '% outside business hours' ELSE '' END
	   || CASE WHEN f.new_share >= 0.5
			   THEN '; ' || round(100 * f.new_share) || '% from tables they had not read before ('
					|| f.n_rel || ' tables in the window)' ELSE '' END
	   || CASE WHEN $6 < 14
			   THEN '; the installation has ' || $6 || CASE WHEN $6 = 1 THEN ' day' ELSE ' days' END
					|| ' of data, too little to judge anyone against their own history'
			   ELSE '' END
  FROM fin f
 ORDER BY 1
$q$
	USING d1, nd, nb, nr, source, data_days;
END
$fn$;

COMMENT ON FUNCTION access_audit.rank_exporters(interval, interval, timestamptz, regclass) IS
'Ranks actors by how abnormally much they exported in the last "window" (whole days, ending just before as_of: as of midnight the window ends the day before, as of now() it includes today so far) compared with their own "baseline" history (self_z: weekday-corrected median/MAD of ln(1+rows), less their usual month-end, quarter-end or weekday rhythm and their team''s shared excess of the day), their peer group in the same window (peer_z; groups under 5 humans use all humans) and a slow-ramp CUSUM over the last 28 days (ramp_z). score is sqrt(self_z * peer_z) for people (an AND, so high-but-usual power users and team-wide surges stay low); with under 10 active days of history (contractors, new hires, a new installation) the peers carry it alone, day by day; plus off-hours and new-table context; check_exports alerts above 3.2 by default. Actors mapped with bulk_user = true in access_audit.actor_groups (batch service accounts) are judged only against their own history: they get no peer_z, are left out of every peer baseline, and score on self_z alone, so an ETL account exporting millions every night stays quiet while a jump against its own history still ranks. Unmapped actors are in peer group ''default''. source may name any table or view of actor_daily''s shape.';

/*
 * check_exports: raise an alert for every actor whose rank_exporters score
 * is above threshold in the current window.
 *
 * The window is the one rank_exporters ranks as of now() (today so far
 * and the days before it); its recorded bounds end at the next business-day
 * boundary and start nd days earlier, so every run within the same day
 * produces the same bounds; ON CONFLICT on (actor, window_start, window_end) then makes
 * repeated runs (e.g. from cron every minute) raise each alert once.  Each
 * new alert is announced with NOTIFY access_audit_alert and a JSON payload.
 *
 * The default threshold 3.2: on the seeded evaluation population (1,000
 * actors x 90 days, 13 injected exfiltrators, bench/detect_eval.sh) it
 * alerted on 58 of 65 injected over seeds 1-5 (54 of 65 on the unseen
 * seeds 6-10) with 0.1-0.5 false alerts per 1,000 actors per day.  Review
 * the rest of the ranking with rank_exporters().
 */
CREATE OR REPLACE FUNCTION access_audit.check_exports(
	threshold float8 DEFAULT 3.2,
	"window" interval DEFAULT '1 day')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	nd			int;
	d1			date;
	tz			text;
	ws			timestamptz;
	we			timestamptz;
	raised		int := 0;
	a			record;
BEGIN
	IF threshold IS NULL OR threshold = 'NaN'::float8 THEN
		RAISE EXCEPTION 'threshold must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a score such as 4.';
	END IF;
	IF threshold <= 0 THEN
		RAISE EXCEPTION 'threshold must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a score such as 4; around 3 is notable.';
	END IF;
	IF "window" IS NULL THEN
		RAISE EXCEPTION 'window must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF "window" <= interval '0' THEN
		RAISE EXCEPTION 'window must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;

	IF extract(epoch FROM "window") < 86400
	   OR pg_catalog.mod(extract(epoch FROM "window"), 86400) <> 0 THEN
		RAISE EXCEPTION 'window must be a whole number of days'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The window is %s; the roll-up check_exports reads counts whole business days.', "window"),
				  HINT = 'Pass ''1 day'' or a multiple of it; for reads within the last hours query access_audit.reads.';
	END IF;

	nd := (extract(epoch FROM "window") / 86400)::int;
	tz := coalesce(
		nullif(pg_catalog.current_setting('access_audit.business_timezone', true), ''),
		pg_catalog.current_setting('TimeZone'));
	/* the same days rank_exporters ranks as of now() */
	d1 := access_audit.window_last_day(pg_catalog.now());
	we := (d1 + 1)::timestamp AT TIME ZONE tz;
	ws := (d1 - nd + 1)::timestamp AT TIME ZONE tz;

	-- on a central server, rank what arrived from the sources too
	PERFORM access_audit.collect_rollup();

	FOR a IN
		INSERT INTO access_audit.alerts AS al
			(actor, window_start, window_end, score, reason, detail)
		SELECT r.actor, ws, we, r.score, r.reason,
			   pg_catalog.jsonb_build_object(
				   'rank', r.rank, 'peer_group', r.peer_group,
				   'volume', r.volume, 'baseline_median', r.baseline_median,
				   'baseline_mad', r.baseline_mad, 'self_z', r.self_z,
				   'peer_z', r.peer_z, 'ramp_z', r.ramp_z,
				   'threshold', threshold)
		  FROM access_audit.rank_exporters("window",
										   greatest(interval '30 days', "window"),
										   pg_catalog.now(),
										   'access_audit.actor_daily') r
		 WHERE r.score > threshold
		 ORDER BY r.rank
		ON CONFLICT (actor, window_start, window_end) DO NOTHING
		RETURNING al.alert_id, al.actor, al.score, al.reason
	LOOP
		PERFORM pg_catalog.pg_notify('access_audit_alert',
			pg_catalog.jsonb_build_object(
				'alert_id', a.alert_id, 'actor', a.actor, 'score', a.score,
				'reason', a.reason,
				'window', pg_catalog.jsonb_build_object('start', ws, 'end', we))::text);
		raised := raised + 1;
	END LOOP;

	RETURN raised;
END
$fn$;

COMMENT ON FUNCTION access_audit.check_exports(float8, interval) IS
'Inserts an alert into access_audit.alerts for every actor whose rank_exporters score (30-day baseline) exceeds threshold in the current window, which ends at the next business-day boundary; repeated runs in the same window raise each alert once. Sends NOTIFY access_audit_alert with a JSON payload per new alert and returns how many were raised. The default threshold 3.2 is a budget choice: on the seeded evaluation population (1,000 actors, 13 injected exfiltrators, 10 seeds) it alerted on 86% of the injected with 0.1-0.5 false alerts per 1,000 actors per day; lower it for recall, raise it for fewer alerts. The window is the one rank_exporters uses as of now(); windows that are not whole days are refused.';

/*
 * actor_series: the drill-down behind a name in the ranking.  One row per
 * day of the period (days without exports too, with volume 0): the actor's
 * volume, tagged rows, statements, off-hours share and relations read; the
 * band of their own usual as the score sees it (median and median +- 3
 * robust SDs of ln(1 + volume) over their active days in the baseline
 * before that day, NULL under 3 such days); and the median volume of their
 * peers active that day (the peer group, or all people when the group has
 * fewer than 5 others; bulk accounts are never peers).  A plot of volume
 * against the band and the peer median shows the jump.
 */
CREATE FUNCTION access_audit.actor_series(
	actor text,
	period_start date DEFAULT NULL,
	period_end date DEFAULT NULL,
	baseline interval DEFAULT '30 days',
	source regclass DEFAULT 'access_audit.actor_daily')
RETURNS TABLE (day date, volume bigint, tagged_rows bigint, statements bigint,
			   off_hours_share float8, relations int, baseline_days int,
			   baseline_low float8, baseline_median float8, baseline_high float8,
			   peer_group text, peers_active int, peer_median float8)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
	d0			date;
	d1			date;
	nb			int;
	grp			text;
	all_people	boolean;
	stmts		text;
BEGIN
	IF actor_series.actor IS NULL THEN
		RAISE EXCEPTION 'actor must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an actor name as rank_exporters shows it.';
	END IF;
	IF baseline IS NULL OR baseline < interval '1 day' THEN
		RAISE EXCEPTION 'baseline must be at least one day'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''30 days''.';
	END IF;
	d1 := coalesce(period_end, access_audit.business_day(pg_catalog.now()));
	d0 := coalesce(period_start, d1 - 29);
	IF NOT (pg_catalog.isfinite(d0) AND pg_catalog.isfinite(d1)) THEN
		RAISE EXCEPTION 'the period must have finite bounds'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass dates such as current_date - 30 and current_date.';
	END IF;
	IF d0 > d1 THEN
		RAISE EXCEPTION 'period_start must not be after period_end'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The period is %s to %s.', d0, d1),
				  HINT = 'Swap the two dates.';
	END IF;
	IF d1 - d0 >= 366 THEN
		RAISE EXCEPTION 'the period must not be longer than 366 days'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The period is %s to %s.', d0, d1),
				  HINT = 'Look at one year at a time.';
	END IF;
	PERFORM access_audit.check_rollup_shape(source);
	nb := pg_catalog.ceil(extract(epoch FROM baseline) / 86400.0)::int;

	SELECT coalesce(g.peer_group, 'default') INTO grp
	  FROM access_audit.actor_groups g WHERE g.actor = actor_series.actor;
	grp := coalesce(grp, 'default');
	/* peers: the group when it has at least 5 other humans, as the score */
	SELECT count(*) < 5 INTO all_people
	  FROM access_audit.actor_groups g
	 WHERE g.peer_group = grp AND NOT g.bulk_user AND g.actor <> actor_series.actor;
	IF grp = 'default' THEN
		all_people := false;
	END IF;
	/*
	 * statements is optional in a source of the roll-up's shape.  The query
	 * runs under the pinned search_path, where pg_catalog's operators are
	 * the only ones.
	 */
	stmts := CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
								WHERE a.attrelid = source AND a.attname = 'statements'
								  AND a.attnum > 0 AND NOT a.attisdropped)
				  THEN 'sum(s.statements)::pg_catalog.int8' ELSE 'NULL::pg_catalog.int8' END;

	RETURN QUERY EXECUTE pg_catalog.format($q$
WITH
mine AS (
	SELECT s.day, sum(greatest(s.rows, s.tagged_rows))::float8 AS vol,
		   sum(s.tagged_rows)::int8 AS tr, %1$s AS st,
		   sum(s.off_hours_rows)::float8 AS off, sum(s.rows)::float8 AS rws,
		   count(DISTINCT s.relation)::int AS rels
	  FROM %2$s s
	 WHERE s.actor::text = $3
	   AND s.day >= $1 - $4
	   AND s.day <= $2
	 GROUP BY s.day
),
peers AS (
	SELECT s.day, s.actor::text AS actor, sum(greatest(s.rows, s.tagged_rows))::float8 AS vol
	  FROM %2$s s
	  LEFT JOIN access_audit.actor_groups g ON g.actor = s.actor::text
	 WHERE s.day >= $1 AND s.day <= $2
	   AND s.actor::text <> $3
	   AND NOT coalesce(g.bulk_user, false)
	   AND ($6 OR coalesce(g.peer_group, 'default') = $5)
	 GROUP BY s.day, s.actor
	HAVING sum(greatest(s.rows, s.tagged_rows)) > 0
),
days AS (
	SELECT g::date AS day FROM pg_catalog.generate_series($1::timestamp, $2::timestamp, interval '1 day') g
),
band AS (
	SELECT d.day, b.n, b.med,
		   (SELECT greatest(1.4826 * percentile_cont(0.5) WITHIN GROUP (ORDER BY abs(ln(1 + m.vol) - b.med)),
							1.2533 * avg(abs(ln(1 + m.vol) - b.med)), 0.5)
			  FROM mine m
			 WHERE m.day >= d.day - $4
			   AND m.day < d.day AND m.vol > 0) AS sd
	  FROM days d
	 CROSS JOIN LATERAL (
		SELECT count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY ln(1 + m.vol)) AS med
		  FROM mine m
		 WHERE m.day >= d.day - $4
		   AND m.day < d.day AND m.vol > 0) b
),
pm AS (
	SELECT p.day, count(*)::int AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY p.vol) AS med
	  FROM peers p GROUP BY p.day
)
SELECT d.day, coalesce(m.vol, 0)::int8, coalesce(m.tr, 0), coalesce(m.st, CASE WHEN %3$L THEN 0 END),
	   CASE WHEN greatest(m.vol, m.rws) > 0 THEN least(1, m.off / greatest(m.vol, m.rws)) ELSE 0 END,
	   coalesce(m.rels, 0), b.n,
	   CASE WHEN b.n >= 3 THEN greatest(0, exp(b.med - 3 * b.sd) - 1) END,
	   CASE WHEN b.n >= 3 THEN exp(b.med) - 1 END,
	   CASE WHEN b.n >= 3 THEN exp(b.med + 3 * b.sd) - 1 END,
	   CASE WHEN $6 THEN 'all people' ELSE $5 END,
	   coalesce(p.n, 0), p.med
  FROM days d
  LEFT JOIN mine m ON m.day = d.day
  LEFT JOIN band b ON b.day = d.day
  LEFT JOIN pm p ON p.day = d.day
 ORDER BY d.day
$q$, stmts, source, stmts <> 'NULL::pg_catalog.int8')
	USING d0, d1, actor_series.actor, nb, grp, all_people;
END
$fn$;

COMMENT ON FUNCTION access_audit.actor_series(text, date, date, interval, regclass) IS
'Drill-down for one actor: per day of the period (default the last 30 days) volume, tagged rows, statements, off-hours share and relations, the band of their own usual over the baseline before each day (median and +-3 robust SDs of ln(1 + volume), as the score uses) and the median volume of their peers active that day.';

/*
 * daily_exports: the roll-up summed over relations, one row per actor and
 * day.  volume sums greatest(rows, tagged_rows) per relation, as
 * rank_exporters does.  The writer splits a statement that read several
 * relations into shares, so these sums count every statement once.
 */
CREATE OR REPLACE VIEW access_audit.daily_exports AS
SELECT d.day, d.actor,
	   sum(d.rows)::bigint AS rows,
	   sum(d.tagged_rows)::bigint AS tagged_rows,
	   sum(greatest(d.rows, d.tagged_rows))::bigint AS volume,
	   sum(d.statements)::bigint AS statements,
	   sum(d.off_hours_rows)::bigint AS off_hours_rows,
	   count(*)::int AS relations
  FROM access_audit.actor_daily d
 GROUP BY d.day, d.actor;

COMMENT ON VIEW access_audit.daily_exports IS
'Per actor and business day: rows, tagged rows, volume (sum of greatest(rows, tagged_rows) per relation), statements, off-hours rows and the number of relations read. Each statement counts once: actor_daily holds per relation a share of the totals of each statement that read it.';

CREATE OR REPLACE FUNCTION access_audit.rebuild_daily()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('access_audit.business_timezone');
    h0 int;
    h1 int;
    n bigint;
BEGIN
    SELECT b.h0, b.h1 INTO h0, h1 FROM access_audit._business_hours() b;
    DELETE FROM access_audit.actor_daily;
    INSERT INTO access_audit.actor_daily
        (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
    -- each relation gets a whole share of the statement's totals (the k-th
    -- of n: x * k / n - x * (k - 1) / n), so that a statement counts once
    SELECT (l.ts AT TIME ZONE tz)::date, l.actor, r.rel,
           sum(l.rows * r.k / r.n - l.rows * (r.k - 1) / r.n),
           sum(l.tagged_rows * r.k / r.n - l.tagged_rows * (r.k - 1) / r.n),
           sum(r.k / r.n - (r.k - 1) / r.n),
           sum(CASE WHEN extract(isodow FROM l.ts AT TIME ZONE tz) >= 6
                      OR extract(hour FROM l.ts AT TIME ZONE tz) < h0
                      OR extract(hour FROM l.ts AT TIME ZONE tz) >= h1
                    THEN greatest(l.rows, l.tagged_rows) * r.k / r.n
                         - greatest(l.rows, l.tagged_rows) * (r.k - 1) / r.n
                    ELSE 0 END)
      FROM access_audit.log l
     CROSS JOIN LATERAL (SELECT u.rel, u.k, cardinality(l.relations)::bigint AS n
                           FROM unnest(l.relations) WITH ORDINALITY AS u(rel, k)) AS r
     WHERE l.actor IS NOT NULL AND l.command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET')
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE OR REPLACE FUNCTION access_audit.collect_rollup()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('access_audit.business_timezone');
    h0 int;
    h1 int;
    r record;
    cut bigint;
    upto bigint;
    n bigint;
    total bigint := 0;
BEGIN
    SELECT b.h0, b.h1 INTO h0, h1 FROM access_audit._business_hours() b;
    -- one roll-up at a time
    LOCK TABLE access_audit.collect_progress IN SHARE ROW EXCLUSIVE MODE;
    FOR r IN
        SELECT s.source, coalesce(p.rolled_upto, 0) AS done
          FROM access_audit.sources s
          LEFT JOIN access_audit.collect_progress p ON p.source = s.source
         WHERE s.last_seq > coalesce(p.rolled_upto, 0)
    LOOP
        -- the first record whose session, shape, actor, command or
        -- relations have not arrived yet
        SELECT min(c.seq) INTO cut
          FROM access_audit.collected_log c
          LEFT JOIN access_audit.collected_sessions se ON se.source = c.source AND se.id = c.session_id
          LEFT JOIN access_audit.collected_shapes sh ON sh.source = c.source AND sh.id = c.shape_id
          LEFT JOIN access_audit.collected_strings a ON a.source = c.source AND a.id = se.actor_id
          LEFT JOIN access_audit.collected_strings k ON k.source = c.source AND k.id = sh.command_id
          LEFT JOIN access_audit.collected_string_sets rs ON rs.source = c.source AND rs.id = sh.relations_id
         WHERE c.source = r.source AND c.seq > r.done
           AND (se.id IS NULL OR sh.id IS NULL
                OR (se.actor_id IS NOT NULL AND a.id IS NULL)
                OR (sh.command_id IS NOT NULL AND k.id IS NULL)
                OR (sh.relations_id IS NOT NULL AND rs.id IS NULL));
        IF cut IS NULL THEN
            SELECT max(c.seq) INTO upto FROM access_audit.collected_log c WHERE c.source = r.source;
        ELSE
            upto := cut - 1;
        END IF;
        CONTINUE WHEN upto <= r.done;

        INSERT INTO access_audit.actor_daily AS d
            (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
        -- each relation gets a whole share of the statement's totals (the
        -- k-th of n: x * k / n - x * (k - 1) / n), so a statement counts once
        SELECT (c.ts AT TIME ZONE tz)::date, a.value, r.source || ':' || rel.name,
               sum(c.rows * rel.k / rel.n - c.rows * (rel.k - 1) / rel.n),
               sum(c.tagged_rows * rel.k / rel.n - c.tagged_rows * (rel.k - 1) / rel.n),
               sum(rel.k / rel.n - (rel.k - 1) / rel.n),
               sum(CASE WHEN extract(isodow FROM c.ts AT TIME ZONE tz) >= 6
                          OR extract(hour FROM c.ts AT TIME ZONE tz) < h0
                          OR extract(hour FROM c.ts AT TIME ZONE tz) >= h1
                        THEN greatest(c.rows, c.tagged_rows) * rel.k / rel.n
                             - greatest(c.rows, c.tagged_rows) * (rel.k - 1) / rel.n
                        ELSE 0 END)
          FROM access_audit.collected_log c
          JOIN access_audit.collected_sessions se ON se.source = c.source AND se.id = c.session_id
          JOIN access_audit.collected_shapes sh ON sh.source = c.source AND sh.id = c.shape_id
          JOIN access_audit.collected_strings a ON a.source = c.source AND a.id = se.actor_id
          JOIN access_audit.collected_strings k ON k.source = c.source AND k.id = sh.command_id
          JOIN access_audit.collected_string_sets rs ON rs.source = c.source AND rs.id = sh.relations_id
         CROSS JOIN LATERAL (SELECT u.name, u.k, cardinality(rs.value)::bigint AS n
                               FROM unnest(rs.value) WITH ORDINALITY AS u(name, k)) AS rel
         WHERE c.source = r.source AND c.seq > r.done AND c.seq <= upto
           AND k.value NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET')
         GROUP BY 1, 2, 3
        ON CONFLICT (day, actor, relation) DO UPDATE SET
            rows = d.rows + excluded.rows,
            tagged_rows = d.tagged_rows + excluded.tagged_rows,
            statements = d.statements + excluded.statements,
            off_hours_rows = d.off_hours_rows + excluded.off_hours_rows;

        SELECT count(*) INTO n FROM access_audit.collected_log c
         WHERE c.source = r.source AND c.seq > r.done AND c.seq <= upto;
        total := total + n;
        INSERT INTO access_audit.collect_progress AS p (source, rolled_upto, updated_at)
        VALUES (r.source, upto, now())
        ON CONFLICT (source) DO UPDATE SET rolled_upto = excluded.rolled_upto,
                                           updated_at = excluded.updated_at;
    END LOOP;
    RETURN total;
END
$$;

COMMENT ON FUNCTION access_audit.collect_rollup() IS
    'On a central server: adds newly collected records to actor_daily so that rank_exporters() covers every source; check_exports() calls it first.';

COMMENT ON TABLE access_audit.actor_daily IS
'Daily roll-up kept by the writer: per business day, actor and relation, that relation''s share of the rows, tagged rows, statements and off-hours rows of the statements that read it (a statement that read n relations gives each a whole 1/n share), so sums over relations count every statement once.';

-- ---------------------------------------------------------------------------
-- capture: reads in progress (access_audit.reads_in_progress)
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._reads_in_progress(
    OUT pid integer, OUT database text, OUT since timestamptz,
    OUT login_role text, OUT effective_role text, OUT actor text, OUT claimed_actor text,
    OUT client_addr text, OUT application_name text, OUT command text, OUT query text,
    OUT relations text[], OUT columns text[], OUT tags text[],
    OUT rows bigint, OUT tagged_rows bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_reads_in_progress'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION access_audit._reads_in_progress() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._reads_in_progress()
    TO access_audit_reader, access_audit_admin;

-- Audited statements sending rows now or holding an open cursor (an export
-- left open in a transaction), with the rows sent and read so far: from the
-- intent slots the backends keep for crash safety.  Their records reach
-- the log when they end.
CREATE VIEW access_audit.reads_in_progress AS
    SELECT pid, database, since, now() - since AS running_for, login_role::name,
           effective_role::name, actor, claimed_actor, client_addr::inet,
           application_name, command, relations, columns, tags,
           rows AS rows_so_far, tagged_rows AS tagged_rows_so_far,
           greatest(rows, tagged_rows) AS volume_so_far, query
      FROM access_audit._reads_in_progress();
COMMENT ON VIEW access_audit.reads_in_progress IS
    'Audited statements in progress that send many rows or hold an open cursor, with the rows sent so far.';
GRANT SELECT ON access_audit.reads_in_progress TO access_audit_reader, access_audit_admin;

-- ---------------------------------------------------------------------------
-- Durability (dump and restore): as extension/sql/95_durable.sql
-- ---------------------------------------------------------------------------
SELECT pg_catalog.pg_extension_config_dump('access_audit.chain_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.log_data', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.strings', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.string_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.sessions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.shapes', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.actor_daily', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.actor_groups', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alerts', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alerts_alert_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alert_acks', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.alert_acks_ack_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_log', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_shapes', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_strings', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_string_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_checkpoints', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collect_progress', '');

-- ===========================================================================
-- Area: quota (prevention: export quotas and break glass, extension/quota.c)
-- Same objects as extension/sql/50_quota.sql.
-- ===========================================================================
-- ---------------------------------------------------------------------------
-- Prevention: export quotas and break-glass exemptions (extension/quota.c).
--
-- Admins limit the tagged rows an actor, a role's members or a peer group
-- may read, per statement, hour or day, on one tagged table or on all of
-- them.  quota.c counts rows while statements run and warns, requires
-- access_audit.reason, or stops the statement at the row that crosses the
-- limit.  Every change to these tables, and every hit, is an audit record.
-- ---------------------------------------------------------------------------
CREATE TABLE access_audit.quotas (
    quota_id     serial PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('actor', 'role', 'group')),
    subject      text NOT NULL CHECK (subject <> ''),
    relation     regclass,
    per          text NOT NULL CHECK (per IN ('statement', 'hour', 'day')),
    max_rows     bigint NOT NULL CHECK (max_rows >= 0),
    action       text NOT NULL CHECK (action IN ('warn', 'require_reason', 'block')),
    shared       boolean NOT NULL DEFAULT false,
    created_by   name NOT NULL DEFAULT session_user,
    created_at   timestamptz NOT NULL DEFAULT now(),
    note         text
);
COMMENT ON TABLE access_audit.quotas IS
'Export quotas: at most max_rows tagged rows per statement, hour or day (in access_audit.business_timezone), read from relation (NULL: all tagged relations together) by the actor named, by each member of the role named (session user; SET ROLE changes nothing), or by each actor of the peer group named (access_audit.actor_groups).  shared = true gives all matching actors one counter.  action: warn (WARNING and an alert), require_reason (the statement fails until the session sets access_audit.reason), block (the statement fails at the crossing row).';

CREATE TABLE access_audit.quota_exemptions (
    exemption_id serial PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('actor', 'role', 'group')),
    subject      text NOT NULL CHECK (subject <> ''),
    quota_id     int REFERENCES access_audit.quotas ON DELETE CASCADE,
    granted_by   name NOT NULL DEFAULT session_user,
    granted_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason <> ''),
    CHECK (expires_at > granted_at)
);
COMMENT ON TABLE access_audit.quota_exemptions IS
'Break glass: until expires_at, quota_id (NULL: every quota) does not apply to the subject.  Superusers are under quotas like everyone else unless exempted here.';

SELECT pg_catalog.pg_extension_config_dump('access_audit.quotas', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quota_exemptions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quotas_quota_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quota_exemptions_exemption_id_seq', '');

REVOKE ALL ON access_audit.quotas, access_audit.quota_exemptions FROM PUBLIC;
GRANT SELECT ON access_audit.quotas, access_audit.quota_exemptions
    TO access_audit_reader, access_audit_admin;
GRANT INSERT, UPDATE, DELETE ON access_audit.quotas, access_audit.quota_exemptions
    TO access_audit_admin;
GRANT USAGE ON SEQUENCE access_audit.quotas_quota_id_seq,
    access_audit.quota_exemptions_exemption_id_seq TO access_audit_admin;

CREATE FUNCTION access_audit._quota_event(command text, detail text)
RETURNS void
AS 'MODULE_PATHNAME', 'access_audit_quota_event'
LANGUAGE C;
REVOKE ALL ON FUNCTION access_audit._quota_event(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._quota_event(text, text) TO access_audit_admin;

-- Every change to quotas, exemptions and peer groups is recorded, and makes
-- every backend reload its cache of them at commit.
CREATE FUNCTION access_audit._quota_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM access_audit._quota_event(
        CASE TG_TABLE_NAME
            WHEN 'quotas' THEN 'QUOTA ' || TG_OP
            WHEN 'quota_exemptions' THEN 'EXEMPTION ' || TG_OP
            ELSE 'PEER GROUP ' || TG_OP
        END,
        pg_catalog.jsonb_build_object(
            'old', CASE WHEN TG_OP <> 'INSERT' THEN pg_catalog.to_jsonb(OLD) END,
            'new', CASE WHEN TG_OP <> 'DELETE' THEN pg_catalog.to_jsonb(NEW) END)::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION access_audit._quota_changed() FROM PUBLIC;

CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.quotas
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.quota_exemptions
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.actor_groups
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
ALTER TABLE access_audit.quotas ENABLE ALWAYS TRIGGER quota_changed;
ALTER TABLE access_audit.quota_exemptions ENABLE ALWAYS TRIGGER quota_changed;
ALTER TABLE access_audit.actor_groups ENABLE ALWAYS TRIGGER quota_changed;

-- set_quota: add a quota; returns its id.
CREATE FUNCTION access_audit.set_quota(subject_kind text, subject text, max_rows bigint,
                                       per text DEFAULT 'day', action text DEFAULT 'block',
                                       relation regclass DEFAULT NULL,
                                       shared boolean DEFAULT false, note text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id int;
BEGIN
    IF set_quota.subject_kind IS NULL OR set_quota.subject_kind NOT IN ('actor', 'role', 'group') THEN
        RAISE EXCEPTION 'invalid quota subject kind "%"', set_quota.subject_kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''actor'', ''role'' or ''group''.';
    END IF;
    IF set_quota.subject IS NULL OR set_quota.subject = '' THEN
        RAISE EXCEPTION 'quota subject must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the actor, role or peer group the quota limits.';
    END IF;
    IF set_quota.subject_kind = 'role' AND to_regrole(quote_ident(set_quota.subject)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', set_quota.subject
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create the role first, or limit an actor or peer group instead.';
    END IF;
    IF set_quota.max_rows IS NULL OR set_quota.max_rows < 0 THEN
        RAISE EXCEPTION 'invalid quota limit %', coalesce(set_quota.max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The limit is a number of tagged rows, 0 or more.';
    END IF;
    IF set_quota.per IS NULL OR set_quota.per NOT IN ('statement', 'hour', 'day') THEN
        RAISE EXCEPTION 'invalid quota period "%"', set_quota.per
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''statement'', ''hour'' or ''day''.';
    END IF;
    IF set_quota.action IS NULL OR set_quota.action NOT IN ('warn', 'require_reason', 'block') THEN
        RAISE EXCEPTION 'invalid quota action "%"', set_quota.action
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''warn'', ''require_reason'' or ''block''.';
    END IF;
    INSERT INTO access_audit.quotas AS q (subject_kind, subject, relation, per, max_rows,
                                         action, shared, note)
    VALUES (set_quota.subject_kind, set_quota.subject, set_quota.relation, set_quota.per,
            set_quota.max_rows, set_quota.action, coalesce(set_quota.shared, false),
            set_quota.note)
    RETURNING q.quota_id INTO id;
    RETURN id;
END
$$;
REVOKE ALL ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text)
    TO access_audit_admin;
COMMENT ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text) IS
'Adds an export quota (see table access_audit.quotas) and returns its id; recorded in the audit log.';

CREATE FUNCTION access_audit.drop_quota(quota_id int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM access_audit.quotas q WHERE q.quota_id OPERATOR(pg_catalog.=) drop_quota.quota_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'quota % does not exist', drop_quota.quota_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'See access_audit.quotas for the quotas in force.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION access_audit.drop_quota(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.drop_quota(int) TO access_audit_admin;

-- grant_exemption: break glass, for a limited time, with who and why.
CREATE FUNCTION access_audit.grant_exemption(subject_kind text, subject text, duration interval,
                                             reason text, quota_id int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id int;
BEGIN
    IF grant_exemption.subject_kind IS NULL OR grant_exemption.subject_kind NOT IN ('actor', 'role', 'group') THEN
        RAISE EXCEPTION 'invalid exemption subject kind "%"', grant_exemption.subject_kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''actor'', ''role'' or ''group''.';
    END IF;
    IF grant_exemption.subject IS NULL OR grant_exemption.subject = '' THEN
        RAISE EXCEPTION 'exemption subject must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the actor, role or peer group the exemption is for.';
    END IF;
    IF grant_exemption.duration IS NULL OR grant_exemption.duration <= interval '0'
       OR grant_exemption.duration > interval '30 days' THEN
        RAISE EXCEPTION 'invalid exemption duration %', coalesce(grant_exemption.duration::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Break glass is time-limited: give a duration above zero and at most 30 days.';
    END IF;
    IF grant_exemption.reason IS NULL OR btrim(grant_exemption.reason) = '' THEN
        RAISE EXCEPTION 'an exemption needs a reason'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why the exemption is granted, for example the incident or ticket number.';
    END IF;
    IF grant_exemption.quota_id IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM access_audit.quotas q
            WHERE q.quota_id OPERATOR(pg_catalog.=) grant_exemption.quota_id) THEN
        RAISE EXCEPTION 'quota % does not exist', grant_exemption.quota_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Pass NULL to exempt from every quota, or a quota_id of access_audit.quotas.';
    END IF;
    INSERT INTO access_audit.quota_exemptions AS e (subject_kind, subject, quota_id,
                                                    expires_at, reason)
    VALUES (grant_exemption.subject_kind, grant_exemption.subject, grant_exemption.quota_id,
            pg_catalog.now() + grant_exemption.duration, grant_exemption.reason)
    RETURNING e.exemption_id INTO id;
    RETURN id;
END
$$;
REVOKE ALL ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int)
    TO access_audit_admin;
COMMENT ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int) IS
'Break glass: exempts the subject from quota_id (NULL: every quota) for duration (at most 30 days); records who granted it and why.';

CREATE FUNCTION access_audit.revoke_exemption(exemption_id int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE access_audit.quota_exemptions e
       SET expires_at = GREATEST(e.granted_at + interval '1 microsecond', pg_catalog.now())
     WHERE e.exemption_id OPERATOR(pg_catalog.=) revoke_exemption.exemption_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'exemption % does not exist', revoke_exemption.exemption_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'See access_audit.quota_exemptions.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION access_audit.revoke_exemption(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.revoke_exemption(int) TO access_audit_admin;

CREATE FUNCTION access_audit._quota_counters(OUT quota_id int, OUT subject text,
                                             OUT window_start timestamptz,
                                             OUT window_end timestamptz, OUT used bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_quota_counters'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION access_audit._quota_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._quota_counters() TO access_audit_reader, access_audit_admin;

-- Current usage against each quota with a window (hour, day), per subject.
CREATE VIEW access_audit.quota_usage AS
SELECT q.quota_id, q.subject_kind, q.subject AS quota_subject,
       coalesce(c.subject, '(shared)') AS actor, q.relation, q.per, q.action,
       c.window_start, c.window_end, c.used, q.max_rows,
       GREATEST(q.max_rows - c.used, 0) AS remaining
  FROM access_audit._quota_counters() c
  JOIN access_audit.quotas q ON q.quota_id = c.quota_id
 WHERE c.window_end > now();
GRANT SELECT ON access_audit.quota_usage TO access_audit_reader, access_audit_admin;
COMMENT ON VIEW access_audit.quota_usage IS
'Tagged rows read in the current window of each hour or day quota, per actor (or shared), including rows reserved by running statements.';

-- Quota hits and changes, from the log.
CREATE VIEW access_audit.quota_events AS
SELECT l.seq, l.ts, l.actor, l.login_role, l.command, l.relations, l.detail, l.query
  FROM access_audit.log l
 WHERE l.command IN ('QUOTA WARN', 'QUOTA REASON', 'QUOTA BLOCK', 'QUOTA NO REASON',
                     'QUOTA INSERT', 'QUOTA UPDATE', 'QUOTA DELETE',
                     'EXEMPTION INSERT', 'EXEMPTION UPDATE', 'EXEMPTION DELETE',
                     'PEER GROUP INSERT', 'PEER GROUP UPDATE', 'PEER GROUP DELETE');
GRANT SELECT ON access_audit.quota_events TO access_audit_reader, access_audit_admin;

-- ---------------------------------------------------------------------------
-- Analyst experience (extension/sql/40_report.sql): access_audit.report()
-- and its helpers.  Kept identical to the part file.
-- ---------------------------------------------------------------------------
-- ---------------------------------------------------------------------------
-- Analyst report: access_audit.report(as_of, days, top) returns one
-- self-contained HTML page (inline CSS and SVG, no script, no external
-- resource) for people to look at: top exporters with a chart each, open
-- alerts, tag changes, read volume per table and the capture pipeline's
-- health.
--
-- Everything that comes from the audited database (actor names, relation
-- and column names, tags, query text, reasons) is chosen by users and is
-- passed through access_audit._html before it reaches the page: an actor
-- named <script> is shown as text.  The functions run with the caller's
-- rights (members of access_audit_reader see everything they need) and pin
-- their search_path.
-- ---------------------------------------------------------------------------

/*
 * _html: text made safe as HTML element content and as a quoted attribute
 * value (NULL gives '').  Tab, newline, carriage return and backslash become
 * character references too, so that the page has none of them raw and
 * COPY (SELECT access_audit.report()) TO 'file' writes it unchanged; other
 * control characters, which HTML does not allow, and the bidirectional
 * overrides and isolates (U+202A-U+202E, U+2066-U+2069), which could make
 * one name read as another, become U+FFFD.
 */
CREATE FUNCTION access_audit._html(s text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.regexp_replace(
	pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
	pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
		pg_catalog.replace(coalesce(s, ''), '&', '&amp;'), '<', '&lt;'), '>', '&gt;'),
		'"', '&quot;'), '''', '&#39;'), E'\\', '&#92;'), E'\t', '&#9;'), E'\n', '&#10;'),
		E'\r', '&#13;'),
	'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]', U&'\FFFD', 'g');

COMMENT ON FUNCTION access_audit._html(text) IS
'Internal: escapes text for HTML content and attribute values (& < > " and '' as entities, control characters replaced).';

/*
 * _html_cut: _html of s cut to at most n characters, with an ellipsis when
 * cut, so that one long query cannot make the page unreadable.
 */
CREATE FUNCTION access_audit._html_cut(s text, n integer)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN access_audit._html(CASE WHEN pg_catalog.length(s) > n
							   THEN pg_catalog.left(s, n - 1) || U&'\2026' ELSE s END);

COMMENT ON FUNCTION access_audit._html_cut(text, integer) IS
'Internal: escapes text for HTML after cutting it to n characters (with an ellipsis when cut).';

/*
 * _report_chart: one small inline SVG chart of an actor's daily volume
 * (vals, one per day of days, in order) against their baseline band
 * [band_lo, band_hi] (drawn when not null) and their peer group's daily
 * median (peer, nulls where no peer was active).  Linear scale from 0 to
 * the largest value shown; the largest value and the first and last day
 * label the axes.
 */
CREATE FUNCTION access_audit._report_chart(days date[], vals float8[], peer float8[],
										   band_lo float8, band_hi float8, label text)
RETURNS text
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	w			constant int := 420;	/* viewBox width */
	h			constant int := 120;	/* viewBox height */
	ml			constant int := 52;		/* left margin (y labels) */
	mr			constant int := 8;
	mt			constant int := 8;
	mb			constant int := 20;		/* bottom margin (x labels) */
	n			int := coalesce(array_length(vals, 1), 0);
	ymax		float8;
	dx			float8;
	pts			text := '';
	ppts		text := '';
	seg			text := '';
	svg			text;
	i			int;
	x			float8;
	y			float8;
BEGIN
	IF n = 0 THEN
		RETURN '';
	END IF;
	SELECT greatest(max(v), 1) INTO ymax
	  FROM unnest(vals || peer || ARRAY[band_hi]) v;
	ymax := ymax * 1.08;
	dx := CASE WHEN n > 1 THEN (w - ml - mr)::float8 / (n - 1) ELSE 0 END;

	FOR i IN 1 .. n LOOP
		x := ml + (i - 1) * dx;
		y := mt + (h - mt - mb) * (1 - coalesce(vals[i], 0) / ymax);
		pts := pts || round(x::numeric, 1) || ',' || round(y::numeric, 1) || ' ';
		/* the peer median line breaks on days no peer was active */
		IF peer[i] IS NULL THEN
			IF seg <> '' THEN
				ppts := ppts || '<polyline class="peer" points="' || seg || '"/>';
			END IF;
			seg := '';
		ELSE
			seg := seg || round(x::numeric, 1) || ','
				|| round((mt + (h - mt - mb) * (1 - peer[i] / ymax))::numeric, 1) || ' ';
		END IF;
	END LOOP;
	IF seg <> '' THEN
		ppts := ppts || '<polyline class="peer" points="' || seg || '"/>';
	END IF;

	svg := '<svg class="chart" viewBox="0 0 ' || w || ' ' || h || '" width="' || w
		|| '" height="' || h || '" role="img" xmlns="http://www.w3.org/2000/svg">'
		|| '<title>' || access_audit._html(label) || '</title>'
		|| '<rect class="plot" x="' || ml || '" y="' || mt || '" width="' || (w - ml - mr)
		|| '" height="' || (h - mt - mb) || '"/>';
	IF band_lo IS NOT NULL AND band_hi IS NOT NULL THEN
		svg := svg || '<rect class="band" x="' || ml || '" width="' || (w - ml - mr)
			|| '" y="' || round((mt + (h - mt - mb) * (1 - band_hi / ymax))::numeric, 1)
			|| '" height="' || greatest(1.5, round(((h - mt - mb) * (band_hi - band_lo) / ymax)::numeric, 1))
			|| '"/>';
	END IF;
	svg := svg
		|| '<polygon class="area" points="' || ml || ',' || (h - mb) || ' ' || pts
		|| round((ml + (n - 1) * dx)::numeric, 1) || ',' || (h - mb) || '"/>'
		|| ppts
		|| '<polyline class="vol" points="' || pts || '"/>'
		|| '<text class="ax" x="' || (ml - 4) || '" y="' || (mt + 9) || '" text-anchor="end">'
		|| access_audit.format_count(ymax / 1.08) || '</text>'
		|| '<text class="ax" x="' || (ml - 4) || '" y="' || (h - mb) || '" text-anchor="end">0</text>'
		|| '<text class="ax" x="' || ml || '" y="' || (h - 5) || '">' || to_char(days[1], 'Mon DD') || '</text>'
		|| '<text class="ax" x="' || (w - mr) || '" y="' || (h - 5) || '" text-anchor="end">'
		|| to_char(days[n], 'Mon DD') || '</text>'
		|| '</svg>';
	RETURN svg;
END
$fn$;

COMMENT ON FUNCTION access_audit._report_chart(date[], float8[], float8[], float8, float8, text) IS
'Internal: inline SVG chart of daily volume against a baseline band and the peers'' median, for access_audit.report().';

/*
 * report: the analyst's page.  The period is the "days" business days
 * ending with the day of as_of.  Top exporters are the first "top" actors
 * of rank_exporters('1 day', '30 days', as_of) with a volume or a score; each chart
 * shows their daily volume over the period (volume = greatest(rows,
 * tagged_rows) summed over relations, as daily_exports), their baseline
 * band (the middle half, 25th to 75th percentile, of their active days'
 * volumes in the 30 days before the day of as_of) and their peer group's
 * median volume per day (non-bulk actors of the same peer group active
 * that day).  Open alerts are those without an acknowledgement now;
 * tag changes and read volume per table cover the period.  The pipeline
 * section shows access_audit.stats and walks the hash chain up to the
 * newest record (verify()), so the page says up to which record the log
 * is known to be intact.  source may name another table of actor_daily's
 * shape (as for rank_exporters), for example one with imported history;
 * it is read with the caller's rights.  verify_chain => false leaves out
 * the chain walk (it reads the whole log: about a second per million
 * records).
 */
CREATE FUNCTION access_audit.report(as_of timestamptz DEFAULT now(), days integer DEFAULT 14,
									top integer DEFAULT 10,
									source regclass DEFAULT 'access_audit.actor_daily',
									verify_chain boolean DEFAULT true)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
SET jit = off
AS $fn$
DECLARE
	d1			date;
	d0			date;
	tz			text;
	html		text;
	sec			text;
	r			record;
	n			bigint;
	head_seq	bigint;
	v			record;
	cal			date[];
	maxvol		float8;
	tops		jsonb;			/* the top exporters, in rank order */
	series		jsonb;			/* per actor: vals (per day), lo, hi */
	peers		jsonb;			/* per peer group: median per day */
BEGIN
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a timestamp such as now().';
	END IF;
	IF days IS NULL OR days < 1 OR days > 366 THEN
		RAISE EXCEPTION 'days must be between 1 and 366'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass the number of days the report covers, such as 14.';
	END IF;
	IF top IS NULL OR top < 1 OR top > 100 THEN
		RAISE EXCEPTION 'top must be between 1 and 100'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass how many exporters get a chart, such as 10.';
	END IF;

	IF source IS NULL THEN
		RAISE EXCEPTION 'source must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass access_audit.actor_daily or a table of the same shape.';
	END IF;
	PERFORM access_audit.check_rollup_shape(source);

	tz := coalesce(nullif(current_setting('access_audit.business_timezone', true), ''),
				   current_setting('TimeZone'));
	d1 := access_audit.business_day(as_of);
	d0 := d1 - days + 1;
	SELECT array_agg(g::date ORDER BY g) INTO cal
	  FROM generate_series(d0, d1, interval '1 day') g;

	html := '<!DOCTYPE html>'
		|| '<html lang="en"><head><meta charset="utf-8">'
		|| '<meta name="viewport" content="width=device-width, initial-scale=1">'
		|| '<title>access_audit report: ' || access_audit._html(current_database()::text)
		|| ', ' || d0 || ' to ' || d1 || '</title>'
		|| '<style>'
		|| 'body{font-family:"DejaVu Sans",Arial,Helvetica,sans-serif;color:#1b1b1b;margin:24px;max-width:1100px;'
		|| '-webkit-print-color-adjust:exact;print-color-adjust:exact}'
		|| 'h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;border-bottom:2px solid #2c3e50;padding-bottom:3px;margin-top:28px}'
		|| '.meta{color:#555;font-size:13px;margin:0 0 10px}'
		|| '.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px}'
		|| '.card{border:1px solid #ccc;border-radius:4px;padding:8px 10px;break-inside:avoid;page-break-inside:avoid}'
		|| 'svg.chart{width:100%;height:auto;display:block}'
		|| '.card h3{font-size:15px;margin:0 0 2px;word-break:break-all}'
		|| '.reason{font-size:12px;color:#333;margin:0 0 4px}'
		|| '.score{float:right;font-weight:bold}.hi{color:#b71c1c}'
		|| 'svg.chart .plot{fill:#fff;stroke:#bbb;stroke-width:1}'
		|| 'svg.chart .band{fill:#bcd7f2;stroke:none}'
		|| 'svg.chart .area{fill:#f4c7c3;stroke:none}'
		|| 'svg.chart .vol{fill:none;stroke:#c0392b;stroke-width:2.5;stroke-linejoin:round}'
		|| 'svg.chart .peer{fill:none;stroke:#555;stroke-width:1.5;stroke-dasharray:5 3}'
		|| 'svg.chart .ax{font-size:10px;fill:#555}'
		|| '.legend{font-size:12px;color:#333}.legend span{display:inline-block;width:18px;height:10px;margin:0 4px 0 12px;vertical-align:middle}'
		|| 'table{border-collapse:collapse;font-size:13px;width:100%}'
		|| 'th,td{border-bottom:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}'
		|| 'th{background:#eef1f4}td.n{text-align:right;white-space:nowrap}td.d{white-space:nowrap}'
		|| 'td.q{font-family:"DejaVu Sans Mono",monospace;font-size:11px;word-break:break-all}'
		|| '.bar{display:inline-block;height:10px;background:#2c6fad;vertical-align:middle}'
		|| '.ok{color:#1b5e20;font-weight:bold}.bad{color:#b71c1c;font-weight:bold}'
		|| '.none{color:#777;font-style:italic}'
		|| '@media print{body{margin:0}h2{break-after:avoid}}'
		|| '</style></head><body>'
		|| '<h1>Sensitive data access report</h1>'
		|| '<p class="meta">Database <strong>' || access_audit._html(current_database()::text)
		|| '</strong> &middot; ' || days || (CASE WHEN days = 1 THEN ' day' ELSE ' days' END)
		|| ' from ' || to_char(d0, 'YYYY-MM-DD') || ' to ' || to_char(d1, 'YYYY-MM-DD')
		|| ' (business time zone ' || access_audit._html(tz) || ')'
		|| ' &middot; generated ' || access_audit._html(to_char(now() AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI'))
		|| ' ' || access_audit._html(tz) || ' by ' || access_audit._html(session_user::text) || '</p>';

	/* ---- top exporters ---- */
	html := html || '<h2>Top exporters</h2>'
		|| '<p class="legend">Ranked by rank_exporters for the day of ' || to_char(d1, 'YYYY-MM-DD')
		|| ' against a 30-day baseline.<span style="background:#c0392b"></span>daily volume (rows)'
		|| '<span style="background:#bcd7f2"></span>own baseline (middle half of active days)'
		|| '<span style="border-top:2px dashed #555;height:0"></span>peer group median</p>';
	sec := '';

	/*
	 * Three queries for all the charts, whatever "top" is: the top actors,
	 * their daily volumes over the period and the 30 baseline days (one
	 * range of days of the roll-up), and the daily medians of their peer
	 * groups (one pass over the period).
	 */
	SELECT coalesce(jsonb_agg(to_jsonb(x) ORDER BY x.rank), '[]')
	  INTO tops
	  FROM (SELECT e.rank, e.actor, e.peer_group, e.volume, e.score, e.reason
			  FROM access_audit.rank_exporters(interval '1 day', interval '30 days', as_of, source) e
			 WHERE e.volume > 0 OR e.score > 0
			 ORDER BY e.rank
			 LIMIT top) x;

	/* $1 actors, $2 first day read, $3 last day, $4 the period's days */
	EXECUTE pg_catalog.format($q$
		WITH a AS (
			SELECT s.actor, s.day, sum(greatest(s.rows, s.tagged_rows))::float8 AS vol
			  FROM %s s
			 WHERE s.actor = ANY ($1) AND s.day BETWEEN $2 AND $3
			 GROUP BY s.actor, s.day
		)
		SELECT coalesce(jsonb_object_agg(t.actor, jsonb_build_object(
				   'vals', (SELECT jsonb_agg(coalesce(a.vol, 0) ORDER BY c.day)
							  FROM unnest($4) c(day)
							  LEFT JOIN a ON a.actor = t.actor AND a.day = c.day),
				   'lo', (SELECT percentile_cont(0.25) WITHIN GROUP (ORDER BY a.vol)
							FROM a WHERE a.actor = t.actor AND a.day BETWEEN $3 - 30 AND $3 - 1),
				   'hi', (SELECT percentile_cont(0.75) WITHIN GROUP (ORDER BY a.vol)
							FROM a WHERE a.actor = t.actor AND a.day BETWEEN $3 - 30 AND $3 - 1))),
			   '{}')
		  FROM unnest($1) t(actor)
		$q$, source)
	  INTO series
	  USING ARRAY(SELECT t.actor FROM jsonb_to_recordset(tops) AS t(actor text)),
			least(d0, d1 - 30), d1, cal;

	/* $1 peer groups, $2 first day, $3 last day, $4 the period's days */
	EXECUTE pg_catalog.format($q$
		WITH m AS (
			SELECT pd.grp, pd.day, percentile_cont(0.5) WITHIN GROUP (ORDER BY pd.vol) AS med
			  FROM (SELECT coalesce(g.peer_group, 'default') AS grp, s.day, s.actor,
						   sum(greatest(s.rows, s.tagged_rows))::float8 AS vol
					  FROM %s s
					  LEFT JOIN access_audit.actor_groups g ON g.actor = s.actor
					 WHERE s.day BETWEEN $2 AND $3 AND NOT coalesce(g.bulk_user, false)
					 GROUP BY 1, 2, 3) pd
			 WHERE pd.grp = ANY ($1)
			 GROUP BY pd.grp, pd.day
		)
		SELECT coalesce(jsonb_object_agg(gg.grp,
				   (SELECT jsonb_agg(m.med ORDER BY c.day)
					  FROM unnest($4) c(day)
					  LEFT JOIN m ON m.grp = gg.grp AND m.day = c.day)), '{}')
		  FROM (SELECT DISTINCT t.grp FROM unnest($1) t(grp)) gg
		$q$, source)
	  INTO peers
	  USING ARRAY(SELECT t.peer_group FROM jsonb_to_recordset(tops) AS t(peer_group text)),
			d0, d1, cal;

	FOR r IN
		SELECT t.*
		  FROM jsonb_to_recordset(tops)
			   AS t(rank int, actor text, peer_group text, volume bigint, score float8, reason text)
		 ORDER BY t.rank
	LOOP
		SELECT ARRAY(SELECT e.v::float8
					   FROM jsonb_array_elements_text(series -> r.actor -> 'vals')
							WITH ORDINALITY AS e(v, i)
					  ORDER BY e.i) AS vals,
			   ARRAY(SELECT e.v::float8
					   FROM jsonb_array_elements_text(peers -> r.peer_group)
							WITH ORDINALITY AS e(v, i)
					  ORDER BY e.i) AS peer,
			   (series -> r.actor ->> 'lo')::float8 AS lo,
			   (series -> r.actor ->> 'hi')::float8 AS hi
		  INTO v;

		sec := sec || '<div class="card"><h3><span class="score'
			|| CASE WHEN r.score > 4 THEN ' hi' ELSE '' END || '">score '
			|| to_char(round(r.score::numeric, 1), 'FM999990.0') || '</span>#' || r.rank || ' '
			|| access_audit._html_cut(r.actor, 200) || '</h3>'
			|| '<p class="reason">' || access_audit._html_cut(r.reason, 600)
			|| ' &middot; peer group ' || access_audit._html(r.peer_group) || '</p>'
			|| access_audit._report_chart(cal, v.vals, v.peer, v.lo, v.hi,
										  'Daily volume of ' || r.actor)
			|| '</div>';
	END LOOP;
	IF sec = '' THEN
		sec := '<p class="none">No reads of tagged columns on ' || to_char(d1, 'YYYY-MM-DD') || '.</p>';
	ELSE
		sec := '<div class="cards">' || sec || '</div>';
	END IF;
	html := html || sec;

	/* ---- open alerts ---- */
	html := html || '<h2>Open alerts</h2>';
	sec := '';
	n := 0;
	FOR r IN
		SELECT a.alert_id, a.raised_at, a.actor, a.window_start, a.window_end, a.score, a.reason,
			   count(*) OVER () AS total
		  FROM access_audit.alerts a
		 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k
							WHERE k.alert_id OPERATOR(pg_catalog.=) a.alert_id)
		 ORDER BY a.score DESC, a.alert_id
		 LIMIT 100
	LOOP
		n := r.total;
		sec := sec || '<tr><td class="n">' || r.alert_id || '</td><td class="d">'
			|| access_audit._html(to_char(r.raised_at AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI')) || '</td><td>'
			|| access_audit._html_cut(r.actor, 200) || '</td><td class="n">'
			|| to_char(round(r.score::numeric, 1), 'FM999990.0') || '</td><td class="d">'
			|| to_char(r.window_start AT TIME ZONE tz, 'YYYY-MM-DD')
			|| CASE WHEN (r.window_start AT TIME ZONE tz)::date
						 = ((r.window_end AT TIME ZONE tz) - interval '1 microsecond')::date
					THEN ''
					ELSE ' to ' || to_char((r.window_end AT TIME ZONE tz) - interval '1 microsecond', 'YYYY-MM-DD')
			   END
			|| '</td><td>' || access_audit._html_cut(r.reason, 400) || '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No open alerts.</p>';
	ELSE
		html := html || '<table><tr><th>alert</th><th>raised (' || access_audit._html(tz)
			|| ')</th><th>actor</th><th>score</th><th>window</th><th>reason</th></tr>'
			|| sec || '</table>'
			|| CASE WHEN n > 100 THEN '<p class="meta">' || n - 100
				|| ' more in access_audit.alerts_open.</p>' ELSE '' END;
	END IF;

	/* ---- tag changes ---- */
	html := html || '<h2>Tag changes</h2>';
	sec := '';
	n := 0;
	FOR r IN
		SELECT t.ts, t.changed_by, t.relation, t."column", t.old_tag, t.new_tag, t.why, t.outcome,
			   count(*) OVER () AS total
		  FROM access_audit.tag_changes t
		 WHERE t.ts >= (d0::timestamp AT TIME ZONE tz) AND t.ts < ((d1 + 1)::timestamp AT TIME ZONE tz)
		 ORDER BY t.seq DESC
		 LIMIT 200
	LOOP
		n := r.total;
		sec := sec || '<tr><td class="d">' || access_audit._html(to_char(r.ts AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI'))
			|| '</td><td>' || access_audit._html_cut(r.changed_by, 200)
			|| '</td><td>' || access_audit._html_cut(coalesce(r."column", r.relation), 300)
			|| '</td><td>' || CASE WHEN coalesce(r.old_tag, '') = '' THEN '<span class="none">none</span>'
								   ELSE access_audit._html(r.old_tag) END
			|| '</td><td>' || CASE WHEN coalesce(r.new_tag, '') = '' THEN '<span class="none">none</span>'
								   ELSE access_audit._html(r.new_tag) END
			|| '</td><td>' || access_audit._html_cut(coalesce(r.why, ''), 200)
			|| CASE WHEN r.outcome IS DISTINCT FROM 'ok'
				THEN ' (' || access_audit._html(r.outcome) || ')' ELSE '' END
			|| '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No tag changes in the period.</p>';
	ELSE
		html := html || '<table><tr><th>when (' || access_audit._html(tz)
			|| ')</th><th>by</th><th>column or table</th><th>old tag</th><th>new tag</th><th>why</th></tr>'
			|| sec || '</table>'
			|| CASE WHEN n > 200 THEN '<p class="meta">' || n - 200
				|| ' older ones in access_audit.tag_changes.</p>' ELSE '' END;
	END IF;

	/* ---- read volume per table ---- */
	html := html || '<h2>Reads per table</h2>';
	sec := '';
	maxvol := NULL;
	FOR r IN EXECUTE pg_catalog.format($q$
		SELECT a.relation, sum(greatest(a.rows, a.tagged_rows))::float8 AS vol,
			   sum(a.statements) AS stmts, count(DISTINCT a.actor) AS actors,
			   sum(a.off_hours_rows) AS off
		  FROM %s a
		 WHERE a.day BETWEEN $1 AND $2
		 GROUP BY a.relation
		 ORDER BY 2 DESC, a.relation COLLATE "C"
		 LIMIT 50
		$q$, source) USING d0, d1
	LOOP
		maxvol := coalesce(maxvol, greatest(r.vol, 1));
		sec := sec || '<tr><td>' || access_audit._html_cut(r.relation, 300) || '</td><td class="n">'
			|| access_audit.format_count(r.vol) || '</td><td><span class="bar" style="width:'
			|| round((300 * r.vol / maxvol)::numeric, 1) || 'px"></span></td><td class="n">'
			|| access_audit.format_count(r.stmts) || '</td><td class="n">' || r.actors
			|| '</td><td class="n">' || access_audit.format_count(r.off) || '</td></tr>';
	END LOOP;
	IF sec = '' THEN
		html := html || '<p class="none">No reads of tagged columns in the period.</p>';
	ELSE
		html := html || '<table><tr><th>relation</th><th>volume (rows)</th><th></th>'
			|| '<th>statements</th><th>actors</th><th>off-hours rows</th></tr>' || sec || '</table>';
	END IF;

	/* ---- capture pipeline ---- */
	html := html || '<h2>Capture pipeline</h2>';
	sec := '';
	FOR r IN
		SELECT s.database, s.queued, s.written, s.pending_bytes, s.waits, s.gaps, s.writer_pid,
			   s.oldest_pending_age, s.last_flush
		  FROM access_audit.stats s
		 ORDER BY s.database COLLATE "C"
	LOOP
		sec := sec || '<tr><td>' || access_audit._html(coalesce(r.database::text, '(dropped)'))
			|| '</td><td class="n">' || access_audit.format_count(r.queued)
			|| '</td><td class="n">' || access_audit.format_count(r.written)
			|| '</td><td class="n">' || access_audit.format_count(r.pending_bytes)
			|| '</td><td class="n">' || access_audit.format_count(r.waits)
			|| '</td><td class="n' || CASE WHEN r.gaps > 0 THEN ' bad' ELSE '' END || '">'
			|| access_audit.format_count(r.gaps)
			|| '</td><td>' || coalesce(r.writer_pid::text, '<span class="none">none</span>')
			|| '</td><td>' || coalesce(access_audit._html(to_char(r.oldest_pending_age, 'HH24:MI:SS')), '')
			|| '</td><td>' || coalesce(access_audit._html(to_char(r.last_flush AT TIME ZONE tz, 'YYYY-MM-DD HH24:MI:SS')), '')
			|| '</td></tr>';
	END LOOP;
	IF sec <> '' THEN
		html := html || '<table><tr><th>database</th><th>queued</th><th>written</th>'
			|| '<th>pending bytes</th><th>waits on full queue</th><th>gaps</th><th>writer pid</th>'
			|| '<th>oldest pending</th><th>last flush (' || access_audit._html(tz) || ')</th></tr>'
			|| sec || '</table>';
	END IF;

	SELECT h.seq INTO head_seq FROM access_audit.chain_head() h;
	IF head_seq IS NULL THEN
		html := html || '<p>Hash chain: <span class="none">the log is empty.</span></p>';
	ELSIF NOT coalesce(verify_chain, true) THEN
		html := html || '<p>Hash chain: head at record ' || head_seq
			|| ', not verified on this page (verify_chain => false).</p>';
	ELSE
		SELECT * INTO r FROM access_audit.verify(NULL, head_seq);
		IF r.ok THEN
			html := html || '<p>Hash chain: <span class="ok">verified</span> up to record '
				|| head_seq || ' (' || access_audit.format_count(r.checked) || ' records checked).</p>';
		ELSE
			html := html || '<p>Hash chain: <span class="bad">broken</span> at record '
				|| coalesce(r.first_bad_seq::text, '?') || ': '
				|| access_audit._html_cut(r.detail, 400) || '</p>';
		END IF;
	END IF;

	html := html || '</body></html>';
	RETURN html;
END
$fn$;

COMMENT ON FUNCTION access_audit.report(timestamptz, integer, integer, regclass, boolean) IS
'One self-contained HTML page on one line (inline CSS and SVG, no script) for the "days" business days ending with the day of as_of: the "top" exporters of rank_exporters with a chart each of their daily volume against their own baseline band and their peers'' median, open alerts, tag changes, read volume per table, and the capture pipeline (access_audit.stats and the hash chain verified up to the newest record unless verify_chain is false). source may name a table of actor_daily''s shape, as for rank_exporters. Every user-controlled string is HTML-escaped. Example: psql -XAtc "SELECT access_audit.report()" shop > report.html';

REVOKE ALL ON FUNCTION access_audit._html(text), access_audit._html_cut(text, integer),
	access_audit._report_chart(date[], float8[], float8[], float8, float8, text),
	access_audit.report(timestamptz, integer, integer, regclass, boolean) FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT EXECUTE ON FUNCTION access_audit._html(text), access_audit._html_cut(text, integer),
			access_audit._report_chart(date[], float8[], float8[], float8, float8, text),
			access_audit.report(timestamptz, integer, integer, regclass, boolean)
			TO access_audit_reader, access_audit_admin;
	END IF;
END
$do$;

-- ---------------------------------------------------------------------------
-- Analyst experience: SIEM lines (extension/sql/41_siem.sql).  Kept
-- identical to the part file.
-- ---------------------------------------------------------------------------
-- ---------------------------------------------------------------------------
-- SIEM: alerts and audit records as JSON lines (extension/siem.c).
--
-- One JSON object per alert or record (json, not jsonb: keys stay in the
-- documented order, and it is cheaper to build), with ECS-style field names
-- (@timestamp, event.*, user.*, source.ip, process.pid) plus db.* and the
-- record's own fields under access_audit.*, including the chain hash.
-- access_audit.siem_log = alerts | all writes them to the server log behind
-- a fixed prefix; access_audit.records_after() hands the same lines to
-- pull-based collectors.  README "Alerts and records in your SIEM" lists
-- every field.
-- ---------------------------------------------------------------------------

/*
 * _iso: a timestamp as ISO 8601 in UTC with microseconds ("...Z").
 */
CREATE FUNCTION access_audit._iso(ts timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

COMMENT ON FUNCTION access_audit._iso(timestamptz) IS
'Internal: ISO 8601 UTC text of a timestamp, for the SIEM JSON lines.';

CREATE FUNCTION access_audit._siem_emit(kind text, line text)
RETURNS void
AS 'MODULE_PATHNAME', 'access_audit_siem_emit'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION access_audit._siem_emit(text, text) IS
'Internal: writes one ACCESS_AUDIT_ALERT line to the server log when access_audit.siem_log is alerts or all.';

/*
 * records_after: the audit records after seq after_seq (at most
 * max_records, in seq order) as JSON lines.  A collector remembers the
 * last seq it stored and asks for the next ones; each line's
 * access_audit.prev_hash equals the previous line's access_audit.hash, so
 * the collector can tell that it missed nothing (and verify the hashes
 * with the encoding in the README).
 */
CREATE FUNCTION access_audit.records_after(after_seq bigint, max_records integer DEFAULT 1000)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF after_seq IS NULL THEN
		RAISE EXCEPTION 'after_seq must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass 0 to start from the first record, then the last seq you stored.';
	END IF;
	IF max_records IS NULL OR max_records < 1 OR max_records > 100000 THEN
		RAISE EXCEPTION 'max_records must be between 1 and 100000'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a batch size such as 1000.';
	END IF;
	RETURN QUERY
	SELECT json_build_object(
			   '@timestamp', access_audit._iso(l.ts),
			   'event', json_build_object(
				   'kind', 'event',
				   'module', 'access_audit',
				   'dataset', 'access_audit.log',
				   'category', json_build_array('database'),
				   'type', json_build_array('access'),
				   'action', l.command,
				   'outcome', CASE l.outcome WHEN 'ok' THEN 'success'
									WHEN 'error' THEN 'failure' ELSE 'unknown' END,
				   'sequence', l.seq,
				   'duration', (extract(epoch FROM l.duration) * 1000000000)::bigint),
			   'user', json_build_object(
				   'name', l.actor,
				   'effective', json_build_object('name', l.effective_role)),
			   'source', json_build_object('ip', host(l.client_addr)),
			   'process', json_build_object('pid', l.backend_pid),
			   'db', json_build_object(
				   'name', l.database,
				   'user', l.login_role,
				   'operation', l.command,
				   'statement', l.query),
			   'access_audit', json_build_object(
				   'seq', l.seq,
				   'actor', l.actor,
				   'claimed_actor', l.claimed_actor,
				   'login_role', l.login_role,
				   'effective_role', l.effective_role,
				   'application_name', l.application_name,
				   'query_id', l.query_id::text,
				   'nesting_level', l.nesting_level,
				   'relations', to_json(l.relations),
				   'columns', to_json(l.columns),
				   'predicate_columns', to_json(l.predicate_columns),
				   'tags', to_json(l.tags),
				   'rows', l.rows,
				   'tagged_rows', l.tagged_rows,
				   'outcome', l.outcome,
				   'detail', l.detail,
				   'origin', l.origin,
				   'origin_seq', l.origin_seq,
				   'prev_hash', encode(l.prev_hash, 'hex'),
				   'hash', encode(l.hash, 'hex')))::text
	  FROM access_audit.log l
	 WHERE l.seq > after_seq
	 ORDER BY l.seq
	 LIMIT max_records;
END
$fn$;

COMMENT ON FUNCTION access_audit.records_after(bigint, integer) IS
'The audit records after seq after_seq (at most max_records, in seq order) as JSON lines with ECS-style fields and the chain hash (access_audit.prev_hash, access_audit.hash), for pull-based SIEM collectors.';

/*
 * _alert_json: the JSON line of an alert.
 */
CREATE FUNCTION access_audit._alert_json(a access_audit.alerts)
RETURNS text
LANGUAGE sql STABLE
RETURN pg_catalog.json_build_object(
	'@timestamp', access_audit._iso(a.raised_at),
	'event', pg_catalog.json_build_object(
		'kind', 'alert',
		'module', 'access_audit',
		'dataset', 'access_audit.alerts',
		'category', pg_catalog.json_build_array('database'),
		'type', pg_catalog.json_build_array('info'),
		'action', 'export_anomaly',
		'id', a.alert_id::text,
		'risk_score', a.score,
		'reason', a.reason,
		'start', access_audit._iso(a.window_start),
		'end', access_audit._iso(a.window_end)),
	'user', pg_catalog.json_build_object('name', a.actor),
	'db', pg_catalog.json_build_object('name', pg_catalog.current_database()),
	'access_audit', pg_catalog.json_build_object(
		'alert_id', a.alert_id,
		'actor', a.actor,
		'score', a.score,
		'reason', a.reason,
		'window_start', access_audit._iso(a.window_start),
		'window_end', access_audit._iso(a.window_end),
		'detail', a.detail))::text;

COMMENT ON FUNCTION access_audit._alert_json(access_audit.alerts) IS
'Internal: the JSON line of an alert, as access_audit.siem_log writes it.';

/*
 * _alert_siem: deferred row trigger on access_audit.alerts: writes the
 * alert's line when its transaction commits (so an alert rolled back is
 * not sent), whoever raised it.  SECURITY DEFINER: only the extension's
 * owner may call _siem_emit.
 */
CREATE FUNCTION access_audit._alert_siem()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	/* _siem_emit writes nothing unless access_audit.siem_log asks for it */
	PERFORM access_audit._siem_emit('alert', access_audit._alert_json(NEW));
	RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION access_audit._alert_siem() IS
'Internal: trigger writing each new alert to the server log as a JSON line (access_audit.siem_log).';

CREATE CONSTRAINT TRIGGER siem_log AFTER INSERT ON access_audit.alerts
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION access_audit._alert_siem();
ALTER TABLE access_audit.alerts ENABLE ALWAYS TRIGGER siem_log;

REVOKE ALL ON FUNCTION access_audit._iso(timestamptz), access_audit._siem_emit(text, text),
	access_audit.records_after(bigint, integer), access_audit._alert_json(access_audit.alerts),
	access_audit._alert_siem() FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT EXECUTE ON FUNCTION access_audit._iso(timestamptz),
			access_audit.records_after(bigint, integer),
			access_audit._alert_json(access_audit.alerts)
			TO access_audit_reader, access_audit_admin;
	END IF;
END
$do$;

-- ---------------------------------------------------------------------------
-- Analyst experience: analyst role and status() (extension/sql/42_analyst.sql).
-- Kept identical to the part file.
-- ---------------------------------------------------------------------------
-- ---------------------------------------------------------------------------
-- The analyst role and the status of the whole set-up.
--
-- access_audit_analyst: investigators read everything readers read, raise
-- alerts (check_exports, also from their own pg_cron job) and acknowledge
-- them (ack), and render the report; they cannot change tags or peer
-- groups, so they cannot switch off what they investigate.
--
-- access_audit.status(): one row per check (extension, writer, queue,
-- gaps, chain, alerts, tags, settings), each ok / warning / error with a
-- sentence, for the people who run the set-up.
-- ---------------------------------------------------------------------------
DO $do$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_analyst') THEN
		CREATE ROLE access_audit_analyst NOLOGIN;
	END IF;
END
$do$;
GRANT access_audit_reader TO access_audit_analyst;
GRANT EXECUTE ON FUNCTION access_audit.check_exports(float8, interval),
	access_audit.ack(bigint, text) TO access_audit_analyst;

/*
 * status: the health of the set-up as seen from this database.  With
 * verify => true the hash chain is walked (reads the whole log); without,
 * the chain row only gives its head.  Rows for other databases come from
 * the shared queue (those with a writer slot: audited ones).
 */
CREATE FUNCTION access_audit.status(verify boolean DEFAULT false)
RETURNS TABLE (check_name text, database name, status text, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	s			record;
	v			record;
	h			record;
	n			bigint;
	m			bigint;
	oldest		timestamptz;
	here		name := current_database();
	seen_here	boolean := false;
BEGIN
	check_name := 'extension';
	database := here;
	SELECT e.extversion INTO detail FROM pg_extension e WHERE e.extname = 'access_audit';
	status := 'ok';
	detail := 'access_audit ' || detail || ' is installed; capture is '
		|| CASE WHEN current_setting('access_audit.enabled')::boolean THEN 'on' ELSE 'OFF' END
		|| ', SIEM log lines: ' || current_setting('access_audit.siem_log');
	IF NOT current_setting('access_audit.enabled')::boolean THEN
		status := 'error';
	END IF;
	RETURN NEXT;

	FOR s IN
		SELECT st.*, st.database IS NOT DISTINCT FROM here AS is_here
		  FROM access_audit.stats st
		 ORDER BY st.database IS NOT DISTINCT FROM here DESC, st.database COLLATE "C"
	LOOP
		database := coalesce(s.database, '(dropped database)');
		seen_here := seen_here OR s.is_here;

		check_name := 'writer';
		IF s.writer_pid IS NOT NULL THEN
			status := 'ok';
			detail := 'writer pid ' || s.writer_pid || ' running'
				|| coalesce(', last commit ' || to_char(s.last_flush, 'YYYY-MM-DD HH24:MI:SS TZ'), '');
		ELSIF s.pending_bytes > 0 THEN
			status := 'warning';
			detail := 'no writer running while records wait (a writer starts on demand; see the server log if this persists)';
		ELSE
			status := 'ok';
			detail := 'no writer running (none needed: nothing is waiting)';
		END IF;
		RETURN NEXT;

		check_name := 'queue';
		status := CASE WHEN s.oldest_pending_age > interval '1 minute' THEN 'warning' ELSE 'ok' END;
		detail := access_audit.format_count(s.queued) || ' records queued and '
			|| access_audit.format_count(s.written) || ' written since the server started; '
			|| access_audit.format_count(s.pending_bytes) || ' bytes pending'
			|| coalesce(', the oldest for ' || to_char(s.oldest_pending_age, 'HH24:MI:SS'), '')
			|| '; the shared queue is ' || round(100.0 * s.queue_bytes / greatest(s.queue_capacity, 1))
			|| '% full';
		RETURN NEXT;

		check_name := 'waits';
		status := CASE WHEN s.waits > 0 THEN 'warning' ELSE 'ok' END;
		detail := access_audit.format_count(s.waits)
			|| CASE WHEN s.waits = 1 THEN ' wait' ELSE ' waits' END
			|| ' of a backend on a full queue since the server started'
			|| CASE WHEN s.waits > 0 THEN ' (raise access_audit.queue_size)' ELSE '' END;
		RETURN NEXT;

		check_name := 'gaps';
		status := CASE WHEN s.gaps > 0 THEN 'error' ELSE 'ok' END;
		detail := access_audit.format_count(s.gaps)
			|| CASE WHEN s.gaps = 1 THEN ' record' ELSE ' records' END
			|| ' torn by a crash since the server started'
			|| CASE WHEN s.gaps > 0 THEN ' (command GAP in access_audit.log)' ELSE '' END;
		RETURN NEXT;
	END LOOP;

	database := here;
	IF NOT seen_here THEN
		check_name := 'writer';
		status := 'ok';
		detail := 'nothing recorded in this database since the server started';
		RETURN NEXT;
	END IF;

	/*
	 * The log is the durable count: the queue counters above start again
	 * at zero when the server restarts.  Counting GAP markers reads the
	 * whole log, so only with verify.
	 */
	check_name := 'log';
	SELECT * INTO h FROM access_audit.chain_head();
	status := 'ok';
	detail := coalesce(h.seq, 0) || CASE WHEN h.seq = 1 THEN ' record' ELSE ' records' END
		|| ' in the log in all (the last seq; older ones may have gone to retention)';
	IF verify THEN
		SELECT count(*) INTO n
		  FROM access_audit.log_data d
		 WHERE d.shape_id IN (SELECT sh.id
								FROM access_audit.shapes sh
								JOIN access_audit.strings cmd ON cmd.id = sh.command_id
							   WHERE cmd.value OPERATOR(pg_catalog.=) 'GAP');
		detail := detail || ', ' || n || CASE WHEN n = 1 THEN ' of them a GAP marker' ELSE ' of them GAP markers' END
			|| ' (records torn by a crash, ever)';
		IF n > 0 THEN
			status := 'warning';
		END IF;
	END IF;
	RETURN NEXT;

	check_name := 'chain';
	IF h.seq IS NULL THEN
		status := 'ok';
		detail := 'the log is empty';
	ELSIF verify THEN
		SELECT * INTO v FROM access_audit.verify(NULL, h.seq);
		IF v.ok THEN
			status := 'ok';
			detail := 'verified up to record ' || h.seq || ' of '
				|| to_char(h.ts, 'YYYY-MM-DD HH24:MI:SS TZ') || ' ('
				|| access_audit.format_count(v.checked) || ' records checked)';
		ELSE
			status := 'error';
			detail := 'broken at record ' || coalesce(v.first_bad_seq::text, '?') || ': ' || v.detail;
		END IF;
	ELSE
		status := 'info';
		detail := 'head at record ' || h.seq || ', hash ' || encode(h.hash, 'hex')
			|| '; not verified now (pass verify => true to walk the chain)';
	END IF;
	RETURN NEXT;

	check_name := 'alerts';
	SELECT count(*), min(a.raised_at) INTO n, oldest
	  FROM access_audit.alerts a
	 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k
						WHERE k.alert_id OPERATOR(pg_catalog.=) a.alert_id);
	status := CASE WHEN n > 0 THEN 'warning' ELSE 'ok' END;
	detail := n || CASE WHEN n = 1 THEN ' open alert' ELSE ' open alerts' END
		|| coalesce(', the oldest raised ' || to_char(oldest, 'YYYY-MM-DD HH24:MI TZ'), '');
	RETURN NEXT;

	check_name := 'tags';
	SELECT count(*), count(DISTINCT (t.schema, t."table")) INTO n, m FROM access_audit.tagged_columns t;
	status := CASE WHEN n = 0 THEN 'warning' ELSE 'ok' END;
	detail := n || CASE WHEN n = 1 THEN ' tagged column in ' ELSE ' tagged columns in ' END
		|| m || CASE WHEN m = 1 THEN ' table' ELSE ' tables' END
		|| CASE WHEN n = 0 THEN ' (nothing is audited: tag columns with SECURITY LABEL FOR access_audit)' ELSE '' END;
	RETURN NEXT;
END
$fn$;

COMMENT ON FUNCTION access_audit.status(boolean) IS
'Health of the set-up: extension and settings, per audited database its writer, queue, waits on a full queue and torn records (counters since the server started), then in this database the hash chain (walked with verify => true), open alerts and tagged columns. Each row is ok, info, warning or error with a sentence.';

/*
 * The same as a view, for SELECT * FROM access_audit.status (the chain is
 * not walked: call status(verify => true) for that).  The view runs the
 * function with its owner's rights, so it is granted like the function.
 */
CREATE VIEW access_audit.status AS
	SELECT s.check_name, s.database, s.status, s.detail
	  FROM access_audit.status(false) s;

COMMENT ON VIEW access_audit.status IS
'Health of the set-up, one row per check (see access_audit.status(verify boolean)); the hash chain is not walked here.';

REVOKE ALL ON FUNCTION access_audit.status(boolean) FROM PUBLIC;
REVOKE ALL ON access_audit.status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.status(boolean) TO access_audit_reader, access_audit_admin;
GRANT SELECT ON access_audit.status TO access_audit_reader, access_audit_admin;

-- ---------------------------------------------------------------------------
-- writer (issue 16, items 8 and 9): dictionary ids are bigint, and so is every
-- column that refers to them, in this database's log and in the records
-- collected from other servers.  The views over these tables (access_audit.log
-- and the views built on it, access_audit.collected) cannot stay while their
-- columns change type: each is saved with its options, comment, privileges
-- and triggers, dropped, and made again from its saved definition, so that
-- whatever definition it has at this point of the update is kept.  The
-- dictionaries' sequences go: the writer gives a new entry one more than the
-- table's highest id, so there is nothing left for setval() to turn back.
-- ---------------------------------------------------------------------------
CREATE TYPE access_audit._saved_view AS (name text, depth integer, def text, reloptions text[],
    comment text, relacl aclitem[], triggers text[], column_comments text[]);
DO LANGUAGE plpgsql $aa_ids$
DECLARE
    saved access_audit._saved_view[];
    v record;
    s text;
    g record;
BEGIN
    SELECT pg_catalog.array_agg(ROW(q.name, q.depth, q.def, q.reloptions, q.comment,
                                   q.relacl, q.triggers, q.column_comments)::access_audit._saved_view)
      INTO saved
      FROM (
        WITH RECURSIVE dep(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1
              FROM pg_catalog.pg_depend d
              JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
             WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) ANY (ARRAY[
                       'access_audit.strings', 'access_audit.string_sets', 'access_audit.sessions',
                       'access_audit.shapes', 'access_audit.log_data', 'access_audit.collected_log',
                       'access_audit.collected_strings', 'access_audit.collected_string_sets',
                       'access_audit.collected_sessions', 'access_audit.collected_shapes'
                   ]::pg_catalog.regclass[]::pg_catalog.oid[])
               AND r.ev_class OPERATOR(pg_catalog.<>) d.refobjid
            UNION ALL
            SELECT r.ev_class, dep.depth OPERATOR(pg_catalog.+) 1
              FROM dep
              JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) dep.oid
               AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
             WHERE r.ev_class OPERATOR(pg_catalog.<>) dep.oid
        )
        SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS name,
               pg_catalog.max(dep.depth) AS depth,
               pg_catalog.pg_get_viewdef(c.oid) AS def,
               c.reloptions,
               pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
               c.relacl,
               ARRAY(SELECT pg_catalog.pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal
                      ORDER BY t.tgname) AS triggers,
               ARRAY(SELECT pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', c.oid::pg_catalog.regclass,
                                              a.attname, pg_catalog.col_description(c.oid, a.attnum))
                       FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                        AND pg_catalog.col_description(c.oid, a.attnum) IS NOT NULL) AS column_comments
          FROM dep JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) dep.oid
         WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
         GROUP BY c.oid
      ) q;
    saved := coalesce(saved, '{}');

    FOR v IN SELECT * FROM pg_catalog.unnest(saved) AS x ORDER BY x.depth DESC, x.name LOOP
        EXECUTE pg_catalog.format('DROP VIEW %s', v.name);
    END LOOP;

    -- ids no longer come from sequences (issue 16, item 9)
    DROP SEQUENCE access_audit.strings_id_seq;
    DROP SEQUENCE access_audit.string_sets_id_seq;
    DROP SEQUENCE access_audit.sessions_id_seq;
    DROP SEQUENCE access_audit.shapes_id_seq;
    ALTER TABLE access_audit.strings ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.string_sets ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.sessions
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN database_id TYPE bigint,
        ALTER COLUMN login_role_id TYPE bigint,
        ALTER COLUMN effective_role_id TYPE bigint,
        ALTER COLUMN actor_id TYPE bigint,
        ALTER COLUMN claimed_actor_id TYPE bigint,
        ALTER COLUMN application_name_id TYPE bigint,
        ALTER COLUMN client_addr_id TYPE bigint;
    ALTER TABLE access_audit.shapes
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN query_text_id TYPE bigint,
        ALTER COLUMN command_id TYPE bigint,
        ALTER COLUMN relations_id TYPE bigint,
        ALTER COLUMN columns_id TYPE bigint,
        ALTER COLUMN predicate_columns_id TYPE bigint,
        ALTER COLUMN tags_id TYPE bigint;
    ALTER TABLE access_audit.log_data
        ALTER COLUMN session_id TYPE bigint,
        ALTER COLUMN shape_id TYPE bigint,
        ALTER COLUMN origin_id TYPE bigint;
    ALTER TABLE access_audit.collected_strings ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.collected_string_sets ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.collected_sessions
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN database_id TYPE bigint,
        ALTER COLUMN login_role_id TYPE bigint,
        ALTER COLUMN effective_role_id TYPE bigint,
        ALTER COLUMN actor_id TYPE bigint,
        ALTER COLUMN claimed_actor_id TYPE bigint,
        ALTER COLUMN application_name_id TYPE bigint,
        ALTER COLUMN client_addr_id TYPE bigint;
    ALTER TABLE access_audit.collected_shapes
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN query_text_id TYPE bigint,
        ALTER COLUMN command_id TYPE bigint,
        ALTER COLUMN relations_id TYPE bigint,
        ALTER COLUMN columns_id TYPE bigint,
        ALTER COLUMN predicate_columns_id TYPE bigint,
        ALTER COLUMN tags_id TYPE bigint;
    ALTER TABLE access_audit.collected_log
        ALTER COLUMN session_id TYPE bigint,
        ALTER COLUMN shape_id TYPE bigint,
        ALTER COLUMN origin_id TYPE bigint;

    FOR v IN SELECT * FROM pg_catalog.unnest(saved) AS x ORDER BY x.depth, x.name LOOP
        EXECUTE pg_catalog.format('CREATE VIEW %s%s AS %s', v.name,
            CASE WHEN v.reloptions IS NULL THEN ''
                 ELSE ' WITH (' OPERATOR(pg_catalog.||)
                      pg_catalog.array_to_string(v.reloptions, ', ') OPERATOR(pg_catalog.||) ')' END,
            v.def);
        IF v.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', v.name, v.comment);
        END IF;
        FOREACH s IN ARRAY v.column_comments LOOP
            EXECUTE s;
        END LOOP;
        FOREACH s IN ARRAY v.triggers LOOP
            EXECUTE s;
        END LOOP;
        FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable
                   FROM pg_catalog.aclexplode(v.relacl) a
                  WHERE a.grantee OPERATOR(pg_catalog.<>) a.grantor LOOP
            EXECUTE pg_catalog.format('GRANT %s ON %s TO %s%s', g.privilege_type, v.name,
                CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
END
$aa_ids$;
DROP TYPE access_audit._saved_view;

DROP FUNCTION access_audit._dict_string_id(text);
DROP FUNCTION access_audit._dict_set_id(text[]);
DROP FUNCTION access_audit._dict_session_id(name, name, name, text, text, text, inet, integer);
DROP FUNCTION access_audit._dict_shape_id(bigint, text, text, integer, text[], text[], text[], text[]);
CREATE FUNCTION access_audit._dict_string_id(s text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_string_id'
LANGUAGE C VOLATILE;
CREATE FUNCTION access_audit._dict_set_id(s text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_set_id'
LANGUAGE C VOLATILE;
CREATE FUNCTION access_audit._dict_session_id(database name, login_role name, effective_role name,
    actor text, claimed_actor text, application_name text, client_addr inet, backend_pid integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_session_id'
LANGUAGE C VOLATILE;
CREATE FUNCTION access_audit._dict_shape_id(query_id bigint, query text, command text,
    nesting_level integer, relations text[], columns text[], predicate_columns text[], tags text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_shape_id'
LANGUAGE C VOLATILE;
-- as in a fresh install, only the writer (a superuser) may call them
REVOKE ALL ON FUNCTION access_audit._dict_string_id(text), access_audit._dict_set_id(text[]),
    access_audit._dict_session_id(name, name, name, text, text, text, inet, integer),
    access_audit._dict_shape_id(bigint, text, text, integer, text[], text[], text[], text[])
    FROM PUBLIC;
