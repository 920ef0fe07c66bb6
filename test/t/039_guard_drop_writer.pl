# DROP EXTENSION, DROP SCHEMA and ALTER EXTENSION UPDATE change several
# audit tables at once.  A writer in the middle of a batch holds locks on
# some of them and may wait for one the DDL has already locked, while the
# DDL waits for the writer's: the deadlock detector then fails the DDL
# ("deadlock detected", seen under load on DROP EXTENSION).  The DDL first
# takes the writer's exclusion lock (restore.c), so it waits only for the
# batch being written and no batch starts under it.  This test pins that
# lock (deterministically, through pg_locks) and then drops and re-creates
# the extension under a steady stream of audited reads.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_drop_writer');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit'
access_audit.queue_size = 4MB
access_audit.flush_interval = 10ms
max_worker_processes = 16
});
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers SELECT g, '555-' || g FROM generate_series(1, 100) g;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});

# the writer's exclusion lock: advisory, class 0x4141 (objsubid 16705)
my $lockq = q{SELECT count(*) FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 16705
    AND mode = 'RowExclusiveLock' AND granted AND pid <> pg_backend_pid()};

my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->query_safe(q{BEGIN; SET LOCAL access_audit.maintenance = on; SET LOCAL client_min_messages = warning;});
$bg->query_safe(q{DROP EXTENSION access_audit;});
is($node->safe_psql('postgres', $lockq), '1',
	'DROP EXTENSION holds the writer exclusion lock until its transaction ends');
$bg->query_safe('ROLLBACK');
is($node->safe_psql('postgres', $lockq), '0', 'released at rollback');

$bg->query_safe(q{BEGIN; SET LOCAL access_audit.maintenance = on; SET LOCAL client_min_messages = warning;});
$bg->query_safe(q{DROP SCHEMA access_audit CASCADE;});
is($node->safe_psql('postgres', $lockq), '1', 'so does DROP SCHEMA of the extension schema');
$bg->query_safe('ROLLBACK');

$bg->query_safe(q{BEGIN; SET LOCAL access_audit.maintenance = on; SET LOCAL client_min_messages = warning;});
$bg->query_safe(q{DROP EXTENSION IF EXISTS some_other_extension;});
is($node->safe_psql('postgres', $lockq), '0', 'a drop of another extension does not');
$bg->query_safe('ROLLBACK');
$bg->quit;

# drop and re-create under a stream of audited reads: never a deadlock
my $reader = $node->background_psql('postgres', on_error_stop => 0);
my $failures = '';
for my $i (1 .. 15)
{
	$reader->query_safe(q{SELECT count(phone) FROM customers; SELECT phone FROM customers WHERE id = 7;})
	  for 1 .. 5;
	my ($ret, $out, $err) = $node->psql('postgres', q{
SET access_audit.maintenance = on;
DROP EXTENSION access_audit;
CREATE EXTENSION access_audit;
RESET access_audit.maintenance;
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
});
	$failures .= "round $i: $err\n" if $ret != 0;
}
$reader->quit;
is($failures, '', 'fifteen drop/create rounds under audited reads, none failed');

$node->safe_psql('postgres', q{SELECT phone FROM customers WHERE id = 1});
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('postgres', q{SELECT (access_audit.verify()).ok}), 't',
	'the last log verifies');

done_testing();
