/*-------------------------------------------------------------------------
 *
 * rowids.c
 *		Row identities: which rows of tracked tables a read record read
 *		(breach scoping, issue 25; design in docs/breach.md).
 *
 * This file owns the per-backend cache of tracked tables
 * (access_audit.row_identities) and of the secret of the keyed hash
 * (access_audit.row_key), the keys a statement reads, their encoding into
 * bounded chunks and the chunks' way into the queue, the writer's storing
 * of chunks (access_audit.row_sets, chained) and of the link of a read
 * record to them (access_audit.row_set_reads), and the SQL functions that
 * decode sets and hash keys.
 *
 * Capture: capture.c hands every tagged scan node of an audited statement
 * to aa_rowids_scan(); for a tracked relation it wraps the node's
 * ExecProcNode (each row that leaves the scan) and, when the scan's filter
 * may leak tagged values, the filter's evalfunc (each row the filter sees),
 * and takes the key from the scan tuple (index-only scans without the key
 * fetch the heap row by its TID).  Keys go into a growing buffer per
 * relation (at most AA_ROWIDS_BUFFER keys); a full buffer, and whatever is
 * left when the record is pushed, is sorted, made distinct and pushed as
 * AA_KIND_ROWS records of at most AA_ROWIDS_CHUNK_DATA bytes each.  The
 * read record carries its number among this backend's row sets (row_set);
 * (backend pid, statement start, row_set) make the 64-bit link both sides
 * compute, so chunks and record may reach the writer in any order.
 * Parallel workers publish nothing of their own: the leader's link is in
 * shared memory (one slot per backend), and workers push chunks under it.
 *
 * Encoding of a chunk: runs of consecutive keys, each as two varints (the
 * gap from the key after the previous run, starting at lo, and the run's
 * length - 1).  A point read is one run; a range read of consecutive keys
 * one run; a million hashed keys about nine bytes each.
 *
 * Ownership: a statement's state lives in its memory context and is on the
 * active list from its first tracked scan until capture pushes or drops
 * its record (aa_rowids_finish, aa_rowids_discard, also from capture's
 * reset callback during abort: that path neither allocates nor throws).
 * The shared slots are written by their own backend only.
 *
 * IDENTIFICATION
 *	  extension/rowids.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "port/atomics.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "access/sysattr.h"

#include "access_audit.h"
#include "chain.h"
#include "compat.h"
#include "queue.h"
#include "rowids.h"
#include "tags.h"

PG_FUNCTION_INFO_V1(access_audit_row_set_keys);
PG_FUNCTION_INFO_V1(access_audit_row_set_has);
PG_FUNCTION_INFO_V1(access_audit_row_key_of);
PG_FUNCTION_INFO_V1(access_audit_row_key_hash_text);
PG_FUNCTION_INFO_V1(access_audit_row_key_hash_uuid);
PG_FUNCTION_INFO_V1(access_audit_row_key_value);

/* most keys a statement buffers per relation before pushing chunks */
#define AA_ROWIDS_BUFFER		65536
/* most data bytes of one chunk (a ROWS record stays under 4.5 kB) */
#define AA_ROWIDS_CHUNK_DATA	4096
/* a run is at most two varints */
#define AA_ROWIDS_RUN_MAX		20
#define AA_ROWIDS_SECRET_LEN	32

/* a tracked relation, as the cache knows it */
typedef struct RowTrack
{
	Oid			relid;			/* hash key */
	bool		tracked;
	AttrNumber	attno;			/* the key column in relid */
	Oid			typid;
	char	   *relation;		/* the tracked table (an ancestor of relid) */
} RowTrack;

/* the keys of one relation read by one statement */
typedef struct RowCollector
{
	struct RowIdsState *st;
	char	   *relation;
	int			n;
	int			cap;
	int64	   *keys;
} RowCollector;

/* one tracked scan node */
typedef struct RowScan
{
	PlanState  *ps;
	RowCollector *col;
	Oid			typid;
	AttrNumber	slot_attno;		/* in the scan tuple; 0: fetch by TID */
	AttrNumber	heap_attno;		/* in the relation */
	TupleTableSlot *fetch;		/* for the TID fetch */
	ExecProcNodeMtd next_exec;
	ExprState  *qual;			/* the filter wrapped, or NULL */
	ExprStateEvalFunc next_qual;
} RowScan;

typedef struct RowIdsState
{
	struct RowIdsState *next;
	MemoryContext cxt;
	int64		link;
	int32		row_set;		/* 0 in a parallel worker */
	int32		next_chunk;
	bool		pushed;			/* a chunk went to the queue */
	bool		lost;			/* a chunk was left out (cancelled wait) */
	bool		published;		/* the link is in this backend's slot */
	int			nscans;
	int			capscans;
	RowScan   **scans;
	int			ncols;
	int			capcols;
	RowCollector **cols;
} RowIdsState;

/* a backend's published link, for its parallel workers */
typedef struct RowIdsSlot
{
	pg_atomic_uint64 link;		/* 0: none */
} RowIdsSlot;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static RowIdsSlot *rowids_slots = NULL;
static int	rowids_nslots = 0;

static HTAB *track_cache = NULL;
static MemoryContext track_cxt = NULL;
static uint64 track_epoch = 0;
static bool have_secret = false;
static uint8 secret[AA_ROWIDS_SECRET_LEN];

static RowIdsState *active = NULL;
static int32 last_row_set = 0;

/* a parallel worker's state (its plan copy's tracked scans) */
static RowIdsState *worker_state = NULL;

/* ---------------------------------------------------------------------
 * Shared slots
 * ---------------------------------------------------------------------
 */

static Size
rowids_shmem_size(void)
{
	return mul_size(MaxBackends + NUM_AUXILIARY_PROCS + 16, sizeof(RowIdsSlot));
}

static void
rowids_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(rowids_shmem_size());
}

static void
rowids_shmem_startup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	rowids_nslots = MaxBackends + NUM_AUXILIARY_PROCS + 16;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	rowids_slots = ShmemInitStruct("access_audit row identities",
								   rowids_shmem_size(), &found);
	if (!found)
		for (i = 0; i < rowids_nslots; i++)
			pg_atomic_init_u64(&rowids_slots[i].link, 0);
	LWLockRelease(AddinShmemInitLock);
}

void
aa_rowids_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rowids_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rowids_shmem_startup;
}

