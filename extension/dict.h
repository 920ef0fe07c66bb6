/*-------------------------------------------------------------------------
 *
 * dict.h
 *		Interface of the dictionaries of repeated strings and string lists
 *		behind the compact audit log.
 *
 * IDENTIFICATION
 *	  extension/dict.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_DICT_H
#define AA_DICT_H

#include "access/tupdesc.h"
#include "catalog/pg_type.h"

#include "access_audit.h"
#include "chain.h"

/*
 * Sessions (who and from where) and shapes (what statement, on what) are
 * stored once each and referred to by id from every record.  Their fields
 * are dictionary ids of strings and lists, or numbers:
 *	session: database, login_role, effective_role, actor, claimed_actor,
 *			 application_name, client_addr (its text form) ids; backend_pid
 *	shape:	 query_id; query text and command ids; nesting_level;
 *			 relations, columns, predicate_columns and tags ids
 */
#define AA_DICT_SESSION			2
#define AA_DICT_SHAPE			3
#define AA_DICT_TUPLE_FIELDS	8

typedef struct AuditDictTuple
{
	int64		v[AA_DICT_TUPLE_FIELDS];
	bool		isnull[AA_DICT_TUPLE_FIELDS];
} AuditDictTuple;

extern void aa_dict_begin(void);
extern void aa_dict_end(void);
extern void aa_dict_reset(void);
extern void aa_dict_trim(void);
extern int64 aa_dict_string_id(const char *s);
extern int64 aa_dict_set_id(const char **strs, int n);
extern int64 aa_dict_tuple_id(int kind, const AuditDictTuple *tuple);
extern const AuditDictTuple *aa_dict_tuple(int kind, int64 id);
extern int64 aa_dict_session_id(const ChainRow *c);
extern int64 aa_dict_shape_id(const ChainRow *c);
extern void aa_dict_use_source(const char *source);
extern const char *aa_dict_string(int64 id);
extern const char **aa_dict_set(int64 id, int *n);

/*
 * Dictionary ids are bigint since 1.1 (integer in 1.0, until ALTER
 * EXTENSION UPDATE): an id (or any integer field of a dictionary or log
 * row) as a Datum of attribute attno (1-based) of desc, and back, by that
 * attribute's type.
 */
static inline Datum
aa_dict_id_datum(TupleDesc desc, int attno, int64 v)
{
	if (TupleDescAttr(desc, attno - 1)->atttypid == INT8OID)
		return Int64GetDatum(v);
	return Int32GetDatum((int32) v);
}

static inline int64
aa_dict_datum_id(TupleDesc desc, int attno, Datum d)
{
	if (TupleDescAttr(desc, attno - 1)->atttypid == INT8OID)
		return DatumGetInt64(d);
	return (int64) DatumGetInt32(d);
}

#endif							/* AA_DICT_H */
