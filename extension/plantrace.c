/*-------------------------------------------------------------------------
 *
 * plantrace.c
 *		What an executor plan reads: the columns that reach its output,
 *		the columns its scan nodes refer to, and the scans of planner
 *		statistics whose values it uses.
 *
 * This file owns the analysis of a PlannedStmt, nothing else: it reads the
 * plan tree and the range table, never the data, the queue or the tags.
 * capture.c turns its answers into records (which columns are output and
 * which only predicates, which relations a CREATE TABLE AS derives from,
 * where to count rows of pg_statistic).  The functions follow Vars through
 * setrefs.c's OUTER_VAR / INNER_VAR / INDEX_VAR references down to range
 * table entries, and give up (t->unknown, or "used") on shapes they do not
 * know, always on the side of saying more.
 *
 * IDENTIFICATION
 *	  extension/plantrace.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/sysattr.h"
#include "catalog/pg_class.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_statistic_ext_data.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/plannodes.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/fmgroids.h"

#include "access_audit.h"
#include "compat.h"
#include "plantrace.h"

/* ---------------------------------------------------------------------
 * Output tracing: which columns reach the statement's output
 * ---------------------------------------------------------------------
 */

/*
 * Follow output column attno (1-based) of plan down to base relations.
 */
static void
trace_plan_column(Plan *plan, AttrNumber attno, OutputTrace *t)
{
	TargetEntry *tle;

	if (plan == NULL || attno < 1 || attno > list_length(plan->targetlist))
	{
		t->unknown = true;
		return;
	}
	tle = list_nth(plan->targetlist, attno - 1);
	aa_trace_expr((Node *) tle->expr, plan, t);
}

/* every non-junk output column of plan */
static void
trace_plan_all(Plan *plan, OutputTrace *t)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	foreach(lc, plan->targetlist)
	{
		TargetEntry *tle = lfirst(lc);

		if (!tle->resjunk)
			aa_trace_expr((Node *) tle->expr, plan, t);
	}
}

typedef struct TraceCtx
{
	Plan	   *plan;
	OutputTrace *t;
} TraceCtx;

/*
 * Children of a node whose OUTER_VAR references fan out (Append and
 * MergeAppend), or its single outer child.
 */
static void
trace_outer(Plan *plan, AttrNumber attno, OutputTrace *t)
{
	ListCell   *lc;

	if (IsA(plan, Append))
	{
		foreach(lc, ((Append *) plan)->appendplans)
			trace_plan_column(lfirst(lc), attno, t);
	}
	else if (IsA(plan, MergeAppend))
	{
		foreach(lc, ((MergeAppend *) plan)->mergeplans)
			trace_plan_column(lfirst(lc), attno, t);
	}
	else
		trace_plan_column(outerPlan(plan), attno, t);
}

