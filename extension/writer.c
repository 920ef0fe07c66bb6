/*-------------------------------------------------------------------------
 *
 * writer.c
 *		The launcher and the per-database writer background workers.
 *
 * This file owns getting records from the queue into access_audit.log:
 * starting one writer per database on demand (the launcher), and in each
 * writer, batching, sequence numbers, the hash chain, the multi-insert (into
 * the seq range partitions of log_data, which partition.c makes before a
 * batch and routes the batch's rows to), the daily roll-up and the commit
 * that must happen before ring space is freed.
 *
 * Ownership: exactly one writer per database holds the database's queue
 * slot (aa_queue_claim_writer); it alone assigns seq and extends the hash
 * chain, so neither needs a lock.  Its last seq and hash live in process
 * memory and are reloaded from the log whenever the writer starts, checked
 * against the head its predecessor stored in the queue file after each
 * commit (aa_queue_chain_head_set).  The ring position of the last
 * committed record is stored in access_audit.writer_state in the same
 * transaction as the records, so a crash between commit and freeing ring
 * space never writes a record twice.  Writers leave when idle and are
 * started again on demand, or after a failure with a back-off (see
 * aa_queue_release_writer and aa_queue_writer_may_start).
 *
 * IDENTIFICATION
 *	  extension/writer.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/inet.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "chain.h"
#include "compat.h"
#include "dict.h"
#include "notify.h"
#include "partition.h"
#include "queue.h"
#include "quota.h"
#include "records.h"
#include "restore.h"
#include "rowids.h"
#include "siem.h"
#include "tags.h"
#include "writer.h"

/* writer state, valid once loaded */
typedef struct WriterState
{
	bool		loaded;
	Oid			extoid;			/* this installation of the extension */
	Oid			log_relid;
	int64		last_seq;
	uint8		last_hash[AA_HASH_LEN];
	uint64		ring_id;
	int64		last_pos;		/* ring position committed last, or -1 */
	char	   *dbname;
	SPIPlanPtr	state_plan;
	SPIPlanPtr	daily_plan;

	/*
	 * Slots reused by every batch.  Their descriptor is a private copy (not
	 * reference-counted), so they pin nothing in a resource owner: creating
	 * and dropping thousands of pinned slots per batch made the resource
	 * owner's linear search the writer's top cost.
	 */
	TupleDesc	slot_desc;
	TupleTableSlot **slots;
	int			nslots;

	/* rings of standbys whose records were ingested here: OriginRing */
	HTAB	   *origin_rings;
} WriterState;

/*
 * How far a standby's ring is written here (from writer_state, then kept
 * up to date), so that a batch ingested twice is written once.
 */
typedef struct OriginRing
{
	uint64		ring_id;		/* hash key */
	int64		last_pos;		/* committed, or written in this batch */
	int64		committed_pos;	/* as of the last commit */
	char		origin[NAMEDATALEN * 2];
} OriginRing;

static WriterState ws;

/*
 * A writer with nothing to write for this long leaves its database (and is
 * started again on demand): less than the 5 s that CREATE DATABASE ...
 * TEMPLATE and ALTER DATABASE ... RENAME wait for other sessions to leave.
 */
#define AA_WRITER_IDLE_EXIT_MS	1000


static object_access_hook_type prev_object_access_hook = NULL;
static Oid	dropping_db = InvalidOid;
static bool dropping_extension = false;
static char dropping_dbname[NAMEDATALEN];	/* no catalog access at commit */

static void writer_object_access(ObjectAccessType access, Oid classId,
								 Oid objectId, int subId, void *arg);
static void writer_xact_callback(XactEvent event, void *arg);
static void writer_no_extension(void);

/*
 * What the writer's own transactions need, whatever ALTER DATABASE or
 * ALTER ROLE ... SET put into pg_db_role_setting: those settings are
 * applied when the worker connects, so each is overridden here.  Nothing
 * the database's owner or users can define (functions, operators, types in
 * other schemas) is reachable through search_path, no setting can make a
 * transaction read-only, time it out or let its commit be lost in a
 * crash, and triggers fire as designed (the guard's ALWAYS triggers fire
 * anyway).
 */
static const struct
{
	const char *name;
	const char *value;
}			writer_settings[] =

{
	{"search_path", "pg_catalog, pg_temp"},
	{"default_transaction_read_only", "off"},
	{"default_transaction_isolation", "read committed"},
	{"default_transaction_deferrable", "off"},
	{"statement_timeout", "0"},
	{"lock_timeout", "0"},
	{"idle_in_transaction_session_timeout", "0"},
	{"idle_session_timeout", "0"},
	/* ring space is freed after commit: the commit must be durable */
	{"synchronous_commit", "local"},
	{"session_replication_role", "origin"},
	{"row_security", "on"},
	{"check_function_bodies", "on"},
	{"default_table_access_method", "heap"},
	{"temp_file_limit", "-1"},
	{"transform_null_equals", "off"},
	{"array_nulls", "on"},
	{"standard_conforming_strings", "on"},
	{"jit", "off"},
	{"client_min_messages", "warning"},
	{"exit_on_error", "off"},
};

/*
 * Override, in this process, every setting the database or a role may have
 * set that the writer's work depends on (writer_settings).  Called right
 * after the worker has connected to its database, before any transaction;
 * PGC_S_OVERRIDE outranks every per-database, per-role and configuration
 * file value, so neither ALTER DATABASE/ROLE SET nor a reload changes them.
 * Also used by the shipper of a hot standby, which runs in the same worker.
 */
void
aa_writer_pin_settings(void)
{
	int			i;

	for (i = 0; i < lengthof(writer_settings); i++)
		SetConfigOption(writer_settings[i].name, writer_settings[i].value,
						PGC_SUSET, PGC_S_OVERRIDE);
}

/*
 * Register the launcher.  Called from _PG_init.
 */
void
aa_writer_init(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	/* a hot standby ships its records (remote.c): start once it is readable */
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "access_audit");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aa_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "access_audit launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "access_audit launcher");
	RegisterBackgroundWorker(&worker);

	prev_object_access_hook = object_access_hook;
	object_access_hook = writer_object_access;
	RegisterXactCallback(writer_xact_callback, NULL);
}

/*
 * object_access hook: DROP DATABASE waits for every session of the
 * database to leave, our writer included.  Ask the writer to stop (it is
 * restarted on demand if the drop fails) and, once the drop commits,
 * discard the database's pending records: their log went with it.
 *
 * DROP EXTENSION access_audit (possible only in maintenance mode) is the
 * same for one database: once it commits, the records still queued are
 * discarded and every backend stops capturing at its next statement (the
 * tag generation moves).  Kept, they would hold the ring's tail for good
 * and stop every reader of every database once the ring was full.  CREATE
 * EXTENSION access_audit is remembered with its transaction, so that a
 * writer that finds no extension can tell whether one may still come
 * (writer_no_extension).
 */
static void
writer_object_access(ObjectAccessType access, Oid classId, Oid objectId,
					 int subId, void *arg)
{
	if (prev_object_access_hook)
		prev_object_access_hook(access, classId, objectId, subId, arg);
	if (access == OAT_DROP && classId == DatabaseRelationId &&
		aa_queue_ready())
	{
		dropping_db = objectId;
		aa_queue_stop_writer(objectId);
	}
	else if (classId == ExtensionRelationId && aa_queue_ready() &&
			 access == OAT_POST_CREATE)
	{
		/*
		 * Its name is not visible yet (no command counter increment since the
		 * insert), so every extension's creation counts: at worst a writer
		 * waits for another extension's transaction to end.
		 */
		aa_queue_extension_creating(MyDatabaseId, GetTopTransactionId());
	}
	else if (classId == ExtensionRelationId && aa_queue_ready() &&
			 access == OAT_DROP)
	{
		char	   *name = get_extension_name(objectId);

		if (name == NULL || strcmp(name, AA_NAME) != 0)
			return;
		dropping_extension = true;
		strlcpy(dropping_dbname, get_database_name(MyDatabaseId),
				sizeof(dropping_dbname));
		aa_tags_changed();
	}
}

