/*-------------------------------------------------------------------------
 *
 * writer.c
 *		The launcher and the per-database writer background workers.
 *
 * This file owns getting records from the queue into access_audit.log:
 * starting one writer per database on demand (the launcher), and in each
 * writer, batching, sequence numbers, the hash chain, the multi-insert, the
 * daily roll-up and the commit that must happen before ring space is
 * freed.
 *
 * Ownership: exactly one writer per database holds the database's queue
 * slot (aa_queue_claim_writer); it alone assigns seq and extends the hash
 * chain, so neither needs a lock.  Its last seq and hash live in process
 * memory and are reloaded from the log whenever the writer starts.  The
 * ring position of the last committed record is stored in
 * access_audit.writer_state in the same transaction as the records, so a
 * crash between commit and freeing ring space never writes a record twice.
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
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "capture.h"
#include "chain.h"
#include "compat.h"
#include "queue.h"
#include "writer.h"

/* writer state, valid once loaded */
typedef struct WriterState
{
	bool		loaded;
	Oid			log_relid;
	int64		last_seq;
	uint8		last_hash[AA_HASH_LEN];
	uint64		ring_id;
	int64		last_pos;		/* ring position committed last, or -1 */
	Datum		dbname;
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
} WriterState;

static WriterState ws;

/*
 * Register the launcher.  Called from _PG_init.
 */
void
aa_writer_init(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "access_audit");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aa_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "access_audit launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "access_audit launcher");
	RegisterBackgroundWorker(&worker);
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
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 2;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "access_audit");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "aa_writer_main");
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
	int			nstarted = 0;

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
				if (GetBackgroundWorkerPid(started[j], &pid) != BGWH_STOPPED)
					running = true;
				break;
			}
			if (running)
				continue;
			if (j == nstarted && nstarted < AA_MAX_DATABASES)
				nstarted++;
			if (j < AA_MAX_DATABASES)
			{
				started_db[j] = want[i];
				started[j] = start_writer(want[i]);
				if (started[j] == NULL)
					ereport(WARNING,
							errmsg("could not start access_audit writer for database %u",
								   want[i]),
							errhint("Raise max_worker_processes."));
			}
		}

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	aa_queue_set_launcher(NULL);
	proc_exit(0);
}

