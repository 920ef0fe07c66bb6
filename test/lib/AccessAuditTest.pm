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
package AccessAuditTest;

use strict;
use warnings;
use Exporter 'import';
use Time::HiRes ();

our @EXPORT_OK = qw(clear_of_day_boundary);

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

1;
