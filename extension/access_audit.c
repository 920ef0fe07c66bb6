/*-------------------------------------------------------------------------
 *
 * access_audit.c
 *		Module entry point: settings, then each module's init, in order.
 *
 * This file owns PG_MODULE_MAGIC, the definition of every setting and the
 * order in which the modules install their hooks.  It holds no state of
 * its own beyond the GUC variables, which only the GUC machinery writes.
 *
 * IDENTIFICATION
 *	  extension/access_audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"
#include "utils/queryjumble.h"

#include "access_audit.h"
#include "capture.h"
#include "guard.h"
#include "queue.h"
#include "tags.h"
#include "writer.h"

PG_MODULE_MAGIC;

bool		aa_enabled = true;
int			aa_queue_size_mb = 64;
int			aa_flush_interval_ms = 200;
int			aa_batch_size = 5000;
int			aa_max_query_length = 2048;
char	   *aa_actor = NULL;
bool		aa_maintenance = false;
int			aa_business_hours_start = 8;
int			aa_business_hours_end = 18;
char	   *aa_business_timezone = NULL;

void		_PG_init(void);

/*
 * check hook for access_audit.business_timezone: a zone name the server
 * knows.  No catalog access here.
 */
static bool
check_business_timezone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.",
							*newval ? *newval : "");
		return false;
	}
	return true;
}

/*
 * Module load: only through shared_preload_libraries, since an audit tool
 * that is silently off is worse than none.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit must be loaded via \"shared_preload_libraries\""),
				errhint("Add access_audit to shared_preload_libraries in postgresql.conf and restart the server."));

	if (IsBinaryUpgrade)
		return;

	DefineCustomBoolVariable("access_audit.enabled",
							 "Records reads of tagged columns.",
							 "Turning it off is itself recorded.",
							 &aa_enabled, true, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.queue_size",
							"Size of the shared queue of audit records.",
							"The queue lives in a file under the data directory.",
							&aa_queue_size_mb, 64, 1, 4096, PGC_POSTMASTER,
							GUC_UNIT_MB, NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.flush_interval",
							"Longest time a writer sleeps between batches.",
							NULL,
							&aa_flush_interval_ms, 200, 1, 60000, PGC_SIGHUP,
							GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.batch_size",
							"Most records a writer commits in one transaction.",
							"Takes effect when a writer starts.",
							&aa_batch_size, 5000, 1, 100000, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.max_query_length",
							"Longest query text kept in a record, in bytes.",
							NULL,
							&aa_max_query_length, 2048, 0, 1048576, PGC_SUSET,
							GUC_UNIT_BYTE, NULL, NULL, NULL);
	DefineCustomStringVariable("access_audit.actor",
							   "Application-level user on whose behalf this session reads.",
							   "Trusted only from members of role access_audit_app; otherwise recorded as a claim.",
							   &aa_actor, "", PGC_USERSET, 0,
							   NULL, NULL, NULL);
	DefineCustomBoolVariable("access_audit.maintenance",
							 "Allows superusers to run retention and repairs on the audit log.",
							 "Switching it on and everything done under it is recorded.",
							 &aa_maintenance, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.business_hours_start",
							"First hour (0-23) of business hours, for off-hours volume.",
							NULL,
							&aa_business_hours_start, 8, 0, 23, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomIntVariable("access_audit.business_hours_end",
							"Hour (1-24) at which business hours end.",
							NULL,
							&aa_business_hours_end, 18, 1, 24, PGC_SIGHUP,
							0, NULL, NULL, NULL);
	DefineCustomStringVariable("access_audit.business_timezone",
							   "Time zone of business hours and of the daily roll-up's days.",
							   NULL,
							   &aa_business_timezone, "UTC", PGC_SIGHUP, 0,
							   check_business_timezone, NULL, NULL);
	MarkGUCPrefixReserved("access_audit");

	EnableQueryId();

	/* shared memory first: the other modules use the queue */
	aa_queue_init();
	aa_tags_init();
	aa_capture_init();
	aa_guard_init();
	aa_writer_init();
}
