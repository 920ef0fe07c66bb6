# Row identities of statements that fail (issue 25): a relation-form
# COPY TO that fails part-way keeps the keys of exactly the rows it sent,
# as the query form does; a COPY that completes keeps every row, and its
# result is unchanged.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rowids_lossless');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
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

$node->stop;
done_testing();
