-- Row identities (breach scoping, issue 25): the exact keys each read of a
-- tracked table kept, for point reads, ranges, filters, joins, cursors,
-- COPY, failed statements, index-only scans and text/uuid keys; who_read()
-- and the set functions.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT current_user AS orig_user \gset
CREATE TABLE ri_customers (id int PRIMARY KEY, name text, email text, phone text);
INSERT INTO ri_customers SELECT g, 'n' || g, 'e' || g || '@x', 'p' || g FROM generate_series(1, 1000) g;
CREATE TABLE ri_orders (id int PRIMARY KEY, customer_id int, amount int);
INSERT INTO ri_orders SELECT g, g * 7, g FROM generate_series(1, 100) g;
SELECT access_audit.tag('ri_customers', 'phone', 'pii:phone');
SELECT access_audit.tag('ri_customers', 'email', 'pii:email');
ANALYZE ri_customers;
ANALYZE ri_orders;

-- refused: not a table with a usable key
SELECT access_audit.track_rows('ri_customers', 'nope');
CREATE TABLE ri_nokey (a int, b float8);
SELECT access_audit.track_rows('ri_nokey');
SELECT access_audit.track_rows('ri_nokey', 'b');
DROP TABLE ri_nokey;
SELECT access_audit.track_rows('ri_customers');
SELECT rel, relation, key_column FROM access_audit.row_identities;

-- the keys each record kept (a long set as count and range)
CREATE FUNCTION ri_sets(since bigint)
RETURNS TABLE (query text, outcome text, relation text, n bigint, keys text)
LANGUAGE sql AS $$
  SELECT l.query, l.outcome, k.relation, count(*),
         CASE WHEN count(*) <= 12 THEN string_agg(k.key::text, ',' ORDER BY k.key)
              ELSE min(k.key) || '..' || max(k.key) END
    FROM access_audit.log l CROSS JOIN LATERAL access_audit.rows_read(l.seq) k
   WHERE l.seq > since
   GROUP BY l.seq, l.query, l.outcome, k.relation ORDER BY l.seq, k.relation
$$;
CREATE FUNCTION pg_temp.ri_leaky(t text) RETURNS boolean
  LANGUAGE plpgsql AS $$ BEGIN RETURN t = 'p77'; END $$;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

-- point read, range read, a list
SELECT phone FROM ri_customers WHERE id = 42;
SELECT count(phone) FROM ri_customers WHERE id BETWEEN 100 AND 199;
SELECT phone FROM ri_customers WHERE id IN (7, 500, 900) ORDER BY 1;
-- a filter that does not leak: only the row that left the scan
SET enable_indexscan = off;
SET enable_bitmapscan = off;
SELECT phone FROM ri_customers WHERE name = 'n5';
-- a filter on a tagged column that may leak: every row it saw
SELECT id FROM ri_customers WHERE pg_temp.ri_leaky(phone);
RESET enable_indexscan;
RESET enable_bitmapscan;
-- a join: the customers of orders 1 .. 3
SELECT o.id, c.phone FROM ri_orders o JOIN ri_customers c ON c.id = o.customer_id
 WHERE o.id <= 3 ORDER BY o.id;
-- an untagged column only: no record, no set
SELECT name FROM ri_customers WHERE id = 3;
SELECT access_audit.flush();
SELECT * FROM ri_sets(:start);

-- a cursor: the rows fetched before it closed
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SET enable_seqscan = off;
SET enable_sort = off;
BEGIN;
DECLARE ri_cur CURSOR FOR SELECT phone FROM ri_customers ORDER BY id;
FETCH 5 FROM ri_cur;
FETCH 2 FROM ri_cur;
CLOSE ri_cur;
COMMIT;
RESET enable_seqscan;
RESET enable_sort;
-- COPY of the table and of a query
COPY ri_customers TO stdout WITH (FORMAT csv) \g /dev/null
COPY (SELECT phone FROM ri_customers WHERE id < 5) TO stdout;
-- a failed statement: the rows read before the error
SELECT phone, 1 / (id - 50) FROM ri_customers WHERE id BETWEEN 45 AND 60 ORDER BY id;
SELECT access_audit.flush();
SELECT * FROM ri_sets(:start);

-- who read customer 42, 150, 1000, 2000?
SELECT query, command, outcome FROM access_audit.who_read('ri_customers', 42) WHERE seq > :start - 100;
SELECT count(*) FROM access_audit.who_read('ri_customers', 150);
SELECT query FROM access_audit.who_read('ri_customers', '1000');
SELECT count(*) FROM access_audit.who_read('ri_customers', 2000);

-- per actor, counts per table, overlap of two actors
CREATE ROLE ri_mallory LOGIN;
CREATE ROLE ri_trent LOGIN;
GRANT SELECT ON ri_customers TO ri_mallory, ri_trent;
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
\c - ri_mallory
SELECT count(phone) FROM ri_customers WHERE id BETWEEN 10 AND 20;
SELECT phone FROM ri_customers WHERE id = 600;
\c - ri_trent
SELECT count(phone) FROM ri_customers WHERE id BETWEEN 18 AND 25;
\c - :orig_user
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT relation, string_agg(key::text, ',' ORDER BY key)
  FROM access_audit.rows_read_by('ri_mallory', now() - interval '1 hour', now() + interval '1 hour')
 GROUP BY relation;