static bool
trace_walker(Node *node, TraceCtx *ctx)
{
	OutputTrace *t = ctx->t;
	Plan	   *plan = ctx->plan;

	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *var = (Var *) node;

		if (var->varno == OUTER_VAR)
			trace_outer(plan, var->varattno, t);
		else if (var->varno == INNER_VAR && IsA(plan, ModifyTable))
		{
			/* MERGE actions see the source row as the inner tuple */
			trace_plan_column(outerPlan(plan), var->varattno, t);
		}
		else if (var->varno == INNER_VAR)
			trace_plan_column(innerPlan(plan), var->varattno, t);
		else if (var->varno == INDEX_VAR)
		{
			List	   *tl = NIL;

			if (IsA(plan, IndexOnlyScan))
				tl = ((IndexOnlyScan *) plan)->indextlist;
			else if (IsA(plan, ForeignScan))
				tl = ((ForeignScan *) plan)->fdw_scan_tlist;
			else if (IsA(plan, CustomScan))
				tl = ((CustomScan *) plan)->custom_scan_tlist;
			if (var->varattno >= 1 && var->varattno <= list_length(tl))
				aa_trace_expr((Node *) ((TargetEntry *) list_nth(tl, var->varattno - 1))->expr,
							  plan, t);
			else
				t->unknown = true;
		}
		else if (var->varno == ROWID_VAR)
			 /* nothing */ ;
		else if (var->varno >= 1 && var->varno <= list_length(t->stmt->rtable))
		{
			RangeTblEntry *rte = rt_fetch(var->varno, t->stmt->rtable);

			if (rte->rtekind == RTE_RELATION)
				t->out[var->varno] = bms_add_member(t->out[var->varno],
													ATTBIT(var->varattno));
			else if (rte->rtekind == RTE_SUBQUERY && IsA(plan, SubqueryScan))
			{
				Plan	   *sub = ((SubqueryScan *) plan)->subplan;

				if (var->varattno == 0)
					trace_plan_all(sub, t);
				else
					trace_plan_column(sub, var->varattno, t);
			}
			else if (rte->rtekind == RTE_CTE && IsA(plan, CteScan))
			{
				Plan	   *sub = list_nth(t->stmt->subplans,
										   ((CteScan *) plan)->ctePlanId - 1);

				if (var->varattno == 0)
					trace_plan_all(sub, t);
				else
					trace_plan_column(sub, var->varattno, t);
			}
			else if (rte->rtekind == RTE_FUNCTION && IsA(plan, FunctionScan))
			{
				ListCell   *lc;

				/* a function's output may be computed from its arguments */
				foreach(lc, ((FunctionScan *) plan)->functions)
					aa_trace_expr(((RangeTblFunction *) lfirst(lc))->funcexpr,
								  plan, t);
			}
			else if (rte->rtekind == RTE_VALUES || rte->rtekind == RTE_RESULT)
				 /* constants */ ;
			else
				t->unknown = true;
		}
		return false;
	}
	if (IsA(node, Aggref) && t->skip_counts &&
		(((Aggref *) node)->aggfnoid == F_COUNT_ANY ||
		 ((Aggref *) node)->aggfnoid == F_COUNT_))
		return false;
	if (IsA(node, SubPlan))
	{
		SubPlan    *sp = (SubPlan *) node;
		Plan	   *sub = list_nth(t->stmt->subplans, sp->plan_id - 1);

		trace_plan_all(sub, t);
		/* fall through to the test expression and arguments */
	}
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
	{
		int			paramid = ((Param *) node)->paramid;
		ListCell   *lc;

		foreach(lc, t->initplans)
		{
			SubPlan    *sp = lfirst(lc);

			if (list_member_int(sp->setParam, paramid))
				trace_plan_all(list_nth(t->stmt->subplans, sp->plan_id - 1), t);
		}
		return false;
	}
	return expression_tree_walker(node, trace_walker, (void *) ctx);
}

void
aa_trace_expr(Node *expr, Plan *plan, OutputTrace *t)
{
	TraceCtx	ctx;

	if (++t->depth > 200)
	{
		t->unknown = true;
		t->depth--;
		return;
	}
	ctx.plan = plan;
	ctx.t = t;
	(void) trace_walker(expr, &ctx);
	t->depth--;
}

/*
 * The child plans of plan: outer and inner, and the lists some nodes hold
 * (Append, MergeAppend, SubqueryScan, BitmapAnd/Or, CustomScan).  NULLs
 * are left out.
 */
static List *
plan_children(Plan *plan)
{
	List	   *kids = NIL;

	if (outerPlan(plan))
		kids = lappend(kids, outerPlan(plan));
	if (innerPlan(plan))
		kids = lappend(kids, innerPlan(plan));
	if (IsA(plan, Append))
		kids = list_concat(kids, ((Append *) plan)->appendplans);
	else if (IsA(plan, MergeAppend))
		kids = list_concat(kids, ((MergeAppend *) plan)->mergeplans);
	else if (IsA(plan, SubqueryScan))
		kids = lappend(kids, ((SubqueryScan *) plan)->subplan);
	else if (IsA(plan, BitmapAnd))
		kids = list_concat(kids, ((BitmapAnd *) plan)->bitmapplans);
	else if (IsA(plan, BitmapOr))
		kids = list_concat(kids, ((BitmapOr *) plan)->bitmapplans);
	else if (IsA(plan, CustomScan))
		kids = list_concat(kids, ((CustomScan *) plan)->custom_plans);
	return kids;
}

