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
#include "tags.h"

extern void aa_capture_init(void);
extern int	aa_tags_derived_depth(void);
extern AuditDerivedTags *aa_tags_derived_take(int depth);
extern void aa_tags_derived_push(AuditDerivedTags *d);

#endif							/* AA_CAPTURE_H */
