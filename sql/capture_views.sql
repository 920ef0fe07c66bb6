-- Capture through views and security_barrier views.  The record names the
-- base table's tagged columns: the view is only a way in.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cv_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cv_customers
  SELECT g, 'name' || g, '555-' || g, CASE WHEN g % 2 = 0 THEN 'Oslo' ELSE 'Rome' END
    FROM generate_series(1, 10) g;
SELECT access_audit.tag('cv_customers', 'phone', 'pii:phone');
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE VIEW cv_all AS SELECT id, phone, city FROM cv_customers;
CREATE VIEW cv_oslo WITH (security_barrier) AS
  SELECT id, phone, city FROM cv_customers WHERE city = 'Oslo';
CREATE VIEW cv_masked AS SELECT id, left(phone, 3) || '-xxx' AS phone_masked FROM cv_customers;
CREATE VIEW cv_by_phone AS SELECT id, city FROM cv_customers WHERE phone LIKE '555-1%';
CREATE VIEW cv_nested AS SELECT id, phone FROM cv_all WHERE id < 5;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT phone FROM cv_all WHERE id = 1;
SELECT * FROM cv_all WHERE id = 2;
SELECT phone FROM cv_oslo ORDER BY id;
-- a leakproof condition is pushed into the security_barrier view's scan:
-- tagged_rows counts the rows that passed both filters
SELECT id FROM cv_oslo WHERE phone = '555-4';
-- a derived value still reads the column
SELECT phone_masked FROM cv_masked WHERE id = 3;
-- the view's own filter reads phone: predicate only
SELECT id, city FROM cv_by_phone ORDER BY id;
-- views over views
SELECT phone FROM cv_nested ORDER BY id;
-- a view column the query does not use is not read: PostgreSQL marks every
-- column the view's query names as selected on the base table, so the
-- record is refined to the columns the plan's scans refer to (no record)
SELECT id FROM cv_all WHERE id = 1;
-- where a scan returns whole tuples (here under a join) the plan names every
-- column, and phone stays listed as a predicate column: an over-approximation
SELECT a.id, b.city FROM cv_all a JOIN cv_all b ON a.id = b.id + 1 WHERE a.id < 3 ORDER BY 1;
-- but a join on the unused-looking column reads it
SELECT a.id FROM cv_all a JOIN cv_all b ON a.phone = b.phone WHERE a.id = 4;
-- security_invoker views (checked as the caller) work the same
CREATE VIEW cv_invoker WITH (security_invoker) AS SELECT id, phone, city FROM cv_customers;
SELECT phone FROM cv_invoker WHERE id = 5;
SELECT city FROM cv_invoker WHERE id = 5;
-- writes through an auto-updatable view
UPDATE cv_all SET city = city WHERE phone = '555-6';
UPDATE cv_all SET city = city WHERE id = 6 RETURNING phone;
UPDATE cv_all SET city = city WHERE id = 6;
-- no record: the view exposes no tagged column
CREATE VIEW cv_cities AS SELECT id, city FROM cv_customers;
SELECT city FROM cv_cities WHERE id = 1;

SELECT access_audit.flush();
SELECT query, command, nesting_level AS nl, relations, columns,
       predicate_columns AS pred, tags, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cv_customers CASCADE;
