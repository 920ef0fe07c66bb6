/*-------------------------------------------------------------------------
 *
 * records.c
 *		Audit records that are not reads, and what every record says about
 *		its session and statement.
 *
 * This file owns the records of events: tag changes and refused attempts
 * (tags.c), settings changes (capture.c's utility hook), publications that
 * stream tagged columns (capture.c, tags.c), refusals and maintenance
 * (guard.c, restore.c), quota crossings (quota.c) and what a standby ships
 * (remote.c), all through aa_capture_event() and aa_capture_event_lists().
 * It also owns what every record, read or event, says about who made it
 * (roles, actor, client address, application) and which statement (its
 * text, normalized and cut to access_audit.max_query_length), and whether
 * this process captures at all.  Records go straight to the queue.
 *
 * Dependencies run one way: the hooks (capture, guard, tags, quota) call
 * this file, it calls the queue; it never calls back (test/call-cycles.sh).
 *
 * Ownership: everything here is backend-local.  aa_nesting_level is kept
 * by capture.c's executor and utility hooks; aa_capture_disabled is set
 * once by processes that must not audit themselves (the writer).  The
 * identity cache lives in TopMemoryContext for the life of the backend.
 *
 * IDENTIFICATION
 *	  extension/records.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/pg_publication.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "common/ip.h"
#include "executor/spi.h"
#include "libpq/libpq-be.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "compat.h"
#include "queue.h"
#include "records.h"

int			aa_nesting_level = 0;
bool		aa_capture_disabled = false;

/* identity cache */
static char *login_role_name = NULL;
static Oid	effective_role_cached = InvalidOid;
static char *effective_role_name = NULL;
static char *client_addr_text = NULL;
static bool client_addr_done = false;

/*
 * Turn capture off in this process (the writer, so it never audits itself).
 */
void
aa_capture_disable(void)
{
	aa_capture_disabled = true;
}

/*
 * Should this process capture at all?
 *
 * A parallel worker runs a copy of part of its leader's plan; the leader
 * records that plan (with the workers' rows, from instrumentation), so the
 * worker's own plan (nesting level 0) is not recorded again.  Statements
 * the worker runs inside it (the body of a PARALLEL SAFE function called
 * from the copied plan) exist only there: the worker records those, in the
 * name of its leader (aa_record_fill_identity()).
 */
bool
aa_capture_wanted(void)
{
	return aa_enabled && !aa_capture_disabled &&
		(!IsParallelWorker() || aa_nesting_level > 0) &&
		aa_queue_ready() && MyDatabaseId != InvalidOid;
}

/* ---------------------------------------------------------------------
 * Identity
 * ---------------------------------------------------------------------
 */

/*
 * The client address of this parallel worker's leader, from the leader's
 * backend status entry (a worker has no connection of its own); NULL for a
 * local connection or if the leader is not found.  Allocated in
 * TopMemoryContext.
 */
static char *
leader_client_addr(void)
{
	int			pid;
	int			n;
	int			i;

	if (MyProc == NULL || MyProc->lockGroupLeader == NULL)
		return NULL;
	pid = MyProc->lockGroupLeader->pid;
	n = pgstat_fetch_stat_numbackends();
	for (i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = aa_local_beentry_compat(i);
		PgBackendStatus *be;
		char		host[NI_MAXHOST];

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid != pid)
			continue;
		if (be->st_clientaddr.addr.ss_family != AF_INET &&
			be->st_clientaddr.addr.ss_family != AF_INET6)
			return NULL;
		host[0] = '\0';
		if (pg_getnameinfo_all(&be->st_clientaddr.addr,
							   be->st_clientaddr.salen,
							   host, sizeof(host), NULL, 0,
							   NI_NUMERICHOST | NI_NUMERICSERV) != 0)
			return NULL;
		return MemoryContextStrdup(TopMemoryContext, host);
	}
	return NULL;
}

/*
 * Is access_audit.actor the session's actor?  Only when a member of
 * access_audit_app named it itself (not a database or role default, see
 * settings.c's check_actor); otherwise the actor is the login role and the
 * value is only claimed.  Records and quotas both decide by this, so that
 * a quota counts the actor the record names.
 */
bool
aa_record_actor_trusted(void)
{
	Oid			app;

	if (aa_actor == NULL || aa_actor[0] == '\0' || !aa_actor_own)
		return false;
	app = get_role_oid(AA_ROLE_APP, true);
	return OidIsValid(app) && has_privs_of_role(GetSessionUserId(), app);
}

