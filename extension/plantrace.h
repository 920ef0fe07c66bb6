/*-------------------------------------------------------------------------
 *
 * plantrace.h
 *		Interface of the analysis of what an executor plan reads.
 *
 * IDENTIFICATION
 *	  extension/plantrace.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_PLANTRACE_H
#define AA_PLANTRACE_H

#include "nodes/plannodes.h"

/* offset of attno in RangeTblEntry column bitmaps */
#define ATTBIT(attno)	((attno) - FirstLowInvalidHeapAttributeNumber)

/* Which columns of which range-table entries an expression or plan outputs. */
typedef struct OutputTrace
{
	PlannedStmt *stmt;
	Bitmapset **out;			/* per range-table index, ATTBIT bits */
	List	   *initplans;		/* SubPlan nodes found in initPlan lists */
	int			depth;
	bool		unknown;		/* met something we cannot follow */
	bool		skip_counts;	/* count() passes on no values */
} OutputTrace;

extern void aa_trace_outputs(PlannedStmt *stmt, OutputTrace *t);
extern void aa_trace_expr(Node *expr, Plan *plan, OutputTrace *t);
extern void aa_collect_initplans(Plan *plan, OutputTrace *t);
extern void aa_fold_children(PlannedStmt *stmt, Bitmapset **sets);
extern bool aa_plan_has_view(PlannedStmt *stmt);
extern Bitmapset **aa_referenced_columns(PlannedStmt *stmt, int nrt);
extern bool aa_plan_reads_stats(PlannedStmt *stmt);
extern Bitmapset *aa_stats_scan_nodes(PlannedStmt *stmt);
extern Plan *aa_stats_count_node(PlannedStmt *stmt, Plan *scan);

#endif							/* AA_PLANTRACE_H */
