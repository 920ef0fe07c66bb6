# The guard's fmgr hook under pg_proc invalidations: SECURITY DEFINER
# functions (a user's, and the extension's check_exports(), inside which
# the guard lets alerts be written) are called in a loop while another
# session keeps replacing functions, so invalidations arrive between the
# start and the end of calls.  The server must stay up, and after every
# call of check_exports() the guard must refuse writes to the audit tables
# again (issue 26; issue 16 item 10).  Counts are bounded; nothing depends
# on timing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('definer');
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
CREATE TABLE results (part text, refused int, leaked int);
CREATE FUNCTION sd(n int) RETURNS int LANGUAGE plpgsql SECURITY DEFINER
	AS $$BEGIN RETURN n; END$$;
CREATE FUNCTION churn(n int) RETURNS int LANGUAGE sql AS 'SELECT 0';
});

# Replace functions (sd itself too, so that its catalog entry is reloaded
# while it is being called), one committed transaction each.
my ($out, $err) = ('', '');
my $churn = IPC::Run::start(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
		'-h', $node->host, '-p', $node->port, '-d', 'postgres',
		'-c', q{
DO $do$
BEGIN
	FOR i IN 1..3000 LOOP
		IF i % 2 = 0 THEN
			EXECUTE format('CREATE OR REPLACE FUNCTION sd(n int) RETURNS int
				LANGUAGE plpgsql SECURITY DEFINER AS %L',
				'BEGIN RETURN n + ' || (i % 5) || ' - ' || (i % 5) || '; END');
		ELSE
			EXECUTE format('CREATE OR REPLACE FUNCTION churn(n int) RETURNS int
				LANGUAGE sql AS %L', 'SELECT ' || i);
		END IF;
		COMMIT;
	END LOOP;
END
$do$}
	],
	'>', \$out, '2>', \$err);

# check_exports() and a forged alert after each call, one transaction each
my ($ret, $aout, $aerr) = $node->psql('postgres', q{
DO $do$
DECLARE
	refused int := 0;
	leaked int := 0;
BEGIN
	FOR i IN 1..150 LOOP
		PERFORM access_audit.check_exports();
		BEGIN
			INSERT INTO access_audit.alerts
				(actor, window_start, window_end, score, reason)
				VALUES ('forged' || i, now(), now(), 99, 'forged');
			leaked := leaked + 1;
		EXCEPTION
			WHEN insufficient_privilege THEN
				refused := refused + 1;
		END;
		COMMIT;
	END LOOP;
	INSERT INTO results VALUES ('check_exports', refused, leaked);
END
$do$});
is($ret, 0, 'check_exports() loop ran to its end') or diag($aerr);

# a user's SECURITY DEFINER function, a few calls per transaction
($ret, $aout, $aerr) = $node->psql('postgres', q{
DO $do$
DECLARE
	s bigint := 0;
BEGIN
	FOR i IN 1..3000 LOOP
		s := s + sd(i);
		IF i % 3 = 0 THEN
			COMMIT;
		END IF;
	END LOOP;
	INSERT INTO results VALUES ('sd', 0, 0);
	COMMIT;
	RAISE NOTICE 'sum %', s;
END
$do$});
is($ret, 0, 'SECURITY DEFINER loop ran to its end') or diag($aerr);
like($aerr, qr/sum 4501500/, 'every call returned its result');

$churn->finish;
is($churn->result(0), 0, 'the replacing session ran to its end') or diag($err);

is($node->safe_psql('postgres',
		q{SELECT refused || ' ' || leaked FROM results WHERE part = 'check_exports'}),
	'150 0', 'every write after check_exports() was refused');
is($node->safe_psql('postgres', q{SELECT count(*) FROM access_audit.alerts}),
	'0', 'no forged alert was written');

# and once more, in one transaction, after all the invalidations
($ret, $aout, $aerr) = $node->psql('postgres', q{
BEGIN;
SELECT access_audit.check_exports();
INSERT INTO access_audit.alerts (actor, window_start, window_end, score, reason)
	VALUES ('forged', now(), now(), 99, 'forged');
COMMIT;
});
like($aerr, qr/INSERT on "access_audit.alerts" is not allowed/,
	'the guard refuses writes after check_exports() in the same transaction');

unlike(PostgreSQL::Test::Utils::slurp_file($node->logfile),
	qr/terminated by signal/, 'no server process crashed');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');

$node->stop;
done_testing();
