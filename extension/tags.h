/*-------------------------------------------------------------------------
 *
 * tags.h
 *		Interface of the tag provider and the per-backend tag cache.
 *
 * IDENTIFICATION
 *	  extension/tags.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_TAGS_H
#define AA_TAGS_H

#include "access_audit.h"

/* Tags of one column; qualname is NULL for an untagged column. */
typedef struct AuditColumnTags
{
	const char *qualname;		/* schema.table.column */
	int			ntags;
	const char **tags;
} AuditColumnTags;

/* Effective tags of one relation (own labels plus its ancestors'). */
typedef struct AuditRelTags
{
	Oid			relid;
	bool		tagged;			/* any column tagged? */
	const char *qualname;		/* schema.table */
	int			natts;
	AuditColumnTags *cols;		/* indexed by attno, 1..natts */
} AuditRelTags;

extern void aa_tags_init(void);
extern bool aa_tags_active(void);
extern AuditRelTags *aa_tags_lookup(Oid relid);
extern uint64 aa_tags_epoch(void);
extern void aa_tags_changed(void);
extern bool aa_tags_valid_label(const char *label);

#endif							/* AA_TAGS_H */
