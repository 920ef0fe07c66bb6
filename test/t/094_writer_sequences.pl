# setval() and ALTER SEQUENCE cannot stall the writer (issue 16, item 9):
# dictionary ids are one more than the highest in their table.  A 1.1
# installation has no dictionary sequences at all; in a 1.0 installation
# (its sequences still there, the library already new) turning them back
# or capping them changes nothing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('writer_sequences');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

my $setup = q{
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
GRANT access_audit_app TO CURRENT_USER;
SET access_audit.actor = 'first';
SELECT phone FROM customers WHERE id = 1;
SELECT access_audit.flush('20 s');
};
$node->safe_psql('postgres', 'CREATE DATABASE shop; CREATE DATABASE legacy');
$node->safe_psql('shop', 'CREATE EXTENSION access_audit;' . $setup);
$node->safe_psql('legacy', "CREATE EXTENSION access_audit VERSION '1.0';" . $setup);

is( $node->safe_psql('shop', q{
SELECT count(*) FROM pg_sequences
 WHERE schemaname = 'access_audit'
   AND sequencename IN ('strings_id_seq', 'string_sets_id_seq', 'sessions_id_seq', 'shapes_id_seq')}),
	'0', '1.1 has no dictionary sequences');

# in 1.0: every sequence back to 1, and one that can give no more values
$node->safe_psql('legacy', q{
SELECT setval('access_audit.strings_id_seq', 1);
SELECT setval('access_audit.string_sets_id_seq', 1);
SELECT setval('access_audit.sessions_id_seq', 1);
SELECT setval('access_audit.shapes_id_seq', 1);
});
my ($ret, $out, $err) = $node->psql('legacy',
	'ALTER SEQUENCE access_audit.strings_id_seq MAXVALUE 2');

# new strings, sets, sessions and shapes
$node->safe_psql('legacy', q{
SET access_audit.actor = 'second';
SELECT phone, id FROM customers WHERE id = 2;
});
is($node->safe_psql('legacy', q{SELECT access_audit.flush('20 s')}), 't',
	'flush() returns after setval() on the extension\'s sequences');
is( $node->safe_psql('legacy', q{
SELECT string_agg(actor || ' ' || array_to_string(columns, ','), '; ' ORDER BY seq)
  FROM access_audit.log WHERE command = 'SELECT'}),
	'first public.customers.phone; second public.customers.phone',
	'both reads are recorded with their own values');
is($node->safe_psql('legacy', 'SELECT ok FROM access_audit.verify()'), 't',
	'the chain is whole');

$node->stop;
done_testing();
