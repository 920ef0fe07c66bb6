/*-------------------------------------------------------------------------
 *
 * chain.c
 *		The hash chain over access_audit.log: its canonical encoding, the
 *		hashing used by the writer, and verify().
 *
 * Each record's hash is SHA-256(prev_hash || canonical(record)), where
 * prev_hash is the previous record's hash (32 zero bytes before the first
 * record, or the hash a retention checkpoint kept) and canonical() encodes
 * the columns seq .. detail, origin, origin_seq in table order:
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
 * verify() reads the log (partitioned by seq, with a default partition
 * whose rows may have any seq) in seq order through an SPI cursor over the
 * primary key.
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
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#ifdef USE_OPENSSL
#include <openssl/evp.h>
#endif

#include "access_audit.h"
#include "chain.h"
#include "compat.h"
#include "dict.h"

/*
 * The encoders write straight into buf after reserving room, rather than
 * through appendBinaryStringInfo(): the writer encodes every record, and
 * the call per field was a tenth of its work.
 */
static inline void
reserve(StringInfo buf, int n)
{
	if (buf->len + n >= buf->maxlen)
		enlargeStringInfo(buf, n);
}

static inline void
put_byte(StringInfo buf, char c)
{
	buf->data[buf->len++] = c;
}

static inline void
put_be64(StringInfo buf, uint64 v)
{
	uint64		be = pg_hton64(v);

	memcpy(buf->data + buf->len, &be, 8);
	buf->len += 8;
}

static inline void
put_be32(StringInfo buf, uint32 v)
{
	uint32		be = pg_hton32(v);

	memcpy(buf->data + buf->len, &be, 4);
	buf->len += 4;
}

/* len bytes of a text value: flag, length, bytes */
static inline void
put_bytes(StringInfo buf, const char *s, int len)
{
	reserve(buf, len + 5);
	put_byte(buf, 1);
	put_be32(buf, (uint32) len);
	memcpy(buf->data + buf->len, s, len);
	buf->len += len;
}

/* a text value (NULL: flag 0) */
static inline void
put_text(StringInfo buf, const char *s)
{
	if (s == NULL)
	{
		reserve(buf, 1);
		put_byte(buf, 0);
		return;
	}
	put_bytes(buf, s, strlen(s));
}

/* a name value: as text, cut as the name type cuts it */
static inline void
put_name(StringInfo buf, const char *s)
{
	if (s == NULL)
	{
		reserve(buf, 1);
		put_byte(buf, 0);
		return;
	}
	put_bytes(buf, s, strnlen(s, NAMEDATALEN - 1));
}

static inline void
put_int8(StringInfo buf, bool present, int64 v)
{
	reserve(buf, 9);
	put_byte(buf, present ? 1 : 0);
	if (present)
		put_be64(buf, (uint64) v);
}

static inline void
put_int4(StringInfo buf, bool present, int32 v)
{
	reserve(buf, 5);
	put_byte(buf, present ? 1 : 0);
	if (present)
		put_be32(buf, (uint32) v);
}

static inline void
put_list(StringInfo buf, int n, const char **strs)
{
	int			i;

	reserve(buf, 5);
	if (n < 0)
	{
		put_byte(buf, 0);
		return;
	}
	put_byte(buf, 1);
	put_be32(buf, (uint32) n);
	for (i = 0; i < n; i++)
		put_text(buf, strs[i]);
}

/*
 * Append the canonical encoding of one log record (columns seq .. detail,
 * in table order; see the file header and the README).
 */
static void
aa_chain_encode(StringInfo buf, const ChainRow *r)
{
	put_int8(buf, true, r->seq);
	put_int8(buf, true, r->ts);
	put_name(buf, r->database);
	put_name(buf, r->login_role);
	put_name(buf, r->effective_role);
	put_text(buf, r->actor);
	put_text(buf, r->claimed_actor);
	put_text(buf, r->client_addr);
	put_text(buf, r->application_name);
	put_int4(buf, r->has_backend_pid, r->backend_pid);
	put_int8(buf, r->has_query_id, r->query_id);
	put_text(buf, r->query);
	put_text(buf, r->command);
	put_int4(buf, r->has_nesting_level, r->nesting_level);
	put_list(buf, r->n_relations, r->relations);
	put_list(buf, r->n_columns, r->columns);
	put_list(buf, r->n_predicate, r->predicate_columns);
	put_list(buf, r->n_tags, r->tags);
	put_int8(buf, r->has_rows, r->rows);
	put_int8(buf, r->has_tagged_rows, r->tagged_rows);
	put_text(buf, r->outcome);
	/* interval: microseconds, then days and months (always 0 here) */
	reserve(buf, 17);
	put_byte(buf, r->has_duration ? 1 : 0);
	if (r->has_duration)
	{
		put_be64(buf, (uint64) r->duration_us);
		put_be32(buf, 0);
		put_be32(buf, 0);
	}
	put_text(buf, r->detail);
	put_text(buf, r->origin);
	put_int8(buf, r->has_origin_seq, r->origin_seq);
}

