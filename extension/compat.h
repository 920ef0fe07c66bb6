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

#include "postgres.h"

#include "nodes/parsenodes.h"
#include "executor/executor.h"
#include "nodes/plannodes.h"
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
