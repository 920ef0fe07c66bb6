/*-------------------------------------------------------------------------
 *
 * quota.c
 *		Export quotas: limits on the tagged rows an actor may read, enforced
 *		row by row while a statement runs.
 *
 * This file owns the quotas and break-glass exemptions an admin sets
 * (tables access_audit.quotas and access_audit.quota_exemptions, read into
 * a per-backend cache), the shared-memory counters of rows read per quota,
 * subject and window (hour or day), and the decision taken when a read
 * crosses a limit: warn, require a reason (access_audit.reason) or block.
 *
 * How a read is counted: capture.c calls aa_quota_start() at ExecutorStart
 * of every audited statement.  If a quota applies to the session, the
 * ExecProcNodeReal of each scan of a tagged relation is wrapped by
 * quota_exec(), which counts each row the scan returns and, only when the
 * rows counted pass the statement's budget, calls quota_settle().  The
 * budget is what the statement may read without asking shared memory: the
 * rows it has reserved in the counters (a 64th of what is left, at most
 * AA_QUOTA_CHUNK, at least one),
 * or what is left of a per-statement limit.  So a row costs an increment
 * and a compare; shared memory is touched once per chunk.  Reads to which
 * no quota applies are never wrapped.  A parallel plan under a quota runs
 * in the leader alone, so that its rows pass the wrapper too; rows that
 * only the scans' instrumentation shows are charged after each
 * ExecutorRun all the same.
 *
 * Hits become alerts in the writer (aa_quota_alert_note and
 * aa_quota_raise_alerts, called from writer.c), and the counters are saved
 * to pg_access_audit/quota_counters by the launcher and at shutdown, and
 * restored at start (aa_quota_save_counters, quota_restore).
 *
 * Relation-form COPY TO of a tagged table runs no executor, so for a
 * session under a quota the utility hook turns it into the equivalent
 * COPY (SELECT ... FROM ONLY t) TO, which the executor path counts.
 *
 * Locking: QuotaShared.lock (one LWLock of tranche "access_audit quota")
 * protects the counter hash table: LW_EXCLUSIVE to add or evict entries,
 * LW_SHARED to find them; a counter's used value is changed with atomic
 * operations under the shared lock, so backends reading under quota never
 * wait for each other.  QuotaShared.generation is atomic; it is
 * bumped at commit of every change to quotas, exemptions or peer groups and
 * tells backends to reload their cache.  Reserved rows are part of a
 * counter's used value until the statement gives back what it did not read
 * (reset callback of the statement's memory context, which only takes the
 * LWLock and never throws); a backend that dies keeps its reservation
 * counted, which errs toward the limit.  Everything else is backend-local.
 *
 * IDENTIFICATION
 *	  extension/quota.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/copy.h"
#include "commands/dbcommands.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parsetree.h"
#include "pgtime.h"
#include "port/pg_crc32c.h"
#include "postmaster/bgworker.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "compat.h"
#include "quota.h"
#include "records.h"
#include "tags.h"

PG_FUNCTION_INFO_V1(access_audit_quota_event);
PG_FUNCTION_INFO_V1(access_audit_quota_counters);
PG_FUNCTION_INFO_V1(access_audit_quota_counters_saved);

/* counters in shared memory: (database, quota, subject, window) */
#define AA_QUOTA_MAX_COUNTERS	8192
/* most quotas and exemptions a backend loads per database */
#define AA_QUOTA_MAX_DEFS		1024
/*
 * Most rows a statement reserves per trip to shared memory; it reserves at
 * most a 64th of what is left, so that an open cursor holds back from other
 * sessions of the same actor at most that much.
 */
#define AA_QUOTA_CHUNK			65536
/* bytes of a subject kept in a counter key (longer names are cut) */
#define AA_QUOTA_SUBJECT_LEN	64

#define AA_QUOTA_TRANCHE		"access_audit quota"

typedef enum QuotaKind
{
	AA_QUOTA_ACTOR,
	AA_QUOTA_ROLE,
	AA_QUOTA_GROUP
} QuotaKind;

typedef enum QuotaPer
{
	AA_QUOTA_STATEMENT,
	AA_QUOTA_HOUR,
	AA_QUOTA_DAY
} QuotaPer;

typedef enum QuotaAction
{
	AA_QUOTA_WARN,
	AA_QUOTA_REASON,
	AA_QUOTA_BLOCK
} QuotaAction;

typedef struct QuotaCounterKey
{
	Oid			dbid;
	int32		quota_id;
	TimestampTz window_start;
	char		subject[AA_QUOTA_SUBJECT_LEN];
} QuotaCounterKey;

typedef struct QuotaCounter
{
	QuotaCounterKey key;
	TimestampTz window_end;
	pg_atomic_uint64 used;		/* rows read, plus rows reserved */
} QuotaCounter;

typedef struct QuotaShared
{
	LWLock	   *lock;
	pg_atomic_uint64 generation;
	pg_atomic_uint64 changes;	/* bumped by every change of a counter */
	pg_atomic_uint64 saved;		/* changes as of the last save to the file */
	TimestampTz last_save;		/* only the saving process uses it */
} QuotaShared;

/*
 * The counters' file: written by the launcher every second while counters
 * change and by the postmaster at a clean shutdown, read at start (also
 * after a crash).  Header, then count entries, then a CRC-32C of both.
 */
#define AA_QUOTA_FILE			"pg_access_audit/quota_counters"
#define AA_QUOTA_FILE_TMP		"pg_access_audit/quota_counters.tmp"
#define AA_QUOTA_FILE_MAGIC		0x41415143	/* "AAQC" */
#define AA_QUOTA_FILE_VERSION	1
/* at most this often while counters change (ms) */
#define AA_QUOTA_SAVE_INTERVAL	1000

typedef struct QuotaFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		entry_size;
	uint32		count;
} QuotaFileHeader;

typedef struct QuotaFileEntry
{
	QuotaCounterKey key;
	TimestampTz window_end;
	uint64		used;
} QuotaFileEntry;

/* one quota, as loaded from access_audit.quotas */
typedef struct QuotaDef
{
	int32		id;
	QuotaKind	kind;
	char	   *subject;
	Oid			roleid;			/* AA_QUOTA_ROLE */
	Oid			relid;			/* InvalidOid: every tagged relation */
	QuotaPer	per;
	int64		max_rows;
	QuotaAction action;
	bool		shared;			/* one counter for every matching actor */
} QuotaDef;

/* one live exemption */
typedef struct QuotaExempt
{
	QuotaKind	kind;
	char	   *subject;
	Oid			roleid;
	int32		quota_id;		/* 0: every quota */
	int32		id;
	TimestampTz expires;
} QuotaExempt;

/* a quota applied to one statement */
typedef struct QuotaApplied
{
	QuotaDef	def;
	char		subject[AA_QUOTA_SUBJECT_LEN];	/* counter key */
	TimestampTz window_start;
	TimestampTz window_end;
	bool	   *covers;			/* per relation of the statement */
	int64		stmt_used;		/* rows this statement read against it */
	int64		stmt_base;		/* read before it in its client statement */
	int			stmt_acc;		/* its entry in stmt_acc[], or -1 */
	int64		reserved;		/* rows reserved and not yet read */
	int64		unreported;		/* rows read after it was settled */
	bool		done;			/* warned or justified: no more checks */
	bool		warned;			/* done, and the read went on */
	int64		hit_at;			/* crossed at this count, not yet acted on */
} QuotaApplied;

struct QuotaStmt;

typedef struct QuotaScan
{
	PlanState  *node;
	ExecProcNodeMtd real;
	Instrumentation *instr;
	int64		counted;
	int			relidx;
	struct QuotaStmt *st;
} QuotaScan;

typedef struct QuotaStmt
{
	struct QuotaStmt *next;
	MemoryContextCallback cb;
	MemoryContext cxt;
	AuditRecord *rec;
	int			napplied;
	QuotaApplied *applied;
	int			nscans;
	QuotaScan  *scans;
	int			nrels;
	Oid		   *rels;
	int64	   *pending_rel;
	int64		pending;
	int64		budget;
	bool		at_run_end;		/* settling workers' rows after a run */
	bool		refused;		/* a quota stopped the statement */
	TimestampTz client_ts;		/* its client statement (see stmt_acc) */
	LocalTransactionId client_lxid;
} QuotaStmt;

/*
 * Per-statement quotas count every executor that one client statement
 * runs: a function called for each row, a DO block's loop, a trigger.
 * Each would otherwise be a "statement" of its own, and a quota of 5 rows
 * per statement let SELECT f(id) FROM generate_series(1, 1000000) id read
 * a million.  The client statement is known by its start time and
 * transaction; stmt_acc holds, per quota, the rows its executors that
 * ended have read, and whether a warning was given.
 */
