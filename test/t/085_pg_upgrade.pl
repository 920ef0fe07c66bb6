# pg_upgrade from the previous major version keeps the audit: the log, its
# hash chain and the tags survive, the chain verifies on the new server and
# new reads extend it.  Reads made just before the old server stopped, not
# yet flushed by a writer, are in the upgraded log too.
#
# Needs the previous major version installed next to the tested one, with
# access_audit built for it: test/run-all.sh sets AA_UPGRADE_FROM_PGBIN
# when /usr/lib/postgresql/<N-1> exists (in the matrix: the 18 chroot
# carries 17 from trixie) and installs the extension there too.  Skipped
# otherwise.
use strict;
use warnings;
use File::Basename qw(dirname);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $oldbin = $ENV{AA_UPGRADE_FROM_PGBIN};
plan skip_all => 'no older PostgreSQL to upgrade from (AA_UPGRADE_FROM_PGBIN)'
  unless $oldbin && -x "$oldbin/pg_ctl";

my $conf = qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
};

# the same checksum setting on both sides (initdb's default changed in 18)
my $old = PostgreSQL::Test::Cluster->new('old', install_path => dirname($oldbin));
$old->init(extra => ['--data-checksums']);
$old->append_conf('postgresql.conf', $conf);
$old->start;

$old->safe_psql('postgres', 'CREATE DATABASE shop');
$old->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO customers SELECT g, 'name ' || g, '555-' || g, 'city' FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
$old->safe_psql('shop', "SELECT phone FROM customers WHERE id = $_") for 1 .. 20;
$old->safe_psql('shop', 'SELECT access_audit.flush()');
my $flushed_head = $old->safe_psql('shop', 'SELECT seq FROM access_audit.chain_head()');
# a read after the last flush: maybe still in the queue when the server stops
$old->safe_psql('shop', 'SELECT phone FROM customers WHERE id < 6');
my $old_version = $old->safe_psql('shop', 'SHOW server_version_num');

my $new = PostgreSQL::Test::Cluster->new('new');
$new->init(extra => ['--data-checksums']);
$new->append_conf('postgresql.conf', $conf);

# Debian's current 15 and 17 builds give every column an attribute option
# "pg_attver" that forky's 18 does not know yet, so pg_upgrade between them
# fails for any database (pg_restore: unrecognized parameter "pg_attver").
# Where the new server lacks the option, drop it from the old server's
# user columns first (the same for every database; nothing of ours).
$new->start;
my ($rc) = $new->psql('postgres',
	'CREATE TEMP TABLE t (a int); ALTER TABLE t ALTER COLUMN a SET (pg_attver = 1)');
$new->stop;
if ($rc != 0)
{
	foreach my $db ('shop', 'postgres', 'template1')
	{
		$old->safe_psql($db, q{
SET allow_system_table_mods = on;
UPDATE pg_catalog.pg_attribute
   SET attoptions = (SELECT pg_catalog.array_agg(o) FROM pg_catalog.unnest(attoptions) o
                      WHERE o NOT LIKE 'pg\_attver=%')
 WHERE attrelid >= 16384 AND attoptions::text LIKE '%pg\_attver=%'});
	}
	note('old server: pg_attver options removed (the new server does not know them)');
}
$old->stop;

my $reads_sql = q{SELECT count(*) FROM access_audit.log
  WHERE command = 'SELECT' AND 'public.customers' = ANY (relations)};

# pg_upgrade writes its logs into the current directory (up to 15) or the
# new data directory: run it from the test's own directory
my $cwd = $new->basedir;
{
	chdir $cwd or die "chdir $cwd: $!";
	my $newbin = $new->config_data('--bindir');
	my $upgraded = run_log(
		[
			"$newbin/pg_upgrade", '--no-sync',
			'-d', $old->data_dir, '-D', $new->data_dir,
			'-b', $oldbin, '-B', $newbin,
			'-s', $new->host, '-p', $old->port, '-P', $new->port,
			'--copy'
		]);
	ok($upgraded, "pg_upgrade from $old_version");
	unless ($upgraded)
	{
		done_testing();
		exit 0;
	}
}

$new->start;
$new->safe_psql('shop', 'SELECT access_audit.flush()');
is($new->safe_psql('shop', $reads_sql), '21', 'the upgraded log has every read');
is( $new->safe_psql('shop', q{
SELECT string_agg(rows::text, ',' ORDER BY seq) FROM access_audit.log
 WHERE command = 'SELECT' AND 'public.customers' = ANY (relations)
   AND seq > } . $flushed_head),
	'5', 'with the read made after the last flush on the old server');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'the upgraded chain verifies');
is( $new->safe_psql('shop', q{
SELECT string_agg("table" || '.' || "column" || '=' || tag, ',')
  FROM access_audit.tagged_columns}),
	'customers.phone=pii', 'the tags survive');

# the new server audits at once and extends the same chain
$new->safe_psql('shop', 'SELECT phone FROM customers WHERE id = 42');
$new->safe_psql('shop', 'SELECT access_audit.flush()');
is($new->safe_psql('shop', $reads_sql), '22', 'a read after the upgrade is recorded');
is($new->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'),
	't', 'the extended chain verifies');

$new->stop;
done_testing();
