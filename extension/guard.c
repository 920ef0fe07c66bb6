/*-------------------------------------------------------------------------
 *
 * guard.c
 *		Append-only guard of the extension's audit tables.
 *
 * This file owns the refusal of changes to audit data: the hooks that stop
 * INSERT (from anyone but the writer), UPDATE, DELETE, TRUNCATE, ALTER and
 * DROP of the log and its sibling tables by anyone (owners and superusers
 * included) outside maintenance mode, and the records of those refusals and
 * of everything done in maintenance mode.
 *
 * Everything in schema access_audit is guarded, except the rows of
 * access_audit.actor_groups (the admins' peer-group map, ordinary data) and
 * of quotas and quota_exemptions (the admins' quotas, quota.c; their
 * changes are recorded by their triggers).
 * The gates, outermost first:
 *	- ProcessUtility: TRUNCATE, ALTER TABLE/INDEX/VIEW (DISABLE TRIGGER
 *	  included), ALTER FUNCTION, ALTER EXTENSION (UPDATE, ADD, DROP),
 *	  RENAME, SET SCHEMA, OWNER TO, COPY FROM, CREATE TRIGGER/RULE/POLICY/
 *	  INDEX on a guarded relation, CREATE [OR REPLACE] TABLE/VIEW/SEQUENCE/
 *	  FUNCTION in the schema, inheritance from or attachment of a guarded
 *	  table, DROP.  GRANT, COMMENT, SECURITY LABEL, VACUUM, ANALYZE,
 *	  CLUSTER, REINDEX and LOCK pass.  Also records SET
 *	  access_audit.maintenance.
 *	- ExecutorStart: INSERT, UPDATE, DELETE and MERGE whose target is a
 *	  guarded relation, at any nesting level (plpgsql, SPI, CTEs, the
 *	  INSTEAD OF triggers of the log view).
 *	- object_access_hook: OAT_DROP catches drops that no statement names
 *	  (CASCADE, DROP SCHEMA, DROP OWNED, DROP EXTENSION); OAT_TRUNCATE
 *	  catches TRUNCATE ... CASCADE; OAT_POST_ALTER catches ALTERs of guarded
 *	  relations and triggers by routes not listed above (the ALTER is
 *	  rolled back by the error).
 *	- A statement-level trigger on every guarded table, ENABLE ALWAYS (so
 *	  session_replication_role = replica does not silence it), for COPY
 *	  FROM and any route that bypasses the executor hook.
 *
 * Let through: the install and update scripts of the extension itself
 * (creating_extension), the "access_audit writer" background worker (it
 * writes log_data and the dictionaries with the table AM directly, and
 * actor_daily and writer_state with SPI), INSERT into alerts and alert_acks
 * inside the extension's SECURITY DEFINER functions check_exports() and
 * ack() (tracked with fmgr_hook), and a superuser with
 * access_audit.maintenance on.
 *
 * Every refusal is recorded with aa_capture_event() before the error is
 * raised; the record goes to the queue at once and survives the rollback.
 *
 * Ownership: no shared state.  definer_depth, seen_maintenance and the
 * cached schema and extension OIDs are backend-local.
 *
 * IDENTIFICATION
 *	  extension/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attrdef.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_rewrite.h"
#include "catalog/pg_trigger.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "postmaster/bgworker.h"
#include "replication/logicalworker.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "replication/logicalworker.h"

#include "access_audit.h"
#include "capture.h"
#include "compat.h"
#include "guard.h"

PG_FUNCTION_INFO_V1(access_audit_guard_trigger);

/* what may happen to a guarded object */
typedef enum GuardDecision
{
	GUARD_ALLOW,				/* the extension's own machinery */
	GUARD_MAINTENANCE,			/* allowed, and recorded */
	GUARD_REFUSE				/* refused, and recorded */
} GuardDecision;

static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;
static object_access_hook_type prev_object_access_hook = NULL;
static fmgr_hook_type prev_fmgr_hook = NULL;

/* cached OID of schema access_audit, reset by syscache invalidation */
static Oid	guard_nsp = InvalidOid;

/* nesting of check_exports()/ack() calls in this backend */
static int	definer_depth = 0;
static HTAB *definer_cache = NULL;

/* nesting of utility statements that may touch guarded relations */
static int	harmless_utility_depth = 0;

/* value of access_audit.maintenance at the last statement we saw */
static bool seen_maintenance = false;

/* -1 unknown, 0 no, 1 this process is the writer */
static int	is_writer_cached = -1;

