/*-------------------------------------------------------------------------
 *
 * remote.c
 *		Audit records that cross servers: a hot standby's shipper, the
 *		primary's ingest, and a central server's collection.
 *
 * Standby: a hot standby captures reads like any server, but cannot write
 * tables.  During recovery the launcher starts, in place of a database's
 * writer, its shipper (aa_remote_shipper_main, with the writer's start,
 * aa_writer_attach): it sends its database's records over libpq to the
 * same database on the primary (access_audit.primary_conninfo, or the
 * standby's primary_conninfo), where access_audit.ingest() decodes them,
 * stamps them with their origin (the standby's name, its ring's id and each
 * record's position in that ring), pushes them into the primary's own queue
 * and waits until the primary's writer has committed them.  That writer
 * chains them like local records and stores, in the same transaction, how
 * far the standby's ring is written (access_audit.writer_state, keyed by
 * ring id).  The standby frees a record only once it has replayed that
 * writer_state row itself: if the primary fails, the standby's pending
 * records are either in the log it replayed, or still in its ring, and
 * after a promotion its writer (which reads the same writer_state row)
 * writes exactly the rest.  While the primary is unreachable the shipper
 * retries with back-off, saying why once a minute, and the records wait in
 * the ring (the queue-full behaviour holds as usual).
 *
 * ingest() trusts a ring only from the role bound to it: the first
 * access_audit_ingest member to ship a ring registers it, with its origin,
 * in access_audit.ingest_sources (admins may edit the rows), and an origin
 * belongs to one role.  Positions that jump far ahead and tag changes
 * (which no standby can make) are refused; every refusal is recorded.
 *
 * Central server: sources publish log_data, the dictionaries and the
 * retention checkpoints; the central database subscribes to each.  ENABLE
 * REPLICA triggers on those tables (see extension/sql/30_remote.sql) divert
 * every replicated row into collected_* tables keyed by source, the
 * subscription's name, which aa_remote_collect_source() reports.
 *
 * Ownership: the shipper's connection and positions are process-local; all
 * shared state is the queue's (queue.c).
 *
 * IDENTIFICATION
 *	  extension/remote.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <unistd.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "access/xlogrecovery.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "libpq-fe.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/interrupt.h"
#include "replication/logicalworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "access_audit.h"
#include "queue.h"
#include "records.h"
#include "remote.h"
#include "writer.h"

/* how long ingest() waits for the primary's writer */
#define INGEST_WAIT_MS		60000

/*
 * Largest step, in bytes of the standby's ring, from the last position of
 * a ring committed here to the next record shipped for it.  A standby's
 * other databases share its ring, so steps are legitimately large; this
 * refuses only positions no ring can reach in practice (2^50 bytes), the
 * kind that would make every later record of that ring look old.
 */
#define INGEST_MAX_JUMP		(UINT64CONST(1) << 50)

/* how long a stopping shipper keeps trying before it leaves records queued */
#define SHUTDOWN_GRACE_MS	5000

/*
 * The origin of this server's records: "<name>/<system identifier>", name
 * from access_audit.server_name, cluster_name or the host name.  A streaming
 * standby shares its primary's system identifier, so the name tells them
 * apart.
 */
static char *
remote_origin_name(void)
{
	const char *name = aa_server_name;
	char		host[256];

	if (name == NULL || name[0] == '\0')
		name = GetConfigOption("cluster_name", false, false);
	if (name == NULL || name[0] == '\0')
	{
		if (gethostname(host, sizeof(host)) != 0)
			strlcpy(host, "standby", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		name = host;
	}
	return psprintf("%s/" UINT64_FORMAT, name, GetSystemIdentifier());
}

/*
 * The position up to which ring_id is committed here, read in the calling
 * transaction, which must have an active snapshot (-1: none).
 */
static int64
remote_committed_pos_spi(uint64 ring_id)
{
	int64		pos;

	SPI_connect();
	pos = aa_writer_ring_pos(ring_id);
	SPI_finish();
	return pos;
}

/*
 * How far this ring is written in the log, as this server sees it (-1:
 * nothing yet).  On a standby that is the primary's writer_state row as
 * replayed here.  Opens and commits its own transaction.
 */
static int64
remote_committed_pos(uint64 ring_id)
{
	int64		pos;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid(AA_NAME, true)))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit records are waiting for a database that has no access_audit extension"),
				errhint("Run CREATE EXTENSION access_audit in that database on the primary."));
	pos = remote_committed_pos_spi(ring_id);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return pos;
}

