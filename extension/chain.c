/*-------------------------------------------------------------------------
 *
 * chain.c
 *		The hash chain over access_audit.log: its canonical encoding, the
 *		hashing used by the writer, and verify().
 *
 * Each record's hash is SHA-256(prev_hash || canonical(record)), where
 * prev_hash is the previous record's hash (32 zero bytes before the first
 * record, or the hash a retention checkpoint kept) and canonical() encodes
 * the columns seq .. detail in table order:
 *	  absent (NULL): one byte 0x00; present: one byte 0x01, then
 *	  bigint: 8 bytes big-endian; integer: 4 bytes big-endian;
 *	  timestamptz: 8 bytes big-endian, microseconds since 2000-01-01 UTC;
 *	  interval: 8 bytes microseconds, 4 bytes days, 4 bytes months, BE;
 *	  text, name: 4-byte big-endian byte length, then the UTF-8 bytes;
 *	  inet: its text form (as text above);
 *	  text[]: 4-byte big-endian element count, then each element encoded
 *	  as a column (flag byte, then text).
 * The README repeats this so an outside tool can check the chain.
 *
 * Ownership: no shared state.  Hashing needs a resource owner (OpenSSL
 * builds), so both the writer and verify() run it inside a transaction.
 *
 * IDENTIFICATION
 *	  extension/chain.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "common/cryptohash.h"
#include "executor/tuptable.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "chain.h"

/* how each hashed column is encoded */
typedef enum ChainKind
{
	CK_INT8,
	CK_INT4,
	CK_TIMESTAMPTZ,
	CK_INTERVAL,
	CK_TEXT,
	CK_NAME,
	CK_INET,
	CK_TEXTARRAY
} ChainKind;

static const ChainKind chain_kinds[AA_LOG_PREV_HASH] = {
	[AA_LOG_SEQ] = CK_INT8,
	[AA_LOG_TS] = CK_TIMESTAMPTZ,
	[AA_LOG_DATABASE] = CK_NAME,
	[AA_LOG_LOGIN_ROLE] = CK_NAME,
	[AA_LOG_EFFECTIVE_ROLE] = CK_NAME,
	[AA_LOG_ACTOR] = CK_TEXT,
	[AA_LOG_CLAIMED_ACTOR] = CK_TEXT,
	[AA_LOG_CLIENT_ADDR] = CK_INET,
	[AA_LOG_APPLICATION_NAME] = CK_TEXT,
	[AA_LOG_BACKEND_PID] = CK_INT4,
	[AA_LOG_QUERY_ID] = CK_INT8,
	[AA_LOG_QUERY] = CK_TEXT,
	[AA_LOG_COMMAND] = CK_TEXT,
	[AA_LOG_NESTING_LEVEL] = CK_INT4,
	[AA_LOG_RELATIONS] = CK_TEXTARRAY,
	[AA_LOG_COLUMNS] = CK_TEXTARRAY,
	[AA_LOG_PREDICATE_COLUMNS] = CK_TEXTARRAY,
	[AA_LOG_TAGS] = CK_TEXTARRAY,
	[AA_LOG_ROWS] = CK_INT8,
	[AA_LOG_TAGGED_ROWS] = CK_INT8,
	[AA_LOG_OUTCOME] = CK_TEXT,
	[AA_LOG_DURATION] = CK_INTERVAL,
	[AA_LOG_DETAIL] = CK_TEXT,
};

static inline void
put_be64(StringInfo buf, uint64 v)
{
	uint64		be = pg_hton64(v);

	appendBinaryStringInfo(buf, (char *) &be, 8);
}

static inline void
put_be32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	appendBinaryStringInfo(buf, (char *) &be, 4);
}

static inline void
put_bytes(StringInfo buf, const char *p, int len)
{
	put_be32(buf, (uint32) len);
	appendBinaryStringInfo(buf, p, len);
}

/*
 * Append the canonical encoding of one log row (columns seq .. detail).
 */
