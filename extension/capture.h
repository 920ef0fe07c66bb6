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

#endif							/* AA_CAPTURE_H */
