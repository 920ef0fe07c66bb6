/*-------------------------------------------------------------------------
 *
 * rerun.c
 *		Code attached to tagged tables that maintenance commands run again.
 *
 * A table owner's function in an expression index, a partial index's
 * predicate, an extended statistics expression or a CHECK constraint sees
 * the values of the columns it is given.  Its creation is recorded
 * (capture.c, table_code_notes()); but PostgreSQL evaluates that code over
 * the rows again whenever it rebuilds the indexes (REINDEX, CLUSTER,
 * VACUUM FULL, REFRESH MATERIALIZED VIEW, an ALTER TABLE that rewrites the
 * table), samples them (ANALYZE, VACUUM ANALYZE) or re-validates the
 * constraints (ALTER COLUMN ... TYPE), and a function that stores its
 * argument away takes every tagged value each time, with no executor read
 * of the table.
 *
 * A domain's CHECK constraint, added or validated, runs over every value
 * of every column of the domain, in tables its owner need not own.
 *
 * This file owns finding that code: for a utility statement it returns,
 * per tagged table the statement works on, the expressions it will
 * evaluate that call user-defined functions (OID at or above
 * FirstNormalObjectId: PostgreSQL's own immutable functions cannot pass a
 * value on, and indexes like lower(phone) are rebuilt every night).
 * capture.c records each as a read of the tagged columns they refer to.
 *
 * Catalog access only (pg_index, pg_statistic_ext, pg_constraint; pg_depend
 * for the columns of a domain), by index scans on the table's or type's
 * OID, without locks on the tables: the command takes its own.
 * Database-wide forms scan pg_index and pg_statistic_ext whole.
 *
 * Ownership: no state.
 *
 * IDENTIFICATION
 *	  extension/rerun.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_depend.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/parsenodes.h"
#include "optimizer/optimizer.h"
#include "parser/parse_type.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "rerun.h"
#include "tags.h"

/* what a statement evaluates again */
#define RERUN_INDEXES	0x01	/* index expressions and predicates */
#define RERUN_STATS		0x02	/* those, and extended statistics */
#define RERUN_CHECKS	0x04	/* CHECK constraints */
#define RERUN_ANY_CODE	0x08	/* any expression, not only user code */

static bool
user_function(Oid func_id, void *context)
{
	return func_id >= FirstNormalObjectId;
}

/* does expression node call a user-defined function anywhere? */
static bool
user_code_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, user_function, context))
		return true;
	return expression_tree_walker(node, user_code_walker, context);
}

/* does expression e (Vars of the table, varno 1) refer to a tagged column? */
static bool
refers_to_tagged(Node *e, AuditRelTags *tags)
{
	Bitmapset  *attnos = NULL;
	int			i = -1;

	pull_varattnos(e, 1, &attnos);
	while ((i = bms_next_member(attnos, i)) >= 0)
	{
		AttrNumber	attno = i + FirstLowInvalidHeapAttributeNumber;

		/* a whole-row reference passes every column */
		if (attno == InvalidAttrNumber)
			return true;
		if (attno > 0 && attno <= tags->natts &&
			tags->cols[attno].qualname != NULL)
			return true;
	}
	return false;
}

/*
 * Add the expressions of a catalog column (a node tree in text form:
 * indexprs, indpred, stxexprs, conbin) that call user code over tagged
 * columns to *exprs, and name their owner (index "i") in *what once.
 */
static void
rerun_add(List **exprs, StringInfo what, AuditRelTags *tags, HeapTuple tup,
		  Relation catalog, AttrNumber attnum, const char *owner,
		  bool any_code)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attnum, RelationGetDescr(catalog), &isnull);
	Node	   *tree;
	List	   *items;
	ListCell   *lc;
	bool		named = false;

	if (isnull)
		return;
	tree = stringToNode(TextDatumGetCString(d));
	/* index and statistics expressions are lists, one per column */
	items = IsA(tree, List) ? (List *) tree : list_make1(tree);
	foreach(lc, items)
	{
		Node	   *e = lfirst(lc);

		if (!refers_to_tagged(e, tags) ||
			(!any_code && !user_code_walker(e, NULL)))
			continue;
		*exprs = lappend(*exprs, e);
		if (!named)
		{
			appendStringInfo(what, "%s%s", what->len > 0 ? ", " : "", owner);
			named = true;
		}
	}
}

/*
 * The code of relid (of its index indexid only, if valid; of its CHECK
 * constraint conname only, if not NULL) that what evaluates, as an
 * AuditRerunCode appended to out, if relid has tagged columns and such
 * code.
 */
