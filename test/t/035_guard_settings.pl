# Settings and the guard: a pair of business-hours settings that a reload
# accepts never stops the server at its next start (the roll-up falls back
# to 8 to 18 with a WARNING), and every way of changing an access_audit.*
# setting leaves a record.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('guard_settings');
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

# --- business hours: end before start is accepted by a reload ...
$node->safe_psql('postgres', q{
ALTER SYSTEM SET access_audit.business_hours_start = 19;
ALTER SYSTEM SET access_audit.business_hours_end = 18;
});
is($node->safe_psql('postgres', 'SELECT pg_reload_conf()'), 't',
	'a reload takes business hours 19 to 18');

# ... and the next start must not fail on it
$node->stop;
my $started = $node->start(fail_ok => 1);
ok($started, 'the server starts with business hours 19 to 18');
if (!$started)
{
	# leave the node usable for the rest of the file
	$node->append_conf('postgresql.auto.conf',
		"access_audit.business_hours_end = 20\n");
	$node->start;
}
is($node->safe_psql('shop', q{SHOW access_audit.business_hours_start}), '19',
	'the setting is kept as given');
my $log_offset = -s $node->logfile;
$node->safe_psql('shop', q{
SET access_audit.actor = 'night';
SELECT phone FROM customers;
});
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{SELECT rows FROM access_audit.actor_daily WHERE actor = 'night'}),
	'10', 'the writer rolls the read up with the fallback hours');
ok($node->wait_for_log(qr/WARNING: .*business_hours_end \(18\) is not after access_audit.business_hours_start \(19\), using business hours 8 to 18/, $log_offset),
	'the writer warns about the fallback');
my ($ret, $out, $err) = $node->psql('shop', q{
SET access_audit.maintenance = on;
SELECT access_audit.rebuild_daily() > 0;
});
is($out, 't', 'rebuild_daily() runs with the fallback hours');
like($err, qr/WARNING: .*using business hours 8 to 18/, 'rebuild_daily() warns about the fallback');
$node->safe_psql('postgres', q{
ALTER SYSTEM RESET access_audit.business_hours_start;
ALTER SYSTEM RESET access_audit.business_hours_end;
SELECT pg_reload_conf();
});

# --- every way of changing an access_audit.* setting leaves a record
# the records of access_audit.* settings after seq $from, as
# "setting how value previous source" lines
sub setting_records
{
	my ($from, $setting) = @_;
	$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
	return $node->safe_psql('shop', qq{
SELECT concat_ws(' ', d ->> 'how', coalesce(d ->> 'value', '-'), coalesce(d ->> 'previous', '-'),
                 coalesce(d ->> 'source', '-'), coalesce(d ->> 'role', d ->> 'database'))
  FROM (SELECT seq, detail::jsonb AS d FROM access_audit.log
         WHERE command = 'SET' AND seq > $from) s
 WHERE d ->> 'setting' = '$setting' OR (d ->> 'setting' IS NULL AND '$setting' = '')
 ORDER BY seq});
}

sub last_seq
{
	$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
	return $node->safe_psql('shop', q{SELECT coalesce(max(seq), 0) FROM access_audit.log});
}

# set_config() by a superuser, then reads: the change is recorded at the
# next statement, although capture is off from then on
my $from = last_seq();
$node->safe_psql('shop', q{
SELECT set_config('access_audit.enabled', 'off', false);
SELECT phone FROM customers;
SELECT phone FROM customers;
});
is(setting_records($from, 'access_audit.enabled'), 'changed in session off on session',
	'set_config() of access_audit.enabled is recorded once');
is($node->safe_psql('shop', qq{SELECT count(*) FROM access_audit.log WHERE seq > $from AND command = 'SELECT'}),
	'0', 'the reads after it are not captured (that is what the record is for)');

# set_config(..., true): the change, and its end with the transaction
$from = last_seq();
$node->safe_psql('shop', q{
BEGIN;
SELECT set_config('access_audit.enabled', 'off', true);
SELECT 1;
COMMIT;
SELECT 1;
});
is(setting_records($from, 'access_audit.enabled'),
	"changed in session off on session\nconfiguration on off default",
	'a transaction-local change and its end are recorded');

# a function's SET clause: inside it, and back outside
$from = last_seq();
$node->safe_psql('shop', q{
CREATE FUNCTION quiet_read() RETURNS bigint LANGUAGE sql
  SET access_audit.enabled = off
  AS $$ SELECT count(phone) FROM customers $$;
SELECT quiet_read();
SELECT 1;
});
is(setting_records($from, 'access_audit.enabled'),
	"changed in session off on session\nconfiguration on off default",
	"a function's SET clause is recorded, and so is its end");

