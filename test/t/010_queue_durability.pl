# Lossless delivery: every statement a client saw complete has its audit
# record in the log after a backend is killed with SIGKILL, after an
# immediate shutdown, after a fast shutdown under load, with a queue so small
# it fills, and after the writer itself is killed.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(wait_until_up);
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('durability');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
restart_after_crash = on
log_statement = none
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO customers SELECT g, 'name ' || g, '555-' || g, 'city ' || (g % 10)
  FROM generate_series(1, 10000) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});

my $script = $node->basedir . '/read.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set id random(1, 10000)\nSELECT phone FROM customers WHERE id = :id;\n");

my $reads_sql = q{SELECT count(*) FROM access_audit.log
 WHERE command = 'SELECT' AND query LIKE 'SELECT phone FROM customers WHERE id = %'};

# Start pgbench in the background; returns the harness and its output refs.
sub start_pgbench
{
	my ($seconds, $clients) = @_;
	my ($out, $err) = ('', '');
	local $ENV{PGAPPNAME} = 'pgbench';
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-M', 'prepared', '-c', $clients, '-j', $clients,
			'-T', $seconds, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	return ($h, \$out, \$err);
}

# Transactions pgbench reported as done.
sub processed
{
	my ($out) = @_;
	return $1 if $$out =~ /number of transactions actually processed: (\d+)/;
	return 0;
}

sub wait_for_reads
{
	my ($min) = @_;
	$node->poll_query_until('postgres',
		"SELECT ($reads_sql) >= $min")
	  or die "fewer than $min reads were recorded";
}

sub reads_so_far
{
	return $node->safe_psql('postgres', $reads_sql);
}


my $stmt_count = 0;

# 1. SIGKILL of a client backend mid-run, then crash-restart.
{
	my $before = reads_so_far();
	my ($h, $out, $err) = start_pgbench(30, 2);
	wait_for_reads($before + 500);
	my $pid = $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE application_name = 'pgbench' LIMIT 1");
	ok($pid =~ /^\d+$/, 'found a pgbench backend');
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	$h->finish;
	my $done = processed($out);
	ok($done > 0, "pgbench completed $done statements before the crash");
	wait_until_up($node, $log_offset);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after crash-restart');
	my $got = reads_so_far() - $before;
	cmp_ok($got, '>=', $done, "SIGKILL: $got records for $done completed statements");
	cmp_ok($got, '<=', $done + 4, 'SIGKILL: no duplicated records');
	ok($node->log_contains('access_audit queue replayed|access_audit writer started'),
		'queue replayed after crash-restart');
}

# 2. Immediate shutdown under load.
{
	my $before = reads_so_far();
	my ($h, $out, $err) = start_pgbench(30, 2);
	wait_for_reads($before + 500);
	$node->stop('immediate');
	$h->finish;
	my $done = processed($out);
	$node->start;
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after immediate shutdown');
	my $got = reads_so_far() - $before;
	cmp_ok($got, '>=', $done,
		"immediate shutdown: $got records for $done completed statements");
	cmp_ok($got, '<=', $done + 4, 'immediate shutdown: no duplicated records');
}

# 3. Fast shutdown under load: the writer drains before the server stops.
{
	my $before = reads_so_far();
	my ($h, $out, $err) = start_pgbench(30, 2);
	wait_for_reads($before + 500);
	$node->stop('fast');
	$h->finish;
	my $done = processed($out);
	ok($node->log_contains('drained and stopped'), 'writer drained at fast shutdown');

	# count before anything else can write: start and read at once
	$node->start;
	my $got = reads_so_far() - $before;
	cmp_ok($got, '>=', $done,
		"fast shutdown: $got records for $done completed statements, already in the log at restart");
	cmp_ok($got, '<=', $done + 4, 'fast shutdown: no duplicated records');
}

# 4. A queue that fills: backends wait (counted) and nothing is lost.
{
	$node->append_conf('postgresql.conf', "access_audit.queue_size = 1MB\n");
	$node->restart;
	my $before = reads_so_far();

	# hold the writer back with a lock on the log
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('BEGIN; LOCK TABLE access_audit.log IN ACCESS EXCLUSIVE MODE;');

	my ($h, $out, $err) = start_pgbench(4, 2);
	$node->poll_query_until('postgres',
		"SELECT sum(waits) > 0 FROM access_audit.stats")
	  or die 'queue never filled';
	my $waiting = $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pgbench' AND wait_event_type = 'Extension'");
	cmp_ok($waiting, '>=', 1, 'a backend waits on the full queue (wait event Extension)');
	$locker->query_safe('COMMIT;');
	$locker->quit;
	$h->finish;
	my $done = processed($out);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after the queue drained');
	my $got = reads_so_far() - $before;
	cmp_ok($got, '>=', $done, "full queue: $got records for $done statements");
	cmp_ok($node->safe_psql('postgres', 'SELECT sum(waits) FROM access_audit.stats'),
		'>', 0, 'waits on a full queue are counted');
}

