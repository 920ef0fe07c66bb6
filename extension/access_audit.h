/*-------------------------------------------------------------------------
 *
 * access_audit.h
 *		Settings, shared constants and the in-memory audit record.
 *
 * Every module includes this header.  The GUC variables are defined in
 * access_audit.c and only ever written by the GUC machinery; everything
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

#include "postgres.h"

#include "datatype/timestamp.h"

/* Name used for shared memory, the LWLock tranche and the workers. */
#define AA_NAME				"access_audit"
#define AA_SCHEMA			"access_audit"
#define AA_LABEL_PROVIDER	"access_audit"

/* Roles the extension creates. */
#define AA_ROLE_ADMIN		"access_audit_admin"
#define AA_ROLE_APP			"access_audit_app"
#define AA_ROLE_READER		"access_audit_reader"

/* Settings (access_audit.c) */
extern bool aa_enabled;
extern int	aa_queue_size_mb;
extern int	aa_flush_interval_ms;
extern int	aa_batch_size;
extern int	aa_max_query_length;
extern char *aa_actor;
extern bool aa_maintenance;
extern int	aa_business_hours_start;
extern int	aa_business_hours_end;
extern char *aa_business_timezone;

/* Largest number of databases with pending records at one time. */
#define AA_MAX_DATABASES	64

/* Outcome of an audited statement. */
#define AA_OUTCOME_OK		0
#define AA_OUTCOME_ERROR	1

/* Kinds of record in the queue. */
#define AA_KIND_READ		1	/* an audited statement */
#define AA_KIND_GAP			2	/* bytes lost in a crash, see queue.c */

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
} AuditRecord;

/*
 * Columns of access_audit.log, in table order.  chain.c hashes columns
 * AA_LOG_SEQ .. AA_LOG_DETAIL; the last two hold the chain itself.
 */
typedef enum AuditLogColumn
{
	AA_LOG_SEQ = 0,
	AA_LOG_TS,
	AA_LOG_DATABASE,
	AA_LOG_LOGIN_ROLE,
	AA_LOG_EFFECTIVE_ROLE,
	AA_LOG_ACTOR,
	AA_LOG_CLAIMED_ACTOR,
	AA_LOG_CLIENT_ADDR,
	AA_LOG_APPLICATION_NAME,
	AA_LOG_BACKEND_PID,
	AA_LOG_QUERY_ID,
	AA_LOG_QUERY,
	AA_LOG_COMMAND,
	AA_LOG_NESTING_LEVEL,
	AA_LOG_RELATIONS,
	AA_LOG_COLUMNS,
	AA_LOG_PREDICATE_COLUMNS,
	AA_LOG_TAGS,
	AA_LOG_ROWS,
	AA_LOG_TAGGED_ROWS,
	AA_LOG_OUTCOME,
	AA_LOG_DURATION,
	AA_LOG_DETAIL,
	AA_LOG_PREV_HASH,
	AA_LOG_HASH,
	AA_LOG_NCOLS
} AuditLogColumn;

#endif							/* ACCESS_AUDIT_H */