static Oid	guard_extension(void);

/*
 * Forget the cached schema OID when a namespace changes.
 */
static void
guard_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	guard_nsp = InvalidOid;
}

/*
 * Forget the cached schema OID when any relation changes: DROP EXTENSION
 * drops tables but leaves no trace in the namespace cache.
 */
static void
guard_relcache_callback(Datum arg, Oid relid)
{
	guard_nsp = InvalidOid;
}

/*
 * Reset the definer depth at transaction end (FHET_ABORT normally does, but
 * a FATAL exit or an error between hook calls must not leave it raised).
 */
static void
guard_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
	{
		definer_depth = 0;
		harmless_utility_depth = 0;
	}
}

/*
 * OID of schema access_audit, or InvalidOid if it does not exist.  Needs a
 * transaction.
 */
static Oid
guard_namespace(void)
{
	if (!OidIsValid(guard_nsp))
	{
		Oid			nsp = get_namespace_oid(AA_SCHEMA, true);

		/*
		 * A schema without the extension is not ours yet: pg_restore creates
		 * the schema and sets its owner before CREATE EXTENSION.
		 */
		if (!OidIsValid(nsp) || !OidIsValid(guard_extension()))
			return InvalidOid;
		guard_nsp = nsp;
	}
	return guard_nsp;
}

/*
 * OID of extension access_audit, or InvalidOid.  Not cached: PostgreSQL 15
 * has no syscache on pg_extension to invalidate it, and the callers are
 * DDL paths only.
 */
static Oid
guard_extension(void)
{
	return get_extension_oid(AA_NAME, true);
}

/*
 * Is this process the access_audit writer?
 */
static bool
guard_is_writer(void)
{
	if (is_writer_cached < 0)
		is_writer_cached = (MyBackendType == B_BG_WORKER &&
							MyBgworkerEntry != NULL &&
							strcmp(MyBgworkerEntry->bgw_type,
								   "access_audit writer") == 0) ? 1 : 0;
	return is_writer_cached == 1;
}

/*
 * May this process insert into relid as a central server's collector?
 * Logical replication workers apply sources' log rows, dictionaries and
 * checkpoints to the tables of the same names, whose ENABLE REPLICA
 * triggers divert them into collected_* (remote.c); nothing else.
 */
static bool
guard_collector_insert(Oid relid)
{
	char	   *name;

	if (!IsLogicalWorker())
		return false;
	name = get_rel_name(relid);
	return name != NULL &&
		(strncmp(name, "collected_", 10) == 0 ||
		 strcmp(name, "log_data") == 0 ||
		 strcmp(name, "sessions") == 0 ||
		 strcmp(name, "shapes") == 0 ||
		 strcmp(name, "strings") == 0 ||
		 strcmp(name, "string_sets") == 0 ||
		 strcmp(name, "chain_checkpoints") == 0);
}

/*
 * Is a relation in schema access_audit?
 */
static bool
relation_guarded(Oid relid)
{
	Oid			nsp;

	if (!OidIsValid(relid))
		return false;
	nsp = guard_namespace();
	return OidIsValid(nsp) && get_rel_namespace(relid) == nsp;
}

/*
 * Are the rows of this guarded relation ordinary data?
 */
static bool
relation_rows_free(Oid relid)
{
	char	   *name = get_rel_name(relid);

	return name != NULL && (strcmp(name, "actor_groups") == 0 ||
							strcmp(name, "quotas") == 0 ||
							strcmp(name, "quota_exemptions") == 0);
}

/*
 * "access_audit.name" of a relation.
 */
static char *
relation_label(Oid relid)
{
	char	   *name = get_rel_name(relid);
	char	   *nsp = get_namespace_name(get_rel_namespace(relid));

	return psprintf("%s.%s", nsp ? nsp : "?", name ? name : "?");
}

/*
 * Is the install or update script of access_audit running?
 */
static bool
guard_creating_extension(void)
{
	return creating_extension && OidIsValid(CurrentExtensionObject) &&
		CurrentExtensionObject == guard_extension();
}

/*
 * May this process change guarded objects now?
 */
static GuardDecision
guard_decide(void)
{
	if (guard_is_writer() || guard_creating_extension())
		return GUARD_ALLOW;
	if (aa_maintenance && superuser())
		return GUARD_MAINTENANCE;
	return GUARD_REFUSE;
}

/*
 * The detail of a guard record: {"action": ..., "object": ...}.
 */
