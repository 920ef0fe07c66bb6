# On a hot standby, reads are captured and held safely in the standby's own
# queue (a standby cannot write tables); after promotion the new primary
# writes them, exactly once.  A base backup does not carry the primary's
# pending records over to the standby.
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
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
SELECT phone FROM customers WHERE id = 1;
SELECT access_audit.flush();
});

$primary->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b1', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# reads on the standby: captured, held in the queue, no writer runs there
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id < 6});
$standby->safe_psql('postgres', q{SELECT phone FROM customers WHERE id = 50});
is($standby->safe_psql('postgres',
	q{SELECT queued || ' ' || written || ' ' || (writer_pid IS NULL) || ' ' || (pending_bytes > 0) FROM access_audit.stats}),
	'2 0 true true', 'standby holds its two records in the queue');
is($standby->safe_psql('postgres', q{SELECT count(*) FROM access_audit.log}),
	'2', 'standby log shows only what the primary wrote (tag change and one read)');

# promotion: the new primary writes the held records once
$standby->promote;
$standby->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()')
  or die 'promotion did not finish';
is($standby->safe_psql('postgres', q{SELECT access_audit.flush('30 s')}), 't',
	'flush on the promoted standby');
is($standby->safe_psql('postgres', q{
SELECT string_agg(rows::text, ',' ORDER BY seq) FROM access_audit.log
 WHERE command = 'SELECT' AND backend_pid <> 0}),
	'1,5,1', 'the primary read plus the two standby reads, each once');
is($standby->safe_psql('postgres', q{SELECT ok FROM access_audit.verify()}), 't',
	'chain continues across the promotion');

$standby->stop;
$primary->stop;
done_testing();
