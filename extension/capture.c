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
 * from its sources (applied by tags.c), and event records (settings,
 * publications).  What a plan reads is worked out in plantrace.c.
 *
 * IDENTIFICATION
 *	  extension/capture.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/parallel.h"
#include "access/table.h"
#include "access/sysattr.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type.h"
#include "catalog/pg_statistic_ext.h"
#include "catalog/pg_statistic_ext_data.h"
#include "statistics/extended_stats_internal.h"
#include "commands/copy.h"
#include "commands/extension.h"
#include "commands/progress.h"
#include "executor/executor.h"
#include "executor/instrument.h"
#include "executor/spi.h"
#include "common/ip.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "tcop/pquery.h"
#include "tcop/utility.h"
#include "storage/proc.h"
#include "utils/portal.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "capture.h"
#include "compat.h"
#include "plantrace.h"
#include "queue.h"
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
	int			runs;			/* ExecutorRun calls so far */
	bool		intent;			/* holds this backend's intent slot */
	int			n_instr;
	Instrumentation **instr;	/* scan nodes of tagged relations */

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
	Bitmapset  *stats_nodes;	/* see build_plan_record() */
	char	   *block;			/* the flat lists, in the plan's context */
	Size		block_size;
	AuditRecord lists;			/* n_* and arrays (pointing into block) */
	uint64		copies_epoch;	/* aa_tags_epoch() when copies derived */
	List	   *copies;			/* plan_copies(), in the plan's context */
} PlanAuditInfo;

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

static InflightRecord *inflight = NULL;
static int	nesting_level = 0;
static bool capture_disabled = false;

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

/* identity cache */
static char *login_role_name = NULL;
static Oid	effective_role_cached = InvalidOid;
static char *effective_role_name = NULL;
static char *client_addr_text = NULL;
static bool client_addr_done = false;

static void aa_ExecutorStart(QueryDesc *queryDesc, int eflags);
static void aa_ExecutorRun(AA_EXECUTOR_RUN_ARGS);
static void aa_ExecutorFinish(QueryDesc *queryDesc);
static void aa_ExecutorEnd(QueryDesc *queryDesc);
static void record_setting_change(Node *parsetree);
static void record_publication_change(Node *parsetree);
static void capture_event_lists(const char *command, const char **rels,
								int nrels, const char **cols, int ncols,
								const char **tags, int ntags,
								const char *detail);
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
}

/*
 * Turn capture off in this process (the writer, so it never audits itself).
 */
void
aa_capture_disable(void)
{
	capture_disabled = true;
}

/*
 * Should this process capture at all?
 */
static inline bool
capture_wanted(void)
{
	return aa_enabled && !capture_disabled && !IsParallelWorker() &&
		aa_queue_ready() && MyDatabaseId != InvalidOid;
}

/* ---------------------------------------------------------------------
 * Identity
 * ---------------------------------------------------------------------
 */

/*
 * Fill who/where fields of rec; strings are copied into cxt.  Needs a
 * transaction (role names come from the syscache, cached per backend).
 */
