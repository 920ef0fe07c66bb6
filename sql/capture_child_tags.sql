-- Tags on a partition or inheritance child only: reading through the
-- untagged parent reads the child's tagged columns, recorded under the
-- child's name.  Columns the parent does not have are not read through it.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
CREATE TABLE cc_people (id int, region text, city text NOT NULL, phone text)
  PARTITION BY LIST (region);
CREATE TABLE cc_people_eu PARTITION OF cc_people FOR VALUES IN ('eu');
-- a partition whose columns are in another order
CREATE TABLE cc_people_us (phone text, city text NOT NULL, region text, id int);
ALTER TABLE cc_people ATTACH PARTITION cc_people_us FOR VALUES IN ('us');
INSERT INTO cc_people VALUES (1, 'eu', 'Oslo', '555-1'), (2, 'eu', 'Rome', '555-2'),
  (3, 'us', 'Reno', '555-3');
SELECT access_audit.tag('cc_people_eu', 'phone', 'pii:phone');
CREATE TABLE cc_base (id int, note text);
CREATE TABLE cc_child (secret text) INHERITS (cc_base);
INSERT INTO cc_child VALUES (1, 'n1', 's1'), (2, 'n2', 's2');
SELECT access_audit.tag('cc_child', 'note', 'pii:note');
SELECT access_audit.tag('cc_child', 'secret', 'pii:secret');
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT phone FROM cc_people ORDER BY id;
SELECT id FROM cc_people WHERE phone = '555-2';
SELECT p FROM cc_people p WHERE id = 1;
SELECT phone FROM cc_people WHERE region = 'us';
SELECT count(*) FROM cc_people;
SELECT id, city FROM cc_people ORDER BY id;
SELECT note FROM cc_base ORDER BY id;
SELECT id FROM cc_base ORDER BY id;
-- a write through the parent whose error shows the partition's row
INSERT INTO cc_people VALUES (9, 'eu', NULL, '555-9');

SELECT access_audit.flush();
SELECT query, relations, columns, predicate_columns AS pred, rows,
       tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
RESET enable_indexscan;
RESET enable_bitmapscan;
DROP TABLE cc_people;
DROP TABLE cc_child;
DROP TABLE cc_base;
