/*-------------------------------------------------------------------------
 *
 * dict.c
 *		Dictionaries of repeated strings and string lists behind the compact
 *		audit log (access_audit.strings and access_audit.string_sets).
 *
 * This file owns turning a string (a role, an actor, a query text) or a
 * list of strings (relations, columns, tags) into the id stored in
 * access_audit.log_data, and back.  The writer looks ids up and adds new
 * entries; verify() reads them.
 *
 * Ownership: the caches are process-local.  An id, once committed, never
 * changes meaning (the dictionaries are append-only), so cached entries stay
 * valid; entries this process added in a transaction that then failed would
 * not, so an abort that follows an insert drops the caches.  A new id is
 * one more than the highest in the table (dict_next_id), not a sequence's
 * next value: the dictionaries have no sequences (1.1 dropped them; a 1.0
 * installation's are not used), so setval() or ALTER SEQUENCE cannot make
 * the writer fail (issue 16, item 9).  Two
 * transactions adding entries at once (the writer and a maintenance-mode
 * edit through the log view) may pick the same id; the second fails on
 * the primary key and its work is retried (the writer writes its batch
 * again, see writer_write).  Callers bracket lookups with
 * aa_dict_begin()/aa_dict_end() inside a transaction with an active
 * snapshot.
 *
 * IDENTIFICATION
 *	  extension/dict.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "access_audit.h"
#include "chain.h"
#include "dict.h"

#define DICT_STRING		0
#define DICT_SET		1
/* tuples: AA_DICT_SESSION (2) and AA_DICT_SHAPE (3), see dict.h */
#define DICT_NKINDS		4
/* memos of raw encodings (see dict_memo_get); never stored */
#define DICT_MEMO_SESSION	4
#define DICT_MEMO_SHAPE		5
#define DICT_MAX_CACHED 200000

/* the tables of each kind, and of each kind as collected from a source */
static const struct
{
	const char *table;
	const char *pkey;
	const char *hashidx;
	const char *collected;
	const char *collected_pkey;
}			dict_tables[DICT_NKINDS] =

{
	{"strings", "strings_pkey", "strings_hash_idx",
	"collected_strings", "collected_strings_pkey"},
	{"string_sets", "string_sets_pkey", "string_sets_hash_idx",
	"collected_string_sets", "collected_string_sets_pkey"},
	{"sessions", "sessions_pkey", "sessions_hash_idx",
	"collected_sessions", "collected_sessions_pkey"},
	{"shapes", "shapes_pkey", "shapes_hash_idx",
	"collected_shapes", "collected_shapes_pkey"},
};

typedef struct DictKey
{
	uint64		hash;
	uint32		kind;
} DictKey;

typedef struct DictEntry
{
	DictKey		key;
	int64		id;
	char	   *value;			/* encoded value, see dict_encode_set() */
	int			len;
} DictEntry;

typedef struct DictIdKey
{
	int64		id;
	uint32		kind;
} DictIdKey;

typedef struct DictIdEntry
{
	DictIdKey	key;
	const char *str;			/* DICT_STRING */
	int			n;				/* DICT_SET */
	const char **strs;
	AuditDictTuple *tuple;		/* AA_DICT_SESSION, AA_DICT_SHAPE */
} DictIdEntry;

/* one dictionary table while a transaction uses it */
typedef struct DictRel
{
	Relation	rel;
	Relation	pkey;
	Relation	hashidx;
	IndexInfo  *pkey_info;
	IndexInfo  *hash_info;
} DictRel;

static MemoryContext dict_cxt = NULL;
static HTAB *by_value = NULL;
static HTAB *by_id = NULL;
static long ncached = 0;
static DictRel rels[DICT_NKINDS];
static bool dict_open = false;

/* the next id of each kind in this transaction; 0: not looked up yet */
static int64 next_id[DICT_NKINDS];

/* lookups by id read this source's collected dictionaries (NULL: our own) */
static char *fetch_source = NULL;

/* this transaction added entries (their ids die with it if it aborts) */
static bool added_in_xact = false;
static bool xact_callback_registered = false;

