/*-------------------------------------------------------------------------
 *
 * access_audit.c
 *		Module entry point: settings, then each module's init, in order.
 *
 * This file owns PG_MODULE_MAGIC and the order in which the modules define
 * their settings and install their hooks.  It holds no state.  It is the
 * root of the file-level call graph: it calls every module's init and no
 * file calls it (test/call-cycles.sh).
 *
 * IDENTIFICATION
 *	  extension/access_audit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"

#include "access_audit.h"
#include "capture.h"
#include "compat.h"
#include "guard.h"
#include "hints.h"
#include "queue.h"
#include "rowids.h"
#include "quota.h"
#include "restore.h"
#include "siem.h"
#include "tags.h"
#include "writer.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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

	/*
	 * pg_upgrade's restore of the schema (binary-upgrade mode): nothing to
	 * capture, guard or write, but the tags must restore (restore.c).
	 */
	if (IsBinaryUpgrade)
	{
		aa_restore_binary_upgrade_init();
		return;
	}

	aa_settings_define();

	EnableQueryId();

	/* shared memory first: the other modules use the queue */
	aa_queue_init();
	aa_tags_init();
	aa_capture_init();
	/* after capture: its utility hook must see COPY before capture does */
	aa_quota_init();
	aa_guard_init();
	aa_restore_init();
	aa_writer_init();
	aa_hints_init();
	aa_siem_init();
	aa_rowids_init();
}
