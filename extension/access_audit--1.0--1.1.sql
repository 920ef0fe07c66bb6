/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- Every change made to extension/sql/*.sql after 1.0 is repeated here, so
-- that an updated 1.0 installation ends with the same objects as a fresh 1.1
-- install.

-- ---------------------------------------------------------------------------
-- capture: reads in progress (access_audit.reads_in_progress)
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._reads_in_progress(
    OUT pid integer, OUT database text, OUT since timestamptz,
    OUT login_role text, OUT effective_role text, OUT actor text, OUT claimed_actor text,
    OUT client_addr text, OUT application_name text, OUT command text, OUT query text,
    OUT relations text[], OUT columns text[], OUT tags text[],
    OUT rows bigint, OUT tagged_rows bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_reads_in_progress'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION access_audit._reads_in_progress() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._reads_in_progress()
    TO access_audit_reader, access_audit_admin;

-- Audited statements sending rows now or holding an open cursor (an export
-- left open in a transaction), with the rows sent and read so far: from the
-- intent slots the backends keep for crash safety.  Their records reach
-- the log when they end.
CREATE VIEW access_audit.reads_in_progress AS
    SELECT pid, database, since, now() - since AS running_for, login_role::name,
           effective_role::name, actor, claimed_actor, client_addr::inet,
           application_name, command, relations, columns, tags,
           rows AS rows_so_far, tagged_rows AS tagged_rows_so_far,
           greatest(rows, tagged_rows) AS volume_so_far, query
      FROM access_audit._reads_in_progress();
COMMENT ON VIEW access_audit.reads_in_progress IS
    'Audited statements in progress that send many rows or hold an open cursor, with the rows sent so far.';
GRANT SELECT ON access_audit.reads_in_progress TO access_audit_reader, access_audit_admin;