/* collect SubPlans of every initPlan list in the tree */
void
aa_collect_initplans(Plan *plan, OutputTrace *t)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	t->initplans = list_concat(t->initplans, plan->initPlan);
	foreach(lc, plan_children(plan))
		aa_collect_initplans(lfirst(lc), t);
}

/*
 * Which columns of which range-table entries reach the output: the rows
 * sent, written into a target, or returned.  Sets t->unknown when the plan
 * holds a shape we do not follow; the caller then treats every read
 * column as output (never claiming "predicate only" wrongly).
 */
void
aa_trace_outputs(PlannedStmt *stmt, OutputTrace *t)
{
	Plan	   *top = stmt->planTree;
	ListCell   *lc;

	aa_collect_initplans(top, t);
	foreach(lc, stmt->subplans)
		aa_collect_initplans(lfirst(lc), t);

	if (IsA(top, ModifyTable))
	{
		ModifyTable *mt = (ModifyTable *) top;

		if (mt->operation == CMD_MERGE)
		{
			/*
			 * What MERGE writes comes from the target lists of its INSERT and
			 * UPDATE actions; their conditions (WHEN ... AND) and the ON
			 * clause only decide which action runs: predicates.
			 */
			foreach(lc, mt->mergeActionLists)
			{
				ListCell   *lc2;

				foreach(lc2, (List *) lfirst(lc))
				{
					MergeAction *action = lfirst(lc2);
					ListCell   *lc3;

					if (action->commandType != CMD_INSERT &&
						action->commandType != CMD_UPDATE)
						continue;
					foreach(lc3, action->targetList)
						aa_trace_expr((Node *) ((TargetEntry *) lfirst(lc3))->expr,
									  top, t);
				}
			}
			if (stmt->hasModifyingCTE)
				t->unknown = true;
			return;
		}
		foreach(lc, mt->returningLists)
		{
			List	   *rl = lfirst(lc);
			ListCell   *lc2;

			foreach(lc2, rl)
				aa_trace_expr((Node *) ((TargetEntry *) lfirst(lc2))->expr, top, t);
		}
		/* values written into the target come from the subplan */
		if (mt->operation == CMD_INSERT || mt->operation == CMD_UPDATE)
			trace_plan_all(outerPlan(top), t);

		/*
		 * ON CONFLICT DO UPDATE writes its SET list, which may copy the
		 * existing row's columns (Vars of the target) or EXCLUDED ones
		 * (INNER_VAR, by target attno, which is also the subplan's order);
		 * its WHERE is a predicate.
		 */
		foreach(lc, mt->onConflictSet)
			aa_trace_expr((Node *) ((TargetEntry *) lfirst(lc))->expr, top, t);
	}
	else
		trace_plan_all(top, t);

	/* data-modifying CTEs and the like hide in subplans we did not reach */
	if (stmt->hasModifyingCTE)
		t->unknown = true;
}


/*
 * Map bits of a partition/inheritance child's output onto its parent's
 * attnos, using the plan's AppendRelInfos, repeatedly for nested levels.
 */
void
aa_fold_children(PlannedStmt *stmt, Bitmapset **sets)
{
	ListCell   *lc;
	bool		changed = true;
	int			rounds = 0;

	while (changed && rounds++ < 32)
	{
		changed = false;
		foreach(lc, stmt->appendRelations)
		{
			AppendRelInfo *ari = lfirst(lc);
			int			x = -1;

			if (sets[ari->child_relid] == NULL)
				continue;
			while ((x = bms_next_member(sets[ari->child_relid], x)) >= 0)
			{
				AttrNumber	cattno = x + FirstLowInvalidHeapAttributeNumber;
				AttrNumber	pattno = 0;

				if (cattno == 0)
					pattno = 0;
				else
				{
					/*
					 * setrefs.c drops translated_vars from the plan's
					 * AppendRelInfos but keeps parent_colnos, indexed by
					 * child attno.  System columns and dropped columns have
					 * no parent column.
					 */
					if (cattno < 1 || cattno > ari->num_child_cols ||
						ari->parent_colnos == NULL)
						continue;
					pattno = ari->parent_colnos[cattno - 1];
					if (pattno == 0)
						continue;
				}
				if (!bms_is_member(ATTBIT(pattno), sets[ari->parent_relid]))
				{
					sets[ari->parent_relid] =
						bms_add_member(sets[ari->parent_relid], ATTBIT(pattno));
					changed = true;
				}
			}
		}
	}
}