/* the index of proc in the PGPROC array */
static inline int
procno_of(PGPROC * proc)
{
#if PG_VERSION_NUM >= 170000
	return (int) GetNumberFromPGProc(proc);
#else
	return proc->pgprocno;
#endif
}

static void
publish_link(RowIdsState *st)
{
	int			i = aa_my_procno_compat();

	if (rowids_slots == NULL || i < 0 || i >= rowids_nslots)
		return;
	pg_atomic_write_u64(&rowids_slots[i].link, (uint64) st->link);
	st->published = true;
}

static void
unpublish_link(RowIdsState *st)
{
	int			i = aa_my_procno_compat();

	if (!st->published || rowids_slots == NULL || i < 0 || i >= rowids_nslots)
		return;
	pg_atomic_write_u64(&rowids_slots[i].link, 0);
	st->published = false;
}

/* ---------------------------------------------------------------------
 * The cache of tracked tables and the secret
 * ---------------------------------------------------------------------
 */

static Oid
schema_table(const char *name)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, true);

	return OidIsValid(nsp) ? get_relname_relid(name, nsp) : InvalidOid;
}

/*
 * The extension's two small settings tables are read with SnapshotSelf, as
 * catalogs are read: committed rows, no MVCC snapshot, so that a
 * SERIALIZABLE transaction takes no predicate lock on them (it would tie
 * every audited statement to every track_rows()).
 */

/* (re)load the secret; false if there is none yet */
static void
load_secret(void)
{
	Oid			relid = schema_table("row_key");
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;

	have_secret = false;
	if (!OidIsValid(relid))
		return;
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, NULL);
	if ((tup = systable_getnext(scan)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, get_attnum(relid, "k"),
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == AA_ROWIDS_SECRET_LEN)
			{
				memcpy(secret, VARDATA_ANY(b), AA_ROWIDS_SECRET_LEN);
				have_secret = true;
			}
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/* the key types whose values row identities keep (key_value) */
static bool
key_type_supported(Oid typid)
{
	return typid == INT2OID || typid == INT4OID || typid == INT8OID ||
		typid == UUIDOID || typid == TEXTOID || typid == VARCHAROID;
}

/* the tracked table's own entry: key column and name */
static void
track_fill(RowTrack *t, Oid tracked, const char *keycol)
{
	Oid			nsp = get_rel_namespace(tracked);
	char	   *nspname = nsp ? get_namespace_name(nsp) : NULL;
	char	   *relname = get_rel_name(tracked);
	MemoryContext old;

	t->attno = get_attnum(t->relid, keycol);
	if (t->attno == InvalidAttrNumber || nspname == NULL || relname == NULL)
		return;
	t->typid = get_atttype(t->relid, t->attno);
	if (!key_type_supported(t->typid))
		return;
	old = MemoryContextSwitchTo(track_cxt);
	t->relation = pstrdup(quote_qualified_identifier(nspname, relname));
	MemoryContextSwitchTo(old);
	t->tracked = true;
}

/* drop the cache when tags (or row identity settings) may have changed */
static void
track_cache_check(void)
{
	if (track_cache == NULL || track_epoch != aa_tags_epoch())
	{
		HASHCTL		ctl;

		if (track_cxt == NULL)
			track_cxt = AllocSetContextCreate(TopMemoryContext,
											  "access_audit row identities",
											  ALLOCSET_SMALL_SIZES);
		else
			MemoryContextReset(track_cxt);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RowTrack);
		ctl.hcxt = track_cxt;
		track_cache = hash_create("access_audit row identities", 32, &ctl,
								  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		track_epoch = aa_tags_epoch();
		load_secret();
	}
}

/*
 * The row identity setting of relid: its own, or that of the nearest
 * partitioned ancestor that has one (the key column by name).  NULL if not
 * tracked.
 */
static RowTrack *
track_lookup(Oid relid)
{
	RowTrack   *t;
	bool		found;
	Oid			regid;
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	List	   *candidates;
	ListCell   *lc;
	AttrNumber	keyatt_rel;
	AttrNumber	keyatt_col;

	track_cache_check();
	t = hash_search(track_cache, &relid, HASH_ENTER, &found);
	if (found)
		return t->tracked ? t : NULL;
	t->tracked = false;
	t->relation = NULL;
	regid = schema_table("row_identities");
	if (!OidIsValid(regid))
		return NULL;

	candidates = list_make1_oid(relid);
	if (get_rel_relispartition(relid))
		candidates = list_concat(candidates, get_partition_ancestors(relid));
	rel = table_open(regid, AccessShareLock);
	keyatt_rel = get_attnum(regid, "rel");
	keyatt_col = get_attnum(regid, "key_column");
	if (keyatt_rel == InvalidAttrNumber || keyatt_col == InvalidAttrNumber)
		candidates = NIL;
	foreach(lc, candidates)
	{
		Oid			want = lfirst_oid(lc);

		scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, NULL);
		while ((tup = systable_getnext(scan)) != NULL)
		{
			bool		n1,
						n2;
			Datum		r = heap_getattr(tup, keyatt_rel, RelationGetDescr(rel), &n1);
			Datum		k = heap_getattr(tup, keyatt_col, RelationGetDescr(rel), &n2);

			if (n1 || n2 || DatumGetObjectId(r) != want)
				continue;
			track_fill(t, want, NameStr(*DatumGetName(k)));
			break;
		}
		systable_endscan(scan);
		if (t->relation != NULL || tup != NULL)
			break;
	}
	table_close(rel, AccessShareLock);
	list_free(candidates);
	return t->tracked ? t : NULL;
}

/* ---------------------------------------------------------------------
 * Keys
 * ---------------------------------------------------------------------
 */

/* HMAC-SHA256 under key, first 8 bytes in network order */
static int64
keyed_hash_with(const uint8 *key, const char *data, Size len)
{
	uint8		ipad[64];
	uint8		opad[64 + AA_HASH_LEN];
	uint8		inner[AA_HASH_LEN];
	uint8		out[AA_HASH_LEN];
	uint8		stackbuf[64 + 256];
	uint8	   *buf;
	uint64		v = 0;
	int			i;

	memset(ipad, 0x36, sizeof(ipad));
	memset(opad, 0x5c, 64);
	for (i = 0; i < AA_ROWIDS_SECRET_LEN; i++)
	{
		ipad[i] ^= key[i];
		opad[i] ^= key[i];
	}
	buf = (len <= 256) ? stackbuf : palloc(64 + len);
	memcpy(buf, ipad, 64);
	memcpy(buf + 64, data, len);
	aa_sha256(buf, 64 + len, inner);
	if (buf != stackbuf)
		pfree(buf);
	memcpy(opad + 64, inner, AA_HASH_LEN);
	aa_sha256(opad, sizeof(opad), out);
	for (i = 0; i < 8; i++)
		v = (v << 8) | out[i];
	return (int64) v;
}

