# The queue counters of access_audit.stats (queued, written, waits on a full
# queue, gaps) count across a clean restart, a crash-restart (a backend
# killed with SIGKILL) and an immediate shutdown, since a time status()
# states; reset_stats() is for superusers and recorded; a damaged stats
# file or entry is reported and not trusted.  Also the registry of tags in
# databases without the extension (access_audit.tags_elsewhere), which
# lives in the same file.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(wait_until_up);
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('counters');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
restart_after_crash = on
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 1000) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
CREATE ROLE clerk LOGIN;
GRANT SELECT ON customers TO clerk;
});

my $script = $node->basedir . '/read.sql';
PostgreSQL::Test::Utils::append_to_file($script,
	"\\set id random(1, 1000)\nSELECT phone FROM customers WHERE id = :id;\n");

sub counters
{
	return $node->safe_psql('postgres', q{
SELECT queued || ' ' || written || ' ' || waits || ' ' || gaps
  FROM access_audit.stats WHERE database = 'postgres'});
}

sub since
{
	return $node->safe_psql('postgres', q{
SELECT s.since FROM access_audit._stats_since() s
  JOIN pg_database d ON d.oid = s.dboid WHERE d.datname = 'postgres'});
}

sub reads
{
	my ($n) = @_;
	$node->safe_psql('postgres',
		join('', map { "SELECT phone FROM customers WHERE id = $_;\n" } 1 .. $n));
	is($node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
		"$n reads written");
}


reads(50);

# waits on a full queue: hold the writer back with a lock on the log
{
	my $locker = $node->background_psql('postgres');
	$locker->query_safe('BEGIN; LOCK TABLE access_audit.log_data IN ACCESS EXCLUSIVE MODE;');
	my ($out, $err) = ('', '');
	my $h = IPC::Run::start(
		[
			'pgbench', '-n', '-c', 2, '-j', 2, '-T', 60, '-f', $script,
			'-h', $node->host, '-p', $node->port, 'postgres'
		],
		'>', \$out, '2>', \$err);
	$node->poll_query_until('postgres',
		"SELECT waits > 0 FROM access_audit.stats WHERE database = 'postgres'")
	  or die 'the queue never filled';
	$locker->query_safe('COMMIT;');
	$locker->quit;
	$h->kill_kill;
	$h->finish;
	# the killed client's backend may still queue a record: let it end
	# before draining, or it lands after the flush
	$node->poll_query_until('postgres', q{
		SELECT count(*) = 0 FROM pg_stat_activity
		 WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()})
	  or die 'the killed client never ended';
	is($node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't',
		'queue drained');
}

my ($q0, $w0, $waits0, $g0) = split / /, counters();
cmp_ok($w0, '>=', 1000, "written counted ($w0)");
cmp_ok($waits0, '>', 0, "waits counted ($waits0)");
is($q0, $w0, 'queued and written agree once drained');
my $since0 = since();
like($node->safe_psql('postgres',
	q{SELECT detail FROM access_audit.status WHERE check_name = 'waits' AND database = 'postgres'}),
	qr/^[0-9,]+ waits of a backend on a full queue since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/,
	'status says since when the counters count');

# 1. Clean restart: every counter as it was, the same "since".
$node->restart;
my ($q1, $w1, $waits1, $g1) = split / /, counters();
is("$q1 $w1 $waits1 $g1", "$q0 $w0 $waits0 $g0", 'clean restart: counters kept');
is(since(), $since0, 'clean restart: counting since the same time');

# 2. Crash-restart (a backend killed): the postmaster saves the counters
# before it makes shared memory anew, so nothing is lost.
reads(20);
($q1, $w1, $waits1, $g1) = split / /, counters();
{
	my $offset = -s $node->logfile;
	my $bg = $node->background_psql('postgres', on_error_stop => 0);
	my $bgpid = $bg->query_safe('SELECT pg_backend_pid()');
	kill 'KILL', $bgpid;
	wait_until_up($node, $offset);
	eval { $bg->quit };
}
my ($q2, $w2, $waits2, $g2) = split / /, counters();
is("$q2 $w2 $waits2 $g2", "$q1 $w1 $waits1 $g1", 'crash-restart: counters kept exactly');

