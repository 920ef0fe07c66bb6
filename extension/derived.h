/*-------------------------------------------------------------------------
 *
 * derived.h
 *		Interface of the tags that copies of tagged data take (derived.c).
 *
 * IDENTIFICATION
 *	  extension/derived.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_DERIVED_H
#define AA_DERIVED_H

#include "nodes/pg_list.h"
#include "nodes/plannodes.h"

#include "access_audit.h"
#include "tags.h"

/*
 * Copies into tables that exist: the INSERTs, UPDATEs and MERGE actions of a
 * statement (its plan, or data-modifying WITH queries) that write values
 * computed from tagged columns into columns without a tag.  A list of
 * DmlCopy, labelled by tags.c when the statement completes
 * (aa_ExecutorEnd), so that reading the copy is audited as reading the
 * original is.
 */
typedef struct DmlCopy
{
	Oid			relid;
	AuditDerivedTags *d;
} DmlCopy;

extern AuditDerivedTags *aa_derived_tags_of(PlannedStmt *stmt, List *tlist,
											Plan *top, const char *command,
											MemoryContext cxt);
extern List *aa_derived_dml_copies(PlannedStmt *stmt, MemoryContext cxt);

#endif							/* AA_DERIVED_H */
