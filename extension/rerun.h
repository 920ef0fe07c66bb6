/*-------------------------------------------------------------------------
 *
 * rerun.h
 *		Interface of the search for code that maintenance commands run
 *		again over tagged tables.
 *
 * IDENTIFICATION
 *	  extension/rerun.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_RERUN_H
#define AA_RERUN_H

#include "nodes/nodes.h"
#include "nodes/pg_list.h"

/* user-defined code of one tagged table that a statement evaluates again */
typedef struct AuditRerunCode
{
	Oid			relid;			/* the table whose rows the code sees */
	Node	   *exprs;			/* List of cooked expressions over relid */
	const char *what;			/* index "i", statistics "s"... */
} AuditRerunCode;

extern List *aa_rerun_code(Node *parsetree);

#endif							/* AA_RERUN_H */
