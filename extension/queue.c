/*-------------------------------------------------------------------------
 *
 * queue.c
 *		The crash-safe queue between capturing backends and the writers.
 *
 * This file owns the ring of serialised audit records, the file that backs
 * it, its replay after a crash, and the table of databases with their
 * writer and counters; also the stats file that keeps those counters across
 * restarts and registers tags in databases without the extension (see
 * "Durable counters and the registry of tags elsewhere").
 *
 * The ring lives in a memory-mapped file, $PGDATA/pg_access_audit/queue,
 * mapped by the postmaster before it forks anything, so every process
 * shares it and its contents outlive a backend killed with SIGKILL, the
 * crash-restart that follows and an immediate shutdown (the page cache
 * keeps them).  The file starts with a RingFileHeader page; ring positions
 * are byte counts that only grow, and pos % capacity is the offset.
 *
 * Locking and ownership:
 *	- AuditQueueShared.mutex (spinlock) protects ring head and tail.  A
 *	  producer reserves space and writes the record's header (magic,
 *	  length, position, database, state RESERVED) while holding it, so a
 *	  reserved slot always has a readable header, even if its producer dies
 *	  before filling it.  The body is copied and checksummed afterwards
 *	  without any lock; the producer then publishes it by setting state
 *	  READY after a write barrier.
 *	- A record is finished once the transaction that stored it has
 *	  committed: its database's committed_upto (in shared memory, set by
 *	  its writer after commit) is past it, or it is marked DONE (pads, and
 *	  records of a dropped database).  The tail advances over finished
 *	  records, which is the only way ring space is freed.  Writers do not
 *	  store DONE into every record they wrote: those stores dirtied a ring
 *	  line per record behind the producers (cache misses, and page faults
 *	  on file pages that writeback had cleaned).  After a crash the file's
 *	  tail may still have committed records after it; they are replayed
 *	  and the writer skips them by its committed position
 *	  (access_audit.writer_state), as before.
 *	- AuditQueueShared.lock (LWLock) protects the database table: dboid,
 *	  writer_pid, writer_latch, writer_wanted, committed_upto, last_flush.
 *	  The counters are atomics and need no lock.  A writer that gives way to
 *	  a database waiting for a writer frees its slot (aa_queue_writer_yield);
 *	  it clears dboid holding the mutex as well, so a producer checks its
 *	  slot while reserving.  When the table is full, the launcher takes
 *	  back the slot of a database with no writer and nothing to write
 *	  (slot_reclaim_idle) the same way.  Records of a database without a
 *	  slot hold the tail until the launcher adopts them
 *	  (aa_queue_writers_wanted).
 *	- Locks never live in the mapped file: after a crash the file is
 *	  trusted only for head, tail and checksummed records.
 *	- The header page also holds each database's last committed chain head
 *	  (RingChainHead): written only by that database's writer, an entry
 *	  taken under the LWLock.
 *	- Intent slots (see "Intents" below) may hold records sealed by a
 *	  backend that stopped waiting for ring space; appending to and moving
 *	  out of a sealed slot happen under the LWLock.
 *
 * IDENTIFICATION
 *	  extension/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "port/atomics.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "chain.h"
#include "compat.h"
#include "queue.h"

#define AA_QUEUE_DIR		"pg_access_audit"
#define AA_QUEUE_FILE		"pg_access_audit/queue"
#define AA_RING_MAGIC		0x41415131	/* "AAQ1" */
#define AA_RECORD_MAGIC		0x41415231	/* "AAR1" */
#define AA_RING_VERSION		3
#define AA_RING_HEADER_SIZE 4096
#define AA_RECORD_ALIGN		32

/*
 * Intents: one slot per backend in a second mapped file, holding the record
 * of the long statement it is running (see aa_queue_intent_open).
 */
#define AA_INTENT_FILE		"pg_access_audit/intents"
#define AA_INTENT_MAGIC		0x41414931	/* "AAI1" */
#define AA_INTENT_VERSION	1
#define AA_INTENT_SLOT_SIZE 8192
#define AA_INTENT_FREE		0
#define AA_INTENT_ACTIVE	1
#define AA_INTENT_SEALED	2	/* a finished record waiting for its writer */

/*
 * Bounds of the fields of a record that a user controls and no catalog
 * limits (a role's access_audit.actor, the client's application_name, a
 * record's detail, which may quote user input), so that every record fits
 * an intent slot and a quarter of the ring, and every value fits the
 * log's indexes (actor_daily's btree key holds the actor).  Longer values
 * are cut (see bound_str); the query text has its own setting,
 * access_audit.max_query_length, and is cut further when the record would
 * not fit (record_shrink).
 */
#define AA_MAX_ACTOR_LEN	512
#define AA_MAX_APPNAME_LEN	(NAMEDATALEN - 1)
#define AA_MAX_ORIGIN_LEN	256
#define AA_MAX_DETAIL_LEN	2048
/* room for the marker bound_str appends */
#define AA_BOUND_MARKER_LEN 80

typedef struct IntentFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		nslots;
	uint32		slot_size;
	uint64		file_ino;		/* a copied file (base backup) is not replayed */
} IntentFileHeader;

typedef struct IntentSlot
{
	volatile uint32 state;		/* AA_INTENT_* */
	uint32		len;			/* body bytes */
	Oid			dboid;
	pg_crc32c	crc;			/* of the body */
	volatile int64 rows;		/* so far, updated after each run */
	volatile int64 tagged_rows;
	/* the record's body (ring serialisation) follows */
} IntentSlot;

#define INTENT_BODY_MAX (AA_INTENT_SLOT_SIZE - sizeof(IntentSlot))

/* An entry of a slot that holds sealed records (see intent_seal). */
typedef struct SealedEntry
{
	uint32		len;			/* body bytes */
	pg_crc32c	crc;			/* of the body */
} SealedEntry;

/* a sealed slot's entries before this offset are in the ring already */
#define sealed_from(sl)		((sl)->rows)

/* this backend stopped waiting: seal until a record goes into the ring */
static bool push_interrupted = false;

/* record states */
#define AA_STATE_RESERVED	1
#define AA_STATE_READY		2
#define AA_STATE_DONE		3

/* a filler that takes the ring's tail end when a record would not fit */
#define AA_KIND_PAD			99

/*
 * Queue formats.  A build reads the ring files of every earlier format:
 * format 1 differs from 2 only in the file header (no file_ino), and 2 from
 * 3 in the body of READ records (no origin_ring_id, origin_seq and origin).
 * Records left pending by an earlier build are converted in place at start
 * (ring_convert): each keeps its position, so the writer's committed
 * position still tells which of them are written, and READ records are
 * marked with the ring-internal kind AA_KIND_READ_V2, whose body is decoded
 * in the old layout.  A later format change adds its own old-body kind here
 * and a step to ring_convert.
 */
#define AA_RING_OLDEST_VERSION 1
#define AA_KIND_READ_V2		101

/* Header of the mapped file; head and tail change under the mutex. */
typedef struct RingFileHeader
{
	uint32		magic;
	uint32		version;
	uint64		capacity;
	uint64		ring_id;
	uint64		head;
	uint64		tail;
	uint64		lost_unattributed;
	uint64		file_ino;		/* inode of the file that holds this ring */
} RingFileHeader;

/*
 * The chain head each database's writer last committed (seq and hash of its
 * last record), kept in the ring file's header page, outside the database:
 * a writer that reloads its head from the log checks it against this, so
 * records removed from the log's end (by anyone, the writer's own process
 * included) cannot be papered over by a chain that simply continues from
 * what is left (see aa_queue_chain_head_get).  extoid ties an entry to one
 * installation of the extension: after DROP and CREATE EXTENSION a new
 * chain starts.  Each entry is written only by its database's writer;
 * taking a free entry is done under aa_shared->lock.  crc covers the rest,
 * so an entry torn by a crash is ignored rather than misread.
 */
typedef struct RingChainHead
{
	Oid			dboid;			/* InvalidOid: free */
	Oid			extoid;
	int64		seq;
	uint8		hash[AA_HASH_LEN];
	pg_crc32c	crc;
	uint32		unused;
} RingChainHead;

#define AA_RING_HEADS_OFFSET 512
#define AA_RING_HEADS		64

StaticAssertDecl(sizeof(RingFileHeader) <= AA_RING_HEADS_OFFSET,
				 "ring file header overlaps the chain heads");
StaticAssertDecl(AA_RING_HEADS_OFFSET + AA_RING_HEADS * sizeof(RingChainHead) <= AA_RING_HEADER_SIZE,
				 "chain heads must fit the ring file's header page");

/* Header of every record in the ring; its size is AA_RECORD_ALIGN. */
typedef struct RingRecordHeader
{
	uint32		magic;
	uint32		len;
	uint64		pos;
	Oid			dboid;
	uint32		kind;
	pg_crc32c	crc;
	volatile uint32 state;
} RingRecordHeader;

StaticAssertDecl(sizeof(RingRecordHeader) == AA_RECORD_ALIGN,
				 "record header must be one alignment unit");

/* Fixed part of a record's body; strings follow. */
typedef struct RingBodyFixed
{
	int64		ts;
	int64		duration_us;
	int64		query_id;
	int64		rows;
	int64		tagged_rows;
	int32		backend_pid;
	int32		nesting_level;
	int32		outcome;
	int32		n_relations;
	int32		n_columns;
	int32		n_predicate;
	int32		n_tags;
	int32		row_set;		/* 0 in formats before row identities */
	int64		origin_ring_id;
	int64		origin_seq;
} RingBodyFixed;

/* Fixed part of a ROWS record's body; the relation and the data follow. */
typedef struct RingRowsFixed
{
	int64		link;
	int64		lo;
	int64		hi;
	int32		chunk;
	int32		n;
	int32		len;
	int32		unused;
} RingRowsFixed;

/* Fixed part of a READ record's body in queue formats 1 and 2. */
typedef struct RingBodyFixedV2
{
	int64		ts;
	int64		duration_us;
	int64		query_id;
	int64		rows;
	int64		tagged_rows;
	int32		backend_pid;
	int32		nesting_level;
	int32		outcome;
	int32		n_relations;
	int32		n_columns;
	int32		n_predicate;
	int32		n_tags;
	int32		unused;
} RingBodyFixedV2;

typedef struct AuditDbSlot
{
	Oid			dboid;			/* InvalidOid: free */
	int			writer_pid;
	Latch	   *writer_latch;
	bool		writer_wanted;
	uint32		failures;		/* writers that failed since one wrote */
	TimestampTz stopped_at;		/* when the last failed writer stopped */
	uint64		committed_upto;
	TimestampTz last_flush;
	pg_atomic_uint64 queued;
	pg_atomic_uint64 written;
	pg_atomic_uint64 waits;
	pg_atomic_uint64 gaps;
} AuditDbSlot;

/*
 * Counters of a database that has no slot now: its writer gave way (or the
 * database never had one), so they are kept here until it has a slot again
 * (slot_find() takes them back), and access_audit.stats still shows them.
 * Under aa_shared->lock.
 */
typedef struct AuditDbCounters
{
	Oid			dboid;			/* InvalidOid: free */
	uint64		queued;
	uint64		written;
	uint64		waits;
	uint64		gaps;
	TimestampTz last_flush;
} AuditDbCounters;

typedef struct AuditQueueShared
{
	slock_t		mutex;
	LWLock	   *lock;
	Latch	   *launcher_latch;
	/* 1: the ring may hold records of a database without a slot */
	pg_atomic_uint32 unslotted;
	/* 1: the launcher has a database it cannot serve; a writer should yield */
	pg_atomic_uint32 starved;
	/* 1: an intent slot may hold a sealed record (set, never cleared) */
	pg_atomic_uint32 sealed;
	/* transactions that created the extension, per database (under lock) */
	Oid			creating_db[AA_MAX_DATABASES];
	TransactionId creating_xid[AA_MAX_DATABASES];
	uint32		creating_next;
	AuditDbSlot dbs[AA_MAX_DATABASES];
	AuditDbCounters retired[AA_MAX_DATABASES];
	uint32		retired_next;	/* the next entry to reuse when all are taken */
} AuditQueueShared;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static AuditQueueShared *aa_shared = NULL;

/* The mapping is made once by the postmaster and inherited. */
static RingFileHeader *ring_hdr = NULL;
static char *ring_data = NULL;
static uint64 ring_cap = 0;

/* the stats file, mapped by the postmaster (see "Durable counters") */
static struct StatsFileHeader *stats_hdr = NULL;

/* the intents file, mapped by the postmaster */
static IntentFileHeader *intent_hdr = NULL;

/* this backend's slot for MyDatabaseId */
static int	my_slot = -1;
static Oid	my_slot_db = InvalidOid;
static bool slot_full_warned = false;	/* my_db_slot() warned */

static void aa_shmem_request(void);
static void aa_shmem_startup(void);
static void ring_map_file(void);
static void ring_convert(uint32 version);
static void ring_recover(void);
static void stats_map_file(void);
static void stats_rebase(void);
static void stats_save_all(int code, Datum arg);
static void intent_map_and_recover(void);
static int	slot_find(Oid dboid, bool create);
static int	ring_mark_done(Oid dboid, uint64 upto);
static bool intent_seal(const AuditRecord *rec);
static bool intent_sealed_pending(Oid dboid);
static bool sealed_next(IntentSlot *sl, Size slot_body_max, int64 *off,
						AuditQueueItem *item);

/*
 * Install the shared-memory hooks.  Called from _PG_init.
 */
void
aa_queue_init(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = aa_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = aa_shmem_startup;
}

/*
 * shmem_request hook: ask for the control struct and one LWLock.  The ring
 * itself is not in the main shared memory segment; see ring_map_file().
 */
static void
aa_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AuditQueueShared)));
	RequestNamedLWLockTranche(AA_NAME, 1);
}

/*
 * shmem_startup hook: create or attach the control struct, map the ring
 * file (postmaster only, once) and replay it.  This runs again after every
 * crash-restart, with no other process alive, which is what makes the
 * replay safe without locks.
 */
static void
aa_shmem_startup(void)
{
	bool		found;
	int			i;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	aa_shared = ShmemInitStruct(AA_NAME, sizeof(AuditQueueShared), &found);
	if (!found)
	{
		memset(aa_shared, 0, sizeof(AuditQueueShared));
		SpinLockInit(&aa_shared->mutex);
		aa_shared->lock = &(GetNamedLWLockTranche(AA_NAME))->lock;
		/* records recovered from the ring file have no slot yet */
		pg_atomic_init_u32(&aa_shared->unslotted, 1);
		pg_atomic_init_u32(&aa_shared->starved, 0);
		pg_atomic_init_u32(&aa_shared->sealed, 0);
		for (i = 0; i < AA_MAX_DATABASES; i++)
		{
			pg_atomic_init_u64(&aa_shared->dbs[i].queued, 0);
			pg_atomic_init_u64(&aa_shared->dbs[i].written, 0);
			pg_atomic_init_u64(&aa_shared->dbs[i].waits, 0);
			pg_atomic_init_u64(&aa_shared->dbs[i].gaps, 0);
		}
	}
	LWLockRelease(AddinShmemInitLock);

	if (!IsUnderPostmaster)
	{
		if (ring_hdr == NULL)
			ring_map_file();
		if (stats_hdr == NULL)
			stats_map_file();
		stats_rebase();
		ring_recover();
		intent_map_and_recover();
		on_shmem_exit(stats_save_all, (Datum) 0);
	}
}

/*
 * Is the queue usable in this process?
 */
bool
aa_queue_ready(void)
{
	return aa_shared != NULL && ring_hdr != NULL;
}

static inline RingRecordHeader *
ring_at(uint64 pos)
{
	return (RingRecordHeader *) (ring_data + (pos % ring_cap));
}

/*
 * Is hdr a sane header for position pos?  Scans that run without the
 * mutex (the writer skipping other databases' records, the launcher,
 * stats) can meet a slot the tail has just passed and a producer is
 * reusing; such a scan must stop rather than follow a garbage length.
 */
