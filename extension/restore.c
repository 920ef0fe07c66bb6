/*-------------------------------------------------------------------------
 *
 * restore.c
 *		The sanctioned ways into the audit tables besides the writer: the
 *		restore of a dump, and ALTER EXTENSION access_audit UPDATE.
 *
 * A restore loads the dumped audit tables (they are extension
 * configuration tables, so pg_dump carries their rows) with COPY ... FROM
 * stdin.  The guard lets such a COPY through only when it is recognisably a
 * restore: a superuser, in a session with the settings every pg_dump script
 * and pg_restore start with (search_path '' and check_function_bodies off),
 * into one of the tables named in restore_tables, and only while that table
 * is empty; each table restored is recorded.  Once the session has loaded
 * every table the chain is made of, the whole chain is verified before that
 * last COPY commits: a dump that was changed fails to restore.  The
 * dictionaries need nothing more: the writer gives a new entry one more
 * than the table's highest id (dict.c), and a fresh writer starts after a
 * restore.  A MAINTENANCE record (action RESTORE) says who restored how many records,
 * up to which chain head; the writer appends it, and everything after it,
 * to the restored chain.
 *
 * While a restore loads the chain, the database's writer must not append:
 * the restored records keep their sequence numbers.  The restoring session
 * holds a session-level lock (an advisory lock tag of our own, in
 * RowExclusiveLock mode, so that restoring sessions do not block each
 * other) from its CREATE EXTENSION, or from its first
 * restore COPY, until the transaction that verified the chain commits, or
 * until the session ends.  The writer takes the same tag in ShareLock mode around
 * each batch; when it cannot, it waits, then exits so that a fresh writer
 * loads the restored chain head.  Records made meanwhile wait in the queue.
 *
 * The partitions of the log that the writer made are no members of the
 * extension: pg_dump dumps them as tables of their own.  A restoring
 * session may create them (the writer's names only), attach them to
 * log_data and give them their key and the guard's trigger, nothing else
 * (aa_restore_partition_ddl); each is loaded by a restore COPY like the
 * other tables, and the log counts as loaded when all of its partitions
 * are.
 *
 * pg_upgrade restores the schema in binary-upgrade mode, where the module
 * installs nothing but a label provider that takes the tags as the old
 * cluster had them; the data files, the log's among them, are carried
 * over by pg_upgrade itself.
 *
 * Ownership: no shared state besides that lock.  Everything else here is
 * backend-local: which tables this session restored (reset to the last
 * committed state on abort), and whether an extension update runs.
 *
 * IDENTIFICATION
 *	  extension/restore.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_extension.h"
#include "commands/seclabel.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "partitioning/partdesc.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "access_audit.h"
#include "chain.h"
#include "dict.h"
#include "records.h"
#include "restore.h"
#include "rowids.h"

/* field4 of our advisory lock tag: user advisory locks use 1 and 2 */
#define AA_RESTORE_LOCK_KEY		0x41415245	/* "AARE" */
#define AA_RESTORE_LOCK_CLASS	0x4141

/* a table a restore may load */
typedef struct RestoreTable
{
	const char *name;
	bool		chain;			/* verify() reads it: must be restored whole */
} RestoreTable;

static const RestoreTable restore_tables[] = {
	{"chain_checkpoints", true},
	{"log_data", true},
	{"sessions", true},
	{"shapes", true},
	{"string_sets", true},
	{"strings", true},
	{"actor_daily", false},
	{"alerts", false},
	{"alert_acks", false},
	/* row identities (rowids.c); row_identities and row_key are admins' rows */
	{"row_sets", false},
	{"row_set_reads", false},
	/* a central server's copies of its sources' logs (remote.c) */
	{"collected_log", false},
	{"collected_sessions", false},
	{"collected_shapes", false},
	{"collected_strings", false},
	{"collected_string_sets", false},
	{"collected_checkpoints", false},
	{"collect_progress", false},
	{"collected_row_sets", false},
	{"collected_row_set_reads", false},
	{"collected_row_keys", false},
};

