# pg_upgrade keeps the audit history: the log, its dictionaries and the
# roll-up are ordinary relations whose files pg_upgrade carries over, and
# binary-upgrade mode is not refused by the guard (the module stays out of
# the way while IsBinaryUpgrade).  Tested between two clusters of this
# server version (15 -> 15); an upgrade across versions works the same way
# with -b and -B naming the two installations.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $conf = qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
};

my $old = PostgreSQL::Test::Cluster->new('old');
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE shop');
$old->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 50) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('bob', 'ops');
});
$old->safe_psql('shop', q{
SET access_audit.actor = 'bob';
SELECT phone FROM customers WHERE id < 5;
SELECT phone FROM customers;
});
$old->safe_psql('shop', 'SELECT access_audit.flush()');

my $records_sql = q{SELECT count(*) || ' ' || string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
  FROM access_audit.log_data};
my $daily_sql = q{SELECT string_agg(actor || '/' || relation || '/' || rows || '/' || statements, ',' ORDER BY actor, relation)
  FROM access_audit.actor_daily};
my $old_records = $old->safe_psql('shop', $records_sql);
my $old_daily = $old->safe_psql('shop', $daily_sql);
my $old_head = $old->safe_psql('shop', 'SELECT seq FROM access_audit.chain_head()');
ok($old_head >= 3, "the old cluster has records (head at seq $old_head)");

# a clean shutdown drains the queue into the log first
$old->stop;

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', $conf);

my $bindir = $new->config_data('--bindir');
chdir ${PostgreSQL::Test::Utils::tmp_check};
command_ok(
	[
		'pg_upgrade', '--no-sync',
		'-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir,
		'-s', $new->host,
		'-p', $old->port, '-P', $new->port
	],
	'pg_upgrade of a cluster with access_audit');

$new->start;
is($new->safe_psql('shop', $records_sql),
	$old_records, 'every record kept with its seq and hash');
is($new->safe_psql('shop', $daily_sql), $old_daily, 'actor_daily kept');
is( $new->safe_psql('shop', 'SELECT string_agg(actor || \'=\' || peer_group, \',\') FROM access_audit.actor_groups'),
	'bob=ops', 'actor_groups kept');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'verify() passes after pg_upgrade');

# the upgraded cluster audits, and continues the chain
$new->safe_psql('shop', 'SELECT phone FROM customers WHERE id = 9');
$new->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is( $new->safe_psql('shop', qq{
SELECT min(seq) || ' ' || count(*) FROM access_audit.log
 WHERE seq > $old_head AND command = 'SELECT' AND columns = '{public.customers.phone}'}),
	($old_head + 1) . ' 1', 'the next read continues the sequence');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'the chain verifies across the upgrade');
is( $new->safe_psql('shop', 'SELECT string_agg(tag, \',\') FROM access_audit.tagged_columns'),
	'pii', 'tags kept');

$new->stop;
done_testing();
