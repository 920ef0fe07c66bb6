/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Version shims: the only place where PG_VERSION_NUM appears.
 *
 * access_audit targets PostgreSQL 15 and keeps every shape that changes
 * between major versions behind a static inline *_compat wrapper here, so
 * that 16 and 17 can follow by editing this file alone.
 *
 * IDENTIFICATION
 *	  extension/compat.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_COMPAT_H
#define AA_COMPAT_H

#include "access/genam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "storage/proc.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/guc_tables.h"
#if PG_VERSION_NUM >= 160000
#include "utils/relfilenumbermap.h"
#else
#include "utils/relfilenodemap.h"
#endif

#if PG_VERSION_NUM < 150000
#error "access_audit requires PostgreSQL 15 or later"
#endif

/*
 * PostgreSQL internals outside the extension API, kept here so that the
 * list is in one place; any major version may change them, and each is
 * checked on every version the matrix builds:
 *	- statistics/extended_stats_internal.h: statext_mcv_deserialize(), to
 *	  count the values of an extended statistics MCV list a query reads
 *	  (capture.c); no public function reads them.
 *	- replication/worker_internal.h: MySubscription, the subscription a
 *	  logical replication apply worker runs for, which names the source of
 *	  collected rows (remote.c).
 */
#include "replication/worker_internal.h"
#include "statistics/extended_stats_internal.h"

/* Query jumbling (EnableQueryId) moved to nodes/ in PostgreSQL 16. */
#if PG_VERSION_NUM >= 160000
#include "nodes/queryjumble.h"
#else
#include "utils/queryjumble.h"
#endif

/*
 * This backend's index in the PGPROC array, or -1 before it has one.
 * PostgreSQL 17 replaced PGPROC.pgprocno with the MyProcNumber global.
 */
static inline int
aa_my_procno_compat(void)
{
	if (MyProc == NULL)
		return -1;
#if PG_VERSION_NUM >= 170000
	return (int) MyProcNumber;
#else
	return MyProc->pgprocno;
#endif
}

/*
 * The columns a range-table entry reads.  PostgreSQL 16 moved the
 * permission fields from RangeTblEntry into RTEPermissionInfo.
 */
static inline Bitmapset *
aa_rte_selected_cols_compat(PlannedStmt *stmt, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	if (rte->perminfoindex == 0)
		return NULL;
	return ((RTEPermissionInfo *) list_nth(stmt->permInfos,
										   rte->perminfoindex - 1))->selectedCols;
#else
	return rte->selectedCols;
#endif
}

/*
 * The privileges a range-table entry requires; zero for entries the
 * planner added (inheritance children) and view placeholders.
 */
static inline AclMode
aa_rte_required_perms_compat(PlannedStmt *stmt, RangeTblEntry *rte)
{
#if PG_VERSION_NUM >= 160000
	if (rte->perminfoindex == 0)
		return 0;
	return ((RTEPermissionInfo *) list_nth(stmt->permInfos,
										   rte->perminfoindex - 1))->requiredPerms;
#else
	return rte->requiredPerms;
#endif
}

/*
 * Is this range-table entry a view the query reads?  Up to PostgreSQL 15
 * the rewriter leaves the view's own relation entry (the rule's OLD) in
 * the range table; from 16 on the view's entry itself becomes the
 * subquery, keeping the view's relid and relkind.  The target view of an
 * UPDATE or DELETE through an automatically updatable view stays a
 * relation entry on every version.
 */
static inline bool
aa_rte_is_view_compat(RangeTblEntry *rte)
{
	return rte->relkind == RELKIND_VIEW && OidIsValid(rte->relid) &&
		(rte->rtekind == RTE_RELATION || rte->rtekind == RTE_SUBQUERY);
}

/*
 * A function that never returns: PostgreSQL 18 replaced the trailing
 * pg_attribute_noreturn() with pg_noreturn in front of the declaration.
 */
#if PG_VERSION_NUM >= 180000
#define AA_NORETURN pg_noreturn
#else
#define AA_NORETURN pg_attribute_noreturn()
#endif