/*
 * Fill who/where fields of rec; strings are copied into cxt.  Needs a
 * transaction (role names come from the syscache, cached per backend).
 */
void
aa_record_fill_identity(AuditRecord *rec, MemoryContext cxt)
{
	Oid			uid = GetUserId();
	bool		trusted = false;

	if (login_role_name == NULL)
		login_role_name = MemoryContextStrdup(TopMemoryContext,
											  GetUserNameFromId(GetAuthenticatedUserId(), false));
	if (uid != effective_role_cached || effective_role_name == NULL)
	{
		char	   *name = GetUserNameFromId(uid, true);

		if (effective_role_name)
			pfree(effective_role_name);
		effective_role_name = MemoryContextStrdup(TopMemoryContext,
												  name ? name : "?");
		effective_role_cached = uid;
	}
	if (!client_addr_done && IsParallelWorker())
	{
		client_addr_text = leader_client_addr();
		client_addr_done = true;
	}
	if (!client_addr_done && MyProcPort != NULL)
	{
		char		host[NI_MAXHOST];

		if (MyProcPort->raddr.addr.ss_family == AF_INET ||
			MyProcPort->raddr.addr.ss_family == AF_INET6)
		{
			host[0] = '\0';
			if (pg_getnameinfo_all(&MyProcPort->raddr.addr,
								   MyProcPort->raddr.salen,
								   host, sizeof(host), NULL, 0,
								   NI_NUMERICHOST | NI_NUMERICSERV) == 0)
				client_addr_text = MemoryContextStrdup(TopMemoryContext, host);
		}
		client_addr_done = true;
	}

	rec->login_role = login_role_name;
	rec->effective_role = effective_role_name;
	rec->client_addr = client_addr_text;
	rec->application_name = (application_name && application_name[0]) ?
		MemoryContextStrdup(cxt, application_name) : NULL;
	rec->backend_pid = MyProcPid;

	/*
	 * A parallel worker works for its leader's session: the roles, the actor
	 * and the application name are the leader's already (the parallel context
	 * carries them); the process is the leader's too.
	 */
	if (IsParallelWorker() && MyProc != NULL && MyProc->lockGroupLeader != NULL)
		rec->backend_pid = MyProc->lockGroupLeader->pid;

	/* application-level actor (see aa_record_actor_trusted) */
	if (aa_actor && aa_actor[0])
	{
		trusted = aa_record_actor_trusted();
		if (trusted)
		{
			rec->actor = MemoryContextStrdup(cxt, aa_actor);
			rec->claimed_actor = NULL;
		}
		else
		{
			rec->actor = login_role_name;
			rec->claimed_actor = MemoryContextStrdup(cxt, aa_actor);
		}
	}
	else
	{
		rec->actor = login_role_name;
		rec->claimed_actor = NULL;
	}
}

/*
 * A text of len bytes cut to at most max bytes: its head and its tail, on
 * character boundaries, with a comment in between saying how many bytes
 * were cut.  A statement behind a long leading comment (or with a long
 * middle) keeps what it does: what it reads is at its start, where it
 * reads from and its conditions are at its end.  Below 64 bytes there is
 * no room for both and only the head is kept.
 */
static char *
text_head_tail(const char *source, int len, int max, MemoryContext cxt)
{
	char		marker[64];
	int			mlen;
	int			budget;
	int			head;
	int			tail;
	int			cut;
	char	   *copy;

	/* the marker is never longer than with the whole length in it */
	mlen = snprintf(marker, sizeof(marker),
					" /* access_audit: %d bytes cut */ ", len);
	budget = max - mlen;
	if (budget < 32)
	{
		head = pg_mbcliplen(source, len, max);
		copy = MemoryContextAlloc(cxt, head + 1);
		memcpy(copy, source, head);
		copy[head] = '\0';
		return copy;
	}
	head = pg_mbcliplen(source, len, budget / 2);
	/* the tail starts at the first character boundary that leaves room */
	tail = head;
	while (tail < len && len - tail > budget - head)
		tail += pg_mblen(source + tail);
	cut = tail - head;
	mlen = snprintf(marker, sizeof(marker),
					" /* access_audit: %d bytes cut */ ", cut);
	copy = MemoryContextAlloc(cxt, head + mlen + (len - tail) + 1);
	memcpy(copy, source, head);
	memcpy(copy + head, marker, mlen);
	memcpy(copy + head + mlen, source + tail, len - tail);
	copy[head + mlen + len - tail] = '\0';
	return copy;
}

