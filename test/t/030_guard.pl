# The append-only guard across sessions and restarts: a refusal in a
# transaction that then rolls back is still recorded, the writer keeps
# appending (log, roll-up, writer state) under the guard, the guard holds
# after a restart, drop_before() survives a writer restart (the writer
# continues the chain from the checkpoint of an emptied log), no records
# stay queued where no log will take them (DROP EXTENSION in maintenance
# mode, a rolled-back CREATE EXTENSION, the maintenance switch in a
# database without the extension), a database that refuses connections
# still gets its records, and DROP DATABASE of a database with the
# extension works in maintenance mode.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
GRANT access_audit_app TO CURRENT_USER;
});

# a refused DELETE inside a transaction that is rolled back
my ($ret, $out, $err) = $node->psql('shop', q{
BEGIN;
DELETE FROM access_audit.log_data;
ROLLBACK;
});
like($err, qr/DELETE on "access_audit.log_data" is not allowed/, 'DELETE refused');
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log
 WHERE command = 'REFUSED' AND detail::jsonb ->> 'action' = 'DELETE'}),
	'1', 'the refusal is recorded although its transaction rolled back');

# the writer appends under the guard: log, roll-up, writer state
$node->safe_psql('shop', q{
SET access_audit.actor = 'alice';
SELECT phone FROM customers;
});
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', q{SELECT rows FROM access_audit.actor_daily WHERE actor = 'alice'}),
	'10', 'the writer updates the roll-up through the guard');
is($node->safe_psql('shop', 'SELECT count(*) > 0 FROM access_audit.writer_state'),
	't', 'the writer keeps its queue position through the guard');

# the guard holds after a restart
$node->restart;
($ret, $out, $err) = $node->psql('shop', 'TRUNCATE access_audit.log_data');
like($err, qr/TRUNCATE on "access_audit.log_data" is not allowed/, 'TRUNCATE refused after a restart');

# retention of everything, then a restarted writer continues the chain
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', q{
SET access_audit.maintenance = on;
SELECT access_audit.drop_before(clock_timestamp()) > 0;
}), 't', 'drop_before() removes every record');
$node->restart;
$node->safe_psql('shop', 'SELECT phone FROM customers');
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'), 't',
	'verify() passes over records written after the log was emptied');
is($node->safe_psql('shop', q{
SELECT min(seq) - 1 = (SELECT max(seq) FROM access_audit.chain_checkpoints) FROM access_audit.log_data}),
	't', 'the chain continues from the retention checkpoint');

# DROP EXTENSION (maintenance mode) turns auditing off in that database:
# its sessions stop capturing at their next statement and what was still
# queued is discarded.  Records that no log will ever take would otherwise
# hold the queue: 20,000 reads fill its 4MB, and every reader of every
# database would wait.
$node->safe_psql('postgres', q{
CREATE DATABASE other;
});
$node->safe_psql('other', q{
CREATE EXTENSION access_audit;
CREATE TABLE c (id int PRIMARY KEY, phone text);
INSERT INTO c VALUES (1, '555-1');
SECURITY LABEL FOR access_audit ON COLUMN c.phone IS 'pii';
});
my $timed_out = 0;
($ret, $out, $err) = $node->psql('shop', q{
SELECT phone FROM customers WHERE id = 1;
SET access_audit.maintenance = on;
DROP EXTENSION access_audit CASCADE;
DO $$ BEGIN FOR i IN 1..20000 LOOP PERFORM phone FROM customers WHERE id = 1; END LOOP; END $$;
SELECT 'done';
}, timeout => 120, timed_out => \$timed_out);
ok(!$timed_out && $out =~ /done/,
	'reads in the session that dropped the extension do not wait for the queue');
($ret, $out, $err) = $node->psql('other', q{
DO $$ BEGIN FOR i IN 1..3000 LOOP PERFORM phone FROM c; END LOOP; END $$;
SELECT access_audit.flush('60 s');
SELECT count(*) FROM access_audit.log WHERE command = 'SELECT';
}, timeout => 120, timed_out => \$timed_out);
is($timed_out ? 'timed out' : $out, "t\n3000",
	"another database's reads are all logged after the drop");
