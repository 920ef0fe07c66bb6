# A record the log cannot take as it is never stops the writer (issue 16,
# item 3).  A 6 kB actor, once beyond actor_daily's btree key, is stored
# cut with a marker.  A record that the log still refuses (here: CHECK
# constraints added in maintenance mode) is stored cut down to plain values,
# or as a GAP record that says why, and the records around it are written
# as they are.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('writer_poison');
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
GRANT access_audit_app TO CURRENT_USER;
});

sub read_as
{
	my ($actor) = @_;
	$node->safe_psql('shop', qq{
SELECT set_config('access_audit.actor', $actor, false) IS NOT NULL;
SELECT phone FROM customers WHERE id = 1;
});
}

# a 6 kB actor, then an ordinary one
read_as(q{repeat('y', 6000)});
read_as(q{'after'});
is($node->safe_psql('shop', q{SELECT access_audit.flush('20 s')}), 't',
	'flush() returns after a 6 kB actor');
is( $node->safe_psql('shop', q{
SELECT string_agg(left(actor, 3) || ' ' || (length(actor) < 1024)::text, ', ' ORDER BY seq)
  FROM access_audit.log WHERE command = 'SELECT'}),
	'yyy true, aft true', 'both reads are recorded, the long actor cut');
is( $node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.actor_daily WHERE actor LIKE 'yyy%truncated: 6000 bytes%'}),
	'1', 'the roll-up has the cut actor');

# The log refuses values: a tab in an actor (fixed by storing it cut down)
# and the actor "poison" (refused whatever is done to it).
$node->safe_psql('shop', q{
SET access_audit.maintenance = on;
ALTER TABLE access_audit.actor_daily ADD CONSTRAINT no_tab CHECK (strpos(actor, chr(9)) = 0);
ALTER TABLE access_audit.actor_daily ADD CONSTRAINT no_poison CHECK (actor <> 'poison');
});
read_as(q{'before'});
read_as(q{'tab' || chr(9) || 'here'});
read_as(q{'poison'});
read_as(q{'last'});
is($node->safe_psql('shop', q{SELECT access_audit.flush('20 s')}), 't',
	'flush() returns although the log refuses two records');
is( $node->safe_psql('shop', q{
SELECT string_agg(command || ' ' || coalesce(actor, '-') || ' ' ||
                  coalesce(split_part(coalesce(detail::jsonb ->> 'degraded', detail::jsonb ->> 'unstorable'), ':', 1), '-'),
                  ', ' ORDER BY seq)
  FROM access_audit.log WHERE seq > (SELECT max(seq) FROM access_audit.log WHERE actor = 'after')
   AND command IN ('SELECT', 'GAP')}),
	'SELECT before -, SELECT tab?here 23514, GAP - 23514, SELECT last -',
	'the refused records are stored cut down or as a gap that says why');
ok($node->log_contains(qr/access_audit stored a record of database "shop" as a gap/),
	'the gap is reported in the server log');
is($node->safe_psql('shop', 'SELECT ok FROM access_audit.verify()'), 't',
	'the chain is whole');

$node->stop;
done_testing();