/*
 * Wait until conn's socket is ready for what PQconnectPoll or PQconsumeInput
 * need.  Returns false if a shutdown was requested and has lasted longer
 * than the grace period.
 */
static bool
remote_wait_socket(PGconn *conn, int events, TimestampTz *shutdown_since)
{
	int			rc;

	rc = WaitLatchOrSocket(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH | events,
						   PQsocket(conn), 1000L, PG_WAIT_EXTENSION);
	if (rc & WL_LATCH_SET)
		ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ShutdownRequestPending)
	{
		if (*shutdown_since == 0)
			*shutdown_since = GetCurrentTimestamp();
		else if (TimestampDifferenceExceeds(*shutdown_since, GetCurrentTimestamp(),
											SHUTDOWN_GRACE_MS))
			return false;
	}
	return true;
}

/*
 * The "options" of the shipper's connection: the user's own, if the
 * connection string has any, followed by the settings ingest() needs on
 * the primary whatever ALTER DATABASE/ROLE SET put there (the same ones the
 * writer pins in its own process, aa_writer_pin_settings).
 */
static char *
remote_session_options(PQconninfoOption *opts)
{
	PQconninfoOption *o;
	const char *user = "";

	for (o = opts; o->keyword; o++)
		if (strcmp(o->keyword, "options") == 0 && o->val != NULL)
			user = o->val;
	return psprintf("%s%s-c search_path=pg_catalog,pg_temp "
					"-c default_transaction_read_only=off "
					"-c default_transaction_isolation=read\\ committed "
					"-c statement_timeout=0 -c lock_timeout=0 "
					"-c idle_in_transaction_session_timeout=0 "
					"-c synchronous_commit=local",
					user, user[0] ? " " : "");
}

/*
 * Connect to the primary's database dbname.  The connection string is
 * access_audit.primary_conninfo, or the standby's primary_conninfo; its
 * dbname and replication keywords are replaced.  Returns NULL and sets
 * *why if it fails.
 */
