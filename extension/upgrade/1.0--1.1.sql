/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- The update script access_audit--1.0--1.1.sql is assembled by the Makefile:
-- this file (changes to objects 1.0 has), then the part files whose objects
-- are all new in 1.1 (extension/sql/50_quota.sql, 40_report.sql,
-- 41_siem.sql, 42_analyst.sql) as they are, then 1.0--1.1-dictionary-ids.sql,
-- which widens the dictionary ids and rebuilds every view over them, so it
-- comes last.  A change to an object 1.0 has goes here as well as into its
-- part file; the regression test extension_update checks that 1.0 plus the
-- update equals a fresh 1.1.

-- ---------------------------------------------------------------------------
-- crash (core regression suite): immutable functions that are safe to run
-- in parallel workers say so (opr_sanity flags them otherwise).
ALTER FUNCTION access_audit.valid_tag(text) PARALLEL SAFE;
ALTER FUNCTION access_audit.publication_tables() PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- quota (issue 24): quota hits are alerts too.  An alert has a kind and,
-- for a quota's, the quota; one alert per actor, window, kind and quota.
-- ---------------------------------------------------------------------------
ALTER TABLE access_audit.alerts
    ADD COLUMN kind text NOT NULL DEFAULT 'export_anomaly'
        CHECK (kind IN ('export_anomaly', 'quota_warn', 'quota_block',
                        'quota_no_reason', 'quota_reason')),
    ADD COLUMN quota_id int,
    DROP CONSTRAINT alerts_actor_window_start_window_end_key,
    ADD CONSTRAINT alerts_once UNIQUE NULLS NOT DISTINCT
        (actor, window_start, window_end, kind, quota_id);
CREATE OR REPLACE VIEW access_audit.alerts_open AS
SELECT a.alert_id, a.raised_at, a.actor, a.window_start, a.window_end,
	   a.score, a.reason, a.detail,
	   count(*) OVER (PARTITION BY a.actor) AS open_alerts,
	   first_value(a.score) OVER latest AS latest_score,
	   first_value(a.reason) OVER latest AS latest_reason,
	   a.kind, a.quota_id
  FROM access_audit.alerts a
 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k WHERE k.alert_id = a.alert_id)
WINDOW latest AS (PARTITION BY a.actor ORDER BY a.window_end DESC, a.raised_at DESC, a.alert_id DESC);

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
 * One row per actor active in the window or in the ramp period; w_rows is
 * the rows their statements returned in the window (v counts the rows of
 * tagged relations read, past filters, so a probe returns far fewer).
 * Runs with the caller's rights on source and access_audit.actor_groups.
 */
