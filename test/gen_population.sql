/* test/gen_population.sql */
--
-- Seeded synthetic population for evaluating access_audit.rank_exporters.
--
--   \i test/gen_population.sql
--   CREATE TABLE eval_daily (LIKE access_audit.actor_daily INCLUDING ALL);
--   SELECT * FROM access_audit_test.gen_population(42, 'eval_daily', 300, 60);
--
-- gen_population() empties the target, fills it with n_days of roll-up rows
-- ending on end_day, rewrites the generated actors' rows in
-- access_audit.actor_groups (note = 'gen_population:<kind>'; rank_exporters
-- reads peer groups from there) and returns the roster (actor, kind,
-- peer_group).  Kinds starting with 'exfil-' are injected exfiltrators, all
-- of which act on end_day (the ramp over the 28 days before it):
--   exfil-spike     a normal person exports 20-60x their usual on one day
--   exfil-ramp      volume grows steadily to 8-15x over four weeks
--   exfil-newhire   joined three days ago, dumps 30-80x the group's level
--   exfil-offhours  6-10x their usual, 95% outside business hours
--   exfil-spread    a dump spread over 30-50 tables they never read, each
--                   table a modest amount
--   exfil-contractor  hired 7 days ago, exports 20-30x the group's level on
--                   every working day from the first (their short history
--                   is the exfiltration)
--   exfil-steady    3-4x their usual on every working day of the last 25
--                   days: each day stays under the alert threshold
-- Legitimate kinds: normal, small_group (the 3-person hr group), service
-- (bulk_user batch accounts exporting millions every day), power (steady
-- 12x their group), quarter_end (finance: 8x on the last 3 days),
-- team_double (sales: 2.2x for the last 20 days), new_hire (joined in the
-- last 5 days, ordinary volumes), month_end (8x their usual on the last
-- working day of every month, end_day included when it is one),
-- role_change (the 6-person ops team, their own peer group, took on
-- analytics work together 12 days before end_day: 12x their volumes since).  About 5%
-- of people are unmapped (peer group 'default').  Weekends are quiet and
-- two holidays are near-empty.
--
-- The same seed and sizes always give the same rows: everything comes from
-- random() after setseed(), in queries with fixed order and no parallelism.

CREATE SCHEMA IF NOT EXISTS access_audit_test;

/*
 * randn: one standard normal draw (Box-Muller) from random().
 */
CREATE OR REPLACE FUNCTION access_audit_test.randn()
RETURNS float8
LANGUAGE sql VOLATILE
RETURN sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random());

/*
 * last_working_day: the last Monday-to-Friday day of the month of d.
 */
CREATE OR REPLACE FUNCTION access_audit_test.last_working_day(d date)
RETURNS date
LANGUAGE sql IMMUTABLE
RETURN (SELECT max(x)::date
		  FROM generate_series(date_trunc('month', d) + interval '1 month' - interval '3 days',
							   date_trunc('month', d) + interval '1 month' - interval '1 day',
							   interval '1 day') x
		 WHERE extract(isodow FROM x) < 6);

CREATE OR REPLACE FUNCTION access_audit_test.gen_population(
	seed int,
	target regclass,
	n_actors int DEFAULT 300,
	n_days int DEFAULT 60,
	end_day date DEFAULT '2024-06-28')
RETURNS TABLE (actor text, kind text, peer_group text)
LANGUAGE plpgsql VOLATILE
SET max_parallel_workers_per_gather = 0
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	first_day	date := end_day - n_days + 1;
	n_people	int;
