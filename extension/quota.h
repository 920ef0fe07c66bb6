/*-------------------------------------------------------------------------
 *
 * quota.h
 *		Interface of export quotas, enforced while a statement reads.
 *
 * IDENTIFICATION
 *	  extension/quota.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_QUOTA_H
#define AA_QUOTA_H

#include "executor/execdesc.h"
#include "executor/instrument.h"
#include "nodes/pg_list.h"
#include "datatype/timestamp.h"

#include "access_audit.h"

extern void aa_quota_init(void);
extern void aa_quota_annotate(AuditRecord *rec, MemoryContext cxt);
extern void *aa_quota_start(QueryDesc *queryDesc, AuditRecord *rec,
							List *scans);
extern uint64 aa_quota_generation(void);
extern uint64 aa_quota_set_stamp(void);
extern bool aa_quota_set_stale(uint64 stamp, const char *actor);
extern void aa_quota_restart(void **handle, QueryDesc *queryDesc,
							 AuditRecord *rec, List *scans);
extern void aa_quota_run_end(void *handle);
extern void aa_quota_run_failed(void *handle);
extern bool aa_quota_refused(void *handle);

/* the writer: quota hits it stores become alerts */
extern List *aa_quota_alert_note(List *hits, int64 seq, TimestampTz ts,
								 const char *actor, const char *command,
								 const char *detail);
extern void aa_quota_raise_alerts(List *hits);

/* the launcher: keep the counters across restarts */
extern void aa_quota_save_counters(void);

#endif							/* AA_QUOTA_H */
