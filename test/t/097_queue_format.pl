# The queue file survives a change of its format: records left pending by a
# build of an earlier queue format are converted at start and written to
# the log, never reset away; pending records of a format this build cannot
# read stop the server from starting (with a message saying why) instead of
# being thrown away, and are written once the right build runs again.
#
# The pending records are made by stopping the writer (SIGSTOP) and then
# shutting down in immediate mode; the earlier format (2: READ bodies
# without the origin fields) is produced by rewriting the file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('queue_format');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
log_statement = none
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 20) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
$node->safe_psql('postgres', 'SELECT access_audit.flush()');

my $queue = $node->data_dir . '/pg_access_audit/queue';

# CRC-32C, as PostgreSQL computes it
my @crc_table = map {
	my $c = $_;
	$c = ($c & 1) ? (($c >> 1) ^ 0x82F63B78) : ($c >> 1) for 1 .. 8;
	$c
} 0 .. 255;

sub crc32c
{
	my ($data) = @_;
	my $crc = 0xFFFFFFFF;
	$crc = $crc_table[ ($crc ^ $_) & 0xFF ] ^ ($crc >> 8) for unpack('C*', $data);
	return $crc ^ 0xFFFFFFFF;
}

# queue records that the writer cannot write: stop it, read, stop the
# server in immediate mode
sub leave_pending
{
	my ($marker) = @_;
	my $wpid = $node->safe_psql('postgres',
		"SELECT writer_pid FROM access_audit.stats WHERE database = 'postgres'");
	ok($wpid =~ /^\d+$/, "the writer runs (pid $wpid)");
	kill 'STOP', $wpid;
	$node->safe_psql('postgres', "SELECT phone /* $marker */ FROM customers WHERE id = $_")
	  for 1 .. 5;
	$node->stop('immediate');
	kill 'CONT', $wpid;
}

# read the ring file: header fields and the records between tail and head
sub read_ring
{
	open(my $fh, '<', $queue) or die "could not open $queue: $!";
	binmode $fh;
	local $/;
	my $data = <$fh>;
	close $fh;
	my ($magic, $version, $cap, $ring_id, $head, $tail) = unpack('L L Q Q Q Q', $data);
	return ($data, $version, $cap, $head, $tail);
}

sub write_ring
{
	my ($data) = @_;
	open(my $fh, '+<', $queue) or die "could not open $queue: $!";
	binmode $fh;
	print $fh $data;
	close $fh;
}

# a string of a record body at $off: its bytes and the offset after it
sub body_string
{
	my ($body, $off) = @_;
	my $len = unpack('l', substr($body, $off, 4));
	my $size = $len < 0 ? 4 : 4 + $len + 1;
	return (substr($body, $off, $size), $off + $size);
}

# 1. a ring of queue format 2 with pending records is converted and written
leave_pending('format two');
my ($data, $version, $cap, $head, $tail) = read_ring();
is($version, 3, 'the ring file is of the current format');
ok($head > $tail, 'records are pending in it');
my $rewritten = 0;
for (my $pos = $tail; $pos < $head;)
{
	my $off = 4096 + ($pos % $cap);
	my ($rmagic, $len, $rpos, $dboid, $kind, $crc, $state) =
	  unpack('L L Q L L L L', substr($data, $off, 32));
	last if $len == 0;
	if ($kind == 1 && $state == 2)
	{
		# the body as format 2 wrote it: no origin_ring_id, origin_seq, origin
		my $body = substr($data, $off + 32, $len - 32);
		my $new = substr($body, 0, 72);
		my $p = 88;
		my $s;
		for (1 .. 9)
		{
			($s, $p) = body_string($body, $p);
			$new .= $s;
		}
		(undef, $p) = body_string($body, $p);    # origin
		$new .= substr($body, $p);
		$new .= "\0" x (length($body) - length($new));
		substr($data, $off + 32, $len - 32) = $new;
		substr($data, $off + 24, 4) = pack('L', crc32c($new));
		$rewritten++;
	}
	$pos += $len;
}
cmp_ok($rewritten, '>=', 5, "$rewritten pending records rewritten in format 2");
substr($data, 4, 4) = pack('L', 2);
write_ring($data);

my $logstart = -s $node->logfile;
$node->start;
ok( $node->log_contains(qr/access_audit queue converted from format 2 to 3: \d+ pending records kept/,
		$logstart),
	'the ring of format 2 is converted at start');
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
is( $node->safe_psql('postgres', q{
SELECT count(*) || ' ' || count(DISTINCT query) || ' ' || sum(rows) FROM access_audit.log
 WHERE query LIKE '%format two%' AND origin IS NULL}),
	'5 5 5', 'every record pending in format 2 is in the log');
is($node->safe_psql('postgres', 'SELECT ok FROM access_audit.verify()'),
	't', 'and the chain verifies');

# 2. pending records of an unknown format: the server does not start
leave_pending('format unknown');
($data, $version, $cap, $head, $tail) = read_ring();
ok($head > $tail, 'records are pending again');
substr($data, 4, 4) = pack('L', 99);
write_ring($data);
$logstart = -s $node->logfile;
ok(!$node->start(fail_ok => 1), 'the server refuses to start over records it cannot read');
ok( $node->log_contains(
		qr/access_audit queue file "pg_access_audit\/queue" holds \d+ bytes of pending audit records in queue format 99, which this build cannot read/,
		$logstart),
	'and says why');
my ($data2) = read_ring();
is(length($data2), length($data), 'the file is left as it was');
is(substr($data2, 16, 24), substr($data, 16, 24), 'with its pending records');

# the build that can read them writes them
substr($data, 4, 4) = pack('L', 3);
write_ring($data);
$node->start;
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
is( $node->safe_psql('postgres', q{
SELECT count(*) FROM access_audit.log WHERE query LIKE '%format unknown%'}),
	'5', 'the records are written once a build that reads them runs');
is($node->safe_psql('postgres', 'SELECT ok FROM access_audit.verify()'),
	't', 'and the chain verifies');

$node->stop;
done_testing();
