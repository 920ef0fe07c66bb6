# The audit history survives pg_dump and restore: into a new database of
# the same server (custom format, pg_restore) and into a new server (plain
# format, psql).  Every record comes back with its seq and hash, verify()
# passes, the restore is recorded with the chain head it restored, and the
# next records continue the chain.  A dump whose audit records were changed
# fails to restore, with a clear message.
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

my $node = PostgreSQL::Test::Cluster->new('source');
$node->init;
$node->append_conf('postgresql.conf', $conf);
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text, city text);
INSERT INTO customers SELECT g, '555-' || g, 'city' FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
INSERT INTO access_audit.actor_groups (actor, peer_group) VALUES ('alice', 'sales');
});
$node->safe_psql('shop', q{
SET access_audit.actor = 'alice';
SELECT phone FROM customers WHERE id < 10;
SELECT phone FROM customers;
SELECT count(phone) FROM customers WHERE city = 'city';
});
$node->safe_psql('shop', 'SELECT access_audit.flush()');

# what the source holds: every record with its hash, and the roll-up
my $records_sql = q{SELECT count(*) || ' ' || string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
  FROM access_audit.log_data};
my $daily_sql = q{SELECT string_agg(actor || '/' || relation || '/' || rows || '/' || statements, ',' ORDER BY actor, relation)
  FROM access_audit.actor_daily};
my $groups_sql = q{SELECT string_agg(actor || '=' || peer_group, ',' ORDER BY actor) FROM access_audit.actor_groups};
my ($source_records, $source_daily, $head_seq, $head_hash, $source_parts);

# what the source holds when it is dumped (its dump's own reads come after)
sub source_state
{
	$node->safe_psql('shop', 'SELECT access_audit.flush()');
	$source_records = $node->safe_psql('shop', $records_sql);
	$source_daily = $node->safe_psql('shop', $daily_sql);
	# the log's partitions, each restored as a table of its own
	$source_parts = $node->safe_psql('shop', 'SELECT count(*) FROM access_audit._log_partitions()');
	($head_seq, $head_hash) = split /\|/,
	  $node->safe_psql('shop', q{SELECT seq, encode(hash, 'hex') FROM access_audit.chain_head()});
	ok($head_seq >= 4, "source has records (head at seq $head_seq)");
}

# checks for a restored database
sub check_restored
{
	my ($n, $db, $how) = @_;

	$n->safe_psql($db, q{SELECT access_audit.flush('60 s')});
	is( $n->safe_psql($db, $records_sql . " WHERE seq <= $head_seq"),
		$source_records, "$how: every record restored with its seq and hash");
	is($n->safe_psql($db, 'SELECT ok FROM access_audit.verify()'),
		't', "$how: verify() passes on the restored log");
	is( $n->safe_psql($db, $daily_sql), $source_daily,
		"$how: actor_daily restored");
	is($n->safe_psql($db, $groups_sql), 'alice=sales',
		"$how: actor_groups restored");
	is( $n->safe_psql($db, q{
SELECT (detail::jsonb ->> 'head_seq') || ' ' || (detail::jsonb ->> 'head_hash') || ' '
       || (detail::jsonb ->> 'records') || ' ' || login_role
  FROM access_audit.log
 WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE'}),
		"$head_seq $head_hash $head_seq " . $n->safe_psql($db, 'SELECT current_user'),
		"$how: the restore is recorded with its chain head and restorer");
	is( $n->safe_psql($db, q{
SELECT count(*) FROM access_audit.log
 WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE TABLE'}),
		20 + $source_parts, "$how: each restored table (and partition of the log) is recorded");
	ok( $n->safe_psql($db, "SELECT min(seq) FROM access_audit.log_data WHERE seq > $head_seq")
		  == $head_seq + 1,
		"$how: the next record continues the sequence");

	# new reads continue the chain
	$n->safe_psql($db, 'SELECT phone FROM customers WHERE id = 7');
	$n->safe_psql($db, q{SELECT access_audit.flush('60 s')});
	is( $n->safe_psql($db, qq{
SELECT count(*) FROM access_audit.log
 WHERE seq > $head_seq AND command = 'SELECT' AND rows = 1
   AND columns = '{public.customers.phone}'}),
		'1', "$how: reads after the restore are recorded");
	is($n->safe_psql($db, 'SELECT ok FROM access_audit.verify()'),
		't', "$how: the chain verifies across the restore");
	is( $n->safe_psql($db, q{
SELECT count(*) FROM access_audit.log_data a JOIN access_audit.log_data b ON b.seq = a.seq + 1}),
		$n->safe_psql($db, 'SELECT count(*) - 1 FROM access_audit.log_data'),
		"$how: seq has no gaps");
}

# 1. custom format, pg_restore into a new database of the same server
my $dump = $node->basedir . '/shop.dump';
source_state();
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('shop') ],
	'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE shop2');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('shop2'), $dump ],
	'pg_restore into a new database');
check_restored($node, 'shop2', 'pg_restore');

# 2. plain format, psql into a new server
my $plain = $node->basedir . '/shop.sql';
source_state();
$node->command_ok([ 'pg_dump', '-Fp', '-f', $plain, '-d', $node->connstr('shop') ],
	'pg_dump -Fp');
my $other = PostgreSQL::Test::Cluster->new('target');
$other->init;
$other->append_conf('postgresql.conf', $conf);
$other->start;
$other->safe_psql('postgres', 'CREATE DATABASE shop');
$other->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $other->connstr('shop'), '-f', $plain ],
	'psql of a plain dump into a new server');