#define N_RESTORE_TABLES lengthof(restore_tables)

/* this session holds the restore lock */
static bool restore_locked = false;

/* release it when the current transaction commits */
static bool release_at_commit = false;

/* the restore COPY running now, or -1 */
static int	copying = -1;

/* tables restored by this session: now, and as of the last commit */
static uint32 loaded_mask = 0;
static uint32 committed_mask = 0;
static int64 loaded_rows[N_RESTORE_TABLES];
static int64 committed_rows[N_RESTORE_TABLES];

/* ALTER EXTENSION access_audit UPDATE is running */
static bool updating = false;

/*
 * The partitions of the log: those this session made (CREATE TABLE of a
 * dumped partition) and those it restored (COPY into one), each with its
 * length as of the last commit; in TopMemoryContext.  The relation of the
 * restore COPY running now, and whether the statement running now is a
 * CREATE TABLE of a dumped partition.
 */
static List *built_parts = NIL;
static int	built_committed = 0;
static List *loaded_parts = NIL;
static int	loaded_parts_committed = 0;
static Oid	copying_relid = InvalidOid;
static bool creating_part = false;

/* the statement running now is to be skipped (aa_restore_skip_statement) */
static bool skip_statement = false;

/* index of log_data in restore_tables */
#define RESTORE_LOG		1

/*
 * The lock tag that keeps the writer out while a restore loads the chain.
 * An advisory tag (of a class no user advisory lock has), because only the
 * user lock method keeps session locks across an aborted transaction and
 * releases them at backend exit; it shows in pg_locks as advisory.
 */
static void
restore_locktag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, AA_RESTORE_LOCK_KEY, 0,
						 AA_RESTORE_LOCK_CLASS);
}

/*
 * Take the restore lock for the rest of the session (or until the chain
 * is verified), waiting for a batch the writer is writing.
 */
static void
restore_lock(void)
{
	LOCKTAG		tag;

	if (restore_locked)
		return;
	restore_locktag(&tag);
	(void) LockAcquire(&tag, RowExclusiveLock, true, false);
	restore_locked = true;
}

/*
 * Transaction end: release the restore lock after the verifying
 * transaction committed; forget what an aborted transaction restored.
 */
static void
restore_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
			built_committed = list_length(built_parts);
			loaded_parts_committed = list_length(loaded_parts);
			committed_mask = loaded_mask;
			memcpy(committed_rows, loaded_rows, sizeof(loaded_rows));
			if (release_at_commit && restore_locked)
			{
				LOCKTAG		tag;

				restore_locktag(&tag);
				LockRelease(&tag, RowExclusiveLock, true);
				restore_locked = false;
			}
			release_at_commit = false;
			updating = false;
			copying = -1;
			break;
		case XACT_EVENT_ABORT:
			built_parts = list_truncate(built_parts, built_committed);
			loaded_parts = list_truncate(loaded_parts, loaded_parts_committed);
			creating_part = false;
			loaded_mask = committed_mask;
			memcpy(loaded_rows, committed_rows, sizeof(loaded_rows));
			release_at_commit = false;
			updating = false;
			copying = -1;
			break;
		default:
			break;
	}
}

/*
 * Is this session recognisably restoring a dump?  A superuser, with the
 * settings that pg_dump's scripts and pg_restore set before anything else:
 * an empty search_path (set_config() gives '', SET gives "") and
 * check_function_bodies off.
 */
bool
aa_restore_session(void)
{
	return superuser() && !check_function_bodies &&
		namespace_search_path != NULL &&
		(strcmp(namespace_search_path, "") == 0 ||
		 strcmp(namespace_search_path, "\"\"") == 0);
}

/*
 * access_audit.log_data, or InvalidOid.
 */
static Oid
restore_log_relid(void)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid("log_data", nsp) : InvalidOid;
}