/* can c continue an identifier (so a digit after it is no number)? */
static inline bool
ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '$' ||
		(unsigned char) c >= 0x80;
}

/*
 * The text of len bytes with its constants replaced by $n (numbered after
 * the highest parameter the text uses), for access_audit.query_text =
 * normalized: string literals ('...', E'...', B'...', X'...', U&'...',
 * dollar-quoted) and numbers.  Quoted identifiers and comments are kept.
 * A lexer of its own (no parse tree is at hand where records are made);
 * malformed text is copied as it is from where it stops making sense.
 * Returns a palloc'd string, its length in *outlen.
 */
static char *
normalize_constants(const char *src, int len, int *outlen)
{
	StringInfoData out;
	int			next = 1;
	int			i;

	/* number after the highest $n already in the text */
	for (i = 0; i < len; i++)
	{
		if (src[i] == '$' && i + 1 < len && src[i + 1] >= '0' &&
			src[i + 1] <= '9' && (i == 0 || !ident_char(src[i - 1])))
		{
			int			n = 0;
			int			j = i + 1;

			while (j < len && src[j] >= '0' && src[j] <= '9' && n < 100000)
				n = n * 10 + (src[j++] - '0');
			if (n >= next)
				next = n + 1;
		}
	}

	initStringInfo(&out);
	i = 0;
	while (i < len)
	{
		char		c = src[i];
		bool		prev_ident = i > 0 && ident_char(src[i - 1]);

		/* comments: kept */
		if (c == '-' && i + 1 < len && src[i + 1] == '-')
		{
			int			j = i;

			while (j < len && src[j] != '\n')
				j++;
			appendBinaryStringInfo(&out, src + i, j - i);
			i = j;
			continue;
		}
		if (c == '/' && i + 1 < len && src[i + 1] == '*')
		{
			int			depth = 0;
			int			j = i;

			while (j < len)
			{
				if (src[j] == '/' && j + 1 < len && src[j + 1] == '*')
				{
					depth++;
					j += 2;
				}
				else if (src[j] == '*' && j + 1 < len && src[j + 1] == '/')
				{
					depth--;
					j += 2;
					if (depth == 0)
						break;
				}
				else
					j++;
			}
			appendBinaryStringInfo(&out, src + i, j - i);
			i = j;
			continue;
		}
		/* quoted identifiers: kept */
		if (c == '"')
		{
			int			j = i + 1;

			while (j < len && !(src[j] == '"' && !(j + 1 < len && src[j + 1] == '"')))
				j += (src[j] == '"') ? 2 : 1;
			j = Min(j + 1, len);
			appendBinaryStringInfo(&out, src + i, j - i);
			i = j;
			continue;
		}
		/* string literals, with an optional E, B, X, N or U& prefix */
		if (!prev_ident)
		{
			int			q = i;
			bool		backslash = false;

			if ((c == 'E' || c == 'e') && i + 1 < len && src[i + 1] == '\'')
			{
				backslash = true;
				q = i + 1;
			}
			else if ((c == 'B' || c == 'b' || c == 'X' || c == 'x' ||
					  c == 'N' || c == 'n') && i + 1 < len && src[i + 1] == '\'')
				q = i + 1;
			else if ((c == 'U' || c == 'u') && i + 2 < len && src[i + 1] == '&' &&
					 src[i + 2] == '\'')
				q = i + 2;
			if (src[q] == '\'')
			{
				int			j = q + 1;

				while (j < len)
				{
					if (backslash && src[j] == '\\')
						j += 2;
					else if (src[j] == '\'' && j + 1 < len && src[j + 1] == '\'')
						j += 2;
					else if (src[j] == '\'')
						break;
					else
						j++;
				}
				appendStringInfo(&out, "$%d", next++);
				i = Min(j + 1, len);
				continue;
			}
		}
		/* dollar quotes: $$...$$ or $tag$...$tag$ */
		if (c == '$' && !prev_ident)
		{
			int			j = i + 1;

			while (j < len && (ident_char(src[j]) && src[j] != '$') &&
				   !(j == i + 1 && src[j] >= '0' && src[j] <= '9'))
				j++;
			if (j < len && src[j] == '$')
			{
				int			taglen = j - i + 1;
				int			k = j + 1;

				while (k + taglen <= len && strncmp(src + k, src + i, taglen) != 0)
					k++;
				if (k + taglen <= len)
				{
					appendStringInfo(&out, "$%d", next++);
					i = k + taglen;
					continue;
				}
			}
		}
		/* numbers */
		if (!prev_ident && ((c >= '0' && c <= '9') ||
							(c == '.' && i + 1 < len && src[i + 1] >= '0' &&
							 src[i + 1] <= '9')))
		{
			int			j = i;

			while (j < len && (ident_char(src[j]) || src[j] == '.' ||
							   ((src[j] == '+' || src[j] == '-') &&
								(src[j - 1] == 'e' || src[j - 1] == 'E'))))
				j++;
			appendStringInfo(&out, "$%d", next++);
			i = j;
			continue;
		}
		appendStringInfoChar(&out, c);
		i++;
	}
	*outlen = out.len;
	return out.data;
}