static inline bool
header_at(RingRecordHeader *hdr, uint64 pos)
{
	uint32		len = hdr->len;

	pg_read_barrier();
	return hdr->magic == AA_RECORD_MAGIC && hdr->pos == pos &&
		len >= sizeof(RingRecordHeader) && len % AA_RECORD_ALIGN == 0 &&
		(pos % ring_cap) + len <= ring_cap;
}

/*
 * Empty the file open at fd and give it size bytes (zeros).  FATAL on
 * failure: the callers run in the postmaster at start-up.
 */
static void
file_reset(int fd, Size size, const char *name)
{
	if (ftruncate(fd, 0) < 0 || ftruncate(fd, (off_t) size) < 0)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not resize file \"%s\": %m", name));
}

/*
 * Map the first size bytes of the file open at fd, shared, and close fd
 * (the mapping stays).  FATAL on failure, as file_reset.
 */
static void *
file_map(int fd, Size size, const char *name)
{
	void	   *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	if (p == MAP_FAILED)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not map file \"%s\": %m", name));
	CloseTransientFile(fd);
	return p;
}

/*
 * Create or open the ring file and map it.  Runs in the postmaster; any
 * failure is FATAL there, since an audit tool must not run without its
 * queue.  A file of another size that still holds records is kept at its
 * old size until it has drained, so a changed setting never loses records.
 */
static void
ring_map_file(void)
{
	uint64		want_cap = (uint64) aa_queue_size_mb * 1024 * 1024;
	uint64		file_size;
	int			fd;
	struct stat st;
	void	   *p;
	RingFileHeader old;
	bool		reuse = false;
	RingChainHead heads[AA_RING_HEADS];
	bool		keep_heads = false;

	if (MakePGDirectory(AA_QUEUE_DIR) < 0 && errno != EEXIST)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not create directory \"%s\": %m", AA_QUEUE_DIR));

	fd = OpenTransientFile(AA_QUEUE_FILE, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", AA_QUEUE_FILE));
	if (fstat(fd, &st) < 0)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not stat file \"%s\": %m", AA_QUEUE_FILE));

	memset(&old, 0, sizeof(old));
	if (st.st_size >= AA_RING_HEADER_SIZE &&
		pread(fd, &old, sizeof(old), 0) == sizeof(old) &&
		old.magic == AA_RING_MAGIC &&
		old.version >= AA_RING_OLDEST_VERSION &&
		old.version <= AA_RING_VERSION &&
		old.capacity > 0 && old.capacity % AA_RECORD_ALIGN == 0 &&
		(uint64) st.st_size == AA_RING_HEADER_SIZE + old.capacity &&
		old.tail <= old.head && old.head - old.tail <= old.capacity &&
		(old.file_ino == (uint64) st.st_ino ||
		 (old.version == 1 && old.file_ino == 0)))
	{
		if (old.capacity == want_cap || old.head != old.tail)
		{
			reuse = true;
			if (old.capacity != want_cap)
				ereport(WARNING,
						errmsg("access_audit queue keeps its size of %llu MB until its pending records are written",
							   (unsigned long long) (old.capacity / (1024 * 1024))),
						errdetail("access_audit.queue_size asks for %d MB.",
								  aa_queue_size_mb));
			want_cap = old.capacity;
		}
	}

	/*
	 * A ring whose recorded inode is not its file's was copied from another
	 * server (pg_basebackup, a file-level copy): its records belong to that
	 * server, which writes them itself.  Writing them here too would
	 * duplicate them after a promotion, so start empty.
	 */
	if (!reuse && old.magic == AA_RING_MAGIC && old.file_ino != 0 &&
		old.file_ino != (uint64) st.st_ino && old.head != old.tail)
		ereport(LOG,
				errmsg("access_audit queue file was copied from another server; its %llu bytes of pending records are left to that server",
					   (unsigned long long) (old.head - old.tail)));

	/*
	 * Pending records of a format this build cannot read (a later one, after
	 * a downgrade) are never thrown away: refuse to start instead.
	 */
	if (!reuse && old.magic == AA_RING_MAGIC &&
		(old.version < AA_RING_OLDEST_VERSION ||
		 old.version > AA_RING_VERSION) &&
		old.file_ino == (uint64) st.st_ino &&
		old.head != old.tail && old.tail <= old.head)
		ereport(FATAL,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit queue file \"%s\" holds %llu bytes of pending audit records in queue format %u, which this build cannot read",
					   AA_QUEUE_FILE, (unsigned long long) (old.head - old.tail),
					   old.version),
				errdetail("This build reads queue formats %d to %d.",
						  AA_RING_OLDEST_VERSION, AA_RING_VERSION),
				errhint("Start the access_audit build that wrote them and shut the server down cleanly, so that they are written to the log; or move the file away to discard them."));

	/*
	 * The chain heads outlive a ring that is made anew (a changed size, an
	 * empty ring): they are what the log must at least contain.  Not those of
	 * a file copied from another server: its logs are not ours.
	 */
	if (!reuse && old.magic == AA_RING_MAGIC && old.version == AA_RING_VERSION &&
		old.file_ino == (uint64) st.st_ino &&
		pread(fd, heads, sizeof(heads), AA_RING_HEADS_OFFSET) == sizeof(heads))
		keep_heads = true;

	file_size = AA_RING_HEADER_SIZE + want_cap;
	if (!reuse)
		file_reset(fd, file_size, AA_QUEUE_FILE);
	if (posix_fallocate(fd, 0, (off_t) file_size) != 0)
		ereport(FATAL,
				errcode(ERRCODE_DISK_FULL),
				errmsg("could not allocate %llu bytes for file \"%s\"",
					   (unsigned long long) file_size, AA_QUEUE_FILE),
				errhint("Free disk space or lower access_audit.queue_size."));

	p = file_map(fd, file_size, AA_QUEUE_FILE);

	ring_hdr = (RingFileHeader *) p;
	ring_data = (char *) p + AA_RING_HEADER_SIZE;
	ring_cap = want_cap;

	if (reuse && ring_hdr->version != AA_RING_VERSION)
	{
		ring_convert(ring_hdr->version);
		ring_hdr->file_ino = (uint64) st.st_ino;
	}

	if (!reuse)
	{
		memset(ring_hdr, 0, sizeof(RingFileHeader));
		ring_hdr->magic = AA_RING_MAGIC;
		ring_hdr->version = AA_RING_VERSION;
		ring_hdr->capacity = want_cap;
		/* distinguishes this ring's positions from any earlier file's */
		ring_hdr->ring_id = ((uint64) time(NULL) << 20) ^ (uint64) getpid();
		ring_hdr->ring_id &= INT64CONST(0x7FFFFFFFFFFFFFFF);
		ring_hdr->head = 0;
		ring_hdr->tail = 0;
		ring_hdr->file_ino = (uint64) st.st_ino;
		if (keep_heads)
			memcpy((char *) p + AA_RING_HEADS_OFFSET, heads, sizeof(heads));
	}
}

/*
 * Convert, in place, the ring of an earlier queue format (see
 * AA_RING_OLDEST_VERSION): pending READ records keep their bytes and their
 * position and are marked as having the old body.  Bodies are not
 * checksummed with their kind, so the checksums stay valid.  A damaged
 * header stops the walk; ring_recover() then cuts the ring there.
 */
static void
ring_convert(uint32 version)
{
	uint64		pos = ring_hdr->tail;
	uint64		converted = 0;

	while (pos < ring_hdr->head)
	{
		RingRecordHeader *hdr = ring_at(pos);

		if (hdr->magic != AA_RECORD_MAGIC || hdr->pos != pos ||
			hdr->len < sizeof(RingRecordHeader) ||
			hdr->len % AA_RECORD_ALIGN != 0 ||
			(pos % ring_cap) + hdr->len > ring_cap ||
			pos + hdr->len > ring_hdr->head)
			break;
		if (version <= 2 && hdr->kind == AA_KIND_READ &&
			hdr->state != AA_STATE_DONE)
		{
			hdr->kind = AA_KIND_READ_V2;
			converted++;
		}
		pos += hdr->len;
	}
	ring_hdr->version = AA_RING_VERSION;
	ereport(LOG,
			errmsg("access_audit queue converted from format %u to %d: %llu pending records kept",
				   version, AA_RING_VERSION, (unsigned long long) converted));
}

/*
 * Entry i of the chain heads in the ring file's header page.
 */
static inline RingChainHead *
chain_head_at(int i)
{
	return (RingChainHead *) ((char *) ring_hdr + AA_RING_HEADS_OFFSET) + i;
}

/*
 * Checksum of a chain head entry, over every field before crc.
 */
static pg_crc32c
chain_head_crc(const RingChainHead *h)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, h, offsetof(RingChainHead, crc));
	FIN_CRC32C(crc);
	return crc;
}

/*
 * The chain head that the writer of dboid last committed for the
 * installation extoid of the extension: true and *seq, hash set if there is
 * a valid one.  Only a writer of dboid calls this (no lock: it alone
 * writes the entry).
 */
bool
aa_queue_chain_head_get(Oid dboid, Oid extoid, int64 *seq, uint8 *hash)
{
	int			i;

	for (i = 0; i < AA_RING_HEADS; i++)
	{
		RingChainHead h = *chain_head_at(i);

		if (h.dboid != dboid)
			continue;
		if (h.extoid != extoid || h.crc != chain_head_crc(&h))
			return false;
		*seq = h.seq;
		memcpy(hash, h.hash, AA_HASH_LEN);
		return true;
	}
	return false;
}

/*
 * The writer of dboid has committed its records up to seq, whose hash is
 * hash: store that as the database's chain head.  Takes a free entry the
 * first time; when all are taken, the entry of a database without a
 * writer slot is reused (that database's next writer trusts its log's own
 * head: see docs/writer.md).
 */
void
aa_queue_chain_head_set(Oid dboid, Oid extoid, int64 seq, const uint8 *hash)
{
	int			i;
	int			pick = -1;
	RingChainHead h;

	for (i = 0; i < AA_RING_HEADS; i++)
		if (chain_head_at(i)->dboid == dboid)
		{
			pick = i;
			break;
		}
	if (pick < 0)
	{
		LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
		for (i = 0; i < AA_RING_HEADS && pick < 0; i++)
			if (chain_head_at(i)->dboid == InvalidOid)
				pick = i;
		for (i = 0; i < AA_RING_HEADS && pick < 0; i++)
			if (slot_find(chain_head_at(i)->dboid, false) < 0)
				pick = i;
		if (pick >= 0)
			chain_head_at(pick)->dboid = dboid;
		LWLockRelease(aa_shared->lock);
		if (pick < 0)
			return;
	}
	memset(&h, 0, sizeof(h));
	h.dboid = dboid;
	h.extoid = extoid;
	h.seq = seq;
	memcpy(h.hash, hash, AA_HASH_LEN);
	h.crc = chain_head_crc(&h);
	*chain_head_at(pick) = h;
}

/*
 * Checksum of a record body (in the ring, or in an intent slot).
 */
static pg_crc32c
body_crc(const char *body, Size len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, body, len);
	FIN_CRC32C(crc);
	return crc;
}

/*
 * Checksum of a record's body (everything after its header).
 */
static pg_crc32c
record_crc(RingRecordHeader *hdr)
{
	return body_crc((char *) hdr + sizeof(RingRecordHeader),
					hdr->len - sizeof(RingRecordHeader));
}

/*
 * The kept counters of dboid, or (create) a free entry for them; the oldest
 * taken entry is reused when none is free (its counters are lost).  Caller
 * holds aa_shared->lock (exclusively to create), or is the postmaster at
 * start-up.
 */
static AuditDbCounters *
retired_find(Oid dboid, bool create)
{
	int			i;
	AuditDbCounters *c;

	Assert(!IsUnderPostmaster || LWLockHeldByMe(aa_shared->lock));
	Assert(!create || !IsUnderPostmaster ||
		   LWLockHeldByMeInMode(aa_shared->lock, LW_EXCLUSIVE));
	for (i = 0; i < AA_MAX_DATABASES; i++)
		if (aa_shared->retired[i].dboid == dboid)
			return &aa_shared->retired[i];
	if (!create)
		return NULL;
	for (i = 0; i < AA_MAX_DATABASES; i++)
		if (aa_shared->retired[i].dboid == InvalidOid)
			break;
	if (i == AA_MAX_DATABASES)
		i = aa_shared->retired_next++ % AA_MAX_DATABASES;
	c = &aa_shared->retired[i];
	memset(c, 0, sizeof(*c));
	c->dboid = dboid;
	return c;
}

/*
 * The slot of dboid has been freed: keep its counters (caller holds the
 * lock).  Producers count a record in its slot under the mutex, only while
 * the slot is still theirs, so once dboid is cleared these are final.
 */
static void
slot_retire(AuditDbSlot *s, Oid dboid)
{
	AuditDbCounters *c;

	Assert(LWLockHeldByMeInMode(aa_shared->lock, LW_EXCLUSIVE));
	c = retired_find(dboid, true);
	c->queued += pg_atomic_read_u64(&s->queued);
	c->written += pg_atomic_read_u64(&s->written);
	c->waits += pg_atomic_read_u64(&s->waits);
	c->gaps += pg_atomic_read_u64(&s->gaps);
	c->last_flush = Max(c->last_flush, s->last_flush);
}

/*
 * Free slot s for another database (caller holds the lock exclusively):
 * from now on producers find no slot for its database (they look under the
 * mutex), its counters are kept (slot_retire) and it has no writer.  The
 * caller has marked DONE what of its records the tail must pass.
 */
static void
slot_free(AuditDbSlot *s)
{
	Oid			dboid = s->dboid;

	SpinLockAcquire(&aa_shared->mutex);
	s->dboid = InvalidOid;
	SpinLockRelease(&aa_shared->mutex);
	slot_retire(s, dboid);
	s->writer_pid = 0;
	s->writer_latch = NULL;
	s->writer_wanted = false;
}

/*
 * Find the slot of a database, optionally creating it.  Caller holds the
 * lock (exclusive if create), or is the postmaster at start-up.  Returns -1
 * if absent or the table is full.
 */
static int
slot_find(Oid dboid, bool create)
{
	AuditDbCounters *c;
	int			i;
	int			free_slot = -1;

	Assert(!IsUnderPostmaster || LWLockHeldByMe(aa_shared->lock));
	Assert(!create || !IsUnderPostmaster ||
		   LWLockHeldByMeInMode(aa_shared->lock, LW_EXCLUSIVE));
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		if (aa_shared->dbs[i].dboid == dboid)
			return i;
		if (free_slot < 0 && aa_shared->dbs[i].dboid == InvalidOid)
			free_slot = i;
	}
	if (!create || free_slot < 0)
		return -1;
	aa_shared->dbs[free_slot].dboid = dboid;
	aa_shared->dbs[free_slot].writer_pid = 0;
	aa_shared->dbs[free_slot].writer_latch = NULL;
	aa_shared->dbs[free_slot].writer_wanted = false;
	aa_shared->dbs[free_slot].failures = 0;
	aa_shared->dbs[free_slot].stopped_at = 0;
	aa_shared->dbs[free_slot].committed_upto = 0;
	aa_shared->dbs[free_slot].last_flush = 0;
	pg_atomic_write_u64(&aa_shared->dbs[free_slot].queued, 0);
	pg_atomic_write_u64(&aa_shared->dbs[free_slot].written, 0);
	pg_atomic_write_u64(&aa_shared->dbs[free_slot].waits, 0);
	pg_atomic_write_u64(&aa_shared->dbs[free_slot].gaps, 0);

	/* counting goes on from where the last slot of dboid left it */
	c = retired_find(dboid, false);
	if (c != NULL)
	{
		pg_atomic_write_u64(&aa_shared->dbs[free_slot].queued, c->queued);
		pg_atomic_write_u64(&aa_shared->dbs[free_slot].written, c->written);
		pg_atomic_write_u64(&aa_shared->dbs[free_slot].waits, c->waits);
		pg_atomic_write_u64(&aa_shared->dbs[free_slot].gaps, c->gaps);
		aa_shared->dbs[free_slot].last_flush = c->last_flush;
		c->dboid = InvalidOid;
	}
	return free_slot;
}

