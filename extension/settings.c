/*-------------------------------------------------------------------------
 *
 * settings.c
 *		The access_audit.* settings: their variables, definitions, bounds
 *		and check and assign hooks.
 *
 * This file owns every GUC variable of the extension (declared in
 * access_audit.h) and the rule that a bad value in postgresql.conf stops
 * the server at start instead of running on the default.  Only the GUC
 * machinery writes the variables; every other file reads them.  It calls
 * no other file of the extension (a leaf of the call graph).
 *
 * IDENTIFICATION
 *	  extension/settings.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgtime.h"
#include "utils/guc.h"

#include "access_audit.h"
#include "compat.h"
#include "partition.h"
#include "siem.h"

bool		aa_enabled = true;
int			aa_queue_size_mb = 64;
int			aa_flush_interval_ms = 200;
int			aa_batch_size = 5000;
int			aa_partition_size = AA_PARTITION_SIZE_DEFAULT;
int			aa_max_query_length = 2048;
int			aa_query_text = AA_QUERY_TEXT_FULL;
char	   *aa_actor = NULL;
bool		aa_actor_own = false;
bool		aa_maintenance = false;
int			aa_business_hours_start = AA_BUSINESS_HOURS_START_DEFAULT;
int			aa_business_hours_end = AA_BUSINESS_HOURS_END_DEFAULT;
char	   *aa_business_timezone = NULL;
char	   *aa_primary_conninfo = NULL;
char	   *aa_server_name = NULL;
char	   *aa_siem_log = NULL;
int			aa_siem_level = AA_SIEM_OFF;
double		aa_alert_notify_limit = 0.5;

/* set whenever an access_audit.* setting is assigned; see guard.c */
bool		aa_settings_assigned = true;
uint64		aa_business_timezone_epoch = 0;

char	   *aa_reason = NULL;

static const struct config_enum_entry query_text_options[] = {
	{"full", AA_QUERY_TEXT_FULL, false},
	{"normalized", AA_QUERY_TEXT_NORMALIZED, false},
	{"normalised", AA_QUERY_TEXT_NORMALIZED, true},
	{NULL, 0, false}
};

/*
 * While _PG_init runs, the check hook of access_audit.siem_log accepts any
 * value: a bad value in postgresql.conf would otherwise be replaced by the
 * default with only a WARNING (that is how custom settings are applied), and
 * an audit tool must not start on settings it did not ask for.  _PG_init
 * then refuses to start with a clear error.  Later changes (reload) are
 * checked by the hook.  The integer settings are checked before they are
 * defined instead (refuse_bad_start_value).
 */
static bool in_pg_init = false;

/*
 * The integer settings.  Their bounds are the GUC's own (pg_settings shows
 * them, and SET, ALTER SYSTEM and a reload refuse values outside them);
 * refuse_bad_start_value() applies them at start-up too, where the GUC
 * machinery would only warn and fall back to the default.
 */
typedef struct IntSetting
{
	const char *name;
	const char *short_desc;
	const char *long_desc;
	int		   *var;
	int			boot;
	int			min;
	int			max;
	GucContext	context;
	int			flags;			/* GUC_UNIT_* */
	const char *hint;			/* advice when the start-up value is refused */
} IntSetting;

