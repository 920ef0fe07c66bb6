/*-------------------------------------------------------------------------
 *
 * capture.h
 *		Interface of the executor and utility hooks that capture reads.
 *
 * IDENTIFICATION
 *	  extension/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_CAPTURE_H
#define AA_CAPTURE_H

#include "nodes/plannodes.h"

#include "access_audit.h"
#include "tags.h"

extern void aa_capture_init(void);
extern AuditDerivedTags *aa_derived_tags_of(PlannedStmt *stmt, List *tlist,
											Plan *top, const char *command,
											MemoryContext cxt);
extern List *aa_derived_dml_copies(PlannedStmt *stmt, MemoryContext cxt);

#endif							/* AA_CAPTURE_H */