static void
writer_on_exit(int code, Datum arg)
{
	aa_queue_release_writer(DatumGetObjectId(arg));
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
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];

	if (!OidIsValid(get_extension_oid(AA_NAME, true)))
		return false;
	nsp = get_namespace_oid(AA_SCHEMA, false);
	ws.log_relid = get_relname_relid("log", nsp);
	ws.last_seq = 0;
	memset(ws.last_hash, 0, AA_HASH_LEN);

	ret = SPI_execute("SELECT seq, hash FROM access_audit.log ORDER BY seq DESC LIMIT 1",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	if (SPI_processed == 1)
	{
		Datum		h;

		ws.last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1,
												  &isnull));
		h = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
						  &isnull);
		if (!isnull)
			memcpy(ws.last_hash, VARDATA_ANY(DatumGetByteaPP(h)), AA_HASH_LEN);
	}
	else
	{
		/* an emptied log continues from the last retention checkpoint */
		ret = SPI_execute("SELECT seq, hash FROM access_audit.chain_checkpoints ORDER BY seq DESC LIMIT 1",
						  true, 1);
		if (ret == SPI_OK_SELECT && SPI_processed == 1)
		{
			Datum		h;

			ws.last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1,
													  &isnull));
			h = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2,
							  &isnull);
			if (!isnull)
				memcpy(ws.last_hash, VARDATA_ANY(DatumGetByteaPP(h)), AA_HASH_LEN);
		}
	}

	ws.ring_id = aa_queue_ring_id();
	ws.last_pos = -1;
	args[0] = Int64GetDatum((int64) ws.ring_id);
	ret = SPI_execute_with_args("SELECT last_pos FROM access_audit.writer_state WHERE ring_id = $1",
								1, argtypes, args, NULL, true, 1);
	if (ret == SPI_OK_SELECT && SPI_processed == 1)
		ws.last_pos = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
												  SPI_tuptable->tupdesc, 1,
												  &isnull));

	{
		Oid			st_types[2] = {INT8OID, INT8OID};
		Oid			daily_types[5] = {INT8OID, INT8OID, TEXTOID, INT4OID, INT4OID};

		ws.state_plan = SPI_prepare("INSERT INTO access_audit.writer_state (ring_id, last_pos, updated_at) "
									"VALUES ($1, $2, now()) ON CONFLICT (ring_id) DO UPDATE "
									"SET last_pos = excluded.last_pos, updated_at = excluded.updated_at",
									2, st_types);
		ws.daily_plan = SPI_prepare("INSERT INTO access_audit.actor_daily AS d "
									"(day, actor, relation, rows, tagged_rows, statements, off_hours_rows) "
									"SELECT (l.ts AT TIME ZONE $3)::date, l.actor, r.rel, sum(l.rows), "
									"sum(l.tagged_rows), count(*), "
									"sum(CASE WHEN extract(isodow FROM l.ts AT TIME ZONE $3) >= 6 "
									"OR extract(hour FROM l.ts AT TIME ZONE $3) < $4 "
									"OR extract(hour FROM l.ts AT TIME ZONE $3) >= $5 "
									"THEN greatest(l.rows, l.tagged_rows) ELSE 0 END) "
									"FROM access_audit.log l CROSS JOIN LATERAL unnest(l.relations) AS r(rel) "
									"WHERE l.seq BETWEEN $1 AND $2 AND l.actor IS NOT NULL "
									"AND l.command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE') "
									"GROUP BY 1, 2, 3 "
									"ON CONFLICT (day, actor, relation) DO UPDATE SET "
									"rows = d.rows + excluded.rows, "
									"tagged_rows = d.tagged_rows + excluded.tagged_rows, "
									"statements = d.statements + excluded.statements, "
									"off_hours_rows = d.off_hours_rows + excluded.off_hours_rows",
									5, daily_types);
		if (ws.state_plan == NULL || ws.daily_plan == NULL)
			elog(ERROR, "could not prepare access_audit writer statements: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(ws.state_plan);
		SPI_keepplan(ws.daily_plan);
	}
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		ws.dbname = DirectFunctionCall1(namein,
										CStringGetDatum(get_database_name(MyDatabaseId)));
		MemoryContextSwitchTo(old);
	}
	ws.loaded = true;
	return true;
}

