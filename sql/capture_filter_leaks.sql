-- Values consumed by a filter: rows whose tagged values reached a function
-- that may leak them (not leakproof: set_config(), a NOTICE) count in
-- tagged_rows whether or not the row passed.  Leakproof probes (=, <)
-- count the rows they find, and a leaky filter on untagged columns only
-- counts nothing more.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cl_cust (id int, phone text);
INSERT INTO cl_cust SELECT g, '555-' || g FROM generate_series(1, 10) g;
SELECT access_audit.tag('cl_cust', 'phone', 'pii:phone');
CREATE FUNCTION cl_peek(v text) RETURNS bool LANGUAGE plpgsql
  AS $$ BEGIN RAISE NOTICE 'saw %', v; RETURN false; END $$;
CREATE FUNCTION cl_yes(v int) RETURNS bool LANGUAGE plpgsql
  AS $$ BEGIN RETURN true; END $$;
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT id FROM cl_cust
  WHERE set_config('cl.x', current_setting('cl.x', true) || phone || ' ', false) IS NULL;
SELECT current_setting('cl.x') AS leaked;
SELECT id FROM cl_cust WHERE cl_peek(phone);
SELECT id FROM cl_cust WHERE phone = '555-3';
SELECT phone FROM cl_cust WHERE id > 8 AND cl_yes(id) ORDER BY id;

SELECT access_audit.flush();
SELECT query, columns, predicate_columns AS pred, rows, tagged_rows AS trows
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
RESET enable_indexscan;
RESET enable_bitmapscan;
DROP FUNCTION cl_peek(text);
DROP FUNCTION cl_yes(int);
DROP TABLE cl_cust;