#ifdef USE_OPENSSL
/*
 * SHA-256 through OpenSSL's EVP interface with the algorithm fetched once
 * and one context kept for the process: pg_cryptohash_create() fetches the
 * algorithm and allocates a context per call, which cost the writer more
 * than the hashing itself.  Plain OpenSSL objects, no resource owner.
 */
static EVP_MD_CTX *sha256_ctx = NULL;
static const EVP_MD *sha256_md = NULL;

static void
sha256(const uint8 *data, size_t len, uint8 *out)
{
	unsigned int outlen = 0;

	if (sha256_ctx == NULL)
	{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
		sha256_md = EVP_sha256();
#endif
		sha256_ctx = EVP_MD_CTX_new();
		if (sha256_md == NULL || sha256_ctx == NULL)
			elog(ERROR, "could not set up SHA-256");
	}
	if (EVP_DigestInit_ex(sha256_ctx, sha256_md, NULL) != 1 ||
		EVP_DigestUpdate(sha256_ctx, data, len) != 1 ||
		EVP_DigestFinal_ex(sha256_ctx, out, &outlen) != 1 ||
		outlen != AA_HASH_LEN)
		elog(ERROR, "could not compute SHA-256 hash");
}
#else
static void
sha256(const uint8 *data, size_t len, uint8 *out)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);

	if (pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, data, len) < 0 ||
		pg_cryptohash_final(ctx, out, AA_HASH_LEN) < 0)
		elog(ERROR, "could not compute SHA-256 hash: %s",
			 pg_cryptohash_error(ctx));
	pg_cryptohash_free(ctx);
}
#endif

/*
 * SHA-256 of len bytes, for the other hashes of the extension (rowids.c).
 */
void
aa_sha256(const uint8 *data, size_t len, uint8 *out)
{
	sha256(data, len, out);
}

/*
 * out = SHA-256(prev || canonical(row)).  Runs inside a transaction
 * (without OpenSSL, the hash context needs a resource owner).
 */
void
aa_chain_hash(const uint8 *prev, const ChainRow *row, uint8 *out)
{
	static StringInfoData scratch;
	StringInfo	buf = aa_scratch_buffer(&scratch);

	appendBinaryStringInfo(buf, (const char *) prev, AA_HASH_LEN);
	aa_chain_encode(buf, row);
	sha256((const uint8 *) buf->data, buf->len, out);
}

/*
 * The hash that precedes seq: the previous record's, or a retention
 * checkpoint's.  Returns false if none is known.
 */