static char *
guard_detail(const char *action, const char *object)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": ");
	escape_json(&buf, action);
	if (object)
	{
		appendStringInfoString(&buf, ", \"object\": ");
		escape_json(&buf, object);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Refuse an action on a guarded object: record it, then raise the error.
 * The record is in the queue before the error, so it outlives the rollback.
 */
static void
guard_refuse(const char *action, const char *object)
{
	aa_capture_event("REFUSED", object, NULL, NULL,
					 guard_detail(action, object));
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("%s on \"%s\" is not allowed", action, object),
			errdetail("The audit data of access_audit is append-only, for owners and superusers too; this attempt has been recorded."),
			errhint("A superuser may SET access_audit.maintenance = on for retention and repairs; everything done in maintenance mode is recorded."));
}

/*
 * Decide about an action on a guarded object: refuse it, record it as
 * maintenance, or let it pass.
 */
static void
guard_check(const char *action, const char *object)
{
	switch (guard_decide())
	{
		case GUARD_ALLOW:
			break;
		case GUARD_MAINTENANCE:
			aa_capture_event("MAINTENANCE", object, NULL, NULL,
							 guard_detail(action, object));
			break;
		case GUARD_REFUSE:
			guard_refuse(action, object);
			break;
	}
}

/*
 * For C code that writes guarded tables with the table AM, where no hook
 * or trigger looks (the dictionary functions behind the log view's
 * maintenance triggers): refuse, and record, unless the writer, the
 * install script or maintenance mode is at work.  The enclosing statement
 * records maintenance mode itself, so nothing is recorded when allowed.
 */
void
aa_guard_check_direct_write(const char *action, const char *object)
{
	if (guard_decide() == GUARD_REFUSE)
		guard_refuse(action, object);
}

/*
 * Record switching maintenance mode on or off, however it happened (SET,
 * set_config(), a function's SET clause, RESET, the end of a transaction,
 * a configuration file): noticed at the next statement.
 */
static void
guard_note_maintenance(void)
{
	if (aa_maintenance == seen_maintenance || guard_is_writer() ||
		!IsTransactionState())
		return;
	seen_maintenance = aa_maintenance;
	aa_capture_event("MAINTENANCE", NULL, NULL, NULL,
					 guard_detail(aa_maintenance ? "maintenance on" :
								  "maintenance off", NULL));
}

/*
 * Inside the extension's own writing functions: check_exports() and ack()
 * append alerts and acknowledgements; collect_rollup() adds collected
 * records to actor_daily and moves collect_progress (INSERT .. ON
 * CONFLICT DO UPDATE).
 */
static bool
guard_definer_may_write(const char *name, const char *action)
{
	if (name == NULL)
		return false;
	if (strcmp(action, "INSERT") == 0 &&
		(strcmp(name, "alerts") == 0 || strcmp(name, "alert_acks") == 0))
		return true;
	return (strcmp(action, "INSERT") == 0 || strcmp(action, "UPDATE") == 0) &&
		(strcmp(name, "actor_daily") == 0 ||
		 strcmp(name, "collect_progress") == 0);
}

/*
 * Check the result relations of a plan.
 */
static void
guard_check_plan(PlannedStmt *pstmt)
{
	ListCell   *lc;

	foreach(lc, pstmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), pstmt->rtable);
		const char *action;
		AclMode		perms;

		if (rte->rtekind != RTE_RELATION || !relation_guarded(rte->relid))
			continue;
		if (relation_rows_free(rte->relid))
			continue;
		perms = aa_rte_required_perms_compat(pstmt, rte);
		if (perms & ACL_DELETE)
			action = "DELETE";
		else if (perms & ACL_UPDATE)
			action = "UPDATE";
		else if (perms & ACL_INSERT)
			action = "INSERT";
		else
			action = pstmt->commandType == CMD_DELETE ? "DELETE" :
				pstmt->commandType == CMD_UPDATE ? "UPDATE" :
				pstmt->commandType == CMD_MERGE ? "MERGE" : "INSERT";

		if (definer_depth > 0 &&
			guard_definer_may_write(get_rel_name(rte->relid), action))
			continue;
		if (strcmp(action, "INSERT") == 0 && guard_collector_insert(rte->relid))
			continue;
		guard_check(action, relation_label(rte->relid));
	}
}

/*
 * ExecutorStart hook: refuse writes to guarded relations before any row is
 * touched.
 */