void
aa_chain_encode(StringInfo buf, Datum *values, bool *isnull)
{
	int			i;

	for (i = 0; i < AA_LOG_PREV_HASH; i++)
	{
		if (isnull[i])
		{
			appendStringInfoChar(buf, 0);
			continue;
		}
		appendStringInfoChar(buf, 1);
		switch (chain_kinds[i])
		{
			case CK_INT8:
				put_be64(buf, (uint64) DatumGetInt64(values[i]));
				break;
			case CK_INT4:
				put_be32(buf, (uint32) DatumGetInt32(values[i]));
				break;
			case CK_TIMESTAMPTZ:
				put_be64(buf, (uint64) DatumGetTimestampTz(values[i]));
				break;
			case CK_INTERVAL:
				{
					Interval   *iv = DatumGetIntervalP(values[i]);

					put_be64(buf, (uint64) iv->time);
					put_be32(buf, (uint32) iv->day);
					put_be32(buf, (uint32) iv->month);
					break;
				}
			case CK_TEXT:
				{
					text	   *t = DatumGetTextPP(values[i]);

					put_bytes(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
					break;
				}
			case CK_NAME:
				{
					Name		n = DatumGetName(values[i]);

					put_bytes(buf, NameStr(*n), strlen(NameStr(*n)));
					break;
				}
			case CK_INET:
				{
					char	   *s = DatumGetCString(DirectFunctionCall1(inet_out,
																		values[i]));

					put_bytes(buf, s, strlen(s));
					pfree(s);
					break;
				}
			case CK_TEXTARRAY:
				{
					ArrayType  *arr = DatumGetArrayTypeP(values[i]);
					Datum	   *elems;
					bool	   *enulls;
					int			n;
					int			j;

					deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT,
									  &elems, &enulls, &n);
					put_be32(buf, (uint32) n);
					for (j = 0; j < n; j++)
					{
						if (enulls[j])
							appendStringInfoChar(buf, 0);
						else
						{
							text	   *t = DatumGetTextPP(elems[j]);

							appendStringInfoChar(buf, 1);
							put_bytes(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
						}
					}
					pfree(elems);
					pfree(enulls);
					break;
				}
		}
	}
}

/*
 * out = SHA-256(prev || canonical(values)).  Must run inside a
 * transaction (the hash context needs a resource owner).
 */
void
aa_chain_hash(const uint8 *prev, Datum *values, bool *isnull, uint8 *out)
{
	StringInfoData buf;
	pg_cryptohash_ctx *ctx;

	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, (const char *) prev, AA_HASH_LEN);
	aa_chain_encode(&buf, values, isnull);

	ctx = pg_cryptohash_create(PG_SHA256);
	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (uint8 *) buf.data, buf.len) < 0 ||
		pg_cryptohash_final(ctx, out, AA_HASH_LEN) < 0)
		elog(ERROR, "could not compute SHA-256 hash: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
	pfree(buf.data);
}

/*
 * The hash that precedes seq: the previous record's, or a retention
 * checkpoint's.  Returns false if none is known.
 */
static bool
checkpoint_hash(Oid nsp, int64 seq, uint8 *out)
{
	Oid			relid = get_relname_relid("chain_checkpoints", nsp);
	Relation	rel;
	TableScanDesc scan;
	TupleTableSlot *slot;
	bool		found = false;

	if (!OidIsValid(relid))
		return false;
	rel = table_open(relid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
	while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
	{
		bool		n1,
					n2;
		Datum		s = slot_getattr(slot, 1, &n1);
		Datum		h = slot_getattr(slot, 2, &n2);

		if (!n1 && !n2 && DatumGetInt64(s) == seq)
		{
			bytea	   *b = DatumGetByteaPP(h);

			if (VARSIZE_ANY_EXHDR(b) == AA_HASH_LEN)
			{
				memcpy(out, VARDATA_ANY(b), AA_HASH_LEN);
				found = true;
			}
		}
	}
	table_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, AccessShareLock);
	return found;
}

/*
 * Walk the chain from from_seq to to_seq (NULL-equivalents: -1) in seq
 * order and report the first record whose sequence, link or hash is
 * wrong.  Detects changed, removed and inserted records.
 */
