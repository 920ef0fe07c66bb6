-- Capture through cursors: one record per cursor, rows summed over every
-- FETCH; cursors closed by COMMIT, ROLLBACK or an error; WITH HOLD
-- cursors; cursors in PL/pgSQL.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cc_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cc_customers
  SELECT g, 'name' || g, '555-' || g, 'Oslo' FROM generate_series(1, 10) g;
SELECT access_audit.tag('cc_customers', 'phone', 'pii:phone');
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- FETCHes add up; the record is made when the cursor closes
BEGIN;
DECLARE c1 CURSOR FOR SELECT phone FROM cc_customers;
FETCH 2 FROM c1;
FETCH 3 FROM c1;
MOVE 1 IN c1;
CLOSE c1;
COMMIT;
-- no record: a cursor closed, or left at COMMIT, before its first FETCH
BEGIN;
DECLARE c0 CURSOR FOR SELECT phone FROM cc_customers;
CLOSE c0;
DECLARE c00 CURSOR FOR SELECT phone FROM cc_customers;
COMMIT;
-- a cursor left open at COMMIT
BEGIN;
DECLARE c2 CURSOR FOR SELECT id FROM cc_customers WHERE phone <> '555-3';
FETCH 4 FROM c2;
COMMIT;
-- a cursor left open at ROLLBACK: the rows were seen all the same
BEGIN;
DECLARE c3 CURSOR FOR SELECT phone FROM cc_customers;
FETCH 2 FROM c3;
ROLLBACK;
-- ROLLBACK TO SAVEPOINT closes a cursor opened after the savepoint
BEGIN;
SAVEPOINT s;
DECLARE c4 CURSOR FOR SELECT phone FROM cc_customers;
FETCH 1 FROM c4;
ROLLBACK TO SAVEPOINT s;
COMMIT;
-- an error in a later FETCH: outcome error, the rows fetched so far
BEGIN;
DECLARE c5 CURSOR FOR SELECT phone, 10 / (7 - id) AS x FROM cc_customers;
FETCH 3 FROM c5;
FETCH 3 FROM c5;
FETCH 3 FROM c5;
ROLLBACK;
-- WITH HOLD: at COMMIT the rest of the result is materialized for the
-- client, and the record, made then, counts those rows too
BEGIN;
DECLARE h1 CURSOR WITH HOLD FOR SELECT phone FROM cc_customers;
FETCH 2 FROM h1;
COMMIT;
FETCH 3 FROM h1;
CLOSE h1;
-- a WITH HOLD cursor declared outside a transaction block is materialized
-- at once
DECLARE h2 CURSOR WITH HOLD FOR SELECT phone FROM cc_customers WHERE id < 4;
FETCH ALL FROM h2;
CLOSE h2;
-- SCROLL: fetching again counts again
BEGIN;
DECLARE s1 SCROLL CURSOR FOR SELECT phone FROM cc_customers WHERE id < 4;
FETCH ALL FROM s1;
FETCH BACKWARD 2 FROM s1;
CLOSE s1;
COMMIT;
-- psql's FETCH_COUNT pages through a cursor (psql 15 and 16: the log shows
-- psql's DECLARE _psql_cursor, left out of the listing below) or fetches
-- the rows in chunks (psql 17 on)
\set FETCH_COUNT 4
SELECT phone FROM cc_customers WHERE id <= 9;
\unset FETCH_COUNT
-- PL/pgSQL FOR loops and explicit cursors run nested
DO $$
DECLARE
  r record;
  n int := 0;
  cur CURSOR FOR SELECT phone FROM cc_customers WHERE id > 6;
BEGIN
  FOR r IN SELECT phone FROM cc_customers LOOP
    n := n + 1;
  END LOOP;
  OPEN cur;
  FETCH cur INTO r;
  FETCH cur INTO r;
  CLOSE cur;
END $$;

SELECT access_audit.flush();
SELECT regexp_replace(query, '^DECLARE _psql_cursor NO SCROLL CURSOR FOR\n', '')
         AS query, command, nesting_level AS nl, relations, columns,
       predicate_columns AS pred, tags, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cc_customers;