/*
 * Forget every cached entry; the next lookup makes the caches anew (see
 * aa_dict_reset).  No catalog access: runs in abort callbacks.
 */
static void
dict_forget(void)
{
	if (dict_cxt == NULL)
		return;
	MemoryContextReset(dict_cxt);
	by_value = NULL;
	by_id = NULL;
	ncached = 0;
}

/*
 * Drop the caches when a transaction that added entries aborts; forget the
 * mark when it commits.
 */
static void
dict_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		if (added_in_xact)
			dict_forget();
		added_in_xact = false;
		dict_open = false;
	}
	else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		added_in_xact = false;
}

/*
 * A subtransaction that aborts may have added entries too (ROLLBACK TO
 * SAVEPOINT after a maintenance-mode insert): drop the caches.
 */
static void
dict_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && added_in_xact)
		dict_forget();
}

/*
 * Drop every cached entry (also used when the cache grows too large).
 */
void
aa_dict_reset(void)
{
	HASHCTL		ctl;

	if (dict_cxt == NULL)
		dict_cxt = AllocSetContextCreate(TopMemoryContext,
										 "access_audit dictionary cache",
										 ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(dict_cxt);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(DictKey);
	ctl.entrysize = sizeof(DictEntry);
	ctl.hcxt = dict_cxt;
	by_value = hash_create("access_audit dictionary by value", 1024, &ctl,
						   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(DictIdKey);
	ctl.entrysize = sizeof(DictIdEntry);
	ctl.hcxt = dict_cxt;
	by_id = hash_create("access_audit dictionary by id", 1024, &ctl,
						HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	ncached = 0;
}

static void
open_one(DictRel *dr, Oid nsp, const char *table, const char *pkey,
		 const char *hashidx)
{
	Oid			relid = get_relname_relid(table, nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_TABLE),
				errmsg("table \"%s.%s\" is missing", AA_SCHEMA, table),
				errhint("Reinstall the access_audit extension."));
	dr->rel = table_open(relid, RowExclusiveLock);
	dr->pkey = index_open(get_relname_relid(pkey, nsp), RowExclusiveLock);
	dr->hashidx = index_open(get_relname_relid(hashidx, nsp), RowExclusiveLock);
	dr->pkey_info = BuildIndexInfo(dr->pkey);
	dr->hash_info = BuildIndexInfo(dr->hashidx);
}

/*
 * A new id of kind: one more than the highest id in its table, looked up
 * once per transaction through the primary key, then counted on.  The
 * lookup uses a dirty snapshot, so ids of entries that other transactions
 * are adding, or added after this one's snapshot, are not picked again.
 */
static int64
dict_next_id(int kind)
{
	DictRel    *dr = &rels[kind];

	if (next_id[kind] == 0)
	{
		SnapshotData dirty;
		SysScanDesc scan;
		HeapTuple	tup;
		int64		max = 0;

		InitDirtySnapshot(dirty);
		scan = systable_beginscan_ordered(dr->rel, dr->pkey, &dirty, 0, NULL);
		tup = systable_getnext_ordered(scan, BackwardScanDirection);
		if (tup != NULL)
		{
			bool		isnull;
			Datum		d = heap_getattr(tup, 1, RelationGetDescr(dr->rel), &isnull);

			if (!isnull)
				max = aa_dict_datum_id(RelationGetDescr(dr->rel), 1, d);
		}
		systable_endscan_ordered(scan);
		next_id[kind] = max + 1;
	}
	if (TupleDescAttr(RelationGetDescr(dr->rel), 0)->atttypid != INT8OID &&
		next_id[kind] > PG_INT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				errmsg("access_audit dictionary \"%s.%s\" has no ids left",
					   AA_SCHEMA, dict_tables[kind].table),
				errhint("Update the extension (ALTER EXTENSION access_audit UPDATE) to widen its ids."));
	return next_id[kind]++;
}

/*
 * Drop the caches if they grew too large.  Call only between records:
 * strings returned earlier point into the cache.
 */
void
aa_dict_trim(void)
{
	if (by_value == NULL || ncached > DICT_MAX_CACHED)
		aa_dict_reset();
}

/*
 * Open the dictionary tables for this transaction.
 */
void
aa_dict_begin(void)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, false);

	int			k;

	if (!xact_callback_registered)
	{
		RegisterXactCallback(dict_xact_callback, NULL);
		RegisterSubXactCallback(dict_subxact_callback, NULL);
		xact_callback_registered = true;
	}
	aa_dict_trim();
	for (k = 0; k < DICT_NKINDS; k++)
	{
		open_one(&rels[k], nsp, dict_tables[k].table, dict_tables[k].pkey,
				 dict_tables[k].hashidx);
		next_id[k] = 0;
	}
	dict_open = true;
}

