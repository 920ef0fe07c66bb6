# Two source servers publish their audit logs; a central server subscribes
# to both.  Each record keeps its source, the central server's own log is
# untouched, verify() checks each source's chain, and rank_exporters()
# ranks the actors of both sources together.  Row identities travel too:
# who_read() on the central server finds a customer read on a source, with
# its source, and a forged row set is refused on arrival.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(clear_of_day_boundary);

my $conf = qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 16
wal_level = logical
max_wal_senders = 10
max_replication_slots = 10
log_statement = none
};

my %src;
for my $name ('sales', 'support')
{
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init(allows_streaming => "logical");
	$n->append_conf('postgresql.conf', $conf);
	$n->start;
	$n->safe_psql('postgres', qq{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 5000) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
SELECT access_audit.track_rows('customers');
CREATE TABLE accounts (email text PRIMARY KEY, secret text);
INSERT INTO accounts SELECT 'a' || g || '\@x', 's' || g FROM generate_series(1, 50) g;
SECURITY LABEL FOR access_audit ON COLUMN accounts.secret IS 'pii';
SELECT access_audit.track_rows('accounts');
DO \$\$
BEGIN
    EXECUTE format('CREATE PUBLICATION access_audit_pub FOR TABLE %s '
                   'WITH (publish = ''insert'', publish_via_partition_root = true)',
                   access_audit.publication_tables());
END
\$\$;
});
	$src{$name} = $n;
}

# reads before the subscriptions exist arrive with the first copy
$src{sales}->safe_psql('postgres', q{
SET access_audit.actor = 'alice';
SELECT phone FROM customers WHERE id <= 20;
SET access_audit.actor = 'mallory';
SELECT phone FROM customers WHERE id <= 1500;
SELECT secret FROM accounts WHERE email = 'a7@x';
SELECT access_audit.flush();
});

my $central = PostgreSQL::Test::Cluster->new('central');
$central->init;
$central->append_conf('postgresql.conf', $conf);
$central->start;
# the sources' reads today and the central check_exports() fall on one business day
clear_of_day_boundary($central, 300);
$central->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE local_notes (id int, secret text);
SECURITY LABEL FOR access_audit ON COLUMN local_notes.secret IS 'pii';
-- the sources' table definitions, for who_read()
CREATE TABLE customers (id int PRIMARY KEY, phone text);
CREATE TABLE accounts (email text PRIMARY KEY, secret text);
SELECT access_audit.flush();
});
my $central_own = $central->safe_psql('postgres', 'SELECT count(*) FROM access_audit.log');

for my $name ('sales', 'support')
{
	my $connstr = 'host=' . $src{$name}->host . ' port=' . $src{$name}->port . ' dbname=postgres';
	$central->safe_psql('postgres',
		"CREATE SUBSCRIPTION $name CONNECTION '$connstr' PUBLICATION access_audit_pub");
}
$central->wait_for_subscription_sync($src{sales}, 'sales');
$central->wait_for_subscription_sync($src{support}, 'support');

# reads after the subscriptions exist arrive by streaming
$src{support}->safe_psql('postgres', q{
SET access_audit.actor = 'bob';
SELECT phone FROM customers WHERE id <= 30;
SET access_audit.actor = 'mallory';
SELECT phone FROM customers WHERE id <= 2500;
SELECT access_audit.flush();
});
$src{sales}->safe_psql('postgres', q{
SET access_audit.actor = 'carol';
SELECT phone FROM customers WHERE id <= 10;
SELECT access_audit.flush();
});
$src{sales}->wait_for_catchup('sales');
$src{support}->wait_for_catchup('support');

for my $name ('sales', 'support')
{
	my $n = $src{$name}->safe_psql('postgres', 'SELECT count(*) FROM access_audit.log');
	is($central->safe_psql('postgres',
		"SELECT count(*) FROM access_audit.collected WHERE source = '$name'"),
		$n, "every record of $name is collected");
}
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || actor || ':' || rows, ',' ORDER BY source, seq)
  FROM access_audit.collected WHERE command = 'SELECT'}),
	'sales:alice:20,sales:mallory:1500,sales:mallory:1,sales:carol:10,support:bob:30,support:mallory:2500',
	'collected reads keep their source, actor and rows');

