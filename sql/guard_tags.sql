-- Refused tag changes are recorded (issue 16 item 14): a table owner's or
-- any other non-admin's SECURITY LABEL, setting or removing a tag, on its
-- own table or another's, leaves a REFUSED record although the error rolls
-- its transaction back.  SECURITY LABEL FOR access_audit in a database
-- without the extension is refused with a hint (item 15).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

CREATE ROLE gt_owner LOGIN;
CREATE TABLE gt_owned (id int, email text, note text);
ALTER TABLE gt_owned OWNER TO gt_owner;
CREATE TABLE gt_other (id int, phone text);
SECURITY LABEL FOR access_audit ON COLUMN gt_owned.email IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN gt_other.phone IS 'pii';

SET ROLE gt_owner;
-- the owner removes a tag from its own table, in a transaction
BEGIN;
SECURITY LABEL FOR access_audit ON COLUMN gt_owned.email IS NULL;
ROLLBACK;
-- ... tags its own table, removes a table tag, and tries another's table
SECURITY LABEL FOR access_audit ON COLUMN gt_owned.note IS 'pii';
SECURITY LABEL ON TABLE gt_owned IS NULL;
SECURITY LABEL FOR access_audit ON COLUMN gt_other.phone IS NULL;
RESET ROLE;

-- the tags are unchanged
SELECT "table", "column", tag FROM access_audit.tagged_columns
 WHERE "table" LIKE 'gt\_%' ORDER BY "table" COLLATE "C", "column" COLLATE "C";

SELECT access_audit.flush();
SELECT command, CASE WHEN effective_role = session_user THEN 'me' ELSE effective_role END AS role,
       outcome, relations, columns, tags,
       CASE WHEN command = 'REFUSED' THEN detail END AS detail
  FROM access_audit.log
 WHERE seq > :start AND command IN ('REFUSED', 'SECURITY LABEL')
 ORDER BY seq;

DROP TABLE gt_owned, gt_other;
DROP ROLE gt_owner;

-- a database without the extension: tags there would be a silent no-op
CREATE DATABASE gt_noext;
\c gt_noext
CREATE TABLE t (id int, phone text);
SECURITY LABEL FOR access_audit ON COLUMN t.phone IS 'pii';
SECURITY LABEL ON COLUMN t.phone IS 'pii';
SELECT count(*) FROM pg_seclabel WHERE provider = 'access_audit';
-- labels left by a dropped extension can still be removed
CREATE EXTENSION access_audit;
SECURITY LABEL FOR access_audit ON COLUMN t.phone IS 'pii';
SET access_audit.maintenance = on;
DROP EXTENSION access_audit;
RESET access_audit.maintenance;
SELECT count(*) FROM pg_seclabel WHERE provider = 'access_audit';
SECURITY LABEL FOR access_audit ON COLUMN t.phone IS NULL;
SELECT count(*) FROM pg_seclabel WHERE provider = 'access_audit';
\c contrib_regression
DROP DATABASE gt_noext;