static void
aa_guard_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (!IsParallelWorker())
	{
		guard_note_maintenance();
		if (queryDesc->plannedstmt->resultRelations != NIL &&
			!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
			guard_check_plan(queryDesc->plannedstmt);
	}
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

/*
 * Check a relation named in a utility statement (InvalidOid: not found,
 * the statement reports that itself).
 */
static void
guard_check_rangevar(RangeVar * rv, const char *action)
{
	Oid			relid;

	if (rv == NULL)
		return;
	relid = RangeVarGetRelid(rv, NoLock, true);
	if (relation_guarded(relid))
		guard_check(action, relation_label(relid));
}

/*
 * Check a schema named in a utility statement.
 */
static void
guard_check_schema_name(const char *name, const char *action)
{
	if (name && strcmp(name, AA_SCHEMA) == 0 && OidIsValid(guard_namespace()))
		guard_check(action, AA_SCHEMA);
}

/*
 * Check an object created in a namespace.
 */
static void
guard_check_creation(Oid nsp, const char *action, const char *name)
{
	if (OidIsValid(nsp) && nsp == guard_namespace())
		guard_check(action, psprintf("%s.%s", AA_SCHEMA, name));
}

/*
 * Check a function named with its arguments.
 */
static void
guard_check_func(ObjectType objtype, ObjectWithArgs * func, const char *action)
{
	Oid			fn = LookupFuncWithArgs(objtype, func, true);
	Oid			nsp;

	if (!OidIsValid(fn))
		return;
	nsp = get_func_namespace(fn);
	if (OidIsValid(nsp) && nsp == guard_namespace())
		guard_check(action, psprintf("%s.%s", AA_SCHEMA, get_func_name(fn)));
}

/*
 * Check a generic object (ALTER ... RENAME / SET SCHEMA / OWNER TO of
 * anything that is not a relation).
 */
static void
guard_check_object(ObjectType objtype, Node *object, const char *action)
{
	ObjectAddress addr;
	Relation	rel = NULL;
	Oid			nsp;

	if (object == NULL)
		return;
	switch (objtype)
	{
		case OBJECT_SCHEMA:
			if (IsA(object, String))
				guard_check_schema_name(strVal(object), action);
			return;
		case OBJECT_EXTENSION:
			if (IsA(object, String) && strcmp(strVal(object), AA_NAME) == 0)
				guard_check(action, "extension " AA_NAME);
			return;
		case OBJECT_FUNCTION:
		case OBJECT_PROCEDURE:
		case OBJECT_ROUTINE:
		case OBJECT_AGGREGATE:
			guard_check_func(objtype, castNode(ObjectWithArgs, object), action);
			return;
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
		case OBJECT_COLLATION:
		case OBJECT_CONVERSION:
		case OBJECT_OPERATOR:
		case OBJECT_OPCLASS:
		case OBJECT_OPFAMILY:
		case OBJECT_STATISTIC_EXT:
		case OBJECT_TSCONFIGURATION:
		case OBJECT_TSDICTIONARY:
		case OBJECT_TSPARSER:
		case OBJECT_TSTEMPLATE:
			break;
		default:
			return;
	}
	addr = get_object_address(objtype, object, &rel, AccessShareLock, true);
	if (rel)
		relation_close(rel, NoLock);
	if (!OidIsValid(addr.objectId))
		return;
	nsp = get_object_namespace(&addr);
	if (OidIsValid(nsp) && nsp == guard_namespace())
		guard_check(action, getObjectDescription(&addr, false));
}

/*
 * The relation of a trigger, rule or policy named as (qualified relation
 * name..., object name).
 */
static void
guard_check_relation_of(List *names, const char *action)
{
	if (list_length(names) < 2)
		return;
	guard_check_rangevar(makeRangeVarFromNameList(list_truncate(list_copy(names),
																list_length(names) - 1)),
						 action);
}

/*
 * DROP: name the refused object clearly; the object access hook catches
 * whatever the drop would cascade to.
 */
static void
guard_check_drop(DropStmt * stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->objects)
	{
		Node	   *obj = lfirst(lc);

		switch (stmt->removeType)
		{
			case OBJECT_TABLE:
			case OBJECT_VIEW:
			case OBJECT_INDEX:
			case OBJECT_SEQUENCE:
			case OBJECT_MATVIEW:
			case OBJECT_FOREIGN_TABLE:
				guard_check_rangevar(makeRangeVarFromNameList(castNode(List, obj)),
									 "DROP");
				break;
			case OBJECT_TRIGGER:
			case OBJECT_RULE:
			case OBJECT_POLICY:
				guard_check_relation_of(castNode(List, obj), "DROP");
				break;
			case OBJECT_SCHEMA:
			case OBJECT_EXTENSION:
				guard_check_object(stmt->removeType, obj,
								   stmt->removeType == OBJECT_EXTENSION ?
								   "DROP EXTENSION" : "DROP SCHEMA");
				break;
			default:
				guard_check_object(stmt->removeType, obj, "DROP");
				break;
		}
	}
}

