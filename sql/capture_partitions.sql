-- Capture of partitioned tables and inheritance: a tag on the parent
-- covers its children, whether read through the parent or directly.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cp_orders (id int, region text, card text) PARTITION BY LIST (region);
CREATE TABLE cp_orders_eu PARTITION OF cp_orders FOR VALUES IN ('eu');
-- a partition whose columns are in another order
CREATE TABLE cp_orders_us (card text, region text, id int);
ALTER TABLE cp_orders ATTACH PARTITION cp_orders_us FOR VALUES IN ('us');
INSERT INTO cp_orders VALUES (1, 'eu', '4111'), (2, 'us', '4222'), (3, 'us', '4333');
SELECT access_audit.tag('cp_orders', 'card', 'pci');
CREATE TABLE cp_people (id int, ssn text);
CREATE TABLE cp_staff (badge text) INHERITS (cp_people);
INSERT INTO cp_people VALUES (1, '111');
INSERT INTO cp_staff VALUES (2, '222', 'b2');
SELECT access_audit.tag('cp_people', 'ssn', 'pii:ssn');
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT card FROM cp_orders ORDER BY id;
SELECT id FROM cp_orders WHERE card = '4222';
SELECT card FROM cp_orders_us ORDER BY id;
SELECT id FROM cp_orders_us WHERE card = '4333';
SELECT * FROM cp_orders_eu;
SELECT count(*) FROM cp_orders;
SELECT ssn FROM cp_people ORDER BY id;
SELECT ssn FROM ONLY cp_people;
SELECT ssn, badge FROM cp_staff;
SELECT id FROM cp_staff WHERE ssn = '222';
SELECT badge FROM cp_staff;

SELECT access_audit.flush();
SELECT query, command, relations, columns, predicate_columns AS pred, tags,
       rows, tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

-- tags follow the data out of the tree: a detached partition and a child
-- taken out of an inheritance tree keep the tags they inherited, as labels
-- of their own, with a tag change record each
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
-- cp_orders_us has a label of its own on card: it stays as it is
SECURITY LABEL FOR access_audit ON COLUMN cp_orders_us.card IS 'pci:us';
ALTER TABLE cp_orders DETACH PARTITION cp_orders_us;
ALTER TABLE cp_orders DETACH PARTITION cp_orders_eu;
ALTER TABLE cp_staff NO INHERIT cp_people;
SELECT objname, label FROM pg_seclabels
 WHERE provider = 'access_audit' AND objname ~ '^cp_(orders_|staff)' ORDER BY 1;
SELECT card FROM cp_orders_us ORDER BY id;
SELECT card FROM cp_orders_eu ORDER BY id;
SELECT ssn FROM cp_staff;
SELECT id FROM cp_orders_eu;
SELECT access_audit.flush();
SELECT relation, "column", old_tag, new_tag, why FROM access_audit.tag_changes
 WHERE seq > :start ORDER BY seq;
SELECT command, relations, columns, tags, rows FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' ORDER BY seq;

DROP TABLE cp_orders, cp_people, cp_orders_us, cp_orders_eu, cp_staff CASCADE;