/*
 * Durable counters and the registry of tags elsewhere
 * ---------------------------------------------------
 *
 * The counters of the database table (queued, written, waits, gaps) live in
 * shared memory, which a restart starts anew.  So that they count since a
 * known time instead, a third mapped file, $PGDATA/pg_access_audit/stats,
 * keeps for each database the totals as of its writer's last commit
 * (StatsDbEntry), and the postmaster saves every database's totals when it
 * exits or reinitialises after a crash (stats_save_all, an on_shmem_exit
 * callback, like pg_stat_statements' dump).  At start, and after a crash,
 * the saved totals become the base that this server life's counters add
 * to (stats_rebase).  A total is base + live counter; a file entry is
 * written under aa_shared->lock exclusively (or by the postmaster alone).
 *
 * "queued" is rebased on "written" plus the records the replay finds: a
 * record is either written (counted in the saved total) or still in the
 * ring (counted again by ring_recover, unless it lies before the committed
 * position the entry saved, so a written record is not counted twice).
 * What a crash may lose therefore: nothing if the postmaster survives (it
 * saves before reinitialising); if the postmaster itself dies (SIGKILL,
 * power loss), the waits counted since the database's last batch commit,
 * and the records of a batch committed after its last save (the writer
 * saves right after each commit, so at most one batch).  The file is not
 * fsynced: a power loss keeps what the kernel wrote back.
 *
 * Every entry has a CRC; a torn or foreign entry (and a file of another
 * format or copied from another server) is not trusted: it is dropped with
 * a LOG message and that database counts again from the server's start.
 * access_audit.reset_stats() (superusers) sets every total to zero; the
 * file's header keeps when and by whom, which status() shows.
 *
 * The same file holds the registry of tags in databases without the
 * extension (StatsTagEntry), so that status() in any database can list
 * them (a database's labels are in its own catalog, out of reach of other
 * databases).  Tagging is refused there, so tags.c registers the labels a
 * DROP EXTENSION leaves (at its commit) and copies a template's entries at
 * CREATE DATABASE; an entry goes when its label is removed or dropped with
 * its table, when its database is dropped, or when the extension is
 * created there.
 */
#define AA_STATS_FILE		"pg_access_audit/stats"
#define AA_STATS_MAGIC		0x41415331	/* "AAS1" */
#define AA_STATS_VERSION	1
#define AA_STATS_DBS		(2 * AA_MAX_DATABASES)
#define AA_STATS_TAGS		AA_QUEUE_TAGS_MAX
#define AA_STATS_HEADER_SIZE 512

typedef struct StatsFileHeader
{
	uint32		magic;
	uint32		version;
	uint32		ndbs;
	uint32		ntags;
	uint64		file_ino;
	TimestampTz created;		/* when the file was made (anew) */
	TimestampTz reset_at;		/* the last reset_stats(), or 0 */
	uint32		resets;
	Oid			reset_by;
	char		reset_by_name[NAMEDATALEN];
	pg_crc32c	crc;
	uint32		unused;
} StatsFileHeader;

typedef struct StatsDbEntry
{
	Oid			dboid;			/* InvalidOid: free */
	uint32		unused;
	uint64		ring_id;		/* the ring committed_pos refers to */
	uint64		committed_pos;
	TimestampTz since;			/* counting since */
	uint64		total[4];		/* queued, written, waits, gaps at the save */
	uint64		base[4];		/* what this server life counts on from */
	pg_crc32c	crc;
	uint32		unused2;
} StatsDbEntry;

typedef struct StatsTagEntry
{
	Oid			dboid;			/* InvalidOid: free */
	Oid			reloid;
	int32		attnum;
	Oid			set_by;
	TimestampTz set_at;
	char		tag[AA_QUEUE_TAG_LEN];
	char		object[3 * NAMEDATALEN];	/* schema.table.column, quoted */
	pg_crc32c	crc;
} StatsTagEntry;

StaticAssertDecl(sizeof(StatsFileHeader) <= AA_STATS_HEADER_SIZE,
				 "stats file header too large");

#define STATS_FILE_SIZE \
	(AA_STATS_HEADER_SIZE + AA_STATS_DBS * sizeof(StatsDbEntry) + \
	 AA_STATS_TAGS * sizeof(StatsTagEntry))

enum
{
	ST_QUEUED, ST_WRITTEN, ST_WAITS, ST_GAPS
};


static StatsDbEntry *
stats_db_at(int i)
{
	return (StatsDbEntry *) ((char *) stats_hdr + AA_STATS_HEADER_SIZE) + i;
}

static StatsTagEntry *
stats_tag_at(int i)
{
	return (StatsTagEntry *) ((char *) stats_db_at(AA_STATS_DBS)) + i;
}

static pg_crc32c
stats_crc(const void *p, Size len)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, p, len);
	FIN_CRC32C(crc);
	return crc;
}

#define STATS_SEAL(e, type) ((e)->crc = stats_crc((e), offsetof(type, crc)))
#define STATS_SOUND(e, type) ((e)->crc == stats_crc((e), offsetof(type, crc)))

static void
stats_header_seal(void)
{
	stats_hdr->crc = stats_crc(stats_hdr, offsetof(StatsFileHeader, crc));
}

/*
 * The entry of dboid, or (create) a free one made for it; NULL if none.
 */
static StatsDbEntry *
stats_db_find(Oid dboid, bool create)
{
	int			i;
	StatsDbEntry *e;

	if (stats_hdr == NULL || dboid == InvalidOid)
		return NULL;
	for (i = 0; i < AA_STATS_DBS; i++)
		if (stats_db_at(i)->dboid == dboid)
			return stats_db_at(i);
	if (!create)
		return NULL;
	for (i = 0; i < AA_STATS_DBS; i++)
		if (stats_db_at(i)->dboid == InvalidOid)
			break;
	if (i == AA_STATS_DBS)
		return NULL;
	e = stats_db_at(i);
	memset(e, 0, sizeof(*e));
	e->dboid = dboid;
	/* the live counters count since this server's start (or the reset) */
	e->since = Max(PgStartTime, stats_hdr->reset_at);
	return e;
}

/*
 * This server life's counters of dboid (caller holds the lock, or is the
 * postmaster alone) and, if it has a slot, its committed position.
 */
static void
stats_live(Oid dboid, uint64 *v, uint64 *committed)
{
	int			slot = slot_find(dboid, false);
	AuditDbCounters *c;

	memset(v, 0, 4 * sizeof(uint64));
	*committed = 0;
	if (slot >= 0)
	{
		AuditDbSlot *s = &aa_shared->dbs[slot];

		v[ST_QUEUED] = pg_atomic_read_u64(&s->queued);
		v[ST_WRITTEN] = pg_atomic_read_u64(&s->written);
		v[ST_WAITS] = pg_atomic_read_u64(&s->waits);
		v[ST_GAPS] = pg_atomic_read_u64(&s->gaps);
		*committed = s->committed_upto;
	}
	else if ((c = retired_find(dboid, false)) != NULL)
	{
		v[ST_QUEUED] = c->queued;
		v[ST_WRITTEN] = c->written;
		v[ST_WAITS] = c->waits;
		v[ST_GAPS] = c->gaps;
	}
}

/*
 * Save the totals of dboid into its entry.  Caller holds aa_shared->lock
 * exclusively, or is the postmaster with no other process attached.
 */
static void
stats_save(Oid dboid)
{
	StatsDbEntry *e = stats_db_find(dboid, true);
	uint64		live[4];
	uint64		committed;
	int			k;

	if (e == NULL)
		return;
	stats_live(dboid, live, &committed);
	for (k = 0; k < 4; k++)
		e->total[k] = e->base[k] + live[k];
	/* positions of an earlier ring (made anew) say nothing of this one */
	if (e->ring_id != ring_hdr->ring_id)
	{
		e->ring_id = ring_hdr->ring_id;
		e->committed_pos = 0;
	}
	e->committed_pos = Max(e->committed_pos, committed);
	STATS_SEAL(e, StatsDbEntry);
}

/*
 * on_shmem_exit callback of the postmaster: save every database's totals,
 * at shutdown and before the shared memory is made anew after a crash.
 * The postmaster runs alone then; it only reads numbers from the old
 * shared memory, never follows its pointers.
 */
static void
stats_save_all(int code, Datum arg)
{
	int			i;

	if (stats_hdr == NULL || aa_shared == NULL)
		return;
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		if (aa_shared->dbs[i].dboid != InvalidOid)
			stats_save(aa_shared->dbs[i].dboid);
		if (aa_shared->retired[i].dboid != InvalidOid)
			stats_save(aa_shared->retired[i].dboid);
	}
	/* databases idle in this life keep their totals: nothing to add */
	(void) msync(stats_hdr, STATS_FILE_SIZE, MS_ASYNC);
}

/*
 * Map the stats file (postmaster, first start); a file that cannot be
 * trusted as a whole is reported and made anew.
 */
static void
stats_map_file(void)
{
	int			fd;
	struct stat st;
	StatsFileHeader old;
	const char *why = NULL;

	fd = OpenTransientFile(AA_STATS_FILE, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0 || fstat(fd, &st) < 0)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", AA_STATS_FILE));

	memset(&old, 0, sizeof(old));
	if (st.st_size == 0)
		why = "";
	else if (st.st_size < sizeof(old) ||
			 pread(fd, &old, sizeof(old), 0) != sizeof(old) ||
			 old.magic != AA_STATS_MAGIC)
		why = "it is not an access_audit stats file";
	else if (old.version != AA_STATS_VERSION || old.ndbs != AA_STATS_DBS ||
			 old.ntags != AA_STATS_TAGS || (Size) st.st_size != STATS_FILE_SIZE)
		why = psprintf("it has format %u, this build writes format %d",
					   old.version, AA_STATS_VERSION);
	else if (old.crc != stats_crc(&old, offsetof(StatsFileHeader, crc)))
		why = "its header is damaged";
	else if (old.file_ino != (uint64) st.st_ino)
		why = "it was copied from another server";

	if (why != NULL)
		file_reset(fd, STATS_FILE_SIZE, AA_STATS_FILE);
	stats_hdr = (StatsFileHeader *) file_map(fd, STATS_FILE_SIZE, AA_STATS_FILE);
	if (why != NULL)
	{
		if (why[0] != '\0')
			ereport(LOG,
					errmsg("access_audit counters in \"%s\" are not trusted and start again at zero: %s",
						   AA_STATS_FILE, why));
		stats_hdr->magic = AA_STATS_MAGIC;
		stats_hdr->version = AA_STATS_VERSION;
		stats_hdr->ndbs = AA_STATS_DBS;
		stats_hdr->ntags = AA_STATS_TAGS;
		stats_hdr->file_ino = (uint64) st.st_ino;
		stats_hdr->created = GetCurrentTimestamp();
		stats_header_seal();
	}
}

/*
 * At start and after a crash (postmaster, alone): the saved totals become
 * this life's base; damaged entries are dropped and reported.
 */
static void
stats_rebase(void)
{
	int			i;
	int			dropped = 0;

	for (i = 0; i < AA_STATS_DBS; i++)
	{
		StatsDbEntry *e = stats_db_at(i);

		if (e->dboid == InvalidOid)
			continue;
		if (!STATS_SOUND(e, StatsDbEntry))
		{
			memset(e, 0, sizeof(*e));
			dropped++;
			continue;
		}
		memcpy(e->base, e->total, sizeof(e->base));
		/* the records not yet written are in the ring: the replay counts them */
		e->base[ST_QUEUED] = e->total[ST_WRITTEN];
		STATS_SEAL(e, StatsDbEntry);
	}
	for (i = 0; i < AA_STATS_TAGS; i++)
	{
		StatsTagEntry *t = stats_tag_at(i);

		if (t->dboid != InvalidOid && !STATS_SOUND(t, StatsTagEntry))
		{
			memset(t, 0, sizeof(*t));
			dropped++;
		}
	}
	if (dropped > 0)
		ereport(LOG,
				errmsg("access_audit dropped %d damaged entries of \"%s\"; the counters of those databases start again at zero",
					   dropped, AA_STATS_FILE));
}

/*
 * Does ring_recover count the pending record of dboid at pos as queued?
 * Not if its entry says it was committed (and so counted as written).
 */
static bool
stats_count_replayed(Oid dboid, uint64 pos)
{
	static StatsDbEntry *last = NULL;

	if (last == NULL || last->dboid != dboid)
		last = stats_db_find(dboid, false);
	return last == NULL || last->ring_id != ring_hdr->ring_id ||
		pos >= last->committed_pos;
}

/*
 * reset_stats(): every total to zero from now, recorded in the header.
 */
TimestampTz
aa_queue_stats_reset(Oid roleid, const char *rolename)
{
	TimestampTz now = GetCurrentTimestamp();
	int			i;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	/* databases counting in this life without an entry yet get one */
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		if (aa_shared->dbs[i].dboid != InvalidOid)
			(void) stats_db_find(aa_shared->dbs[i].dboid, true);
		if (aa_shared->retired[i].dboid != InvalidOid)
			(void) stats_db_find(aa_shared->retired[i].dboid, true);
	}
	for (i = 0; i < AA_STATS_DBS; i++)
	{
		StatsDbEntry *e = stats_db_at(i);
		uint64		live[4];
		uint64		committed;
		int			k;

		if (e->dboid == InvalidOid)
			continue;
		stats_live(e->dboid, live, &committed);
		for (k = 0; k < 4; k++)
		{
			/* base + live is zero now (unsigned arithmetic wraps) */
			e->base[k] = (uint64) 0 - live[k];
			e->total[k] = 0;
		}
		e->since = now;
		STATS_SEAL(e, StatsDbEntry);
	}
	stats_hdr->reset_at = now;
	stats_hdr->resets++;
	stats_hdr->reset_by = roleid;
	strlcpy(stats_hdr->reset_by_name, rolename, NAMEDATALEN);
	stats_header_seal();
	LWLockRelease(aa_shared->lock);

	ereport(LOG,
			errmsg("access_audit queue counters reset by role \"%s\"", rolename));
	return now;
}

/*
 * Since when dboid's counters count, and the last reset (0 if none).
 */
void
aa_queue_stats_since(Oid dboid, TimestampTz *since, TimestampTz *reset_at,
					 char *reset_by)
{
	StatsDbEntry *e;

	LWLockAcquire(aa_shared->lock, LW_SHARED);
	e = stats_db_find(dboid, false);
	*since = e != NULL ? e->since : Max(PgStartTime, stats_hdr->reset_at);
	*reset_at = stats_hdr->reset_at;
	strlcpy(reset_by, stats_hdr->reset_by_name, NAMEDATALEN);
	LWLockRelease(aa_shared->lock);
}

/*
 * Register (tag not NULL) or remove the tag of a column of reloid in
 * dboid, a database without the extension.  False if the registry is
 * full.
 */
bool
aa_queue_tag_note(Oid dboid, Oid reloid, int attnum, const char *object,
				  const char *tag, Oid set_by)
{
	int			i;
	int			free_entry = -1;
	bool		ok = true;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AA_STATS_TAGS; i++)
	{
		StatsTagEntry *t = stats_tag_at(i);

		if (t->dboid == dboid && t->reloid == reloid && t->attnum == attnum)
			break;
		if (free_entry < 0 && t->dboid == InvalidOid)
			free_entry = i;
	}
	if (i == AA_STATS_TAGS && tag != NULL)
	{
		if (free_entry < 0)
			ok = false;
		i = free_entry;
	}
	if (i >= 0 && i < AA_STATS_TAGS)
	{
		StatsTagEntry *t = stats_tag_at(i);

		memset(t, 0, sizeof(*t));
		if (tag != NULL)
		{
			t->dboid = dboid;
			t->reloid = reloid;
			t->attnum = attnum;
			t->set_by = set_by;
			t->set_at = GetCurrentTimestamp();
			strlcpy(t->tag, tag, sizeof(t->tag));
			strlcpy(t->object, object, sizeof(t->object));
			STATS_SEAL(t, StatsTagEntry);
		}
	}
	LWLockRelease(aa_shared->lock);
	return ok;
}

