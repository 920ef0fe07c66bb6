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
 * access_audit.actor_groups (the admins' peer-group map), of
 * access_audit.ingest_sources (which role ships which standby ring), and of
 * quotas and quota_exemptions (the admins' quotas, quota.c; their changes
 * are recorded by their triggers): ordinary data that admins edit.
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
 * It also records every change of an access_audit.* setting (assign hooks
 * flag it, the next statement compares), grants, revokes and alters of the
 * roles that carry the extension's trust (refused unless by a superuser,
 * or an admin for roles other than admin), and keeps the end of a log that
 * DROP EXTENSION ends in pg_access_audit/ended_<database oid>, for the next
 * CREATE EXTENSION to begin the new log with (command PREVIOUS LOG).
 *
 * Ownership: no shared state.  definer_depth, seen_maintenance, the seen
 * settings, the log end being saved and the cached schema and extension
 * OIDs are backend-local.  The ended_* file of a database is written only
 * by the backend that commits a drop of the extension there, and removed
 * by the one that commits its creation (DDL on the extension serialises
 * them).
 *
 * IDENTIFICATION
 *	  extension/guard.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/stat.h>

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relation.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
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
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parsetree.h"
#include "postmaster/bgworker.h"
#include "replication/logicalworker.h"
#include "storage/fd.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "compat.h"
#include "guard.h"
#include "records.h"
#include "restore.h"

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

/*
 * Nesting of the extension's writing SECURITY DEFINER functions in this
 * backend, and the number of transaction ends so far (see
 * aa_guard_fmgr_hook).
 */
static int	definer_depth = 0;
static uint64 definer_epoch = 0;

/* per-FmgrInfo state of the fmgr hook, in the hook's private datum */
typedef struct GuardCallState
{
	int			writing;		/* -1 unknown, 0 no, 1 a writing function */
	int			counted;		/* calls counted in definer_depth */
	uint64		epoch;			/* definer_epoch when they were counted */
	Datum		prev_private;	/* the previous fmgr_hook's private datum */
} GuardCallState;

/* nesting of utility statements that may touch guarded relations */
static int	harmless_utility_depth = 0;

/* value of access_audit.maintenance at the last statement we saw */
static bool seen_maintenance = false;

/* -1 unknown, 0 no, 1 this process is the writer */
static int	is_writer_cached = -1;

/*
 * The settings whose every change is recorded (access_audit.actor changes
 * all the time and is in every record; maintenance is recorded above), and
 * the value and source (PGC_S_*) this backend last saw of each.
 */
static const char *const guard_settings[] = {
	"access_audit.enabled",
	"access_audit.max_query_length",
	"access_audit.queue_size",
	"access_audit.flush_interval",
	"access_audit.batch_size",
	"access_audit.business_hours_start",
	"access_audit.business_hours_end",
	"access_audit.business_timezone",
	"access_audit.primary_conninfo",
	"access_audit.server_name",
	"access_audit.query_text",
	"access_audit.siem_log",
	"access_audit.alert_notify_limit"
};

#define GUARD_NSETTINGS lengthof(guard_settings)

/*
 * The end of this database's log, read before a DROP EXTENSION (or DROP
 * SCHEMA/OWNED) in maintenance mode, written to GUARD_ENDED_FILE when the
 * drop commits; and whether the extension is being dropped or created in
 * this transaction.  Allocated in TopTransactionContext.
 */
static char *ending_log = NULL;
static bool dropping_ours = false;
static bool created_ours = false;

/*
 * The previous log's end read at CREATE EXTENSION (in TopTransactionContext),
 * recorded as PREVIOUS LOG when the creation commits: a creation that rolls
 * back must not leave it in the queue for the next log.
 */
static char *opening_log = NULL;
static Oid	dropping_database = InvalidOid;

/* where the end of a dropped log waits for the next CREATE EXTENSION */
#define GUARD_ENDED_DIR		"pg_access_audit"
#define GUARD_ENDED_FILE	GUARD_ENDED_DIR "/ended_%u"
#define GUARD_ENDED_MAX		8192

/*
 * A database that has an audit log (marked at CREATE EXTENSION and by each
 * session of it): DROP DATABASE of it needs maintenance mode, as DROP
 * EXTENSION does, since it would take the log with it.
 */
#define GUARD_LOG_FILE		GUARD_ENDED_DIR "/log_%u"

/* this session has marked (or found no log in) its database */
static bool log_marked = false;

static char *seen_setting[GUARD_NSETTINGS];
static int	seen_source[GUARD_NSETTINGS];
static bool seen_settings = false;

static Oid	guard_extension(void);
static void guard_save_log_end(void);
static void guard_forget_file(const char *format, Oid dboid);
static void guard_mark_log(bool check);
static bool guard_database_has_log(Oid dboid);
static void guard_check_drop_database(Oid dboid);
static Oid	guard_extension_schema(void);
static void guard_forget_log_end(Oid dboid);

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
	if (event == XACT_EVENT_PRE_COMMIT && dropping_ours)
		guard_save_log_end();
	if (event == XACT_EVENT_PRE_COMMIT && created_ours && opening_log != NULL)
	{
		aa_capture_event("PREVIOUS LOG", NULL, NULL, NULL, opening_log);
		opening_log = NULL;
	}
	if (event == XACT_EVENT_PRE_COMMIT && created_ours)
		guard_mark_log(false);
	if (event == XACT_EVENT_COMMIT && created_ours)
		guard_forget_log_end(MyDatabaseId);
	/* the log is gone: DROP DATABASE needs no maintenance mode now */
	if (event == XACT_EVENT_COMMIT && dropping_ours)
		guard_forget_file(GUARD_LOG_FILE, MyDatabaseId);
	/* a later database with the same OID must not inherit the files */
	if (event == XACT_EVENT_COMMIT && OidIsValid(dropping_database))
	{
		guard_forget_log_end(dropping_database);
		guard_forget_file(GUARD_LOG_FILE, dropping_database);
	}
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_COMMIT ||
		event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
	{
		definer_depth = 0;
		definer_epoch++;
		harmless_utility_depth = 0;
		ending_log = NULL;
		dropping_ours = false;
		created_ours = false;
		opening_log = NULL;
		dropping_database = InvalidOid;
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
		/*
		 * The extension's schema, whatever its name: a schema renamed in
		 * maintenance mode stays guarded (and its log's end readable).  A
		 * schema without the extension is not ours yet: pg_restore creates
		 * the schema and sets its owner before CREATE EXTENSION.
		 */
		Oid			nsp = guard_extension_schema();

		if (!OidIsValid(nsp))
			return InvalidOid;
		guard_nsp = nsp;
	}
	return guard_nsp;
}

