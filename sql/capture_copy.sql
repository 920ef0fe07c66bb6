-- Capture of COPY: relation form (which reads without the executor), the
-- query form, column lists, psql's \copy, and an error part way.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cy_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cy_customers
  SELECT g, 'name' || g, '555-' || g, 'Oslo' FROM generate_series(1, 5) g;
SELECT access_audit.tag('cy_customers', 'phone', 'pii:phone');
SELECT access_audit.tag('cy_customers', 'full_name', 'pii:name');
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE ROLE cy_owner;
CREATE TABLE cy_rls (id int, phone text, owner name);
INSERT INTO cy_rls VALUES (1, '555-1', 'cy_owner'), (2, '555-2', 'someone');
SELECT access_audit.tag('cy_rls', 'phone', 'pii:phone');
ALTER TABLE cy_rls OWNER TO cy_owner;
ALTER TABLE cy_rls ENABLE ROW LEVEL SECURITY;
ALTER TABLE cy_rls FORCE ROW LEVEL SECURITY;
CREATE POLICY cy_mine ON cy_rls USING (owner = current_user);
CREATE TABLE cy_parted (id int, phone text) PARTITION BY RANGE (id);
CREATE TABLE cy_parted_1 PARTITION OF cy_parted FOR VALUES FROM (0) TO (10);
SELECT access_audit.tag('cy_parted', 'phone', 'pii:phone');
CREATE ROLE cy_nobody;
GRANT SELECT (id) ON cy_customers TO cy_nobody;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

COPY cy_customers TO STDOUT;
COPY cy_customers (id, phone) TO STDOUT WITH (FORMAT csv, HEADER);
COPY (SELECT phone FROM cy_customers WHERE id < 3) TO STDOUT;
COPY (SELECT id FROM cy_customers WHERE phone = '555-2') TO STDOUT;
COPY cy_customers TO '/dev/null';
\copy cy_customers (full_name) TO STDOUT
\copy (SELECT phone FROM cy_customers WHERE id = 4) TO STDOUT
-- an error after rows were copied out
COPY (SELECT phone, 10 / (3 - id) FROM cy_customers) TO STDOUT;
-- row-level security turns COPY into a query: one record, the visible rows
SET ROLE cy_owner;
COPY cy_rls TO STDOUT;
RESET ROLE;
-- no record: COPY refused before reading (partitioned table, no privilege)
COPY cy_parted TO STDOUT;
SET ROLE cy_nobody;
COPY cy_customers TO STDOUT;
COPY cy_customers (id, phone) TO STDOUT;
COPY cy_customers (id) TO STDOUT;
RESET ROLE;
-- no record: untagged columns only, COPY FROM
COPY cy_customers (id, city) TO STDOUT;
COPY (SELECT count(*) FROM cy_customers) TO STDOUT;
COPY cy_customers FROM STDIN;
6	name6	555-6	Rome
\.

SELECT access_audit.flush();
SELECT query, command, nesting_level AS nl, relations, columns,
       predicate_columns AS pred, tags, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cy_customers, cy_rls, cy_parted;
DROP ROLE cy_owner;
DROP ROLE cy_nobody;