/*
 * ALTER TABLE and friends.  The statement's relation is checked, and so are
 * relations that a subcommand ties to it (INHERIT, ATTACH PARTITION).
 */
static void
guard_check_alter_table(AlterTableStmt * stmt)
{
	ListCell   *lc;
	const char *action = "ALTER";

	foreach(lc, stmt->cmds)
	{
		AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

		switch (cmd->subtype)
		{
			case AT_DisableTrig:
			case AT_DisableTrigAll:
			case AT_DisableTrigUser:
				action = "DISABLE TRIGGER";
				break;
			case AT_ChangeOwner:
				action = "OWNER TO";
				break;
			case AT_AddInherit:
			case AT_DropInherit:
				if (cmd->def && IsA(cmd->def, RangeVar))
					guard_check_rangevar((RangeVar *) cmd->def, "INHERIT");
				break;
			case AT_AttachPartition:
			case AT_DetachPartition:
				if (cmd->def && IsA(cmd->def, PartitionCmd))
					guard_check_rangevar(((PartitionCmd *) cmd->def)->name,
										 "ATTACH PARTITION");
				break;
			default:
				break;
		}
	}
	guard_check_rangevar(stmt->relation, action);
}

/*
 * CREATE TABLE / FOREIGN TABLE: not in the schema, not inheriting from or
 * a partition of a guarded table.
 */
static void
guard_check_create(CreateStmt * stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->inhRelations)
		guard_check_rangevar(lfirst_node(RangeVar, lc), "INHERIT");
	if (stmt->relation->relpersistence != RELPERSISTENCE_TEMP)
		guard_check_creation(RangeVarGetCreationNamespace(stmt->relation),
							 "CREATE", stmt->relation->relname);
}

/*
 * The utility gate.  Returns true if the statement is harmless to guarded
 * relations although it touches them (GRANT, VACUUM...), so that the
 * post-alter catch-all lets its catalog updates pass.
 */