/*
 * Close the dictionary tables (before commit).
 */
void
aa_dict_end(void)
{
	int			i;

	if (!dict_open)
		return;
	for (i = 0; i < DICT_NKINDS; i++)
	{
		index_close(rels[i].hashidx, RowExclusiveLock);
		index_close(rels[i].pkey, RowExclusiveLock);
		table_close(rels[i].rel, RowExclusiveLock);
	}
	dict_open = false;
}

/*
 * A list's encoded form, used for hashing and comparison: count, then each
 * element as length and bytes.
 */
static void
dict_encode_set(StringInfo buf, const char **strs, int n)
{
	int			i;

	appendBinaryStringInfo(buf, (char *) &n, sizeof(int));
	for (i = 0; i < n; i++)
	{
		int			len = strlen(strs[i]);

		appendBinaryStringInfo(buf, (char *) &len, sizeof(int));
		appendBinaryStringInfo(buf, strs[i], len);
	}
}

/* a tuple's encoded form: its struct, bytes and all (see tuple_clean) */
static void
tuple_clean(AuditDictTuple *t)
{
	int			i;

	for (i = 0; i < AA_DICT_TUPLE_FIELDS; i++)
		if (t->isnull[i])
			t->v[i] = 0;
}

/* read a tuple kind's fields from a row whose first field is attribute off */
static void
tuple_from_row(int kind, HeapTuple tup, TupleDesc desc, int off,
			   AuditDictTuple *t)
{
	int			i;

	memset(t, 0, sizeof(AuditDictTuple));
	for (i = 0; i < AA_DICT_TUPLE_FIELDS; i++)
	{
		Datum		d = heap_getattr(tup, off + i, desc, &t->isnull[i]);

		if (!t->isnull[i])
			t->v[i] = aa_dict_datum_id(desc, off + i, d);
	}
}

