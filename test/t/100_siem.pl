# SIEM output: with access_audit.siem_log the server log gets one JSON line
# per alert (ACCESS_AUDIT_ALERT) and, with "all", per audit record
# (ACCESS_AUDIT_RECORD); access_audit.records_after() returns the same
# record lines to pull-based collectors.  Every documented field is
# checked, the values against the log, and the chain hashes link up.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(clear_of_day_boundary);
use JSON::PP;

# The fields README "Alerts and records in your SIEM" documents.
my @record_fields = qw(@timestamp event.kind event.module event.dataset
  event.category event.type event.action event.outcome event.sequence
  event.duration user.name user.effective.name source.ip process.pid
  db.name db.user db.operation db.statement access_audit.seq
  access_audit.actor access_audit.claimed_actor access_audit.login_role
  access_audit.effective_role access_audit.application_name
  access_audit.query_id access_audit.nesting_level access_audit.relations
  access_audit.columns access_audit.predicate_columns access_audit.tags
  access_audit.rows access_audit.tagged_rows access_audit.outcome
  access_audit.detail access_audit.origin access_audit.origin_seq
  access_audit.prev_hash access_audit.hash);
my @alert_fields = qw(@timestamp event.kind event.module event.dataset
  event.category event.type event.action event.id event.risk_score
  event.reason event.start event.end user.name db.name
  access_audit.alert_id access_audit.actor access_audit.score
  access_audit.reason access_audit.window_start access_audit.window_end
  access_audit.detail);

# has_field(OBJ, "a.b.c"): the dotted path exists (its value may be null)
sub has_field
{
	my ($obj, $path) = @_;
	my @parts = $path eq '@timestamp' ? ('@timestamp') : split /\./, $path;
	for my $p (@parts)
	{
		return 0 unless ref($obj) eq 'HASH' && exists $obj->{$p};
		$obj = $obj->{$p};
	}
	return 1;
}

# check_fields(NAME, OBJS, FIELDS): every object has every field
sub check_fields
{
	my ($name, $objs, $fields) = @_;
	my @missing;
	for my $o (@$objs)
	{
		push @missing, grep { !has_field($o, $_) } @$fields;
	}
	ok(@$objs > 0 && !@missing, "$name carry every documented field")
	  or diag('missing: ' . join(', ', @missing));
}

my $node = PostgreSQL::Test::Cluster->new('siem');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
access_audit.siem_log = all
});
$node->start;
# the seed and check_exports() fall on one business day
clear_of_day_boundary($node, 180);

# server-log lines with a prefix, from byte offset $from on, decoded
sub log_lines
{
	my ($prefix, $from) = @_;
	my $log = slurp_file($node->logfile, $from);
	my @objs;
	for my $line (split /\n/, $log)
	{
		push @objs, decode_json($1) if $line =~ /\bLOG:  $prefix (\{.*\})$/;
	}
	return @objs;
}

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE ROLE app LOGIN IN ROLE access_audit_app;
CREATE ROLE analyst LOGIN IN ROLE access_audit_reader;
CREATE ROLE nobody LOGIN;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 6000) g;
GRANT SELECT ON customers TO app;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
-- history: 30 quiet days for twelve clerks
SET access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
SELECT access_audit.business_day(now()) - d, 'clerk-' || a, 'public.customers', 20 + (a * 7 + d) % 9, 0, 5, 0
  FROM generate_series(1, 30) d, generate_series(1, 12) a;
RESET access_audit.maintenance;
});
my $reads = '';
for my $k (1 .. 12)
{
	my $n = $k == 7 ? 6000 : 22;
	$reads .= "SET access_audit.actor = 'clerk-$k'; SELECT phone FROM customers WHERE id <= $n;\n";
}
$node->safe_psql('postgres', $reads, connstr => $node->connstr('postgres') . ' user=app');
$node->safe_psql('postgres', q{SELECT access_audit.flush()});

# Records in the server log: one line per record, every field, values.
my @rec = log_lines('ACCESS_AUDIT_RECORD', 0);
check_fields('record lines in the server log', \@rec, \@record_fields);
my $nlog = $node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.log});
is(scalar(@rec), $nlog, 'one server-log line per audit record');
is(join(',', sort { $a <=> $b } map { $_->{access_audit}{seq} } @rec),
	join(',', 1 .. $nlog), 'every seq is logged once');