/* the keyed hash under this database's secret */
static int64
keyed_hash(const char *data, Size len)
{
	if (!have_secret)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit has no key for hashing row identities"),
				errhint("access_audit.track_rows() on a table with a text or uuid key makes one."));
	return keyed_hash_with(secret, data, len);
}

/* the identity of a key value of type typid */
static int64
key_value(Oid typid, Datum d)
{
	switch (typid)
	{
		case INT2OID:
			return (int64) DatumGetInt16(d);
		case INT4OID:
			return (int64) DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		case UUIDOID:
			return keyed_hash((const char *) DatumGetUUIDP(d)->data,
							  UUID_LEN);
		default:
			{
				text	   *t = DatumGetTextPP(d);
				int64		v = keyed_hash(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

				if ((Pointer) t != DatumGetPointer(d))
					pfree(t);
				return v;
			}
	}
}

/*
 * The link of a read record's row sets: both capture and the writer compute
 * it from the record's backend pid, statement start and row_set.
 */
int64
aa_rowids_link(int32 pid, TimestampTz ts, int32 row_set)
{
	struct
	{
		int64		ts;
		int32		pid;
		int32		row_set;
	}			k;

	memset(&k, 0, sizeof(k));
	k.ts = ts;
	k.pid = pid;
	k.row_set = row_set;
	return (int64) hash_bytes_extended((const unsigned char *) &k, sizeof(k),
									   0x6161726f77736574ULL);
}

/* ---------------------------------------------------------------------
 * Encoding
 * ---------------------------------------------------------------------
 */

static inline char *
put_varint(char *p, uint64 v)
{
	while (v >= 0x80)
	{
		*p++ = (char) ((v & 0x7f) | 0x80);
		v >>= 7;
	}
	*p++ = (char) v;
	return p;
}

static inline bool
get_varint(const char **pp, const char *end, uint64 *v)
{
	uint64		r = 0;
	int			shift = 0;

	while (*pp < end && shift < 64)
	{
		uint8		b = (uint8) *(*pp)++;

		r |= (uint64) (b & 0x7f) << shift;
		if ((b & 0x80) == 0)
		{
			*v = r;
			return true;
		}
		shift += 7;
	}
	return false;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Sort the collector's keys, make them distinct and push them as chunks.
 * Neither allocates nor throws (runs in capture's abort path too).
 */
static void
push_collector(RowIdsState *st, RowCollector *col)
{
	static char data[AA_ROWIDS_CHUNK_DATA];
	int			n;
	int			i;
	int			pos;

	if (col->n == 0)
		return;
	qsort(col->keys, col->n, sizeof(int64), cmp_int64);
	n = 1;
	for (i = 1; i < col->n; i++)
		if (col->keys[i] != col->keys[n - 1])
			col->keys[n++] = col->keys[i];

	pos = 0;
	while (pos < n)
	{
		AuditRowChunk c;
		AuditRecord rec;
		char	   *p = data;
		uint64		next = (uint64) col->keys[pos];
		int			count = 0;

		memset(&c, 0, sizeof(c));
		c.link = st->link;
		c.chunk = ++st->next_chunk;
		c.lo = col->keys[pos];
		c.relation = col->relation;
		while (pos < n && p - data + AA_ROWIDS_RUN_MAX <= AA_ROWIDS_CHUNK_DATA)
		{
			int			run = 1;

			while (pos + run < n &&
				   col->keys[pos + run] == col->keys[pos + run - 1] + 1)
				run++;
			p = put_varint(p, (uint64) col->keys[pos] - next);
			p = put_varint(p, (uint64) (run - 1));
			c.hi = col->keys[pos + run - 1];
			next = (uint64) c.hi + 1;
			count += run;
			pos += run;
		}
		c.n = count;
		c.len = (int32) (p - data);
		c.data = data;
		memset(&rec, 0, sizeof(rec));
		rec.kind = AA_KIND_ROWS;
		rec.chunk = &c;
		if (!aa_queue_push(&rec))
			st->lost = true;
		st->pushed = true;
	}
	col->n = 0;
}

/* ---------------------------------------------------------------------
 * Capture
 * ---------------------------------------------------------------------
 */

static void
note_key(RowScan *rs, TupleTableSlot *slot)
{
	RowCollector *col = rs->col;
	bool		isnull;
	Datum		d;
	int64		key;
	TupleTableSlot *from = slot;
	AttrNumber	attno = rs->slot_attno;

	if (TupIsNull(slot))
		return;
	if (attno == 0)
	{
		/* an index-only scan whose index lacks the key: the heap row */
		IndexOnlyScanState *ioss = (IndexOnlyScanState *) rs->ps;
		ScanState  *ss = (ScanState *) rs->ps;

		if (ioss->ioss_ScanDesc == NULL)
			return;
		if (rs->fetch == NULL)
		{
			MemoryContext old = MemoryContextSwitchTo(rs->ps->state->es_query_cxt);

			rs->fetch = table_slot_create(ss->ss_currentRelation,
										  &rs->ps->state->es_tupleTable);
			MemoryContextSwitchTo(old);
		}
		if (!table_tuple_fetch_row_version(ss->ss_currentRelation,
										   &ioss->ioss_ScanDesc->xs_heaptid,
										   rs->ps->state->es_snapshot,
										   rs->fetch))
			return;
		from = rs->fetch;
		attno = rs->heap_attno;
	}
	d = slot_getattr(from, attno, &isnull);
	if (!isnull)
	{
		if (rs->typid == INT2OID || rs->typid == INT4OID || rs->typid == INT8OID)
			key = key_value(rs->typid, d);
		else
		{
			ExprContext *econtext = rs->ps->ps_ExprContext;
			MemoryContext old = MemoryContextSwitchTo(econtext ?
													  econtext->ecxt_per_tuple_memory :
													  CurrentMemoryContext);

			key = key_value(rs->typid, d);
			MemoryContextSwitchTo(old);
		}
	}
	if (from != slot)
		ExecClearTuple(from);
	if (isnull)
		return;

	if (col->n == col->cap)
	{
		if (col->cap >= AA_ROWIDS_BUFFER)
			push_collector(col->st, col);
		else
		{
			int			cap = Max(16, col->cap * 2);

			col->keys = col->keys ?
				repalloc(col->keys, sizeof(int64) * cap) :
				MemoryContextAlloc(col->st->cxt, sizeof(int64) * cap);
			col->cap = cap;
		}
	}
	col->keys[col->n++] = key;
}

static RowScan *
scan_find(PlanState *ps)
{
	RowIdsState *st;
	int			i;

	for (st = active; st; st = st->next)
		for (i = 0; i < st->nscans; i++)
			if (st->scans[i]->ps == ps)
				return st->scans[i];
	if (worker_state != NULL)
		for (i = 0; i < worker_state->nscans; i++)
			if (worker_state->scans[i]->ps == ps)
				return worker_state->scans[i];
	return NULL;
}

static RowScan *
qual_find(ExprState * qual)
{
	RowIdsState *st;
	int			i;

	for (st = active; st; st = st->next)
		for (i = 0; i < st->nscans; i++)
			if (st->scans[i]->qual == qual)
				return st->scans[i];
	if (worker_state != NULL)
		for (i = 0; i < worker_state->nscans; i++)
			if (worker_state->scans[i]->qual == qual)
				return worker_state->scans[i];
	return NULL;
}

/*
 * ExecProcNode of a tracked scan: the key of each row it returns.  The
 * function wrapped may replace itself on its first call (ExecProcNodeFirst
 * does); the wrapper then wraps its replacement.
 */
static TupleTableSlot *
rowids_exec(PlanState *node)
{
	RowScan    *rs = scan_find(node);
	TupleTableSlot *slot;

	Assert(rs != NULL);
	slot = rs->next_exec(node);
	if (node->ExecProcNode != rowids_exec)
	{
		rs->next_exec = node->ExecProcNode;
		node->ExecProcNode = rowids_exec;
	}
	if (!TupIsNull(slot))
		note_key(rs, ((ScanState *) node)->ss_ScanTupleSlot);
	return slot;
}

/*
 * The filter of a tracked scan that may leak tagged values: the key of
 * every row it sees.  ExecInterpExprStillValid replaces itself the same way.
 */
static Datum
rowids_qual(ExprState * state, ExprContext * econtext, bool *isnull)
{
	RowScan    *rs = qual_find(state);
	Datum		d;

	Assert(rs != NULL);
	note_key(rs, econtext->ecxt_scantuple);
	d = rs->next_qual(state, econtext, isnull);
	if (state->evalfunc != rowids_qual)
	{
		rs->next_qual = state->evalfunc;
		state->evalfunc = rowids_qual;
	}
	return d;
}

static RowIdsState *
state_new(MemoryContext cxt, bool worker)
{
	RowIdsState *st = MemoryContextAllocZero(cxt, sizeof(RowIdsState));

	st->cxt = cxt;
	if (!worker)
	{
		if (++last_row_set <= 0)
			last_row_set = 1;
		st->row_set = last_row_set;
		st->link = aa_rowids_link(MyProcPid, GetCurrentStatementStartTimestamp(),
								  st->row_set);
		st->next = active;
		active = st;
	}
	return st;
}

static RowCollector *
collector_for(RowIdsState *st, const char *relation)
{
	RowCollector *col;
	int			i;

	for (i = 0; i < st->ncols; i++)
		if (strcmp(st->cols[i]->relation, relation) == 0)
			return st->cols[i];
	if (st->ncols == st->capcols)
	{
		st->capcols = Max(4, st->capcols * 2);
		st->cols = st->cols ?
			repalloc(st->cols, sizeof(RowCollector *) * st->capcols) :
			MemoryContextAlloc(st->cxt, sizeof(RowCollector *) * st->capcols);
	}
	col = MemoryContextAllocZero(st->cxt, sizeof(RowCollector));
	col->st = st;
	col->relation = MemoryContextStrdup(st->cxt, relation);
	st->cols[st->ncols++] = col;
	return col;
}

/* the column of the scan tuple of an index-only scan that holds attno */
static AttrNumber
index_only_attno(IndexOnlyScan * plan, AttrNumber attno)
{
	ListCell   *lc;
	AttrNumber	i = 0;

	foreach(lc, plan->indextlist)
	{
		TargetEntry *te = lfirst(lc);

		i++;
		if (IsA(te->expr, Var) && ((Var *) te->expr)->varattno == attno)
			return i;
	}
	return 0;
}

static void
scan_add(RowIdsState *st, PlanState *ps, RowTrack *t, bool leaky)
{
	RowScan    *rs = MemoryContextAllocZero(st->cxt, sizeof(RowScan));

	rs->ps = ps;
	rs->col = collector_for(st, t->relation);
	rs->typid = t->typid;
	rs->heap_attno = t->attno;
	rs->slot_attno = IsA(ps, IndexOnlyScanState) ?
		index_only_attno((IndexOnlyScan *) ps->plan, t->attno) : t->attno;
	if (st->nscans == st->capscans)
	{
		st->capscans = Max(4, st->capscans * 2);
		st->scans = st->scans ?
			repalloc(st->scans, sizeof(RowScan *) * st->capscans) :
			MemoryContextAlloc(st->cxt, sizeof(RowScan *) * st->capscans);
	}
	st->scans[st->nscans++] = rs;
	rs->next_exec = ps->ExecProcNode;
	ps->ExecProcNode = rowids_exec;
	if (leaky && ps->qual != NULL)
	{
		rs->qual = ps->qual;
		rs->next_qual = ps->qual->evalfunc;
		ps->qual->evalfunc = rowids_qual;
	}
}

/* the tracked relation a scan node reads, or NULL */
static RowTrack *
scan_track(PlanState *ps)
{
	ScanState  *ss = (ScanState *) ps;

	if (!(IsA(ps, SeqScanState) || IsA(ps, IndexScanState) ||
		  IsA(ps, IndexOnlyScanState) || IsA(ps, BitmapHeapScanState) ||
		  IsA(ps, TidScanState) || IsA(ps, TidRangeScanState) ||
		  IsA(ps, SampleScanState)) || ss->ss_currentRelation == NULL)
		return NULL;
	return track_lookup(RelationGetRelid(ss->ss_currentRelation));
}

/*
 * A tagged scan node of an audited statement (capture.c): if it reads a
 * tracked relation, note the keys of its rows.  *state is the statement's,
 * made here at the first tracked scan, in cxt.
 */
void
aa_rowids_scan(void **state, PlanState *ps, bool leaky, MemoryContext cxt)
{
	RowTrack   *t = scan_track(ps);
	RowIdsState *st;

	if (t == NULL)
		return;
	if (*state == NULL)
		*state = state_new(cxt, false);
	st = (RowIdsState *) *state;
	scan_add(st, ps, t, leaky);

	/* its parallel workers push their rows' keys under its link */
	if (ps->state->es_plannedstmt->parallelModeNeeded && !st->published)
		publish_link(st);
}

/* does relid keep row identities? */
bool
aa_rowids_tracks(Oid relid)
{
	return track_lookup(relid) != NULL;
}

/*
 * Relation-form COPY TO of relid sent rows of the active snapshot: all of
 * them (limit < 0: it completed), or the first limit in heap order from
 * block 0 (it failed; capture ran it without synchronized scanning, in a
 * subtransaction it rolled back, see aa_ProcessUtility).  Note their keys.
 */
void
aa_rowids_copy(void **state, Oid relid, int64 limit, MemoryContext cxt)
{
	int64		seen = 0;

	RowTrack   *t = track_lookup(relid);
	RowIdsState *st;
	RowCollector *col;
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	MemoryContext tmp;
	MemoryContext old;

	if (t == NULL || !ActiveSnapshotSet())
		return;
	if (*state == NULL)
		*state = state_new(cxt, false);
	st = (RowIdsState *) *state;
	col = collector_for(st, t->relation);
	tmp = AllocSetContextCreate(CurrentMemoryContext, "access_audit COPY keys",
								ALLOCSET_DEFAULT_SIZES);
	rel = table_open(relid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	/* from block 0, as the COPY's own scan */
	scan = table_beginscan_strat(rel, GetActiveSnapshot(), 0, NULL, true, false);
	while ((limit < 0 || seen < limit) &&
		   table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, t->attno, &isnull);

		CHECK_FOR_INTERRUPTS();
		seen++;
		if (isnull)
			continue;
		old = MemoryContextSwitchTo(tmp);
		if (col->n == col->cap)
		{
			if (col->cap >= AA_ROWIDS_BUFFER)
				push_collector(st, col);
			else
			{
				int			cap = Max(16, col->cap * 2);

				col->keys = col->keys ?
					repalloc(col->keys, sizeof(int64) * cap) :
					MemoryContextAlloc(st->cxt, sizeof(int64) * cap);
				col->cap = cap;
			}
		}
		col->keys[col->n++] = key_value(t->typid, d);
		MemoryContextSwitchTo(old);
		MemoryContextReset(tmp);
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	MemoryContextDelete(tmp);
}

/* the plan may outlive the state (an error, a worker's end): unwrap */
static void
state_unwrap(RowIdsState *st)
{
	int			i;

	for (i = 0; i < st->nscans; i++)
	{
		RowScan    *rs = st->scans[i];

		if (rs->ps->ExecProcNode == rowids_exec)
			rs->ps->ExecProcNode = rs->next_exec;
		if (rs->qual != NULL && rs->qual->evalfunc == rowids_qual)
			rs->qual->evalfunc = rs->next_qual;
	}
	st->nscans = 0;
}

static void
state_unlink(RowIdsState *st)
{
	RowIdsState **pp;

	for (pp = &active; *pp; pp = &(*pp)->next)
		if (*pp == st)
		{
			*pp = st->next;
			break;
		}
	unpublish_link(st);
	state_unwrap(st);
}

/*
 * The record is about to be pushed: push what is left of its row sets and
 * give it its row_set number if it has any.  Also from capture's reset
 * callback: neither allocates nor throws.
 */
void
aa_rowids_finish(void **state, AuditRecord *rec)
{
	RowIdsState *st = (RowIdsState *) *state;
	int			i;

	if (st == NULL)
		return;
	/* its workers may have pushed chunks under its link */
	if (st->published)
		st->pushed = true;
	state_unlink(st);
	for (i = 0; i < st->ncols; i++)
		push_collector(st, st->cols[i]);
	/* a negative row_set: the set is incomplete (a chunk was left out) */
	if (st->pushed)
		rec->row_set = st->lost ? -st->row_set : st->row_set;
	*state = NULL;
}

/* The record is dropped (it read nothing): so are its row sets. */
void
aa_rowids_discard(void **state)
{
	RowIdsState *st = (RowIdsState *) *state;

	if (st == NULL)
		return;
	state_unlink(st);
	*state = NULL;
}

/* ---------------------------------------------------------------------
 * Parallel workers
 * ---------------------------------------------------------------------
 */

static void
worker_state_reset(void *arg)
{
	RowIdsState *st = (RowIdsState *) arg;
	int			i;

	if (worker_state != st)
		return;
	state_unwrap(st);
	for (i = 0; i < st->ncols; i++)
		push_collector(st, st->cols[i]);
	worker_state = NULL;
}

/*
 * Can the filter of a worker's scan leak tagged values (as capture.c's
 * scan_filter_leaks() decides for the leader)?
 */
static bool
worker_filter_leaks(PlanState *ps)
{
	Plan	   *plan = ps->plan;
	Relation	rel = ((ScanState *) ps)->ss_currentRelation;
	AuditRelTags *rt = aa_tags_lookup(RelationGetRelid(rel));
	Bitmapset  *attrs = NULL;
	int			i = -1;
	bool		tagged = false;

	if (plan->qual == NIL || rt == NULL || !rt->tagged)
		return false;
	pull_varattnos((Node *) plan->qual, ((Scan *) plan)->scanrelid, &attrs);
	while ((i = bms_next_member(attrs, i)) >= 0)
	{
		AttrNumber	attno = i + FirstLowInvalidHeapAttributeNumber;

		if (attno == 0 ||
			(attno > 0 && attno <= rt->natts && rt->cols[attno].qualname != NULL))
			tagged = true;
	}
	return tagged && contain_leaked_vars((Node *) plan->qual);
}

/*
 * A parallel worker starts its copy of the plan: if its leader published
 * a link, note the keys its tracked scans read, under that link.
 */
void
aa_rowids_worker_start(QueryDesc *queryDesc)
{
	PGPROC	   *leader = MyProc ? MyProc->lockGroupLeader : NULL;
	int			procno;
	uint64		link;
	RowIdsState *st;
	MemoryContextCallback *cb;
	List	   *todo;

	if (leader == NULL || rowids_slots == NULL || !aa_tags_active())
		return;
	procno = procno_of(leader);
	if (procno < 0 || procno >= rowids_nslots ||
		(link = pg_atomic_read_u64(&rowids_slots[procno].link)) == 0)
		return;
	st = state_new(queryDesc->estate->es_query_cxt, true);
	st->link = (int64) link;
	todo = list_make1(queryDesc->planstate);
	while (todo != NIL)
	{
		PlanState  *ps = linitial(todo);
		RowTrack   *t;

		todo = list_delete_first(todo);
		if (ps == NULL)
			continue;
		if ((t = scan_track(ps)) != NULL)
			scan_add(st, ps, t, worker_filter_leaks(ps));
		todo = lappend(todo, ps->lefttree);
		todo = lappend(todo, ps->righttree);
		if (IsA(ps, AppendState))
		{
			AppendState *as = (AppendState *) ps;
			int			i;

			for (i = 0; i < as->as_nplans; i++)
				todo = lappend(todo, as->appendplans[i]);
		}
		else if (IsA(ps, SubqueryScanState))
			todo = lappend(todo, ((SubqueryScanState *) ps)->subplan);
	}
	if (st->nscans == 0)
		return;
	worker_state = st;
	cb = MemoryContextAllocZero(st->cxt, sizeof(MemoryContextCallback));
	cb->func = worker_state_reset;
	cb->arg = st;
	MemoryContextRegisterResetCallback(st->cxt, cb);
}

/* the worker's plan ends: push its keys */
void
aa_rowids_worker_end(void)
{
	if (worker_state != NULL)
		worker_state_reset(worker_state);
}

/* ---------------------------------------------------------------------
 * The writer
 * ---------------------------------------------------------------------
 */

/*
 * The writer inserts with the table AM directly, as it does into log_data
 * (one SPI INSERT per row cost it five times the instructions of the record
 * itself).  The relations are opened at the first row of a batch and
 * closed by aa_rowids_batch_end() before the commit; an aborted batch
 * leaves them to the abort.
 */
typedef struct RowsTarget
{
	Relation	rel;
	ResultRelInfo *rri;
	TupleTableSlot *slot;
} RowsTarget;

static bool rs_loaded = false;
static int64 rs_last_id = 0;
static uint8 rs_last_hash[AA_HASH_LEN];
static EState *rs_estate = NULL;
static RowsTarget rs_sets;
static RowsTarget rs_reads;

static inline void
put_be(StringInfo buf, uint64 v, int bytes)
{
	int			i;

	for (i = bytes - 1; i >= 0; i--)
		appendStringInfoChar(buf, (char) ((v >> (8 * i)) & 0xff));
}

/* a batch begins: nothing is open, the chain head is read again if needed */
void
aa_rowids_batch_begin(void)
{
	rs_loaded = false;
	rs_estate = NULL;
	memset(&rs_sets, 0, sizeof(rs_sets));
	memset(&rs_reads, 0, sizeof(rs_reads));
}

static void
target_open(RowsTarget *t, const char *name, Index rti)
{
	Oid			relid = schema_table(name);

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("access_audit.%s does not exist", name),
				errhint("ALTER EXTENSION access_audit UPDATE installs it."));
	t->rel = table_open(relid, RowExclusiveLock);
	t->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(t->rri, t->rel, rti, NULL, 0);
	ExecOpenIndices(t->rri, false);
	t->slot = MakeSingleTupleTableSlot(RelationGetDescr(t->rel), &TTSOpsVirtual);
}

static void
target_close(RowsTarget *t)
{
	if (t->rel == NULL)
		return;
	ExecDropSingleTupleTableSlot(t->slot);
	ExecCloseIndices(t->rri);
	table_close(t->rel, RowExclusiveLock);
	t->rel = NULL;
}

static void
target_insert(RowsTarget *t, Datum *v, int n)
{
	TupleTableSlot *slot = t->slot;
	List	   *r;

	ExecClearTuple(slot);
	memcpy(slot->tts_values, v, sizeof(Datum) * n);
	memset(slot->tts_isnull, false, sizeof(bool) * n);
	ExecStoreVirtualTuple(slot);
	table_tuple_insert(t->rel, slot, GetCurrentCommandId(true), 0, NULL);
	r = aa_insert_index_tuples_compat(t->rri, slot, rs_estate);
	list_free(r);
}

/* the batch's rows are in: close before the commit */
void
aa_rowids_batch_end(void)
{
	target_close(&rs_sets);
	target_close(&rs_reads);
	if (rs_estate != NULL)
		FreeExecutorState(rs_estate);
	rs_estate = NULL;
}

static void
rs_load(void)
{
	int			ret;

	ret = SPI_execute("SELECT id, hash FROM access_audit.row_sets ORDER BY id DESC LIMIT 1",
					  true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	rs_last_id = 0;
	memset(rs_last_hash, 0, AA_HASH_LEN);
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		d;

		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		rs_last_id = DatumGetInt64(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
		{
			bytea	   *b = DatumGetByteaPP(d);

			if (VARSIZE_ANY_EXHDR(b) == AA_HASH_LEN)
				memcpy(rs_last_hash, VARDATA_ANY(b), AA_HASH_LEN);
		}
	}
	rs_estate = CreateExecutorState();
	target_open(&rs_sets, "row_sets", 1);
	target_open(&rs_reads, "row_set_reads", 2);
	rs_loaded = true;
}

static bytea *
to_bytea(const void *p, Size len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	memcpy(VARDATA(b), p, len);
	return b;
}

/* Store one chunk, chained after the last row of row_sets. */
void
aa_rowids_store_chunk(const AuditRowChunk *c)
{
	StringInfoData buf;
	uint8		hash[AA_HASH_LEN];
	Datum		v[9];
	int64		id;

	if (!rs_loaded)
		rs_load();
	id = rs_last_id + 1;
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (const char *) rs_last_hash, AA_HASH_LEN);
	put_be(&buf, (uint64) id, 8);
	put_be(&buf, (uint64) c->link, 8);
	appendBinaryStringInfo(&buf, c->relation, strlen(c->relation) + 1);
	put_be(&buf, (uint64) (uint32) c->chunk, 4);
	put_be(&buf, (uint64) c->lo, 8);
	put_be(&buf, (uint64) c->hi, 8);
	put_be(&buf, (uint64) (uint32) c->n, 4);
	appendBinaryStringInfo(&buf, c->data, c->len);
	aa_sha256((const uint8 *) buf.data, buf.len, hash);
	pfree(buf.data);

	/* id, link, relation, chunk, lo, hi, n, data, hash */
	v[0] = Int64GetDatum(id);
	v[1] = Int64GetDatum(c->link);
	v[2] = CStringGetTextDatum(c->relation);
	v[3] = Int32GetDatum(c->chunk);
	v[4] = Int64GetDatum(c->lo);
	v[5] = Int64GetDatum(c->hi);
	v[6] = Int32GetDatum(c->n);
	v[7] = PointerGetDatum(to_bytea(c->data, c->len));
	v[8] = PointerGetDatum(to_bytea(hash, AA_HASH_LEN));
	target_insert(&rs_sets, v, 9);
	rs_last_id = id;
	memcpy(rs_last_hash, hash, AA_HASH_LEN);
}

/* Link read record seq (with its chain hash) to its row sets. */
void
aa_rowids_store_link(int64 seq, const uint8 *hash, const AuditRecord *rec)
{
	StringInfoData buf;
	uint8		h[AA_HASH_LEN];
	bool		incomplete = rec->row_set < 0;
	int64		link = aa_rowids_link(rec->backend_pid, rec->ts,
									  incomplete ? -rec->row_set : rec->row_set);
	Datum		v[4];

	if (!rs_loaded)
		rs_load();
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (const char *) hash, AA_HASH_LEN);
	put_be(&buf, (uint64) link, 8);
	if (incomplete)
		appendStringInfoChar(&buf, 1);
	aa_sha256((const uint8 *) buf.data, buf.len, h);
	pfree(buf.data);
	/* seq, link, hash, incomplete */
	v[0] = Int64GetDatum(seq);
	v[1] = Int64GetDatum(link);
	v[2] = PointerGetDatum(to_bytea(h, AA_HASH_LEN));
	v[3] = BoolGetDatum(incomplete);
	target_insert(&rs_reads, v, 4);
}

/*
 * A restore loaded row_sets, or (collected) a central server's
 * collected_row_sets (restore.c): the chain, of each source for the
 * collected sets, must verify, or the restore fails.
 */
void
aa_rowids_verify_restored(bool collected)
{
	int			ret;
	uint64		i;

	CommandCounterIncrement();
	SPI_connect();
	if (collected)
		ret = SPI_execute("SELECT v.ok, v.detail, s.source"
						  " FROM (SELECT DISTINCT c.source FROM access_audit.collected_row_sets c) s,"
						  " LATERAL access_audit._verify_row_sets(s.source) v"
						  " ORDER BY s.source", false, 0);
	else
		ret = SPI_execute("SELECT ok, detail, NULL::pg_catalog.text"
						  " FROM access_audit._verify_row_sets()", false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		char	   *detail = SPI_getvalue(tup, desc, 2);
		char	   *source = SPI_getvalue(tup, desc, 3);

		if (DatumGetBool(SPI_getbinval(tup, desc, 1, &isnull)))
			continue;
		if (source != NULL)
			ereport(ERROR,
					errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("the row identities collected from source \"%s\" do not verify: %s",
						   source, detail ? detail : "?"),
					errhint("Restore from an unchanged dump."));
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("the restored row identities do not verify: %s",
					   detail ? detail : "?"),
				errhint("Restore from an unchanged dump."));
	}
	SPI_finish();
}

/* ---------------------------------------------------------------------
 * SQL functions
 * ---------------------------------------------------------------------
 */

/* decode one run at *pp; false at the end */
static inline bool
next_run(const char **pp, const char *end, uint64 *next, int64 *start,
		 int64 *stop)
{
	uint64		gap;
	uint64		len;

	if (*pp >= end)
		return false;
	if (!get_varint(pp, end, &gap) || !get_varint(pp, end, &len))
		ereport(ERROR,
				errcode(ERRCODE_DATA_CORRUPTED),
				errmsg("row set data is malformed"));
	*start = (int64) (*next + gap);
	*stop = (int64) (*next + gap + len);
	*next = (uint64) *stop + 1;
	return true;
}

typedef struct KeysCtx
{
	const char *p;
	const char *end;
	uint64		next;
	int64		cur;
	int64		stop;
	bool		in_run;
} KeysCtx;

/* access_audit._row_set_keys(data, lo): the keys of a chunk */
Datum
access_audit_row_set_keys(PG_FUNCTION_ARGS)
{
	FuncCallContext *fctx;
	KeysCtx    *k;

	if (SRF_IS_FIRSTCALL())
	{
		MemoryContext old;
		bytea	   *data;

		fctx = SRF_FIRSTCALL_INIT();
		old = MemoryContextSwitchTo(fctx->multi_call_memory_ctx);
		data = PG_GETARG_BYTEA_P_COPY(0);
		k = palloc0(sizeof(KeysCtx));
		k->p = VARDATA(data);
		k->end = VARDATA(data) + VARSIZE(data) - VARHDRSZ;
		k->next = (uint64) PG_GETARG_INT64(1);
		fctx->user_fctx = k;
		MemoryContextSwitchTo(old);
	}
	fctx = SRF_PERCALL_SETUP();
	k = fctx->user_fctx;
	if (k->in_run && k->cur < k->stop)
	{
		k->cur++;
		SRF_RETURN_NEXT(fctx, Int64GetDatum(k->cur));
	}
	if (next_run(&k->p, k->end, &k->next, &k->cur, &k->stop))
	{
		k->in_run = true;
		SRF_RETURN_NEXT(fctx, Int64GetDatum(k->cur));
	}
	SRF_RETURN_DONE(fctx);
}

/* access_audit._row_set_has(data, lo, key) */
Datum
access_audit_row_set_has(PG_FUNCTION_ARGS)
{
	bytea	   *data = PG_GETARG_BYTEA_PP(0);
	uint64		next = (uint64) PG_GETARG_INT64(1);
	int64		key = PG_GETARG_INT64(2);
	const char *p = VARDATA_ANY(data);
	const char *end = p + VARSIZE_ANY_EXHDR(data);
	int64		start;
	int64		stop;

	while (next_run(&p, end, &next, &start, &stop))
	{
		if (key < start)
			PG_RETURN_BOOL(false);
		if (key <= stop)
			PG_RETURN_BOOL(true);
	}
	PG_RETURN_BOOL(false);
}

/* the secret, for the SQL functions: loaded when the cache is */
static void
secret_needed(void)
{
	track_cache_check();
	if (!have_secret)
		load_secret();
}

/* access_audit.row_key_of(tbl, key text) */
Datum
access_audit_row_key_of(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	char	   *s = text_to_cstring(PG_GETARG_TEXT_PP(1));
	RowTrack   *t = track_lookup(relid);

	if (t == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("relation \"%s\" does not keep row identities",
					   get_rel_name(relid) ? get_rel_name(relid) : "?"),
				errhint("An admin turns them on with access_audit.track_rows()."));
	switch (t->typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			PG_RETURN_INT64(DatumGetInt64(DirectFunctionCall1(int8in,
															  CStringGetDatum(s))));
		case UUIDOID:
			secret_needed();
			PG_RETURN_INT64(key_value(UUIDOID, DirectFunctionCall1(uuid_in,
																   CStringGetDatum(s))));
		default:
			secret_needed();
			PG_RETURN_INT64(keyed_hash(s, strlen(s)));
	}
}

/* access_audit.row_key_hash(text) */
Datum
access_audit_row_key_hash_text(PG_FUNCTION_ARGS)
{
	text	   *t = PG_GETARG_TEXT_PP(0);

	secret_needed();
	PG_RETURN_INT64(keyed_hash(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)));
}

