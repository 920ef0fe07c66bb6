-- A publication is a standing export: rows written to a published table
-- stream to every subscriber without a read here.  Creating one, or adding
-- tables to one, is recorded once per tagged table it then covers, with
-- the tagged columns it publishes.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cp_people (id int PRIMARY KEY, phone text, city text);
CREATE TABLE cp_orders (id int PRIMARY KEY, note text);
CREATE SCHEMA cp_crm;
CREATE TABLE cp_crm.contacts (id int, email text);
SELECT access_audit.tag('cp_people', 'phone', 'pii:phone');
SELECT access_audit.tag('cp_crm.contacts', 'email', 'pii:email');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
-- (the test server's wal_level is not logical: its warning is not the point)
SET client_min_messages = error;
-- 1. a table with a tagged column: recorded
CREATE PUBLICATION cp_all_cols FOR TABLE cp_people;
-- 2. a column list without the tagged column: not recorded
CREATE PUBLICATION cp_no_phone FOR TABLE cp_people (id, city);
-- 3. untagged tables only: not recorded; adding a tagged one is
CREATE PUBLICATION cp_later FOR TABLE cp_orders;
ALTER PUBLICATION cp_later ADD TABLE cp_people (id, phone);
-- 4. a schema
CREATE PUBLICATION cp_schema FOR TABLES IN SCHEMA cp_crm;
-- 5. every table, tagged ones included
CREATE PUBLICATION cp_everything FOR ALL TABLES;
-- 6. options and dropped tables add nothing: not recorded
ALTER PUBLICATION cp_later SET (publish = 'insert');
ALTER PUBLICATION cp_later DROP TABLE cp_orders;
RESET client_min_messages;

SELECT access_audit.flush();
SELECT command, relations, columns, tags, detail::jsonb ->> 'publication' AS publication
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

-- a column tagged after its table was published, and a copy of tagged data
-- made under FOR ALL TABLES: each publication now streaming tagged data is
-- an event too
SELECT coalesce(max(seq), 0) AS start2 FROM access_audit.log \gset
SELECT access_audit.tag('cp_orders', 'note', 'pii:note');
CREATE TABLE cp_copy AS SELECT id, phone FROM cp_people;
-- a changed tag starts nothing new; untagged and tagged again, it does
SELECT access_audit.tag('cp_orders', 'note', 'pii:notes');
SELECT access_audit.untag('cp_orders', 'note');
SELECT access_audit.tag('cp_orders', 'note', 'pii:note');
SELECT access_audit.flush();
SELECT command, relations, columns, tags, detail::jsonb ->> 'publication' AS publication,
       detail::jsonb ->> 'why' AS why
  FROM access_audit.log WHERE seq > :start2 AND command <> 'CREATE TABLE AS' ORDER BY seq;

-- what the publications stream now, including those columns
SELECT publication, schema, "table", "column", tag FROM access_audit.published_columns
 WHERE publication LIKE 'cp\_%' ORDER BY 1, 2, 3, 4;

DROP PUBLICATION cp_all_cols, cp_no_phone, cp_later, cp_schema, cp_everything;
DROP TABLE cp_people, cp_orders, cp_crm.contacts, cp_copy;
DROP SCHEMA cp_crm;
