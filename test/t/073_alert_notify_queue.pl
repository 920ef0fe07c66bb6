# A full NOTIFY queue never fails the writer's batch (extension/notify.c).
#
# Any role that can log in can keep PostgreSQL's notification queue from
# emptying: LISTEN, then stay idle in an open transaction; NOTIFY from
# another session then fills it.  A full queue fails the commit of every
# transaction with a pending NOTIFY, which was the writer's batch whenever
# a quota hit raised a new alert: the hit was stored cut down and its
# alert lost.  Now new alerts are announced only while the queue is less
# than access_audit.alert_notify_limit full; above it they are stored with
# "notified": false, a WARNING goes to the server log and status() counts
# them.
#
# PostgreSQL 15 and 16 have a fixed 8 GB queue: filling it is minutes of
# disk writes, so there the test fills it for real to a small limit (0.001,
# about 8 MB) and checks the decision on the real queue usage.  From 17 on
# max_notify_queue_pages makes the queue 512 kB, and a second server is
# filled to the brim with the default limit: PostgreSQL itself then refuses
# every NOTIFY ("too many notifications in the NOTIFY queue").
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# tables, roles (plain users with a 0-row warn quota: every read is a hit)
sub setup
{
	my ($node, @roles) = @_;
	$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SELECT access_audit.tag('customers', 'phone', 'pii:phone');
CREATE ROLE filler LOGIN;
});
	foreach my $r (@roles)
	{
		$node->safe_psql('postgres', qq{
CREATE ROLE $r LOGIN;
GRANT SELECT ON customers TO $r;
SELECT access_audit.set_quota('actor', '$r', 0, 'day', 'warn');
});
	}
	$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
}

# a plain user that LISTENs and sits in an open transaction: the queue
# cannot empty past it
sub block_queue
{
	my ($node) = @_;
	my $bl = $node->background_psql('postgres', on_error_stop => 0,
		extra_params => [ '-U', 'filler' ]);
	$bl->query_safe('LISTEN anything');
	$bl->query_safe('BEGIN');
	$bl->query_safe('SELECT 1');
	return $bl;
}

# one read of the tagged column by $role, then wait until it is written
sub hit
{
	my ($node, $role) = @_;
	$node->safe_psql('postgres', q{SELECT count(phone) FROM customers WHERE id = 1},
		extra_params => [ '-U', $role ]);
	is($node->safe_psql('postgres', q{SELECT access_audit.flush('120 s')}),
		't', "the read of $role is written");
}

# the alert of $role: "notified" of its detail (empty when not there)
sub alert_notified
{
	my ($node, $role) = @_;
	return $node->safe_psql('postgres', qq{
SELECT coalesce(detail ->> 'notified', 'absent') FROM access_audit.alerts
 WHERE actor = '$role' AND kind = 'quota_warn'});
}

# the hit record of $role as stored: cut down or not
sub hit_record
{
	my ($node, $role) = @_;
	return $node->safe_psql('postgres', qq{
SELECT count(*) || ' ' || bool_or(detail::text LIKE '%degraded%')
  FROM access_audit.log WHERE actor = '$role' AND command = 'QUOTA WARN'});
}

my $node = PostgreSQL::Test::Cluster->new('alert_notify');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
access_audit.alert_notify_limit = 0.001
max_worker_processes = 16
});
$node->start;
setup($node, 'r_full', 'r_free');

# a session that hears the alerts (reads its notifications when idle)
my $watch = $node->background_psql('postgres', on_error_stop => 0);
$watch->query_safe('LISTEN access_audit_alert');

my $blocker = block_queue($node);
# fill past the limit, 2 MB a transaction, as the plain user
my $usage = 0;
for my $i (1 .. 20)
{
	$node->safe_psql('postgres', q{
SELECT count(pg_notify('fill', repeat('x', 7900) || g)) FROM generate_series(1, 256) g},
		extra_params => [ '-U', 'filler' ]);
	$usage = $node->safe_psql('postgres', 'SELECT pg_notification_queue_usage()');
	last if $usage > 0.0015;
}
cmp_ok($usage, '>', 0.0015, 'the blocked listener keeps the queue over the limit');

my $log_offset = -s $node->logfile;
hit($node, 'r_full');
is(alert_notified($node, 'r_full'), 'false',
	'over the limit: the alert is stored, marked as not notified');
is(hit_record($node, 'r_full'), '1 false', 'the hit record is stored as it is');
my $heard = $watch->query_safe('SELECT 1');
unlike($heard, qr/r_full/, 'no NOTIFY for it');
like(slurp_file($node->logfile, $log_offset),
	qr/does not announce new alerts with NOTIFY: the notification queue is [0-9.]+% full/,
	'the server log says why');
like($node->safe_psql('postgres', q{
SELECT detail FROM access_audit.status() WHERE check_name = 'alerts'}),
	qr/1 of them was not announced with NOTIFY/, 'status() counts it');

# the listener ends its transaction: it reads its backlog, the queue empties
$blocker->query_safe('COMMIT');
$blocker->quit;
$node->poll_query_until('postgres', 'SELECT pg_notification_queue_usage() = 0')
  or die 'the queue did not empty';
hit($node, 'r_free');
is(alert_notified($node, 'r_free'), 'absent', 'under the limit: no mark');
$heard = $watch->query_safe('SELECT 1');
like($heard, qr/Asynchronous notification "access_audit_alert" with payload ".*r_free/,
	'and the alert is announced');
$watch->quit;
is($node->safe_psql('postgres', 'SELECT ok FROM access_audit.verify()'), 't',
	'the chain verifies');
$node->stop;

SKIP:
{
	skip 'max_notify_queue_pages exists from PostgreSQL 17 on', 5
	  if $node->pg_version < 17;

	# the queue full for real, at the default limit
	my $small = PostgreSQL::Test::Cluster->new('alert_notify_full');
	$small->init;
	$small->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
max_notify_queue_pages = 64
});
	$small->start;
	setup($small, 'r_brim');
	my $bl = block_queue($small);
	my ($full, $err) = (0, '');
	for my $i (1 .. 200)
	{
		my ($ret, $out);
		($ret, $out, $err) = $small->psql('postgres',
			qq{SELECT pg_notify('fill', repeat('x', 7900) || '$i')},
			extra_params => [ '-U', 'filler' ]);
		if ($ret != 0)
		{
			$full = 1;
			last;
		}
	}
	ok($full && $err =~ /too many notifications in the NOTIFY queue/,
		'the queue is full: PostgreSQL refuses NOTIFY');
	$log_offset = -s $small->logfile;
	hit($small, 'r_brim');
	is(alert_notified($small, 'r_brim'), 'false',
		'with a full queue the alert is stored, not notified');
	is(hit_record($small, 'r_brim'), '1 false', 'and its hit record as it is');
	unlike(slurp_file($small->logfile, $log_offset), qr/cut down|could not raise/,
		'no record cut down, no alert lost');
	$bl->query_safe('ROLLBACK');
	$bl->quit;
	$small->stop;
}

done_testing();
