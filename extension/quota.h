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

#include "access_audit.h"

extern void aa_quota_init(void);
extern void aa_quota_annotate(AuditRecord *rec, MemoryContext cxt);
extern void *aa_quota_start(QueryDesc *queryDesc, AuditRecord *rec,
							Instrumentation **instr, int ninstr);
extern void aa_quota_run_end(void *handle);

#endif							/* AA_QUOTA_H */
