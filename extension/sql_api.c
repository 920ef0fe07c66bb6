/*-------------------------------------------------------------------------
 *
 * sql_api.c
 *		SQL-callable entry points: argument checks, then the modules.
 *
 * Nothing here keeps state.  Each function checks its arguments and that
 * the extension was preloaded, then calls queue.c, tags.c or chain.c.
 *
 * IDENTIFICATION
 *	  extension/sql_api.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "capture.h"
#include "chain.h"
#include "detect.h"
#include "dict.h"
#include "guard.h"
#include "queue.h"
#include "records.h"
#include "remote.h"
#include "siem.h"
#include "tags.h"

PG_FUNCTION_INFO_V1(access_audit_flush);
PG_FUNCTION_INFO_V1(access_audit_stats);
PG_FUNCTION_INFO_V1(access_audit_verify);
PG_FUNCTION_INFO_V1(access_audit_tags_changed);
PG_FUNCTION_INFO_V1(access_audit_valid_tag);
PG_FUNCTION_INFO_V1(access_audit_dict_string_id);
PG_FUNCTION_INFO_V1(access_audit_dict_set_id);
PG_FUNCTION_INFO_V1(access_audit_dict_session_id);
PG_FUNCTION_INFO_V1(access_audit_dict_shape_id);
PG_FUNCTION_INFO_V1(access_audit_ingest);
PG_FUNCTION_INFO_V1(access_audit_collect_source);
PG_FUNCTION_INFO_V1(access_audit_detect_actors);
PG_FUNCTION_INFO_V1(access_audit_reads_in_progress);


/*
 * A dictionary id as the calling SQL function returns it: bigint since 1.1,
 * integer in a 1.0 installation not yet updated.
 */
static Datum
dict_id_result(FunctionCallInfo fcinfo, int64 id)
{
	if (get_fn_expr_rettype(fcinfo->flinfo) == INT8OID)
		PG_RETURN_INT64(id);
	if (id > PG_INT32_MAX)
		ereport(ERROR,
				errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				errmsg("access_audit dictionary id %lld does not fit this version's integer ids",
					   (long long) id),
				errhint("Run ALTER EXTENSION access_audit UPDATE."));
	PG_RETURN_INT32((int32) id);
}

PG_FUNCTION_INFO_V1(access_audit_siem_emit);

/*
 * Raise an error unless the library was preloaded and its queue exists.
 */
static void
require_queue(void)
{
	if (!aa_queue_ready())
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit must be loaded via \"shared_preload_libraries\""),
				errhint("Add access_audit to shared_preload_libraries in postgresql.conf and restart the server."));
}

/*
 * flush(timeout interval DEFAULT '10 s') RETURNS boolean: wait until every
 * record this database queued before the call is committed in the log.
 */
Datum
access_audit_flush(PG_FUNCTION_ARGS)
{
	Interval   *timeout;
	int64		ms;

	require_queue();
	if (PG_ARGISNULL(0))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("timeout must not be null"),
				errhint("Pass an interval such as '10 s'."));
	timeout = PG_GETARG_INTERVAL_P(0);
	ms = (timeout->time + ((int64) timeout->day * USECS_PER_DAY) +
		  ((int64) timeout->month * 30 * USECS_PER_DAY)) / 1000;
	if (ms < 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("timeout must not be negative"),
				errhint("Pass an interval such as '10 s'."));
	PG_RETURN_BOOL(aa_queue_wait_committed(MyDatabaseId, aa_queue_head(), (long) ms));
}

/*
 * stats(): one row per database known to the queue.
 */
