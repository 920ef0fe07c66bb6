-- The daily roll-up counts a statement's volume once per actor: a statement
-- that reads two tagged tables puts a share of its totals on each, and
-- daily_exports (the sum over relations) equals what the log recorded.
-- quiet whether or not an earlier file created the extension
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS access_audit;
RESET client_min_messages;
\set VERBOSITY terse
CREATE TABLE ro_customers (id int PRIMARY KEY, phone text);
CREATE TABLE ro_orders (id int PRIMARY KEY, customer int, card text);
INSERT INTO ro_customers SELECT g, '555-' || g FROM generate_series(1, 6000) g;
INSERT INTO ro_orders SELECT g, g, '4111-' || g FROM generate_series(1, 6000) g;
SELECT access_audit.tag('ro_customers', 'phone', 'pii:phone');
SELECT access_audit.tag('ro_orders', 'card', 'pci:card');
SELECT access_audit.flush();
SET access_audit.actor = 'ro_alice';

-- a join of the two tagged tables, and one table alone
SELECT count(*) FROM (SELECT c.phone, o.card FROM ro_customers c JOIN ro_orders o ON o.customer = c.id) s;
SELECT count(*) FROM (SELECT c.phone FROM ro_customers c) s;
COPY (SELECT c.phone, o.card FROM ro_customers c JOIN ro_orders o ON o.customer = c.id WHERE c.id <= 1001) TO '/dev/null';
RESET access_audit.actor;
SELECT access_audit.flush();

-- what the log recorded, statement by statement
SELECT command, relations, rows, tagged_rows, volume
  FROM access_audit.reads WHERE actor = 'ro_alice' ORDER BY seq;
-- the day's totals count each statement once
SELECT d.rows, d.tagged_rows, d.volume, d.statements, d.relations,
	   d.volume = (SELECT sum(volume) FROM access_audit.reads WHERE actor = 'ro_alice') AS volume_once,
	   d.statements = (SELECT count(*) FROM access_audit.reads WHERE actor = 'ro_alice') AS statements_once
  FROM access_audit.daily_exports d WHERE d.actor = 'ro_alice';
-- per relation: shares that add up to the totals
SELECT relation, rows, tagged_rows, statements
  FROM access_audit.actor_daily WHERE actor = 'ro_alice' ORDER BY relation;
-- the ranking's volume is the same
SELECT volume FROM access_audit.rank_exporters() WHERE actor = 'ro_alice';

-- rebuild_daily() (maintenance) rebuilds the roll-up from the log the same way
SET access_audit.maintenance = on;
SELECT access_audit.rebuild_daily() > 0 AS rebuilt;
RESET access_audit.maintenance;
SELECT d.rows, d.tagged_rows, d.volume, d.statements, d.relations
  FROM access_audit.daily_exports d WHERE d.actor = 'ro_alice';
SELECT relation, rows, tagged_rows, statements
  FROM access_audit.actor_daily WHERE actor = 'ro_alice' ORDER BY relation;

DROP TABLE ro_customers, ro_orders;
