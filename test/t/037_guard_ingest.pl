# access_audit_ingest members ship standby records to ingest(): each ring
# and origin is bound to the role that first shipped it (or the role an
# admin sets in ingest_sources), so one member cannot claim another
# standby's ring or name; positions that jump far ahead (which would make
# the ring's later records look old and be dropped) are refused; every
# refusal is recorded; tag_changes shows the origin of its records.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_ingest');
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
CREATE ROLE ship_a LOGIN IN ROLE access_audit_ingest;
CREATE ROLE ship_b LOGIN IN ROLE access_audit_ingest;
});

# the wire form of one GAP record (the simplest a standby ships): position,
# kind 2, body length 8, lost bytes
sub gap
{
	my ($pos) = @_;
	return '\x' . unpack('H*', pack('Q<L<L<q<', $pos, 2, 8, 100));
}

# the wire form of one read record with the given command (kind 1: the
# fixed part, then login role, effective role, actor, claimed actor,
# client address, application name, query, command, detail and origin)
sub read_record
{
	my ($pos, $command) = @_;
	my $str = sub {
		my ($v) = @_;
		return defined $v ? pack('l<', length($v)) . $v . "\0" : pack('l<', -1);
	};
	my $body = pack('q<5 l<8 q<2', 0, 0, 0, 1, 0, 4242, 0, 0, 0, 0, 0, 0, 0, 0, 0);
	$body .= $str->($_) foreach ('mallory', 'mallory', undef, undef, undef, 'psql',
		"SECURITY LABEL FOR access_audit ON COLUMN t.c IS NULL", $command, undef, undef);
	return '\x' . unpack('H*', pack('Q<L<L<', $pos, 1, length($body)) . $body);
}

sub ingest
{
	my ($role, $origin, $ring, $records) = @_;
	my ($ret, $out, $err) = $node->psql('shop',
		"SELECT access_audit.ingest('$origin', $ring, '$records')",
		extra_params => [ '-U', $role ]);
	return $ret == 0 ? "ok $out" : ($err =~ /ERROR:\s+(.*)/)[0];
}

is(ingest('ship_a', 'standby-a/1', 42, gap(1000)), 'ok 1000',
	'the first role to ship a ring registers it');
is(ingest('ship_a', 'standby-a/1', 42, gap(2000)), 'ok 2000',
	'and ships more for it');
is(ingest('ship_b', 'standby-a/1', 42, gap(3000)),
	'ring 42 is shipped by role "ship_a", not "ship_b"',
	"another ingest role cannot ship that ring");
is(ingest('ship_b', 'standby-a/1', 43, gap(3000)),
	'origin "standby-a/1" is shipped by role "ship_a", not "ship_b"',
	"nor take the standby's name for a ring of its own");
is(ingest('ship_a', 'standby-x/9', 42, gap(3000)),
	'ring 42 belongs to origin "standby-a/1", not "standby-x/9"',
	'a ring keeps its origin');
is(ingest('ship_a', 'standby-a/1', 42, gap(2000 + 2**51)),
	'position ' . (2000 + 2**51) . ' of ring 42 jumps too far ahead of 2000',
	'a position that jumps far ahead is refused');
is(ingest('ship_a', 'standby-a/1', 42, gap(2500)), 'ok 2500',
	'the ring goes on from where it was');
is(ingest('ship_b', 'standby-b/2', 44, gap(10)), 'ok 10',
	'another standby registers its own ring');

# a standby changes no tags: a shipped tag change is forged
is(ingest('ship_b', 'standby-b/2', 44, read_record(20, 'SECURITY LABEL')),
	'a hot standby cannot ship tag changes', 'a shipped tag change is refused');
is(ingest('ship_b', 'standby-b/2', 44, read_record(30, 'SELECT')), 'ok 30',
	'a shipped read is taken');

# an admin may rebind a ring (a standby given a new role)
$node->safe_psql('shop', q{UPDATE access_audit.ingest_sources SET role = 'ship_b' WHERE ring_id = 42});
is(ingest('ship_b', 'standby-a/1', 42, gap(2600)), 'ok 2600',
	"an admin's mapping is followed");

$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{
SELECT string_agg(login_role || ' ' || (detail::jsonb ->> 'why'), E'\n' ORDER BY seq)
  FROM access_audit.log WHERE command = 'REFUSED'}),
	"ship_b ring registered for role ship_a\n"
	  . "ship_b origin registered for role ship_a\n"
	  . "ship_a ring registered for origin standby-a/1\n"
	  . "ship_a position " . (2000 + 2**51) . " after 2000\n"
	  . "ship_b tag change from a standby",
	'each refusal is recorded');
is($node->safe_psql('shop', q{
SELECT string_agg(concat_ws(' ', detail::jsonb ->> 'origin', detail::jsonb ->> 'ring_id', detail::jsonb ->> 'role'), ',' ORDER BY seq)
  FROM access_audit.log WHERE command = 'INGEST SOURCE'}),
	'standby-a/1 42 ship_a,standby-b/2 44 ship_b', 'each registration is recorded');
is($node->safe_psql('shop', q{
SELECT string_agg(DISTINCT origin, ',') FROM access_audit.log WHERE command = 'GAP'}),
	'standby-a/1,standby-b/2', 'the shipped records keep their origin');
is($node->safe_psql('shop', q{
SELECT count(*) FROM access_audit.tag_changes}), '0', 'no forged tag change is in tag_changes');
is($node->safe_psql('shop', q{
SELECT count(*) FROM information_schema.columns
 WHERE table_schema = 'access_audit' AND table_name = 'tag_changes' AND column_name = 'origin'}),
	'1', 'tag_changes shows the origin');

done_testing();
