-- The integer settings carry their bounds in the GUC definition, so that
-- pg_settings shows them and SET refuses values outside them.  (A value
-- outside them in postgresql.conf stops the server from starting:
-- test/t/010_queue_durability.pl.)
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
SELECT name, setting, unit, min_val, max_val, boot_val, context
  FROM pg_settings
 WHERE name LIKE 'access_audit.%' AND vartype = 'integer'
 ORDER BY name;
-- PostgreSQL's own message, whose wording may differ between major versions
\set VERBOSITY sqlstate
SET access_audit.max_query_length = -1;
SET access_audit.max_query_length = 1048577;
SET access_audit.max_query_length = '2MB';
\set VERBOSITY default
SHOW access_audit.max_query_length;
