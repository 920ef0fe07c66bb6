# Row identities of statements that fail (issue 25): a relation-form
# COPY TO that fails part-way keeps the keys of exactly the rows it sent,
# as the query form does; a COPY that completes keeps every row, and its
# result is unchanged.  A backend cancelled while it waits for room in a
# full queue leaves chunks of its set out (it must not wait on): its record
# says that its set is incomplete, and who_read() lists it for every key of
# the table, marked, so that no reader is lost silently.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rowids_lossless');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 1MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

# UTF8, so that a row can fail to convert to LATIN1 on its way out
$node->safe_psql('postgres',
	q{CREATE DATABASE shop ENCODING 'UTF8' LOCALE 'C' TEMPLATE template0});
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE people (id int PRIMARY KEY, name text);
-- heap order is id order; row 60 has no LATIN1 form
INSERT INTO people SELECT g, CASE WHEN g = 60 THEN 'Eur' || chr(8364) ELSE 'p' || g END
  FROM generate_series(1, 100) g;
SELECT access_audit.tag('people', 'name', 'pii');
SELECT access_audit.track_rows('people');
});

my $keys = sub {
	my ($seq) = @_;
	return $node->safe_psql('shop',
		"SELECT string_agg(key::text, ',' ORDER BY key) FROM access_audit.rows_read($seq)");
};

# the relation form fails at row 60: rows 1 .. 59 were sent
my ($ret, $out, $err) = $node->psql('shop', q{
SET access_audit.actor = 'mallory';
COPY people TO STDOUT (ENCODING 'LATIN1');
});
like($err, qr/has no equivalent in encoding "LATIN1"/, 'the COPY fails at the row with no LATIN1 form');
my @sent = grep { /^\d+\t/ } split /\n/, $out;
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
my $seq = $node->safe_psql('shop', q{
SELECT max(seq) FROM access_audit.log WHERE actor = 'mallory' AND command = 'COPY'});
is($node->safe_psql('shop', "SELECT outcome || ' ' || rows FROM access_audit.log WHERE seq = $seq"),
	'error 59', 'the failed COPY is recorded with the rows it sent');
is($keys->($seq), join(',', 1 .. 59), 'its row set is exactly the rows it sent');
ok(@sent <= 59, 'the client got no row beyond them');
is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.who_read('people', 60)}),
	'0', 'the row that failed was not sent');
is($node->safe_psql('shop', q{SELECT string_agg(actor || ':' || outcome, ',') FROM access_audit.who_read('people', 59)}),
	'mallory:error', 'who_read() finds the failed COPY for a row it sent');

# the same in a transaction block that goes on (a savepoint rolls back to it)
($ret, $out, $err) = $node->psql('shop', q{
SET access_audit.actor = 'trent';
BEGIN;
SAVEPOINT s;
COPY people (id, name) TO STDOUT (ENCODING 'LATIN1');
ROLLBACK TO s;
SELECT 'still here';
COMMIT;
}, on_error_stop => 0);
like($out, qr/still here/, 'the transaction goes on after the failed COPY');
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
$seq = $node->safe_psql('shop', q{
SELECT max(seq) FROM access_audit.log WHERE actor = 'trent' AND command = 'COPY'});
is($keys->($seq), join(',', 1 .. 59), 'a failed COPY inside a savepoint keeps its rows too');

# a COPY that completes: every row, the output as without tracking
$node->safe_psql('shop', q{DELETE FROM people WHERE id = 60});
$out = $node->safe_psql('shop', q{
SET access_audit.actor = 'carol';
COPY people TO STDOUT (ENCODING 'LATIN1');
});
is(scalar(grep { /^\d+\tp\d+$/ } split /\n/, $out), 99, 'a COPY that completes sends every row');
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
$seq = $node->safe_psql('shop', q{
SELECT max(seq) FROM access_audit.log WHERE actor = 'carol' AND command = 'COPY'});
is($node->safe_psql('shop', "SELECT outcome || ' ' || rows FROM access_audit.log WHERE seq = $seq"),
	'ok 99', 'and is recorded as it was');
