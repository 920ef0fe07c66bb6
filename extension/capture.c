/*-------------------------------------------------------------------------
 *
 * capture.c
 *		Executor and utility hooks that turn reads of tagged columns into
 *		audit records.
 *
 * This file owns the decision "does this statement read a tagged column",
 * the in-flight record of each audited statement (who, what, how many
 * rows), and the moment the record is handed to the queue: at ExecutorEnd,
 * or from a reset callback on the statement's memory context when the
 * executor is abandoned (ERROR, ROLLBACK with an open cursor, ROLLBACK TO
 * SAVEPOINT, FATAL exits such as pg_terminate_backend).
 *
 * Ownership: everything here is backend-local.  An in-flight record lives
 * in the memory context of its statement (es_query_cxt, or a child of the
 * portal context for COPY) and is on the inflight list until it is pushed;
 * the context's reset callback removes it from the list, so the list never
 * points at freed memory.  The callback runs during abort and FATAL exits:
 * it only copies into shared memory, never touches the catalogs and never
 * throws.  All names and tags are resolved and copied at ExecutorStart.
 *
 * Also here: the rows of planner statistics a statement reads (counted by
 * wrappers of scan nodes), the tags a relation made from a query takes
 * from its sources (applied by tags.c), the rows a write may print in a
 * constraint error, code and tables attached to tagged tables by their
 * owners, server files, replication slots and remote servers read from
 * SQL, the routine a nested statement runs in (an fmgr hook keeps the
 * stack), the rows an audited statement sends as they leave (a wrapper of
 * its DestReceiver keeps the intent slot current), and the publications
 * a CREATE or ALTER PUBLICATION makes stream tagged columns.  What a plan
 * reads is worked out in plantrace.c; who made a record and the text of its
 * statement, and the records that are not reads, in records.c.  Parallel workers record only what they run inside the
 * copied plan, in their leader's name.
 *
 * IDENTIFICATION
 *	  extension/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/reloptions.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_language.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_statistic_ext_data.h"
#include "catalog/pg_type.h"
#include "catalog/pg_user_mapping.h"
#include "commands/copy.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "commands/progress.h"
#include "common/ip.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "foreign/foreign.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrtab.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/portal.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "capture.h"
#include "compat.h"
#include "derived.h"
#include "plantrace.h"
#include "queue.h"
#include "quota.h"
#include "records.h"
#include "rerun.h"
#include "rowids.h"
#include "tags.h"


/* Statistics rows of tagged columns read by one statement. */
typedef struct StatsReads
{
	int			n_relations,
				cap_relations;
	const char **relations;
	int			n_columns,
				cap_columns;
	const char **columns;
	int			n_tags,
				cap_tags;
	const char **tags;
	int64		rows;			/* statistics rows of tagged columns */
	int64		values;			/* sample values in them (pg_statistic) */
	bool		read_all;		/* stats_read_all() counted everything */
	List	   *seen;			/* StatsKey of each row counted */
	int			n_top;			/* scans read where their rows are emitted */
	PlanState **top_at;			/* ... the node that emits them */
	ScanState **top;
} StatsReads;

/* one statistics row: (catalog, relation or statistics object, attnum, inh) */
typedef struct StatsKey
{
	Oid			catalog;
	Oid			objid;
	int16		attnum;
	bool		inh;
} StatsKey;

/*
 * One audited statement between its start and the push.
 */
typedef struct InflightRecord
{
	struct InflightRecord *next;
	EState	   *estate;			/* NULL for utility COPY */
	MemoryContext cxt;
	MemoryContextCallback cb;
	AuditRecord rec;
	TimestampTz start;
	bool		in_run;			/* inside ExecutorRun/Finish */
	bool		failed;			/* an error passed through our hooks */
	bool		is_copy;		/* utility COPY: rows from progress */
	Oid			copy_relid;		/* the table utility COPY reads */
	int64		copy_sent;		/* rows a failed utility COPY sent, or -1 */
	int			runs;			/* ExecutorRun calls so far */
	bool		intent;			/* holds this backend's intent slot */
	int			n_instr;
	Instrumentation **instr;	/* scan nodes of tagged relations */
	bool	   *instr_leaky;	/* ... whose filter may leak their values */

	/*
	 * Planner statistics of tagged columns the statement read (sample values
	 * in pg_statistic, MCV lists and expression statistics in
	 * pg_statistic_ext_data), found row by row by aa_stats_exec().  A plan
	 * that reads statistics has a record from its start; it is pushed only if
	 * it read tagged columns of its own or some of these.
	 */
	StatsReads *stats;

	/* INSERTs, UPDATEs and MERGEs writing tagged values into tables (DmlCopy) */
	List	   *copies;

	/*
	 * Rows of the statistics scans counted where a node above returns them
	 * (aa_stats_count_node()): as that node returned them, and as the scans
	 * did. A statement that fails may have shown the latter in its error, so
	 * then those count.
	 */
	StatsReads *stats_emitted;
	StatsReads *stats_scanned;

	/*
	 * A statement that writes tables with tagged columns: the lists of its
	 * record (own reads plus the tagged columns PostgreSQL may print in a
	 * constraint error: "Failing row contains", "Key (...)=(...)"), used if
	 * such an error ends it (shown_error).  See error_row_lists().
	 */
	AuditRecord *err_lists;
	bool		shown_error;
	void	   *quota;			/* aa_quota_start(): rows counted for quotas */
	List	   *quota_scans;	/* the scans it counts (PlanState *) */
	uint64		quota_gen;		/* quota generation it started under */
	uint64		quota_stamp;	/* and quota set (aa_quota_set_stamp) */
	void	   *rowids;			/* rowids.c: keys of tracked rows read */
} InflightRecord;

/*
 * What an audited plan reads, derived once per plan from its range table
 * and the tag cache, and reused while the plan lives and the tags do not
 * change: prepared statements and plpgsql run the same PlannedStmt again
 * and again.
 *
 * An entry lives in the memory context of its PlannedStmt and leaves the
 * lookup table through a reset callback on that context, so a new plan
 * that happens to get the same address never finds an old entry.  The
 * lists are kept as one flat block (pointer arrays, then strings) that an
 * execution copies into its own context with one memcpy: an in-flight
 * record never points into the plan's memory, which may go away before
 * the record is pushed (an aborted portal releases its cached plan before
 * its executor memory is reset).
 */
typedef struct PlanAuditInfo
{
	PlannedStmt *stmt;			/* key */
	MemoryContextCallback cb;
	uint64		tags_epoch;		/* aa_tags_epoch() when derived */
	bool		audit;			/* plan_reads_tagged() */
	bool		has_record;		/* build_plan_record() found columns */
	MemoryContext cb_cxt;		/* the plan's context, which holds this */
	Bitmapset  *scan_checked;	/* plan_node_ids asked scan_is_tagged() */
	Bitmapset  *scan_tagged;	/* ... and those that read tagged rels */
	Bitmapset  *scan_leaky;		/* ... whose filter may leak tagged values */
	Bitmapset  *stats_nodes;	/* see build_plan_record() */
	char	   *block;			/* the flat lists, in the plan's context */
	Size		block_size;
	AuditRecord lists;			/* n_* and arrays (pointing into block) */
	bool		special_checked;	/* special_calls() done */
	List	   *special;		/* ... its calls, in the plan's context */
	uint64		copies_epoch;	/* aa_tags_epoch() when copies derived */
	List	   *copies;			/* plan_copies(), in the plan's context */
} PlanAuditInfo;

/*
 * The receiver of an audited statement's rows to the client, around the
 * protocol's own: it counts the rows as they leave, so that a statement
 * the planner expected to return few rows takes the intent slot once it
 * has sent AA_INTENT_ROWS, and keeps the slot's row count current every
 * AA_INTENT_ROWS rows (see aa_ExecutorRun()).
 */
#define AA_INTENT_ROWS	64

typedef struct CountingReceiver
{
	DestReceiver pub;
	DestReceiver *inner;
	struct InflightRecord *ir;
	uint64		sent;			/* rows passed on in this run */
	int64		base;			/* rows of the record before this run */
} CountingReceiver;

typedef struct PlanInfoSlot
{
	PlannedStmt *stmt;			/* hash key */
	PlanAuditInfo *info;
} PlanInfoSlot;

static HTAB *plan_infos = NULL;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static needs_fmgr_hook_type prev_needs_fmgr_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/*
 * The routines (procedural-language and SECURITY DEFINER functions and
 * procedures) this backend is running, innermost last, kept by
 * aa_fmgr_hook(): a nested record names the routine it ran in and the
 * routine's owner, so that a trigger planted by a table owner shows its
 * author in the records of the colleagues it runs for.  Deeper calls are
 * counted, not kept.
 */
#define AA_ROUTINE_DEPTH 64
static Oid	routine_stack[AA_ROUTINE_DEPTH];
static int	routine_depth = 0;
static Oid	routine_cached = InvalidOid;
static char *routine_detail_cached = NULL;

static InflightRecord *inflight = NULL;

/*
 * CREATE MATERIALIZED VIEW and CREATE TABLE AS both fill their relation
 * through DestIntoRel; the utility hook says which one is running.
 */
static bool creating_matview = false;

/*
 * REFRESH MATERIALIZED VIEW CONCURRENTLY runs the view's query, then SQL of
 * its own that diffs the new rows against the old ones in the view and
 * applies the difference.  Those statements read the view (tagged like
 * its sources) but send nothing anywhere: once the view's query has run
 * at refresh_level, statements started at that level are not audited.
 */
static int	refresh_level = -1;
static bool refresh_query_seen = false;


static void aa_ExecutorStart(QueryDesc *queryDesc, int eflags);
static int64 table_rows(Oid relid);
static bool aa_needs_fmgr_hook(Oid fn_oid);
static void aa_fmgr_hook(FmgrHookEventType event, FmgrInfo * flinfo,
						 Datum *private);
static void aa_ExecutorRun(AA_EXECUTOR_RUN_ARGS);
static void aa_ExecutorFinish(QueryDesc *queryDesc);
static void aa_ExecutorEnd(QueryDesc *queryDesc);
static void record_publication_change(Node *parsetree);
static void aa_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
							  bool readOnlyTree, ProcessUtilityContext context,
							  ParamListInfo params, QueryEnvironment *queryEnv,
							  DestReceiver *dest, QueryCompletion *qc);

/*
 * Install the executor and utility hooks.  Called from _PG_init.
 */
void
aa_capture_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = aa_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = aa_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = aa_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = aa_ExecutorEnd;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = aa_ProcessUtility;
	prev_needs_fmgr_hook = needs_fmgr_hook;
	needs_fmgr_hook = aa_needs_fmgr_hook;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = aa_fmgr_hook;
}

/*
 * needs_fmgr_hook: should calls of fn_oid pass through aa_fmgr_hook()?
 * Functions in procedural languages (plpgsql, trigger functions, ...) do;
 * SECURITY DEFINER functions pass through it anyway.  Built-in, C and SQL
 * functions do not: SQL functions would no longer be inlined.
 */
static bool
aa_needs_fmgr_hook(Oid fn_oid)
{
	HeapTuple	tup;
	Oid			lang;

	if (prev_needs_fmgr_hook && prev_needs_fmgr_hook(fn_oid))
		return true;
	if (fn_oid < FirstNormalObjectId || aa_capture_disabled)
		return false;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(tup))
		return false;
	lang = ((Form_pg_proc) GETSTRUCT(tup))->prolang;
	ReleaseSysCache(tup);
	return lang != INTERNALlanguageId && lang != ClanguageId &&
		lang != SQLlanguageId;
}

/*
 * fmgr_hook: keep the stack of routines running (routine_stack).  Leaves
 * *private to other hooks.
 */
static void
aa_fmgr_hook(FmgrHookEventType event, FmgrInfo * flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);
	switch (event)
	{
		case FHET_START:
			if (routine_depth < AA_ROUTINE_DEPTH)
				routine_stack[routine_depth] = flinfo->fn_oid;
			routine_depth++;
			break;
		case FHET_END:
		case FHET_ABORT:
			if (routine_depth > 0)
				routine_depth--;
			break;
	}
}

/*
 * The detail of a record made inside a routine: its name and its owner, as
 * JSON.  NULL outside routines.  Catalog access (cached for the last
 * routine asked about); the result lives in TopMemoryContext.
 */
static const char *
routine_detail(void)
{
	Oid			fn;
	HeapTuple	tup;
	StringInfoData buf;
	char	   *owner = NULL;
	MemoryContext old;

	if (routine_depth <= 0)
		return NULL;
	fn = routine_stack[Min(routine_depth, AA_ROUTINE_DEPTH) - 1];
	if (fn == routine_cached && routine_detail_cached != NULL)
		return routine_detail_cached;
	tup = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn));
	if (!HeapTupleIsValid(tup))
		return NULL;
	owner = GetUserNameFromId(((Form_pg_proc) GETSTRUCT(tup))->proowner, true);
	ReleaseSysCache(tup);
	old = MemoryContextSwitchTo(TopMemoryContext);
	if (routine_detail_cached)
		pfree(routine_detail_cached);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"routine\": ");
	escape_json(&buf, format_procedure_qualified(fn));
	appendStringInfoString(&buf, ", \"routine_owner\": ");
	aa_json_string_or_null(&buf, owner);
	appendStringInfoChar(&buf, '}');
	MemoryContextSwitchTo(old);
	routine_detail_cached = buf.data;
	routine_cached = fn;
	return routine_detail_cached;
}

/* ---------------------------------------------------------------------
 * Building the record
 * ---------------------------------------------------------------------
 */



/*
 * Collect the instrumentation of every scan node over a tagged relation,
 * for tagged_rows.
 */
typedef struct InstrCtx
{
	PlannedStmt *stmt;
	List	   *instr;			/* PlanStates of the counted scans */
	List	   *instr_leaky;	/* int per instr: filter may leak */
	struct PlanAuditInfo *pai;	/* remembers the answer per plan node */
	MemoryContext cxt;			/* for counters of uninstrumented scans */
	Bitmapset  *stats_nodes;	/* scans of statistics catalogs to watch */
	List	   *stats_top;		/* ... of which those counted higher up */
	List	   *stats_top_at;	/* ... and the Plan where each is counted */
	void	  **rowids;			/* the record's row sets (rowids.c) */
} InstrCtx;

static bool scan_is_tagged(Plan *plan, InstrCtx *ctx, bool *leaky);
static int64 tagged_rows_so_far(struct InflightRecord *ir);

/*
 * ExecProcNode of a tagged scan in a plan run without instrumentation:
 * count the rows it returns in its own Instrumentation's tuplecount (never
 * started, so the executor's instrumentation code leaves it alone) and
 * nothing else.  Row instrumentation of the whole plan (INSTRUMENT_ROWS)
 * wraps every node's every row and was most of the capture's cost on
 * range reads.
 */
/*
 * The tagged scans whose ExecProcNode is running, innermost last, by their
 * Instrumentation.  A scan evaluates its filter and its projection inside
 * that call: an error there (phone::int failing on "555-3") shows a value
 * of a row the scan never returned, so the row was read all the same.  On
 * an error, scans_in_call_count() counts one row for each scan of the
 * statement still in its call.  Each wrapper restores the depth it found
 * when it returns, so entries left by an error caught lower down (a
 * PL/pgSQL exception block in a function the scan called) are dropped as
 * soon as the scan returns; deeper than AA_SCAN_CALLS_MAX is not tracked.
 */
#define AA_SCAN_CALLS_MAX	64
static Instrumentation *scan_calls[AA_SCAN_CALLS_MAX];
static int	scan_call_depth = 0;

static TupleTableSlot *exec_real_node(PlanState *node);

/* run the tagged scan node with fn, as the innermost entry of scan_calls */
static inline TupleTableSlot *
scan_call(PlanState *node, ExecProcNodeMtd fn)
{
	int			depth = scan_call_depth;
	TupleTableSlot *slot;

	if (depth < AA_SCAN_CALLS_MAX)
		scan_calls[depth] = node->instrument;
	scan_call_depth = depth + 1;
	slot = fn(node);
	scan_call_depth = depth;
	return slot;
}

static TupleTableSlot *
aa_counting_exec(PlanState *node)
{
	TupleTableSlot *slot = scan_call(node, node->ExecProcNodeReal);

	if (!TupIsNull(slot))
		node->instrument->tuplecount += 1;
	return slot;
}

/* the same for a scan with the executor's own instrumentation */
static TupleTableSlot *
aa_counting_instr_exec(PlanState *node)
{
	return scan_call(node, exec_real_node);
}

/* ---------------------------------------------------------------------
 * Tags of relations made from a query
 * ---------------------------------------------------------------------
 *
 * A copy of tagged data is tagged data: CREATE TABLE AS, SELECT INTO and
 * materialized views give each of their columns the tag of the tagged
 * columns it is computed from (traced like the record's output columns),
 * so that later reads of the copy are audited too.  derived.c works them
 * out; the executor pushes them to tags.c (aa_tags_derived_push), which
 * applies them after the statement.
 */
static const char *command_name(QueryDesc *qd);

/* CREATE TABLE AS and friends: the new relation's tags, for tags.c */
static void
derived_tags_push(QueryDesc *queryDesc)
{
	AuditDerivedTags *d = NULL;

	if (queryDesc->plannedstmt->planTree != NULL)
	{
		Plan	   *top = queryDesc->plannedstmt->planTree;

		d = aa_derived_tags_of(queryDesc->plannedstmt, top->targetlist, top,
							   command_name(queryDesc), TopTransactionContext);
	}
	aa_tags_derived_push(d);
}