/*
 * The registered tags of database from are also to's (CREATE DATABASE
 * copied them with the catalog); as many as the registry holds.
 */
void
aa_queue_tags_copy(Oid from, Oid to)
{
	int			i;
	int			j = 0;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < AA_STATS_TAGS; i++)
	{
		StatsTagEntry *t = stats_tag_at(i);

		if (t->dboid != from)
			continue;
		while (j < AA_STATS_TAGS && stats_tag_at(j)->dboid != InvalidOid)
			j++;
		if (j == AA_STATS_TAGS)
			break;
		memcpy(stats_tag_at(j), t, sizeof(StatsTagEntry));
		stats_tag_at(j)->dboid = to;
		STATS_SEAL(stats_tag_at(j), StatsTagEntry);
	}
	LWLockRelease(aa_shared->lock);
}

/*
 * Forget the registered tags of dboid (caller holds the lock exclusively).
 */
static void
stats_tags_forget(Oid dboid)
{
	int			i;

	if (stats_hdr == NULL)
		return;
	for (i = 0; i < AA_STATS_TAGS; i++)
		if (stats_tag_at(i)->dboid == dboid)
			memset(stats_tag_at(i), 0, sizeof(StatsTagEntry));
}

/*
 * The registered tags in databases without the extension, up to max.
 */
int
aa_queue_tags_elsewhere(AuditQueueTagEntry *out, int max)
{
	int			i;
	int			n = 0;

	LWLockAcquire(aa_shared->lock, LW_SHARED);
	for (i = 0; i < AA_STATS_TAGS && n < max; i++)
	{
		StatsTagEntry *t = stats_tag_at(i);

		if (t->dboid == InvalidOid)
			continue;
		out[n].dboid = t->dboid;
		out[n].reloid = t->reloid;
		out[n].attnum = t->attnum;
		out[n].set_by = t->set_by;
		out[n].set_at = t->set_at;
		strlcpy(out[n].tag, t->tag, sizeof(out[n].tag));
		strlcpy(out[n].object, t->object, sizeof(out[n].object));
		n++;
	}
	LWLockRelease(aa_shared->lock);
	return n;
}

/*
 * Replay the ring after start or crash-restart: keep complete records,
 * turn records whose producer died mid-copy (still RESERVED, or a bad
 * checksum) into GAP records saying how many bytes were lost, and ask for
 * a writer for every database that has pending records.  Runs in the
 * postmaster with no other process attached.
 */
static void
ring_recover(void)
{
	uint64		pos = ring_hdr->tail;
	uint64		kept = 0;
	uint64		gaps = 0;

	while (pos < ring_hdr->head)
	{
		RingRecordHeader *hdr = ring_at(pos);
		int			slot;

		if (hdr->magic != AA_RECORD_MAGIC || hdr->pos != pos ||
			hdr->len < sizeof(RingRecordHeader) ||
			hdr->len % AA_RECORD_ALIGN != 0 ||
			(pos % ring_cap) + hdr->len > ring_cap ||
			pos + hdr->len > ring_hdr->head)
		{
			/*
			 * Headers are written under the reservation lock, so this means
			 * the file itself was damaged.  Nothing after this point can be
			 * parsed: cut the ring here and say so.
			 */
			ring_hdr->lost_unattributed += ring_hdr->head - pos;
			ereport(WARNING,
					errmsg("access_audit queue damaged at position %llu: %llu bytes of audit records lost",
						   (unsigned long long) pos,
						   (unsigned long long) (ring_hdr->head - pos)));
			ring_hdr->head = pos;
			break;
		}

		if (hdr->kind != AA_KIND_PAD && hdr->state != AA_STATE_DONE)
		{
			if (hdr->state != AA_STATE_READY || hdr->crc != record_crc(hdr))
			{
				int64		lost = hdr->len;

				/* replace the torn record with a gap marker in place */
				memset((char *) hdr + sizeof(RingRecordHeader), 0,
					   hdr->len - sizeof(RingRecordHeader));
				memcpy((char *) hdr + sizeof(RingRecordHeader), &lost,
					   sizeof(lost));
				hdr->kind = AA_KIND_GAP;
				hdr->crc = record_crc(hdr);
				hdr->state = AA_STATE_READY;
				gaps++;
			}
			slot = slot_find(hdr->dboid, true);
			if (slot >= 0)
			{
				aa_shared->dbs[slot].writer_wanted = true;
				if (stats_count_replayed(hdr->dboid, pos))
					pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].queued, 1);
				if (hdr->kind == AA_KIND_GAP)
					pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].gaps, 1);
			}
			kept++;
		}
		pos += hdr->len;
	}

	if (kept > 0 || gaps > 0)
		ereport(LOG,
				errmsg("access_audit queue replayed: %llu pending records, %llu of them gap markers for records torn by a crash",
					   (unsigned long long) kept, (unsigned long long) gaps));
}

/*
 * Serialised size of one string (length word, bytes, NUL).
 */
static inline Size
str_size(const char *s)
{
	return sizeof(int32) + (s ? strlen(s) + 1 : 0);
}

static Size
record_body_size(const AuditRecord *rec)
{
	Size		sz = sizeof(RingBodyFixed);
	int			i;

	if (rec->kind == AA_KIND_ROWS)
		return sizeof(RingRowsFixed) + str_size(rec->chunk->relation) +
			rec->chunk->len;

	sz += str_size(rec->login_role);
	sz += str_size(rec->effective_role);
	sz += str_size(rec->actor);
	sz += str_size(rec->claimed_actor);
	sz += str_size(rec->client_addr);
	sz += str_size(rec->application_name);
	sz += str_size(rec->query);
	sz += str_size(rec->command);
	sz += str_size(rec->detail);
	sz += str_size(rec->origin);
	for (i = 0; i < rec->n_relations; i++)
		sz += str_size(rec->relations[i]);
	for (i = 0; i < rec->n_columns; i++)
		sz += str_size(rec->columns[i]);
	for (i = 0; i < rec->n_predicate; i++)
		sz += str_size(rec->predicate_columns[i]);
	for (i = 0; i < rec->n_tags; i++)
		sz += str_size(rec->tags[i]);
	return sz;
}

static inline char *
put_str(char *p, const char *s)
{
	int32		len = s ? (int32) strlen(s) : -1;

	memcpy(p, &len, sizeof(int32));
	p += sizeof(int32);
	if (s)
	{
		memcpy(p, s, len + 1);
		p += len + 1;
	}
	return p;
}

static void
record_serialize(const AuditRecord *rec, char *p)
{
	RingBodyFixed fx;
	int			i;

	if (rec->kind == AA_KIND_ROWS)
	{
		RingRowsFixed rf;

		memset(&rf, 0, sizeof(rf));
		rf.link = rec->chunk->link;
		rf.lo = rec->chunk->lo;
		rf.hi = rec->chunk->hi;
		rf.chunk = rec->chunk->chunk;
		rf.n = rec->chunk->n;
		rf.len = rec->chunk->len;
		memcpy(p, &rf, sizeof(rf));
		p += sizeof(rf);
		p = put_str(p, rec->chunk->relation);
		memcpy(p, rec->chunk->data, rec->chunk->len);
		return;
	}
	memset(&fx, 0, sizeof(fx));
	fx.ts = rec->ts;
	fx.duration_us = rec->duration_us;
	fx.query_id = rec->query_id;
	fx.rows = rec->rows;
	fx.tagged_rows = rec->tagged_rows;
	fx.backend_pid = rec->backend_pid;
	fx.nesting_level = rec->nesting_level;
	fx.outcome = rec->outcome;
	fx.n_relations = rec->n_relations;
	fx.n_columns = rec->n_columns;
	fx.n_predicate = rec->n_predicate;
	fx.n_tags = rec->n_tags;
	fx.row_set = rec->row_set;
	fx.origin_ring_id = (int64) rec->origin_ring_id;
	fx.origin_seq = rec->origin_seq;
	memcpy(p, &fx, sizeof(fx));
	p += sizeof(fx);
	p = put_str(p, rec->login_role);
	p = put_str(p, rec->effective_role);
	p = put_str(p, rec->actor);
	p = put_str(p, rec->claimed_actor);
	p = put_str(p, rec->client_addr);
	p = put_str(p, rec->application_name);
	p = put_str(p, rec->query);
	p = put_str(p, rec->command);
	p = put_str(p, rec->detail);
	p = put_str(p, rec->origin);
	for (i = 0; i < rec->n_relations; i++)
		p = put_str(p, rec->relations[i]);
	for (i = 0; i < rec->n_columns; i++)
		p = put_str(p, rec->columns[i]);
	for (i = 0; i < rec->n_predicate; i++)
		p = put_str(p, rec->predicate_columns[i]);
	for (i = 0; i < rec->n_tags; i++)
		p = put_str(p, rec->tags[i]);
}

/*
 * Read one string at *pp, not past end.  Returns false if the bytes there
 * are not a string (cut short or missing its NUL).  Records from the ring
 * are checksummed (trusted); those that arrive from a standby (remote.c)
 * are also checked for NULs inside a string.
 */
static inline bool
get_str(const char **pp, const char *end, const char **out, bool trusted)
{
	int32		len;
	const char *s;

	if (end - *pp < (ptrdiff_t) sizeof(int32))
		return false;
	memcpy(&len, *pp, sizeof(int32));
	*pp += sizeof(int32);
	if (len < 0)
	{
		*out = NULL;
		return len == -1;
	}
	if (end - *pp < (ptrdiff_t) len + 1)
		return false;
	s = *pp;
	if (s[len] != '\0' || (!trusted && memchr(s, '\0', len) != NULL))
		return false;
	*pp += len + 1;
	*out = s;
	return true;
}

static bool
get_strs(const char **pp, const char *end, int n, const char ***out,
		 bool trusted)
{
	const char **arr;
	int			i;

	*out = NULL;
	if (n < 0 || n > (end - *pp) / (int) sizeof(int32))
		return false;
	if (n == 0)
		return true;
	arr = palloc(sizeof(char *) * n);
	for (i = 0; i < n; i++)
		if (!get_str(pp, end, &arr[i], trusted) || arr[i] == NULL)
			return false;
	*out = arr;
	return true;
}

/*
 * Decode the body of a READ record written by a build of queue format 1 or
 * 2 (AA_KIND_READ_V2): no origin fields.
 */
static bool
record_decode_body_v2(const char *p, const char *end, AuditQueueItem *item,
					  bool trusted)
{
	RingBodyFixedV2 fx;
	AuditRecord *rec = &item->rec;

	rec->kind = AA_KIND_READ;
	if (end - p < (ptrdiff_t) sizeof(fx))
		return false;
	memcpy(&fx, p, sizeof(fx));
	p += sizeof(fx);
	rec->ts = fx.ts;
	rec->duration_us = fx.duration_us;
	rec->query_id = fx.query_id;
	rec->rows = fx.rows;
	rec->tagged_rows = fx.tagged_rows;
	rec->backend_pid = fx.backend_pid;
	rec->nesting_level = fx.nesting_level;
	rec->outcome = fx.outcome;
	rec->origin_ring_id = 0;
	rec->origin_seq = 0;
	rec->origin = NULL;
	rec->n_relations = fx.n_relations;
	rec->n_columns = fx.n_columns;
	rec->n_predicate = fx.n_predicate;
	rec->n_tags = fx.n_tags;
	return get_str(&p, end, &rec->login_role, trusted) &&
		get_str(&p, end, &rec->effective_role, trusted) &&
		get_str(&p, end, &rec->actor, trusted) &&
		get_str(&p, end, &rec->claimed_actor, trusted) &&
		get_str(&p, end, &rec->client_addr, trusted) &&
		get_str(&p, end, &rec->application_name, trusted) &&
		get_str(&p, end, &rec->query, trusted) &&
		get_str(&p, end, &rec->command, trusted) &&
		get_str(&p, end, &rec->detail, trusted) &&
		get_strs(&p, end, fx.n_relations, &rec->relations, trusted) &&
		get_strs(&p, end, fx.n_columns, &rec->columns, trusted) &&
		get_strs(&p, end, fx.n_predicate, &rec->predicate_columns, trusted) &&
		get_strs(&p, end, fx.n_tags, &rec->tags, trusted);
}

/*
 * Decode the body of a record of the given kind, bytes p .. end.  Strings
 * point into the body and stay valid as long as it does; the pointer arrays
 * are palloc'd.  Returns false if the body is malformed.
 */
static bool
record_decode_body(uint32 kind, const char *p, const char *end,
				   AuditQueueItem *item, bool trusted)
{
	RingBodyFixed fx;
	AuditRecord *rec = &item->rec;

	if (kind == AA_KIND_READ_V2)
		return record_decode_body_v2(p, end, item, trusted);
	rec->kind = kind;
	if (kind == AA_KIND_GAP)
	{
		if (end - p < (ptrdiff_t) sizeof(int64))
			return false;
		memcpy(&item->gap_bytes, p, sizeof(int64));
		return true;
	}
	if (kind == AA_KIND_ROWS)
	{
		RingRowsFixed rf;
		AuditRowChunk *c;

		if (end - p < (ptrdiff_t) sizeof(rf))
			return false;
		memcpy(&rf, p, sizeof(rf));
		p += sizeof(rf);
		c = palloc0(sizeof(AuditRowChunk));
		c->link = rf.link;
		c->lo = rf.lo;
		c->hi = rf.hi;
		c->chunk = rf.chunk;
		c->n = rf.n;
		c->len = rf.len;
		rec->chunk = c;
		if (!get_str(&p, end, &c->relation, trusted) || c->relation == NULL ||
			rf.len < 0 || end - p < (ptrdiff_t) rf.len)
			return false;
		c->data = p;
		return true;
	}
	if (kind != AA_KIND_READ || end - p < (ptrdiff_t) sizeof(fx))
		return false;
	memcpy(&fx, p, sizeof(fx));
	p += sizeof(fx);
	rec->ts = fx.ts;
	rec->duration_us = fx.duration_us;
	rec->query_id = fx.query_id;
	rec->rows = fx.rows;
	rec->tagged_rows = fx.tagged_rows;
	rec->backend_pid = fx.backend_pid;
	rec->nesting_level = fx.nesting_level;
	rec->outcome = fx.outcome;
	rec->origin_ring_id = (uint64) fx.origin_ring_id;
	rec->origin_seq = fx.origin_seq;
	rec->n_relations = fx.n_relations;
	rec->n_columns = fx.n_columns;
	rec->n_predicate = fx.n_predicate;
	rec->n_tags = fx.n_tags;
	rec->row_set = fx.row_set;
	return get_str(&p, end, &rec->login_role, trusted) &&
		get_str(&p, end, &rec->effective_role, trusted) &&
		get_str(&p, end, &rec->actor, trusted) &&
		get_str(&p, end, &rec->claimed_actor, trusted) &&
		get_str(&p, end, &rec->client_addr, trusted) &&
		get_str(&p, end, &rec->application_name, trusted) &&
		get_str(&p, end, &rec->query, trusted) &&
		get_str(&p, end, &rec->command, trusted) &&
		get_str(&p, end, &rec->detail, trusted) &&
		get_str(&p, end, &rec->origin, trusted) &&
		get_strs(&p, end, fx.n_relations, &rec->relations, trusted) &&
		get_strs(&p, end, fx.n_columns, &rec->columns, trusted) &&
		get_strs(&p, end, fx.n_predicate, &rec->predicate_columns, trusted) &&
		get_strs(&p, end, fx.n_tags, &rec->tags, trusted);
}