BEGIN
	IF n_actors < 60 THEN
		RAISE EXCEPTION 'n_actors must be at least 60'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF n_days < 45 THEN
		RAISE EXCEPTION 'n_days must be at least 45'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'The ramp needs 28 days and a reference level before them.';
	END IF;
	PERFORM setseed(((seed::bigint * 7919) % 2000001 - 1000000) / 1000001.0);

	DROP TABLE IF EXISTS pg_temp.gp_roster, pg_temp.gp_days, pg_temp.gp_rows;

	/* Fixed actors: 5 service accounts, 13 injected, 3 hr, 4 new hires,
	 * 3 month-end reporters, the 6-person team that changes role. */
	CREATE TEMP TABLE gp_roster (
		id serial, actor text, kind text, grp text, mapped boolean,
		level float8, sd float8, offb float8, start_day date, mult float8);
	INSERT INTO gp_roster (actor, kind, grp)
	SELECT 'svc-etl-' || i, 'service', 'service' FROM generate_series(1, 5) i
	UNION ALL
	SELECT * FROM (VALUES
		('exfil-spike-1', 'exfil-spike', 'engineering'),
		('exfil-spike-2', 'exfil-spike', 'support'),
		('exfil-ramp-1', 'exfil-ramp', 'support'),
		('exfil-ramp-2', 'exfil-ramp', 'sales'),
		('exfil-newhire-1', 'exfil-newhire', 'support'),
		('exfil-newhire-2', 'exfil-newhire', 'engineering'),
		('exfil-offhours-1', 'exfil-offhours', 'engineering'),
		('exfil-offhours-2', 'exfil-offhours', 'analytics'),
		('exfil-spread-1', 'exfil-spread', 'support'),
		('exfil-spread-2', 'exfil-spread', 'sales'),
		('exfil-contractor-1', 'exfil-contractor', 'support'),
		('exfil-contractor-2', 'exfil-contractor', 'sales'),
		('exfil-steady-1', 'exfil-steady', 'engineering')) v
	UNION ALL
	SELECT 'monthend-' || i, 'month_end', (ARRAY['support', 'engineering', 'sales'])[i]
	  FROM generate_series(1, 3) i
	UNION ALL
	SELECT 'role-' || i, 'role_change', 'ops' FROM generate_series(1, 6) i
	UNION ALL
	SELECT 'hr-' || i, 'small_group', 'hr' FROM generate_series(1, 3) i
	UNION ALL
	SELECT 'newhire-' || i, 'new_hire',
		   (ARRAY['engineering', 'support', 'sales', 'analytics'])[i]
	  FROM generate_series(1, 4) i;

	/* Power users: 3% of the population, in analytics and engineering. */
	INSERT INTO gp_roster (actor, kind, grp)
	SELECT 'power-' || i, 'power', CASE WHEN i % 2 = 0 THEN 'analytics' ELSE 'engineering' END
	  FROM generate_series(1, greatest(2, n_actors * 3 / 100)) i;

	/* Everyone else: ordinary people in five groups. */
	n_people := n_actors - (SELECT count(*) FROM gp_roster);
	INSERT INTO gp_roster (actor, kind, grp)
	SELECT 'user-' || i,
		   CASE g WHEN 'finance' THEN 'quarter_end' WHEN 'sales' THEN 'team_double' ELSE 'normal' END,
		   g
	  FROM (SELECT i, CASE WHEN x < 0.25 THEN 'sales' WHEN x < 0.55 THEN 'support'
						   WHEN x < 0.70 THEN 'finance' WHEN x < 0.90 THEN 'engineering'
						   ELSE 'analytics' END AS g
			  FROM (SELECT i, random() AS x FROM generate_series(1, n_people) i ORDER BY i) q) p
	 ORDER BY i;

	/* Per-person parameters (log-normal level around the group's). */
	UPDATE gp_roster r SET
		mapped = NOT (r.kind = 'normal' AND u.m < 0.06),
		level = CASE WHEN r.kind = 'role_change' THEN 5.0 ELSE
				CASE r.grp WHEN 'service' THEN ln(2e6) WHEN 'sales' THEN 6.0
				  WHEN 'support' THEN 5.0 WHEN 'finance' THEN 6.5 WHEN 'engineering' THEN 6.5
				  WHEN 'analytics' THEN 7.5 WHEN 'hr' THEN 4.5 END END
				+ CASE WHEN r.kind = 'service' THEN 0.5
					   -- a contractor's level is the group's, times mult
					   WHEN r.kind = 'exfil-contractor' THEN 0 ELSE 0.7 END * u.n1
				+ CASE WHEN r.kind = 'power' THEN 2.5 ELSE 0 END,
		sd = CASE WHEN r.kind = 'service' THEN 0.25 ELSE 0.4 + 0.5 * u.u2 END,
		offb = CASE WHEN r.kind = 'service' THEN 0.95
					WHEN r.grp = 'support' AND u.u3 < 0.1 THEN 0.7
					ELSE 0.02 + 0.08 * u.u3 END,
		start_day = CASE WHEN r.kind = 'new_hire' THEN end_day - 1 - (u.u4 * 5)::int
						 WHEN r.kind = 'exfil-newhire' THEN end_day - 3
						 WHEN r.kind = 'exfil-contractor' THEN end_day - 6
						 ELSE first_day END,
		mult = CASE r.kind WHEN 'exfil-spike' THEN 20 + 40 * u.u5
				 WHEN 'exfil-ramp' THEN 8 + 7 * u.u5
				 WHEN 'exfil-newhire' THEN 30 + 50 * u.u5
				 WHEN 'exfil-offhours' THEN 6 + 4 * u.u5
				 WHEN 'exfil-spread' THEN 30 + 20 * u.u5
				 WHEN 'exfil-contractor' THEN 20 + 10 * u.u5
				 WHEN 'exfil-steady' THEN 3 + u.u5
				 ELSE 1 END
	  FROM (SELECT id, random() AS m, access_audit_test.randn() AS n1, random() AS u2,
				   random() AS u3, random() AS u4, random() AS u5
			  FROM gp_roster ORDER BY id) u
	 WHERE u.id = r.id;

	/* Daily activity and volume, before splitting over tables. */
	CREATE TEMP TABLE gp_days AS
	SELECT q.id, q.actor, q.kind, q.grp, q.day, v.vol, q.offb, q.mult
	  FROM (SELECT r.*, g.ts::date AS day,
				   extract(isodow FROM g.ts) >= 6 AS weekend,
				   g.ts::date IN (end_day - 17, end_day - 45) AS holiday,
				   random() AS act, access_audit_test.randn() AS e
			  FROM gp_roster r
			 CROSS JOIN generate_series(greatest(first_day, r.start_day), end_day, '1 day') AS g(ts)
			 ORDER BY r.id, g.ts) q
	 CROSS JOIN LATERAL (SELECT round(exp(
		q.level + q.sd * q.e
		+ CASE WHEN q.weekend AND q.kind <> 'service' THEN ln(0.4) ELSE 0 END
		+ CASE WHEN q.kind = 'quarter_end' AND q.day > end_day - 3 THEN ln(8) ELSE 0 END
		+ CASE WHEN q.kind = 'team_double' AND q.day > end_day - 20 THEN ln(2.2) ELSE 0 END
		+ CASE WHEN q.kind = 'month_end' AND q.day = access_audit_test.last_working_day(q.day)
			   THEN ln(8) ELSE 0 END
		+ CASE WHEN q.kind = 'role_change' AND q.day > end_day - 12 THEN 2.5 ELSE 0 END
		+ CASE WHEN q.kind = 'exfil-contractor' THEN ln(q.mult) ELSE 0 END
		+ CASE WHEN q.kind = 'exfil-steady' AND q.day > end_day - 25 THEN ln(q.mult) ELSE 0 END
		+ CASE WHEN q.kind = 'exfil-ramp' AND q.day > end_day - 28
			   THEN ln(q.mult) * (q.day - (end_day - 28)) / 28.0 ELSE 0 END
		)
		-- the dump comes on top of the day's ordinary work
		+ CASE WHEN q.kind IN ('exfil-spike', 'exfil-offhours', 'exfil-newhire') AND q.day = end_day
			   THEN exp(q.level + ln(q.mult)) ELSE 0 END
		)::bigint AS vol) v
	 WHERE CASE
			WHEN q.kind = 'service' THEN true
			WHEN q.day = end_day AND q.kind LIKE 'exfil-%' THEN true
			WHEN q.kind = 'month_end' AND q.day = access_audit_test.last_working_day(q.day) THEN true
			WHEN q.kind IN ('exfil-contractor', 'exfil-steady') AND NOT q.weekend
				 AND q.day > end_day - 25 THEN true
			WHEN q.holiday THEN q.act < 0.03
			WHEN q.weekend THEN q.act < 0.06
			ELSE q.act < 0.88
		   END
	 ORDER BY q.id, q.day;

	/*
	 * Split each day over one or two of the person's usual tables (the
	 * group has 8; tables t1 and t2 carry tagged columns).  The spread
	 * dumper adds, on end_day, 30-50 tables nobody in the group reads.
	 */
	CREATE TEMP TABLE gp_rows AS
	SELECT d.day, d.actor, t.relation, t.rows,
		   CASE WHEN t.relation ~ '\.t[12]$' THEN t.rows ELSE 0 END AS tagged_rows,
		   1 + t.rows / 500 AS statements,
		   round(t.rows * CASE WHEN d.kind = 'exfil-offhours' AND d.day = end_day THEN 0.95
							  ELSE least(1, greatest(0, d.offb + 0.05 * d.e)) END)::bigint
			 AS off_hours_rows
	  FROM (SELECT gd.*, random() AS two, random() AS share, access_audit_test.randn() AS e
			  FROM gp_days gd ORDER BY gd.id, gd.day) d
	 CROSS JOIN LATERAL (
		SELECT d.grp || '.t' || (1 + (d.id * 7 + 0) % 8) AS relation,
			   CASE WHEN d.two < 0.4 THEN round(d.vol * (0.3 + 0.5 * d.share))::bigint ELSE d.vol END AS rows
		UNION ALL
		SELECT d.grp || '.t' || (1 + (d.id * 7 + 3) % 8),
			   d.vol - round(d.vol * (0.3 + 0.5 * d.share))::bigint
		 WHERE d.two < 0.4) t
	 WHERE t.rows > 0
	 ORDER BY d.id, d.day, t.relation;

	INSERT INTO gp_rows
	SELECT end_day, r.actor, r.grp || '.x' || i,
		   round(exp(r.level - ln(2) + 0.3 * access_audit_test.randn()))::bigint, 0, 1,
		   0
	  FROM gp_roster r CROSS JOIN generate_series(1, r.mult::int) i
	 WHERE r.kind = 'exfil-spread'
	 ORDER BY r.id, i;

	EXECUTE format('TRUNCATE %s', target);
	EXECUTE format('INSERT INTO %s (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
					SELECT day, actor, relation, sum(rows), sum(tagged_rows), sum(statements), sum(off_hours_rows)
					  FROM pg_temp.gp_rows GROUP BY 1, 2, 3', target);

	/* The mapping rank_exporters reads. */
	DELETE FROM access_audit.actor_groups g WHERE g.note LIKE 'gen_population:%';
	INSERT INTO access_audit.actor_groups (actor, peer_group, bulk_user, note)
	SELECT r.actor, r.grp, r.kind = 'service', 'gen_population:' || r.kind
	  FROM gp_roster r WHERE r.mapped
	ON CONFLICT ON CONSTRAINT actor_groups_pkey DO UPDATE
		SET peer_group = excluded.peer_group, bulk_user = excluded.bulk_user, note = excluded.note;

	RETURN QUERY
	SELECT r.actor, r.kind, CASE WHEN r.mapped THEN r.grp ELSE 'default' END
	  FROM gp_roster r ORDER BY r.id;
END
$fn$;
