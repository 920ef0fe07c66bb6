-- Export quotas: each action (block, warn, require_reason), per statement
-- and per day, for a role, a peer group and an actor; a cursor and a COPY
-- stopped at the crossing row with their records; counters that survive a
-- reconnect; break glass, and an exemption that expires.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
DROP ROLE IF EXISTS qt_contractor;
DROP ROLE IF EXISTS qt_super;
RESET client_min_messages;
\set VERBOSITY terse
SET enable_indexscan = off;
SET enable_bitmapscan = off;
CREATE TABLE qt_cust (id int, name text, phone text);
INSERT INTO qt_cust SELECT g, 'name' || g, '555-' || g FROM generate_series(1, 20) g;
CREATE TABLE qt_plain (id int);
INSERT INTO qt_plain SELECT generate_series(1, 20);
SELECT access_audit.tag('qt_cust', 'phone', 'pii:phone');
CREATE ROLE qt_contractor LOGIN;
CREATE ROLE qt_super LOGIN SUPERUSER;
GRANT SELECT ON qt_cust, qt_plain TO qt_contractor;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start, current_user AS admin FROM access_audit.log \gset

-- bad input
SELECT access_audit.set_quota('team', 'x', 1);
SELECT access_audit.set_quota('actor', 'x', -1);
SELECT access_audit.set_quota('actor', 'x', 1, 'week');
SELECT access_audit.set_quota('actor', 'x', 1, 'day', 'deny');
SELECT access_audit.set_quota('role', 'qt_no_such_role', 1);
SELECT access_audit.grant_exemption('actor', 'x', '90 days', 'too long');
SELECT access_audit.grant_exemption('actor', 'x', '1 hour', ' ');
SELECT access_audit.drop_quota(999999);

-- only admins change quotas; a reason is bounded
\c - qt_contractor
\set VERBOSITY terse
SELECT access_audit.set_quota('actor', 'qt_contractor', 1000000);
DELETE FROM access_audit.quotas;
\set VERBOSITY sqlstate
SELECT set_config('access_audit.reason', repeat('x', 1025), false);
\set VERBOSITY terse
\c - :admin
\set VERBOSITY terse

-- block: 5 tagged rows per statement for members of qt_contractor
SELECT access_audit.set_quota('role', 'qt_contractor', 5, 'statement', 'block') AS q_stmt \gset
\c - qt_contractor
\set VERBOSITY terse
SELECT phone FROM qt_cust WHERE id <= 5;
-- a sort reads every row before the first leaves: stopped at the sixth
SELECT phone FROM qt_cust ORDER BY id LIMIT 1;
SELECT count(*) FROM qt_plain;          -- untagged: no quota
SELECT count(*) FROM qt_cust;           -- reads no tagged column
SELECT phone FROM qt_cust WHERE id <= 7;
-- a cursor: rows summed over FETCHes, stopped at the sixth
BEGIN;
DECLARE c CURSOR FOR SELECT id, phone FROM qt_cust;
FETCH 3 FROM c;
FETCH 3 FROM c;
ROLLBACK;
-- COPY, relation form and query form, stopped mid-stream
COPY qt_cust TO STDOUT;
COPY (SELECT phone FROM qt_cust) TO STDOUT;
-- a superuser who is not a member is not under the role's quota
\c - qt_super
\set VERBOSITY terse
SELECT count(phone) FROM qt_cust WHERE id <= 7;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.drop_quota(:q_stmt);

-- require_reason: 8 tagged rows a day for the peer group contractors
INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('qt_contractor', 'qt_contractors');
SELECT access_audit.set_quota('group', 'qt_contractors', 8, 'day', 'require_reason') AS q_day \gset
\c - qt_contractor
\set VERBOSITY terse
SELECT phone FROM qt_cust WHERE id <= 5;
SELECT phone FROM qt_cust WHERE id <= 5;
-- a reconnect does not reset the day's counter
\c - qt_contractor
\set VERBOSITY terse
SELECT phone FROM qt_cust WHERE id = 1;
SET access_audit.reason = 'ticket 4711';
SELECT phone FROM qt_cust WHERE id <= 2;
SELECT phone FROM qt_cust WHERE id = 3;
RESET access_audit.reason;
\c - :admin
\set VERBOSITY terse
SELECT actor, used, max_rows, remaining FROM access_audit.quota_usage
 WHERE quota_id = :q_day;
SELECT access_audit.drop_quota(:q_day);