static PGconn *
remote_connect(const char *dbname, TimestampTz *shutdown_since, char **why)
{
	const char *conninfo = aa_primary_conninfo;
	PQconninfoOption *opts;
	PQconninfoOption *o;
	char	   *err = NULL;
	const char **keys;
	const char **vals;
	int			n = 0;
	PGconn	   *conn;

	if (conninfo == NULL || conninfo[0] == '\0')
		conninfo = PrimaryConnInfo;
	if (conninfo == NULL || conninfo[0] == '\0')
	{
		*why = "no connection string for the primary: set access_audit.primary_conninfo, or primary_conninfo";
		return NULL;
	}
	opts = PQconninfoParse(conninfo, &err);
	if (opts == NULL)
	{
		*why = psprintf("invalid connection string for the primary: %s",
						err ? pchomp(err) : "out of memory");
		if (err)
			PQfreemem(err);
		return NULL;
	}

	for (o = opts; o->keyword; o++)
		n++;
	keys = palloc0(sizeof(char *) * (n + 4));
	vals = palloc0(sizeof(char *) * (n + 4));
	n = 0;
	for (o = opts; o->keyword; o++)
	{
		if (o->val == NULL || o->val[0] == '\0' ||
			strcmp(o->keyword, "dbname") == 0 ||
			strcmp(o->keyword, "replication") == 0 ||
			strcmp(o->keyword, "options") == 0 ||
			strcmp(o->keyword, "fallback_application_name") == 0)
			continue;
		keys[n] = o->keyword;
		vals[n] = o->val;
		n++;
	}
	keys[n] = "dbname";
	vals[n++] = dbname;

	/*
	 * The primary applies its database's and role's settings to this session;
	 * settings sent at connection start outrank them, so nothing there can
	 * put user code on ingest()'s path or make its transaction read-only or
	 * time out.  The user's own options come first, ours last.
	 */
	keys[n] = "options";
	vals[n++] = remote_session_options(opts);
	keys[n] = "fallback_application_name";
	vals[n++] = "access_audit shipper";

	conn = PQconnectStartParams(keys, vals, false);
	if (conn != NULL && PQstatus(conn) != CONNECTION_BAD)
	{
		PostgresPollingStatusType st = PGRES_POLLING_WRITING;

		while (st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED)
		{
			int			ev = st == PGRES_POLLING_READING ? WL_SOCKET_READABLE :
			WL_SOCKET_WRITEABLE;

			if (!remote_wait_socket(conn, ev, shutdown_since))
				break;
			st = PQconnectPoll(conn);
		}
	}
	PQconninfoFree(opts);
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		*why = conn ? pstrdup(pchomp(PQerrorMessage(conn))) : "out of memory";
		if (conn)
			PQfinish(conn);
		return NULL;
	}
	return conn;
}

/*
 * Send one batch (the wire form in buf) to the primary's ingest() and wait
 * for its answer: the position up to which the primary holds this ring's
 * records.  Returns -2 and sets *why if it fails.
 */
static int64
remote_ship(PGconn *conn, const char *origin, uint64 ring_id, StringInfo buf,
			TimestampTz *shutdown_since, char **why)
{
	const Oid	types[3] = {TEXTOID, INT8OID, BYTEAOID};
	const char *vals[3];
	int			lens[3] = {0, 0, buf->len};
	const int	fmts[3] = {0, 0, 1};
	char		ring[32];
	PGresult   *res;
	int64		upto = -1;
	char	   *msg = NULL;

	snprintf(ring, sizeof(ring), INT64_FORMAT, (int64) ring_id);
	vals[0] = origin;
	vals[1] = ring;
	vals[2] = buf->data;
	if (!PQsendQueryParams(conn, "SELECT access_audit.ingest($1, $2, $3)", 3,
						   types, vals, lens, fmts, 0))
		msg = pstrdup(pchomp(PQerrorMessage(conn)));
	while (msg == NULL && PQisBusy(conn))
	{
		if (!remote_wait_socket(conn, WL_SOCKET_READABLE, shutdown_since))
			msg = "shutting down";
		else if (!PQconsumeInput(conn))
			msg = pstrdup(pchomp(PQerrorMessage(conn)));
	}
	while ((res = PQgetResult(conn)) != NULL)
	{
		if (msg != NULL)
			;
		else if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
				 !PQgetisnull(res, 0, 0))
			upto = strtoi64(PQgetvalue(res, 0, 0), NULL, 10);
		else if (PQresultStatus(res) != PGRES_TUPLES_OK)
			msg = pstrdup(pchomp(PQresultErrorMessage(res)));
		PQclear(res);
		if (msg != NULL && PQstatus(conn) != CONNECTION_OK)
			break;
	}
	if (msg != NULL)
	{
		*why = msg;
		return -2;
	}
	return upto;
}

/*
 * Say why records cannot be shipped: at once when the reason changes, then
 * once a minute while it lasts.
 */