/*
 * The copies of a plan, derived once per plan and tag epoch and kept with
 * its audit info (after the first run has tagged the columns, none: a
 * statement run again and again pays a comparison), copied into cxt like
 * the record's lists, since an execution never points into plan memory.
 */
static List *
plan_copies(PlanAuditInfo *pai, MemoryContext cxt)
{
	uint64		epoch = aa_tags_epoch();
	List	   *copies = NIL;
	MemoryContext old;
	ListCell   *lc;

	if (pai->copies_epoch != epoch)
	{
		pai->copies = aa_derived_dml_copies(pai->stmt, pai->cb_cxt);
		pai->copies_epoch = epoch;
	}
	if (pai->copies == NIL)
		return NIL;
	old = MemoryContextSwitchTo(cxt);
	foreach(lc, pai->copies)
	{
		DmlCopy    *src = lfirst(lc);
		DmlCopy    *c = palloc(sizeof(DmlCopy));
		AuditDerivedTags *d = palloc(sizeof(AuditDerivedTags));
		int			n = Max(src->d->natts, 1);
		int			i;

		d->natts = src->d->natts;
		d->attnos = palloc(sizeof(AttrNumber) * n);
		memcpy(d->attnos, src->d->attnos, sizeof(AttrNumber) * n);
		d->labels = palloc0(sizeof(char *) * n);
		d->whys = palloc0(sizeof(char *) * n);
		for (i = 0; i < d->natts; i++)
		{
			if (src->d->labels[i] == NULL)
				continue;
			d->labels[i] = pstrdup(src->d->labels[i]);
			d->whys[i] = pstrdup(src->d->whys[i]);
		}
		c->relid = src->relid;
		c->d = d;
		copies = lappend(copies, c);
	}
	MemoryContextSwitchTo(old);
	return copies;
}

/* ---------------------------------------------------------------------
 * Reads of planner statistics
 * ---------------------------------------------------------------------
 */

static InflightRecord *inflight_find(EState *estate);
static void stats_row(StatsReads *st, ScanState * ss, MemoryContext cxt);

/*
 * Would the view over this statistics row (pg_stats, pg_stats_ext) show it
 * to the current user?  The same test as the views' own: the column may be
 * read (pg_stats) or the table is owned (pg_stats_ext, whole == true), and
 * no row-level security applies.  A superuser reading the catalog directly
 * passes it.
 */
static bool
stats_visible(Oid relid, AttrNumber attno, bool whole)
{
	Oid			uid = GetUserId();
	bool		missing = false;

	if (check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED)
		return false;
	if (whole)
		return aa_rel_ownercheck_compat(relid, uid);
	if (pg_class_aclcheck(relid, uid, ACL_SELECT) == ACLCHECK_OK)
		return true;
	return pg_attribute_aclcheck_ext(relid, attno, uid, ACL_SELECT,
									 &missing) == ACLCHECK_OK && !missing;
}

/*
 * Count a statistics row once per statement, however often a rescanned
 * inner scan or a join returns it.  Returns false if it was counted.
 */
static bool
stats_first_sight(StatsReads *st, Oid catalog, Oid objid, int16 attnum,
				  bool inh, MemoryContext cxt)
{
	ListCell   *lc;
	StatsKey   *k;

	foreach(lc, st->seen)
	{
		k = lfirst(lc);
		if (k->catalog == catalog && k->objid == objid &&
			k->attnum == attnum && k->inh == inh)
			return false;
	}
	k = MemoryContextAlloc(cxt, sizeof(StatsKey));
	k->catalog = catalog;
	k->objid = objid;
	k->attnum = attnum;
	k->inh = inh;
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		st->seen = lappend(st->seen, k);
		MemoryContextSwitchTo(old);
	}
	return true;
}

static void
stats_note_column(StatsReads *st, AuditRelTags *tags, AttrNumber attno,
				  MemoryContext cxt)
{
	AuditColumnTags *col = &tags->cols[attno];
	MemoryContext old = MemoryContextSwitchTo(cxt);
	int			i;

	aa_add_unique(&st->columns, &st->n_columns, &st->cap_columns,
				  pstrdup(col->qualname));
	for (i = 0; i < col->ntags; i++)
		aa_add_unique(&st->tags, &st->n_tags, &st->cap_tags,
					  pstrdup(col->tags[i]));
	aa_add_unique(&st->relations, &st->n_relations, &st->cap_relations,
				  pstrdup(tags->qualname));
	MemoryContextSwitchTo(old);
}

/*
 * The columns of its table that column attno of relid is made of, if relid
 * is an index (ANALYZE keeps statistics, sample values included, for the
 * expression columns of an index: lower(email) has email's values); the
 * table in *table (member 0: the whole row).  NULL for anything else.
 */
static Bitmapset *
index_column_sources(Oid relid, AttrNumber attno, Oid *table)
{
	HeapTuple	tup;
	Form_pg_index form;
	Bitmapset  *cols = NULL;

	tup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	form = (Form_pg_index) GETSTRUCT(tup);
	*table = form->indrelid;
	if (attno > form->indnatts)
		;
	else if (form->indkey.values[attno - 1] != 0)
		cols = bms_make_singleton(form->indkey.values[attno - 1]);
	else
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(INDEXRELID, tup, Anum_pg_index_indexprs,
										&isnull);
		int			nth = 0;
		int			i;

		/* the expression of the attno-th column among the expression ones */
		for (i = 0; i < attno - 1; i++)
			nth += form->indkey.values[i] == 0 ? 1 : 0;
		if (!isnull)
		{
			List	   *exprs = (List *) stringToNode(TextDatumGetCString(d));
			Bitmapset  *vars = NULL;
			int			x = -1;

			if (nth < list_length(exprs))
				pull_varattnos(list_nth(exprs, nth), 1, &vars);
			while ((x = bms_next_member(vars, x)) >= 0)
			{
				AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

				/* 0: a whole row, every column */
				if (a >= 0)
					cols = bms_add_member(cols, a);
			}
		}
	}
	ReleaseSysCache(tup);
	return cols;
}

/*
 * A pg_statistic row: sample values of one column.  Runs in per-tuple
 * memory; what the record keeps goes to cxt.
 */
static void
stats_row_column(StatsReads *st, TupleTableSlot *row, MemoryContext cxt)
{
	bool		isnull;
	Oid			relid;
	AttrNumber	attno;
	AuditRelTags *tags;
	Bitmapset  *cols = NULL;
	int			i;
	int			x = -1;

	relid = DatumGetObjectId(slot_getattr(row, Anum_pg_statistic_starelid, &isnull));
	if (isnull)
		return;
	attno = DatumGetInt16(slot_getattr(row, Anum_pg_statistic_staattnum, &isnull));
	if (isnull || attno < 1)
		return;
	tags = aa_tags_lookup(relid);
	if (tags != NULL)
	{
		if (attno > tags->natts || tags->cols[attno].qualname == NULL ||
			!stats_visible(relid, attno, false))
			return;
		cols = bms_make_singleton(attno);
	}
	else
	{
		/* an expression index's column: the table columns it is made of */
		Oid			table;

		cols = index_column_sources(relid, attno, &table);
		if (cols == NULL || (tags = aa_tags_lookup(table)) == NULL ||
			!stats_visible(table, InvalidAttrNumber, true))
			return;
	}
	if (!stats_first_sight(st, StatisticRelationId, relid, attno,
						   DatumGetBool(slot_getattr(row, Anum_pg_statistic_stainherit,
													 &isnull)), cxt))
		return;
	if (bms_is_member(0, cols))
		for (i = 1; i <= tags->natts; i++)
			cols = bms_add_member(cols, i);
	while ((x = bms_next_member(cols, x)) >= 0)
		if (x >= 1 && x <= tags->natts && tags->cols[x].qualname != NULL)
			break;
	if (x < 0)
		return;
	x = -1;
	while ((x = bms_next_member(cols, x)) >= 0)
		if (x >= 1 && x <= tags->natts && tags->cols[x].qualname != NULL)
			stats_note_column(st, tags, (AttrNumber) x, cxt);
	st->rows++;
	for (i = 0; i < STATISTIC_NUM_SLOTS; i++)
	{
		Datum		d = slot_getattr(row, Anum_pg_statistic_stavalues1 + i, &isnull);

		if (!isnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(d);

			st->values += ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
		}
	}
}

/*
 * A pg_statistic_ext_data row: MCV lists or expression statistics over the
 * columns of one statistics object (its keys and the columns its
 * expressions use).
 */
static void
stats_row_ext(StatsReads *st, TupleTableSlot *row, MemoryContext cxt)
{
	bool		isnull;
	Oid			stxoid;
	HeapTuple	tup;
	Form_pg_statistic_ext form;
	AuditRelTags *tags;
	Bitmapset  *cols = NULL;
	Datum		d;
	int			i;
	int			x = -1;
	bool		any = false;

	bool		mcv_null;
	bool		expr_null;
	Datum		mcv;
	Datum		expr;

	stxoid = DatumGetObjectId(slot_getattr(row, Anum_pg_statistic_ext_data_stxoid, &isnull));
	if (isnull)
		return;
	mcv = slot_getattr(row, Anum_pg_statistic_ext_data_stxdmcv, &mcv_null);
	expr = slot_getattr(row, Anum_pg_statistic_ext_data_stxdexpr, &expr_null);
	if (mcv_null && expr_null)
		return;					/* ndistinct, dependencies: no values */
	tup = SearchSysCache1(STATEXTOID, ObjectIdGetDatum(stxoid));
	if (!HeapTupleIsValid(tup))
		return;
	form = (Form_pg_statistic_ext) GETSTRUCT(tup);
	tags = aa_tags_lookup(form->stxrelid);
	if (tags == NULL || !stats_visible(form->stxrelid, InvalidAttrNumber, true) ||
		!stats_first_sight(st, StatisticExtDataRelationId, stxoid, 0,
						   DatumGetBool(slot_getattr(row, Anum_pg_statistic_ext_data_stxdinherit,
													 &isnull)), cxt))
	{
		ReleaseSysCache(tup);
		return;
	}
	for (i = 0; i < form->stxkeys.dim1; i++)
		cols = bms_add_member(cols, form->stxkeys.values[i]);
	d = SysCacheGetAttr(STATEXTOID, tup, Anum_pg_statistic_ext_stxexprs, &isnull);
	if (!isnull)
	{
		Node	   *exprs = stringToNode(TextDatumGetCString(d));
		Bitmapset  *vars = NULL;

		pull_varattnos(exprs, 1, &vars);
		while ((x = bms_next_member(vars, x)) >= 0)
		{
			AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

			/* a whole row: every column */
			if (a == 0)
				for (i = 1; i <= tags->natts; i++)
					cols = bms_add_member(cols, i);
			else if (a > 0)
				cols = bms_add_member(cols, a);
		}
	}
	ReleaseSysCache(tup);
	x = -1;
	while ((x = bms_next_member(cols, x)) >= 0)
	{
		if (x >= 1 && x <= tags->natts && tags->cols[x].qualname != NULL)
		{
			stats_note_column(st, tags, (AttrNumber) x, cxt);
			any = true;
		}
	}
	if (!any)
		return;
	st->rows++;
	if (!mcv_null)
		st->values += statext_mcv_deserialize(DatumGetByteaP(mcv))->nitems;
	if (!expr_null)
	{
		ArrayType  *arr = DatumGetArrayTypeP(expr);

		/* one pg_statistic row per expression */
		st->values += ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	}
}

/* is this scan's row counted where a node above returns it? */
static bool
stats_counted_above(StatsReads *st, ScanState * ss)
{
	int			i;

	for (i = 0; i < st->n_top; i++)
		if (st->top[i] == ss)
			return true;
	return false;
}

/* *st, made on first use in cxt */
static StatsReads *
stats_reads(StatsReads **st, MemoryContext cxt)
{
	if (*st == NULL)
		*st = MemoryContextAllocZero(cxt, sizeof(StatsReads));
	return *st;
}

/*
 * The node's own ExecProcNode, with the row counting of an instrumented
 * plan (EXPLAIN ANALYZE), which replacing ExecProcNode would otherwise skip.
 */
static TupleTableSlot *
exec_real_node(PlanState *node)
{
	TupleTableSlot *slot;

	if (node->instrument)
		InstrStartNode(node->instrument);
	slot = node->ExecProcNodeReal(node);
	if (node->instrument)
		InstrStopNode(node->instrument, TupIsNull(slot) ? 0.0 : 1.0);
	return slot;
}

/*
 * ExecProcNode of a scan of a statistics catalog: note each row it returns
 * (the scan tuple, whatever the node projects) that holds values of a
 * tagged column the user may see.
 */
static TupleTableSlot *
aa_stats_exec(PlanState *node)
{
	TupleTableSlot *slot = exec_real_node(node);
	ScanState  *ss = (ScanState *) node;
	InflightRecord *ir;

	if (TupIsNull(slot) || (ir = inflight_find(node->state)) == NULL)
		return slot;

	if (stats_counted_above(stats_reads(&ir->stats, ir->cxt), ss))
	{
		/* what the scan returned, for a statement that fails */
		stats_row(stats_reads(&ir->stats_scanned, ir->cxt), ss, ir->cxt);
	}
	else
		stats_row(ir->stats, ss, ir->cxt);
	return slot;
}

static void
stats_row(StatsReads *st, ScanState * ss, MemoryContext cxt)
{
	MemoryContext old;

	/* detoasted arrays and catalog lookups in the scan's per-tuple memory */
	old = MemoryContextSwitchTo(ss->ps.ps_ExprContext->ecxt_per_tuple_memory);
	if (RelationGetRelid(ss->ss_currentRelation) == StatisticRelationId)
		stats_row_column(st, ss->ss_ScanTupleSlot, cxt);
	else
		stats_row_ext(st, ss->ss_ScanTupleSlot, cxt);
	MemoryContextSwitchTo(old);
}

/*
 * ExecProcNode of the node where statistics scans' rows are counted: each
 * row it returns carries the current row of each of them.
 */
static TupleTableSlot *
aa_stats_top_exec(PlanState *node)
{
	TupleTableSlot *slot = exec_real_node(node);
	InflightRecord *ir;
	int			i;

	if (TupIsNull(slot) || (ir = inflight_find(node->state)) == NULL ||
		ir->stats == NULL)
		return slot;
	for (i = 0; i < ir->stats->n_top; i++)
	{
		ScanState  *ss = ir->stats->top[i];

		if (ir->stats->top_at[i] != node || TupIsNull(ss->ss_ScanTupleSlot))
			continue;
		stats_row(stats_reads(&ir->stats_emitted, ir->cxt), ss, ir->cxt);
	}
	return slot;
}

/* the PlanState of plan_node_id id */
static bool
find_planstate(PlanState *ps, void *arg)
{
	PlanState **found = (PlanState **) arg;

	if (ps == NULL)
		return false;
	if (ps->plan->plan_node_id == (*found)->plan->plan_node_id)
	{
		*found = ps;
		return true;
	}
	return planstate_tree_walker(ps, find_planstate, arg);
}

/*
 * A parallel plan reads statistics in its workers: count every row of both
 * statistics catalogs that the user may see, once per statement.  An
 * over-statement, on the safe side, for a rare plan (catalogs are small;
 * a parallel scan of one is chosen only when a session asks for it).
 */
static void
stats_read_all(InflightRecord *ir)
{
	Oid			cats[2] = {StatisticRelationId, StatisticExtDataRelationId};
	MemoryContext tmp;
	int			i;

	if (stats_reads(&ir->stats, ir->cxt)->read_all)
		return;
	ir->stats->read_all = true;
	tmp = AllocSetContextCreate(CurrentMemoryContext, "access_audit statistics",
								ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < 2; i++)
	{
		Relation	rel = table_open(cats[i], AccessShareLock);
		SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, NULL, 0, NULL);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(rel),
														&TTSOpsHeapTuple);
		HeapTuple	tup;

		while ((tup = systable_getnext(scan)) != NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(tmp);

			ExecStoreHeapTuple(tup, slot, false);
			if (cats[i] == StatisticRelationId)
				stats_row_column(ir->stats, slot, ir->cxt);
			else
				stats_row_ext(ir->stats, slot, ir->cxt);
			ExecClearTuple(slot);
			MemoryContextSwitchTo(old);
			MemoryContextReset(tmp);
		}
		systable_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(rel, AccessShareLock);
	}
	MemoryContextDelete(tmp);
}

