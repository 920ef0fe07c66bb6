# test/lib/AccessAuditTest.pm: helpers shared by the TAP tests in test/t.
#
# clear_of_day_boundary: tests that seed actor_daily relative to today and
# later ask rank_exporters() or check_exports() about "now" hold only while
# both happen on the same business day.  A run that straddles midnight
# (the CI run of 2026-12-03 did: the seed went in at 23:59, the pg_cron job
# ran at 00:00:01 and ranked the new, empty day) sees a different window
# and fails for no fault of the code.  The helper waits, when the next day
# boundary of the server's business time zone is nearer than the time the
# test needs, until that boundary has passed.
#
# wait_until_up: the crash tests' wait for the server to come back after a
# crash they caused.
package AccessAuditTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes ();

our @EXPORT_OK = qw(clear_of_day_boundary wait_until_up);

# clear_of_day_boundary($node, $seconds): returns once the next business-day
# boundary is at least $seconds away (sleeping past it if needed); returns
# how many seconds it slept.
sub clear_of_day_boundary
{
	my ($node, $seconds) = @_;
	my $left = $node->safe_psql('postgres', q{
SELECT extract(epoch FROM
         ((now() AT TIME ZONE tz)::date + 1) AT TIME ZONE tz - now())
  FROM (SELECT coalesce(nullif(current_setting('access_audit.business_timezone', true), ''),
                        current_setting('TimeZone')) AS tz) z});
	return 0 if $left >= $seconds;
	my $nap = $left + 2;
	Test::More::note(sprintf('%.0f s to the next business day: waiting for it', $left));
	Time::HiRes::sleep($nap);
	return $nap;
}

# wait_until_up($node, $offset): wait until the server answers again after
# a crash that the caller caused once the server log was $offset bytes
# long.  The postmaster may not have seen the crash yet when the caller
# gets here, so a plain "SELECT 1" could still reach the old server just
# before it resets; the restart is known to have finished only when the
# log, past $offset, shows the reset and then the server ready again.
# poll_query_until() feeds psql its query on stdin: if psql exits at once
# while the server restarts, the write fails (EPIPE) and IPC::Run dies, so
# each attempt runs under eval.
sub wait_until_up
{
	my ($node, $offset) = @_;

	$node->wait_for_log(
		qr/all server processes terminated; reinitializing.*database system is ready to accept connections/s,
		$offset);
	for (1 .. 10 * $PostgreSQL::Test::Utils::timeout_default)
	{
		my $up = eval {
			my ($ret, $out) = $node->psql('postgres', 'SELECT 1');
			$ret == 0 && $out eq '1';
		};
		return if $up;
		Time::HiRes::usleep(100_000);
	}
	die "server did not come back";
}

1;
