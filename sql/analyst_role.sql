-- The analyst role: reads, raises and acknowledges alerts, renders the
-- report, but cannot change tags or peer groups.  Permission errors on
-- access_audit's objects name the role to ask for.  status() sums up the
-- set-up.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
SELECT access_audit.flush();

CREATE ROLE ar_investigator IN ROLE access_audit_analyst;
CREATE ROLE ar_nobody;
CREATE TABLE ar_customers (id int, phone text, email text);
GRANT SELECT ON ar_customers TO ar_investigator;
SECURITY LABEL FOR access_audit ON COLUMN ar_customers.phone IS 'pii';
-- an alert to acknowledge
SET access_audit.maintenance = on;
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
VALUES ('ar_someone', now() - interval '1 day', now(), 5, 'exported a lot');
RESET access_audit.maintenance;
SELECT alert_id AS alert FROM access_audit.alerts WHERE actor = 'ar_someone' \gset

SET ROLE ar_investigator;
-- reads
SELECT count(*) >= 0 AS reads_the_log FROM access_audit.reads;
SELECT count(*) >= 1 AS sees_open_alerts FROM access_audit.alerts_open;
-- raises and acknowledges alerts, renders the report
SELECT access_audit.check_exports() >= 0 AS raised;
SELECT access_audit.ack(:alert, 'looked into it') > 0 AS acked;
SELECT length(access_audit.report()) > 1000 AS report;
-- cannot change tags or peer groups
\set VERBOSITY default
SECURITY LABEL FOR access_audit ON COLUMN ar_customers.phone IS NULL;
SELECT access_audit.untag('ar_customers', 'phone');
INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('ar_someone', 'vip');
RESET ROLE;

-- someone with no access_audit role is told whom to ask
SET ROLE ar_nobody;
SELECT * FROM access_audit.reads;
RESET ROLE;
GRANT USAGE ON SCHEMA access_audit TO ar_nobody;
SET ROLE ar_nobody;
SELECT access_audit.check_exports();
SELECT access_audit.ack(1);
SELECT access_audit.report();
SELECT * FROM access_audit.alerts;
SELECT * FROM access_audit.log;
RESET ROLE;
REVOKE USAGE ON SCHEMA access_audit FROM ar_nobody;
\set VERBOSITY terse

-- the tag is still there, the acknowledgement names the analyst
SELECT tag FROM access_audit.tagged_columns WHERE "table" = 'ar_customers';
SELECT acked_by = session_user AS by_me, note FROM access_audit.alert_acks WHERE alert_id = :alert;

-- status: one row per check, from a reader's seat
GRANT access_audit_reader TO ar_nobody;
SET ROLE ar_nobody;
SELECT check_name, status IN ('ok', 'info', 'warning', 'error') AS known_status, detail <> '' AS says
  FROM access_audit.status()
 WHERE database = current_database();
SELECT check_name, status, detail ~ '^verified up to record [0-9]+ of .* \([0-9,]+ records? checked\)$' AS detail
  FROM access_audit.status(verify => true) WHERE check_name = 'chain';
SELECT status, detail ~ '^0 records torn by a crash since [0-9]{4}-' AS detail FROM access_audit.status() WHERE check_name = 'gaps' AND database = current_database();
SELECT status, detail ~ '^[0-9]+ records in the log in all .*, 0 of them GAP markers' AS durable
  FROM access_audit.status(verify => true) WHERE check_name = 'log';
-- the same as a view
SELECT count(*) > 0 AS rows FROM access_audit.status WHERE check_name = 'chain' AND status = 'info';
-- readers see since when the counters count and the tags in databases
-- without the extension; only superusers reset the counters
SELECT count(*) = 1 AS one_since, bool_and(s.since <= now()) AS in_the_past
  FROM access_audit._stats_since() s WHERE s.dboid = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT count(*) >= 0 AS readable FROM access_audit.tags_elsewhere;
\set VERBOSITY default
SELECT access_audit.reset_stats();
\set VERBOSITY terse
RESET ROLE;

DROP TABLE ar_customers;
DROP ROLE ar_investigator;
DROP ROLE ar_nobody;