static inline Datum
text_array(const char **strs, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * Max(n, 1));
	int			i;

	for (i = 0; i < n; i++)
		d[i] = CStringGetTextDatum(strs[i]);
	return PointerGetDatum(construct_array(d, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

static inline Datum
name_datum(const char *s)
{
	Name		n = palloc0(NAMEDATALEN);

	strlcpy(NameStr(*n), s, NAMEDATALEN);
	return NameGetDatum(n);
}

/*
 * Fill one log row from a queue item; seq and the chain are added by the
 * caller.
 */
static void
item_to_row(AuditQueueItem *item, Datum *values, bool *isnull)
{
	AuditRecord *r = &item->rec;
	Interval   *dur;

	memset(isnull, true, sizeof(bool) * AA_LOG_NCOLS);
	values[AA_LOG_DATABASE] = ws.dbname;
	isnull[AA_LOG_DATABASE] = false;

	if (r->kind == AA_KIND_GAP)
	{
		values[AA_LOG_TS] = TimestampTzGetDatum(GetCurrentTimestamp());
		isnull[AA_LOG_TS] = false;
		values[AA_LOG_COMMAND] = CStringGetTextDatum("GAP");
		isnull[AA_LOG_COMMAND] = false;
		values[AA_LOG_OUTCOME] = CStringGetTextDatum("error");
		isnull[AA_LOG_OUTCOME] = false;
		values[AA_LOG_DETAIL] = CStringGetTextDatum(psprintf("{\"lost_bytes\": %lld, \"queue_position\": %llu}",
															 (long long) item->gap_bytes,
															 (unsigned long long) item->pos));
		isnull[AA_LOG_DETAIL] = false;
		return;
	}

#define SET(col, expr) do { values[col] = (expr); isnull[col] = false; } while (0)
#define SET_TEXT(col, s) do { if ((s) != NULL) SET(col, CStringGetTextDatum(s)); } while (0)

	SET(AA_LOG_TS, TimestampTzGetDatum(r->ts));
	if (r->login_role)
		SET(AA_LOG_LOGIN_ROLE, name_datum(r->login_role));
	if (r->effective_role)
		SET(AA_LOG_EFFECTIVE_ROLE, name_datum(r->effective_role));
	SET_TEXT(AA_LOG_ACTOR, r->actor);
	SET_TEXT(AA_LOG_CLAIMED_ACTOR, r->claimed_actor);
	if (r->client_addr)
		SET(AA_LOG_CLIENT_ADDR, DirectFunctionCall1(inet_in,
													CStringGetDatum(r->client_addr)));
	SET_TEXT(AA_LOG_APPLICATION_NAME, r->application_name);
	SET(AA_LOG_BACKEND_PID, Int32GetDatum(r->backend_pid));
	SET(AA_LOG_QUERY_ID, Int64GetDatum(r->query_id));
	SET_TEXT(AA_LOG_QUERY, r->query);
	SET_TEXT(AA_LOG_COMMAND, r->command);
	SET(AA_LOG_NESTING_LEVEL, Int32GetDatum(r->nesting_level));
	SET(AA_LOG_RELATIONS, text_array(r->relations, r->n_relations));
	SET(AA_LOG_COLUMNS, text_array(r->columns, r->n_columns));
	SET(AA_LOG_PREDICATE_COLUMNS, text_array(r->predicate_columns, r->n_predicate));
	SET(AA_LOG_TAGS, text_array(r->tags, r->n_tags));
	SET(AA_LOG_ROWS, Int64GetDatum(r->rows));
	SET(AA_LOG_TAGGED_ROWS, Int64GetDatum(r->tagged_rows));
	SET(AA_LOG_OUTCOME, CStringGetTextDatum(r->outcome == AA_OUTCOME_OK ? "ok" : "error"));
	dur = palloc0(sizeof(Interval));
	dur->time = r->duration_us;
	SET(AA_LOG_DURATION, IntervalPGetDatum(dur));
	SET_TEXT(AA_LOG_DETAIL, r->detail);
#undef SET
#undef SET_TEXT
}

static inline Datum
hash_datum(const uint8 *h)
{
	bytea	   *b = palloc(VARHDRSZ + AA_HASH_LEN);

	SET_VARSIZE(b, VARHDRSZ + AA_HASH_LEN);
	memcpy(VARDATA(b), h, AA_HASH_LEN);
	return PointerGetDatum(b);
}

/*
 * Write one batch in one transaction: chain, multi-insert with index
 * maintenance, roll-up, ring position.  ERROR leaves the worker (which
 * is restarted and reloads its state); nothing is freed in the ring.
 */
static void
write_batch(AuditQueueItem *items, int n)
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	TupleTableSlot **slots;
	BulkInsertState bistate;
	CommandId	cid;
	int			nrows = 0;
	int			i;
	int64		first_seq;
	int64		max_pos = -1;

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
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit records are waiting for a database that has no access_audit extension"),
				errhint("Run CREATE EXTENSION access_audit in that database."));
	}

	rel = table_open(ws.log_relid, RowExclusiveLock);
	estate = CreateExecutorState();
	rri = makeNode(ResultRelInfo);
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	cid = GetCurrentCommandId(true);
	bistate = GetBulkInsertState();
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
	slots = ws.slots;
	first_seq = ws.last_seq + 1;

	for (i = 0; i < n; i++)
	{
		TupleTableSlot *slot;
		uint8		hash[AA_HASH_LEN];

		/* already committed before a crash: never write twice */
		if (ws.last_pos >= 0 && items[i].pos <= (uint64) ws.last_pos)
			continue;
		max_pos = (int64) items[i].pos;

		slot = slots[nrows];
		ExecClearTuple(slot);
		item_to_row(&items[i], slot->tts_values, slot->tts_isnull);
		slot->tts_values[AA_LOG_SEQ] = Int64GetDatum(ws.last_seq + 1);
		slot->tts_isnull[AA_LOG_SEQ] = false;
		aa_chain_hash(ws.last_hash, slot->tts_values, slot->tts_isnull, hash);
		slot->tts_values[AA_LOG_PREV_HASH] = hash_datum(ws.last_hash);
		slot->tts_isnull[AA_LOG_PREV_HASH] = false;
		slot->tts_values[AA_LOG_HASH] = hash_datum(hash);
		slot->tts_isnull[AA_LOG_HASH] = false;
		ExecStoreVirtualTuple(slot);
		nrows++;
		ws.last_seq++;
		memcpy(ws.last_hash, hash, AA_HASH_LEN);
	}

	if (nrows > 0)
	{
		table_multi_insert(rel, slots, nrows, cid, 0, bistate);
		for (i = 0; i < nrows; i++)
		{
			List	   *r = aa_insert_index_tuples_compat(rri, slots[i], estate);

			list_free(r);
		}
	}
	FreeBulkInsertState(bistate);
	for (i = 0; i < nrows; i++)
		ExecClearTuple(slots[i]);
	ExecCloseIndices(rri);
	FreeExecutorState(estate);
	table_close(rel, RowExclusiveLock);

	if (nrows > 0)
	{
		Datum		args[5];
		char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
		int			ret;

		CommandCounterIncrement();
		args[0] = Int64GetDatum(first_seq);
		args[1] = Int64GetDatum(ws.last_seq);
		args[2] = CStringGetTextDatum(aa_business_timezone);
		args[3] = Int32GetDatum(aa_business_hours_start);
		args[4] = Int32GetDatum(aa_business_hours_end);
		ret = SPI_execute_plan(ws.daily_plan, args, nulls, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "unexpected SPI result %d", ret);

		args[0] = Int64GetDatum((int64) ws.ring_id);
		args[1] = Int64GetDatum(max_pos);
		ret = SPI_execute_plan(ws.state_plan, args, nulls, false, 0);
		if (ret != SPI_OK_INSERT)
			elog(ERROR, "unexpected SPI result %d", ret);
		ws.last_pos = max_pos;
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
	pgstat_report_stat(false);
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

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	aa_capture_disable();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	if (!aa_queue_claim_writer(dboid, MyLatch))
		proc_exit(0);			/* another writer serves this database */
	on_shmem_exit(writer_on_exit, ObjectIdGetDatum(dboid));

	pgstat_report_appname("access_audit writer");
	StartTransactionCommand();
	dbname = MemoryContextStrdup(TopMemoryContext, get_database_name(dboid));
	CommitTransactionCommand();
	ereport(LOG,
			errmsg("access_audit writer started for database \"%s\"", dbname));

	/* a batch_size raised by reload takes effect at the next start */
	nalloc = aa_batch_size;
	items = MemoryContextAlloc(TopMemoryContext,
							   sizeof(AuditQueueItem) * nalloc);
	batch_cxt = AllocSetContextCreate(TopMemoryContext,
									  "access_audit writer batch",
									  ALLOCSET_DEFAULT_SIZES);
	memset(&ws, 0, sizeof(ws));

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

		MemoryContextReset(batch_cxt);
		old = MemoryContextSwitchTo(batch_cxt);
		n = aa_queue_collect(dboid, &scan_pos, max, items);
		if (n > 0)
			write_batch(items, n);
		MemoryContextSwitchTo(old);
		aa_queue_complete(dboid, items, n, scan_pos);

		if (n == max)
			continue;			/* more waiting: no sleep */

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
