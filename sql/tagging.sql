-- Tagging sensitive columns: label syntax, table-level tags, inheritance
-- and partitions, renames, who may tag, and the audit trail of tag changes.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
-- the bootstrap superuser is named after the OS user: print it as 'me'
CREATE FUNCTION pg_temp.who(r name) RETURNS text LANGUAGE sql
    AS $$ SELECT CASE WHEN r = session_user THEN 'me' ELSE r::text END $$;

CREATE TABLE tg_customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO tg_customers VALUES (1, 'Ann', '555-1', 'Oslo'), (2, 'Bo', '555-2', 'Rome');

-- valid tags
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.phone IS 'pii';
SELECT access_audit.tag('tg_customers', 'full_name', 'pii:name');
-- invalid tags are refused with a hint
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS 'PII';
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS 'pii phone';
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS 'pii:';
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS ':pii';
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS '';
SECURITY LABEL FOR access_audit ON COLUMN tg_customers.city IS '9lives';
SELECT access_audit.tag('tg_customers', 'nosuch', 'pii');
SELECT access_audit.tag('tg_customers', 'city', NULL);
SELECT access_audit.valid_tag('financial'), access_audit.valid_tag('pii:phone:home'),
       access_audit.valid_tag('Pii'), access_audit.valid_tag('a-b');
-- only tables and their columns
CREATE VIEW tg_view AS SELECT id, phone FROM tg_customers;
SECURITY LABEL FOR access_audit ON COLUMN tg_view.phone IS 'pii';
SECURITY LABEL FOR access_audit ON SCHEMA public IS 'pii';

SELECT "table", "column", tag, inherited_from FROM access_audit.tagged_columns
 WHERE "table" LIKE 'tg\_%' ORDER BY "table" COLLATE "C", "column" COLLATE "C";

-- a read of a tagged column is recorded; an untagged one is not
SELECT phone FROM tg_customers WHERE id = 1;
SELECT city FROM tg_customers WHERE id = 1;

-- table-level tag covers every column, present and future
CREATE TABLE tg_notes (id int, body text);
SELECT access_audit.tag_table('tg_notes', 'confidential');
ALTER TABLE tg_notes ADD COLUMN later text;
INSERT INTO tg_notes VALUES (1, 'x', 'y');
SELECT later FROM tg_notes;
SELECT "column", tag FROM access_audit.tagged_columns WHERE "table" = 'tg_notes' ORDER BY "column" COLLATE "C";

-- partitions: a tag on the parent covers partitions, also ones created later,
-- also when a partition is read directly (its column order may differ)
CREATE TABLE tg_orders (id int, region text, card text) PARTITION BY LIST (region);
CREATE TABLE tg_orders_eu PARTITION OF tg_orders FOR VALUES IN ('eu');
SECURITY LABEL FOR access_audit ON COLUMN tg_orders.card IS 'pci';
CREATE TABLE tg_orders_us (card text, region text, id int);
ALTER TABLE tg_orders ATTACH PARTITION tg_orders_us FOR VALUES IN ('us');
INSERT INTO tg_orders VALUES (1, 'eu', '4111'), (2, 'us', '4222');
SELECT card FROM tg_orders_us;
SELECT card FROM tg_orders_eu;
SELECT id FROM tg_orders_us;

-- inheritance children, including one created after tagging
CREATE TABLE tg_people (id int, ssn text);
SECURITY LABEL FOR access_audit ON COLUMN tg_people.ssn IS 'pii:ssn';
CREATE TABLE tg_staff (dept text) INHERITS (tg_people);
INSERT INTO tg_staff VALUES (1, '078-05-1120', 'it');
SELECT ssn FROM tg_staff;
SELECT "table", "column", tag, inherited_from FROM access_audit.tagged_columns
 WHERE "table" IN ('tg_orders_us', 'tg_orders_eu', 'tg_staff')
 ORDER BY "table" COLLATE "C", "column" COLLATE "C";

-- renames keep tags
ALTER TABLE tg_customers RENAME COLUMN phone TO mobile;
ALTER TABLE tg_customers RENAME TO tg_clients;
SELECT mobile FROM tg_clients WHERE id = 2;

-- only superusers and access_audit_admin members may tag, even table owners
CREATE ROLE tg_owner LOGIN;
CREATE ROLE tg_admin LOGIN IN ROLE access_audit_admin;
CREATE TABLE tg_owned (id int, email text);
ALTER TABLE tg_owned OWNER TO tg_owner;
SET ROLE tg_owner;
SECURITY LABEL FOR access_audit ON COLUMN tg_owned.email IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN tg_clients.mobile IS NULL;
RESET ROLE;
SECURITY LABEL FOR access_audit ON COLUMN tg_owned.email IS 'pii';
SET ROLE tg_owner;
SECURITY LABEL FOR access_audit ON COLUMN tg_owned.email IS NULL;
RESET ROLE;
-- an admin tags any table, with SECURITY LABEL (which PostgreSQL alone
-- allows only to owners) or the helper functions, which non-admins cannot run
SET ROLE tg_admin;
SECURITY LABEL FOR access_audit ON COLUMN tg_owned.email IS 'pii:email';
SELECT access_audit.tag('tg_owned', 'email', 'pii:email');
SELECT access_audit.untag('tg_owned', 'email');
RESET ROLE;
SET ROLE tg_owner;
SELECT access_audit.tag('tg_owned', 'email', 'pii');
RESET ROLE;

-- untag, and the trail it leaves
SELECT access_audit.untag('tg_clients', 'full_name');
SELECT access_audit.untag_table('tg_notes');
SELECT body FROM tg_notes;

SELECT access_audit.flush();
SELECT command, pg_temp.who(login_role) AS login_role, pg_temp.who(effective_role) AS effective_role, relations, columns, predicate_columns, tags, rows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
SELECT relation, "column", old_tag, new_tag, pg_temp.who(changed_by) AS changed_by,
       pg_temp.who(effective_role) AS effective_role FROM access_audit.tag_changes
 WHERE seq > :start ORDER BY seq;

DROP TABLE tg_clients, tg_notes, tg_orders, tg_people CASCADE;
DROP VIEW IF EXISTS tg_view;
DROP TABLE tg_owned;
DROP ROLE tg_owner;
DROP ROLE tg_admin;