/*
 * The expressions a scan node evaluates against its relation besides its
 * target list: its filter and the quals of its access method.
 */
static List *
scan_exprs(Plan *plan)
{
	List	   *exprs = list_make1(plan->qual);

	if (IsA(plan, SampleScan))
		exprs = lappend(exprs, ((SampleScan *) plan)->tablesample);
	else if (IsA(plan, IndexScan))
	{
		exprs = lappend(exprs, ((IndexScan *) plan)->indexqualorig);
		exprs = lappend(exprs, ((IndexScan *) plan)->indexorderbyorig);
	}
	else if (IsA(plan, IndexOnlyScan))
		exprs = lappend(exprs, ((IndexOnlyScan *) plan)->indextlist);
	else if (IsA(plan, BitmapIndexScan))
		exprs = lappend(exprs, ((BitmapIndexScan *) plan)->indexqualorig);
	else if (IsA(plan, BitmapHeapScan))
		exprs = lappend(exprs, ((BitmapHeapScan *) plan)->bitmapqualorig);
	else if (IsA(plan, TidScan))
		exprs = lappend(exprs, ((TidScan *) plan)->tidquals);
	else if (IsA(plan, TidRangeScan))
		exprs = lappend(exprs, ((TidRangeScan *) plan)->tidrangequals);
	return exprs;
}

/* ---------------------------------------------------------------------
 * Columns the plan really touches, for reads through views
 * ---------------------------------------------------------------------
 *
 * A view's base table carries in selectedCols every column the view's
 * query names, whether or not the outer query uses it: SELECT id FROM v,
 * where v also exposes phone, would be recorded as a read of phone.  For
 * plans that contain a view we therefore intersect selectedCols with the
 * columns the plan's scan nodes (and ModifyTable's own expressions) refer
 * to.  After setrefs.c only these nodes refer to a base relation's range
 * table index; every node above them uses OUTER_VAR/INNER_VAR.  The
 * refinement can only remove columns, and only where we understand the
 * node completely: a scan type we do not list, a foreign or custom scan
 * (whose remote quals are not Vars), or a whole-row reference marks the
 * relation with the whole-row bit, which turns the refinement off for it.
 * A scan that returns its physical tuple names every column, so then
 * nothing is refined either (a safe over-approximation).  Partitions and
 * inheritance children are folded onto their parent like output columns.
 */

bool
aa_plan_has_view(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (aa_rte_is_view_compat(rte))
			return true;
	}
	return false;
}

typedef struct RefsCtx
{
	Bitmapset **refs;
	int			nrt;
} RefsCtx;

static void
refs_add(RefsCtx *ctx, Index rti, Node *expr)
{
	if (rti < 1 || rti > ctx->nrt)
		return;
	pull_varattnos(expr, rti, &ctx->refs[rti]);
}

