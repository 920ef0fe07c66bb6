-- Planner statistics hold values of their column: pg_stats shows sample
-- values (most_common_vals, histogram_bounds) to anyone who may read the
-- column, pg_stats_ext MCV lists to the table's owner.  Reading them is a
-- read of the tagged column without a scan of its table, so it is recorded.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cs_people (id int PRIMARY KEY, phone text, city text, zip text);
INSERT INTO cs_people
SELECT g, '555-' || lpad((g % 40)::text, 4, '0'), 'city' || (g % 7), 'z' || (g % 5)
  FROM generate_series(1, 2000) g;
SELECT access_audit.tag('cs_people', 'phone', 'pii:phone');
CREATE STATISTICS cs_people_phone (mcv) ON city, phone FROM cs_people;
CREATE STATISTICS cs_people_zip (mcv) ON city, zip FROM cs_people;
ANALYZE cs_people;
CREATE ROLE cs_reader;
CREATE ROLE cs_other;
GRANT SELECT (id, city, phone) ON cs_people TO cs_reader;
GRANT SELECT (id, city) ON cs_people TO cs_other;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- 1. sample values of the tagged column: recorded, 40 values exposed
SELECT attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename = 'cs_people' AND attname = 'phone';
-- 2. statistics without values (n_distinct, null_frac): not recorded
SELECT attname, n_distinct, null_frac FROM pg_stats
 WHERE tablename = 'cs_people' ORDER BY attname;
-- 3. values of untagged columns only: not recorded (the plan scans phone's
-- row too; it is counted where the nested loops return rows, after the
-- name filter)
SELECT attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename = 'cs_people' AND attname IN ('city', 'zip')
 ORDER BY attname;
-- 4. a role that may not read phone does not see its statistics: nothing
SET ROLE cs_other;
SELECT attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename = 'cs_people' ORDER BY attname;
RESET ROLE;
-- 5. a role that may read phone sees them: recorded under that role
SET ROLE cs_reader;
SELECT attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename = 'cs_people' ORDER BY attname;
RESET ROLE;
-- 6. extended statistics: the MCV list over (city, phone) is recorded.
-- So is the second query's: its plan hashes the statistics objects and
-- counts at the scan, before the name filter (on the safe side)
SELECT statistics_name, array_length(most_common_vals, 1) AS items
  FROM pg_stats_ext WHERE tablename = 'cs_people' AND statistics_name = 'cs_people_phone';
SELECT statistics_name, array_length(most_common_vals, 1) AS items
  FROM pg_stats_ext WHERE tablename = 'cs_people' AND statistics_name = 'cs_people_zip';
-- 7. the catalog itself (superuser), and COPY of the view
SELECT count(*) FROM pg_statistic s
 WHERE s.starelid = 'cs_people'::regclass AND s.stavalues1 IS NOT NULL;
COPY (SELECT most_common_vals FROM pg_stats
       WHERE tablename = 'cs_people' AND attname = 'phone') TO '/dev/null';
-- 8. a function that returns them
CREATE FUNCTION cs_sample() RETURNS text LANGUAGE sql
AS $$ SELECT histogram_bounds::text FROM pg_stats WHERE tablename = 'cs_people' AND attname = 'id' $$;
SELECT cs_sample() IS NOT NULL AS untagged_histogram;
CREATE OR REPLACE FUNCTION cs_sample() RETURNS text LANGUAGE sql
AS $$ SELECT most_common_vals::text FROM pg_stats WHERE tablename = 'cs_people' AND attname = 'phone' $$;
SELECT cs_sample() IS NOT NULL AS tagged_mcvs;
-- 10. values that reach only a filter (a function that may keep them) or an
-- error message are read too
CREATE FUNCTION cs_keep(text) RETURNS boolean LANGUAGE plpgsql
AS 'BEGIN RETURN false; END';
SELECT attname FROM pg_stats
 WHERE tablename = 'cs_people' AND attname = 'phone' AND cs_keep(most_common_vals::text);
SELECT attname FROM pg_stats
 WHERE tablename = 'cs_people' AND attname = 'phone' AND most_common_vals::text::int = 1;
DROP FUNCTION cs_keep(text);
-- 11. an expression index has statistics of its own, with sample values
-- of the expression: lower(phone) has phone's
CREATE INDEX cs_people_lower_phone ON cs_people (lower(phone));
CREATE INDEX cs_people_lower_city ON cs_people (lower(city));
ANALYZE cs_people;
SELECT tablename, attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename IN ('cs_people_lower_phone', 'cs_people_lower_city')
 ORDER BY 1;
-- 12. a cursor: one record for all its fetches; a prepared statement: one
-- per execution
BEGIN;
DECLARE cs_cur CURSOR FOR
  SELECT attname, most_common_vals FROM pg_stats WHERE tablename = 'cs_people' ORDER BY attname;
FETCH 2 FROM cs_cur;
FETCH 2 FROM cs_cur;
CLOSE cs_cur;
COMMIT;
PREPARE cs_prep AS
  SELECT array_length(most_common_vals::text::text[], 1) FROM pg_stats
   WHERE tablename = 'cs_people' AND attname = $1;
EXECUTE cs_prep('phone');
EXECUTE cs_prep('phone');
EXECUTE cs_prep('city');
DEALLOCATE cs_prep;
-- 9. a plan that reads them in parallel workers, where no hook sees the
-- rows: counted as a read of every statistic the role may see
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET parallel_leader_participation = off;
-- (the setting is debug_parallel_query from PostgreSQL 16 on)
SELECT CASE WHEN current_setting('server_version_num')::int >= 160000
            THEN 'debug_parallel_query' ELSE 'force_parallel_mode' END
       AS force_parallel \gset
SET :force_parallel = on;
SET ROLE cs_reader;
SELECT attname, array_length(most_common_vals::text::text[], 1) AS mcvs
  FROM pg_stats WHERE tablename = 'cs_people' AND attname = 'city';
SELECT attname, null_frac FROM pg_stats
 WHERE tablename = 'cs_people' AND attname = 'phone';
RESET ROLE;
RESET :force_parallel;
RESET parallel_leader_participation;
RESET parallel_tuple_cost;
RESET parallel_setup_cost;

SELECT access_audit.flush();
SELECT effective_role, command, relations, columns, tags, rows, tagged_rows, outcome, detail
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

DROP FUNCTION cs_sample();
DROP TABLE cs_people;
DROP ROLE cs_reader;
DROP ROLE cs_other;
