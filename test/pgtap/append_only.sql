/* test/pgtap/append_only.sql */
--
-- pgTAP tests of the append-only guard (extension/guard.c) and retention:
-- every refusal (as superuser, as a non-superuser table owner, with
-- session_replication_role = replica, through CASCADE, DROP SCHEMA, DROP
-- OWNED and DROP EXTENSION), the refusals' own records, maintenance mode
-- and its records, verify() on a clean log and naming the first bad seq
-- after an UPDATE, a DELETE and an INSERT made in maintenance mode (each
-- repaired exactly afterwards), drop_before() then verify(), argument
-- errors, the alert functions' insert path and read access.
--
-- Run from the repository root against a database where access_audit and
-- pgtap are installed, as a superuser:
--   pg_prove -d <db> test/pgtap/append_only.sql
-- Everything happens in one transaction that is rolled back; the audit
-- records the tests produce are committed by the writer and stay.

\set ON_ERROR_STOP 1
\set QUIET 1
SET client_min_messages = warning;
\pset format unaligned
\pset tuples_only true
\pset pager off

BEGIN;
SELECT plan(86);

CREATE TEMP TABLE t0 AS
SELECT access_audit.flush() AS flushed,
       (SELECT coalesce(max(seq), 0) FROM access_audit.log_data) AS start;

CREATE ROLE aa_guard_owner NOLOGIN;
CREATE ROLE aa_guard_owner2 NOLOGIN;
CREATE ROLE aa_guard_nobody NOLOGIN;
CREATE ROLE aa_guard_reader NOLOGIN IN ROLE access_audit_reader;
GRANT USAGE ON SCHEMA access_audit TO aa_guard_owner, aa_guard_owner2;

------------------------------------------------------------------------------
-- The second line of defence: a statement trigger on every audit table,
-- ENABLE ALWAYS so that session_replication_role = replica keeps it.
------------------------------------------------------------------------------
SELECT is(
    (SELECT string_agg(c.relname || ':' || t.tgenabled::text, ',' ORDER BY c.relname COLLATE "C")
       FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      WHERE c.relnamespace = 'access_audit'::regnamespace AND t.tgname = 'guard'
        AND c.relname !~ '^log_data_p[0-9]+$'),
    'actor_daily:A,alert_acks:A,alerts:A,chain_checkpoints:A,collect_progress:A,collected_checkpoints:A,collected_log:A,collected_row_keys:A,collected_row_set_reads:A,collected_row_sets:A,collected_sessions:A,collected_shapes:A,collected_string_sets:A,collected_strings:A,log_data:A,log_data_default:A,row_set_reads:A,row_sets:A,sessions:A,shapes:A,string_sets:A,strings:A,writer_state:A',
    'every audit table has the guard trigger, enabled ALWAYS');
-- the log's partitions, made by the writer at run time, have it too
SELECT is(
    (SELECT count(*)::int FROM access_audit._log_partitions() p
      WHERE NOT EXISTS (SELECT 1 FROM pg_trigger t
                         WHERE t.tgrelid = p.partition AND t.tgname = 'guard' AND t.tgenabled = 'A')),
    0,
    'every partition of the log has the guard trigger, enabled ALWAYS');

------------------------------------------------------------------------------
-- Refusals as superuser.
------------------------------------------------------------------------------
SELECT throws_ok($$INSERT INTO access_audit.log_data (seq, ts, session_id, shape_id, hash) VALUES (-1, now(), 1, 1, '\x00')$$,
                 '42501', 'INSERT on "access_audit.log_data" is not allowed', 'plain INSERT into log_data');
SELECT throws_ok($$INSERT INTO access_audit.log (seq, ts, database) VALUES (-1, now(), 'x')$$,
                 '42501', 'INSERT on "access_audit.log" is not allowed', 'INSERT into the log view');
SELECT throws_ok($$UPDATE access_audit.log SET rows = 0$$,
                 '42501', 'UPDATE on "access_audit.log" is not allowed', 'UPDATE of the log view');
SELECT throws_ok($$DELETE FROM access_audit.log$$,
                 '42501', 'DELETE on "access_audit.log" is not allowed', 'DELETE from the log view');
SELECT throws_ok($$UPDATE access_audit.log_data SET rows = 0 WHERE seq = 1$$,
                 '42501', 'UPDATE on "access_audit.log_data" is not allowed', 'UPDATE of log_data');
