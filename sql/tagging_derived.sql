-- A copy of tagged data is tagged data: a relation made from a query
-- (CREATE TABLE AS, SELECT INTO, materialized views) gives each column the
-- tag of the tagged columns it is computed from, as a tag change with its
-- why, so reads of the copy are audited like reads of the original.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE td_people (id int PRIMARY KEY, phone text, email text, city text, zip text);
INSERT INTO td_people
SELECT g, '555-' || g, 'p' || g || '@example.com', 'city' || (g % 7), 'z' || (g % 5)
  FROM generate_series(1, 20) g;
SELECT access_audit.tag('td_people', 'phone', 'pii:phone');
SELECT access_audit.tag('td_people', 'email', 'pii:email');
SELECT access_audit.tag('td_people', 'city', 'address');
CREATE ROLE td_analyst;
GRANT SELECT ON td_people TO td_analyst;
GRANT CREATE ON SCHEMA public TO td_analyst;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- made by a role that may not tag: the copy is tagged all the same
SET ROLE td_analyst;
-- 1. columns copied, computed, combined (pii:phone + pii:email give pii),
-- and untagged ones
CREATE TABLE td_copy AS
SELECT id, phone, upper(email) AS mail, phone || ' ' || email AS contact,
       city, zip, phone || city AS mixed
  FROM td_people;
-- 2. SELECT INTO, with a filter on a tagged column that is not copied
SELECT id, zip INTO td_into FROM td_people WHERE phone LIKE '555-1%';
-- 3. aggregates: count() passes on no values, string_agg() does
CREATE TABLE td_agg AS
SELECT count(phone) AS n, string_agg(email, ',') AS emails FROM td_people;
-- 4. a whole row
CREATE TABLE td_rows AS SELECT p FROM td_people p;
-- 5. a materialized view: tagged when its data is made
CREATE MATERIALIZED VIEW td_mv AS SELECT id, phone FROM td_people WITH NO DATA;
REFRESH MATERIALIZED VIEW td_mv;
-- 6. EXPLAIN ANALYZE runs it as well (the plan is not shown: PostgreSQL 18
-- prints its row counts differently)
\o /dev/null
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
CREATE TABLE td_explained AS SELECT email FROM td_people;
\o
SELECT count(*) FROM td_explained;
-- 7. through a function, and a join to an untagged table
CREATE TABLE td_other (id int, note text);
INSERT INTO td_other VALUES (1, 'x');
CREATE FUNCTION td_copy_fn() RETURNS void LANGUAGE plpgsql
AS $$ BEGIN CREATE TABLE td_joined AS SELECT o.note, p.phone FROM td_other o JOIN td_people p USING (id); END $$;
SELECT td_copy_fn();
RESET ROLE;
-- 8. a copy that reads no tagged column is left alone; a table that
-- already exists (IF NOT EXISTS) is not touched
CREATE TABLE td_plain AS SELECT id, zip FROM td_people;
CREATE TABLE IF NOT EXISTS td_plain AS SELECT phone FROM td_people;
-- 9. a column that already has a tag of its own keeps it
CREATE MATERIALIZED VIEW td_mv2 AS SELECT phone FROM td_people WITH NO DATA;
SELECT access_audit.tag('td_mv2', 'phone', 'restricted');
REFRESH MATERIALIZED VIEW td_mv2;

-- 10. shared parts are whole parts: contact:mail and contact:mailbox share
-- contact
CREATE TABLE td_parts (a text, b text);
SELECT access_audit.tag('td_parts', 'a', 'contact:mail');
SELECT access_audit.tag('td_parts', 'b', 'contact:mailbox');
CREATE TABLE td_parts_copy AS SELECT a || b AS ab FROM td_parts;

SELECT "table", "column", tag FROM access_audit.tagged_columns
 WHERE "table" LIKE 'td\_%' AND "table" NOT IN ('td_people', 'td_parts')
 ORDER BY 1, 2;
SELECT access_audit.flush();
SELECT relation, "column", changed_by, new_tag, why FROM access_audit.tag_changes
 WHERE seq > :start ORDER BY seq;

-- reads of the copy are audited
SET ROLE td_analyst;
SELECT contact FROM td_copy WHERE id = 2;
SELECT zip FROM td_copy WHERE id = 2;
RESET ROLE;
SELECT access_audit.flush();
SELECT effective_role, command, columns, rows FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' ORDER BY seq;

DROP FUNCTION td_copy_fn();
DROP TABLE td_copy, td_into, td_agg, td_rows, td_explained, td_other, td_joined, td_plain,
    td_parts, td_parts_copy;
DROP MATERIALIZED VIEW td_mv, td_mv2;
DROP TABLE td_people;
REVOKE CREATE ON SCHEMA public FROM td_analyst;
DROP ROLE td_analyst;
