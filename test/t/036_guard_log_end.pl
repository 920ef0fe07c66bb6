# DROP EXTENSION (possible only in maintenance mode) ends a log; the next
# CREATE EXTENSION in that database begins the new log with a record of
# the previous log's end: its last seq and hash, who dropped it and when.
# The end is kept in a file under the data directory, so it survives a
# restart and a CREATE EXTENSION that is rolled back; DROP DATABASE
# removes it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_log_end');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
# without maintenance mode the drop is refused
my ($ret, $out, $err) = $node->psql('shop', 'DROP EXTENSION access_audit CASCADE');
like($err, qr/not allowed/, 'DROP EXTENSION is refused outside maintenance mode');

$node->safe_psql('shop', 'SELECT phone FROM customers');
# the head is read in the dropping session after its SET of maintenance
# mode (itself a record) is written, so no record can land between them
my $head = $node->safe_psql('shop', q{
SET access_audit.maintenance = on;
SELECT access_audit.flush('60 s');
SELECT seq || ' ' || encode(hash, 'hex') FROM access_audit.chain_head();
DROP EXTENSION access_audit CASCADE;
});
$head =~ s/^t\n//;
like($head, qr/^\d+ [0-9a-f]{64}$/, 'the log has a head');
$node->restart;

# a creation that is rolled back does not use up the previous log's end
$node->safe_psql('shop', 'BEGIN; CREATE EXTENSION access_audit; ROLLBACK');
$node->safe_psql('shop', 'CREATE EXTENSION access_audit');
$node->safe_psql('shop', 'SELECT phone FROM customers');
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
my $me = $node->safe_psql('shop', 'SELECT current_user');
is($node->safe_psql('shop', q{
SELECT concat_ws(' ', seq, command, detail::jsonb ->> 'last_seq', detail::jsonb ->> 'last_hash',
                 detail::jsonb ->> 'dropped_by', (detail::jsonb ->> 'dropped_at')::timestamptz <= now(),
                 detail::jsonb ->> 'statement')
  FROM access_audit.log ORDER BY seq LIMIT 1}),
	"1 PREVIOUS LOG $head $me t DROP EXTENSION access_audit CASCADE;",
	"the new log begins with the previous log's end");
is($node->safe_psql('shop', q{SELECT string_agg(command, ',' ORDER BY seq) FROM access_audit.log}),
	'PREVIOUS LOG,SELECT', 'then come the new records');
is($node->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'), 't',
	'the new chain verifies');

# the end is used once: a second log after another drop begins with the
# end of the second log, not the first
# (the maintenance switch, record 3, is written before the drop, as above:
# records still queued at a drop are discarded, so without the flush the
# end would be 2 or 3 depending on the writer's timing)
$node->safe_psql('shop', q{
SET access_audit.maintenance = on;
SELECT access_audit.flush('60 s');
DROP EXTENSION access_audit CASCADE;
CREATE EXTENSION access_audit;
});
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{
SELECT command || ' ' || (detail::jsonb ->> 'last_seq') FROM access_audit.log ORDER BY seq LIMIT 1}),
	'PREVIOUS LOG 3', 'each new log begins with the end of the one before');

is($node->safe_psql('shop', q{
SELECT detail::jsonb ->> 'database' FROM access_audit.log ORDER BY seq LIMIT 1}),
	'shop', 'the record names the database');

# a renamed schema does not hide the end, and a role name cannot add keys
# to the record (a superuser named to forge "last_seq")
$node->safe_psql('shop', q{CREATE ROLE "x"", ""last_seq"": 999, ""y"": """ SUPERUSER});
$node->safe_psql('shop', 'SELECT phone FROM customers');
# the head is read in the dropping session once its maintenance switch (a
# record) is written; the writer writes nothing into a renamed schema, so
# the rename's own record is still queued at the drop and discarded
$head = $node->safe_psql('shop', q{
SET ROLE "x"", ""last_seq"": 999, ""y"": """;
SET access_audit.maintenance = on;
SELECT access_audit.flush('60 s');
SELECT seq || ' ' || encode(hash, 'hex') FROM access_audit.chain_head();
ALTER SCHEMA access_audit RENAME TO aa_hidden;
DROP EXTENSION access_audit CASCADE;
});
$head =~ s/^t\n//;
$node->safe_psql('shop', q{DROP SCHEMA IF EXISTS aa_hidden; CREATE EXTENSION access_audit});
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{
SELECT concat_ws(' ', command, detail::jsonb ->> 'last_seq', detail::jsonb ->> 'last_hash',
                 detail::jsonb ->> 'dropped_by', detail::jsonb ? 'y')
  FROM access_audit.log ORDER BY seq LIMIT 1}),
	qq{PREVIOUS LOG $head x", "last_seq": 999, "y": " f},
	'the end is read through a renamed schema, and names are escaped');

# the end waits in a file per database (also when repairs had damaged the
# log: the drop that cleans up is not stopped), which DROP DATABASE removes
# (a later database with the same OID must not inherit it)
$node->safe_psql('postgres', 'CREATE DATABASE gone');
my $oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'gone'});
$node->safe_psql('gone', q{
CREATE EXTENSION access_audit;
SET access_audit.maintenance = on;
ALTER TABLE access_audit.log_data RENAME TO log_data_damaged;
DROP EXTENSION access_audit;
});
my $file = $node->data_dir . "/pg_access_audit/ended_$oid";
ok(-e $file, 'the end of a dropped log is kept under the data directory');
$node->safe_psql('postgres', 'DROP DATABASE gone');
ok(!-e $file, 'DROP DATABASE removes it');

done_testing();
