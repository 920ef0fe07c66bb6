# Export quotas across backends: a day's counter lives in shared memory, so
# reconnecting, SET ROLE or claiming another actor does not reset it;
# a parallel plan counts every row and is stopped at the row; trusted application actors each
# have their own counter, a shared quota one counter for a peer group;
# quotas never apply to the extension's writer.  Every hit is an alert
# (one per quota, actor and window, with a count), announced with NOTIFY
# and a SIEM line; counters survive a restart and an immediate-mode stop.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('quota');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
access_audit.siem_log = alerts
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 1000) g;
SELECT access_audit.tag('customers', 'phone', 'pii:phone');
CREATE ROLE bob LOGIN;
CREATE ROLE helper;
GRANT helper TO bob;
GRANT SELECT ON customers TO bob, helper;
CREATE ROLE webapp LOGIN IN ROLE access_audit_app;
GRANT SELECT ON customers TO webapp;
SELECT access_audit.set_quota('actor', 'bob', 30, 'day', 'block');
SELECT access_audit.set_quota('actor', 'alice', 10, 'day', 'block');
});

sub read_as
{
	my ($user, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('shop', $sql,
		extra_params => [ '-U', $user ]);
	return ($ret, $out, $err);
}

my ($ret, $out, $err) = read_as('bob', 'SELECT phone FROM customers WHERE id <= 20');
is($ret, 0, 'bob reads 20 of his 30 rows');

# a new connection (new backend) goes on from 20
($ret, $out, $err) = read_as('bob', 'SELECT phone FROM customers WHERE id <= 20');
like($err, qr/tagged rows read exceed quota 1/, 'a new backend is stopped at row 31');
is($node->safe_psql('shop', q{SELECT used FROM access_audit.quota_usage WHERE quota_id = 1}),
	'31', 'the day counter holds the rows of both backends');

# SET ROLE and a claimed actor change nothing
($ret, $out, $err) = read_as('bob', q{SET ROLE helper; SELECT phone FROM customers WHERE id = 1});
like($err, qr/tagged rows read exceed quota 1/, 'SET ROLE does not escape the quota');
($ret, $out, $err) = read_as('bob', q{SET access_audit.actor = 'carol'; SELECT phone FROM customers WHERE id = 1});
like($err, qr/tagged rows read exceed quota 1/, 'an untrusted actor claim does not escape the quota');

# a trusted application sets the actor: each actor has its own counter
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'alice'; SELECT phone FROM customers WHERE id <= 10});
is($ret, 0, 'the application reads 10 rows for alice');
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'alice'; SELECT phone FROM customers WHERE id = 11});
like($err, qr/tagged rows read exceed quota 2/, 'alice is stopped in a new session');
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'dave'; SELECT phone FROM customers WHERE id <= 10});
is($ret, 0, 'dave is not limited by alice\'s quota');

# a shared quota: the actors of a peer group read from one pool
$node->safe_psql('shop', q{
INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('erin', 'pool'), ('frank', 'pool');
SELECT access_audit.set_quota('group', 'pool', 15, 'day', 'block', shared => true);
});
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'erin'; SELECT phone FROM customers WHERE id <= 10});
is($ret, 0, 'erin reads 10 of the pool\'s 15');
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'frank'; SELECT phone FROM customers WHERE id <= 10});
like($err, qr/tagged rows read exceed quota 3 .*shared by group "pool"/, 'frank is stopped at the pool\'s 16th row');
is($node->safe_psql('shop', q{SELECT actor || ' ' || used FROM access_audit.quota_usage WHERE quota_id = 3}),
	'(shared) 16', 'one counter for the pool');

# a parallel plan under a quota counts every row (run in the leader alone)
$node->safe_psql('shop', q{SELECT access_audit.set_quota('actor', 'webapp', 500, 'day', 'warn')});
$node->safe_psql('shop', q{SELECT access_audit.drop_quota(3)});
($ret, $out, $err) = read_as('webapp', q{
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
SELECT count(phone) FROM customers});
is($ret, 0, 'a parallel read over a warn quota completes');
like($err, qr/WARNING:  tagged rows read exceed quota 4/, 'and warns');
is($node->safe_psql('shop', q{SELECT used FROM access_audit.quota_usage WHERE quota_id = 4}),
	'1000', 'all 1000 rows count, workers\' included');

# the writer is never under a quota, and everything above is recorded
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log WHERE command = 'QUOTA BLOCK'}),
	'5', 'every stop is recorded');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log WHERE command = 'QUOTA WARN'}),
	'1', 'the warning is recorded');

# every hit is an alert, one per quota, actor and window with a count
is($node->safe_psql('shop', q{
SELECT string_agg(actor || ' ' || quota_id || ' ' || kind || ' ' || (detail->>'hits'), ', '
                  ORDER BY alert_id)
  FROM access_audit.alerts}),
	'bob 1 quota_block 3, alice 2 quota_block 1, frank 3 quota_block 1, webapp 4 quota_warn 1',
	'each quota hit is an alert; repeated hits in a window add to its count');