static const IntSetting int_settings[] = {
	{"access_audit.queue_size",
		"Size of the shared queue of audit records.",
		"The queue lives in a file under the data directory.",
		&aa_queue_size_mb, 64, 1, 4096, PGC_POSTMASTER, GUC_UNIT_MB,
	"The queue must hold at least one record: use at least 1MB."},
	{"access_audit.flush_interval",
		"Longest time a writer sleeps between batches.",
		NULL,
		&aa_flush_interval_ms, 200, 1, 60000, PGC_SIGHUP, GUC_UNIT_MS,
	"Use an interval between 1ms and 60s."},
	{"access_audit.batch_size",
		"Most records a writer commits in one transaction.",
		"Takes effect when a writer starts.",
		&aa_batch_size, 5000, 1, 100000, PGC_SIGHUP, 0,
	"Use a batch size between 1 and 100000."},
	{"access_audit.partition_size",
		"Records in each partition of the log.",
		"Retention drops whole partitions; the writer makes the next one at this width.",
		&aa_partition_size, AA_PARTITION_SIZE_DEFAULT, AA_PARTITION_SIZE_MIN,
		AA_PARTITION_SIZE_MAX, PGC_SIGHUP, 0,
	"Use between 10 and 100000000 records per partition."},
	{"access_audit.max_query_length",
		"Longest query text kept in a record, in bytes.",
		NULL,
		&aa_max_query_length, 2048, 0, 1048576, PGC_SUSET, GUC_UNIT_BYTE,
	"Use a length between 0 and 1048576 bytes."},
	{"access_audit.business_hours_start",
		"First hour (0-23) of business hours, for off-hours volume.",
		NULL,
		&aa_business_hours_start, AA_BUSINESS_HOURS_START_DEFAULT, 0, 23,
		PGC_SIGHUP, 0,
	"Use an hour between 0 and 23."},
	{"access_audit.business_hours_end",
		"Hour (1-24) at which business hours end.",
		NULL,
		&aa_business_hours_end, AA_BUSINESS_HOURS_END_DEFAULT, 1, 24,
		PGC_SIGHUP, 0,
	"Use an hour between 1 and 24."},
};

/*
 * Refuse to start on a value of an integer setting outside its bounds.
 * Called before the setting is defined: a value from postgresql.conf is
 * then a placeholder's string, which the definition would replace by the
 * default with only a WARNING (that is how custom settings are applied),
 * and an audit tool must not start on settings it did not ask for.  A
 * value that does not parse as a number is left to the definition, as
 * before (WARNING, default).
 */
static void
refuse_bad_start_value(const IntSetting *s)
{
	const char *value = GetConfigOption(s->name, true, false);
	int			v;

	if (value == NULL || !parse_int(value, &v, s->flags, NULL))
		return;
	if (v < s->min || v > s->max)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for parameter \"%s\": %d", s->name, v),
				errdetail("%s must be between %d and %d.", s->name,
						  s->min, s->max),
				errhint("%s", s->hint));
}

/*
 * The same for a setting that is a fraction (0 to 1).
 */
static void
refuse_bad_start_fraction(const char *name)
{
	const char *value = GetConfigOption(name, true, false);
	double		v;

	if (value == NULL || !parse_real(value, &v, 0, NULL))
		return;
	if (v < 0.0 || v > 1.0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for parameter \"%s\": %g", name, v),
				errdetail("%s must be between 0 and 1.", name),
				errhint("Use a fraction such as 0.5."));
}

/*
 * check hook for access_audit.business_timezone: a zone name the server
 * knows.  No catalog access here.
 */
static bool
check_business_timezone(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("Time zone \"%s\" is not recognized.",
							*newval ? *newval : "");
		return false;
	}
	return true;
}

/*
 * The business hours in effect, [*start, *end).  The two settings are
 * checked one at a time (a reload changes them in any order, and a check
 * across them in _PG_init would make a restart fail on a combination the
 * reload accepted), so a combination with end <= start is possible: then
 * the defaults 8 to 18 apply, with a WARNING each time the combination
 * changes in this process.  Cheap enough for every record.
 */
void
aa_business_hours(int *start, int *end)
{
	static int	warned_start = -1;
	static int	warned_end = -1;

	if (aa_business_hours_end > aa_business_hours_start)
	{
		*start = aa_business_hours_start;
		*end = aa_business_hours_end;
		return;
	}
	if (warned_start != aa_business_hours_start ||
		warned_end != aa_business_hours_end)
	{
		warned_start = aa_business_hours_start;
		warned_end = aa_business_hours_end;
		ereport(WARNING,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("access_audit.business_hours_end (%d) is not after access_audit.business_hours_start (%d), using business hours 8 to 18",
					   aa_business_hours_end, aa_business_hours_start),
				errhint("Business hours are [start, end) in the business time zone, for example 8 to 18; fix the settings and reload."));
	}
	*start = AA_BUSINESS_HOURS_START_DEFAULT;
	*end = AA_BUSINESS_HOURS_END_DEFAULT;
}

/*
 * Check hook of access_audit.actor: keep, with the value, whether the
 * session named the actor itself (SET, set_config(), a function's SET
 * clause, or its connection options) rather than a default that another
 * role chose: a database owner's ALTER DATABASE ... SET, a role default, a
 * configuration file.  Only the session's own actor can be trusted.
 */