/* the stored value of a dictionary row, in encoded form */
static void
stored_value(int kind, HeapTuple tup, TupleDesc desc, StringInfo buf)
{
	bool		isnull;
	Datum		d;

	if (kind >= AA_DICT_SESSION)
	{
		AuditDictTuple t;

		tuple_from_row(kind, tup, desc, 3, &t);
		appendBinaryStringInfo(buf, (char *) &t, sizeof(t));
		return;
	}
	d = heap_getattr(tup, 3, desc, &isnull);
	if (isnull)
		return;
	if (kind == DICT_STRING)
	{
		text	   *t = DatumGetTextPP(d);

		appendBinaryStringInfo(buf, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	else
	{
		Datum	   *elems;
		bool	   *nulls;
		int			n;
		int			i;
		const char **strs;

		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
						  TYPALIGN_INT, &elems, &nulls, &n);
		strs = palloc(sizeof(char *) * Max(n, 1));
		for (i = 0; i < n; i++)
			strs[i] = nulls[i] ? "" : TextDatumGetCString(elems[i]);
		dict_encode_set(buf, strs, n);
	}
}

/*
 * Find or add the id of an encoded value.  The cache is checked first, then
 * the table (by hash, comparing values), and a new row is added last.
 */
static int64
dict_lookup(int kind, const char *enc, int len, const char **strs, int n)
{
	DictKey		key;
	DictEntry  *entry;
	bool		found;
	DictRel    *dr = &rels[kind];
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	int64		id = 0;

	Assert(dict_open && kind >= 0 && kind < DICT_NKINDS);
	memset(&key, 0, sizeof(key));
	key.hash = hash_bytes_extended((const unsigned char *) enc, len, kind);
	key.kind = kind;
	entry = hash_search(by_value, &key, HASH_FIND, &found);
	if (found && entry->len == len && memcmp(entry->value, enc, len) == 0)
		return entry->id;

	/* in the table? */
	ScanKeyInit(&skey, 2, BTEqualStrategyNumber, F_INT8EQ,
				Int64GetDatum((int64) key.hash));
	scan = systable_beginscan(dr->rel, RelationGetRelid(dr->hashidx), true,
							  GetActiveSnapshot(), 1, &skey);
	while ((tup = systable_getnext(scan)) != NULL)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		stored_value(kind, tup, RelationGetDescr(dr->rel), &buf);
		if (buf.len == len && memcmp(buf.data, enc, len) == 0)
		{
			bool		isnull;

			id = aa_dict_datum_id(RelationGetDescr(dr->rel), 1,
								  heap_getattr(tup, 1, RelationGetDescr(dr->rel),
											   &isnull));
			pfree(buf.data);
			break;
		}
		pfree(buf.data);
	}
	systable_endscan(scan);

	if (id == 0)
	{
		Datum		values[2 + AA_DICT_TUPLE_FIELDS];
		bool		nulls[2 + AA_DICT_TUPLE_FIELDS];
		Datum		ivalues[1];
		bool		inulls[1] = {false};

		memset(nulls, false, sizeof(nulls));
		id = dict_next_id(kind);
		added_in_xact = true;
		values[0] = aa_dict_id_datum(RelationGetDescr(dr->rel), 1, id);
		values[1] = Int64GetDatum((int64) key.hash);
		if (kind >= AA_DICT_SESSION)
		{
			const AuditDictTuple *t = (const AuditDictTuple *) enc;
			int			i;

			for (i = 0; i < AA_DICT_TUPLE_FIELDS; i++)
			{
				nulls[2 + i] = t->isnull[i];
				values[2 + i] = aa_dict_id_datum(RelationGetDescr(dr->rel),
												 3 + i, t->v[i]);
			}
		}
		else if (kind == DICT_STRING)
			values[2] = PointerGetDatum(cstring_to_text_with_len(enc, len));
		else
		{
			Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));
			int			i;

			for (i = 0; i < n; i++)
				elems[i] = CStringGetTextDatum(strs[i]);
			values[2] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1,
														false, TYPALIGN_INT));
		}
		tup = heap_form_tuple(RelationGetDescr(dr->rel), values, nulls);
		heap_insert(dr->rel, tup, GetCurrentCommandId(true), 0, NULL);
		ivalues[0] = values[0];
		index_insert(dr->pkey, ivalues, inulls, &tup->t_self, dr->rel,
					 UNIQUE_CHECK_YES, false, dr->pkey_info);
		ivalues[0] = values[1];
		index_insert(dr->hashidx, ivalues, inulls, &tup->t_self, dr->rel,
					 UNIQUE_CHECK_NO, false, dr->hash_info);
		heap_freetuple(tup);
	}

	/* cache it, unless another value owns this hash already */
	if (!found)
	{
		entry = hash_search(by_value, &key, HASH_ENTER, &found);
		entry->id = id;
		entry->len = len;
		entry->value = MemoryContextAlloc(dict_cxt, Max(len, 1));
		memcpy(entry->value, enc, len);
		ncached++;
	}
	return id;
}

/*
 * Id of a string; 0 stands for NULL.
 */
int64
aa_dict_string_id(const char *s)
{
	if (s == NULL)
		return 0;
	return dict_lookup(DICT_STRING, s, strlen(s), NULL, 0);
}

/*
 * Id of a list of strings (the empty list has an id too).
 */
int64
aa_dict_set_id(const char **strs, int n)
{
	static StringInfoData buf;
	static bool buf_ready = false;

	/* the array is built only when the list is new (see dict_lookup) */
	if (!buf_ready)
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

		initStringInfo(&buf);
		MemoryContextSwitchTo(old);
		buf_ready = true;
	}
	resetStringInfo(&buf);
	dict_encode_set(&buf, strs, n);
	return dict_lookup(DICT_SET, buf.data, buf.len, strs, n);
}