check_restored($other, 'shop', 'psql into a new server');

# 3. a dump whose audit records were changed does not restore
my $text = slurp_file($plain);
my $changed = 0;
$text =~ s{(COPY access_audit\.log_data_p\d+ \([^)]*\) FROM stdin;\n1\t)\d{4}}
          {$changed = 1; $1 . '2020'}e;
ok($changed, 'the time of the first record was changed in the dump');
my $tampered = $node->basedir . '/tampered.sql';
open(my $fh, '>', $tampered) or die "could not write $tampered: $!";
print $fh $text;
close($fh);
$other->safe_psql('postgres', 'CREATE DATABASE shop3');
my ($stdout, $stderr);
my $rc = $other->psql('shop3', undef,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $tampered ],
	stdout => \$stdout, stderr => \$stderr);
isnt($rc, 0, 'restoring a tampered dump fails');
like($stderr, qr/restored audit log does not verify/, 'with a clear message');
like($stderr, qr/At record 1:/, 'naming the first changed record');
$other->safe_psql('shop3', q{SELECT access_audit.flush('60 s')});
is( $other->safe_psql('shop3', q{
SELECT count(*) FROM access_audit.log
 WHERE command = 'REFUSED' AND detail::jsonb ->> 'action' = 'RESTORE'}),
	'1', 'the refused restore is recorded');

# 4. COPY into the log outside a restore is still refused, also for a superuser
my ($out2, $err2);
$node->psql('shop2', "COPY access_audit.log_data FROM stdin;\n\\.\n",
	stdout => \$out2, stderr => \$err2);
like($err2, qr/COPY FROM on "access_audit.log_data" is not allowed/,
	'a COPY into the log that is no restore is refused');

# 5. a restore into a log that already has records is refused
my ($out3, $err3);
$rc = $node->psql('shop2', undef,
	on_error_stop => 0,
	extra_params => [ '-f', $plain ],
	stdout => \$out3, stderr => \$err3);
like( $err3,
	qr/cannot restore audit records into "access_audit\.\w+": it is not empty/,
	'restoring over an existing log is refused');
is($node->safe_psql('shop2', 'SELECT ok FROM access_audit.verify()'), 't',
	'and the existing log is intact');

# 6. nor can a superuser pass off rows of the other tables as a restore;
# and the refusal does not keep the writer waiting for the rest of the
# session
my ($out4, $err4);
$node->psql('shop2', q{SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = off;
COPY access_audit.actor_daily (day, actor, relation, rows) FROM stdin;
2020-01-01	mallory	public.customers	1
\.
SELECT phone FROM public.customers WHERE id = 5;
SELECT 'flushed ' || access_audit.flush('20 s');
},
	on_error_stop => 0,
	stdout => \$out4, stderr => \$err4);
like( $err4,
	qr/cannot restore audit records into "access_audit\.actor_daily": it is not empty/,
	'a COPY into actor_daily that looks like a restore is refused where it has rows');
is( $node->safe_psql('shop2', q{SELECT count(*) FROM access_audit.actor_daily WHERE actor = 'mallory'}),
	'0', 'and adds nothing');
like($out4, qr/flushed true/, 'the session that was refused still gets its records written');

# 7. a log cut by retention, restored in one transaction: the checkpoint
# comes along and the chain verifies from it
$node->safe_psql('postgres', 'CREATE DATABASE archive');
$node->safe_psql('archive', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
$node->safe_psql('archive', 'SELECT phone FROM customers') for 1 .. 3;
$node->safe_psql('archive', 'SELECT access_audit.flush()');
$node->safe_psql('archive', q{
SET access_audit.maintenance = on;
SELECT access_audit.drop_before(now());
});
$node->safe_psql('archive', 'SELECT phone FROM customers WHERE id = 2') for 1 .. 2;
$node->safe_psql('archive', 'SELECT access_audit.flush()');
my $archive_records = $node->safe_psql('archive', $records_sql);
my ($archive_head, $archive_n) = split /\|/,
  $node->safe_psql('archive', 'SELECT max(seq), count(*) FROM access_audit.log_data');
ok($node->safe_psql('archive', 'SELECT min(seq) > 1 FROM access_audit.log_data') eq 't',
	'the source log starts after a retention cut');
my $dump_a = $node->basedir . '/archive.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump_a, '-d', $node->connstr('archive') ],
	'pg_dump -Fc of a log cut by retention');
$node->safe_psql('postgres', 'CREATE DATABASE archive2');
$node->command_ok(
	[ 'pg_restore', '--single-transaction', '-d', $node->connstr('archive2'), $dump_a ],
	'pg_restore --single-transaction');
$node->safe_psql('archive2', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('archive2', $records_sql . " WHERE seq <= $archive_head"),
	$archive_records, 'retention: every kept record restored');
is($node->safe_psql('archive2', 'SELECT count(*) FROM access_audit.chain_checkpoints'),
	'1', 'retention: the checkpoint restored');
is($node->safe_psql('archive2', 'SELECT ok FROM access_audit.verify()'),
	't', 'retention: the chain verifies from the checkpoint');
is( $node->safe_psql('archive2', q{
SELECT (detail::jsonb ->> 'records') || ' ' || (detail::jsonb ->> 'head_seq') FROM access_audit.log
 WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE'}),
	"$archive_n $archive_head", 'retention: the restore is recorded with its head');

$other->stop;
$node->stop;
done_testing();
