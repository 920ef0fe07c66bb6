-- Copies into tables that already exist are tagged too: an INSERT or UPDATE
-- that writes values computed from tagged columns gives the columns it
-- writes their tags when it completes (a tag change with its why), so that
-- reading the copy is audited like reading the original.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE tc_people (id int PRIMARY KEY, phone text, email text, city text);
INSERT INTO tc_people
SELECT g, '555-' || g, 'p' || g || '@example.com', 'city' || (g % 3)
  FROM generate_series(1, 10) g;
SELECT access_audit.tag('tc_people', 'phone', 'pii:phone');
SELECT access_audit.tag('tc_people', 'email', 'pii:email');
CREATE ROLE tc_clerk;
GRANT SELECT ON tc_people TO tc_clerk;
CREATE TABLE tc_stash (id int, a text, b text, c text);
CREATE TABLE tc_notes (id int, note text);
INSERT INTO tc_notes SELECT g, 'note' FROM generate_series(1, 10) g;
CREATE TABLE tc_parted (id int, a text) PARTITION BY RANGE (id);
CREATE TABLE tc_parted_1 PARTITION OF tc_parted FOR VALUES FROM (0) TO (100);
CREATE TABLE tc_fn (v text);
CREATE TABLE tc_own (v text);
CREATE TABLE tc_merged (id int, x text, y text);
INSERT INTO tc_merged VALUES (5, 'old', 'old');
CREATE TABLE tc_twice (v text);
CREATE TABLE tc_prep_t (v text);
CREATE TABLE tc_base (v text);
CREATE VIEW tc_auto AS SELECT v FROM tc_base;
CREATE TABLE tc_trig_t (v text);
CREATE VIEW tc_trig AS SELECT DISTINCT v FROM tc_trig_t;
CREATE FUNCTION tc_trig_fn() RETURNS trigger LANGUAGE plpgsql
AS $$ BEGIN INSERT INTO tc_trig_t VALUES (NEW.v); RETURN NEW; END $$;
CREATE TRIGGER tc_trig_ins INSTEAD OF INSERT ON tc_trig
    FOR EACH ROW EXECUTE FUNCTION tc_trig_fn();
-- a copy inside the table: a stored generated column computed from phone
CREATE TABLE tc_gen (id int, phone text, city text,
    masked text GENERATED ALWAYS AS ('***' || right(phone, 2)) STORED,
    town text GENERATED ALWAYS AS (upper(city)) STORED);
INSERT INTO tc_gen (id, phone, city) VALUES (1, '555-1', 'oslo');
SELECT access_audit.tag('tc_gen', 'phone', 'pii:phone');
GRANT SELECT (id, masked, town) ON tc_gen TO tc_clerk;
SELECT access_audit.tag('tc_own', 'v', 'restricted');
GRANT ALL ON tc_stash, tc_notes, tc_parted, tc_parted_1, tc_fn, tc_own, tc_merged, tc_twice,
    tc_prep_t, tc_base, tc_auto, tc_trig, tc_trig_t TO tc_clerk;