/*
 * Is relid a partition of access_audit.log_data?
 */
static bool
restore_is_log_partition(Oid relid)
{
	Oid			log = restore_log_relid();

	return OidIsValid(log) && OidIsValid(relid) &&
		get_rel_relispartition(relid) &&
		get_partition_parent(relid, true) == log;
}

/*
 * Index of a restorable table of schema access_audit, or -1.  The
 * partitions of log_data count as log_data.
 */
static int
restore_table_index(Oid relid)
{
	char	   *name;
	int			i;

	name = get_rel_name(relid);
	if (name == NULL)
		return -1;
	for (i = 0; i < (int) N_RESTORE_TABLES; i++)
		if (strcmp(restore_tables[i].name, name) == 0)
			return i;
	if (restore_is_log_partition(relid))
		return RESTORE_LOG;
	return -1;
}

/*
 * Is this the name the writer gives a partition of the log
 * (log_data_p<first seq>)?
 */
static bool
restore_partition_name(const char *name)
{
	const char *p;

	if (strncmp(name, "log_data_p", 10) != 0 || name[10] == '\0')
		return false;
	for (p = name + 10; *p; p++)
		if (*p < '0' || *p > '9')
			return false;
	return true;
}

/*
 * Did this session make relid, as a dumped partition of the log?
 */
static bool
restore_built(Oid relid)
{
	return OidIsValid(relid) && list_member_oid(built_parts, relid);
}

/*
 * Does a relation have rows?
 */
static bool
restore_relation_has_rows(Oid relid)
{
	char	   *sql;
	bool		has;

	sql = psprintf("SELECT 1 FROM %s LIMIT 1",
				   quote_qualified_identifier(AA_SCHEMA, get_rel_name(relid)));
	SPI_connect();
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", sql);
	has = SPI_processed > 0;
	SPI_finish();
	return has;
}

/*
 * Has every partition of the log been restored by this session?
 */
static bool
restore_log_partitions_loaded(void)
{
	Oid			log = restore_log_relid();
	Relation	rel;
	PartitionDesc pd;
	bool		all = true;
	int			i;

	if (!OidIsValid(log) || get_rel_relkind(log) != RELKIND_PARTITIONED_TABLE)
		return false;
	rel = table_open(log, AccessShareLock);
	pd = RelationGetPartitionDesc(rel, true);
	for (i = 0; i < pd->nparts && all; i++)
		all = list_member_oid(loaded_parts, pd->oids[i]);
	table_close(rel, AccessShareLock);
	return all;
}

/*
 * Called by the guard for DDL in a restoring session.  pg_dump dumps the
 * partitions of the log that the writer made (no members of the extension)
 * as tables of their own: CREATE TABLE, OWNER TO, ATTACH PARTITION to
 * log_data, then (after their rows) their primary key, its ATTACH to
 * log_data_pkey, and the guard's trigger.  These statements, and only on
 * tables the session made itself with the writer's partition names, are
 * let through; the rows they receive go through the restore COPY like the
 * rest of the chain, and are verified with it.  Returns true to let the
 * statement pass (the guard treats it as harmless); the restore lock is
 * held from the first one, so the writer makes no partition meanwhile.
 */
