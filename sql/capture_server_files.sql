-- Data taken out by built-in functions rather than by reading a table:
-- pg_read_binary_file() of a tagged table's file is a read of its tagged
-- columns (the table's rows); other server files and replication slot
-- functions are recorded as events naming the function.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cf_cust (id int PRIMARY KEY, phone text);
INSERT INTO cf_cust VALUES (1, '555-1'), (2, '555-2'), (3, '555-3');
CREATE INDEX cf_phone_idx ON cf_cust (phone);
CHECKPOINT;
SELECT access_audit.tag('cf_cust', 'phone', 'pii:phone');
SELECT pg_relation_filepath('cf_cust') AS path \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT length(pg_read_binary_file(pg_relation_filepath('cf_cust'))) > 0 AS got_file;
SELECT length(pg_read_binary_file(:'path', 0, 100)) AS got_head;
SELECT length(pg_read_binary_file(pg_relation_filepath('cf_phone_idx'))) > 0 AS got_index;
SELECT length(pg_read_file('PG_VERSION')) > 0 AS got_other;
-- refused by PostgreSQL (wal_level), in words that changed in 17
\set VERBOSITY sqlstate
SELECT count(*) FROM pg_logical_slot_peek_changes('cf_no_such_slot', NULL, NULL);
\set VERBOSITY terse

SELECT access_audit.flush();
SELECT command, relations, columns, tagged_rows AS trows, outcome,
       detail::jsonb ->> 'function' AS function, detail::jsonb ->> 'slot' AS slot
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP TABLE cf_cust;