/*
 * Schema of extension access_audit (pg_extension.extnamespace), or
 * InvalidOid where the extension is missing.  PostgreSQL 15 does not
 * export get_extension_schema().
 */
static Oid
guard_extension_schema(void)
{
	Oid			ext = guard_extension();
	Oid			nsp = InvalidOid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	if (!OidIsValid(ext))
		return InvalidOid;
	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(ext));
	scan = systable_beginscan(rel, ExtensionOidIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		nsp = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return nsp;
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
 * Logical replication workers apply sources' log rows, dictionaries,
 * checkpoints and row identities (rowids.c) to the tables of the same
 * names, whose ENABLE REPLICA
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
		 strcmp(name, "chain_checkpoints") == 0 ||
		 strcmp(name, "row_sets") == 0 ||
		 strcmp(name, "row_set_reads") == 0 ||
		 strcmp(name, "row_key") == 0);
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
							strcmp(name, "ingest_sources") == 0 ||
							strcmp(name, "quotas") == 0 ||
							strcmp(name, "quota_exemptions") == 0 ||
							strcmp(name, "row_identities") == 0 ||
							strcmp(name, "row_key") == 0);
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
			errdetail("The audit data of access_audit is append-only, for owners and superusers too; this attempt has been recorded, as is everything done in maintenance mode."),
			errhint("For retention and repairs, have a superuser SET access_audit.maintenance = on."));
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
 * A setting's value as a record shows it: the connection string of
 * primary_conninfo may hold a password, so only whether it is set shows.
 */
static const char *
guard_setting_shown(const char *name, const char *value)
{
	if (value && strcmp(name, "access_audit.primary_conninfo") == 0)
		return value[0] ? "(set, not shown)" : "";
	return value;
}

/*
 * Record a change of a setting: command SET, detail {"setting", "how",
 * "value", "previous", "source"}.  previous is NULL at session start.
 */
static void
guard_record_setting(const char *name, const char *how, const char *value,
					 const char *previous, int source)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"setting\": ");
	escape_json(&buf, name);
	appendStringInfoString(&buf, ", \"how\": ");
	escape_json(&buf, how);
	appendStringInfoString(&buf, ", \"value\": ");
	aa_json_string_or_null(&buf, value ? guard_setting_shown(name, value) : NULL);
	appendStringInfoString(&buf, ", \"previous\": ");
	aa_json_string_or_null(&buf, previous ? guard_setting_shown(name, previous) : NULL);
	if (source >= 0 && source <= PGC_S_SESSION)
	{
		appendStringInfoString(&buf, ", \"source\": ");
		escape_json(&buf, GucSource_Names[source]);
	}
	appendStringInfoChar(&buf, '}');
	aa_capture_event("SET", NULL, NULL, NULL, buf.data);
}

/*
 * Remember the current value and source of setting i.
 */
static void
guard_remember_setting(int i, const char *value, int source)
{
	if (seen_setting[i])
		pfree(seen_setting[i]);
	seen_setting[i] = MemoryContextStrdup(TopMemoryContext,
										  value ? value : "");
	seen_source[i] = source;
}

/*
 * Record every change of an access_audit.* setting however it happened,
 * at the next statement of each session: set_config(), a function's SET
 * clause, the end of a transaction or function that had changed one, a
 * reload of the configuration files, and, at a session's first statement,
 * values that role or database settings (ALTER ROLE/DATABASE ... SET) or
 * the connection request gave it (see there which).  SET, RESET and ALTER SYSTEM statements
 * are recorded by capture.c as they run (their change is taken in
 * silently, aa_guard_ProcessUtility).  The assign hooks flag that a value
 * was assigned (aa_settings_assigned); only then are values compared, so a
 * statement costs one test of a flag.
 */
static void
guard_note_settings(void)
{
	int			i;
	bool		first = !seen_settings;

	if (!aa_settings_assigned || guard_is_writer() || !IsTransactionState())
		return;
	aa_settings_assigned = false;
	seen_settings = true;
	for (i = 0; i < GUARD_NSETTINGS; i++)
	{
		const char *name = guard_settings[i];
		const char *value = GetConfigOption(name, true, false);
		int			source = aa_guc_source_compat(name);

		if (first)
		{
			/*
			 * What this session starts with: capture switched off, however (a
			 * configuration file changed while no session was open would
			 * otherwise leave no trace), access_audit.enabled given by any
			 * role or database setting, and other settings given to this role
			 * or connection in particular.  (Database-wide values of the
			 * others are recorded by the ALTER DATABASE itself, not again by
			 * every session.)
			 */
			if ((i == 0 && !aa_enabled) ||
				(i == 0 && source >= PGC_S_GLOBAL &&
				 source != PGC_S_OVERRIDE) ||
				source == PGC_S_USER || source == PGC_S_DATABASE_USER ||
				source == PGC_S_CLIENT)
				guard_record_setting(name, "session start", value, NULL,
									 source);
		}
		else if (strcmp(value ? value : "", seen_setting[i]) != 0)
			guard_record_setting(name,
								 source >= PGC_S_GLOBAL ? "changed in session" :
								 "configuration",
								 value, seen_setting[i], source);
		else if (source == seen_source[i])
			continue;
		guard_remember_setting(i, value, source);
	}
}

/*
 * After SET or RESET of one access_audit.* setting, which capture.c has
 * recorded: take its new value in without a second record.  Other settings
 * keep their pending comparison.
 */
static void
guard_absorb_setting(const char *name)
{
	int			i;

	if (!seen_settings)
		return;
	for (i = 0; i < GUARD_NSETTINGS; i++)
		if (pg_strcasecmp(guard_settings[i], name) == 0)
			guard_remember_setting(i, GetConfigOption(guard_settings[i], true,
													  false),
								   aa_guc_source_compat(guard_settings[i]));
}

/*
 * ALTER ROLE ... SET / RESET and ALTER DATABASE ... SET / RESET of an
 * access_audit.* setting (or RESET ALL, which may remove one), recorded
 * once it succeeded.  These change later sessions, not this one: each of
 * those records the value it starts with (guard_note_settings).
 */
