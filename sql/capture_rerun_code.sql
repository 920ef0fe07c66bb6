-- Code a table owner attached to a tagged table earlier runs again over its
-- rows when PostgreSQL rebuilds the indexes (REINDEX, CLUSTER, VACUUM FULL,
-- REFRESH MATERIALIZED VIEW, an ALTER TABLE that rewrites the table),
-- samples the table (ANALYZE) or checks its constraints again (ALTER
-- COLUMN ... TYPE).  A user-defined function in an expression index, a
-- partial index predicate, an extended statistics expression or a CHECK
-- constraint then sees every tagged value once more, with no executor read:
-- each such statement is a read of the tagged columns that code refers to.
-- PostgreSQL's own functions (lower(phone)) pass no value on: not recorded.
-- A NOT VALID constraint validated later (ALTER TABLE/DOMAIN ... VALIDATE
-- CONSTRAINT) runs then, and a domain's new or validated constraint runs over
-- every column of that domain, in tables the domain's owner need not own.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE rr_owner;
CREATE SCHEMA rr AUTHORIZATION rr_owner;
SET ROLE rr_owner;
CREATE TABLE rr.cust (id int PRIMARY KEY, city text, phone text);
INSERT INTO rr.cust SELECT g, 'city' || g, '555-' || g FROM generate_series(1, 5) g;
CREATE TABLE rr.loot (v text);
-- an index needs an IMMUTABLE function, which may not write; one it calls may
CREATE FUNCTION rr.sink(t text) RETURNS void LANGUAGE plpgsql
  AS $$ BEGIN INSERT INTO rr.loot VALUES (t); END $$;
