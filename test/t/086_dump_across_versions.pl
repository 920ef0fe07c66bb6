# Audit history written by one major version is read by the next: a
# database dumped from a server of the previous major version (with this
# version's pg_dump, as PostgreSQL advises) and restored into a server of
# this version keeps every record with its seq and hash, verify() passes,
# the tags are there, and new reads continue the chain.
#
# Needs the previous major version installed next to the tested one, with
# access_audit built for it (AA_UPGRADE_FROM_PGBIN, set by test/run-all.sh;
# in the matrix: 15 in the 17 chroot, 17 in the 18 chroot).  Skipped
# otherwise.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $oldbin = $ENV{AA_UPGRADE_FROM_PGBIN};
plan skip_all => 'no older PostgreSQL to dump from (AA_UPGRADE_FROM_PGBIN)'
  unless $oldbin && -x "$oldbin/pg_ctl";

my $conf = qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
};

my $old = PostgreSQL::Test::Cluster->new('old', install_path => dirname($oldbin));
$old->init;
$old->append_conf('postgresql.conf', $conf);
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE shop');
$old->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text, city text);
INSERT INTO customers SELECT g, '555-' || g, 'city' FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
$old->safe_psql('shop', "SELECT phone FROM customers WHERE id < $_") for 2 .. 11;
$old->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
my $old_version = $old->safe_psql('shop', 'SHOW server_version_num');

my $records_sql = q{SELECT count(*) || ' ' || string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
  FROM access_audit.log_data};
my $records = $old->safe_psql('shop', $records_sql);
my $head = $old->safe_psql('shop', 'SELECT seq FROM access_audit.chain_head()');
ok($head >= 10, "the $old_version server logged the reads (head at seq $head)");

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init;
$new->append_conf('postgresql.conf', $conf);
$new->start;

# Debian's current 15 and 17 builds give every column an attribute option
# "pg_attver" that forky's 18 does not know yet, so their dumps do not
# restore there (unrecognized parameter "pg_attver"), whatever the
# database.  Where this server lacks the option, drop it from the old
# server's user columns first (nothing of ours; see 085_pg_upgrade.pl).
my ($rc) = $new->psql('postgres',
	'CREATE TEMP TABLE t (a int); ALTER TABLE t ALTER COLUMN a SET (pg_attver = 1)');
if ($rc != 0)
{
	$old->safe_psql('shop', q{
SET allow_system_table_mods = on;
UPDATE pg_catalog.pg_attribute
   SET attoptions = (SELECT pg_catalog.array_agg(o) FROM pg_catalog.unnest(attoptions) o
                      WHERE o NOT LIKE 'pg\_attver=%')
 WHERE attrelid >= 16384 AND attoptions::text LIKE '%pg\_attver=%'});
	note('old server: pg_attver options removed (this server does not know them)');
}

# this version's pg_dump and pg_restore (the new node's installation)
my $dump = $new->basedir . '/shop.dump';
$new->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $old->connstr('shop') ],
	"pg_dump of the $old_version database");
$new->safe_psql('postgres', 'CREATE DATABASE shop');
$new->command_ok([ 'pg_restore', '--exit-on-error', '-d', $new->connstr('shop'), $dump ],
	'pg_restore into this version');

$new->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($new->safe_psql('shop', $records_sql . " WHERE seq <= $head"),
	$records, 'every record restored with its seq and hash');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'verify() passes on the restored log');
is( $new->safe_psql('shop', q{
SELECT string_agg("table" || '.' || "column" || '=' || tag, ',')
  FROM access_audit.tagged_columns}),
	'customers.phone=pii', 'the tags are restored');

$new->safe_psql('shop', 'SELECT phone FROM customers WHERE id = 42');
$new->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is( $new->safe_psql('shop', qq{
SELECT count(*) FROM access_audit.log
 WHERE seq > $head AND command = 'SELECT' AND rows = 1
   AND columns = '{public.customers.phone}'}),
	'1', 'a read after the restore is recorded');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'the chain verifies across the restore');

$old->stop;
$new->stop;
done_testing();