# row identities: who read a customer, across both sources, with the record
is($central->safe_psql('postgres', q{
SELECT string_agg(w.source || ':' || w.actor || ':' || w.command || ':'
                  || (w.seq = (SELECT c.seq FROM access_audit.collected c
                                WHERE c.source = w.source AND c.actor = w.actor
                                  AND c.command = 'SELECT' AND c.query LIKE '%customers%')),
                  ',' ORDER BY w.source, w.seq)
  FROM access_audit.who_read('customers', 5) w}),
	'sales:alice:SELECT:true,sales:mallory:SELECT:true,sales:carol:SELECT:true,'
	. 'support:bob:SELECT:true,support:mallory:SELECT:true',
	'who_read() on the central server finds every source\'s reads of a key, with their records');
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || w.actor || ':' || c.rows, ',' ORDER BY source, seq)
  FROM access_audit.who_read('customers', 2000) w
  JOIN access_audit.collected c USING (source, seq)}),
	'support:mallory:2500', 'a key read on one source only is found there only');
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || actor || ':' || query, ',')
  FROM access_audit.who_read('accounts', 'a7@x')}),
	"sales:mallory:SELECT secret FROM accounts WHERE email = 'a7\@x'",
	'a hashed (text) key is found with its source\'s secret');
is($central->safe_psql('postgres', q{SELECT count(*) FROM access_audit.who_read('accounts', 'a8@x')}),
	'0', 'and no other text key matches');
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || relation || ':' || n, ',' ORDER BY source)
  FROM (SELECT source, relation, count(*) AS n
          FROM access_audit.rows_read_by('mallory', now() - interval '1 day', now() + interval '1 day')
         WHERE relation = 'public.customers' GROUP BY 1, 2) s}),
	'sales:public.customers:1500,support:public.customers:2500',
	'rows_read_by() gives each source\'s keys');
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || key, ',' ORDER BY key)
  FROM access_audit.overlap('alice', 'carol', now() - interval '1 day', now() + interval '1 day')}),
	join(',', map { "sales:$_" } 1 .. 10), 'overlap() of two actors of a source');
is($central->safe_psql('postgres', q{
SELECT count(*) FROM access_audit.overlap('alice', 'bob', now() - interval '1 day', now() + interval '1 day')}),
	'0', 'the same key on two sources is two different rows');
for my $name ('sales', 'support')
{
	is($central->safe_psql('postgres',
		"SELECT ok || ' ' || (checked > 0) FROM access_audit.verify_rows(source => '$name')"),
		'true true', "verify_rows() checks the row sets collected from $name");
}
is($central->safe_psql('postgres', q{SELECT count(*) FROM access_audit.row_sets}), '0',
	"the central server's own row sets hold none of the sources'");
is($central->safe_psql('postgres', 'SELECT count(*) FROM access_audit.log'),
	$central_own, "the central server's own log holds only its own records");
is($central->safe_psql('postgres', q{SELECT ok FROM access_audit.verify()}), 't',
	"the central server's own chain verifies");

for my $name ('sales', 'support')
{
	is($central->safe_psql('postgres',
		"SELECT ok || ' ' || (checked > 0) FROM access_audit.verify(source => '$name')"),
		'true true', "verify() checks the chain collected from $name");
}
my ($ret, $out, $err) = $central->psql('postgres',
	q{SELECT * FROM access_audit.verify(source => 'nowhere')});
like($err, qr/no records have been collected from source "nowhere"/,
	'verify() names an unknown source');

# a dump of the central server carries what it collected; the restore
# verifies each source's chain on the way in
my $central_dump = $central->basedir . '/central.dump';
$central->command_ok(
	[ 'pg_dump', '-Fc', '--no-subscriptions', '-f', $central_dump, '-d', $central->connstr('postgres') ],
	'pg_dump of the central server');
$central->safe_psql('postgres', 'CREATE DATABASE central_copy');
$central->command_ok(
	[ 'pg_restore', '--exit-on-error', '-d', $central->connstr('central_copy'), $central_dump ],
	'pg_restore of the central server');
my $collected_sql = q{SELECT string_agg(source || ':' || n || ':' || h, ',' ORDER BY source)
  FROM (SELECT source, count(*) AS n, md5(string_agg(encode(hash, 'hex'), '' ORDER BY seq)) AS h
          FROM access_audit.collected_log GROUP BY source) s};
is($central->safe_psql('central_copy', $collected_sql),
	$central->safe_psql('postgres', $collected_sql),
	'the collected records of every source are restored');
is($central->safe_psql('central_copy', q{
SELECT string_agg(source || ':' || actor, ',' ORDER BY source, seq)
  FROM access_audit.who_read('customers', 2000)}),
	'support:mallory', 'the restored central server answers who_read()');
