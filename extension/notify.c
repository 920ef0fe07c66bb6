/*-------------------------------------------------------------------------
 *
 * notify.c
 *		Whether a new alert may be announced with NOTIFY now.
 *
 * New alerts (quota hits the writer makes alerts, check_exports) are
 * announced with NOTIFY access_audit_alert in the transaction that
 * inserts them.  PostgreSQL's notification queue is shared by the whole
 * server and bounded (8 GB in PostgreSQL 15 and 16, max_notify_queue_pages
 * from 17 on); it only empties as far as its slowest listener has read,
 * and a listener reads nothing while it sits in an open transaction.  So
 * any role that can log in can fill it: LISTEN, BEGIN, stay idle, and
 * NOTIFY from another session.  A full queue fails the commit of every
 * transaction that has a notification pending ("too many notifications in
 * the NOTIFY queue"), which would be the writer's batch.  NOTIFY is a side
 * channel: the alert row (and its SIEM line) is what counts, and the
 * transaction that stores it must never fail for the announcement.
 *
 * This file owns that decision: access_audit._alert_may_notify() says
 * false when the queue is at least access_audit.alert_notify_limit full
 * (pg_notification_queue_usage(), a fraction) or when the writer writes a
 * batch again after an error (aa_alert_notify_hold), with a WARNING at
 * most once a minute per process.  The SQL callers then leave the NOTIFY
 * out and mark the alert ("notified": false in its detail), which
 * access_audit.status() counts.  The queue can still fill between the
 * check and the commit; the limit (half the queue by default) leaves the
 * rest for that, and a batch that fails anyway is written again with
 * notifications held.
 *
 * Ownership: hold and last_warning are process-local, written only here.
 *
 * IDENTIFICATION
 *	  extension/notify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "notify.h"

PG_FUNCTION_INFO_V1(access_audit_alert_may_notify);

/* the writer writes a batch again after an error: no NOTIFY */
static bool hold = false;

/* when this process last warned of an alert it did not announce */
static TimestampTz last_warning = 0;

/* at most one WARNING per process in this many milliseconds */
#define AA_NOTIFY_WARNING_INTERVAL_MS	60000

/*
 * The writer holds notifications back while it writes a batch again after
 * an error (writer.c): whatever failed, the retry must not fail for the
 * announcement too.
 */
void
aa_alert_notify_hold(bool h)
{
	hold = h;
}

/*
 * access_audit._alert_may_notify() RETURNS boolean: may the caller send
 * NOTIFY access_audit_alert for a new alert now?  false while the writer
 * holds notifications or when the server's notification queue is at least
 * access_audit.alert_notify_limit full; then a WARNING, at most once a
 * minute per process.
 */
Datum
access_audit_alert_may_notify(PG_FUNCTION_ARGS)
{
	LOCAL_FCINFO(usage_fcinfo, 0);
	double		usage;
	TimestampTz now;

	if (hold)
		PG_RETURN_BOOL(false);
	/* pg_notification_queue_usage(): the fraction of the queue in use */
	InitFunctionCallInfoData(*usage_fcinfo, NULL, 0, InvalidOid, NULL, NULL);
	usage = DatumGetFloat8(pg_notification_queue_usage(usage_fcinfo));
	if (usage < aa_alert_notify_limit)
		PG_RETURN_BOOL(true);
	now = GetCurrentTimestamp();
	if (last_warning == 0 ||
		TimestampDifferenceExceeds(last_warning, now,
								   AA_NOTIFY_WARNING_INTERVAL_MS))
	{
		last_warning = now;
		ereport(WARNING,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("access_audit does not announce new alerts with NOTIFY: the notification queue is %.1f%% full",
					   usage * 100.0),
				errdetail("access_audit.alert_notify_limit is %g; the alerts are stored with \"notified\": false in their detail.",
						  aa_alert_notify_limit),
				errhint("A session that LISTENs and stays in an open transaction keeps the queue from emptying: see pg_stat_activity and end it."));
	}
	PG_RETURN_BOOL(false);
}