static bool
check_actor(char **newval, void **extra, GucSource source)
{
	bool	   *own = aa_guc_extra_alloc_compat(sizeof(bool));

	if (own == NULL)
	{
		GUC_check_errcode(ERRCODE_OUT_OF_MEMORY);
		GUC_check_errmsg("out of memory");
		return false;
	}
	*own = source == PGC_S_CLIENT || source >= PGC_S_INTERACTIVE;
	*extra = own;
	return true;
}

/*
 * Assign hook of access_audit.actor: where the value came from (the GUC
 * machinery restores it with the value on RESET, rollback and function
 * exit).
 */
static void
assign_actor(const char *newval, void *extra)
{
	aa_actor_own = extra != NULL && *(bool *) extra;
}

/*
 * Assign hooks of the settings whose changes are recorded (all but
 * access_audit.actor and access_audit.maintenance): note that one was
 * assigned, for the guard to compare at the next statement
 * (aa_guard_note_settings).  Assign hooks must not fail or do any work
 * beyond this; they also run in the postmaster and on rollback.
 */
static void
assign_bool_setting(bool newval, void *extra)
{
	aa_settings_assigned = true;
}

static void
assign_int_setting(int newval, void *extra)
{
	aa_settings_assigned = true;
}

static void
assign_string_setting(const char *newval, void *extra)
{
	aa_settings_assigned = true;
}

static void
assign_real_setting(double newval, void *extra)
{
	aa_settings_assigned = true;
}

/*
 * access_audit.business_timezone also counts its assignments, so that
 * quota.c knows its cached day windows still hold without comparing the
 * zone's name at every statement.
 */
static void
assign_business_timezone(const char *newval, void *extra)
{
	aa_settings_assigned = true;
	aa_business_timezone_epoch++;
}

/*
 * check hook for access_audit.reason: bounded, so records stay small.  No
 * catalog access here.
 */
static bool
check_reason(char **newval, void **extra, GucSource source)
{
	if (*newval != NULL && strlen(*newval) > 1024)
	{
		GUC_check_errdetail("A reason is at most 1024 bytes long.");
		GUC_check_errhint("Give a ticket number or a short sentence.");
		return false;
	}
	return true;
}

/*
 * Parse a value of access_audit.siem_log; -1 if it is not one.
 */
int
aa_siem_parse_level(const char *value)
{
	if (value == NULL)
		return -1;
	if (pg_strcasecmp(value, "off") == 0 || pg_strcasecmp(value, "none") == 0)
		return AA_SIEM_OFF;
	if (pg_strcasecmp(value, "alerts") == 0)
		return AA_SIEM_ALERTS;
	if (pg_strcasecmp(value, "all") == 0)
		return AA_SIEM_ALL;
	return -1;
}

/*
 * check hook of access_audit.siem_log: "off", "alerts" or "all", except
 * during _PG_init (see in_pg_init).  No catalog access.
 */
static bool
check_siem_log(char **newval, void **extra, GucSource source)
{
	if (in_pg_init || aa_siem_parse_level(*newval) >= 0)
		return true;
	GUC_check_errdetail("access_audit.siem_log must be \"off\", \"alerts\" or \"all\".");
	return false;
}

/*
 * assign hook of access_audit.siem_log: keep the parsed level.  A value
 * that does not parse (possible only during _PG_init, which then fails)
 * counts as off.
 */
static void
assign_siem_log(const char *newval, void *extra)
{
	int			level = aa_siem_parse_level(newval);

	aa_siem_level = level < 0 ? AA_SIEM_OFF : level;
	/* switching the SIEM lines off is a change the guard records too */
	aa_settings_assigned = true;
}

/*
 * Define every setting, then refuse to start on a bad value rather than run
 * on the default (see in_pg_init).  Called once, from _PG_init.
 */