static void
guard_record_role_db_setting(Node *parsetree)
{
	VariableSetStmt *vs;
	const char *how;
	const char *role = NULL;
	const char *database = NULL;
	char	   *value = NULL;
	StringInfoData buf;

	if (IsA(parsetree, AlterRoleSetStmt))
	{
		AlterRoleSetStmt *stmt = (AlterRoleSetStmt *) parsetree;

		vs = stmt->setstmt;
		how = "ALTER ROLE";
		role = stmt->role ? get_rolespec_name(stmt->role) : "ALL";
		database = stmt->database;
	}
	else if (IsA(parsetree, AlterDatabaseSetStmt))
	{
		AlterDatabaseSetStmt *stmt = (AlterDatabaseSetStmt *) parsetree;

		vs = stmt->setstmt;
		how = "ALTER DATABASE";
		database = stmt->dbname;
	}
	else
		return;
	if (vs == NULL)
		return;
	if (vs->kind != VAR_RESET_ALL &&
		(vs->name == NULL || pg_strncasecmp(vs->name, "access_audit.", 13) != 0))
		return;
	if (vs->kind == VAR_SET_VALUE)
		value = ExtractSetVariableArgs(vs);

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"setting\": ");
	aa_json_string_or_null(&buf, vs->kind == VAR_RESET_ALL ? NULL : vs->name);
	appendStringInfoString(&buf, ", \"how\": ");
	escape_json(&buf, psprintf("%s %s", how,
							   vs->kind == VAR_SET_VALUE ? "SET" :
							   vs->kind == VAR_RESET_ALL ? "RESET ALL" :
							   vs->kind == VAR_RESET ? "RESET" : "SET DEFAULT"));
	appendStringInfoString(&buf, ", \"value\": ");
	aa_json_string_or_null(&buf, (value && vs->name) ?
						   guard_setting_shown(vs->name, value) : NULL);
	if (role)
	{
		appendStringInfoString(&buf, ", \"role\": ");
		escape_json(&buf, role);
	}
	if (database)
	{
		appendStringInfoString(&buf, ", \"database\": ");
		escape_json(&buf, database);
	}
	appendStringInfoChar(&buf, '}');
	aa_capture_event("SET", NULL, NULL, NULL, buf.data);
}

/*
 * The roles through which access_audit extends trust: admin (tags, peer
 * groups), app (its actor is believed), ingest (its records are taken as
 * another server's), analyst (raises and acknowledges alerts) and reader
 * (reads the log).  Most sensitive first.
 */
static const char *const guard_trust_roles[] = {
	AA_ROLE_ADMIN,
	AA_ROLE_APP,
	AA_ROLE_INGEST,
	AA_ROLE_ANALYST,
	AA_ROLE_READER
};

/*
 * The trust role that a role is or belongs to (directly or through other
 * roles), or NULL.
 */
static const char *
guard_role_trust(Oid roleid)
{
	int			i;

	if (!OidIsValid(roleid))
		return NULL;
	for (i = 0; i < lengthof(guard_trust_roles); i++)
	{
		Oid			t = get_role_oid(guard_trust_roles[i], true);

		if (OidIsValid(t) &&
			(roleid == t || is_member_of_role_nosuper(roleid, t)))
			return guard_trust_roles[i];
	}
	return NULL;
}

/*
 * May the current role hand out (or take back, or alter) a role that
 * carries trust?  Superusers may; members of access_audit_admin may for
 * every trust but their own; the extension's scripts may.  In PostgreSQL
 * 15 CREATEROLE alone would allow all of it, which would let a role grant
 * itself the trust the audit relies on.
 */
static bool
guard_may_manage_trust(const char *trust)
{
	Oid			admin;

	if (superuser() || guard_creating_extension())
		return true;
	if (strcmp(trust, AA_ROLE_ADMIN) == 0)
		return false;
	admin = get_role_oid(AA_ROLE_ADMIN, true);
	return OidIsValid(admin) && has_privs_of_role(GetUserId(), admin);
}

/*
 * A role's name as a statement gives it.
 */
static const char *
guard_rolespec_name(RoleSpec * spec)
{
	if (spec == NULL)
		return NULL;
	if (spec->roletype == ROLESPEC_CSTRING)
		return spec->rolename;
	if (spec->roletype == ROLESPEC_PUBLIC)
		return "public";
	return get_rolespec_name(spec);
}

/*
 * The detail of a role record: {"action", "role", "trust", "grantees",
 * "by"}; grantees is a list of names or NULL.
 */
static char *
guard_role_detail(const char *action, const char *role, const char *trust,
				  List *grantees)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": ");
	escape_json(&buf, action);
	appendStringInfoString(&buf, ", \"role\": ");
	escape_json(&buf, role);
	appendStringInfoString(&buf, ", \"trust\": ");
	escape_json(&buf, trust);
	if (grantees != NIL)
	{
		appendStringInfoString(&buf, ", \"grantees\": [");
		foreach(lc, grantees)
		{
			if (lc != list_head(grantees))
				appendStringInfoString(&buf, ", ");
			escape_json(&buf, (const char *) lfirst(lc));
		}
		appendStringInfoChar(&buf, ']');
	}
	appendStringInfoString(&buf, ", \"by\": ");
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * One change that touches a trust: refuse it (recorded) if the current
 * role may not make it, otherwise add its record to *pending, written once
 * the statement succeeded.  command is GRANT ROLE, REVOKE ROLE, ALTER
 * ROLE, DROP ROLE...; role is the role granted or changed; bearer the role
 * that carries trust (role itself, or a member being added to role or
 * taken from it).
 */
static void
guard_role_act(const char *command, const char *role, const char *bearer,
			   const char *trust, List *grantees, List **pending)
{
	char	   *detail = guard_role_detail(command, role, trust, grantees);

	if (!guard_may_manage_trust(trust))
	{
		aa_capture_event("REFUSED", NULL, NULL, NULL, detail);
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("permission denied for %s of role \"%s\"", command, role),
				errdetail("Role \"%s\" carries the trust of \"%s\" in access_audit; this attempt has been recorded.",
						  bearer, trust),
				errhint("Ask a superuser, or for a role other than \"%s\" a member of \"%s\".",
						AA_ROLE_ADMIN, AA_ROLE_ADMIN));
	}
	*pending = lappend(*pending, list_make2(pstrdup(command), detail));
}

/*
 * A change to role itself (granted, revoked, altered, dropped): see
 * guard_role_act, if role carries trust.
 */
static void
guard_role_change(const char *command, const char *role, List *grantees,
				  List **pending)
{
	const char *trust = guard_role_trust(get_role_oid(role, true));

	if (trust != NULL)
		guard_role_act(command, role, role, trust, grantees, pending);
}

