-- Values shown in errors of reads: a scan evaluates its filter and its
-- projection before it returns a row, so an error there (phone::int on
-- "555-3") shows a tagged value of a row the scan never returned.  That row
-- was read: the record (outcome error) counts it in tagged_rows, and
-- quotas charge it, so reading a table one caught error at a time is not
-- free.  (Before, such a record said 0 tagged rows and no quota moved.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
DROP ROLE IF EXISTS re_reader;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE re_reader LOGIN;
CREATE TABLE re_cust (id int PRIMARY KEY, city text, phone text);
INSERT INTO re_cust SELECT g, 'city' || g, '555-' || g FROM generate_series(1, 10) g;
SELECT access_audit.tag('re_cust', 'phone', 'pii:phone');
GRANT SELECT ON re_cust TO re_reader;
SELECT access_audit.set_quota('actor', 're_reader', 6, 'day', 'block') AS q \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start, current_user AS admin FROM access_audit.log \gset

\c - re_reader
\set VERBOSITY terse
-- in the projection, in the filter, under EXPLAIN ANALYZE
SELECT phone::int FROM re_cust WHERE id = 3;
SELECT id FROM re_cust WHERE phone::int = 5;
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT phone::int FROM re_cust WHERE id = 4;
-- caught, one value a statement
DO $$
BEGIN
  FOR i IN 5..7 LOOP
    BEGIN
      PERFORM phone::int FROM re_cust WHERE id = i;
    EXCEPTION WHEN invalid_text_representation THEN
      RAISE NOTICE 'caught: %', SQLERRM;
    END;
  END LOOP;
END $$;
-- the six rows the errors showed used up the day's quota of six
-- (messages name quota ids, which depend on the tests run before)
\set VERBOSITY sqlstate
SELECT phone FROM re_cust WHERE id = 10;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.drop_quota(:q);
SELECT access_audit.flush();
SELECT query, command, columns, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start AND command NOT LIKE 'QUOTA %'
 ORDER BY seq;

SET access_audit.maintenance = on;
DELETE FROM access_audit.alerts WHERE actor = 're_reader';
RESET access_audit.maintenance;
DROP TABLE re_cust;
DROP ROLE re_reader;
