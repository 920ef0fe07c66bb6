/*-------------------------------------------------------------------------
 *
 * queue.h
 *		Interface of the crash-safe shared-memory queue of audit records.
 *
 * IDENTIFICATION
 *	  extension/queue.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_QUEUE_H
#define AA_QUEUE_H

#include "lib/stringinfo.h"
#include "storage/latch.h"

#include "access_audit.h"

/* One record handed to the writer: its ring position and decoded body. */
typedef struct AuditQueueItem
{
	uint64		pos;
	uint64		len;
	AuditRecord rec;
	int64		gap_bytes;		/* for AA_KIND_GAP */
} AuditQueueItem;

/*
 * Per-database statistics, as returned by aa_queue_stats(): databases with
 * a slot, with kept counters, and with records waiting for a slot.
 */
#define AA_QUEUE_STATS_MAX (3 * AA_MAX_DATABASES)

typedef struct AuditQueueDbStats
{
	Oid			dboid;
	uint64		queued;
	uint64		written;
	uint64		pending_bytes;
	uint64		waits;
	uint64		gaps;
	int			writer_pid;
	TimestampTz oldest_pending;
	TimestampTz last_flush;
} AuditQueueDbStats;

/* a tag in a database without the extension (aa_queue_tag_note) */
#define AA_QUEUE_TAG_LEN 64
#define AA_QUEUE_TAGS_MAX 256

typedef struct AuditQueueTagEntry
{
	Oid			dboid;
	Oid			reloid;
	int			attnum;
	Oid			set_by;
	TimestampTz set_at;
	char		tag[AA_QUEUE_TAG_LEN];
	char		object[3 * NAMEDATALEN];
} AuditQueueTagEntry;

extern void aa_queue_init(void);
extern bool aa_queue_ready(void);
extern bool aa_queue_push(const AuditRecord *rec);
extern uint64 aa_queue_ring_id(void);
extern uint64 aa_queue_head(void);
extern uint64 aa_queue_capacity(void);

/* writer side */
extern bool aa_queue_claim_writer(Oid dboid, Latch *latch);
extern void aa_queue_release_writer(Oid dboid, bool failed);
extern bool aa_queue_writer_may_start(Oid dboid);
extern int	aa_queue_collect(Oid dboid, uint64 *scan_pos, int max_items,
							 AuditQueueItem *items);
extern void aa_queue_complete(Oid dboid, int nitems, uint64 committed_upto);
extern int	aa_queue_requeue_sealed(Oid dboid);
extern uint64 aa_queue_tail(void);
extern bool aa_queue_wait_committed(Oid dboid, uint64 upto, long timeout_ms);
extern int	aa_queue_writers_wanted(Oid *dboids, int max);
extern void aa_queue_set_launcher(Latch *latch);
extern void aa_queue_forget_database(Oid dboid);
extern void aa_queue_stop_writer(Oid dboid);
extern bool aa_queue_writer_yield(Oid dboid, uint64 scan_pos,
								  TimestampTz started, int min_ms);
extern void aa_queue_set_starved(void);
extern void aa_queue_extension_creating(Oid dboid, TransactionId xid);
extern int	aa_queue_extension_creators(Oid dboid, TransactionId * xids, int max);
extern int	aa_queue_discard_database(Oid dboid, uint64 upto);
extern int	aa_queue_stats(AuditQueueDbStats *out, int max);
extern TimestampTz aa_queue_stats_reset(Oid roleid, const char *rolename);
extern void aa_queue_stats_since(Oid dboid, TimestampTz *since,
								 TimestampTz *reset_at, char *reset_by);
extern bool aa_queue_tag_note(Oid dboid, Oid reloid, int attnum,
							  const char *object, const char *tag, Oid set_by);
extern int	aa_queue_tags_elsewhere(AuditQueueTagEntry *out, int max);
extern void aa_queue_tags_copy(Oid from, Oid to);
extern bool aa_queue_chain_head_get(Oid dboid, Oid extoid, int64 *seq,
									uint8 *hash);
extern void aa_queue_chain_head_set(Oid dboid, Oid extoid, int64 seq,
									const uint8 *hash);

/* the record of a statement that sends many rows, until it ends */
extern bool aa_queue_intent_open(const AuditRecord *rec);
extern void aa_queue_intent_rows(int64 rows, int64 tagged_rows);
extern void aa_queue_intent_close(void);
extern int	aa_queue_intents_read(AuditQueueItem **out);

/* the wire form of records shipped from a standby (remote.c) */
extern void aa_queue_item_to_wire(const AuditQueueItem *item, StringInfo buf);
extern bool aa_queue_item_from_wire(const char **pp, const char *end,
									AuditQueueItem *item);

#endif							/* AA_QUEUE_H */
