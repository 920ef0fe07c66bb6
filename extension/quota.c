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
 * LW_SHARED to find them.  A backend finds the counters of the quotas
 * that apply to its actor once (QuotaSet) and pins them (counter.pins,
 * taken under the lock); eviction, under the exclusive lock, skips pinned
 * counters, so a pinned counter stays where it is and statements change
 * its used value with atomic operations alone, without the lock: backends
 * reading under quota never wait for each other.  QuotaShared.generation
 * is atomic; it is bumped at commit of every change to quotas, exemptions
 * or peer groups and tells backends to reload their cache.
 *
 * Two backends of one actor near the limit: each reserves with an atomic
 * add and gives back at once what passed the limit, and charges rows read
 * beyond its reservation with an atomic add before it sends them, so rows
 * sent never pass the limit; the limit holds exactly (isolation spec
 * quota_concurrent).  Reserved rows are part of a counter's used value
 * until the statement gives back what it did not read (reset callback of
 * the statement's memory context, atomic operations only, never throws);
 * a backend that dies keeps its reservation counted, which errs toward the
 * limit.  Everything else is backend-local.
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
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
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
	pg_atomic_uint32 pins;		/* backends' quota sets pointing at it */
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

/*
 * A quota that applies to the backend's actor now, with its counter (see
 * QuotaSet).
 */
typedef struct QuotaSetEntry
{
	QuotaDef	def;			/* subject copied into the set's context */
	char		subject[AA_QUOTA_SUBJECT_LEN];	/* counter key */
	TimestampTz window_start;
	TimestampTz window_end;
	QuotaCounter *counter;		/* pinned; NULL for per-statement quotas */
} QuotaSetEntry;

/*
 * The quotas that apply to one actor, worked out once and kept while
 * nothing they depend on changes: the loaded quotas and exemptions (their
 * generation), the actor, the session user and role memberships (a
 * syscache callback bumps roles_epoch), the business time zone and the
 * time (valid_from to valid_until: the end of the earliest window and the
 * earliest expiry of an exemption of the actor).  Each counter of an hour
 * or day quota is found (or made) once and pinned: a pinned counter is
 * never evicted, so statements change it with atomic operations alone,
 * without the lock or a hash lookup.  refs counts the statements using
 * the set plus one while it is the current set; the last release unpins
 * the counters and frees it.
 */
typedef struct QuotaSet
{
	MemoryContext cxt;
	int			refs;
	uint64		stamp;			/* set_stamps when made (aa_quota_set_stale) */
	uint64		generation;
	uint64		roles_epoch;
	Oid			session_user;
	char	   *actor;
	uint64		zone_epoch;		/* aa_business_timezone_epoch */
	TimestampTz valid_from;
	TimestampTz valid_until;
	char	   *exempt_detail;	/* "exempt from quota N by exemption M; ..." */
	int			nstmt;			/* per-statement quotas among q */
	int			n;
	QuotaSetEntry *q;
	struct QuotaApplied *applied;	/* a statement's start, per quota */
} QuotaSet;

/* a quota applied to one statement */
typedef struct QuotaApplied
{
	const QuotaDef *def;		/* &e->def */
	QuotaSetEntry *e;
	bool	   *covers;			/* per scan of the statement; NULL: all */
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
	int64		counted;		/* rows it returned */
	int64		settled;		/* ... of which quota_settle() charged */
	Oid			relid;
	struct QuotaStmt *st;
} QuotaScan;

typedef struct QuotaStmt
{
	struct QuotaStmt *next;
	MemoryContextCallback cb;
	MemoryContext cxt;
	AuditRecord *rec;
	QuotaSet   *set;			/* holds a reference */
	int			napplied;
	QuotaApplied *applied;
	int			nscans;
	QuotaScan  *scans;
	int64		pending;		/* rows counted since the last settle */
	int64		budget;
	bool		parallel;		/* its plan was parallel (aa_quota_run_end) */
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

/* the quotas of the actor of the last statement (see QuotaSet) */
static QuotaSet *cur_set = NULL;
static uint64 set_stamps = 0;	/* sets made by this backend */

/* bumped by changes of roles and role memberships (syscache callback) */
static uint64 roles_epoch = 0;
static bool roles_callback_set = false;
static bool unpin_at_exit_set = false;

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
static void quota_settle(QuotaStmt *st);

/* a restarted statement's count of a per-statement quota (aa_quota_restart) */
typedef struct QuotaCarry
{
	int32		quota_id;
	int			index;			/* in the old statement's applied */
	int64		used;
	bool		warned;
} QuotaCarry;

static void *quota_begin(QueryDesc *queryDesc, AuditRecord *rec, List *scans,
						 bool late, const QuotaCarry *carry, int ncarry,
						 void **out);
static void quota_stmt_retire(QuotaStmt *st);
static int32 quota_exempt(const QuotaDef *d, const char *actor,
						  TimestampTz now);
static bool quota_subject_matches(QuotaKind kind, const char *subject,
								  Oid roleid, const char *actor);
static TimestampTz quota_window(QuotaPer per, TimestampTz now,
								TimestampTz *end);
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
		pg_atomic_init_u32(&c->pins, 0);
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
 * The quotas are cached per generation, so they must be read as committed
 * now, not as the statement's snapshot shows them: a cursor's FETCH runs
 * under the snapshot of its DECLARE, and a REPEATABLE READ transaction
 * under the one of its first statement, both older than the quota change
 * that moved the generation.  Read with them, a new quota was missing from
 * the cache until the next change, in every later transaction too.  The
 * generation is read before, and bumped after the change is visible
 * (quota_xact_callback), so this snapshot sees every change up to it.  A
 * fresh catalog snapshot serves, since GetLatestSnapshot() is refused in
 * parallel mode (ExecutorStart of a parallel plan).
 */
static void
quota_push_fresh_snapshot(void)
{
	InvalidateCatalogSnapshot();
	PushActiveSnapshot(GetCatalogSnapshot(InvalidOid));
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
		quota_push_fresh_snapshot();
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
		PopActiveSnapshot();
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
		quota_push_fresh_snapshot();
		ret = SPI_execute_with_args("SELECT g.peer_group FROM access_audit.actor_groups g "
									"WHERE g.actor OPERATOR(pg_catalog.=) $1",
									1, argtypes, args, NULL, true, 1);
		if (ret != SPI_OK_SELECT)
			elog(ERROR, "could not read access_audit.actor_groups: %d", ret);
		group_name = SPI_processed > 0 ? spi_text(1, TopMemoryContext) : NULL;
		if (group_name == NULL)
			group_name = MemoryContextStrdup(TopMemoryContext, "default");
		PopActiveSnapshot();
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

static pg_noinline QuotaScan *
quota_scan_search(PlanState *node)
{
	QuotaStmt  *st;
	int			i;

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
 * ExecProcNodeReal of a counted scan: per row two increments and one
 * compare; quota_settle() only when the statement's budget is used up.
 */
static TupleTableSlot *
quota_exec(PlanState *node)
{
	QuotaScan  *qs = last_scan;
	TupleTableSlot *slot;

	if (unlikely(node != last_node))
		qs = quota_scan_search(node);
	slot = qs->real(node);

	if (likely(!TupIsNull(slot)))
	{
		QuotaStmt  *st = qs->st;

		qs->counted++;
		if (unlikely(++st->pending > st->budget))
			quota_settle(st);
	}
	return slot;
}

/*
 * Find or make the counter of a quota of the backend's set and pin it
 * (see QuotaSet): a pinned counter is never evicted, so the set may keep
 * the pointer and change used with atomic operations alone.  Pins are
 * taken under the lock (shared or exclusive) and eviction, under the
 * exclusive lock, removes only unpinned counters of ended windows; so no
 * pin can appear on a counter while it is evicted.  When the table is
 * full and nothing can be evicted, the read is refused (never left
 * uncounted).
 */
static QuotaCounter *
quota_counter_pin(QuotaSetEntry *e)
{
	QuotaCounterKey key;
	QuotaCounter *c;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.dbid = MyDatabaseId;
	key.quota_id = e->def.id;
	key.window_start = e->window_start;
	strlcpy(key.subject, e->subject, sizeof(key.subject));
	LWLockAcquire(quota_shared->lock, LW_SHARED);
	c = hash_search(quota_counters, &key, HASH_FIND, NULL);
	if (c != NULL)
	{
		pg_atomic_fetch_add_u32(&c->pins, 1);
		LWLockRelease(quota_shared->lock);
		return c;
	}
	LWLockRelease(quota_shared->lock);

	LWLockAcquire(quota_shared->lock, LW_EXCLUSIVE);
	c = hash_search(quota_counters, &key, HASH_FIND, NULL);
	if (c == NULL &&
		hash_get_num_entries(quota_counters) >= AA_QUOTA_MAX_COUNTERS)
	{
		HASH_SEQ_STATUS seq;
		QuotaCounter *old;
		TimestampTz now = GetCurrentTimestamp();

		hash_seq_init(&seq, quota_counters);
		while ((old = hash_seq_search(&seq)) != NULL)
		{
			if (old->window_end <= now && pg_atomic_read_u32(&old->pins) == 0)
				hash_search(quota_counters, &old->key, HASH_REMOVE, NULL);
		}
		if (hash_get_num_entries(quota_counters) >= AA_QUOTA_MAX_COUNTERS)
		{
			LWLockRelease(quota_shared->lock);
			ereport(ERROR,
					errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					errmsg("too many access_audit quota counters in use"),
					errdetail("Every one of the %d counters belongs to a current window or to a session that has not read since its window ended.",
							  AA_QUOTA_MAX_COUNTERS),
					errhint("Use fewer per-actor quotas, or shared quotas of groups or roles."));
		}
	}
	if (c == NULL)
	{
		c = hash_search(quota_counters, &key, HASH_ENTER, &found);
		if (!found)
		{
			c->window_end = e->window_end;
			pg_atomic_init_u64(&c->used, 0);
			pg_atomic_init_u32(&c->pins, 0);
		}
	}
	pg_atomic_fetch_add_u32(&c->pins, 1);
	LWLockRelease(quota_shared->lock);
	return c;
}

/*
 * Drop a set's reference; the last one unpins its counters and frees it.
 * Never throws (it runs in the statement's reset callback and at exit).
 */
static void
quota_set_release(QuotaSet *set)
{
	int			i;

	if (--set->refs > 0)
		return;
	for (i = 0; i < set->n; i++)
		if (set->q[i].counter != NULL)
			pg_atomic_fetch_sub_u32(&set->q[i].counter->pins, 1);
	MemoryContextDelete(set->cxt);
}

/*
 * on_shmem_exit: the backend's current set lets go of its counters.  This
 * runs after the transaction's abort (a before_shmem_exit callback), so
 * statements that were running have already released theirs.
 */
static void
quota_unpin_at_exit(int code, Datum arg)
{
	QuotaSet   *set = cur_set;

	cur_set = NULL;
	if (set != NULL)
		quota_set_release(set);
}

/* syscache callback: roles or role memberships changed */
static void
quota_roles_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	roles_epoch++;
}

/*
 * Does the backend's current set still hold for actor at now?  Checked at
 * every statement under quotas, so it compares numbers and one name.
 */
static inline bool
quota_set_holds(QuotaSet *set, const char *actor, TimestampTz now)
{
	return set != NULL && set->generation == loaded_generation &&
		set->roles_epoch == roles_epoch &&
		set->zone_epoch == aa_business_timezone_epoch &&
		set->session_user == GetSessionUserId() &&
		now >= set->valid_from && now < set->valid_until &&
		strcmp(set->actor, actor) == 0;
}

/*
 * Work out the set of quotas that apply to actor at now (the statement's
 * start) and make it the backend's current set (see QuotaSet): subject
 * matching (peer group, role membership), exemptions, windows, and each
 * hour or day counter found and pinned.  The caller has loaded the quotas
 * (quota_load).
 */
static QuotaSet *
quota_set_make(const char *actor, TimestampTz now)
{
	QuotaSet   *set = cur_set;
	MemoryContext cxt;
	StringInfoData ex;
	int			i;

	if (!roles_callback_set)
	{
		CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, quota_roles_changed, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, quota_roles_changed, (Datum) 0);
		roles_callback_set = true;
	}
	if (!unpin_at_exit_set)
	{
		on_shmem_exit(quota_unpin_at_exit, (Datum) 0);
		unpin_at_exit_set = true;
	}

	/* let go of the old set first: its counters may be of ended windows */
	cur_set = NULL;
	if (set != NULL)
		quota_set_release(set);

	cxt = AllocSetContextCreate(TopMemoryContext, "access_audit quota set",
								ALLOCSET_SMALL_SIZES);
	set = MemoryContextAllocZero(cxt, sizeof(QuotaSet));
	set->cxt = cxt;
	set->refs = 1;
	set->q = MemoryContextAllocZero(cxt, sizeof(QuotaSetEntry) * Max(ndefs, 1));
	set->valid_from = now;
	set->valid_until = DT_NOEND;
	PG_TRY();
	{
		initStringInfo(&ex);
		for (i = 0; i < ndefs; i++)
		{
			QuotaDef   *d = &defs[i];
			QuotaSetEntry *e;
			int32		exid;

			if (!quota_subject_matches(d->kind, d->subject, d->roleid, actor))
				continue;
			if ((exid = quota_exempt(d, actor, now)) != 0)
			{
				/* break glass: records say under which exemption */
				appendStringInfo(&ex, "%sexempt from quota %d by exemption %d",
								 ex.len > 0 ? "; " : "", d->id, exid);
				continue;
			}
			e = &set->q[set->n++];
			e->def = *d;
			e->def.subject = MemoryContextStrdup(cxt, d->subject);
			strlcpy(e->subject, d->shared ? "" : actor, sizeof(e->subject));
			if (d->per == AA_QUOTA_STATEMENT)
				set->nstmt++;
			else
			{
				e->window_start = quota_window(d->per, now, &e->window_end);
				set->valid_until = Min(set->valid_until, e->window_end);
				e->counter = quota_counter_pin(e);
			}
		}
		/* an exemption of the actor that expires changes the set */
		for (i = 0; i < nexempts; i++)
			if (exempts[i].expires > now &&
				quota_subject_matches(exempts[i].kind, exempts[i].subject,
									  exempts[i].roleid, actor))
				set->valid_until = Min(set->valid_until, exempts[i].expires);
		/* what a statement's QuotaApplied array starts as */
		set->applied = MemoryContextAllocZero(cxt, sizeof(QuotaApplied) *
											  Max(set->n, 1));
		for (i = 0; i < set->n; i++)
		{
			set->applied[i].e = &set->q[i];
			set->applied[i].def = &set->q[i].def;
			set->applied[i].covers = NULL;	/* NULL: covers every scan */
			set->applied[i].stmt_acc = -1;
		}
		if (ex.len > 0)
			set->exempt_detail = MemoryContextStrdup(cxt, ex.data);
		pfree(ex.data);
		set->actor = MemoryContextStrdup(cxt, actor);
		set->zone_epoch = aa_business_timezone_epoch;
		set->session_user = GetSessionUserId();
		set->generation = loaded_generation;
		set->roles_epoch = roles_epoch;
		set->stamp = ++set_stamps;
	}
	PG_CATCH();
	{
		/* unpin what was pinned, and free the half-made set */
		quota_set_release(set);
		PG_RE_THROW();
	}
	PG_END_TRY();
	cur_set = set;
	return set;
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
					a->def->id, action_name(a->def->action), a->def->max_rows,
					per_name(a->def->per),
					OidIsValid(a->def->relid) ? " of " : "",
					OidIsValid(a->def->relid) ? get_rel_name(a->def->relid) : "",
					a->def->shared ? "shared by" : "for",
					kind_name(a->def->kind), a->def->subject);
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
	TimestampTz ws = a->e->window_start;
	TimestampTz we = a->e->window_end;

	if (a->def->per == AA_QUOTA_STATEMENT)
		ws = quota_window(AA_QUOTA_DAY, st->rec->ts, &we);
	initStringInfo(&d);
	appendStringInfoString(&d, "{\"message\": ");
	quota_json_bounded(&d, message, QUOTA_HIT_MESSAGE_MAX);
	appendStringInfo(&d, ", \"quota_id\": %d, \"action\": \"%s\", \"per\": \"%s\", "
					 "\"max_rows\": " INT64_FORMAT ", \"rows_read\": " INT64_FORMAT
					 ", \"subject_kind\": \"%s\", \"subject\": ",
					 a->def->id, action_name(a->def->action), per_name(a->def->per),
					 a->def->max_rows, used, kind_name(a->def->kind));
	quota_json_bounded(&d, a->def->subject, QUOTA_HIT_SUBJECT_MAX);
	appendStringInfo(&d, ", \"shared\": %s, \"relation\": ",
					 a->def->shared ? "true" : "false");
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

	if (OidIsValid(a->def->relid))
	{
		AuditRelTags *t = aa_tags_lookup(a->def->relid);

		rel = t ? t->qualname : NULL;
	}
	a->done = true;

	if (a->def->action == AA_QUOTA_WARN ||
		(a->def->action == AA_QUOTA_REASON && justified))
	{
		a->warned = true;
		message = psprintf("actor \"%s\" read " INT64_FORMAT " tagged rows against %s%s%s",
						   actor, used, what,
						   justified ? "; reason: " : "",
						   justified ? aa_reason : "");
		aa_capture_event(a->def->action == AA_QUOTA_WARN ? "QUOTA WARN" : "QUOTA REASON",
						 rel, NULL, NULL,
						 quota_hit_detail(st, a, used, message, rel,
										  justified ? aa_reason : NULL));
		st->rec->detail = MemoryContextStrdup(st->cxt,
											  psprintf("%s%sover %s",
													   st->rec->detail ? st->rec->detail : "",
													   st->rec->detail ? "; " : "",
													   what));
		if (a->def->action == AA_QUOTA_WARN)
			ereport(WARNING,
					errcode(ERRCODE_WARNING),
					errmsg("tagged rows read exceed %s", what),
					errdetail("Actor \"%s\" has read " INT64_FORMAT " tagged rows against it.  The read goes on and is recorded; an alert has been raised.",
							  actor, used));
		return;
	}

	message = psprintf("actor \"%s\" stopped at tagged row " INT64_FORMAT " of %s",
					   actor, used, what);
	aa_capture_event(a->def->action == AA_QUOTA_BLOCK ? "QUOTA BLOCK" : "QUOTA NO REASON",
					 rel, NULL, NULL,
					 quota_hit_detail(st, a, used, message, rel, NULL));
	st->rec->detail = MemoryContextStrdup(st->cxt,
										  psprintf("%s%sstopped by %s",
												   st->rec->detail ? st->rec->detail : "",
												   st->rec->detail ? "; " : "",
												   what));
	st->refused = true;
	if (a->def->action == AA_QUOTA_BLOCK)
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
 * Rows the statement's scans returned since the last settle that count
 * against a (covers NULL: every scan of the statement).
 */
static inline int64
quota_consumed(QuotaStmt *st, QuotaApplied *a)
{
	int64		n = 0;
	int			k;

	for (k = 0; k < st->nscans; k++)
		if (a->covers == NULL || a->covers[k])
			n += st->scans[k].counted - st->scans[k].settled;
	return n;
}

/*
 * Reserve rows of a counter for a statement: a 64th of what is left, at
 * least one and at most AA_QUOTA_CHUNK; none if the counter is at or past
 * max_rows.  The counter is pinned (quota_counter_pin), so atomic
 * operations alone change it.  Every backend charges and reserves with
 * atomic adds, and a reservation that races past the limit gives the
 * excess back at once: rows read plus rows reserved pass the limit only
 * by rows that are charged as read and refused (the crossing row), so the
 * limit holds exactly across backends.  used is the counter's value as
 * last seen.
 */
static int64
quota_reserve(QuotaCounter *c, int64 used, int64 max_rows)
{
	int64		left;
	int64		r;
	int64		after;

	if (used >= max_rows)
		return 0;
	left = max_rows - used;
	r = Min(left, Max(1, Min(AA_QUOTA_CHUNK, left / 64)));
	after = (int64) pg_atomic_add_fetch_u64(&c->used, (uint64) r);
	if (after > max_rows)
	{
		int64		excess = Min(r, after - max_rows);

		quota_counter_sub(c, (uint64) excess);
		r -= excess;
	}
	pg_atomic_fetch_add_u64(&quota_shared->changes, 1);
	return r;
}

/*
 * Act on the quotas a settle found crossed (hit_at): warnings and
 * justified reads first, then the first that stops the statement (which
 * throws).
 */
static void
quota_act(QuotaStmt *st)
{
	int			i;

	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		if (a->hit_at > 0 && (a->def->action == AA_QUOTA_WARN ||
							  (a->def->action == AA_QUOTA_REASON &&
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
 * The statement's budget is used up (or a parallel run ended): charge the
 * rows counted since the last settle to every applied quota, check the
 * limits and reserve more rows.  Every quota is charged before any is
 * acted on, so a statement stopped by one quota still counts against the
 * others.  Then set the budget (rows the statement may read before the
 * next settle) and act on the quotas crossed.
 */
static void
quota_settle(QuotaStmt *st)
{
	int			i;
	int			k;
	int64		budget = PG_INT64_MAX;
	bool		any_hit = false;

	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		int64		consumed = quota_consumed(st, a);

		a->stmt_used += consumed;
		if (a->def->per == AA_QUOTA_STATEMENT)
		{
			if (!a->done && a->stmt_used > a->def->max_rows)
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
		if (a->done)
		{
			a->unreported += consumed;
			continue;
		}
		if (consumed > 0 || a->reserved == 0)
		{
			QuotaCounter *c = a->e->counter;
			int64		used;

			/* charge, then reserve what is left up to a chunk */
			if (consumed > 0)
			{
				used = (int64) pg_atomic_add_fetch_u64(&c->used, (uint64) consumed);
				pg_atomic_fetch_add_u64(&quota_shared->changes, 1);
			}
			else
				used = (int64) pg_atomic_read_u64(&c->used);
			if (used <= a->def->max_rows)
				a->reserved = quota_reserve(c, used, a->def->max_rows);
			else if (consumed > 0)
				a->hit_at = used;
		}
	}
	st->pending = 0;
	for (k = 0; k < st->nscans; k++)
		st->scans[k].settled = st->scans[k].counted;

	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];

		if (a->hit_at > 0)
			any_hit = true;
		else if (!a->done)
			budget = Min(budget, a->def->per == AA_QUOTA_STATEMENT ?
						 a->def->max_rows - a->stmt_used : a->reserved);
	}
	st->budget = budget;
	if (any_hit)
		quota_act(st);
}

/*
 * A statement starts under per-statement quota a: start its count at what
 * its client statement (ts, lxid; see stmt_acc) has read against that
 * quota so far: the executors that ended, and those still running, such
 * as the query that calls this one's function.
 */
static void
quota_stmt_join(QuotaApplied *a, TimestampTz ts, LocalTransactionId lxid)
{
	QuotaStmt  *o;
	int			k;
	int64		base;

	for (k = 0; k < stmt_acc_n; k++)
		if (stmt_acc[k].quota_id == a->def->id)
			break;
	if (k == stmt_acc_n)
	{
		if (stmt_acc_n == AA_QUOTA_MAX_DEFS)
			return;
		stmt_acc[k].quota_id = a->def->id;
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

		if (o->client_ts != ts || o->client_lxid != lxid)
			continue;
		for (j = 0; j < o->napplied; j++)
		{
			QuotaApplied *b = &o->applied[j];

			if (b->def->id != a->def->id)
				continue;
			base += b->stmt_used - b->stmt_base + quota_consumed(o, b);
			a->done = a->done || b->warned;
		}
	}
	a->stmt_base = a->stmt_used = base;
}

/*
 * A spare chunk for the QuotaStmt of the outermost counted statement, kept
 * from one statement to the next (TopMemoryContext), so that a statement
 * under a quota allocates nothing; nested ones allocate theirs in their
 * executor's memory.  quota_stmt_end() hands it back.
 */
static char *spare_chunk = NULL;
static Size spare_size = 0;
static bool spare_busy = false;

/*
 * Reset callback of the statement's memory context (normal end, error,
 * abort, FATAL): charge the rows counted since the last settle, give back
 * unused reservations, add a per-statement quota's rows to its client
 * statement, and unwrap nothing (the plan goes away with the context).
 * The counters are pinned by the statement's set, so this takes no lock;
 * it never throws.
 */
static void
quota_stmt_end(void *arg)
{
	QuotaStmt  *st = (QuotaStmt *) arg;
	QuotaStmt **p;
	int			i;

	if (active == st)
		active = st->next;
	else
	{
		for (p = &active; *p != NULL; p = &(*p)->next)
		{
			if (*p == st)
			{
				*p = st->next;
				break;
			}
		}
	}
	if (last_scan != NULL && last_scan->st == st)
	{
		last_node = NULL;
		last_scan = NULL;
	}
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		int64		consumed = quota_consumed(st, a);
		int64		net;

		if (a->def->per == AA_QUOTA_STATEMENT)
		{
			a->stmt_used += consumed;
			if (a->stmt_acc >= 0 && st->client_ts == stmt_acc_ts &&
				st->client_lxid == stmt_acc_lxid)
			{
				stmt_acc[a->stmt_acc].used += a->stmt_used - a->stmt_base;
				if (a->warned)
					stmt_acc[a->stmt_acc].done = true;
			}
			continue;
		}
		/* rows read and not charged, less rows reserved and not read */
		net = a->unreported + consumed - a->reserved;
		if (net > 0)
			pg_atomic_fetch_add_u64(&a->e->counter->used, (uint64) net);
		else if (net < 0)
			quota_counter_sub(a->e->counter, (uint64) -net);
		if (net != 0)
			pg_atomic_fetch_add_u64(&quota_shared->changes, 1);
		a->unreported = a->reserved = 0;
	}
	quota_set_release(st->set);
	st->set = NULL;
	if ((char *) st == spare_chunk)
		spare_busy = false;
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
 * reading actor, wrap the scans of tagged relations (scans: their
 * PlanStates, as capture collected them, each with the Instrumentation
 * capture counts in) to count their rows.  Returns a handle for
 * aa_quota_run_end(), or NULL when no quota applies.
 *
 * Cost under a quota: the quotas of the actor come from the backend's
 * QuotaSet (checked, not worked out, per statement), the statement's
 * state is one allocation, and the hour and day counters are pinned, so
 * reserving rows here and giving back the rest at the end are a few
 * atomic operations without lock or hash lookup.
 */
void	   *
aa_quota_start(QueryDesc *queryDesc, AuditRecord *rec, List *scans)
{
	return quota_begin(queryDesc, rec, scans, false, NULL, 0, NULL);
}

/*
 * The quota generation now, to tell later whether quotas changed (0 when
 * quotas are not set up in this process).
 */
uint64
aa_quota_generation(void)
{
	return quota_shared != NULL ? pg_atomic_read_u64(&quota_shared->generation) : 0;
}

/*
 * The stamp of the backend's current quota set (0: none), which
 * aa_quota_set_stale() compares with: capture.c notes it when a statement
 * starts and after each restart.
 */
uint64
aa_quota_set_stamp(void)
{
	return cur_set != NULL ? cur_set->stamp : 0;
}

/*
 * Before a later run of a statement whose quota generation has not moved:
 * does the set of quotas it started under (stamp) still apply to actor at
 * this run's start?  Not if the set was made again since, or if what it
 * depends on besides the quotas changed: an exemption of the actor expired
 * or a window ended (valid_until), a role was granted or revoked, the
 * session user or the business time zone changed.  A cursor declared while
 * its reader was exempt read on unlimited after the exemption expired.  A
 * few compares; nothing when the database has no quota.
 */
bool
aa_quota_set_stale(uint64 stamp, const char *actor)
{
	if (quota_shared == NULL || loading || ndefs == 0 || actor == NULL ||
		IsParallelWorker() || quota_own_process())
		return false;
	if (cur_set == NULL || cur_set->stamp != stamp)
		return true;
	return !quota_set_holds(cur_set, actor, GetCurrentStatementStartTimestamp());
}

/*
 * A run of a statement after quotas changed since its ExecutorStart (a
 * cursor's FETCH, also its first, a PL/pgSQL loop's next batch, the run
 * that materializes a WITH HOLD cursor at commit, an Execute of a portal
 * bound before): from here on the statement counts under the quotas as they are
 * now, as a new statement would.  The rows it read before count as they
 * did; the old counting (handle, may be NULL) is settled and its scans
 * unwrapped.  A cursor opened before a quota was created, or before its
 * limit was lowered, is no way around it.  *handle becomes the new handle
 * (NULL if no quota applies now), also when a refusal is thrown here.
 */
void
aa_quota_restart(void **handle, QueryDesc *queryDesc, AuditRecord *rec,
				 List *scans)
{
	QuotaStmt  *old = (QuotaStmt *) *handle;
	QuotaCarry *carry = NULL;
	int			ncarry = 0;
	int			i;

	if (old != NULL)
	{
		/*
		 * Its per-statement quotas' counts go on where they were: a cursor's
		 * count is summed over its FETCHes, and a restart (which the reader
		 * can bring about by waiting for the end of an hour window) is no new
		 * statement.  The quotas are noted before retiring (their definitions
		 * may go with the old set), the counts after (retiring settles them).
		 */
		carry = palloc(sizeof(QuotaCarry) * Max(old->napplied, 1));
		for (i = 0; i < old->napplied; i++)
			if (old->applied[i].def->per == AA_QUOTA_STATEMENT)
			{
				carry[ncarry].quota_id = old->applied[i].def->id;
				carry[ncarry].index = i;
				ncarry++;
			}
		quota_stmt_retire(old);
		for (i = 0; i < ncarry; i++)
		{
			carry[i].used = old->applied[carry[i].index].stmt_used;
			carry[i].warned = old->applied[carry[i].index].warned;
		}
	}
	*handle = NULL;
	(void) quota_begin(queryDesc, rec, scans, true, carry, ncarry, handle);
}

/*
 * Reset callback of a retired statement's memory context: its counts were
 * settled when it retired; only the spare chunk it may occupy is handed
 * back here, since the callback itself lives in it.
 */
static void
quota_stmt_retired_end(void *arg)
{
	if ((char *) arg == spare_chunk)
		spare_busy = false;
}

/*
 * Settle a statement's counting now, between two runs, and unwrap its
 * scans (see aa_quota_restart).  The context reset callback stays
 * registered (it cannot be taken out of the list) but does nothing more.
 */
static void
quota_stmt_retire(QuotaStmt *st)
{
	bool		spare = (char *) st == spare_chunk;
	int			i;

	quota_stmt_end(st);
	if (spare)
		spare_busy = true;		/* still the callback's memory */
	for (i = 0; i < st->nscans; i++)
	{
		QuotaScan  *qs = &st->scans[i];

		Assert(qs->node->ExecProcNodeReal == quota_exec);
		qs->node->ExecProcNodeReal = qs->real;
	}
	st->cb.func = quota_stmt_retired_end;
}

/*
 * aa_quota_start and aa_quota_restart: count the statement's scans under
 * the quotas that apply to its actor now.  late: the statement started
 * before (aa_quota_restart), so its record has the session's reason
 * already and what the scans' instrumentation shows so far is not charged.
 * Its plan is run serially from here on in either case: a late start may
 * come before the first run (a cursor declared, or a protocol-level portal
 * bound, before the quota existed), and a run without a row limit may
 * still launch workers.  carry: the per-statement quotas' counts of the
 * statement before its restart, which its new counts start at.  out (if
 * not NULL) is set to the handle before a refusal can be thrown here, so
 * that the caller's error handling sees the statement was refused.
 */
static void *
quota_begin(QueryDesc *queryDesc, AuditRecord *rec, List *scans, bool late,
			const QuotaCarry *carry, int ncarry, void **out)
{
	MemoryContext cxt;
	QuotaSet   *set;
	QuotaStmt  *st;
	char	   *mem;
	Size		size;
	const char *actor = rec->actor;
	ListCell   *lc;
	int			i;
	int			k;
	int			nscans = list_length(scans);
	List	   *rtable = queryDesc->plannedstmt->rtable;
	bool		parallel;
	TimestampTz now;
	int64		budget = PG_INT64_MAX;
	bool		any_hit = false;

	cxt = queryDesc->estate->es_query_cxt;
	if (!late && aa_reason != NULL && aa_reason[0] != '\0')
		aa_quota_annotate(rec, cxt);
	if (quota_shared == NULL || loading || nscans == 0 || actor == NULL ||
		IsParallelWorker() || quota_own_process())
		return NULL;
	quota_load();
	if (ndefs == 0)
		return NULL;

	now = GetCurrentStatementStartTimestamp();
	set = cur_set;
	if (unlikely(!quota_set_holds(set, actor, now)))
		set = quota_set_make(actor, now);
	if (set->exempt_detail != NULL && !late)
		rec->detail = MemoryContextStrdup(cxt,
										  psprintf("%s%s%s",
												   rec->detail ? rec->detail : "",
												   rec->detail ? "; " : "",
												   set->exempt_detail));
	if (set->n == 0)
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
	parallel = queryDesc->plannedstmt->parallelModeNeeded;
	if (parallel)
	{
		PlannedStmt *serial;

		serial = MemoryContextAlloc(GetMemoryChunkContext(queryDesc),
									sizeof(PlannedStmt));
		memcpy(serial, queryDesc->plannedstmt, sizeof(PlannedStmt));
		serial->parallelModeNeeded = false;
		queryDesc->plannedstmt = serial;
	}

	/* the statement, its quotas, its scans and what covers what: one chunk */
	size = MAXALIGN(sizeof(QuotaStmt)) +
		MAXALIGN(sizeof(QuotaApplied) * set->n) +
		MAXALIGN(sizeof(QuotaScan) * nscans) +
		MAXALIGN(sizeof(bool) * set->n * nscans);
	if (!spare_busy && !late)
	{
		if (spare_size < size)
		{
			char	   *chunk = MemoryContextAlloc(TopMemoryContext, size);

			if (spare_chunk != NULL)
				pfree(spare_chunk);
			spare_chunk = chunk;
			spare_size = size;
		}
		mem = spare_chunk;
	}
	else
		mem = MemoryContextAlloc(cxt, size);
	st = (QuotaStmt *) mem;
	mem += MAXALIGN(sizeof(QuotaStmt));
	st->applied = (QuotaApplied *) mem;
	mem += MAXALIGN(sizeof(QuotaApplied) * set->n);
	st->scans = (QuotaScan *) mem;
	mem += MAXALIGN(sizeof(QuotaScan) * nscans);
	st->cxt = cxt;
	st->rec = rec;
	st->set = set;
	st->napplied = set->n;
	st->nscans = nscans;
	st->pending = 0;
	st->parallel = parallel;
	st->at_run_end = false;
	st->client_ts = 0;
	st->client_lxid = InvalidLocalTransactionId;

	i = 0;
	foreach(lc, scans)
	{
		PlanState  *ps = lfirst(lc);
		QuotaScan  *qs = &st->scans[i++];
		Index		scanrelid = ((Scan *) ps->plan)->scanrelid;

		qs->node = ps;
		qs->real = ps->ExecProcNodeReal;
		qs->instr = ps->instrument;
		qs->counted = qs->settled =
			late ? (int64) (qs->instr->ntuples + qs->instr->tuplecount) : 0;
		qs->relid = scanrelid > 0 ? rt_fetch(scanrelid, rtable)->relid : InvalidOid;
		qs->st = st;
	}

	if (set->nstmt > 0)
	{
		/* per-statement quotas count for the client statement */
		st->client_ts = now;
		st->client_lxid = AA_MY_LXID;
		if (st->client_ts != stmt_acc_ts || st->client_lxid != stmt_acc_lxid)
		{
			stmt_acc_ts = st->client_ts;
			stmt_acc_lxid = st->client_lxid;
			stmt_acc_n = 0;
		}
	}

	/*
	 * Each quota: what it covers, where its count starts, and the first
	 * settle (nothing is counted yet): reserve rows of each hour and day
	 * counter, and set the budget.  Nothing here throws once rows are
	 * reserved, until quota_stmt_end() is in place to give them back.
	 */
	memcpy(st->applied, set->applied, sizeof(QuotaApplied) * set->n);
	for (i = 0; i < st->napplied; i++)
	{
		QuotaApplied *a = &st->applied[i];
		const QuotaDef *d = a->def;

		if (OidIsValid(d->relid))
		{
			a->covers = (bool *) mem;
			mem += nscans;
			for (k = 0; k < nscans; k++)
				a->covers[k] = quota_covers(d->relid, st->scans[k].relid);
		}
		if (d->per == AA_QUOTA_STATEMENT)
		{
			quota_stmt_join(a, st->client_ts, st->client_lxid);
			for (k = 0; k < ncarry; k++)
				if (carry[k].quota_id == d->id)
				{
					/* the statement's own rows before its restart */
					a->stmt_base += carry[k].used;
					a->stmt_used += carry[k].used;
					if (carry[k].warned)
						a->done = a->warned = true;
				}
			if (a->done)
				continue;
			if (a->stmt_used > d->max_rows)
			{
				/* its client statement has already passed it */
				a->hit_at = a->stmt_used;
				any_hit = true;
			}
			else
				budget = Min(budget, d->max_rows - a->stmt_used);
			continue;
		}
		a->reserved = quota_reserve(a->e->counter,
									(int64) pg_atomic_read_u64(&a->e->counter->used),
									d->max_rows);
		budget = Min(budget, a->reserved);
	}
	st->budget = budget;

	/* from here on quota_stmt_end() cleans up, whatever happens */
	set->refs++;
	if ((char *) st == spare_chunk)
		spare_busy = true;
	st->next = active;
	active = st;
	st->cb.func = quota_stmt_end;
	st->cb.arg = st;
	MemoryContextRegisterResetCallback(cxt, &st->cb);
	if (out != NULL)
		*out = st;				/* also if the refusal below throws */
	if (any_hit)
		quota_act(st);

	for (i = 0; i < st->nscans; i++)
		st->scans[i].node->ExecProcNodeReal = quota_exec;
	last_node = st->scans[0].node;
	last_scan = &st->scans[0];
	return st;
}

/*
 * Note as pending the rows the scans' instrumentation of st shows beyond
 * what quota_exec() counted; true if there were any.
 */
static bool
quota_note_instr_rows(QuotaStmt *st)
{
	int			i;
	bool		more = false;

	for (i = 0; i < st->nscans; i++)
	{
		QuotaScan  *qs = &st->scans[i];
		int64		total = (int64) (qs->instr->ntuples + qs->instr->tuplecount);

		if (total > qs->counted)
		{
			st->pending += total - qs->counted;
			qs->counted = total;
			more = true;
		}
	}
	return more;
}

/*
 * After each ExecutorRun of a counted statement: rows that parallel
 * workers read reach the leader's instrumentation only, so charge what the
 * scans' instrumentation shows beyond what quota_exec() counted.  A safety
 * net: a plan that was parallel runs in the leader alone under a quota
 * (aa_quota_start), so there are none.  In a plan that was not parallel
 * quota_exec() sees every row the instrumentation counts.
 */
void
aa_quota_run_end(void *handle)
{
	QuotaStmt  *st = (QuotaStmt *) handle;

	/* only workers' rows can be missing, and only a parallel plan has any */
	if (!st->parallel)
		return;
	if (quota_note_instr_rows(st))
	{
		st->at_run_end = true;
		quota_settle(st);
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
	(void) quota_note_instr_rows((QuotaStmt *) handle);
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
 * The actor a record of this session names (records.c decides it): the
 * application actor if the session named it and may, else the login role.
 */
static const char *
quota_actor(void)
{
	if (aa_record_actor_trusted())
		return aa_actor;
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
