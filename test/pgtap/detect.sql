/* test/pgtap/detect.sql */
--
-- pgTAP tests of the detection half: rank_exporters' score components on
-- small hand-made data with known answers, the reason text, argument
-- errors, check_exports/ack/alerts_open, and the ranking of injected
-- exfiltrators in the seeded population (test/gen_population.sql).
--
-- Run from the repository root against a database where access_audit is
-- installed:  pg_prove -d <db> test/pgtap/detect.sql
-- Everything happens in one transaction that is rolled back.

\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(108);

\i test/gen_population.sql

------------------------------------------------------------------------------
-- Hand-made data A, window day 2024-03-29.  Eight people in group 'hand'
-- read exactly 100 rows every day for 60 days (zero MAD).  On the window day
-- h-spike reads 10,000 rows and the new hire h-new, never seen before,
-- reads 5,000.  Every history is constant, so the weekday correction is 0
-- and the answers are exact:
--   self_z(h-spike) = (ln 10001 - ln 101) / 0.5 (the spread floor)
--   peers in the window: 8 x ln 101, ln 10001, ln 5001; median ln 101, MAD 0,
--   so s = 1.2533 * mean absolute deviation.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_a (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_a (day, actor, relation, rows, statements)
SELECT d::date, 'h-' || i, 'public.orders', 100, 1
  FROM generate_series(1, 8) i, generate_series('2024-01-29'::date, '2024-03-29', '1 day') d
UNION ALL
SELECT d::date, 'h-spike', 'public.orders', 100, 1
  FROM generate_series('2024-01-29'::date, '2024-03-28', '1 day') d
UNION ALL
SELECT '2024-03-29', 'h-spike', 'public.orders', 10000, 3
UNION ALL
SELECT '2024-03-29', 'h-new', 'public.orders', 5000, 2;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT 'h-' || i, 'hand' FROM generate_series(1, 8) i
UNION ALL SELECT 'h-spike', 'hand' UNION ALL SELECT 'h-new', 'hand';

CREATE TEMP TABLE rk_a AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_a');

SELECT is((SELECT count(*)::int FROM rk_a), 10, 'every actor active in the window is ranked');
SELECT is((SELECT actor FROM rk_a WHERE rank = 1), 'h-spike', 'the spike ranks first');
SELECT is((SELECT actor FROM rk_a WHERE rank = 2), 'h-new', 'the dumping new hire ranks second');
SELECT is((SELECT volume FROM rk_a WHERE actor = 'h-spike'), 10000::bigint, 'volume is the window total');
SELECT is((SELECT round(baseline_median::numeric, 6) FROM rk_a WHERE actor = 'h-spike'), 100.000000,
		  'baseline_median is the median daily volume');
SELECT is((SELECT baseline_mad FROM rk_a WHERE actor = 'h-spike'), 0.5::float8,
		  'zero MAD falls back to the 0.5 floor');
SELECT is((SELECT round(self_z::numeric, 6) FROM rk_a WHERE actor = 'h-spike'),
		  round(((ln(10001) - ln(101)) / 0.5)::numeric, 6),
		  'self_z of a clear spike is (ln 10001 - ln 101) / 0.5');
SELECT is((SELECT round(peer_z::numeric, 6) FROM rk_a WHERE actor = 'h-spike'),
		  round(((ln(10001) - ln(101))
				 / (1.2533 * ((ln(10001) - ln(101)) + (ln(5001) - ln(101))) / 10))::numeric, 6),
		  'peer_z of the spike against the group in the same window');
SELECT is((SELECT self_z FROM rk_a WHERE actor = 'h-new'), NULL::float8,
		  'a new hire without history has no self_z');
SELECT is((SELECT round(peer_z::numeric, 6) FROM rk_a WHERE actor = 'h-new'),
		  round(((ln(5001) - ln(101))
				 / (1.2533 * ((ln(10001) - ln(101)) + (ln(5001) - ln(101))) / 10))::numeric, 6),
		  'peer_z judges the new hire against the group');
SELECT is((SELECT round(score::numeric, 6) FROM rk_a WHERE actor = 'h-new'),
		  (SELECT round(peer_z::numeric, 6) FROM rk_a WHERE actor = 'h-new'),
		  'without history the score is peer_z alone');
SELECT is((SELECT baseline_median FROM rk_a WHERE actor = 'h-new'), NULL::float8,
		  'no history: no baseline median');
SELECT is((SELECT self_z FROM rk_a WHERE actor = 'h-1'), 0::float8,
		  'a constant history with an ordinary day gives self_z 0, not NaN');
SELECT is((SELECT score FROM rk_a WHERE actor = 'h-1'), 0::float8, 'an ordinary day scores 0');
SELECT is((SELECT count(*)::int FROM rk_a
			WHERE score IS NULL OR score IN ('NaN', 'Infinity', '-Infinity')
			   OR self_z IN ('NaN', 'Infinity', '-Infinity')
			   OR peer_z IN ('NaN', 'Infinity', '-Infinity')), 0,
		  'no score or z is NULL, NaN or infinite');
SELECT is((SELECT reason FROM rk_a WHERE actor = 'h-spike'),
		  'exported 10,000 rows on 2024-03-29 (UTC), 100x their 30-day median of 100 and 100x their peers'' median',
		  'the reason gives the volume with separators and both multipliers');
SELECT is((SELECT reason FROM rk_a WHERE actor = 'h-new'),
		  'exported 5,000 rows on 2024-03-29 (UTC) with no history of their own, 50x the median of hand (100)',
		  'the reason for a new hire says there is no history');
SELECT ok((SELECT score FROM rk_a WHERE actor = 'h-spike') > 4,
		  'the spike scores above the default alert threshold 4');

-- The same spike read at night from tables never read before scores more.
UPDATE hand_a SET off_hours_rows = 9500 WHERE actor = 'h-spike' AND day = '2024-03-29';
SELECT ok((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_a')
			WHERE actor = 'h-spike')
		  > (SELECT score FROM rk_a WHERE actor = 'h-spike'),
		  'an off-hours rise adds to the score');
SELECT matches((SELECT reason FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_a')
				 WHERE actor = 'h-spike'),
			   '; 95% outside business hours$', 'the reason names the off-hours share');

-- A batch account is judged against its own history only.
UPDATE access_audit.actor_groups SET bulk_user = true WHERE actor = 'h-spike';
SELECT is((SELECT peer_z FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_a')
			WHERE actor = 'h-spike'), NULL::float8, 'a bulk user gets no peer_z');
SELECT matches((SELECT reason FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_a')
				 WHERE actor = 'h-spike'),
			   'its 30-day median of 100 \(bulk account', 'the reason says a bulk account is judged on its own');
UPDATE access_audit.actor_groups SET bulk_user = false WHERE actor = 'h-spike';

-- A 7-day window sums the days: same-length totals are compared.
SELECT is((SELECT volume FROM access_audit.rank_exporters('7 days', '30 days', '2024-03-29 12:00', 'hand_a')
			WHERE actor = 'h-1'), 700::bigint, 'a 7-day window sums seven days');

-- The window's end: as of T means the data up to T.  As of midnight the
-- window is the day before (midnight belongs to the day starting there); any
-- later moment of a day includes that day so far.
SELECT is((SELECT actor FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-30 00:00', 'hand_a')
			WHERE rank = 1), 'h-spike', 'as of midnight the window is the day that just ended');
SELECT is((SELECT round(self_z::numeric, 6) FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-30 00:00', 'hand_a')
			WHERE actor = 'h-spike'), (SELECT round(self_z::numeric, 6) FROM rk_a WHERE actor = 'h-spike'),
		  'as of midnight ranks the previous day exactly as from within it');
SELECT is((SELECT count(*)::int FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 00:00', 'hand_a')
			WHERE actor IN ('h-spike', 'h-new')), 1,
		  'as of the midnight starting the spike day, the spike day is not in the window');
SELECT is((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 00:00', 'hand_a')
			WHERE actor = 'h-spike'), 0::float8,
		  'as of the spike day''s midnight the spike is not yet seen (and not in the baseline)');
SELECT is((SELECT actor FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 00:00:00.000001', 'hand_a')
			WHERE rank = 1), 'h-spike', 'one microsecond into the day, that day counts');
SELECT is((SELECT volume FROM access_audit.rank_exporters('7 days', '30 days', '2024-03-30 00:00', 'hand_a')
			WHERE actor = 'h-1'), 700::bigint, 'a 7-day window as of midnight holds the 7 days before it');
SELECT is(access_audit.window_last_day('2024-04-01 00:00'), '2024-03-31'::date,
		  'window_last_day of a midnight is the day before');
SELECT is(access_audit.window_last_day('2024-04-01 08:00'), '2024-04-01'::date,
		  'window_last_day of a moment within a day is that day');

-- Drill-down: h-spike's daily series with their band and the peers' median.
CREATE TEMP TABLE ser_a AS
SELECT * FROM access_audit.actor_series('h-spike', '2024-03-20', '2024-03-29', source => 'hand_a');
SELECT is((SELECT count(*)::int FROM ser_a), 10, 'actor_series: one row per day of the period');
SELECT is((SELECT volume FROM ser_a WHERE day = '2024-03-29'), 10000::bigint, 'actor_series: the day''s volume');
SELECT is((SELECT statements FROM ser_a WHERE day = '2024-03-29'), 3::bigint, 'actor_series: the day''s statements');
SELECT is((SELECT round(baseline_median::numeric, 6) FROM ser_a WHERE day = '2024-03-29'), 100.000000,
		  'actor_series: the baseline median before the day');
SELECT ok((SELECT volume > baseline_high AND baseline_low <= 100 FROM ser_a WHERE day = '2024-03-29'),
		  'actor_series: the spike is above the band, which holds the usual 100');
SELECT is((SELECT peer_median FROM ser_a WHERE day = '2024-03-29'), 100::float8,
		  'actor_series: the peers'' median of the day (the actor excluded)');
SELECT is((SELECT peer_group || ':' || peers_active FROM ser_a WHERE day = '2024-03-29'), 'hand:9',
		  'actor_series: the peer group and how many peers were active');
SELECT throws_ok($$SELECT * FROM access_audit.actor_series('h-spike', '2024-03-29', '2024-03-01', source => 'hand_a')$$,
				 '22023', 'period_start must not be after period_end', 'actor_series refuses a reversed period');
SELECT throws_ok($$SELECT * FROM access_audit.actor_series(NULL)$$,
				 '22004', 'actor must not be null', 'actor_series refuses a NULL actor');

------------------------------------------------------------------------------
-- Hand-made data B: slow ramp.  Seven people read 100 rows a day for 70
-- days; r-ramp does too until 28 days before the window day, then grows
-- smoothly to 20x.  No single day is a spike against the day before.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_b (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_b (day, actor, relation, rows)
SELECT d::date, 'r-' || i, 'public.orders', 100
  FROM generate_series(1, 7) i, generate_series('2024-01-20'::date, '2024-03-29', '1 day') d
UNION ALL
SELECT d::date, 'r-ramp', 'public.orders',
	   round(100 * exp(ln(20) * greatest(0, d::date - ('2024-03-29'::date - 28)) / 28.0))::bigint
  FROM generate_series('2024-01-20'::date, '2024-03-29', '1 day') d;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT 'r-' || i, 'rampers' FROM generate_series(1, 7) i UNION ALL SELECT 'r-ramp', 'rampers';

CREATE TEMP TABLE rk_b AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-29 12:00', 'hand_b');
SELECT is((SELECT actor FROM rk_b WHERE rank = 1), 'r-ramp', 'the slow ramp ranks first');
SELECT ok((SELECT ramp_z FROM rk_b WHERE actor = 'r-ramp') > 20,
		  'ramp_z of a 28-day ramp to 20x is far above the CUSUM alarm level 5');
SELECT is((SELECT max(ramp_z) FROM rk_b WHERE actor <> 'r-ramp'), 0::float8,
		  'flat peers have ramp_z 0');
SELECT ok((SELECT self_z FROM rk_b WHERE actor = 'r-ramp') < 3,
		  'the last day of the ramp is not a spike against the (already rising) baseline');
SELECT matches((SELECT reason FROM rk_b WHERE actor = 'r-ramp'),
			   '^slow ramp: over the last 28 days daily volume rose to [0-9.]+x their earlier median of 100 rows',
			   'the reason of a ramp says so, with the earlier level');
-- A ramp alerts on the days that carry it.  The next day r-ramp reads
-- nothing: the CUSUM is still up, but that day is no reason for an alert
-- (ramps alerted again on every quiet day while their CUSUM stayed up).
SELECT cmp_ok((SELECT score FROM rk_b WHERE actor = 'r-ramp'), '>', 2.9::float8,
			  'the ramp scores above the default alert threshold on its day');
SELECT cmp_ok((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-31 00:00', 'hand_b')
				WHERE actor = 'r-ramp'), '<', 1::float8,
			  'a day without exports after the ramp raises no ramp alert');

------------------------------------------------------------------------------
-- Hand-made data C: cold start.  Eight store_staff read 100 rows on every
-- weekday for 60 days; the contractor c-new starts on Monday 2024-03-25 and
-- reads 2,400 rows (24x) every day of their first week.  Their short
-- history is the exfiltration, so their own baseline sees no change; the
-- peers must carry the score.  c-old reads 2,400 every day for 60 days: a
-- long-standing heavy user, for contrast.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_c (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_c (day, actor, relation, rows, statements)
SELECT d::date, 'st-' || i, 'public.orders', 100, 1
  FROM generate_series(1, 8) i, generate_series('2024-01-29'::date, '2024-03-29', '1 day') d
 WHERE extract(isodow FROM d) < 6
UNION ALL
SELECT d::date, 'c-new', 'public.orders', 2400, 5
  FROM generate_series('2024-03-25'::date, '2024-03-29', '1 day') d
UNION ALL
SELECT d::date, 'c-old', 'public.orders', 2400, 5
  FROM generate_series('2024-01-29'::date, '2024-03-29', '1 day') d
 WHERE extract(isodow FROM d) < 6;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT 'st-' || i, 'store_staff' FROM generate_series(1, 8) i
UNION ALL SELECT 'c-new', 'store_staff' UNION ALL SELECT 'c-old', 'store_staff';

CREATE TEMP TABLE rk_c AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-30 00:00', 'hand_c');
SELECT is((SELECT actor FROM rk_c WHERE rank = 1), 'c-new',
		  'cold start: a contractor at 24x their peers from day one ranks first');
SELECT cmp_ok((SELECT score FROM rk_c WHERE actor = 'c-new'), '>', 2.9::float8,
			  'cold start: the contractor scores above the default alert threshold');
SELECT is((SELECT reason FROM rk_c WHERE actor = 'c-new'),
		  'exported 2,400 rows on 2024-03-29 (UTC) with 4 days of history, 24x the median of store_staff (100) and 24x it on average over their 5 active days, judged against peers until 10 days of history',
		  'cold start: the reason says how much history there is and compares with the peer group');
SELECT cmp_ok((SELECT score FROM rk_c WHERE actor = 'c-old'), '<', 1::float8,
			  'with enough history, a steady heavy user (24x peers for months) stays quiet');
SELECT cmp_ok((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-26 00:00', 'hand_c')
				WHERE actor = 'c-new'), '>', 2.9::float8,
			  'cold start: the contractor already stands out on their first day');

-- Warm-up: an installation with three days of data judges everyone against
-- peers, says so, and gives the same answer on each of those days.
CREATE TEMP TABLE hand_w AS SELECT * FROM hand_c WHERE day >= '2024-03-25';
CREATE TEMP TABLE rk_w AS
SELECT d.day, r.* FROM generate_series('2024-03-26'::date, '2024-03-28', '1 day') d(day),
	   LATERAL access_audit.rank_exporters('1 day', '30 days', d.day + time '00:00', 'hand_w') r;
SELECT is((SELECT count(*)::int FROM rk_w WHERE actor = 'c-new' AND score > 2.9), 3,
		  'warm-up: the contractor is above the alert threshold on each of the first days');
SELECT is((SELECT count(*)::int FROM rk_w WHERE actor LIKE 'st-%' AND score > 1), 0,
		  'warm-up: ordinary people stay far below it on each of the first days');
SELECT is((SELECT count(*)::int FROM rk_w WHERE actor = 'c-new' AND rank = 1), 3,
		  'warm-up: the contractor ranks first on each of the first days');
SELECT matches((SELECT reason FROM rk_w WHERE actor = 'st-1' AND day = '2024-03-28'),
			   '; the installation has 3 days of data, too little to judge anyone against their own history$',
			   'warm-up: the reason says what a new installation cannot tell');

------------------------------------------------------------------------------
-- Hand-made data D: calendar rhythm.  Eight people in fin read 1,000 rows on
-- every weekday from January to May 2024; me-rep does too but reads 8,000
-- (8x) on the last working day of every month.  On Friday 2024-05-31, the
-- last working day of May, me-rep reads 8,000 as usual and fin-x, who never
-- did so before, reads 8,000 too.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_d (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_d (day, actor, relation, rows, statements)
SELECT d::date, a, 'public.ledger',
	   CASE WHEN a = 'me-rep' AND d::date = access_audit_test.last_working_day(d::date) THEN 8000
			WHEN a = 'fin-x' AND d::date = '2024-05-31' THEN 8000
			ELSE 1000 END, 1
  FROM unnest(ARRAY['fin-1', 'fin-2', 'fin-3', 'fin-4', 'fin-5', 'fin-6', 'fin-7', 'fin-8', 'me-rep', 'fin-x']) a,
	   generate_series('2024-01-02'::date, '2024-05-31', '1 day') d
 WHERE extract(isodow FROM d) < 6;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT a, 'fin' FROM unnest(ARRAY['fin-1', 'fin-2', 'fin-3', 'fin-4', 'fin-5', 'fin-6', 'fin-7', 'fin-8', 'me-rep', 'fin-x']) a;

CREATE TEMP TABLE rk_d AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-06-01 00:00', 'hand_d');
SELECT is((SELECT actor FROM rk_d WHERE rank = 1), 'fin-x',
		  'calendar: a first-time month-end export ranks first');
SELECT cmp_ok((SELECT score FROM rk_d WHERE actor = 'fin-x'), '>', 2.9::float8,
			  'calendar: the first-time month-end export scores above the alert threshold');
SELECT cmp_ok((SELECT score FROM rk_d WHERE actor = 'me-rep'), '<', 1::float8,
			  'calendar: the month-end reporter''s usual 8x at month end is discounted');
SELECT matches((SELECT reason FROM rk_d WHERE actor = 'me-rep'),
			   'their usual at month end of 8,000 .*; usual at month end \(8\.0x their ordinary level on 4 of 4 earlier ones\)',
			   'calendar: the reason explains the discount');
SELECT cmp_ok((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-05-30 00:00', 'hand_d')
				WHERE actor = 'me-rep'), '<', 1::float8,
			  'calendar: on an ordinary day the reporter is ordinary');
UPDATE hand_d SET rows = 80000 WHERE actor = 'me-rep' AND day = '2024-05-31';
SELECT cmp_ok((SELECT score FROM access_audit.rank_exporters('1 day', '30 days', '2024-06-01 00:00', 'hand_d')
				WHERE actor = 'me-rep'), '>', 2.9::float8,
			  'calendar: 10x beyond the month-end usual still alerts');

------------------------------------------------------------------------------
-- Argument errors.
------------------------------------------------------------------------------
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters(NULL)$$, '22004',
				 'window must not be null', 'NULL window');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', NULL)$$, '22004',
				 'baseline must not be null', 'NULL baseline');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '30 days', NULL)$$, '22004',
				 'as_of must not be null', 'NULL as_of');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '30 days', now(), NULL)$$, '22004',
				 'source must not be null', 'NULL source');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('0')$$, '22023',
				 'window must be positive', 'zero window');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('-1 day')$$, '22023',
				 'window must be positive', 'negative window');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '-30 days')$$, '22023',
				 'baseline must be positive', 'negative baseline');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('40 days', '30 days')$$, '22023',
				 'window must not be longer than baseline', 'window longer than baseline');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 hour')$$, '22023',
				 'window must be a whole number of days', 'a window under a day is refused, not counted as a day');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('36 hours')$$, '22023',
				 'window must be a whole number of days', 'a window of a day and a half is refused');
