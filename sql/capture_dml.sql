-- Capture of reads that write: INSERT..SELECT, CREATE TABLE AS, SELECT
-- INTO, temp tables, materialized views, UPDATE..FROM, RETURNING, MERGE.
-- rows = rows written (or returned); tagged_rows = tagged rows read.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cd_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cd_customers
  SELECT g, 'name' || g, '555-' || g, CASE WHEN g % 2 = 0 THEN 'Oslo' ELSE 'Rome' END
    FROM generate_series(1, 10) g;
SELECT access_audit.tag('cd_customers', 'phone', 'pii:phone');
CREATE TABLE cd_sink (id int, v text);
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

INSERT INTO cd_sink SELECT id, phone FROM cd_customers WHERE id < 4;
INSERT INTO cd_sink SELECT id, city FROM cd_customers WHERE phone = '555-5';
CREATE TABLE cd_ctas AS SELECT phone FROM cd_customers WHERE id < 3;
SELECT phone INTO cd_into FROM cd_customers WHERE id = 1;
-- a temp copy is a read; reading the copy is not (it carries no tag)
CREATE TEMP TABLE cd_tmp AS SELECT id, phone FROM cd_customers;
-- the copy took phone's tag: reading it is audited
SELECT phone FROM cd_tmp WHERE id = 1;
CREATE MATERIALIZED VIEW cd_mv AS SELECT id, phone FROM cd_customers WHERE id < 5;
REFRESH MATERIALIZED VIEW cd_mv;
CREATE UNIQUE INDEX ON cd_mv (id);
REFRESH MATERIALIZED VIEW CONCURRENTLY cd_mv;
CREATE MATERIALIZED VIEW cd_mv_empty AS SELECT phone FROM cd_customers WITH NO DATA;
-- UPDATE..FROM: the tagged value is written into another table
UPDATE cd_sink s SET v = c.phone FROM cd_customers c WHERE c.id = s.id AND s.id = 1;
-- UPDATE and DELETE filtering on a tagged column
UPDATE cd_customers SET city = 'Bern' WHERE phone = '555-6';
DELETE FROM cd_sink WHERE id IN (SELECT id FROM cd_customers WHERE phone = '555-2');
-- RETURNING
UPDATE cd_customers SET city = 'Lima' WHERE id = 7 RETURNING phone;
DELETE FROM cd_customers WHERE id = 10 RETURNING *;
INSERT INTO cd_customers VALUES (11, 'name11', '555-11', 'Oslo') RETURNING phone;
-- INSERT .. ON CONFLICT DO UPDATE: the target's tagged value is written
-- into another column; a condition on it is a predicate
INSERT INTO cd_customers VALUES (1, 'n', 'p', 'c')
  ON CONFLICT (id) DO UPDATE SET city = cd_customers.phone;
INSERT INTO cd_customers VALUES (2, 'n', 'p', 'c')
  ON CONFLICT (id) DO UPDATE SET city = 'Oslo' WHERE cd_customers.phone = '555-2';
-- MERGE: values written from the source are read; the ON clause and WHEN
-- conditions are predicates
CREATE TABLE cd_target (id int, v text);
INSERT INTO cd_target VALUES (1, 'old');
MERGE INTO cd_target t USING cd_customers c ON t.id = c.id
  WHEN MATCHED THEN UPDATE SET v = c.phone
  WHEN NOT MATCHED AND c.id < 3 THEN INSERT VALUES (c.id, c.phone);
MERGE INTO cd_target t USING cd_customers c ON t.id = c.id
  WHEN MATCHED AND c.phone = '555-1' THEN UPDATE SET v = c.city
  WHEN NOT MATCHED AND c.phone = '555-3' THEN INSERT VALUES (c.id, 'x');
-- no record: writes that read no tagged column
INSERT INTO cd_customers VALUES (12, 'name12', '555-12', 'Oslo');
UPDATE cd_customers SET city = 'Oslo' WHERE id = 12;
DELETE FROM cd_customers WHERE id = 12;
INSERT INTO cd_sink SELECT id, city FROM cd_customers WHERE id = 1;

SELECT access_audit.flush();
-- (a temporary schema's name depends on the backend: shown as pg_temp)
SELECT query, command, nesting_level AS nl,
       regexp_replace(relations::text, 'pg_temp_[0-9]+', 'pg_temp', 'g') AS relations,
       regexp_replace(columns::text, 'pg_temp_[0-9]+', 'pg_temp', 'g') AS columns,
       predicate_columns AS pred, tags, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP MATERIALIZED VIEW cd_mv, cd_mv_empty;
DROP TABLE cd_customers, cd_sink, cd_ctas, cd_into, cd_tmp, cd_target;