static void
refs_walk_plan(Plan *plan, RefsCtx *ctx)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	check_stack_depth();
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapIndexScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
			{
				Index		rti = ((Scan *) plan)->scanrelid;

				refs_add(ctx, rti, (Node *) plan->targetlist);
				refs_add(ctx, rti, (Node *) scan_exprs(plan));
				break;
			}
		case T_ModifyTable:
			{
				ModifyTable *mt = (ModifyTable *) plan;
				Index		rti;

				/* these refer to the result relations directly */
				foreach(lc, mt->resultRelations)
				{
					rti = lfirst_int(lc);
					refs_add(ctx, rti, (Node *) mt->returningLists);
					refs_add(ctx, rti, (Node *) mt->withCheckOptionLists);
					refs_add(ctx, rti, (Node *) mt->onConflictSet);
					refs_add(ctx, rti, mt->onConflictWhere);
					refs_add(ctx, rti, (Node *) mt->mergeActionLists);
				}
				break;
			}
		case T_ForeignScan:
		case T_CustomScan:
			{
				/*
				 * Remote or custom quals need not be Vars, and a pushed-down
				 * join scans several relations: give up on all of them.
				 */
				Bitmapset  *relids = IsA(plan, ForeignScan) ?
				((ForeignScan *) plan)->fs_relids :
				((CustomScan *) plan)->custom_relids;
				Index		rti = ((Scan *) plan)->scanrelid;
				int			x = -1;

				while ((x = bms_next_member(relids, x)) >= 0)
					if (x >= 1 && x <= ctx->nrt)
						ctx->refs[x] = bms_add_member(ctx->refs[x], ATTBIT(0));
				if (rti >= 1 && rti <= ctx->nrt)
					ctx->refs[rti] = bms_add_member(ctx->refs[rti], ATTBIT(0));
				break;
			}
		default:
			/* other scans read functions, values, CTEs, subqueries */
			break;
	}

	refs_walk_plan(outerPlan(plan), ctx);
	refs_walk_plan(innerPlan(plan), ctx);
	if (IsA(plan, Append))
		foreach(lc, ((Append *) plan)->appendplans)
			refs_walk_plan(lfirst(lc), ctx);
	else if (IsA(plan, MergeAppend))
		foreach(lc, ((MergeAppend *) plan)->mergeplans)
			refs_walk_plan(lfirst(lc), ctx);
	else if (IsA(plan, SubqueryScan))
		refs_walk_plan(((SubqueryScan *) plan)->subplan, ctx);
	else if (IsA(plan, BitmapAnd))
		foreach(lc, ((BitmapAnd *) plan)->bitmapplans)
			refs_walk_plan(lfirst(lc), ctx);
	else if (IsA(plan, BitmapOr))
		foreach(lc, ((BitmapOr *) plan)->bitmapplans)
			refs_walk_plan(lfirst(lc), ctx);
	else if (IsA(plan, CustomScan))
		foreach(lc, ((CustomScan *) plan)->custom_plans)
			refs_walk_plan(lfirst(lc), ctx);
}

/*
 * Per range-table index, the ATTBIT set of columns the plan refers to,
 * children folded onto parents.
 */
Bitmapset **
aa_referenced_columns(PlannedStmt *stmt, int nrt)
{
	RefsCtx		ctx;
	ListCell   *lc;

	ctx.nrt = nrt;
	ctx.refs = palloc0(sizeof(Bitmapset *) * (nrt + 1));
	refs_walk_plan(stmt->planTree, &ctx);
	foreach(lc, stmt->subplans)
		refs_walk_plan(lfirst(lc), &ctx);
	aa_fold_children(stmt, ctx.refs);
	return ctx.refs;
}


/* ---------------------------------------------------------------------
 * Reads of planner statistics: which scans to watch, where to count
 * ---------------------------------------------------------------------
 */

/*
 * Does range-table entry rte read the value-bearing columns of a planner
 * statistics catalog?  pg_statistic's stavalues hold sample values of the
 * column (most common values, histogram bounds: up to
 * default_statistics_target of them, or more after ALTER COLUMN SET
 * STATISTICS), and pg_statistic_ext_data's MCV lists and expression
 * statistics hold values of several.  pg_stats and pg_stats_ext show them
 * to anyone who may read the column or owns the table; a read of these is
 * a read of the column's values, without a scan of the table.
 */