SELECT * FROM access_audit.rows_read_counts('ri_mallory', now() - interval '1 hour', now() + interval '1 hour');
SELECT * FROM access_audit.overlap('ri_mallory', 'ri_trent', now() - interval '1 hour', now() + interval '1 hour');
-- for the letter: join back to the table
SELECT c.id, c.name FROM ri_customers c
 WHERE c.id IN (SELECT key FROM access_audit.overlap('ri_mallory', 'ri_trent',
                now() - interval '1 hour', now() + interval '1 hour'))
 ORDER BY c.id;

-- text and uuid keys are kept as a keyed hash
CREATE TABLE ri_accounts (email text PRIMARY KEY, u uuid UNIQUE, secret text);
INSERT INTO ri_accounts
  SELECT 'a' || g || '@x', ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, 's' || g
    FROM generate_series(1, 50) g;
SELECT access_audit.tag('ri_accounts', 'secret', 'secret');
SELECT access_audit.track_rows('ri_accounts');
SELECT count(*) FROM access_audit.row_key;
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SELECT secret FROM ri_accounts WHERE email = 'a7@x';
SELECT access_audit.flush();
SELECT query FROM access_audit.who_read('ri_accounts', 'a7@x');
SELECT count(*) FROM access_audit.who_read('ri_accounts', 'a8@x');
SELECT a.email FROM ri_accounts a
 WHERE access_audit.row_key_hash(a.email) IN
       (SELECT k.key FROM access_audit.log l, access_audit.rows_read(l.seq) k WHERE l.seq > :start);
SELECT access_audit.row_key_hash('a7@x') = access_audit.row_key_of('ri_accounts', 'a7@x') AS same;
-- a uuid key
SELECT access_audit.track_rows('ri_accounts', 'u');
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SELECT secret FROM ri_accounts WHERE u = '00000000-0000-0000-0000-000000000009';
SELECT access_audit.flush();
SELECT query FROM access_audit.who_read('ri_accounts', '00000000-0000-0000-0000-000000000009'::uuid);
SELECT a.email FROM ri_accounts a
 WHERE access_audit.row_key_hash(a.u) IN
       (SELECT k.key FROM access_audit.log l, access_audit.rows_read(l.seq) k WHERE l.seq > :start);

-- an index-only scan of an index without the key: the row by its TID
CREATE INDEX ri_customers_email ON ri_customers (email);
VACUUM ANALYZE ri_customers;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
EXPLAIN (COSTS OFF) SELECT email FROM ri_customers WHERE email = 'e321@x';
SELECT email FROM ri_customers WHERE email = 'e321@x';
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT access_audit.flush();
SELECT * FROM ri_sets(:start);

-- parallel plans: workers push the keys they read under the leader's
-- record (with or without the leader reading too)
CREATE TABLE ri_big (id int PRIMARY KEY, phone text, pad text);
INSERT INTO ri_big SELECT g, '555-' || g, repeat('x', 100) FROM generate_series(1, 20000) g;
SELECT access_audit.tag('ri_big', 'phone', 'pii:phone');
SELECT access_audit.track_rows('ri_big');
ANALYZE ri_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
EXPLAIN (COSTS OFF) SELECT phone FROM ri_big WHERE id % 2000 = 0;
SELECT phone FROM ri_big WHERE id % 2000 = 0 ORDER BY 1;
SET parallel_leader_participation = on;
SELECT count(phone) FROM ri_big;
-- a filter on the tagged column that may leak (LIKE is not leakproof)
SELECT count(*) FROM ri_big WHERE phone LIKE '%-1999%';
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
SELECT access_audit.flush();
SELECT * FROM ri_sets(:start);
DROP TABLE ri_big;

-- untracked: reads keep no identities again; what was kept stays
SELECT access_audit.untrack_rows('ri_customers');
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SELECT phone FROM ri_customers WHERE id = 43;
SELECT access_audit.flush();
SELECT * FROM ri_sets(:start);
SELECT count(*) AS kept FROM access_audit.who_read('ri_accounts', '00000000-0000-0000-0000-000000000009'::uuid);
SELECT command, detail FROM access_audit.log WHERE command LIKE 'ROW %' ORDER BY seq;
SELECT ok, detail FROM access_audit.verify_rows();
SELECT ok FROM access_audit.verify();

-- a dropped table is no longer tracked
DROP TABLE ri_accounts, ri_orders, ri_customers;
SELECT access_audit.flush();
SELECT count(*) FROM access_audit.row_identities;
SELECT command, detail FROM access_audit.log WHERE command LIKE 'ROW %' ORDER BY seq DESC LIMIT 1;
DROP FUNCTION ri_sets(bigint);
DROP ROLE ri_mallory;
DROP ROLE ri_trent;
