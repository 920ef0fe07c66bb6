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

extern void aa_dict_begin(void);
extern void aa_dict_end(void);
extern void aa_dict_reset(void);
extern void aa_dict_trim(void);
extern int32 aa_dict_string_id(const char *s);
extern int32 aa_dict_set_id(const char **strs, int n);
extern void aa_dict_use_source(const char *source);
extern const char *aa_dict_string(int32 id);
extern const char **aa_dict_set(int32 id, int *n);

#endif							/* AA_DICT_H */