/* access_audit.row_key_hash(uuid) */
Datum
access_audit_row_key_hash_uuid(PG_FUNCTION_ARGS)
{
	pg_uuid_t  *u = PG_GETARG_UUID_P(0);

	secret_needed();
	PG_RETURN_INT64(keyed_hash((const char *) u->data, UUID_LEN));
}

/*
 * The type of tbl's row identities: its tracked key column's, or, for a
 * table not tracked here (a central server that has the sources' table
 * definitions), its single-column primary key's.
 */
static Oid
key_type_of(Oid relid)
{
	RowTrack   *t = track_lookup(relid);
	Relation	rel;
	List	   *indexes;
	ListCell   *lc;
	Oid			typid = InvalidOid;

	if (t != NULL)
		return t->typid;
	rel = table_open(relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach(lc, indexes)
	{
		HeapTuple	tp = SearchSysCache1(INDEXRELID,
										 ObjectIdGetDatum(lfirst_oid(lc)));
		Form_pg_index ix;

		if (!HeapTupleIsValid(tp))
			continue;
		ix = (Form_pg_index) GETSTRUCT(tp);
		if (ix->indisprimary && ix->indnatts == 1 && ix->indkey.values[0] > 0)
			typid = get_atttype(relid, ix->indkey.values[0]);
		ReleaseSysCache(tp);
		if (OidIsValid(typid))
			break;
	}
	list_free(indexes);
	table_close(rel, AccessShareLock);
	if (!key_type_supported(typid))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("relation \"%s\" does not keep row identities",
					   get_rel_name(relid) ? get_rel_name(relid) : "?"),
				errhint("An admin turns them on with access_audit.track_rows(); on a central server, the table needs its single-column primary key of type smallint, integer, bigint, uuid, text or varchar."));
	return typid;
}

