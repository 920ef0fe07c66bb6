/*-------------------------------------------------------------------------
 *
 * hints.c
 *		Permission errors on access_audit's objects name the role to ask for.
 *
 * This file owns the emit_log_hook that adds a hint to PostgreSQL's own
 * "permission denied for function|schema|table|view ..." errors when the
 * object is one of access_audit's: a user who may not run
 * access_audit.ack() learns that access_audit_analyst is the role to ask
 * for.  Core raises these errors (aclcheck_error) before any code of ours
 * runs, so the hint is added on the way out.  The object is recognised by
 * the message's untranslated text and the name formatted into it, in the
 * server's message language; an error that already has a hint is left as
 * it is.  The hint states a fact about the access_audit object of that
 * name, so it stays true if the user meant an object of their own.
 *
 * Ownership: no state beyond the saved previous hook.  The hook runs
 * inside error reporting: it allocates only in the error's own context and
 * does no catalog access.
 *
 * IDENTIFICATION
 *	  extension/hints.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "utils/elog.h"

#include "hints.h"

/* which role to ask for, per access_audit object */
typedef struct PermissionHint
{
	const char *kind;			/* message id of core's aclcheck error */
	const char *name;			/* object name as core prints it */
	const char *role;			/* role that may use it */
	const char *more;			/* an extra sentence, or NULL */
} PermissionHint;

#define AA_ROLE_INGEST	"access_audit_ingest"
#define AA_DENIED_FN "permission denied for function %s"
#define AA_DENIED_SCHEMA "permission denied for schema %s"
#define AA_DENIED_TABLE "permission denied for table %s"
#define AA_DENIED_VIEW "permission denied for view %s"

static const PermissionHint permission_hints[] = {
	{AA_DENIED_SCHEMA, "access_audit", AA_ROLE_READER,
	"Members of \"" AA_ROLE_ANALYST "\" may also raise and acknowledge alerts."},
	{AA_DENIED_FN, "check_exports", AA_ROLE_ANALYST, NULL},
	{AA_DENIED_FN, "ack", AA_ROLE_ANALYST, NULL},
	{AA_DENIED_FN, "tag", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "tag_table", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "untag", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "untag_table", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "rebuild_daily", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "collect_rollup", AA_ROLE_ADMIN, NULL},
	{AA_DENIED_FN, "report", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "records_after", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "status", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "verify", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "chain_head", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "flush", AA_ROLE_READER, NULL},
	{AA_DENIED_FN, "ingest", AA_ROLE_INGEST, NULL},
	{AA_DENIED_TABLE, "actor_groups", AA_ROLE_READER,
	"Only members of \"" AA_ROLE_ADMIN "\" may change it."},
	{AA_DENIED_TABLE, "log_data", AA_ROLE_READER, NULL},
	{AA_DENIED_TABLE, "actor_daily", AA_ROLE_READER, NULL},
	{AA_DENIED_TABLE, "alerts", AA_ROLE_READER, NULL},
	{AA_DENIED_TABLE, "alert_acks", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "log", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "reads", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "tag_changes", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "tagged_columns", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "stats", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "alerts_open", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "daily_exports", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "status", AA_ROLE_READER, NULL},
	{AA_DENIED_VIEW, "tags_elsewhere", AA_ROLE_READER, NULL},
};

static emit_log_hook_type prev_emit_log_hook = NULL;

static void aa_emit_log_hook(ErrorData *edata);

/*
 * Install the hook.  Called once from _PG_init.
 */
void
aa_hints_init(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = aa_emit_log_hook;
}

/*
 * emit_log_hook: add the role to ask for to core's permission errors on
 * access_audit objects, then pass the error on.
 */
static void
aa_emit_log_hook(ErrorData *edata)
{
	if (edata->elevel == ERROR &&
		edata->sqlerrcode == ERRCODE_INSUFFICIENT_PRIVILEGE &&
		edata->hint == NULL && edata->message_id != NULL &&
		edata->message != NULL &&
		strncmp(edata->message_id, "permission denied for ", 22) == 0)
	{
		int			i;
		char		expect[NAMEDATALEN + 128];

		for (i = 0; i < lengthof(permission_hints); i++)
		{
			const PermissionHint *h = &permission_hints[i];
			const char *fmt;

			if (strcmp(edata->message_id, h->kind) != 0)
				continue;
			/* the message as core formatted it, in the server's language */
			fmt = edata->domain ? dgettext(edata->domain, h->kind) : h->kind;
			snprintf(expect, sizeof(expect), fmt, h->name);
			if (strcmp(edata->message, expect) != 0)
				continue;
			/* EmitErrorReport runs the hook in the error's own context */
			edata->hint = psprintf("Members of role \"%s\" may %s access_audit%s%s%s.%s%s Ask an administrator to grant you that role.",
								   h->role,
								   strcmp(h->kind, AA_DENIED_SCHEMA) == 0 ? "use schema" :
								   strcmp(h->kind, AA_DENIED_FN) == 0 ? "run" : "read",
								   strcmp(h->kind, AA_DENIED_SCHEMA) == 0 ? "" : ".",
								   strcmp(h->kind, AA_DENIED_SCHEMA) == 0 ? "" : h->name,
								   strcmp(h->kind, AA_DENIED_FN) == 0 ? "()" : "",
								   h->more ? " " : "", h->more ? h->more : "");
			break;
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}