/*
 * Members added to a role that carries no trust, or taken from it: a member
 * that carries trust changes what that trust reaches (GRANT x TO
 * access_audit_app, CREATE ROLE x ROLE access_audit_app, ALTER GROUP x ADD
 * USER ...).
 */
static void
guard_role_members_change(const char *command, const char *role,
						  List *members, List **pending)
{
	ListCell   *lc;

	/* a role that carries trust itself is checked and recorded as such */
	if (role == NULL || guard_role_trust(get_role_oid(role, true)) != NULL)
		return;
	foreach(lc, members)
	{
		const char *member = lfirst(lc);
		const char *trust;

		if (member == NULL)
			continue;
		trust = guard_role_trust(get_role_oid(member, true));
		if (trust != NULL)
			guard_role_act(command, role, member, trust,
						   list_make1((char *) member), pending);
	}
}

/*
 * The names of a list of RoleSpec.
 */
static List *
guard_rolespec_names(List *specs)
{
	List	   *names = NIL;
	ListCell   *lc;

	foreach(lc, specs)
		names = lappend(names, (char *) guard_rolespec_name(lfirst(lc)));
	return names;
}

/*
 * The utility gate for roles: GRANT/REVOKE of a trust-bearing role
 * (granted_roles may also name roles that belong to one), CREATE ROLE ...
 * IN ROLE, ALTER GROUP ... ADD/DROP USER, and ALTER, RENAME or DROP of such
 * a role (a CREATEROLE role could otherwise give one a password and log in
 * as it).  Returns the records to write once the statement succeeded.
 */
static List *
guard_check_roles(Node *parsetree)
{
	List	   *pending = NIL;
	ListCell   *lc;

	/*
	 * The extension's own install and update scripts set up its roles (the
	 * analyst role is a reader, say): that is the sanctioned creation, not a
	 * change of trust.  CREATE and ALTER EXTENSION are recorded themselves.
	 */
	if (creating_extension &&
		CurrentExtensionObject == get_extension_oid(AA_NAME, true))
		return NIL;

	switch (nodeTag(parsetree))
	{
		case T_GrantRoleStmt:
			{
				GrantRoleStmt *stmt = (GrantRoleStmt *) parsetree;
				List	   *grantees = guard_rolespec_names(stmt->grantee_roles);

				foreach(lc, stmt->granted_roles)
				{
					AccessPriv *priv = lfirst_node(AccessPriv, lc);

					if (priv->priv_name == NULL)
						continue;
					guard_role_change(stmt->is_grant ? "GRANT ROLE" :
									  "REVOKE ROLE", priv->priv_name,
									  grantees, &pending);
					guard_role_members_change(stmt->is_grant ? "GRANT ROLE" :
											  "REVOKE ROLE", priv->priv_name,
											  grantees, &pending);
				}
			}
			break;
		case T_CreateRoleStmt:
			{
				CreateRoleStmt *stmt = (CreateRoleStmt *) parsetree;

				foreach(lc, stmt->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);
					ListCell   *lc2;

					if (strcmp(opt->defname, "rolemembers") == 0 ||
						strcmp(opt->defname, "adminmembers") == 0)
						guard_role_members_change("GRANT ROLE", stmt->role,
												  guard_rolespec_names((List *) opt->arg),
												  &pending);
					if (strcmp(opt->defname, "addroleto") != 0)
						continue;
					foreach(lc2, (List *) opt->arg)
						guard_role_change("GRANT ROLE",
										  guard_rolespec_name(lfirst(lc2)),
										  list_make1(stmt->role), &pending);
				}
			}
			break;
		case T_AlterRoleStmt:
			{
				AlterRoleStmt *stmt = (AlterRoleStmt *) parsetree;
				const char *role = guard_rolespec_name(stmt->role);
				List	   *members = NIL;

				bool		own_password = true;

				if (role == NULL || stmt->role->roletype == ROLESPEC_PUBLIC)
					break;
				foreach(lc, stmt->options)
				{
					DefElem    *opt = lfirst_node(DefElem, lc);

					if (strcmp(opt->defname, "rolemembers") == 0)
						members = guard_rolespec_names((List *) opt->arg);
					if (strcmp(opt->defname, "password") != 0)
						own_password = false;
				}
				/* anyone may change their own password */
				if (own_password && get_role_oid(role, true) == GetUserId())
					break;
				/* action is +1 for plain ALTER ROLE too: members tell */
				guard_role_change(members == NIL ? "ALTER ROLE" :
								  stmt->action > 0 ? "GRANT ROLE" :
								  "REVOKE ROLE", role, members, &pending);
				guard_role_members_change(stmt->action > 0 ? "GRANT ROLE" :
										  "REVOKE ROLE", role, members,
										  &pending);
			}
			break;
		case T_RenameStmt:
			{
				RenameStmt *stmt = (RenameStmt *) parsetree;

				if (stmt->renameType == OBJECT_ROLE && stmt->subname)
					guard_role_change("ALTER ROLE", stmt->subname, NIL,
									  &pending);
			}
			break;
		case T_DropRoleStmt:
			foreach(lc, ((DropRoleStmt *) parsetree)->roles)
			{
				RoleSpec   *spec = lfirst(lc);

				if (spec->roletype == ROLESPEC_CSTRING)
					guard_role_change("DROP ROLE", spec->rolename, NIL,
									  &pending);
			}
			break;
		default:
			break;
	}
	return pending;
}

/*
 * Write the records guard_check_roles() kept for a statement that
 * succeeded.
 */
static void
guard_record_roles(List *pending)
{
	ListCell   *lc;

	foreach(lc, pending)
	{
		List	   *rec = lfirst(lc);

		aa_capture_event(linitial(rec), NULL, NULL, NULL, lsecond(rec));
	}
}

/*
 * Before a statement that may drop the extension in maintenance mode (any
 * DROP, see guard_may_drop_extension): read the end of the log while it
 * still exists, its last seq, hash and time (or, if retention emptied it,
 * the last checkpoint), with who drops it and when.  Kept until the
 * transaction ends; written out only if the extension is dropped.
 */
