/*-------------------------------------------------------------------------
 *
 * guard.h
 *		Interface of the append-only guard of the extension's audit tables.
 *
 * IDENTIFICATION
 *	  extension/guard.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_GUARD_H
#define AA_GUARD_H

#include "access_audit.h"

extern void aa_guard_init(void);
extern void aa_guard_check_direct_write(const char *action,
										const char *object);

#endif							/* AA_GUARD_H */
