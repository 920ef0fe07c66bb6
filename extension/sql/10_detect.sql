-- ---------------------------------------------------------------------------
-- Detection (extension/sql/10_detect.sql; the C half is extension/detect.c):
-- ranks actors by how abnormally much they exported, raises alerts, and
-- records acknowledgements.
--
-- Everything here reads only the daily roll-up (access_audit.actor_daily or
-- a table of the same shape), never the raw log, so ranking 10,000 actors
-- over 90 days stays well under a second.  The scoring and the reasons for
-- it are in docs/detect.md; the comments below say what each piece does.
--
-- This part follows 00_core.sql in the install script, after the tables
-- exist.

/*
 * The three helpers below have SQL-standard bodies, parsed at creation, so
 * search_path cannot change what they call; they carry no SET clause so
 * that they can be inlined (a SET clause costs a GUC save and restore on
 * every call, which was half of rank_exporters' run time).
 */

/*
 * format_count: a row count as text with thousands separators
 * ("48,210").  Fractions are rounded.  Internal helper for reasons.
 */
CREATE FUNCTION access_audit.format_count(n float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(pg_catalog.round(n::numeric), 'FM999,999,999,999,999,990');

COMMENT ON FUNCTION access_audit.format_count(float8) IS
'Internal: formats a row count with thousands separators for alert reasons.';

/*
 * format_ratio: a multiplier as text, "37x" from ten up, "2.5x" below.
 */
CREATE FUNCTION access_audit.format_ratio(r float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
	WHEN r >= 10 THEN pg_catalog.to_char(pg_catalog.round(r::numeric), 'FM999,999,999,990')
	ELSE pg_catalog.to_char(pg_catalog.round(r::numeric, 1), 'FM990.0')
END || 'x';

COMMENT ON FUNCTION access_audit.format_ratio(float8) IS
'Internal: formats a multiplier ("37x", "2.5x") for alert reasons.';

/*
 * business_day: the business-time-zone calendar day of a timestamp.  The
 * roll-up's day column is in access_audit.business_timezone; when that
 * setting is unset or empty the session's TimeZone is used.
 */
CREATE FUNCTION access_audit.business_day(ts timestamptz)
RETURNS date
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN (ts AT TIME ZONE coalesce(
			nullif(pg_catalog.current_setting('access_audit.business_timezone', true), ''),
			pg_catalog.current_setting('TimeZone')))::date;

COMMENT ON FUNCTION access_audit.business_day(timestamptz) IS
'Calendar day of a timestamp in access_audit.business_timezone (falling back to the session TimeZone), the day actor_daily uses.';

/*
 * window_last_day: the last business day of a window "as of" a moment.
 * As of T means the data up to T: the day containing the instant just
 * before T.  Midnight belongs to the day that starts there, so as of
 * '2026-04-01 00:00' the window ends on March 31st; as of now() it ends
 * today, which counts with what it holds so far.
 */
CREATE FUNCTION access_audit.window_last_day(as_of timestamptz)
RETURNS date
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN access_audit.business_day(as_of - interval '1 microsecond');

COMMENT ON FUNCTION access_audit.window_last_day(timestamptz) IS
'Last business day of a detection window as of a moment: the day holding the instant just before it (as of midnight, the day before; as of now(), today).';

/*
 * check_rollup_shape: raise an error unless "source" is a table or view
 * with the columns rank_exporters reads, in usable types.
 */
CREATE FUNCTION access_audit.check_rollup_shape(source regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	kind		"char";
	req			record;
	found_type	regtype;
BEGIN
	IF source IS NULL THEN
		RAISE EXCEPTION 'source must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a table of the roll-up''s shape, such as ''access_audit.actor_daily''.';
	END IF;

	SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = source;
	IF kind IS NULL OR kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION 'source "%" is not a table or view', source
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Pass a table of the roll-up''s shape, such as ''access_audit.actor_daily''.';
	END IF;

	FOR req IN
		SELECT * FROM (VALUES
			('day', ARRAY['date'::regtype]),
			('actor', ARRAY['text'::regtype, 'varchar'::regtype, 'name'::regtype]),
			('relation', ARRAY['text'::regtype, 'varchar'::regtype, 'name'::regtype]),
			('rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype]),
			('tagged_rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype]),
			('off_hours_rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype])
		) AS r(col, types)
	LOOP
		found_type := NULL;
		SELECT a.atttypid::regtype INTO found_type
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid = source AND a.attname = req.col
		   AND a.attnum > 0 AND NOT a.attisdropped;
		IF found_type IS NULL THEN
			RAISE EXCEPTION 'source "%" has no column "%"', source, req.col
				USING ERRCODE = 'undefined_column',
					  HINT = 'The source needs the columns of access_audit.actor_daily: day, actor, relation, rows, tagged_rows and off_hours_rows.';
		END IF;
		IF NOT found_type = ANY (req.types) THEN
			RAISE EXCEPTION 'column "%" of source "%" has type %, expected %',
				req.col, source, found_type, req.types[1]
				USING ERRCODE = 'datatype_mismatch',
					  HINT = 'Give the source the column types of access_audit.actor_daily.';
		END IF;
	END LOOP;
END
$fn$;

COMMENT ON FUNCTION access_audit.check_rollup_shape(regclass) IS
'Internal: raises an error unless the relation has the columns of access_audit.actor_daily that rank_exporters reads.';

/*
 * _detect_actors: the per-actor terms of rank_exporters over source for the
 * window of nd days ending on d1 and a baseline of nb days (C, detect.c).
 * One row per actor active in the window or in the ramp period; w_rows is
 * the rows their statements returned in the window (v counts the rows of
 * tagged relations read, past filters, so a probe returns far fewer).
 * Runs with the caller's rights on source and access_audit.actor_groups.
 */
CREATE FUNCTION access_audit._detect_actors(source regclass, d1 date, nd int, nb int)
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
CREATE FUNCTION access_audit.rank_exporters(
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
CREATE FUNCTION access_audit.check_exports(
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
 * ack: acknowledge an alert.  Appends to alert_acks (alerts itself is never
 * updated) and returns the new ack_id; acked_by is the session user.
 */
CREATE FUNCTION access_audit.ack(alert_id bigint, note text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	new_id		bigint;
BEGIN
	IF ack.alert_id IS NULL THEN
		RAISE EXCEPTION 'alert_id must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the alert_id of a row in access_audit.alerts.';
	END IF;
	/* Lock the alert so it cannot vanish between the check and the insert. */
	PERFORM 1 FROM access_audit.alerts al WHERE al.alert_id = ack.alert_id FOR KEY SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'alert % does not exist', ack.alert_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'See access_audit.alerts_open for the alerts waiting for an acknowledgement.';
	END IF;
	INSERT INTO access_audit.alert_acks (alert_id, acked_by, note)
	VALUES (ack.alert_id, session_user, ack.note)
	RETURNING ack_id INTO new_id;
	RETURN new_id;
END
$fn$;

COMMENT ON FUNCTION access_audit.ack(bigint, text) IS
'Acknowledges an alert: appends a row to access_audit.alert_acks (acked_by = session user) and returns its ack_id. Alerts are never updated. Raises an error if the alert does not exist.';

COMMENT ON TABLE access_audit.actor_daily IS
'Daily roll-up kept by the writer: per business day, actor and relation, that relation''s share of the rows, tagged rows, statements and off-hours rows of the statements that read it (a statement that read n relations gives each a whole 1/n share), so sums over relations count every statement once.';

/*
 * daily_exports: the roll-up summed over relations, one row per actor and
 * day.  volume sums greatest(rows, tagged_rows) per relation, as
 * rank_exporters does.  The writer splits a statement that read several
 * relations into shares, so these sums count every statement once.
 */
CREATE VIEW access_audit.daily_exports AS
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

/*
 * alerts_open: alerts without any acknowledgement.  latest_score and
 * latest_reason come from the actor's most recent open alert, so a reviewer
 * looking at an old alert sees where the actor stands now.
 */
CREATE VIEW access_audit.alerts_open AS
SELECT a.alert_id, a.raised_at, a.actor, a.window_start, a.window_end,
	   a.score, a.reason, a.detail,
	   count(*) OVER (PARTITION BY a.actor) AS open_alerts,
	   first_value(a.score) OVER latest AS latest_score,
	   first_value(a.reason) OVER latest AS latest_reason,
	   a.kind, a.quota_id
  FROM access_audit.alerts a
 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k WHERE k.alert_id = a.alert_id)
WINDOW latest AS (PARTITION BY a.actor ORDER BY a.window_end DESC, a.raised_at DESC, a.alert_id DESC);

COMMENT ON VIEW access_audit.alerts_open IS
'Alerts without an acknowledgement, with the count of open alerts for the actor and the score and reason of their latest one.';

/*
 * Privileges: rank_exporters runs with the caller's rights on the source.
 * check_exports and ack run as the owner; only the extension's roles may
 * call them (the roles exist when the main script created them).
 */
REVOKE ALL ON FUNCTION access_audit.check_exports(float8, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION access_audit.ack(bigint, text) FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_admin') THEN
		GRANT EXECUTE ON FUNCTION access_audit.check_exports(float8, interval) TO access_audit_admin;
		GRANT EXECUTE ON FUNCTION access_audit.ack(bigint, text) TO access_audit_admin;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT SELECT ON access_audit.daily_exports, access_audit.alerts_open TO access_audit_reader;
	END IF;
END
$do$;