static void
writer_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT)
	{
		if (OidIsValid(dropping_db))
			aa_queue_forget_database(dropping_db);
		if (dropping_extension)
		{
			ereport(LOG,
					errmsg("access_audit discarded %d queued records of database \"%s\": its access_audit extension was dropped",
						   aa_queue_discard_database(MyDatabaseId, aa_queue_head()),
						   dropping_dbname));
			aa_queue_stop_writer(MyDatabaseId);
		}
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT)
	{
		dropping_db = InvalidOid;
		dropping_extension = false;
	}
}

/*
 * Start a writer for dboid.  Returns its handle or NULL.
 */
static BackgroundWorkerHandle *
start_writer(Oid dboid)
{
	BackgroundWorker worker;
	BackgroundWorkerHandle *handle;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	/* the launcher starts it again (rate-limited), never the postmaster */
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "access_audit");
	/* a hot standby cannot write: its records go to the primary (remote.c) */
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "%s",
			 RecoveryInProgress() ? "aa_remote_shipper_main" : "aa_writer_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "access_audit writer %u", dboid);
	snprintf(worker.bgw_type, BGW_MAXLEN, "access_audit writer");
	worker.bgw_main_arg = ObjectIdGetDatum(dboid);
	worker.bgw_notify_pid = MyProcPid;
	if (!RegisterDynamicBackgroundWorker(&worker, &handle))
		return NULL;
	return handle;
}

/*
 * Launcher main loop: start a writer for every database that has records
 * and no writer.  Holds no database connection.
 */
void
aa_launcher_main(Datum main_arg)
{
	Oid			started_db[AA_MAX_DATABASES];
	BackgroundWorkerHandle *started[AA_MAX_DATABASES];
	TimestampTz started_at[AA_MAX_DATABASES];
	int			nstarted = 0;
	TimestampTz warned_at = 0;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	pgstat_report_appname("access_audit launcher");
	aa_queue_set_launcher(MyLatch);
	ereport(LOG, errmsg("access_audit launcher started"));

	while (!ShutdownRequestPending)
	{
		Oid			want[AA_MAX_DATABASES];
		int			nwant;
		int			i;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		nwant = aa_queue_writers_wanted(want, AA_MAX_DATABASES);
		for (i = 0; i < nwant; i++)
		{
			int			j;
			bool		running = false;
			pid_t		pid;

			for (j = 0; j < nstarted; j++)
			{
				if (started_db[j] != want[i])
					continue;
				/* NULL: registering it failed last time; try again */
				if (started[j] != NULL &&
					GetBackgroundWorkerPid(started[j], &pid) != BGWH_STOPPED)
					running = true;
				break;
			}
			if (running)
				continue;

			/*
			 * More databases than entries (writers take turns when there are
			 * more databases than slots): reuse the entry of a writer that
			 * has stopped, the one started longest ago.
			 */
			if (j == nstarted && nstarted == AA_MAX_DATABASES)
			{
				int			k;

				for (k = 0; k < nstarted; k++)
				{
					if (started[k] != NULL &&
						GetBackgroundWorkerPid(started[k], &pid) != BGWH_STOPPED)
						continue;
					if (j == nstarted || started_at[k] < started_at[j])
						j = k;
				}
				if (j == nstarted)
					continue;	/* all running: the queue is full of writers */
				if (started[j] != NULL)
					pfree(started[j]);
				started[j] = NULL;	/* a new database: no rate limit */
			}

			/*
			 * A writer that failed (say, records queued for a database whose
			 * CREATE EXTENSION has not committed yet) is started again after
			 * a back-off that doubles with each failure in a row, from 1 s to
			 * a minute, so that a lasting cause neither spins nor fills the
			 * worker slots.  It asked for its successor itself
			 * (aa_queue_release_writer), so its pending records never wait
			 * for a new record to ask; one that left because it was idle is
			 * started again at once.
			 */
			if (!aa_queue_writer_may_start(want[i]))
				continue;
			if (j == nstarted && nstarted < AA_MAX_DATABASES)
				nstarted++;
			if (j < AA_MAX_DATABASES)
			{
				started_db[j] = want[i];
				started_at[j] = GetCurrentTimestamp();
				started[j] = start_writer(want[i]);

				/*
				 * No free background worker: a running writer gives way once
				 * it has caught up (aa_queue_writer_yield); the launcher is
				 * told when it has exited.  Without this, a database beyond
				 * max_worker_processes would hold the ring's tail and stop
				 * every reader of every database once the ring is full.
				 */
				if (started[j] == NULL)
					aa_queue_set_starved();
				if (started[j] == NULL &&
					TimestampDifferenceExceeds(warned_at, GetCurrentTimestamp(), 60000))
				{
					warned_at = GetCurrentTimestamp();
					ereport(WARNING,
							errmsg("could not start access_audit writer for database %u",
								   want[i]),
							errdetail("No background worker is free. Writers take turns meanwhile: the records wait in the queue, and readers wait if it fills."),
							errhint("Raise max_worker_processes: access_audit needs one background worker per database that uses it, plus one for its launcher."));
				}
			}
		}

		/* quota counters survive a restart, also a crash (quota.c) */
		aa_quota_save_counters();

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();

		/*
		 * While a database waits for a writer, every record its backends
		 * queue sets this latch: look at most every 10 ms, not once per
		 * record (a failed start is retried each time).
		 */
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10L,
						 PG_WAIT_EXTENSION);
	}
	aa_queue_set_launcher(NULL);
	proc_exit(0);
}

/*
 * on_shmem_exit callback of a writer: give up the database's claim; an
 * exit with an error counts as a failure (the launcher backs off).
 */
static void
writer_on_exit(int code, Datum arg)
{
	aa_queue_release_writer(DatumGetObjectId(arg), code != 0);
}

/*
 * How far the queue ring_id is written in this database's log, from
 * access_audit.writer_state (-1: not at all): this server's own queue, or
 * a hot standby's whose records were ingested here.  SPI must be connected
 * in a transaction with an active snapshot.
 */
int64
aa_writer_ring_pos(uint64 ring_id)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	int			ret;
	int64		pos = -1;

	args[0] = Int64GetDatum((int64) ring_id);
	ret = SPI_execute_with_args("SELECT w.last_pos FROM access_audit.writer_state w "
								"WHERE w.ring_id OPERATOR(pg_catalog.=) $1",
								1, argtypes, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
									  1, &isnull);

		if (!isnull)
			pos = DatumGetInt64(d);
	}
	return pos;
}

/*
 * The chain head just reloaded from the log (ws.last_seq, ws.last_hash)
 * against the one this database's writers last committed, kept outside
 * the database in the queue file.  A log that ends before it, or whose last
 * record has another hash, lost or changed records after they were
 * written: the chain goes on from the head kept outside, so verify()
 * reports the records missing instead of a chain that looks whole.  A log
 * that ends after it is the normal case of a writer stopped between its
 * commit and storing the head.
 */