static void
guard_read_log_end(void)
{
	StringInfoData buf;
	MemoryContext old;
	char	   *seq = NULL;
	char	   *ts = NULL;
	char	   *hash = NULL;
	char	   *query;
	const char *schema;
	Oid			nsp = guard_namespace();
	uint64		found = 0;

	if (ending_log != NULL || !OidIsValid(nsp))
		return;

	/*
	 * A log damaged in maintenance mode (a table dropped) must not stop the
	 * drop that cleans it up: read what is there.
	 */
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	schema = quote_identifier(get_namespace_name(nsp));
	if (OidIsValid(get_relname_relid("log_data", nsp)))
	{
		query = psprintf("SELECT l.seq::pg_catalog.text, l.ts::pg_catalog.text, l.hash"
						 "  FROM %s.log_data l ORDER BY l.seq DESC LIMIT 1",
						 schema);
		if (SPI_execute(query, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the end of the audit log");
		found = SPI_processed;
	}
	if (found == 0 && OidIsValid(get_relname_relid("chain_checkpoints", nsp)))
	{
		query = psprintf("SELECT c.seq::pg_catalog.text, c.cut_at::pg_catalog.text, c.hash"
						 "  FROM %s.chain_checkpoints c ORDER BY c.seq DESC LIMIT 1",
						 schema);
		if (SPI_execute(query, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read the end of the audit log");
		found = SPI_processed;
	}
	if (found > 0)
	{
		bool		isnull;
		Datum		d;

		seq = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		ts = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3,
						  &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);
			size_t		len = VARSIZE_ANY_EXHDR(b);

			hash = palloc(len * 2 + 1);
			hex_encode(VARDATA_ANY(b), len, hash);
			hash[len * 2] = '\0';
		}
	}

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"database\": ");
	escape_json(&buf, get_database_name(MyDatabaseId));
	appendStringInfoString(&buf, ", \"last_seq\": ");
	appendStringInfoString(&buf, seq ? seq : "null");
	appendStringInfoString(&buf, ", \"last_hash\": ");
	aa_json_string_or_null(&buf, hash);
	appendStringInfoString(&buf, ", \"last_ts\": ");
	aa_json_string_or_null(&buf, ts);
	appendStringInfoString(&buf, ", \"dropped_by\": ");
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoString(&buf, ", \"login_role\": ");
	escape_json(&buf, GetUserNameFromId(GetSessionUserId(), false));
	appendStringInfoString(&buf, ", \"dropped_at\": ");
	escape_json(&buf, timestamptz_to_str(GetCurrentTransactionStartTimestamp()));
	appendStringInfoString(&buf, ", \"statement\": ");
	escape_json(&buf, debug_query_string ?
				pnstrdup(debug_query_string,
						 pg_mbcliplen(debug_query_string,
									  strlen(debug_query_string), 1024)) :
				"");
	appendStringInfoChar(&buf, '}');
	SPI_finish();

	old = MemoryContextSwitchTo(TopTransactionContext);
	ending_log = pstrdup(buf.data);
	MemoryContextSwitchTo(old);
}

/*
 * At the commit of a drop of the extension: keep the end of the log in a
 * file under the data directory, where the next CREATE EXTENSION in this
 * database finds it.  Written before the commit (an error here aborts the
 * drop) and made durable; a file left by an earlier drop is replaced.
 */
static void
guard_save_log_end(void)
{
	char		path[MAXPGPATH];
	char		tmp[MAXPGPATH];
	const char *content = ending_log;
	int			fd;
	size_t		len;

	/* a drop by a route not seen before it began: say so, at least */
	if (content == NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoString(&buf, "{\"last_seq\": null, \"dropped_by\": ");
		escape_json(&buf, GetUserNameFromId(GetUserId(), false));
		appendStringInfoString(&buf, ", \"login_role\": ");
		escape_json(&buf, GetUserNameFromId(GetSessionUserId(), false));
		appendStringInfoString(&buf, ", \"dropped_at\": ");
		escape_json(&buf, timestamptz_to_str(GetCurrentTransactionStartTimestamp()));
		appendStringInfoString(&buf, ", \"note\": \"the end of the log could not be read before the drop\"}");
		content = buf.data;
	}
	len = strlen(content);
	snprintf(path, sizeof(path), GUARD_ENDED_FILE, MyDatabaseId);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not create file \"%s\": %m", tmp));
	errno = 0;
	if (write(fd, content, len) != len)
	{
		if (errno == 0)
			errno = ENOSPC;
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not write file \"%s\": %m", tmp));
	}
	if (pg_fsync(fd) != 0)
		ereport(data_sync_elevel(ERROR),
				errcode_for_file_access(),
				errmsg("could not fsync file \"%s\": %m", tmp));
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not close file \"%s\": %m", tmp));
	if (durable_rename(tmp, path, ERROR) != 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not rename file \"%s\": %m", tmp));
}

/*
 * After CREATE EXTENSION access_audit: if an earlier log of this database
 * was dropped, its end opens the new log (command PREVIOUS LOG, recorded
 * at PRE_COMMIT by guard_xact_callback, so that a creation that rolls back
 * queues nothing: its record would otherwise reach the next log if that
 * were created before the writer discarded it).  The file is removed when
 * the creation commits (guard_forget_log_end); a rolled back creation
 * leaves it for the next one.
 */
static void
guard_open_log(void)
{
	char		path[MAXPGPATH];
	char	   *content;
	int			fd;
	int			len;

	created_ours = true;
	snprintf(path, sizeof(path), GUARD_ENDED_FILE, MyDatabaseId);
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return;
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", path));
	}
	content = MemoryContextAlloc(TopTransactionContext, GUARD_ENDED_MAX + 1);
	len = read(fd, content, GUARD_ENDED_MAX);
	if (len < 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not read file \"%s\": %m", path));
	CloseTransientFile(fd);
	content[len] = '\0';
	opening_log = content;
}

/*
 * At the commit of CREATE EXTENSION (the previous log's end is in the new
 * log now) or of DROP DATABASE: remove the database's file.  No error may
 * be raised here.
 */
static void
guard_forget_log_end(Oid dboid)
{
	guard_forget_file(GUARD_ENDED_FILE, dboid);
}

/*
 * Remove a per-database file of the guard (format: a path with one %u).
 * No error may be raised here (transaction commit).
 */
static void
guard_forget_file(const char *format, Oid dboid)
{
	char		path[MAXPGPATH];

	snprintf(path, sizeof(path), format, dboid);
	if (unlink(path) != 0 && errno != ENOENT)
		ereport(WARNING,
				errcode_for_file_access(),
				errmsg("could not remove file \"%s\": %m", path));
}

/*
 * Mark this database as one with an audit log (GUARD_LOG_FILE), once per
 * session.  check: only if the extension is installed (a session's first
 * statement); otherwise the caller knows it is (CREATE EXTENSION, before
 * its commit: an error here aborts it).  Not fsynced: a marker lost in an
 * operating system crash is made again by the database's next session, and
 * a creation's commit stays as quick as before (a longer creation widens
 * the window in which a writer takes the records of a creation that rolled
 * back for those of the next one).
 */