# 5. The writer killed (SIGKILL): crash-restart, writer back, nothing lost.
{
	my $before = reads_so_far();
	my ($h, $out, $err) = start_pgbench(30, 2);
	wait_for_reads($before + 300);
	my $wpid = $node->safe_psql('postgres',
		"SELECT writer_pid FROM access_audit.stats WHERE database = 'postgres'");
	ok($wpid =~ /^\d+$/, 'writer is running');
	my $log_offset = -s $node->logfile;
	kill 'KILL', $wpid;
	$h->finish;
	my $done = processed($out);
	wait_until_up($node, $log_offset);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after the writer was killed');
	my $got = reads_so_far() - $before;
	cmp_ok($got, '>=', $done, "writer killed: $got records for $done statements");
	my $newpid = $node->safe_psql('postgres',
		"SELECT writer_pid FROM access_audit.stats WHERE database = 'postgres'");
	isnt($newpid, $wpid, 'a new writer serves the database');
}

# 5b. A backend killed in the middle of an export: its record was kept in
# the backend's intent slot before the rows left, and the replay after the
# crash writes it with the rows sent so far.
{
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('BEGIN');
	$bg->query_safe('DECLARE export_c CURSOR FOR SELECT id, phone FROM customers');
	$bg->query_safe('FETCH 300 FROM export_c');
	$bg->query_safe('FETCH 200 FROM export_c');
	# a second cursor must not take the first one's slot
	$bg->query_safe('DECLARE other_c CURSOR FOR SELECT phone FROM customers');
	$bg->query_safe('FETCH 5 FROM other_c');
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $bg->quit; };
	wait_until_up($node, $log_offset);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after the exporting backend was killed');
	is($node->safe_psql('postgres', q{
SELECT rows || ' ' || outcome || ' ' || (detail::jsonb ->> 'rows_at_least') || ' ' || columns::text
  FROM access_audit.log WHERE query LIKE '%export_c%'}),
		'500 error 500 {public.customers.phone}',
		'the killed export is recorded, with the 500 rows it had sent');
	ok($node->log_contains('access_audit recorded 1 statements interrupted by the crash'),
		'the replay says so');
}

# 6. The chain survived all of the above.
is($node->safe_psql('postgres', 'SELECT ok FROM access_audit.verify()'),
	't', 'hash chain verifies after crashes and restarts');
is($node->safe_psql('postgres',
	'SELECT count(*) = count(DISTINCT seq) AND max(seq) = count(*) FROM access_audit.log'),
	't', 'sequence numbers have no gaps and no duplicates');

# 7. Two databases: each log holds only its own reads.
{
	$node->safe_psql('postgres', 'CREATE DATABASE other');
	$node->safe_psql('other', q{
CREATE EXTENSION access_audit;
CREATE TABLE secrets (id int, ssn text);
INSERT INTO secrets VALUES (1, '078-05-1120');
SECURITY LABEL FOR access_audit ON COLUMN secrets.ssn IS 'pii';
SELECT ssn FROM secrets;
SELECT access_audit.flush();
});
	$node->safe_psql('postgres', 'SELECT phone FROM customers WHERE id = 1; SELECT access_audit.flush();');
	is($node->safe_psql('other',
		"SELECT count(*) FROM access_audit.log WHERE 'public.customers' = ANY (relations)"),
		'0', 'the other database has no records of postgres reads');
	is($node->safe_psql('other',
		"SELECT count(*) FROM access_audit.log WHERE 'public.secrets' = ANY (relations) AND command = 'SELECT'"),
		'1', 'the other database has its own read');
	is($node->safe_psql('postgres',
		"SELECT count(*) FROM access_audit.log WHERE 'public.secrets' = ANY (relations)"),
		'0', 'postgres has no records of the other database');
	is($node->safe_psql('postgres',
		"SELECT count(DISTINCT writer_pid) FROM access_audit.stats WHERE writer_pid IS NOT NULL"),
		'2', 'one writer per database');
}

$node->stop;

# 8. Bad settings fail at start-up with a clear message.
{
	$node->append_conf('postgresql.conf', "access_audit.queue_size = 0\n");
	my $ret = PostgreSQL::Test::Utils::system_log('pg_ctl', '-D', $node->data_dir,
		'-l', $node->logfile, '-w', 'start');
	isnt($ret, 0, 'server refuses a queue_size of 0');
	ok($node->log_contains('access_audit.queue_size'), 'the log names the bad setting');
	$node->adjust_conf('postgresql.conf', 'access_audit.queue_size', '4MB');
	$node->append_conf('postgresql.conf', "access_audit.flush_interval = -5\n");
	$ret = PostgreSQL::Test::Utils::system_log('pg_ctl', '-D', $node->data_dir,
		'-l', $node->logfile, '-w', 'start');
	isnt($ret, 0, 'server refuses a negative flush_interval');
	ok($node->log_contains('access_audit.flush_interval'), 'the log names the bad interval');
}

done_testing();
