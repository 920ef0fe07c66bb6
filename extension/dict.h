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
extern int32 aa_dict_string_id(const char *s);
extern int32 aa_dict_set_id(const char **strs, int n);
extern int32 aa_dict_tuple_id(int kind, const AuditDictTuple *tuple);
extern const AuditDictTuple *aa_dict_tuple(int kind, int32 id);
extern int32 aa_dict_session_id(const ChainRow *c);
extern int32 aa_dict_shape_id(const ChainRow *c);
extern void aa_dict_use_source(const char *source);
extern const char *aa_dict_string(int32 id);
extern const char **aa_dict_set(int32 id, int *n);

#endif							/* AA_DICT_H */