static void
guard_mark_log(bool check)
{
	char		path[MAXPGPATH];
	int			fd;

	if ((check && log_marked) || guard_is_writer() ||
		!OidIsValid(MyDatabaseId))
		return;
	/* a creation marks at its commit, not before (it may roll back) */
	if (check && guard_creating_extension())
		return;
	if (check && !OidIsValid(guard_extension()))
	{
		/* no log here; CREATE EXTENSION marks it if one is made */
		log_marked = true;
		return;
	}
	snprintf(path, sizeof(path), GUARD_LOG_FILE, MyDatabaseId);
	fd = OpenTransientFile(path, O_WRONLY | O_CREAT | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				errcode_for_file_access(),
				errmsg("could not create file \"%s\": %m", path));
	CloseTransientFile(fd);
	log_marked = true;
}

/*
 * Has database dboid an audit log (is it marked)?
 */
static bool
guard_database_has_log(Oid dboid)
{
	char		path[MAXPGPATH];
	struct stat st;

	snprintf(path, sizeof(path), GUARD_LOG_FILE, dboid);
	return stat(path, &st) == 0;
}

/*
 * DROP DATABASE of a database with an audit log takes the log with it, and
 * no record of the drop can land there.  Like DROP EXTENSION it needs a
 * superuser in maintenance mode (for database owners too); the attempt or
 * the drop is recorded in this database's log, where there is one, and in
 * the server log.
 */
static void
guard_check_drop_database(Oid dboid)
{
	char	   *dbname;
	StringInfoData buf;
	GuardDecision decision;

	if (!guard_database_has_log(dboid))
		return;
	decision = guard_decide();
	if (decision == GUARD_ALLOW)
		return;
	dbname = get_database_name(dboid);
	if (dbname == NULL)
		dbname = psprintf("%u", dboid);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": \"DROP DATABASE\", \"database\": ");
	escape_json(&buf, dbname);
	appendStringInfoString(&buf, ", \"by\": ");
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoChar(&buf, '}');
	if (decision == GUARD_REFUSE)
	{
		aa_capture_event("REFUSED", NULL, NULL, NULL, buf.data);
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("DROP DATABASE of \"%s\" is not allowed", dbname),
				errdetail("Database \"%s\" holds an access_audit log, which the drop would erase; this attempt has been logged, as is a drop in maintenance mode.",
						  dbname),
				errhint("Have a superuser SET access_audit.maintenance = on first, or drop the extension in that database in maintenance mode."));
	}
	aa_capture_event("MAINTENANCE", NULL, NULL, NULL, buf.data);
	ereport(LOG,
			errmsg("access_audit log of database \"%s\" dropped with the database by \"%s\" in maintenance mode",
				   dbname, GetUserNameFromId(GetUserId(), false)));
}

/*
 * Could this statement drop the extension (in maintenance mode, the only
 * mode that lets it)?  Any DROP can: DROP EXTENSION, SCHEMA or OWNED by
 * name, and a CASCADE from one of its objects.
 */
static bool
guard_may_drop_extension(Node *parsetree)
{
	return IsA(parsetree, DropOwnedStmt) || IsA(parsetree, DropStmt);
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

	List	   *seen = NIL;

	foreach(lc, pstmt->resultRelations)
	{
		RangeTblEntry *rte = rt_fetch(lfirst_int(lc), pstmt->rtable);
		RangeTblEntry *prte = rte;
		Oid			relid;
		const char *action;
		AclMode		perms;

		if (rte->rtekind != RTE_RELATION || !relation_guarded(rte->relid))
			continue;
		if (relation_rows_free(rte->relid))
			continue;

		/*
		 * A write to a partitioned table (the log) has its partitions as
		 * result relations: it is the write to the table named, with that
		 * table's permissions, decided once.
		 */
		relid = rte->relid;
		if (get_rel_relispartition(relid))
		{
			ListCell   *lc2;

			while (get_rel_relispartition(relid))
				relid = get_partition_parent(relid, true);
			foreach(lc2, pstmt->rtable)
			{
				RangeTblEntry *r = lfirst_node(RangeTblEntry, lc2);

				if (r->rtekind == RTE_RELATION && r->relid == relid)
				{
					prte = r;
					break;
				}
			}
		}
		if (list_member_oid(seen, relid))
			continue;
		seen = lappend_oid(seen, relid);
		perms = aa_rte_required_perms_compat(pstmt, prte);
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
			guard_definer_may_write(get_rel_name(relid), action))
			continue;
		if (strcmp(action, "INSERT") == 0 && guard_collector_insert(relid))
			continue;
		guard_check(action, relation_label(relid));
	}
	list_free(seen);
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
		guard_mark_log(true);
		guard_note_maintenance();
		guard_note_settings();
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
	Oid			nsp;

	if (name == NULL)
		return;
	nsp = guard_namespace();
	if (OidIsValid(nsp) && get_namespace_oid(name, true) == nsp)
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
 * The name of a schema-qualified object in the form get_object_address()
 * takes for objtype, from the node a statement carries; NULL if the node is
 * of another shape.
 *
 * Statements do not all name an object alike: DROP and COMMENT name a type
 * or domain with a TypeName, but ALTER TYPE/DOMAIN ... RENAME, SET SCHEMA
 * and OWNER TO carry the bare name list (any_name), which PostgreSQL turns
 * into a TypeName itself.  Treating one as the other read a List as a
 * TypeName and crashed the server; so every shape is checked here before
 * any lookup.
 */
static Node *
guard_object_name(ObjectType objtype, Node *object)
{
	switch (objtype)
	{
		case OBJECT_TYPE:
		case OBJECT_DOMAIN:
			if (IsA(object, TypeName))
				return object;
			if (IsA(object, List) && list_length((List *) object) > 0)
				return (Node *) makeTypeNameFromNameList((List *) object);
			return NULL;
		case OBJECT_FUNCTION:
		case OBJECT_PROCEDURE:
		case OBJECT_ROUTINE:
		case OBJECT_AGGREGATE:
		case OBJECT_OPERATOR:
			return IsA(object, ObjectWithArgs) ? object : NULL;
		default:
			/* collations, conversions, operator classes, statistics... */
			return IsA(object, List) && list_length((List *) object) > 0 ?
				object : NULL;
	}
}

