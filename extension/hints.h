/*-------------------------------------------------------------------------
 *
 * hints.h
 *		Interface of the permission-error hints.
 *
 * IDENTIFICATION
 *	  extension/hints.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_HINTS_H
#define AA_HINTS_H

#include "access_audit.h"

extern void aa_hints_init(void);

#endif							/* AA_HINTS_H */
