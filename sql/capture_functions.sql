-- Capture inside functions, DO blocks, triggers and SECURITY DEFINER
-- functions: the nested statement is the read (nesting_level > 0); the
-- login role stays the caller's, the effective role is the owner's.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT current_user AS me \gset
CREATE TABLE cf_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO cf_customers
  SELECT g, 'name' || g, '555-' || g, 'Oslo' FROM generate_series(1, 10) g;
SELECT access_audit.tag('cf_customers', 'phone', 'pii:phone');
SET enable_indexscan = off;
SET enable_bitmapscan = off;

CREATE FUNCTION cf_sql(i int) RETURNS text LANGUAGE sql STABLE
    AS 'SELECT phone FROM cf_customers WHERE id = i';
CREATE FUNCTION cf_rows() RETURNS SETOF cf_customers LANGUAGE sql STABLE
    AS 'SELECT * FROM cf_customers';
CREATE FUNCTION cf_pl(i int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE p text;
BEGIN
  SELECT phone INTO p FROM cf_customers WHERE id = i;
  RETURN p;
END $$;
CREATE PROCEDURE cf_proc() LANGUAGE plpgsql AS $$
BEGIN
  PERFORM phone FROM cf_customers WHERE id < 3;
END $$;
-- a trigger that copies the tagged column
CREATE TABLE cf_events (id int);
CREATE TABLE cf_copied (v text);
CREATE FUNCTION cf_trg() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO cf_copied SELECT phone FROM cf_customers WHERE id = NEW.id;
  RETURN NEW;
END $$;
CREATE TRIGGER cf_after AFTER INSERT ON cf_events FOR EACH ROW EXECUTE FUNCTION cf_trg();
-- SECURITY DEFINER: owner may read, caller may not
CREATE ROLE cf_owner;
CREATE ROLE cf_caller LOGIN;
GRANT SELECT ON cf_customers TO cf_owner;
CREATE FUNCTION cf_secret(i int) RETURNS text LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE p text;
BEGIN
  SELECT phone INTO p FROM cf_customers WHERE id = i;
  RETURN p;
END $$;
ALTER FUNCTION cf_secret(int) OWNER TO cf_owner;
GRANT EXECUTE ON FUNCTION cf_secret(int) TO cf_caller;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT cf_sql(1);
-- an inlined set-returning SQL function: the outer statement reads
SELECT phone FROM cf_rows() WHERE id = 2;
SELECT cf_pl(3);
-- the function runs once per row
SELECT id, cf_pl(id) FROM generate_series(4, 5) id;
CALL cf_proc();
DO $$
DECLARE n int;
BEGIN
  SELECT count(phone) INTO n FROM cf_customers;
  EXECUTE 'SELECT max(phone) FROM cf_customers' INTO n;
EXCEPTION WHEN others THEN NULL;
END $$;
INSERT INTO cf_events VALUES (6);
-- a nested statement fails after producing rows and the block catches the
-- error: the nested record says error, with the rows it had produced
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT phone, 10 / (4 - id) AS x FROM cf_customers LOOP
  END LOOP;
EXCEPTION WHEN division_by_zero THEN
  RAISE NOTICE 'caught';
END $$;
-- SET ROLE: the effective role changes, the login role does not
SET ROLE cf_owner;
SELECT phone FROM cf_customers WHERE id = 7;
RESET ROLE;
-- a caller without SELECT reads through the SECURITY DEFINER function
\c - cf_caller
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT phone FROM cf_customers WHERE id = 8;
SELECT cf_secret(8);
\c - :me
SET enable_indexscan = off;
SET enable_bitmapscan = off;
-- the caller fails after the function's query completed: the nested record
-- is ok; the caller read no tagged column itself, so it has no record
SELECT cf_pl(id) || 10 / (id - 9) FROM generate_series(9, 9) id;

SELECT access_audit.flush();
-- the bootstrap superuser is named after the OS user: print it as 'me'
SELECT query, command, nesting_level AS nl,
       CASE WHEN login_role = :'me' THEN 'me' ELSE login_role::text END AS login,
       CASE WHEN effective_role = :'me' THEN 'me' ELSE effective_role::text END AS effective,
       CASE WHEN actor = :'me' THEN 'me' ELSE actor END AS actor,
       columns, predicate_columns AS pred, rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET enable_indexscan;
RESET enable_bitmapscan;
DROP FUNCTION cf_secret(int);
DROP TABLE cf_customers, cf_events, cf_copied CASCADE;
DROP FUNCTION cf_trg(), cf_pl(int), cf_sql(int);
DROP PROCEDURE cf_proc();
DROP ROLE cf_owner;
DROP ROLE cf_caller;