void
aa_chain_verify(int64 from_seq, int64 to_seq, AuditVerifyResult *res)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, false);
	Oid			logid = get_relname_relid("log", nsp);
	Oid			idxid = get_relname_relid("log_pkey", nsp);
	Relation	rel;
	Relation	idx;
	IndexScanDesc scan;
	ScanKeyData key;
	TupleTableSlot *slot;
	uint8		expect_prev[AA_HASH_LEN];
	bool		have_prev = false;
	int64		expect_seq = -1;
	int64		start;
	Datum		values[AA_LOG_NCOLS];
	bool		isnull[AA_LOG_NCOLS];

	res->ok = true;
	res->checked = 0;
	res->first_bad_seq = -1;
	res->detail = NULL;

	if (!OidIsValid(logid) || !OidIsValid(idxid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("access_audit.log or its primary key is missing"));

	/* start one record early to learn the link into from_seq */
	start = (from_seq > 1) ? from_seq - 1 : 1;

	rel = table_open(logid, AccessShareLock);
	idx = index_open(idxid, AccessShareLock);
	slot = table_slot_create(rel, NULL);
	ScanKeyInit(&key, 1, BTGreaterEqualStrategyNumber, F_INT8GE,
				Int64GetDatum(start));
	scan = index_beginscan(rel, idx, GetActiveSnapshot(), 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);

	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		int64		seq;
		bytea	   *ph;
		bytea	   *hh;
		uint8		calc[AA_HASH_LEN];

		slot_getallattrs(slot);
		memcpy(values, slot->tts_values, sizeof(Datum) * AA_LOG_NCOLS);
		memcpy(isnull, slot->tts_isnull, sizeof(bool) * AA_LOG_NCOLS);
		seq = DatumGetInt64(values[AA_LOG_SEQ]);
		if (to_seq >= 0 && seq > to_seq)
			break;

		/* the record before from_seq only provides the link */
		if (from_seq > 1 && seq < from_seq)
		{
			if (!isnull[AA_LOG_HASH])
			{
				hh = DatumGetByteaPP(values[AA_LOG_HASH]);
				if (VARSIZE_ANY_EXHDR(hh) == AA_HASH_LEN)
				{
					memcpy(expect_prev, VARDATA_ANY(hh), AA_HASH_LEN);
					have_prev = true;
				}
			}
			expect_seq = seq + 1;
			continue;
		}

		if (expect_seq < 0)
		{
			/* first record checked: anchor its link */
			expect_seq = seq;
			if (seq == 1)
			{
				memset(expect_prev, 0, AA_HASH_LEN);
				have_prev = true;
			}
			else if (checkpoint_hash(nsp, seq - 1, expect_prev))
				have_prev = true;
			else if (from_seq < 0)
			{
				res->ok = false;
				res->first_bad_seq = seq;
				res->detail = psprintf("records before seq %lld are missing and no retention checkpoint covers them",
									   (long long) seq);
				break;
			}
		}

		if (seq != expect_seq)
		{
			res->ok = false;
			res->first_bad_seq = seq > expect_seq ? expect_seq : seq;
			res->detail = seq > expect_seq ?
				psprintf("records %lld to %lld are missing", (long long) expect_seq,
						 (long long) (seq - 1)) :
				psprintf("seq %lld appears out of order", (long long) seq);
			break;
		}
		if (isnull[AA_LOG_PREV_HASH] || isnull[AA_LOG_HASH])
		{
			res->ok = false;
			res->first_bad_seq = seq;
			res->detail = psprintf("record %lld has no hash", (long long) seq);
			break;
		}
		ph = DatumGetByteaPP(values[AA_LOG_PREV_HASH]);
		hh = DatumGetByteaPP(values[AA_LOG_HASH]);
		if (VARSIZE_ANY_EXHDR(ph) != AA_HASH_LEN ||
			VARSIZE_ANY_EXHDR(hh) != AA_HASH_LEN ||
			(have_prev && memcmp(VARDATA_ANY(ph), expect_prev, AA_HASH_LEN) != 0))
		{
			res->ok = false;
			res->first_bad_seq = seq;
			res->detail = psprintf("record %lld does not link to the record before it",
								   (long long) seq);
			break;
		}
		aa_chain_hash((uint8 *) VARDATA_ANY(ph), values, isnull, calc);
		if (memcmp(calc, VARDATA_ANY(hh), AA_HASH_LEN) != 0)
		{
			res->ok = false;
			res->first_bad_seq = seq;
			res->detail = psprintf("record %lld was changed after it was written",
								   (long long) seq);
			break;
		}
		memcpy(expect_prev, calc, AA_HASH_LEN);
		have_prev = true;
		expect_seq = seq + 1;
		res->checked++;
	}

	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, AccessShareLock);
	table_close(rel, AccessShareLock);

	if (res->ok)
		res->detail = psprintf("%lld records verified", (long long) res->checked);
}