static List *
rerun_relation(List *out, Oid relid, Oid indexid, const char *conname,
			   int what)
{
	AuditRelTags *tags = aa_tags_lookup(relid);
	List	   *exprs = NIL;
	StringInfoData names;
	ScanKeyData key;
	Relation	catalog;
	SysScanDesc scan;
	HeapTuple	tup;
	AuditRerunCode *r;

	if (tags == NULL || !tags->tagged)
		return out;
	initStringInfo(&names);

	/* a partitioned table's indexes are built on its partitions only */
	if ((what & (RERUN_INDEXES | RERUN_STATS)) &&
		RELKIND_HAS_STORAGE(get_rel_relkind(relid)))
	{
		catalog = table_open(IndexRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_index_indrelid, BTEqualStrategyNumber,
					F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(catalog, IndexIndrelidIndexId, true, NULL,
								  1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_index ind = (Form_pg_index) GETSTRUCT(tup);
			char	   *owner;

			if (OidIsValid(indexid) && ind->indexrelid != indexid)
				continue;
			owner = psprintf("index \"%s\"", get_rel_name(ind->indexrelid));
			rerun_add(&exprs, &names, tags, tup, catalog,
					  Anum_pg_index_indexprs, owner, false);
			rerun_add(&exprs, &names, tags, tup, catalog,
					  Anum_pg_index_indpred, owner, false);
		}
		systable_endscan(scan);
		table_close(catalog, AccessShareLock);
	}

	if (what & RERUN_STATS)
	{
		catalog = table_open(StatisticExtRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_statistic_ext_stxrelid,
					BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(catalog, StatisticExtRelidIndexId, true,
								  NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_statistic_ext stx = (Form_pg_statistic_ext) GETSTRUCT(tup);

			rerun_add(&exprs, &names, tags, tup, catalog,
					  Anum_pg_statistic_ext_stxexprs,
					  psprintf("statistics \"%s\"", NameStr(stx->stxname)),
					  false);
		}
		systable_endscan(scan);
		table_close(catalog, AccessShareLock);
	}

	if (what & RERUN_CHECKS)
	{
		catalog = table_open(ConstraintRelationId, AccessShareLock);
		ScanKeyInit(&key, Anum_pg_constraint_conrelid,
					BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
		scan = systable_beginscan(catalog, ConstraintRelidTypidNameIndexId,
								  true, NULL, 1, &key);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			Form_pg_constraint con = (Form_pg_constraint) GETSTRUCT(tup);

			if (con->contype == CONSTRAINT_CHECK &&
				(conname == NULL ||
				 strcmp(NameStr(con->conname), conname) == 0))
				rerun_add(&exprs, &names, tags, tup, catalog,
						  Anum_pg_constraint_conbin,
						  psprintf("CHECK constraint \"%s\"",
								   NameStr(con->conname)),
						  (what & RERUN_ANY_CODE) != 0);
		}
		systable_endscan(scan);
		table_close(catalog, AccessShareLock);
	}

	if (exprs == NIL)
		return out;
	r = palloc(sizeof(AuditRerunCode));
	r->relid = relid;
	r->exprs = (Node *) exprs;
	r->what = (what & RERUN_ANY_CODE) ?
		psprintf("%s, validated now", names.data) :
		psprintf("user-defined code in %s, evaluated again", names.data);
	return lappend(out, r);
}

/* the table rv names and, unless ONLY, its partitions and children */
static List *
rerun_tables(List *out, RangeVar * rv, const char *conname, int what)
{
	Oid			relid;
	List	   *rels;
	ListCell   *lc;

	if (rv == NULL)
		return out;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (!OidIsValid(relid))
		return out;
	rels = rv->inh ? find_all_inheritors(relid, NoLock, NULL) :
		list_make1_oid(relid);
	foreach(lc, rels)
		out = rerun_relation(out, lfirst_oid(lc), InvalidOid, conname, what);
	return out;
}

/*
 * Every tagged table (in namespace nsp, if valid) with code that what
 * evaluates: the tables of expression or partial indexes, and for ANALYZE
 * of statistics objects with expressions.
 */
static List *
rerun_all(List *out, Oid nsp, int what)
{
	List	   *rels = NIL;
	ListCell   *lc;
	Relation	catalog;
	SysScanDesc scan;
	HeapTuple	tup;

	catalog = table_open(IndexRelationId, AccessShareLock);
	scan = systable_beginscan(catalog, InvalidOid, false, NULL, 0, NULL);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		if (!heap_attisnull(tup, Anum_pg_index_indexprs, NULL) ||
			!heap_attisnull(tup, Anum_pg_index_indpred, NULL))
			rels = list_append_unique_oid(rels,
										  ((Form_pg_index) GETSTRUCT(tup))->indrelid);
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);

	if (what & RERUN_STATS)
	{
		catalog = table_open(StatisticExtRelationId, AccessShareLock);
		scan = systable_beginscan(catalog, InvalidOid, false, NULL, 0, NULL);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			if (!heap_attisnull(tup, Anum_pg_statistic_ext_stxexprs, NULL))
				rels = list_append_unique_oid(rels,
											  ((Form_pg_statistic_ext) GETSTRUCT(tup))->stxrelid);
		}
		systable_endscan(scan);
		table_close(catalog, AccessShareLock);
	}

	foreach(lc, rels)
	{
		Oid			relid = lfirst_oid(lc);

		if (!OidIsValid(nsp) || get_rel_namespace(relid) == nsp)
			out = rerun_relation(out, relid, InvalidOid, NULL, what);
	}
	return out;
}