bool
aa_restore_partition_ddl(Node *parsetree)
{
	creating_part = false;
	skip_statement = false;
	if (!aa_restore_session())
		return false;

	switch (nodeTag(parsetree))
	{
		case T_CreateStmt:
			{
				CreateStmt *stmt = (CreateStmt *) parsetree;

				if (stmt->inhRelations != NIL || stmt->partbound != NULL ||
					stmt->partspec != NULL || stmt->ofTypename != NULL ||
					stmt->relation->schemaname == NULL ||
					strcmp(stmt->relation->schemaname, AA_SCHEMA) != 0 ||
					stmt->relation->relpersistence != RELPERSISTENCE_PERMANENT ||
					!restore_partition_name(stmt->relation->relname))
					return false;
				restore_lock();
				creating_part = true;
				return true;
			}
		case T_AlterTableStmt:
			{
				AlterTableStmt *stmt = (AlterTableStmt *) parsetree;
				Oid			relid = RangeVarGetRelid(stmt->relation, NoLock, true);
				AlterTableCmd *cmd;
				ListCell   *lc;

				if (!OidIsValid(relid))
					return false;
				if (restore_built(relid) && stmt->objtype == OBJECT_TABLE)
				{
					foreach(lc, stmt->cmds)
					{
						cmd = lfirst_node(AlterTableCmd, lc);
						if (cmd->subtype == AT_ChangeOwner ||
							cmd->subtype == AT_EnableAlwaysTrig)
							continue;
						if (cmd->subtype == AT_AddConstraint && cmd->def &&
							IsA(cmd->def, Constraint) &&
							((Constraint *) cmd->def)->contype == CONSTR_PRIMARY)
						{
							const char *conname = ((Constraint *) cmd->def)->conname;
							Oid			idx = conname == NULL ? InvalidOid :
							get_relname_relid(conname, get_rel_namespace(relid));

							/*
							 * The dump adds the partition's primary key after
							 * its rows, but attaching it to log_data (whose
							 * key the extension made) made that key already:
							 * nothing to do.
							 */
							if (list_length(stmt->cmds) == 1 && OidIsValid(idx) &&
								get_rel_relkind(idx) == RELKIND_INDEX &&
								IndexGetRelation(idx, false) == relid)
								skip_statement = true;
							continue;
						}
						return false;
					}
					restore_lock();
					return true;
				}
				if (list_length(stmt->cmds) != 1)
					return false;
				cmd = linitial_node(AlterTableCmd, stmt->cmds);
				if (cmd->subtype != AT_AttachPartition || cmd->def == NULL ||
					!IsA(cmd->def, PartitionCmd))
					return false;
				if (stmt->objtype == OBJECT_TABLE && relid == restore_log_relid())
				{
					Oid			part = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
														NoLock, true);

					if (!restore_built(part))
						return false;
					restore_lock();
					return true;
				}
				if (stmt->objtype == OBJECT_INDEX &&
					relid == get_relname_relid("log_data_pkey",
											   get_namespace_oid(AA_SCHEMA, false)))
				{
					Oid			idx = RangeVarGetRelid(((PartitionCmd *) cmd->def)->name,
													   NoLock, true);

					if (!OidIsValid(idx) || get_rel_relkind(idx) != RELKIND_INDEX ||
						!restore_built(IndexGetRelation(idx, false)))
						return false;
					restore_lock();
					return true;
				}
				return false;
			}
		case T_CreateTrigStmt:
			{
				CreateTrigStmt *stmt = (CreateTrigStmt *) parsetree;
				char	   *fnsp = NULL;
				char	   *fname = NULL;

				if (list_length(stmt->funcname) == 2)
				{
					fnsp = strVal(linitial(stmt->funcname));
					fname = strVal(lsecond(stmt->funcname));
				}
				if (stmt->row || stmt->isconstraint || stmt->replace ||
					strcmp(stmt->trigname, "guard") != 0 || fnsp == NULL ||
					strcmp(fnsp, AA_SCHEMA) != 0 ||
					strcmp(fname, "_guard_trigger") != 0 ||
					!restore_built(RangeVarGetRelid(stmt->relation, NoLock, true)))
					return false;
				restore_lock();
				return true;
			}
		default:
			return false;
	}
}

/*
 * Is the statement that aa_restore_partition_ddl() let pass one that has
 * nothing left to do (and would fail if run)?
 */
bool
aa_restore_skip_statement(void)
{
	bool		skip = skip_statement;

	skip_statement = false;
	return skip;
}

/*
 * A utility statement passed by aa_restore_partition_ddl() ran: remember
 * the partition a CREATE TABLE made.
 */