/*
 * Memos: a process-local shortcut from a record's raw fields (encoded by
 * aa_dict_session_id/aa_dict_shape_id) to the id of its session or shape,
 * so that the writer looks up one key per record instead of every string
 * in it.  Returns 0 if the
 * encoding is not memorised.  Entries go with the caches (aa_dict_reset).
 */
static int64
dict_memo_get(int memo, const char *enc, int len)
{
	DictKey		key;
	DictEntry  *entry;
	bool		found;

	if (by_value == NULL)
		aa_dict_reset();
	memset(&key, 0, sizeof(key));
	key.hash = hash_bytes_extended((const unsigned char *) enc, len, memo);
	key.kind = memo;
	entry = hash_search(by_value, &key, HASH_FIND, &found);
	if (found && entry->len == len && memcmp(entry->value, enc, len) == 0)
		return entry->id;
	return 0;
}

/*
 * Remember id for the raw encoding enc (see dict_memo_get).
 */
static void
dict_memo_put(int memo, const char *enc, int len, int64 id)
{
	DictKey		key;
	DictEntry  *entry;
	bool		found;

	memset(&key, 0, sizeof(key));
	key.hash = hash_bytes_extended((const unsigned char *) enc, len, memo);
	key.kind = memo;
	entry = hash_search(by_value, &key, HASH_ENTER, &found);
	if (found)
		return;					/* another encoding owns this hash */
	entry->id = id;
	entry->len = len;
	entry->value = MemoryContextAlloc(dict_cxt, Max(len, 1));
	memcpy(entry->value, enc, len);
	ncached++;
}

/*
 * Id of a session or shape tuple (kind AA_DICT_SESSION or AA_DICT_SHAPE);
 * fields whose isnull is set are NULL.
 */
int64
aa_dict_tuple_id(int kind, const AuditDictTuple *tuple)
{
	AuditDictTuple t = *tuple;

	Assert(kind == AA_DICT_SESSION || kind == AA_DICT_SHAPE);
	tuple_clean(&t);
	return dict_lookup(kind, (const char *) &t, sizeof(t), NULL, 0);
}

/*
 * Memo encodings are written straight into the buffer, as the chain's are:
 * the writer builds two per record.
 */
static inline void
memo_str(StringInfo b, const char *s)
{
	int32		len = s ? (int32) strlen(s) : -1;

	if (b->len + len + 4 >= b->maxlen)
		enlargeStringInfo(b, len + 4);
	memcpy(b->data + b->len, &len, sizeof(len));
	b->len += sizeof(len);
	if (len > 0)
	{
		memcpy(b->data + b->len, s, len);
		b->len += len;
	}
}

static inline void
memo_int(StringInfo b, bool has, int64 v)
{
	if (!has)
		v = PG_INT64_MIN;		/* a NULL number */
	if (b->len + 8 >= b->maxlen)
		enlargeStringInfo(b, 8);
	memcpy(b->data + b->len, &v, sizeof(v));
	b->len += sizeof(v);
}

static inline void
memo_list(StringInfo b, int n, const char **strs)
{
	int			i;

	memo_int(b, true, n);
	for (i = 0; i < n; i++)
		memo_str(b, strs[i]);
}

/* the buffer memo encodings are built in (aa_scratch_buffer) */
static StringInfoData memo_buf;

/*
 * The session id of a logical record (database, roles, actor, claimed
 * actor, application, address, backend): from the memo of its raw fields,
 * or by looking each field up and remembering the result.  Dictionaries
 * must be open.  Used by the writer for every record, and by the log
 * view's maintenance-mode triggers.
 */