static bool
collect_scan_instr(PlanState *ps, InstrCtx *ctx)
{
	bool		leaky;

	if (ps == NULL)
		return false;
	/* aa_stats_scan_nodes(): statistics scans, and Gathers above some */
	if (bms_is_member(ps->plan->plan_node_id, ctx->stats_nodes))
	{
		if (IsA(ps, GatherState) || IsA(ps, GatherMergeState))
		{
			InflightRecord *ir = inflight_find(ps->state);

			if (ir != NULL)
				stats_read_all(ir);
		}
		else
		{
			Plan	   *at = aa_stats_count_node(ctx->stmt, ps->plan);

			aa_set_exec_proc_node_compat(ps, aa_stats_exec);
			if (at != ps->plan)
			{
				ctx->stats_top = lappend(ctx->stats_top, ps);
				ctx->stats_top_at = lappend(ctx->stats_top_at, at);
			}
		}
	}
	if (IsA(ps, SeqScanState) + IsA(ps, IndexScanState) +
		IsA(ps, IndexOnlyScanState) + IsA(ps, BitmapHeapScanState) +
		IsA(ps, TidScanState) + IsA(ps, TidRangeScanState) +
		IsA(ps, SampleScanState) + IsA(ps, ForeignScanState) > 0 &&
		scan_is_tagged(ps->plan, ctx, &leaky))
	{
		/*
		 * A scan with an Instrumentation counts the rows its filter removes
		 * in nfiltered1 (InstrCountFiltered1), with or without
		 * INSTRUMENT_ROWS.
		 */
		if (ps->instrument == NULL)
		{
			ps->instrument = MemoryContextAllocZero(ctx->cxt, sizeof(Instrumentation));
			aa_set_exec_proc_node_compat(ps, aa_counting_exec);
		}
		else
			aa_set_exec_proc_node_compat(ps, aa_counting_instr_exec);
		ctx->instr = lappend(ctx->instr, ps);
		ctx->instr_leaky = lappend_int(ctx->instr_leaky, leaky ? 1 : 0);
		if (ctx->rowids != NULL)
			aa_rowids_scan(ctx->rowids, ps, leaky, ctx->cxt);
	}
	return planstate_tree_walker(ps, collect_scan_instr, (void *) ctx);
}

/*
 * An error ended the run of ir's statement: each of its tagged scans still
 * in its call (from depth on in scan_calls) was working on a row, which
 * its filter or projection had read; count it.  Then forget the calls.
 */
static void
scans_in_call_count(InflightRecord *ir, int depth)
{
	int			d;
	int			i;

	for (d = depth; d < Min(scan_call_depth, AA_SCAN_CALLS_MAX); d++)
		for (i = 0; i < ir->n_instr; i++)
			if (scan_calls[d] == ir->instr[i])
			{
				ir->instr[i]->tuplecount += 1;
				break;
			}
	scan_call_depth = depth;
}

static int64
tagged_rows_so_far(InflightRecord *ir)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < ir->n_instr; i++)
	{
		n += (int64) (ir->instr[i]->ntuples + ir->instr[i]->tuplecount);
		if (ir->instr_leaky[i])
			n += (int64) ir->instr[i]->nfiltered1;
	}
	return n;
}

/*
 * Command name of the record, from the destination and operation.
 */
static const char *
command_name(QueryDesc *qd)
{
	switch (qd->dest->mydest)
	{
		case DestIntoRel:
			return creating_matview ? "CREATE MATERIALIZED VIEW" :
				"CREATE TABLE AS";
		case DestTransientRel:
			/* from PostgreSQL 17 on, CREATE fills the view like REFRESH */
			return creating_matview ? "CREATE MATERIALIZED VIEW" :
				"REFRESH MATERIALIZED VIEW";
		case DestCopyOut:
			return "COPY";
		default:
			break;
	}
	switch (qd->operation)
	{
		case CMD_SELECT:
			return "SELECT";
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_DELETE:
			return "DELETE";
		case CMD_MERGE:
			return "MERGE";
		default:
			return "OTHER";
	}
}

/*
 * Do the selected columns sel (ATTBIT bits) include a tagged column of
 * tags, or the whole row?
 */
static bool
selects_tagged(Bitmapset *sel, AuditRelTags *tags)
{
	int			x = -1;

	while ((x = bms_next_member(sel, x)) >= 0)
	{
		AttrNumber	attno = x + FirstLowInvalidHeapAttributeNumber;

		if (attno == 0)
			return true;
		if (attno > 0 && attno <= tags->natts &&
			tags->cols[attno].qualname != NULL)
			return true;
	}
	return false;
}

/*
 * The columns the plan reads of each inheritance child and partition it
 * scans on behalf of a parent named in the query, indexed by range-table
 * index (NULL where none): the parent's selected columns, translated
 * through the plan's AppendRelInfos (parent_colnos, which setrefs.c keeps;
 * the same on every version, unlike the children's own permission
 * entries).  Allocated in the current context; NULL if the plan expands no
 * parent.
 */
static Bitmapset **
child_selected_cols(PlannedStmt *stmt)
{
	int			nrt = list_length(stmt->rtable);
	Bitmapset **sets;
	bool		changed = true;
	int			rounds = 0;
	ListCell   *lc;

	if (stmt->appendRelations == NIL)
		return NULL;
	sets = palloc0(sizeof(Bitmapset *) * (nrt + 1));
	while (changed && rounds++ < 32)
	{
		changed = false;
		foreach(lc, stmt->appendRelations)
		{
			AppendRelInfo *ari = lfirst(lc);
			RangeTblEntry *prte;
			Bitmapset  *psel;
			AttrNumber	c;

			if (ari->parent_relid < 1 || ari->parent_relid > nrt ||
				ari->child_relid < 1 || ari->child_relid > nrt ||
				sets[ari->child_relid] != NULL)
				continue;
			prte = rt_fetch(ari->parent_relid, stmt->rtable);
			if (prte->rtekind != RTE_RELATION)
				continue;
			psel = (aa_rte_required_perms_compat(stmt, prte) & ACL_SELECT) ?
				aa_rte_selected_cols_compat(stmt, prte) :
				sets[ari->parent_relid];
			if (psel == NULL)
				continue;
			if (bms_is_member(ATTBIT(0), psel))
				sets[ari->child_relid] = bms_make_singleton(ATTBIT(0));
			else
			{
				Bitmapset  *csel = NULL;

				for (c = 1; c <= ari->num_child_cols; c++)
				{
					AttrNumber	pa = ari->parent_colnos ?
					ari->parent_colnos[c - 1] : 0;

					if (pa > 0 && bms_is_member(ATTBIT(pa), psel))
						csel = bms_add_member(csel, ATTBIT(c));
				}
				if (csel == NULL)
					continue;
				sets[ari->child_relid] = csel;
			}
			changed = true;
		}
	}
	return sets;
}

/*
 * Is range-table entry rti a child whose own tags (not its parents') the
 * plan reads: a tag on a partition of an untagged parent?  The parent
 * column of a child column is found through the AppendRelInfo.
 */
static bool
child_column_own_tag(PlannedStmt *stmt, Index rti, AttrNumber cattno)
{
	ListCell   *lc;

	foreach(lc, stmt->appendRelations)
	{
		AppendRelInfo *ari = lfirst(lc);
		RangeTblEntry *prte;
		AuditRelTags *pt;
		AttrNumber	pa;

		if (ari->child_relid != rti)
			continue;
		if (cattno < 1 || cattno > ari->num_child_cols ||
			ari->parent_colnos == NULL)
			return true;
		pa = ari->parent_colnos[cattno - 1];
		prte = rt_fetch(ari->parent_relid, stmt->rtable);
		pt = aa_tags_lookup(prte->relid);
		return pt == NULL || pa < 1 || pa > pt->natts ||
			pt->cols[pa].qualname == NULL;
	}
	return true;
}

/*
 * Add to *cols the columns of range-table entry rti that the scans of it in
 * plan (and below) refer to in their conditions: its filter and the
 * original quals of index and bitmap scans.
 */
static void
scan_qual_columns(Plan *plan, Index rti, Bitmapset **cols)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	switch (nodeTag(plan))
	{
		case T_SeqScan:
		case T_SampleScan:
		case T_IndexScan:
		case T_IndexOnlyScan:
		case T_BitmapHeapScan:
		case T_TidScan:
		case T_TidRangeScan:
			if (((Scan *) plan)->scanrelid == rti)
			{
				pull_varattnos((Node *) plan->qual, rti, cols);
				if (IsA(plan, IndexScan))
					pull_varattnos((Node *) ((IndexScan *) plan)->indexqualorig,
								   rti, cols);
				else if (IsA(plan, BitmapHeapScan))
					pull_varattnos((Node *) ((BitmapHeapScan *) plan)->bitmapqualorig,
								   rti, cols);
			}
			break;
		case T_Append:
			foreach(lc, ((Append *) plan)->appendplans)
				scan_qual_columns(lfirst(lc), rti, cols);
			break;
		case T_MergeAppend:
			foreach(lc, ((MergeAppend *) plan)->mergeplans)
				scan_qual_columns(lfirst(lc), rti, cols);
			break;
		case T_SubqueryScan:
			scan_qual_columns(((SubqueryScan *) plan)->subplan, rti, cols);
			break;
		case T_BitmapAnd:
			foreach(lc, ((BitmapAnd *) plan)->bitmapplans)
				scan_qual_columns(lfirst(lc), rti, cols);
			break;
		case T_BitmapOr:
			foreach(lc, ((BitmapOr *) plan)->bitmapplans)
				scan_qual_columns(lfirst(lc), rti, cols);
			break;
		default:
			break;
	}
	scan_qual_columns(plan->lefttree, rti, cols);
	scan_qual_columns(plan->righttree, rti, cols);
}

/*
 * The tagged columns of relation rti that row-level security policies make
 * the statement read: a policy's conditions are added to the scans of the
 * relation but not to the columns the query selects, so a policy calling
 * a function on phone hands it the phone of every row scanned, whoever
 * reads.  Found as the columns the scans' conditions refer to beyond the
 * selected ones, for relations with row-level security on; NULL if none.
 */
static Bitmapset *
policy_columns(PlannedStmt *stmt, Index rti, RangeTblEntry *rte,
			   AuditRelTags *tags, Bitmapset *sel)
{
	HeapTuple	tup;
	bool		rls;
	Bitmapset  *cols = NULL;
	Bitmapset  *extra;
	ListCell   *lc;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(rte->relid));
	if (!HeapTupleIsValid(tup))
		return NULL;
	rls = ((Form_pg_class) GETSTRUCT(tup))->relrowsecurity;
	ReleaseSysCache(tup);
	if (!rls)
		return NULL;
	scan_qual_columns(stmt->planTree, rti, &cols);
	foreach(lc, stmt->subplans)
		scan_qual_columns(lfirst(lc), rti, &cols);
	extra = bms_difference(cols, sel);
	if (!selects_tagged(extra, tags))
		return NULL;
	return extra;
}

/*
 * Decide, before the plan starts, whether it may read tagged columns: a
 * relation it reads (a range-table entry checked for SELECT) has a tagged
 * column among the columns it selects, or is read as a whole row.  This is
 * the same test build_plan_record() starts from, so a plan that passes it
 * is audited and one that fails it (untagged columns of a tagged table,
 * count(*)) costs one hash lookup per relation and a bitmap test, without
 * row instrumentation.
 */
static bool
plan_reads_tagged(PlannedStmt *stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		AuditRelTags *tags;

		if (rte->rtekind != RTE_RELATION ||
			(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) == 0)
			continue;
		tags = aa_tags_lookup(rte->relid);
		if (tags != NULL &&
			selects_tagged(aa_rte_selected_cols_compat(stmt, rte), tags))
			return true;
		if (tags != NULL &&
			policy_columns(stmt, foreach_current_index(lc) + 1, rte, tags,
						   aa_rte_selected_cols_compat(stmt, rte)) != NULL)
			return true;
	}

	/* children read through a parent: a tag on a partition only */
	if (stmt->appendRelations != NIL)
	{
		Bitmapset **child = child_selected_cols(stmt);
		int			rti;
		bool		found = false;

		for (rti = 1; child && rti <= list_length(stmt->rtable) && !found; rti++)
		{
			RangeTblEntry *rte = rt_fetch(rti, stmt->rtable);
			AuditRelTags *tags;

			if (child[rti] == NULL || rte->rtekind != RTE_RELATION)
				continue;
			tags = aa_tags_lookup(rte->relid);
			found = tags != NULL && selects_tagged(child[rti], tags);
		}
		if (found)
			return true;
	}
	return aa_plan_reads_stats(stmt);
}

/*
 * Build the record body for an audited plan in cxt.  Returns false if, on
 * closer look, no tagged column is read (count(*), untagged columns only)
 * and no planner statistics either; *stats_nodes gets the scans of
 * statistics catalogs to watch while the plan runs.
 */
static bool
build_plan_record(PlannedStmt *stmt, AuditRecord *rec, MemoryContext cxt,
				  Bitmapset **stats_nodes)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	OutputTrace t;
	int			nrt = list_length(stmt->rtable);
	Bitmapset **refs;
	int			rti;
	int			cap_rel = 0,
				cap_col = 0,
				cap_pred = 0,
				cap_tag = 0;

	memset(&t, 0, sizeof(t));
	t.stmt = stmt;
	t.out = palloc0(sizeof(Bitmapset *) * (nrt + 1));
	aa_trace_outputs(stmt, &t);
	aa_fold_children(stmt, t.out);
	refs = aa_plan_has_view(stmt) ? aa_referenced_columns(stmt, nrt) : NULL;

	for (rti = 1; rti <= nrt; rti++)
	{
		RangeTblEntry *rte = rt_fetch(rti, stmt->rtable);
		AuditRelTags *tags;
		Bitmapset  *sel;
		bool		whole;
		bool		any = false;
		AttrNumber	attno;

		if (rte->rtekind != RTE_RELATION)
			continue;
		/* logical reads only: planner-added children are counted by parent */
		if ((aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) == 0)
			continue;
		tags = aa_tags_lookup(rte->relid);
		if (tags == NULL)
			continue;
		sel = aa_rte_selected_cols_compat(stmt, rte);
		whole = bms_is_member(ATTBIT(0), sel);
		if (refs != NULL && !whole && !bms_is_member(ATTBIT(0), refs[rti]))
			sel = bms_intersect(sel, refs[rti]);
		/* columns row-level security policies read (predicate only) */
		if (!whole)
			sel = bms_union(sel, policy_columns(stmt, rti, rte, tags, sel));
		for (attno = 1; attno <= tags->natts; attno++)
		{
			AuditColumnTags *col = &tags->cols[attno];
			bool		output;
			int			i;

			if (col->qualname == NULL)
				continue;
			if (!whole && !bms_is_member(ATTBIT(attno), sel))
				continue;
			any = true;
			aa_add_unique(&rec->columns, &rec->n_columns, &cap_col,
						  pstrdup(col->qualname));
			for (i = 0; i < col->ntags; i++)
				aa_add_unique(&rec->tags, &rec->n_tags, &cap_tag,
							  pstrdup(col->tags[i]));
			output = t.unknown ||
				bms_is_member(ATTBIT(attno), t.out[rti]) ||
				bms_is_member(ATTBIT(0), t.out[rti]);
			if (!output)
				aa_add_unique(&rec->predicate_columns, &rec->n_predicate,
							  &cap_pred, pstrdup(col->qualname));
		}
		if (any)
			aa_add_unique(&rec->relations, &rec->n_relations, &cap_rel,
						  pstrdup(tags->qualname));
	}

	/*
	 * Children and partitions read through a parent: their own tags, those
	 * their parent does not have (a tag on one partition), are read too.
	 */
	if (stmt->appendRelations != NIL)
	{
		Bitmapset **child = child_selected_cols(stmt);

		for (rti = 1; child && rti <= nrt; rti++)
		{
			RangeTblEntry *rte = rt_fetch(rti, stmt->rtable);
			AuditRelTags *tags;
			bool		whole;
			bool		any = false;
			AttrNumber	attno;

			if (child[rti] == NULL || rte->rtekind != RTE_RELATION ||
				(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) != 0)
				continue;
			tags = aa_tags_lookup(rte->relid);
			if (tags == NULL)
				continue;
			whole = bms_is_member(ATTBIT(0), child[rti]);
			for (attno = 1; attno <= tags->natts; attno++)
			{
				AuditColumnTags *col = &tags->cols[attno];
				int			i;

				if (col->qualname == NULL ||
					(!whole && !bms_is_member(ATTBIT(attno), child[rti])) ||
					!child_column_own_tag(stmt, rti, attno))
					continue;
				any = true;
				aa_add_unique(&rec->columns, &rec->n_columns, &cap_col,
							  pstrdup(col->qualname));
				for (i = 0; i < col->ntags; i++)
					aa_add_unique(&rec->tags, &rec->n_tags, &cap_tag,
								  pstrdup(col->tags[i]));
				if (!(t.unknown ||
					  bms_is_member(ATTBIT(attno), t.out[rti]) ||
					  bms_is_member(ATTBIT(0), t.out[rti])))
					aa_add_unique(&rec->predicate_columns, &rec->n_predicate,
								  &cap_pred, pstrdup(col->qualname));
			}
			if (any)
				aa_add_unique(&rec->relations, &rec->n_relations, &cap_rel,
							  pstrdup(tags->qualname));
		}
	}

	/* a column output through one path is not "predicate only" */
	if (rec->n_predicate > 0 && !t.unknown)
	{
		int			i,
					j = 0;

		for (i = 0; i < rec->n_predicate; i++)
		{
			bool		out_elsewhere = false;

			for (rti = 1; rti <= nrt && !out_elsewhere; rti++)
			{
				RangeTblEntry *rte = rt_fetch(rti, stmt->rtable);
				AuditRelTags *tags;
				int			x = -1;

				if (rte->rtekind != RTE_RELATION || t.out[rti] == NULL ||
					(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) == 0)
					continue;
				tags = aa_tags_lookup(rte->relid);
				if (tags == NULL)
					continue;
				while ((x = bms_next_member(t.out[rti], x)) >= 0)
				{
					AttrNumber	a = x + FirstLowInvalidHeapAttributeNumber;

					if (a >= 1 && a <= tags->natts && tags->cols[a].qualname &&
						strcmp(tags->cols[a].qualname, rec->predicate_columns[i]) == 0)
					{
						out_elsewhere = true;
						break;
					}
				}
			}
			if (!out_elsewhere)
				rec->predicate_columns[j++] = rec->predicate_columns[i];
		}
		rec->n_predicate = j;
	}

	/* statistics reads are found while the plan runs */
	*stats_nodes = aa_stats_scan_nodes(stmt);
	MemoryContextSwitchTo(old);
	return rec->n_columns > 0 || *stats_nodes != NULL;
}