typedef struct QuotaStmtAcc
{
	int32		quota_id;
	bool		done;
	int64		used;
} QuotaStmtAcc;

static TimestampTz stmt_acc_ts = 0;
static LocalTransactionId stmt_acc_lxid = InvalidLocalTransactionId;
static int	stmt_acc_n = 0;
static QuotaStmtAcc stmt_acc[AA_QUOTA_MAX_DEFS];

static QuotaShared *quota_shared = NULL;
static HTAB *quota_counters = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ProcessUtility_hook_type prev_ProcessUtility = NULL;

/* backend cache of this database's quotas (in quota_cxt) */
static MemoryContext quota_cxt = NULL;
static uint64 loaded_generation = 0;
static QuotaDef *defs = NULL;
static int	ndefs = 0;
static QuotaExempt *exempts = NULL;
static int	nexempts = 0;
static bool need_groups = false;
static bool loading = false;
static bool bump_at_commit = false;

/* peer group of one actor, cached with the generation */
static char *group_actor = NULL;
static char *group_name = NULL;
static uint64 group_generation = 0;

/* statements being counted, innermost first */
static QuotaStmt *active = NULL;

static void quota_shmem_request(void);
static void quota_shmem_startup(void);
static void quota_xact_callback(XactEvent event, void *arg);
static void aa_quota_ProcessUtility(PlannedStmt *pstmt,
									const char *queryString,
									bool readOnlyTree,
									ProcessUtilityContext context,
									ParamListInfo params,
									QueryEnvironment *queryEnv,
									DestReceiver *dest, QueryCompletion *qc);
static void quota_settle(QuotaStmt *st, bool enforce);
static void quota_restore(void);
static void quota_shmem_exit(int code, Datum arg);

/*
 * Install the shared-memory hooks, the utility hook and the commit
 * callback.  Called from _PG_init after aa_capture_init(), so that the
 * utility hook runs before capture's and capture sees a rewritten COPY.
 */
void
aa_quota_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = quota_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = quota_shmem_startup;
	prev_ProcessUtility = ProcessUtility_hook;
	ProcessUtility_hook = aa_quota_ProcessUtility;
	RegisterXactCallback(quota_xact_callback, NULL);
}

/*
 * shmem_request hook: the control struct, the counter table and one lock.
 */
static void
quota_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(QuotaShared)) +
						   hash_estimate_size(AA_QUOTA_MAX_COUNTERS,
											  sizeof(QuotaCounter)));
	RequestNamedLWLockTranche(AA_QUOTA_TRANCHE, 1);
}

/*
 * shmem_startup hook: create or attach the control struct and the
 * counters.  After a crash-restart the counters start empty.
 */
static void
quota_shmem_startup(void)
{
	bool		found;
	HASHCTL		info;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	quota_shared = ShmemInitStruct("access_audit quota", sizeof(QuotaShared),
								   &found);
	if (!found)
	{
		quota_shared->lock = &(GetNamedLWLockTranche(AA_QUOTA_TRANCHE))->lock;
		pg_atomic_init_u64(&quota_shared->generation, 1);
		pg_atomic_init_u64(&quota_shared->changes, 0);
		pg_atomic_init_u64(&quota_shared->saved, 0);
		quota_shared->last_save = 0;
	}
	memset(&info, 0, sizeof(info));
	info.keysize = sizeof(QuotaCounterKey);
	info.entrysize = sizeof(QuotaCounter);
	quota_counters = ShmemInitHash("access_audit quota counters",
								   AA_QUOTA_MAX_COUNTERS, AA_QUOTA_MAX_COUNTERS,
								   &info, HASH_ELEM | HASH_BLOBS);
	if (!found)
		quota_restore();
	LWLockRelease(AddinShmemInitLock);

	/* the postmaster saves the counters at a clean shutdown */
	if (!IsUnderPostmaster)
		on_shmem_exit(quota_shmem_exit, (Datum) 0);
}

/*
 * Read the counters' file into the (new, empty) table: the counters of
 * windows that have not ended come back as they were last saved.  Runs in
 * the postmaster at start and after a crash, so it reports problems at
 * LOG and goes on with what it could read (a bad or missing file: empty
 * counters).
 */
static void
quota_restore(void)
{
	FILE	   *f;
	QuotaFileHeader h;
	QuotaFileEntry e;
	pg_crc32c	crc;
	pg_crc32c	stored;
	QuotaFileEntry *entries;
	TimestampTz now = GetCurrentTimestamp();
	uint32		i;
	int			restored = 0;

	f = AllocateFile(AA_QUOTA_FILE, PG_BINARY_R);
	if (f == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					errcode_for_file_access(),
					errmsg("could not read access_audit quota counters file \"%s\": %m",
						   AA_QUOTA_FILE));
		return;
	}
	if (fread(&h, sizeof(h), 1, f) != 1 || h.magic != AA_QUOTA_FILE_MAGIC ||
		h.version != AA_QUOTA_FILE_VERSION ||
		h.entry_size != sizeof(QuotaFileEntry) ||
		h.count > AA_QUOTA_MAX_COUNTERS)
	{
		FreeFile(f);
		ereport(LOG,
				errmsg("ignoring access_audit quota counters file \"%s\": not of this version or damaged",
					   AA_QUOTA_FILE));
		return;
	}
	entries = palloc(sizeof(QuotaFileEntry) * Max(h.count, 1));
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &h, sizeof(h));
	for (i = 0; i < h.count; i++)
	{
		if (fread(&e, sizeof(e), 1, f) != 1)
			break;
		COMP_CRC32C(crc, &e, sizeof(e));
		entries[i] = e;
	}
	FIN_CRC32C(crc);
	if (i < h.count || fread(&stored, sizeof(stored), 1, f) != 1 ||
		!EQ_CRC32C(crc, stored))
	{
		FreeFile(f);
		pfree(entries);
		ereport(LOG,
				errmsg("ignoring access_audit quota counters file \"%s\": damaged",
					   AA_QUOTA_FILE));
		return;
	}
	FreeFile(f);
	for (i = 0; i < h.count; i++)
	{
		QuotaCounter *c;
		bool		found;

		if (entries[i].window_end <= now)
			continue;
		c = hash_search(quota_counters, &entries[i].key, HASH_ENTER, &found);
		c->window_end = entries[i].window_end;
		pg_atomic_init_u64(&c->used, entries[i].used);
		restored++;
	}
	pfree(entries);
	if (restored > 0)
		ereport(LOG,
				errmsg("access_audit restored %d quota counters", restored));
}

/*
 * Write the counters of windows that have not ended to the file (a
 * temporary file, then a durable rename).  Problems are reported at LOG:
 * saving must never stop the process that does it.  The postmaster, at
 * shutdown, reads the table without the lock: every other process has
 * exited, and it has no PGPROC to wait with.
 */
static void
quota_write_file(void)
{
	bool		lock = IsUnderPostmaster;

	HASH_SEQ_STATUS seq;
	QuotaCounter *c;
	QuotaFileEntry *entries;
	QuotaFileHeader h;
	pg_crc32c	crc;
	FILE	   *f;
	uint32		n = 0;
	uint32		i;
	TimestampTz now = GetCurrentTimestamp();

	entries = palloc0(sizeof(QuotaFileEntry) * AA_QUOTA_MAX_COUNTERS);
	if (lock)
		LWLockAcquire(quota_shared->lock, LW_SHARED);
	hash_seq_init(&seq, quota_counters);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		if (c->window_end <= now || n >= AA_QUOTA_MAX_COUNTERS)
			continue;
		entries[n].key = c->key;
		entries[n].window_end = c->window_end;
		entries[n].used = pg_atomic_read_u64(&c->used);
		n++;
	}
	if (lock)
		LWLockRelease(quota_shared->lock);

	memset(&h, 0, sizeof(h));
	h.magic = AA_QUOTA_FILE_MAGIC;
	h.version = AA_QUOTA_FILE_VERSION;
	h.entry_size = sizeof(QuotaFileEntry);
	h.count = n;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, &h, sizeof(h));
	for (i = 0; i < n; i++)
		COMP_CRC32C(crc, &entries[i], sizeof(QuotaFileEntry));
	FIN_CRC32C(crc);

	(void) MakePGDirectory("pg_access_audit");
	f = AllocateFile(AA_QUOTA_FILE_TMP, PG_BINARY_W);
	if (f == NULL ||
		fwrite(&h, sizeof(h), 1, f) != 1 ||
		(n > 0 && fwrite(entries, sizeof(QuotaFileEntry), n, f) != n) ||
		fwrite(&crc, sizeof(crc), 1, f) != 1 ||
		FreeFile(f) != 0)
	{
		int			save_errno = errno;

		if (f != NULL)
			(void) FreeFile(f);
		errno = save_errno;
		ereport(LOG,
				errcode_for_file_access(),
				errmsg("could not write access_audit quota counters file \"%s\": %m",
					   AA_QUOTA_FILE_TMP));
		(void) unlink(AA_QUOTA_FILE_TMP);
		pfree(entries);
		return;
	}
	pfree(entries);
	(void) durable_rename(AA_QUOTA_FILE_TMP, AA_QUOTA_FILE, LOG);
}

