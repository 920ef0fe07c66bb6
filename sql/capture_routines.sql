-- A nested record names the routine it ran in and the routine's owner: a
-- trigger a table owner planted on a table colleagues write, reading phones
-- with the colleague's rights, shows its author.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE ROLE cr_mallory;
CREATE ROLE cr_colleague;
GRANT CREATE ON SCHEMA public TO cr_mallory;
CREATE TABLE cr_customers (id int, phone text);
INSERT INTO cr_customers VALUES (1, '555-1'), (2, '555-2');
SELECT access_audit.tag('cr_customers', 'phone', 'pii:phone');
GRANT SELECT ON cr_customers TO cr_colleague;
SET ROLE cr_mallory;
CREATE TABLE cr_orders (id int);
CREATE TABLE cr_loot (v text);
GRANT INSERT ON cr_orders TO cr_colleague;
CREATE FUNCTION cr_stash(v text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  AS $$ BEGIN INSERT INTO cr_loot VALUES (v); END $$;
CREATE FUNCTION cr_trojan() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN PERFORM cr_stash(string_agg(phone, ',')) FROM cr_customers; RETURN NEW; END $$;
CREATE TRIGGER cr_t AFTER INSERT ON cr_orders FOR EACH ROW EXECUTE FUNCTION cr_trojan();
RESET ROLE;
SELECT access_audit.flush();
SELECT coalesce(max(seq), 0) AS start FROM access_audit.log \gset

SET ROLE cr_colleague;
INSERT INTO cr_orders VALUES (1);
RESET ROLE;
-- a top-level read names no routine
SELECT phone FROM cr_customers WHERE id = 1;
-- a procedure that commits between its reads names itself in both
CREATE PROCEDURE cr_proc() LANGUAGE plpgsql AS $$
DECLARE
  p text;
BEGIN
  SELECT phone INTO p FROM cr_customers WHERE id = 1;
  COMMIT;
  SELECT phone INTO p FROM cr_customers WHERE id = 2;
END $$;
CALL cr_proc();

SELECT access_audit.flush();
SELECT command, nesting_level AS lvl,
       CASE WHEN effective_role = current_user THEN 'me' ELSE effective_role END AS role,
       columns, tagged_rows AS trows,
       detail::jsonb ->> 'routine' AS routine,
       CASE WHEN detail::jsonb ->> 'routine_owner' = current_user THEN 'me'
            ELSE detail::jsonb ->> 'routine_owner' END AS author
  FROM access_audit.log WHERE seq > :start ORDER BY seq;
SELECT count(*) AS stolen FROM cr_loot;
DROP TABLE cr_customers, cr_orders, cr_loot;
DROP PROCEDURE cr_proc();
DROP FUNCTION cr_trojan();
DROP FUNCTION cr_stash(text);
REVOKE CREATE ON SCHEMA public FROM cr_mallory;
DROP ROLE cr_mallory;
DROP ROLE cr_colleague;
