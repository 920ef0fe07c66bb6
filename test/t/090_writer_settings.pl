# The writer cannot be taken over or stalled through the settings of its
# database (issue 16, items 1 and 4): a non-superuser database owner who
# puts a schema of her own first in the database's search_path, with a
# now() and an = operator that would make her superuser, gains nothing,
# and a database set read-only with a tiny statement_timeout still gets its
# records.  Records removed from the log's end while no writer runs are
# reported by verify() after the next writer starts, instead of a chain
# that simply continues from what is left.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('writer_settings');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE mallory LOGIN;
CREATE DATABASE shop OWNER mallory;
CREATE DATABASE ro OWNER mallory;
});
for my $db ('shop', 'ro')
{
	$node->safe_psql($db, q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
GRANT SELECT ON customers TO mallory;
});
}

# The owner's trap: a now() and an = for bigint that make her superuser
# when called by a superuser, first in the database's search_path.
$node->safe_psql('shop', q{
CREATE SCHEMA evil;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE mallory SUPERUSER';
	END IF;
	RETURN pg_catalog.now();
END $$;
CREATE FUNCTION evil.eq(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE mallory SUPERUSER';
	END IF;
	RETURN $1 OPERATOR(pg_catalog.=) $2;
END $$;
CREATE OPERATOR evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = evil.eq);
CREATE FUNCTION evil.unnest(anyarray) RETURNS SETOF anyelement LANGUAGE plpgsql AS $$
BEGIN
	IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
		EXECUTE 'ALTER ROLE mallory SUPERUSER';
	END IF;
	RETURN QUERY SELECT * FROM pg_catalog.unnest($1);
END $$;
ALTER DATABASE shop SET search_path = evil, pg_catalog;
}, extra_params => [ '-U', 'mallory' ]);

# Settings that make every transaction of the writer fail, set by the owner.
$node->safe_psql('ro', q{
ALTER DATABASE ro SET default_transaction_read_only = on;
ALTER DATABASE ro SET statement_timeout = 1;
ALTER DATABASE ro SET lock_timeout = 1;
ALTER DATABASE ro SET idle_in_transaction_session_timeout = 1;
ALTER DATABASE ro SET default_transaction_isolation = serializable;
}, extra_params => [ '-U', 'mallory' ]);

$node->restart;

# What the test's own sessions in "ro" need, given at connection start: a
# SET as the first statement could itself be cancelled by the database's
# 1 ms statement_timeout on a loaded machine.  Options of the connection
# (PGC_S_CLIENT) take precedence over the database's settings; the writer
# is a background worker and sees none of them.
$ENV{PGOPTIONS} = join ' ', '-c default_transaction_read_only=off',
  '-c statement_timeout=0', '-c lock_timeout=0',
  '-c idle_in_transaction_session_timeout=0',
  '-c default_transaction_isolation=read\\ committed';

for my $db ('shop', 'ro')
{
	$node->safe_psql($db, q{
SET access_audit.actor = 'm';
SELECT phone FROM public.customers}, extra_params => [ '-U', 'mallory' ]);
	is( $node->safe_psql(
			$db, q{
SELECT access_audit.flush('30 s');
SELECT count(*) FROM access_audit.log WHERE command = 'SELECT' AND rows = 10}),
		"t\n1", "$db: the tagged read is recorded");
	is( $node->safe_psql($db, q{
SELECT sum(rows) FROM access_audit.actor_daily}),
		'10', "$db: the roll-up has it too");
}
is($node->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'}),
	'f', 'the database owner did not become superuser through the writer');
is($node->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'), 't',
	'the chain is whole');

# Records removed from the log's end are not papered over by the next
# writer: it continues from the head it wrote last, kept outside the
# database, and verify() names what is missing.
$node->safe_psql('shop', 'SELECT phone FROM public.customers WHERE id = ' . $_) for 1 .. 3;
$node->safe_psql('shop', q{SELECT access_audit.flush('30 s')});
my $last = $node->safe_psql('shop', 'SELECT max(seq) FROM access_audit.log_data');
$node->safe_psql('postgres', q{
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
 WHERE backend_type = 'access_audit writer' AND datname = 'shop'});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE backend_type = 'access_audit writer' AND datname = 'shop'}),
	'the writer of shop has stopped');

# The lock keeps the next writer from reading the log before the deletion
# commits, so it reloads the shortened log.  The deletion commits only once
# that writer (started for the maintenance switch's record) waits for the
# lock: it must then read the log as it is after the commit, not as it was
# when its transaction began (it read the old end, and no warning came).
is( $node->safe_psql('shop', qq{
BEGIN;
LOCK TABLE access_audit.log_data IN ACCESS EXCLUSIVE MODE;
SET LOCAL access_audit.maintenance = on;
DELETE FROM access_audit.log_data WHERE seq > $last - 2;
DO \$\$
BEGIN
	FOR i IN 1 .. 1200 LOOP
		EXIT WHEN EXISTS (SELECT FROM pg_locks
		                   WHERE relation = 'access_audit.log_data'::regclass AND NOT granted);
		PERFORM pg_sleep(0.05);
	END LOOP;
	IF NOT EXISTS (SELECT FROM pg_locks
	                WHERE relation = 'access_audit.log_data'::regclass AND NOT granted) THEN
		RAISE EXCEPTION 'no writer waits for the log';
	END IF;
END
\$\$;
COMMIT;
SELECT 'committed';
}), 'committed', 'the deletion commits while the next writer waits for the log');
$node->safe_psql('shop', q{SELECT access_audit.flush('30 s')});
my $verify = $node->safe_psql('shop',
	q{SELECT ok, first_bad_seq, detail FROM access_audit.verify()});
is($verify, 'f|' . ($last - 1) . '|records ' . ($last - 1) . " to $last are missing",
	'verify() reports the records removed from the end of the log');
ok( $node->log_contains(
		qr/access_audit log of database "shop" does not end with the last record its writer wrote/),
	'the writer warns that the log lost its end');

$node->stop;
done_testing();