static void
fill_identity(AuditRecord *rec, MemoryContext cxt)
{
	Oid			uid = GetUserId();
	bool		trusted = false;

	if (login_role_name == NULL)
		login_role_name = MemoryContextStrdup(TopMemoryContext,
											  GetUserNameFromId(GetAuthenticatedUserId(), false));
	if (uid != effective_role_cached || effective_role_name == NULL)
	{
		char	   *name = GetUserNameFromId(uid, true);

		if (effective_role_name)
			pfree(effective_role_name);
		effective_role_name = MemoryContextStrdup(TopMemoryContext,
												  name ? name : "?");
		effective_role_cached = uid;
	}
	if (!client_addr_done && MyProcPort != NULL)
	{
		char		host[NI_MAXHOST];

		if (MyProcPort->raddr.addr.ss_family == AF_INET ||
			MyProcPort->raddr.addr.ss_family == AF_INET6)
		{
			host[0] = '\0';
			if (pg_getnameinfo_all(&MyProcPort->raddr.addr,
								   MyProcPort->raddr.salen,
								   host, sizeof(host), NULL, 0,
								   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
				client_addr_text = MemoryContextStrdup(TopMemoryContext, host);
		}
		client_addr_done = true;
	}

	rec->login_role = login_role_name;
	rec->effective_role = effective_role_name;
	rec->client_addr = client_addr_text;
	rec->application_name = (application_name && application_name[0]) ?
		MemoryContextStrdup(cxt, application_name) : NULL;
	rec->backend_pid = MyProcPid;

	/*
	 * application-level actor: trusted only from members of access_audit_app
	 * that named it themselves (not a database or role default)
	 */
	if (aa_actor && aa_actor[0])
	{
		Oid			app = get_role_oid(AA_ROLE_APP, true);

		trusted = aa_actor_own && OidIsValid(app) &&
			has_privs_of_role(GetSessionUserId(), app);
		if (trusted)
		{
			rec->actor = MemoryContextStrdup(cxt, aa_actor);
			rec->claimed_actor = NULL;
		}
		else
		{
			rec->actor = login_role_name;
			rec->claimed_actor = MemoryContextStrdup(cxt, aa_actor);
		}
	}
	else
	{
		rec->actor = login_role_name;
		rec->claimed_actor = NULL;
	}
}

/*
 * Statement text, cut to one statement and to max_query_length bytes (on
 * a character boundary).
 */
static char *
statement_text(const char *source, int location, int len, MemoryContext cxt)
{
	int			srclen;
	char	   *copy;

	if (source == NULL)
		return NULL;
	srclen = strlen(source);
	if (location < 0 || location > srclen)
	{
		location = 0;
		len = srclen;
	}
	else if (len <= 0 || location + len > srclen)
		len = srclen - location;
	source += location;
	/* trim leading white space the parser leaves in multi-statement strings */
	while (len > 0 && (*source == ' ' || *source == '\n' || *source == '\t' ||
					   *source == '\r'))
	{
		source++;
		len--;
	}
	/* and the trailing semicolon of the last statement in the string */
	while (len > 0 && (source[len - 1] == ';' || source[len - 1] == ' ' ||
					   source[len - 1] == '\n' || source[len - 1] == '\t' ||
					   source[len - 1] == '\r'))
		len--;
	if (aa_max_query_length >= 0 && len > aa_max_query_length)
		len = pg_mbcliplen(source, len, aa_max_query_length);
	copy = MemoryContextAlloc(cxt, len + 1);
	memcpy(copy, source, len);
	copy[len] = '\0';
	return copy;
}

/* ---------------------------------------------------------------------
 * Building the record
 * ---------------------------------------------------------------------
 */

/* append s to a string array unless present */
static void
add_unique(const char ***arr, int *n, int *cap, const char *s)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (strcmp((*arr)[i], s) == 0)
			return;
	if (*n >= *cap)
	{
		*cap = Max(8, *cap * 2);
		*arr = *arr ? repalloc(*arr, sizeof(char *) * *cap) :
			palloc(sizeof(char *) * *cap);
	}
	(*arr)[(*n)++] = s;
}


/*
 * Collect the instrumentation of every scan node over a tagged relation,
 * for tagged_rows.
 */
typedef struct InstrCtx
{
	PlannedStmt *stmt;
	List	   *instr;
	struct PlanAuditInfo *pai;	/* remembers the answer per plan node */
	MemoryContext cxt;			/* for counters of uninstrumented scans */
	Bitmapset  *stats_nodes;	/* scans of statistics catalogs to watch */
	List	   *stats_top;		/* ... of which those counted higher up */
	List	   *stats_top_at;	/* ... and the Plan where each is counted */
} InstrCtx;

static bool scan_is_tagged(Plan *plan, InstrCtx *ctx);

/*
 * ExecProcNode of a tagged scan in a plan run without instrumentation:
 * count the rows it returns in its own Instrumentation's tuplecount (never
 * started, so the executor's instrumentation code leaves it alone) and
 * nothing else.  Row instrumentation of the whole plan (INSTRUMENT_ROWS)
 * wraps every node's every row and was most of the capture's cost on
 * range reads.
 */
static TupleTableSlot *
aa_counting_exec(PlanState *node)
{
	TupleTableSlot *slot = node->ExecProcNodeReal(node);

	if (!TupIsNull(slot))
		node->instrument->tuplecount += 1;
	return slot;
}

/* ---------------------------------------------------------------------
 * Tags of relations made from a query
 * ---------------------------------------------------------------------
 *
 * A copy of tagged data is tagged data: CREATE TABLE AS, SELECT INTO and
 * materialized views give each of their columns the tag of the tagged
 * columns it is computed from (traced like the record's output columns),
 * so that later reads of the copy are audited too.  The executor computes
 * them here; tags.c applies them after the statement, on a stack of
 * entries (one per statement, nested CREATE TABLE AS included) kept in
 * TopTransactionContext and forgotten with the transaction.
 */
static const char *command_name(QueryDesc *qd);
static List *derived_stack = NIL;
static LocalTransactionId derived_lxid = InvalidLocalTransactionId;

static void
derived_check_xact(void)
{
	if (derived_lxid != AA_MY_LXID)
	{
		derived_stack = NIL;	/* its memory went with the transaction */
		derived_lxid = AA_MY_LXID;
	}
}

int
aa_capture_derived_depth(void)
{
	derived_check_xact();
	return list_length(derived_stack);
}

/* the first entry pushed since depth; it and those after it are removed */
AuditDerivedTags *
aa_capture_derived_take(int depth)
{
	AuditDerivedTags *d = NULL;

	derived_check_xact();
	if (list_length(derived_stack) > depth)
		d = list_nth(derived_stack, depth);
	while (list_length(derived_stack) > depth)
		derived_stack = list_delete_last(derived_stack);
	return d;
}

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
static AuditDerivedTags *
derived_tags_of(PlannedStmt *stmt, List *tlist, Plan *top,
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
					add_unique(&tags, &ntags, &cap_tags, col->tags[k]);
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

/* CREATE TABLE AS and friends: the new relation's tags, for tags.c */
static void
derived_tags_push(QueryDesc *queryDesc)
{
	AuditDerivedTags *d = NULL;
	MemoryContext old;

	if (queryDesc->plannedstmt->planTree != NULL)
	{
		Plan	   *top = queryDesc->plannedstmt->planTree;

		d = derived_tags_of(queryDesc->plannedstmt, top->targetlist, top,
							command_name(queryDesc), TopTransactionContext);
	}
	derived_check_xact();
	old = MemoryContextSwitchTo(TopTransactionContext);
	derived_stack = lappend(derived_stack, d);
	MemoryContextSwitchTo(old);
}

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

	if ((d = derived_tags_of(stmt, tlist, at, command, cxt)) == NULL)
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

static List *
dml_copies(PlannedStmt *stmt, MemoryContext cxt)
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
		pai->copies = dml_copies(pai->stmt, pai->cb_cxt);
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

	add_unique(&st->columns, &st->n_columns, &st->cap_columns,
			   pstrdup(col->qualname));
	for (i = 0; i < col->ntags; i++)
		add_unique(&st->tags, &st->n_tags, &st->cap_tags,
				   pstrdup(col->tags[i]));
	add_unique(&st->relations, &st->n_relations, &st->cap_relations,
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

			ps->ExecProcNode = aa_stats_exec;
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
		scan_is_tagged(ps->plan, ctx))
	{
		if (ps->instrument == NULL)
		{
			ps->instrument = MemoryContextAllocZero(ctx->cxt, sizeof(Instrumentation));
			ps->ExecProcNode = aa_counting_exec;
		}
		ctx->instr = lappend(ctx->instr, ps->instrument);
	}
	return planstate_tree_walker(ps, collect_scan_instr, (void *) ctx);
}

static int64
tagged_rows_so_far(InflightRecord *ir)
{
	int64		n = 0;
	int			i;

	for (i = 0; i < ir->n_instr; i++)
		n += (int64) (ir->instr[i]->ntuples + ir->instr[i]->tuplecount);
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
			return "REFRESH MATERIALIZED VIEW";
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
			add_unique(&rec->columns, &rec->n_columns, &cap_col,
					   pstrdup(col->qualname));
			for (i = 0; i < col->ntags; i++)
				add_unique(&rec->tags, &rec->n_tags, &cap_tag,
						   pstrdup(col->tags[i]));
			output = t.unknown ||
				bms_is_member(ATTBIT(attno), t.out[rti]) ||
				bms_is_member(ATTBIT(0), t.out[rti]);
			if (!output)
				add_unique(&rec->predicate_columns, &rec->n_predicate,
						   &cap_pred, pstrdup(col->qualname));
		}
		if (any)
			add_unique(&rec->relations, &rec->n_relations, &cap_rel,
					   pstrdup(tags->qualname));
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
 * Does scan node plan read tagged columns of its relation?  Answers are kept per
 * plan_node_id in the plan's entry, so repeated executions do no hash
 * lookups.  (Run-time partition pruning can leave different scan nodes
 * from one execution to the next, hence per node, on demand.)
 */
static bool
scan_is_tagged(Plan *plan, InstrCtx *ctx)
{
	PlanAuditInfo *pai = ctx->pai;
	Index		scanrelid = ((Scan *) plan)->scanrelid;
	bool		tagged = false;

	if (pai && bms_is_member(plan->plan_node_id, pai->scan_checked))
		return bms_is_member(plan->plan_node_id, pai->scan_tagged);
	if (scanrelid >= 1 && scanrelid <= list_length(ctx->stmt->rtable))
	{
		RangeTblEntry *rte = rt_fetch(scanrelid, ctx->stmt->rtable);

		AuditRelTags *rt;

		tagged = rte->rtekind == RTE_RELATION &&
			(rt = aa_tags_lookup(rte->relid)) != NULL &&
			rte_reads_tagged(ctx->stmt, rte, rt);
	}
	if (pai)
	{
		MemoryContext old = MemoryContextSwitchTo(pai->cb_cxt);

		pai->scan_checked = bms_add_member(pai->scan_checked,
										   plan->plan_node_id);
		if (tagged)
			pai->scan_tagged = bms_add_member(pai->scan_tagged,
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
	if (ir->rec.n_columns == 0 && (ir->stats == NULL || ir->stats->rows == 0) &&
		(ir->stats_scanned == NULL || ir->stats_scanned->rows == 0))
	{
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
		if (error)
			ir->rec.rows = (MyBEEntry &&
							MyBEEntry->st_progress_command == PROGRESS_COMMAND_COPY &&
							MyBEEntry->st_progress_command_target == ir->copy_relid) ?
				MyBEEntry->st_progress_param[PROGRESS_COPY_TUPLES_PROCESSED] : 0;
		ir->rec.tagged_rows = ir->rec.rows;
	}
	else
		ir->rec.tagged_rows = tagged_rows_so_far(ir);
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
	ir->rec.nesting_level = nesting_level;
	ir->cb.func = inflight_reset_callback;
	ir->cb.arg = ir;
	MemoryContextRegisterResetCallback(cxt, &ir->cb);
	ir->next = inflight;
	inflight = ir;
	return ir;
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
static void
aa_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	PlanAuditInfo *pai = NULL;

	if (refresh_level == nesting_level &&
		queryDesc->dest->mydest == DestTransientRel)
		refresh_query_seen = true;
	if (capture_wanted() && (eflags & EXEC_FLAG_EXPLAIN_ONLY) == 0 &&
		!(refresh_level == nesting_level && refresh_query_seen &&
		  queryDesc->dest->mydest != DestTransientRel) &&
		queryDesc->plannedstmt != NULL && aa_tags_active())
	{
		pai = plan_info_get(queryDesc->plannedstmt);

		/*
		 * Rows read by parallel workers reach the leader only through
		 * instrumentation; serial plans count their tagged scans' rows with
		 * aa_counting_exec() instead.
		 */
		if (!pai->audit)
			pai = NULL;
		else if (queryDesc->plannedstmt->parallelModeNeeded)
			queryDesc->instrument_options |= INSTRUMENT_ROWS;
	}

	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);

	/*
	 * pai stays valid: the plan is in use by this very call.  Its lists are
	 * used if derived under the current tags; otherwise (first sighting, or a
	 * tag change processed while the executor opened relations) the record is
	 * built from the plan here, as for a plan seen once.
	 */
	if (pai && queryDesc->estate)
	{
		MemoryContext cxt = queryDesc->estate->es_query_cxt;
		InstrCtx	ictx;
		InflightRecord *ir;
		ListCell   *lc;
		ListCell   *lc2;
		int			i;
		AuditRecord rec;
		Bitmapset  *stats_nodes;

		if (pai->tags_epoch == aa_tags_epoch())
		{
			if (!pai->has_record)
				return;
			ir = inflight_new(cxt, queryDesc->estate);
			plan_info_copy_lists(pai, &ir->rec, cxt);
			stats_nodes = pai->stats_nodes;
		}
		else
		{
			memset(&rec, 0, sizeof(rec));
			if (!build_plan_record(queryDesc->plannedstmt, &rec, cxt,
								   &stats_nodes))
				return;
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
		ir->rec.command = command_name(queryDesc);
		if (queryDesc->dest->mydest == DestIntoRel ||
			queryDesc->dest->mydest == DestTransientRel)
			derived_tags_push(queryDesc);
		if (queryDesc->operation == CMD_INSERT ||
			queryDesc->operation == CMD_UPDATE ||
			queryDesc->operation == CMD_MERGE ||
			queryDesc->plannedstmt->hasModifyingCTE)
			ir->copies = plan_copies(pai, cxt);
		ir->rec.query_id = (int64) queryDesc->plannedstmt->queryId;
		if (ir->rec.query_id == 0)
			ir->rec.query_id = (int64) pgstat_get_my_query_id();
		ir->rec.query = statement_text(queryDesc->sourceText,
									   queryDesc->plannedstmt->stmt_location,
									   queryDesc->plannedstmt->stmt_len, cxt);
		fill_identity(&ir->rec, cxt);

		memset(&ictx, 0, sizeof(ictx));
		ictx.stmt = queryDesc->plannedstmt;
		ictx.pai = pai;
		ictx.cxt = cxt;
		ictx.stats_nodes = stats_nodes;
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
					continue;	/* not found (cannot happen): the scan counts */
				found->ExecProcNode = aa_stats_top_exec;
				ir->stats->top[i] = ss;
				ir->stats->top_at[i] = found;
				i++;
			}
			ir->stats->n_top = i;
		}
		ir->n_instr = list_length(ictx.instr);
		ir->instr = MemoryContextAlloc(cxt, sizeof(Instrumentation *) *
									   Max(ir->n_instr, 1));
		i = 0;
		foreach(lc, ictx.instr)
			ir->instr[i++] = lfirst(lc);
	}
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
 * ExecutorRun hook: es_processed restarts at 0 in every run (cursors,
 * row-limited portals, plpgsql loops), so add it after each call, errors
 * included.
 */
static void
aa_ExecutorRun(AA_EXECUTOR_RUN_ARGS)
{
	InflightRecord *ir = inflight ? inflight_find(queryDesc->estate) : NULL;
	bool		rerun = false;

	if (ir)
	{
		ir->in_run = true;
		/* see add_run_rows: the active portal is the cursor being held */
		rerun = ir->runs++ > 0 && ActivePortal != NULL &&
			ActivePortal->holdStore != NULL &&
			(ActivePortal->cursorOptions & CURSOR_OPT_HOLD) != 0 &&
			queryDesc->dest->mydest == DestTuplestore;
		if (ir->runs == 1 && intent_wanted(queryDesc, count))
			ir->intent = aa_queue_intent_open(&ir->rec);
	}
	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(AA_EXECUTOR_RUN_PASS);
		else
			standard_ExecutorRun(AA_EXECUTOR_RUN_PASS);
	}
	PG_CATCH();
	{
		nesting_level--;
		if (ir && ir->estate)
		{
			add_run_rows(ir, queryDesc, rerun);
			ir->in_run = false;
			ir->failed = true;
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
	if (ir)
	{
		add_run_rows(ir, queryDesc, rerun);
		ir->in_run = false;
		if (ir->intent)
			aa_queue_intent_rows(ir->rec.rows, tagged_rows_so_far(ir));
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

	nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		nesting_level--;
		if (ir && ir->estate)
			ir->failed = true;
		PG_RE_THROW();
	}
	PG_END_TRY();
	nesting_level--;
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
		add_unique(&ir->rec.columns, &ir->rec.n_columns, &cap_col,
				   pstrdup(col->qualname));
		for (i = 0; i < col->ntags; i++)
			add_unique(&ir->rec.tags, &ir->rec.n_tags, &cap_tag,
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
	add_unique(&ir->rec.relations, &ir->rec.n_relations, &cap_rel,
			   pstrdup(tags->qualname));
	ir->rec.command = "COPY";
	ir->rec.query_id = (int64) pgstat_get_my_query_id();
	ir->rec.query = statement_text(queryString, pstmt->stmt_location,
								   pstmt->stmt_len, cxt);
	fill_identity(&ir->rec, cxt);
	MemoryContextSwitchTo(old);
	ir->in_run = true;
	return ir;
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

	if (IsA(parsetree, CopyStmt) && capture_wanted())
	{
		ir = copy_to_record(pstmt, (CopyStmt *) parsetree, queryString);
		if (ir)
			ir->intent = aa_queue_intent_open(&ir->rec);
	}

	if (nests)
		nesting_level++;
	if (IsA(parsetree, CreateTableAsStmt))
		creating_matview =
			((CreateTableAsStmt *) parsetree)->objtype == OBJECT_MATVIEW;
	else
		creating_matview = false;
	if (IsA(parsetree, RefreshMatViewStmt) &&
		((RefreshMatViewStmt *) parsetree)->concurrent)
	{
		refresh_level = nesting_level;
		refresh_query_seen = false;
	}
	PG_TRY();
	{
		aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
									  readOnlyTree, context, params, queryEnv,
									  dest, qc);
	}
	PG_CATCH();
	{
		creating_matview = save_matview;
		refresh_level = save_refresh_level;
		refresh_query_seen = save_refresh_seen;
		if (nests)
			nesting_level--;
		if (ir && ir->cb.arg)
		{
			ir->in_run = false;
			inflight_finish(ir, true);
		}
		PG_RE_THROW();
	}
	PG_END_TRY();
	creating_matview = save_matview;
	refresh_level = save_refresh_level;
	refresh_query_seen = save_refresh_seen;
	if (nests)
		nesting_level--;

	if (ir && ir->cb.arg)
	{
		ir->in_run = false;
		ir->rec.rows = qc ? (int64) qc->nprocessed : 0;
		inflight_finish(ir, false);
	}

	record_setting_change(parsetree);
	record_publication_change(parsetree);
}

/*
 * The column names of a pg_publication_tables row's attnames: every column
 * the publication streams (PostgreSQL lists them all when it has no column
 * list; NULL only for a table without columns).
 */
static Datum *
published_names(Datum names, bool isnull, int *n)
{
	Datum	   *elems = NULL;

	*n = 0;
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(names), NAMEOID, NAMEDATALEN,
						  false, TYPALIGN_CHAR, &elems, NULL, n);
	return elems;
}

/* detail of a publication event: {"publication": ..., "why": ...} */
static char *
publication_detail(const char *pubname, const char *why)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"publication\": ");
	escape_json(&detail, pubname);
	if (why)
	{
		appendStringInfoString(&detail, ", \"why\": ");
		escape_json(&detail, why);
	}
	appendStringInfoChar(&detail, '}');
	return detail.data;
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
	if (!capture_wanted() || !aa_tags_active())
		return;

	detail = publication_detail(pubname, NULL);

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
		elems = published_names(names, isnull, &nelems);
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
			add_unique(&cols, &ncols, &cap_cols, col->qualname);
			for (k = 0; k < col->ntags; k++)
				add_unique(&tags, &ntags, &cap_tags, col->tags[k]);
		}
		if (ncols > 0)
			capture_event_lists(command, &rt->qualname, 1, cols, ncols,
								tags, ntags, detail);
	}
	SPI_finish();
}

