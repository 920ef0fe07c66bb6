/*-------------------------------------------------------------------------
 *
 * partition.h
 *		The seq range partitions of access_audit.log_data.
 *
 * IDENTIFICATION
 *	  extension/partition.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_PARTITION_H
#define AA_PARTITION_H

#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"

/* access_audit.partition_size: records per partition (settings.c) */
extern int	aa_partition_size;

#define AA_PARTITION_SIZE_DEFAULT	1000000
#define AA_PARTITION_SIZE_MIN		10
#define AA_PARTITION_SIZE_MAX		100000000

extern void aa_partition_ensure(int64 last_seq, Oid extoid, int n);
extern void aa_partition_insert(Relation parent, TupleTableSlot **slots,
								int nrows, int64 first_seq, CommandId cid,
								EState *estate);

#endif							/* AA_PARTITION_H */
