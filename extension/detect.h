/*-------------------------------------------------------------------------
 *
 * detect.h
 *		Interface of the per-actor scorer behind rank_exporters.
 *
 * IDENTIFICATION
 *	  extension/detect.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_DETECT_H
#define AA_DETECT_H

#include "fmgr.h"
#include "utils/date.h"

extern void aa_detect_actor_stats(FunctionCallInfo fcinfo, Oid source,
								  DateADT d1, int32 nd, int32 nb);

#endif							/* AA_DETECT_H */
