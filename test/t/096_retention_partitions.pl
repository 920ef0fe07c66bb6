# The log is range-partitioned by seq (extension/partition.c), and
# retention drops whole partitions below its cut (drop_before() in
# extension/sql/90_guard.sql).  With partitions of 10 records:
#   - the writer makes the partitions ahead of need, and every record lands
#     in the partition of its seq;
#   - drop_before() with the cut inside a partition, on a partition
#     boundary, and of everything: the same result as the row-by-row
#     delete it replaces (return value, checkpoint row, records kept,
#     verify()), and records written after the cut continue the chain;
#   - a reader holding a lock on the log does not stall the writer: records
#     go to the default partition meanwhile, none is lost, the chain
#     verifies, and retention removes them too;
#   - nobody the guard watches may drop, detach, attach, truncate or
#     change partitions of the log, superusers included;
#   - pg_dump and restore (custom format with pg_restore, plain with psql)
#     of a log of several partitions: every record, verify(), the
#     partitions with their bounds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('parts');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
access_audit.partition_size = 10
max_worker_processes = 16
log_statement = none
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
CREATE ROLE clerk LOGIN;
GRANT access_audit_reader TO clerk;
});

# n reads of the tagged column, one record each, then flush
sub reads
{
	my ($n) = @_;
	my $sql = join('', map { "SELECT phone FROM customers WHERE id = $_;\n" } 1 .. $n);
	$node->safe_psql('shop', $sql);
	is($node->safe_psql('shop', q{SELECT access_audit.flush('60 s')}), 't', "$n reads written");
}

sub sq { return $node->safe_psql('shop', $_[0]); }

# which partition holds which seqs up to seq n: "name:min-max" in seq order
sub layout_sql
{
	my ($n) = @_;
	return qq{SELECT string_agg(t.p || ':' || t.lo || '-' || t.hi, ' ' ORDER BY t.lo)
  FROM (SELECT tableoid::regclass::text AS p, min(seq) AS lo, max(seq) AS hi
          FROM access_audit.log_data WHERE seq <= $n GROUP BY 1) t};
}

# 1. partitions ahead of need, each record in its own seq's partition
reads(35);
my $head = sq('SELECT max(seq) FROM access_audit.log_data');
cmp_ok($head, '>=', 35, "log has records (head at $head)");
is( sq(q{SELECT count(*) FROM access_audit.log_data_default}), '0',
	'no record went to the default partition');
is( sq(q{SELECT count(*) FROM access_audit._log_partitions()
         WHERE end_seq IS NOT NULL AND end_seq - first_seq <> 10}), '0',
	'partitions are access_audit.partition_size records wide');
is( sq(q{SELECT count(*) FROM access_audit.log_data d
         JOIN access_audit._log_partitions() p ON p.partition = d.tableoid::regclass
        WHERE NOT (d.seq >= p.first_seq AND d.seq < p.end_seq)}), '0',
	'every record is in the partition of its seq');
cmp_ok( sq(q{SELECT max(end_seq) FROM access_audit._log_partitions()}),
	'>', $head + 5, 'the next partition exists before it is needed');
is(sq('SELECT ok FROM access_audit.verify()'), 't', 'verify() passes over partitions');