# SET and RESET: one record each (not one more at the next statement)
$from = last_seq();
$node->safe_psql('shop', q{
SET access_audit.max_query_length = 100;
SELECT 1;
RESET access_audit.max_query_length;
SELECT 1;
});
is($node->safe_psql('shop', qq{
SELECT access_audit.flush('60 s');
SELECT string_agg(detail::jsonb ->> 'how', ',' ORDER BY seq) FROM access_audit.log
 WHERE seq > $from AND command = 'SET' AND detail::jsonb ->> 'setting' = 'access_audit.max_query_length'}),
	"t\nSET,SET", 'SET and RESET are recorded once each');

# ALTER ROLE / ALTER DATABASE ... SET: the statement, and each later
# session that starts with the value
$node->safe_psql('shop', q{CREATE ROLE bob LOGIN SUPERUSER});
$from = last_seq();
$node->safe_psql('shop', q{
ALTER ROLE bob SET access_audit.enabled = off;
ALTER DATABASE shop SET access_audit.max_query_length = 64;
ALTER ROLE bob IN DATABASE shop SET access_audit.max_query_length = 32;
ALTER ROLE bob RESET ALL;
});
is(setting_records($from, 'access_audit.enabled'), 'ALTER ROLE SET off - - bob',
	'ALTER ROLE ... SET access_audit.enabled is recorded');
is(setting_records($from, 'access_audit.max_query_length'),
	"ALTER DATABASE SET 64 - - shop\nALTER ROLE SET 32 - - bob",
	'ALTER DATABASE ... SET and ALTER ROLE ... IN DATABASE ... SET are recorded');
is(setting_records($from, ''), 'ALTER ROLE RESET ALL - - - bob',
	'ALTER ROLE ... RESET ALL is recorded');
$node->safe_psql('shop', q{ALTER ROLE bob SET access_audit.enabled = off});
$from = last_seq();
$node->safe_psql('shop', q{SELECT phone FROM customers}, extra_params => ['-U', 'bob']);
is(setting_records($from, 'access_audit.enabled'), 'session start off - user',
	"a session that starts with capture off by its role's setting is recorded");
is(setting_records($from, 'access_audit.max_query_length'), 'session start 32 - database user',
	"and so is a value from the role's setting in this database");
$node->safe_psql('shop', q{ALTER ROLE bob RESET ALL; ALTER DATABASE shop RESET ALL});

# a reload that changes a setting: recorded by a session that was open
my $bg = $node->background_psql('shop');
$bg->query_safe('SELECT 1');
$from = last_seq();
$node->safe_psql('shop', q{ALTER SYSTEM SET access_audit.enabled = off; SELECT pg_reload_conf()});
my $seen = '';
foreach my $i (1 .. 600)
{
	$seen = $bg->query_safe(q{SHOW access_audit.enabled});
	last if $seen =~ /off/;
	usleep(100_000);
}
like($seen, qr/off/, 'the open session has taken the reload');
$bg->query_safe('SELECT 1');
like(setting_records($from, 'access_audit.enabled'),
	qr/^ALTER SYSTEM off - -\n(.*\n)*configuration off on configuration file$/m,
	'ALTER SYSTEM and the reload that applied it are recorded');
$bg->quit;

# capture off in the configuration, and no session open when it happened:
# each new session says it starts with capture off
$from = last_seq();
$node->safe_psql('shop', q{SELECT phone FROM customers});
like(setting_records($from, 'access_audit.enabled'), qr/^session start off - configuration file$/m,
	'a session that starts with capture off is recorded');
$node->safe_psql('shop', q{ALTER SYSTEM RESET access_audit.enabled; SELECT pg_reload_conf()});

# --- the actor is trusted only when the app session names it itself: a
# database owner's ALTER DATABASE ... SET access_audit.actor is a default
# chosen by someone else, recorded as a claim (and the ALTER as SET)
$node->safe_psql('postgres', q{
CREATE ROLE shop_owner LOGIN;
CREATE ROLE app1 LOGIN IN ROLE access_audit_app;
ALTER DATABASE shop OWNER TO shop_owner;
});
$node->safe_psql('shop', 'GRANT SELECT ON customers TO app1');
$node->safe_psql('shop', q{ALTER DATABASE shop SET access_audit.actor = 'ceo'},
	extra_params => [ '-U', 'shop_owner' ]);
$node->safe_psql('shop', q{SELECT phone FROM customers WHERE id = 1},
	extra_params => [ '-U', 'app1' ]);
$node->safe_psql('shop', q{SET access_audit.actor = 'emp-7'; SELECT phone FROM customers WHERE id = 2},
	extra_params => [ '-U', 'app1' ]);
$node->safe_psql('shop', q{SELECT access_audit.flush('60 s')});
is($node->safe_psql('shop', q{
SELECT string_agg(actor || '/' || coalesce(claimed_actor, '-'), ',' ORDER BY seq)
  FROM access_audit.log WHERE login_role = 'app1' AND command = 'SELECT'}),
	'app1/ceo,emp-7/-',
	'an actor set by the database owner is a claim; the app naming it itself is trusted');
$node->safe_psql('shop', q{ALTER DATABASE shop RESET access_audit.actor});

done_testing();