/*
 * Statement text, cut to one statement, normalized if
 * access_audit.query_text says so, and cut to max_query_length bytes (its
 * head and tail, see text_head_tail()).
 */
char	   *
aa_record_statement_text(const char *source, int location, int len,
						 MemoryContext cxt)
{
	int			srclen;
	char	   *copy;

	if (source == NULL)
		return NULL;
	srclen = strlen(source);
	if (location < 0 || location > srclen)
	{
		location = 0;
		len = srclen;
	}
	else if (len <= 0 || location + len > srclen)
		len = srclen - location;
	source += location;
	/* trim leading white space the parser leaves in multi-statement strings */
	while (len > 0 && (*source == ' ' || *source == '\n' || *source == '\t' ||
					   *source == '\r'))
	{
		source++;
		len--;
	}
	/* and the trailing semicolon of the last statement in the string */
	while (len > 0 && (source[len - 1] == ';' || source[len - 1] == ' ' ||
					   source[len - 1] == '\n' || source[len - 1] == '\t' ||
					   source[len - 1] == '\r'))
		len--;
	if (aa_query_text == AA_QUERY_TEXT_NORMALIZED && len > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		source = normalize_constants(source, len, &len);
		MemoryContextSwitchTo(old);
	}
	if (aa_max_query_length >= 0 && len > aa_max_query_length)
		return text_head_tail(source, len, aa_max_query_length, cxt);
	copy = MemoryContextAlloc(cxt, len + 1);
	memcpy(copy, source, len);
	copy[len] = '\0';
	return copy;
}

/*
 * The column names of a pg_publication_tables row's attnames: every column
 * the publication streams (PostgreSQL lists them all when it has no column
 * list; NULL only for a table without columns).
 */
Datum	   *
aa_publication_names(Datum names, bool isnull, int *n)
{
	Datum	   *elems = NULL;

	*n = 0;
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(names), NAMEOID, NAMEDATALEN,
						  false, TYPALIGN_CHAR, &elems, NULL, n);
	return elems;
}

/* detail of a publication event: {"publication": ..., "why": ...} */
char	   *
aa_publication_detail(const char *pubname, const char *why)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"publication\": ");
	escape_json(&detail, pubname);
	if (why)
	{
		appendStringInfoString(&detail, ", \"why\": ");
		escape_json(&detail, why);
	}
	appendStringInfoChar(&detail, '}');
	return detail.data;
}

/*
 * The publications that stream a relation, with the names of the columns
 * each streams: its column list (of the relation itself or of the ancestor
 * it is published through), else every column.  Covers FOR TABLE (the
 * relation or a partition ancestor), TABLES IN SCHEMA (of either) and FOR
 * ALL TABLES, for relations that can be published at all.
 *
 * Everything is read by OID under the query's snapshot.  pg_publication_tables
 * is not used: it looks each publication up again by name in the catalog,
 * and fails with "publication does not exist" for one dropped after the
 * snapshot was taken (another session's DROP PUBLICATION while a column is
 * tagged).
 */
