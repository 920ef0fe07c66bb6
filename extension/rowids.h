/*-------------------------------------------------------------------------
 *
 * rowids.h
 *		Interface of row identities: which rows of tracked tables a read
 *		record read (breach scoping).
 *
 * IDENTIFICATION
 *	  extension/rowids.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_ROWIDS_H
#define AA_ROWIDS_H

#include "access_audit.h"

#include "executor/execdesc.h"
#include "nodes/execnodes.h"

extern void aa_rowids_init(void);

/* capture: a statement's row sets (state is NULL until a tracked scan) */
extern void aa_rowids_scan(void **state, PlanState *ps, bool leaky,
						   MemoryContext cxt);
extern bool aa_rowids_tracks(Oid relid);
extern void aa_rowids_copy(void **state, Oid relid, int64 limit,
						   MemoryContext cxt);
extern void aa_rowids_finish(void **state, AuditRecord *rec);
extern void aa_rowids_discard(void **state);
extern void aa_rowids_worker_start(QueryDesc *queryDesc);
extern void aa_rowids_worker_end(void);

/* the writer (SPI connected) */
extern void aa_rowids_verify_restored(bool collected);
extern int64 aa_rowids_link(int32 pid, TimestampTz ts, int32 row_set);
extern void aa_rowids_batch_begin(void);
extern void aa_rowids_batch_end(void);
extern void aa_rowids_store_chunk(const AuditRowChunk *c);
extern void aa_rowids_store_link(int64 seq, const uint8 *hash,
								 const AuditRecord *rec);

#endif							/* AA_ROWIDS_H */
