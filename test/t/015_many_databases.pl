# More databases than writers: records of every database are written and no
# reader waits for good.
#
# Every database with records needs a writer (a background worker) and a
# slot in the queue's database table.  A database that has neither holds
# the ring's tail, and once the ring is full every reader of every database
# waits.  Writers that have caught up therefore give way to a database that
# waits for one, and free their slot.
#
# Part 1: max_worker_processes leaves room for two writers; five databases
# read at once, on the primary and then on a hot standby (whose writers
# ship to the primary).  Part 2: two databases more than the table's 64
# slots.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use IPC::Run;
use Test::More;

# Start pgbench on $node in each database at once ($reads tagged point
# reads each), wait for all, and check each one's run and its records in
# $logger's log (records shipped by a standby have an origin).
sub read_everywhere
{
	my ($node, $logger, $dbs, $reads, $name) = @_;
	my $script = $node->basedir . '/read.sql';
	my $origin = $node eq $logger ? 'origin IS NULL' : 'origin IS NOT NULL';
	PostgreSQL::Test::Utils::append_to_file($script,
		"\\set id random(1, 100)\nSELECT phone FROM c WHERE id = :id;\n")
	  unless -e $script;

	# pgbench's own limit: a stalled queue makes its reads wait for good
	my (%h, %out, %err);
	foreach my $db (@$dbs)
	{
		$h{$db} = IPC::Run::start(
			[
				'timeout', '180', 'pgbench', '-n', '-h', $node->host,
				'-p', $node->port, '-M', 'prepared', '-c', '1',
				'-t', $reads, '-f', $script, $db
			],
			'>', \$out{$db}, '2>', \$err{$db});
	}
	my @failed;
	foreach my $db (@$dbs)
	{
		$h{$db}->finish;
		push @failed, "$db: exit " . $h{$db}->result . " $err{$db}"
		  unless $h{$db}->result == 0
		  && $out{$db} =~ /processed: $reads\/$reads/;
	}
	is(join("\n", @failed), '', "$name: every pgbench ran all $reads reads");
	# a session without a database slot warns once, not at every statement
	my @noisy = grep { (() = $err{$_} =~ /tracks at most \d+ databases/g) > 1 } @$dbs;
	is(join(', ', @noisy), '', "$name: no session warned twice of a full database table");
	if (@failed)
	{
		fail("$name: records not checked, the reads did not finish") for 1 .. 2;
		return;
	}

	my @wrong;
	foreach my $db (@$dbs)
	{
		my $f = $node->safe_psql($db, q{SELECT access_audit.flush('60 s')});
		$f .= $logger->safe_psql($db, q{SELECT access_audit.flush('60 s')});
		my $n = $logger->safe_psql($db, qq{
			SELECT count(*) FROM access_audit.log
			 WHERE command = 'SELECT' AND 'public.c' = ANY (relations) AND $origin});
		push @wrong, "$db: $n (flush: $f)" unless $n == $reads;
	}
	is(join(', ', @wrong), '', "$name: each database logged its $reads reads");

	my @broken = grep {
		$logger->safe_psql($_, 'SELECT ok FROM access_audit.verify()') ne 't'
	} @$dbs;
	is(join(', ', @broken), '', "$name: each database's chain verifies");
}

sub make_databases
{
	my ($node, $n) = @_;
	my @dbs = map { "d$_" } 1 .. $n;
	foreach my $db (@dbs)
	{
		$node->safe_psql('postgres', "CREATE DATABASE $db");
		$node->safe_psql($db, q{
			CREATE EXTENSION access_audit;
			CREATE TABLE c (id int PRIMARY KEY, phone text);
			INSERT INTO c SELECT g, '555-' || g FROM generate_series(1, 100) g;
			SECURITY LABEL FOR access_audit ON COLUMN c.phone IS 'pii'});
	}
	return \@dbs;
}

# ---- part 1: two writers for five databases ----
# The launcher and the logical replication launcher take two of the four
# background workers.  A 1MB ring fills within a few hundred reads.
my $node = PostgreSQL::Test::Cluster->new('workers');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 4
});
$node->start;
my $dbs = make_databases($node, 5);
read_everywhere($node, $node, $dbs, 2000, 'five databases, two writers');

# access_audit.stats keeps each database's counters while its writer is
# away and after it comes back
my @short;
foreach my $db (@$dbs)
{
	my $row = $node->safe_psql('d1', qq{
		SELECT queued || ' ' || written FROM access_audit.stats
		 WHERE database = '$db'});
	my ($q, $w) = split / /, $row;
	push @short, "$db: '$row'"
	  unless defined $w && $q >= 2000 && $w >= 2000;
}
is(join(', ', @short), '', 'stats count every record of every database');
like(
	slurp_file($node->logfile),
	qr/could not start access_audit writer for database/,
	'the launcher did run out of background workers');

# the same on a hot standby: its writers ship, and give way likewise
$node->backup('b1');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($node, 'b1', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
read_everywhere($standby, $node, $dbs, 1000, 'hot standby, five databases, two writers');
like(
	slurp_file($standby->logfile),
	qr/could not start access_audit writer for database/,
	"the standby's launcher did run out of background workers");
$standby->stop;
$node->stop;

# ---- part 2: 66 databases, 64 slots ----
$node = PostgreSQL::Test::Cluster->new('slots');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 72
max_connections = 120
});
$node->start;
$dbs = make_databases($node, 66);
read_everywhere($node, $node, $dbs, 200, '66 databases, 64 slots');
like(
	slurp_file($node->logfile),
	qr/access_audit tracks at most 64 databases at once/,
	'the database table did fill up');

# Once idle, every writer leaves, and its database keeps its slot: the table
# stays full, with no writer left to give way.  A database that comes now
# still has its records written: the launcher takes back the slot of a
# database that needs none.  (Before it did, these records waited for good:
# flush() returned false after its 60 s and nothing was written.)
$node->poll_query_until('postgres', q{
	SELECT count(*) = 0 FROM pg_stat_activity
	 WHERE backend_type = 'access_audit writer'})
  or die 'writers did not leave';
$node->safe_psql('postgres', 'CREATE DATABASE d67');
my ($f, $err) = ('', '');
$node->psql(
	'd67', q{
	CREATE EXTENSION access_audit;
	CREATE TABLE c (id int PRIMARY KEY, phone text);
	INSERT INTO c SELECT g, '555-' || g FROM generate_series(1, 100) g;
	SECURITY LABEL FOR access_audit ON COLUMN c.phone IS 'pii';
} . "SELECT phone FROM c WHERE id = 1;\n" x 5,
	stdout => \$f,
	stderr => \$err,
	on_error_die => 1);
# a writer that gave way after the reads may have left a slot free
note($err =~ /tracks at most 64 databases/
	? 'the late database found the table full'
	: 'the late database found a free slot');
$f = $node->safe_psql('d67', q{SELECT access_audit.flush('60 s')});
is( $f . ' '
	  . $node->safe_psql(
		'd67', q{
	SELECT count(*) FROM access_audit.log
	 WHERE command = 'SELECT' AND 'public.c' = ANY (relations)}),
	't 5',
	"a late database's records are written while every writer is idle");
$node->stop;

done_testing();
