/*-------------------------------------------------------------------------
 *
 * remote.h
 *		Interface of standby shipping, ingest and central collection.
 *
 * IDENTIFICATION
 *	  extension/remote.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_REMOTE_H
#define AA_REMOTE_H

#include "access_audit.h"
#include "compat.h"

extern PGDLLEXPORT void aa_remote_shipper_main(Datum main_arg);
extern int64 aa_remote_ingest(const char *origin, uint64 ring_id,
							  const char *data, Size len);
extern const char *aa_remote_collect_source(void);

#endif							/* AA_REMOTE_H */