is($keys->($seq), join(',', 1 .. 59, 61 .. 100), 'with every row in its set');
is($node->safe_psql('shop', q{SHOW synchronize_seqscans}), 'on',
	'the session keeps its synchronize_seqscans');
is($node->safe_psql('shop', q{SELECT ok FROM access_audit.verify_rows()}), 't',
	'the row sets verify');

# a writer that cannot write (its log is locked), and a queue that fills
# with chunks of hashed keys (about 410 a chunk, 8 chunks a statement)
$node->safe_psql('shop', q{
CREATE TABLE accounts (email text PRIMARY KEY, secret text);
INSERT INTO accounts SELECT 'a' || g || '@x', 's' || g FROM generate_series(1, 3000) g;
SELECT access_audit.tag('accounts', 'secret', 'pii');
SELECT access_audit.track_rows('accounts');
});
my $lock = $node->background_psql('shop');
$lock->query_safe(q{
BEGIN;
LOCK TABLE access_audit.log_data IN ACCESS EXCLUSIVE MODE;
});
my $reader = $node->background_psql('shop');
my $pid = $reader->query_safe('SELECT pg_backend_pid()');
$reader->query_until(qr/started/, q{
\echo started
SET access_audit.actor = 'eve';
DO $$ BEGIN FOR i IN 1..100000 LOOP PERFORM secret FROM accounts; END LOOP; END $$;
});
ok( $node->poll_query_until('postgres', qq{
SELECT wait_event_type = 'Extension' AND wait_event = 'Extension'
  FROM pg_stat_activity WHERE pid = $pid}),
	'the reader waits for room in the queue');
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok( $node->poll_query_until('postgres', qq{
SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid AND state = 'active'}),
	'pg_cancel_backend ends the wait');
$lock->query_safe('COMMIT');
$lock->quit;
eval { $reader->quit; };
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});

my $records = $node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log WHERE actor = 'eve' AND command = 'SELECT'});
ok($records > 1, "the reader's $records reads are recorded");
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log l
 WHERE l.actor = 'eve' AND l.command = 'SELECT'
   AND NOT EXISTS (SELECT 1 FROM access_audit.row_set_reads r WHERE r.seq = l.seq)}),
	'0', 'every one of them has a row set');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.log l JOIN access_audit.row_set_reads r USING (seq)
 WHERE l.actor = 'eve' AND NOT r.incomplete
   AND (SELECT count(*) FROM access_audit.rows_read(l.seq)) <> 3000}),
	'0', 'a set not marked incomplete holds every row read');
my $short = $node->safe_psql('shop', q{
SELECT min(l.seq) FROM access_audit.log l JOIN access_audit.row_set_reads r USING (seq)
 WHERE l.actor = 'eve' AND r.incomplete
   AND (SELECT count(*) FROM access_audit.rows_read(l.seq)) < 3000});
ok($short ne '', "the interrupted read ($short) is marked incomplete, its set short");
my $missing = $node->safe_psql('shop', qq{
SELECT a.email FROM accounts a
 WHERE access_audit.row_key_hash(a.email) NOT IN (SELECT key FROM access_audit.rows_read($short))
 ORDER BY a.email LIMIT 1});
is($node->safe_psql('shop', qq{
SELECT string_agg(seq || ':' || set_complete, ',') FROM access_audit.who_read('accounts', '$missing')
 WHERE seq = $short}),
	"$short:false", 'who_read() lists it, marked, for a key its set lost');
is($node->safe_psql('shop', qq{
SELECT count(*) FROM access_audit.who_read('accounts', '$missing')
 WHERE set_complete AND seq IN (SELECT seq FROM access_audit.log WHERE actor = 'eve')}),
	$records - 1, 'and the complete ones as they are');
is($node->safe_psql('shop', q{SELECT ok FROM access_audit.verify_rows()}), 't',
	'the row sets and their marks verify');
$node->safe_psql('shop', qq{
SET access_audit.maintenance = on;
UPDATE access_audit.row_set_reads SET incomplete = false WHERE seq = $short;
});
is($node->safe_psql('shop', q{SELECT ok || ' ' || first_bad_id FROM access_audit.verify_rows()}),
	"false $short", 'removing the mark is found');

$node->stop;
done_testing();