/*
 * A column tagged while its table is published (by SECURITY LABEL, or as a
 * copy of tagged data: a table made or filled under FOR ALL TABLES or
 * TABLES IN SCHEMA) starts a standing export of tagged data just as CREATE
 * PUBLICATION does: record one PUBLICATION event per publication that
 * streams it, with the tag it takes.  subid 0 tags the whole relation.
 * Called by tags.c as the label is set.
 */
void
aa_capture_tag_published(Oid relid, int32 subid, const char *label)
{
	Oid			argtypes[2] = {NAMEOID, NAMEOID};
	Datum		args[2];
	char	   *nsp;
	char	   *rel;
	const char *relname;
	char	   *attname = NULL;
	int			ret;
	uint64		i;

	if (!capture_wanted() || label == NULL ||
		(nsp = get_namespace_name(get_rel_namespace(relid))) == NULL ||
		(rel = get_rel_name(relid)) == NULL)
		return;
	if (subid > 0 && (attname = get_attname(relid, (AttrNumber) subid, true)) == NULL)
		return;
	relname = quote_qualified_identifier(nsp, rel);

	SPI_connect();
	args[0] = DirectFunctionCall1(namein, CStringGetDatum(nsp));
	args[1] = DirectFunctionCall1(namein, CStringGetDatum(rel));
	ret = SPI_execute_with_args("SELECT t.pubname::text, t.attnames "
								"FROM pg_catalog.pg_publication_tables t "
								"WHERE t.schemaname = $1 AND t.tablename = $2 "
								"ORDER BY 1",
								2, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the publications of \"%s\"", relname);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *pubname = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		Datum		names = SPI_getbinval(tup, desc, 2, &isnull);
		int			nelems;
		Datum	   *elems = published_names(names, isnull, &nelems);
		const char **cols = NULL;
		int			ncols = 0,
					cap_cols = 0;
		int			k;

		for (k = 0; k < nelems; k++)
		{
			const char *name = NameStr(*DatumGetName(elems[k]));

			if (attname == NULL || strcmp(name, attname) == 0)
				add_unique(&cols, &ncols, &cap_cols,
						   psprintf("%s.%s", relname, quote_identifier(name)));
		}
		if (ncols == 0)
			continue;
		capture_event_lists("PUBLICATION", &relname, 1, cols, ncols, &label, 1,
							publication_detail(pubname, "tagged while published"));
	}
	SPI_finish();
}