/* ---------------------------------------------------------------------
 * Per-plan cache (see PlanAuditInfo)
 * ---------------------------------------------------------------------
 */

/*
 * Does the statement read a tagged column of rte, by its selected columns
 * (a whole-row reference reads them all)?  Only such scans count towards
 * tagged_rows: an UPDATE of a tagged table by id reads no tagged value.
 * An entry that requires no privilege and lists no columns (PostgreSQL 16
 * keeps inheritance children's columns with their parent) counts.
 */
static bool
rte_reads_tagged(PlannedStmt *stmt, RangeTblEntry *rte, AuditRelTags *rt)
{
	Bitmapset  *sel = aa_rte_selected_cols_compat(stmt, rte);

	if (sel == NULL)
		return aa_rte_required_perms_compat(stmt, rte) == 0;
	return selects_tagged(sel, rt);
}

/*
 * Can scan node plan's filter leak the values of tagged columns of its
 * relation to someone: does it pass one to a function that is not
 * leakproof (set_config(), a function raising a NOTICE with its argument)?
 * Then every row the filter saw has been read, whether it passed or not.
 * Leakproof operators (equality, comparisons) do not count: a probe for a
 * value is a predicate-only read, counted by the rows it finds.
 */
static bool
scan_filter_leaks(Plan *plan, Index scanrelid, AuditRelTags *rt)
{
	Bitmapset  *attrs = NULL;

	if (plan->qual == NIL)
		return false;
	pull_varattnos((Node *) plan->qual, scanrelid, &attrs);
	return selects_tagged(attrs, rt) &&
		contain_leaked_vars((Node *) plan->qual);
}

/*
 * Does scan node plan read tagged columns of its relation?  *leaky is set
 * to whether its filter may leak them (scan_filter_leaks()).  Answers are
 * kept per plan_node_id in the plan's entry, so repeated executions do no
 * hash lookups.  (Run-time partition pruning can leave different scan
 * nodes from one execution to the next, hence per node, on demand.)
 */
static bool
scan_is_tagged(Plan *plan, InstrCtx *ctx, bool *leaky)
{
	PlanAuditInfo *pai = ctx->pai;
	Index		scanrelid = ((Scan *) plan)->scanrelid;
	bool		tagged = false;

	*leaky = false;
	if (pai && bms_is_member(plan->plan_node_id, pai->scan_checked))
	{
		*leaky = bms_is_member(plan->plan_node_id, pai->scan_leaky);
		return bms_is_member(plan->plan_node_id, pai->scan_tagged);
	}
	if (scanrelid >= 1 && scanrelid <= list_length(ctx->stmt->rtable))
	{
		RangeTblEntry *rte = rt_fetch(scanrelid, ctx->stmt->rtable);

		AuditRelTags *rt;

		tagged = rte->rtekind == RTE_RELATION &&
			(rt = aa_tags_lookup(rte->relid)) != NULL &&
			rte_reads_tagged(ctx->stmt, rte, rt);

		/* a filter on tagged columns the query did not select: a policy's */
		if (!tagged && rte->rtekind == RTE_RELATION &&
			(rt = aa_tags_lookup(rte->relid)) != NULL && plan->qual != NIL)
		{
			Bitmapset  *qcols = NULL;

			pull_varattnos((Node *) plan->qual, scanrelid, &qcols);
			tagged = selects_tagged(qcols, rt);
		}
		if (tagged)
			*leaky = scan_filter_leaks(plan, scanrelid, rt);
	}
	if (pai)
	{
		MemoryContext old = MemoryContextSwitchTo(pai->cb_cxt);

		pai->scan_checked = bms_add_member(pai->scan_checked,
										   plan->plan_node_id);
		if (tagged)
			pai->scan_tagged = bms_add_member(pai->scan_tagged,
											  plan->plan_node_id);
		if (*leaky)
			pai->scan_leaky = bms_add_member(pai->scan_leaky,
											 plan->plan_node_id);
		MemoryContextSwitchTo(old);
	}
	return tagged;
}

/*
 * Reset callback of a plan's memory context: the plan is going away.
 */
static void
plan_info_forget(void *arg)
{
	PlanAuditInfo *pai = (PlanAuditInfo *) arg;
	PlanInfoSlot *slot;

	if (plan_infos == NULL)
		return;
	slot = hash_search(plan_infos, &pai->stmt, HASH_FIND, NULL);
	if (slot && slot->info == pai)
		(void) hash_search(plan_infos, &pai->stmt, HASH_REMOVE, NULL);
}

/* copy n strings into the flat block; see flatten_lists() */
static const char **
flat_list(const char **in, int n, char ***ptrs, char **strs)
{
	const char **out = (const char **) *ptrs;
	int			i;

	if (n <= 0)
		return NULL;
	for (i = 0; i < n; i++)
	{
		Size		len = strlen(in[i]) + 1;

		memcpy(*strs, in[i], len);
		(*ptrs)[i] = *strs;
		*strs += len;
	}
	*ptrs += n;
	return out;
}

/*
 * Copy the lists of src (relations, columns, predicate columns, tags) into
 * one block in cxt: the pointer arrays, then the strings.  dst's lists
 * point into the block.
 */
static char *
flatten_lists(const AuditRecord *src, AuditRecord *dst, MemoryContext cxt,
			  Size *size)
{
	int			nptr = src->n_relations + src->n_columns +
	src->n_predicate + src->n_tags;
	Size		sz = MAXALIGN(sizeof(char *) * nptr);
	char	   *block;
	char	  **ptrs;
	char	   *strs;
	int			i;

	for (i = 0; i < src->n_relations; i++)
		sz += strlen(src->relations[i]) + 1;
	for (i = 0; i < src->n_columns; i++)
		sz += strlen(src->columns[i]) + 1;
	for (i = 0; i < src->n_predicate; i++)
		sz += strlen(src->predicate_columns[i]) + 1;
	for (i = 0; i < src->n_tags; i++)
		sz += strlen(src->tags[i]) + 1;
	block = MemoryContextAlloc(cxt, Max(sz, 1));
	ptrs = (char **) block;
	strs = block + MAXALIGN(sizeof(char *) * nptr);
	dst->n_relations = src->n_relations;
	dst->relations = flat_list(src->relations, src->n_relations, &ptrs, &strs);
	dst->n_columns = src->n_columns;
	dst->columns = flat_list(src->columns, src->n_columns, &ptrs, &strs);
	dst->n_predicate = src->n_predicate;
	dst->predicate_columns = flat_list(src->predicate_columns,
									   src->n_predicate, &ptrs, &strs);
	dst->n_tags = src->n_tags;
	dst->tags = flat_list(src->tags, src->n_tags, &ptrs, &strs);
	Assert(strs == block + sz);
	*size = sz;
	return block;
}

/* a list of the flat block at oldb, as it is in the copy at newb */
static const char **
rebase_list(const char **arr, int n, const char *oldb, char *newb)
{
	const char **out;
	int			i;

	if (arr == NULL)
		return NULL;
	out = (const char **) (newb + ((const char *) arr - oldb));
	for (i = 0; i < n; i++)
		out[i] = newb + (arr[i] - oldb);
	return out;
}

/*
 * Give rec its own copy (in cxt) of the plan's lists.
 */
static void
plan_info_copy_lists(PlanAuditInfo *pai, AuditRecord *rec, MemoryContext cxt)
{
	char	   *nb = MemoryContextAlloc(cxt, Max(pai->block_size, 1));
	const AuditRecord *l = &pai->lists;

	memcpy(nb, pai->block, pai->block_size);
	rec->n_relations = l->n_relations;
	rec->relations = rebase_list(l->relations, l->n_relations, pai->block, nb);
	rec->n_columns = l->n_columns;
	rec->columns = rebase_list(l->columns, l->n_columns, pai->block, nb);
	rec->n_predicate = l->n_predicate;
	rec->predicate_columns = rebase_list(l->predicate_columns, l->n_predicate,
										 pai->block, nb);
	rec->n_tags = l->n_tags;
	rec->tags = rebase_list(l->tags, l->n_tags, pai->block, nb);
}

/*
 * The audit facts of stmt: from the cache when derived under the current
 * tag epoch, else derived now (catalog access through the tag cache; may
 * throw, leaving an entry that is derived again next time).
 */
static PlanAuditInfo *
plan_info_get(PlannedStmt *stmt)
{
	uint64		epoch = aa_tags_epoch();
	PlanInfoSlot *slot;
	PlanAuditInfo *pai;
	MemoryContext pcxt;
	bool		found;

	if (plan_infos == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(PlannedStmt *);
		ctl.entrysize = sizeof(PlanInfoSlot);
		ctl.hcxt = TopMemoryContext;
		plan_infos = hash_create("access_audit plans", 64, &ctl,
								 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	slot = hash_search(plan_infos, &stmt, HASH_FIND, NULL);
	if (slot != NULL && slot->info->tags_epoch == epoch)
		return slot->info;

	if (slot != NULL)
		pai = slot->info;
	else
	{
		/*
		 * First sighting: many plans run only once (custom plans, simple
		 * protocol), so only decide whether to audit and let the caller build
		 * the record directly; derive and keep the lists when the plan comes
		 * back.  tags_epoch 0 marks "not derived".
		 */
		/* PlannedStmts are always palloc'd (makeNode, copyObject) */
		pcxt = GetMemoryChunkContext(stmt);
		pai = MemoryContextAllocZero(pcxt, sizeof(PlanAuditInfo));
		pai->stmt = stmt;
		pai->cb_cxt = pcxt;
		slot = hash_search(plan_infos, &stmt, HASH_ENTER, &found);
		slot->info = pai;
		pai->cb.func = plan_info_forget;
		pai->cb.arg = pai;
		MemoryContextRegisterResetCallback(pcxt, &pai->cb);
		pai->audit = plan_reads_tagged(stmt);
		return pai;
	}

	/*
	 * Derive (again).  Nothing points into the old block: executions copy it
	 * at their start, before anything can call us again.
	 */
	pai->tags_epoch = 0;
	pai->has_record = false;
	if (pai->block)
		pfree(pai->block);
	pai->block = NULL;
	pai->block_size = 0;
	memset(&pai->lists, 0, sizeof(pai->lists));
	bms_free(pai->scan_checked);
	bms_free(pai->scan_tagged);
	bms_free(pai->scan_leaky);
	pai->scan_leaky = NULL;
	bms_free(pai->stats_nodes);
	pai->scan_checked = NULL;
	pai->scan_tagged = NULL;
	pai->stats_nodes = NULL;
	pai->audit = plan_reads_tagged(stmt);
	if (pai->audit)
	{
		MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext,
												  "access_audit plan",
												  ALLOCSET_SMALL_SIZES);
		AuditRecord rec;
		Bitmapset  *stats_nodes;

		memset(&rec, 0, sizeof(rec));
		if (build_plan_record(stmt, &rec, tmp, &stats_nodes))
		{
			MemoryContext old = MemoryContextSwitchTo(pai->cb_cxt);

			pai->stats_nodes = bms_copy(stats_nodes);
			MemoryContextSwitchTo(old);
			pai->block = flatten_lists(&rec, &pai->lists, pai->cb_cxt,
									   &pai->block_size);
			pai->has_record = true;
		}
		MemoryContextDelete(tmp);
	}
	pai->tags_epoch = epoch;
	return pai;
}

/* ---------------------------------------------------------------------
 * In-flight records
 * ---------------------------------------------------------------------
 */

static void
inflight_unlink(InflightRecord *ir)
{
	InflightRecord **pp;

	for (pp = &inflight; *pp; pp = &(*pp)->next)
	{
		if (*pp == ir)
		{
			*pp = ir->next;
			return;
		}
	}
}

static InflightRecord *
inflight_find(EState *estate)
{
	InflightRecord *ir;

	for (ir = inflight; ir; ir = ir->next)
		if (ir->estate == estate)
			return ir;
	return NULL;
}

/*
 * Push a record together with the planner statistics its statement read:
 * their columns, relations and tags join the record's lists, their sample
 * values count in tagged_rows, and detail says so.  Runs in the reset
 * callback too, so it neither allocates nor throws: the merged lists are
 * built on the stack (a record is cut to fit the ring anyway).
 */
#define AA_MERGE_MAX 256

static int
merge_lists(const char **out, const char **a, int na, const char **b, int nb)
{
	int			n = 0;
	int			i,
				j;

	for (i = 0; i < na && n < AA_MERGE_MAX; i++)
		out[n++] = a[i];
	for (i = 0; i < nb && n < AA_MERGE_MAX; i++)
	{
		for (j = 0; j < n; j++)
			if (strcmp(out[j], b[i]) == 0)
				break;
		if (j == n)
			out[n++] = b[i];
	}
	return n;
}

static void
push_with_stats(InflightRecord *ir)
{
	const char *rels[AA_MERGE_MAX];
	const char *cols[AA_MERGE_MAX];
	const char *tags[AA_MERGE_MAX];
	const char *rels2[AA_MERGE_MAX];
	const char *cols2[AA_MERGE_MAX];
	const char *tags2[AA_MERGE_MAX];
	char		detail[128];
	AuditRecord rec = ir->rec;
	StatsReads *sts[2] = {ir->stats, ir->stats_scanned};
	int64		rows = 0;
	int64		values = 0;
	int			k;

	for (k = 0; k < 2; k++)
	{
		StatsReads *st = sts[k];

		if (st == NULL)
			continue;
		rec.n_relations = merge_lists(k ? rels2 : rels, rec.relations, rec.n_relations,
									  st->relations, st->n_relations);
		rec.relations = k ? rels2 : rels;
		rec.n_columns = merge_lists(k ? cols2 : cols, rec.columns, rec.n_columns,
									st->columns, st->n_columns);
		rec.columns = k ? cols2 : cols;
		rec.n_tags = merge_lists(k ? tags2 : tags, rec.tags, rec.n_tags,
								 st->tags, st->n_tags);
		rec.tags = k ? tags2 : tags;
		rows += st->rows;
		values += st->values;
	}
	rec.tagged_rows += values;
	snprintf(detail, sizeof(detail),
			 "planner statistics of tagged columns: " INT64_FORMAT " rows, " INT64_FORMAT " sample values",
			 rows, values);
	rec.detail = detail;
	aa_queue_push(&rec);
}

/*
 * Seal and push the record; it leaves the inflight list.
 */
static void
inflight_finish(InflightRecord *ir, bool error)
{
	inflight_unlink(ir);

	/*
	 * A plan that was started but never run read nothing: a cursor closed
	 * before its first FETCH, a portal bound but never executed.
	 */
	if (!ir->is_copy && ir->runs == 0)
	{
		aa_rowids_discard(&ir->rowids);
		ir->estate = NULL;
		ir->cb.arg = NULL;
		return;
	}

	/*
	 * A plan that reads planner statistics is recorded only if it read those
	 * of a tagged column (or tagged columns of its own).
	 */
	if (!error)
		ir->stats_scanned = ir->stats_emitted;

	/* an error printed a row written: a read of what it may show */
	if (error && ir->shown_error && ir->err_lists != NULL)
	{
		ir->rec.relations = ir->err_lists->relations;
		ir->rec.n_relations = ir->err_lists->n_relations;
		ir->rec.columns = ir->err_lists->columns;
		ir->rec.n_columns = ir->err_lists->n_columns;
		ir->rec.tags = ir->err_lists->tags;
		ir->rec.n_tags = ir->err_lists->n_tags;
		ir->rec.detail = "a constraint error may have shown the row written, with its tagged columns";
	}
	else
		ir->shown_error = false;
	if (ir->rec.n_columns == 0 && (ir->stats == NULL || ir->stats->rows == 0) &&
		(ir->stats_scanned == NULL || ir->stats_scanned->rows == 0))
	{
		aa_rowids_discard(&ir->rowids);
		ir->estate = NULL;
		ir->cb.arg = NULL;
		return;
	}
	ir->rec.outcome = error ? AA_OUTCOME_ERROR : AA_OUTCOME_OK;
	ir->rec.duration_us = GetCurrentTimestamp() - ir->start;
	if (ir->is_copy)
	{
		/*
		 * On error the rows copied so far are in COPY's progress counters, if
		 * COPY got as far as starting them for this table; otherwise the
		 * counters are another command's and nothing was copied.
		 */
		if (error && ir->copy_sent >= 0)
			ir->rec.rows = ir->copy_sent;
		else if (error)
			ir->rec.rows = (MyBEEntry &&
							MyBEEntry->st_progress_command == PROGRESS_COMMAND_COPY &&
							MyBEEntry->st_progress_command_target == ir->copy_relid) ?
				MyBEEntry->st_progress_param[PROGRESS_COPY_TUPLES_PROCESSED] : 0;
		ir->rec.tagged_rows = ir->rec.rows;
	}
	else
		ir->rec.tagged_rows = tagged_rows_so_far(ir);
	if (ir->shown_error)
		ir->rec.tagged_rows += 1;
	/* rowids.c: the keys left, and the record's row_set */
	aa_rowids_finish(&ir->rowids, &ir->rec);
	if ((ir->stats != NULL && ir->stats->rows > 0) ||
		(ir->stats_scanned != NULL && ir->stats_scanned->rows > 0))
		push_with_stats(ir);
	else
		aa_queue_push(&ir->rec);
	if (ir->intent)
	{
		aa_queue_intent_close();
		ir->intent = false;
	}
	ir->estate = NULL;
	ir->cb.arg = NULL;
}

/*
 * Reset callback of the statement's memory context: the statement ended
 * without ExecutorEnd (error, abort, FATAL).  Push what we know.
 */
static void
inflight_reset_callback(void *arg)
{
	InflightRecord *ir = (InflightRecord *) arg;

	if (ir == NULL)
		return;
	if (ir->in_run && ir->estate)
		ir->rec.rows += ir->estate->es_processed;
	inflight_finish(ir, ir->in_run || ir->failed);
}

static InflightRecord *
inflight_new(MemoryContext cxt, EState *estate)
{
	InflightRecord *ir = MemoryContextAllocZero(cxt, sizeof(InflightRecord));

	ir->cxt = cxt;
	ir->estate = estate;
	ir->start = GetCurrentTimestamp();
	ir->rec.kind = AA_KIND_READ;
	ir->rec.ts = GetCurrentStatementStartTimestamp();
	ir->rec.nesting_level = aa_nesting_level;
	ir->cb.func = inflight_reset_callback;
	ir->cb.arg = ir;
	MemoryContextRegisterResetCallback(cxt, &ir->cb);
	ir->next = inflight;
	inflight = ir;
	return ir;
}

/* ---------------------------------------------------------------------
 * Rows shown in errors
 * ---------------------------------------------------------------------
 *
 * A statement that writes a table has read the rows it writes: when a
 * NOT NULL, CHECK, partition or check-option constraint fails, PostgreSQL
 * prints the whole new row ("Failing row contains (...)"), and unique and
 * exclusion violations print key values, an exclusion violation those of
 * the existing row too.  UPDATE t SET city = NULL WHERE id = i, caught in a
 * loop, prints every row of t.  So a statement that writes tables with
 * tagged columns keeps, besides its own record, the tagged columns such an
 * error may print, and one that ends in such an error is recorded as a
 * read of them: outcome error, one row shown.
 */

/*
 * Does the current error (in PG_CATCH) print rows or keys of the table
 * being written?  Integrity constraint violations (class 23) and check
 * option violations do.
 */
static bool
error_shows_row(void)
{
	int			code = geterrcode();

	return ERRCODE_TO_CATEGORY(code) ==
		ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION ||
		code == ERRCODE_WITH_CHECK_OPTION_VIOLATION;
}

/*
 * Add to out the tagged columns of relid that an error about a row written
 * through root may print, as PostgreSQL decides it: nothing under row-level
 * security, every column with SELECT on the table, otherwise the columns
 * with column SELECT.  A row written through a parent is printed in the
 * parent's columns; a child's tagged column whose parent column is tagged
 * is listed by the parent already.
 */
static void
error_row_rel(Oid root, bool table_select, Oid relid, AuditRecord *out,
			  int *cap_rel, int *cap_col, int *cap_tag)
{
	AuditRelTags *tags = aa_tags_lookup(relid);
	AuditRelTags *rtags = relid == root ? tags : aa_tags_lookup(root);
	AttrNumber	attno;
	bool		any = false;

	if (tags == NULL)
		return;
	for (attno = 1; attno <= tags->natts; attno++)
	{
		AuditColumnTags *col = &tags->cols[attno];
		AttrNumber	rattno = attno;
		int			i;

		if (col->qualname == NULL)
			continue;
		if (relid != root)
		{
			char	   *name = get_attname(relid, attno, true);

			rattno = name ? get_attnum(root, name) : InvalidAttrNumber;
			if (rattno == InvalidAttrNumber)
				continue;
			if (rtags != NULL && rattno <= rtags->natts &&
				rtags->cols[rattno].qualname != NULL)
				continue;
		}
		if (!table_select &&
			pg_attribute_aclcheck(root, rattno, GetUserId(),
								  ACL_SELECT) != ACLCHECK_OK)
			continue;
		any = true;
		aa_add_unique(&out->columns, &out->n_columns, cap_col,
					  pstrdup(col->qualname));
		for (i = 0; i < col->ntags; i++)
			aa_add_unique(&out->tags, &out->n_tags, cap_tag,
						  pstrdup(col->tags[i]));
	}
	if (any)
		aa_add_unique(&out->relations, &out->n_relations, cap_rel,
					  pstrdup(tags->qualname));
}

/*
 * The lists of a record of stmt that ended in an error printing a row it
 * writes: rec's own lists plus the tagged columns of the tables written
 * (the named targets, their partitions and inheritance children) that the
 * error may print.  Returns NULL, allocating nothing lasting, if there are
 * none.  Catalog access; runs at ExecutorStart, in cxt.
 */
static AuditRecord *
error_row_lists(PlannedStmt *stmt, const AuditRecord *rec, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	AuditRecord *out = palloc0(sizeof(AuditRecord));
	int			cap_rel = 0,
				cap_col = 0,
				cap_tag = 0;
	ListCell   *lc;
	int			i;

	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);
		bool		table_select;

		if (rte->rtekind != RTE_RELATION ||
			(aa_rte_required_perms_compat(stmt, rte) &
			 (ACL_INSERT | ACL_UPDATE | ACL_DELETE)) == 0)
			continue;
		if (rte->relkind != RELKIND_RELATION &&
			rte->relkind != RELKIND_PARTITIONED_TABLE &&
			rte->relkind != RELKIND_FOREIGN_TABLE)
			continue;
		/* the common case first: an untagged table without children */
		if (aa_tags_lookup(rte->relid) == NULL &&
			rte->relkind != RELKIND_PARTITIONED_TABLE && !rte->inh)
			continue;
		if (check_enable_rls(rte->relid, InvalidOid, true) == RLS_ENABLED)
			continue;
		table_select = pg_class_aclcheck(rte->relid, GetUserId(),
										 ACL_SELECT) == ACLCHECK_OK;
		if (has_subclass(rte->relid))
		{
			List	   *all = find_all_inheritors(rte->relid, NoLock, NULL);
			ListCell   *lc2;

			foreach(lc2, all)
				error_row_rel(rte->relid, table_select, lfirst_oid(lc2), out,
							  &cap_rel, &cap_col, &cap_tag);
		}
		else
			error_row_rel(rte->relid, table_select, rte->relid, out,
						  &cap_rel, &cap_col, &cap_tag);
	}
	if (out->n_columns == 0)
	{
		MemoryContextSwitchTo(old);
		return NULL;
	}

	/* and the statement's own reads */
	for (i = 0; i < rec->n_columns; i++)
		aa_add_unique(&out->columns, &out->n_columns, &cap_col, rec->columns[i]);
	for (i = 0; i < rec->n_relations; i++)
		aa_add_unique(&out->relations, &out->n_relations, &cap_rel,
					  rec->relations[i]);
	for (i = 0; i < rec->n_tags; i++)
		aa_add_unique(&out->tags, &out->n_tags, &cap_tag, rec->tags[i]);
	out->predicate_columns = rec->predicate_columns;
	out->n_predicate = rec->n_predicate;
	MemoryContextSwitchTo(old);
	return out;
}

