/*-------------------------------------------------------------------------
 *
 * writer.h
 *		Interface of the launcher and the per-database writer workers.
 *
 * IDENTIFICATION
 *	  extension/writer.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_WRITER_H
#define AA_WRITER_H

#include "access_audit.h"

extern void aa_writer_init(void);
extern void aa_writer_pin_settings(void);
extern char *aa_writer_attach(Oid dboid);
extern int64 aa_writer_ring_pos(uint64 ring_id);
extern PGDLLEXPORT void aa_launcher_main(Datum main_arg);
extern PGDLLEXPORT void aa_writer_main(Datum main_arg);

#endif							/* AA_WRITER_H */
