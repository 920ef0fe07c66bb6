/*-------------------------------------------------------------------------
 *
 * siem.h
 *		Interface of the server-log JSON lines for SIEMs.
 *
 * IDENTIFICATION
 *	  extension/siem.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef AA_SIEM_H
#define AA_SIEM_H

#include "access_audit.h"

/* what access_audit.siem_log sends to the server log */
#define AA_SIEM_OFF		0
#define AA_SIEM_ALERTS	1
#define AA_SIEM_ALL		2

/* fixed prefixes of the lines, followed by one space and a JSON object */
#define AA_SIEM_ALERT_PREFIX	"ACCESS_AUDIT_ALERT"
#define AA_SIEM_RECORD_PREFIX	"ACCESS_AUDIT_RECORD"

extern void aa_siem_init(void);
extern void aa_siem_emit(const char *prefix, const char *json);
extern void aa_siem_emit_alert(const char *json);
extern void aa_siem_log_records(int64 first_seq, int64 count);

#endif							/* AA_SIEM_H */
