/*-------------------------------------------------------------------------
 *
 * restore.h
 *		Interface of the sanctioned paths into the audit tables: restores of
 *		a dump and extension updates.
 *
 * IDENTIFICATION
 *	  extension/restore.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_RESTORE_H
#define AA_RESTORE_H

#include "nodes/parsenodes.h"

#include "access_audit.h"

extern void aa_restore_init(void);
extern void aa_restore_binary_upgrade_init(void);

/* the restoring session (called from guard.c) */
extern bool aa_restore_session(void);
extern bool aa_restore_copy_start(CopyStmt *stmt, Oid relid);
extern void aa_restore_copy_done(uint64 nrows);
extern void aa_restore_copy_reset(void);
extern bool aa_restore_partition_ddl(Node *parsetree);
extern void aa_restore_utility_done(Node *parsetree);
extern bool aa_restore_skip_statement(void);
extern bool aa_restore_copying(Oid relid);
extern void aa_restore_extension_created(void);

/* ALTER EXTENSION access_audit UPDATE (called from guard.c) */
extern char *aa_restore_extension_version(void);
extern bool aa_restore_updating(void);
extern void aa_restore_update_start(void);
extern void aa_restore_update_done(const char *from, bool ok);

/* the writer (called from writer.c) */
extern void aa_restore_exclude_writer(void);
extern bool aa_restore_writer_begin(void);
extern void aa_restore_writer_end(void);
extern void aa_restore_writer_wait(void);

#endif							/* AA_RESTORE_H */