CREATE FUNCTION tc_copy_fn() RETURNS void LANGUAGE plpgsql
AS $$ BEGIN INSERT INTO tc_fn VALUES ((SELECT email FROM tc_people WHERE id = 2)); END $$;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- made by a role that may not tag: the copies are tagged all the same
SET ROLE tc_clerk;
-- 1. INSERT ... SELECT: b computed from email, a from an untagged column
INSERT INTO tc_stash (id, a, b)
SELECT id, city, upper(email) FROM tc_people WHERE id <= 3;
-- 2. the same again: b is tagged already, no second tag change
INSERT INTO tc_stash (id, a, b)
SELECT id, city, upper(email) FROM tc_people WHERE id > 3;
-- 3. a tagged column only in the filter: nothing copied, a stays untagged
INSERT INTO tc_stash (id, a) SELECT id, city FROM tc_people WHERE phone LIKE '555-1%';
-- 4. a statement that fails tags nothing (c would have taken pii:phone)
INSERT INTO tc_stash (id, c) SELECT id, phone || (1 / (id - id)) FROM tc_people;
-- 5. UPDATE ... FROM writes phone into the notes
UPDATE tc_notes n SET note = p.phone FROM tc_people p WHERE p.id = n.id AND p.id = 1;
-- 6. a data-modifying WITH query into a partitioned table: the table named
-- is tagged, its partitions inherit (pii:phone + pii:email give pii)
WITH w AS (INSERT INTO tc_parted SELECT id, phone || email FROM tc_people RETURNING id)
SELECT count(*) FROM w;
-- 7. in a function, and a VALUES row with a scalar subquery
SELECT tc_copy_fn();
-- 8. a column with a tag of its own keeps it
INSERT INTO tc_own SELECT phone FROM tc_people WHERE id = 1;
-- 10. MERGE: its UPDATE and INSERT actions write the columns they set
MERGE INTO tc_merged m USING tc_people p ON m.id = p.id
 WHEN MATCHED THEN UPDATE SET x = p.phone
 WHEN NOT MATCHED AND p.id < 4 THEN INSERT VALUES (p.id, NULL, p.email);
-- 11. one statement writing the same column twice tags it once
WITH w1 AS (INSERT INTO tc_twice SELECT phone FROM tc_people WHERE id = 1 RETURNING 1),
     w2 AS (INSERT INTO tc_twice SELECT email FROM tc_people WHERE id = 2 RETURNING 1)
SELECT (SELECT count(*) FROM w1) + (SELECT count(*) FROM w2) AS n;
-- 12. a prepared statement run again and again (custom plans, then the
-- generic one) tags its target once
PREPARE tc_prep AS INSERT INTO tc_prep_t SELECT phone FROM tc_people WHERE id = $1;
EXECUTE tc_prep(1); EXECUTE tc_prep(2); EXECUTE tc_prep(3); EXECUTE tc_prep(4);
EXECUTE tc_prep(5); EXECUTE tc_prep(6); EXECUTE tc_prep(7); EXECUTE tc_prep(8);
DEALLOCATE tc_prep;
-- 13. through an updatable view the table under it is tagged; a view whose
-- INSTEAD OF trigger does the writing is not (the trigger's values are
-- not traced back to their source)
INSERT INTO tc_auto SELECT phone FROM tc_people WHERE id = 1;
INSERT INTO tc_trig SELECT phone FROM tc_people WHERE id = 1;
-- 9. a rolled-back copy leaves no tag (its attempt is on record, as every
-- tag change's is)
BEGIN;
INSERT INTO tc_stash (id, c) SELECT id, phone FROM tc_people WHERE id = 1;
ROLLBACK;
RESET ROLE;

SELECT "table", "column", tag, computed_from FROM access_audit.tagged_columns
 WHERE "table" LIKE 'tc\_%' AND "table" <> 'tc_people'
 ORDER BY 1, 2;
SELECT access_audit.flush();
SELECT relation, "column", changed_by, new_tag, why FROM access_audit.tag_changes
 WHERE seq > :start ORDER BY seq;

-- reads of the copies are audited, the partition's as well, and a
-- generated column's (granted alone, it is no way around the audit)
SET ROLE tc_clerk;
SELECT masked FROM tc_gen;
SELECT town FROM tc_gen;
SELECT b FROM tc_stash WHERE id = 1;
SELECT a FROM tc_stash WHERE id = 1;
SELECT note FROM tc_notes WHERE id = 1;
SELECT a FROM tc_parted_1 WHERE id = 2;
SELECT v FROM tc_fn;
RESET ROLE;
SELECT access_audit.flush();
SELECT effective_role, command, columns, rows FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' ORDER BY seq;

DROP VIEW tc_auto, tc_trig;
DROP FUNCTION tc_copy_fn();
DROP FUNCTION tc_trig_fn();
DROP TABLE tc_people, tc_stash, tc_notes, tc_parted, tc_fn, tc_own, tc_merged, tc_twice,
    tc_prep_t, tc_base, tc_trig_t, tc_gen;
DROP ROLE tc_clerk;