CREATE FUNCTION rr.leak(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM rr.sink(t); RETURN t; END $$;
CREATE FUNCTION rr.ok(t text) RETURNS bool LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN PERFORM rr.sink(t); RETURN true; END $$;
CREATE TABLE rr.parted (id int, phone text) PARTITION BY LIST (id);
CREATE TABLE rr.part1 PARTITION OF rr.parted FOR VALUES IN (1);
INSERT INTO rr.parted VALUES (1, '555-1');
RESET ROLE;
SELECT access_audit.tag('rr.cust', 'phone', 'pii:phone');
SELECT access_audit.tag('rr.parted', 'phone', 'pii:phone');
SET ROLE rr_owner;
CREATE INDEX cust_leak ON rr.cust (rr.leak(phone));
CREATE INDEX cust_lower ON rr.cust (lower(phone));
CREATE INDEX cust_city ON rr.cust (rr.leak(city));
CREATE STATISTICS rr.cust_st ON (rr.leak(phone)) FROM rr.cust;
ALTER TABLE rr.cust ADD CONSTRAINT cust_chk CHECK (rr.ok(phone) AND id > 0);
CREATE INDEX parted_leak ON rr.parted (id) WHERE rr.ok(phone);
-- a copy of tagged data is tagged (its phone column here)
CREATE MATERIALIZED VIEW rr.mv AS SELECT phone FROM rr.cust;
CREATE INDEX mv_leak ON rr.mv (rr.leak(phone));
ALTER TABLE rr.cust ADD CONSTRAINT cust_later CHECK (rr.ok(phone)) NOT VALID;
CREATE DOMAIN rr.phone_t AS text;
CREATE DOMAIN rr.phone2_t AS rr.phone_t;
GRANT USAGE ON SCHEMA rr TO PUBLIC;
GRANT USAGE ON TYPE rr.phone_t, rr.phone2_t TO PUBLIC;
RESET ROLE;
-- tables of another owner, of the domain and of a domain over it
CREATE TABLE rr_dom (id int, phone rr.phone_t, note rr.phone_t);
CREATE TABLE rr_dom2 (id int, phone rr.phone2_t);
INSERT INTO rr_dom SELECT g, '555-' || g, 'n' || g FROM generate_series(1, 3) g;
INSERT INTO rr_dom2 SELECT g, '555-' || g FROM generate_series(1, 2) g;
SELECT access_audit.tag('rr_dom', 'phone', 'pii:phone');
SELECT access_audit.tag('rr_dom2', 'phone', 'pii:phone');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SET ROLE rr_owner;
TRUNCATE rr.loot;
REINDEX TABLE rr.cust;
-- every phone went through rr.leak() again (and every city)
SELECT count(*) AS loot FROM rr.loot WHERE v LIKE '555-%';
REINDEX INDEX rr.cust_leak;
REINDEX INDEX rr.cust_lower;
REINDEX INDEX rr.cust_city;
CLUSTER rr.cust USING cust_pkey;
VACUUM FULL rr.cust;
VACUUM rr.cust;
ANALYZE rr.cust;
ALTER TABLE rr.cust ALTER COLUMN id TYPE bigint;
ALTER TABLE rr.cust SET UNLOGGED;
REINDEX TABLE rr.parted;
REINDEX SCHEMA rr;
REFRESH MATERIALIZED VIEW rr.mv;
ALTER TABLE rr.cust VALIDATE CONSTRAINT cust_later;
TRUNCATE rr.loot;
ALTER DOMAIN rr.phone_t ADD CONSTRAINT dom_chk CHECK (rr.ok(VALUE));
-- the tagged phones of both tables went through rr.ok() (and the notes)
SELECT count(*) AS loot FROM rr.loot WHERE v LIKE '555-%';
ALTER DOMAIN rr.phone_t ADD CONSTRAINT dom_later CHECK (VALUE <> '') NOT VALID;
ALTER DOMAIN rr.phone_t VALIDATE CONSTRAINT dom_later;
RESET ROLE;

SELECT access_audit.flush();
SELECT command, relations, columns, tagged_rows AS trows, outcome,
       detail::jsonb ->> 'attaches' AS attaches, effective_role
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP TABLE rr_dom, rr_dom2;
DROP SCHEMA rr CASCADE;
DROP ROLE rr_owner;

-- An exclusion constraint builds an index: its expressions and predicate
-- run over every row when it is added, like CREATE INDEX
CREATE ROLE rr_owner;
GRANT CREATE ON SCHEMA public TO rr_owner;
CREATE TABLE rr_excl (id int, phone text);
ALTER TABLE rr_excl OWNER TO rr_owner;
INSERT INTO rr_excl SELECT g, '555-' || g FROM generate_series(1, 4) g;
SELECT access_audit.tag('rr_excl', 'phone', 'pii:phone');
CREATE FUNCTION rr_same(t text) RETURNS text LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN RETURN t; END $$;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SET ROLE rr_owner;
ALTER TABLE rr_excl ADD CONSTRAINT rr_ex1 EXCLUDE USING btree (rr_same(phone) WITH =);
ALTER TABLE rr_excl ADD CONSTRAINT rr_ex2 EXCLUDE USING btree (id WITH =) WHERE (phone <> '');
ALTER TABLE rr_excl ADD CONSTRAINT rr_ex3 EXCLUDE USING btree (id WITH =);
RESET ROLE;
SELECT access_audit.flush();
SELECT command, relations, columns, tagged_rows AS trows, outcome,
       detail::jsonb ->> 'attaches' AS attaches, effective_role
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP TABLE rr_excl;
DROP FUNCTION rr_same(text);
REVOKE CREATE ON SCHEMA public FROM rr_owner;
DROP ROLE rr_owner;

-- A rule on a tagged table runs its actions with every write by anyone,
-- copying OLD and NEW values: its creation is an event like a trigger's,
-- naming the tagged columns it refers to
CREATE ROLE rr_owner;
CREATE TABLE rr_rule (id int, phone text, note text);
CREATE TABLE rr_rule_copy (v text);
ALTER TABLE rr_rule OWNER TO rr_owner;
ALTER TABLE rr_rule_copy OWNER TO rr_owner;
SELECT access_audit.tag('rr_rule', 'phone', 'pii:phone');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SET ROLE rr_owner;
CREATE RULE rr_r1 AS ON UPDATE TO rr_rule
  DO ALSO INSERT INTO rr_rule_copy VALUES (OLD.phone);
CREATE RULE rr_r2 AS ON DELETE TO rr_rule WHERE OLD.note <> ''
  DO ALSO DELETE FROM rr_rule_copy WHERE v = OLD.note;
CREATE RULE rr_r3 AS ON INSERT TO rr_rule DO ALSO NOTIFY rr_channel;
RESET ROLE;
SELECT access_audit.flush();
SELECT command, relations, columns, tagged_rows AS trows, outcome,
       detail::jsonb ->> 'attaches' AS attaches, effective_role
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP TABLE rr_rule, rr_rule_copy;
DROP ROLE rr_owner;
