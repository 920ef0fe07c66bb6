/*-------------------------------------------------------------------------
 *
 * partition.c
 *		The seq range partitions of access_audit.log_data.
 *
 * This file owns the layout of the log's storage: log_data is partitioned
 * by range of seq, access_audit.partition_size records a partition, so
 * that retention (drop_before() in sql/90_guard.sql) drops whole
 * partitions below its cut instead of deleting rows.  It creates the
 * partitions (in the writer, ahead of need), stores a batch of the writer's
 * rows into the partitions their seq falls in, and lists the partitions
 * with their bounds for SQL (access_audit._log_partitions()).
 *
 * Partitions are made by the writer only, in a transaction of their own
 * before a batch, when the highest partition has less than half a
 * partition of room left above the batch: CREATE TABLE (LIKE log_data),
 * the guard trigger, then ATTACH PARTITION, which takes SHARE UPDATE
 * EXCLUSIVE on log_data (readers and the writer's own inserts do not
 * conflict with it) and ACCESS EXCLUSIVE on the default partition for an
 * instant.  Both are taken first, without waiting (and a lock_timeout
 * bounds any other wait): when either is not free, the writer goes on
 * writing, into the room left and then into the default partition, and
 * tries again a second later.  So no lock a user holds can stall the
 * writer or lose a record, and the writer never waits while holding a lock
 * on the log, so it cannot deadlock with retention or readers; records that
 * went to the default partition stay there (retention deletes them row by
 * row).
 *
 * Ownership: no shared state.  The highest bound seen and the time of the
 * next attempt after a failure are writer-local.
 *
 * IDENTIFICATION
 *	  extension/partition.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/extension.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "compat.h"
#include "partition.h"

/* how long the writer waits for the locks that attaching a partition takes */
#define AA_PARTITION_LOCK_TIMEOUT	"1s"

/* after a failure to make a partition, the next attempt is this much later */
#define AA_PARTITION_RETRY_MS		1000

/* most partitions made in one go (the setting may have been made smaller) */
#define AA_PARTITION_MAX_AHEAD		4

/* one seq range partition: seq in [lo, hi) */
typedef struct LogPartition
{
	int64		lo;
	int64		hi;
	Oid			relid;
} LogPartition;

/* the upper bound of the highest partition, as the writer last saw it */
static int64 covered_hi = 0;
static TimestampTz next_attempt = 0;

static int	log_partitions(Relation parent, LogPartition **parts, Oid *defoid);
static void partition_create(Oid parent, int64 lo, int64 hi);
static void partition_store(Relation parent, Oid relid, TupleTableSlot **slots,
							int nrows, CommandId cid, EState *estate);

/*
 * The seq range partitions of parent (a partitioned log_data) in seq order,
 * and its default partition (InvalidOid if none).  An unbounded end (a
 * partition made by hand with MINVALUE or MAXVALUE) is PG_INT64_MIN or
 * PG_INT64_MAX.
 */
static int
log_partitions(Relation parent, LogPartition **parts, Oid *defoid)
{
	PartitionDesc pd = RelationGetPartitionDesc(parent, true);
	PartitionBoundInfo b = pd->boundinfo;
	int			n = 0;
	int			i;

	*defoid = InvalidOid;
	*parts = NULL;
	if (b == NULL)
		return 0;
	if (partition_bound_has_default(b))
		*defoid = pd->oids[b->default_index];
	*parts = palloc0(sizeof(LogPartition) * (b->ndatums + 1));

	/*
	 * Range bounds: datums are sorted, and indexes[i] is the partition whose
	 * upper bound is datums[i] (its lower bound is datums[i - 1]), or -1 for
	 * the gap below datums[i].
	 */
	for (i = 1; i < b->ndatums; i++)
	{
		int			idx = b->indexes[i];

		if (idx < 0)
			continue;
		(*parts)[n].lo = b->kind[i - 1][0] == PARTITION_RANGE_DATUM_VALUE ?
			DatumGetInt64(b->datums[i - 1][0]) : PG_INT64_MIN;
		(*parts)[n].hi = b->kind[i][0] == PARTITION_RANGE_DATUM_VALUE ?
			DatumGetInt64(b->datums[i][0]) : PG_INT64_MAX;
		(*parts)[n].relid = pd->oids[idx];
		n++;
	}
	return n;
}

/*
 * The relid of access_audit.log_data if it is partitioned, else InvalidOid.
 */
static Oid
log_parent(void)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, true);
	Oid			relid;

	if (!OidIsValid(nsp))
		return InvalidOid;
	relid = get_relname_relid("log_data", nsp);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_PARTITIONED_TABLE)
		return InvalidOid;
	return relid;
}

/*
 * Make partition [lo, hi) of log_data, owned as log_data is, with the
 * guard's trigger (statement triggers are not inherited from the parent).
 */
