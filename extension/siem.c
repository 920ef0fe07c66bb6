/*-------------------------------------------------------------------------
 *
 * siem.c
 *		Alerts and audit records as JSON lines in the server log.
 *
 * This file owns access_audit.siem_log: parsing the setting, and writing
 * one server-log line per alert (called from the alerts table's trigger
 * through access_audit._siem_emit in sql_api.c) and, with siem_log = all, one line per
 * audit record (called by the writer inside the transaction that inserts
 * the records, so a batch that commits has been logged; a batch retried
 * after a failed commit is logged again with the same seq and hash).
 * Each line is a fixed prefix, one space and one JSON object without
 * newlines, so log shippers pick it out of the server log with one match.
 * The JSON is built in SQL (access_audit.records_after and the alert
 * trigger in extension/sql/41_siem.sql), the same text a pull-based
 * collector reads.
 *
 * Lines that only look like ours (a user's RAISE LOG with our prefix) are
 * marked in an emit_log_hook, so the prefix at the start of a message
 * always means this file wrote it.
 *
 * Ownership: siem_emitting is process-local, set only around our own
 * ereport; aa_siem_level (access_audit.c) is written only by the setting's
 * assign hook.
 *
 * IDENTIFICATION
 *	  extension/siem.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/elog.h"

#include "siem.h"

/* true while aa_siem_emit reports one of our lines */
static bool siem_emitting = false;
static emit_log_hook_type prev_emit_log_hook = NULL;

static void siem_emit_log_hook(ErrorData *edata);

/*
 * Install the hook that keeps others from writing lines that look like
 * ours.  Called once from _PG_init.
 */
void
aa_siem_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = siem_emit_log_hook;
}

/*
 * emit_log_hook: a message that starts with one of our prefixes but was
 * not written by aa_siem_emit (RAISE LOG 'ACCESS_AUDIT_ALERT {...}' in a
 * user's function, say) gets "(not from access_audit) " in front, so that
 * a log shipper matching the prefix at the start of the message never
 * takes it for an alert or a record.  Runs in the error's own context.
 */
static void
siem_emit_log_hook(ErrorData *edata)
{
	if (!siem_emitting && edata->message != NULL)
	{
		const char *m = edata->message;

		while (*m == ' ' || *m == '\t' || *m == '\n' || *m == '\r')
			m++;
		if (strncmp(m, AA_SIEM_ALERT_PREFIX, strlen(AA_SIEM_ALERT_PREFIX)) == 0 ||
			strncmp(m, AA_SIEM_RECORD_PREFIX, strlen(AA_SIEM_RECORD_PREFIX)) == 0)
			edata->message = psprintf("(not from access_audit) %s",
									  edata->message);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/*
 * Write one line to the server log: prefix, a space, the JSON text.  The
 * statement and context are left out so that the line stands alone; the
 * client never sees it.
 */
void
aa_siem_emit(const char *prefix, const char *json)
{
	siem_emitting = true;
	PG_TRY();
	{
		ereport(LOG_SERVER_ONLY,
				errmsg_internal("%s %s", prefix, json),
				errhidestmt(true),
				errhidecontext(true));
	}
	PG_FINALLY();
	{
		siem_emitting = false;
	}
	PG_END_TRY();
}

/*
 * Log the JSON lines of the count records starting at first_seq, which
 * the caller (the writer) inserted in its current transaction.  The
 * caller is connected to SPI and has made the records visible with
 * CommandCounterIncrement; the query runs read-write so that SPI takes a
 * new snapshot that sees them.  An ERROR fails the batch, which is then
 * retried.
 */
void
aa_siem_log_records(int64 first_seq, int64 count)
{
	Oid			argtypes[2] = {INT8OID, INT4OID};
	Datum		args[2];
	int			ret;
	uint64		i;

	if (count <= 0)
		return;
	args[0] = Int64GetDatum(first_seq - 1);
	args[1] = Int32GetDatum((int32) Min(count, PG_INT32_MAX));
	ret = SPI_execute_with_args("SELECT line FROM access_audit.records_after($1, $2) AS line",
								2, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "unexpected SPI result %d", ret);
	for (i = 0; i < SPI_processed; i++)
	{
		char	   *line = SPI_getvalue(SPI_tuptable->vals[i],
										SPI_tuptable->tupdesc, 1);

		if (line != NULL)
		{
			aa_siem_emit(AA_SIEM_RECORD_PREFIX, line);
			pfree(line);
		}
	}
	SPI_freetuptable(SPI_tuptable);
}

/*
 * Write one alert line if access_audit.siem_log asks for alerts.  Called
 * by access_audit._siem_emit, from the trigger on access_audit.alerts.
 */
void
aa_siem_emit_alert(const char *json)
{
	if (aa_siem_level >= AA_SIEM_ALERTS)
		aa_siem_emit(AA_SIEM_ALERT_PREFIX, json);
}
