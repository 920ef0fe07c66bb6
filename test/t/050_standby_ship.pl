# Reads on a hot standby are captured there and shipped to the primary's
# log (a standby cannot write tables), keeping their origin and rows.  The
# records wait on the standby while the primary is down, and a promotion
# with records still pending writes each of them exactly once.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
});
$primary->start;
$primary->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE ROLE shipper LOGIN IN ROLE access_audit_ingest;
CREATE ROLE nobody LOGIN;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 200) g;
GRANT SELECT ON customers TO PUBLIC;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
SELECT phone FROM customers WHERE id = 1;
SELECT access_audit.flush();
});
my $sysid = $primary->safe_psql('postgres',
	'SELECT system_identifier FROM pg_control_system()');

# an export in progress on the primary while the base backup is taken:
# its intent slot is copied with the data directory, and must not be
# replayed as the standby's own record
my $exporter = $primary->background_psql('postgres');
$exporter->query_safe('BEGIN');
$exporter->query_safe('DECLARE busy_c CURSOR FOR SELECT phone FROM customers');
$exporter->query_safe('FETCH 10 FROM busy_c');

$primary->backup('b1');
$exporter->query_safe('COMMIT');
$exporter->quit;
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
# ship as a member of access_audit_ingest, not as the superuser of
# primary_conninfo
my $ship_conn = 'host=' . $primary->host . ' port=' . $primary->port . ' user=shipper';
$standby->append_conf('postgresql.conf', qq{
access_audit.primary_conninfo = '$ship_conn'
access_audit.server_name = 'replica1'
access_audit.batch_size = 4
});
$standby->start;
$primary->wait_for_catchup($standby);

ok(!$standby->log_contains('interrupted by the crash'),
	"the primary's export in progress is not replayed on the standby");

# reads on the standby: shipped to the primary, with their origin
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id BETWEEN 101 AND 105});
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id = 150});
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
	'flush on the standby returns once the primary holds its records');
is($primary->safe_psql('postgres', qq{
SELECT string_agg(rows || ' ' || origin, ',' ORDER BY seq) FROM access_audit.log
 WHERE origin IS NOT NULL}),
	"5 replica1/$sysid,1 replica1/$sysid",
	'the primary logs both standby reads with rows and origin (server name/system identifier)');
is($primary->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE relations = '{public.customers}' AND columns = '{public.customers.phone}'
                          AND command = 'SELECT' AND outcome = 'ok' AND origin_seq >= 0)
       || ' ' || (min(origin_seq) < max(origin_seq))
  FROM access_audit.log WHERE origin IS NOT NULL}),
	'2 true', 'shipped records keep relation, columns and the standby queue position');
is($standby->safe_psql('postgres', q{
SELECT queued || ' ' || written || ' ' || pending_bytes FROM access_audit.stats}),
	'2 2 0', 'the standby freed its records once the primary committed them');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM access_audit.log WHERE origin IS NOT NULL}),
	'2', 'the standby replayed the primary log holding its reads');

# ingest() is the shipper's door: members of access_audit_ingest only, and
# it refuses what is not a batch of records
my ($ret, $out, $err) = $primary->psql('postgres',
	q{SELECT access_audit.ingest('x/1', 42, '\x00')}, extra_params => [ '-U', 'nobody' ]);
like($err, qr/permission denied for (schema access_audit|function ingest)/, 'ingest() refuses roles outside access_audit_ingest');
($ret, $out, $err) = $primary->psql('postgres',
	q{SELECT access_audit.ingest('x/1', 42, '\x0102')}, extra_params => [ '-U', 'shipper' ]);
like($err, qr/malformed access_audit record batch/, 'ingest() refuses a malformed batch');
($ret, $out, $err) = $primary->psql('postgres', q{
SELECT access_audit.ingest('x/1', (SELECT ring_id FROM access_audit._stats() LIMIT 1), '\x')});
like($err, qr/records of this server's own queue cannot be ingested/,
	"ingest() refuses the primary's own queue");
is($primary->safe_psql('postgres', q{SELECT access_audit.ingest('x/1', 42, '\x')}, extra_params => [ '-U', 'shipper' ]),
	'-1', 'an empty batch for an unknown queue: nothing committed yet');

# the primary is down: reads are still captured and wait on the standby
$primary->stop('fast');
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id = 161});
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id BETWEEN 162 AND 163});
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id BETWEEN 164 AND 166});
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('1 s')}), 'f',
	'with the primary down, flush times out');
is($standby->safe_psql('postgres', q{SELECT pending_bytes > 0 FROM access_audit.stats}), 't',
	'the records wait in the standby queue');
ok($standby->wait_for_log(qr/could not connect to the primary to ship audit records/),
	'the shipper says why it cannot ship');

$primary->start;
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
	'with the primary back, the waiting records are shipped');
is($primary->safe_psql('postgres', q{
SELECT string_agg(rows::text, ',' ORDER BY origin_seq) || ' ' || (count(DISTINCT origin_seq) = count(*))
  FROM access_audit.log WHERE origin IS NOT NULL}),
	'5,1,1,2,3 true', 'all five standby reads, in order, each once');

# more records than a batch (the standby ships four at a time)
$standby->safe_psql('postgres',
	join('', map { "SELECT phone FROM customers WHERE id = $_;\n" } 1 .. 30));
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
	'thirty reads shipped in batches of four');
is($primary->safe_psql('postgres', q{
SELECT count(*) || ' ' || count(DISTINCT origin_seq) FROM access_audit.log WHERE origin IS NOT NULL}),
	'35 35', 'the primary holds 35 standby reads, each once');

# promotion with records pending: the primary is gone for good
$primary->stop('immediate');
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id BETWEEN 171 AND 177});
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id BETWEEN 181 AND 184});
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion did not finish';
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
	'flush on the promoted standby');
is($standby->safe_psql('postgres', q{
SELECT string_agg(rows::text, ',' ORDER BY seq) FROM access_audit.log
 WHERE command = 'SELECT' AND relations = '{public.customers}'}),
	join(',', 1, 10, 5, 1, 1, 2, 3, (1) x 30, 7, 4),
	'the primary reads, the 35 shipped reads and the two pending ones, each once');
is($standby->safe_psql('postgres', q{
SELECT count(*) FILTER (WHERE origin IS NULL) || ' ' || count(*) FILTER (WHERE origin IS NOT NULL)
  FROM access_audit.log WHERE command = 'SELECT' AND rows IN (7, 4)}),
	'2 0', 'reads written after the promotion are local records');
is($standby->safe_psql('postgres', q{SELECT ok FROM access_audit.verify()}), 't',
	'the chain holds across shipping and promotion');

$standby->stop;
done_testing();
