# Capture with real clients: a node-postgres client paging through a result
# with row-limited portals (extended protocol Execute with a row limit, the
# portal suspended between pages), and pg_dump of a tagged table.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('clients');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, full_name text, phone text, city text);
INSERT INTO customers SELECT g, 'name ' || g, '555-' || g, 'city' FROM generate_series(1, 25) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii:phone';
});

# records made after a mark, as text lines
sub records_since
{
	my ($mark, $cols) = @_;
	$node->safe_psql('postgres', 'SELECT access_audit.flush()');
	return $node->safe_psql('postgres',
		"SELECT $cols FROM access_audit.log WHERE seq > $mark ORDER BY seq");
}

sub mark
{
	$node->safe_psql('postgres', 'SELECT access_audit.flush()');
	return $node->safe_psql('postgres',
		'SELECT coalesce(max(seq), 0) FROM access_audit.log');
}

# ---- node-postgres + pg-cursor: row-limited portals ----
SKIP:
{
	my ($nout, $nerr);
	my $have_node = eval { run_command([ 'node', '--version' ]); 1 };
	skip 'node is not installed: row-limited portal test not run', 4
	  unless $have_node;

	# pg and pg-cursor from npm, into test/clients/node_modules (gitignored)
	# or, if the source tree is not writable, into this test's tmp dir
	my $clients = File::Spec->rel2abs(dirname(__FILE__) . '/../clients');
	my $prefix = -w $clients ? $clients : "$PostgreSQL::Test::Utils::tmp_check/clients";
	mkdir $prefix;
	unless (-d "$prefix/node_modules/pg-cursor" && -d "$prefix/node_modules/pg")
	{
		my ($out, $err) = run_command(
			[ 'npm', 'install', '--no-audit', '--no-fund', '--no-save',
			  '--prefix', $prefix, 'pg@8', 'pg-cursor@2' ]);
		ok(-d "$prefix/node_modules/pg-cursor", 'npm installed pg and pg-cursor')
		  or diag($err);
	}
	else
	{
		pass('pg and pg-cursor already installed');
	}

	local $ENV{NODE_PATH} = "$prefix/node_modules";
	local $ENV{PGHOST} = $node->host;
	local $ENV{PGPORT} = $node->port;
	local $ENV{PGDATABASE} = 'postgres';

	my $start = mark();
	($nout, $nerr) = run_command(
		[ 'node', "$clients/page_reader.js",
		  'SELECT id, phone FROM customers ORDER BY id', '4', '3' ]);
	is($nout, "page 1: 4 rows\npage 2: 4 rows\npage 3: 4 rows\ntotal: 12",
		'client read three pages of four rows') or diag($nerr);

	# one record for the whole paged read: 12 rows reached the client
	is( records_since($start,
			"command, nesting_level, columns, predicate_columns, rows, outcome, application_name"),
		'SELECT|0|{public.customers.phone}|{}|12|ok|page_reader',
		'one record with the rows of every page');

	# paging on a predicate-only read, the portal closed before the end
	$start = mark();
	($nout, $nerr) = run_command(
		[ 'node', "$clients/page_reader.js",
		  "SELECT id FROM customers WHERE phone LIKE '555-1%' ORDER BY id", '5', '1' ]);
	is( records_since($start, 'columns, predicate_columns, rows, outcome'),
		'{public.customers.phone}|{public.customers.phone}|5|ok',
		'a portal closed after one page records the rows of that page');
}

# ---- pg_dump of a tagged table ----
{
	my $start = mark();
	my $dump = $node->basedir . '/customers.sql';
	local $ENV{PGAPPNAME};
	delete $ENV{PGAPPNAME};
	$node->command_ok(
		[ 'pg_dump', '-t', 'customers', '-f', $dump, '-d', $node->connstr('postgres') ],
		'pg_dump of a tagged table');
	is( records_since($start,
			"command, columns, rows, outcome, application_name, query ~ '^COPY public.customers'"),
		'COPY|{public.customers.phone}|25|ok|pg_dump|t',
		'pg_dump leaves one COPY record with every row');
}

# ---- sessions terminated with a read open ----
{
	# between FETCHes of an open cursor: the rows fetched so far
	my $start = mark();
	my $bg = $node->background_psql('postgres');
	my $pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_safe('BEGIN');
	$bg->query_safe('DECLARE c CURSOR FOR SELECT phone FROM customers');
	$bg->query_safe('FETCH 7 FROM c');
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  or die 'terminated backend did not exit';
	eval { $bg->quit };
	is(records_since($start, 'command, rows, outcome'),
		'SELECT|7|ok', 'a cursor abandoned by a terminated session is recorded');

	# inside ExecutorRun, after rows were sent: FATAL exits without
	# unwinding through the hooks; the reset callback still records
	$start = mark();
	$bg = $node->background_psql('postgres', on_error_stop => 0);
	$pid = $bg->query_safe('SELECT pg_backend_pid()');
	$bg->query_until(qr/^$/,
		"SELECT phone, pg_sleep(CASE WHEN id = 3 THEN 600 ELSE 0 END) FROM customers;\n");
	$node->poll_query_until('postgres',
		"SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'reader did not reach the sleep';
	$node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)");
	$node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid")
	  or die 'terminated backend did not exit';
	eval { $bg->quit };
	is(records_since($start, 'command, rows, outcome'),
		'SELECT|2|error', 'a read killed part way is recorded as an error with the rows sent');
}

# ---- nothing crashed on the way ----
my $log = slurp_file($node->logfile);
unlike($log, qr/TRAP|terminated by signal|server process .* was terminated/,
	'no assertion failure or crash in the server log');

$node->stop;
done_testing();
