/*-------------------------------------------------------------------------
 *
 * chain.h
 *		Interface of the log's hash chain: canonical encoding, hashing and
 *		verification.
 *
 * IDENTIFICATION
 *	  extension/chain.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_CHAIN_H
#define AA_CHAIN_H

#include "common/sha2.h"
#include "lib/stringinfo.h"

#include "access_audit.h"

#define AA_HASH_LEN PG_SHA256_DIGEST_LENGTH

/*
 * One log record as the chain sees it: the logical columns seq .. detail of
 * access_audit.log.  NULL strings are NULL pointers; n_* = -1 is a NULL
 * list; has_* false is a NULL number.
 */
typedef struct ChainRow
{
	int64		seq;
	TimestampTz ts;
	const char *database;
	const char *login_role;
	const char *effective_role;
	const char *actor;
	const char *claimed_actor;
	const char *client_addr;	/* inet in its text form */
	const char *application_name;
	bool		has_backend_pid;
	int32		backend_pid;
	bool		has_query_id;
	int64		query_id;
	const char *query;
	const char *command;
	bool		has_nesting_level;
	int32		nesting_level;
	int			n_relations;
	const char **relations;
	int			n_columns;
	const char **columns;
	int			n_predicate;
	const char **predicate_columns;
	int			n_tags;
	const char **tags;
	bool		has_rows;
	int64		rows;
	bool		has_tagged_rows;
	int64		tagged_rows;
	const char *outcome;
	bool		has_duration;
	int64		duration_us;
	const char *detail;
	const char *origin;			/* where a shipped read happened */
	bool		has_origin_seq;
	int64		origin_seq;
} ChainRow;

extern void aa_sha256(const uint8 *data, size_t len, uint8 *out);
extern void aa_chain_hash(const uint8 *prev, const ChainRow *row, uint8 *out);

typedef struct AuditVerifyResult
{
	bool		ok;
	int64		checked;
	int64		first_bad_seq;	/* -1 if none */
	char	   *detail;
} AuditVerifyResult;

extern void aa_chain_verify(const char *source, int64 from_seq, int64 to_seq,
							AuditVerifyResult *result);

#endif							/* AA_CHAIN_H */