/* ---------------------------------------------------------------------
 * Server files and replication slots read from SQL
 * ---------------------------------------------------------------------
 *
 * Some built-in functions take data out of the database without reading
 * a table the executor sees: pg_read_binary_file() of a table's own file
 * (members of pg_read_server_files), server-side lo_import(), and the
 * replication functions (REPLICATION roles): a logical slot created and
 * read with pg_logical_slot_get_changes() streams every change to every
 * table, a backup started with pg_backup_start() copies every file.  A
 * statement calling one is recorded: as a read of the tagged table whose
 * file it names (pg_relation_filepath() of it, or a constant path to it),
 * otherwise as an event naming the function.
 */

typedef struct SpecialCall
{
	const char *func;			/* C name of the built-in, or dblink's */
	bool		file;			/* reads a server file */
	bool		remote;			/* dblink, or a foreign table (relid) */
	Oid			relid;			/* the foreign table */
	Node	   *arg;			/* its first argument, if any */
} SpecialCall;

/*
 * The special built-in called by funcid, or NULL.  Built-ins are known by
 * their C names, which do not change between versions, through fmgr's own
 * table: no catalog access.
 */
static const char *
special_builtin(Oid funcid, bool *file)
{
	static const char *const files[] = {
		"pg_read_file", "pg_read_binary_file", "be_lo_import", NULL
	};
	static const char *const repl[] = {
		"pg_logical_slot_", "pg_create_logical_replication_slot",
		"pg_create_physical_replication_slot", "pg_replication_slot_advance",
		"pg_copy_logical_replication_slot", "pg_copy_physical_replication_slot",
		"pg_backup_start", "pg_start_backup", NULL
	};
	uint16		idx;
	const char *name;
	int			i;

	if (funcid > fmgr_last_builtin_oid)
		return NULL;
	idx = fmgr_builtin_oid_index[funcid];
	if (idx == InvalidOidBuiltinMapping)
		return NULL;
	name = fmgr_builtins[idx].funcName;
	for (i = 0; files[i]; i++)
		if (strncmp(name, files[i], strlen(files[i])) == 0)
		{
			*file = true;
			return name;
		}
	for (i = 0; repl[i]; i++)
		if (strncmp(name, repl[i], strlen(repl[i])) == 0)
		{
			*file = false;
			return name;
		}
	return NULL;
}

/* expression walker: collect SpecialCalls into *calls */
static bool
special_calls_walker(Node *node, List **calls)
{
	if (node == NULL)
		return false;
	if (IsA(node, FuncExpr))
	{
		FuncExpr   *fe = (FuncExpr *) node;
		bool		file = false;
		bool		remote = false;
		const char *name = special_builtin(fe->funcid, &file);

		/* dblink's functions that connect or run remote queries */
		if (name == NULL && fe->funcid >= FirstNormalObjectId)
		{
			char	   *fname = get_func_name(fe->funcid);

			if (fname != NULL &&
				(strcmp(fname, "dblink") == 0 ||
				 strcmp(fname, "dblink_exec") == 0 ||
				 strcmp(fname, "dblink_open") == 0 ||
				 strcmp(fname, "dblink_send_query") == 0 ||
				 strcmp(fname, "dblink_connect") == 0 ||
				 strcmp(fname, "dblink_connect_u") == 0))
			{
				name = fname;
				remote = true;
			}
		}
		if (name != NULL)
		{
			SpecialCall *sc = palloc0(sizeof(SpecialCall));

			sc->func = name;
			sc->file = file;
			sc->remote = remote;
			sc->arg = fe->args ? linitial(fe->args) : NULL;
			/* dblink_connect(name, connstr): the string says where */
			if (remote && list_length(fe->args) == 2 &&
				strncmp(name, "dblink_connect", 14) == 0)
				sc->arg = lsecond(fe->args);
			*calls = lappend(*calls, sc);
		}
	}
	return expression_tree_walker(node, special_calls_walker, (void *) calls);
}

/* walk a plan tree's expressions (see special_calls()) */
static void
special_calls_plan(Plan *plan, List **calls)
{
	ListCell   *lc;

	if (plan == NULL)
		return;
	(void) special_calls_walker((Node *) plan->targetlist, calls);
	(void) special_calls_walker((Node *) plan->qual, calls);
	switch (nodeTag(plan))
	{
		case T_FunctionScan:
			(void) special_calls_walker((Node *) ((FunctionScan *) plan)->functions, calls);
			break;
		case T_ValuesScan:
			(void) special_calls_walker((Node *) ((ValuesScan *) plan)->values_lists, calls);
			break;
		case T_Result:
			(void) special_calls_walker(((Result *) plan)->resconstantqual, calls);
			break;
		case T_NestLoop:
		case T_MergeJoin:
		case T_HashJoin:
			(void) special_calls_walker((Node *) ((Join *) plan)->joinqual, calls);
			break;
		case T_Append:
			foreach(lc, ((Append *) plan)->appendplans)
				special_calls_plan(lfirst(lc), calls);
			break;
		case T_MergeAppend:
			foreach(lc, ((MergeAppend *) plan)->mergeplans)
				special_calls_plan(lfirst(lc), calls);
			break;
		case T_SubqueryScan:
			special_calls_plan(((SubqueryScan *) plan)->subplan, calls);
			break;
		default:
			break;
	}
	special_calls_plan(plan->lefttree, calls);
	special_calls_plan(plan->righttree, calls);
}

/*
 * The calls of special built-ins in stmt's plan and subplans.
 */
static List *
special_calls(PlannedStmt *stmt)
{
	List	   *calls = NIL;
	ListCell   *lc;

	special_calls_plan(stmt->planTree, &calls);
	foreach(lc, stmt->subplans)
		special_calls_plan(lfirst(lc), &calls);

	/* foreign tables the statement reads: remote reads */
	foreach(lc, stmt->rtable)
	{
		RangeTblEntry *rte = lfirst(lc);

		if (rte->rtekind == RTE_RELATION &&
			rte->relkind == RELKIND_FOREIGN_TABLE &&
			(aa_rte_required_perms_compat(stmt, rte) & ACL_SELECT) != 0)
		{
			SpecialCall *sc = palloc0(sizeof(SpecialCall));

			sc->func = "foreign table";
			sc->remote = true;
			sc->relid = rte->relid;
			calls = lappend(calls, sc);
		}
	}
	return calls;
}

/*
 * The relation whose file a server-file function's first argument names,
 * if it can be told before the statement runs: pg_relation_filepath() of
 * a constant relation, or a constant path into this database's directory
 * (base/<database>/<file>, optionally after the data directory, with a
 * segment or fork suffix).  InvalidOid otherwise.
 */
static Oid
special_file_relation(Node *arg)
{
	const char *path;
	char	   *copy;
	char	   *p;
	char		prefix[64];
	Oid			relfilenode;

	if (arg == NULL)
		return InvalidOid;
	if (IsA(arg, FuncExpr))
	{
		FuncExpr   *fe = (FuncExpr *) arg;
		uint16		idx;
		Node	   *a;

		if (fe->funcid > fmgr_last_builtin_oid ||
			(idx = fmgr_builtin_oid_index[fe->funcid]) == InvalidOidBuiltinMapping ||
			strcmp(fmgr_builtins[idx].funcName, "pg_relation_filepath") != 0 ||
			fe->args == NIL)
			return InvalidOid;
		a = linitial(fe->args);
		if (IsA(a, Const) && !((Const *) a)->constisnull)
			return DatumGetObjectId(((Const *) a)->constvalue);
		return InvalidOid;
	}
	if (!IsA(arg, Const) || ((Const *) arg)->constisnull ||
		((Const *) arg)->consttype != TEXTOID)
		return InvalidOid;
	path = TextDatumGetCString(((Const *) arg)->constvalue);
	if (DataDir && strncmp(path, DataDir, strlen(DataDir)) == 0 &&
		path[strlen(DataDir)] == '/')
		path += strlen(DataDir) + 1;
	snprintf(prefix, sizeof(prefix), "base/%u/", MyDatabaseId);
	if (strncmp(path, prefix, strlen(prefix)) != 0)
		return InvalidOid;
	copy = pstrdup(path + strlen(prefix));
	for (p = copy; *p >= '0' && *p <= '9'; p++)
		;
	*p = '\0';
	if (copy[0] == '\0')
		return InvalidOid;
	relfilenode = (Oid) strtoul(copy, NULL, 10);
	return aa_relid_by_file_compat(relfilenode);
}

/*
 * Append to detail the parts of a libpq connection string that say where
 * and as whom (host, hostaddr, port, dbname, user; never a password), or
 * the string as a connection or server name if it is no key=value list.
 */
static void
append_conn_target(StringInfo detail, const char *conn)
{
	static const char *const keep[] = {"host", "hostaddr", "port", "dbname",
	"user", "service", NULL};
	const char *p = conn;
	bool		any = false;

	if (strchr(conn, '=') == NULL)
	{
		appendStringInfoString(detail, ", \"connection\": ");
		escape_json(detail, conn);
		return;
	}
	while (*p)
	{
		const char *k;
		int			klen;
		StringInfoData val;
		int			i;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		k = p;
		while (*p && *p != '=' && *p != ' ')
			p++;
		klen = p - k;
		while (*p == ' ')
			p++;
		if (*p != '=')
			break;
		p++;
		while (*p == ' ')
			p++;
		initStringInfo(&val);
		if (*p == '\'')
		{
			p++;
			while (*p && *p != '\'')
			{
				if (*p == '\\' && p[1])
					p++;
				appendStringInfoChar(&val, *p++);
			}
			if (*p)
				p++;
		}
		else
			while (*p && *p != ' ' && *p != '\t' && *p != '\n')
				appendStringInfoChar(&val, *p++);
		for (i = 0; keep[i]; i++)
		{
			if ((int) strlen(keep[i]) == klen && strncmp(k, keep[i], klen) == 0)
			{
				appendStringInfo(detail, "%s\"%s\": ", any ? ", " : ", \"target\": {",
								 keep[i]);
				escape_json(detail, val.data);
				any = true;
			}
		}
		pfree(val.data);
	}
	if (any)
		appendStringInfoChar(detail, '}');
}