static bool
guard_check_utility(Node *parsetree)
{
	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			{
				ListCell   *lc;

				foreach(lc, ((TruncateStmt *) parsetree)->relations)
					guard_check_rangevar(lfirst_node(RangeVar, lc), "TRUNCATE");
			}
			break;
		case T_AlterTableStmt:
			guard_check_alter_table((AlterTableStmt *) parsetree);
			break;
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType == OBJECT_SCHEMA)
					guard_check_schema_name(stmt->subname, "RENAME");
				else if (stmt->relation)
					guard_check_rangevar(stmt->relation, "RENAME");
				else
					guard_check_object(stmt->renameType, stmt->object, "RENAME");
			}
			break;
		case T_AlterObjectSchemaStmt:
			{
				AlterObjectSchemaStmt *stmt = (AlterObjectSchemaStmt *) parsetree;

				if (stmt->relation)
					guard_check_rangevar(stmt->relation, "SET SCHEMA");
				else
					guard_check_object(stmt->objectType, stmt->object,
									   "SET SCHEMA");
				guard_check_schema_name(stmt->newschema, "SET SCHEMA");
			}
			break;
		case T_AlterOwnerStmt:
			{
				AlterOwnerStmt *stmt = (AlterOwnerStmt *) parsetree;

				if (stmt->relation)
					guard_check_rangevar(stmt->relation, "OWNER TO");
				else
					guard_check_object(stmt->objectType, stmt->object,
									   "OWNER TO");
			}
			break;
		case T_AlterFunctionStmt:
			guard_check_func(((AlterFunctionStmt *) parsetree)->objtype,
							 ((AlterFunctionStmt *) parsetree)->func, "ALTER");
			break;
		case T_CreateFunctionStmt:
			{
				CreateFunctionStmt *stmt = (CreateFunctionStmt *) parsetree;
				char	   *name;
				Oid			nsp;

				nsp = QualifiedNameGetCreationNamespace(stmt->funcname, &name);
				guard_check_creation(nsp, "CREATE FUNCTION", name);
			}
			break;
		case T_ViewStmt:
			{
				ViewStmt   *stmt = (ViewStmt *) parsetree;

				if (stmt->view->relpersistence != RELPERSISTENCE_TEMP)
					guard_check_creation(RangeVarGetCreationNamespace(stmt->view),
										 "CREATE VIEW", stmt->view->relname);
			}
			break;
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			guard_check_create((CreateStmt *) parsetree);
			break;
		case T_CreateSeqStmt:
			{
				CreateSeqStmt *stmt = (CreateSeqStmt *) parsetree;

				if (stmt->sequence->relpersistence != RELPERSISTENCE_TEMP)
					guard_check_creation(RangeVarGetCreationNamespace(stmt->sequence),
										 "CREATE SEQUENCE", stmt->sequence->relname);
			}
			break;
		case T_IndexStmt:
			guard_check_rangevar(((IndexStmt *) parsetree)->relation,
								 "CREATE INDEX");
			break;
		case T_CreateTrigStmt:
			guard_check_rangevar(((CreateTrigStmt *) parsetree)->relation,
								 "CREATE TRIGGER");
			break;
		case T_RuleStmt:
			guard_check_rangevar(((RuleStmt *) parsetree)->relation,
								 "CREATE RULE");
			break;
		case T_CreatePolicyStmt:
			guard_check_rangevar(((CreatePolicyStmt *) parsetree)->table,
								 "CREATE POLICY");
			break;
		case T_AlterPolicyStmt:
			guard_check_rangevar(((AlterPolicyStmt *) parsetree)->table,
								 "ALTER POLICY");
			break;
		case T_CopyStmt:
			{
				CopyStmt   *stmt = (CopyStmt *) parsetree;

				if (stmt->is_from && stmt->relation)
				{
					Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);

					if (relation_guarded(relid) && !relation_rows_free(relid))
						guard_check("COPY FROM", relation_label(relid));
				}
			}
			break;
		case T_AlterExtensionContentsStmt:
			if (strcmp(((AlterExtensionContentsStmt *) parsetree)->extname,
					   AA_NAME) == 0)
				guard_check("ALTER EXTENSION", "extension " AA_NAME);
			break;
		case T_AlterExtensionStmt:
			if (strcmp(((AlterExtensionStmt *) parsetree)->extname,
					   AA_NAME) == 0)
				guard_check("ALTER EXTENSION", "extension " AA_NAME);
			break;
		case T_DropStmt:
			guard_check_drop((DropStmt *) parsetree);
			break;
		case T_GrantStmt:
		case T_CommentStmt:
		case T_SecLabelStmt:
		case T_VacuumStmt:
		case T_ReindexStmt:
		case T_ClusterStmt:
		case T_LockStmt:
			return true;
		default:
			break;
	}
	return false;
}

/*
 * ProcessUtility hook: the main gate for DDL on guarded objects, and the
 * record of SET access_audit.maintenance.
 */
static void
aa_guard_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *parsetree = pstmt->utilityStmt;
	bool		harmless = false;
	bool		sets_maintenance = false;

	if (IsTransactionState() && !IsParallelWorker())
	{
		guard_note_maintenance();
		harmless = guard_check_utility(parsetree);
	}
	if (IsA(parsetree, VariableSetStmt))
	{
		VariableSetStmt *stmt = (VariableSetStmt *) parsetree;

		sets_maintenance = stmt->name &&
			pg_strcasecmp(stmt->name, "access_audit.maintenance") == 0;
	}

	if (harmless)
		harmless_utility_depth++;
	PG_TRY();
	{
		aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
									  readOnlyTree, context, params, queryEnv,
									  dest, qc);
	}
	PG_FINALLY();
	{
		if (harmless)
			harmless_utility_depth--;
	}
	PG_END_TRY();

	/* the statement text says how; the detail says what it is now */
	if (sets_maintenance && IsTransactionState() && !guard_is_writer())
	{
		seen_maintenance = aa_maintenance;
		aa_capture_event("MAINTENANCE", NULL, NULL, NULL,
						 guard_detail(aa_maintenance ? "maintenance on" :
									  "maintenance off", NULL));
	}
}

/*
 * The relation a trigger, rule, policy or column default belongs to.
 */