/*
 * The launcher, on each turn of its loop: save the counters if they
 * changed since the last save, at most once a second.  A crash loses at
 * most the rows charged since then; rows reserved by statements running at
 * the save count as read (toward the limit).
 */
void
aa_quota_save_counters(void)
{
	uint64		changes;
	TimestampTz now;

	if (quota_shared == NULL)
		return;
	changes = pg_atomic_read_u64(&quota_shared->changes);
	if (changes == pg_atomic_read_u64(&quota_shared->saved))
		return;
	now = GetCurrentTimestamp();
	if (!TimestampDifferenceExceeds(quota_shared->last_save, now,
									AA_QUOTA_SAVE_INTERVAL))
		return;
	quota_shared->last_save = now;
	quota_write_file();
	pg_atomic_write_u64(&quota_shared->saved, changes);
}

/*
 * on_shmem_exit of the postmaster: at a clean shutdown (every other
 * process has exited) save the counters as they are.  Not after a crash:
 * shared memory may be damaged, and the last periodic save stands.
 */
static void
quota_shmem_exit(int code, Datum arg)
{
	if (code != 0 || quota_shared == NULL)
		return;
	quota_write_file();
}

/*
 * At commit of a change to quotas, exemptions or peer groups, tell every
 * backend to reload (bumping earlier would let a backend cache the old
 * rows under the new generation).
 */
static void
quota_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
	{
		if (bump_at_commit && quota_shared != NULL)
			pg_atomic_fetch_add_u64(&quota_shared->generation, 1);
		bump_at_commit = false;
	}
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		bump_at_commit = false;
}

/*
 * Is this one of the extension's own processes (writer, launcher,
 * shipper, check jobs)?  Quotas never apply to them.
 */
static bool
quota_own_process(void)
{
	return MyBgworkerEntry != NULL &&
		strcmp(MyBgworkerEntry->bgw_library_name, AA_NAME) == 0;
}

/* parse helpers for the text columns; the tables' CHECKs keep them valid */
static QuotaKind
parse_kind(const char *s)
{
	if (strcmp(s, "role") == 0)
		return AA_QUOTA_ROLE;
	if (strcmp(s, "group") == 0)
		return AA_QUOTA_GROUP;
	return AA_QUOTA_ACTOR;
}

static const char *
kind_name(QuotaKind k)
{
	return k == AA_QUOTA_ROLE ? "role" : k == AA_QUOTA_GROUP ? "group" : "actor";
}

static const char *
per_name(QuotaPer p)
{
	return p == AA_QUOTA_STATEMENT ? "statement" : p == AA_QUOTA_HOUR ? "hour" : "day";
}

static const char *
action_name(QuotaAction a)
{
	return a == AA_QUOTA_WARN ? "warn" : a == AA_QUOTA_REASON ? "require_reason" : "block";
}

/*
 * Text of column col of the current SPI row, copied into cxt; NULL if
 * null.
 */
static char *
spi_text(int col, MemoryContext cxt)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);

	return v ? MemoryContextStrdup(cxt, v) : NULL;
}

/*
 * Load this database's quotas and live exemptions into the backend cache,
 * if the generation moved since the last load.  Runs two small queries
 * with SPI, as the bootstrap superuser (readers have no privileges on the
 * tables), with quota checks off meanwhile (loading).
 */
static void
quota_load(void)
{
	uint64		gen = pg_atomic_read_u64(&quota_shared->generation);
	MemoryContext old;
	uint64		i;
	int			ret;
	Oid			save_userid;
	int			save_sec;
	Oid			nsp;

	if (gen == loaded_generation && quota_cxt != NULL)
		return;
	if (quota_cxt == NULL)
		quota_cxt = AllocSetContextCreate(TopMemoryContext, "access_audit quotas",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(quota_cxt);
	defs = NULL;
	exempts = NULL;
	ndefs = nexempts = 0;
	need_groups = false;
	loaded_generation = 0;

	/*
	 * An installation still at version 1.0 (library updated, ALTER EXTENSION
	 * UPDATE not yet run) has no quota tables: no quotas, and reads go on.
	 */
	nsp = get_namespace_oid(AA_SCHEMA, true);
	if (!OidIsValid(nsp) ||
		!OidIsValid(get_relname_relid("quotas", nsp)) ||
		!OidIsValid(get_relname_relid("quota_exemptions", nsp)))
	{
		loaded_generation = gen;
		return;
	}

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	loading = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		ret = SPI_execute("SELECT q.quota_id, q.subject_kind, q.subject, "
						  "coalesce(q.relation::pg_catalog.oid, 0), q.per, "
						  "q.max_rows, q.action, q.shared "
						  "FROM access_audit.quotas q ORDER BY q.quota_id",
						  true, AA_QUOTA_MAX_DEFS);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read access_audit.quotas: %d", ret);
		old = MemoryContextSwitchTo(quota_cxt);
		defs = palloc0(sizeof(QuotaDef) * Max(SPI_processed, 1));
		MemoryContextSwitchTo(old);
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			QuotaDef   *d = &defs[ndefs];
			char	   *s;
			bool		isnull;

			d->id = DatumGetInt32(SPI_getbinval(tup, td, 1, &isnull));
			d->kind = parse_kind(SPI_getvalue(tup, td, 2));
			d->subject = MemoryContextStrdup(quota_cxt, SPI_getvalue(tup, td, 3));
			d->relid = DatumGetObjectId(SPI_getbinval(tup, td, 4, &isnull));
			s = SPI_getvalue(tup, td, 5);
			d->per = strcmp(s, "statement") == 0 ? AA_QUOTA_STATEMENT :
				strcmp(s, "hour") == 0 ? AA_QUOTA_HOUR : AA_QUOTA_DAY;
			d->max_rows = DatumGetInt64(SPI_getbinval(tup, td, 6, &isnull));
			s = SPI_getvalue(tup, td, 7);
			d->action = strcmp(s, "warn") == 0 ? AA_QUOTA_WARN :
				strcmp(s, "require_reason") == 0 ? AA_QUOTA_REASON : AA_QUOTA_BLOCK;
			d->shared = DatumGetBool(SPI_getbinval(tup, td, 8, &isnull));
			if (d->kind == AA_QUOTA_ROLE)
				d->roleid = get_role_oid(d->subject, true);
			if (d->kind == AA_QUOTA_GROUP)
				need_groups = true;
			ndefs++;
		}
		ret = SPI_execute("SELECT e.subject_kind, e.subject, "
						  "coalesce(e.quota_id, 0), e.expires_at, e.exemption_id "
						  "FROM access_audit.quota_exemptions e "
						  "WHERE e.expires_at OPERATOR(pg_catalog.>) pg_catalog.now()",
						  true, AA_QUOTA_MAX_DEFS);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read access_audit.quota_exemptions: %d", ret);
		old = MemoryContextSwitchTo(quota_cxt);
		exempts = palloc0(sizeof(QuotaExempt) * Max(SPI_processed, 1));
		MemoryContextSwitchTo(old);
		for (i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	td = SPI_tuptable->tupdesc;
			QuotaExempt *e = &exempts[nexempts];
			bool		isnull;

			e->kind = parse_kind(SPI_getvalue(tup, td, 1));
			e->subject = MemoryContextStrdup(quota_cxt, SPI_getvalue(tup, td, 2));
			e->quota_id = DatumGetInt32(SPI_getbinval(tup, td, 3, &isnull));
			e->expires = DatumGetTimestampTz(SPI_getbinval(tup, td, 4, &isnull));
			e->id = DatumGetInt32(SPI_getbinval(tup, td, 5, &isnull));
			if (e->kind == AA_QUOTA_ROLE)
				e->roleid = get_role_oid(e->subject, true);
			if (e->kind == AA_QUOTA_GROUP)
				need_groups = true;
			nexempts++;
		}
		SPI_finish();
	}
	PG_FINALLY();
	{
		loading = false;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	loaded_generation = gen;
}

/*
 * Peer group of actor (access_audit.actor_groups, 'default' if unmapped),
 * cached until the actor or the generation changes.
 */