static void
partition_create(Oid parent, int64 lo, int64 hi)
{
	char	   *name = psprintf("%s.%s", AA_SCHEMA,
								quote_identifier(psprintf("log_data_p" INT64_FORMAT, lo)));
	char	   *owner;
	HeapTuple	tup;

	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(parent));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", parent);
	owner = GetUserNameFromId(((Form_pg_class) GETSTRUCT(tup))->relowner, false);
	ReleaseSysCache(tup);

	if (SPI_execute(psprintf("CREATE TABLE %s (LIKE access_audit.log_data)", name),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("ALTER TABLE %s OWNER TO %s", name,
							 quote_identifier(owner)), false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE "
							 "ON %s FOR EACH STATEMENT "
							 "EXECUTE FUNCTION access_audit._guard_trigger()", name),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("ALTER TABLE %s ENABLE ALWAYS TRIGGER guard", name),
					false, 0) != SPI_OK_UTILITY ||
		SPI_execute(psprintf("ALTER TABLE access_audit.log_data ATTACH PARTITION %s "
							 "FOR VALUES FROM (" INT64_FORMAT ") TO (" INT64_FORMAT ")",
							 name, lo, hi),
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not create partition %s: %s", name,
			 SPI_result_code_string(SPI_result));
	ereport(DEBUG1,
			errmsg("access_audit writer created partition %s for records " INT64_FORMAT " to " INT64_FORMAT,
				   name, lo, hi - 1));
}

/*
 * Writer, before a batch of up to n records after last_seq (-1: not known
 * yet) of the extension extoid (InvalidOid: not known yet; if another one
 * is installed now, nothing is done: the batch fails and a fresh writer
 * loads the new log): make sure the partitions cover them with half a
 * partition of room to spare, in a transaction of its own.  A failure (a lock not granted in
 * time) is logged and tried again a second later; meanwhile records go to
 * the room left, then to the default partition.
 */
void
aa_partition_ensure(int64 last_seq, Oid extoid, int n)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz now = GetCurrentTimestamp();

	if (last_seq >= 0 && covered_hi - (last_seq + n) > aa_partition_size / 2)
		return;
	if (now < next_attempt)
		return;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		Oid			parent;
		bool		busy = false;

		SPI_connect();
		PushActiveSnapshot(GetTransactionSnapshot());
		(void) set_config_option("lock_timeout", AA_PARTITION_LOCK_TIMEOUT,
								 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
								 true, 0, false);
		parent = log_parent();
		if (OidIsValid(extoid) && get_extension_oid(AA_NAME, true) != extoid)
		{
			/* the extension was dropped or made anew: not this writer's log */
		}
		else if (!OidIsValid(parent))
		{
			/* no extension yet, or a 1.0 log: look again later */
			next_attempt = TimestampTzPlusMilliseconds(now, AA_PARTITION_RETRY_MS);
		}
		else if (!ConditionalLockRelationOid(parent, ShareUpdateExclusiveLock))
		{
			/* retention or an owner holds the log: later */
			busy = true;
		}
		else
		{
			Relation	rel;
			LogPartition *parts;
			Oid			defoid;
			int			nparts;
			int64		hi = 0;
			int			made = 0;
			int			i;

			if (last_seq < 0)
			{
				bool		isnull;

				if (SPI_execute("SELECT GREATEST((SELECT max(d.seq) FROM access_audit.log_data d), "
								"(SELECT max(c.seq) FROM access_audit.chain_checkpoints c), 0)",
								true, 1) != SPI_OK_SELECT || SPI_processed != 1)
					elog(ERROR, "could not read the head of access_audit.log_data");
				last_seq = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													   SPI_tuptable->tupdesc, 1,
													   &isnull));
			}
			rel = table_open(parent, NoLock);
			nparts = log_partitions(rel, &parts, &defoid);
			for (i = 0; i < nparts; i++)
				hi = Max(hi, parts[i].hi);
			table_close(rel, NoLock);

			/*
			 * Attaching locks the default partition, which every reader of
			 * the whole log has locked too: take it now or come back later,
			 * never wait while holding the log.
			 */
			if (hi - (last_seq + n) <= aa_partition_size / 2 &&
				OidIsValid(defoid) &&
				!ConditionalLockRelationOid(defoid, AccessExclusiveLock))
				busy = true;
			else
			{
				while (hi - (last_seq + n) <= aa_partition_size / 2 &&
					   made < AA_PARTITION_MAX_AHEAD)
				{
					int64		lo = Max(hi, last_seq + 1);

					partition_create(parent, lo, lo + aa_partition_size);
					hi = lo + aa_partition_size;
					made++;
				}
				covered_hi = hi;
			}
		}
		if (busy)
		{
			next_attempt = TimestampTzPlusMilliseconds(now, AA_PARTITION_RETRY_MS);
			ereport(DEBUG1,
					errmsg("access_audit writer postponed the next partition of access_audit.log_data: the log is in use"));
		}
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
		next_attempt = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   AA_PARTITION_RETRY_MS);
		ereport(LOG,
				errmsg("access_audit writer could not create the next partition of access_audit.log_data: %s",
					   edata->message),
				errdetail("Records go to the room left and then to the default partition, access_audit.log_data_default; the writer tries again in a second."));
		FreeErrorData(edata);
	}
	PG_END_TRY();
}