SELECT throws_ok($$SELECT access_audit.check_exports(4, '1 hour')$$, '22023',
				 'window must be a whole number of days', 'check_exports refuses a window under a day');
CREATE TEMP TABLE no_off (day date, actor text, relation text, rows bigint, tagged_rows bigint);
CREATE TEMP TABLE text_rows (day date, actor text, relation text, rows text, tagged_rows bigint, off_hours_rows bigint);
CREATE TEMP SEQUENCE not_a_table;
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '30 days', now(), 'no_off')$$, '42703',
				 'source "no_off" has no column "off_hours_rows"', 'source without a required column');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '30 days', now(), 'text_rows')$$, '42804',
				 'column "rows" of source "text_rows" has type text, expected bigint', 'source column of the wrong type');
SELECT throws_ok($$SELECT * FROM access_audit.rank_exporters('1 day', '30 days', now(), 'not_a_table')$$, '42809',
				 'source "not_a_table" is not a table or view', 'source that is not a table');
SELECT throws_ok($$SELECT access_audit.check_exports(NULL)$$, '22004', 'threshold must not be null', 'NULL threshold');
SELECT throws_ok($$SELECT access_audit.check_exports(-1)$$, '22023', 'threshold must be positive', 'negative threshold');
SELECT throws_ok($$SELECT access_audit.check_exports(6, '0')$$, '22023', 'window must be positive', 'check_exports zero window');
SELECT throws_ok($$SELECT access_audit.ack(NULL)$$, '22004', 'alert_id must not be null', 'ack of NULL');
SELECT throws_ok($$SELECT access_audit.ack(-1)$$, 'P0002', 'alert -1 does not exist', 'ack of a missing alert');

