-- Capture: plain SELECT paths. Select list, predicate-only, whole-row,
-- CTEs, subqueries, set operations, LATERAL, aggregates (tagged_rows),
-- prepared statements, ROLLBACK after the read, an error after rows were
-- sent, EXPLAIN ANALYZE, and the statements that must leave no record.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cs_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cs_customers
  SELECT g, 'name' || g, '555-' || g, CASE WHEN g % 2 = 0 THEN 'Oslo' ELSE 'Rome' END
    FROM generate_series(1, 10) g;
SELECT access_audit.tag('cs_customers', 'phone', 'pii:phone');
SELECT access_audit.tag('cs_customers', 'full_name', 'pii:name');
-- plans must not depend on statistics gathered in the background
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- select list
SELECT phone FROM cs_customers WHERE id <= 3 ORDER BY id;
-- predicate only
SELECT id FROM cs_customers WHERE phone = '555-4';
SELECT city FROM cs_customers ORDER BY full_name LIMIT 2;
-- whole row
SELECT c FROM cs_customers c WHERE id = 1;
SELECT * FROM cs_customers WHERE id = 2;
TABLE cs_customers;
SELECT row_to_json(c) FROM cs_customers c WHERE id = 1;
SELECT json_agg(c ORDER BY id) FROM cs_customers c WHERE id < 3;
-- aggregates: one row out, every tagged row read
SELECT string_agg(phone, ',' ORDER BY id) FROM cs_customers;
SELECT count(phone) FROM cs_customers;
-- CTEs
WITH p AS (SELECT id, phone FROM cs_customers) SELECT phone FROM p WHERE id = 1;
WITH p AS MATERIALIZED (SELECT id, phone FROM cs_customers) SELECT id FROM p WHERE phone = '555-1';
-- subqueries
SELECT id FROM cs_customers WHERE id IN (SELECT id FROM cs_customers WHERE phone LIKE '555-1%') ORDER BY id;
SELECT (SELECT phone FROM cs_customers WHERE id = 1) AS p;
SELECT s.phone FROM (SELECT phone, id FROM cs_customers OFFSET 0) s WHERE s.id = 3;
SELECT id FROM cs_customers c WHERE EXISTS (SELECT 1 FROM cs_customers d WHERE d.phone = c.phone AND d.id = 2);
-- set operations
SELECT phone FROM cs_customers WHERE id = 1 UNION ALL SELECT city FROM cs_customers WHERE id = 2;
SELECT phone FROM cs_customers WHERE id < 3 EXCEPT SELECT '555-1' ORDER BY 1;
-- LATERAL
SELECT v.x FROM cs_customers c, LATERAL (SELECT c.phone AS x) v WHERE c.id = 1;
SELECT c.id, l.n FROM cs_customers c,
       LATERAL (SELECT count(*) AS n FROM cs_customers d WHERE d.full_name < c.full_name) l
 WHERE c.id = 2;
-- prepared statements: one record per EXECUTE
PREPARE cs_q(int) AS SELECT phone FROM cs_customers WHERE id = $1;
EXECUTE cs_q(1);
EXECUTE cs_q(2);
DEALLOCATE cs_q;
-- the read is recorded even if the transaction rolls back
BEGIN;
SELECT phone FROM cs_customers WHERE id = 5;
ROLLBACK;
-- an error after rows were sent: outcome error, rows sent so far
SELECT phone, 10 / (5 - id) AS x FROM cs_customers;
-- an error in ExecutorStart (permissions) leaves nothing half-open behind
CREATE ROLE cs_nobody;
SET ROLE cs_nobody;
SELECT phone FROM cs_customers;
RESET ROLE;
DROP ROLE cs_nobody;
-- EXPLAIN ANALYZE runs the query (rows read: tagged_rows; none sent: rows 0);
-- plain EXPLAIN does not run it and leaves no record
\o /dev/null
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) SELECT phone FROM cs_customers WHERE id < 4;
EXPLAIN SELECT phone FROM cs_customers;
\o
-- no record: untagged columns only, count(*), tagged relation not read
SELECT city FROM cs_customers WHERE id = 1;
SELECT count(*) FROM cs_customers;
SELECT id FROM cs_customers WHERE city = 'Oslo' ORDER BY id LIMIT 1;
SELECT 1 FROM cs_customers LIMIT 1;

SELECT access_audit.flush();
SELECT query, command, nesting_level AS nl, relations, columns,
       predicate_columns AS pred, tags, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
-- every record comes from this session, as this role
SELECT count(*) AS records, count(DISTINCT backend_pid) AS pids,
       bool_and(backend_pid = pg_backend_pid()) AS mine,
       bool_and(login_role = session_user AND effective_role = session_user
                AND actor = session_user::text AND claimed_actor IS NULL) AS roles
  FROM access_audit.log WHERE seq > :start;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cs_customers;