static const char *const publications_of_relation_sql =
"WITH rels AS ("
"  SELECT a.relid FROM pg_catalog.pg_partition_ancestors($1) a"
"  UNION SELECT $1::pg_catalog.oid),"
" nsps AS ("
"  SELECT c.relnamespace FROM pg_catalog.pg_class c"
"   WHERE c.oid OPERATOR(pg_catalog.=) ANY (SELECT relid FROM rels))"
"SELECT p.pubname::pg_catalog.text,"
"       CASE WHEN p.puballtables OR sch.found OR mem.all_columns"
"            THEN (SELECT pg_catalog.array_agg(a.attname ORDER BY a.attnum)"
"                    FROM pg_catalog.pg_attribute a"
"                   WHERE a.attrelid OPERATOR(pg_catalog.=) $1"
"                     AND a.attnum OPERATOR(pg_catalog.>) 0"
"                     AND NOT a.attisdropped"
"                     AND a.attgenerated OPERATOR(pg_catalog.=) '')"
"            ELSE mem.columns END"
"  FROM pg_catalog.pg_publication p"
"  CROSS JOIN LATERAL ("
"       SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS found,"
"              pg_catalog.bool_or(pr.prattrs IS NULL) AS all_columns,"
"              (SELECT pg_catalog.array_agg(DISTINCT a.attname)"
"                 FROM pg_catalog.pg_publication_rel pr2"
"                 JOIN pg_catalog.pg_attribute a"
"                   ON a.attrelid OPERATOR(pg_catalog.=) pr2.prrelid"
"                  AND a.attnum OPERATOR(pg_catalog.=) ANY (pr2.prattrs::pg_catalog.int2[])"
"                WHERE pr2.prpubid OPERATOR(pg_catalog.=) p.oid"
"                  AND pr2.prrelid OPERATOR(pg_catalog.=) ANY (SELECT relid FROM rels)) AS columns"
"         FROM pg_catalog.pg_publication_rel pr"
"        WHERE pr.prpubid OPERATOR(pg_catalog.=) p.oid"
"          AND pr.prrelid OPERATOR(pg_catalog.=) ANY (SELECT relid FROM rels)) mem"
"  CROSS JOIN LATERAL ("
"       SELECT pg_catalog.count(*) OPERATOR(pg_catalog.>) 0 AS found"
"         FROM pg_catalog.pg_publication_namespace pn"
"        WHERE pn.pnpubid OPERATOR(pg_catalog.=) p.oid"
"          AND pn.pnnspid OPERATOR(pg_catalog.=) ANY (SELECT relnamespace FROM nsps)) sch"
" WHERE (p.puballtables OR mem.found OR sch.found)"
"   AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c"
"                WHERE c.oid OPERATOR(pg_catalog.=) $1"
"                  AND c.relkind IN ('r', 'p')"
"                  AND c.relpersistence OPERATOR(pg_catalog.=) 'p'"
"                  AND c.oid OPERATOR(pg_catalog.>=) 16384"
"                  AND c.relnamespace OPERATOR(pg_catalog.<>)"
"                      'pg_catalog'::pg_catalog.regnamespace"
"                  AND c.relnamespace OPERATOR(pg_catalog.<>)"
"                      'information_schema'::pg_catalog.regnamespace)"
" ORDER BY 1";

/*
 * A column tagged while its table is published (by SECURITY LABEL, or as a
 * copy of tagged data: a table made or filled under FOR ALL TABLES or
 * TABLES IN SCHEMA) starts a standing export of tagged data just as CREATE
 * PUBLICATION does: record one PUBLICATION event per publication that
 * streams it, with the tag it takes.  subid 0 tags the whole relation.
 * Called by tags.c as the label is set.
 */
void
aa_capture_tag_published(Oid relid, int32 subid, const char *label)
{
	Oid			argtypes[1] = {OIDOID};
	Datum		args[1];
	char	   *nsp;
	char	   *rel;
	const char *relname;
	char	   *attname = NULL;
	int			ret;
	uint64		i;

	if (!aa_capture_wanted() || label == NULL ||
		(nsp = get_namespace_name(get_rel_namespace(relid))) == NULL ||
		(rel = get_rel_name(relid)) == NULL)
		return;
	if (subid > 0 && (attname = get_attname(relid, (AttrNumber) subid, true)) == NULL)
		return;
	relname = quote_qualified_identifier(nsp, rel);

	SPI_connect();
	args[0] = ObjectIdGetDatum(relid);
	ret = SPI_execute_with_args(publications_of_relation_sql,
								1, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read the publications of \"%s\"", relname);
	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		char	   *pubname = SPI_getvalue(tup, desc, 1);
		bool		isnull;
		Datum		names = SPI_getbinval(tup, desc, 2, &isnull);
		int			nelems;
		Datum	   *elems = aa_publication_names(names, isnull, &nelems);
		const char **cols = NULL;
		int			ncols = 0,
					cap_cols = 0;
		int			k;

		/*
		 * A repeatable-read snapshot still shows a publication dropped since:
		 * it streams nothing any more.
		 */
		if (!OidIsValid(get_publication_oid(pubname, true)))
			continue;
		for (k = 0; k < nelems; k++)
		{
			const char *name = NameStr(*DatumGetName(elems[k]));

			if (attname == NULL || strcmp(name, attname) == 0)
				aa_add_unique(&cols, &ncols, &cap_cols,
							  psprintf("%s.%s", relname, quote_identifier(name)));
		}
		if (ncols == 0)
			continue;
		aa_capture_event_lists("PUBLICATION", &relname, 1, cols, ncols, &label, 1,
							   aa_publication_detail(pubname, "tagged while published"));
	}
	SPI_finish();
}

