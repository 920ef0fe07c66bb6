-- The extension's roles carry trust (issue 16 item 6): a CREATEROLE role
-- cannot grant one to itself (or a role that belongs to one), make one
-- loginable, rename or drop it; each attempt is refused and recorded.
-- Superusers may, members of access_audit_admin may for the other roles;
-- their grants and revokes are recorded.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

CREATE ROLE gr_mgr CREATEROLE;
CREATE ROLE gr_admin CREATEROLE IN ROLE access_audit_admin;
CREATE ROLE gr_appgroup IN ROLE access_audit_app;
CREATE ROLE gr_user;
CREATE ROLE gr_holder;
-- PostgreSQL 16 and later let a CREATEROLE role grant only roles it holds
-- WITH ADMIN OPTION (15: CREATEROLE is enough); the admin gets it for app
GRANT access_audit_app TO gr_admin WITH ADMIN OPTION;
-- ADMIN OPTION on a trust (which every version accepts) is not enough
GRANT access_audit_reader TO gr_holder WITH ADMIN OPTION;

SET ROLE gr_mgr;
GRANT access_audit_app TO gr_mgr;
GRANT access_audit_admin TO gr_user;
GRANT gr_appgroup TO gr_mgr;
CREATE ROLE gr_sneaky IN ROLE access_audit_ingest;
ALTER GROUP access_audit_reader ADD USER gr_mgr;
ALTER ROLE access_audit_app LOGIN PASSWORD 'secret';
ALTER ROLE gr_appgroup LOGIN;
ALTER ROLE access_audit_app RENAME TO gr_app2;
DROP ROLE access_audit_reader;
REVOKE access_audit_admin FROM gr_admin;
-- nor change what a trust reaches by adding its role to another
CREATE ROLE gr_extra ROLE access_audit_app;
GRANT gr_user TO access_audit_admin;
-- roles that carry no trust are the CREATEROLE role's business (one it
-- created, which 16 and later also require)
CREATE ROLE gr_mine;
GRANT gr_mine TO gr_user;
RESET ROLE;
SET ROLE gr_holder;
GRANT access_audit_reader TO gr_user;
REVOKE access_audit_reader FROM gr_holder;
RESET ROLE;
SELECT pg_has_role('gr_mgr', 'access_audit_app', 'MEMBER') AS mgr_is_app,
       pg_has_role('gr_user', 'access_audit_admin', 'MEMBER') AS user_is_admin,
       pg_has_role('gr_admin', 'access_audit_admin', 'MEMBER') AS admin_still_admin,
       (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'access_audit_app') AS app_can_login,
       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gr_sneaky') AS sneaky_exists,
       pg_has_role('gr_user', 'access_audit_reader', 'MEMBER') AS user_is_reader,
       pg_has_role('gr_holder', 'access_audit_reader', 'MEMBER') AS holder_is_reader,
       pg_has_role('gr_user', 'gr_mine', 'MEMBER') AS user_is_mine;

-- an admin (with what PostgreSQL itself requires) may hand out app,
-- not admin; a superuser anything
SET ROLE gr_admin;
GRANT access_audit_app TO gr_user;
GRANT access_audit_admin TO gr_user;
REVOKE access_audit_app FROM gr_user;
RESET ROLE;
GRANT access_audit_reader TO gr_user;
ALTER GROUP access_audit_reader DROP USER gr_user;

SELECT access_audit.flush();
SELECT command, CASE WHEN effective_role = session_user THEN 'me' ELSE effective_role END AS role,
       outcome, detail::jsonb - 'by' AS detail
  FROM access_audit.log
 WHERE seq > :start AND command IN ('REFUSED', 'GRANT ROLE', 'REVOKE ROLE', 'ALTER ROLE', 'DROP ROLE')
 ORDER BY seq;

DROP ROLE gr_mine, gr_mgr, gr_admin, gr_appgroup, gr_user, gr_holder;