/*
 * Append the foreign server of foreign table relid and the remote role of
 * the current user's mapping (its "user" option; without one, the local
 * role's name, as postgres_fdw does).  No error if there is no mapping.
 */
static void
append_foreign_target(StringInfo detail, Oid relid)
{
	ForeignTable *ft = GetForeignTable(relid);
	ForeignServer *fs = GetForeignServer(ft->serverid);
	Oid			uid = GetUserId();
	HeapTuple	tup;
	char	   *remote_user = NULL;
	bool		mapped = false;

	appendStringInfoString(detail, ", \"server\": ");
	escape_json(detail, fs->servername);
	tup = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(uid),
						  ObjectIdGetDatum(ft->serverid));
	if (!HeapTupleIsValid(tup))
		tup = SearchSysCache2(USERMAPPINGUSERSERVER,
							  ObjectIdGetDatum(InvalidOid),
							  ObjectIdGetDatum(ft->serverid));
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = SysCacheGetAttr(USERMAPPINGUSERSERVER, tup,
										Anum_pg_user_mapping_umoptions,
										&isnull);
		ListCell   *lc;

		mapped = true;
		if (!isnull)
			foreach(lc, untransformRelOptions(d))
		{
			DefElem    *de = lfirst(lc);

			if (strcmp(de->defname, "user") == 0)
				remote_user = defGetString(de);
		}
		ReleaseSysCache(tup);
	}
	if (remote_user == NULL && mapped)
		remote_user = GetUserNameFromId(uid, true);
	appendStringInfoString(detail, ", \"remote_user\": ");
	aa_json_string_or_null(detail, remote_user);
	appendStringInfoString(detail, ", \"foreign_table\": ");
	escape_json(detail, get_rel_name(relid));
}

/*
 * Record the special calls of a statement about to run (see above).
 * Catalog access; runs at ExecutorStart.
 */
static void
record_special_calls(QueryDesc *queryDesc, List *calls)
{
	ListCell   *lc;

	foreach(lc, calls)
	{
		SpecialCall *sc = lfirst(lc);
		AuditRecord rec;
		AuditRelTags *tags = NULL;
		Oid			relid = InvalidOid;
		StringInfoData detail;
		int			cap_rel = 0,
					cap_col = 0,
					cap_tag = 0;

		memset(&rec, 0, sizeof(rec));
		initStringInfo(&detail);
		appendStringInfoString(&detail, "{\"function\": ");
		escape_json(&detail, sc->func);
		if (sc->remote && OidIsValid(sc->relid))
			append_foreign_target(&detail, sc->relid);
		else if (sc->remote)
		{
			if (sc->arg && IsA(sc->arg, Const) &&
				!((Const *) sc->arg)->constisnull &&
				((Const *) sc->arg)->consttype == TEXTOID)
				append_conn_target(&detail,
								   TextDatumGetCString(((Const *) sc->arg)->constvalue));
		}
		else if (sc->file)
		{
			relid = special_file_relation(sc->arg);
			/* an index's file holds the values of its table's columns */
			if (OidIsValid(relid) && get_rel_relkind(relid) == RELKIND_INDEX)
				relid = IndexGetRelation(relid, true);
			if (OidIsValid(relid))
				tags = aa_tags_lookup(relid);
		}
		else if (sc->arg && IsA(sc->arg, Const) &&
				 !((Const *) sc->arg)->constisnull &&
				 ((Const *) sc->arg)->consttype == NAMEOID)
		{
			appendStringInfoString(&detail, ", \"slot\": ");
			escape_json(&detail,
						NameStr(*DatumGetName(((Const *) sc->arg)->constvalue)));
		}
		appendStringInfoChar(&detail, '}');

		rec.kind = AA_KIND_READ;
		rec.ts = GetCurrentStatementStartTimestamp();
		rec.nesting_level = aa_nesting_level;
		rec.query = aa_record_statement_text(queryDesc->sourceText,
											 queryDesc->plannedstmt->stmt_location,
											 queryDesc->plannedstmt->stmt_len,
											 CurrentMemoryContext);
		rec.query_id = (int64) pgstat_get_my_query_id();
		rec.detail = detail.data;
		if (tags != NULL && tags->tagged)
		{
			AttrNumber	attno;
			int			i;

			rec.command = "SERVER FILE READ";
			for (attno = 1; attno <= tags->natts; attno++)
			{
				if (tags->cols[attno].qualname == NULL)
					continue;
				aa_add_unique(&rec.columns, &rec.n_columns, &cap_col,
							  tags->cols[attno].qualname);
				for (i = 0; i < tags->cols[attno].ntags; i++)
					aa_add_unique(&rec.tags, &rec.n_tags, &cap_tag,
								  tags->cols[attno].tags[i]);
			}
			aa_add_unique(&rec.relations, &rec.n_relations, &cap_rel,
						  tags->qualname);
			rec.tagged_rows = table_rows(relid);
		}
		else
			rec.command = sc->remote ? "REMOTE READ" :
				sc->file ? "SERVER FILE READ" : "REPLICATION";
		aa_record_fill_identity(&rec, CurrentMemoryContext);
		aa_queue_push(&rec);
	}
}

/* ---------------------------------------------------------------------
 * Hooks
 * ---------------------------------------------------------------------
 */

/*
 * ExecutorStart hook: decide whether the statement reads tagged columns
 * (before standard start, so scan nodes get row instrumentation), then
 * open the in-flight record in es_query_cxt.
 */
/*
 * After standard ExecutorStart: open the in-flight record of an audited
 * plan (pai, if it reads tagged columns) or of a statement writing tables
 * with tagged columns (watch_writes) that an error may print, in
 * es_query_cxt, and start counting its tagged scans.
 *
 * pai stays valid: the plan is in use by this very call.  Its lists are
 * used if derived under the current tags; otherwise (first sighting, or a
 * tag change processed while the executor opened relations) the record is
 * built from the plan here, as for a plan seen once.
 */
static void
start_record(QueryDesc *queryDesc, PlanAuditInfo *pai, bool watch_writes)
{
	MemoryContext cxt = queryDesc->estate->es_query_cxt;
	InstrCtx	ictx;
	InflightRecord *ir;
	ListCell   *lc;
	ListCell   *lc2;
	int			i;
	AuditRecord rec;
	AuditRecord *err = NULL;
	Bitmapset  *stats_nodes;

	ir = NULL;
	stats_nodes = NULL;
	memset(&rec, 0, sizeof(rec));
	if (pai == NULL)
		;
	else if (pai->tags_epoch == aa_tags_epoch())
	{
		if (pai->has_record)
		{
			ir = inflight_new(cxt, queryDesc->estate);
			plan_info_copy_lists(pai, &ir->rec, cxt);
			stats_nodes = pai->stats_nodes;
		}
	}
	else if (build_plan_record(queryDesc->plannedstmt, &rec, cxt,
							   &stats_nodes))
	{
		ir = inflight_new(cxt, queryDesc->estate);
		ir->rec.relations = rec.relations;
		ir->rec.n_relations = rec.n_relations;
		ir->rec.columns = rec.columns;
		ir->rec.n_columns = rec.n_columns;
		ir->rec.predicate_columns = rec.predicate_columns;
		ir->rec.n_predicate = rec.n_predicate;
		ir->rec.tags = rec.tags;
		ir->rec.n_tags = rec.n_tags;
	}
	if (watch_writes)
	{
		memset(&rec, 0, sizeof(rec));
		err = error_row_lists(queryDesc->plannedstmt, ir ? &ir->rec : &rec,
							  cxt);
		if (err != NULL && ir == NULL)
			ir = inflight_new(cxt, queryDesc->estate);
	}
	if (ir == NULL)
		return;
	ir->err_lists = err;
	ir->rec.command = command_name(queryDesc);
	if (queryDesc->dest->mydest == DestIntoRel ||
		queryDesc->dest->mydest == DestTransientRel)
		derived_tags_push(queryDesc);
	if ((queryDesc->operation == CMD_INSERT ||
		 queryDesc->operation == CMD_UPDATE ||
		 queryDesc->operation == CMD_MERGE ||
		 queryDesc->plannedstmt->hasModifyingCTE) && pai != NULL)
		ir->copies = plan_copies(pai, cxt);
	ir->rec.query_id = (int64) queryDesc->plannedstmt->queryId;
	if (ir->rec.query_id == 0)
		ir->rec.query_id = (int64) pgstat_get_my_query_id();
	ir->rec.query = aa_record_statement_text(queryDesc->sourceText,
											 queryDesc->plannedstmt->stmt_location,
											 queryDesc->plannedstmt->stmt_len, cxt);
	aa_record_fill_identity(&ir->rec, cxt);
	if (aa_nesting_level > 0 && routine_depth > 0)
	{
		const char *rd = routine_detail();

		if (rd != NULL)
			ir->rec.detail = MemoryContextStrdup(cxt, rd);
	}

	memset(&ictx, 0, sizeof(ictx));
	ictx.stmt = queryDesc->plannedstmt;
	ictx.pai = pai;
	ictx.cxt = cxt;
	ictx.stats_nodes = stats_nodes;
	ictx.rowids = &ir->rowids;
	if (pai != NULL)
		(void) collect_scan_instr(queryDesc->planstate, &ictx);
	if (ictx.stats_top != NIL)
	{
		(void) stats_reads(&ir->stats, cxt);
		ir->stats->n_top = list_length(ictx.stats_top);
		ir->stats->top = MemoryContextAlloc(cxt, sizeof(ScanState *) *
											ir->stats->n_top);
		ir->stats->top_at = MemoryContextAlloc(cxt, sizeof(PlanState *) *
											   ir->stats->n_top);
		i = 0;
		forboth(lc, ictx.stats_top, lc2, ictx.stats_top_at)
		{
			ScanState  *ss = lfirst(lc);
			PlanState	key;
			PlanState  *found = &key;

			key.plan = lfirst(lc2);
			(void) find_planstate(queryDesc->planstate, &found);
			if (found == &key)
				continue;		/* not found (cannot happen): the scan counts */
			aa_set_exec_proc_node_compat(found, aa_stats_top_exec);
			ir->stats->top[i] = ss;
			ir->stats->top_at[i] = found;
			i++;
		}
		ir->stats->n_top = i;
	}
	ir->n_instr = list_length(ictx.instr);
	ir->instr = MemoryContextAlloc(cxt, sizeof(Instrumentation *) *
								   Max(ir->n_instr, 1));
	ir->instr_leaky = MemoryContextAlloc(cxt, sizeof(bool) *
										 Max(ir->n_instr, 1));
	i = 0;
	forboth(lc, ictx.instr, lc2, ictx.instr_leaky)
	{
		ir->instr[i] = ((PlanState *) lfirst(lc))->instrument;
		ir->instr_leaky[i] = lfirst_int(lc2) != 0;
		i++;
	}

	/* quota.c: reason in the record; count rows if a quota applies */
	ir->quota_gen = aa_quota_generation();
	ir->quota_scans = NIL;
	if (ictx.instr != NIL)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		ir->quota_scans = list_copy(ictx.instr);
		MemoryContextSwitchTo(old);
	}
	ir->quota = aa_quota_start(queryDesc, &ir->rec, ir->quota_scans);
	ir->quota_stamp = aa_quota_set_stamp();
}

/*
 * Should this statement be audited at all?  Not when this process does not
 * capture, for EXPLAIN without ANALYZE, without any tag in the database,
 * nor for the statements REFRESH MATERIALIZED VIEW CONCURRENTLY runs after
 * the view's query (see refresh_level).
 */
static bool
statement_wanted(QueryDesc *queryDesc, int eflags)
{
	return aa_capture_wanted() && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		!(refresh_level == aa_nesting_level && refresh_query_seen &&
		  queryDesc->dest->mydest != DestTransientRel) &&
		queryDesc->plannedstmt != NULL && aa_tags_active();
}

/*
 * What the plan reads, before standard start: records the special calls
 * it makes (see "Server files and replication slots read from SQL"),
 * found once per plan, and asks for row instrumentation of a parallel plan
 * that reads tagged columns.  Returns the plan's audit info if it reads
 * tagged columns, else NULL.
 */
static PlanAuditInfo *
plan_audit_prepare(QueryDesc *queryDesc)
{
	PlanAuditInfo *pai = plan_info_get(queryDesc->plannedstmt);

	if (!pai->special_checked)
	{
		MemoryContext old = MemoryContextSwitchTo(pai->cb_cxt);

		pai->special = special_calls(queryDesc->plannedstmt);
		pai->special_checked = true;
		MemoryContextSwitchTo(old);
	}
	if (pai->special != NIL)
		record_special_calls(queryDesc, pai->special);

	/*
	 * Rows read by parallel workers reach the leader only through
	 * instrumentation; serial plans count their tagged scans' rows with
	 * aa_counting_exec() instead.
	 */
	if (!pai->audit)
		return NULL;
	if (queryDesc->plannedstmt->parallelModeNeeded)
		queryDesc->instrument_options |= INSTRUMENT_ROWS;
	return pai;
}

/* Does the statement write tables (see "Rows shown in errors")? */
static bool
statement_writes(QueryDesc *queryDesc)
{
	return queryDesc->operation == CMD_INSERT ||
		queryDesc->operation == CMD_UPDATE ||
		queryDesc->operation == CMD_DELETE ||
		queryDesc->operation == CMD_MERGE ||
		queryDesc->plannedstmt->hasModifyingCTE;
}

/*
 * ExecutorStart hook: decide whether the statement reads tagged columns
 * (before standard start, so scan nodes get row instrumentation), then
 * open the in-flight record in es_query_cxt (start_record).
 */
static void
aa_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	PlanAuditInfo *pai = NULL;
	bool		watch_writes = false;

	if (refresh_level == aa_nesting_level &&
		queryDesc->dest->mydest == DestTransientRel)
		refresh_query_seen = true;
	if (statement_wanted(queryDesc, eflags))
	{
		pai = plan_audit_prepare(queryDesc);
		watch_writes = statement_writes(queryDesc);
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	if ((pai || watch_writes) && queryDesc->estate)
		start_record(queryDesc, pai, watch_writes);

	/* rowids.c: a parallel worker keeps the keys its leader wants */
	if (IsParallelWorker() && aa_nesting_level == 0 && queryDesc->estate &&
		(eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0)
		aa_rowids_worker_start(queryDesc);
}

/*
 * Should this run's record go into the intent slot before rows leave (see
 * queue.c)?  Statements that may send many rows do: cursors and other
 * partial runs, COPY and other non-client destinations, and plans the
 * planner expects to return 1,000 rows or more.  Short reads, the common
 * case, cost nothing here; the window in which a SIGKILL could take one
 * away is the few microseconds between its rows leaving and its end.
 */
static bool
intent_wanted(QueryDesc *queryDesc, uint64 count)
{
	CommandDest d = queryDesc->dest->mydest;

	return count > 0 ||
		(d != DestRemote && d != DestRemoteExecute && d != DestRemoteSimple &&
		 d != DestNone && d != DestSPI) ||
		(queryDesc->plannedstmt->planTree != NULL &&
		 queryDesc->plannedstmt->planTree->plan_rows >= 1000);
}

/*
 * Add the rows of one ExecutorRun call to the record.
 *
 * Rows passed to DestNone were not sent anywhere (MOVE, EXPLAIN ANALYZE):
 * the scans still count in tagged_rows, but they are not rows produced.
 * A run into a tuplestore after earlier runs is a WITH HOLD cursor being
 * made to outlive its transaction: PersistHoldablePortal rewinds the plan
 * and stores the whole result for later FETCHes, which no executor hook
 * sees; so the record counts the whole result once, not the rows fetched
 * before COMMIT plus the whole result again.
 */
static void
add_run_rows(InflightRecord *ir, QueryDesc *queryDesc, bool rerun)
{
	uint64		n = queryDesc->estate->es_processed;

	if (queryDesc->dest->mydest == DestNone)
		return;
	if (rerun)
		ir->rec.rows = Max(ir->rec.rows, (int64) n);
	else
		ir->rec.rows += n;
}

/*
 * CountingReceiver callbacks: pass everything on to the protocol's
 * receiver; count rows.
 */
static bool
counting_receive(TupleTableSlot *slot, DestReceiver *self)
{
	CountingReceiver *cr = (CountingReceiver *) self;
	InflightRecord *ir = cr->ir;
	bool		ok = cr->inner->receiveSlot(slot, cr->inner);

	cr->sent++;
	if (cr->sent % AA_INTENT_ROWS == 0 && ir->estate != NULL)
	{
		if (!ir->intent)
			ir->intent = aa_queue_intent_open(&ir->rec);
		if (ir->intent)
			aa_queue_intent_rows(cr->base + (int64) cr->sent,
								 tagged_rows_so_far(ir));
	}
	return ok;
}

static void
counting_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	CountingReceiver *cr = (CountingReceiver *) self;

	cr->inner->rStartup(cr->inner, operation, typeinfo);
}

static void
counting_shutdown(DestReceiver *self)
{
	CountingReceiver *cr = (CountingReceiver *) self;

	cr->inner->rShutdown(cr->inner);
}