static const char *
quota_group_of(const char *actor)
{
	uint64		gen = loaded_generation;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int			ret;
	Oid			save_userid;
	int			save_sec;

	if (group_name != NULL && group_generation == gen &&
		strcmp(group_actor, actor) == 0)
		return group_name;
	if (group_actor)
		pfree(group_actor);
	if (group_name)
		pfree(group_name);
	group_actor = group_name = NULL;

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID,
						   save_sec | SECURITY_LOCAL_USERID_CHANGE);
	loading = true;
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		args[0] = CStringGetTextDatum(actor);
		ret = SPI_execute_with_args("SELECT g.peer_group FROM access_audit.actor_groups g "
									"WHERE g.actor OPERATOR(pg_catalog.=) $1",
									1, argtypes, args, NULL, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read access_audit.actor_groups: %d", ret);
		group_name = SPI_processed > 0 ? spi_text(1, TopMemoryContext) : NULL;
		if (group_name == NULL)
			group_name = MemoryContextStrdup(TopMemoryContext, "default");
		SPI_finish();
	}
	PG_FINALLY();
	{
		loading = false;
		SetUserIdAndSecContext(save_userid, save_sec);
	}
	PG_END_TRY();
	group_actor = MemoryContextStrdup(TopMemoryContext, actor);
	group_generation = gen;
	return group_name;
}

/*
 * Does a quota or exemption subject match the reading actor?  Roles are
 * matched on the session user (SET ROLE changes nothing), groups on the
 * actor's peer group.
 */
static bool
quota_subject_matches(QuotaKind kind, const char *subject, Oid roleid,
					  const char *actor)
{
	switch (kind)
	{
		case AA_QUOTA_ACTOR:
			return strcmp(subject, actor) == 0;
		case AA_QUOTA_ROLE:
			return OidIsValid(roleid) &&
				is_member_of_role_nosuper(GetSessionUserId(), roleid);
		case AA_QUOTA_GROUP:
			return strcmp(quota_group_of(actor), subject) == 0;
	}
	return false;
}

/*
 * Start of the window of per containing now: the hour, or the day in
 * access_audit.business_timezone.  *end gets the window's end.
 */
static TimestampTz
quota_window(QuotaPer per, TimestampTz now, TimestampTz *end)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int			tz;
	pg_tz	   *zone;
	TimestampTz start;
	static TimestampTz day_start = 0;
	static TimestampTz day_end = 0;
	static char day_zone[TZ_STRLEN_MAX + 1] = "";
	const char *zone_name = aa_business_timezone ? aa_business_timezone : "UTC";

	if (per == AA_QUOTA_HOUR)
	{
		start = now - (now % USECS_PER_HOUR);
		if (now < 0 && now % USECS_PER_HOUR != 0)
			start -= USECS_PER_HOUR;
		*end = start + USECS_PER_HOUR;
		return start;
	}
	/* the day is computed once per day (and zone), not per statement */
	if (now >= day_start && now < day_end && strcmp(day_zone, zone_name) == 0)
	{
		*end = day_end;
		return day_start;
	}
	zone = pg_tzset(zone_name);
	if (zone == NULL ||
		timestamp2tm(now, &tz, &tm, &fsec, NULL, zone) != 0)
		ereport(ERROR,
				errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				errmsg("could not compute the quota day of the current time"));
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tz = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, 0, &tz, &start) != 0)
		elog(ERROR, "timestamp out of range");
	/* the next midnight, through the calendar (days may be 23 or 25 hours) */
	tm.tm_mday++;
	{
		int			jd = date2j(tm.tm_year, tm.tm_mon, tm.tm_mday);

		j2date(jd, &tm.tm_year, &tm.tm_mon, &tm.tm_mday);
	}
	tz = DetermineTimeZoneOffset(&tm, zone);
	if (tm2timestamp(&tm, 0, &tz, end) != 0)
		elog(ERROR, "timestamp out of range");
	day_start = start;
	day_end = *end;
	strlcpy(day_zone, zone_name, sizeof(day_zone));
	return start;
}

/*
 * Note the session's justification (access_audit.reason) in the detail of
 * an audit record.  Strings go into cxt.
 */
void
aa_quota_annotate(AuditRecord *rec, MemoryContext cxt)
{
	if (aa_reason == NULL || aa_reason[0] == '\0')
		return;
	if (rec->detail == NULL)
		rec->detail = MemoryContextStrdup(cxt, psprintf("reason: %s", aa_reason));
	else
		rec->detail = MemoryContextStrdup(cxt, psprintf("%s; reason: %s",
														rec->detail, aa_reason));
}

/*
 * The QuotaScan of a wrapped node.  The last one found is remembered:
 * most statements have one counted scan, so the search runs once.
 * quota_stmt_end() forgets it with its statement.
 */
static PlanState *last_node = NULL;
static QuotaScan *last_scan = NULL;

static inline QuotaScan *
quota_scan_of(PlanState *node)
{
	QuotaStmt  *st;
	int			i;

	if (node == last_node)
		return last_scan;
	for (st = active; st != NULL; st = st->next)
		for (i = 0; i < st->nscans; i++)
			if (st->scans[i].node == node)
			{
				last_node = node;
				last_scan = &st->scans[i];
				return last_scan;
			}
	elog(ERROR, "access_audit quota: scan node not found");
	return NULL;				/* keep compiler quiet */
}

/*
 * ExecProcNodeReal of a counted scan: one increment and one compare per
 * row; quota_settle() only when the statement's budget is used up.
 */
static TupleTableSlot *
quota_exec(PlanState *node)
{
	QuotaScan  *qs = quota_scan_of(node);
	TupleTableSlot *slot = qs->real(node);

	if (!TupIsNull(slot))
	{
		QuotaStmt  *st = qs->st;

		qs->counted++;
		st->pending_rel[qs->relidx]++;
		if (++st->pending > st->budget)
			quota_settle(st, true);
	}
	return slot;
}

/*
 * Find or make the counter of an applied quota and return it with the
 * lock held (shared if it existed, else exclusive); the caller changes
 * used atomically and releases the lock.  When the table is full,
 * counters of past windows go first; if it is still full the read is
 * refused (never left uncounted).
 */
static QuotaCounter *
quota_counter(QuotaApplied *a)
{
	QuotaCounterKey key;
	QuotaCounter *c;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.quota_id = a->def.id;
	key.window_start = a->window_start;
	strlcpy(key.subject, a->subject, sizeof(key.subject));
	LWLockAcquire(quota_shared->lock, LW_SHARED);
	c = hash_search(quota_counters, &key, HASH_FIND, NULL);
	if (c != NULL)
		return c;
	LWLockRelease(quota_shared->lock);

	LWLockAcquire(quota_shared->lock, LW_EXCLUSIVE);
	c = hash_search(quota_counters, &key, HASH_FIND, NULL);
	if (c != NULL)
		return c;
	if (hash_get_num_entries(quota_counters) >= AA_QUOTA_MAX_COUNTERS)
	{
		HASH_SEQ_STATUS seq;
		QuotaCounter *old;
		TimestampTz now = GetCurrentTimestamp();

		hash_seq_init(&seq, quota_counters);
		while ((old = hash_seq_search(&seq)) != NULL)
		{
			if (old->window_end <= now)
				hash_search(quota_counters, &old->key, HASH_REMOVE, NULL);
		}
		if (hash_get_num_entries(quota_counters) >= AA_QUOTA_MAX_COUNTERS)
		{
			LWLockRelease(quota_shared->lock);
			ereport(ERROR,
					errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					errmsg("too many access_audit quota counters in use"),
					errdetail("Every one of the %d counters belongs to a current window.",
							  AA_QUOTA_MAX_COUNTERS),
					errhint("Use fewer per-actor quotas, or shared quotas of groups or roles."));
		}
	}
	c = hash_search(quota_counters, &key, HASH_ENTER, &found);
	if (!found)
	{
		c->window_end = a->window_end;
		pg_atomic_init_u64(&c->used, 0);
	}
	return c;
}

/*
 * Take up to n rows off a counter without going below zero.
 */
static void
quota_counter_sub(QuotaCounter *c, uint64 n)
{
	uint64		old = pg_atomic_read_u64(&c->used);

	while (!pg_atomic_compare_exchange_u64(&c->used, &old,
										   old > n ? old - n : 0))
		;
}

/*
 * Description of a quota for messages and records.
 */
static char *
quota_describe(QuotaApplied *a)
{
	return psprintf("quota %d (%s " INT64_FORMAT " tagged rows per %s%s%s, %s %s \"%s\")",
					a->def.id, action_name(a->def.action), a->def.max_rows,
					per_name(a->def.per),
					OidIsValid(a->def.relid) ? " of " : "",
					OidIsValid(a->def.relid) ? get_rel_name(a->def.relid) : "",
					a->def.shared ? "shared by" : "for",
					kind_name(a->def.kind), a->def.subject);
}