/*
 * Turning auditing off, or changing how it works, is itself an audit
 * record: SET, RESET and ALTER SYSTEM of an access_audit.* setting (except
 * access_audit.actor, which applications set all the time, and
 * access_audit.maintenance, which the guard records).  Runs after the
 * statement succeeded, so only changes that happened are recorded.
 */
static void
record_setting_change(Node *parsetree)
{
	VariableSetStmt *vs = NULL;
	const char *how;
	char	   *value;
	StringInfoData buf;

	if (IsA(parsetree, VariableSetStmt))
	{
		vs = (VariableSetStmt *) parsetree;
		how = vs->is_local ? "SET LOCAL" : "SET";
	}
	else if (IsA(parsetree, AlterSystemStmt))
	{
		vs = ((AlterSystemStmt *) parsetree)->setstmt;
		how = "ALTER SYSTEM";
	}
	else
		return;
	if (vs == NULL || vs->name == NULL ||
		strncmp(vs->name, "access_audit.", 13) != 0 ||
		strcmp(vs->name, "access_audit.actor") == 0 ||
		strcmp(vs->name, "access_audit.maintenance") == 0 ||
		!IsTransactionState() ||
		!OidIsValid(get_extension_oid(AA_NAME, true)))
		return;

	value = ExtractSetVariableArgs(vs);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"setting\": ");
	escape_json(&buf, vs->name);
	appendStringInfoString(&buf, ", \"how\": ");
	escape_json(&buf, how);
	appendStringInfoString(&buf, ", \"value\": ");
	if (value && vs->kind == VAR_SET_VALUE)
		escape_json(&buf, value);
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoChar(&buf, '}');
	aa_capture_event("SET", NULL, NULL, NULL, buf.data);
}

