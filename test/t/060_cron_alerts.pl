# The alert job as users schedule it: pg_cron runs access_audit.check_exports()
# on a real server; the abnormal exporter gets one alert (idempotent across
# runs), listeners get a NOTIFY with a JSON payload, and an acknowledgement
# is a new row, never an update of the alert.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use AccessAuditTest qw(clear_of_day_boundary);

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'access_audit,pg_cron'
cron.database_name = 'postgres'
cron.use_background_workers = on
access_audit.queue_size = 4MB
access_audit.flush_interval = 20ms
max_worker_processes = 20
log_statement = none
});
$node->start;
# the seed, the cron job's run and the checks fall on one business day
clear_of_day_boundary($node, 240);

$node->safe_psql('postgres', q{
CREATE EXTENSION pg_cron;
CREATE EXTENSION access_audit;
-- history: 30 quiet days for twelve clerks, then one of them exports
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

is($node->safe_psql('postgres',
	q{SELECT actor FROM access_audit.rank_exporters() WHERE rank = 1}),
	'clerk-7', 'the exporter ranks first');

$node->safe_psql('postgres',
	q{SELECT cron.schedule('access_audit alerts', '* * * * *', 'SELECT access_audit.check_exports()')});

# pg_cron runs jobs at minute boundaries: wait for the first run
$node->poll_query_until('postgres',
	q{SELECT count(*) > 0 FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')}, 't')
  or die 'the cron job never ran';
is($node->safe_psql('postgres',
	q{SELECT status || ' ' || return_message FROM cron.job_run_details ORDER BY runid LIMIT 1}),
	'succeeded SELECT 1', 'the cron job ran check_exports()');
is($node->safe_psql('postgres', q{SELECT string_agg(actor, ',') FROM access_audit.alerts}),
	'clerk-7', 'one alert, for the exporter');
like($node->safe_psql('postgres', q{SELECT reason FROM access_audit.alerts}),
	qr/exported 48,210 rows/, 'the alert says why, with numbers');

# idempotent: running again in the same window raises nothing new
is($node->safe_psql('postgres', q{SELECT access_audit.check_exports()}), '0',
	'a second run in the same window raises no alert');
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.alerts}), '1',
	'still one alert');

# listeners hear about new alerts: a second clerk starts exporting
my ($stdout, $stderr);
$node->psql('postgres', q{
LISTEN access_audit_alert;
SET access_audit.maintenance = on;
UPDATE access_audit.actor_daily SET rows = 30000
 WHERE actor = 'clerk-3' AND day = access_audit.business_day(now());
RESET access_audit.maintenance;
SELECT access_audit.check_exports();
}, stdout => \$stdout, stderr => \$stderr);
like($stdout . $stderr, qr/Asynchronous notification "access_audit_alert" with payload "\{.*"actor"/,
	'NOTIFY access_audit_alert carries a JSON payload');

# acknowledging adds a row and closes the alert
my $id = $node->safe_psql('postgres',
	q{SELECT alert_id FROM access_audit.alerts WHERE actor = 'clerk-7'});
$node->safe_psql('postgres', qq{SELECT access_audit.ack($id, 'talked to clerk-7')});
is($node->safe_psql('postgres',
	qq{SELECT count(*) FROM access_audit.alerts_open WHERE alert_id = $id}),
	'0', 'an acknowledged alert is no longer open');
is($node->safe_psql('postgres',
	qq{SELECT acked_by = current_user AND note = 'talked to clerk-7' FROM access_audit.alert_acks WHERE alert_id = $id}),
	't', 'the acknowledgement says who and why');

$node->stop;
done_testing();