static bool
rte_reads_stats(PlannedStmt *stmt, RangeTblEntry *rte)
{
	Bitmapset  *sel;
	AttrNumber	a;

	if (rte->rtekind != RTE_RELATION ||
		(rte->relid != StatisticRelationId &&
		 rte->relid != StatisticExtDataRelationId) ||
		(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) == 0)
		return false;
	sel = aa_rte_selected_cols_compat(stmt, rte);
	if (bms_is_member(ATTBIT(0), sel))
		return true;
	if (rte->relid == StatisticRelationId)
	{
		for (a = Anum_pg_statistic_stavalues1; a <= Anum_pg_statistic_stavalues5; a++)
			if (bms_is_member(ATTBIT(a), sel))
				return true;
		return false;
	}
	return bms_is_member(ATTBIT(Anum_pg_statistic_ext_data_stxdmcv), sel) ||
		bms_is_member(ATTBIT(Anum_pg_statistic_ext_data_stxdexpr), sel);
}

bool
aa_plan_reads_stats(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		if (rte_reads_stats(stmt, lfirst(lc)))
			return true;
	}
	return false;
}

/*
 * Is a value column of a statistics catalog used by the plan, or only
 * carried past?  pg_stats names every stavalues column, and its scan of
 * pg_statistic returns whole rows, so a query for null_frac or avg_width
 * (bloat estimates, monitoring) "selects" sample values it never looks at.
 * The planner replaces unused outputs of the view with NULLs a node or two
 * above the scan; we follow the value columns up the tree, node by node,
 * and stop as soon as one is used (a qual, a join clause, a sort key, the
 * statement's output) or all are dropped.  Nodes we do not know count as
 * using them.
 */
typedef struct UsesCtx
{
	int			varno;			/* OUTER_VAR, INNER_VAR or a scanrelid */
	Bitmapset  *cols;			/* attnos of varno that hold values */
} UsesCtx;

static bool
uses_walker(Node *node, UsesCtx *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		Var		   *v = (Var *) node;

		return v->varno == ctx->varno &&
			(v->varattno == 0 || bms_is_member(v->varattno, ctx->cols));
	}
	return expression_tree_walker(node, uses_walker, (void *) ctx);
}

static bool
uses_cols(Node *expr, int varno, Bitmapset *cols)
{
	UsesCtx		ctx;

	ctx.varno = varno;
	ctx.cols = cols;
	return uses_walker(expr, &ctx);
}

/* output positions of plan whose expression uses cols of varno */
static Bitmapset *
tlist_positions(Plan *plan, int varno, Bitmapset *cols)
{
	Bitmapset  *out = NULL;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, plan->targetlist)
	{
		i++;
		if (uses_cols((Node *) ((TargetEntry *) lfirst(lc))->expr, varno, cols))
			out = bms_add_member(out, i);
	}
	return out;
}

static bool
any_member(int n, AttrNumber *idx, Bitmapset *cols)
{
	int			i;

	for (i = 0; i < n; i++)
		if (bms_is_member(idx[i], cols))
			return true;
	return false;
}

/* the nodes from plan down to target (exclusive), nearest last */
static bool
plan_path(Plan *plan, Plan *target, List **path)
{
	List	   *kids = NIL;
	ListCell   *lc;

	if (plan == NULL)
		return false;
	if (plan == target)
		return true;
	kids = plan_children(plan);
	*path = lappend(*path, plan);
	foreach(lc, kids)
	{
		if (plan_path(lfirst(lc), target, path))
			return true;
	}
	*path = list_delete_last(*path);
	return false;
}

/*
 * How node p refers to the output of its child: OUTER_VAR, INNER_VAR, or
 * (a SubqueryScan's subplan) its scanrelid; 0 for children reached another
 * way (Append's and the like).
 */
static int
child_varno(Plan *p, Plan *child)
{
	if (IsA(p, SubqueryScan) && ((SubqueryScan *) p)->subplan == child)
		return ((Scan *) p)->scanrelid;
	if (outerPlan(p) == child)
		return OUTER_VAR;
	if (innerPlan(p) == child)
		return INNER_VAR;
	return 0;
}

/*
 * The expressions node p evaluates on its input rows besides its target
 * list (filters, join clauses, hash keys, parameters passed down), into
 * *exprs.  False for node types not known here.  Sort and Unique keys are
 * target-list positions: see outputs_used().
 */