void
aa_restore_utility_done(Node *parsetree)
{
	if (creating_part && IsA(parsetree, CreateStmt))
	{
		Oid			relid = RangeVarGetRelid(((CreateStmt *) parsetree)->relation,
											 NoLock, true);

		if (OidIsValid(relid))
		{
			MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

			built_parts = lappend_oid(built_parts, relid);
			MemoryContextSwitchTo(old);
		}
	}
	creating_part = false;
}

/*
 * Does access_audit.<name> have rows?
 */
static bool
restore_table_has_rows(const char *name)
{
	char	   *sql;
	bool		has;

	sql = psprintf("SELECT 1 FROM %s.%s LIMIT 1", AA_SCHEMA,
				   quote_identifier(name));
	SPI_connect();
	if (SPI_execute(sql, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read access_audit.%s", name);
	has = SPI_processed > 0;
	SPI_finish();
	return has;
}

/*
 * The detail of a restore record: {"action": ..., plus the fields given
 * as already-encoded JSON}.
 */
static char *
restore_detail(const char *action, const char *rest)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": ");
	escape_json(&buf, action);
	if (rest)
		appendStringInfo(&buf, ", %s", rest);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Called by the guard for COPY ... FROM into a guarded table of ours.
 * Returns true if it is a restore the guard must let through: then the
 * lock is held, the table was found empty if it is part of the chain, and
 * the COPY is marked running until aa_restore_copy_done() or
 * aa_restore_copy_reset().  Returns false if it is no restore (the guard
 * decides as for any COPY).  Raises an error, recorded, if it is a restore
 * that would mix the dump's records with this database's own.
 */
bool
aa_restore_copy_start(CopyStmt *stmt, Oid relid)
{
	int			i;
	bool		had_lock;

	if (stmt->filename != NULL || !aa_restore_session())
		return false;
	i = restore_table_index(relid);
	if (i < 0)
		return false;

	/*
	 * Only into empty tables: a restore never mixes two chains, nor adds to
	 * what a database has already.
	 */
	had_lock = restore_locked;
	restore_lock();

	/*
	 * A partition of the log: it must be empty, and so must the whole log
	 * when the session restores the first of them.
	 */
	if (i == RESTORE_LOG && relid != restore_log_relid() ?
		(restore_relation_has_rows(relid) ||
		 (loaded_parts == NIL && restore_table_has_rows(restore_tables[i].name))) :
		restore_table_has_rows(restore_tables[i].name))
	{
		char	   *object = psprintf("%s.%s", AA_SCHEMA, restore_tables[i].name);
		StringInfoData rest;

		/* a refused restore keeps the writer waiting no longer */
		if (!had_lock)
		{
			LOCKTAG		tag;

			restore_locktag(&tag);
			LockRelease(&tag, RowExclusiveLock, true);
			restore_locked = false;
		}

		initStringInfo(&rest);
		appendStringInfoString(&rest, "\"object\": ");
		escape_json(&rest, object);
		appendStringInfoString(&rest, ", \"reason\": \"not empty\"");
		aa_capture_event("REFUSED", object, NULL, NULL,
						 restore_detail("RESTORE", rest.data));
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("cannot restore audit records into \"%s\": it is not empty",
					   object),
				errdetail("Restored records keep their sequence numbers and hash chain, so they can only be loaded into empty tables; this attempt has been recorded."),
				errhint("Restore into a new database, with pg_restore --create or CREATE DATABASE followed by pg_restore -d."));
	}
	copying = i;
	copying_relid = relid;
	return true;
}

/*
 * Is a restore COPY into relid running (InvalidOid: into any table)?
 */
bool
aa_restore_copying(Oid relid)
{
	if (copying < 0)
		return false;
	if (!OidIsValid(relid))
		return true;
	return restore_table_index(relid) == copying;
}

/*
 * The restore COPY ended, by error or not.
 */