Datum
access_audit_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditQueueDbStats st[AA_QUEUE_STATS_MAX];
	int			n;
	int			i;
	uint64		cap;
	uint64		used;

	require_queue();
	InitMaterializedSRF(fcinfo, 0);
	n = aa_queue_stats(st, AA_QUEUE_STATS_MAX);
	cap = aa_queue_capacity();
	used = aa_queue_head() - aa_queue_tail();
	for (i = 0; i < n; i++)
	{
		Datum		values[12];
		bool		nulls[12];

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(st[i].dboid);
		values[1] = Int64GetDatum((int64) st[i].queued);
		values[2] = Int64GetDatum((int64) st[i].written);
		values[3] = Int64GetDatum((int64) st[i].pending_bytes);
		values[4] = Int64GetDatum((int64) used);
		values[5] = Int64GetDatum((int64) cap);
		if (st[i].oldest_pending != 0)
			values[6] = TimestampTzGetDatum(st[i].oldest_pending);
		else
			nulls[6] = true;
		values[7] = Int64GetDatum((int64) st[i].waits);
		values[8] = Int64GetDatum((int64) st[i].gaps);
		if (st[i].writer_pid != 0)
			values[9] = Int32GetDatum(st[i].writer_pid);
		else
			nulls[9] = true;
		if (st[i].last_flush != 0)
			values[10] = TimestampTzGetDatum(st[i].last_flush);
		else
			nulls[10] = true;
		values[11] = Int64GetDatum((int64) aa_queue_ring_id());
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * verify(from_seq, to_seq, source): walk the hash chain of this database's
 * log, or (source given) of the records collected from a source.
 */
Datum
access_audit_verify(PG_FUNCTION_ARGS)
{
	int64		from_seq = PG_ARGISNULL(0) ? -1 : PG_GETARG_INT64(0);
	int64		to_seq = PG_ARGISNULL(1) ? -1 : PG_GETARG_INT64(1);
	char	   *source = NULL;
	AuditVerifyResult res;
	TupleDesc	tupdesc;
	Datum		values[4];
	bool		nulls[4] = {false, false, false, false};

	if (PG_NARGS() > 2 && !PG_ARGISNULL(2))
		source = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (!PG_ARGISNULL(0) && from_seq < 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("from_seq must be at least 1"),
				errhint("Pass a sequence number of 1 or more, or NULL to start at the oldest record."));
	if (!PG_ARGISNULL(1) && to_seq < 1)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("to_seq must be at least 1"),
				errhint("Pass NULL to verify up to the newest record."));
	if (from_seq >= 1 && to_seq >= 1 && to_seq < from_seq)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("to_seq %lld is before from_seq %lld",
					   (long long) to_seq, (long long) from_seq),
				errhint("Pass a range whose end is not before its start."));
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");

	aa_chain_verify(source, from_seq, to_seq, &res);
	if (source != NULL && res.ok && res.checked == 0 && from_seq < 0)
		ereport(ERROR,
				errcode(ERRCODE_UNDEFINED_OBJECT),
				errmsg("no records have been collected from source \"%s\"", source),
				errhint("Pass the name of a source's subscription, as access_audit.sources lists them."));
	values[0] = BoolGetDatum(res.ok);
	values[1] = Int64GetDatum(res.checked);
	if (res.first_bad_seq >= 0)
		values[2] = Int64GetDatum(res.first_bad_seq);
	else
		nulls[2] = true;
	values[3] = CStringGetTextDatum(res.detail ? res.detail : "");
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * _tags_changed(): make every backend rebuild its tag cache after this
 * transaction commits (used by the install script).
 */
Datum
access_audit_tags_changed(PG_FUNCTION_ARGS)
{
	aa_tags_changed();
	PG_RETURN_VOID();
}

/*
 * valid_tag(text): is this a well-formed tag?
 */
Datum
access_audit_valid_tag(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(aa_tags_valid_label(text_to_cstring(PG_GETARG_TEXT_PP(0))));
}

/*
 * _dict_string_id(text): the dictionary id of a string, added if new.  Used
 * by the log view's maintenance-mode triggers; NULL for NULL.
 */
Datum
access_audit_dict_string_id(PG_FUNCTION_ARGS)
{
	int64		id;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	aa_guard_check_direct_write("INSERT", "access_audit.strings");
	aa_dict_begin();
	id = aa_dict_string_id(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	aa_dict_end();
	return dict_id_result(fcinfo, id);
}

/*
 * The strings of a text[] argument; NULL elements are refused.
 */
static const char **
array_strings(ArrayType *arr, int *n)
{
	Datum	   *elems;
	bool	   *nulls;
	int			i;
	const char **strs;

	deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, n);
	strs = palloc(sizeof(char *) * Max(*n, 1));
	for (i = 0; i < *n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					errmsg("lists in the audit log cannot contain nulls"),
					errhint("Remove the null elements."));
		strs[i] = TextDatumGetCString(elems[i]);
	}
	return strs;
}