# drop_before(ts) at the time just after record k: the expected result,
# computed as the row-by-row delete it replaces would have it
sub cut_at
{
	my ($k, $what) = @_;
	my $ts = defined $k
	  ? sq("SELECT ts + interval '1 microsecond' FROM access_audit.log_data WHERE seq = $k")
	  : sq('SELECT clock_timestamp()');
	my $cut = sq(qq{SELECT coalesce((SELECT max(seq) FROM access_audit.log_data
                    WHERE seq < (SELECT min(seq) FROM access_audit.log_data WHERE ts >= '$ts')),
                   (SELECT max(seq) FROM access_audit.log_data))});
	my $removed = sq("SELECT count(*) FROM access_audit.log_data WHERE seq <= $cut");
	my $now = sq('SELECT max(seq) FROM access_audit.log_data');
	my $kept = sq(qq{SELECT string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
                     FROM access_audit.log_data WHERE seq > $cut AND seq <= $now});
	my $cut_hash = sq("SELECT encode(hash, 'hex') FROM access_audit.log_data WHERE seq = $cut");
	my $got = sq(qq{SET access_audit.maintenance = on;
SELECT access_audit.drop_before('$ts');});
	is($got, $removed, "$what: returns the number of records removed ($removed, cut at $cut)");
	is( sq(qq{SELECT encode(hash, 'hex') FROM access_audit.chain_checkpoints WHERE seq = $cut}),
		$cut_hash, "$what: the checkpoint keeps the last removed record's hash");
	is( sq(qq{SELECT string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
               FROM access_audit.log_data WHERE seq > $cut AND seq <= $now}),
		$kept, "$what: every record after the cut is kept as it was");
	is(sq("SELECT count(*) FROM access_audit.log_data WHERE seq <= $cut"),
		'0', "$what: nothing at or before the cut is left");
	is( sq(qq{SELECT count(*) FROM access_audit._log_partitions() WHERE end_seq <= $cut + 1}),
		'0', "$what: partitions wholly below the cut are dropped");
	is(sq('SELECT ok FROM access_audit.verify()'), 't', "$what: verify() passes");
	return $cut;
}

# 2. the cut inside a partition: rows deleted there, the partitions below dropped
my $cut = cut_at(15, 'cut inside a partition');
my ($lo, $hi) = split /\|/, sq(qq{SELECT first_seq, end_seq FROM access_audit._log_partitions()
                                 WHERE first_seq <= $cut + 1 AND end_seq > $cut + 1});
ok(defined $lo && $lo <= $cut, "the partition the cut fell into ($lo to $hi) is kept");

# 3. the cut on a partition boundary
my $boundary = sq(qq{SELECT min(end_seq) - 1 FROM access_audit._log_partitions()
                    WHERE end_seq - 1 > $cut AND end_seq - 1 < $head});
$cut = cut_at($boundary, 'cut on a partition boundary');
is($cut, $boundary, 'the cut is the last record of a partition');

# 4. records after the cut continue the chain
reads(12);
is( sq(qq{SELECT min(seq) FROM access_audit.log_data}), $cut + 1,
	'the log goes on right after the cut');
is(sq('SELECT ok FROM access_audit.verify()'), 't', 'verify() passes across the cut');

# 5. a reader holding the log (and with it the default partition) does not
# stall the writer: partitions cannot be attached meanwhile, the records go
# to the default partition, none is lost
my $reader = $node->background_psql('shop');
$reader->query_safe('SET ROLE clerk; BEGIN; SELECT count(*) FROM access_audit.log_data;');
my $before = sq('SELECT max(seq) FROM access_audit.log_data');
reads(30);
is( sq(qq{SELECT count(*) FROM access_audit.log_data WHERE seq > $before}),
	sq(qq{SELECT max(seq) - $before FROM access_audit.log_data}),
	'every record written while a reader held the log, without gaps');
cmp_ok(sq('SELECT count(*) FROM access_audit.log_data_default'), '>', 0,
	'records that found no partition went to the default partition');
$reader->query_safe('COMMIT;');
$reader->quit;
is(sq('SELECT ok FROM access_audit.verify()'), 't', 'verify() passes with records in the default partition');
$head = sq('SELECT max(seq) FROM access_audit.log_data');
# (each poll reads the tagged column: the writer has records to write)
ok( $node->poll_query_until('shop', qq{SELECT count(*) > 0
  FROM access_audit._log_partitions() p, (SELECT phone FROM customers WHERE id = 1) c
 WHERE p.first_seq > $head}),
	'once the reader is gone, partitions are made again');
sq(q{SELECT access_audit.flush('60 s')});
$head = sq('SELECT max(seq) FROM access_audit.log_data');
reads(5);
is( sq(qq{SELECT count(*) FROM access_audit.log_data_default WHERE seq > $head}),
	'0', 'and records go to them');
is(sq('SELECT ok FROM access_audit.verify()'), 't', 'verify() passes');