static Oid
owning_relation(Oid classId, Oid objectId)
{
	Relation	catalog;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	AttrNumber	oidcol;
	AttrNumber	relcol;
	Oid			indexid;
	Oid			relid = InvalidOid;

	switch (classId)
	{
		case TriggerRelationId:
			oidcol = Anum_pg_trigger_oid;
			relcol = Anum_pg_trigger_tgrelid;
			indexid = TriggerOidIndexId;
			break;
		case RewriteRelationId:
			oidcol = Anum_pg_rewrite_oid;
			relcol = Anum_pg_rewrite_ev_class;
			indexid = RewriteOidIndexId;
			break;
		case PolicyRelationId:
			oidcol = Anum_pg_policy_oid;
			relcol = Anum_pg_policy_polrelid;
			indexid = PolicyOidIndexId;
			break;
		case AttrDefaultRelationId:
			oidcol = Anum_pg_attrdef_oid;
			relcol = Anum_pg_attrdef_adrelid;
			indexid = AttrDefaultOidIndexId;
			break;
		default:
			return InvalidOid;
	}
	catalog = table_open(classId, AccessShareLock);
	ScanKeyInit(&key, oidcol, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(objectId));
	scan = systable_beginscan(catalog, indexid, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, relcol, RelationGetDescr(catalog),
									 &isnull);

		if (!isnull)
			relid = DatumGetObjectId(d);

		/*
		 * The foreign-key triggers a referencing user table puts on a guarded
		 * table go with that table's constraint: not ours.
		 */
		if (classId == TriggerRelationId &&
			((Form_pg_trigger) GETSTRUCT(tup))->tgisinternal)
			relid = InvalidOid;
	}
	systable_endscan(scan);
	table_close(catalog, AccessShareLock);
	return relid;
}

/*
 * Does an object belong to the guarded set: the extension, its schema,
 * anything in the schema, or a trigger, rule, policy or default of a
 * relation in it?  Returns its description, or NULL.
 */
static char *
guarded_object(Oid classId, Oid objectId, int subId)
{
	ObjectAddress addr;
	Oid			nsp = guard_namespace();
	Oid			relid;

	if (!OidIsValid(nsp))
		return NULL;
	switch (classId)
	{
		case DatabaseRelationId:
			return NULL;		/* DROP DATABASE must work */
		case ExtensionRelationId:
			return objectId == guard_extension() ? "extension " AA_NAME : NULL;
		case NamespaceRelationId:
			return objectId == nsp ? "schema " AA_SCHEMA : NULL;
		case RelationRelationId:
			return relation_guarded(objectId) ? relation_label(objectId) : NULL;
		case TriggerRelationId:
		case RewriteRelationId:
		case PolicyRelationId:
		case AttrDefaultRelationId:
			relid = owning_relation(classId, objectId);
			if (relid == InvalidOid)	/* internal trigger, see there */
				return NULL;
			return relation_guarded(relid) ? relation_label(relid) : NULL;
		default:
			break;
	}
	addr.classId = classId;
	addr.objectId = objectId;
	addr.objectSubId = subId;
	if (!is_objectclass_supported(classId) ||
		get_object_attnum_namespace(classId) == InvalidAttrNumber)
		return NULL;
	if (get_object_namespace(&addr) != nsp)
		return NULL;
	return getObjectDescription(&addr, true);
}

/*
 * object_access_hook: the catch-all for drops, truncations and alters that
 * reach guarded objects by a route the utility gate does not name.
 * Maintenance mode is recorded by the statement that started it, so here it
 * only passes.
 */
static void
aa_guard_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					   int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);

	if (!IsTransactionState() || IsParallelWorker())
		return;
	switch (access)
	{
		case OAT_DROP:
			{
				ObjectAccessDrop *drop = (ObjectAccessDrop *) arg;
				char	   *what;

				/* transient heaps of CLUSTER/VACUUM FULL, old indexes... */
				if (drop && (drop->dropflags & PERFORM_DELETION_INTERNAL))
					return;
				if (guard_decide() != GUARD_REFUSE)
					return;
				what = guarded_object(classId, objectId, subId);
				if (what)
					guard_refuse("DROP", what);
			}
			break;
		case OAT_TRUNCATE:
			if (relation_guarded(objectId) && guard_decide() == GUARD_REFUSE)
				guard_refuse("TRUNCATE", relation_label(objectId));
			break;
		case OAT_POST_ALTER:
			{
				ObjectAccessPostAlter *pa = (ObjectAccessPostAlter *) arg;
				char	   *what;

				if (harmless_utility_depth > 0 || (pa && pa->is_internal))
					return;
				if (classId != RelationRelationId &&
					classId != TriggerRelationId &&
					classId != NamespaceRelationId &&
					classId != ExtensionRelationId)
					return;
				if (guard_decide() != GUARD_REFUSE)
					return;
				what = guarded_object(classId, objectId, subId);
				if (what)
					guard_refuse("ALTER", what);
			}
			break;
		default:
			break;
	}
}

