-- Row-level security policies read the columns they refer to for every row
-- a reader scans, whatever the reader selects: a policy calling a function
-- that is not leakproof on phone hands it every phone scanned.  The read
-- is recorded with phone as a predicate column and, for a leaky policy,
-- every row scanned in tagged_rows.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cpo_cust (id int, city text, phone text);
INSERT INTO cpo_cust SELECT g, 'city' || g, '555-' || g FROM generate_series(1, 5) g;
SELECT access_audit.tag('cpo_cust', 'phone', 'pii:phone');
CREATE FUNCTION cpo_peek(v text) RETURNS bool LANGUAGE plpgsql
  AS $$ BEGIN RAISE NOTICE 'policy saw %', v; RETURN true; END $$;
CREATE TABLE cpo_other (id int, city text, phone text);
INSERT INTO cpo_other SELECT g, 'city' || g, '555-' || g FROM generate_series(1, 5) g;
SELECT access_audit.tag('cpo_other', 'phone', 'pii:phone');
ALTER TABLE cpo_cust ENABLE ROW LEVEL SECURITY;
ALTER TABLE cpo_other ENABLE ROW LEVEL SECURITY;
CREATE POLICY cpo_leaky ON cpo_cust USING (cpo_peek(phone));
CREATE POLICY cpo_probe ON cpo_other USING (phone < '555-3');
CREATE ROLE cpo_reader;
GRANT SELECT (id, city) ON cpo_cust, cpo_other TO cpo_reader;
GRANT EXECUTE ON FUNCTION cpo_peek(text) TO cpo_reader;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SET ROLE cpo_reader;
SELECT id, city FROM cpo_cust WHERE id > 3 ORDER BY id;
SELECT id FROM cpo_other ORDER BY id;
RESET ROLE;
-- the owner is not subject to the policies: nothing tagged is read
SELECT id FROM cpo_cust ORDER BY id;

SELECT access_audit.flush();
SELECT query, columns, predicate_columns AS pred, rows, tagged_rows AS trows
  FROM access_audit.log WHERE seq > :start AND command = 'SELECT' ORDER BY seq;
RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cpo_cust, cpo_other;
DROP FUNCTION cpo_peek(text);
DROP ROLE cpo_reader;