static bool
checkpoint_hash(Oid nsp, const char *source, int64 seq, uint8 *out)
{
	Oid			relid = get_relname_relid(source ? "collected_checkpoints" :
										  "chain_checkpoints", nsp);
	int			off = source ? 1 : 0;	/* collected tables lead with source */
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
		bool		n0 = false,
					n1,
					n2;
		Datum		src = source ? slot_getattr(slot, 1, &n0) : (Datum) 0;
		Datum		s = slot_getattr(slot, 1 + off, &n1);
		Datum		h = slot_getattr(slot, 2 + off, &n2);

		if (n0 || n1 || n2 || DatumGetInt64(s) != seq)
			continue;
		if (source && strcmp(TextDatumGetCString(src), source) != 0)
			continue;
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
 * The logical record of one log_data row, its strings looked up in the
 * dictionaries.  Strings point into the dictionary cache.
 */
static void
row_from_data(TupleDesc desc, Datum *v, bool *n, ChainRow *r)
{
	const AuditDictTuple *se;
	const AuditDictTuple *sh;

	memset(r, 0, sizeof(ChainRow));
	r->seq = DatumGetInt64(v[AA_D_SEQ]);
	r->ts = DatumGetTimestampTz(v[AA_D_TS]);
	r->n_relations = r->n_columns = r->n_predicate = r->n_tags = -1;
#define ID(col) (n[col] ? 0 : aa_dict_datum_id(desc, (col) + 1, v[col]))
	se = aa_dict_tuple(AA_DICT_SESSION, ID(AA_D_SESSION_ID));
	sh = aa_dict_tuple(AA_DICT_SHAPE, ID(AA_D_SHAPE_ID));
	r->origin = aa_dict_string(ID(AA_D_ORIGIN_ID));
#undef ID
#define FIELD(t, i) ((t) == NULL || (t)->isnull[i] ? 0 : (t)->v[i])
	r->database = aa_dict_string(FIELD(se, 0));
	r->login_role = aa_dict_string(FIELD(se, 1));
	r->effective_role = aa_dict_string(FIELD(se, 2));
	r->actor = aa_dict_string(FIELD(se, 3));
	r->claimed_actor = aa_dict_string(FIELD(se, 4));
	r->application_name = aa_dict_string(FIELD(se, 5));
	r->client_addr = aa_dict_string(FIELD(se, 6));
	r->has_backend_pid = se != NULL && !se->isnull[7];
	if (r->has_backend_pid)
		r->backend_pid = (int32) se->v[7];
	r->has_query_id = sh != NULL && !sh->isnull[0];
	if (r->has_query_id)
		r->query_id = sh->v[0];
	r->query = aa_dict_string(FIELD(sh, 1));
	r->command = aa_dict_string(FIELD(sh, 2));
	r->has_nesting_level = sh != NULL && !sh->isnull[3];
	if (r->has_nesting_level)
		r->nesting_level = (int32) sh->v[3];
	r->relations = aa_dict_set(FIELD(sh, 4), &r->n_relations);
	r->columns = aa_dict_set(FIELD(sh, 5), &r->n_columns);
	r->predicate_columns = aa_dict_set(FIELD(sh, 6), &r->n_predicate);
	r->tags = aa_dict_set(FIELD(sh, 7), &r->n_tags);
#undef FIELD
	r->has_rows = !n[AA_D_ROWS];
	if (r->has_rows)
		r->rows = DatumGetInt64(v[AA_D_ROWS]);
	r->has_tagged_rows = !n[AA_D_TAGGED_ROWS];
	if (r->has_tagged_rows)
		r->tagged_rows = DatumGetInt64(v[AA_D_TAGGED_ROWS]);
	if (!n[AA_D_OUTCOME_OK])
		r->outcome = DatumGetBool(v[AA_D_OUTCOME_OK]) ? "ok" : "error";
	r->has_duration = !n[AA_D_DURATION_US];
	if (r->has_duration)
		r->duration_us = DatumGetInt64(v[AA_D_DURATION_US]);
	if (!n[AA_D_DETAIL])
		r->detail = TextDatumGetCString(v[AA_D_DETAIL]);
	r->has_origin_seq = !n[AA_D_ORIGIN_SEQ];
	if (r->has_origin_seq)
		r->origin_seq = DatumGetInt64(v[AA_D_ORIGIN_SEQ]);
}

/* rows of the log in seq order, fetched this many at a time */
#define AA_VERIFY_FETCH		1000

/* log_data's columns, and collected_log's source after them */
#define AA_D_NATTS_MAX		(AA_D_NCOLS + 1)

/* the log's rows in seq order, one at a time (verify_next) */
typedef struct VerifyScan
{
	Portal		portal;
	SPITupleTable *tt;
	uint64		n;
	uint64		i;
	Datum		values[AA_D_NATTS_MAX];
	bool		isnull[AA_D_NATTS_MAX];
} VerifyScan;

/*
 * The next row of the scan, deformed into vs->values and vs->isnull (valid
 * until the next call); false at the end.
 */
static bool
verify_next(VerifyScan *vs)
{
	if (vs->i >= vs->n)
	{
		if (vs->tt)
			SPI_freetuptable(vs->tt);
		SPI_cursor_fetch(vs->portal, true, AA_VERIFY_FETCH);
		vs->tt = SPI_tuptable;
		vs->n = SPI_processed;
		vs->i = 0;
		if (vs->n == 0)
			return false;
		if (vs->tt->tupdesc->natts > AA_D_NATTS_MAX)
			elog(ERROR, "access_audit.log_data has %d columns, more than expected",
				 vs->tt->tupdesc->natts);
	}
	heap_deform_tuple(vs->tt->vals[vs->i++], vs->tt->tupdesc, vs->values,
					  vs->isnull);
	return true;
}

/*
 * Walk the chain from from_seq to to_seq (-1: open ends) in seq order and
 * report the first record whose sequence or hash is wrong.  Each record's
 * hash covers the previous record's hash, so a changed, removed or inserted
 * record breaks the chain at that record.
 *
 * source NULL walks this database's own log; otherwise the records a
 * central server collected from that source (access_audit.collected_log,
 * which has log_data's columns followed by source, and the source's own
 * dictionaries).  A source whose first collected record is not its first
 * ever is anchored on the hash that record links to only if a collected
 * retention checkpoint provides it.
 *
 * The rows come in seq order from a cursor over the primary key (a merge of
 * the partitions' own for log_data, whose default partition may hold rows
 * of any seq), planned for a fast start so that no plan sorts the log.
 */
void
aa_chain_verify(const char *source, int64 from_seq, int64 to_seq,
				AuditVerifyResult *res)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, false);
	MemoryContext callercxt = CurrentMemoryContext;
	VerifyScan	vs;
	Oid			argtypes[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	uint8		expect_prev[AA_HASH_LEN];
	int64		expect_seq = -1;
	int64		start;
	MemoryContext rowcxt;
	MemoryContext old;
	int			save_nestlevel;
	char	   *detail = NULL;

	res->ok = true;
	res->checked = 0;
	res->first_bad_seq = -1;
	res->detail = NULL;

	if (!OidIsValid(get_relname_relid(source ? "collected_log" : "log_data", nsp)))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("access_audit.log_data or its primary key is missing"),
				errhint("Reinstall the access_audit extension."));

	/* start one record early to learn the link into from_seq */
	start = (from_seq > 1) ? from_seq - 1 : 1;

	memset(&vs, 0, sizeof(vs));
	SPI_connect();
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("cursor_tuple_fraction", "0", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	args[0] = Int64GetDatum(start);
	args[1] = source ? CStringGetTextDatum(source) : (Datum) 0;
	vs.portal = SPI_cursor_open_with_args(NULL,
										  source ?
										  "SELECT * FROM access_audit.collected_log d"
										  " WHERE d.seq OPERATOR(pg_catalog.>=) $1"
										  " AND d.source OPERATOR(pg_catalog.=) $2"
										  " ORDER BY d.source, d.seq" :
										  "SELECT * FROM access_audit.log_data d"
										  " WHERE d.seq OPERATOR(pg_catalog.>=) $1"
										  " ORDER BY d.seq",
										  source ? 2 : 1, argtypes, args, NULL,
										  true,
										  CURSOR_OPT_FAST_PLAN | CURSOR_OPT_NO_SCROLL);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "access_audit verify",
								   ALLOCSET_DEFAULT_SIZES);
	aa_dict_use_source(source);
	aa_dict_reset();

	while (verify_next(&vs))
	{
		int64		seq;
		bytea	   *hh;
		uint8		calc[AA_HASH_LEN];
		ChainRow	row;

		CHECK_FOR_INTERRUPTS();
		seq = DatumGetInt64(vs.values[AA_D_SEQ]);
		if (to_seq >= 0 && seq > to_seq)
			break;
		hh = vs.isnull[AA_D_HASH] ? NULL :
			DatumGetByteaPP(vs.values[AA_D_HASH]);

		/* the record before from_seq only provides the link */
		if (from_seq > 1 && seq < from_seq)
		{
			if (hh && VARSIZE_ANY_EXHDR(hh) == AA_HASH_LEN)
			{
				memcpy(expect_prev, VARDATA_ANY(hh), AA_HASH_LEN);
			}
			expect_seq = seq + 1;
			continue;
		}

		if (expect_seq < 0)
		{
			/* first record checked: anchor its link */
			expect_seq = seq;
			if (seq == 1)
				memset(expect_prev, 0, AA_HASH_LEN);
			else if (!checkpoint_hash(nsp, source, seq - 1, expect_prev))
			{
				res->ok = false;
				res->first_bad_seq = seq;
				detail = psprintf("records before seq %lld are missing and no retention checkpoint covers them",
								  (long long) seq);
				break;
			}
		}

		if (seq != expect_seq)
		{
			res->ok = false;
			res->first_bad_seq = seq > expect_seq ? expect_seq : seq;
			detail = seq > expect_seq ?
				psprintf("records %lld to %lld are missing", (long long) expect_seq,
						 (long long) (seq - 1)) :
				psprintf("seq %lld appears out of order", (long long) seq);
			break;
		}
		if (hh == NULL || VARSIZE_ANY_EXHDR(hh) != AA_HASH_LEN)
		{
			res->ok = false;
			res->first_bad_seq = seq;
			detail = psprintf("record %lld has no valid hash", (long long) seq);
			break;
		}

		aa_dict_trim();
		old = MemoryContextSwitchTo(rowcxt);
		row_from_data(vs.tt->tupdesc, vs.values, vs.isnull, &row);
		aa_chain_hash(expect_prev, &row, calc);
		MemoryContextSwitchTo(old);
		MemoryContextReset(rowcxt);

		if (memcmp(calc, VARDATA_ANY(hh), AA_HASH_LEN) != 0)
		{
			res->ok = false;
			res->first_bad_seq = seq;
			detail = psprintf("record %lld was changed, or a record before it was",
							  (long long) seq);
			break;
		}
		memcpy(expect_prev, calc, AA_HASH_LEN);
		expect_seq = seq + 1;
		res->checked++;
	}

	SPI_cursor_close(vs.portal);
	MemoryContextDelete(rowcxt);
	aa_dict_use_source(NULL);
	AtEOXact_GUC(true, save_nestlevel);
	if (detail)
		res->detail = MemoryContextStrdup(callercxt, detail);
	SPI_finish();

	if (res->ok)
		res->detail = psprintf("%lld records verified", (long long) res->checked);
}