static void
writer_check_head(void)
{
	int64		kept_seq;
	uint8		kept_hash[AA_HASH_LEN];

	if (!aa_queue_chain_head_get(MyDatabaseId, ws.extoid, &kept_seq, kept_hash))
		return;
	if (kept_seq < ws.last_seq ||
		(kept_seq == ws.last_seq &&
		 memcmp(kept_hash, ws.last_hash, AA_HASH_LEN) == 0))
		return;
	ereport(WARNING,
			errcode(ERRCODE_DATA_CORRUPTED),
			errmsg("access_audit log of database \"%s\" does not end with the last record its writer wrote",
				   get_database_name(MyDatabaseId)),
			errdetail("The log ends at seq %lld; the writer last wrote seq %lld.  Records were removed or changed after they were written; the chain continues from the last record written.",
					  (long long) ws.last_seq, (long long) kept_seq),
			errhint("Run access_audit.verify() to see the difference."));
	ws.last_seq = kept_seq;
	memcpy(ws.last_hash, kept_hash, AA_HASH_LEN);
}

/*
 * Load the chain head and ring position from the database.  Returns false
 * if the extension is not installed here.  Runs in a transaction with SPI
 * connected.
 */
static bool
writer_load_state(void)
{
	Oid			nsp;
	int			ret;
	bool		isnull;

	ws.extoid = get_extension_oid(AA_NAME, true);
	if (!OidIsValid(ws.extoid))
		return false;
	nsp = get_namespace_oid(AA_SCHEMA, false);
	ws.log_relid = get_relname_relid("log_data", nsp);
	ws.last_seq = 0;
	memset(ws.last_hash, 0, AA_HASH_LEN);

	/*
	 * Wait for whoever holds the log (a repair in maintenance mode that
	 * locked it to delete records, a restore) before taking the snapshot the
	 * head is read with: the batch's snapshot was taken before any wait, and
	 * would show the log as it was before that transaction committed, so a
	 * shortened log would not be noticed (writer_check_head).
	 */
	if (OidIsValid(ws.log_relid))
	{
		LockRelationOid(ws.log_relid, AccessShareLock);
		PopActiveSnapshot();
		PushActiveSnapshot(GetTransactionSnapshot());
	}

	ret = SPI_execute("SELECT l.seq, l.hash FROM access_audit.log_data l ORDER BY l.seq DESC LIMIT 1",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	if (SPI_processed == 0)
	{
		/* an emptied log continues from the last retention checkpoint */
		ret = SPI_execute("SELECT c.seq, c.hash FROM access_audit.chain_checkpoints c ORDER BY c.seq DESC LIMIT 1",
						  true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "unexpected SPI result %d", ret);
	}
	if (SPI_processed == 1)
	{
		Datum		h;

		ws.last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1,
												  &isnull));
		h = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
						  &isnull);
		if (!isnull && VARSIZE_ANY_EXHDR(DatumGetByteaPP(h)) == AA_HASH_LEN)
			memcpy(ws.last_hash, VARDATA_ANY(DatumGetByteaPP(h)), AA_HASH_LEN);
	}

	writer_check_head();

	ws.ring_id = aa_queue_ring_id();
	ws.last_pos = aa_writer_ring_pos(ws.ring_id);

	{
		Oid			st_types[3] = {INT8OID, INT8OID, TEXTOID};
		Oid			daily_types[7] = {DATEARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID};

		ws.state_plan = SPI_prepare("INSERT INTO access_audit.writer_state (ring_id, last_pos, updated_at, origin) "
									"VALUES ($1, $2, pg_catalog.now(), $3) ON CONFLICT (ring_id) DO UPDATE "
									"SET last_pos = excluded.last_pos, updated_at = excluded.updated_at, "
									"origin = excluded.origin",
									3, st_types);
		ws.daily_plan = SPI_prepare("INSERT INTO access_audit.actor_daily AS d "
									"(day, actor, relation, rows, tagged_rows, statements, off_hours_rows) "
									"SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), "
									"pg_catalog.unnest($3), pg_catalog.unnest($4), pg_catalog.unnest($5), "
									"pg_catalog.unnest($6), pg_catalog.unnest($7)) "
									"ON CONFLICT (day, actor, relation) DO UPDATE SET "
									"rows = d.rows OPERATOR(pg_catalog.+) excluded.rows, "
									"tagged_rows = d.tagged_rows OPERATOR(pg_catalog.+) excluded.tagged_rows, "
									"statements = d.statements OPERATOR(pg_catalog.+) excluded.statements, "
									"off_hours_rows = d.off_hours_rows OPERATOR(pg_catalog.+) excluded.off_hours_rows",
									7, daily_types);
		if (ws.state_plan == NULL || ws.daily_plan == NULL)
			elog(ERROR, "could not prepare access_audit writer statements: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(ws.state_plan);
		SPI_keepplan(ws.daily_plan);
	}
	ws.dbname = MemoryContextStrdup(TopMemoryContext,
									get_database_name(MyDatabaseId));
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint64);
		ctl.entrysize = sizeof(OriginRing);
		ctl.hcxt = TopMemoryContext;
		ws.origin_rings = hash_create("access_audit origin rings", 16, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	ws.loaded = true;
	return true;
}

/*
 * The logical record of a queue item, as the chain hashes it.  client_addr
 * is put in inet's own text form (parsed and printed once per address).
 */
static void
item_to_chain(AuditQueueItem *item, int64 seq, ChainRow *c)
{
	AuditRecord *r = &item->rec;
	static char *last_addr = NULL;
	static char *last_canon = NULL;

	memset(c, 0, sizeof(ChainRow));
	c->seq = seq;
	c->database = ws.dbname;
	c->n_relations = c->n_columns = c->n_predicate = c->n_tags = -1;

	if (r->kind == AA_KIND_GAP)
	{
		c->ts = GetCurrentTimestamp();
		c->command = "GAP";
		c->outcome = "error";
		c->detail = psprintf("{\"lost_bytes\": %lld, \"queue_position\": %llu}",
							 (long long) item->gap_bytes,
							 (unsigned long long) item->pos);
		return;
	}

	c->ts = r->ts;
	c->login_role = r->login_role;
	c->effective_role = r->effective_role;
	c->actor = r->actor;
	c->claimed_actor = r->claimed_actor;
	if (r->client_addr)
	{
		if (last_addr == NULL || strcmp(last_addr, r->client_addr) != 0)
		{
			Datum		d = DirectFunctionCall1(inet_in,
												CStringGetDatum(r->client_addr));
			char	   *canon = DatumGetCString(DirectFunctionCall1(inet_out, d));

			if (last_addr)
			{
				pfree(last_addr);
				pfree(last_canon);
			}
			last_addr = MemoryContextStrdup(TopMemoryContext, r->client_addr);
			last_canon = MemoryContextStrdup(TopMemoryContext, canon);
		}
		c->client_addr = last_canon;
	}
	c->application_name = r->application_name;
	c->has_backend_pid = true;
	c->backend_pid = r->backend_pid;
	c->has_query_id = true;
	c->query_id = r->query_id;
	c->query = r->query;
	c->command = r->command;
	c->has_nesting_level = true;
	c->nesting_level = r->nesting_level;
	c->n_relations = r->n_relations;
	c->relations = r->relations;
	c->n_columns = r->n_columns;
	c->columns = r->columns;
	c->n_predicate = r->n_predicate;
	c->predicate_columns = r->predicate_columns;
	c->n_tags = r->n_tags;
	c->tags = r->tags;
	c->has_rows = true;
	c->rows = r->rows;
	c->has_tagged_rows = true;
	c->tagged_rows = r->tagged_rows;
	c->outcome = r->outcome == AA_OUTCOME_OK ? "ok" : "error";
	c->has_duration = true;
	c->duration_us = r->duration_us;
	c->detail = r->detail;
	if (r->origin != NULL)
	{
		c->origin = r->origin;
		c->has_origin_seq = true;
		c->origin_seq = r->origin_seq;
	}
}

