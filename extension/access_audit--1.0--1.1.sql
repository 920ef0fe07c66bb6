/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- Every change made to extension/sql/*.sql after 1.0 is repeated here, so
-- that an updated 1.0 installation ends with the same objects as a fresh 1.1
-- install.

-- ---------------------------------------------------------------------------
-- crash (core regression suite): immutable functions that are safe to run
-- in parallel workers say so (opr_sanity flags them otherwise).
ALTER FUNCTION access_audit.valid_tag(text) PARALLEL SAFE;
ALTER FUNCTION access_audit.publication_tables() PARALLEL SAFE;