static void
remote_complain(const char *why, bool connecting)
{
	static char *last_why = NULL;
	static TimestampTz last_at = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (last_why != NULL && strcmp(last_why, why) == 0 &&
		!TimestampDifferenceExceeds(last_at, now, 60000))
		return;
	if (last_why)
		pfree(last_why);
	last_why = MemoryContextStrdup(TopMemoryContext, why);
	last_at = now;
	ereport(WARNING,
			errcode(ERRCODE_CONNECTION_FAILURE),
			connecting ?
			errmsg("access_audit could not connect to the primary to ship audit records: %s", why) :
			errmsg("access_audit could not ship audit records to the primary: %s", why),
			errdetail("The records stay queued on this standby and are shipped once the primary takes them."),
			errhint("Check access_audit.primary_conninfo (or primary_conninfo); its role must be a member of access_audit_ingest, and the primary's database must have the access_audit extension."));
}

/*
 * The state of a hot standby's shipper between two rounds of its loop.
 * Records before scan_pos are shipped (or done); inflight holds, in ring
 * order, the positions the primary has taken but this standby has not yet
 * replayed as committed there.
 */
typedef struct ShipperState
{
	Oid			dboid;
	const char *dbname;
	uint64		ring_id;
	char	   *origin;			/* this standby's name in the records */
	PGconn	   *conn;			/* NULL while not connected */
	int			nalloc;			/* size of items */
	AuditQueueItem *items;
	MemoryContext batch_cxt;	/* reset every round */
	TimestampTz shutdown_since; /* 0 until a shutdown is requested */
	long		retry_ms;		/* back-off after a failure, 0 if none */
	uint64		scan_pos;
	uint64	   *inflight;
	int			ninflight;
	int			maxinflight;
	TimestampTz started_at;
} ShipperState;

/* close the connection to the primary, if any */
static void
shipper_disconnect(ShipperState *st)
{
	if (st->conn)
		PQfinish(st->conn);
	st->conn = NULL;
}

/*
 * After a promotion this server writes its records itself: exit with code
 * 1 so that the launcher starts a writer.
 */
static void
shipper_exit_if_promoted(ShipperState *st)
{
	if (RecoveryInProgress())
		return;
	shipper_disconnect(st);
	ereport(LOG,
			errmsg("access_audit writer for database \"%s\" restarts to write locally after promotion",
				   st->dbname));
	proc_exit(1);
}

/*
 * Forget the in-flight positions up to done (what the primary holds, as
 * replayed here); returns how many were forgotten.
 */
static int
shipper_forget_replayed(ShipperState *st, int64 done)
{
	int			confirmed;

	for (confirmed = 0; confirmed < st->ninflight &&
		 (int64) st->inflight[confirmed] <= done; confirmed++)
		;
	if (confirmed > 0)
	{
		memmove(st->inflight, st->inflight + confirmed,
				sizeof(uint64) * (st->ninflight - confirmed));
		st->ninflight -= confirmed;
	}
	return confirmed;
}

/*
 * Send items[first .. n-1] to the primary, connecting first if need be.
 * On success their positions are in flight until replayed here, and the
 * back-off is cleared; on failure the reason is logged (once a minute, see
 * remote_complain), the connection dropped and the back-off grows.
 * Returns whether the primary took them.
 */
