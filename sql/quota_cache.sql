-- A backend keeps the quotas that apply to its actor between statements
-- (quota.c, QuotaSet) and its hour and day counters pinned; within one
-- session the set follows every change it depends on: a quota set or
-- dropped, a role membership granted or revoked, SET SESSION
-- AUTHORIZATION, the actor a trusted application names, and the counters
-- go on where they were when the set is made anew.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
DROP ROLE IF EXISTS qc_team;
DROP ROLE IF EXISTS qc_member;
DROP ROLE IF EXISTS qc_app;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE qc_t (id int, phone text);
INSERT INTO qc_t SELECT g, '555-' || g FROM generate_series(1, 10) g;
SELECT access_audit.tag('qc_t', 'phone', 'pii:phone');
CREATE ROLE qc_team;
CREATE ROLE qc_member;
CREATE ROLE qc_app LOGIN IN ROLE access_audit_app;
GRANT SELECT ON qc_t TO qc_member, qc_app;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start, current_user AS admin FROM access_audit.log \gset

-- (messages name quota ids and the admin, which depend on the installation)
\set VERBOSITY sqlstate
-- a role's quota, 2 rows per statement, in this one session
SELECT access_audit.set_quota('role', 'qc_team', 2, 'statement', 'block') AS q_role \gset
-- a superuser is under a role's quota only as a member
SELECT count(phone) FROM qc_t;
GRANT qc_team TO CURRENT_USER;
SELECT count(phone) FROM qc_t;
REVOKE qc_team FROM CURRENT_USER;
SELECT count(phone) FROM qc_t;
-- roles are matched on the session user
GRANT qc_team TO qc_member;
SET SESSION AUTHORIZATION qc_member;
SELECT count(phone) FROM qc_t;
SELECT count(phone) FROM qc_t WHERE id <= 2;
RESET SESSION AUTHORIZATION;
SELECT count(phone) FROM qc_t;
SELECT access_audit.drop_quota(:q_role) IS NOT NULL AS dropped;
SELECT count(phone) FROM qc_t WHERE id <= 2;

-- a day quota set here applies at the next statement; its counter goes on
-- when another quota's change makes the set anew
SELECT access_audit.set_quota('actor', :'admin', 5, 'day', 'block') AS q_day \gset
SELECT count(phone) FROM qc_t WHERE id <= 3;
SELECT access_audit.set_quota('actor', 'qc_nobody', 100) AS q_other \gset
SELECT count(phone) FROM qc_t WHERE id <= 2;
SELECT count(phone) FROM qc_t WHERE id = 1;
SELECT used, max_rows FROM access_audit.quota_usage WHERE quota_id = :q_day;
SELECT access_audit.drop_quota(:q_day) IS NOT NULL AS dropped;
SELECT count(phone) FROM qc_t WHERE id <= 3;
SELECT access_audit.drop_quota(:q_other) IS NOT NULL AS dropped;

-- a trusted application names its actors: each has its own counter, and
-- an actor named again goes on with its own
\set VERBOSITY terse
SELECT access_audit.set_quota('actor', 'qc_a', 3, 'day', 'block') AS q_a \gset
SELECT access_audit.set_quota('actor', 'qc_b', 3, 'day', 'block') AS q_b \gset
\c - qc_app
\set VERBOSITY sqlstate
SET access_audit.actor = 'qc_a';
SELECT count(phone) FROM qc_t WHERE id <= 2;
SET access_audit.actor = 'qc_b';
SELECT count(phone) FROM qc_t WHERE id <= 3;
SELECT count(phone) FROM qc_t WHERE id = 1;
SET access_audit.actor = 'qc_a';
SELECT count(phone) FROM qc_t WHERE id = 1;
SELECT count(phone) FROM qc_t WHERE id = 1;
RESET access_audit.actor;
SELECT count(phone) FROM qc_t WHERE id <= 5;
\c - :admin
\set VERBOSITY terse
SELECT actor, used, max_rows FROM access_audit.quota_usage
 WHERE quota_id IN (:q_a, :q_b) ORDER BY actor;
SELECT access_audit.drop_quota(:q_a) IS NOT NULL AS dropped;
SELECT access_audit.drop_quota(:q_b) IS NOT NULL AS dropped;

-- an actor the session only inherits (a role or database default) is not
-- trusted: the record names the login role, and so does a relation-form
-- COPY's check for a quota (it looked for quotas of the inherited name,
-- found none and let COPY qc_t TO run uncounted)
SELECT access_audit.set_quota('actor', 'qc_app', 3, 'day', 'block') AS q_app \gset
ALTER ROLE qc_app SET access_audit.actor = 'qc_free';
\c - qc_app
\set VERBOSITY sqlstate
SHOW access_audit.actor;
SELECT count(phone) FROM qc_t WHERE id <= 2;
COPY qc_t TO STDOUT;
SELECT count(phone) FROM qc_t WHERE id <= 2;
\c - :admin
\set VERBOSITY terse
ALTER ROLE qc_app RESET access_audit.actor;
SELECT actor, used, max_rows FROM access_audit.quota_usage
 WHERE quota_id = :q_app ORDER BY actor;
SELECT access_audit.drop_quota(:q_app) IS NOT NULL AS dropped;

-- what was recorded: the rows each read sent, and how it ended
SELECT access_audit.flush();
SELECT CASE WHEN actor = :'admin' THEN 'admin' ELSE actor END AS actor,
       rows, tagged_rows, outcome
  FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' AND 'public.qc_t' = ANY (relations)
 ORDER BY seq;

SET access_audit.maintenance = on;
DELETE FROM access_audit.alerts WHERE quota_id IN (:q_role, :q_day, :q_a, :q_b, :q_app);
RESET access_audit.maintenance;
DROP TABLE qc_t;
DROP ROLE qc_app;
DROP ROLE qc_member;
DROP ROLE qc_team;