# 3. Immediate shutdown: the same.
reads(20);
($q1, $w1, $waits1, $g1) = split / /, counters();
$node->stop('immediate');
$node->start;
($q2, $w2, $waits2, $g2) = split / /, counters();
is("$q2 $w2 $waits2 $g2", "$q1 $w1 $waits1 $g1", 'immediate shutdown: counters kept exactly');

# 4. The bound when the postmaster itself dies (SIGKILL, power loss), so
# that it saves nothing: what the writer saved at its last commit is kept,
# that is written and queued exactly (waits after that commit would be
# lost).  Simulated by putting back the file as the writer left it after
# its last commit, before the postmaster's save at exit.
reads(10);
($q1, $w1, $waits1, $g1) = split / /, counters();
my $stats_file = $node->data_dir . '/pg_access_audit/stats';
my $saved = slurp_file($stats_file);
$node->stop('immediate');
open(my $fh, '>:raw', $stats_file) or die;
print $fh $saved;
close $fh;
$node->start;
($q2, $w2, $waits2, $g2) = split / /, counters();
is("$q2 $w2", "$q1 $w1", 'the writer saves written and queued at each commit');
cmp_ok($waits2, '>=', $waits0, 'waits saved at a commit stay');

# 5. reset_stats(): superusers only, recorded, counting from the reset.
$node->safe_psql('postgres', 'GRANT access_audit_admin TO clerk');
my ($ret, $out, $err) = $node->psql('postgres', 'SELECT access_audit.reset_stats()',
	connstr => $node->connstr('postgres') . ' user=clerk');
like($err, qr/permission denied for function reset_stats/, 'not even for access_audit_admin');
# records queued before the reset (the refused call's) are written first,
# or the reset would count their writing but not their queueing
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
$node->safe_psql('postgres', 'SELECT access_audit.reset_stats()');
like(counters(), qr/^[01] [01] 0 0$/, 'reset: every counter at zero (but the reset\'s own record)');
like($node->safe_psql('postgres',
	q{SELECT detail FROM access_audit.status WHERE check_name = 'queue' AND database = 'postgres'}),
	qr/since \d{4}-.* \(counters reset by \S+ at \d{4}-/, 'status says who reset the counters');
ok($node->log_contains('access_audit queue counters reset by role'), 'the reset is in the server log');
is($node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')}), 't', 'flush');
is($node->safe_psql('postgres',
	q{SELECT count(*) FROM access_audit.log WHERE command = 'RESET STATS'}), '1',
	'the reset is recorded in the log');
$node->restart;
my ($q3, $w3) = split / /, counters();
cmp_ok($w3, '<', 10, "the reset outlives a restart (written $w3)");

# 6. A damaged entry is dropped and reported; a damaged file is made anew.
$node->stop;
{
	open(my $f, '+<:raw', $stats_file) or die;
	seek($f, 512 + 40, 0);		# inside the first database entry's totals
	print $f "\xff\xff\xff\xff";
	close $f;
}
$node->start;
ok($node->log_contains(qr/access_audit dropped 1 damaged entries of "pg_access_audit\/stats"/),
	'a damaged entry is reported');
is($node->safe_psql('postgres',
	q{SELECT coalesce(max(written), 0) FROM access_audit.stats WHERE database = 'postgres'}),
	'0', 'and not trusted');
$node->stop;
{
	open(my $f, '+<:raw', $stats_file) or die;
	print $f "junk";
	close $f;
}
$node->start;
ok($node->log_contains(qr/access_audit counters in "pg_access_audit\/stats" are not trusted and start again at zero: it is not an access_audit stats file/),
	'a damaged file is reported');
reads(5);
cmp_ok((split / /, counters())[1], '>=', 5, 'and counting starts anew');

# 7. Tags in databases without the extension are listed centrally: the
# labels DROP EXTENSION leaves behind (tagging there is refused), and the
# copies CREATE DATABASE makes of a template's.
$node->safe_psql('postgres', q{
CREATE DATABASE plain;
CREATE DATABASE gone;
});
$node->safe_psql('plain', q{
CREATE EXTENSION access_audit;
CREATE TABLE staff (id int, salary numeric, iban text);
SECURITY LABEL FOR access_audit ON COLUMN staff.salary IS 'pay';
SECURITY LABEL FOR access_audit ON COLUMN staff.iban IS 'pii';
SET access_audit.maintenance = on;
BEGIN;
DROP EXTENSION access_audit CASCADE;
ROLLBACK;
});
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.tags_elsewhere}), '0',
	'a rolled-back DROP EXTENSION registers nothing');
