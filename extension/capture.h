/*-------------------------------------------------------------------------
 *
 * capture.h
 *		Interface of the executor and utility hooks that capture reads.
 *
 * IDENTIFICATION
 *	  extension/capture.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_CAPTURE_H
#define AA_CAPTURE_H

#include "access_audit.h"

/*
 * The tags a relation created or refreshed from a query (CREATE TABLE AS,
 * SELECT INTO, CREATE / REFRESH MATERIALIZED VIEW) takes from the tagged
 * columns its columns are computed from; tags.c applies them once the
 * statement has made the relation.
 */
typedef struct AuditDerivedTags
{
	int			natts;			/* output columns, in the relation's order */
	char	  **labels;			/* per column: the tag, or NULL */
	char	  **whys;			/* per column: where it came from */
} AuditDerivedTags;

extern void aa_capture_init(void);
extern void aa_capture_disable(void);
extern void aa_capture_event(const char *command, const char *relation,
							 const char *column, const char *tag,
							 const char *detail);
extern int	aa_capture_derived_depth(void);
extern AuditDerivedTags *aa_capture_derived_take(int depth);

#endif							/* AA_CAPTURE_H */