/*
 * The secret a source collected here hashes its keys with
 * (access_audit.collected_row_keys, which no role reads; read like
 * row_key).  False if none has arrived.
 */
static bool
collected_secret(const char *source, uint8 *out)
{
	Oid			relid = schema_table("collected_row_keys");
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	AttrNumber	att_source;
	AttrNumber	att_k;
	bool		found = false;

	if (!OidIsValid(relid))
		return false;
	att_source = get_attnum(relid, "source");
	att_k = get_attnum(relid, "k");
	if (att_source == InvalidAttrNumber || att_k == InvalidAttrNumber)
		return false;
	rel = table_open(relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, NULL);
	while (!found && (tup = systable_getnext(scan)) != NULL)
	{
		bool		n1,
					n2;
		Datum		src = heap_getattr(tup, att_source, RelationGetDescr(rel), &n1);
		Datum		k = heap_getattr(tup, att_k, RelationGetDescr(rel), &n2);
		bytea	   *b;

		if (n1 || n2)
			continue;
		if (strcmp(TextDatumGetCString(src), source) != 0)
			continue;
		b = DatumGetByteaPP(k);
		if (VARSIZE_ANY_EXHDR(b) == AA_ROWIDS_SECRET_LEN)
		{
			memcpy(out, VARDATA_ANY(b), AA_ROWIDS_SECRET_LEN);
			found = true;
		}
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * access_audit._row_key_value(tbl, key text, source text): the identity a
 * row of tbl is kept as here (source null) or by a source collected here,
 * whose hashed keys are under its own secret.  Null when hashed keys have
 * no secret there (then nothing of tbl was kept there either).
 */
Datum
access_audit_row_key_value(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *s;
	Oid			typid;
	uint8		key[AA_ROWIDS_SECRET_LEN];
	const char *data;
	Size		len;
	pg_uuid_t  *u;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_NULL();
	relid = PG_GETARG_OID(0);
	s = text_to_cstring(PG_GETARG_TEXT_PP(1));
	typid = key_type_of(relid);
	if (typid == INT2OID || typid == INT4OID || typid == INT8OID)
		PG_RETURN_INT64(DatumGetInt64(DirectFunctionCall1(int8in,
														  CStringGetDatum(s))));
	if (typid == UUIDOID)
	{
		u = DatumGetUUIDP(DirectFunctionCall1(uuid_in, CStringGetDatum(s)));
		data = (const char *) u->data;
		len = UUID_LEN;
	}
	else
	{
		data = s;
		len = strlen(s);
	}
	if (PG_ARGISNULL(2))
	{
		secret_needed();
		if (!have_secret)
			PG_RETURN_NULL();
		memcpy(key, secret, AA_ROWIDS_SECRET_LEN);
	}
	else if (!collected_secret(text_to_cstring(PG_GETARG_TEXT_PP(2)), key))
		PG_RETURN_NULL();
	PG_RETURN_INT64(keyed_hash_with(key, data, len));
}