$node->safe_psql('shop', 'CREATE EXTENSION access_audit');
$node->safe_psql('shop', 'SELECT phone FROM customers WHERE id = 2');
is($node->safe_psql('shop', q{
SELECT access_audit.flush('60 s');
SELECT string_agg(command, ',') FROM access_audit.log WHERE command = 'SELECT'}),
	"t\nSELECT", 'created again, the extension logs new reads, and only those');

# Records for a database whose extension never comes do not stay queued:
# a CREATE EXTENSION rolled back with a tag change made in it, and the
# maintenance switch in a database without the extension.  A creation still
# running is waited for: its tag change is logged once it commits.
$node->safe_psql('postgres', 'CREATE DATABASE rb; CREATE DATABASE noext; CREATE DATABASE slow');
$node->safe_psql('rb', q{
BEGIN;
CREATE EXTENSION access_audit;
CREATE TABLE z (a int);
SECURITY LABEL FOR access_audit ON COLUMN z.a IS 'pii';
ROLLBACK;
});
$node->safe_psql('noext', 'SET access_audit.maintenance = on; SELECT 1');
my $slow = $node->background_psql('slow');
$slow->query_safe(q{
BEGIN;
CREATE EXTENSION access_audit;
CREATE TABLE z (a int);
SECURITY LABEL FOR access_audit ON COLUMN z.a IS 'pii';
});
ok( $node->poll_query_until('other', q{
SELECT coalesce(sum(pending_bytes), 0) = 0 FROM access_audit.stats
 WHERE database IN ('rb', 'noext')}),
	'nothing stays queued for databases without the extension');
sleep 3;	# writers for "slow" find no extension meanwhile
$slow->query_safe('COMMIT');
$slow->quit;
is($node->safe_psql('slow', q{
SELECT access_audit.flush('60 s');
SELECT string_agg(command || ' ' || array_to_string(columns, ','), ';') FROM access_audit.log}),
	"t\nSECURITY LABEL public.z.a",
	'a tag change made while creating the extension is logged once the creation commits');
# a database holding a log is dropped in maintenance mode only (038)
$node->safe_psql('postgres', 'DROP DATABASE rb; DROP DATABASE noext');
$node->safe_psql('postgres', 'SET access_audit.maintenance = on; DROP DATABASE slow');

# ALLOW_CONNECTIONS false keeps users out of a database, not its writer:
# records pending at a crash are written after the restart.  The writer of
# "other" is held back by a lock on its log (its lock_timeout is 0, so it
# waits), not by a long flush_interval: writers leave when idle and a new one
# writes at once, so an interval holds nothing back.
$node->safe_psql('other', 'SELECT count(*) FROM access_audit.log')
  =~ /(\d+)/;
my $before = $1;
my $locker = $node->background_psql('other');
$locker->query_safe(
	'BEGIN; LOCK TABLE access_audit.log IN ACCESS EXCLUSIVE MODE');
$node->safe_psql('other', 'SELECT phone FROM c') for 1 .. 3;
$node->safe_psql('postgres', 'ALTER DATABASE other ALLOW_CONNECTIONS false');
ok( $node->safe_psql('shop', q{
SELECT pending_bytes > 0 FROM access_audit.stats WHERE database = 'other'}) eq 't',
	'reads are pending when the server crashes');
$node->stop('immediate');
eval { $locker->quit; };	# its server is gone
$node->start;
ok( $node->poll_query_until('shop', q{
SELECT pending_bytes = 0 FROM access_audit.stats WHERE database = 'other'}),
	'the writer of a database that refuses connections writes its records');
$node->safe_psql('postgres', 'ALTER DATABASE other ALLOW_CONNECTIONS true');
is($node->safe_psql('other', 'SELECT count(*) FROM access_audit.log') - $before,
	3, 'all three reads are in its log');

# DROP DATABASE of a database with a log works in maintenance mode (038)
$node->safe_psql('postgres', 'SET access_audit.maintenance = on; DROP DATABASE shop');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_database WHERE datname = 'shop'}),
	'0', 'DROP DATABASE of a database with access_audit works in maintenance mode');

$node->stop;
done_testing();