/*
 * Is a function one of the extension's alert writers, check_exports() or
 * ack()?  Verdicts are cached per backend by OID (dropped when pg_proc
 * changes), so that the end and abort events need no catalog access.
 */
static bool
guard_alert_function(Oid fn, bool lookup)
{
	bool		found;
	bool	   *entry;

	if (definer_cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(Oid) + sizeof(bool);
		definer_cache = hash_create("access_audit guard functions", 64, &ctl,
									HASH_ELEM | HASH_BLOBS);
	}
	entry = hash_search(definer_cache, &fn, HASH_FIND, &found);
	if (found)
		return *(bool *) ((char *) entry + sizeof(Oid));
	if (!lookup)
		return false;
	{
		char	   *name = get_func_name(fn);
		bool		ours;
		Oid			ext = guard_extension();

		ours = name != NULL &&
			(strcmp(name, "check_exports") == 0 || strcmp(name, "ack") == 0 ||
			 strcmp(name, "collect_rollup") == 0) &&
			get_func_namespace(fn) == guard_namespace() &&
			OidIsValid(ext) &&
			getExtensionOfObject(ProcedureRelationId, fn) == ext;
		entry = hash_search(definer_cache, &fn, HASH_ENTER, &found);
		*(bool *) ((char *) entry + sizeof(Oid)) = ours;
		return ours;
	}
}

/*
 * Forget function verdicts when pg_proc changes.
 */
static void
guard_proc_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	if (definer_cache != NULL)
	{
		hash_destroy(definer_cache);
		definer_cache = NULL;
	}
}

/*
 * fmgr_hook: count the calls of the extension's SECURITY DEFINER functions
 * check_exports() and ack(), inside which INSERT into alerts and alert_acks
 * is allowed.  Leaves *private to other hooks.
 */
static void
aa_guard_fmgr_hook(FmgrHookEventType event, FmgrInfo * flinfo, Datum *private)
{
	if (prev_fmgr_hook)
		prev_fmgr_hook(event, flinfo, private);

	switch (event)
	{
		case FHET_START:
			if (IsTransactionState() && guard_alert_function(flinfo->fn_oid, true))
				definer_depth++;
			break;
		case FHET_END:
		case FHET_ABORT:
			if (definer_depth > 0 && guard_alert_function(flinfo->fn_oid, false))
				definer_depth--;
			break;
	}
}

/*
 * _guard_trigger(): statement-level BEFORE INSERT/UPDATE/DELETE/TRUNCATE
 * trigger on every guarded table, ENABLE ALWAYS.  Normally the hooks
 * decide first; this catches COPY FROM and anything that bypasses them.
 */
Datum
access_audit_guard_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Oid			relid;
	const char *action;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				errmsg("access_audit._guard_trigger() must be called as a trigger"));
	relid = RelationGetRelid(trigdata->tg_relation);
	if (TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		action = "TRUNCATE";
	else if (TRIGGER_FIRED_BY_DELETE(trigdata->tg_event))
		action = "DELETE";
	else if (TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event))
		action = "UPDATE";
	else
		action = "INSERT";

	if (definer_depth > 0 &&
		guard_definer_may_write(RelationGetRelationName(trigdata->tg_relation),
								action))
		return PointerGetDatum(NULL);
	if (strcmp(action, "INSERT") == 0 && guard_collector_insert(relid))
		return PointerGetDatum(NULL);
	/* the executor hook has recorded maintenance already */
	if (guard_decide() == GUARD_REFUSE)
		guard_refuse(action, relation_label(relid));
	return PointerGetDatum(NULL);
}

/*
 * Install the guard's hooks.  Called from _PG_init.
 */
void
aa_guard_init(void)
{
	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = aa_guard_ExecutorStart;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = aa_guard_ProcessUtility;
	prev_object_access_hook = object_access_hook;
	object_access_hook = aa_guard_object_access;
	prev_fmgr_hook = fmgr_hook;
	fmgr_hook = aa_guard_fmgr_hook;

	CacheRegisterSyscacheCallback(NAMESPACEOID, guard_inval_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, guard_proc_inval_callback, (Datum) 0);
	CacheRegisterRelcacheCallback(guard_relcache_callback, (Datum) 0);
	RegisterXactCallback(guard_xact_callback, NULL);
}
