# Reads in progress: an export left open (a cursor in an open transaction)
# shows in access_audit.reads_in_progress with the rows sent so far, before
# its record reaches the log; and a statement the planner expected to return
# few rows takes its backend's intent slot once it has sent many, so a
# crash in the middle of the stream leaves a record with the rows sent.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(wait_until_up);

my $node = PostgreSQL::Test::Cluster->new('open_reads');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10000) g;
ANALYZE customers;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
CREATE ROLE analyst LOGIN IN ROLE access_audit_reader;
});


# 1. An open cursor: visible in progress, with the rows fetched so far.
{
	my $bg = $node->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('BEGIN');
	$bg->query_safe('DECLARE open_c CURSOR FOR SELECT id, phone FROM customers');
	$bg->query_safe('FETCH 300 FROM open_c');
	my $view = q{SELECT pid || ' ' || rows_so_far || ' ' || columns::text || ' ' ||
  login_role || ' ' || (running_for >= '0'::interval)
  FROM access_audit.reads_in_progress WHERE query LIKE '%open_c%'};
	is($node->safe_psql('postgres', $view, extra_params => [ '-U', 'analyst' ]),
		"$pid 300 {public.customers.phone} " . $node->safe_psql('postgres', 'SELECT session_user') . ' true',
		'an open cursor is a read in progress, with the rows fetched so far');
	$bg->query_safe('FETCH 200 FROM open_c');
	is($node->safe_psql('postgres', q{SELECT rows_so_far FROM access_audit.reads_in_progress
  WHERE query LIKE '%open_c%'}), '500', 'the rows so far follow each FETCH');
	$node->safe_psql('postgres', "SELECT access_audit.flush()");
	is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.log
  WHERE query LIKE '%open_c%'}), '0', 'no record in the log while the cursor is open');
	$bg->query_safe('COMMIT');
	$node->safe_psql('postgres', "SELECT access_audit.flush()");
	is($node->safe_psql('postgres', q{SELECT rows FROM access_audit.log
  WHERE query LIKE '%open_c%'}), '500', 'the record reaches the log when the cursor closes');
	is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.reads_in_progress
  WHERE query LIKE '%open_c%'}), '0', 'and it is no longer in progress');
	$bg->quit;
	my ($ret, $out, $err) = $node->psql('postgres',
		'SELECT * FROM access_audit.reads_in_progress', extra_params => [ '-U', $node->safe_psql('postgres', 'SELECT session_user') ]);
	is($ret, 0, 'the view answers');
}

# 2. A stream the planner expected to be short (abs(id) = id: about 50 of
# 10,000 rows) stops at row 2,800 on a lock held elsewhere; the backend is
# then killed.  Rows it sent are followed in the intent slot.
{
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	$holder->query_safe('SELECT pg_advisory_lock(42)');
	my $stream = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $stream->query_safe('SELECT pg_backend_pid()');
	is($node->safe_psql('postgres', q{EXPLAIN (FORMAT JSON) SELECT id, phone FROM customers WHERE abs(id) = id})
		=~ /"Plan Rows": (\d+)/ && $1 < 1000 ? 'short' : 'long', 'short',
		'the planner expects few rows');
	$stream->query_until(qr/streaming/, q{\echo streaming
SELECT id, phone, CASE WHEN id = 2800 THEN pg_advisory_lock(42)::text END AS stop
  FROM customers WHERE abs(id) = id;
});
	$node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'the stream did not reach its lock';
	my $so_far = $node->safe_psql('postgres', q{SELECT rows_so_far FROM access_audit.reads_in_progress
  WHERE query LIKE '%abs(id) = id%'});
	cmp_ok($so_far || 0, '>=', 2700, "in progress with $so_far rows sent");
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $stream->quit; };
	eval { $holder->quit; };
	wait_until_up($node, $log_offset);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after the streaming backend was killed');
	my $rec = $node->safe_psql('postgres', q{
SELECT outcome || ' ' || (detail::jsonb ->> 'rows_at_least')
  FROM access_audit.log WHERE query LIKE '%abs(id) = id%'});
	like($rec, qr/^error \d+$/, 'the killed stream is recorded');
	my ($at_least) = $rec =~ /(\d+)$/;
	cmp_ok($at_least || 0, '>=', 2700, "with the rows it had sent ($at_least)");
}

# 3. The same through COPY (query) TO STDOUT: the slot follows the rows
# copied out, not only the count at the end of the run.
{
	my $holder = $node->background_psql('postgres', on_error_stop => 0);
	$holder->query_safe('SELECT pg_advisory_lock(43)');
	my $copy = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $copy->query_safe('SELECT pg_backend_pid()');
	$copy->query_until(qr/copying/, q{\echo copying
COPY (SELECT id, phone, CASE WHEN id = 3000 THEN pg_advisory_lock(43)::text END AS stop
  FROM customers WHERE abs(id) = id AND id > 0) TO STDOUT;
});
	$node->poll_query_until('postgres',
		"SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'the copy did not reach its lock';
	my $so_far = $node->safe_psql('postgres', q{SELECT rows_so_far FROM access_audit.reads_in_progress
  WHERE query LIKE '%id > 0%'});
	cmp_ok($so_far || 0, '>=', 2900, "copy in progress with $so_far rows copied out");
	my $log_offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $copy->quit; };
	eval { $holder->quit; };
	wait_until_up($node, $log_offset);
	ok($node->safe_psql('postgres', "SELECT access_audit.flush('60 s')") eq 't',
		'flush after the copying backend was killed');
	my $at_least = $node->safe_psql('postgres', q{
SELECT (detail::jsonb ->> 'rows_at_least') FROM access_audit.log
 WHERE query LIKE '%id > 0%' AND outcome = 'error'});
	cmp_ok($at_least || 0, '>=', 2900, "the killed copy is recorded with the rows copied out ($at_least)");
}

$node->stop;
done_testing();