# 6. the guard: no partition of the log may be dropped, detached,
# attached, truncated or changed outside maintenance mode, superuser or not
my $part = sq(q{SELECT partition FROM access_audit._log_partitions() WHERE first_seq IS NOT NULL
                ORDER BY first_seq LIMIT 1});
my @refused = (
	[ "DROP TABLE $part", qr/DROP on "\Q$part\E" is not allowed/ ],
	[ "ALTER TABLE access_audit.log_data DETACH PARTITION $part",
		qr/DETACH PARTITION on "\Q$part\E" is not allowed/ ],
	[ 'ALTER TABLE access_audit.log_data DETACH PARTITION access_audit.log_data_default',
		qr/DETACH PARTITION on "access_audit.log_data_default" is not allowed/ ],
	[ q{CREATE TABLE stray (LIKE access_audit.log_data);
        ALTER TABLE access_audit.log_data ATTACH PARTITION stray FOR VALUES FROM (1000000) TO (2000000)},
		qr/ALTER on "access_audit.log_data" is not allowed/ ],
	[ 'CREATE TABLE stray2 PARTITION OF access_audit.log_data FOR VALUES FROM (2000000) TO (3000000)',
		qr/INHERIT on "access_audit.log_data" is not allowed/ ],
	[ "CREATE TABLE access_audit.log_data_p9000000 (LIKE access_audit.log_data)",
		qr/is not allowed/ ],
	[ "TRUNCATE $part", qr/TRUNCATE on "\Q$part\E" is not allowed/ ],
	[ "DELETE FROM $part", qr/is not allowed/ ],
	[ "ALTER TABLE $part DISABLE TRIGGER guard", qr/DISABLE TRIGGER on "\Q$part\E" is not allowed/ ],
	[ "COPY $part FROM stdin;\n\\.\n", qr/COPY FROM on "\Q$part\E" is not allowed/ ],
	[ 'DROP TABLE access_audit.log_data_default', qr/DROP on "access_audit.log_data_default" is not allowed/ ],
);
my $count_before = sq('SELECT count(*) FROM access_audit.log_data');
my $mark = sq('SELECT max(seq) FROM access_audit.log_data');
my $parts_sql_upto = qq{SELECT string_agg(partition::text, ' ' ORDER BY partition::text)
  FROM access_audit._log_partitions() WHERE first_seq IS NULL OR first_seq <= $mark};
my $parts_before = sq($parts_sql_upto);
foreach my $r (@refused)
{
	my ($sql, $re) = @$r;
	my ($out, $err);
	$node->psql('shop', $sql, stdout => \$out, stderr => \$err);
	like($err, $re, "refused: " . (split /\n/, $sql)[-1]);
}
is(sq("SELECT count(*) FROM access_audit.log_data WHERE seq <= $mark"), $count_before, 'no record went');
is(sq($parts_sql_upto), $parts_before, 'no partition changed');
sq(q{SELECT access_audit.flush('60 s')});
cmp_ok( sq(qq{SELECT count(*) FROM access_audit.log WHERE command = 'REFUSED' AND seq > $mark}),
	'>=', scalar(@refused), 'each refusal is recorded');

# 7. retention over records in the default partition: deleted there too
my $in_default = sq('SELECT max(seq) FROM access_audit.log_data_default');
ok($in_default, 'the default partition has records before the cut');
$cut = cut_at($in_default, 'cut above records in the default partition');
is(sq("SELECT count(*) FROM access_audit.log_data_default WHERE seq <= $cut"), '0',
	'the default partition has nothing left at or before the cut');

# 8. dump and restore of a log of several partitions
reads(25);
my $records_sql = q{SELECT count(*) || ' ' || string_agg(seq || ':' || encode(hash, 'hex'), ',' ORDER BY seq)
  FROM access_audit.log_data};
my $parts_sql = q{SELECT string_agg(partition::text || ':' || first_seq || '-' || end_seq, ' ' ORDER BY first_seq)
  FROM access_audit._log_partitions() WHERE first_seq IS NOT NULL};