SELECT throws_ok($$DELETE FROM access_audit.log_data WHERE false$$,
                 '42501', 'DELETE on "access_audit.log_data" is not allowed', 'DELETE from log_data, even of no rows');
SELECT throws_ok($$WITH d AS (DELETE FROM access_audit.log_data RETURNING seq) SELECT count(*) FROM d$$,
                 '42501', 'DELETE on "access_audit.log_data" is not allowed', 'DELETE in a data-modifying CTE');
SELECT throws_ok($$TRUNCATE access_audit.log_data$$,
                 '42501', 'TRUNCATE on "access_audit.log_data" is not allowed', 'TRUNCATE log_data');
SELECT throws_ok($$COPY access_audit.log_data FROM '/dev/null'$$,
                 '42501', 'COPY FROM on "access_audit.log_data" is not allowed', 'COPY into log_data');
SELECT throws_ok($$ALTER TABLE access_audit.log_data DISABLE TRIGGER guard$$,
                 '42501', 'DISABLE TRIGGER on "access_audit.log_data" is not allowed', 'ALTER TABLE ... DISABLE TRIGGER');
SELECT throws_ok($$ALTER TABLE access_audit.log_data DISABLE TRIGGER ALL$$,
                 '42501', 'DISABLE TRIGGER on "access_audit.log_data" is not allowed', 'ALTER TABLE ... DISABLE TRIGGER ALL');
SELECT throws_ok($$ALTER TABLE access_audit.log_data RENAME TO log_data_old$$,
                 '42501', 'RENAME on "access_audit.log_data" is not allowed', 'ALTER TABLE ... RENAME');
SELECT throws_ok($$ALTER TABLE access_audit.log_data RENAME COLUMN detail TO d$$,
                 '42501', 'RENAME on "access_audit.log_data" is not allowed', 'ALTER TABLE ... RENAME COLUMN');
SELECT throws_ok($$ALTER TABLE access_audit.log_data ADD COLUMN x int$$,
                 '42501', 'ALTER on "access_audit.log_data" is not allowed', 'ALTER TABLE ... ADD COLUMN');
SELECT throws_ok($$ALTER TABLE access_audit.log_data SET SCHEMA public$$,
                 '42501', 'SET SCHEMA on "access_audit.log_data" is not allowed', 'ALTER TABLE ... SET SCHEMA');
SELECT throws_ok($$ALTER TABLE access_audit.log_data OWNER TO aa_guard_owner$$,
                 '42501', 'OWNER TO on "access_audit.log_data" is not allowed', 'ALTER TABLE ... OWNER TO');
SELECT throws_ok($$ALTER VIEW access_audit.log RENAME TO log_old$$,
                 '42501', 'RENAME on "access_audit.log" is not allowed', 'ALTER VIEW log ... RENAME');
SELECT throws_ok($$CREATE OR REPLACE VIEW access_audit.log AS SELECT 1 AS seq$$,
                 '42501', 'CREATE VIEW on "access_audit.log" is not allowed', 'CREATE OR REPLACE VIEW of the log');
SELECT throws_ok($$CREATE TRIGGER mute BEFORE INSERT ON access_audit.actor_daily FOR EACH ROW EXECUTE FUNCTION suppress_redundant_updates_trigger()$$,
                 '42501', 'CREATE TRIGGER on "access_audit.actor_daily" is not allowed', 'CREATE TRIGGER on an audit table');
SELECT throws_ok($$DROP TRIGGER guard ON access_audit.log_data$$,
                 '42501', 'DROP on "access_audit.log_data" is not allowed', 'DROP TRIGGER guard');
SELECT throws_ok($$CREATE RULE hide AS ON INSERT TO access_audit.actor_daily DO INSTEAD NOTHING$$,
                 '42501', 'CREATE RULE on "access_audit.actor_daily" is not allowed', 'CREATE RULE on an audit table');
SELECT throws_ok($$CREATE TABLE public.aa_guard_child () INHERITS (access_audit.log_data)$$,
                 '42501', 'INHERIT on "access_audit.log_data" is not allowed', 'a child table of log_data');
SELECT throws_ok($$CREATE FUNCTION access_audit.verify() RETURNS boolean LANGUAGE sql AS 'SELECT true'$$,
                 '42501', 'CREATE FUNCTION on "access_audit.verify" is not allowed', 'a function shadowing verify()');