# a COPY stopped mid-stream: the listener hears of the alert once, the
# alert row and the COPY's record are there, and the alert is ackable
$node->safe_psql('shop', q{
CREATE ROLE eve LOGIN IN ROLE access_audit_admin;
GRANT SELECT ON customers TO eve;
SELECT access_audit.set_quota('actor', 'eve', 5, 'statement', 'block');
});
my $log_offset = -s $node->logfile;
my ($stdout, $stderr);
$node->psql('shop', q{
LISTEN access_audit_alert;
COPY customers TO STDOUT;
COPY customers TO STDOUT;
SELECT access_audit.flush();
SELECT 'done';
}, stdout => \$stdout, stderr => \$stderr, on_error_stop => 0,
	extra_params => [ '-U', 'eve' ]);
like($stderr, qr/tagged rows read exceed quota 5 .*\n.*tagged rows read exceed quota 5/s,
	'both COPYs are stopped');
my @notes = ($stdout =~ /Asynchronous notification "access_audit_alert" with payload "(\{[^\n]*\})"/g);
is(scalar(@notes), 1, 'one NOTIFY for two hits in the same window');
like($notes[0] // '', qr/"kind": "quota_block".*"actor": "eve"|"actor": "eve".*"kind": "quota_block"/,
	'the payload names the actor and the kind');
like($notes[0] // '', qr/"score": [\d.]+, "reason": "[^"]*.*"window": \{"end": "[^"]+", "start": "[^"]+"\}, "alert_id": \d+/,
	'the payload has the shape of check_exports() alerts');
is($node->safe_psql('shop', q{
SELECT kind || '|' || quota_id || '|' || (detail->>'hits') || '|' || (detail->>'rows_read') || '|' || reason
  FROM access_audit.alerts WHERE actor = 'eve'}),
	'quota_block|5|2|6|actor "eve" stopped at tagged row 6 of quota 5 (block 5 tagged rows per statement, for actor "eve")',
	'the alert after a blocked COPY');
is($node->safe_psql('shop', q{
SELECT string_agg(rows || ' ' || outcome || ' ' || detail, ', ')
  FROM access_audit.log WHERE actor = 'eve' AND command = 'COPY'}),
	'5 error stopped by quota 5 (block 5 tagged rows per statement, for actor "eve"), '
	  . '5 error stopped by quota 5 (block 5 tagged rows per statement, for actor "eve")',
	'the COPYs are recorded with the rows sent');
my @siem = grep { /ACCESS_AUDIT_ALERT \{/ && /"quota_block"/ && /"eve"/ }
  split /\n/, slurp_file($node->logfile, $log_offset);
is(scalar(@siem), 1, 'one SIEM line for the alert');
my $eve_alert = $node->safe_psql('shop', q{SELECT alert_id FROM access_audit.alerts WHERE actor = 'eve'});
$node->safe_psql('shop', qq{SELECT access_audit.ack($eve_alert, 'contractor asked for a list')});
is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.alerts_open WHERE actor = 'eve'}),
	'0', 'a quota alert is acknowledged like any other');

# counters survive a restart, and an immediate-mode stop (a crash): the
# launcher saves them to a file every second while they change
my $usage = q{SELECT string_agg(quota_id || ' ' || actor || ' ' || used, ', ' ORDER BY quota_id, actor)
  FROM access_audit.quota_usage};
my $before = $node->safe_psql('shop', $usage);
like($before, qr/^1 bob 3\d, 2 alice 1\d, 4 webapp 1000$/, 'counters before the restart');
$node->restart;
is($node->safe_psql('shop', $usage), $before, 'counters after a restart');
($ret, $out, $err) = read_as('bob', 'SELECT phone FROM customers WHERE id = 1');
like($err, qr/tagged rows read exceed quota 1/, 'bob is still over his day\'s quota');

($ret, $out, $err) = read_as('webapp', 'SELECT phone FROM customers WHERE id <= 100');
is($ret, 0, 'webapp reads 100 more rows');
$before = $node->safe_psql('shop', $usage);
like($before, qr/4 webapp 1100$/, 'the counter moved');
$node->poll_query_until('shop', 'SELECT access_audit._quota_counters_saved()')
  or die 'the counters were never saved';
$node->stop('immediate');
$node->start;
is($node->safe_psql('shop', $usage), $before, 'counters after an immediate-mode stop');
($ret, $out, $err) = read_as('webapp', q{SET access_audit.actor = 'alice'; SELECT phone FROM customers WHERE id = 1});
like($err, qr/tagged rows read exceed quota 2/, 'alice is still stopped after the crash');

# a parallel plan under a quota runs in the leader alone, so it is stopped
# at the row, not at the end of its run
$node->safe_psql('shop', q{
CREATE ROLE pat LOGIN;
GRANT SELECT ON customers TO pat;
SELECT access_audit.set_quota('actor', 'pat', 100, 'day', 'block');
});
my $parallel = q{
SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0; SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
};
(undef, $out, undef) = read_as('pat', $parallel . 'EXPLAIN (COSTS OFF) SELECT phone FROM customers');
like($out, qr/Gather/, 'the plan is parallel');
($ret, $out, $err) = read_as('pat', $parallel . 'SELECT phone FROM customers');
like($err, qr/tagged rows read exceed quota 6 .*\n.*stopped at that row/,
	'a parallel read is stopped at the row');
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is($node->safe_psql('shop', q{
SELECT rows || ' ' || tagged_rows || ' ' || outcome FROM access_audit.log
 WHERE actor = 'pat' AND command = 'SELECT' AND query LIKE 'SELECT phone%'}),
	'100 100 error', 'its record shows the 100 rows sent');

$node->stop;
done_testing();