CREATE OR REPLACE FUNCTION access_audit._detect_actors(source regclass, d1 date, nd int, nb int)
RETURNS TABLE (actor text, grp text, bulk boolean, v float8, n_base bigint,
			   base_median float8, s_self float8, self_typ float8, self_z float8,
			   peer_typ float8, peer_z float8, ramp_z float8, ramp_excess float8,
			   recent_ratio float8, ref_typ float8, off_share float8,
			   off_share_base float8, n_rel bigint, new_share float8,
			   n_hist bigint, peer_label text, cal_uplift float8,
			   cal_label text, cal_n int, cal_occ int, cold_n int,
			   cold_z float8, cold_ratio float8, team_z float8, w_rows float8)
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
 *   ramp_z  Page's CUSUM S_t = max(0, S_{t-1} + u_t - 0.75) over the active
 *           days of the ramp period, where u_t is the day's excess over the
 *           actor's earlier level, less the peers' median excess of the same
 *           day when positive (both in ln units: a team that rose together
 *           is no ramp, and a ramp beyond the team's rise still is), in
 *           robust SDs, clipped to [-3, 3] so one odd day cannot make a
 *           ramp.  The value is S at the last day; Page's alarm level is
 *           about 5.
 *
 * Combination:
 *   spike = sqrt(max(self_z, 0) * max(peer_z, 0)): an AND, so a power user
 *           who is always high (peer only) or a team-wide surge (self only)
 *           stays low.  Cold start (under 10 active days of history, which
 *           is everyone in a new installation): the peers carry the score,
 *           greatest(peer_z, cold_z, the AND above).  No peers: self_z
 *           alone, or nothing for a cold start.  Bulk users: self_z alone.
 *   slow  = 0.25 * ramp_z: a CUSUM of 12 (about three weeks of a tripled
 *           volume) reaches the alert threshold 2.9.  It counts as far as
 *           the window carries the rise: fully when the window is at least
 *           twice the earlier level, not at all at or below it (a CUSUM
 *           stays up for days after a ramp; quiet days are no alert).
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
	tz			text;			/* business time zone */
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
	/* the business time zone the days are in, for the reasons */
	tz := coalesce(
		nullif(pg_catalog.current_setting('access_audit.business_timezone', true), ''),
		pg_catalog.current_setting('TimeZone'));
	/* How long the installation (the source) has collected, for warm-up. */
	EXECUTE pg_catalog.format('SELECT min(s.day) FROM %s s WHERE s.day OPERATOR(pg_catalog.<=) $1',
							  source)
	   INTO first_day USING d1;
	data_days := CASE WHEN pg_catalog.isfinite(d1) AND pg_catalog.isfinite(first_day)
					  THEN d1 - first_day + 1 ELSE 0 END;

	/*
	 * Parameters: $1 d1, $2 nd, $3 nb, $4 nr, $5 source, $6 data_days,
	 * $7 the business time zone.  The per-actor terms (CTE z) come from access_audit._detect_actors, a one-pass C
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
		   x.cold_n, x.cold_z, x.cold_ratio, x.team_z, x.w_rows,
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
		   -- a ramp alerts on days that carry it: the window at least twice
		   -- the earlier level counts fully, at or below it not at all
		   0.25 * greatest(coalesce(zz.ramp_z, 0), 0) * least(1, zz.ramp_excess / 5000.0)
		   * least(1, greatest(0, ln((1 + zz.v) / (1 + coalesce(zz.ref_typ, 0) * $2)) / ln(2))) AS slow,
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
		   || round(f.ramp_z::numeric, 1) || ' robust SDs); ' || w.what
		 ELSE
		   w.what
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
 CROSS JOIN LATERAL (
	-- What the window held and when.  Volume counts the rows of tagged
	-- relations read past their filters; when the statements returned
	-- less than half of it, most of it was examined by filters or
	-- aggregates (a LIKE on an email, a count of matches): a probe, not
	-- an export.
	SELECT CASE WHEN f.w_rows < 0.5 * f.v
				THEN 'probed ' || access_audit.format_count(f.v)
					 || CASE WHEN round(f.v) = 1 THEN ' row' ELSE ' rows' END
					 || ' with filters or aggregates on tagged columns ('
					 || access_audit.format_count(f.w_rows)
					 || CASE WHEN round(f.w_rows) = 1 THEN ' row' ELSE ' rows' END
					 || ' returned)'
				ELSE 'exported ' || access_audit.format_count(f.v)
					 || CASE WHEN round(f.v) = 1 THEN ' row' ELSE ' rows' END
		   END
		   || CASE WHEN $2 = 1 THEN ' on ' || pg_catalog.to_char($1, 'YYYY-MM-DD')
				   ELSE ' from ' || pg_catalog.to_char($1 - ($2 - 1), 'YYYY-MM-DD')
						|| ' to ' || pg_catalog.to_char($1, 'YYYY-MM-DD') END
		   || ' (' || $7 || ')' AS what) w
 ORDER BY 1
$q$
	USING d1, nd, nb, nr, source, data_days, tz;
END
$fn$;

COMMENT ON FUNCTION access_audit.rank_exporters(interval, interval, timestamptz, regclass) IS
'Ranks actors by how abnormally much they exported in the last "window" (whole days, ending just before as_of: as of midnight the window ends the day before, as of now() it includes today so far) compared with their own "baseline" history (self_z: weekday-corrected median/MAD of ln(1+rows), less their usual month-end, quarter-end or weekday rhythm and their team''s shared excess of the day), their peer group in the same window (peer_z; groups under 5 humans use all humans) and a slow-ramp CUSUM over the last 28 days (ramp_z). score is sqrt(self_z * peer_z) for people (an AND, so high-but-usual power users and team-wide surges stay low); with under 10 active days of history (contractors, new hires, a new installation) the peers carry it alone, day by day; plus off-hours and new-table context; check_exports alerts above 2.9 by default. Actors mapped with bulk_user = true in access_audit.actor_groups (batch service accounts) are judged only against their own history: they get no peer_z, are left out of every peer baseline, and score on self_z alone, so an ETL account exporting millions every night stays quiet while a jump against its own history still ranks. Unmapped actors are in peer group ''default''. source may name any table or view of actor_daily''s shape.';

/*
 * check_exports: raise an alert for every actor whose rank_exporters score
 * is above threshold in the current window.
 *
 * The window is the one rank_exporters ranks as of now() (today so far
 * and the days before it); its recorded bounds end at the next business-day
 * boundary and start nd days earlier, so every run within the same day
 * produces the same bounds; ON CONFLICT on (actor, window_start, window_end) then makes
 * repeated runs (e.g. from cron every minute) raise each alert once.  Each
 * new alert is announced with NOTIFY access_audit_alert and a JSON payload
 * (unless the notification queue is too full: see _alert_may_notify).
 *
 * The default threshold 2.9 spends a budget of at most one false alert per
 * 1,000 actors per day: on the seeded evaluation population (1,000 actors
 * x 90 days, 13 injected exfiltrators, bench/detect_eval.sh SWEEP=...) it
 * is the middle of the thresholds that alert most on the tuning seeds 1-5
 * within that budget, alerting on 61 of 65 injected with 0.88 false
 * alerts per 1,000 actors per day; on the held-out seeds 6-10, 59 of 65
 * with 0.82.  Review the rest of the ranking with rank_exporters().
 */
CREATE OR REPLACE FUNCTION access_audit.check_exports(
	threshold float8 DEFAULT 2.9,
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
	announce	boolean;
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

	-- no NOTIFY into a (nearly) full notification queue: the commit would
	-- fail and take the alerts with it (extension/notify.c)
	announce := access_audit._alert_may_notify();

	FOR a IN
		INSERT INTO access_audit.alerts AS al
			(actor, window_start, window_end, score, reason, detail)
		SELECT r.actor, ws, we, r.score, r.reason,
			   pg_catalog.jsonb_build_object(
				   'rank', r.rank, 'peer_group', r.peer_group,
				   'volume', r.volume,
				   'baseline_median', round(r.baseline_median::numeric),
				   'baseline_mad', round(r.baseline_mad::numeric, 2),
				   'self_z', round(r.self_z::numeric, 2),
				   'peer_z', round(r.peer_z::numeric, 2),
				   'ramp_z', round(r.ramp_z::numeric, 2),
				   'threshold', threshold)
			   OPERATOR(pg_catalog.||) CASE WHEN announce THEN '{}'::jsonb
											ELSE '{"notified": false}'::jsonb END
		  FROM access_audit.rank_exporters("window",
										   greatest(interval '30 days', "window"),
										   pg_catalog.now(),
										   'access_audit.actor_daily') r
		 WHERE r.score > threshold
		 ORDER BY r.rank
		ON CONFLICT ON CONSTRAINT alerts_once DO NOTHING
		RETURNING al.alert_id, al.actor, al.score, al.reason
	LOOP
		IF announce THEN
			PERFORM pg_catalog.pg_notify('access_audit_alert',
				pg_catalog.jsonb_build_object(
					'alert_id', a.alert_id, 'actor', a.actor,
					'score', round(a.score::numeric, 2),
					'reason', a.reason,
					'window', pg_catalog.jsonb_build_object('start', ws, 'end', we))::text);
		END IF;
		raised := raised + 1;
	END LOOP;

	RETURN raised;
END
$fn$;

COMMENT ON FUNCTION access_audit.check_exports(float8, interval) IS
'Inserts an alert into access_audit.alerts for every actor whose rank_exporters score (30-day baseline) exceeds threshold in the current window, which ends at the next business-day boundary; repeated runs in the same window raise each alert once. Sends NOTIFY access_audit_alert with a JSON payload per new alert (unless the notification queue is at least access_audit.alert_notify_limit full: then the alerts have "notified": false in detail) and returns how many were raised. The default threshold 2.9 is a budget choice, at most one false alert per 1,000 actors per day: on the seeded evaluation population (1,000 actors, 13 injected exfiltrators, 10 seeds) it alerted on 92% of the injected with 0.85 false alerts per 1,000 actors per day; lower it for recall, raise it for fewer alerts. The window is the one rank_exporters uses as of now(); windows that are not whole days are refused.';

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
-- durability (issue 18, retention at scale): log_data is partitioned by range
-- of seq (the conversion of the table is in 1.0--1.1-dictionary-ids.sql,
-- which rebuilds the views over it anyway); retention drops whole
-- partitions; a central server's collector finds log_data's rows in its
-- partitions, and sources publish them under log_data's name.  As in
-- extension/sql/00_core.sql, 30_remote.sql and 90_guard.sql.
-- ---------------------------------------------------------------------------
-- The partitions of the log with their seq ranges (first_seq <= seq <
-- end_seq), in seq order, then the default partition with null bounds.
CREATE FUNCTION access_audit._log_partitions(OUT partition regclass, OUT first_seq bigint,
    OUT end_seq bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_log_partitions'
LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION access_audit._log_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._log_partitions() TO access_audit_admin, access_audit_reader;

-- and the row identities (96_rowids.sql), collected as well
CREATE OR REPLACE FUNCTION access_audit.publication_tables()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'access_audit.log_data, access_audit.sessions, access_audit.shapes, access_audit.strings, '
       'access_audit.string_sets, access_audit.chain_checkpoints, '
       'access_audit.row_sets, access_audit.row_set_reads, access_audit.row_key';
COMMENT ON FUNCTION access_audit.publication_tables() IS
    'The tables a source publishes to a central audit server: CREATE PUBLICATION ... FOR TABLE <these> WITH (publish = ''insert'', publish_via_partition_root = true).';

CREATE OR REPLACE FUNCTION access_audit._collect_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text := access_audit._collect_source();
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RETURN NULL;
    END IF;
    -- log_data's rows reach the partition they route to (its clone of this trigger)
    IF pg_catalog.pg_partition_root(TG_RELID) OPERATOR(pg_catalog.=) 'access_audit.log_data'::pg_catalog.regclass THEN
        INSERT INTO access_audit.collected_log SELECT (NEW).*, src ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        INSERT INTO access_audit.collected_sessions SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'shapes' THEN
        INSERT INTO access_audit.collected_shapes SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'strings' THEN
        INSERT INTO access_audit.collected_strings SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'string_sets' THEN
        INSERT INTO access_audit.collected_string_sets SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'chain_checkpoints' THEN
        INSERT INTO access_audit.collected_checkpoints SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION access_audit.drop_before(ts timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut_seq  bigint;
    cut_hash bytea;
    first_kept bigint;
    v record;
    p record;
BEGIN
    IF ts IS NULL THEN
        RAISE EXCEPTION 'cut-off time must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the time before which whole records are removed, for example now() - interval ''1 year''.';
    END IF;
    IF ts > pg_catalog.clock_timestamp() THEN
        RAISE EXCEPTION 'cut-off time % is in the future', ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a time in the past; retention never removes records newer than it.';
    END IF;
    IF NOT pg_catalog.current_setting('access_audit.maintenance')::boolean THEN
        RAISE EXCEPTION 'access_audit.drop_before() requires maintenance mode'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A superuser may SET access_audit.maintenance = on first; that is recorded.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'access_audit.drop_before() requires a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- one retention at a time; the writer only appends above the cut
    LOCK TABLE access_audit.chain_checkpoints IN SHARE ROW EXCLUSIVE MODE;

    -- cut after the longest prefix, in seq order, of records older than ts
    SELECT min(d.seq) INTO first_kept FROM access_audit.log_data d WHERE d.ts >= drop_before.ts;
    IF first_kept IS NULL THEN
        SELECT max(d.seq) INTO cut_seq FROM access_audit.log_data d;
    ELSE
        SELECT max(d.seq) INTO cut_seq FROM access_audit.log_data d WHERE d.seq < first_kept;
    END IF;
    IF cut_seq IS NULL THEN
        RETURN 0;
    END IF;

    -- never launder tampering: what is removed must verify first
    v := access_audit.verify(NULL, cut_seq);
    IF NOT v.ok THEN
        RAISE EXCEPTION 'the records to be removed do not verify: %', v.detail
            USING ERRCODE = 'data_corrupted',
                  DETAIL = format('The first bad record is seq %s.', v.first_bad_seq),
                  HINT = 'Investigate with access_audit.verify(); a repair in maintenance mode must come first.';
    END IF;

    SELECT d.hash INTO cut_hash FROM access_audit.log_data d WHERE d.seq = cut_seq;
    INSERT INTO access_audit.chain_checkpoints (seq, hash, cut_before)
    VALUES (cut_seq, cut_hash, drop_before.ts)
    ON CONFLICT (seq) DO UPDATE SET cut_before = excluded.cut_before, cut_at = excluded.cut_at;
    -- the row identities of the records removed (96_rowids.sql)
    PERFORM access_audit._row_sets_cut(cut_seq);

    -- whole partitions below the cut go at once; rows are deleted only in
    -- the partition the cut falls into (and the default partition)
    FOR p IN SELECT l.partition FROM access_audit._log_partitions() l
              WHERE l.end_seq OPERATOR(pg_catalog.<=) cut_seq + 1
              ORDER BY l.first_seq
    LOOP
        EXECUTE format('DROP TABLE %s', p.partition);
    END LOOP;
    DELETE FROM access_audit.log_data d WHERE d.seq <= cut_seq;
    -- verify() walked every record up to the cut: that many are removed
    RETURN v.checked;
END
$$;

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