void
aa_restore_copy_reset(void)
{
	copying = -1;
}

/*
 * Verify the restored chain and record the restore.  Raises an error, recorded, if the
 * chain does not verify.  Runs in the transaction of the last COPY.
 */
static void
restore_complete(void)
{
	AuditVerifyResult res;
	StringInfoData rest;
	int			i;
	int64		head_seq = 0;
	char	   *head_hash = NULL;
	bool		first;
	uint64		nsources;
	List	   *sources = NIL;
	ListCell   *lc;

	CommandCounterIncrement();
	if (ActiveSnapshotSet())
		PushCopiedSnapshot(GetActiveSnapshot());
	else
		PushActiveSnapshot(GetTransactionSnapshot());
	UpdateActiveSnapshotCommandId();

	aa_chain_verify(NULL, -1, -1, &res);
	if (!res.ok)
	{
		initStringInfo(&rest);
		appendStringInfo(&rest, "\"first_bad_seq\": " INT64_FORMAT ", \"detail\": ",
						 res.first_bad_seq);
		escape_json(&rest, res.detail ? res.detail : "");
		aa_capture_event("REFUSED", AA_SCHEMA ".log", NULL, NULL,
						 restore_detail("RESTORE", rest.data));
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("restored audit log does not verify"),
				errdetail("At record " INT64_FORMAT ": %s  The dump was changed or truncated after it was made; this attempt has been recorded.",
						  res.first_bad_seq,
						  res.detail ? res.detail : "the hash chain is broken."),
				errhint("Restore an intact copy of the dump."));
	}

	/*
	 * The logs a central server collected, each on its own chain (their
	 * tables sort before the log's, so pg_restore has loaded them by now).
	 */
	SPI_connect();
	if (SPI_execute("SELECT DISTINCT c.source FROM access_audit.collected_log c"
					" ORDER BY 1", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the restored sources");
	nsources = SPI_processed;
	for (i = 0; i < (int) nsources; i++)
		sources = lappend(sources, SPI_getvalue(SPI_tuptable->vals[i],
												SPI_tuptable->tupdesc, 1));
	foreach(lc, sources)
	{
		char	   *source = lfirst(lc);
		AuditVerifyResult sres;

		aa_chain_verify(source, -1, -1, &sres);
		if (!sres.ok)
		{
			initStringInfo(&rest);
			appendStringInfoString(&rest, "\"source\": ");
			escape_json(&rest, source);
			appendStringInfo(&rest, ", \"first_bad_seq\": " INT64_FORMAT ", \"detail\": ",
							 sres.first_bad_seq);
			escape_json(&rest, sres.detail ? sres.detail : "");
			aa_capture_event("REFUSED", AA_SCHEMA ".collected_log", NULL, NULL,
							 restore_detail("RESTORE", rest.data));
			ereport(ERROR,
					errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("restored audit log collected from source \"%s\" does not verify",
						   source),
					errdetail("At record " INT64_FORMAT ": %s  The dump was changed or truncated after it was made; this attempt has been recorded.",
							  sres.first_bad_seq,
							  sres.detail ? sres.detail : "the hash chain is broken."),
					errhint("Restore an intact copy of the dump."));
		}
	}
	aa_dict_use_source(NULL);
	aa_dict_reset();

	if (SPI_execute("SELECT h.seq, pg_catalog.encode(h.hash, 'hex') FROM ("
					" (SELECT d.seq, d.hash FROM access_audit.log_data d ORDER BY d.seq DESC LIMIT 1)"
					" UNION ALL"
					" (SELECT c.seq, c.hash FROM access_audit.chain_checkpoints c ORDER BY c.seq DESC LIMIT 1)"
					") h ORDER BY h.seq DESC LIMIT 1", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read the restored chain head");
	if (SPI_processed == 1)
	{
		bool		isnull;

		head_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1,
											   &isnull));
		head_hash = SPI_getvalue(SPI_tuptable->vals[0],
								 SPI_tuptable->tupdesc, 2);
	}
	initStringInfo(&rest);
	appendStringInfo(&rest, "\"records\": " INT64_FORMAT ", \"sources\": " UINT64_FORMAT ", \"head_seq\": " INT64_FORMAT ", \"head_hash\": ",
					 res.checked, nsources, head_seq);
	aa_json_string_or_null(&rest, head_hash);
	appendStringInfoString(&rest, ", \"tables\": {");
	first = true;
	for (i = 0; i < (int) N_RESTORE_TABLES; i++)
	{
		if (!(loaded_mask & (1U << i)))
			continue;
		if (!first)
			appendStringInfoString(&rest, ", ");
		first = false;
		escape_json(&rest, restore_tables[i].name);
		appendStringInfo(&rest, ": " INT64_FORMAT, loaded_rows[i]);
	}
	appendStringInfoChar(&rest, '}');
	SPI_finish();
	PopActiveSnapshot();

	aa_capture_event("MAINTENANCE", AA_SCHEMA ".log", NULL, NULL,
					 restore_detail("RESTORE", rest.data));
	ereport(LOG,
			errmsg("access_audit restored " INT64_FORMAT " audit records up to seq " INT64_FORMAT ", chain verified",
				   res.checked, head_seq));

	/* a later restore into the emptied tables starts over */
	loaded_mask = 0;
	memset(loaded_rows, 0, sizeof(loaded_rows));
	release_at_commit = true;
}

/*
 * The restore COPY succeeded with nrows rows.  Once every chain table has
 * been loaded by this session, verify and record the restore.
 */
void
aa_restore_copy_done(uint64 nrows)
{
	int			i = copying;
	uint32		chain_mask = 0;
	int			j;

	copying = -1;
	if (i < 0)
		return;
	loaded_rows[i] += (int64) nrows;
	if (i == RESTORE_LOG && copying_relid != restore_log_relid())
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		/* the log is loaded once each of its partitions is */
		loaded_parts = lappend_oid(loaded_parts, copying_relid);
		MemoryContextSwitchTo(old);
		if (restore_log_partitions_loaded())
			loaded_mask |= (1U << i);
	}
	else
		loaded_mask |= (1U << i);

	/* each table restored is recorded, the chain's or not */
	{
		char	   *object = psprintf("%s.%s", AA_SCHEMA,
									  i == RESTORE_LOG ? get_rel_name(copying_relid) :
									  restore_tables[i].name);
		StringInfoData rest;

		initStringInfo(&rest);
		appendStringInfoString(&rest, "\"object\": ");
		escape_json(&rest, object);
		appendStringInfo(&rest, ", \"rows\": " UINT64_FORMAT, nrows);
		aa_capture_event("MAINTENANCE", object, NULL, NULL,
						 restore_detail("RESTORE TABLE", rest.data));
	}
	/* rowids.c: the row sets' own chain, and each source's collected here */
	if (strcmp(restore_tables[i].name, "row_sets") == 0)
		aa_rowids_verify_restored(false);
	else if (strcmp(restore_tables[i].name, "collected_row_sets") == 0)
		aa_rowids_verify_restored(true);
	for (j = 0; j < (int) N_RESTORE_TABLES; j++)
		if (restore_tables[j].chain)
			chain_mask |= (1U << j);
	if (restore_tables[i].chain && (loaded_mask & chain_mask) == chain_mask)
		restore_complete();
}