------------------------------------------------------------------------------
-- check_exports, ack, alerts_open and daily_exports on access_audit.actor_daily
-- with days relative to today.  The append-only guard refuses writes to the
-- roll-up outside maintenance mode, so the test data goes in under it.
------------------------------------------------------------------------------
SET LOCAL access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements)
SELECT access_audit.business_day(now()) - g, 'ce-' || i, 'public.orders', 100, 0, 1
  FROM generate_series(1, 8) i, generate_series(0, 45) g
UNION ALL
SELECT access_audit.business_day(now()) - g, 'ce-thief', 'public.orders', 100, 0, 1
  FROM generate_series(1, 45) g
UNION ALL
SELECT access_audit.business_day(now()), 'ce-thief', 'public.orders', 60000, 0, 10
UNION ALL
SELECT access_audit.business_day(now()), 'ce-thief', 'public.customers', 100, 40000, 5;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT 'ce-' || i, 'ce' FROM generate_series(1, 8) i UNION ALL SELECT 'ce-thief', 'ce';
RESET access_audit.maintenance;

SELECT is((SELECT volume FROM access_audit.daily_exports
			WHERE actor = 'ce-thief' AND day = access_audit.business_day(now())), 100000::bigint,
		  'daily_exports sums greatest(rows, tagged_rows) over relations');