/*
 * Record a non-read event (a tag change, a maintenance action) as an
 * audit record of this statement.  Called inside a transaction.
 */
void
aa_capture_event(const char *command, const char *relation,
				 const char *column, const char *tag, const char *detail)
{
	capture_event_lists(command, &relation, relation ? 1 : 0,
						&column, column ? 1 : 0, &tag, tag ? 1 : 0, detail);
}

/* an event record with lists of relations, columns and tags */
static void
capture_event_lists(const char *command, const char **rels, int nrels,
					const char **cols, int ncols, const char **tags,
					int ntags, const char *detail)
{
	AuditRecord rec;
	MemoryContext cxt = CurrentMemoryContext;

	if (capture_disabled || !aa_queue_ready() || MyDatabaseId == InvalidOid)
		return;
	/* only where there is a log to take it (SET ... maintenance anywhere) */
	if (IsTransactionState() && !OidIsValid(get_extension_oid(AA_NAME, true)))
		return;
	memset(&rec, 0, sizeof(rec));
	rec.kind = AA_KIND_READ;
	rec.ts = GetCurrentStatementStartTimestamp();
	/* a refused action is recorded as a failed statement */
	if (strcmp(command, "REFUSED") == 0)
		rec.outcome = AA_OUTCOME_ERROR;
	rec.nesting_level = nesting_level > 0 ? nesting_level - 1 : 0;
	rec.command = command;
	rec.query = statement_text(debug_query_string, -1, 0, cxt);
	rec.query_id = (int64) pgstat_get_my_query_id();
	rec.detail = detail;
	rec.relations = rels;
	rec.n_relations = nrels;
	rec.columns = cols;
	rec.n_columns = ncols;
	rec.tags = tags;
	rec.n_tags = ntags;
	fill_identity(&rec, cxt);
	aa_queue_push(&rec);
}