/*
 * _dict_set_id(text[]): the dictionary id of a list of strings, added if
 * new; NULL for NULL.  NULL elements are refused.
 */
Datum
access_audit_dict_set_id(PG_FUNCTION_ARGS)
{
	int			n;
	const char **strs;
	int64		id;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	aa_guard_check_direct_write("INSERT", "access_audit.string_sets");
	strs = array_strings(PG_GETARG_ARRAYTYPE_P(0), &n);
	aa_dict_begin();
	id = aa_dict_set_id(strs, n);
	aa_dict_end();
	return dict_id_result(fcinfo, id);
}

/* a text argument as a C string, NULL for NULL */
static const char *
arg_text(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL :
		text_to_cstring(PG_GETARG_TEXT_PP(argno));
}

/* a name argument as a C string, NULL for NULL */
static const char *
arg_name(FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL : NameStr(*PG_GETARG_NAME(argno));
}

/* a text[] argument as a list (*n = -1 for NULL) */
static const char **
arg_list(FunctionCallInfo fcinfo, int argno, int *n)
{
	if (PG_ARGISNULL(argno))
	{
		*n = -1;
		return NULL;
	}
	return array_strings(PG_GETARG_ARRAYTYPE_P(argno), n);
}

/*
 * _dict_session_id(database, login_role, effective_role, actor,
 * claimed_actor, application_name, client_addr, backend_pid): the id of a
 * session, added if new.  Used by the log view's maintenance-mode triggers.
 */
Datum
access_audit_dict_session_id(PG_FUNCTION_ARGS)
{
	ChainRow	c;
	int64		id;

	aa_guard_check_direct_write("INSERT", "access_audit.sessions");
	memset(&c, 0, sizeof(c));
	c.database = arg_name(fcinfo, 0);
	c.login_role = arg_name(fcinfo, 1);
	c.effective_role = arg_name(fcinfo, 2);
	c.actor = arg_text(fcinfo, 3);
	c.claimed_actor = arg_text(fcinfo, 4);
	c.application_name = arg_text(fcinfo, 5);
	if (!PG_ARGISNULL(6))
		c.client_addr = DatumGetCString(DirectFunctionCall1(inet_out,
															PG_GETARG_DATUM(6)));
	c.has_backend_pid = !PG_ARGISNULL(7);
	if (c.has_backend_pid)
		c.backend_pid = PG_GETARG_INT32(7);
	aa_dict_begin();
	id = aa_dict_session_id(&c);
	aa_dict_end();
	return dict_id_result(fcinfo, id);
}

/*
 * _dict_shape_id(query_id, query, command, nesting_level, relations,
 * columns, predicate_columns, tags): the id of a statement shape, added if
 * new.  Used by the log view's maintenance-mode triggers.
 */
Datum
access_audit_dict_shape_id(PG_FUNCTION_ARGS)
{
	ChainRow	c;
	int64		id;

	aa_guard_check_direct_write("INSERT", "access_audit.shapes");
	memset(&c, 0, sizeof(c));
	c.has_query_id = !PG_ARGISNULL(0);
	if (c.has_query_id)
		c.query_id = PG_GETARG_INT64(0);
	c.query = arg_text(fcinfo, 1);
	c.command = arg_text(fcinfo, 2);
	c.has_nesting_level = !PG_ARGISNULL(3);
	if (c.has_nesting_level)
		c.nesting_level = PG_GETARG_INT32(3);
	c.relations = arg_list(fcinfo, 4, &c.n_relations);
	c.columns = arg_list(fcinfo, 5, &c.n_columns);
	c.predicate_columns = arg_list(fcinfo, 6, &c.n_predicate);
	c.tags = arg_list(fcinfo, 7, &c.n_tags);
	aa_dict_begin();
	id = aa_dict_shape_id(&c);
	aa_dict_end();
	return dict_id_result(fcinfo, id);
}

/*
 * ingest(origin text, ring_id bigint, records bytea) RETURNS bigint: take
 * records shipped by a hot standby (see remote.c).  Callable by members of
 * access_audit_ingest (EXECUTE is granted to that role only).
 */