SELECT throws_ok($$ALTER FUNCTION access_audit.verify(bigint, bigint, text) RENAME TO verify_old$$,
                 '42501', 'RENAME on "access_audit.verify" is not allowed', 'renaming verify()');
SELECT throws_ok($$ALTER EXTENSION access_audit DROP TABLE access_audit.log_data$$,
                 '42501', 'ALTER EXTENSION on "extension access_audit" is not allowed', 'ALTER EXTENSION ... DROP TABLE');
SELECT throws_ok($$DROP TABLE access_audit.log_data$$,
                 '42501', 'DROP on "access_audit.log_data" is not allowed', 'DROP TABLE log_data');
SELECT throws_ok($$DROP TABLE access_audit.log_data CASCADE$$,
                 '42501', 'DROP on "access_audit.log_data" is not allowed', 'DROP TABLE log_data CASCADE');
SELECT throws_ok($$DROP SCHEMA access_audit CASCADE$$,
                 '42501', 'DROP SCHEMA on "access_audit" is not allowed', 'DROP SCHEMA access_audit CASCADE');
SELECT throws_ok($$DROP EXTENSION access_audit$$,
                 '42501', 'DROP EXTENSION on "extension access_audit" is not allowed', 'DROP EXTENSION');
SELECT throws_ok($$DROP EXTENSION access_audit CASCADE$$,
                 '42501', 'DROP EXTENSION on "extension access_audit" is not allowed', 'DROP EXTENSION CASCADE');

-- the other tables that store audit data
SELECT throws_ok($$DELETE FROM access_audit.strings$$,
                 '42501', 'DELETE on "access_audit.strings" is not allowed', 'DELETE from strings');
SELECT throws_ok($$UPDATE access_audit.string_sets SET value = '{}'$$,
                 '42501', 'UPDATE on "access_audit.string_sets" is not allowed', 'UPDATE of string_sets');
SELECT throws_ok($$UPDATE access_audit.writer_state SET last_pos = 0$$,
                 '42501', 'UPDATE on "access_audit.writer_state" is not allowed', 'UPDATE of writer_state');
SELECT throws_ok($$INSERT INTO access_audit.chain_checkpoints (seq, hash) VALUES (-1, '\x00')$$,
                 '42501', 'INSERT on "access_audit.chain_checkpoints" is not allowed', 'a forged retention checkpoint');
SELECT throws_ok($$INSERT INTO access_audit.actor_daily (day, actor, relation) VALUES (current_date, 'x', 'y')$$,
                 '42501', 'INSERT on "access_audit.actor_daily" is not allowed', 'INSERT into actor_daily');
SELECT throws_ok($$DELETE FROM access_audit.actor_daily$$,
                 '42501', 'DELETE on "access_audit.actor_daily" is not allowed', 'DELETE from actor_daily');
SELECT throws_ok($$INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason) VALUES ('x', now(), now(), 1, 'x')$$,
                 '42501', 'INSERT on "access_audit.alerts" is not allowed', 'INSERT into alerts outside check_exports()');
SELECT throws_ok($$INSERT INTO access_audit.alert_acks (alert_id) VALUES (1)$$,
                 '42501', 'INSERT on "access_audit.alert_acks" is not allowed', 'INSERT into alert_acks outside ack()');
SELECT throws_ok($$TRUNCATE access_audit.alerts CASCADE$$,
                 '42501', 'TRUNCATE on "access_audit.alerts" is not allowed', 'TRUNCATE alerts CASCADE');
SELECT lives_ok($$INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('aa-guard-x', 'g');
                  DELETE FROM access_audit.actor_groups WHERE actor = 'aa-guard-x'$$,
                'the peer-group map is ordinary data');

------------------------------------------------------------------------------
-- session_replication_role = replica silences neither hooks nor triggers.
------------------------------------------------------------------------------
SET LOCAL session_replication_role = replica;
SELECT throws_ok($$DELETE FROM access_audit.log_data$$,
                 '42501', 'DELETE on "access_audit.log_data" is not allowed', 'DELETE with replication role replica');
SELECT throws_ok($$UPDATE access_audit.actor_daily SET rows = 0$$,
                 '42501', 'UPDATE on "access_audit.actor_daily" is not allowed', 'UPDATE with replication role replica');
SELECT throws_ok($$TRUNCATE access_audit.log_data$$,
                 '42501', 'TRUNCATE on "access_audit.log_data" is not allowed', 'TRUNCATE with replication role replica');
SET LOCAL session_replication_role = origin;

