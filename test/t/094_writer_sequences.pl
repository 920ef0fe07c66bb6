# setval() and ALTER SEQUENCE on the extension's sequences cannot stall
# the writer (issue 16, item 9): dictionary ids are one more than the
# highest in their table, so the sequences are not used at all.
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

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
GRANT access_audit_app TO CURRENT_USER;
SET access_audit.actor = 'first';
SELECT phone FROM customers WHERE id = 1;
SELECT access_audit.flush('20 s');
});

# every sequence back to 1, and one that can give no more values
my ($ret, $out, $err) = $node->psql('shop', q{
SELECT setval('access_audit.strings_id_seq', 1);
SELECT setval('access_audit.string_sets_id_seq', 1);
SELECT setval('access_audit.sessions_id_seq', 1);
SELECT setval('access_audit.shapes_id_seq', 1);
});
($ret, $out, $err) = $node->psql('shop',
	'ALTER SEQUENCE access_audit.strings_id_seq MAXVALUE 2');

# new strings, sets, sessions and shapes
$node->safe_psql('shop', q{
SET access_audit.actor = 'second';
SELECT phone, id FROM customers WHERE id = 2;
});
is($node->safe_psql('shop', q{SELECT access_audit.flush('20 s')}), 't',
	'flush() returns after setval() on the extension\'s sequences');
is( $node->safe_psql('shop', q{
SELECT string_agg(actor || ' ' || array_to_string(columns, ','), '; ' ORDER BY seq)
  FROM access_audit.log WHERE command = 'SELECT'}),
	'first public.customers.phone; second public.customers.phone',
	'both reads are recorded with their own values');
is($node->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'), 't',
	'the chain is whole');

$node->stop;
done_testing();