/*
 * Turning auditing off, or changing how it works, is itself an audit
 * record: SET, RESET and ALTER SYSTEM of an access_audit.* setting (except
 * access_audit.actor, which applications set all the time, and
 * access_audit.maintenance, which the guard records).  Runs after the
 * statement succeeded, so only changes that happened are recorded.
 */
void
aa_record_setting_change(Node *parsetree)
{
	VariableSetStmt *vs = NULL;
	const char *how;
	char	   *value;
	StringInfoData buf;

	if (IsA(parsetree, VariableSetStmt))
	{
		vs = (VariableSetStmt *) parsetree;
		how = vs->is_local ? "SET LOCAL" : "SET";
	}
	else if (IsA(parsetree, AlterSystemStmt))
	{
		vs = ((AlterSystemStmt *) parsetree)->setstmt;
		how = "ALTER SYSTEM";
	}
	else
		return;
	if (vs == NULL || vs->name == NULL ||
		strncmp(vs->name, "access_audit.", 13) != 0 ||
		strcmp(vs->name, "access_audit.actor") == 0 ||
		strcmp(vs->name, "access_audit.maintenance") == 0 ||
		!IsTransactionState() ||
		!OidIsValid(get_extension_oid(AA_NAME, true)))
		return;

	value = ExtractSetVariableArgs(vs);
	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"setting\": ");
	escape_json(&buf, vs->name);
	appendStringInfoString(&buf, ", \"how\": ");
	escape_json(&buf, how);
	appendStringInfoString(&buf, ", \"value\": ");
	aa_json_string_or_null(&buf, (value && vs->kind == VAR_SET_VALUE) ?
						   value : NULL);
	appendStringInfoChar(&buf, '}');
	aa_capture_event("SET", NULL, NULL, NULL, buf.data);
}

/*
 * Record a non-read event (a tag change, a maintenance action) as an
 * audit record of this statement.  Called inside a transaction.
 */
void
aa_capture_event(const char *command, const char *relation,
				 const char *column, const char *tag, const char *detail)
{
	aa_capture_event_lists(command, &relation, relation ? 1 : 0,
						   &column, column ? 1 : 0, &tag, tag ? 1 : 0, detail);
}

/* an event record with lists of relations, columns and tags */
void
aa_capture_event_lists(const char *command, const char **rels, int nrels,
					   const char **cols, int ncols, const char **tags,
					   int ntags, const char *detail)
{
	AuditRecord rec;
	MemoryContext cxt = CurrentMemoryContext;

	if (aa_capture_disabled || !aa_queue_ready() || MyDatabaseId == InvalidOid)
		return;
	/* only where there is a log to take it (SET ... maintenance anywhere) */
	if (IsTransactionState() && !OidIsValid(get_extension_oid(AA_NAME, true)))
		return;
	memset(&rec, 0, sizeof(rec));
	rec.kind = AA_KIND_READ;
	rec.ts = GetCurrentStatementStartTimestamp();
	/* a refused action is recorded as a failed statement */
	if (strcmp(command, "REFUSED") == 0)
		rec.outcome = AA_OUTCOME_ERROR;
	rec.nesting_level = aa_nesting_level > 0 ? aa_nesting_level - 1 : 0;
	rec.command = command;
	rec.query = aa_record_statement_text(debug_query_string, -1, 0, cxt);
	rec.query_id = (int64) pgstat_get_my_query_id();
	rec.detail = detail;
	rec.relations = rels;
	rec.n_relations = nrels;
	rec.columns = cols;
	rec.n_columns = ncols;
	rec.tags = tags;
	rec.n_tags = ntags;
	aa_record_fill_identity(&rec, cxt);
	aa_queue_push(&rec);
}