static bool
shipper_send(ShipperState *st, int first, int n)
{
	StringInfoData buf;
	char	   *why = NULL;
	int64		got = -2;
	int			i;

	Assert(first < n);
	initStringInfo(&buf);
	for (i = first; i < n; i++)
		aa_queue_item_to_wire(&st->items[i], &buf);
	if (st->conn != NULL && PQstatus(st->conn) != CONNECTION_OK)
		shipper_disconnect(st);
	if (st->conn == NULL)
		st->conn = remote_connect(st->dbname, &st->shutdown_since, &why);
	if (st->conn != NULL)
	{
		pgstat_report_activity(STATE_RUNNING,
							   "access_audit: shipping audit records to the primary");
		got = remote_ship(st->conn, st->origin, st->ring_id, &buf,
						  &st->shutdown_since, &why);
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	if (got < -1)
	{
		remote_complain(why, st->conn == NULL);
		shipper_disconnect(st);
		/* collect them again later; back off 0.1 s doubling to 5 s */
		st->retry_ms = Min(Max(st->retry_ms * 2, 100), 5000);
		return false;
	}

	/* the primary holds them: wait for them to be replayed */
	if (st->ninflight + (n - first) > st->maxinflight)
	{
		st->maxinflight = Max(st->maxinflight * 2, st->ninflight + (n - first));
		st->inflight = repalloc(st->inflight, sizeof(uint64) * st->maxinflight);
	}
	for (i = first; i < n; i++)
	{
		Assert(st->ninflight == 0 ||
			   st->inflight[st->ninflight - 1] < st->items[i].pos);
		st->inflight[st->ninflight++] = st->items[i].pos;
	}
	st->retry_ms = 0;
	return true;
}

/*
 * At a shutdown request: true when it is time to leave, once everything is
 * shipped and replayed and no client of the database is left, or after
 * SHUTDOWN_GRACE_MS (the rest waits in the ring for the next start).
 */
static bool
shipper_shutdown_done(ShipperState *st, int n)
{
	if (st->shutdown_since == 0)
		st->shutdown_since = GetCurrentTimestamp();
	return (n == 0 && st->ninflight == 0 && st->scan_pos >= aa_queue_head() &&
			CountDBConnections(st->dboid) == 0) ||
		TimestampDifferenceExceeds(st->shutdown_since, GetCurrentTimestamp(),
								   SHUTDOWN_GRACE_MS);
}

/*
 * Wait for the next round.  After a failure, wait out the back-off (a
 * latch set by a capturing backend must not hurry it); while shipped
 * records are not replayed yet, look again soon.
 */
static void
shipper_sleep(ShipperState *st)
{
	if (st->retry_ms > 0)
		(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, st->retry_ms,
						 PG_WAIT_EXTENSION);
	else
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 st->ninflight > 0 ? 10L : (long) aa_flush_interval_ms,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	CHECK_FOR_INTERRUPTS();
}

/*
 * Main loop of a writer on a hot standby (see the file header).  Returns
 * only by exiting the process: at shutdown, or with exit code 1 when the
 * server has been promoted, so that the writer is restarted and writes
 * locally.  Each round: forget what the primary holds as replayed here,
 * collect this database's records, ship those not done yet, tell the queue
 * what is done, then leave, go on, or sleep.
 */
static void
remote_ship_main(Oid dboid, const char *dbname)
{
	ShipperState st;

	memset(&st, 0, sizeof(st));
	st.dboid = dboid;
	st.dbname = dbname;
	st.ring_id = aa_queue_ring_id();
	st.nalloc = aa_batch_size;
	st.maxinflight = 1024;
	st.started_at = GetCurrentTimestamp();
	st.origin = MemoryContextStrdup(TopMemoryContext, remote_origin_name());
	st.items = MemoryContextAlloc(TopMemoryContext,
								  sizeof(AuditQueueItem) * st.nalloc);
	st.inflight = MemoryContextAlloc(TopMemoryContext,
									 sizeof(uint64) * st.maxinflight);
	st.batch_cxt = AllocSetContextCreate(TopMemoryContext,
										 "access_audit shipper batch",
										 ALLOCSET_DEFAULT_SIZES);
	ereport(LOG,
			errmsg("access_audit writer for database \"%s\" ships records to the primary as \"%s\"",
				   dbname, st.origin));

	for (;;)
	{
		uint64		next = st.scan_pos;
		int64		done;
		int			n;
		int			first;
		int			confirmed;
		bool		shipped = true;
		MemoryContext old;

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		shipper_exit_if_promoted(&st);

		/* what the primary holds, as replayed here, is done */
		done = remote_committed_pos(st.ring_id);
		confirmed = shipper_forget_replayed(&st, done);

		MemoryContextReset(st.batch_cxt);
		old = MemoryContextSwitchTo(st.batch_cxt);
		(void) aa_queue_requeue_sealed(dboid);
		n = aa_queue_collect(dboid, &next, Min(st.nalloc, aa_batch_size),
							 st.items);

		/* after a restart, the first records may be done already */
		for (first = 0; first < n && (int64) st.items[first].pos <= done; first++)
			;
		confirmed += first;
		if (first < n)
			shipped = shipper_send(&st, first, n);
		if (shipped)
			st.scan_pos = next;
		MemoryContextSwitchTo(old);

		/*
		 * Every record of this database before the first one shipped but not
		 * replayed (or, if none, before the scan position) is done here: that
		 * frees its ring space and answers flush().
		 */
		Assert(shipped || first < n);
		aa_queue_complete(dboid, confirmed,
						  st.ninflight > 0 ? st.inflight[0] :
						  (shipped ? st.scan_pos : st.items[first].pos));

		/*
		 * Caught up with nothing in flight: give way to a database that waits
		 * for a writer, as writers on a primary do.
		 */
		if (!ShutdownRequestPending && shipped && st.ninflight == 0 &&
			n < Min(st.nalloc, aa_batch_size) &&
			aa_queue_writer_yield(dboid, st.scan_pos, st.started_at, 1000))
		{
			shipper_disconnect(&st);
			ereport(DEBUG1,
					errmsg("access_audit writer for database \"%s\" stopped to let another database's writer run",
						   dbname));
			proc_exit(0);
		}

		if (ShutdownRequestPending)
		{
			if (shipper_shutdown_done(&st, n))
				break;
		}
		else if (shipped && n == Min(st.nalloc, aa_batch_size))
			continue;			/* more waiting: no sleep */

		shipper_sleep(&st);
	}

	shipper_disconnect(&st);
	ereport(LOG,
			errmsg("access_audit writer for database \"%s\" stopped shipping", dbname));
	proc_exit(0);
}

/*
 * Background worker entry point of a hot standby's shipper, started by the
 * launcher (writer.c) in place of a writer while the server is in recovery;
 * main_arg is the database's OID.  The start is the writer's
 * (aa_writer_attach); then it ships instead of writing.
 */
void
aa_remote_shipper_main(Datum main_arg)
{
	Oid			dboid = DatumGetObjectId(main_arg);

	remote_ship_main(dboid, aa_writer_attach(dboid));
}

/*
 * Refuse an ingest() call: record it (REFUSED, with the origin, ring and
 * why), then raise the error.  The record is queued before the error, so
 * the rollback keeps it.
 */
static void
remote_refuse(const char *origin, uint64 ring_id, const char *why,
			  const char *msg, const char *hint)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoString(&buf, "{\"action\": \"INGEST\", \"origin\": ");
	escape_json(&buf, origin);
	appendStringInfo(&buf, ", \"ring_id\": " INT64_FORMAT ", \"why\": ",
					 (int64) ring_id);
	escape_json(&buf, why);
	appendStringInfoString(&buf, ", \"by\": ");
	escape_json(&buf, GetUserNameFromId(GetUserId(), false));
	appendStringInfoChar(&buf, '}');
	aa_capture_event("REFUSED", NULL, NULL, NULL, buf.data);
	ereport(ERROR,
			errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			errmsg("%s", msg),
			errdetail("This attempt has been recorded."),
			errhint("%s", hint));
}