static void
counting_destroy(DestReceiver *self)
{
	/* the wrapper lives in the statement's memory; the portal owns inner */
}

/*
 * ExecutorRun hook: es_processed restarts at 0 in every run (cursors,
 * row-limited portals, plpgsql loops), so add it after each call, errors
 * included.
 */
static void
aa_ExecutorRun(AA_EXECUTOR_RUN_ARGS)
{
	InflightRecord *ir = inflight ? inflight_find(queryDesc->estate) : NULL;
	bool		rerun = false;
	DestReceiver *saved_dest = queryDesc->dest;
	CountingReceiver *cr = NULL;
	int			calls_depth;

	if (ir)
	{
		CommandDest d = queryDesc->dest->mydest;

		/*
		 * Quotas changed since the statement started (at its ExecutorStart,
		 * which for a cursor or a protocol-level portal may be long before
		 * its first run), or the set that applied to its actor no longer
		 * holds (an exemption expired, a role was granted): the quotas as
		 * they are now apply.
		 */
		if (ir->quota_scans != NIL &&
			(unlikely(aa_quota_generation() != ir->quota_gen) ||
			 aa_quota_set_stale(ir->quota_stamp, ir->rec.actor)))
		{
			ir->quota_gen = aa_quota_generation();

			/*
			 * A refusal can come here already (a per-statement quota lowered
			 * below what the statement read): the run failed, as one refused
			 * at a row.
			 */
			PG_TRY();
			{
				aa_quota_restart(&ir->quota, queryDesc, &ir->rec,
								 ir->quota_scans);
			}
			PG_CATCH();
			{
				ir->failed = true;
				PG_RE_THROW();
			}
			PG_END_TRY();
			ir->quota_stamp = aa_quota_set_stamp();
		}
		ir->in_run = true;
		/* see add_run_rows: the active portal is the cursor being held */
		rerun = ir->runs++ > 0 && ActivePortal != NULL &&
			ActivePortal->holdStore != NULL &&
			(ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0 &&
			queryDesc->dest->mydest == DestTuplestore;
		if (ir->runs == 1 && intent_wanted(queryDesc, count))
			ir->intent = aa_queue_intent_open(&ir->rec);

		/*
		 * Rows to the client (also as COPY (query) TO STDOUT): count them as
		 * they leave, whatever the planner expected (see CountingReceiver).
		 */
		if (d == DestRemote || d == DestRemoteExecute ||
			d == DestRemoteSimple || d == DestCopyOut)
		{
			cr = MemoryContextAllocZero(ir->cxt, sizeof(CountingReceiver));
			cr->pub.receiveSlot = counting_receive;
			cr->pub.rStartup = counting_startup;
			cr->pub.rShutdown = counting_shutdown;
			cr->pub.rDestroy = counting_destroy;
			cr->pub.mydest = d;
			cr->inner = saved_dest;
			cr->ir = ir;
			cr->base = ir->rec.rows;
			queryDesc->dest = (DestReceiver *) cr;
		}
	}
	aa_nesting_level++;
	calls_depth = scan_call_depth;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(AA_EXECUTOR_RUN_PASS);
		else
			standard_ExecutorRun(AA_EXECUTOR_RUN_PASS);
	}
	PG_CATCH();
	{
		queryDesc->dest = saved_dest;
		aa_nesting_level--;
		/* the row each scan was on, unless a quota refused it */
		if (ir && ir->estate &&
			!(ir->quota != NULL && aa_quota_refused(ir->quota)))
		{
			scans_in_call_count(ir, calls_depth);
			if (ir->quota)
				aa_quota_run_failed(ir->quota);
		}
		scan_call_depth = calls_depth;
		if (ir && ir->estate)
		{
			add_run_rows(ir, queryDesc, rerun);
			ir->in_run = false;
			ir->failed = true;
			if (ir->err_lists && error_shows_row())
				ir->shown_error = true;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	queryDesc->dest = saved_dest;
	aa_nesting_level--;
	if (ir)
	{
		add_run_rows(ir, queryDesc, rerun);
		ir->in_run = false;
		if (ir->intent)
			aa_queue_intent_rows(ir->rec.rows, tagged_rows_so_far(ir));
		/* quota.c: rows of parallel workers */
		if (ir->quota)
			aa_quota_run_end(ir->quota);
	}
}

/*
 * ExecutorFinish hook: AFTER triggers and foreign-key checks run here, so
 * statements they run are nested.
 */
static void
aa_ExecutorFinish(QueryDesc *queryDesc)
{
	InflightRecord *ir = inflight ? inflight_find(queryDesc->estate) : NULL;

	aa_nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		aa_nesting_level--;
		if (ir && ir->estate)
		{
			ir->failed = true;
			if (ir->err_lists && error_shows_row())
				ir->shown_error = true;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	aa_nesting_level--;
}

/*
 * ExecutorEnd hook: the statement completed; push its record while the
 * plan's instrumentation is still there.
 */
static void
aa_ExecutorEnd(QueryDesc *queryDesc)
{
	InflightRecord *ir = inflight ? inflight_find(queryDesc->estate) : NULL;
	List	   *copies = NIL;
	ListCell   *lc;

	if (ir)
	{
		/* not while a transaction aborts, when cleanup ends a plan */
		if (!ir->failed && ir->runs > 0 && IsTransactionState())
			copies = ir->copies;
		inflight_finish(ir, ir->failed);
	}
	if (IsParallelWorker() && aa_nesting_level == 0)
		aa_rowids_worker_end();

	/* the statement completed: what it copied is tagged with it */
	foreach(lc, copies)
	{
		DmlCopy    *c = lfirst(lc);

		aa_tags_label_copies(c->relid, c->d);
	}

	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * Utility statements that only wrap a plannable query: the query they run
 * is the statement itself, not a nested one.
 */
static bool
utility_is_wrapper(Node *stmt)
{
	switch (nodeTag(stmt))
	{
		case T_CopyStmt:
		case T_CreateTableAsStmt:
		case T_RefreshMatViewStmt:
		case T_DeclareCursorStmt:
		case T_ExplainStmt:
		case T_ExecuteStmt:
		case T_FetchStmt:
		case T_PrepareStmt:
		case T_ClosePortalStmt:
		case T_TransactionStmt:
			return true;
		default:
			return false;
	}
}

/*
 * May the current role read the columns relation-form COPY TO copies?
 * COPY checks this before reading; a refused COPY, like a refused SELECT,
 * reads nothing and leaves no record.
 */
static bool
copy_permitted(Oid relid, List *attlist)
{
	Oid			uid = GetUserId();
	ListCell   *lc;

	if (pg_class_aclcheck(relid, uid, ACL_SELECT) == ACLCHECK_OK)
		return true;
	if (attlist == NIL)
		return pg_attribute_aclcheck_all(relid, uid, ACL_SELECT,
										 ACLMASK_ALL) == ACLCHECK_OK;
	foreach(lc, attlist)
	{
		AttrNumber	attnum = get_attnum(relid, strVal(lfirst(lc)));

		if (attnum == InvalidAttrNumber ||
			pg_attribute_aclcheck(relid, attnum, uid, ACL_SELECT) != ACLCHECK_OK)
			return false;
	}
	return true;
}

/*
 * For relation-form COPY TO, which reads without the executor: open a
 * record if the relation has tagged columns among those copied.
 *
 * Only plain tables get here: COPY refuses views, partitioned tables and
 * other relkinds before reading anything.  With row-level security active
 * for the table, COPY runs a SELECT through the executor instead, and the
 * executor hooks record it; opening a record here too would make two.
 */
static InflightRecord *
copy_to_record(PlannedStmt *pstmt, CopyStmt *copy, const char *queryString)
{
	Oid			relid;
	AuditRelTags *tags;
	MemoryContext cxt;
	InflightRecord *ir;
	MemoryContext old;
	int			cap_col = 0,
				cap_tag = 0,
				cap_rel = 0;
	AttrNumber	attno;

	if (copy->is_from || copy->relation == NULL || !aa_tags_active())
		return NULL;
	relid = RangeVarGetRelid(copy->relation, NoLock, true);
	if (!OidIsValid(relid) || (tags = aa_tags_lookup(relid)) == NULL)
		return NULL;
	if (get_rel_relkind(relid) != RELKIND_RELATION ||
		check_enable_rls(relid, InvalidOid, true) == RLS_ENABLED ||
		!copy_permitted(relid, copy->attlist))
		return NULL;

	cxt = AllocSetContextCreate(CurrentMemoryContext, "access_audit COPY",
								ALLOCSET_SMALL_SIZES);
	ir = inflight_new(cxt, NULL);
	ir->is_copy = true;
	ir->copy_relid = relid;
	ir->copy_sent = -1;
	old = MemoryContextSwitchTo(cxt);
	for (attno = 1; attno <= tags->natts; attno++)
	{
		AuditColumnTags *col = &tags->cols[attno];
		int			i;

		if (col->qualname == NULL)
			continue;
		if (copy->attlist != NIL)
		{
			ListCell   *lc;
			bool		listed = false;
			char	   *attname = get_attname(relid, attno, true);

			foreach(lc, copy->attlist)
			{
				if (attname && strcmp(strVal(lfirst(lc)), attname) == 0)
					listed = true;
			}
			if (!listed)
				continue;
		}
		aa_add_unique(&ir->rec.columns, &ir->rec.n_columns, &cap_col,
					  pstrdup(col->qualname));
		for (i = 0; i < col->ntags; i++)
			aa_add_unique(&ir->rec.tags, &ir->rec.n_tags, &cap_tag,
						  pstrdup(col->tags[i]));
	}
	if (ir->rec.n_columns == 0)
	{
		MemoryContextSwitchTo(old);
		inflight_unlink(ir);
		ir->cb.arg = NULL;
		MemoryContextDelete(cxt);
		return NULL;
	}
	aa_add_unique(&ir->rec.relations, &ir->rec.n_relations, &cap_rel,
				  pstrdup(tags->qualname));
	ir->rec.command = "COPY";
	ir->rec.query_id = (int64) pgstat_get_my_query_id();
	ir->rec.query = aa_record_statement_text(queryString, pstmt->stmt_location,
											 pstmt->stmt_len, cxt);
	aa_record_fill_identity(&ir->rec, cxt);
	aa_quota_annotate(&ir->rec, cxt);	/* quota.c: the session's reason */
	MemoryContextSwitchTo(old);
	ir->in_run = true;
	return ir;
}

/* ---------------------------------------------------------------------
 * Code and tables attached to tagged tables
 * ---------------------------------------------------------------------
 *
 * A table owner can run code of their own over every row of a tagged
 * table without a statement the executor hooks see: a CHECK constraint, an
 * expression index, ALTER COLUMN ... TYPE ... USING, a stored generated
 * column evaluate their expression over each row when they are added; a
 * row trigger and a row-level security policy are handed rows (OLD.phone)
 * whenever others write or read; INHERIT and ATTACH PARTITION put the table
 * under a parent of the owner's choosing.  Each such command on a table
 * with tagged columns is recorded as an event naming what it attaches, and
 * as a read of the tagged columns its code evaluates, with the table's rows
 * when it evaluates them now.
 */

/* one command's effect on one tagged table */
typedef struct TableCode
{
	Oid			relid;
	bool		count_rows;		/* evaluates code over the rows now */
	AuditRecord rec;			/* prepared before the command runs */
} TableCode;

/* columns a raw (parse-analysis-free) expression refers to */
typedef struct RawColumns
{
	List	   *names;			/* column names (char *) */
	bool		whole;			/* a whole-row or star reference */
} RawColumns;

/*
 * Collect the column references of a raw expression tree.  A reference
 * whose last field is a star, or a single name that is no column (a
 * whole-row reference by table name), counts as the whole row.
 */
static bool
raw_columns_walker(Node *node, RawColumns *ctx)
{
	if (node == NULL)
		return false;
	if (IsA(node, ColumnRef))
	{
		ColumnRef  *cref = (ColumnRef *) node;
		Node	   *last = llast(cref->fields);

		if (IsA(last, A_Star))
			ctx->whole = true;
		else if (IsA(last, String))
			ctx->names = lappend(ctx->names, strVal(last));
		return false;
	}
	return raw_expression_tree_walker(node, raw_columns_walker, (void *) ctx);
}

/* walker of cooked_column_refs: a ColumnRef for each Var found */
static bool
cooked_vars_walker(Node *node, List **vars)
{
	if (node == NULL)
		return false;
	if (IsA(node, Var))
	{
		*vars = lappend(*vars, node);
		return false;
	}
	return expression_tree_walker(node, cooked_vars_walker, (void *) vars);
}

/*
 * The columns of relid that a cooked (parse-analysed) expression refers to,
 * as a list of raw ColumnRefs that raw_columns_walker understands: a
 * whole-row Var becomes a star.  Commands that PostgreSQL builds itself
 * carry cooked expressions: the index clones of CREATE TABLE ... LIKE and
 * of partitions (IndexStmt.transformed), and copied CHECK constraints
 * (Constraint.cooked_expr).  Never walk those as raw trees: the raw walker
 * raises "unrecognized node type" on them.
 */
static Node *
cooked_column_refs(Node *expr, Oid relid)
{
	List	   *vars = NIL;
	List	   *refs = NIL;
	ListCell   *lc;

	(void) cooked_vars_walker(expr, &vars);
	foreach(lc, vars)
	{
		Var		   *var = lfirst(lc);
		ColumnRef  *ref = makeNode(ColumnRef);
		char	   *name = NULL;

		if (var->varattno > 0 && OidIsValid(relid))
			name = get_attname(relid, var->varattno, true);
		if (var->varattno == 0)
			ref->fields = list_make1(makeNode(A_Star));
		else if (name != NULL)
			ref->fields = list_make1(makeString(name));
		else
			continue;			/* a system column: never tagged */
		refs = lappend(refs, ref);
	}
	return (Node *) refs;
}

/*
 * The expression of a CHECK or generated-column constraint as a raw tree:
 * raw_expr as the user wrote it, or the cooked_expr of a constraint that
 * PostgreSQL copied (CREATE TABLE ... LIKE ... INCLUDING CONSTRAINTS).
 */
static Node *
constraint_expr(Constraint *con, Oid relid)
{
	if (con->raw_expr != NULL)
		return con->raw_expr;
	if (con->cooked_expr != NULL)
		return cooked_column_refs(stringToNode(con->cooked_expr), relid);
	return NULL;
}

/*
 * Prepare the record of a command attaching code (expr, or all columns
 * when all_columns) or a parent to the table rv names, if the table has
 * tagged columns.  Expression-bound commands (event false) are recorded
 * only if their expression refers to a tagged column.  what names the
 * attachment in the record's detail.
 */
static void
table_code_note(List **notes, Oid relid, const char *command,
				const char *what, Node *expr, bool all_columns, bool event,
				bool count_rows, const char *query)
{
	AuditRelTags *tags;
	TableCode  *tc;
	RawColumns	rc;
	AttrNumber	attno;
	int			cap_col = 0,
				cap_tag = 0,
				cap_rel = 0;
	StringInfoData detail;

	if (!OidIsValid(relid) || (tags = aa_tags_lookup(relid)) == NULL ||
		!tags->tagged)
		return;
	memset(&rc, 0, sizeof(rc));
	rc.whole = all_columns;
	if (expr != NULL)
		(void) raw_columns_walker(expr, &rc);

	tc = palloc0(sizeof(TableCode));
	tc->relid = relid;
	tc->count_rows = count_rows;
	for (attno = 1; attno <= tags->natts; attno++)
	{
		AuditColumnTags *col = &tags->cols[attno];
		bool		used = rc.whole;
		ListCell   *lc;
		int			i;

		if (col->qualname == NULL)
			continue;
		if (!used)
		{
			char	   *attname = get_attname(relid, attno, true);

			foreach(lc, rc.names)
				if (attname && strcmp(attname, (char *) lfirst(lc)) == 0)
				used = true;
		}
		if (!used)
			continue;
		aa_add_unique(&tc->rec.columns, &tc->rec.n_columns, &cap_col,
					  pstrdup(col->qualname));
		for (i = 0; i < col->ntags; i++)
			aa_add_unique(&tc->rec.tags, &tc->rec.n_tags, &cap_tag,
						  pstrdup(col->tags[i]));
	}
	/* the table's own name, where it is no column: a whole-row reference */
	if (!rc.whole)
	{
		char	   *relname = get_rel_name(relid);
		ListCell   *lc;

		foreach(lc, rc.names)
		{
			if (relname && strcmp(relname, (char *) lfirst(lc)) == 0 &&
				get_attnum(relid, relname) == InvalidAttrNumber)
			{
				pfree(tc);
				table_code_note(notes, relid, command, what, NULL, true,
								event, count_rows, query);
				return;
			}
		}
	}
	if (tc->rec.n_columns == 0 && !event)
	{
		pfree(tc);
		return;
	}
	aa_add_unique(&tc->rec.relations, &tc->rec.n_relations, &cap_rel,
				  pstrdup(tags->qualname));
	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"attaches\": ");
	escape_json(&detail, what);
	appendStringInfo(&detail, ", \"evaluates_rows_now\": %s}",
					 count_rows ? "true" : "false");
	tc->rec.kind = AA_KIND_READ;
	tc->rec.ts = GetCurrentStatementStartTimestamp();
	tc->rec.nesting_level = aa_nesting_level;
	tc->rec.command = command;
	tc->rec.query = query;
	tc->rec.query_id = (int64) pgstat_get_my_query_id();
	tc->rec.detail = detail.data;
	aa_record_fill_identity(&tc->rec, CurrentMemoryContext);
	/* counted before the command runs: one that fails has read them too */
	if (count_rows)
		tc->rec.tagged_rows = table_rows(relid);
	*notes = lappend(*notes, tc);
}

/*
 * The records a utility statement attaching code or tables to tagged
 * tables will make (see table_code_note()), prepared before it runs so
 * that one that fails is recorded too.  Catalog access through the tag
 * cache; names are resolved without locks (the command takes its own).
 */
static List *
table_code_notes(PlannedStmt *pstmt, const char *queryString)
{
	Node	   *parsetree = pstmt->utilityStmt;
	List	   *notes = NIL;
	const char *command;
	const char *query;
	List	   *rerun = aa_rerun_code(parsetree);
	ListCell   *rlc;
	bool		attaches;

	attaches = IsA(parsetree, AlterTableStmt) ||
		IsA(parsetree, CreateTrigStmt) || IsA(parsetree, IndexStmt) ||
		IsA(parsetree, CreatePolicyStmt) || IsA(parsetree, AlterPolicyStmt) ||
		IsA(parsetree, RuleStmt);
	if (rerun == NIL && !attaches)
		return NIL;
	command = CreateCommandName(parsetree);
	query = aa_record_statement_text(queryString, pstmt->stmt_location, pstmt->stmt_len,
									 CurrentMemoryContext);

	/* code the command runs again over every row (rerun.c) */
	foreach(rlc, rerun)
	{
		AuditRerunCode *r = lfirst(rlc);

		table_code_note(&notes, r->relid, command, r->what,
						cooked_column_refs(r->exprs, r->relid), false, false,
						true, query);
	}
	if (!attaches)
		return notes;

	if (IsA(parsetree, AlterTableStmt))
	{
		AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		ListCell   *lc;

		foreach(lc, stmt->cmds)
		{
			AlterTableCmd *cmd = lfirst(lc);

			switch (cmd->subtype)
			{
				case AT_AddInherit:
					table_code_note(&notes, relid, command,
									"a parent table (INHERIT)", NULL, true,
									true, false, query);
					break;
				case AT_AttachPartition:
					if (IsA(cmd->def, PartitionCmd))
					{
						PartitionCmd *pc = (PartitionCmd *) cmd->def;

						table_code_note(&notes,
										RangeVarGetRelid(pc->name, NoLock, true),
										command,
										"a parent table (ATTACH PARTITION)",
										NULL, true, true, false, query);
					}
					break;
				case AT_AddConstraint:
					if (IsA(cmd->def, Constraint) &&
						((Constraint *) cmd->def)->contype == CONSTR_CHECK)
					{
						Constraint *con = (Constraint *) cmd->def;

						table_code_note(&notes, relid, command,
										"a CHECK constraint",
										constraint_expr(con, relid),
										false, false, !con->skip_validation,
										query);
					}
					else if (IsA(cmd->def, Constraint) &&
							 ((Constraint *) cmd->def)->contype == CONSTR_EXCLUSION)
					{
						/* builds an index: its expressions run over every row */
						Constraint *con = (Constraint *) cmd->def;
						List	   *exprs = NIL;
						ListCell   *lc2;

						foreach(lc2, con->exclusions)
						{
							IndexElem  *elem = linitial((List *) lfirst(lc2));

							if (IsA(elem, IndexElem) && elem->expr)
								exprs = lappend(exprs, elem->expr);
						}
						if (con->where_clause)
							exprs = lappend(exprs, con->where_clause);
						if (exprs != NIL)
							table_code_note(&notes, relid, command,
											"an exclusion constraint on expressions",
											(Node *) exprs, false, false, true,
											query);
					}
					break;
				case AT_AlterColumnType:
					if (IsA(cmd->def, ColumnDef))
					{
						ColumnDef  *def = (ColumnDef *) cmd->def;
						ColumnRef  *self = makeNode(ColumnRef);

						/* the column's values go through a conversion */
						self->fields = list_make1(makeString(cmd->name));
						table_code_note(&notes, relid, command,
										"a column type conversion (ALTER COLUMN TYPE)",
										def->raw_default ?
										(Node *) list_make2(self, def->raw_default) :
										(Node *) self,
										false, false, true, query);
					}
					break;
				case AT_AddColumn:
					if (IsA(cmd->def, ColumnDef))
					{
						ColumnDef  *def = (ColumnDef *) cmd->def;
						ListCell   *lc2;

						foreach(lc2, def->constraints)
						{
							Constraint *con = lfirst(lc2);

							if (con->contype == CONSTR_GENERATED ||
								con->contype == CONSTR_CHECK)
								table_code_note(&notes, relid, command,
												con->contype == CONSTR_GENERATED ?
												"a generated column" :
												"a CHECK constraint",
												constraint_expr(con, relid),
												false, false, true, query);
						}
					}
					break;
				default:
					break;
			}
		}
	}
	else if (IsA(parsetree, CreateTrigStmt))
	{
		CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;

		table_code_note(&notes, RangeVarGetRelid(stmt->relation, NoLock, true),
						command,
						psprintf("trigger \"%s\" calling %s()", stmt->trigname,
								 NameListToString(stmt->funcname)),
						stmt->whenClause, stmt->row, true, false, query);
	}
	else if (IsA(parsetree, RuleStmt))
	{
		/*
		 * A rule's actions run with every write of the table, in the writer's
		 * statement, and may copy OLD and NEW values elsewhere: an event,
		 * like a trigger, naming the tagged columns the rule refers to.
		 */
		RuleStmt   *stmt = (RuleStmt *) parsetree;
		List	   *exprs = NIL;
		ListCell   *lc;

		foreach(lc, stmt->actions)
		{
			Node	   *action = lfirst(lc);

			/* NOTIFY refers to no column (and the raw walker knows it not) */
			if (IsA(action, InsertStmt) || IsA(action, UpdateStmt) ||
				IsA(action, DeleteStmt) || IsA(action, SelectStmt))
				exprs = lappend(exprs, action);
		}
		if (stmt->whereClause)
			exprs = lappend(exprs, stmt->whereClause);
		table_code_note(&notes, RangeVarGetRelid(stmt->relation, NoLock, true),
						command, psprintf("rule \"%s\"", stmt->rulename),
						(Node *) exprs, false, true, false, query);
	}
	else if (IsA(parsetree, IndexStmt))
	{
		IndexStmt  *stmt = (IndexStmt *) parsetree;
		Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
		List	   *exprs = NIL;
		ListCell   *lc;

		foreach(lc, stmt->indexParams)
		{
			IndexElem  *elem = lfirst(lc);

			if (elem->expr)
				exprs = lappend(exprs, elem->expr);
		}
		if (stmt->whereClause)
			exprs = lappend(exprs, stmt->whereClause);
		/* a clone PostgreSQL made (LIKE, partitions) is cooked already */
		if (exprs != NIL && stmt->transformed)
			exprs = list_make1(cooked_column_refs((Node *) exprs, relid));
		if (exprs != NIL)
			table_code_note(&notes, relid, command, "an index on expressions",
							(Node *) exprs, false, false, true, query);
	}
	else
	{
		RangeVar   *rv;
		Node	   *qual;
		Node	   *check;
		char	   *name;

		if (IsA(parsetree, CreatePolicyStmt))
		{
			rv = ((CreatePolicyStmt *) parsetree)->table;
			qual = ((CreatePolicyStmt *) parsetree)->qual;
			check = ((CreatePolicyStmt *) parsetree)->with_check;
			name = ((CreatePolicyStmt *) parsetree)->policy_name;
		}
		else
		{
			rv = ((AlterPolicyStmt *) parsetree)->table;
			qual = ((AlterPolicyStmt *) parsetree)->qual;
			check = ((AlterPolicyStmt *) parsetree)->with_check;
			name = ((AlterPolicyStmt *) parsetree)->policy_name;
		}
		table_code_note(&notes, RangeVarGetRelid(rv, NoLock, true), command,
						psprintf("row-level security policy \"%s\"", name),
						(Node *) list_make2(qual, check), false, true, false,
						query);
	}
	return notes;
}

/*
 * Rows of relid and of its partitions and inheritance children, counted
 * with the table access method under a fresh snapshot (the command about
 * to evaluate code over them will see the same rows).
 */
static int64
table_rows(Oid relid)
{
	List	   *rels = has_subclass(relid) ?
	find_all_inheritors(relid, AccessShareLock, NULL) :
	list_make1_oid(relid);
	ListCell   *lc;
	int64		n = 0;

	foreach(lc, rels)
	{
		Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);

		if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind))
		{
			Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
			TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
			TupleTableSlot *slot = table_slot_create(rel, NULL);

			while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
			{
				n++;
				CHECK_FOR_INTERRUPTS();
			}
			ExecDropSingleTupleTableSlot(slot);
			table_endscan(scan);
			UnregisterSnapshot(snap);
		}
		table_close(rel, AccessShareLock);
	}
	return n;
}