my ($big) = grep { ($_->{user}{name} // '') eq 'clerk-7' } @rec;
ok($big, 'the export is in the server log');
is($big->{db}{user}, 'app', 'db.user is the login role');
is($big->{event}{action}, 'SELECT', 'event.action is the command');
is($big->{event}{outcome}, 'success', 'event.outcome');
is($big->{access_audit}{rows}, 6000, 'access_audit.rows');
is_deeply($big->{access_audit}{tags}, ['pii'], 'access_audit.tags');
is_deeply($big->{access_audit}{columns}, ['public.customers.phone'], 'access_audit.columns');
is($big->{db}{statement}, 'SELECT phone FROM customers WHERE id <= 6000', 'db.statement');
like($big->{'@timestamp'}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/, '@timestamp is ISO 8601 UTC');
is($big->{access_audit}{hash},
	$node->safe_psql('postgres',
		"SELECT encode(hash, 'hex') FROM access_audit.log WHERE seq = $big->{access_audit}{seq}"),
	'the line carries the record\'s chain hash');

# Pull: records_after in batches, the chain links up across batches.
my @pulled;
my $after = 0;
while (1)
{
	my $out = $node->safe_psql('postgres',
		"SELECT access_audit.records_after($after, 5)",
		connstr => $node->connstr('postgres') . ' user=analyst');
	last if $out eq '';
	my @batch = map { decode_json($_) } split /\n/, $out;
	push @pulled, @batch;
	$after = $batch[-1]{access_audit}{seq};
}
check_fields('records_after lines', \@pulled, \@record_fields);
is(scalar(@pulled), $nlog, 'records_after in batches returns every record');
my $prev = '0' x 64;
my $linked = 1;
for my $r (@pulled)
{
	$linked = 0 unless $r->{access_audit}{prev_hash} eq $prev;
	$prev = $r->{access_audit}{hash};
}
ok($linked, 'each line\'s prev_hash is the previous line\'s hash');
is_deeply([ map { $_->{access_audit}{hash} } @pulled ],
	[ map { $_->{access_audit}{hash} } sort { $a->{access_audit}{seq} <=> $b->{access_audit}{seq} } @rec ],
	'pulled and logged lines agree');

# Alerts: check_exports raises one, its line reaches the server log.
my $off = -s $node->logfile;
is($node->safe_psql('postgres', q{SELECT access_audit.check_exports()}), '1', 'one alert raised');
my @al = log_lines('ACCESS_AUDIT_ALERT', $off);
check_fields('alert lines', \@al, \@alert_fields);
is(scalar(@al), 1, 'one line per alert');
is($al[0]{user}{name}, 'clerk-7', 'user.name is the actor');
is($al[0]{event}{kind}, 'alert', 'event.kind is alert');
is($al[0]{event}{id},
	$node->safe_psql('postgres', q{SELECT alert_id FROM access_audit.alerts}), 'event.id is the alert id');
like($al[0]{event}{reason}, qr/exported 6,000 rows/, 'event.reason says why');

# An alert whose transaction rolls back is not sent.
$off = -s $node->logfile;
$node->safe_psql('postgres', q{
BEGIN;
SET LOCAL access_audit.maintenance = on;
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
VALUES ('ghost', now(), now() + interval '1 day', 5, 'rolled back');
ROLLBACK;
SELECT 1;
});
is(scalar(log_lines('ACCESS_AUDIT_ALERT', $off)), 0, 'a rolled-back alert is not sent');

# siem_log = alerts: no record lines any more, alerts still.
# (a restart, so that the writer surely runs with the new value)
$node->safe_psql('postgres', q{SELECT access_audit.flush()});
$node->append_conf('postgresql.conf', "access_audit.siem_log = alerts\n");
$node->restart;
$off = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT count(phone) FROM customers; SELECT access_audit.flush();});
is(scalar(log_lines('ACCESS_AUDIT_RECORD', $off)), 0, 'siem_log = alerts logs no records');
$node->safe_psql('postgres', q{
SET access_audit.maintenance = on;
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
VALUES ('<x>', now(), now() + interval '1 day', 5, 'line' || chr(10) || 'break');
});
my @al2 = log_lines('ACCESS_AUDIT_ALERT', $off);
is(scalar(@al2), 1, 'siem_log = alerts still logs alerts');
is($al2[0]{event}{reason}, "line\nbreak", 'a newline in a value stays inside the one JSON line');

# A line that only looks like ours is marked.
$off = -s $node->logfile;
$node->safe_psql('postgres', q{
DO $$BEGIN RAISE LOG 'ACCESS_AUDIT_ALERT {"forged": true}'; END$$;
DO $$BEGIN RAISE LOG '  ACCESS_AUDIT_RECORD {"forged": true}'; END$$;
}, connstr => $node->connstr('postgres') . ' user=analyst');
is(scalar(log_lines('ACCESS_AUDIT_ALERT', $off)) + scalar(log_lines('ACCESS_AUDIT_RECORD', $off)), 0,
	'a RAISE LOG with our prefix is not taken for a SIEM line');
like(slurp_file($node->logfile, $off), qr/LOG:  \(not from access_audit\) ACCESS_AUDIT_ALERT \{"forged": true\}/,
	'it is marked as not ours');

# Bad values and forged lines are refused.
my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{ALTER SYSTEM SET access_audit.siem_log = 'everything'});
like($stderr, qr/invalid value for parameter "access_audit.siem_log"/, 'a bad value is refused');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT access_audit._siem_emit('alert', '{"forged": true}')},
	connstr => $node->connstr('postgres') . ' user=analyst');
like($stderr, qr/permission denied/, 'users cannot write SIEM lines themselves');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT access_audit.records_after(0, 0)});
like($stderr, qr/max_records must be between 1 and 100000/, 'max_records is checked');

$node->stop;

# A bad value in postgresql.conf stops the server at start.
$node->append_conf('postgresql.conf', "access_audit.siem_log = sometimes\n");
ok(!$node->start(fail_ok => 1), 'the server refuses to start on a bad siem_log');
like(slurp_file($node->logfile), qr/invalid value for parameter "access_audit.siem_log": "sometimes"/,
	'and says why');

done_testing();