static bool
node_conditions(Plan *p, List **exprs)
{
	ListCell   *lc;

	*exprs = list_make1(p->qual);
	switch (nodeTag(p))
	{
		case T_NestLoop:
			*exprs = lappend(*exprs, ((Join *) p)->joinqual);
			foreach(lc, ((NestLoop *) p)->nestParams)
				* exprs = lappend(*exprs, ((NestLoopParam *) lfirst(lc))->paramval);
			return true;
		case T_HashJoin:
			*exprs = lappend(*exprs, ((Join *) p)->joinqual);
			*exprs = lappend(*exprs, ((HashJoin *) p)->hashclauses);
			*exprs = lappend(*exprs, ((HashJoin *) p)->hashkeys);
			return true;
		case T_MergeJoin:
			*exprs = lappend(*exprs, ((Join *) p)->joinqual);
			*exprs = lappend(*exprs, ((MergeJoin *) p)->mergeclauses);
			return true;
		case T_Hash:
			*exprs = lappend(*exprs, ((Hash *) p)->hashkeys);
			return true;
		case T_Memoize:
			*exprs = lappend(*exprs, ((Memoize *) p)->param_exprs);
			return true;
		case T_Result:
			*exprs = lappend(*exprs, ((Result *) p)->resconstantqual);
			return true;
		case T_SubqueryScan:
		case T_Material:
		case T_Sort:
		case T_IncrementalSort:
		case T_Unique:
		case T_Limit:
		case T_Gather:
			return true;
		default:
			return false;
	}
}

/*
 * Are output positions cols of child used by the nodes above it (path, the
 * nearest at index depth)?  Past the top, the output leaves the statement.
 */
static bool
outputs_used(List *path, int depth, Plan *child, Bitmapset *cols)
{
	Plan	   *p;
	int			varno;
	List	   *exprs;

	if (bms_is_empty(cols))
		return false;
	if (depth < 0)
		return true;
	p = list_nth(path, depth);
	varno = child_varno(p, child);
	if (varno == 0 || !node_conditions(p, &exprs) ||
		uses_cols((Node *) exprs, varno, cols))
		return true;
	cols = tlist_positions(p, varno, cols);
	if (IsA(p, Sort) &&
		any_member(((Sort *) p)->numCols, ((Sort *) p)->sortColIdx, cols))
		return true;
	if (IsA(p, IncrementalSort) &&
		any_member(((Sort *) p)->numCols, ((Sort *) p)->sortColIdx, cols))
		return true;
	if (IsA(p, Unique) &&
		any_member(((Unique *) p)->numCols, ((Unique *) p)->uniqColIdx, cols))
		return true;
	return outputs_used(path, depth - 1, p, cols);
}

/* the attnos of a statistics catalog's value columns */
static Bitmapset *
stats_value_attnos(Oid relid)
{
	Bitmapset  *vals = NULL;
	AttrNumber	a;

	if (relid == StatisticRelationId)
	{
		for (a = Anum_pg_statistic_stavalues1; a <= Anum_pg_statistic_stavalues5; a++)
			vals = bms_add_member(vals, a);
	}
	else
	{
		vals = bms_add_member(vals, Anum_pg_statistic_ext_data_stxdmcv);
		vals = bms_add_member(vals, Anum_pg_statistic_ext_data_stxdexpr);
	}
	return vals;
}

/* does scan (of a statistics catalog, in tree root) use its value columns? */
static bool
stats_values_used(Plan *root, Scan * scan, Oid relid)
{
	Bitmapset  *vals = stats_value_attnos(relid);
	Bitmapset  *cols;
	List	   *path = NIL;

	if (uses_cols((Node *) scan_exprs(&scan->plan), scan->scanrelid, vals))
		return true;
	cols = tlist_positions(&scan->plan, scan->scanrelid, vals);
	if (!plan_path(root, &scan->plan, &path))
		return true;
	return outputs_used(path, list_length(path) - 1, &scan->plan, cols);
}

typedef struct StatsScanCtx
{
	PlannedStmt *stmt;
	Plan	   *root;
	Plan	   *gather;			/* the Gather above, if any */
	Bitmapset  *nodes;
} StatsScanCtx;