/*
 * Push the prepared records of a utility statement, after it completed or
 * from its error path (no catalog access).
 */
static void
table_code_push(List *notes, bool ok)
{
	ListCell   *lc;

	foreach(lc, notes)
	{
		TableCode  *tc = lfirst(lc);

		tc->rec.outcome = ok ? AA_OUTCOME_OK : AA_OUTCOME_ERROR;
		tc->rec.duration_us = GetCurrentTimestamp() - tc->rec.ts;
		aa_queue_push(&tc->rec);
	}
}

/*
 * Note the keys of the first sent rows of a failed relation-form COPY; an
 * error doing so is dropped (the COPY's own error is thrown next).  Its own
 * function: a PG_TRY nested in another's scope shadows its variables.
 */
static void
copy_note_sent_rows(InflightRecord *ir, int64 sent, MemoryContext oldcxt)
{
	PG_TRY();
	{
		aa_rowids_copy(&ir->rowids, ir->copy_relid, sent, ir->cxt);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		FlushErrorState();
	}
	PG_END_TRY();
}

/*
 * Run a relation-form COPY TO of a table that keeps row identities so that,
 * if it fails, the rows it sent are known: in a subtransaction, without
 * synchronized scanning (its scan starts at block 0).  On error: the rows
 * sent are COPY's progress count; the subtransaction is rolled back (the
 * statement's snapshot, pushed outside it, stays active), the keys of that
 * many rows from block 0 are noted (rowids.c), and the error is thrown
 * again as it was.  If noting fails, the record keeps its count only.
 */
static void
copy_run_keeping_rows(InflightRecord *ir, PlannedStmt *pstmt,
					  const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest,
					  QueryCompletion *qc)
{
	MemoryContext oldcxt = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	int			nestlevel;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(oldcxt);
	nestlevel = NewGUCNestLevel();
	(void) set_config_option("synchronize_seqscans", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
									  readOnlyTree, context, params, queryEnv,
									  dest, qc);
		AtEOXact_GUC(true, nestlevel);
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int64		sent;

		sent = (MyBEEntry &&
				MyBEEntry->st_progress_command == PROGRESS_COMMAND_COPY &&
				MyBEEntry->st_progress_command_target == ir->copy_relid) ?
			MyBEEntry->st_progress_param[PROGRESS_COPY_TUPLES_PROCESSED] : 0;
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcxt);
		CurrentResourceOwner = oldowner;
		ir->copy_sent = sent;
		if (sent > 0)
			copy_note_sent_rows(ir, sent, oldcxt);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * ProcessUtility hook: relation-form COPY TO (pg_dump's path) and nesting
 * of statements run by CALL, DO and the like.
 */
static void
aa_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
				  bool readOnlyTree, ProcessUtilityContext context,
				  ParamListInfo params, QueryEnvironment *queryEnv,
				  DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	InflightRecord *ir = NULL;
	bool		nests = !utility_is_wrapper(parsetree);
	bool		save_matview = creating_matview;
	int			save_refresh_level = refresh_level;
	bool		save_refresh_seen = refresh_query_seen;
	List	   *code_notes = NIL;

	if (aa_capture_wanted() && aa_tags_active() && IsTransactionState())
		code_notes = table_code_notes(pstmt, queryString);
	if (IsA(parsetree, CopyStmt) && aa_capture_wanted())
	{
		ir = copy_to_record(pstmt, (CopyStmt *) parsetree, queryString);
		if (ir)
			ir->intent = aa_queue_intent_open(&ir->rec);
	}

	if (nests)
		aa_nesting_level++;
	if (IsA(parsetree, CreateTableAsStmt))
		creating_matview =
			((CreateTableAsStmt *) parsetree)->objtype == OBJECT_MATVIEW;
	else
		creating_matview = false;
	if (IsA(parsetree, RefreshMatViewStmt) &&
		((RefreshMatViewStmt *) parsetree)->concurrent)
	{
		refresh_level = aa_nesting_level;
		refresh_query_seen = false;
	}
	PG_TRY();
	{
		if (ir && ir->cb.arg && aa_rowids_tracks(ir->copy_relid))
			copy_run_keeping_rows(ir, pstmt, queryString, readOnlyTree,
								  context, params, queryEnv, dest, qc);
		else
			aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
										  readOnlyTree, context, params,
										  queryEnv, dest, qc);
	}
	PG_CATCH();
	{
		creating_matview = save_matview;
		refresh_level = save_refresh_level;
		refresh_query_seen = save_refresh_seen;
		if (nests)
			aa_nesting_level--;
		if (ir && ir->cb.arg)
		{
			ir->in_run = false;
			inflight_finish(ir, true);
		}
		table_code_push(code_notes, false);
		PG_RE_THROW();
	}
	PG_END_TRY();
	creating_matview = save_matview;
	refresh_level = save_refresh_level;
	refresh_query_seen = save_refresh_seen;
	if (nests)
		aa_nesting_level--;

	if (ir && ir->cb.arg)
	{
		ir->in_run = false;
		ir->rec.rows = qc ? (int64) qc->nprocessed : 0;
		/* rowids.c: COPY read every row of its snapshot */
		aa_rowids_copy(&ir->rowids, ir->copy_relid, -1, ir->cxt);
		inflight_finish(ir, false);
	}

	table_code_push(code_notes, true);
	aa_record_setting_change(parsetree);
	record_publication_change(parsetree);
}

/*
 * A publication is a standing export: every row written to a published
 * table streams to whoever subscribes, with no read on this server.  After
 * CREATE PUBLICATION, or an ALTER PUBLICATION that adds or sets tables or
 * schemas, record one event per tagged table the publication now covers,
 * with the tagged columns it publishes (its column list, if any).
 */
static void
record_publication_change(Node *parsetree)
{
	const char *pubname;
	const char *command;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	uint64		i;
	char	   *detail;

	if (IsA(parsetree, CreatePublicationStmt))
	{
		pubname = ((CreatePublicationStmt *) parsetree)->pubname;
		command = "CREATE PUBLICATION";
	}
	else if (IsA(parsetree, AlterPublicationStmt) &&
			 (((AlterPublicationStmt *) parsetree)->pubobjects != NIL ||
			  ((AlterPublicationStmt *) parsetree)->for_all_tables) &&
			 ((AlterPublicationStmt *) parsetree)->action != AP_DropObjects)
	{
		pubname = ((AlterPublicationStmt *) parsetree)->pubname;
		command = "ALTER PUBLICATION";
	}
	else
		return;
	if (!aa_capture_wanted() || !aa_tags_active())
		return;

	detail = aa_publication_detail(pubname, NULL);

	SPI_connect();
	args[0] = CStringGetTextDatum(pubname);
	ret = SPI_execute_with_args("SELECT c.oid, t.attnames "
								"FROM pg_catalog.pg_publication_tables t "
								"JOIN pg_catalog.pg_namespace n ON n.nspname = t.schemaname "
								"JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid "
								"AND c.relname = t.tablename "
								"WHERE t.pubname = $1 ORDER BY 1",
								1, argtypes, args, NULL, false, 0);
	/* not read-only: a new snapshot sees what the statement made */
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the tables of publication \"%s\"", pubname);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		Datum		names = SPI_getbinval(tup, desc, 2, &isnull);
		Datum	   *elems;
		int			nelems;
		AuditRelTags *rt = aa_tags_lookup(relid);
		const char **cols = NULL;
		const char **tags = NULL;
		int			ncols = 0,
					ntags = 0,
					cap_cols = 0,
					cap_tags = 0;
		AttrNumber	a;

		if (rt == NULL)
			continue;
		elems = aa_publication_names(names, isnull, &nelems);
		for (a = 1; a <= rt->natts; a++)
		{
			AuditColumnTags *col = &rt->cols[a];
			char	   *attname;
			int			k;
			bool		published = false;

			if (col->qualname == NULL)
				continue;
			attname = get_attname(relid, a, true);
			for (k = 0; k < nelems && !published && attname; k++)
				published = strcmp(NameStr(*DatumGetName(elems[k])), attname) == 0;
			if (!published)
				continue;
			aa_add_unique(&cols, &ncols, &cap_cols, col->qualname);
			for (k = 0; k < col->ntags; k++)
				aa_add_unique(&tags, &ntags, &cap_tags, col->tags[k]);
		}
		if (ncols > 0)
			aa_capture_event_lists(command, &rt->qualname, 1, cols, ncols,
								   tags, ntags, detail);
	}
	SPI_finish();
}
