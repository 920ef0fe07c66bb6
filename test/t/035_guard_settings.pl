# Settings and the guard: a pair of business-hours settings that a reload
# accepts never stops the server at its next start (the roll-up falls back
# to 8 to 18 with a WARNING), and every way of changing an access_audit.*
# setting leaves a record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_settings');
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

# --- business hours: end before start is accepted by a reload ...
$node->safe_psql('postgres', q{
ALTER SYSTEM SET access_audit.business_hours_start = 19;
ALTER SYSTEM SET access_audit.business_hours_end = 18;
});
is($node->safe_psql('postgres', 'SELECT pg_reload_conf()'), 't',
	'a reload takes business hours 19 to 18');

# ... and the next start must not fail on it
$node->stop;
my $started = $node->start(fail_ok => 1);
ok($started, 'the server starts with business hours 19 to 18');
if (!$started)
{
	# leave the node usable for the rest of the file
	$node->append_conf('postgresql.auto.conf',
		"access_audit.business_hours_end = 20\n");
	$node->start;
}
is($node->safe_psql('shop', q{SHOW access_audit.business_hours_start}), '19',
	'the setting is kept as given');
my $log_offset = -s $node->logfile;
$node->safe_psql('shop', q{
SET access_audit.actor = 'night';
SELECT phone FROM customers;
});
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{SELECT rows FROM access_audit.actor_daily WHERE actor = 'night'}),
	'10', 'the writer rolls the read up with the fallback hours');
ok($node->wait_for_log(qr/WARNING: .*business_hours_end \(18\) is not after access_audit.business_hours_start \(19\), using business hours 8 to 18/, $log_offset),
	'the writer warns about the fallback');
my ($ret, $out, $err) = $node->psql('shop', q{
SET access_audit.maintenance = on;
SELECT access_audit.rebuild_daily() > 0;
});
is($out, 't', 'rebuild_daily() runs with the fallback hours');
like($err, qr/WARNING: .*using business hours 8 to 18/, 'rebuild_daily() warns about the fallback');
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET access_audit.business_hours_start;
ALTER SYSTEM RESET access_audit.business_hours_end;
SELECT pg_reload_conf();
});

done_testing();