------------------------------------------------------------------------------
-- Setups that take exclusive locks (ALTER ... OWNER TO) run in a block that
-- is undone at once, so that the writer, which appends to these tables, is
-- not kept waiting until the end of the test transaction.  Returns each
-- statement's outcome: 'ok' or 'SQLSTATE: message'.
------------------------------------------------------------------------------
CREATE FUNCTION pg_temp.try_undone(setup text[], stmts text[])
RETURNS text[]
LANGUAGE plpgsql
AS $$
DECLARE
    res text[] := '{}';
    s text;
BEGIN
    BEGIN
        FOREACH s IN ARRAY setup LOOP
            EXECUTE s;
        END LOOP;
        FOREACH s IN ARRAY stmts LOOP
            BEGIN
                EXECUTE s;
                res := res || 'ok'::text;
            EXCEPTION WHEN OTHERS THEN
                res := res || (SQLSTATE || ': ' || SQLERRM);
            END;
        END LOOP;
        RAISE EXCEPTION 'undo' USING ERRCODE = 'P0099';
    EXCEPTION WHEN SQLSTATE 'P0099' THEN
        NULL;
    END;
    RETURN res;
END
$$;

------------------------------------------------------------------------------
-- As the table owner (a non-superuser): hand log_data to aa_guard_owner in
-- maintenance mode, then try as that role.
------------------------------------------------------------------------------
CREATE TEMP TABLE owner_res AS
SELECT pg_temp.try_undone(
    ARRAY['SET LOCAL access_audit.maintenance = on',
          'ALTER TABLE access_audit.log_data OWNER TO aa_guard_owner',
          'SET LOCAL access_audit.maintenance = off',
          'SET LOCAL ROLE aa_guard_owner'],
    ARRAY['DELETE FROM access_audit.log_data WHERE seq = 1',
          'UPDATE access_audit.log_data SET rows = 0 WHERE seq = 1',
          'TRUNCATE access_audit.log_data',
          'ALTER TABLE access_audit.log_data DISABLE TRIGGER guard',
          'DROP TABLE access_audit.log_data',
          'SET access_audit.maintenance = on',
          'SELECT current_user = ''aa_guard_owner'' AND (SELECT relowner FROM pg_class WHERE oid = ''access_audit.log_data''::regclass) = ''aa_guard_owner''::regrole']) AS r;
SELECT is(r[7], 'ok', 'the block ran as the new owner') FROM owner_res;
SELECT is(r[1], '42501: DELETE on "access_audit.log_data" is not allowed', 'owner: DELETE') FROM owner_res;
SELECT is(r[2], '42501: UPDATE on "access_audit.log_data" is not allowed', 'owner: UPDATE') FROM owner_res;
SELECT is(r[3], '42501: TRUNCATE on "access_audit.log_data" is not allowed', 'owner: TRUNCATE') FROM owner_res;
SELECT is(r[4], '42501: DISABLE TRIGGER on "access_audit.log_data" is not allowed', 'owner: DISABLE TRIGGER') FROM owner_res;
SELECT is(r[5], '42501: DROP on "access_audit.log_data" is not allowed', 'owner: DROP TABLE') FROM owner_res;
SELECT matches(r[6], '^42501: ', 'a non-superuser cannot switch maintenance mode on') FROM owner_res;

------------------------------------------------------------------------------
-- A drop no statement names: DROP OWNED reaching a table that is no longer
-- an extension member (object access hook).
------------------------------------------------------------------------------
SELECT is(pg_temp.try_undone(
    ARRAY['SET LOCAL access_audit.maintenance = on',
          'ALTER EXTENSION access_audit DROP TABLE access_audit.writer_state',
          'ALTER TABLE access_audit.writer_state OWNER TO aa_guard_owner2',
          'SET LOCAL access_audit.maintenance = off'],
    ARRAY['DROP OWNED BY aa_guard_owner2 CASCADE']),
    ARRAY['42501: DROP on "access_audit.writer_state" is not allowed'],
    'DROP OWNED reaching an audit table');

------------------------------------------------------------------------------
-- The refusals and maintenance mode are recorded.
------------------------------------------------------------------------------
SELECT ok(access_audit.flush(), 'the writer committed the records');
SELECT cmp_ok((SELECT count(*)::int FROM access_audit.log, t0 WHERE seq > t0.start AND command = 'REFUSED'),
              '>=', 45, 'every refusal is a REFUSED record');