/*
 * The tagged columns of type typid (a domain), also through domains over
 * it: ALTER DOMAIN ... ADD CONSTRAINT and VALIDATE CONSTRAINT evaluate the
 * domain's check over every value of them, whoever owns their tables.
 */
static List *
rerun_domain(List *out, Oid typid, const char *what)
{
	Relation	depend;
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *domains = NIL;
	ListCell   *lc;

	check_stack_depth();
	depend = table_open(DependRelationId, AccessShareLock);
	ScanKeyInit(&key[0], Anum_pg_depend_refclassid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(TypeRelationId));
	ScanKeyInit(&key[1], Anum_pg_depend_refobjid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(typid));
	scan = systable_beginscan(depend, DependReferenceIndexId, true, NULL, 2,
							  key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		Form_pg_depend dep = (Form_pg_depend) GETSTRUCT(tup);
		AuditRelTags *tags;
		AuditRerunCode *r = NULL;
		Var		   *var;

		if (dep->classid == TypeRelationId &&
			get_typtype(dep->objid) == TYPTYPE_DOMAIN)
		{
			domains = lappend_oid(domains, dep->objid);
			continue;
		}
		if (dep->classid != RelationRelationId || dep->objsubid <= 0 ||
			!RELKIND_HAS_STORAGE(get_rel_relkind(dep->objid)))
			continue;
		tags = aa_tags_lookup(dep->objid);
		if (tags == NULL || !tags->tagged || dep->objsubid > tags->natts ||
			tags->cols[dep->objsubid].qualname == NULL)
			continue;
		var = makeVar(1, (AttrNumber) dep->objsubid, typid, -1, InvalidOid, 0);
		/* one record per table */
		foreach(lc, out)
		{
			if (((AuditRerunCode *) lfirst(lc))->relid == dep->objid)
				r = lfirst(lc);
		}
		if (r == NULL)
		{
			r = palloc(sizeof(AuditRerunCode));
			r->relid = dep->objid;
			r->exprs = (Node *) NIL;
			r->what = what;
			out = lappend(out, r);
		}
		r->exprs = (Node *) lappend((List *) r->exprs, var);
	}
	systable_endscan(scan);
	table_close(depend, AccessShareLock);

	foreach(lc, domains)
		out = rerun_domain(out, lfirst_oid(lc), what);
	return out;
}

/* does an ALTER TABLE subcommand rewrite the table (and rebuild indexes)? */
static bool
rewrites_table(AlterTableCmd * cmd)
{
	switch (cmd->subtype)
	{
		case AT_AlterColumnType:
		case AT_SetLogged:
		case AT_SetUnLogged:
		case AT_SetAccessMethod:
			return true;
		case AT_AddColumn:
			/* a default may be volatile: say more rather than less */
			if (cmd->def && IsA(cmd->def, ColumnDef))
			{
				ColumnDef  *def = (ColumnDef *) cmd->def;
				ListCell   *lc;

				if (def->raw_default != NULL || def->identity)
					return true;
				foreach(lc, def->constraints)
				{
					Constraint *con = lfirst(lc);

					if (con->contype == CONSTR_DEFAULT ||
						con->contype == CONSTR_IDENTITY ||
						con->contype == CONSTR_GENERATED)
						return true;
				}
			}
			return false;
		default:
			return false;
	}
}

/*
 * The code of tagged tables that parsetree will evaluate again over their
 * rows: a list of AuditRerunCode, NIL for any other statement.
 */