/*
 * CREATE EXTENSION access_audit succeeded.  In a restoring session, keep
 * the writer out from now on: the dumped chain is coming.
 */
void
aa_restore_extension_created(void)
{
	if (aa_restore_session())
		restore_lock();
}

/*
 * The installed version of extension access_audit, or NULL.
 */
char	   *
aa_restore_extension_version(void)
{
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	char	   *version = NULL;

	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber,
				F_NAMEEQ, CStringGetDatum(AA_NAME));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_pg_extension_extversion,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			version = text_to_cstring(DatumGetTextPP(d));
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return version;
}

/*
 * Is a sanctioned ALTER EXTENSION access_audit UPDATE running?
 */
bool
aa_restore_updating(void)
{
	return updating;
}

/*
 * A superuser starts ALTER EXTENSION access_audit UPDATE: the guard lets
 * the catalog changes and the update scripts through until it ends.
 */
void
aa_restore_update_start(void)
{
	updating = true;
}

/*
 * ALTER EXTENSION access_audit UPDATE ended; if it succeeded, record the
 * versions it went from and to.
 */
void
aa_restore_update_done(const char *from, bool ok)
{
	StringInfoData rest;
	char	   *to;

	updating = false;
	if (!ok)
		return;
	to = aa_restore_extension_version();
	if (from && to && strcmp(from, to) == 0)
		return;					/* nothing was updated */
	initStringInfo(&rest);
	appendStringInfoString(&rest, "\"object\": \"extension " AA_NAME "\", \"from\": ");
	aa_json_string_or_null(&rest, from);
	appendStringInfoString(&rest, ", \"to\": ");
	aa_json_string_or_null(&rest, to);
	aa_capture_event("MAINTENANCE", "extension " AA_NAME, NULL, NULL,
					 restore_detail("ALTER EXTENSION UPDATE", rest.data));
}

