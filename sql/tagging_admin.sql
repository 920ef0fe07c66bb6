-- Tagging without owning the table: members of access_audit_admin may run
-- SECURITY LABEL FOR access_audit on any table in a schema they can use
-- (core PostgreSQL would require ownership); the change is validated and
-- recorded as any other, naming the admin.  Others get an error naming the
-- role to ask for.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

CREATE ROLE ta_owner;
CREATE ROLE ta_secteam IN ROLE access_audit_admin;
CREATE ROLE ta_clerk;
CREATE SCHEMA ta_sales AUTHORIZATION ta_owner;
CREATE SCHEMA ta_hidden AUTHORIZATION ta_owner;
GRANT USAGE ON SCHEMA ta_sales TO ta_secteam, ta_clerk;
SET ROLE ta_owner;
CREATE TABLE ta_sales.customers (id int, phone text, email text);
CREATE TABLE ta_sales.cards (id int, pan text);
CREATE VIEW ta_sales.v AS SELECT id, phone FROM ta_sales.customers;
CREATE TABLE ta_hidden.secrets (id int, s text);
RESET ROLE;

-- the security team tags and untags tables it does not own
SET ROLE ta_secteam;
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.phone IS 'pii';
SECURITY LABEL ON COLUMN ta_sales.customers.email IS 'pii:email';
SECURITY LABEL FOR access_audit ON TABLE ta_sales.cards IS 'pci';
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.email IS NULL;
-- still validated
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.email IS 'Bad Tag';
SECURITY LABEL FOR access_audit ON VIEW ta_sales.v IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.nosuch IS 'pii';
-- only in schemas it may use
SECURITY LABEL FOR access_audit ON COLUMN ta_hidden.secrets.s IS 'pii';
-- not the system's tables nor access_audit's own
SECURITY LABEL FOR access_audit ON TABLE pg_catalog.pg_class IS 'pii';
SECURITY LABEL FOR access_audit ON TABLE information_schema.sql_features IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN access_audit.log_data.detail IS 'pii';
-- other objects keep core's rules
SECURITY LABEL FOR access_audit ON SCHEMA ta_sales IS 'pii';
RESET ROLE;

SELECT schema, "table", "column", tag FROM access_audit.tagged_columns
 WHERE schema LIKE 'ta\_%' ORDER BY schema COLLATE "C", "table" COLLATE "C", "column" COLLATE "C";

-- others get an error naming the role to ask for
\set VERBOSITY default
SET ROLE ta_clerk;
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.email IS 'pii';
RESET ROLE;

-- the owner, not an admin, may not tag either
SET ROLE ta_owner;
SECURITY LABEL FOR access_audit ON COLUMN ta_sales.customers.email IS 'pii';
RESET ROLE;
\set VERBOSITY terse

-- every change is recorded, by the admin, saying it ran as the owner
SELECT access_audit.flush();
SELECT changed_by, effective_role, relation, "column", old_tag, new_tag, why
  FROM access_audit.tag_changes WHERE seq > :start ORDER BY seq;

DROP SCHEMA ta_sales CASCADE;
DROP SCHEMA ta_hidden CASCADE;
DROP ROLE ta_owner;
DROP ROLE ta_secteam;
DROP ROLE ta_clerk;