/*
 * Decode a READY record.  Strings point into the ring and stay valid until
 * the record is completed.  Its checksum was good when it was published,
 * so a failure here is a bug; the record is kept (not completed) and the
 * writer stops.
 */
static void
record_decode(RingRecordHeader *hdr, AuditQueueItem *item)
{
	const char *p = (const char *) hdr + sizeof(RingRecordHeader);

	memset(item, 0, sizeof(AuditQueueItem));
	item->pos = hdr->pos;
	item->len = hdr->len;
	if (!record_decode_body(hdr->kind, p, (const char *) hdr + hdr->len, item,
							true))
		elog(ERROR, "access_audit queue record at position %llu is malformed",
			 (unsigned long long) hdr->pos);
}

/*
 * Append a collected item to buf in the wire form that carries records from
 * a standby to its primary: position (8 bytes), kind (4), body length (4),
 * body, in this machine's byte order (a primary and its streaming standby
 * share an architecture).  The item must not be completed yet.
 */
void
aa_queue_item_to_wire(const AuditQueueItem *item, StringInfo buf)
{
	RingRecordHeader *hdr = ring_at(item->pos);
	uint64		pos = item->pos;
	uint32		kind = hdr->kind;
	uint32		blen = hdr->len - sizeof(RingRecordHeader);

	appendBinaryStringInfo(buf, (char *) &pos, sizeof(pos));
	appendBinaryStringInfo(buf, (char *) &kind, sizeof(kind));
	appendBinaryStringInfo(buf, (char *) &blen, sizeof(blen));
	appendBinaryStringInfo(buf, (char *) hdr + sizeof(RingRecordHeader), blen);
}

/*
 * Read the next record of the wire form at *pp (not past end) into item;
 * its strings point into the buffer.  Returns false at the end, and raises
 * an ERROR if the bytes are not a well-formed record.
 */
bool
aa_queue_item_from_wire(const char **pp, const char *end, AuditQueueItem *item)
{
	uint64		pos;
	uint32		kind;
	uint32		blen;
	const char *p = *pp;

	if (p == end)
		return false;
	memset(item, 0, sizeof(AuditQueueItem));
	if (end - p < 16)
		goto bad;
	memcpy(&pos, p, 8);
	memcpy(&kind, p + 8, 4);
	memcpy(&blen, p + 12, 4);
	p += 16;
	if ((uint64) (end - p) < blen)
		goto bad;
	item->pos = pos;
	item->len = blen;
	if (!record_decode_body(kind, p, p + blen, item, false))
		goto bad;
	*pp = p + blen;
	return true;

bad:
	ereport(ERROR,
			errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			errmsg("malformed access_audit record batch"),
			errhint("Ship batches with an access_audit shipper of the same version."));
	return false;				/* keep the compiler quiet */
}

/*
 * Find (or create) this backend's database slot and remember it.
 */
static int
my_db_slot(void)
{
	if (my_slot >= 0 && my_slot_db == MyDatabaseId &&
		aa_shared->dbs[my_slot].dboid == MyDatabaseId)
		return my_slot;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	my_slot = slot_find(MyDatabaseId, true);
	LWLockRelease(aa_shared->lock);
	my_slot_db = MyDatabaseId;

	/*
	 * Once per session: every statement of a busy session would say it again
	 * (the launcher gives the database a slot as soon as one is idle).
	 */
	if (my_slot < 0 && !slot_full_warned)
	{
		slot_full_warned = true;
		ereport(WARNING,
				errmsg("access_audit tracks at most %d databases at once",
					   AA_MAX_DATABASES),
				errdetail("The records of this session are kept in the queue and written once the database has a slot."),
				errhint("Reads go on meanwhile; this session will not warn again."));
	}
	return my_slot;
}

/*
 * Wake this database's writer, or ask the launcher to start one.
 */
static void
wake_writer(int slot)
{
	Latch	   *latch;

	if (slot < 0)
	{
		if (aa_shared->launcher_latch)
			SetLatch(aa_shared->launcher_latch);
		return;
	}
	latch = aa_shared->dbs[slot].writer_latch;
	if (latch != NULL && aa_shared->dbs[slot].writer_pid != 0)
		SetLatch(latch);
	else
	{
		aa_shared->dbs[slot].writer_wanted = true;
		if (aa_shared->launcher_latch)
			SetLatch(aa_shared->launcher_latch);
	}
}

/*
 * s cut to at most max bytes (on a character boundary) followed by a marker
 * with its full length and a hash of it, so that two long values that share
 * a prefix stay apart: "<prefix>...[truncated: 73400320 bytes, hash
 * 1f2e...]".  Returns s itself if it is short enough, otherwise buf, which
 * must hold max + AA_BOUND_MARKER_LEN bytes.  No allocation and no ERROR:
 * runs in abort callbacks.
 */
static const char *
bound_str(const char *s, int max, char *buf)
{
	int			cut;
	size_t		len;
	uint64		h;

	if (s == NULL || strnlen(s, max + 1) <= (size_t) max)
		return s;
	len = strlen(s);
	h = hash_bytes_extended((const unsigned char *) s, (int) Min(len, (size_t) PG_INT32_MAX), 0);
	cut = pg_mbcliplen(s, max, max);
	memcpy(buf, s, cut);
	snprintf(buf + cut, AA_BOUND_MARKER_LEN, "...[truncated: %llu bytes, hash %016llx]",
			 (unsigned long long) len, (unsigned long long) h);
	return buf;
}

/*
 * A detail longer than AA_MAX_DETAIL_LEN, replaced by a JSON object that
 * holds the start of it as a string (details are JSON objects, and the log
 * views cast them to jsonb).  Same contract as bound_str.
 */
static const char *
bound_detail(const char *s, char *buf)
{
	const char *head = "{\"truncated_detail\": \"";
	char	   *p = buf;
	int			room = AA_MAX_DETAIL_LEN;
	int			i;
	int			cut;

	if (s == NULL || strnlen(s, AA_MAX_DETAIL_LEN + 1) <= AA_MAX_DETAIL_LEN)
		return s;
	strcpy(p, head);
	p += strlen(head);
	/* each byte takes at most 6 escaped: \u00XX */
	cut = pg_mbcliplen(s, room / 6, room / 6);
	for (i = 0; i < cut; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '"' || c == '\\')
		{
			*p++ = '\\';
			*p++ = (char) c;
		}
		else if (c < 0x20)
			p += sprintf(p, "\\u%04x", c);
		else
			*p++ = (char) c;
	}
	sprintf(p, "\", \"length\": %llu}", (unsigned long long) strlen(s));
	return buf;
}

/*
 * Bound every user-controlled field of rec (see AA_MAX_ACTOR_LEN).  The
 * values cut are kept in static buffers, valid until the next call.
 */
static void
record_bound(AuditRecord *rec)
{
	static char actor[AA_MAX_ACTOR_LEN + AA_BOUND_MARKER_LEN];
	static char claimed[AA_MAX_ACTOR_LEN + AA_BOUND_MARKER_LEN];
	static char appname[AA_MAX_APPNAME_LEN + AA_BOUND_MARKER_LEN];
	static char origin[AA_MAX_ORIGIN_LEN + AA_BOUND_MARKER_LEN];
	static char detail[AA_MAX_DETAIL_LEN + 64];

	rec->actor = bound_str(rec->actor, AA_MAX_ACTOR_LEN, actor);
	rec->claimed_actor = bound_str(rec->claimed_actor, AA_MAX_ACTOR_LEN, claimed);
	rec->application_name = bound_str(rec->application_name,
									  AA_MAX_APPNAME_LEN, appname);
	rec->origin = bound_str(rec->origin, AA_MAX_ORIGIN_LEN, origin);
	rec->detail = bound_detail(rec->detail, detail);
}

/*
 * A record too large for a quarter of the ring is cut down (query text
 * first, then the lists) so that one statement can never block the queue.
 */
static void
record_shrink(AuditRecord *rec, Size limit)
{
	static char truncated_query[1024];

	if (rec->query && strlen(rec->query) >= sizeof(truncated_query))
	{
		strlcpy(truncated_query, rec->query, sizeof(truncated_query));
		rec->query = truncated_query;
	}
	while (record_body_size(rec) + sizeof(RingRecordHeader) > limit &&
		   (rec->n_columns > 1 || rec->n_predicate > 1 ||
			rec->n_relations > 1 || rec->n_tags > 1))
	{
		rec->n_columns = rec->n_columns / 2;
		rec->n_predicate = rec->n_predicate / 2;
		rec->n_relations = Max(rec->n_relations / 2, Min(rec->n_relations, 1));
		rec->n_tags = Max(rec->n_tags / 2, Min(rec->n_tags, 1));
	}
}

/*
 * Bytes of padding a record of len bytes at pos needs first: the rest of
 * the ring's end if it would not fit there, else none.
 */
static inline uint64
ring_pad(uint64 pos, uint64 len)
{
	return ((pos % ring_cap) + len > ring_cap) ? ring_cap - (pos % ring_cap) : 0;
}

/*
 * Write the header of a record of len bytes at pos, checksum not yet
 * computed.  Caller holds the mutex, or is the postmaster at start-up.
 */
static RingRecordHeader *
ring_write_header(uint64 pos, uint64 len, Oid dboid, uint32 kind, uint32 state)
{
	RingRecordHeader *hdr = ring_at(pos);

	/* a spinlock has no owner to ask: check that someone holds it */
	Assert(!IsUnderPostmaster || !SpinLockFree(&aa_shared->mutex));
	hdr->magic = AA_RECORD_MAGIC;
	hdr->len = (uint32) len;
	hdr->pos = pos;
	hdr->dboid = dboid;
	hdr->kind = kind;
	hdr->crc = 0;
	hdr->state = state;
	return hdr;
}

/*
 * Fill the ring's end from pos with a pad record (a record would not fit
 * there); returns the position after it, the ring's start.  Caller holds
 * the mutex, or is the postmaster at start-up.
 */
static uint64
ring_write_pad(uint64 pos, uint64 pad)
{
	(void) ring_write_header(pos, pad, InvalidOid, AA_KIND_PAD, AA_STATE_DONE);
	return pos + pad;
}

/*
 * Append one record for MyDatabaseId.  Never drops it: when the ring is
 * full the caller waits (wait event "Extension") and wakes the writer.  A
 * cancel or terminate request ends the wait: the record is sealed into
 * this backend's intent slot instead (intent_seal), from which its writer
 * takes it.  The one exception is a chunk of row identities (AA_KIND_ROWS):
 * it is left out, and false returned, so that the caller marks its read
 * record's set incomplete (rowids.c).
 *
 * This runs inside memory-context reset callbacks during abort and FATAL
 * exits, so it must not throw: no ERROR, no catalog access, no interrupt
 * processing (a pending interrupt is left for the caller to serve).
 */
bool
aa_queue_push(const AuditRecord *in)
{
	AuditRecord rec = *in;
	Size		body;
	uint64		len;
	uint64		pos;
	uint64		pad;
	RingRecordHeader *hdr;
	int			slot;
	int			counted_in;
	bool		waited = false;

	if (!aa_queue_ready())
		return true;

	record_bound(&rec);
	body = record_body_size(&rec);
	if (body + sizeof(RingRecordHeader) > ring_cap / 4)
	{
		record_shrink(&rec, ring_cap / 4);
		body = record_body_size(&rec);
	}
	len = TYPEALIGN(AA_RECORD_ALIGN, sizeof(RingRecordHeader) + body);
	slot = my_db_slot();

	/*
	 * The header store below is the first touch of a ring line that was last
	 * written a whole lap ago: a cache miss, taken while holding the mutex
	 * that the other producers spin on.  Start fetching the line the head
	 * points at now (unlocked read; a stale guess costs nothing).
	 */
#if defined(__GNUC__)
	__builtin_prefetch(ring_at(*((volatile uint64 *) &ring_hdr->head)), 1);
#endif

	for (;;)
	{
		SpinLockAcquire(&aa_shared->mutex);
		pos = ring_hdr->head;
		pad = ring_pad(pos, len);
		if (pos + pad + len - ring_hdr->tail <= ring_cap)
		{
			if (pad > 0)
				pos = ring_write_pad(pos, pad);
			hdr = ring_write_header(pos, len, MyDatabaseId, rec.kind,
									AA_STATE_RESERVED);
			pg_write_barrier();
			ring_hdr->head = pos + len;

			/*
			 * A writer that yielded may have freed the slot since
			 * my_db_slot() looked.  It does so under this mutex
			 * (aa_queue_writer_yield), and then asks the launcher to adopt
			 * the records of databases without a slot: a record reserved
			 * before is adopted there, one reserved after sees the slot gone
			 * here and asks for adoption itself.
			 */
			if (slot >= 0 && aa_shared->dbs[slot].dboid != MyDatabaseId)
				slot = my_slot = -1;
			/* counted while the slot is surely ours (see slot_retire) */
			if (slot >= 0)
				pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].queued, 1);
			SpinLockRelease(&aa_shared->mutex);
			push_interrupted = false;
			break;
		}
		SpinLockRelease(&aa_shared->mutex);

		/* full: count the wait once, wake the writer, sleep briefly */
		if (!waited && slot >= 0)
			pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].waits, 1);
		waited = true;
		wake_writer(slot);

		/*
		 * Cancel or terminate while waiting: the record goes into this
		 * backend's intent slot, where the writer takes it (and the
		 * postmaster's replay, after a crash), and the interrupt is served at
		 * the caller's next CHECK_FOR_INTERRUPTS.  The records that follow
		 * (the abort of the statement interrupted next) are sealed too, until
		 * one goes into the ring again.  Only a full slot makes it wait on.
		 */
		if (rec.kind == AA_KIND_ROWS &&
			(push_interrupted ||
			 (InterruptPending && (QueryCancelPending || ProcDiePending))))
		{
			/*
			 * A chunk of row identities does not go into an intent slot (it
			 * holds READ records only, and a few chunks would fill it): it is
			 * left out, and its read record, which follows and is sealed,
			 * says that its set is incomplete.  See docs/breach.md.
			 */
			return false;
		}
		if ((push_interrupted ||
			 (InterruptPending && (QueryCancelPending || ProcDiePending))) &&
			intent_seal(&rec))
		{
			push_interrupted = true;
			wake_writer(slot);
			return true;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	/* copy the body outside the lock; zero the alignment tail */
	{
		char	   *p = (char *) hdr + sizeof(RingRecordHeader);
		Size		room = len - sizeof(RingRecordHeader);

		record_serialize(&rec, p);
		if (room > body)
			memset(p + body, 0, room - body);
	}
	hdr->crc = record_crc(hdr);
	pg_write_barrier();
	hdr->state = AA_STATE_READY;

	if (slot < 0)
	{
		/* an exchange, not a write: a barrier, so READY is seen first */
		(void) pg_atomic_exchange_u32(&aa_shared->unslotted, 1);

		/* rare (writers are taking turns): count it with the kept counters */
		LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
		counted_in = slot_find(MyDatabaseId, false);
		if (counted_in >= 0)
			pg_atomic_fetch_add_u64(&aa_shared->dbs[counted_in].queued, 1);
		else
			retired_find(MyDatabaseId, true)->queued++;
		LWLockRelease(aa_shared->lock);
	}

	/*
	 * The writer polls every flush_interval; waking it for every record would
	 * cost a signal per statement.  Wake it only when it is missing or the
	 * ring is filling up.
	 */
	if (slot < 0 || aa_shared->dbs[slot].writer_pid == 0 ||
		ring_hdr->head - ring_hdr->tail > ring_cap / 8)
		wake_writer(slot);
	return true;
}

/*
 * Identity of the ring file, so positions from another file are never
 * mistaken for these.
 */