int64
aa_dict_session_id(const ChainRow *c)
{
	StringInfo	b = aa_scratch_buffer(&memo_buf);
	AuditDictTuple se;
	int64		id;
	int			i;

	memo_str(b, c->database);
	memo_str(b, c->login_role);
	memo_str(b, c->effective_role);
	memo_str(b, c->actor);
	memo_str(b, c->claimed_actor);
	memo_str(b, c->application_name);
	memo_str(b, c->client_addr);
	memo_int(b, c->has_backend_pid, c->backend_pid);
	id = dict_memo_get(DICT_MEMO_SESSION, b->data, b->len);
	if (id != 0)
		return id;

	memset(&se, 0, sizeof(se));
	se.v[0] = aa_dict_string_id(c->database);
	se.v[1] = aa_dict_string_id(c->login_role);
	se.v[2] = aa_dict_string_id(c->effective_role);
	se.v[3] = aa_dict_string_id(c->actor);
	se.v[4] = aa_dict_string_id(c->claimed_actor);
	se.v[5] = aa_dict_string_id(c->application_name);
	se.v[6] = aa_dict_string_id(c->client_addr);
	for (i = 0; i < 7; i++)
		se.isnull[i] = (se.v[i] == 0);
	se.v[7] = c->backend_pid;
	se.isnull[7] = !c->has_backend_pid;
	id = aa_dict_tuple_id(AA_DICT_SESSION, &se);
	dict_memo_put(DICT_MEMO_SESSION, b->data, b->len, id);
	return id;
}

/*
 * The shape id of a logical record (query id and text, command, nesting
 * level, relations, columns, predicate columns, tags), likewise.
 */
int64
aa_dict_shape_id(const ChainRow *c)
{
	StringInfo	b = aa_scratch_buffer(&memo_buf);
	AuditDictTuple sh;
	int64		id;
	int			i;

	memo_int(b, c->has_query_id, c->query_id);
	memo_str(b, c->query);
	memo_str(b, c->command);
	memo_int(b, c->has_nesting_level, c->nesting_level);
	memo_list(b, c->n_relations, c->relations);
	memo_list(b, c->n_columns, c->columns);
	memo_list(b, c->n_predicate, c->predicate_columns);
	memo_list(b, c->n_tags, c->tags);
	id = dict_memo_get(DICT_MEMO_SHAPE, b->data, b->len);
	if (id != 0)
		return id;

	memset(&sh, 0, sizeof(sh));
	sh.v[0] = c->query_id;
	sh.isnull[0] = !c->has_query_id;
	sh.v[1] = aa_dict_string_id(c->query);
	sh.isnull[1] = (sh.v[1] == 0);
	sh.v[2] = aa_dict_string_id(c->command);
	sh.isnull[2] = (sh.v[2] == 0);
	sh.v[3] = c->nesting_level;
	sh.isnull[3] = !c->has_nesting_level;
	sh.v[4] = c->n_relations < 0 ? 0 : aa_dict_set_id(c->relations, c->n_relations);
	sh.v[5] = c->n_columns < 0 ? 0 : aa_dict_set_id(c->columns, c->n_columns);
	sh.v[6] = c->n_predicate < 0 ? 0 : aa_dict_set_id(c->predicate_columns, c->n_predicate);
	sh.v[7] = c->n_tags < 0 ? 0 : aa_dict_set_id(c->tags, c->n_tags);
	for (i = 4; i < 8; i++)
		sh.isnull[i] = (sh.v[i] == 0);
	id = aa_dict_tuple_id(AA_DICT_SHAPE, &sh);
	dict_memo_put(DICT_MEMO_SHAPE, b->data, b->len, id);
	return id;
}

/*
 * An equality scan key on the id in attribute attno of rel, for its type
 * (integer before ALTER EXTENSION UPDATE to 1.1, bigint after).  An id
 * beyond an integer column's range matches nothing.
 */
static void
id_scankey(ScanKey key, Relation rel, int attno, int64 id)
{
	if (TupleDescAttr(RelationGetDescr(rel), attno - 1)->atttypid == INT8OID)
		ScanKeyInit(key, attno, BTEqualStrategyNumber, F_INT8EQ,
					Int64GetDatum(id));
	else
		ScanKeyInit(key, attno, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum(id > PG_INT32_MAX || id < PG_INT32_MIN ?
								  0 : (int32) id));
}

/*
 * Read one dictionary row by id into the by-id cache.
 */