List	   *
aa_rerun_code(Node *parsetree)
{
	List	   *out = NIL;

	switch (nodeTag(parsetree))
	{
		case T_ReindexStmt:
			{
				ReindexStmt *stmt = (ReindexStmt *) parsetree;

				switch (stmt->kind)
				{
					case REINDEX_OBJECT_INDEX:
						{
							Oid			index = RangeVarGetRelid(stmt->relation,
																 NoLock, true);
							List	   *indexes;
							ListCell   *lc;

							if (!OidIsValid(index))
								break;
							/* a partitioned index: its partitions' too */
							indexes = find_all_inheritors(index, NoLock, NULL);
							foreach(lc, indexes)
							{
								Oid			table = IndexGetRelation(lfirst_oid(lc),
																	 true);

								if (OidIsValid(table))
									out = rerun_relation(out, table,
														 lfirst_oid(lc), NULL,
														 RERUN_INDEXES);
							}
						}
						break;
					case REINDEX_OBJECT_TABLE:
						out = rerun_tables(out, stmt->relation, NULL, RERUN_INDEXES);
						break;
					case REINDEX_OBJECT_SCHEMA:
						{
							Oid			nsp = get_namespace_oid(stmt->name, true);

							if (OidIsValid(nsp))
								out = rerun_all(out, nsp, RERUN_INDEXES);
						}
						break;
					case REINDEX_OBJECT_DATABASE:
						out = rerun_all(out, InvalidOid, RERUN_INDEXES);
						break;
					default:
						/* SYSTEM: catalogs only */
						break;
				}
			}
			break;
		case T_ClusterStmt:
			{
				ClusterStmt *stmt = (ClusterStmt *) parsetree;

				if (stmt->relation)
					out = rerun_tables(out, stmt->relation, NULL, RERUN_INDEXES);
				else
					out = rerun_all(out, InvalidOid, RERUN_INDEXES);
			}
			break;
		case T_VacuumStmt:
			{
				VacuumStmt *stmt = (VacuumStmt *) parsetree;
				int			what = stmt->is_vacuumcmd ? 0 : RERUN_STATS;
				ListCell   *lc;

				foreach(lc, stmt->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (strcmp(opt->defname, "full") == 0 && defGetBoolean(opt))
						what |= RERUN_INDEXES;
					else if (strcmp(opt->defname, "analyze") == 0 &&
							 defGetBoolean(opt))
						what |= RERUN_STATS;
				}
				if (what == 0)
					break;
				if (stmt->rels == NIL)
					out = rerun_all(out, InvalidOid, what);
				foreach(lc, stmt->rels)
				{
					VacuumRelation *vr = lfirst_node(VacuumRelation, lc);

					if (vr->relation)
						out = rerun_tables(out, vr->relation, NULL, what);
					else if (OidIsValid(vr->oid))
						out = rerun_relation(out, vr->oid, InvalidOid, NULL,
											 what);
				}
			}
			break;
		case T_AlterTableStmt:
			{
				AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
				int			what = 0;
				ListCell   *lc;

				foreach(lc, stmt->cmds)
				{
					AlterTableCmd *cmd = lfirst(lc);

					if (!IsA(cmd, AlterTableCmd))
						continue;
					/* a NOT VALID constraint checked now */
					if (cmd->subtype == AT_ValidateConstraint)
						out = rerun_tables(out, stmt->relation, cmd->name,
										   RERUN_CHECKS | RERUN_ANY_CODE);
					if (!rewrites_table(cmd))
						continue;
					what |= RERUN_INDEXES;
					/* constraints on the column are made again and checked */
					if (cmd->subtype == AT_AlterColumnType)
						what |= RERUN_CHECKS;
				}
				if (what != 0)
					out = rerun_tables(out, stmt->relation, NULL, what);
			}
			break;
		case T_AlterDomainStmt:
			{
				AlterDomainStmt *stmt = (AlterDomainStmt *) parsetree;
				Constraint *con = (Constraint *) stmt->def;
				const char *conname = NULL;
				Oid			typid;

				if (stmt->subtype == 'V')
					conname = stmt->name;
				else if (stmt->subtype == 'C' && con != NULL &&
						 IsA(con, Constraint) &&
						 con->contype == CONSTR_CHECK && !con->skip_validation)
					conname = con->conname;
				else
					break;
				typid = LookupTypeNameOid(NULL,
										  makeTypeNameFromNameList(stmt->typeName),
										  true);
				if (!OidIsValid(typid) || get_typtype(typid) != TYPTYPE_DOMAIN)
					break;
				out = rerun_domain(out, typid,
								   psprintf("%s of domain %s, validated now",
											conname ?
											psprintf("CHECK constraint \"%s\"",
													 conname) :
											"a CHECK constraint",
											format_type_be(typid)));
			}
			break;
		case T_RefreshMatViewStmt:
			out = rerun_tables(out, ((RefreshMatViewStmt *) parsetree)->relation, NULL,
							   RERUN_INDEXES);
			break;
		default:
			break;
	}
	return out;
}
