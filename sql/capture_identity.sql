-- Identity: access_audit.actor is trusted only from members of
-- access_audit_app; from anyone else it is kept as claimed_actor and the
-- actor is the login role.  Behaviour settings are superuser-only.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT current_user AS me \gset
CREATE TABLE ci_customers (id int PRIMARY KEY, phone text);
INSERT INTO ci_customers VALUES (1, '555-1'), (2, '555-2');
SELECT access_audit.tag('ci_customers', 'phone', 'pii:phone');
CREATE ROLE ci_pool LOGIN IN ROLE access_audit_app;
CREATE ROLE ci_user LOGIN;
GRANT ci_user TO ci_pool;
GRANT SELECT ON ci_customers TO ci_pool, ci_user;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

\c - ci_pool
SELECT phone FROM ci_customers WHERE id = 1;
SET access_audit.actor = 'emp-1042';
SELECT phone FROM ci_customers WHERE id = 1;
-- SET ROLE does not change who is trusted: the login role is
SET ROLE ci_user;
SELECT phone FROM ci_customers WHERE id = 2;
RESET ROLE;
RESET access_audit.actor;
SELECT phone FROM ci_customers WHERE id = 2;
\c - ci_user
SET access_audit.actor = 'emp-9';
SELECT phone FROM ci_customers WHERE id = 1;
-- the switch and the other behaviour settings are not theirs to change
SET access_audit.enabled = off;
SET access_audit.max_query_length = 0;
SELECT phone FROM ci_customers WHERE id = 2;
\c - :me
-- a superuser may switch capture off for its own session
SET access_audit.enabled = off;
SELECT phone FROM ci_customers WHERE id = 1;
RESET access_audit.enabled;

SELECT access_audit.flush();
SELECT query, login_role, effective_role, actor, claimed_actor, columns, rows
  FROM access_audit.log WHERE seq > :start AND command <> 'SET' ORDER BY seq;
-- switching capture off (and on again) is itself recorded, by the superuser
SELECT command, detail, login_role = session_user AS by_me
  FROM access_audit.log WHERE seq > :start AND command = 'SET' ORDER BY seq;

DROP TABLE ci_customers;
DROP ROLE ci_pool;
DROP ROLE ci_user;