-- warn: 3 tagged rows a day of qt_cust for the actor
SELECT access_audit.set_quota('actor', 'qt_contractor', 3, 'day', 'warn', 'qt_cust') AS q_warn \gset
\c - qt_contractor
\set VERBOSITY terse
SELECT phone FROM qt_cust WHERE id <= 4;
SELECT count(*) FROM qt_plain;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.drop_quota(:q_warn);

-- superusers are under quotas unless exempted; break glass, then expiry
SELECT access_audit.set_quota('actor', 'qt_super', 0, 'statement', 'block') AS q_super \gset
\c - qt_super
\set VERBOSITY terse
SELECT phone FROM qt_cust WHERE id = 1;
-- the admin can still fix quotas
SELECT access_audit.grant_exemption('actor', 'qt_super', '1 hour', 'incident 42: restore customer phones') AS ex \gset
SELECT phone FROM qt_cust WHERE id = 1;
SELECT access_audit.revoke_exemption(:ex);
SELECT phone FROM qt_cust WHERE id = 1;
-- an exemption that runs out by itself
SELECT access_audit.grant_exemption('actor', 'qt_super', '1 second', 'short job') AS ex2 \gset
SELECT phone FROM qt_cust WHERE id = 2;
DO $$
BEGIN
    WHILE clock_timestamp() <= (SELECT expires_at FROM access_audit.quota_exemptions
                                 WHERE exemption_id = (SELECT max(exemption_id) FROM access_audit.quota_exemptions))
    LOOP
        PERFORM pg_sleep(0.05);
    END LOOP;
END
$$;
SELECT phone FROM qt_cust WHERE id = 2;
SELECT access_audit.drop_quota(:q_super);
SELECT phone FROM qt_cust WHERE id = 2;
\c - :admin
\set VERBOSITY terse

-- what was recorded
SELECT access_audit.flush();
-- (a hit's detail is JSON: its message here, its other fields below)
SELECT actor, command, rows, tagged_rows, outcome,
       CASE WHEN command LIKE 'QUOTA %' THEN detail::jsonb ->> 'message' ELSE detail END AS detail
  FROM access_audit.log
 WHERE seq > :start AND command NOT IN ('QUOTA INSERT', 'QUOTA DELETE', 'EXEMPTION INSERT',
                                        'EXEMPTION UPDATE', 'PEER GROUP INSERT', 'PEER GROUP DELETE')
   AND relations IS DISTINCT FROM '{access_audit.quotas}'
 ORDER BY seq;
-- changes are audit records too
SELECT command, count(*) FROM access_audit.log
 WHERE seq > :start AND (command LIKE 'QUOTA %' OR command LIKE 'EXEMPTION %' OR command LIKE 'PEER GROUP %')
   AND command NOT IN ('QUOTA WARN', 'QUOTA BLOCK', 'QUOTA REASON', 'QUOTA NO REASON')
 GROUP BY command ORDER BY command COLLATE "C";
SELECT granted_by IS NOT NULL AS t, reason FROM access_audit.quota_exemptions ORDER BY exemption_id;
-- the facts of a hit, for the alert and for machines
SELECT DISTINCT ON (command) command,
       detail::jsonb - 'message' - 'window_start' - 'window_end' AS facts,
       (detail::jsonb ->> 'window_start')::timestamptz <= ts AND
       (detail::jsonb ->> 'window_end')::timestamptz > ts AS window_holds_hit
  FROM access_audit.log
 WHERE seq > :start AND command IN ('QUOTA REASON', 'QUOTA BLOCK')
 ORDER BY command, seq;
-- every hit is an alert: one per actor, window, kind and quota, with a count
SELECT actor, kind, quota_id, detail ->> 'hits' AS hits, detail ->> 'rows_read' AS rows_read,
       round(score::numeric, 3) AS score, detail ->> 'reason' AS reason, reason AS alert
  FROM access_audit.alerts
 WHERE actor IN ('qt_contractor', 'qt_super')
 ORDER BY alert_id;

SET access_audit.maintenance = on;
DELETE FROM access_audit.alerts WHERE actor IN ('qt_contractor', 'qt_super');
RESET access_audit.maintenance;
DELETE FROM access_audit.actor_groups WHERE actor = 'qt_contractor';
DELETE FROM access_audit.quota_exemptions;
DROP TABLE qt_cust, qt_plain;
DROP ROLE qt_contractor;
DROP ROLE qt_super;