SELECT is((SELECT relations FROM access_audit.daily_exports
			WHERE actor = 'ce-thief' AND day = access_audit.business_day(now())), 2,
		  'daily_exports counts relations');

CREATE TEMP TABLE ce_before AS SELECT count(*) AS n FROM access_audit.alerts;
SELECT ok(access_audit.check_exports() >= 1, 'check_exports raises the alert');
SELECT is(access_audit.check_exports(), 0, 'a second run in the same window raises nothing');
SELECT is((SELECT count(*)::int FROM access_audit.alerts WHERE actor = 'ce-thief'), 1,
		  'exactly one alert row for the actor');
SELECT is((SELECT count(*)::int FROM access_audit.alerts WHERE actor LIKE 'ce-%' AND actor <> 'ce-thief'), 0,
		  'no alert for the ordinary actors');
SELECT matches((SELECT reason FROM access_audit.alerts WHERE actor = 'ce-thief'),
			   '^exported 100,000 rows on [0-9]{4}-[0-9]{2}-[0-9]{2} \(UTC\), 1,000x their 30-day median of 100 and 1,000x their peers'' median$',
			   'the alert carries the reason');
SELECT is((SELECT count(*)::int FROM access_audit.alerts a, jsonb_each(a.detail) e
			WHERE a.actor = 'ce-thief' AND e.key IN ('self_z', 'peer_z', 'baseline_mad')
			  AND e.value::text ~ '^-?[0-9]+(\.[0-9]{1,2})?$'), 3,
		  'the alert''s detail holds rounded scores');
