/*-------------------------------------------------------------------------
 *
 * derived.c
 *		The tags that copies of tagged data take: the columns of a relation
 *		made from a query, and the columns an INSERT, UPDATE or MERGE
 *		writes values computed from tagged columns into.
 *
 * This file owns working out, from a plan and the tag cache, which tag
 * each column written takes and why ("copied by <command> from ...").
 * capture.c calls it while the statement runs (for CREATE TABLE AS and the
 * like it pushes the result to tags.c, aa_tags_derived_push; for DML it
 * keeps the copies with the plan's audit info); tags.c applies the labels
 * once the statement has made or written its relation.  What an
 * expression is computed from is traced by plantrace.c.
 *
 * Ownership: no state.  Results are allocated in the memory context the
 * caller passes.
 *
 * IDENTIFICATION
 *	  extension/derived.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "utils/acl.h"

#include "access_audit.h"
#include "compat.h"
#include "derived.h"
#include "plantrace.h"
#include "tags.h"

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * One tag for a column computed from columns with tags (a label holds one):
 * the longest ':'-prefix they share (pii:phone and pii:email give pii),
 * else the first in sort order.
 */
static char *
derived_label(const char **tags, int ntags)
{
	const char *first;
	int			len;
	int			k;

	qsort(tags, ntags, sizeof(char *), cmp_str);
	first = tags[0];
	len = strlen(first);
	for (k = 0; k < ntags; k++)
	{
		const char *t = tags[k];
		int			i = 0;

		while (i < len && t[i] == first[i])
			i++;
		/* keep whole parts: pii:a and pii:ab share pii, not pii:a */
		if (!((i == len || first[i] == ':') && (t[i] == ':' || t[i] == '\0')))
		{
			do
				i--;
			while (i > 0 && first[i] != ':');
			i = Max(i, 0);
		}
		len = i;
	}
	if (len == 0)
		return pstrdup(first);
	return pnstrdup(first, len);
}

/*
 * The tags of the columns a target list makes (its non-junk entries, in
 * order; evaluated at plan node top), allocated in cxt: each takes the
 * tagged columns its value is computed from, "copied by <command>".
 * Returns NULL if none does.
 */
AuditDerivedTags *
aa_derived_tags_of(PlannedStmt *stmt, List *tlist, Plan *top,
				   const char *command, MemoryContext cxt)
{
	int			nrt = list_length(stmt->rtable);
	MemoryContext old;
	AuditDerivedTags *d;
	OutputTrace base;
	ListCell   *lc;
	int			i = 0;
	bool		any = false;

	memset(&base, 0, sizeof(base));
	aa_collect_initplans(stmt->planTree, &base);
	foreach(lc, stmt->subplans)
		aa_collect_initplans(lfirst(lc), &base);

	old = MemoryContextSwitchTo(cxt);
	d = palloc0(sizeof(AuditDerivedTags));
	foreach(lc, tlist)
		d->natts += ((TargetEntry *) lfirst(lc))->resjunk ? 0 : 1;
	d->labels = palloc0(sizeof(char *) * Max(d->natts, 1));
	d->whys = palloc0(sizeof(char *) * Max(d->natts, 1));
	MemoryContextSwitchTo(old);

	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);
		OutputTrace t;
		const char **tags = NULL;
		int			ntags = 0,
					cap_tags = 0;
		StringInfoData from;
		int			rti;

		if (tle->resjunk)
			continue;
		memset(&t, 0, sizeof(t));
		t.stmt = stmt;
		t.out = palloc0(sizeof(Bitmapset *) * (nrt + 1));
		t.initplans = base.initplans;
		t.skip_counts = true;
		aa_trace_expr((Node *) tle->expr, top, &t);
		aa_fold_children(stmt, t.out);
		initStringInfo(&from);
		for (rti = 1; rti <= nrt; rti++)
		{
			RangeTblEntry *rte = rt_fetch(rti, stmt->rtable);
			AuditRelTags *rt;
			Bitmapset  *sel;
			AttrNumber	a;
			bool		whole;

			if (rte->rtekind != RTE_RELATION ||
				(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) == 0 ||
				(rt = aa_tags_lookup(rte->relid)) == NULL)
				continue;

			/*
			 * A whole row, or an expression we cannot follow, may carry any
			 * column the statement reads.
			 */
			sel = aa_rte_selected_cols_compat(stmt, rte);
			whole = t.unknown || bms_is_member(ATTBIT(0), t.out[rti]);
			for (a = 1; a <= rt->natts; a++)
			{
				AuditColumnTags *col = &rt->cols[a];
				bool		used;
				int			k;

				if (col->qualname == NULL)
					continue;
				if (whole)
					used = bms_is_member(ATTBIT(a), sel) ||
						bms_is_member(ATTBIT(0), sel);
				else
					used = bms_is_member(ATTBIT(a), t.out[rti]);
				if (!used)
					continue;
				for (k = 0; k < col->ntags; k++)
					aa_add_unique(&tags, &ntags, &cap_tags, col->tags[k]);
				appendStringInfo(&from, "%s%s", from.len ? ", " : "", col->qualname);
			}
		}
		if (ntags > 0)
		{
			old = MemoryContextSwitchTo(cxt);
			d->labels[i] = derived_label(tags, ntags);
			d->whys[i] = psprintf("copied by %s from %s", command, from.data);
			MemoryContextSwitchTo(old);
			any = true;
		}
		i++;
	}
	return any ? d : NULL;
}

