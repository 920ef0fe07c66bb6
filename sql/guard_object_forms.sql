-- The guard's utility gate names objects as each statement does: ALTER
-- TYPE/DOMAIN ... RENAME, SET SCHEMA and OWNER TO carry a bare name list
-- where DROP TYPE carries a TypeName.  Every form must work, in a database
-- with the extension and in one where access_audit is only preloaded; one
-- of them used to crash the server.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT current_database() AS home \gset
CREATE ROLE regress_gof_owner;

-- a database where the library is only preloaded
CREATE DATABASE regress_gof_plain;
\c regress_gof_plain
SELECT count(*) AS extensions FROM pg_extension WHERE extname = 'access_audit';
CREATE DOMAIN gof_d AS int CONSTRAINT gof_pos CHECK (VALUE > 0);
CREATE TYPE gof_e AS ENUM ('a', 'b');
CREATE SCHEMA gof;
BEGIN;
ALTER DOMAIN gof_d RENAME TO gof_d2;
ROLLBACK;
BEGIN;
ALTER TYPE gof_e RENAME TO gof_e2;
ALTER DOMAIN gof_d SET SCHEMA gof;
ALTER DOMAIN gof.gof_d OWNER TO regress_gof_owner;
ALTER TYPE gof_e2 OWNER TO regress_gof_owner;
ROLLBACK;
ALTER DOMAIN gof_d RENAME TO gof_d2;
ALTER DOMAIN gof_d2 SET SCHEMA gof;
ALTER DOMAIN gof.gof_d2 OWNER TO regress_gof_owner;
ALTER TYPE gof_e SET SCHEMA gof;
SELECT typname, typnamespace::regnamespace,
       typowner = 'regress_gof_owner'::regrole AS handed_over
  FROM pg_type WHERE typname LIKE 'gof%' AND typtype IN ('d', 'e') ORDER BY 1;
\c :home
DROP DATABASE regress_gof_plain;

-- the same forms, and more kinds of objects, with the extension
CREATE SCHEMA gof;
CREATE DOMAIN gof_d AS int CONSTRAINT gof_pos CHECK (VALUE > 0);
CREATE TYPE gof_e AS ENUM ('a', 'b');
CREATE TYPE gof_c AS (x int, y text);
CREATE TYPE gof_r AS RANGE (subtype = int4);
BEGIN;
ALTER DOMAIN gof_d RENAME TO gof_d2;
ROLLBACK;
ALTER DOMAIN gof_d RENAME TO gof_d2;
ALTER DOMAIN gof_d2 RENAME CONSTRAINT gof_pos TO gof_positive;
ALTER DOMAIN gof_d2 SET SCHEMA gof;
ALTER DOMAIN gof.gof_d2 OWNER TO regress_gof_owner;
ALTER TYPE gof_e RENAME TO gof_e2;
ALTER TYPE gof_e2 RENAME VALUE 'a' TO 'c';
ALTER TYPE gof_e2 SET SCHEMA gof;
ALTER TYPE gof.gof_e2 OWNER TO regress_gof_owner;
ALTER TYPE gof_c RENAME ATTRIBUTE x TO z;
ALTER TYPE gof_c RENAME TO gof_c2;
ALTER TYPE gof_c2 SET SCHEMA gof;
ALTER TYPE gof.gof_c2 OWNER TO regress_gof_owner;
ALTER TYPE gof_r RENAME TO gof_r2;
ALTER TYPE gof_r2 OWNER TO regress_gof_owner;
SELECT typname, typnamespace::regnamespace,
       typowner = 'regress_gof_owner'::regrole AS handed_over
  FROM pg_type WHERE typname LIKE 'gof%' AND typtype IN ('c', 'd', 'e', 'r')
  ORDER BY 1;
-- wrong or missing objects fail as PostgreSQL says
ALTER DOMAIN gof.gof_e2 RENAME TO gof_x;
ALTER DOMAIN no_such_domain RENAME TO gof_x;
ALTER TYPE no_such_schema.no_such_type OWNER TO regress_gof_owner;
ALTER TYPE gof_c3 SET SCHEMA gof;
-- other kinds named by name lists or with arguments
CREATE COLLATION gof_coll FROM "C";
ALTER COLLATION gof_coll RENAME TO gof_coll2;
ALTER COLLATION gof_coll2 SET SCHEMA gof;
ALTER COLLATION gof.gof_coll2 OWNER TO regress_gof_owner;
CREATE TEXT SEARCH CONFIGURATION gof_ts (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION gof_ts RENAME TO gof_ts2;
ALTER TEXT SEARCH CONFIGURATION gof_ts2 SET SCHEMA gof;
ALTER TEXT SEARCH CONFIGURATION gof.gof_ts2 OWNER TO regress_gof_owner;
CREATE FUNCTION gof_f(int) RETURNS int LANGUAGE sql AS 'SELECT $1';
ALTER FUNCTION gof_f(int) RENAME TO gof_f2;
ALTER FUNCTION gof_f2(int) SET SCHEMA gof;
ALTER FUNCTION gof.gof_f2(int) OWNER TO regress_gof_owner;
CREATE OPERATOR ### (FUNCTION = gof.gof_f2, RIGHTARG = int);
ALTER OPERATOR ### (NONE, int) SET SCHEMA gof;
ALTER OPERATOR gof.### (NONE, int) OWNER TO regress_gof_owner;
CREATE TABLE gof_t (a int, b int);
CREATE STATISTICS gof_s ON a, b FROM gof_t;
ALTER STATISTICS gof_s RENAME TO gof_s2;
ALTER STATISTICS gof_s2 SET SCHEMA gof;
ALTER STATISTICS gof.gof_s2 OWNER TO regress_gof_owner;
-- the guarded schema is still guarded for every form
ALTER DOMAIN gof.gof_d2 SET SCHEMA access_audit;
ALTER TYPE gof.gof_e2 SET SCHEMA access_audit;
ALTER FUNCTION gof.gof_f2(int) SET SCHEMA access_audit;
ALTER TYPE access_audit.log_data RENAME TO gof_x;
ALTER TYPE access_audit.log_data OWNER TO regress_gof_owner;
ALTER TYPE access_audit.log_data SET SCHEMA gof;
DROP TYPE access_audit.log_data;
DROP TABLE gof_t;
DROP SCHEMA gof CASCADE;
DROP TYPE gof_r2;
DROP ROLE regress_gof_owner;
