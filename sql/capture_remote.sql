-- Remote reads: a statement reading a foreign table, or opening a dblink
-- connection or query, is recorded as a REMOTE READ naming the server and
-- the remote role (the mapping's user option; never a password), so the
-- remote side's records (made as that shared role) can be tied to the
-- local statement and its user.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
CREATE EXTENSION IF NOT EXISTS postgres_fdw;
CREATE EXTENSION IF NOT EXISTS dblink;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE cx_shared LOGIN;
CREATE TABLE cx_cust (id int, phone text);
INSERT INTO cx_cust VALUES (1, '555-1'), (2, '555-2');
GRANT SELECT ON cx_cust TO cx_shared;
SELECT access_audit.tag('cx_cust', 'phone', 'pii:phone');
DO $$
BEGIN
  EXECUTE format('CREATE SERVER cx_loop FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host %L, port %L, dbname %L)',
                 split_part(current_setting('unix_socket_directories'), ',', 1),
                 current_setting('port'), current_database());
END $$;
CREATE USER MAPPING FOR CURRENT_USER SERVER cx_loop OPTIONS (user 'cx_shared');
CREATE FOREIGN TABLE cx_remote_cust (id int, phone text)
  SERVER cx_loop OPTIONS (table_name 'cx_cust');
SELECT format('host=%s port=%s dbname=%s user=cx_shared password=secret',
              split_part(current_setting('unix_socket_directories'), ',', 1),
              current_setting('port'), current_database()) AS conn \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SELECT id FROM cx_remote_cust ORDER BY id;
SELECT * FROM dblink(:'conn', 'SELECT phone FROM cx_cust ORDER BY id') AS t(phone text);
SELECT dblink_connect('cx_conn', :'conn');
SELECT * FROM dblink('cx_conn', 'SELECT count(*) FROM cx_cust') AS t(n bigint);
SELECT dblink_disconnect('cx_conn');

SELECT access_audit.flush();
SELECT command, detail::jsonb - 'target' AS detail,
       (detail::jsonb -> 'target') ?& ARRAY['host', 'port', 'dbname', 'user'] AS target,
       detail LIKE '%secret%' AS leaks_password
  FROM access_audit.log WHERE seq > :start AND command = 'REMOTE READ' ORDER BY seq;
-- the remote side recorded its reads as the shared role
SELECT login_role, columns FROM access_audit.log
 WHERE seq > :start AND command = 'SELECT' ORDER BY seq;
DROP FOREIGN TABLE cx_remote_cust;
DROP USER MAPPING FOR CURRENT_USER SERVER cx_loop;
DROP SERVER cx_loop;
DROP TABLE cx_cust;
DROP ROLE cx_shared;