my $src_records = sq($records_sql);
my $src_head = sq('SELECT max(seq) FROM access_audit.log_data');
my $src_parts = sq($parts_sql);
my $src_layout = sq(layout_sql($src_head));
cmp_ok(sq('SELECT count(*) FROM access_audit._log_partitions() WHERE first_seq IS NOT NULL'),
	'>=', 3, "the dumped log has several partitions ($src_parts)");

my $dump = $node->basedir . '/parts.dump';
my $plain = $node->basedir . '/parts.sql';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('shop') ], 'pg_dump -Fc');
$node->command_ok([ 'pg_dump', '-Fp', '-f', $plain, '-d', $node->connstr('shop') ], 'pg_dump -Fp');

sub check_restored
{
	my ($db, $how) = @_;
	$node->safe_psql($db, q{SELECT access_audit.flush('60 s')});
	is($node->safe_psql($db, $records_sql . " WHERE seq <= $src_head"), $src_records,
		"$how: every record restored with its seq and hash");
	is($node->safe_psql($db, layout_sql($src_head)), $src_layout,
		"$how: each record in the partition it was in");
	like($node->safe_psql($db, $parts_sql), qr/^\Q$src_parts\E/,
		"$how: the partitions with their bounds");
	is($node->safe_psql($db, 'SELECT ok FROM access_audit.verify()'), 't',
		"$how: verify() passes");
	is( $node->safe_psql($db, q{SELECT count(*) FROM access_audit.log
         WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE'}),
		'1', "$how: the restore is recorded");
	is( $node->safe_psql($db, q{SELECT count(*) FROM pg_trigger t
         JOIN access_audit._log_partitions() p ON p.partition = t.tgrelid
        WHERE t.tgname = 'guard' AND t.tgenabled = 'A'}),
		$node->safe_psql($db, 'SELECT count(*) FROM access_audit._log_partitions()'),
		"$how: every partition has the guard's trigger");
	my ($out, $err);
	$node->psql($db, "DROP TABLE " . (split / /, $src_parts)[0] =~ s/:.*//r,
		stdout => \$out, stderr => \$err);
	like($err, qr/is not allowed/, "$how: the restored partitions are guarded");
	$node->safe_psql($db, 'SELECT phone FROM customers WHERE id = 1');
	$node->safe_psql($db, q{SELECT access_audit.flush('60 s')});
	is($node->safe_psql($db, 'SELECT ok FROM access_audit.verify()'), 't',
		"$how: the chain goes on after the restore");
}

$node->safe_psql('postgres', 'CREATE DATABASE shop_c');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('shop_c'), $dump ],
	'pg_restore of several partitions');
check_restored('shop_c', 'pg_restore');

$node->safe_psql('postgres', 'CREATE DATABASE shop_p');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('shop_p'), '-f', $plain ],
	'psql of a plain dump of several partitions');
check_restored('shop_p', 'psql');

# a restoring session may build only the dumped partitions: other tables in
# the schema, or partitions it did not make, are refused as ever
my ($o, $e);
$node->psql('shop_p', q{SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = off;
CREATE TABLE access_audit.log_data_x (LIKE access_audit.log_data);},
	stdout => \$o, stderr => \$e);
like($e, qr/is not allowed/, 'a restoring session may not make other tables in the schema');
my $restored_part = (split / /, $src_parts)[0] =~ s/:.*//r;
$node->psql('shop_p', qq{SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = off;
ALTER TABLE access_audit.log_data DETACH PARTITION $restored_part;},
	stdout => \$o, stderr => \$e);
like($e, qr/is not allowed/, 'nor detach a partition');

# 9. the cut of everything: all records go, the chain goes on from the checkpoint
my $everything = sq('SELECT max(seq) FROM access_audit.log_data');
$cut = cut_at(undef, 'cut of everything');
cmp_ok($cut, '>=', $everything, 'every record there was is removed');
reads(3);
is(sq('SELECT min(seq) FROM access_audit.log_data'), $cut + 1,
	'records after it continue the sequence');
is(sq('SELECT ok FROM access_audit.verify()'), 't', 'and the chain');

$node->stop;
done_testing();