static DictIdEntry *
dict_fetch(int kind, int64 id)
{
	DictIdKey	key;
	DictIdEntry *entry;
	bool		found;
	Relation	rel;
	ScanKeyData skey[2];
	SysScanDesc scan;
	HeapTuple	tup;
	MemoryContext old;
	Oid			nsp;
	int			valattr;

	if (by_id == NULL)
		aa_dict_reset();
	memset(&key, 0, sizeof(key));
	key.id = id;
	key.kind = kind;
	entry = hash_search(by_id, &key, HASH_FIND, &found);
	if (found)
		return entry;

	nsp = get_namespace_oid(AA_SCHEMA, false);
	if (fetch_source == NULL)
	{
		rel = table_open(get_relname_relid(dict_tables[kind].table, nsp),
						 AccessShareLock);
		id_scankey(&skey[0], rel, 1, id);
		scan = systable_beginscan(rel, get_relname_relid(dict_tables[kind].pkey, nsp),
								  true, GetActiveSnapshot(), 1, skey);
		valattr = 3;
	}
	else
	{
		/* the collected tables lead with source: (source, id, hash, ...) */
		rel = table_open(get_relname_relid(dict_tables[kind].collected, nsp),
						 AccessShareLock);
		ScanKeyInit(&skey[0], 1, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(fetch_source));
		id_scankey(&skey[1], rel, 2, id);
		scan = systable_beginscan(rel,
								  get_relname_relid(dict_tables[kind].collected_pkey, nsp),
								  true, GetActiveSnapshot(), 2, skey);
		valattr = 4;
	}
	tup = systable_getnext(scan);
	old = MemoryContextSwitchTo(dict_cxt);
	entry = hash_search(by_id, &key, HASH_ENTER, &found);
	entry->str = NULL;
	entry->n = -1;
	entry->strs = NULL;
	entry->tuple = NULL;
	if (tup != NULL && kind >= AA_DICT_SESSION)
	{
		entry->tuple = palloc(sizeof(AuditDictTuple));
		tuple_from_row(kind, tup, RelationGetDescr(rel), valattr, entry->tuple);
	}
	else if (tup != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, valattr, RelationGetDescr(rel), &isnull);

		if (!isnull && kind == DICT_STRING)
			entry->str = TextDatumGetCString(d);
		else if (!isnull)
		{
			Datum	   *elems;
			bool	   *nulls;
			int			n;
			int			i;

			deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false,
							  TYPALIGN_INT, &elems, &nulls, &n);
			entry->n = n;
			entry->strs = palloc(sizeof(char *) * Max(n, 1));
			for (i = 0; i < n; i++)
				entry->strs[i] = nulls[i] ? "" : TextDatumGetCString(elems[i]);
		}
	}
	ncached++;
	MemoryContextSwitchTo(old);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return entry;
}

/*
 * Make aa_dict_string() and aa_dict_set() read the dictionaries collected
 * from source (a subscription on a central server; see remote.c), or this
 * database's own for NULL.  Drops the cache when the source changes.
 */
void
aa_dict_use_source(const char *source)
{
	if ((source == NULL && fetch_source == NULL) ||
		(source != NULL && fetch_source != NULL &&
		 strcmp(source, fetch_source) == 0))
		return;
	if (fetch_source)
		pfree(fetch_source);
	fetch_source = source ? MemoryContextStrdup(TopMemoryContext, source) : NULL;
	aa_dict_reset();
}

/*
 * The string of an id (NULL for 0 or an unknown id).
 */
const char *
aa_dict_string(int64 id)
{
	if (id == 0)
		return NULL;
	return dict_fetch(DICT_STRING, id)->str;
}

/*
 * The session or shape tuple of an id (NULL for 0 or an unknown id).
 */
const AuditDictTuple *
aa_dict_tuple(int kind, int64 id)
{
	if (id == 0)
		return NULL;
	return dict_fetch(kind, id)->tuple;
}

/*
 * The list of an id; *n = -1 (and NULL) for 0 or an unknown id.
 */
const char **
aa_dict_set(int64 id, int *n)
{
	DictIdEntry *e;

	if (id == 0)
	{
		*n = -1;
		return NULL;
	}
	e = dict_fetch(DICT_SET, id);
	*n = e->n;
	return e->strs;
}
