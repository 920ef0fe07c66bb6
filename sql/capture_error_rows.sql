-- Rows shown in errors: a statement that writes a table with tagged
-- columns has read them when a constraint error prints the row ("Failing
-- row contains") or its key values.  Each failing statement is one record:
-- outcome error, the tagged columns the error may show, one row read.
-- A statement that succeeds, or whose error shows no tagged column, is not.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
CREATE TABLE ce_cust (id int PRIMARY KEY, city text NOT NULL, phone text,
                      email text UNIQUE, CHECK (city <> 'x'));
INSERT INTO ce_cust SELECT g, 'city' || g, '555-' || g, 'e' || g
  FROM generate_series(1, 5) g;
SELECT access_audit.tag('ce_cust', 'phone', 'pii:phone');
CREATE VIEW ce_view AS SELECT * FROM ce_cust WHERE city <> 'zz'
  WITH CHECK OPTION;
CREATE TABLE ce_excl (id int, phone text, EXCLUDE USING btree (phone WITH =));
INSERT INTO ce_excl VALUES (1, '555-1');
SELECT access_audit.tag('ce_excl', 'phone', 'pii:phone');
CREATE ROLE ce_clerk;
GRANT SELECT (id, city), UPDATE (city) ON ce_cust TO ce_clerk;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- NOT NULL, CHECK, unique, check option, primary key, exclusion
UPDATE ce_cust SET city = NULL WHERE id = 1;
UPDATE ce_cust SET city = 'x' WHERE id = 2;
UPDATE ce_cust SET email = 'e3' WHERE id = 4;
UPDATE ce_view SET city = 'zz' WHERE id = 1;
INSERT INTO ce_cust VALUES (1, 'a', 'b', 'c');
INSERT INTO ce_excl VALUES (2, '555-1');
MERGE INTO ce_cust c USING (VALUES (3)) v(id) ON c.id = v.id
  WHEN MATCHED THEN UPDATE SET city = NULL;
-- caught in a loop: one record per failing statement
DO $$
DECLARE
  i int;
BEGIN
  FOR i IN 1..5 LOOP
    BEGIN
      UPDATE ce_cust SET city = NULL WHERE id = i;
    EXCEPTION WHEN not_null_violation THEN
      NULL;
    END;
  END LOOP;
END $$;
-- not reads: a write that succeeds, an error that shows no row
UPDATE ce_cust SET city = 'ok' WHERE id = 5;
UPDATE ce_cust SET city = 'a' || (1 / 0)::text WHERE id = 5;
-- a role that may not read phone is not shown it: no record
SET ROLE ce_clerk;
UPDATE ce_cust SET city = NULL WHERE id = 1;
RESET ROLE;

SELECT access_audit.flush();
SELECT query, command, nesting_level AS lvl, columns, rows,
       tagged_rows AS trows, outcome, detail IS NOT NULL AS why
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

DROP VIEW ce_view;
DROP TABLE ce_cust;
DROP TABLE ce_excl;
DROP ROLE ce_clerk;