static void
stats_scans_walk(Plan *plan, StatsScanCtx *ctx)
{
	ListCell   *lc;
	Plan	   *gather = ctx->gather;

	if (plan == NULL)
		return;
	if (IsA(plan, Gather) || IsA(plan, GatherMerge))
		ctx->gather = plan;
	if ((IsA(plan, SeqScan) || IsA(plan, IndexScan) ||
		 IsA(plan, BitmapHeapScan) || IsA(plan, TidScan) ||
		 IsA(plan, TidRangeScan) || IsA(plan, SampleScan)) &&
		((Scan *) plan)->scanrelid >= 1)
	{
		RangeTblEntry *rte = rt_fetch(((Scan *) plan)->scanrelid,
									  ctx->stmt->rtable);

		/* parallel workers' rows never pass our wrapper: see the Gather */
		if (rte_reads_stats(ctx->stmt, rte) &&
			stats_values_used(ctx->root, (Scan *) plan, rte->relid))
			ctx->nodes = bms_add_member(ctx->nodes, ctx->gather ?
										ctx->gather->plan_node_id :
										plan->plan_node_id);
	}
	foreach(lc, plan_children(plan))
		stats_scans_walk(lfirst(lc), ctx);
	ctx->gather = gather;
}

/*
 * The plan_node_ids of the scans of statistics catalogs whose rows
 * aa_stats_exec() must look at: those whose value columns the plan uses.
 * A scan under a Gather runs in parallel workers (all of it, with
 * parallel_leader_participation off or a single-copy Gather), where no
 * wrapper sees its rows: the Gather's id stands for it, and the statement
 * is taken to read every statistic the user may see (stats_read_all()).
 */
Bitmapset  *
aa_stats_scan_nodes(PlannedStmt *stmt)
{
	StatsScanCtx ctx;
	ListCell   *lc;

	if (!aa_plan_reads_stats(stmt))
		return NULL;
	ctx.stmt = stmt;
	ctx.nodes = NULL;
	ctx.gather = NULL;
	ctx.root = stmt->planTree;
	stats_scans_walk(stmt->planTree, &ctx);
	foreach(lc, stmt->subplans)
	{
		ctx.root = lfirst(lc);
		stats_scans_walk(ctx.root, &ctx);
	}
	return ctx.nodes;
}


/*
 * Where are this statistics scan's rows counted?  Going up from the scan,
 * nested loops (on either side), subquery scans, projections and limits
 * pass the scan's current row straight through: while such a node returns
 * a row, the scan's slot holds the statistics row inside it.  The highest
 * node reached that way is where rows are counted, so rows that joins and
 * filters above the scan drop are not: SELECT ... FROM pg_stats WHERE
 * attname = 'city' reads city's row, not every row of the table.  Returns
 * the scan itself when its parent is anything else (a hash join, whose
 * batches replay rows from files; a sort).
 */
Plan	   *
aa_stats_count_node(PlannedStmt *stmt, Plan *scan)
{
	List	   *path = NIL;
	Plan	   *at = scan;
	Index		scanrelid = ((Scan *) scan)->scanrelid;
	Bitmapset  *cols;
	int			i;

	if (!plan_path(stmt->planTree, scan, &path))
		return scan;			/* in a subplan */
	cols = tlist_positions(scan, scanrelid,
						   stats_value_attnos(rt_fetch(scanrelid, stmt->rtable)->relid));
	for (i = list_length(path) - 1; i >= 0; i--)
	{
		Plan	   *p = list_nth(path, i);
		List	   *exprs;
		int			varno = child_varno(p, at);

		/* nodes that pass the scan's current row straight up */
		if (varno == 0 ||
			!(IsA(p, NestLoop) || IsA(p, SubqueryScan) ||
			  IsA(p, Result) || IsA(p, Limit)) ||
			!node_conditions(p, &exprs))
			break;

		/*
		 * A node that looks at the values before it decides to return the row
		 * (a qual calling a function) has read them: count below it.
		 */
		if (uses_cols((Node *) exprs, varno, cols))
			break;
		cols = tlist_positions(p, varno, cols);
		at = p;
	}
	return at;
}