SELECT ok(EXISTS (SELECT 1 FROM access_audit.log, t0
                   WHERE seq > t0.start AND command = 'REFUSED'
                     AND relations = '{access_audit.log_data}'
                     AND detail::jsonb ->> 'action' = 'TRUNCATE'
                     AND query LIKE '%TRUNCATE access_audit.log_data%'),
          'a refused TRUNCATE names the table and carries the statement');
SELECT ok(EXISTS (SELECT 1 FROM access_audit.log, t0
                   WHERE seq > t0.start AND command = 'REFUSED'
                     AND detail::jsonb ->> 'action' = 'DROP EXTENSION'),
          'a refused DROP EXTENSION is recorded');
SELECT ok(EXISTS (SELECT 1 FROM access_audit.log, t0
                   WHERE seq > t0.start AND command = 'REFUSED' AND effective_role = 'aa_guard_owner'
                     AND detail::jsonb ->> 'action' = 'DELETE'),
          'the owner''s refused DELETE is recorded with the owner as effective role');
SELECT ok(EXISTS (SELECT 1 FROM access_audit.log, t0
                   WHERE seq > t0.start AND command = 'MAINTENANCE'
                     AND detail::jsonb ->> 'action' = 'maintenance on'
                     AND query ILIKE '%access_audit.maintenance = on%'),
          'switching maintenance mode on is recorded with the statement');
SELECT ok(EXISTS (SELECT 1 FROM access_audit.log, t0
                   WHERE seq > t0.start AND command = 'MAINTENANCE'
                     AND relations = '{access_audit.log_data}'
                     AND detail::jsonb ->> 'action' = 'OWNER TO'),
          'what is done in maintenance mode is recorded');
SELECT ok(NOT EXISTS (SELECT 1 FROM access_audit.log, t0
                       WHERE seq > t0.start AND command = 'REFUSED'
                         AND relations = '{access_audit.actor_groups}'),
          'changes of the peer-group map are not refusals');

------------------------------------------------------------------------------
-- Read access.
------------------------------------------------------------------------------
SET LOCAL ROLE aa_guard_nobody;
SELECT throws_ok($$SELECT count(*) FROM access_audit.log$$, '42501', NULL, 'PUBLIC cannot read the log');
RESET ROLE;
SET LOCAL ROLE aa_guard_reader;
SELECT lives_ok($$SELECT count(*) FROM access_audit.log$$, 'access_audit_reader reads the log');
SELECT lives_ok($$SELECT * FROM access_audit.verify()$$, 'access_audit_reader runs verify()');
SELECT throws_ok($$SELECT access_audit.drop_before(now())$$, '42501', NULL, 'access_audit_reader cannot run drop_before()');
RESET ROLE;

------------------------------------------------------------------------------
-- verify() on the clean log, then after tampering in maintenance mode, each
-- tampering repaired exactly.  N is a record with neighbours on both sides.
------------------------------------------------------------------------------
SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes on the clean log');
CREATE TEMP TABLE victim AS
SELECT l.* FROM access_audit.log l, t0 WHERE l.seq = (SELECT min(seq) + 1 FROM access_audit.log_data, t0 WHERE seq > t0.start);

SET LOCAL access_audit.maintenance = on;
UPDATE access_audit.log SET detail = '{"forged": true}' WHERE seq = (SELECT seq FROM victim);
SELECT is((SELECT row(ok, first_bad_seq)::text FROM access_audit.verify()),
          (SELECT row(false, seq)::text FROM victim), 'verify() names the record changed by an UPDATE');
UPDATE access_audit.log SET detail = (SELECT detail FROM victim) WHERE seq = (SELECT seq FROM victim);
SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes after the UPDATE is undone');

DELETE FROM access_audit.log WHERE seq = (SELECT seq FROM victim);
SELECT is((SELECT row(ok, first_bad_seq)::text FROM access_audit.verify()),
          (SELECT row(false, seq)::text FROM victim), 'verify() names the record removed by a DELETE');
INSERT INTO access_audit.log SELECT * FROM victim;
SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes after the record is put back');

-- a forged record: far beyond the head, so the writer cannot collide with it
INSERT INTO access_audit.log (seq, ts, database, command, query, hash)
SELECT max(seq) + 1000000, now(), current_database(), 'SELECT', 'forged', '\xdeadbeef'
  FROM access_audit.log_data;