/*
 * Check a generic object (ALTER ... RENAME / SET SCHEMA / OWNER TO of
 * anything that is not a relation, DROP of such objects).  Objects of a
 * shape we do not know are left to the statement; the object access hook
 * still watches guarded relations, their schema and the extension.
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
			if (IsA(object, ObjectWithArgs))
				guard_check_func(objtype, (ObjectWithArgs *) object, action);
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
	object = guard_object_name(objtype, object);
	if (object == NULL)
		return;
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
 * Does this DROP EXTENSION / DROP SCHEMA name access_audit or its schema,
 * so that it drops the audit tables together?
 */
static bool
drop_names_audit_tables(ObjectType type, Node *obj)
{
	Oid			nsp;
	char	   *nspname;

	if (!IsA(obj, String))
		return false;
	if (type == OBJECT_EXTENSION)
		return strcmp(strVal(obj), AA_NAME) == 0;
	nsp = guard_namespace();
	if (!OidIsValid(nsp))
		return false;
	nspname = get_namespace_name(nsp);
	return nspname != NULL && strcmp(strVal(obj), nspname) == 0;
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
				if (drop_names_audit_tables(stmt->removeType, obj))
					aa_restore_exclude_writer();
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
										 cmd->subtype == AT_AttachPartition ?
										 "ATTACH PARTITION" : "DETACH PARTITION");
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

/* TRUNCATE of a guarded table (one statement may name several) */
static void
guard_check_truncate(TruncateStmt * stmt)
{
	ListCell   *lc;

	foreach(lc, stmt->relations)
		guard_check_rangevar(lfirst_node(RangeVar, lc), "TRUNCATE");
}

/* RENAME of the schema, a guarded relation or another guarded object */
static void
guard_check_rename(RenameStmt * stmt)
{
	if (stmt->renameType == OBJECT_SCHEMA)
		guard_check_schema_name(stmt->subname, "RENAME");
	else if (stmt->relation)
		guard_check_rangevar(stmt->relation, "RENAME");
	else
		guard_check_object(stmt->renameType, stmt->object, "RENAME");
}

/* SET SCHEMA of a guarded object, or of anything into the schema */
static void
guard_check_set_schema(AlterObjectSchemaStmt * stmt)
{
	if (stmt->relation)
		guard_check_rangevar(stmt->relation, "SET SCHEMA");
	else
		guard_check_object(stmt->objectType, stmt->object, "SET SCHEMA");
	guard_check_schema_name(stmt->newschema, "SET SCHEMA");
}

/* OWNER TO of a guarded relation or object */
static void
guard_check_owner(AlterOwnerStmt * stmt)
{
	if (stmt->relation)
		guard_check_rangevar(stmt->relation, "OWNER TO");
	else
		guard_check_object(stmt->objectType, stmt->object, "OWNER TO");
}

/* CREATE [OR REPLACE] FUNCTION or PROCEDURE in the schema */
static void
guard_check_create_function(CreateFunctionStmt * stmt)
{
	char	   *name;
	Oid			nsp;

	nsp = QualifiedNameGetCreationNamespace(stmt->funcname, &name);
	guard_check_creation(nsp, "CREATE FUNCTION", name);
}

/*
 * CREATE [OR REPLACE] VIEW or CREATE SEQUENCE of a relation rv in the
 * schema (temporary ones never are)
 */
static void
guard_check_create_relation(RangeVar * rv, const char *action)
{
	if (rv->relpersistence != RELPERSISTENCE_TEMP)
		guard_check_creation(RangeVarGetCreationNamespace(rv), action,
							 rv->relname);
}

/*
 * COPY FROM into a guarded table whose rows are not free to edit, unless
 * it is the restore of a dump (restore.c)
 */
static void
guard_check_copy_from(CopyStmt *stmt)
{
	Oid			relid;

	if (!stmt->is_from || stmt->relation == NULL)
		return;
	relid = RangeVarGetRelid(stmt->relation, NoLock, true);
	if (relation_guarded(relid) && !relation_rows_free(relid) &&
		!aa_restore_copy_start(stmt, relid))
		guard_check("COPY FROM", relation_label(relid));
}

/*
 * ALTER EXTENSION access_audit: ADD and DROP are refused; UPDATE by a
 * superuser is sanctioned, and recorded (restore.c)
 */
static void
guard_check_alter_extension(Node *parsetree)
{
	if (IsA(parsetree, AlterExtensionContentsStmt))
	{
		if (strcmp(((AlterExtensionContentsStmt *) parsetree)->extname,
				   AA_NAME) == 0)
			guard_check("ALTER EXTENSION", "extension " AA_NAME);
		return;
	}
	Assert(IsA(parsetree, AlterExtensionStmt));
	if (strcmp(((AlterExtensionStmt *) parsetree)->extname, AA_NAME) != 0)
		return;
	if (superuser())
	{
		aa_restore_exclude_writer();
		aa_restore_update_start();
	}
	else
		guard_check("ALTER EXTENSION", "extension " AA_NAME);
}

/*
 * The utility gate: refuses (with a record) a statement that changes a
 * guarded object, one kind of statement per case.  Returns true if the
 * statement is harmless to guarded relations although it touches them
 * (GRANT, VACUUM...), so that the post-alter catch-all lets its catalog
 * updates pass.
 */
