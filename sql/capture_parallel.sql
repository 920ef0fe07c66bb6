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

-- A PARALLEL SAFE function that reads tagged columns, called from a plan
-- that reads no tagged table: with parallel query forced (the setting's
-- name depends on the server version) the function runs in a worker.  The
-- worker records what the function reads, in the leader's name, once.
CREATE TABLE cq_drive (n int);
INSERT INTO cq_drive VALUES (3);
CREATE FUNCTION cq_phones(i int) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE
  AS $$ BEGIN RETURN (SELECT string_agg(phone, ',' ORDER BY id) FROM cq_big WHERE id <= i); END $$;
CREATE FUNCTION pg_temp.cq_tmp_phones(i int) RETURNS text
  LANGUAGE plpgsql STABLE PARALLEL SAFE
  AS $$ BEGIN RETURN (SELECT string_agg(phone, ',' ORDER BY id) FROM cq_big WHERE id <= i); END $$;
SELECT count(set_config(name, 'on', false)) AS forced
  FROM pg_settings WHERE name IN ('force_parallel_mode', 'debug_parallel_query');
SET max_parallel_workers_per_gather = 1;
-- the plan's shape, not EXPLAIN's text (18 prints rows=1.00 and buffers)
CREATE FUNCTION pg_temp.cq_plan() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  p json;
BEGIN
  EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
             SELECT cq_phones(n) FROM cq_drive' INTO p;
  RETURN concat_ws(' ', p -> 0 -> 'Plan' ->> 'Node Type',
                   p -> 0 -> 'Plan' ->> 'Workers Launched',
                   p -> 0 -> 'Plan' ->> 'Single Copy',
                   p -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Node Type',
                   (p -> 0 -> 'Plan' -> 'Plans' -> 0 ->> 'Actual Rows')::numeric::int);
END $$;
SELECT pg_temp.cq_plan() AS plan;
DROP FUNCTION pg_temp.cq_plan();
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset
SELECT cq_phones(n) FROM cq_drive;
SELECT pg_temp.cq_tmp_phones(n + 1) FROM cq_drive;
SELECT count(set_config(name, 'off', false)) AS unforced
  FROM pg_settings WHERE name IN ('force_parallel_mode', 'debug_parallel_query');
SELECT access_audit.flush();
SELECT query, command, nesting_level AS lvl, columns, rows,
       tagged_rows AS trows, outcome, backend_pid = pg_backend_pid() AS leader,
       login_role = current_user AS login
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
DROP FUNCTION cq_phones(int);
DROP FUNCTION pg_temp.cq_tmp_phones(int);
DROP TABLE cq_drive;

RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
DROP TABLE cq_big;