Datum
access_audit_ingest(PG_FUNCTION_ARGS)
{
	char	   *origin;
	int64		ring_id;
	bytea	   *data;

	require_queue();
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("origin, ring_id and records must not be null"),
				errhint("Leave calls of ingest() to a standby's access_audit shipper."));
	origin = text_to_cstring(PG_GETARG_TEXT_PP(0));
	ring_id = PG_GETARG_INT64(1);
	data = PG_GETARG_BYTEA_PP(2);
	if (origin[0] == '\0' || strlen(origin) >= NAMEDATALEN * 2)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("origin must be between 1 and %d bytes long", NAMEDATALEN * 2 - 1),
				errhint("Set a shorter access_audit.server_name on the standby."));
	if (ring_id == 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("ring_id must not be 0"),
				errhint("Leave calls of ingest() to a standby's access_audit shipper."));
	PG_RETURN_INT64(aa_remote_ingest(origin, (uint64) ring_id,
									 VARDATA_ANY(data), VARSIZE_ANY_EXHDR(data)));
}

/*
 * _collect_source() RETURNS text: the subscription whose rows this logical
 * replication worker applies (see remote.c).
 */
Datum
access_audit_collect_source(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(aa_remote_collect_source()));
}

/*
 * _detect_actors(source regclass, d1 date, nd int, nb int): the per-actor
 * terms of rank_exporters (its CTE z) for a window of nd days ending on d1
 * and a baseline of nb days before it; see detect.c.
 */
Datum
access_audit_detect_actors(PG_FUNCTION_ARGS)
{
	int32		nd;
	int32		nb;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				errmsg("arguments must not be null"),
				errhint("Call access_audit.rank_exporters() instead."));
	nd = PG_GETARG_INT32(2);
	nb = PG_GETARG_INT32(3);
	if (nd < 1 || nb < nd)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("invalid window of %d days with a baseline of %d days", nd, nb),
				errhint("Pass a window of at least one day and a baseline at least as long as the window."));
	aa_detect_actor_stats(fcinfo, PG_GETARG_OID(0), PG_GETARG_DATEADT(1),
						  nd, nb);
	return (Datum) 0;
}

/* a text[] of n strings, or NULL (SQL NULL) when there are none */
static Datum
text_array_or_null(const char **strs, int n, bool *isnull)
{
	Datum	   *elems;
	int			i;

	*isnull = (n <= 0);
	if (n <= 0)
		return (Datum) 0;
	elems = palloc(sizeof(Datum) * n);
	for (i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(strs[i] ? strs[i] : "");
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false,
										   TYPALIGN_INT));
}

/* a text Datum of s, or SQL NULL */
static Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = (s == NULL);
	return s ? CStringGetTextDatum(s) : (Datum) 0;
}

/*
 * _reads_in_progress(): one row per audited statement that is sending rows
 * now or holds an open cursor, from the backends' intent slots (queue.c),
 * with the rows sent and read so far.
 */
Datum
access_audit_reads_in_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditQueueItem *items;
	int			n;
	int			i;

	require_queue();
	InitMaterializedSRF(fcinfo, 0);
	n = aa_queue_intents_read(&items);
	for (i = 0; i < n; i++)
	{
		AuditRecord *r = &items[i].rec;
		Datum		values[16];
		bool		nulls[16];
		char	   *dbname = get_database_name((Oid) items[i].pos);

		memset(nulls, 0, sizeof(nulls));
		values[0] = Int32GetDatum(r->backend_pid);
		values[1] = text_or_null(dbname, &nulls[1]);
		values[2] = TimestampTzGetDatum(r->ts);
		values[3] = text_or_null(r->login_role, &nulls[3]);
		values[4] = text_or_null(r->effective_role, &nulls[4]);
		values[5] = text_or_null(r->actor, &nulls[5]);
		values[6] = text_or_null(r->claimed_actor, &nulls[6]);
		values[7] = text_or_null(r->client_addr, &nulls[7]);
		values[8] = text_or_null(r->application_name, &nulls[8]);
		values[9] = text_or_null(r->command, &nulls[9]);
		values[10] = text_or_null(r->query, &nulls[10]);
		values[11] = text_array_or_null(r->relations, r->n_relations, &nulls[11]);
		values[12] = text_array_or_null(r->columns, r->n_columns, &nulls[12]);
		values[13] = text_array_or_null(r->tags, r->n_tags, &nulls[13]);
		values[14] = Int64GetDatum(r->rows);
		values[15] = Int64GetDatum(r->tagged_rows);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * _siem_emit(kind text, line text): write one alert line to the server log
 * when access_audit.siem_log asks for alerts; kind must be 'alert'.  Only
 * the extension's trigger on access_audit.alerts calls it (EXECUTE is
 * revoked from PUBLIC), so users cannot write lines through it.
 */