uint64
aa_queue_ring_id(void)
{
	return ring_hdr->ring_id;
}

uint64
aa_queue_head(void)
{
	uint64		h;

	SpinLockAcquire(&aa_shared->mutex);
	h = ring_hdr->head;
	SpinLockRelease(&aa_shared->mutex);
	return h;
}

uint64
aa_queue_tail(void)
{
	uint64		t;

	SpinLockAcquire(&aa_shared->mutex);
	t = ring_hdr->tail;
	SpinLockRelease(&aa_shared->mutex);
	return t;
}

uint64
aa_queue_capacity(void)
{
	return ring_cap;
}

/*
 * A writer for dboid starts: take the database's slot unless another live
 * writer holds it.  Returns false if this process should exit.
 */
bool
aa_queue_claim_writer(Oid dboid, Latch *latch)
{
	int			slot;
	bool		ok = false;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	slot = slot_find(dboid, true);
	if (slot >= 0)
	{
		AuditDbSlot *s = &aa_shared->dbs[slot];

		if (s->writer_pid == 0 || s->writer_pid == MyProcPid ||
			kill(s->writer_pid, 0) != 0)
		{
			s->writer_pid = MyProcPid;
			s->writer_latch = latch;
			s->writer_wanted = false;
			ok = true;
		}
	}
	LWLockRelease(aa_shared->lock);
	return ok;
}

/*
 * Has dboid records in the ring from position from on that its writer has
 * not committed (being copied, or ready)?  A scan without the mutex, as
 * ring_holds_db.
 */
static bool
ring_pending_db(Oid dboid, uint64 from)
{
	uint64		pos = aa_queue_tail();
	uint64		head = aa_queue_head();

	while (pos < head)
	{
		RingRecordHeader *hdr = ring_at(pos);

		if (!header_at(hdr, pos))
			return true;		/* moved under us: assume so */
		if (pos >= from && hdr->kind != AA_KIND_PAD && hdr->dboid == dboid &&
			hdr->state != AA_STATE_DONE)
			return true;
		pos += hdr->len;
	}
	return false;
}

/*
 * A writer exits, whatever the reason (idle, an error, shutdown): free its
 * claim (the slot and its counters stay).  If records of its database are
 * still waiting (queued after its last look, or not written because it
 * failed), ask the launcher for a writer again: otherwise they would wait
 * for the next record or flush() to ask.  Producers that saw this writer
 * running did not ask; they reserved their space before looking, so this
 * scan, made after the claim is gone, sees their records.
 */
void
aa_queue_release_writer(Oid dboid, bool failed)
{
	int			slot;
	uint64		committed = 0;
	bool		mine = false;

	if (aa_shared == NULL)
		return;
	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	slot = slot_find(dboid, false);
	if (slot >= 0 && aa_shared->dbs[slot].writer_pid == MyProcPid)
	{
		aa_shared->dbs[slot].writer_pid = 0;
		aa_shared->dbs[slot].writer_latch = NULL;
		committed = aa_shared->dbs[slot].committed_upto;
		if (failed)
		{
			aa_shared->dbs[slot].failures++;
			aa_shared->dbs[slot].stopped_at = GetCurrentTimestamp();
		}
		mine = true;
	}
	LWLockRelease(aa_shared->lock);
	if (!mine)
		return;

	pg_memory_barrier();
	if (ring_pending_db(dboid, committed) || intent_sealed_pending(dboid))
	{
		LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
		slot = slot_find(dboid, false);
		if (slot >= 0 && aa_shared->dbs[slot].writer_pid == 0)
			aa_shared->dbs[slot].writer_wanted = true;
		LWLockRelease(aa_shared->lock);
		if (aa_shared->launcher_latch)
			SetLatch(aa_shared->launcher_latch);
	}
}

/*
 * Is the record at hdr finished (committed or DONE), so the tail may pass
 * it?  *cache_db and *cache_upto remember the last database looked up, since
 * runs of records of one database are the rule.  Caller holds the mutex;
 * committed_upto is read without the LWLock: a stale value is an older,
 * smaller one, which only keeps the tail back a little longer.
 */
static inline bool
record_finished(RingRecordHeader *hdr, Oid *cache_db, uint64 *cache_upto)
{
	Assert(!SpinLockFree(&aa_shared->mutex));
	if (hdr->state == AA_STATE_DONE)
		return true;
	if (hdr->state != AA_STATE_READY || hdr->kind == AA_KIND_PAD)
		return false;
	if (hdr->dboid != *cache_db)
	{
		int			i;

		*cache_db = hdr->dboid;
		*cache_upto = 0;
		for (i = 0; i < AA_MAX_DATABASES; i++)
		{
			if (aa_shared->dbs[i].dboid == hdr->dboid)
			{
				*cache_upto = *((volatile uint64 *) &aa_shared->dbs[i].committed_upto);
				break;
			}
		}
	}
	return hdr->pos + hdr->len <= *cache_upto;
}

/*
 * Move the tail over every finished record.
 */
static void
ring_advance_tail(void)
{
	Oid			cache_db = InvalidOid;
	uint64		cache_upto = 0;

	SpinLockAcquire(&aa_shared->mutex);
	while (ring_hdr->tail < ring_hdr->head)
	{
		RingRecordHeader *hdr = ring_at(ring_hdr->tail);

		if (!record_finished(hdr, &cache_db, &cache_upto))
			break;
		ring_hdr->tail += hdr->len;
	}
	SpinLockRelease(&aa_shared->mutex);
}

/*
 * Collect up to max_items READY records of dboid from *scan_pos on.
 * Stops before a record of this database still being copied, so records
 * are always written in queue order.  *scan_pos is advanced past what was
 * looked at.
 */
int
aa_queue_collect(Oid dboid, uint64 *scan_pos, int max_items,
				 AuditQueueItem *items)
{
	uint64		head;
	uint64		tail;
	uint64		pos;
	int			n = 0;

	SpinLockAcquire(&aa_shared->mutex);
	head = ring_hdr->head;
	tail = ring_hdr->tail;
	SpinLockRelease(&aa_shared->mutex);

	pos = Max(*scan_pos, tail);
	while (pos < head && n < max_items)
	{
		RingRecordHeader *hdr = ring_at(pos);
		uint32		state = hdr->state;

		pg_read_barrier();
		if (!header_at(hdr, pos))
		{
			/* the tail moved past us: resume from it next time */
			pos = aa_queue_tail();
			break;
		}
		if (hdr->kind != AA_KIND_PAD && hdr->dboid == dboid)
		{
			if (state == AA_STATE_RESERVED)
				break;
			if (state == AA_STATE_READY)
				record_decode(hdr, &items[n++]);
		}
		pos += hdr->len;
	}
	*scan_pos = pos;
	return n;
}

/*
 * The writer committed nitems records: publish how far this database is
 * written (for flush(), and as the mark that its records before that
 * position are finished), and free ring space.
 *
 * committed_upto is the writer's scan position: every record of dboid
 * before it was collected (collect stops at the first one still being
 * copied and never skips a READY one) and is now committed.
 */
void
aa_queue_complete(Oid dboid, int nitems, uint64 committed_upto)
{
	int			slot;

	/* everything we read of these records happened before they are freed */
	pg_memory_barrier();

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	slot = slot_find(dboid, false);
	if (slot >= 0)
	{
		if (committed_upto > aa_shared->dbs[slot].committed_upto)
			aa_shared->dbs[slot].committed_upto = committed_upto;
		if (nitems > 0)
		{
			aa_shared->dbs[slot].failures = 0;
			aa_shared->dbs[slot].last_flush = GetCurrentTimestamp();
			pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].written, nitems);
			stats_save(dboid);
		}
	}
	LWLockRelease(aa_shared->lock);

	ring_advance_tail();
}

/*
 * Does the ring hold an unfinished record of dboid before position upto?
 * A scan from the tail without the mutex (header_at stops it where a
 * producer reuses space), for flush() of a database without a slot.
 */
static bool
ring_holds_db(Oid dboid, uint64 upto)
{
	uint64		pos = aa_queue_tail();
	uint64		head = aa_queue_head();

	while (pos < head && pos < upto)
	{
		RingRecordHeader *hdr = ring_at(pos);

		if (!header_at(hdr, pos))
			return true;		/* moved under us: look again */
		if (hdr->kind != AA_KIND_PAD && hdr->dboid == dboid &&
			hdr->state != AA_STATE_DONE)
			return true;
		pos += hdr->len;
	}
	return false;
}

/*
 * Wait until every record of dboid queued before position upto is
 * committed.  Returns false on timeout.  Called from flush().
 */
bool
aa_queue_wait_committed(Oid dboid, uint64 upto, long timeout_ms)
{
	TimestampTz start = GetCurrentTimestamp();
	bool		was_sealed = false;

	for (;;)
	{
		int			slot;
		uint64		done = 0;
		Latch	   *latch = NULL;
		bool		exists;
		bool		sealed;

		/*
		 * A record sealed into an intent slot counts as queued before: wait
		 * for it to be moved into the ring, and then for the ring up to where
		 * it went.
		 */
		sealed = intent_sealed_pending(dboid);
		if (sealed || was_sealed)
			upto = Max(upto, aa_queue_head());
		was_sealed = sealed;

		LWLockAcquire(aa_shared->lock, LW_SHARED);
		slot = slot_find(dboid, false);
		exists = slot >= 0;
		if (exists)
		{
			done = aa_shared->dbs[slot].committed_upto;
			latch = aa_shared->dbs[slot].writer_latch;
		}
		LWLockRelease(aa_shared->lock);

		/*
		 * No slot: the database never queued anything, or its writer gave way
		 * and freed the slot (aa_queue_writer_yield).  Then records of it may
		 * still wait in the ring, for the launcher to adopt.
		 */
		if (!exists)
		{
			if (!ring_holds_db(dboid, upto) && !sealed)
				return true;
			(void) pg_atomic_exchange_u32(&aa_shared->unslotted, 1);
			if (aa_shared->launcher_latch)
				SetLatch(aa_shared->launcher_latch);
		}
		else if (done >= upto && !sealed)
			return true;
		else if (latch)
			SetLatch(latch);
		else
			wake_writer(slot);
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			return false;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 5, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * The database table is full and a database without a slot has records:
 * take back the slot of a database that needs none now, one that has no
 * writer (live, or wanted) and no record left to write, in the ring or
 * sealed in an intent slot.  A running writer gives its slot back itself
 * once caught up (aa_queue_writer_yield), but one that left because it was
 * idle keeps it; without this, once every writer had left, the records of
 * a database without a slot would wait for good (the launcher asks running
 * writers to give way, and there are none).  The database written least
 * recently gives way.  Returns whether a slot was freed.  Caller is the
 * launcher and holds the lock exclusively, so no writer claims a slot
 * meanwhile and every committed_upto stands still.
 *
 * As in aa_queue_writer_yield, the database's committed records still in
 * the ring are marked DONE first, and its slot is cleared under the mutex:
 * a record its backends reserve after that has no slot and asks for
 * adoption itself, and one reserved just before is adopted at the next scan
 * (the caller sets the flag for it).
 */
static bool
slot_reclaim_idle(void)
{
	bool		busy[AA_MAX_DATABASES];
	uint64		pos;
	uint64		head;
	Oid			cache_db = InvalidOid;
	int			cache_slot = -1;
	int			victim = -1;
	int			i;
	AuditDbSlot *s;
	Oid			dboid;

	Assert(LWLockHeldByMeInMode(aa_shared->lock, LW_EXCLUSIVE));
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		s = &aa_shared->dbs[i];
		busy[i] = s->dboid == InvalidOid || s->writer_wanted ||
			(s->writer_pid != 0 && kill(s->writer_pid, 0) == 0) ||
			intent_sealed_pending(s->dboid);
	}

	/* records not committed yet, and records being copied, keep their slot */
	SpinLockAcquire(&aa_shared->mutex);
	pos = ring_hdr->tail;
	head = ring_hdr->head;
	SpinLockRelease(&aa_shared->mutex);
	for (i = 0; pos < head; i++)
	{
		RingRecordHeader *hdr = ring_at(pos);

		if (i >= 100000 || !header_at(hdr, pos))
			return false;		/* the next round looks again */
		if (hdr->kind != AA_KIND_PAD && hdr->state != AA_STATE_DONE)
		{
			if (hdr->dboid != cache_db)
			{
				int			j;

				cache_db = hdr->dboid;
				cache_slot = -1;
				for (j = 0; j < AA_MAX_DATABASES; j++)
					if (aa_shared->dbs[j].dboid == cache_db)
						cache_slot = j;
			}
			if (cache_slot >= 0 &&
				(hdr->state != AA_STATE_READY ||
				 hdr->pos + hdr->len > aa_shared->dbs[cache_slot].committed_upto))
				busy[cache_slot] = true;
		}
		pos += hdr->len;
	}

	for (i = 0; i < AA_MAX_DATABASES; i++)
		if (!busy[i] && (victim < 0 ||
						 aa_shared->dbs[i].last_flush < aa_shared->dbs[victim].last_flush))
			victim = i;
	if (victim < 0)
		return false;

	s = &aa_shared->dbs[victim];
	dboid = s->dboid;
	ereport(DEBUG1,
			errmsg("access_audit took back the queue slot of database %u for a database without one",
				   dboid),
			errdetail("Its writer had left and it had nothing left to write."));
	(void) ring_mark_done(dboid, s->committed_upto);
	slot_free(s);
	return true;
}

/*
 * Launcher: the databases that want a writer and have none.  Also adopts
 * databases whose records sit in the ring without a slot (the table was
 * full when they were queued).
 */
int
aa_queue_writers_wanted(Oid *dboids, int max)
{
	int			i;
	int			n = 0;
	uint64		pos;
	uint64		head;

	SpinLockAcquire(&aa_shared->mutex);
	pos = ring_hdr->tail;
	head = ring_hdr->head;
	SpinLockRelease(&aa_shared->mutex);

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);

	/*
	 * Pending records of databases without a slot (bounded scan).  Only when
	 * a producer found no slot, or the ring was recovered at start-up:
	 * otherwise every pending record's database has one, and walking the ring
	 * every second would cost the launcher a pass over up to 100,000 headers
	 * under the exclusive lock for nothing.  The flag is cleared first, so a
	 * producer setting it during the scan is seen next time.
	 */
	if (pg_atomic_exchange_u32(&aa_shared->unslotted, 0) != 0)
	{
		bool		again = false;
		bool		reclaim_failed = false;

		for (i = 0; pos < head; i++)
		{
			RingRecordHeader *hdr = ring_at(pos);

			if (i >= 100000 || !header_at(hdr, pos))
			{
				again = true;
				break;
			}
			/* RESERVED too: a record being filled as its slot was freed */
			if (hdr->kind != AA_KIND_PAD && hdr->state != AA_STATE_DONE &&
				slot_find(hdr->dboid, false) < 0)
			{
				int			slot = slot_find(hdr->dboid, true);

				/*
				 * Table full: take back a slot that no writer needs now (at
				 * most one failed try per scan).  A record that the database
				 * giving way reserved meanwhile lies past this scan's end:
				 * scan again next round.
				 */
				if (slot < 0 && !reclaim_failed)
				{
					if (slot_reclaim_idle())
					{
						slot = slot_find(hdr->dboid, true);
						again = true;
					}
					else
						reclaim_failed = true;
				}
				if (slot >= 0)
					aa_shared->dbs[slot].writer_wanted = true;
				else
				{
					/* table full: a writer frees a slot (writer_yield) */
					again = true;
					pg_atomic_write_u32(&aa_shared->starved, 1);
				}
			}
			pos += hdr->len;
		}
		if (again)
			pg_atomic_write_u32(&aa_shared->unslotted, 1);
	}
	for (i = 0; i < AA_MAX_DATABASES && n < max; i++)
	{
		AuditDbSlot *s = &aa_shared->dbs[i];

		if (s->dboid == InvalidOid)
			continue;
		if (s->writer_pid != 0 && kill(s->writer_pid, 0) != 0)
		{
			s->writer_pid = 0;
			s->writer_latch = NULL;
		}
		if (s->writer_pid == 0 && s->writer_wanted)
			dboids[n++] = s->dboid;
	}
	LWLockRelease(aa_shared->lock);

	/*
	 * The database whose record holds the tail goes first: while it waits for
	 * a writer, no ring space is freed for anyone.
	 */
	if (n > 1)
	{
		Oid			blocker = InvalidOid;

		SpinLockAcquire(&aa_shared->mutex);
		if (ring_hdr->tail < ring_hdr->head)
		{
			RingRecordHeader *hdr = ring_at(ring_hdr->tail);

			if (header_at(hdr, ring_hdr->tail) && hdr->kind != AA_KIND_PAD)
				blocker = hdr->dboid;
		}
		SpinLockRelease(&aa_shared->mutex);
		for (i = 1; i < n; i++)
		{
			if (dboids[i] == blocker)
			{
				dboids[i] = dboids[0];
				dboids[0] = blocker;
				break;
			}
		}
	}
	return n;
}