/*
 * The compact storage row of a logical record: its session and shape ids,
 * numbers, and hash.
 */
static void
chain_to_data(const ChainRow *c, const uint8 *hash, int64 session_id,
			  int64 shape_id, Datum *v, bool *n)
{
	bytea	   *b;
	int64		origin_id;

	memset(n, false, sizeof(bool) * AA_D_NCOLS);
#define SET_NUM(col, has, datum) do { v[col] = (datum); n[col] = !(has); } while (0)
	v[AA_D_SEQ] = Int64GetDatum(c->seq);
	v[AA_D_TS] = TimestampTzGetDatum(c->ts);
	SET_NUM(AA_D_ROWS, c->has_rows, Int64GetDatum(c->rows));
	SET_NUM(AA_D_TAGGED_ROWS, c->has_tagged_rows, Int64GetDatum(c->tagged_rows));
	SET_NUM(AA_D_DURATION_US, c->has_duration, Int64GetDatum(c->duration_us));
	v[AA_D_SESSION_ID] = aa_dict_id_datum(ws.slot_desc, AA_D_SESSION_ID + 1,
										  session_id);
	v[AA_D_SHAPE_ID] = aa_dict_id_datum(ws.slot_desc, AA_D_SHAPE_ID + 1,
										shape_id);
	SET_NUM(AA_D_OUTCOME_OK, c->outcome != NULL,
			BoolGetDatum(c->outcome && strcmp(c->outcome, "ok") == 0));
	SET_NUM(AA_D_DETAIL, c->detail != NULL,
			c->detail ? CStringGetTextDatum(c->detail) : (Datum) 0);
	origin_id = aa_dict_string_id(c->origin);
	SET_NUM(AA_D_ORIGIN_ID, origin_id != 0,
			aa_dict_id_datum(ws.slot_desc, AA_D_ORIGIN_ID + 1, origin_id));
	SET_NUM(AA_D_ORIGIN_SEQ, c->has_origin_seq, Int64GetDatum(c->origin_seq));
	b = palloc(VARHDRSZ + AA_HASH_LEN);
	SET_VARSIZE(b, VARHDRSZ + AA_HASH_LEN);
	memcpy(VARDATA(b), hash, AA_HASH_LEN);
	v[AA_D_HASH] = PointerGetDatum(b);
#undef SET_NUM
}

/*
 * Has this record, ingested from a standby, been written here already?
 * The standby's ring is looked up in writer_state the first time it is
 * seen.  Runs with SPI connected.
 */
static bool
origin_seen(const AuditRecord *r)
{
	OriginRing *o;
	bool		found;

	o = hash_search(ws.origin_rings, &r->origin_ring_id, HASH_ENTER, &found);
	if (!found)
	{
		o->last_pos = aa_writer_ring_pos(r->origin_ring_id);
		o->committed_pos = o->last_pos;
		o->origin[0] = '\0';
	}
	if (r->origin_seq <= o->last_pos)
		return true;
	o->last_pos = r->origin_seq;
	strlcpy(o->origin, r->origin ? r->origin : "", sizeof(o->origin));
	return false;
}

/*
 * Store how far each standby ring touched by this batch is written, in the
 * batch's transaction.
 */
static void
origin_save(void)
{
	HASH_SEQ_STATUS st;
	OriginRing *o;

	hash_seq_init(&st, ws.origin_rings);
	while ((o = hash_seq_search(&st)) != NULL)
	{
		Datum		args[3];
		char		nulls[3] = {' ', ' ', ' '};
		int			ret;

		if (o->last_pos <= o->committed_pos)
			continue;
		args[0] = Int64GetDatum((int64) o->ring_id);
		args[1] = Int64GetDatum(o->last_pos);
		args[2] = CStringGetTextDatum(o->origin);
		ret = SPI_execute_plan(ws.state_plan, args, nulls, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "unexpected SPI result %d", ret);
	}
}

/*
 * After commit: what origin_save() stored is committed.
 */
static void
origin_committed(void)
{
	HASH_SEQ_STATUS st;
	OriginRing *o;

	if (ws.origin_rings == NULL)
		return;
	hash_seq_init(&st, ws.origin_rings);
	while ((o = hash_seq_search(&st)) != NULL)
		o->committed_pos = o->last_pos;
}

/*
 * After a batch failed: what it marked as written is not.
 */
static void
origin_rolled_back(void)
{
	HASH_SEQ_STATUS st;
	OriginRing *o;

	if (ws.origin_rings == NULL)
		return;
	hash_seq_init(&st, ws.origin_rings);
	while ((o = hash_seq_search(&st)) != NULL)
		o->last_pos = o->committed_pos;
}

/*
 * The batch's roll-up is gathered in two steps: per record, into a cell per
 * (day, session, shape), which costs one small hash lookup; at the end of
 * the batch, the cells are spread over their actor and relations and summed
 * per (day, actor, relation) for actor_daily.
 */
typedef struct RollupKey
{
	int32		day;
	int64		session_id;
	int64		shape_id;
} RollupKey;

typedef struct RollupCell
{
	RollupKey	key;
	const char *actor;			/* these point into the ring */
	int64		actor_id;
	int			n_relations;
	const char **relations;
	int64		rows;
	int64		tagged_rows;
	int64		statements;
	int64		off_hours_rows;
} RollupCell;

typedef struct DailyKey
{
	int32		day;
	int64		actor_id;
	char		relation[256];
}			DailyKey;

typedef struct DailyRow
{
	DailyKey	key;
	const char *actor;
	int64		rows;
	int64		tagged_rows;
	int64		statements;
	int64		off_hours_rows;
}			DailyRow;

/*
 * The business day of ts and whether it falls outside business hours
 * (weekends count as outside).  Both hold for a whole local hour, which is
 * remembered, so most records need no calendar arithmetic.
 */
static bool
rollup_day(TimestampTz ts, pg_tz *tz, int32 *day, bool *off)
{
	static pg_tz *c_tz = NULL;
	static TimestampTz c_start = 0;
	static TimestampTz c_end = 0;
	static int32 c_day;
	static bool c_off;
	static int	c_h0 = -1;
	static int	c_h1 = -1;
	struct pg_tm tm;
	fsec_t		fsec;
	int			tzoff;
	int			jd;
	int			h0;
	int			h1;

	aa_business_hours(&h0, &h1);
	if (tz == c_tz && ts >= c_start && ts < c_end &&
		c_h0 == h0 && c_h1 == h1)
	{
		*day = c_day;
		*off = c_off;
		return true;
	}
	if (timestamp2tm(ts, &tzoff, &tm, &fsec, NULL, tz) != 0)
		return false;
	jd = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);
	c_day = jd - POSTGRES_EPOCH_JDATE;
	c_off = j2day(jd) == 0 || j2day(jd) == 6 ||
		tm.tm_hour < h0 || tm.tm_hour >= h1;
	c_tz = tz;
	c_h0 = h0;
	c_h1 = h1;
	c_start = ts - ((int64) tm.tm_min * SECS_PER_MINUTE + tm.tm_sec) * USECS_PER_SEC - fsec;
	c_end = c_start + USECS_PER_HOUR;
	*day = c_day;
	*off = c_off;
	return true;
}

/*
 * Add a read to the batch's roll-up.
 */
