-- A per-statement quota counts every tagged row one client statement
-- reads, also through the executors it runs inside: a function called for
-- each row, a DO block's loop, a function that catches the refusal.
-- (Before, each nested query was a "statement" of its own, and a function
-- reading one row per call read any number of rows in one statement.)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
DROP ROLE IF EXISTS qn_reader;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE qn_reader LOGIN;
CREATE TABLE qn_cust (id int, phone text);
INSERT INTO qn_cust SELECT g, '555-' || g FROM generate_series(1, 20) g;
SELECT access_audit.tag('qn_cust', 'phone', 'pii:phone');
GRANT SELECT ON qn_cust TO qn_reader;
CREATE FUNCTION qn_sql(i int) RETURNS text LANGUAGE sql STABLE
    AS $$ SELECT phone FROM qn_cust WHERE id = i $$;
CREATE FUNCTION qn_plpgsql(i int) RETURNS text LANGUAGE plpgsql STABLE
    AS $$ DECLARE r text; BEGIN SELECT phone INTO r FROM qn_cust WHERE id = i; RETURN r; END $$;
CREATE FUNCTION qn_catch(i int) RETURNS text LANGUAGE plpgsql
    AS $$ DECLARE r text;
          BEGIN SELECT phone INTO r FROM qn_cust WHERE id = i; RETURN r;
          EXCEPTION WHEN insufficient_privilege THEN RETURN 'stopped'; END $$;
SELECT access_audit.set_quota('actor', 'qn_reader', 5, 'statement', 'block') AS q \gset
SELECT access_audit.set_quota('actor', 'qn_reader', 8, 'statement', 'warn') AS qw \gset
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start, current_user AS admin FROM access_audit.log \gset

\c - qn_reader
-- (messages name quota ids, which depend on the tests run before)
\set VERBOSITY sqlstate
-- each statement alone stays within 5
SELECT count(phone) FROM qn_cust WHERE id <= 5;
SELECT count(qn_sql(i)) FROM generate_series(1, 5) i;
-- one row per call, 20 calls: stopped at the sixth row
SELECT count(qn_sql(i)) FROM generate_series(1, 20) i;
SELECT count(qn_plpgsql(i)) FROM generate_series(1, 20) i;
-- the query's own reads and its function's add up (3 + 3)
SELECT count(phone || qn_sql(id)) FROM qn_cust WHERE id <= 3;
DO $$
DECLARE r text;
BEGIN
    FOR i IN 1..20 LOOP
        SELECT phone INTO r FROM qn_cust WHERE id = i;
    END LOOP;
END
$$;
-- catching the refusal does not start a new count
SELECT string_agg(qn_catch(i), ',' ORDER BY i) FROM generate_series(1, 8) i;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.drop_quota(:q);
-- the warn quota (8): one warning for the statement, not one per call
\c - qn_reader
SET client_min_messages = warning;
\set VERBOSITY sqlstate
SELECT count(qn_sql(i)) FROM generate_series(1, 12) i;
\c - :admin
\set VERBOSITY terse
SELECT access_audit.drop_quota(:qw);
SELECT access_audit.flush();
-- each hit counts the rows of the whole client statement
SELECT command, detail::jsonb ->> 'rows_read' AS rows_read, count(*) FROM access_audit.log
 WHERE seq > :start AND command LIKE 'QUOTA %' AND command NOT IN ('QUOTA INSERT', 'QUOTA DELETE')
 GROUP BY 1, 2 ORDER BY 1, 2;

SET access_audit.maintenance = on;
DELETE FROM access_audit.alerts WHERE actor = 'qn_reader';
RESET access_audit.maintenance;
DROP FUNCTION qn_sql(int), qn_plpgsql(int), qn_catch(int);
DROP TABLE qn_cust;
DROP ROLE qn_reader;
