# DROP DATABASE of a database with an access_audit log erases the log, and
# no record of the drop can land in it: a database owner (no superuser)
# could so remove every record of the reads made there.  Like DROP
# EXTENSION it needs a superuser in maintenance mode; the refusal and the
# sanctioned drop are recorded in the log of the database the statement
# runs in, and a database without a log is dropped as usual.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('guard_drop_database');
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
CREATE ROLE owner LOGIN CREATEDB;
CREATE DATABASE shop OWNER owner;
CREATE DATABASE plain OWNER owner;
});
$node->safe_psql('shop', q{
CREATE EXTENSION access_audit;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
INSERT INTO customers VALUES (1, '555-1');
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
ALTER TABLE customers OWNER TO owner;
});
$node->safe_psql('shop', 'SELECT phone FROM customers', extra_params => [ '-U', 'owner' ]);
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});

my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop',
	extra_params => [ '-U', 'owner' ]);
like($err, qr/DROP DATABASE of "shop" is not allowed/,
	'the owner cannot drop a database that holds an audit log');
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE shop');
like($err, qr/not allowed/, 'nor can a superuser outside maintenance mode');
is($node->safe_psql('shop', q{SELECT count(*) FROM access_audit.log WHERE command = 'SELECT'}),
	'1', 'the log is still there');

$node->safe_psql('postgres', 'DROP DATABASE plain', extra_params => [ '-U', 'owner' ]);
pass('a database without a log is dropped as usual');

# a session of a database whose log predates the marker marks it too
my $oid = $node->safe_psql('postgres', q{SELECT oid FROM pg_database WHERE datname = 'shop'});
my $marker = $node->data_dir . "/pg_access_audit/log_$oid";
ok(-e $marker, 'CREATE EXTENSION marks the database');
unlink $marker;
$node->safe_psql('shop', 'SELECT 1');
ok(-e $marker, 'a session of the database marks it again');

$node->safe_psql('postgres', q{
SET access_audit.maintenance = on;
DROP DATABASE shop WITH (FORCE);
});
ok(!-e $marker, 'a drop in maintenance mode passes and removes the mark');
$node->safe_psql('postgres', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('postgres', q{
SELECT string_agg(command || ' ' || (detail::jsonb ->> 'database') || ' ' || (detail::jsonb ->> 'by'), ', ' ORDER BY seq)
  FROM access_audit.log WHERE detail::jsonb ->> 'action' = 'DROP DATABASE'}),
	'REFUSED shop owner, REFUSED shop ' . $node->safe_psql('postgres', 'SELECT current_user')
	  . ', MAINTENANCE shop ' . $node->safe_psql('postgres', 'SELECT current_user'),
	'the refusals and the drop are recorded where the statement ran');

done_testing();