static void
rollup_add(HTAB *cells, const ChainRow *c, int64 session_id, int64 shape_id,
		   pg_tz *tz)
{
	RollupKey	key;
	RollupCell *cell;
	bool		found;
	bool		off;

	if (c->actor == NULL || c->command == NULL || c->n_relations <= 0 ||
		strcmp(c->command, "SECURITY LABEL") == 0 ||
		strcmp(c->command, "REFUSED") == 0 ||
		strcmp(c->command, "MAINTENANCE") == 0)
		return;
	memset(&key, 0, sizeof(key));
	if (!rollup_day(c->ts, tz, &key.day, &off))
		return;
	key.session_id = session_id;
	key.shape_id = shape_id;
	cell = hash_search(cells, &key, HASH_ENTER, &found);
	if (!found)
	{
		cell->actor = c->actor;
		cell->actor_id = aa_dict_string_id(c->actor);
		cell->n_relations = c->n_relations;
		cell->relations = c->relations;
		cell->rows = cell->tagged_rows = 0;
		cell->statements = cell->off_hours_rows = 0;
	}
	cell->rows += c->rows;
	cell->tagged_rows += c->tagged_rows;
	cell->statements++;
	if (off)
		cell->off_hours_rows += Max(c->rows, c->tagged_rows);
}

/*
 * The k-th of n shares of a total: the totals of a statement that read
 * several relations are split over them, so that summing a day's relations
 * counts each statement once.  The shares are whole and add up to total.
 */
static int64
rollup_share(int64 total, int k, int n)
{
	return total * (k + 1) / n - total * k / n;
}

/*
 * Upsert the batch's roll-up into access_audit.actor_daily in one
 * statement.  Each relation's row holds its share of the statements that
 * read it (rollup_share), not their full totals.
 */