/* An index scan; PostgreSQL 18 added instrumentation (none here). */
static inline IndexScanDesc
aa_index_beginscan_compat(Relation heap, Relation index, Snapshot snapshot,
						  int nkeys, int norderbys)
{
#if PG_VERSION_NUM >= 180000
	return index_beginscan(heap, index, snapshot, NULL, nkeys, norderbys);
#else
	return index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

/*
 * Run fn instead of a plan node's own ExecProcNode.  PlanState's
 * ExecProcNode is the executor's dispatch pointer, not an extension API:
 * ExecInitNode points it at a first-call wrapper that later installs
 * ExecProcNodeReal (or the instrumentation wrapper).  capture.c replaces it
 * after ExecutorStart, before the first row, to count the rows of tagged
 * scans and statistics reads without the cost of instrumentation; fn calls
 * node->ExecProcNodeReal itself.  Unchanged from 11 to 18.
 */
static inline void
aa_set_exec_proc_node_compat(PlanState *ps, ExecProcNodeMtd fn)
{
	ps->ExecProcNode = fn;
}

/* Does roleid own (or have the privileges of the owner of) relation relid? */
static inline bool
aa_rel_ownercheck_compat(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/*
 * Memory for a GUC check hook's *extra: malloc'd up to 15, and from 16 on
 * guc_malloc'd, since the GUC machinery then frees it with guc_free() (a
 * pfree in its own memory context; a malloc'd block crashes there).  NULL
 * when out of memory.
 */
static inline void *
aa_guc_extra_alloc_compat(size_t size)
{
#if PG_VERSION_NUM >= 160000
	return guc_malloc(LOG, size);
#else
	return malloc(size);
#endif
}

/* roleid's privileges on schema nspid: object_aclcheck() from 16 on */
static inline AclResult
aa_namespace_aclcheck_compat(Oid nspid, Oid roleid, AclMode mode)
{
#if PG_VERSION_NUM >= 160000
	return object_aclcheck(NamespaceRelationId, nspid, roleid, mode);
#else
	return pg_namespace_aclcheck(nspid, roleid, mode);
#endif
}

/* This backend's local transaction id: PostgreSQL 17 moved it into vxid. */
#if PG_VERSION_NUM >= 170000
#define AA_MY_LXID (MyProc->vxid.lxid)
#else
#define AA_MY_LXID (MyProc->lxid)
#endif

/* ExecutorRun lost its execute_once argument in PostgreSQL 18. */
#if PG_VERSION_NUM >= 180000
#define AA_EXECUTOR_RUN_ARGS QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define AA_EXECUTOR_RUN_PASS queryDesc, direction, count
#else
#define AA_EXECUTOR_RUN_ARGS QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define AA_EXECUTOR_RUN_PASS queryDesc, direction, count, execute_once
#endif

/*
 * The i-th entry (1-based) of this backend's snapshot of backend status;
 * PostgreSQL 17 renamed the function.
 */
static inline LocalPgBackendStatus *
aa_local_beentry_compat(int i)
{
#if PG_VERSION_NUM >= 170000
	return pgstat_get_local_beentry_by_index(i);
#else
	return pgstat_fetch_stat_local_beentry(i);
#endif
}

/*
 * The relation of a file number in this database's default tablespace;
 * PostgreSQL 16 renamed relfilenodes relfilenumbers.
 */
static inline Oid
aa_relid_by_file_compat(Oid filenumber)
{
#if PG_VERSION_NUM >= 160000
	return RelidByRelfilenumber(0, (RelFileNumber) filenumber);
#else
	return RelidByRelfilenode(0, filenumber);
#endif
}

/* ExecInsertIndexTuples gained onlySummarizing in PostgreSQL 16. */
static inline List *
aa_insert_index_tuples_compat(ResultRelInfo *rri, TupleTableSlot *slot,
							  EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL,
								 false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

/*
 * Pass a utility statement on to the next ProcessUtility hook, or to
 * PostgreSQL's own.  The hook's argument list changes between major
 * versions (14 added readOnlyTree).
 */
static inline void
aa_next_ProcessUtility_compat(ProcessUtility_hook_type prev, PlannedStmt *pstmt,
							  const char *queryString, bool readOnlyTree,
							  ProcessUtilityContext context, ParamListInfo params,
							  QueryEnvironment *queryEnv, DestReceiver *dest,
							  QueryCompletion *qc)
{
	if (prev)
		prev(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
								params, queryEnv, dest, qc);
}

/*
 * Where the current value of a setting came from (PGC_S_*), or -1 if there
 * is no such setting.  PostgreSQL 16 exports find_option(); before, the
 * table of settings is searched (only on the rare path where a setting
 * changed).
 */
static inline int
aa_guc_source_compat(const char *name)
{
#if PG_VERSION_NUM >= 160000
	struct config_generic *gconf = find_option(name, false, true, DEBUG1);

	return gconf ? (int) gconf->source : -1;
#else
	struct config_generic **vars = get_guc_variables();
	int			n = GetNumConfigOptions();
	int			i;

	for (i = 0; i < n; i++)
		if (pg_strcasecmp(vars[i]->name, name) == 0)
			return (int) vars[i]->source;
	return -1;
#endif
}

#endif							/* AA_COMPAT_H */