/*
 * Launcher: may a writer for dboid start now?  Not while the back-off after
 * its last failed writer runs: 1 s after one failure, doubling with each
 * further failure in a row, at most a minute.
 */
bool
aa_queue_writer_may_start(Oid dboid)
{
	int			slot;
	uint32		failures = 0;
	TimestampTz stopped = 0;

	LWLockAcquire(aa_shared->lock, LW_SHARED);
	slot = slot_find(dboid, false);
	if (slot >= 0)
	{
		failures = aa_shared->dbs[slot].failures;
		stopped = aa_shared->dbs[slot].stopped_at;
	}
	LWLockRelease(aa_shared->lock);
	if (failures == 0)
		return true;
	return TimestampDifferenceExceeds(stopped, GetCurrentTimestamp(),
									  Min(1000 << Min(failures - 1, 6), 60000));
}

void
aa_queue_set_launcher(Latch *latch)
{
	aa_shared->launcher_latch = latch;
}

/*
 * Ask the writer of dboid to stop now (it exits once idle; DROP DATABASE
 * waits for it).  Pending records stay until the drop commits.
 */
void
aa_queue_stop_writer(Oid dboid)
{
	int			slot;

	LWLockAcquire(aa_shared->lock, LW_SHARED);
	slot = slot_find(dboid, false);
	if (slot >= 0 && aa_shared->dbs[slot].writer_pid != 0)
		kill(aa_shared->dbs[slot].writer_pid, SIGTERM);
	LWLockRelease(aa_shared->lock);
}

/*
 * Mark DONE the READY records of dboid that end at or before upto, so the
 * tail can pass them whatever the database's slot says; returns how many.
 * A position behind the tail may already hold another producer's record,
 * so each chunk of the walk is done under the mutex, starting at the tail.
 */
static int
ring_mark_done(Oid dboid, uint64 upto)
{
	uint64		pos = 0;
	int			n = 0;

	for (;;)
	{
		int			i;

		SpinLockAcquire(&aa_shared->mutex);
		if (pos < ring_hdr->tail)
			pos = ring_hdr->tail;
		for (i = 0; i < 1000 && pos < upto && pos < ring_hdr->head; i++)
		{
			RingRecordHeader *hdr = ring_at(pos);

			if (!header_at(hdr, pos))
				break;
			if (hdr->kind != AA_KIND_PAD && hdr->dboid == dboid &&
				hdr->state == AA_STATE_READY && pos + hdr->len <= upto)
			{
				hdr->state = AA_STATE_DONE;
				n++;
			}
			pos += hdr->len;
		}
		SpinLockRelease(&aa_shared->mutex);
		if (i < 1000)
			break;
	}
	return n;
}

/*
 * A database is being dropped: its pending records can never be written
 * (the log goes with it), so finish them and free its slot.
 */
void
aa_queue_forget_database(Oid dboid)
{
	int			slot;

	if (!aa_queue_ready())
		return;
	(void) ring_mark_done(dboid, aa_queue_head());
	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	slot = slot_find(dboid, false);
	if (slot >= 0)
	{
		if (aa_shared->dbs[slot].writer_pid != 0)
			kill(aa_shared->dbs[slot].writer_pid, SIGTERM);
		aa_shared->dbs[slot].dboid = InvalidOid;
	}
	{
		AuditDbCounters *c = retired_find(dboid, false);

		if (c != NULL)
			c->dboid = InvalidOid;
	}
	for (slot = 0; slot < AA_RING_HEADS; slot++)
		if (chain_head_at(slot)->dboid == dboid)
			memset(chain_head_at(slot), 0, sizeof(RingChainHead));
	{
		StatsDbEntry *e = stats_db_find(dboid, false);

		if (e != NULL)
			memset(e, 0, sizeof(*e));
		stats_tags_forget(dboid);
	}
	LWLockRelease(aa_shared->lock);
	aa_queue_complete(InvalidOid, 0, 0);
}

/*
 * Called by a writer that has caught up (its last batch was not full).
 * If the launcher has a database it cannot serve (no free worker process,
 * or no free slot in the database table) and this writer has run for at
 * least min_ms, it gives way: returns true and the caller exits.  One
 * writer yields per launcher round: the first to take the flag.
 *
 * A yielding writer also frees its database's slot, so that a database
 * without one can have it (the table holds AA_MAX_DATABASES).  Its
 * committed records still in the ring are first marked DONE: the tail must
 * be able to pass them once no slot says how far they are committed.
 * Records of the
 * database not yet written stay READY; like every record queued from now
 * on (producers check their slot under the same mutex, aa_queue_push), they
 * are records without a slot, which the launcher gives a slot and a writer
 * again (aa_queue_writers_wanted).
 */
bool
aa_queue_writer_yield(Oid dboid, uint64 scan_pos, TimestampTz started, int min_ms)
{
	int			slot;

	if (pg_atomic_read_u32(&aa_shared->starved) == 0 ||
		!TimestampDifferenceExceeds(started, GetCurrentTimestamp(), min_ms) ||
		pg_atomic_exchange_u32(&aa_shared->starved, 0) == 0)
		return false;

	/* committed records of dboid behind scan_pos */
	(void) ring_mark_done(dboid, scan_pos);

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	slot = slot_find(dboid, false);
	if (slot >= 0)
		slot_free(&aa_shared->dbs[slot]);
	LWLockRelease(aa_shared->lock);

	/*
	 * Records whose database had no slot may now take this one.  The launcher
	 * is told when this process has exited (bgw_notify_pid), which is when
	 * its background worker is free.
	 */
	(void) pg_atomic_exchange_u32(&aa_shared->unslotted, 1);
	return true;
}

/*
 * Launcher: a database wants a writer that cannot be started (no free
 * background worker).  Running writers yield once caught up.
 */
void
aa_queue_set_starved(void)
{
	pg_atomic_write_u32(&aa_shared->starved, 1);
}

/*
 * CREATE EXTENSION access_audit runs in transaction xid of dboid.  Its
 * records (tag changes in the same transaction, say) are queued before it
 * commits; a writer that finds no extension asks here whether one may
 * still come (aa_queue_extension_creators).  Kept in a small ring: only the
 * creations of the last moments matter.
 */
void
aa_queue_extension_creating(Oid dboid, TransactionId xid)
{
	int			i;

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	i = aa_shared->creating_next++ % AA_MAX_DATABASES;
	aa_shared->creating_db[i] = dboid;
	aa_shared->creating_xid[i] = xid;
	/* its tags are now seen by its own status() */
	stats_tags_forget(dboid);
	LWLockRelease(aa_shared->lock);
}

/*
 * The transactions that created the extension in dboid (up to max).
 */
int
aa_queue_extension_creators(Oid dboid, TransactionId * xids, int max)
{
	int			i;
	int			n = 0;

	LWLockAcquire(aa_shared->lock, LW_SHARED);
	for (i = 0; i < AA_MAX_DATABASES && n < max; i++)
		if (aa_shared->creating_db[i] == dboid)
			xids[n++] = aa_shared->creating_xid[i];
	LWLockRelease(aa_shared->lock);
	return n;
}

/*
 * Discard the records of dboid queued before position upto: its extension
 * is gone (dropped, or its creation rolled back), so no log will take
 * them, and kept they would hold the ring's tail for good.  Returns how
 * many.
 */
int
aa_queue_discard_database(Oid dboid, uint64 upto)
{
	int			n = ring_mark_done(dboid, upto);

	aa_queue_complete(InvalidOid, 0, 0);
	return n;
}

/*
 * The entry of dboid among the n in out, added (zeroed, nothing committed)
 * if absent and there is room; -1 if there is none.
 */
static int
stats_entry(AuditQueueDbStats *out, uint64 *upto, int *n, int max, Oid dboid)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (out[i].dboid == dboid)
			return i;
	if (*n >= max)
		return -1;
	memset(&out[i], 0, sizeof(AuditQueueDbStats));
	out[i].dboid = dboid;
	upto[i] = 0;
	(*n)++;
	return i;
}

/*
 * Per-database statistics: databases with a slot, with kept counters, and
 * with records waiting for a slot.  Pending bytes and the oldest pending
 * record come from a scan of the ring, so this is for monitoring, not hot
 * paths.
 */
int
aa_queue_stats(AuditQueueDbStats *out, int max)
{
	int			i;
	int			n = 0;
	uint64		pos;
	uint64		head;
	uint64		upto[AA_QUEUE_STATS_MAX];

	Assert(max <= AA_QUEUE_STATS_MAX);
	LWLockAcquire(aa_shared->lock, LW_SHARED);
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		AuditDbSlot *s = &aa_shared->dbs[i];
		int			j;

		if (s->dboid == InvalidOid ||
			(j = stats_entry(out, upto, &n, max, s->dboid)) < 0)
			continue;
		upto[j] = s->committed_upto;
		out[j].queued = pg_atomic_read_u64(&s->queued);
		out[j].written = pg_atomic_read_u64(&s->written);
		out[j].waits = pg_atomic_read_u64(&s->waits);
		out[j].gaps = pg_atomic_read_u64(&s->gaps);
		out[j].writer_pid = s->writer_pid;
		out[j].last_flush = s->last_flush;
	}

	/* kept counters: of databases without a slot, or counted meanwhile */
	for (i = 0; i < AA_MAX_DATABASES; i++)
	{
		AuditDbCounters *c = &aa_shared->retired[i];
		int			j;

		if (c->dboid == InvalidOid ||
			(j = stats_entry(out, upto, &n, max, c->dboid)) < 0)
			continue;
		out[j].queued += c->queued;
		out[j].written += c->written;
		out[j].waits += c->waits;
		out[j].gaps += c->gaps;
		out[j].last_flush = Max(out[j].last_flush, c->last_flush);
	}

	/* what earlier server lives counted (see "Durable counters") */
	for (i = 0; i < AA_STATS_DBS; i++)
	{
		StatsDbEntry *e = stats_db_at(i);
		int			j;

		if (e->dboid == InvalidOid ||
			(j = stats_entry(out, upto, &n, max, e->dboid)) < 0)
			continue;
		out[j].queued += e->base[ST_QUEUED];
		out[j].written += e->base[ST_WRITTEN];
		out[j].waits += e->base[ST_WAITS];
		out[j].gaps += e->base[ST_GAPS];
	}
	LWLockRelease(aa_shared->lock);

	SpinLockAcquire(&aa_shared->mutex);
	pos = ring_hdr->tail;
	head = ring_hdr->head;
	SpinLockRelease(&aa_shared->mutex);
	while (pos < head)
	{
		RingRecordHeader *hdr = ring_at(pos);
		uint32		len = hdr->len;

		if (!header_at(hdr, pos))
			break;

		/*
		 * Pending, unless committed and waiting only for the tail; a database
		 * waiting for a slot has pending records too.
		 */
		if (hdr->kind != AA_KIND_PAD && hdr->state != AA_STATE_DONE &&
			(i = stats_entry(out, upto, &n, max, hdr->dboid)) >= 0 &&
			pos + len > upto[i])
		{
			out[i].pending_bytes += len;
			if (out[i].oldest_pending == 0 &&
				(hdr->kind == AA_KIND_READ || hdr->kind == AA_KIND_READ_V2) &&
				hdr->state == AA_STATE_READY)
			{
				RingBodyFixed fx;

				memcpy(&fx, (char *) hdr + sizeof(RingRecordHeader), sizeof(fx));
				out[i].oldest_pending = fx.ts;
			}
		}
		pos += len;
	}
	return n;
}

/* ---------------------------------------------------------------------
 * Intents
 *
 * A record reaches the ring when its statement ends, from ExecutorEnd or
 * from the memory-context callback that runs on error and FATAL exits.  A
 * backend killed with SIGKILL, or a server crash, runs neither: the rows
 * it had sent would go unrecorded.  So a statement that sends many rows (a
 * cursor, COPY, a large estimate) first writes its record into this
 * backend's slot of a second mapped file, pg_access_audit/intents, and
 * keeps its row count there up to date after each run; the record in the
 * ring supersedes it at the end.  Replay after a crash turns every slot
 * still active into a record of an interrupted statement.
 *
 * Ownership: slot i belongs to the process with pgprocno i; only it writes
 * the slot.  The postmaster's replay reads it when no backend is alive;
 * aa_queue_intents_read() (the view of reads in progress) reads it while
 * its owner may be writing, and keeps a copy only if the slot was active
 * before and after and the copy matches its checksum.  The state word is written last (after a write barrier) when a
 * slot is opened, so a torn slot is never replayed.
 * ---------------------------------------------------------------------
 */

static inline IntentSlot *
intent_slot(int i)
{
	return (IntentSlot *) ((char *) intent_hdr + AA_INTENT_SLOT_SIZE * (Size) (i + 1));
}

/*
 * Append a record to the ring in the postmaster at start-up, with no other
 * process alive.  Returns false if the ring has no room.
 */
static bool
ring_append_startup(Oid dboid, const AuditRecord *rec)
{
	Size		body = record_body_size(rec);
	uint64		len = TYPEALIGN(AA_RECORD_ALIGN, sizeof(RingRecordHeader) + body);
	uint64		pos = ring_hdr->head;
	uint64		pad = ring_pad(pos, len);
	RingRecordHeader *hdr;
	int			slot;

	if (len > ring_cap / 4 || pos + pad + len - ring_hdr->tail > ring_cap)
		return false;
	if (pad > 0)
		pos = ring_write_pad(pos, pad);
	hdr = ring_write_header(pos, len, dboid, AA_KIND_READ, AA_STATE_RESERVED);
	memset((char *) hdr + sizeof(RingRecordHeader), 0, len - sizeof(RingRecordHeader));
	record_serialize(rec, (char *) hdr + sizeof(RingRecordHeader));
	hdr->crc = record_crc(hdr);
	hdr->state = AA_STATE_READY;
	ring_hdr->head = pos + len;

	slot = slot_find(dboid, true);
	if (slot >= 0)
	{
		aa_shared->dbs[slot].writer_wanted = true;
		pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].queued, 1);
	}
	return true;
}

/*
 * Replay the active slots of a mapped intents file into the ring as
 * records of interrupted statements, and free them.
 */
