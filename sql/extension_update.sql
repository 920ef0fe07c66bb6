-- ALTER EXTENSION access_audit UPDATE from every released version to the
-- current one (as pg_stat_statements' oldextversions does): install 1.0,
-- fill its log, update without maintenance mode, check that the log and
-- its chain carried over and that the update is recorded, then compare the
-- updated schema with a fresh install of the current version object by
-- object: relations, columns (with their positions), constraints,
-- indexes, triggers, rules and view definitions, policies, sequences,
-- function definitions and signatures, types, comments, privileges
-- (current and initial), extension membership and the tables pg_dump
-- carries.  Any line listed under "differences" is an object that
-- access_audit--1.0--1.1.sql does not bring to what extension/sql/*.sql
-- creates.
\set VERBOSITY terse
SET client_min_messages = warning;
CREATE DATABASE aa_update;
\c aa_update
SET client_min_messages = warning;
\set VERBOSITY terse

-- one line per object and property of the extension
CREATE FUNCTION aa_describe() RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog
AS $$
WITH ext AS (SELECT e.oid, e.extconfig, e.extcondition FROM pg_extension e
              WHERE e.extname = 'access_audit'),
nsp AS (SELECT n.oid, n.nspacl FROM pg_namespace n WHERE n.nspname = 'access_audit'),
-- the log's seq range partitions (and their indexes) are made by the
-- writer at run time, or by the update from the 1.0 table: not compared
rels AS (SELECT c.* FROM pg_class c JOIN nsp ON c.relnamespace = nsp.oid
          WHERE c.relname !~ '^log_data_p[0-9]+(_pkey)?$'),
procs AS (SELECT p.* FROM pg_proc p JOIN nsp ON p.pronamespace = nsp.oid),
members AS (SELECT d.classid, d.objid, d.objsubid FROM pg_depend d JOIN ext
              ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid
             AND d.deptype = 'e')
SELECT 'member ' || pg_describe_object(m.classid, m.objid, m.objsubid) FROM members m
UNION ALL
SELECT 'relation ' || c.relname || ' kind ' || c.relkind::text || ' persistence ' || c.relpersistence::text
       || coalesce(' options ' || c.reloptions::text, '')
       || coalesce(' acl ' || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(c.relacl) a), '')
  FROM rels c
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' #' || a.attnum || ' '
       || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN ' generated ' || a.attgenerated::text ELSE '' END
       || coalesce(' acl ' || (SELECT string_agg(x::text, ',' ORDER BY x::text) FROM unnest(a.attacl) x), '')
  FROM rels c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
UNION ALL
SELECT 'dropped column ' || c.relname || ' #' || a.attnum
  FROM rels c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND a.attisdropped
UNION ALL
SELECT 'constraint ' || c.relname || '.' || con.conname || ' ' || pg_get_constraintdef(con.oid)
  FROM rels c JOIN pg_constraint con ON con.conrelid = c.oid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid)
  FROM rels c JOIN pg_index i ON i.indrelid = c.oid
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
  FROM rels c JOIN pg_trigger t ON t.tgrelid = c.oid AND NOT t.tgisinternal
UNION ALL
SELECT 'rule ' || c.relname || '.' || r.rulename || ' ' || pg_get_ruledef(r.oid)
  FROM rels c JOIN pg_rewrite r ON r.ev_class = c.oid
UNION ALL
SELECT 'policy ' || c.relname || '.' || p.polname || ' ' || p.polcmd::text || ' ' || p.polpermissive
       || ' ' || p.polroles::text || coalesce(' using ' || pg_get_expr(p.polqual, p.polrelid), '')
       || coalesce(' check ' || pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM rels c JOIN pg_policy p ON p.polrelid = c.oid
UNION ALL
SELECT 'sequence ' || c.relname || ' ' || format_type(s.seqtypid, NULL) || ' start ' || s.seqstart
       || ' increment ' || s.seqincrement || ' max ' || s.seqmax || ' min ' || s.seqmin
       || ' cache ' || s.seqcache || ' cycle ' || s.seqcycle
  FROM rels c JOIN pg_sequence s ON s.seqrelid = c.oid
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
       || coalesce(' acl ' || (SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(p.proacl) a), '')
       || E'\n' || CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END
  FROM procs p
UNION ALL
SELECT 'type ' || t.typname || ' ' || t.typtype::text
  FROM pg_type t JOIN nsp ON t.typnamespace = nsp.oid
 WHERE t.typname !~ '^_?log_data_p[0-9]+$'
UNION ALL
SELECT 'comment ' || pg_describe_object(d.classoid, d.objoid, d.objsubid) || ': ' || d.description
  FROM pg_description d
 WHERE (d.classoid = 'pg_class'::regclass AND d.objoid IN (SELECT oid FROM rels))
    OR (d.classoid = 'pg_proc'::regclass AND d.objoid IN (SELECT oid FROM procs))
    OR (d.classoid = 'pg_namespace'::regclass AND d.objoid IN (SELECT oid FROM nsp))
UNION ALL
SELECT 'initial privileges ' || pg_describe_object(ip.classoid, ip.objoid, ip.objsubid)
       || ' ' || ip.privtype::text || ' '
       || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text) FROM unnest(ip.initprivs) a), '')
  FROM pg_init_privs ip
 WHERE (ip.classoid, ip.objoid) IN (SELECT classid, objid FROM members)
    OR (ip.classoid = 'pg_namespace'::regclass AND ip.objoid IN (SELECT oid FROM nsp))
UNION ALL
SELECT 'dumped table ' || u.cfg::regclass::text || ' where ''' || u.cond || ''''
  FROM ext, unnest(ext.extconfig, ext.extcondition) AS u(cfg, cond)
UNION ALL
SELECT 'schema acl ' || coalesce((SELECT string_agg(a::text, ',' ORDER BY a::text)
                                    FROM unnest(nsp.nspacl) a), '')
  FROM nsp
$$;

-- 1.0 as released, with records in its log
CREATE EXTENSION access_audit VERSION '1.0';
SELECT extversion FROM pg_extension WHERE extname = 'access_audit';
CREATE TABLE up_customers (id int PRIMARY KEY, phone text);
INSERT INTO up_customers SELECT g, '555-' || g FROM generate_series(1, 20) g;
SELECT access_audit.tag('up_customers', 'phone', 'pii');
SELECT count(phone) FROM up_customers;
SELECT phone FROM up_customers WHERE id = 3;
SELECT access_audit.flush();
CREATE TABLE log_before AS SELECT seq, hash FROM access_audit.log_data;
SELECT count(*) AS records FROM log_before;

-- the update needs no maintenance mode
SHOW access_audit.maintenance;
ALTER EXTENSION access_audit UPDATE;
SELECT extversion FROM pg_extension WHERE extname = 'access_audit';

-- the log and its chain carried over, and go on
SELECT phone FROM up_customers WHERE id = 4;
SELECT access_audit.flush();
SELECT count(*) AS kept FROM log_before b
  JOIN access_audit.log_data d ON d.seq = b.seq AND d.hash = b.hash;
SELECT ok, checked > (SELECT count(*) FROM log_before) AS more FROM access_audit.verify();
SELECT rows, columns FROM access_audit.log
 WHERE command = 'SELECT' AND seq > (SELECT max(seq) FROM log_before);
-- the update is recorded
SELECT command, relations, detail::jsonb ->> 'from' AS "from", detail::jsonb ->> 'to' AS "to",
       login_role = session_user AS by_me
  FROM access_audit.log WHERE detail::jsonb ->> 'action' = 'ALTER EXTENSION UPDATE';
-- updates stay the superuser's: other changes of the extension are refused
ALTER EXTENSION access_audit DROP TABLE access_audit.log_data;

-- the updated schema equals a fresh install's
CREATE TABLE updated AS SELECT d FROM aa_describe() d;
SET access_audit.maintenance = on;
DROP EXTENSION access_audit;
RESET access_audit.maintenance;
CREATE EXTENSION access_audit;
SELECT extversion FROM pg_extension WHERE extname = 'access_audit';
CREATE TABLE fresh AS SELECT d FROM aa_describe() d;
-- the description covers every kind of object
SELECT kind, count(*) > 0 AS described
  FROM (SELECT split_part(d, ' ', 1) AS kind FROM fresh) k
 GROUP BY kind ORDER BY kind COLLATE "C";
-- differences (none expected)
SELECT only_in, d FROM (
    SELECT 'after 1.0 + update' AS only_in, d FROM (SELECT d FROM updated EXCEPT SELECT d FROM fresh) u
    UNION ALL
    SELECT 'fresh install', d FROM (SELECT d FROM fresh EXCEPT SELECT d FROM updated) f
) diff
ORDER BY only_in COLLATE "C", d COLLATE "C";

\c contrib_regression
SET client_min_messages = warning;
SET access_audit.maintenance = on;
DROP DATABASE aa_update;