void
aa_settings_define(void)
{
	int			i;

	in_pg_init = true;
	DefineCustomBoolVariable("access_audit.enabled",
							 "Records reads of tagged columns.",
							 "Turning it off is itself recorded.",
							 &aa_enabled, true, PGC_SUSET, 0,
							 NULL, assign_bool_setting, NULL);
	for (i = 0; i < lengthof(int_settings); i++)
	{
		const IntSetting *s = &int_settings[i];

		refuse_bad_start_value(s);
		DefineCustomIntVariable(s->name, s->short_desc, s->long_desc,
								s->var, s->boot, s->min, s->max, s->context,
								s->flags, NULL, assign_int_setting, NULL);
	}
	DefineCustomEnumVariable("access_audit.query_text",
							 "What of a statement's text a record keeps: full, or normalized (constants replaced by $n).",
							 "Full text shows the values a statement looked for; normalized text keeps literals "
							 "others typed (phone numbers searched for) out of reach of the log's readers.",
							 &aa_query_text, AA_QUERY_TEXT_FULL, query_text_options,
							 PGC_SUSET, 0, NULL, assign_int_setting, NULL);
	DefineCustomStringVariable("access_audit.actor",
							   "Application-level user on whose behalf this session reads.",
							   "Trusted only from members of role access_audit_app; otherwise recorded as a claim.",
							   &aa_actor, "", PGC_USERSET, 0,
							   check_actor, assign_actor, NULL);
	DefineCustomBoolVariable("access_audit.maintenance",
							 "Allows superusers to run retention and repairs on the audit log.",
							 "Switching it on and everything done under it is recorded.",
							 &aa_maintenance, false, PGC_SUSET, 0,
							 NULL, NULL, NULL);
	DefineCustomStringVariable("access_audit.business_timezone",
							   "Time zone of business hours and of the daily roll-up's days.",
							   NULL,
							   &aa_business_timezone, "UTC", PGC_SIGHUP, 0,
							   check_business_timezone, assign_business_timezone, NULL);
	DefineCustomStringVariable("access_audit.primary_conninfo",
							   "Connection string a hot standby uses to ship its audit records to the primary.",
							   "Empty means the standby's own primary_conninfo.  The database name is always the "
							   "standby database's own; the role must be a member of access_audit_ingest.",
							   &aa_primary_conninfo, "", PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_string_setting, NULL);
	DefineCustomStringVariable("access_audit.server_name",
							   "Name of this server in the origin of the records it ships from a hot standby.",
							   "Empty means cluster_name, or the host name if that is empty too.",
							   &aa_server_name, "", PGC_SIGHUP, 0,
							   NULL, assign_string_setting, NULL);
	DefineCustomStringVariable("access_audit.reason",
							   "Justification this session gives for its reads of tagged data.",
							   "Stored in every following audit record; reads over a require_reason quota need it.",
							   &aa_reason, "", PGC_USERSET, 0,
							   check_reason, NULL, NULL);
	DefineCustomStringVariable("access_audit.siem_log",
							   "Sends alerts (alerts) or alerts and audit records (all) to the server log as JSON lines.",
							   "Each line is ACCESS_AUDIT_ALERT or ACCESS_AUDIT_RECORD, a space and one JSON object.",
							   &aa_siem_log, "off", PGC_SIGHUP, 0,
							   check_siem_log, assign_siem_log, NULL);
	refuse_bad_start_fraction("access_audit.alert_notify_limit");
	DefineCustomRealVariable("access_audit.alert_notify_limit",
							 "Fraction of the server's notification queue above which new alerts are not announced with NOTIFY.",
							 "A listener idle in an open transaction keeps the queue from emptying; a full queue "
							 "would fail the transaction that stores the alert.  The alert is kept either way.",
							 &aa_alert_notify_limit, 0.5, 0.0, 1.0, PGC_SIGHUP, 0,
							 NULL, assign_real_setting, NULL);
	MarkGUCPrefixReserved("access_audit");
	in_pg_init = false;

	/*
	 * Refuse to start on a bad value rather than run on the default.  No
	 * check across settings here: a reload can never refuse such a
	 * combination (each check sees one value), so refusing it at start would
	 * turn a reload that passed into a server that does not start.
	 * aa_business_hours() falls back at use time instead.
	 */
	if (aa_siem_parse_level(aa_siem_log) < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid value for parameter \"%s\": \"%s\"",
					   "access_audit.siem_log", aa_siem_log ? aa_siem_log : ""),
				errhint("Use \"off\", \"alerts\" or \"all\"."));
}
