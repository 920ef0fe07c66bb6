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
extern void aa_capture_disable(void);
extern void aa_capture_event(const char *command, const char *relation,
							 const char *column, const char *tag,
							 const char *detail);
extern void aa_capture_tag_published(Oid relid, int32 subid, const char *label);
extern int	aa_capture_derived_depth(void);
extern AuditDerivedTags *aa_capture_derived_take(int depth);

#endif							/* AA_CAPTURE_H */