/*
 * Bind ring_id and origin to the calling role: the first role to ship a
 * ring's records (or the role an admin put in access_audit.ingest_sources)
 * is the only one, besides superusers, that may ship more for it, and an
 * origin belongs to one role.  Otherwise one access_audit_ingest member
 * could claim another standby's ring or name.  Registers a new ring, with
 * an INGEST SOURCE record.  Runs the catalog work as the table's owner
 * (the ingest role has no rights on it); refusals are recorded.
 */
static void
remote_bind_origin(const char *origin, uint64 ring_id)
{
	Oid			nsp = get_namespace_oid(AA_SCHEMA, false);
	Oid			relid = get_relname_relid("ingest_sources", nsp);
	HeapTuple	tp;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	const char *me = GetUserNameFromId(GetUserId(), false);
	Oid			argtypes[3] = {INT8OID, TEXTOID, NAMEOID};
	Datum		args[3];
	char	   *bound_origin = NULL;
	char	   *bound_role = NULL;
	char	   *other_role = NULL;
	bool		registered = false;

	if (!OidIsValid(relid))
		ereport(ERROR,
				errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				errmsg("access_audit.ingest_sources does not exist"),
				errhint("Run ALTER EXTENSION access_audit UPDATE on this server."));
	tp = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tp))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tp))->relowner;
	ReleaseSysCache(tp);

	args[0] = Int64GetDatum((int64) ring_id);
	args[1] = CStringGetTextDatum(origin);
	args[2] = DirectFunctionCall1(namein, CStringGetDatum(me));

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	if (SPI_execute_with_args("SELECT s.origin, s.role::pg_catalog.text FROM access_audit.ingest_sources s"
							  " WHERE s.ring_id OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read access_audit.ingest_sources");
	if (SPI_processed > 0)
	{
		bound_origin = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		bound_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	}
	else
	{
		if (SPI_execute_with_args("SELECT s.role::pg_catalog.text FROM access_audit.ingest_sources s"
								  " WHERE s.origin OPERATOR(pg_catalog.=) $2"
								  "   AND s.role OPERATOR(pg_catalog.<>) $3 LIMIT 1",
								  3, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read access_audit.ingest_sources");
		if (SPI_processed > 0)
			other_role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		else if (SPI_execute_with_args("INSERT INTO access_audit.ingest_sources (ring_id, origin, role, registered_at)"
									   " VALUES ($1, $2, $3, pg_catalog.now()) ON CONFLICT DO NOTHING",
									   3, argtypes, args, NULL, false, 0) == SPI_OK_INSERT)
			registered = SPI_processed > 0;
		else
			elog(ERROR, "could not register in access_audit.ingest_sources");
	}
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);

	if (bound_origin && strcmp(bound_origin, origin) != 0 && !superuser())
		remote_refuse(origin, ring_id, psprintf("ring registered for origin %s", bound_origin),
					  psprintf("ring " INT64_FORMAT " belongs to origin \"%s\", not \"%s\"",
							   (int64) ring_id, bound_origin, origin),
					  "Each standby ships only its own ring; an admin may change access_audit.ingest_sources.");
	if (bound_role && strcmp(bound_role, me) != 0 && !superuser())
		remote_refuse(origin, ring_id, psprintf("ring registered for role %s", bound_role),
					  psprintf("ring " INT64_FORMAT " is shipped by role \"%s\", not \"%s\"",
							   (int64) ring_id, bound_role, me),
					  "Each standby ships with its own role; an admin may change access_audit.ingest_sources.");
	if (other_role && !superuser())
		remote_refuse(origin, ring_id, psprintf("origin registered for role %s", other_role),
					  psprintf("origin \"%s\" is shipped by role \"%s\", not \"%s\"",
							   origin, other_role, me),
					  "Each standby ships with its own role; an admin may change access_audit.ingest_sources.");
	if (registered)
	{
		StringInfoData buf;

		initStringInfo(&buf);
		appendStringInfoString(&buf, "{\"origin\": ");
		escape_json(&buf, origin);
		appendStringInfo(&buf, ", \"ring_id\": " INT64_FORMAT ", \"role\": ",
						 (int64) ring_id);
		escape_json(&buf, me);
		appendStringInfoChar(&buf, '}');
		aa_capture_event("INGEST SOURCE", NULL, NULL, NULL, buf.data);
	}
}

/*
 * ingest(): put records shipped by a standby into this server's queue, with
 * their origin, and wait until the writer has committed them.  Records at
 * or below the position already committed for ring_id are skipped, so a
 * batch sent twice is written once (the writer skips duplicates that are
 * still queued).  Returns the position up to which ring_id is committed.
 */
int64
aa_remote_ingest(const char *origin, uint64 ring_id, const char *data, Size len)
{
	const char *p = data;
	const char *end = data + len;
	int64		upto;
	int			pushed = 0;
	AuditQueueItem item;

	if (RecoveryInProgress())
		ereport(ERROR,
				errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				errmsg("cannot ingest audit records during recovery"),
				errhint("Point the standby's access_audit.primary_conninfo at the primary."));
	if (ring_id == aa_queue_ring_id())
		ereport(ERROR,
				errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				errmsg("records of this server's own queue cannot be ingested"),
				errhint("Call ingest() from a hot standby of this server."));

	remote_bind_origin(origin, ring_id);
	upto = remote_committed_pos_spi(ring_id);
	while (aa_queue_item_from_wire(&p, end, &item))
	{
		AuditRecord rec = item.rec;

		if ((int64) item.pos <= upto)
			continue;
		/* a standby changes no tags: such a record is forged */
		if (rec.command && strcmp(rec.command, "SECURITY LABEL") == 0)
			remote_refuse(origin, ring_id, "tag change from a standby",
						  "a hot standby cannot ship tag changes",
						  "Tags change only on the primary, where SECURITY LABEL is recorded as it happens.");
		/* a ring's positions only grow, and never by more than a ring can */
		if (item.pos >= (uint64) PG_INT64_MAX ||
			(upto >= 0 && item.pos - (uint64) upto > INGEST_MAX_JUMP))
			remote_refuse(origin, ring_id,
						  psprintf("position " UINT64_FORMAT " after " INT64_FORMAT,
								   item.pos, upto),
						  psprintf("position " UINT64_FORMAT " of ring " INT64_FORMAT " jumps too far ahead of " INT64_FORMAT,
								   item.pos, (int64) ring_id, upto),
						  "A standby's positions grow with its records; check the standby's queue.");
		if (rec.kind == AA_KIND_GAP)
		{
			/* bytes the standby lost in a crash: say so in the log */
			memset(&rec, 0, sizeof(rec));
			rec.kind = AA_KIND_READ;
			rec.ts = GetCurrentTimestamp();
			rec.command = "GAP";
			rec.outcome = AA_OUTCOME_ERROR;
			rec.detail = psprintf("{\"lost_bytes\": " INT64_FORMAT ", \"queue_position\": " UINT64_FORMAT "}",
								  item.gap_bytes, item.pos);
		}
		rec.origin = origin;
		rec.origin_ring_id = ring_id;
		rec.origin_seq = (int64) item.pos;
		aa_queue_push(&rec);
		upto = (int64) item.pos;
		pushed++;
	}

	if (pushed > 0 &&
		!aa_queue_wait_committed(MyDatabaseId, aa_queue_head(), INGEST_WAIT_MS))
		ereport(ERROR,
				errcode(ERRCODE_QUERY_CANCELED),
				errmsg("timed out waiting for the access_audit writer to commit %d ingested records",
					   pushed),
				errdetail("The records are queued here; the standby keeps them until they are committed."),
				errhint("Check access_audit.stats on this server."));
	return upto;
}

/*
 * The source of rows a logical replication worker applies on a central
 * server: its subscription's name.  ERROR in any other process, so that
 * only replicated rows are ever diverted into the collected tables.
 */
const char *
aa_remote_collect_source(void)
{
	if (!IsLogicalWorker() || MySubscription == NULL)
		ereport(ERROR,
				errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				errmsg("rows of access_audit.collected_* come only from logical replication"),
				errhint("On a central server, CREATE SUBSCRIPTION to each source's access_audit publication."));
	return MySubscription->name;
}