Datum
access_audit_siem_emit(PG_FUNCTION_ARGS)
{
	char	   *kind;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		PG_RETURN_VOID();
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (strcmp(kind, "alert") != 0)
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("unrecognized SIEM line kind \"%s\"", kind),
				errhint("Pass \"alert\"."));
	aa_siem_emit_alert(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	PG_RETURN_VOID();
}

/*
 * _stats_since(): since when each database's queue counters count (see
 * "Durable counters" in queue.c), and the last reset_stats().
 */
PG_FUNCTION_INFO_V1(access_audit_stats_since);
Datum
access_audit_stats_since(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditQueueDbStats st[AA_QUEUE_STATS_MAX];
	int			n;
	int			i;

	require_queue();
	InitMaterializedSRF(fcinfo, 0);
	n = aa_queue_stats(st, AA_QUEUE_STATS_MAX);
	for (i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4];
		TimestampTz since;
		TimestampTz reset_at;
		char		reset_by[NAMEDATALEN];

		memset(nulls, 0, sizeof(nulls));
		aa_queue_stats_since(st[i].dboid, &since, &reset_at, reset_by);
		values[0] = ObjectIdGetDatum(st[i].dboid);
		values[1] = TimestampTzGetDatum(since);
		if (reset_at != 0)
		{
			values[2] = TimestampTzGetDatum(reset_at);
			values[3] = CStringGetTextDatum(reset_by);
		}
		else
			nulls[2] = nulls[3] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * reset_stats(): the queue counters of every database start again at zero;
 * when and by whom is kept.  Superusers only, whatever the grants.
 */
PG_FUNCTION_INFO_V1(access_audit_reset_stats);
Datum
access_audit_reset_stats(PG_FUNCTION_ARGS)
{
	TimestampTz at;

	require_queue();
	if (!superuser())
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("only superusers may reset the access_audit queue counters"),
				errhint("Ask a superuser; the counters are shared by every database of the server."));
	at = aa_queue_stats_reset(GetUserId(), GetUserNameFromId(GetUserId(), false));

	/* the reset is itself an audit record of this database's log */
	aa_capture_event("RESET STATS", NULL, NULL, NULL,
					 psprintf("{\"what\": \"access_audit queue counters of every database\", \"at\": \"%s\"}",
							  timestamptz_to_str(at)));
	PG_RETURN_TIMESTAMPTZ(at);
}

/*
 * _tags_elsewhere(): tags registered in databases without the extension.
 */
PG_FUNCTION_INFO_V1(access_audit_tags_elsewhere);
Datum
access_audit_tags_elsewhere(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	AuditQueueTagEntry *tags;
	int			n;
	int			i;

	require_queue();
	InitMaterializedSRF(fcinfo, 0);
	tags = palloc(AA_QUEUE_TAGS_MAX * sizeof(AuditQueueTagEntry));
	n = aa_queue_tags_elsewhere(tags, AA_QUEUE_TAGS_MAX);
	for (i = 0; i < n; i++)
	{
		Datum		values[6];
		bool		nulls[6];

		memset(nulls, 0, sizeof(nulls));
		values[0] = ObjectIdGetDatum(tags[i].dboid);
		values[1] = ObjectIdGetDatum(tags[i].reloid);
		values[2] = CStringGetTextDatum(tags[i].object);
		values[3] = CStringGetTextDatum(tags[i].tag);
		values[4] = ObjectIdGetDatum(tags[i].set_by);
		values[5] = TimestampTzGetDatum(tags[i].set_at);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