is($central->safe_psql('central_copy', q{SELECT string_agg(source || ':' || actor, ',')
  FROM access_audit.who_read('accounts', 'a7@x')}),
	'sales:mallory', 'with the sources\' secrets');
is($central->safe_psql('central_copy',
	q{SELECT ok FROM access_audit.verify_rows(source => 'support')}),
	't', 'the collected row sets verify after the restore');
for my $name ('sales', 'support')
{
	is($central->safe_psql('central_copy',
		"SELECT ok || ' ' || (checked > 0) FROM access_audit.verify(source => '$name')"),
		'true true', "the chain collected from $name verifies after the restore");
}
$central->safe_psql('central_copy', q{SELECT access_audit.flush('60 s')});
is($central->safe_psql('central_copy', q{
SELECT detail::jsonb ->> 'sources' FROM access_audit.log
 WHERE command = 'MAINTENANCE' AND detail::jsonb ->> 'action' = 'RESTORE'}),
	'2', 'the restore record counts the sources verified');

# ranking covers both sources
is($central->safe_psql('postgres', q{SELECT access_audit.collect_rollup() > 0}), 't',
	'collect_rollup() adds the collected reads to the roll-up');
is($central->safe_psql('postgres', q{
SELECT string_agg(relation || '=' || rows, ',' ORDER BY relation)
  FROM access_audit.actor_daily WHERE actor = 'mallory'}),
	'sales:public.accounts=1,sales:public.customers=1500,support:public.customers=2500',
	"mallory's reads on both sources, per source");
is($central->safe_psql('postgres', q{SELECT access_audit.collect_rollup()}), '0',
	'a second roll-up adds nothing twice');
is($central->safe_psql('postgres', q{
SELECT string_agg(actor, ',' ORDER BY actor) FROM access_audit.rank_exporters()}),
	'alice,bob,carol,mallory', 'rank_exporters() ranks the actors of both sources');
is($central->safe_psql('postgres', q{
SELECT actor || ' ' || volume FROM access_audit.rank_exporters() ORDER BY rank LIMIT 1}),
	'mallory 4001', 'the bulk exporter across both sources ranks first');

# the scheduled alert check rolls up new arrivals itself
$src{support}->safe_psql('postgres', q{
SET access_audit.actor = 'mallory';
SELECT phone FROM customers WHERE id <= 4000;
SELECT access_audit.flush();
});
$src{support}->wait_for_catchup('support');
# a month of ordinary history for everyone (as an earlier import would give)
$central->safe_psql('postgres', q{
SET access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements)
SELECT current_date - d, a, 'sales:public.customers', 15 + (d % 7), 15 + (d % 7), 3
  FROM generate_series(1, 30) d, unnest(ARRAY['alice', 'bob', 'carol', 'mallory']) a;
});
is($central->safe_psql('postgres', q{SELECT access_audit.check_exports()}), '1',
	'check_exports() on the central server raises one alert');
is($central->safe_psql('postgres', q{
SELECT actor || ' ' || (detail->>'volume') FROM access_audit.alerts}),
	'mallory 8001', "the alert is mallory's, counting the newest reads too");

# a statement reading two tagged tables counts once in the central roll-up
$src{sales}->safe_psql('postgres', q{
CREATE TABLE orders (id int PRIMARY KEY, customer int, card text);
INSERT INTO orders SELECT g, g, '4111-' || g FROM generate_series(1, 700) g;
SECURITY LABEL FOR access_audit ON COLUMN orders.card IS 'pci';
SET access_audit.actor = 'dave';
SELECT c.phone, o.card FROM customers c JOIN orders o ON o.customer = c.id;
SELECT access_audit.flush();
});
$src{sales}->wait_for_catchup('sales');
$central->safe_psql('postgres', 'SELECT access_audit.collect_rollup()');
is($central->safe_psql('postgres', q{
SELECT d.volume || ' ' || d.statements || ' ' || d.relations || ' '
       || (d.volume = (SELECT greatest(c.rows, c.tagged_rows) FROM access_audit.collected c
                        WHERE c.actor = 'dave'))
  FROM access_audit.daily_exports d WHERE d.actor = 'dave'}),
	'5700 1 2 true', 'a join of two tagged tables counts once, as shares of its two relations');

# the collected copy is append-only, and tampering with it is detected
($ret, $out, $err) = $central->psql('postgres',
	q{DELETE FROM access_audit.collected_log WHERE source = 'sales'});
like($err, qr/DELETE on "access_audit.collected_log" is not allowed/,
	'collected records cannot be deleted');
