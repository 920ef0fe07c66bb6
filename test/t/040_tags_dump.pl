# Tags are security labels, so pg_dump carries them: a dump and restore into
# a fresh database keeps every tag, and the restored database audits reads
# at once.  The dump itself is a read of tagged data and is recorded.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO customers SELECT g, 'name ' || g, '555-' || g, 'city' FROM generate_series(1, 250) g;
CREATE TABLE orders (id int, card text) PARTITION BY RANGE (id);
CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (0) TO (1000);
INSERT INTO orders VALUES (1, '4111');
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
SECURITY LABEL FOR access_audit ON COLUMN customers.full_name IS 'pii:name';
SECURITY LABEL FOR access_audit ON TABLE orders IS 'pci';
});
# the dump must hold the three tag changes: wait until they are written
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});

my $dump = $node->basedir . '/shop.dump';
{
	# let pg_dump name itself, as it does for real users
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};
	$node->command_ok(
		[ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('shop') ],
		'pg_dump of a database with tagged tables');
}

# the dump read the tagged tables: recorded as COPY with all rows
$node->safe_psql('shop', 'SELECT access_audit.flush()');
is( $node->safe_psql('shop', q{
SELECT string_agg(relations[1] || ':' || rows || ':' || application_name, ',' ORDER BY relations[1])
  FROM access_audit.log WHERE command = 'COPY'}),
	'public.customers:250:pg_dump,public.orders_1:1:pg_dump',
	'pg_dump reads are recorded with their row counts');

$node->safe_psql('postgres', 'CREATE DATABASE shop2');
$node->command_ok(
	[ 'pg_restore', '-d', $node->connstr('shop2'), $dump ],
	'pg_restore into a fresh database');

is( $node->safe_psql('shop2', q{
SELECT string_agg("table" || '.' || "column" || '=' || tag, ',' ORDER BY "table", "column")
  FROM access_audit.tagged_columns}),
	'customers.full_name=pii:name,customers.phone=pii,orders.card=pci,orders.id=pci,orders_1.card=pci,orders_1.id=pci',
	'tags survive dump and restore');

$node->safe_psql('shop2', 'SELECT phone FROM customers WHERE id = 7');
$node->safe_psql('shop2', 'SELECT access_audit.flush()');
is( $node->safe_psql('shop2', q{
SELECT columns::text || ' ' || rows FROM access_audit.log WHERE command = 'SELECT'}),
	'{public.customers.phone} 1',
	'reads in the restored database are audited');
# the restored log holds the source's own tag changes; restoring the labels
# adds three more after the restored head
is( $node->safe_psql('shop2', q{
SELECT count(*) FILTER (WHERE seq <= h) || ' ' || count(*) FILTER (WHERE seq > h)
  FROM access_audit.tag_changes,
       (SELECT (detail::jsonb ->> 'head_seq')::bigint AS h FROM access_audit.log
         WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE') r}),
	'3 3', 'restoring the labels is recorded as tag changes');

$node->stop;
done_testing();
