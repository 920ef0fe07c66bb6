-- The guard lets the extension's SECURITY DEFINER functions (check_exports(),
-- ack(), collect_rollup()) write alerts only while they run: after one ends
-- with an error, is rolled back to a savepoint, or has its error caught by
-- the caller, writes to the audit tables are refused again, in the same
-- transaction.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE FUNCTION pg_temp.forge() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
        VALUES ('forged', now(), now(), 99, 'forged');
    RETURN 'written';
EXCEPTION WHEN insufficient_privilege THEN
    RETURN 'refused';
END
$$;

-- a call that ends normally
BEGIN;
SELECT access_audit.check_exports() >= 0 AS ran;
SELECT pg_temp.forge();
ROLLBACK;

-- a call that fails, rolled back to a savepoint
BEGIN;
SAVEPOINT s;
SELECT access_audit.check_exports(-1);
ROLLBACK TO s;
SELECT pg_temp.forge();
ROLLBACK;

-- a failing call whose error the caller catches
DO $$
BEGIN
    BEGIN
        PERFORM access_audit.check_exports(NULL);
    EXCEPTION WHEN null_value_not_allowed THEN
        RAISE NOTICE 'check_exports failed as asked';
    END;
    RAISE NOTICE 'after it: %', pg_temp.forge();
END
$$;

-- calls nested in a query, then a write in the same statement
SELECT count(access_audit.check_exports()) AS calls, pg_temp.forge()
  FROM generate_series(1, 3);

-- nothing was forged
SELECT count(*) AS forged FROM access_audit.alerts WHERE actor = 'forged';