($ret, $out, $err) = $central->psql('postgres',
	q{INSERT INTO access_audit.collected_strings VALUES ('sales', 999, 0, 'x')});
like($err, qr/INSERT on "access_audit.collected_strings" is not allowed/,
	'only replication adds collected rows');
my $bad = $central->safe_psql('postgres', q{
SELECT min(seq) FROM access_audit.collected_log WHERE source = 'support' AND rows = 2500});
$central->safe_psql('postgres', qq{
SET access_audit.maintenance = on;
UPDATE access_audit.collected_log SET rows = 25 WHERE source = 'support' AND seq = $bad;
});
is($central->safe_psql('postgres',
	q{SELECT ok || ' ' || first_bad_seq FROM access_audit.verify(source => 'support')}),
	"false $bad", 'verify() finds the changed record of that source');
is($central->safe_psql('postgres', q{SELECT ok FROM access_audit.verify(source => 'sales')}),
	't', 'the other source still verifies');

# a changed collected row set is found, and a dump holding it does not restore
$central->safe_psql('postgres', q{
SET access_audit.maintenance = on;
UPDATE access_audit.collected_row_sets SET n = n + 1
 WHERE source = 'support' AND id = (SELECT min(id) FROM access_audit.collected_row_sets
                                     WHERE source = 'support');
});
like($central->safe_psql('postgres',
	q{SELECT ok || ' ' || detail FROM access_audit.verify_rows(source => 'support')}),
	qr/^false row set \d+ does not match its hash$/, 'verify_rows() finds the changed row set');
is($central->safe_psql('postgres', q{SELECT ok FROM access_audit.verify_rows(source => 'sales')}),
	't', 'the other source\'s row sets still verify');
($ret, $out, $err) = $central->psql('postgres',
	q{SELECT * FROM access_audit.verify_rows(source => 'nowhere')});
like($err, qr/no records have been collected from source "nowhere"/,
	'verify_rows() names an unknown source');
my $bad_dump = $central->basedir . '/central_bad.dump';
$central->command_ok(
	[ 'pg_dump', '-Fc', '--no-subscriptions', '-f', $bad_dump, '-d', $central->connstr('postgres') ],
	'pg_dump of the central server with a changed row set');
$central->safe_psql('postgres', 'CREATE DATABASE central_bad');
$central->command_fails_like(
	[ 'pg_restore', '--exit-on-error', '--single-transaction', '-d', $central->connstr('central_bad'), $bad_dump ],
	qr/the row identities collected from source "support" do not verify: row set \d+ does not match its hash/,
	'a dump with a changed collected row set does not restore');

# a row set forged on a source (with a hash that does not follow) is
# refused on arrival and recorded; the next genuine one arrives
my $forged = $src{sales}->safe_psql('postgres',
	'SELECT max(id) + 1 FROM access_audit.row_sets');
$src{sales}->safe_psql('postgres', q{
SET access_audit.maintenance = on;
INSERT INTO access_audit.row_sets (id, link, relation, chunk, lo, hi, n, data, hash)
SELECT max(id) + 1, 42, 'public.customers', 0, 4999, 4999, 1, '\x0000'::bytea, sha256('forged')
  FROM access_audit.row_sets;
});
$src{sales}->wait_for_catchup('sales');
is($central->safe_psql('postgres', q{
SELECT count(*) FROM access_audit.collected_row_sets WHERE source = 'sales' AND link = 42}),
	'0', 'a forged row set is not collected');
$central->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
is($central->safe_psql('postgres', q{
SELECT (detail::jsonb ->> 'source') || ': ' || (detail::jsonb ->> 'why') FROM access_audit.log
 WHERE command = 'REFUSED' AND detail::jsonb ->> 'action' = 'COLLECT'}),
	"sales: row set $forged does not match its hash",
	'the refusal is recorded with its source and reason');
$src{sales}->safe_psql('postgres', q{
SET access_audit.actor = 'frank';
SELECT phone FROM customers WHERE id = 7;
SELECT access_audit.flush();
});
$src{sales}->wait_for_catchup('sales');
is($central->safe_psql('postgres', q{
SELECT string_agg(source || ':' || actor, ',') FROM access_audit.who_read('customers', 7)
 WHERE actor = 'frank'}),
	'sales:frank', 'the next row set of the source arrives');
is($central->safe_psql('postgres',
	q{SELECT ok || ' ' || detail FROM access_audit.verify_rows(source => 'sales')}),
	"false row set $forged is missing", 'verify_rows() names the gap the refused set left');

$central->stop;
$src{$_}->stop for keys %src;
done_testing();
