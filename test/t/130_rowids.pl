# Row identities (issue 25) over a large log: who_read() finds a customer
# read once among 200,000 records; an export's set answers for each of its
# rows; retention cuts the row sets with their records and what is kept
# still verifies; pg_dump and restore carry the sets and the hash key, so
# a restored log answers the same questions.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rowids');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 16MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE shop');
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id bigint PRIMARY KEY, email text UNIQUE, phone text);
INSERT INTO customers SELECT g, 'c' || g || '@example.com', '555-' || g
  FROM generate_series(1, 300000) g;
SELECT access_audit.tag('customers', 'phone', 'pii:phone');
SELECT access_audit.track_rows('customers');
CREATE TABLE accounts (email text PRIMARY KEY, secret text);
INSERT INTO accounts SELECT 'c' || g || '@example.com', 's' || g FROM generate_series(1, 1000) g;
SELECT access_audit.tag('accounts', 'secret', 'secret');
SELECT access_audit.track_rows('accounts');
GRANT access_audit_app TO CURRENT_USER;
});

# 200,000 point reads, each of another customer (1 .. 200,000), by the app
$node->safe_psql('shop', q{
SET access_audit.actor = 'app';
DO $$
DECLARE
  p text;
BEGIN
  FOR i IN 1 .. 200000 LOOP
    SELECT phone INTO p FROM customers WHERE id = i;
  END LOOP;
END
$$;
});
my $cut = $node->safe_psql('shop', 'SELECT access_audit.flush(\'300 s\'); SELECT clock_timestamp()');
$cut = (split /\n/, $cut)[-1];

# then mallory: one customer beyond those, an export of 5,000, a hashed key
$node->safe_psql('shop', q{
SET access_audit.actor = 'mallory';
SELECT phone FROM customers WHERE id = 250777;
SELECT count(phone) FROM customers WHERE id BETWEEN 260000 AND 264999;
SELECT secret FROM accounts WHERE email = 'c77@example.com';
});
$node->safe_psql('shop', q{SELECT access_audit.flush('300 s')});

is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.row_set_reads}),
	'200003', 'every read of a tracked table has a row set');
is($node->safe_psql('shop', q{
SELECT string_agg(actor || ':' || query, ',') FROM access_audit.who_read('customers', 250777)}),
	'mallory:SELECT phone FROM customers WHERE id = 250777',
	'who_read finds the one read of a customer among 200,000 records');
is($node->safe_psql('shop', q{
SELECT string_agg(actor || ':' || command, ',') FROM access_audit.who_read('customers', 123456)}),
	'app:SELECT', 'who_read finds the one point read of another customer');
is($node->safe_psql('shop', q{
SELECT string_agg(actor || ':' || outcome, ',') FROM access_audit.who_read('customers', 262500)}),
	'mallory:ok', 'who_read finds the export a customer was part of');
is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.who_read('customers', 299999)}),
	'0', 'a customer nobody read was read by nobody');
is($node->safe_psql('shop', q{SELECT actor FROM access_audit.who_read('accounts', 'c77@example.com')}),
	'mallory', 'who_read by a text key');
is($node->safe_psql('shop', q{
SELECT string_agg(relation || '=' || distinct_rows, ',')
  FROM access_audit.rows_read_counts('mallory', now() - interval '1 day', now() + interval '1 day')}),
	'public.accounts=1,public.customers=5001', 'counts per table of what mallory read');
is($node->safe_psql('shop', q{
SELECT count(*) FROM customers c
 WHERE c.id IN (SELECT key FROM access_audit.rows_read_by('mallory', now() - interval '1 day',
                now() + interval '1 day') WHERE relation = 'public.customers')}),
	'5001', 'the set of mallory joins back to the table for the letters');
is($node->safe_psql('shop', q{SELECT ok FROM access_audit.verify_rows()}), 't',
	'the row sets verify');

# the writer's way: chunks of a large export are bounded
is($node->safe_psql('shop', q{SELECT max(length(data)) <= 4096 FROM access_audit.row_sets}),
	't', 'chunks stay bounded');

