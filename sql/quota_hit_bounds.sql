-- A quota hit always becomes an alert, whatever its reader puts in it: a
-- reason of 1024 bytes that JSON escapes six times longer, a relation
-- named with control characters.  The hit's detail stays whole JSON with
-- the window and the quota (before, the queue cut it to
-- {"truncated_detail": ...} and the writer's alert failed, taking the
-- other alerts of its batch with it).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
DROP ROLE IF EXISTS qhb_reader;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE qhb_reader LOGIN;
SELECT format('%I', repeat(chr(1), 63)) AS odd \gset
CREATE TABLE :odd (id int, phone text);
INSERT INTO :odd SELECT g, '555-' || g FROM generate_series(1, 3) g;
GRANT SELECT ON :odd TO qhb_reader;
SELECT access_audit.tag(format('%I', repeat(chr(1), 63)), 'phone', 'pii:phone');
SELECT access_audit.set_quota('actor', 'qhb_reader', 0, 'day', 'warn',
                              format('%I', repeat(chr(1), 63))) AS q \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start, current_user AS admin FROM access_audit.log \gset

\c - qhb_reader
\set VERBOSITY terse
SET client_min_messages = error;
SELECT set_config('access_audit.reason', repeat(chr(2) || '"', 512), false) IS NOT NULL AS set;
SELECT count(phone) FROM :odd WHERE id = 1;
RESET access_audit.reason;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.flush();

SELECT command, length(detail) <= 2048 AS bounded,
       detail::jsonb ? 'truncated_detail' AS truncated,
       (detail::jsonb ->> 'quota_id')::int = :q AS quota,
       (detail::jsonb ->> 'window_start')::timestamptz <= ts AS window_holds_hit,
       right(detail::jsonb ->> 'reason', 3) AS reason_end,
       right(detail::jsonb ->> 'message', 3) AS message_end
  FROM access_audit.log
 WHERE seq > :start AND command = 'QUOTA WARN';
SELECT kind, quota_id = :q AS quota, detail ->> 'hits' AS hits, length(reason) < 1024 AS short
  FROM access_audit.alerts
 WHERE actor = 'qhb_reader';

SELECT access_audit.drop_quota(:q);
SET access_audit.maintenance = on;
DELETE FROM access_audit.alerts WHERE actor = 'qhb_reader';
RESET access_audit.maintenance;
DROP TABLE :odd;
DROP ROLE qhb_reader;