/*
 * One list of values written: tlist, evaluated at plan node at, writes the
 * columns colnos (NIL: each entry's resno, as INSERT's do) of the relation
 * at range table index target.  Columns tagged already need nothing.
 */
static List *
dml_copy_add(List *copies, PlannedStmt *stmt, Index target, List *tlist,
			 Plan *at, List *colnos, const char *command, MemoryContext cxt)
{
	Oid			relid = rt_fetch(target, stmt->rtable)->relid;
	AuditRelTags *rt = aa_tags_lookup(relid);
	AuditDerivedTags *d;
	MemoryContext old;
	DmlCopy    *c;
	ListCell   *lc;
	int			i = 0;
	bool		any = false;

	if ((d = aa_derived_tags_of(stmt, tlist, at, command, cxt)) == NULL)
		return copies;
	old = MemoryContextSwitchTo(cxt);
	d->attnos = palloc0(sizeof(AttrNumber) * Max(d->natts, 1));
	foreach(lc, tlist)
	{
		TargetEntry *tle = lfirst(lc);
		AttrNumber	a = 0;

		if (tle->resjunk)
			continue;
		if (colnos == NIL)
			a = tle->resno;
		else if (i < list_length(colnos))
			a = (AttrNumber) list_nth_int(colnos, i);
		d->attnos[i] = a;
		if (rt != NULL && a >= 1 && a <= rt->natts && rt->cols[a].ntags > 0)
			d->labels[i] = NULL;
		any |= d->labels[i] != NULL;
		i++;
	}
	if (any)
	{
		c = palloc(sizeof(DmlCopy));
		c->relid = relid;
		c->d = d;
		copies = lappend(copies, c);
	}
	MemoryContextSwitchTo(old);
	return copies;
}

List	   *
aa_derived_dml_copies(PlannedStmt *stmt, MemoryContext cxt)
{
	List	   *tops = list_make1(stmt->planTree);
	List	   *copies = NIL;
	ListCell   *lc;

	if (stmt->hasModifyingCTE)
		tops = list_concat(tops, stmt->subplans);
	foreach(lc, tops)
	{
		ModifyTable *mt = lfirst(lc);
		Plan	   *sub;
		Index		target;
		ListCell   *lc2;

		if (mt == NULL || !IsA(mt, ModifyTable) || (sub = outerPlan(mt)) == NULL)
			continue;

		/*
		 * The values written are numbered for the first result relation,
		 * which is the target itself unless it has partitions or children; an
		 * INSERT into a partitioned table names the table in rootRelation and
		 * numbers its columns.
		 */
		target = linitial_int(mt->resultRelations);
		if (mt->operation == CMD_INSERT)
		{
			if (mt->rootRelation != 0)
				target = mt->rootRelation;
			copies = dml_copy_add(copies, stmt, target, sub->targetlist,
								  sub, NIL, "INSERT", cxt);
		}
		else if (mt->rootRelation != 0 || list_length(mt->resultRelations) != 1)
			continue;
		else if (mt->operation == CMD_UPDATE)
		{
			/* the subplan computes the new values of the SET columns */
			copies = dml_copy_add(copies, stmt, target, sub->targetlist,
								  sub, linitial(mt->updateColnosLists),
								  "UPDATE", cxt);
		}
		else if (mt->operation == CMD_MERGE)
		{
			/* each action's target list, evaluated at the ModifyTable */
			foreach(lc2, linitial(mt->mergeActionLists))
			{
				MergeAction *a = lfirst(lc2);

				if (a->commandType == CMD_INSERT)
					copies = dml_copy_add(copies, stmt, target,
										  a->targetList, (Plan *) mt, NIL,
										  "MERGE", cxt);
				else if (a->commandType == CMD_UPDATE)
					copies = dml_copy_add(copies, stmt, target,
										  a->targetList, (Plan *) mt,
										  a->updateColnos, "MERGE", cxt);
			}
		}
	}
	return copies;
}