# dump and restore: the sets, links and key come along
my $dump = $node->basedir . '/shop.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('shop') ], 'pg_dump -Fc');
$node->safe_psql('postgres', 'CREATE DATABASE shop2');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('shop2'), $dump ],
	'pg_restore into a new database');
is($node->safe_psql('shop2', q{
SELECT string_agg(actor, ',') FROM access_audit.who_read('customers', 250777)}),
	'mallory', 'the restored log answers who_read');
is($node->safe_psql('shop2', q{SELECT actor FROM access_audit.who_read('accounts', 'c77@example.com')}),
	'mallory', 'the restored hash key answers for text keys');
is($node->safe_psql('shop2', q{SELECT ok FROM access_audit.verify_rows()}), 't',
	'the restored row sets verify');
$node->safe_psql('shop2', q{SELECT phone FROM customers WHERE id = 42});
$node->safe_psql('shop2', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop2', q{SELECT count(*) FROM access_audit.who_read('customers', 42)}),
	'2', 'reads after the restore are tracked too');

# pg_dump read the tables with COPY: an export like any other, with its set
is($node->safe_psql('shop', q{
SELECT string_agg(command || ':' || (actor = current_user), ',' ORDER BY seq)
  FROM access_audit.who_read('customers', 123456)}),
	'SELECT:false,COPY:true', 'pg_dump\'s COPY of the table is in the set of every row');

# retention: the records of the app go, with their row sets
$node->safe_psql('shop', qq{
SET access_audit.maintenance = on;
SELECT access_audit.drop_before('$cut');
});
is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.row_set_reads}),
	'5', 'retention cut the links of the records it removed (mallory\'s 3 and the dump\'s 2 stay)');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.row_sets s
 WHERE NOT EXISTS (SELECT 1 FROM access_audit.row_set_reads r WHERE r.link = s.link)}),
	'0', 'and their row sets');
is($node->safe_psql('shop', q{SELECT string_agg(command, ',') FROM access_audit.who_read('customers', 123456)}),
	'COPY', 'a removed read is gone');
is($node->safe_psql('shop', q{
SELECT string_agg(command, ',' ORDER BY seq) FROM access_audit.who_read('customers', 262500)}),
	'SELECT,COPY', 'a kept read is found');
is($node->safe_psql('shop', q{SELECT ok FROM access_audit.verify_rows()}), 't',
	'what is kept verifies');
is($node->safe_psql('shop', q{SELECT ok FROM access_audit.verify()}), 't',
	'and so does the log');

# a change to a row set is found
$node->safe_psql('shop', q{
SET access_audit.maintenance = on;
UPDATE access_audit.row_sets SET n = n + 1 WHERE id = (SELECT max(id) - 1 FROM access_audit.row_sets);
});
like($node->safe_psql('shop', q{SELECT ok || ' ' || detail FROM access_audit.verify_rows()}),
	qr/^false row set \d+ does not match its hash$/, 'verify_rows finds a changed row set');
my $bad = $node->basedir . '/bad.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $bad, '-d', $node->connstr('shop') ],
	'pg_dump -Fc of changed row sets');
$node->safe_psql('postgres', 'CREATE DATABASE shop3');
$node->command_fails_like(
	[ 'pg_restore', '--exit-on-error', '--single-transaction', '-d', $node->connstr('shop3'), $bad ],
	qr/the restored row identities do not verify: row set \d+ does not match its hash/,
	'a dump with a changed row set does not restore');
is($node->safe_psql('shop3', q{SELECT count(*) FROM pg_extension WHERE extname = 'access_audit'}),
	'0', 'nothing of it was restored');
$node->safe_psql('shop', q{
SET access_audit.maintenance = on;
UPDATE access_audit.row_sets SET n = n - 1 WHERE id = (SELECT max(id) - 1 FROM access_audit.row_sets);
});

$node->stop;
done_testing();
