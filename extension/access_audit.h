/*-------------------------------------------------------------------------
 *
 * access_audit.h
 *		Settings, shared constants and the in-memory audit record.
 *
 * Every module includes this header.  The GUC variables are defined in
 * settings.c and only ever written by the GUC machinery; everything
 * else reads them.  AuditRecord is the one shape a record has between
 * capture and the queue: capture fills it, queue.c serialises it into the
 * ring, and writer.c decodes it back into the same struct.
 *
 * IDENTIFICATION
 *	  extension/access_audit.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef ACCESS_AUDIT_H
#define ACCESS_AUDIT_H

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/json.h"
#include "utils/memutils.h"

/* Name used for shared memory, the LWLock tranche and the workers. */
#define AA_NAME				"access_audit"
#define AA_SCHEMA			"access_audit"
#define AA_LABEL_PROVIDER	"access_audit"

/* Roles the extension creates. */
#define AA_ROLE_ADMIN		"access_audit_admin"
#define AA_ROLE_APP			"access_audit_app"
#define AA_ROLE_READER		"access_audit_reader"
#define AA_ROLE_ANALYST	"access_audit_analyst"
#define AA_ROLE_INGEST		"access_audit_ingest"

/* Settings (settings.c) */
extern bool aa_enabled;
extern int	aa_queue_size_mb;
extern int	aa_flush_interval_ms;
extern int	aa_batch_size;
extern int	aa_max_query_length;
extern int	aa_query_text;
extern char *aa_actor;
extern bool aa_actor_own;
extern bool aa_maintenance;
extern int	aa_business_hours_start;
extern int	aa_business_hours_end;
extern char *aa_business_timezone;
extern uint64 aa_business_timezone_epoch;	/* bumped by each assignment */
extern char *aa_primary_conninfo;
extern char *aa_server_name;
extern bool aa_settings_assigned;

/*
 * Business hours when the settings are unusable together (end <= start);
 * also the settings' defaults.  aa_business_hours() applies them.
 */
#define AA_BUSINESS_HOURS_START_DEFAULT	8
#define AA_BUSINESS_HOURS_END_DEFAULT	18

extern void aa_business_hours(int *start, int *end);
extern void aa_settings_define(void);

/* access_audit.query_text: what of a statement's text a record keeps */
#define AA_QUERY_TEXT_FULL			0
#define AA_QUERY_TEXT_NORMALIZED	1

extern char *aa_siem_log;
extern int	aa_siem_level;
extern int	aa_siem_parse_level(const char *value);

/* queue usage from which new alerts are not announced with NOTIFY */
extern double aa_alert_notify_limit;

/* justification a session gives for reads over a require_reason quota */
extern char *aa_reason;

/* Largest number of databases with pending records at one time. */
#define AA_MAX_DATABASES	64

/* Outcome of an audited statement. */
#define AA_OUTCOME_OK		0
#define AA_OUTCOME_ERROR	1

/* Kinds of record in the queue. */
#define AA_KIND_READ		1	/* an audited statement */
#define AA_KIND_GAP			2	/* bytes lost in a crash, see queue.c */
#define AA_KIND_ROWS		3	/* a chunk of a read's row identities */

/*
 * One chunk of the row identities a read record kept for one relation
 * (rowids.c): n distinct keys lo .. hi, encoded in data.  link ties it to
 * its read record (see aa_rowids_link()).
 */
typedef struct AuditRowChunk
{
	int64		link;
	int32		chunk;
	int32		n;
	int64		lo;
	int64		hi;
	const char *relation;		/* schema.table, as in the record's lists */
	int32		len;			/* bytes of data */
	const char *data;
} AuditRowChunk;

/*
 * One audit record.  Strings are NUL-terminated and may be NULL; the
 * arrays hold n_* strings each.  Who owns the memory depends on the stage:
 * capture allocates it in the statement's context, the writer points into
 * the ring.
 */
typedef struct AuditRecord
{
	int			kind;			/* AA_KIND_* */
	TimestampTz ts;				/* statement start */
	int64		duration_us;
	int64		query_id;
	int64		rows;			/* rows the statement produced */
	int64		tagged_rows;	/* rows read from tagged scans */
	int32		backend_pid;
	int32		nesting_level;
	int32		outcome;		/* AA_OUTCOME_* */
	const char *login_role;
	const char *effective_role;
	const char *actor;
	const char *claimed_actor;
	const char *client_addr;
	const char *application_name;
	const char *query;
	const char *command;
	const char *detail;
	int			n_relations;
	const char **relations;
	int			n_columns;
	const char **columns;
	int			n_predicate;
	const char **predicate_columns;
	int			n_tags;
	const char **tags;

	/*
	 * Where the read happened, for records shipped from a hot standby
	 * (remote.c): the standby's name, its ring's id and the record's position
	 * in that ring.  NULL/0 for reads on this server.
	 */
	const char *origin;
	uint64		origin_ring_id;
	int64		origin_seq;

	/*
	 * AA_KIND_READ: the statement's number among this backend's row sets
	 * (rowids.c), 0 if it kept none, negated if a chunk of its set was left
	 * out (an incomplete set); with backend_pid and ts it makes the link of
	 * its row-set chunks.  AA_KIND_ROWS: the chunk.
	 */
	int32		row_set;
	const AuditRowChunk *chunk;
} AuditRecord;

/*
 * Columns of access_audit.log_data (the compact storage behind the view
 * access_audit.log), in table order.  *_ID columns refer to the
 * dictionaries (dict.c): the session (who, from where) and the shape (what
 * statement, on what) of a record are stored once and shared.
 */
typedef enum AuditDataColumn
{
	AA_D_SEQ = 0,
	AA_D_TS,
	AA_D_ROWS,
	AA_D_TAGGED_ROWS,
	AA_D_DURATION_US,
	AA_D_SESSION_ID,
	AA_D_SHAPE_ID,
	AA_D_OUTCOME_OK,
	AA_D_DETAIL,
	AA_D_ORIGIN_ID,
	AA_D_ORIGIN_SEQ,
	AA_D_HASH,
	AA_D_NCOLS
} AuditDataColumn;

/*
 * An emptied scratch buffer that lives as long as the process (kept in
 * TopMemoryContext), for encodings built once per record.  buf is a
 * static, zero until first use.
 */
static inline StringInfo
aa_scratch_buffer(StringInfoData *buf)
{
	if (buf->data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(buf);
		MemoryContextSwitchTo(old);
	}
	else
		resetStringInfo(buf);
	return buf;
}

/*
 * Append s to buf as a JSON string, or null if s is NULL: the "value or
 * null" of the JSON details of records.
 */
static inline void
aa_json_string_or_null(StringInfo buf, const char *s)
{
	if (s)
		escape_json(buf, s);
	else
		appendStringInfoString(buf, "null");
}

/*
 * Append s to the string array *arr (n used, cap allocated) unless it holds
 * it already; grows the array in CurrentMemoryContext.
 */
static inline void
aa_add_unique(const char ***arr, int *n, int *cap, const char *s)
{
	int			i;

	for (i = 0; i < *n; i++)
		if (strcmp((*arr)[i], s) == 0)
			return;
	if (*n >= *cap)
	{
		*cap = Max(8, *cap * 2);
		*arr = *arr ? repalloc(*arr, sizeof(char *) * *cap) :
			palloc(sizeof(char *) * *cap);
	}
	(*arr)[(*n)++] = s;
}

#endif							/* ACCESS_AUDIT_H */
