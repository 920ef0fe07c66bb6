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

#include "access/attnum.h"

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

/*
 * The tags columns take from the tagged columns their values are computed
 * from: the columns of a relation created or refreshed from a query (CREATE
 * TABLE AS, SELECT INTO, CREATE / REFRESH MATERIALIZED VIEW), applied once
 * the statement has made it, and the columns an INSERT or UPDATE wrote,
 * applied when it completes.  capture.c traces them while the query runs.
 */
typedef struct AuditDerivedTags
{
	int			natts;			/* columns below */
	AttrNumber *attnos;			/* the columns written (NULL: 1..natts) */
	char	  **labels;			/* per column: the tag, or NULL */
	char	  **whys;			/* per column: where it came from */
} AuditDerivedTags;

extern void aa_tags_init(void);
extern bool aa_tags_active(void);
extern AuditRelTags *aa_tags_lookup(Oid relid);
extern uint64 aa_tags_epoch(void);
extern void aa_tags_changed(void);
extern bool aa_tags_valid_label(const char *label);
extern void aa_tags_label_copies(Oid relid, AuditDerivedTags *d);
extern int	aa_tags_derived_depth(void);
extern AuditDerivedTags *aa_tags_derived_take(int depth);
extern void aa_tags_derived_push(AuditDerivedTags *d);

#endif							/* AA_TAGS_H */