SELECT ok((SELECT alert_id FROM access_audit.alerts WHERE actor = 'ce-thief')
		  IN (SELECT alert_id FROM access_audit.alerts_open), 'the new alert is open');

CREATE TEMP TABLE ce_ack AS
SELECT access_audit.ack((SELECT alert_id FROM access_audit.alerts WHERE actor = 'ce-thief'), 'looked at it') AS ack_id;
SELECT is((SELECT count(*)::int FROM access_audit.alert_acks k JOIN ce_ack c USING (ack_id)
			WHERE k.note = 'looked at it' AND k.acked_by = session_user
			  AND k.alert_id = (SELECT alert_id FROM access_audit.alerts WHERE actor = 'ce-thief')), 1,
		  'ack inserts one row into alert_acks');
SELECT ok((SELECT alert_id FROM access_audit.alerts WHERE actor = 'ce-thief')
		  NOT IN (SELECT alert_id FROM access_audit.alerts_open), 'an acknowledged alert is no longer open');

------------------------------------------------------------------------------
-- Hand-made data T: a ramp inside a team that rises together.  Eight people
-- in crew read 100 rows every weekday for ten weeks; for the last 20 days
-- all of them read 220 (the team's work doubled).  t-ramp grows from 100 to
-- 1,500 rows a day over the last 28 days.  The team's rise is taken off the
-- ramp, in ln units before standardising: the crew stays flat, and what
-- remains of t-ramp's (about 7x beyond the team) is still a ramp.  Taking
-- the team's rise off after clipping, in the peers' SD units, left a CUSUM
-- of 8 and a score of 2.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_t (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_t (day, actor, relation, rows, statements)
SELECT d::date, 'cr-' || i, 'public.orders', CASE WHEN d > date '2024-03-29' - 20 THEN 220 ELSE 100 END, 1
  FROM generate_series(1, 8) i, generate_series('2024-01-20'::date, '2024-03-29', '1 day') d
 WHERE extract(isodow FROM d) < 6
UNION ALL
SELECT d::date, 't-ramp', 'public.orders',
	   round(100 * exp(ln(15) * greatest(0, d::date - (date '2024-03-29' - 28)) / 28.0)), 1
  FROM generate_series('2024-01-20'::date, '2024-03-29', '1 day') d
 WHERE extract(isodow FROM d) < 6;
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT 'cr-' || i, 'crew' FROM generate_series(1, 8) i UNION ALL SELECT 't-ramp', 'crew';
CREATE TEMP TABLE rk_t AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-30 00:00', 'hand_t');
SELECT cmp_ok((SELECT ramp_z FROM rk_t WHERE actor = 't-ramp'), '>', 15::float8,
			  'team ramp: a ramp to 15x in a team that rose 2.2x keeps a CUSUM above 15');
SELECT cmp_ok((SELECT score FROM rk_t WHERE actor = 't-ramp'), '>', 2.9::float8,
			  'team ramp: it scores above the default alert threshold');
SELECT is((SELECT max(ramp_z) FROM rk_t WHERE actor LIKE 'cr-%'), 0::float8,
		  'team ramp: the team''s shared rise is no ramp for its members');
SELECT matches((SELECT reason FROM rk_t WHERE actor = 't-ramp'),
			   '^slow ramp: over the last 28 days daily volume rose to [0-9.]+x their earlier median of [0-9]+ rows',
			   'team ramp: the reason names the ramp');

------------------------------------------------------------------------------
-- Hand-made data P: what the reasons say.  Six people in desk read 100 rows
-- every weekday for six weeks, p-one 1 row.  On 2024-03-29 p-probe's
-- statements ran leaky filters (a LIKE on an email) over 20,000 rows of a
-- tagged table and returned 1 row, a count: a probe, which still scores but
-- is not called an export.  p-one reads their 1 row.
------------------------------------------------------------------------------
CREATE TEMP TABLE hand_p (LIKE access_audit.actor_daily INCLUDING ALL);
INSERT INTO hand_p (day, actor, relation, rows, tagged_rows, statements)
SELECT d::date, v.a, 'public.customers', v.n, v.n, 1
  FROM (VALUES ('p-1', 100), ('p-2', 100), ('p-3', 100), ('p-4', 100), ('p-5', 100),
			   ('p-probe', 100), ('p-one', 1)) v(a, n),
	   generate_series('2024-02-19'::date, '2024-03-28', '1 day') d
 WHERE extract(isodow FROM d) < 6
UNION ALL
SELECT '2024-03-29', v.a, 'public.customers', v.r, v.t, 2
  FROM (VALUES ('p-1', 100, 100), ('p-2', 100, 100), ('p-3', 100, 100), ('p-4', 100, 100),
			   ('p-5', 100, 100), ('p-probe', 1, 20000), ('p-one', 1, 1)) v(a, r, t);
INSERT INTO access_audit.actor_groups (actor, peer_group)
SELECT a, 'desk' FROM unnest(ARRAY['p-1', 'p-2', 'p-3', 'p-4', 'p-5', 'p-probe', 'p-one']) a;
CREATE TEMP TABLE rk_p AS
SELECT * FROM access_audit.rank_exporters('1 day', '30 days', '2024-03-30 00:00', 'hand_p');
SELECT is((SELECT actor FROM rk_p WHERE rank = 1), 'p-probe',
		  'reasons: a probe over 20,000 rows still ranks first');
SELECT matches((SELECT reason FROM rk_p WHERE actor = 'p-probe'),
			   '^probed 20,000 rows with filters or aggregates on tagged columns \(1 row returned\) on 2024-03-29 \(UTC\), 200x their 30-day median of 100',
			   'reasons: a count-only probe is called a probe, not an export');
SELECT matches((SELECT reason FROM rk_p WHERE actor = 'p-one'),
			   '^exported 1 row on 2024-03-29 \(UTC\), ',
			   'reasons: one row is "1 row"');
SELECT matches((SELECT reason FROM access_audit.rank_exporters('7 days', '30 days', '2024-03-30 00:00', 'hand_p')
				 WHERE actor = 'p-1'),
			   '^exported 500 rows from 2024-03-23 to 2024-03-29 \(UTC\)',
			   'reasons: a longer window is named by its first and last day, with the time zone');

------------------------------------------------------------------------------
-- Seeded population: 300 actors x 60 days, 13 injected exfiltrators among
-- legitimate heavy users (bench/detect_eval.sh reports 1,000 actors x 90
-- days).  The bounds below hold for these seeds with a margin of one or two.
------------------------------------------------------------------------------
CREATE TEMP TABLE ev (LIKE access_audit.actor_daily INCLUDING ALL);
CREATE FUNCTION pg_temp.eval_seed(seed int)
RETURNS TABLE (injected int, injected_top10 int, injected_top13 int, worst_injected int)
LANGUAGE plpgsql
AS $$
BEGIN
	-- two statements: the ranking must see the generated rows
	CREATE TEMP TABLE IF NOT EXISTS ro (actor text, kind text, peer_group text);
	TRUNCATE ro;
	INSERT INTO ro SELECT * FROM access_audit_test.gen_population(seed, 'ev', 300, 60);
	RETURN QUERY
	SELECT (count(*) FILTER (WHERE ro.kind LIKE 'exfil-%'))::int,
		   (count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 10))::int,
		   (count(*) FILTER (WHERE ro.kind LIKE 'exfil-%' AND rk.rank <= 13))::int,
		   max(rk.rank) FILTER (WHERE ro.kind LIKE 'exfil-%')
	  FROM ro JOIN access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') rk
		ON rk.actor = ro.actor;
END
$$;
CREATE TEMP TABLE ev_res AS
SELECT s.seed, r.* FROM unnest(ARRAY[2, 4, 7, 1, 3]) s(seed), LATERAL pg_temp.eval_seed(s.seed) r;

SELECT is((SELECT min(injected) FROM ev_res), 13, 'the generator injects 13 exfiltrators');
SELECT cmp_ok((SELECT min(injected_top10) FROM ev_res), '>=', 8,
			  'every seed: at least 8 of the top 10 are injected exfiltrators');
SELECT cmp_ok((SELECT sum(injected_top10)::int FROM ev_res), '>=', 43,
			  'over five seeds: precision@10 at least 0.86');
SELECT cmp_ok((SELECT min(injected_top13) FROM ev_res), '>=', 11,
			  'every seed: at least 11 of the 13 injected rank in the top 13');
SELECT is((SELECT injected_top10 FROM pg_temp.eval_seed(7)), (SELECT injected_top10 FROM ev_res WHERE seed = 7),
		  'seed 7 again: same ranks from the same seed');
SELECT is((SELECT count(*)::int FROM ro
			JOIN access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') r USING (actor)
		   WHERE ro.kind = 'service' AND r.rank <= 20), 0,
		  'bulk service accounts exporting millions a day stay out of the top 20');
SELECT is((SELECT count(*)::int FROM ro
			JOIN access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') r USING (actor)
		   WHERE ro.kind IN ('month_end', 'role_change') AND r.rank <= 20), 0,
		  'month-end reporters on a month end and a team that changed role stay out of the top 20');
SELECT cmp_ok((SELECT r.rank FROM ro
				 JOIN access_audit.rank_exporters('1 day', '30 days', '2024-06-28 12:00', 'ev') r USING (actor)
				WHERE ro.kind = 'exfil-contractor' ORDER BY r.rank DESC LIMIT 1), '<=', 13,
			  'contractors exporting 20-30x their peers from their first day rank in the top 13');

SELECT * FROM finish();
ROLLBACK;