SELECT is((SELECT row(ok, first_bad_seq)::text FROM access_audit.verify()),
          (SELECT row(false, max(seq) + 1)::text FROM access_audit.log_data
            WHERE seq < (SELECT max(seq) FROM access_audit.log_data)),
          'verify() names the first bad seq after an INSERT');
DELETE FROM access_audit.log WHERE query = 'forged' AND hash = '\xdeadbeef';
SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes after the forged record is removed');
SET LOCAL access_audit.maintenance = off;

------------------------------------------------------------------------------
-- Retention.
------------------------------------------------------------------------------
SELECT throws_ok($$SELECT access_audit.drop_before(NULL)$$, '22004',
                 'cut-off time must not be null', 'drop_before(NULL)');
SELECT throws_ok($$SELECT access_audit.drop_before(now() + interval '1 day')$$, '22023', NULL,
                 'drop_before() of a future time');
SELECT throws_ok($$SELECT access_audit.drop_before(now())$$, '55000',
                 'access_audit.drop_before() requires maintenance mode', 'drop_before() outside maintenance mode');
SELECT throws_ok($$SELECT * FROM access_audit.verify(10, 5)$$, '22023', NULL, 'verify() with to_seq before from_seq');

SET LOCAL access_audit.maintenance = on;
CREATE TEMP TABLE cut AS
SELECT ts FROM access_audit.log_data WHERE seq = (SELECT seq FROM victim) + 2;
CREATE TEMP TABLE removed AS SELECT access_audit.drop_before((SELECT ts FROM cut)) AS n;
SELECT ok((SELECT n FROM removed) > 0, 'drop_before() removed the old records');
SELECT ok(NOT EXISTS (SELECT 1 FROM access_audit.log_data WHERE ts < (SELECT ts FROM cut)),
          'no record older than the cut-off is left');
SELECT is((SELECT cut_before FROM access_audit.chain_checkpoints
            WHERE seq = (SELECT min(seq) - 1 FROM access_audit.log_data)),
          (SELECT ts FROM cut), 'a checkpoint records the cut');
SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes after drop_before()');
SELECT is(access_audit.drop_before((SELECT ts FROM cut)), 0::bigint, 'a second drop_before() removes nothing');
SET LOCAL access_audit.maintenance = off;

------------------------------------------------------------------------------
-- check_exports() and ack() insert alerts; nothing else does.
------------------------------------------------------------------------------
SET LOCAL access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements)
SELECT access_audit.business_day(now()) - g, 'ag-' || i, 'public.orders', 100, 0, 1
  FROM generate_series(1, 8) i, generate_series(0, 45) g
UNION ALL
SELECT access_audit.business_day(now()) - g, 'ag-thief', 'public.orders', 100, 0, 1
  FROM generate_series(1, 45) g
UNION ALL
SELECT access_audit.business_day(now()), 'ag-thief', 'public.orders', 90000, 0, 10;
SET LOCAL access_audit.maintenance = off;
SELECT ok(access_audit.check_exports() >= 1, 'check_exports() inserts alerts');
SELECT ok(access_audit.ack((SELECT max(alert_id) FROM access_audit.alerts WHERE actor = 'ag-thief'), 'seen') > 0,
          'ack() inserts an acknowledgement');
SELECT throws_ok($$DELETE FROM access_audit.alert_acks$$,
                 '42501', 'DELETE on "access_audit.alert_acks" is not allowed', 'acknowledgements cannot be removed');

------------------------------------------------------------------------------
-- A dictionary entry made by a rolled-back repair is not reused.
------------------------------------------------------------------------------
SET LOCAL access_audit.maintenance = on;
SAVEPOINT ghost;
INSERT INTO access_audit.log (seq, ts, database, actor, hash) VALUES (999999, now(), 'x', 'ghost-actor-1', '\x00');
ROLLBACK TO SAVEPOINT ghost;
INSERT INTO access_audit.log (seq, ts, database, actor, hash) VALUES (999999, now(), 'x', 'ghost-actor-1', '\x00');
SELECT is((SELECT actor FROM access_audit.log WHERE seq = 999999), 'ghost-actor-1',
          'a dictionary entry made in a rolled-back subtransaction is made again');
DELETE FROM access_audit.log WHERE seq = 999999;
SET LOCAL access_audit.maintenance = off;

SELECT ok((SELECT ok FROM access_audit.verify()), 'verify() passes at the end');

SELECT * FROM finish();
ROLLBACK;