$node->safe_psql('plain', q{
SET access_audit.maintenance = on;
DROP EXTENSION access_audit CASCADE;
});
$node->safe_psql('gone', q{
CREATE EXTENSION access_audit;
CREATE TABLE t (secret text);
SECURITY LABEL FOR access_audit ON COLUMN t.secret IS 'pii';
SET access_audit.maintenance = on;
DROP EXTENSION access_audit CASCADE;
});
$node->safe_psql('postgres', q{CREATE DATABASE copy TEMPLATE plain});
my $me = $node->safe_psql('postgres', 'SELECT current_user');
is($node->safe_psql('postgres',
	q{SELECT string_agg(database || ' ' || object || ' ' || tag || ' ' || registered_by, ', ' ORDER BY database, object)
		FROM access_audit.tags_elsewhere}),
	"copy public.staff.iban pii $me, copy public.staff.salary pay $me, "
	  . "gone public.t.secret pii $me, "
	  . "plain public.staff.iban pii $me, plain public.staff.salary pay $me",
	'tags in databases without the extension are listed');
is($node->safe_psql('postgres',
	q{SELECT string_agg(database || ': ' || detail, E'\n' ORDER BY database)
		FROM access_audit.status WHERE check_name = 'tags elsewhere' AND status = 'warning'}),
	"copy: 2 tagged columns in a database without access_audit, so not audited: public.staff.iban (pii), public.staff.salary (pay) (run CREATE EXTENSION access_audit there)\n"
	  . "gone: 1 tagged column in a database without access_audit, so not audited: public.t.secret (pii) (run CREATE EXTENSION access_audit there)\n"
	  . "plain: 2 tagged columns in a database without access_audit, so not audited: public.staff.iban (pii), public.staff.salary (pay) (run CREATE EXTENSION access_audit there)",
	'status lists them per database');

$node->restart;
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.tags_elsewhere}), '5',
	'the registry outlives a restart');

$node->safe_psql('plain', q{SECURITY LABEL FOR access_audit ON COLUMN staff.salary IS NULL});
$node->safe_psql('copy', q{DROP TABLE staff});
$node->safe_psql('postgres', q{DROP DATABASE gone});
is($node->safe_psql('postgres',
	q{SELECT string_agg(database || ' ' || object, ', ') FROM access_audit.tags_elsewhere}),
	'plain public.staff.iban', 'a removed tag, a dropped table and a dropped database leave the list');

$node->safe_psql('plain', q{CREATE EXTENSION access_audit});
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.tags_elsewhere}), '0',
	'creating the extension there takes its tags off the list');

# 8. The registry is bounded (256 columns): what does not fit is said.
$node->safe_psql('postgres', 'CREATE DATABASE many');
$node->safe_psql('many',
	'CREATE EXTENSION access_audit; CREATE TABLE wide ('
	  . join(', ', map { "c$_ text" } 1 .. 260) . ');'
	  . join('', map { "SECURITY LABEL FOR access_audit ON COLUMN wide.c$_ IS 'pii';" } 1 .. 260));
($ret, $out, $err) = $node->psql('many',
	'SET access_audit.maintenance = on; DROP EXTENSION access_audit CASCADE;');
like($err, qr/registry of tags in databases without the extension is full: 4 tags are not listed by access_audit.status/,
	'tags beyond the registry are reported');
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.tags_elsewhere}), '256',
	'the registry holds 256');
# status says so for as long as it is full, not only the dropping session
like($node->safe_psql('postgres', q{SELECT status || ': ' || detail FROM access_audit.status
  WHERE check_name = 'tags elsewhere' AND database IS NULL}),
	qr/^warning: the registry of tags in databases without access_audit is full \(256 tagged columns\)/,
	'status warns that the registry is full');

done_testing();