/*
 * Store rows into one partition (its columns are log_data's, in the same
 * order: the writer made it LIKE log_data, or it is the default partition
 * or the 1.0 table attached by the update).
 */
static void
partition_store(Relation parent, Oid relid, TupleTableSlot **slots, int nrows,
				CommandId cid, EState *estate)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	ResultRelInfo *rri = makeNode(ResultRelInfo);
	BulkInsertState bistate;
	int			i;

	if (RelationGetDescr(rel)->natts != RelationGetDescr(parent)->natts)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_TABLE_DEFINITION),
				errmsg("partition \"%s\" of access_audit.log_data does not have the columns of access_audit.log_data",
					   RelationGetRelationName(rel)),
				errhint("Partitions of the log are made by its writer only; restore the extension's own layout."));
	InitResultRelInfo(rri, rel, 1, NULL, 0);
	ExecOpenIndices(rri, false);
	bistate = GetBulkInsertState();
	table_multi_insert(rel, slots, nrows, cid, 0, bistate);
	for (i = 0; i < nrows; i++)
	{
		List	   *r = aa_insert_index_tuples_compat(rri, slots[i], estate);

		list_free(r);
	}
	FreeBulkInsertState(bistate);
	ExecCloseIndices(rri);
	table_close(rel, NoLock);
}

/*
 * Writer: store nrows rows whose seqs are first_seq, first_seq + 1, ...
 * into the partitions of parent (log_data, opened by the caller) that
 * their seq falls in, or its default partition.  The rows of a batch are
 * consecutive, so this is one multi-insert per partition touched.
 */
void
aa_partition_insert(Relation parent, TupleTableSlot **slots, int nrows,
					int64 first_seq, CommandId cid, EState *estate)
{
	LogPartition *parts;
	Oid			defoid;
	int			nparts;
	int			i = 0;

	if (parent->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
	{
		/* a log not yet converted from 1.0 */
		partition_store(parent, RelationGetRelid(parent), slots, nrows, cid,
						estate);
		return;
	}
	nparts = log_partitions(parent, &parts, &defoid);
	while (i < nrows)
	{
		int64		seq = first_seq + i;
		int64		end = PG_INT64_MAX;
		Oid			relid = defoid;
		int			lo = 0;
		int			hi = nparts;
		int			take;

		/* the first partition whose upper bound is above seq */
		while (lo < hi)
		{
			int			mid = (lo + hi) / 2;

			if (parts[mid].hi <= seq)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < nparts && parts[lo].lo <= seq)
		{
			relid = parts[lo].relid;
			end = parts[lo].hi;
		}
		else if (lo < nparts)
			end = parts[lo].lo; /* into the default, up to that partition */
		if (!OidIsValid(relid))
			ereport(ERROR,
					errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					errmsg("no partition of access_audit.log_data takes record " INT64_FORMAT,
						   seq),
					errhint("Restore the default partition access_audit.log_data_default (reinstall the extension)."));
		take = (end - seq >= (int64) (nrows - i)) ? nrows - i : (int) (end - seq);
		partition_store(parent, relid, slots + i, take, cid, estate);
		i += take;
	}
}

/*
 * access_audit._log_partitions(): the seq range partitions of the log in
 * seq order (first_seq, end_seq: the partition holds first_seq <= seq <
 * end_seq), then the default partition with null bounds.
 */
PG_FUNCTION_INFO_V1(access_audit_log_partitions);
Datum
access_audit_log_partitions(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			parent;

	InitMaterializedSRF(fcinfo, 0);
	parent = log_parent();
	if (OidIsValid(parent))
	{
		Relation	rel = table_open(parent, AccessShareLock);
		LogPartition *parts;
		Oid			defoid;
		int			nparts = log_partitions(rel, &parts, &defoid);
		int			i;

		for (i = 0; i < nparts; i++)
		{
			Datum		values[3];
			bool		nulls[3] = {false, false, false};

			values[0] = ObjectIdGetDatum(parts[i].relid);
			values[1] = Int64GetDatum(parts[i].lo);
			values[2] = Int64GetDatum(parts[i].hi);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		if (OidIsValid(defoid))
		{
			Datum		values[3] = {ObjectIdGetDatum(defoid), 0, 0};
			bool		nulls[3] = {false, true, true};

			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		table_close(rel, NoLock);
	}
	return (Datum) 0;
}
