# The analyst role end to end: an investigator (member of
# access_audit_analyst only) schedules the alert job with pg_cron as
# themselves, the job raises the alert, they acknowledge it and read the
# report, and they cannot untag what they investigate.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(clear_of_day_boundary);

my $node = PostgreSQL::Test::Cluster->new('analyst');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 20
});
$node->start;
# the seed, the cron job's run and the checks fall on one business day
clear_of_day_boundary($node, 240);

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION access_audit;
CREATE ROLE investigator LOGIN IN ROLE access_audit_analyst;
GRANT USAGE ON SCHEMA cron TO investigator;
CREATE TABLE customers (id int PRIMARY KEY, phone text);
SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS 'pii';
-- 30 quiet days for twelve clerks, then one of them exports
SET access_audit.maintenance = on;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
SELECT access_audit.business_day(now()) - d, 'clerk-' || a, 'public.customers', 20 + (a * 7 + d) % 9, 0, 5, 0
  FROM generate_series(1, 30) d, generate_series(1, 12) a;
INSERT INTO access_audit.actor_daily (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
SELECT access_audit.business_day(now()), 'clerk-' || a,
       'public.customers', CASE WHEN a = 7 THEN 48210 ELSE 22 END, 0, 5, 0
  FROM generate_series(1, 12) a;
RESET access_audit.maintenance;
});

my $as_inv = $node->connstr('postgres') . ' user=investigator';

$node->safe_psql('postgres',
	q{SELECT cron.schedule('access_audit alerts', '* * * * *', 'SELECT access_audit.check_exports()')},
	connstr => $as_inv);
is($node->safe_psql('postgres', q{SELECT username FROM cron.job}), 'investigator',
	'the analyst scheduled the job as themselves');

# pg_cron runs jobs at minute boundaries: wait for the first run
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')}, 't')
  or die 'the cron job never ran';
is($node->safe_psql('postgres',
	q{SELECT status || ' ' || return_message FROM cron.job_run_details ORDER BY runid LIMIT 1}),
	'succeeded SELECT 1', 'the job ran check_exports() as the analyst');
is($node->safe_psql('postgres', q{SELECT string_agg(actor, ',') FROM access_audit.alerts}),
	'clerk-7', 'it raised the alert');

my $id = $node->safe_psql('postgres', q{SELECT alert_id FROM access_audit.alerts});
ok($node->safe_psql('postgres', qq{SELECT access_audit.ack($id, 'called clerk-7')}, connstr => $as_inv) > 0,
	'the analyst acknowledges it');
like($node->safe_psql('postgres', q{SELECT access_audit.report()}, connstr => $as_inv),
	qr/clerk-7/, 'and reads the report');

my ($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SECURITY LABEL FOR access_audit ON COLUMN customers.phone IS NULL}, connstr => $as_inv);
like($stderr, qr/permission denied to change access_audit tags/, 'the analyst cannot untag');
like($stderr, qr/access_audit_admin/, 'the error names the role that may');
($ret, $stdout, $stderr) = $node->psql('postgres',
	q{SELECT access_audit.untag('customers', 'phone')}, connstr => $as_inv);
like($stderr, qr/permission denied for function untag/, 'nor through the helper');
is($node->safe_psql('postgres',
	q{SELECT tag FROM access_audit.tagged_columns WHERE "table" = 'customers'}),
	'pii', 'the tag is still there');

# A tag in a database without the extension would audit nothing: the admin
# is refused with a hint (the guard's rule), and no tag is left behind.
$node->safe_psql('postgres', 'CREATE DATABASE plain');
$node->safe_psql('plain', 'CREATE TABLE t (secret text)');
($ret, $stdout, $stderr) = $node->psql('plain',
	q{SECURITY LABEL FOR access_audit ON COLUMN t.secret IS 'pii'});
like($stderr, qr/extension "access_audit" is not installed in database "plain".*HINT:  Run CREATE EXTENSION access_audit/s,
	'tagging where the extension is missing is refused with a hint');
is($node->safe_psql('plain', q{SELECT count(*) FROM pg_seclabels WHERE provider = 'access_audit'}),
	'0', 'and leaves no tag');

$node->stop;
done_testing();