/*
 * A timestamp as ISO 8601 in UTC, for the JSON of a hit record.
 */
static char *
quota_iso(TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		return pstrdup("");
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

/*
 * Bytes the escaped strings of a hit's detail may take (quotes included).
 * The queue replaces a detail longer than AA_MAX_DETAIL_LEN (2048, queue.c)
 * by {"truncated_detail": ...}, which has none of the facts the writer's
 * alert needs: a reader's 1024-byte reason, or a long actor, relation or
 * subject, escaped up to six times longer, must not push it there.  These
 * four plus the fixed part (keys, numbers, two timestamps: under 320
 * bytes) stay below 2048.
 */
#define QUOTA_HIT_MESSAGE_MAX	600
#define QUOTA_HIT_SUBJECT_MAX	200
#define QUOTA_HIT_RELATION_MAX	400
#define QUOTA_HIT_REASON_MAX	400

/*
 * Append s to buf as a JSON string of at most max bytes: s itself if its
 * escaped form fits, otherwise its head (on a character boundary)
 * followed by "...".
 */
static void
quota_json_bounded(StringInfo buf, const char *s, int max)
{
	int			len = strlen(s);
	int			cut = 0;
	int			size = 2;		/* the quotes */
	char	   *head;

	while (cut < len)
	{
		unsigned char c = (unsigned char) s[cut];
		int			w = pg_mblen(s + cut);
		int			esc;

		if (c == '"' || c == '\\')
			esc = 2;
		else if (c < 0x20)
			esc = 6;			/* at most: \u00XX */
		else
			esc = w;
		if (cut + w > len || size + esc > max - 3)
			break;
		size += esc;
		cut += w;
	}
	if (cut >= len)
	{
		escape_json(buf, s);
		return;
	}
	head = psprintf("%.*s...", cut, s);
	escape_json(buf, head);
	pfree(head);
}

/*
 * The detail of a hit record: one JSON object with the sentence a person
 * reads ("message") and the facts the writer turns into an alert (see
 * aa_quota_raise_alerts): the quota, the rows read against it, and the
 * window the alert is for (the quota's hour or day; for a per-statement
 * quota, the business day of the statement).  Its strings are bounded
 * (see QUOTA_HIT_MESSAGE_MAX), so that the detail is always whole.
 */
static char *
quota_hit_detail(QuotaStmt *st, QuotaApplied *a, int64 used,
				 const char *message, const char *rel, const char *reason)
{
	StringInfoData d;
	TimestampTz ws = a->window_start;
	TimestampTz we = a->window_end;

	if (a->def.per == AA_QUOTA_STATEMENT)
		ws = quota_window(AA_QUOTA_DAY, st->rec->ts, &we);
	initStringInfo(&d);
	appendStringInfoString(&d, "{\"message\": ");
	quota_json_bounded(&d, message, QUOTA_HIT_MESSAGE_MAX);
	appendStringInfo(&d, ", \"quota_id\": %d, \"action\": \"%s\", \"per\": \"%s\", "
					 "\"max_rows\": " INT64_FORMAT ", \"rows_read\": " INT64_FORMAT
					 ", \"subject_kind\": \"%s\", \"subject\": ",
					 a->def.id, action_name(a->def.action), per_name(a->def.per),
					 a->def.max_rows, used, kind_name(a->def.kind));
	quota_json_bounded(&d, a->def.subject, QUOTA_HIT_SUBJECT_MAX);
	appendStringInfo(&d, ", \"shared\": %s, \"relation\": ",
					 a->def.shared ? "true" : "false");
	if (rel)
		quota_json_bounded(&d, rel, QUOTA_HIT_RELATION_MAX);
	else
		appendStringInfoString(&d, "null");
	appendStringInfo(&d, ", \"window_start\": \"%s\", \"window_end\": \"%s\", \"reason\": ",
					 quota_iso(ws), quota_iso(we));
	if (reason)
		quota_json_bounded(&d, reason, QUOTA_HIT_REASON_MAX);
	else
		appendStringInfoString(&d, "null");
	appendStringInfoChar(&d, '}');
	return d.data;
}

/*
 * A read crossed quota a: act on it.  used is the rows read against it in
 * its window (or statement), the crossing row included.  The hit is
 * recorded at once (the record survives the statement's rollback), and
 * the writer that stores it raises the alert.
 */
static void
quota_hit(QuotaStmt *st, QuotaApplied *a, int64 used)
{
	char	   *what = quota_describe(a);
	const char *actor = st->rec->actor ? st->rec->actor : "?";
	bool		justified = aa_reason != NULL && aa_reason[0] != '\0';
	char	   *message;
	const char *rel = NULL;

	if (OidIsValid(a->def.relid))
	{
		AuditRelTags *t = aa_tags_lookup(a->def.relid);

		rel = t ? t->qualname : NULL;
	}
	a->done = true;

	if (a->def.action == AA_QUOTA_WARN ||
		(a->def.action == AA_QUOTA_REASON && justified))
	{
		a->warned = true;
		message = psprintf("actor \"%s\" read " INT64_FORMAT " tagged rows against %s%s%s",
						   actor, used, what,
						   justified ? "; reason: " : "",
						   justified ? aa_reason : "");
		aa_capture_event(a->def.action == AA_QUOTA_WARN ? "QUOTA WARN" : "QUOTA REASON",
						 rel, NULL, NULL,
						 quota_hit_detail(st, a, used, message, rel,
										  justified ? aa_reason : NULL));
		st->rec->detail = MemoryContextStrdup(st->cxt,
											  psprintf("%s%sover %s",
													   st->rec->detail ? st->rec->detail : "",
													   st->rec->detail ? "; " : "",
													   what));
		if (a->def.action == AA_QUOTA_WARN)
			ereport(WARNING,
					errcode(ERRCODE_WARNING),
					errmsg("tagged rows read exceed %s", what),
					errdetail("Actor \"%s\" has read " INT64_FORMAT " tagged rows against it.  The read goes on and is recorded; an alert has been raised.",
							  actor, used));
		return;
	}

	message = psprintf("actor \"%s\" stopped at tagged row " INT64_FORMAT " of %s",
					   actor, used, what);
	aa_capture_event(a->def.action == AA_QUOTA_BLOCK ? "QUOTA BLOCK" : "QUOTA NO REASON",
					 rel, NULL, NULL,
					 quota_hit_detail(st, a, used, message, rel, NULL));
	st->rec->detail = MemoryContextStrdup(st->cxt,
										  psprintf("%s%sstopped by %s",
												   st->rec->detail ? st->rec->detail : "",
												   st->rec->detail ? "; " : "",
												   what));
	st->refused = true;
	if (a->def.action == AA_QUOTA_BLOCK)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("tagged rows read exceed %s", what),
				st->at_run_end ?
				errdetail("Actor \"%s\" has read " INT64_FORMAT " tagged rows against it; the statement, whose parallel workers read rows the quota sees only at the end of a run, was stopped there.",
						  actor, used) :
				errdetail("Actor \"%s\" has read " INT64_FORMAT " tagged rows against it; the statement was stopped at that row.",
						  actor, used),
				errhint("An access_audit admin can grant a time-limited exemption with access_audit.grant_exemption()."));
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("tagged rows read exceed %s", what),
			errdetail("Reads over this quota need a justification; actor \"%s\" has read " INT64_FORMAT " tagged rows against it.",
					  actor, used),
			errhint("Give the reason for the read, for example SET access_audit.reason = 'ticket 4711', and run the statement again."));
}

/*
 * Charge the rows counted since the last settle to every applied quota.
 * With enforce, check the limits and reserve more rows; without (end of
 * statement), only account.  Every quota is charged before any is acted
 * on, so a statement stopped by one quota still counts against the
 * others.  Then set the budget (rows the statement may read before the
 * next settle) and act on the quotas crossed: warnings and justified reads
 * first, then the first that stops the statement (which throws).
 */