static void
rollup_flush(HTAB *cells)
{
	HTAB	   *daily;
	HASHCTL		ctl;
	long		nrows;
	Datum	   *d[7];
	Datum		args[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	HASH_SEQ_STATUS st;
	RollupCell *cell;
	DailyRow   *row;
	int			i = 0;
	int			k;
	int			ret;

	if (hash_get_num_entries(cells) == 0)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(DailyKey);
	ctl.entrysize = sizeof(DailyRow);
	ctl.hcxt = CurrentMemoryContext;
	daily = hash_create("access_audit daily rows", 256, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	hash_seq_init(&st, cells);
	while ((cell = hash_seq_search(&st)) != NULL)
	{
		for (k = 0; k < cell->n_relations; k++)
		{
			DailyKey	key;
			bool		found;

			memset(&key, 0, sizeof(key));
			key.day = cell->key.day;
			key.actor_id = cell->actor_id;
			strlcpy(key.relation, cell->relations[k], sizeof(key.relation));
			row = hash_search(daily, &key, HASH_ENTER, &found);
			if (!found)
			{
				row->actor = cell->actor;
				row->rows = row->tagged_rows = 0;
				row->statements = row->off_hours_rows = 0;
			}
			row->rows += rollup_share(cell->rows, k, cell->n_relations);
			row->tagged_rows += rollup_share(cell->tagged_rows, k, cell->n_relations);
			row->statements += rollup_share(cell->statements, k, cell->n_relations);
			row->off_hours_rows += rollup_share(cell->off_hours_rows, k,
												cell->n_relations);
		}
	}

	nrows = hash_get_num_entries(daily);
	for (k = 0; k < 7; k++)
		d[k] = palloc(sizeof(Datum) * nrows);
	hash_seq_init(&st, daily);
	while ((row = hash_seq_search(&st)) != NULL)
	{
		d[0][i] = DateADTGetDatum(row->key.day);
		d[1][i] = CStringGetTextDatum(row->actor);
		d[2][i] = CStringGetTextDatum(row->key.relation);
		d[3][i] = Int64GetDatum(row->rows);
		d[4][i] = Int64GetDatum(row->tagged_rows);
		d[5][i] = Int64GetDatum(row->statements);
		d[6][i] = Int64GetDatum(row->off_hours_rows);
		i++;
	}
	args[0] = PointerGetDatum(construct_array(d[0], i, DATEOID, 4, true, TYPALIGN_INT));
	args[1] = PointerGetDatum(construct_array(d[1], i, TEXTOID, -1, false, TYPALIGN_INT));
	args[2] = PointerGetDatum(construct_array(d[2], i, TEXTOID, -1, false, TYPALIGN_INT));
	for (k = 3; k < 7; k++)
		args[k] = PointerGetDatum(construct_array(d[k], i, INT8OID, 8,
												  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	ret = SPI_execute_plan(ws.daily_plan, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "unexpected SPI result %d", ret);
}

#ifdef AA_BENCH_PACKED
#include "nodes/makefuncs.h"

/*
 * bench/ceiling.sh only: the batch's rows as one row of public.log_packs
 * (first_seq bigint, n integer, data bytea), packed fixed-width, instead of
 * one heap row and one index entry each: what many records per heap row
 * would cost the writer.
 */
static void
bench_write_pack(TupleTableSlot **slots, int nrows)
{
	Oid			relid = RangeVarGetRelid(makeRangeVar("public", "log_packs", -1),
										 RowExclusiveLock, false);
	Relation	prel = table_open(relid, NoLock);
	StringInfoData pack;
	Datum		v[3];
	bool		n[3] = {false, false, false};
	HeapTuple	tup;
	int			i;

	initStringInfo(&pack);
	for (i = 0; i < nrows; i++)
	{
		Datum	   *d = slots[i]->tts_values;
		bool	   *isnull = slots[i]->tts_isnull;
		int			c;

		for (c = 0; c < AA_D_NCOLS; c++)
		{
			if (isnull[c] || c == AA_D_DETAIL)
				continue;
			if (c == AA_D_HASH)
				appendBinaryStringInfo(&pack, VARDATA_ANY(DatumGetPointer(d[c])), AA_HASH_LEN);
			else
				appendBinaryStringInfo(&pack, (char *) &d[c], sizeof(Datum));
		}
	}
	v[0] = slots[0]->tts_values[AA_D_SEQ];
	v[1] = Int32GetDatum(nrows);
	v[2] = PointerGetDatum(cstring_to_text_with_len(pack.data, pack.len));
	tup = heap_form_tuple(RelationGetDescr(prel), v, n);
	simple_heap_insert(prel, tup);
	table_close(prel, NoLock);
}
#endif

/*
 * How write_batch stores its records: as they are; cut down to plain,
 * short values (a record whose values the log cannot take as they are);
 * or as a GAP record that says why the record could not be stored.
 */
typedef enum WriteMode
{
	AA_WRITE_ASIS,
	AA_WRITE_DEGRADED,
	AA_WRITE_STUB,
} WriteMode;

/* a degraded record's values: at most this many bytes, lists this long */
#define AA_DEGRADED_STR_LEN 200
#define AA_DEGRADED_LIST_LEN 16

/*
 * s as printable ASCII (other bytes become '?'), cut to max bytes with a
 * marker: a value that a log index, an encoding check or a type input
 * refused cannot refuse this.  Allocated in the current context.
 */
static const char *
degrade_str(const char *s, int max)
{
	size_t		len;
	size_t		i;
	size_t		keep;
	StringInfoData b;

	if (s == NULL)
		return NULL;
	len = strlen(s);
	keep = Min(len, (size_t) max);
	initStringInfo(&b);
	for (i = 0; i < keep; i++)
	{
		unsigned char c = (unsigned char) s[i];

		appendStringInfoChar(&b, (c >= 0x20 && c < 0x7f) ? (char) c : '?');
	}
	if (keep < len)
		appendStringInfo(&b, "...[cut: %zu bytes]", len);
	return b.data;
}

/*
 * A list of strings for AA_WRITE_DEGRADED: at most AA_DEGRADED_LIST_LEN
 * entries (*n is cut to match), each through degrade_str.
 */
static const char **
degrade_list(const char **l, int *n)
{
	const char **out;
	int			i;

	if (*n <= 0)
		return l;
	*n = Min(*n, AA_DEGRADED_LIST_LEN);
	out = palloc(sizeof(char *) * *n);
	for (i = 0; i < *n; i++)
		out[i] = degrade_str(l[i], AA_DEGRADED_STR_LEN);
	return out;
}

/*
 * The record c cut down for AA_WRITE_DEGRADED; detail says what the log
 * refused (why) and that the values were cut.
 */
static void
degrade_row(ChainRow *c, const char *why)
{
	StringInfoData d;

	c->login_role = degrade_str(c->login_role, AA_DEGRADED_STR_LEN);
	c->effective_role = degrade_str(c->effective_role, AA_DEGRADED_STR_LEN);
	c->actor = degrade_str(c->actor, AA_DEGRADED_STR_LEN);
	c->claimed_actor = degrade_str(c->claimed_actor, AA_DEGRADED_STR_LEN);
	c->application_name = degrade_str(c->application_name, AA_DEGRADED_STR_LEN);
	c->query = degrade_str(c->query, AA_DEGRADED_STR_LEN);
	c->command = degrade_str(c->command, AA_DEGRADED_STR_LEN);
	c->origin = degrade_str(c->origin, AA_DEGRADED_STR_LEN);
	c->relations = degrade_list(c->relations, &c->n_relations);
	c->columns = degrade_list(c->columns, &c->n_columns);
	c->predicate_columns = degrade_list(c->predicate_columns, &c->n_predicate);
	c->tags = degrade_list(c->tags, &c->n_tags);
	initStringInfo(&d);
	appendStringInfoString(&d, "{\"degraded\": ");
	escape_json(&d, degrade_str(why, 1000));
	appendStringInfoString(&d, ", \"note\": \"the log refused this record as it was; its values are cut to printable ASCII and at most 200 bytes\"}");
	c->detail = d.data;
}

/*
 * Start the transaction of a batch, with SPI and a snapshot.  A database
 * without the extension cannot take its records: they are discarded
 * (writer_no_extension) and the batch fails.
 */
static void
batch_begin(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "access_audit: writing audit records");

	if (!ws.loaded && !writer_load_state())
	{
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pgstat_report_activity(STATE_IDLE, NULL);

		writer_no_extension();
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit records are waiting for a database that has no access_audit extension"),
				errhint("Run CREATE EXTENSION access_audit in that database."));
	}
}

/*
 * At least n slots for rows of the log (rel), kept across batches in
 * TopMemoryContext.  The slots' descriptor is a copy: after ALTER EXTENSION
 * UPDATE widened the log's ids, they are made anew.
 */
static TupleTableSlot **
batch_slots(Relation rel, int n)
{
	int			i;

	if (ws.slot_desc != NULL &&
		!equalTupleDescs(ws.slot_desc, RelationGetDescr(rel)))
	{
		for (i = 0; i < ws.nslots; i++)
			ExecDropSingleTupleTableSlot(ws.slots[i]);
		pfree(ws.slots);
		ws.slots = NULL;
		ws.nslots = 0;
		FreeTupleDesc(ws.slot_desc);
		ws.slot_desc = NULL;
	}
	if (ws.slots == NULL || ws.nslots < n)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		if (ws.slot_desc == NULL)
			ws.slot_desc = CreateTupleDescCopy(RelationGetDescr(rel));
		ws.slots = ws.slots ? repalloc(ws.slots, sizeof(TupleTableSlot *) * n) :
			palloc(sizeof(TupleTableSlot *) * n);
		for (i = ws.nslots; i < n; i++)
			ws.slots[i] = MakeSingleTupleTableSlot(ws.slot_desc, &TTSOpsHeapTuple);
		ws.nslots = n;
		MemoryContextSwitchTo(old);
	}
	Assert(ws.nslots >= n);
	return ws.slots;
}

/* an empty roll-up of the batch, in the current memory context */
static HTAB *
batch_rollup_new(void)
{
	HASHCTL		ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(RollupKey);
	ctl.entrysize = sizeof(RollupCell);
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("access_audit roll-up", 256, &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

/*
 * The detail of a record stored as a GAP (AA_WRITE_STUB): the bytes lost,
 * its queue position and why the log refused it.
 */
static char *
stub_detail(const AuditQueueItem *item, const char *why)
{
	StringInfoData d;

	initStringInfo(&d);
	appendStringInfo(&d, "{\"lost_bytes\": %lld, \"queue_position\": %llu, \"unstorable\": ",
					 (long long) item->gap_bytes,
					 (unsigned long long) item->pos);
	escape_json(&d, degrade_str(why, 1000));
	appendStringInfoChar(&d, '}');
	return d.data;
}

/*
 * Make item the next record of the chain in slot: its seq and hash, its
 * dictionary ids, its share of the roll-up (cells, days in tz), and a note
 * in quota_hits if it is a quota hit.  Extends the in-memory chain head.
 * Inside aa_dict_begin()/aa_dict_end().
 */
static void
batch_row(AuditQueueItem *item, WriteMode mode, const char *why,
		  TupleTableSlot *slot, HTAB *cells, pg_tz *tz, List **quota_hits)
{
	uint8		hash[AA_HASH_LEN];
	ChainRow	c;
	int64		session_id;
	int64		shape_id;

	if (mode == AA_WRITE_STUB)
	{
		item->rec.kind = AA_KIND_GAP;
		item->gap_bytes = (int64) item->len;
	}
	item_to_chain(item, ws.last_seq + 1, &c);
	if (mode == AA_WRITE_DEGRADED)
		degrade_row(&c, why);
	else if (mode == AA_WRITE_STUB)
		c.detail = stub_detail(item, why);
	aa_chain_hash(ws.last_hash, &c, hash);
	if (item->rec.kind == AA_KIND_READ && item->rec.row_set != 0 &&
		mode != AA_WRITE_DEGRADED)
		aa_rowids_store_link(ws.last_seq + 1, hash, &item->rec);
	ExecClearTuple(slot);
	session_id = aa_dict_session_id(&c);
	shape_id = aa_dict_shape_id(&c);
	chain_to_data(&c, hash, session_id, shape_id,
				  slot->tts_values, slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
	rollup_add(cells, &c, session_id, shape_id, tz);
	if (mode == AA_WRITE_ASIS)
		*quota_hits = aa_quota_alert_note(*quota_hits, c.seq, c.ts, c.actor,
										  c.command, c.detail);
	ws.last_seq++;
	memcpy(ws.last_hash, hash, AA_HASH_LEN);
}

/*
 * After the rows of a batch are in the log, in the same transaction: the
 * roll-up, the origins of ingested records, the ring position written up
 * to (max_pos), the SIEM lines (before the commit: a committed batch
 * has been logged) and the alerts of the batch's quota hits.
 */
static void
batch_finish(HTAB *cells, int64 max_pos, int64 first_seq, int nrows,
			 List *quota_hits)
{
	Datum		args[3];
	char		nulls[3] = {' ', ' ', 'n'};
	int			ret;

	CommandCounterIncrement();
	rollup_flush(cells);
	origin_save();
	args[0] = Int64GetDatum((int64) ws.ring_id);
	args[1] = Int64GetDatum(max_pos);
	args[2] = (Datum) 0;
	ret = SPI_execute_plan(ws.state_plan, args, nulls, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "unexpected SPI result %d", ret);
	if (aa_siem_level >= AA_SIEM_ALL && nrows > 0)
		aa_siem_log_records(first_seq, nrows);
	/* quota hits are alerts (quota.c) */
	aa_quota_raise_alerts(quota_hits);
}

/*
 * Write one batch in one transaction: chain, dictionary ids, multi-insert
 * into the log's partitions with index maintenance, roll-up, ring position.  ERROR leaves the
 * transaction aborted and ws as it was before (writer_write undoes the
 * in-memory chain head); nothing is freed in the ring.  mode and why: see
 * WriteMode.
 */
static void
write_batch(AuditQueueItem *items, int n, WriteMode mode, const char *why)
{
	Relation	rel;
	EState	   *estate;
	TupleTableSlot **slots;
	CommandId	cid;
	int			nrows = 0;
	int			i;
	int64		max_pos = -1;
	HTAB	   *cells;
	pg_tz	   *tz;
	int64		first_seq;
	List	   *quota_hits = NIL;
	int			nchunks = 0;

	/* the partitions the batch goes to, in a transaction of their own */
	aa_partition_ensure(ws.loaded ? ws.last_seq : -1,
						ws.loaded ? ws.extoid : InvalidOid, n);

	batch_begin();

	/*
	 * log_data is partitioned: the rows go to its partitions (partition.c).
	 * Looked up again while the extension is the one loaded: the update from
	 * 1.0 makes log_data anew.  (A dropped or re-created extension leaves the
	 * old relid, which fails to open: the writer exits, and a fresh one loads
	 * the new log.)
	 */
	if (get_extension_oid(AA_NAME, true) == ws.extoid)
		ws.log_relid = get_relname_relid("log_data",
										 get_namespace_oid(AA_SCHEMA, false));
	rel = table_open(ws.log_relid, RowExclusiveLock);
	estate = CreateExecutorState();
	cid = GetCurrentCommandId(true);
	slots = batch_slots(rel, n);

	cells = batch_rollup_new();
	tz = pg_tzset(aa_business_timezone);
	if (tz == NULL)
		tz = session_timezone;

	first_seq = ws.last_seq + 1;
	aa_rowids_batch_begin();
	aa_dict_begin();
	for (i = 0; i < n; i++)
	{
		/* already committed before a crash: never write twice */
		if (ws.last_pos >= 0 && items[i].pos <= (uint64) ws.last_pos)
			continue;
		max_pos = (int64) items[i].pos;
		/* ingested from a standby and written before: not again */
		if (items[i].rec.kind == AA_KIND_READ &&
			items[i].rec.origin_ring_id != 0 && origin_seen(&items[i].rec))
			continue;
		/* a chunk of a read's row identities (rowids.c) */
		if (items[i].rec.kind == AA_KIND_ROWS && mode != AA_WRITE_STUB)
		{
			aa_rowids_store_chunk(items[i].rec.chunk);
			nchunks++;
			continue;
		}
		batch_row(&items[i], mode, why, slots[nrows], cells, tz, &quota_hits);
		nrows++;
	}
	aa_dict_end();
	aa_rowids_batch_end();
	Assert(nrows + nchunks <= n);
	Assert(ws.last_seq == first_seq + nrows - 1);

#if defined(AA_BENCH_BURN)

	/*
	 * bench/why.sh only: every record was hashed, looked up in the
	 * dictionaries and formed into a tuple; store nothing, and abort below
	 * instead of committing (what the writer's CPU costs without its heap,
	 * index, WAL and commit work)
	 */
	(void) cid;
#elif !defined(AA_BENCH_PACKED)
	if (nrows > 0)
		aa_partition_insert(rel, slots, nrows, first_seq, cid, estate);
#else
	(void) cid;
	if (nrows > 0)
		bench_write_pack(slots, nrows);
#endif
	for (i = 0; i < nrows; i++)
		ExecClearTuple(slots[i]);
	FreeExecutorState(estate);
	table_close(rel, RowExclusiveLock);

#ifndef AA_BENCH_BURN
	/* a batch of row-identity chunks alone moves the ring position too */
	if (nrows > 0 || nchunks > 0)
		batch_finish(cells, max_pos, first_seq, nrows, quota_hits);

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
#else
	(void) batch_finish;
	(void) first_seq;
	(void) quota_hits;
	SPI_finish();
	PopActiveSnapshot();
	AbortCurrentTransaction();

	/*
	 * -DAA_BENCH_BURN=N: then spin N ns per record, standing in for the CPU
	 * that storing takes, so the writer uses as much CPU as the shipped one
	 */
	if (AA_BENCH_BURN > 1 && nrows > 0)
	{
		instr_time	start,
					now;

		INSTR_TIME_SET_CURRENT(start);
		do
		{
			INSTR_TIME_SET_CURRENT(now);
			INSTR_TIME_SUBTRACT(now, start);
		} while (INSTR_TIME_GET_MICROSEC(now) * 1000 < (uint64) AA_BENCH_BURN * nrows);
	}
#endif
	if (nrows > 0 || nchunks > 0)
		ws.last_pos = max_pos;
	if (nrows > 0)
		aa_queue_chain_head_set(MyDatabaseId, ws.extoid, ws.last_seq,
								ws.last_hash);
	origin_committed();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
}

/*
 * Can an error of this class come from the values of one record (so that
 * storing it cut down can succeed), rather than from the server's state?
 * Data exceptions (an encoding, a value out of range), program limits (an
 * index row too large for a btree) and integrity violations.
 */
static bool
writer_record_error(int sqlerrcode)
{
	char		cls[6];

	strlcpy(cls, unpack_sql_state(sqlerrcode), sizeof(cls));
	return strncmp(cls, "22", 2) == 0 || strncmp(cls, "54", 2) == 0 ||
		strncmp(cls, "23", 2) == 0;
}

/*
 * Undo what a failed write_batch did: abort its transaction and restore the
 * in-memory chain head and origin positions it had advanced.
 */
static void
writer_undo(int64 seq, const uint8 *hash)
{
	AbortCurrentTransaction();
	ws.last_seq = seq;
	memcpy(ws.last_hash, hash, AA_HASH_LEN);
	origin_rolled_back();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/*
 * Try write_batch(items, n, mode); on an error that may come from a
 * record's values (writer_record_error) undo it and return the error's
 * message, else rethrow.  NULL on success.
 */
static char *
writer_try(AuditQueueItem *items, int n, WriteMode mode, const char *why)
{
	MemoryContext cxt = CurrentMemoryContext;
	int64		seq = ws.last_seq;
	uint8		hash[AA_HASH_LEN];
	char	   *msg = NULL;

	memcpy(hash, ws.last_hash, AA_HASH_LEN);
	PG_TRY();
	{
		write_batch(items, n, mode, why);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (!ws.loaded || !writer_record_error(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		writer_undo(seq, hash);
		MemoryContextSwitchTo(cxt);
		msg = psprintf("%s: %s", unpack_sql_state(edata->sqlerrcode),
					   edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return msg;
}

/*
 * Store a batch; a record the log cannot take as it is never stops the
 * writer.  If the batch fails with an error that a record's values can
 * cause, its records are written one at a time; one that fails alone is
 * stored cut down (AA_WRITE_DEGRADED), and if even that fails, as a GAP
 * record that says why (AA_WRITE_STUB), both with a WARNING.  Any other
 * error, or one that even the GAP record meets, is the server's, not the
 * record's: it is rethrown, the writer exits, and the launcher starts it
 * again (with a back-off).
 */
static void
writer_write(AuditQueueItem *items, int n)
{
	char	   *why;
	int			i;

	aa_alert_notify_hold(false);
	if ((why = writer_try(items, n, AA_WRITE_ASIS, NULL)) == NULL)
		return;

	/*
	 * The retries announce no alert with NOTIFY (notify.c): the commit that
	 * failed may have failed on a full notification queue, and whatever it
	 * was, the records must not fail for a side channel again.  Their alerts
	 * are stored, marked as not notified.
	 */
	aa_alert_notify_hold(true);
	if (n > 1)
		ereport(LOG,
				errmsg("access_audit writer for database \"%s\" writes a batch one record at a time after an error",
					   ws.dbname),
				errdetail("%s", why));
	for (i = 0; i < n; i++)
	{
		/* alone, as it is (a batch of one too: now without NOTIFY) */
		if ((why = writer_try(&items[i], 1, AA_WRITE_ASIS, NULL)) == NULL)
			continue;
		if (writer_try(&items[i], 1, AA_WRITE_DEGRADED, why) == NULL)
		{
			ereport(WARNING,
					errmsg("access_audit stored a record of database \"%s\" cut down: the log refused it as it was",
						   ws.dbname),
					errdetail("%s", why));
			continue;
		}
		write_batch(&items[i], 1, AA_WRITE_STUB, why);
		ereport(WARNING,
				errmsg("access_audit stored a record of database \"%s\" as a gap: the log refused it",
					   ws.dbname),
				errdetail("%s", why));
	}
	aa_alert_notify_hold(false);
}

/*
 * The writer's database has no access_audit extension.  If no transaction
 * that is creating it is still running, none will come for the records
 * queued so far (it was dropped, or its creation rolled back with them):
 * discard them and exit, instead of holding the ring's tail for good.  The
 * extension is looked for again after the check, in a new snapshot, so a
 * creation that committed meanwhile is seen; records queued after the
 * check are left for the next writer.  Otherwise return: the caller fails,
 * and the launcher starts a writer again in two seconds.
 */
static void
writer_no_extension(void)
{
	TransactionId xids[AA_MAX_DATABASES];
	int			n;
	int			i;
	uint64		upto;
	bool		exists;
	char	   *dbname;

	upto = aa_queue_head();
	n = aa_queue_extension_creators(MyDatabaseId, xids, AA_MAX_DATABASES);
	for (i = 0; i < n; i++)
		if (TransactionIdIsInProgress(xids[i]))
			return;

	StartTransactionCommand();
	exists = OidIsValid(get_extension_oid(AA_NAME, true));
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(MyDatabaseId));
	CommitTransactionCommand();
	if (exists)
		return;

	ereport(LOG,
			errmsg("access_audit discarded %d queued records of database \"%s\": it has no access_audit extension",
				   aa_queue_discard_database(MyDatabaseId, upto), dbname),
			errdetail("The extension was dropped, or the transaction that created it rolled back."));
	proc_exit(0);
}

/*
 * What the writer and a standby's shipper (remote.c) do first in their
 * process: signal handlers, no capture of their own statements, a
 * connection to dboid with pinned settings, the database's queue slot
 * (another process holding it ends this one), and the application name.
 * Returns the database's name, in TopMemoryContext.
 */
char	   *
aa_writer_attach(Oid dboid)
{
	char	   *dbname;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	aa_capture_disable();

	/*
	 * ALLOW_CONNECTIONS false keeps users out, not the database's own audit
	 * records: without the bypass they would wait in the ring for good.
	 */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid,
											  BGWORKER_BYPASS_ALLOWCONN);
	aa_writer_pin_settings();

	if (!aa_queue_claim_writer(dboid, MyLatch))
		proc_exit(0);			/* another writer serves this database */
	on_shmem_exit(writer_on_exit, ObjectIdGetDatum(dboid));

	pgstat_report_appname("access_audit writer");
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(dboid));
	CommitTransactionCommand();
	return dbname;
}

/*
 * Writer main loop for one database (main_arg).  Drains the queue in
 * batches; at shutdown keeps draining until no client of the database is
 * left and nothing is pending, so fast and smart shutdown lose nothing.
 */
void
aa_writer_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);
	uint64		scan_pos = 0;
	AuditQueueItem *items;
	MemoryContext batch_cxt;
	char	   *dbname;
	int			nalloc;
	TimestampTz started_at;
	TimestampTz last_work;

	dbname = aa_writer_attach(dboid);

	/*
	 * A hot standby cannot write: the launcher starts its shipper instead
	 * (start_writer).  Recovery never begins again in a running server, so
	 * this is for safety only: exit, and the launcher starts what fits.
	 */
	if (RecoveryInProgress())
	{
		ereport(LOG,
				errmsg("access_audit writer for database \"%s\" exits: the server is in recovery, where a shipper takes its place",
					   dbname));
		proc_exit(1);
	}

	ereport(LOG,
			errmsg("access_audit writer started for database \"%s\"", dbname));

	/* a batch_size raised by reload takes effect at the next start */
	nalloc = aa_batch_size;
	items = MemoryContextAlloc(TopMemoryContext,
							   sizeof(AuditQueueItem) * nalloc);

	/*
	 * The batch context keeps a large first block across resets, so that a
	 * batch does not fault in fresh pages from malloc every time.
	 */
	batch_cxt = AllocSetContextCreate(TopMemoryContext,
									  "access_audit writer batch",
									  16 * 1024 * 1024, 16 * 1024 * 1024,
									  16 * 1024 * 1024);
	memset(&ws, 0, sizeof(ws));
	started_at = GetCurrentTimestamp();
	last_work = started_at;

	for (;;)
	{
		int			n;
		int			max = Min(aa_batch_size, nalloc);
		MemoryContext old;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		/*
		 * A restore is loading this database's chain (restore.c): append
		 * nothing until it is done, then let a fresh writer load the restored
		 * chain head.
		 */
		if (!aa_restore_writer_begin())
		{
			aa_restore_writer_wait();
			proc_exit(0);
		}

		MemoryContextReset(batch_cxt);
		old = MemoryContextSwitchTo(batch_cxt);
		/* records sealed by cancelled backends while the ring was full */
		(void) aa_queue_requeue_sealed(dboid);
		n = aa_queue_collect(dboid, &scan_pos, max, items);
#ifndef AA_BENCH_NO_STORE
		if (n > 0)
			writer_write(items, n);
#else
		/* bench/ceiling.sh only: capture and queue without storage */
		(void) writer_write;
#endif
		MemoryContextSwitchTo(old);
		aa_queue_complete(dboid, n, scan_pos);
		aa_restore_writer_end();

		if (n > 0)
			last_work = GetCurrentTimestamp();
		if (n == max)
			continue;			/* more waiting: no sleep */

		/*
		 * Idle for a while: leave the database, so that commands that need it
		 * to themselves (CREATE DATABASE ... TEMPLATE, ALTER DATABASE ...
		 * RENAME, which wait up to 5 s for other sessions) can run.  The next
		 * record asks for a writer again (aa_queue_push), and records queued
		 * while this one leaves are seen by aa_queue_release_writer.
		 */
		if (!ShutdownRequestPending && n == 0 &&
			TimestampDifferenceExceeds(last_work, GetCurrentTimestamp(),
									   AA_WRITER_IDLE_EXIT_MS))
		{
			ereport(DEBUG1,
					errmsg("access_audit writer for database \"%s\" stopped: idle",
						   dbname));
			proc_exit(0);
		}

		/* caught up: give way to a database that waits for a writer */
		if (!ShutdownRequestPending &&
			aa_queue_writer_yield(dboid, scan_pos, started_at, 1000))
		{
			ereport(DEBUG1,
					errmsg("access_audit writer for database \"%s\" stopped to let another database's writer run",
						   dbname));
			proc_exit(0);
		}

		if (ShutdownRequestPending)
		{
			/* drain until every client of this database is gone */
			if (n == 0 && scan_pos >= aa_queue_head() &&
				CountDBConnections(dboid) == 0)
				break;
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 10L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 aa_flush_interval_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}

	ereport(LOG, errmsg("access_audit writer for database \"%s\" drained and stopped",
						dbname));
	proc_exit(0);
}
