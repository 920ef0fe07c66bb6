# Writers come and go on their own (issue 16, items 12 and 13): an idle
# writer leaves its database, so CREATE DATABASE ... TEMPLATE and ALTER
# DATABASE ... RENAME work, and comes back when records arrive; a writer
# that fails (here: cancelled while it waits for a lock) gets a successor
# for its pending records without any new record or flush() asking.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('writer_lifecycle');
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
});

# Item 12: a read, and right away commands that need shop to themselves.
$node->safe_psql('shop', q{
SELECT phone FROM customers WHERE id = 1;
SELECT access_audit.flush('20 s');
});
my ($ret, $out, $err) = $node->psql('postgres', 'CREATE DATABASE shop_copy TEMPLATE shop');
is($ret, 0, 'CREATE DATABASE ... TEMPLATE of a database with a writer works')
  or diag($err);
($ret, $out, $err) = $node->psql('postgres', 'ALTER DATABASE shop RENAME TO store');
is($ret, 0, 'ALTER DATABASE ... RENAME of a database with a writer works')
  or diag($err);

# the writer comes back for new records, in both databases
for my $db ('store', 'shop_copy')
{
	$node->safe_psql($db, 'SELECT phone FROM customers WHERE id = 2');
	is( $node->safe_psql($db, q{
SELECT access_audit.flush('20 s');
SELECT count(*) FROM access_audit.log WHERE command = 'SELECT'}),
		"t\n" . ($db eq 'store' ? 2 : 2),
		"$db: the read after the copy is recorded");
	is($node->safe_psql($db, 'SELECT ok FROM access_audit.verify()'), 't',
		"$db: its chain is whole");
}

# Item 13: the writer fails while records are pending.  Its log is locked,
# so it waits; a cancel makes it fail.  Nothing else is queued after that.
my $lock = $node->background_psql('store');
$lock->query_safe(q{
BEGIN;
LOCK TABLE access_audit.log_data IN ACCESS EXCLUSIVE MODE;
});
$node->safe_psql('store', 'SELECT phone FROM customers WHERE id = 3');
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 1 FROM pg_stat_activity
 WHERE backend_type = 'access_audit writer' AND datname = 'store' AND wait_event_type = 'Lock'}),
	'the writer waits for the lock');
$node->safe_psql('postgres', q{
SELECT pg_cancel_backend(pid) FROM pg_stat_activity
 WHERE backend_type = 'access_audit writer' AND datname = 'store'});
ok( $node->poll_query_until('postgres', q{
SELECT count(*) = 0 FROM pg_stat_activity
 WHERE backend_type = 'access_audit writer' AND datname = 'store' AND wait_event_type = 'Lock'}),
	'the cancelled writer has stopped');
$lock->query_safe('COMMIT');
$lock->quit;

# no flush(), no new read: a successor writes the pending record
ok( $node->poll_query_until('store', q{
SELECT count(*) = 3 FROM access_audit.log WHERE command = 'SELECT'}),
	'the pending read is written by a new writer on its own');
ok($node->log_contains(qr/canceling statement due to user request/),
	'the writer did fail');

$node->stop;
done_testing();