static void
quota_settle(QuotaStmt *st, bool enforce)
{
	int			i;
	int			r;
	int64		budget = PG_INT64_MAX;
	bool		any_hit = false;

	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		int64		consumed = 0;

		for (r = 0; r < st->nrels; r++)
			if (a->covers[r])
				consumed += st->pending_rel[r];
		a->stmt_used += consumed;
		if (a->def.per == AA_QUOTA_STATEMENT)
		{
			if (enforce && !a->done && a->stmt_used > a->def.max_rows)
				a->hit_at = a->stmt_used;
			continue;
		}
		if (consumed <= a->reserved)
		{
			a->reserved -= consumed;
			consumed = 0;
		}
		else
		{
			consumed -= a->reserved;
			a->reserved = 0;
		}
		if (a->done || !enforce)
		{
			a->unreported += consumed;
			continue;
		}
		if (consumed > 0 || a->reserved == 0)
		{
			QuotaCounter *c = quota_counter(a);
			int64		used;

			/*
			 * Charge, then reserve what is left up to a chunk.  Counters are
			 * changed atomically under the shared lock; a reservation that
			 * races past the limit gives the excess back at once.
			 */
			used = (int64) pg_atomic_add_fetch_u64(&c->used, (uint64) consumed);
			if (used <= a->def.max_rows)
			{
				int64		left = a->def.max_rows - used;
				int64		r = Min(left, Max(1, Min(AA_QUOTA_CHUNK, left / 64)));
				int64		after = r > 0 ?
				(int64) pg_atomic_add_fetch_u64(&c->used, (uint64) r) : used;

				if (after > a->def.max_rows)
				{
					int64		excess = Min(r, after - a->def.max_rows);

					quota_counter_sub(c, (uint64) excess);
					r -= excess;
				}
				a->reserved = r;
			}
			else if (consumed > 0)
				a->hit_at = used;
			pg_atomic_fetch_add_u64(&quota_shared->changes, 1);
			LWLockRelease(quota_shared->lock);
		}
	}
	st->pending = 0;
	memset(st->pending_rel, 0, sizeof(int64) * st->nrels);

	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		if (a->hit_at > 0)
			any_hit = true;
		else if (!a->done)
			budget = Min(budget, a->def.per == AA_QUOTA_STATEMENT ?
						 a->def.max_rows - a->stmt_used : a->reserved);
	}
	st->budget = budget;
	if (!any_hit)
		return;

	/* warnings and justified reads, then the first refusal */
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		if (a->hit_at > 0 && (a->def.action == AA_QUOTA_WARN ||
							  (a->def.action == AA_QUOTA_REASON &&
							   aa_reason != NULL && aa_reason[0] != '\0')))
		{
			int64		at = a->hit_at;

			a->hit_at = 0;
			quota_hit(st, a, at);
		}
	}
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		if (a->hit_at > 0)
		{
			int64		at = a->hit_at;

			a->hit_at = 0;
			quota_hit(st, a, at);
		}
	}
}

/*
 * A statement starts under per-statement quotas: start its count of each
 * at what its client statement has read against that quota so far (the
 * executors that ended, see stmt_acc, and those still running, such as
 * the query that calls this one's function).
 */
static void
quota_stmt_join(QuotaStmt *st)
{
	TimestampTz ts = GetCurrentStatementStartTimestamp();
	LocalTransactionId lxid = AA_MY_LXID;
	int			i;

	if (ts != stmt_acc_ts || lxid != stmt_acc_lxid)
	{
		stmt_acc_ts = ts;
		stmt_acc_lxid = lxid;
		stmt_acc_n = 0;
	}
	st->client_ts = ts;
	st->client_lxid = lxid;
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		QuotaStmt  *o;
		int			k;
		int64		base;

		a->stmt_acc = -1;
		if (a->def.per != AA_QUOTA_STATEMENT)
			continue;
		for (k = 0; k < stmt_acc_n; k++)
			if (stmt_acc[k].quota_id == a->def.id)
				break;
		if (k == stmt_acc_n)
		{
			if (stmt_acc_n == AA_QUOTA_MAX_DEFS)
				continue;
			stmt_acc[k].quota_id = a->def.id;
			stmt_acc[k].done = false;
			stmt_acc[k].used = 0;
			stmt_acc_n++;
		}
		a->stmt_acc = k;
		a->done = a->warned = stmt_acc[k].done;
		base = stmt_acc[k].used;
		for (o = active; o != NULL; o = o->next)
		{
			int			j;
			int			r;

			if (o->client_ts != ts || o->client_lxid != lxid)
				continue;
			for (j = 0; j < o->napplied; j++)
			{
				QuotaApplied *b = &o->applied[j];

				if (b->def.id != a->def.id)
					continue;
				base += b->stmt_used - b->stmt_base;
				for (r = 0; r < o->nrels; r++)
					if (b->covers[r])
						base += o->pending_rel[r];
				a->done = a->done || b->warned;
			}
		}
		a->stmt_base = a->stmt_used = base;
	}
}

/*
 * Reset callback of the statement's memory context (normal end, error,
 * abort, FATAL): account the rows not yet charged, give back unused
 * reservations and unwrap nothing (the plan goes away with the context).
 * Takes only the LWLock; never throws.
 */
static void
quota_stmt_end(void *arg)
{
	QuotaStmt  *st = (QuotaStmt *) arg;
	QuotaStmt **p;
	int			i;

	for (p = &active; *p != NULL; p = &(*p)->next)
	{
		if (*p == st)
		{
			*p = st->next;
			break;
		}
	}
	if (last_scan != NULL && last_scan->st == st)
	{
		last_node = NULL;
		last_scan = NULL;
	}
	quota_settle(st, false);
	if (st->client_ts == stmt_acc_ts && st->client_lxid == stmt_acc_lxid)
	{
		for (i = 0; i < st->napplied; i++)
		{
			QuotaApplied *a = &st->applied[i];

			if (a->def.per != AA_QUOTA_STATEMENT || a->stmt_acc < 0)
				continue;
			stmt_acc[a->stmt_acc].used += a->stmt_used - a->stmt_base;
			if (a->warned)
				stmt_acc[a->stmt_acc].done = true;
		}
	}
	LWLockAcquire(quota_shared->lock, LW_SHARED);
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		QuotaCounterKey key;
		QuotaCounter *c;

		if (a->def.per == AA_QUOTA_STATEMENT ||
			(a->unreported == 0 && a->reserved == 0))
			continue;
		memset(&key, 0, sizeof(key));
		key.dbid = MyDatabaseId;
		key.quota_id = a->def.id;
		key.window_start = a->window_start;
		strlcpy(key.subject, a->subject, sizeof(key.subject));
		/* made at the statement's start; gone only if its window ended */
		c = hash_search(quota_counters, &key, HASH_FIND, NULL);
		if (c != NULL)
		{
			if (a->unreported > a->reserved)
				pg_atomic_fetch_add_u64(&c->used,
										(uint64) (a->unreported - a->reserved));
			else if (a->reserved > a->unreported)
				quota_counter_sub(c, (uint64) (a->reserved - a->unreported));
			pg_atomic_fetch_add_u64(&quota_shared->changes, 1);
		}
		a->unreported = a->reserved = 0;
	}
	LWLockRelease(quota_shared->lock);
}

/*
 * The live break-glass exemption of the actor from quota d, or 0.
 */
static int32
quota_exempt(const QuotaDef *d, const char *actor, TimestampTz now)
{
	int			i;

	for (i = 0; i < nexempts; i++)
	{
		QuotaExempt *e = &exempts[i];

		if (e->expires > now && (e->quota_id == 0 || e->quota_id == d->id) &&
			quota_subject_matches(e->kind, e->subject, e->roleid, actor))
			return e->id;
	}
	return 0;
}

/* PlanState walker: the scans whose instrumentation capture counts */
typedef struct QuotaScanCtx
{
	Instrumentation **instr;
	int			ninstr;
	List	   *nodes;
} QuotaScanCtx;

static bool
quota_find_scans(PlanState *ps, void *arg)
{
	QuotaScanCtx *ctx = (QuotaScanCtx *) arg;
	int			i;

	if (ps == NULL)
		return false;
	if (ps->instrument != NULL)
	{
		for (i = 0; i < ctx->ninstr; i++)
			if (ctx->instr[i] == ps->instrument)
			{
				ctx->nodes = lappend(ctx->nodes, ps);
				break;
			}
	}
	return planstate_tree_walker(ps, quota_find_scans, arg);
}

/*
 * Does a quota on relid cover rows of rel (itself, or a partition of it)?
 */
static bool
quota_covers(Oid quota_rel, Oid rel)
{
	if (!OidIsValid(quota_rel) || quota_rel == rel)
		return true;
	if (get_rel_relispartition(rel))
		return list_member_oid(get_partition_ancestors(rel), quota_rel);
	return false;
}

/*
 * ExecutorStart of an audited statement (capture.c, after standard start):
 * note the session's reason in the record, and if quotas apply to the
 * reading actor, wrap the scans of tagged relations (instr: their
 * instrumentation, as capture collected it) to count their rows.  Returns
 * a handle for aa_quota_run_end(), or NULL when no quota applies.
 */
