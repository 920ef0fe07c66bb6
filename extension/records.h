/*-------------------------------------------------------------------------
 *
 * records.h
 *		Interface of the records that are not reads (records.c), and of
 *		what every record says about its session and statement.
 *
 * IDENTIFICATION
 *	  extension/records.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_RECORDS_H
#define AA_RECORDS_H

#include "nodes/parsenodes.h"

#include "access_audit.h"

/* executor nesting depth of this backend, kept by capture.c's hooks */
extern int	aa_nesting_level;
extern bool aa_capture_disabled;

extern void aa_capture_disable(void);
extern bool aa_capture_wanted(void);
extern bool aa_record_actor_trusted(void);
extern void aa_record_fill_identity(AuditRecord *rec, MemoryContext cxt);
extern char *aa_record_statement_text(const char *source, int location,
									  int len, MemoryContext cxt);
extern void aa_capture_event(const char *command, const char *relation,
							 const char *column, const char *tag,
							 const char *detail);
extern void aa_capture_event_lists(const char *command, const char **rels,
								   int nrels, const char **cols, int ncols,
								   const char **tags, int ntags,
								   const char *detail);
extern Datum *aa_publication_names(Datum names, bool isnull, int *n);
extern char *aa_publication_detail(const char *pubname, const char *why);
extern void aa_capture_tag_published(Oid relid, int32 subid, const char *label);
extern void aa_record_setting_change(Node *parsetree);

#endif							/* AA_RECORDS_H */