static bool
guard_check_utility(Node *parsetree)
{
	/* nothing is guarded in a database without the extension */
	if (!OidIsValid(guard_namespace()))
		return false;

	/* a restore builds the log's dumped partitions (restore.c) */
	if (aa_restore_partition_ddl(parsetree))
		return true;

	switch (nodeTag(parsetree))
	{
		case T_TruncateStmt:
			guard_check_truncate((TruncateStmt *) parsetree);
			break;
		case T_AlterTableStmt:
			guard_check_alter_table((AlterTableStmt *) parsetree);
			break;
		case T_RenameStmt:
			guard_check_rename((RenameStmt *) parsetree);
			break;
		case T_AlterObjectSchemaStmt:
			guard_check_set_schema((AlterObjectSchemaStmt *) parsetree);
			break;
		case T_AlterOwnerStmt:
			guard_check_owner((AlterOwnerStmt *) parsetree);
			break;
		case T_AlterFunctionStmt:
			guard_check_func(((AlterFunctionStmt *) parsetree)->objtype,
							 ((AlterFunctionStmt *) parsetree)->func, "ALTER");
			break;
		case T_CreateFunctionStmt:
			guard_check_create_function((CreateFunctionStmt *) parsetree);
			break;
		case T_ViewStmt:
			guard_check_create_relation(((ViewStmt *) parsetree)->view,
										"CREATE VIEW");
			break;
		case T_CreateStmt:
		case T_CreateForeignTableStmt:
			guard_check_create((CreateStmt *) parsetree);
			break;
		case T_CreateSeqStmt:
			guard_check_create_relation(((CreateSeqStmt *) parsetree)->sequence,
										"CREATE SEQUENCE");
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
			guard_check_copy_from((CopyStmt *) parsetree);
			break;
		case T_AlterExtensionContentsStmt:
		case T_AlterExtensionStmt:
			guard_check_alter_extension(parsetree);
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
	List	   *role_records = NIL;
	char	   *update_from = NULL;

	if (IsTransactionState() && !IsParallelWorker())
	{
		guard_mark_log(true);
		guard_note_maintenance();
		guard_note_settings();
		if (IsA(parsetree, AlterExtensionStmt) &&
			strcmp(((AlterExtensionStmt *) parsetree)->extname, AA_NAME) == 0)
			update_from = aa_restore_extension_version();
		harmless = guard_check_utility(parsetree);
		role_records = guard_check_roles(parsetree);
		if (guard_may_drop_extension(parsetree) &&
			guard_decide() == GUARD_MAINTENANCE)
			guard_read_log_end();
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
		/* a restore's statement that has nothing left to do (restore.c) */
		if (!aa_restore_skip_statement())
			aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
										  readOnlyTree, context, params, queryEnv,
										  dest, qc);
		/* restores and updates of the extension (restore.c) */
		if (IsA(parsetree, CopyStmt) && aa_restore_copying(InvalidOid))
			aa_restore_copy_done(qc ? qc->nprocessed : 0);
		else if (IsA(parsetree, CreateExtensionStmt) &&
				 strcmp(((CreateExtensionStmt *) parsetree)->extname,
						AA_NAME) == 0)
			aa_restore_extension_created();
		else if (IsA(parsetree, AlterExtensionStmt) && aa_restore_updating())
			aa_restore_update_done(update_from, true);
		else if (IsA(parsetree, CreateStmt))
			aa_restore_utility_done(parsetree);
	}
	PG_FINALLY();
	{
		if (harmless)
			harmless_utility_depth--;
		aa_restore_copy_reset();
		if (IsA(parsetree, AlterExtensionStmt))
			aa_restore_update_done(NULL, false);
	}
	PG_END_TRY();

	if (role_records != NIL && IsTransactionState())
		guard_record_roles(role_records);
	if (IsA(parsetree, CreateExtensionStmt) && IsTransactionState() &&
		strcmp(((CreateExtensionStmt *) parsetree)->extname, AA_NAME) == 0 &&
		OidIsValid(guard_extension()))
		guard_open_log();

	/* capture.c has recorded SET/RESET of one setting: no second record */
	if (IsA(parsetree, VariableSetStmt) &&
		((VariableSetStmt *) parsetree)->name != NULL)
		guard_absorb_setting(((VariableSetStmt *) parsetree)->name);
	if (IsTransactionState() && !IsParallelWorker() && !guard_is_writer())
		guard_record_role_db_setting(parsetree);

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
				if (classId == ExtensionRelationId &&
					objectId == guard_extension() &&
					guard_decide() != GUARD_REFUSE)
					dropping_ours = true;
				if (classId == DatabaseRelationId)
				{
					guard_check_drop_database(objectId);
					dropping_database = objectId;
				}
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
				/* a sanctioned update sets the new version (restore.c) */
				if (classId == ExtensionRelationId && aa_restore_updating() &&
					objectId == guard_extension())
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
 * Is a function one of the extension's writing functions, check_exports(),
 * ack() or collect_rollup()?  Needs a transaction; may process
 * invalidations (catalog lookups), so callers keep no pointers into caches
 * across it.
 */
static bool
guard_writing_function(Oid fn)
{
	char	   *name = get_func_name(fn);
	Oid			ext;

	if (name == NULL ||
		(strcmp(name, "check_exports") != 0 && strcmp(name, "ack") != 0 &&
		 strcmp(name, "collect_rollup") != 0))
		return false;
	if (get_func_namespace(fn) != guard_namespace())
		return false;
	ext = guard_extension();
	return OidIsValid(ext) &&
		getExtensionOfObject(ProcedureRelationId, fn) == ext;
}

/*
 * fmgr_hook: count the calls of the extension's SECURITY DEFINER functions
 * check_exports(), ack() and collect_rollup(), inside which they may write
 * alerts, alert_acks, actor_daily and collect_progress.
 *
 * PostgreSQL calls the hook for every SECURITY DEFINER function (and every
 * function with SET clauses), with a private datum that lives as long as
 * the function's FmgrInfo, in that FmgrInfo's memory context.  Our state
 * hangs there: whether the function is a writing one (decided once per
 * FmgrInfo) and how many of its calls are counted in definer_depth, so the
 * end and abort events need no lookup and no cache that an invalidation
 * could take away mid-call.  A previous hook keeps its own private datum
 * inside ours.  definer_depth is also reset at transaction end, and counts
 * from an earlier transaction (definer_epoch) are never taken back, so an
 * error or FATAL between the events cannot leave the count raised or
 * lowered for the statements that follow.
 */
static void
aa_guard_fmgr_hook(FmgrHookEventType event, FmgrInfo * flinfo, Datum *private)
{
	GuardCallState *state = (GuardCallState *) DatumGetPointer(*private);

	if (state == NULL)
	{
		state = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(GuardCallState));
		state->writing = -1;
		*private = PointerGetDatum(state);
	}

	switch (event)
	{
		case FHET_START:
			if (prev_fmgr_hook)
				prev_fmgr_hook(event, flinfo, &state->prev_private);
			if (state->writing < 0 && IsTransactionState() &&
				!IsParallelWorker())
				state->writing = guard_writing_function(flinfo->fn_oid) ? 1 : 0;
			if (state->writing == 1)
			{
				/* forget counts of an earlier transaction */
				if (state->epoch != definer_epoch)
				{
					state->epoch = definer_epoch;
					state->counted = 0;
				}
				state->counted++;
				definer_depth++;
			}
			break;
		case FHET_END:
		case FHET_ABORT:
			/* take our count back first: the previous hook may throw */
			if (state->counted > 0 && state->epoch == definer_epoch)
			{
				state->counted--;
				if (definer_depth > 0)
					definer_depth--;
			}
			if (prev_fmgr_hook)
				prev_fmgr_hook(event, flinfo, &state->prev_private);
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
	if (strcmp(action, "INSERT") == 0 && aa_restore_copying(relid))
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
	CacheRegisterRelcacheCallback(guard_relcache_callback, (Datum) 0);
	RegisterXactCallback(guard_xact_callback, NULL);
}
