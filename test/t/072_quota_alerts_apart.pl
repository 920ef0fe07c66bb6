# The writer raises the alerts of a batch's quota hits one subtransaction
# each: a hit whose alert fails costs that alert (with a WARNING), not the
# alerts of the other hits stored in the same batch.  The writer is held
# with its exclusion lock (an open ALTER EXTENSION UPDATE) so that both
# hits land in one batch; a CHECK added in maintenance mode makes one
# alert fail.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('quota_alerts_apart');
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
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 10) g;
SELECT access_audit.tag('customers', 'phone', 'pii:phone');
CREATE ROLE good_r LOGIN;
CREATE ROLE bad_r LOGIN;
GRANT SELECT ON customers TO good_r, bad_r;
SELECT access_audit.set_quota('actor', 'good_r', 0, 'day', 'warn');
SELECT access_audit.set_quota('actor', 'bad_r', 0, 'day', 'warn');
SET access_audit.maintenance = on;
ALTER TABLE access_audit.alerts ADD CONSTRAINT no_bad_r CHECK (actor <> 'bad_r');
RESET access_audit.maintenance;
SELECT access_audit.flush('60 s');
});

my $lockq = q{SELECT count(*) FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 16705
    AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()};

my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe(q{BEGIN; SET LOCAL access_audit.maintenance = on; SET LOCAL client_min_messages = warning;});
$bg->query_safe(q{ALTER EXTENSION access_audit UPDATE;});
is($node->safe_psql('postgres', $lockq), '1', 'the writer is held');

my $log_offset = -s $node->logfile;
$node->safe_psql('postgres', q{SELECT count(phone) FROM customers WHERE id = 1},
	extra_params => [ '-U', 'bad_r' ]);
$node->safe_psql('postgres', q{SELECT count(phone) FROM customers WHERE id = 2},
	extra_params => [ '-U', 'good_r' ]);
$bg->query_safe('ROLLBACK');
$bg->quit;
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});

is($node->safe_psql('postgres', q{
SELECT string_agg(actor || ' ' || command, ', ' ORDER BY actor)
  FROM access_audit.log WHERE command = 'QUOTA WARN'}),
	'bad_r QUOTA WARN, good_r QUOTA WARN', 'both hits are stored');
is($node->safe_psql('postgres', q{
SELECT string_agg(actor || ' ' || kind, ', ' ORDER BY actor) FROM access_audit.alerts}),
	'good_r quota_warn', 'the failing alert does not take the other with it');
like(slurp_file($node->logfile, $log_offset),
	qr/could not raise 1 of 2 quota alert\(s\) of database "postgres"/,
	'the lost alert is reported');

done_testing();
