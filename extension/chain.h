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

#include "access_audit.h"

#include "common/sha2.h"
#include "lib/stringinfo.h"

#define AA_HASH_LEN PG_SHA256_DIGEST_LENGTH

extern void aa_chain_encode(StringInfo buf, Datum *values, bool *isnull);
extern void aa_chain_hash(const uint8 *prev, Datum *values, bool *isnull,
						  uint8 *out);

typedef struct AuditVerifyResult
{
	bool		ok;
	int64		checked;
	int64		first_bad_seq;	/* -1 if none */
	char	   *detail;
} AuditVerifyResult;

extern void aa_chain_verify(int64 from_seq, int64 to_seq,
							AuditVerifyResult *result);

#endif							/* AA_CHAIN_H */
