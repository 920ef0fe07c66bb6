# No user-controlled value can stop a backend or lose its record (issue 16,
# item 2): a 70 MB access_audit.actor is cut with a marker, and the read
# (and a \copy) is recorded at once; a backend waiting for room in a full
# queue answers pg_cancel_backend and pg_terminate_backend, and the records
# it was holding are written once the writer can go on.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('queue_bounds');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 700) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
CREATE SEQUENCE cnt;
});

# A 70 MB actor: the read and the \copy finish and are recorded.
my $timed_out = 0;
my ($ret, $out, $err) = $node->psql('shop', q{
SELECT set_config('access_audit.actor', repeat('x', 70 * 1024 * 1024), false) IS NOT NULL;
SELECT count(phone) FROM customers;
\copy (SELECT phone FROM customers) TO '/dev/null'
SELECT 'done';
}, timeout => 60, timed_out => \$timed_out);
ok(!$timed_out && $out =~ /done/, 'a 70 MB actor does not stop the backend')
  or diag($err);
is( $node->safe_psql('shop', q{
SELECT access_audit.flush('30 s');
SELECT string_agg(command || ' ' || rows || ' ' ||
                  (length(coalesce(actor, claimed_actor)) < 1024)::text || ' ' ||
                  (coalesce(actor, claimed_actor) LIKE 'xxx%...[truncated: 73400320 bytes, hash %]')::text,
                  ', ' ORDER BY seq)
  FROM access_audit.log WHERE command IN ('SELECT', 'COPY')}),
	"t\nSELECT 1 true true, COPY 700 true true",
	'both are recorded, with the actor cut and marked');

# A writer that cannot write (its log is locked), and a queue that fills.
my $lock = $node->background_psql('shop');
$lock->query_safe(q{
BEGIN;
LOCK TABLE access_audit.log_data IN ACCESS EXCLUSIVE MODE;
});

sub start_reader
{
	my $s = $node->background_psql('shop');
	my $pid = $s->query_safe('SELECT pg_backend_pid()');
	$s->query_until(qr/started/, q{
\echo started
DO $$ BEGIN FOR i IN 1..1000000 LOOP
  PERFORM phone, nextval('cnt') FROM customers WHERE id = 1;
END LOOP; END $$;
});
	ok( $node->poll_query_until('postgres', qq{
SELECT wait_event_type = 'Extension' AND wait_event = 'Extension'
  FROM pg_stat_activity WHERE pid = $pid}),
		"reader $pid waits for room in the queue");
	return ($s, $pid);
}

my ($r1, $pid1) = start_reader();
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid1)");
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid1 AND state = 'active'}),
	'pg_cancel_backend ends the wait');

my ($r2, $pid2) = start_reader();
$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid2)");
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid2}),
	'pg_terminate_backend ends the backend');

# The writer goes on: every read that ran is recorded, the interrupted
# ones included.
$lock->query_safe('COMMIT');
$lock->quit;
eval { $r1->quit; };
eval { $r2->quit; };
my $reads = $node->safe_psql('shop', 'SELECT last_value FROM cnt');
ok( $node->poll_query_until('shop', qq{
SELECT count(*) >= $reads FROM access_audit.log
 WHERE command = 'SELECT' AND query LIKE '%nextval%'}),
	"all $reads reads are recorded");
is( $node->safe_psql('shop', q{
SELECT access_audit.flush('30 s');
SELECT ok FROM access_audit.verify()}), "t\nt", 'the chain is whole');

$node->stop;
done_testing();