/*
 * DDL that changes several audit tables at once (DROP EXTENSION, DROP
 * SCHEMA, ALTER EXTENSION UPDATE) keeps the writer of this database out
 * until its transaction ends.  Without this the writer, mid-batch, holds
 * locks on some audit tables and waits for others that the DDL has already
 * locked, while the DDL waits for the writer's: a deadlock that the
 * deadlock detector resolves by failing the DDL.  Taken before the DDL
 * locks anything, it waits only for the batch the writer is writing.
 */
void
aa_restore_exclude_writer(void)
{
	LOCKTAG		tag;

	restore_locktag(&tag);
	(void) LockAcquire(&tag, RowExclusiveLock, false, false);
}

/*
 * The writer, before a batch: may it append?  If true, the caller holds
 * the restore lock in share mode until aa_restore_writer_end().
 */
bool
aa_restore_writer_begin(void)
{
	LOCKTAG		tag;

	restore_locktag(&tag);
	return LockAcquire(&tag, ShareLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * The writer's batch is committed.
 */
void
aa_restore_writer_end(void)
{
	LOCKTAG		tag;

	restore_locktag(&tag);
	LockRelease(&tag, ShareLock, true);
}

/*
 * The writer found a restore loading the chain: wait until it is done.
 * The caller then exits, so that a fresh writer loads the restored head.
 */
void
aa_restore_writer_wait(void)
{
	ereport(LOG,
			errmsg("access_audit writer waits while the audit tables of this database are restored, updated or dropped"));
	for (;;)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 100L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (aa_restore_writer_begin())
		{
			aa_restore_writer_end();
			return;
		}
	}
}

/*
 * Register the transaction callback.  Called from _PG_init.
 */
void
aa_restore_init(void)
{
	RegisterXactCallback(restore_xact_callback, NULL);
}

/*
 * Label provider hook in binary-upgrade mode: the tags come from the old
 * cluster's catalog, which checked them when they were set.
 */
static void
restore_upgrade_label_hook(const ObjectAddress *object, const char *seclabel)
{
	if (!IsBinaryUpgrade)
		elog(ERROR, "access_audit binary-upgrade label provider used outside binary upgrade");
}

/*
 * _PG_init in binary-upgrade mode (pg_upgrade): register the label
 * provider only, so that the dumped SECURITY LABEL statements restore.
 */
void
aa_restore_binary_upgrade_init(void)
{
	register_label_provider(AA_LABEL_PROVIDER, restore_upgrade_label_hook);
}