void	   *
aa_quota_start(QueryDesc *queryDesc, AuditRecord *rec,
			   Instrumentation **instr, int ninstr)
{
	MemoryContext cxt;
	QuotaScanCtx sctx;
	QuotaStmt  *st;
	TimestampTz now;
	const char *actor = rec->actor;
	ListCell   *lc;
	int			i;
	int			napplied = 0;
	int			r;

	cxt = queryDesc->estate->es_query_cxt;
	aa_quota_annotate(rec, cxt);
	if (quota_shared == NULL || loading || ninstr == 0 || actor == NULL ||
		IsParallelWorker() || quota_own_process())
		return NULL;
	quota_load();
	if (ndefs == 0)
		return NULL;

	now = GetCurrentStatementStartTimestamp();
	st = MemoryContextAllocZero(cxt, sizeof(QuotaStmt));
	st->applied = MemoryContextAllocZero(cxt, sizeof(QuotaApplied) * ndefs);
	for (i = 0; i < ndefs; i++)
	{
		QuotaDef   *d = &defs[i];
		QuotaApplied *a;
		int32		ex;

		if (!quota_subject_matches(d->kind, d->subject, d->roleid, actor))
			continue;
		if ((ex = quota_exempt(d, actor, now)) != 0)
		{
			/* break glass: the record says under which exemption */
			rec->detail = MemoryContextStrdup(cxt,
											  psprintf("%s%sexempt from quota %d by exemption %d",
													   rec->detail ? rec->detail : "",
													   rec->detail ? "; " : "",
													   d->id, ex));
			continue;
		}
		a = &st->applied[napplied++];
		a->def = *d;
		a->def.subject = MemoryContextStrdup(cxt, d->subject);
		strlcpy(a->subject, d->shared ? "" : actor, sizeof(a->subject));
		if (d->per != AA_QUOTA_STATEMENT)
			a->window_start = quota_window(d->per, now, &a->window_end);
	}
	if (napplied == 0)
		return NULL;
	st->napplied = napplied;

	memset(&sctx, 0, sizeof(sctx));
	sctx.instr = instr;
	sctx.ninstr = ninstr;
	(void) quota_find_scans(queryDesc->planstate, &sctx);
	if (sctx.nodes == NIL)
		return NULL;

	/*
	 * Parallel workers' rows reach the leader only through instrumentation,
	 * at the end of a run: too late to stop the read at the row.  So a
	 * statement under a quota runs its plan in the leader alone, as
	 * PostgreSQL runs a parallel plan whose portal is fetched in parts
	 * (Gather then launches no workers and runs its subplan itself), and
	 * every row passes quota_exec().  The plan may be cached and shared: the
	 * flag is cleared in a copy that lives as long as the QueryDesc.
	 */
	if (queryDesc->plannedstmt->parallelModeNeeded)
	{
		PlannedStmt *serial;

		serial = MemoryContextAlloc(GetMemoryChunkContext(queryDesc),
									sizeof(PlannedStmt));
		memcpy(serial, queryDesc->plannedstmt, sizeof(PlannedStmt));
		serial->parallelModeNeeded = false;
		queryDesc->plannedstmt = serial;
	}

	st->cxt = cxt;
	st->rec = rec;
	st->nscans = list_length(sctx.nodes);
	st->scans = MemoryContextAllocZero(cxt, sizeof(QuotaScan) * st->nscans);
	st->rels = MemoryContextAllocZero(cxt, sizeof(Oid) * st->nscans);
	st->pending_rel = MemoryContextAllocZero(cxt, sizeof(int64) * st->nscans);
	i = 0;
	foreach(lc, sctx.nodes)
	{
		PlanState  *ps = lfirst(lc);
		QuotaScan  *qs = &st->scans[i++];
		Index		scanrelid = ((Scan *) ps->plan)->scanrelid;
		Oid			relid = scanrelid > 0 ?
		rt_fetch(scanrelid, queryDesc->plannedstmt->rtable)->relid : InvalidOid;

		for (r = 0; r < st->nrels; r++)
			if (st->rels[r] == relid)
				break;
		if (r == st->nrels)
			st->rels[st->nrels++] = relid;
		qs->relidx = r;
		qs->node = ps;
		qs->instr = ps->instrument;
		qs->st = st;
	}
	for (i = 0; i < napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		a->covers = MemoryContextAllocZero(cxt, sizeof(bool) * st->nrels);
		for (r = 0; r < st->nrels; r++)
			a->covers[r] = quota_covers(a->def.relid, st->rels[r]);
	}

	quota_stmt_join(st);

	/* first settle: reserve rows, or act at once on a quota used up */
	st->next = active;
	active = st;
	st->cb.func = quota_stmt_end;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(cxt, &st->cb);
	quota_settle(st, true);

	for (i = 0; i < st->nscans; i++)
	{
		QuotaScan  *qs = &st->scans[i];

		qs->real = qs->node->ExecProcNodeReal;
		qs->node->ExecProcNodeReal = quota_exec;
	}
	return st;
}

/*
 * After each ExecutorRun of a counted statement: rows that parallel
 * workers read reach the leader's instrumentation only, so charge what the
 * scans' instrumentation shows beyond what quota_exec() counted.
 */
void
aa_quota_run_end(void *handle)
{
	QuotaStmt  *st = (QuotaStmt *) handle;
	int			i;
	bool		more = false;

	for (i = 0; i < st->nscans; i++)
	{
		QuotaScan  *qs = &st->scans[i];
		int64		total = (int64) (qs->instr->ntuples + qs->instr->tuplecount);

		if (total > qs->counted)
		{
			st->pending_rel[qs->relidx] += total - qs->counted;
			st->pending += total - qs->counted;
			qs->counted = total;
			more = true;
		}
	}
	if (more)
	{
		st->at_run_end = true;
		quota_settle(st, true);
		st->at_run_end = false;
	}
}

/*
 * The run of a counted statement ended in an error: note the rows the
 * scans' instrumentation shows beyond what quota_exec() counted.  Among
 * them is the row each scan was working on when the error came (capture.c
 * counts it: its filter or projection read the row, and the error may show
 * a value of it, as phone::int does).  Only noted, never acted on here (we
 * are in an error's cleanup): the end of the statement charges them to the
 * quotas with its other rows, so the next statement over the limit is
 * refused.
 */
void
aa_quota_run_failed(void *handle)
{
	QuotaStmt  *st = (QuotaStmt *) handle;
	int			i;

	for (i = 0; i < st->nscans; i++)
	{
		QuotaScan  *qs = &st->scans[i];
		int64		total = (int64) (qs->instr->ntuples + qs->instr->tuplecount);

		if (total > qs->counted)
		{
			st->pending_rel[qs->relidx] += total - qs->counted;
			st->pending += total - qs->counted;
			qs->counted = total;
		}
	}
}

/*
 * Did a quota stop the statement (the error being handled is its refusal)?
 * The row the refusal came at was not shown.
 */
bool
aa_quota_refused(void *handle)
{
	return ((QuotaStmt *) handle)->refused;
}

/*
 * The actor a record of this session names (as capture.c decides it): the
 * application actor if the session may set one, else the login role.
 */
static const char *
quota_actor(void)
{
	if (aa_actor && aa_actor[0])
	{
		Oid			app = get_role_oid(AA_ROLE_APP, true);

		if (OidIsValid(app) && has_privs_of_role(GetSessionUserId(), app))
			return aa_actor;
	}
	return GetUserNameFromId(GetAuthenticatedUserId(), false);
}

/*
 * Does a quota apply to this session's reads of relid?  For the COPY
 * rewrite; loads the cache.
 */
static bool
quota_applies_to(Oid relid)
{
	const char *actor;
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	if (quota_shared == NULL || loading || quota_own_process() ||
		IsParallelWorker() || !aa_enabled || !aa_tags_active())
		return false;
	quota_load();
	if (ndefs == 0)
		return false;
	actor = quota_actor();
	for (i = 0; i < ndefs; i++)
	{
		if (quota_covers(defs[i].relid, relid) &&
			quota_subject_matches(defs[i].kind, defs[i].subject,
								  defs[i].roleid, actor) &&
			!quota_exempt(&defs[i], actor, now))
			return true;
	}
	return false;
}

/*
 * COPY tagged_table [ (cols) ] TO ...: the same COPY of a query, SELECT
 * cols FROM ONLY tagged_table, so that the executor counts its rows.  NULL
 * if the statement is not such a COPY or no quota applies.  The column
 * list defaults as COPY's does: every column but dropped and generated
 * ones.
 */
