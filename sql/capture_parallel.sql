-- Parallel query: workers do not record; the leader makes exactly one
-- record with the rows of every worker.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE cq_big (id int, phone text, pad text);
INSERT INTO cq_big SELECT g, '555-' || g, repeat('x', 100) FROM generate_series(1, 20000) g;
SELECT access_audit.tag('cq_big', 'phone', 'pii:phone');
ANALYZE cq_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

EXPLAIN (COSTS OFF) SELECT count(phone) FROM cq_big;
SELECT count(phone) FROM cq_big;
EXPLAIN (COSTS OFF) SELECT phone FROM cq_big WHERE id % 2000 = 0;
SELECT phone FROM cq_big WHERE id % 2000 = 0 ORDER BY 1;
SELECT id FROM cq_big WHERE phone LIKE '555-1999%' ORDER BY id;

SELECT access_audit.flush();
SELECT query, command, columns, predicate_columns AS pred, rows,
       tagged_rows AS trows, outcome
  FROM access_audit.log WHERE seq > :start ORDER BY seq;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE cq_big;