static void
intent_replay(IntentFileHeader *h)
{
	uint32		i;
	int			n = 0;
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext,
											  "access_audit intent replay",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);

	for (i = 0; i < h->nslots; i++)
	{
		IntentSlot *sl = (IntentSlot *) ((char *) h + (Size) h->slot_size * (i + 1));
		const char *body = (const char *) sl + sizeof(IntentSlot);
		AuditQueueItem item;

		uint32		state = sl->state;

		if (state != AA_INTENT_ACTIVE && state != AA_INTENT_SEALED)
			continue;
		sl->state = AA_INTENT_FREE;
		if (sl->len > h->slot_size - sizeof(IntentSlot))
			continue;
		if (state == AA_INTENT_SEALED)
		{
			int64		off = sealed_from(sl);

			/* finished records that waited for room: as they are */
			while (sealed_next(sl, h->slot_size - sizeof(IntentSlot), &off, &item))
			{
				if (ring_append_startup(sl->dboid, &item.rec))
					n++;
				else
					ereport(WARNING,
							errmsg("access_audit queue has no room for a record sealed by a backend"),
							errdetail("Statement: %s", item.rec.query ? item.rec.query : "(unknown)"));
			}
			continue;
		}
		memset(&item, 0, sizeof(item));
		if (body_crc(body, sl->len) != sl->crc ||
			!record_decode_body(AA_KIND_READ, body, body + sl->len, &item, false))
			continue;
		item.rec.outcome = AA_OUTCOME_ERROR;
		item.rec.rows = sl->rows;
		item.rec.tagged_rows = sl->tagged_rows;
		item.rec.detail = psprintf("{\"interrupted\": \"the backend ended before the statement did (server crash or SIGKILL)\", \"rows_at_least\": " INT64_FORMAT "}",
								   (int64) Max(sl->rows, sl->tagged_rows));
		if (ring_append_startup(sl->dboid, &item.rec))
			n++;
		else
			ereport(WARNING,
					errmsg("access_audit queue has no room for the record of an interrupted statement"),
					errdetail("Statement: %s", item.rec.query ? item.rec.query : "(unknown)"));
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	if (n > 0)
		ereport(LOG,
				errmsg("access_audit recorded %d statements interrupted by the crash", n));
}

/*
 * Map the intents file (postmaster, at start and after every crash), first
 * replaying what a previous server life left in it.  A file of another
 * size (max_connections changed) is replayed, then made anew.
 */
static void
intent_map_and_recover(void)
{
	uint32		nslots = (uint32) MaxBackends;
	Size		size = (Size) AA_INTENT_SLOT_SIZE * (nslots + 1);
	int			fd;
	struct stat st;
	void	   *p;

	if (intent_hdr != NULL)
	{
		/* crash-restart: the mapping is still ours */
		intent_replay(intent_hdr);
		return;
	}

	fd = OpenTransientFile(AA_INTENT_FILE, O_RDWR | O_CREAT | PG_BINARY);
	if (fd < 0 || fstat(fd, &st) < 0)
		ereport(FATAL,
				errcode_for_file_access(),
				errmsg("could not open file \"%s\": %m", AA_INTENT_FILE));

	/* a file left by an earlier life: replay it whatever its size */
	if (st.st_size >= AA_INTENT_SLOT_SIZE)
	{
		void	   *q = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

		if (q != MAP_FAILED)
		{
			IntentFileHeader *h = (IntentFileHeader *) q;

			/*
			 * A file copied from another server (pg_basebackup) holds that
			 * server's statements, which it records itself.
			 */
			if (h->magic == AA_INTENT_MAGIC && h->version == AA_INTENT_VERSION &&
				h->slot_size >= sizeof(IntentSlot) &&
				(Size) h->slot_size * (h->nslots + 1) <= (Size) st.st_size &&
				h->file_ino == (uint64) st.st_ino)
				intent_replay(h);
			munmap(q, st.st_size);
		}
	}

	/* start empty: whatever was there has been replayed or is not ours */
	file_reset(fd, size, AA_INTENT_FILE);
	p = file_map(fd, size, AA_INTENT_FILE);
	intent_hdr = (IntentFileHeader *) p;
	intent_hdr->magic = AA_INTENT_MAGIC;
	intent_hdr->version = AA_INTENT_VERSION;
	intent_hdr->nslots = nslots;
	intent_hdr->slot_size = AA_INTENT_SLOT_SIZE;
	intent_hdr->file_ino = (uint64) st.st_ino;
}

/*
 * This process's intent slot, or NULL if it has none.
 */
static IntentSlot *
my_intent_slot(void)
{
	int			procno = aa_my_procno_compat();

	if (intent_hdr == NULL || procno < 0 ||
		(uint32) procno >= intent_hdr->nslots)
		return NULL;
	return intent_slot(procno);
}

/*
 * Write the record of a statement about to send many rows into this
 * backend's intent slot.  Returns false (and writes nothing) if there is no
 * slot for this process, or another statement of this backend holds it (a
 * second open cursor): that statement's record stays protected.  No ERROR:
 * runs inside the executor hooks.
 */
bool
aa_queue_intent_open(const AuditRecord *in)
{
	AuditRecord rec = *in;
	IntentSlot *sl = my_intent_slot();
	Size		body;

	if (sl == NULL || sl->state != AA_INTENT_FREE)
		return false;
	record_bound(&rec);
	body = record_body_size(&rec);
	if (body > INTENT_BODY_MAX)
	{
		/* record_shrink() counts a ring header in its limit: room to spare */
		record_shrink(&rec, INTENT_BODY_MAX);
		body = record_body_size(&rec);
		if (body > INTENT_BODY_MAX)
			return false;
	}
	record_serialize(&rec, (char *) sl + sizeof(IntentSlot));
	sl->len = (uint32) body;
	sl->dboid = MyDatabaseId;
	sl->rows = 0;
	sl->tagged_rows = 0;
	sl->crc = body_crc((char *) sl + sizeof(IntentSlot), body);
	pg_write_barrier();
	sl->state = AA_INTENT_ACTIVE;
	return true;
}

/*
 * The rows the open intent's statement has produced and read so far.
 */
void
aa_queue_intent_rows(int64 rows, int64 tagged_rows)
{
	IntentSlot *sl = my_intent_slot();

	if (sl == NULL || sl->state != AA_INTENT_ACTIVE)
		return;
	sl->rows = rows;
	sl->tagged_rows = tagged_rows;
}

/*
 * The statement's record is in the ring: free the slot (unless it now
 * holds a sealed record, which only its writer frees).
 */
void
aa_queue_intent_close(void)
{
	IntentSlot *sl = my_intent_slot();

	if (sl == NULL || sl->state != AA_INTENT_ACTIVE)
		return;
	pg_write_barrier();
	sl->state = AA_INTENT_FREE;
}

/*
 * Reads in progress: copy every active intent slot (the records of
 * statements that are sending many rows now, or hold an open cursor) and
 * decode it, with the rows it has sent and read so far.  Returns the number
 * of records; *out is palloc'd in the current memory context, strings
 * included.
 *
 * Slots are written by their owners without a lock: a slot is copied, then
 * kept only if it was active before and after the copy and its body checks
 * against its checksum, so a slot being reused is skipped, never misread.
 */
int
aa_queue_intents_read(AuditQueueItem **out)
{
	uint32		i;
	int			n = 0;
	AuditQueueItem *items;

	*out = NULL;
	if (intent_hdr == NULL)
		return 0;
	items = palloc0(sizeof(AuditQueueItem) * Max(intent_hdr->nslots, 1));
	for (i = 0; i < intent_hdr->nslots; i++)
	{
		IntentSlot *sl = intent_slot(i);
		uint32		len;
		pg_crc32c	crc;
		Oid			dboid;
		int64		rows;
		int64		tagged_rows;
		char	   *body;

		if (sl->state != AA_INTENT_ACTIVE)
			continue;
		pg_read_barrier();
		len = sl->len;
		crc = sl->crc;
		dboid = sl->dboid;
		rows = sl->rows;
		tagged_rows = sl->tagged_rows;
		if (len > INTENT_BODY_MAX)
			continue;
		body = palloc(len);
		memcpy(body, (char *) sl + sizeof(IntentSlot), len);
		pg_read_barrier();
		if (sl->state != AA_INTENT_ACTIVE || body_crc(body, len) != crc ||
			!record_decode_body(AA_KIND_READ, body, body + len, &items[n],
								false))
		{
			pfree(body);
			memset(&items[n], 0, sizeof(AuditQueueItem));
			continue;
		}
		items[n].rec.rows = rows;
		items[n].rec.tagged_rows = tagged_rows;
		items[n].pos = (uint64) dboid;
		n++;
	}
	*out = items;
	return n;
}

/*
 * Sealed records.  A backend that must stop waiting for ring space
 * (cancelled or terminated while the ring is full, aa_queue_push) seals the
 * record into its intent slot instead, and so do its further records until
 * one goes into the ring again (the abort that follows a cancel pushes the
 * record of the statement it interrupted).  A sealed slot holds a packed
 * list of entries from offset sealed_from (kept in the slot's rows word) to
 * len: each a SealedEntry and the record's body, MAXALIGNed.  Entries are
 * appended by the slot's backend and moved into the ring by its database's
 * writer (aa_queue_requeue_sealed), both under aa_shared->lock; a crash
 * replays what is left (intent_replay).
 */
/*
 * Seal a finished record into this backend's intent slot (see above).  An
 * intent of this backend's statement is overwritten: the finished record
 * supersedes it.  Returns false if there is no slot or no room left in it.
 * No ERROR: called from aa_queue_push.
 */
static bool
intent_seal(const AuditRecord *in)
{
	AuditRecord rec = *in;
	IntentSlot *sl = my_intent_slot();
	Size		body;
	Size		used;
	char	   *p;
	SealedEntry e;

	if (sl == NULL)
		return false;
	body = record_body_size(&rec);
	if (body > INTENT_BODY_MAX / 2)
	{
		record_shrink(&rec, INTENT_BODY_MAX / 2);
		body = record_body_size(&rec);
		if (body > INTENT_BODY_MAX / 2)
			return false;
	}

	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	if (sl->state == AA_INTENT_SEALED && sl->dboid != MyDatabaseId)
	{
		/* left by an earlier process of another database: not ours to add to */
		LWLockRelease(aa_shared->lock);
		return false;
	}
	if (sl->state == AA_INTENT_SEALED)
		used = sl->len;
	else
	{
		/* an intent being replaced must not be replayed half-written */
		sl->state = AA_INTENT_FREE;
		pg_write_barrier();
		used = 0;
		sl->dboid = MyDatabaseId;
		sl->tagged_rows = 0;
		sealed_from(sl) = 0;
	}
	if (used + MAXALIGN(sizeof(SealedEntry) + body) > INTENT_BODY_MAX)
	{
		LWLockRelease(aa_shared->lock);
		return false;
	}
	p = (char *) sl + sizeof(IntentSlot) + used;
	record_serialize(&rec, p + sizeof(SealedEntry));
	e.len = (uint32) body;
	e.crc = body_crc(p + sizeof(SealedEntry), body);
	memcpy(p, &e, sizeof(e));
	pg_write_barrier();
	sl->len = (uint32) (used + MAXALIGN(sizeof(SealedEntry) + body));
	pg_write_barrier();
	sl->state = AA_INTENT_SEALED;

	{
		int			slot = slot_find(MyDatabaseId, true);

		if (slot >= 0)
		{
			pg_atomic_fetch_add_u64(&aa_shared->dbs[slot].queued, 1);
			aa_shared->dbs[slot].writer_wanted = true;
		}
	}
	LWLockRelease(aa_shared->lock);
	pg_atomic_write_u32(&aa_shared->sealed, 1);
	return true;
}

/*
 * The next entry of a sealed slot at offset *off, decoded into item
 * (pointing into the slot); advances *off.  False at the end, or if the
 * entry does not check out (the rest of the slot is then unusable).
 */
static bool
sealed_next(IntentSlot *sl, Size slot_body_max, int64 *off,
			AuditQueueItem *item)
{
	const char *base = (const char *) sl + sizeof(IntentSlot);
	SealedEntry e;
	const char *body;

	if (*off < 0 || sl->len > slot_body_max ||
		*off + sizeof(SealedEntry) > sl->len)
		return false;
	memcpy(&e, base + *off, sizeof(e));
	body = base + *off + sizeof(SealedEntry);
	if (*off + MAXALIGN(sizeof(SealedEntry) + e.len) > sl->len ||
		body_crc(body, e.len) != e.crc)
		return false;
	memset(item, 0, sizeof(AuditQueueItem));
	if (!record_decode_body(AA_KIND_READ, body, body + e.len, item, false))
		return false;
	*off += MAXALIGN(sizeof(SealedEntry) + e.len);
	return true;
}

/*
 * Does some intent slot hold a sealed record of dboid?
 */
static bool
intent_sealed_pending(Oid dboid)
{
	uint32		i;

	if (intent_hdr == NULL || pg_atomic_read_u32(&aa_shared->sealed) == 0)
		return false;
	for (i = 0; i < intent_hdr->nslots; i++)
	{
		IntentSlot *sl = intent_slot(i);

		if (sl->state == AA_INTENT_SEALED && sl->dboid == dboid)
			return true;
	}
	return false;
}

/*
 * Append rec of dboid to the ring if there is room now; never waits.
 * Returns false if the ring is full.
 */
static bool
ring_try_append(Oid dboid, const AuditRecord *rec)
{
	Size		body = record_body_size(rec);
	uint64		len = TYPEALIGN(AA_RECORD_ALIGN, sizeof(RingRecordHeader) + body);
	uint64		pos;
	uint64		pad;
	RingRecordHeader *hdr;
	char	   *p;

	if (len > ring_cap / 4)
		return false;
	SpinLockAcquire(&aa_shared->mutex);
	pos = ring_hdr->head;
	pad = ring_pad(pos, len);
	if (pos + pad + len - ring_hdr->tail > ring_cap)
	{
		SpinLockRelease(&aa_shared->mutex);
		return false;
	}
	if (pad > 0)
		pos = ring_write_pad(pos, pad);
	hdr = ring_write_header(pos, len, dboid, AA_KIND_READ, AA_STATE_RESERVED);
	pg_write_barrier();
	ring_hdr->head = pos + len;
	SpinLockRelease(&aa_shared->mutex);

	p = (char *) hdr + sizeof(RingRecordHeader);
	record_serialize(rec, p);
	if (len - sizeof(RingRecordHeader) > body)
		memset(p + body, 0, len - sizeof(RingRecordHeader) - body);
	hdr->crc = record_crc(hdr);
	pg_write_barrier();
	hdr->state = AA_STATE_READY;
	return true;
}

/*
 * Writer (or shipper) of dboid: move the records of dboid that backends
 * sealed into their intent slots (see intent_seal) into the ring, as far
 * as it has room now.  Each ring record is complete before the slot's
 * offset moves past it, so a crash in between can only replay it twice,
 * never lose it.  Returns how many were moved.
 */
int
aa_queue_requeue_sealed(Oid dboid)
{
	uint32		i;
	int			n = 0;
	MemoryContext cxt;
	MemoryContext old;

	if (intent_hdr == NULL || pg_atomic_read_u32(&aa_shared->sealed) == 0)
		return 0;
	cxt = AllocSetContextCreate(CurrentMemoryContext,
								"access_audit sealed records",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	LWLockAcquire(aa_shared->lock, LW_EXCLUSIVE);
	for (i = 0; i < intent_hdr->nslots; i++)
	{
		IntentSlot *sl = intent_slot(i);
		int64		off;
		AuditQueueItem item;
		bool		full = false;

		if (sl->state != AA_INTENT_SEALED || sl->dboid != dboid)
			continue;
		pg_read_barrier();
		off = sealed_from(sl);
		while (off < sl->len)
		{
			int64		next = off;

			if (!sealed_next(sl, INTENT_BODY_MAX, &next, &item))
			{
				ereport(WARNING,
						errmsg("access_audit dropped damaged records sealed by a backend of database %u",
							   dboid));
				off = sl->len;
				break;
			}
			if (!ring_try_append(dboid, &item.rec))
			{
				full = true;
				break;
			}
			pg_write_barrier();
			off = next;
			sealed_from(sl) = off;
			n++;
		}
		if (!full && off >= sl->len)
		{
			pg_write_barrier();
			sl->state = AA_INTENT_FREE;
		}
		if (full)
			break;
	}
	LWLockRelease(aa_shared->lock);
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	return n;
}