static CopyStmt *
quota_copy_as_query(CopyStmt *copy)
{
	Oid			relid;
	AuditRelTags *tags;
	SelectStmt *sel;
	RangeVar   *rv;
	CopyStmt   *out;
	List	   *cols = NIL;
	ListCell   *lc;

	if (copy->is_from || copy->relation == NULL || !aa_tags_active())
		return NULL;
	relid = RangeVarGetRelid(copy->relation, NoLock, true);
	if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION ||
		(tags = aa_tags_lookup(relid)) == NULL || !tags->tagged ||
		!quota_applies_to(relid))
		return NULL;

	if (copy->attlist != NIL)
		cols = copy->attlist;
	else
	{
		Relation	rel = table_open(relid, AccessShareLock);
		TupleDesc	td = RelationGetDescr(rel);
		int			i;

		for (i = 0; i < td->natts; i++)
		{
			Form_pg_attribute att = TupleDescAttr(td, i);

			if (att->attisdropped || att->attgenerated)
				continue;
			cols = lappend(cols, makeString(pstrdup(NameStr(att->attname))));
		}
		table_close(rel, AccessShareLock);
	}
	sel = makeNode(SelectStmt);
	foreach(lc, cols)
	{
		ResTarget  *rt = makeNode(ResTarget);
		ColumnRef  *cr = makeNode(ColumnRef);

		cr->fields = list_make1(makeString(pstrdup(strVal(lfirst(lc)))));
		cr->location = -1;
		rt->val = (Node *) cr;
		rt->location = -1;
		sel->targetList = lappend(sel->targetList, rt);
	}
	rv = copyObject(copy->relation);
	rv->inh = false;
	sel->fromClause = list_make1(rv);
	out = copyObject(copy);
	out->relation = NULL;
	out->attlist = NIL;
	out->query = (Node *) sel;
	return out;
}

/*
 * ProcessUtility hook: relation-form COPY TO of a tagged table, for a
 * session under a quota, runs as a COPY of a query (see above).
 */
static void
aa_quota_ProcessUtility(PlannedStmt *pstmt, const char *queryString,
						bool readOnlyTree, ProcessUtilityContext context,
						ParamListInfo params, QueryEnvironment *queryEnv,
						DestReceiver *dest, QueryCompletion *qc)
{
	if (IsA(pstmt->utilityStmt, CopyStmt))
	{
		CopyStmt   *q = quota_copy_as_query((CopyStmt *) pstmt->utilityStmt);

		if (q != NULL)
		{
			pstmt = copyObject(pstmt);
			pstmt->utilityStmt = (Node *) q;
			readOnlyTree = false;
		}
	}
	aa_next_ProcessUtility_compat(prev_ProcessUtility, pstmt, queryString,
								  readOnlyTree, context, params, queryEnv,
								  dest, qc);
}

/*
 * access_audit._quota_event(command text, detail text): record a change of
 * quotas, exemptions or peer groups (called by their triggers) and have
 * every backend reload at commit.
 */
Datum
access_audit_quota_event(PG_FUNCTION_ARGS)
{
	char	   *command;
	char	   *detail;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("command must not be null"),
				errhint("Pass the change, for example 'QUOTA CHANGE'."));
	command = text_to_cstring(PG_GETARG_TEXT_PP(0));
	detail = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	aa_capture_event(command, NULL, NULL, NULL, detail);
	bump_at_commit = true;
	PG_RETURN_VOID();
}

/*
 * access_audit._quota_counters(): the counters of this database, as
 * (quota_id, subject, window_start, window_end, used).  Rows reserved by
 * running statements count as used.
 */
Datum
access_audit_quota_counters(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS seq;
	QuotaCounter *c;

	if (quota_shared == NULL)
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit quota counters are not available"),
				errhint("Load access_audit through shared_preload_libraries."));
	InitMaterializedSRF(fcinfo, 0);
	LWLockAcquire(quota_shared->lock, LW_SHARED);
	hash_seq_init(&seq, quota_counters);
	while ((c = hash_seq_search(&seq)) != NULL)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};

		if (c->key.dbid != MyDatabaseId)
			continue;
		values[0] = Int32GetDatum(c->key.quota_id);
		if (c->key.subject[0] == '\0')
			nulls[1] = true;
		else
			values[1] = CStringGetTextDatum(c->key.subject);
		values[2] = TimestampTzGetDatum(c->key.window_start);
		values[3] = TimestampTzGetDatum(c->window_end);
		values[4] = Int64GetDatum((int64) pg_atomic_read_u64(&c->used));
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(quota_shared->lock);
	return (Datum) 0;
}

/*
 * A quota hit the writer stores (see aa_quota_alert_note).
 */
typedef struct QuotaHitNote
{
	int64		seq;
	TimestampTz ts;
	char	   *actor;
	char	   *command;
	char	   *detail;
} QuotaHitNote;

/*
 * Writer, for each record of a batch: if it is a quota hit (QUOTA WARN,
 * QUOTA BLOCK, QUOTA NO REASON, QUOTA REASON), note it in hits (a List in
 * the batch's memory context) for aa_quota_raise_alerts().  Costs one
 * compare for every other record.
 */
List	   *
aa_quota_alert_note(List *hits, int64 seq, TimestampTz ts, const char *actor,
					const char *command, const char *detail)
{
	QuotaHitNote *h;

	if (command == NULL || strncmp(command, "QUOTA ", 6) != 0 ||
		(strcmp(command, "QUOTA WARN") != 0 &&
		 strcmp(command, "QUOTA BLOCK") != 0 &&
		 strcmp(command, "QUOTA NO REASON") != 0 &&
		 strcmp(command, "QUOTA REASON") != 0) ||
		actor == NULL || detail == NULL)
		return hits;
	h = palloc(sizeof(QuotaHitNote));
	h->seq = seq;
	h->ts = ts;
	h->actor = pstrdup(actor);
	h->command = pstrdup(command);
	h->detail = pstrdup(detail);
	return lappend(hits, h);
}

/*
 * Writer, inside the transaction that stores a batch, after its records:
 * make each quota hit of the batch an alert, with
 * access_audit._quota_alert() (one alert per actor, window, kind and
 * quota; a repeated hit adds to its count; a new alert is announced with
 * NOTIFY access_audit_alert and, by the alerts table's trigger, the SIEM
 * line).  Each hit goes through in a subtransaction of its own with the
 * SIEM trigger made immediate: an error there (say, an installation whose
 * SQL objects are older than the library, or a hit a reader made odd)
 * costs that hit's alert, with a WARNING, never the batch nor the alerts
 * of the batch's other hits.  The writer runs with a pinned search_path.
 */
void
aa_quota_raise_alerts(List *hits)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;
	Oid			argtypes[5] = {INT8OID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TEXTOID};
	ListCell   *lc;
	int			failed = 0;
	char	   *first_error = NULL;
	int64		first_seq = 0;

	foreach(lc, hits)
	{
		QuotaHitNote *h = lfirst(lc);

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			Datum		args[5];
			int			ret;

			args[0] = Int64GetDatum(h->seq);
			args[1] = TimestampTzGetDatum(h->ts);
			args[2] = CStringGetTextDatum(h->actor);
			args[3] = CStringGetTextDatum(h->command);
			args[4] = CStringGetTextDatum(h->detail);
			ret = SPI_execute_with_args("SELECT access_audit._quota_alert($1, $2, $3, $4, $5)",
										5, argtypes, args, NULL, false, 1);
			if (ret != SPI_OK_SELECT)
				elog(ERROR, "could not raise a quota alert: %s",
					 SPI_result_code_string(ret));
			if (SPI_execute("SET CONSTRAINTS access_audit.siem_log IMMEDIATE",
							false, 0) != SPI_OK_UTILITY)
				elog(ERROR, "could not send the quota alert's SIEM line");
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			if (failed++ == 0)
			{
				first_error = pstrdup(edata->message);
				first_seq = h->seq;
			}
			FreeErrorData(edata);
		}
		PG_END_TRY();
	}
	if (failed > 0)
		ereport(WARNING,
				errmsg("access_audit could not raise %d of %d quota alert(s) of database \"%s\"",
					   failed, list_length(hits), get_database_name(MyDatabaseId)),
				errdetail("The first, for the hit of record " INT64_FORMAT ", failed: %s",
						  first_seq, first_error),
				errhint("The hits are stored in the log (view access_audit.quota_events); run ALTER EXTENSION access_audit UPDATE if the extension is older than its library."));
}

/*
 * access_audit._quota_counters_saved(): have the counters been saved to
 * their file since they last changed?  (Tests wait for it before they
 * stop the server the hard way.)
 */
Datum
access_audit_quota_counters_saved(PG_FUNCTION_ARGS)
{
	if (quota_shared == NULL)
		PG_RETURN_BOOL(false);
	PG_RETURN_BOOL(pg_atomic_read_u64(&quota_shared->changes) ==
				   pg_atomic_read_u64(&quota_shared->saved));
}
