-- Code and tables a table owner attaches to a tagged table: CHECK
-- constraints, expression indexes, ALTER COLUMN TYPE ... USING and stored
-- generated columns evaluate code over every row now (a read of the tagged
-- columns they refer to, with the table's rows); row triggers, row-level
-- security policies, INHERIT and ATTACH PARTITION are events naming what
-- they attach.  Code that refers to no tagged column is not recorded.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE co_owner;
GRANT CREATE ON SCHEMA public TO co_owner;
SET ROLE co_owner;
CREATE TABLE co_cust (id int, city text, phone text);
INSERT INTO co_cust SELECT g, 'city' || g, '555-' || g FROM generate_series(1, 5) g;
CREATE TABLE co_part (id int, phone text);
CREATE TABLE co_parent (id int, city text, phone text);
CREATE TABLE co_parted (id int, phone text) PARTITION BY LIST (id);
CREATE TABLE co_stash (v text);
CREATE FUNCTION co_leak(t text) RETURNS bool LANGUAGE plpgsql IMMUTABLE
  AS $$ BEGIN RETURN true; END $$;
CREATE FUNCTION co_trg() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN INSERT INTO co_stash VALUES (OLD.phone); RETURN NEW; END $$;
RESET ROLE;
SELECT access_audit.tag('co_cust', 'phone', 'pii:phone');
SELECT access_audit.tag('co_part', 'phone', 'pii:phone');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SET ROLE co_owner;
ALTER TABLE co_cust ADD CONSTRAINT co_chk CHECK (co_leak(phone));
ALTER TABLE co_cust ADD CONSTRAINT co_chk_city CHECK (city <> '');
CREATE INDEX co_idx ON co_cust (co_leak(phone));
CREATE INDEX co_idx_city ON co_cust (lower(city));
ALTER TABLE co_cust ALTER COLUMN city TYPE text USING city || phone;
ALTER TABLE co_cust ADD COLUMN shout text GENERATED ALWAYS AS (upper(phone)) STORED;
CREATE TRIGGER co_t BEFORE UPDATE ON co_cust FOR EACH ROW EXECUTE FUNCTION co_trg();
CREATE POLICY co_p ON co_cust USING (co_leak(phone));
ALTER TABLE co_cust INHERIT co_parent;
ALTER TABLE co_parted ATTACH PARTITION co_part FOR VALUES IN (1);
ALTER TABLE co_cust ADD CONSTRAINT co_bad CHECK (phone = 'x');
RESET ROLE;

SELECT access_audit.flush();
SELECT command, relations, columns, rows, tagged_rows AS trows, outcome,
       detail::jsonb ->> 'attaches' AS attaches, effective_role
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP TABLE co_cust, co_part, co_parent, co_parted, co_stash;
DROP FUNCTION co_leak(text);
DROP FUNCTION co_trg();
REVOKE CREATE ON SCHEMA public FROM co_owner;
DROP ROLE co_owner;

-- PostgreSQL's own, already analyzed statements: CREATE TABLE ... (LIKE ...
-- INCLUDING INDEXES) runs a copied expression index as a CREATE INDEX of its
-- own, here on a table whose inherited column is tagged
CREATE TABLE co_src (id int, phone text);
CREATE INDEX co_src_idx ON co_src (lower(phone));
CREATE TABLE co_base (phone text);
SELECT access_audit.tag('co_base', 'phone', 'pii:phone');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
CREATE TABLE co_copy (LIKE co_src INCLUDING INDEXES) INHERITS (co_base);
SELECT access_audit.flush();
SELECT command, relations, columns, rows, outcome,
       detail::jsonb ->> 'attaches' AS attaches
  FROM access_audit.log WHERE seq > :start AND command = 'CREATE INDEX'
 ORDER BY seq;
DROP TABLE co_copy, co_base, co_src;
