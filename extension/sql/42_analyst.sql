-- ---------------------------------------------------------------------------
-- The analyst role and the status of the whole set-up.
--
-- access_audit_analyst: investigators read everything readers read, raise
-- alerts (check_exports, also from their own pg_cron job) and acknowledge
-- them (ack), and render the report; they cannot change tags or peer
-- groups, so they cannot switch off what they investigate.
--
-- access_audit.status(): one row per check (extension, writer, queue,
-- gaps, chain, alerts, tags, settings), each ok / warning / error with a
-- sentence, for the people who run the set-up.
-- ---------------------------------------------------------------------------
DO $do$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_analyst') THEN
		CREATE ROLE access_audit_analyst NOLOGIN;
	END IF;
END
$do$;
GRANT access_audit_reader TO access_audit_analyst;
GRANT EXECUTE ON FUNCTION access_audit.check_exports(float8, interval),
	access_audit.ack(bigint, text) TO access_audit_analyst;

/*
 * The queue counters of access_audit.stats count across restarts (kept in
 * $PGDATA/pg_access_audit/stats, see queue.c): since when, per database,
 * and the last reset.
 */
CREATE FUNCTION access_audit._stats_since(
    OUT dboid oid, OUT since timestamptz, OUT reset_at timestamptz, OUT reset_by text)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_stats_since'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION access_audit.reset_stats()
RETURNS timestamptz
AS 'MODULE_PATHNAME', 'access_audit_reset_stats'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION access_audit.reset_stats() IS
'Superusers only: the queue counters of every database (access_audit.stats) start again at zero. When and by whom is kept and shown by access_audit.status; the reset is recorded in this database''s log (command RESET STATS).';

/*
 * Tags in databases of this server that do not have the extension (so
 * nothing is audited there): tagging is refused there, so these are the
 * labels a DROP EXTENSION left (registered when it commits) and their
 * copies by CREATE DATABASE ... TEMPLATE.  Tags left before this build,
 * or while the registry was full, are not listed.
 */
CREATE FUNCTION access_audit._tags_elsewhere(
    OUT dboid oid, OUT relid oid, OUT object text, OUT tag text,
    OUT registered_by oid, OUT registered_at timestamptz)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_tags_elsewhere'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW access_audit.tags_elsewhere AS
	SELECT d.datname AS database, t.object, t.tag, r.rolname AS registered_by, t.registered_at
	  FROM access_audit._tags_elsewhere() t
	  LEFT JOIN pg_catalog.pg_database d ON d.oid OPERATOR(pg_catalog.=) t.dboid
	  LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) t.registered_by;

COMMENT ON VIEW access_audit.tags_elsewhere IS
'Columns tagged in databases of this server where access_audit is not installed (their reads are not audited): the labels DROP EXTENSION left and their copies by CREATE DATABASE, with the role whose statement registered them (who dropped the extension or created the database) and when.';

REVOKE ALL ON FUNCTION access_audit._stats_since(), access_audit.reset_stats(),
	access_audit._tags_elsewhere() FROM PUBLIC;
REVOKE ALL ON access_audit.tags_elsewhere FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._stats_since(), access_audit._tags_elsewhere()
	TO access_audit_reader, access_audit_admin;
GRANT SELECT ON access_audit.tags_elsewhere TO access_audit_reader, access_audit_admin;

/*
 * status: the health of the set-up as seen from this database.  With
 * verify => true the hash chain is walked (reads the whole log); without,
 * the chain row only gives its head.  Rows for other databases come from
 * the shared queue (those with a writer slot: audited ones).
 */
CREATE FUNCTION access_audit.status(verify boolean DEFAULT false)
RETURNS TABLE (check_name text, database name, status text, detail text)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	s			record;
	v			record;
	h			record;
	n			bigint;
	m			bigint;
	oldest		timestamptz;
	here		name := current_database();
	seen_here	boolean := false;
	since		text;
BEGIN
	check_name := 'extension';
	database := here;
	SELECT e.extversion INTO detail FROM pg_extension e WHERE e.extname = 'access_audit';
	status := 'ok';
	detail := 'access_audit ' || detail || ' is installed; capture is '
		|| CASE WHEN current_setting('access_audit.enabled')::boolean THEN 'on' ELSE 'OFF' END
		|| ', SIEM log lines: ' || current_setting('access_audit.siem_log');
	IF NOT current_setting('access_audit.enabled')::boolean THEN
		status := 'error';
	END IF;
	RETURN NEXT;

	FOR s IN
		SELECT st.*, st.database IS NOT DISTINCT FROM here AS is_here, d.oid AS dboid
		  FROM access_audit.stats st
		  LEFT JOIN pg_database d ON d.datname OPERATOR(pg_catalog.=) st.database
		 ORDER BY st.database IS NOT DISTINCT FROM here DESC, st.database COLLATE "C"
	LOOP
		database := coalesce(s.database, '(dropped database)');
		seen_here := seen_here OR s.is_here;
		SELECT 'since ' || to_char(ss.since, 'YYYY-MM-DD HH24:MI:SS TZ')
			|| coalesce(' (counters reset by ' || ss.reset_by || ' at '
						|| to_char(ss.reset_at, 'YYYY-MM-DD HH24:MI:SS TZ') || ')', '')
		  INTO since
		  FROM access_audit._stats_since() ss
		 WHERE ss.dboid OPERATOR(pg_catalog.=) s.dboid;
		since := coalesce(since, 'since the server started');

		check_name := 'writer';
		IF s.writer_pid IS NOT NULL THEN
			status := 'ok';
			detail := 'writer pid ' || s.writer_pid || ' running'
				|| coalesce(', last commit ' || to_char(s.last_flush, 'YYYY-MM-DD HH24:MI:SS TZ'), '');
		ELSIF s.pending_bytes > 0 THEN
			status := 'warning';
			detail := 'no writer running while records wait (a writer starts on demand; see the server log if this persists)';
		ELSE
			status := 'ok';
			detail := 'no writer running (none needed: nothing is waiting)';
		END IF;
		RETURN NEXT;

		check_name := 'queue';
		status := CASE WHEN s.oldest_pending_age > interval '1 minute' THEN 'warning' ELSE 'ok' END;
		detail := access_audit.format_count(s.queued) || ' records queued and '
			|| access_audit.format_count(s.written) || ' written ' || since || '; '
			|| access_audit.format_count(s.pending_bytes) || ' bytes pending'
			|| coalesce(', the oldest for ' || to_char(s.oldest_pending_age, 'HH24:MI:SS'), '')
			|| '; the shared queue is ' || round(100.0 * s.queue_bytes / greatest(s.queue_capacity, 1))
			|| '% full';
		RETURN NEXT;

		check_name := 'waits';
		status := CASE WHEN s.waits > 0 THEN 'warning' ELSE 'ok' END;
		detail := access_audit.format_count(s.waits)
			|| CASE WHEN s.waits = 1 THEN ' wait' ELSE ' waits' END
			|| ' of a backend on a full queue ' || since
			|| CASE WHEN s.waits > 0 THEN ' (raise access_audit.queue_size)' ELSE '' END;
		RETURN NEXT;

		check_name := 'gaps';
		status := CASE WHEN s.gaps > 0 THEN 'error' ELSE 'ok' END;
		detail := access_audit.format_count(s.gaps)
			|| CASE WHEN s.gaps = 1 THEN ' record' ELSE ' records' END
			|| ' torn by a crash ' || since
			|| CASE WHEN s.gaps > 0 THEN ' (command GAP in access_audit.log)' ELSE '' END;
		RETURN NEXT;
	END LOOP;

	database := here;
	IF NOT seen_here THEN
		check_name := 'writer';
		status := 'ok';
		detail := 'nothing recorded in this database since the server started';
		RETURN NEXT;
	END IF;

	/*
	 * The log's own count, beside the queue counters above (which count
	 * since a time they state).  Counting GAP markers reads the whole log,
	 * so only with verify.
	 */
	check_name := 'log';
	SELECT * INTO h FROM access_audit.chain_head();
	status := 'ok';
	detail := coalesce(h.seq, 0) || CASE WHEN h.seq = 1 THEN ' record' ELSE ' records' END
		|| ' in the log in all (the last seq; older ones may have gone to retention)';
	IF verify THEN
		SELECT count(*) INTO n
		  FROM access_audit.log_data d
		 WHERE d.shape_id IN (SELECT sh.id
								FROM access_audit.shapes sh
								JOIN access_audit.strings cmd ON cmd.id = sh.command_id
							   WHERE cmd.value OPERATOR(pg_catalog.=) 'GAP');
		detail := detail || ', ' || n || CASE WHEN n = 1 THEN ' of them a GAP marker' ELSE ' of them GAP markers' END
			|| ' (records torn by a crash, ever)';
		IF n > 0 THEN
			status := 'warning';
		END IF;
	END IF;
	RETURN NEXT;

	check_name := 'chain';
	IF h.seq IS NULL THEN
		status := 'ok';
		detail := 'the log is empty';
	ELSIF verify THEN
		SELECT * INTO v FROM access_audit.verify(NULL, h.seq);
		IF v.ok THEN
			status := 'ok';
			detail := 'verified up to record ' || h.seq || ' of '
				|| to_char(h.ts, 'YYYY-MM-DD HH24:MI:SS TZ') || ' ('
				|| access_audit.format_count(v.checked) || ' records checked)';
		ELSE
			status := 'error';
			detail := 'broken at record ' || coalesce(v.first_bad_seq::text, '?') || ': ' || v.detail;
		END IF;
	ELSE
		status := 'info';
		detail := 'head at record ' || h.seq || ', hash ' || encode(h.hash, 'hex')
			|| '; not verified now (pass verify => true to walk the chain)';
	END IF;
	RETURN NEXT;

	check_name := 'alerts';
	SELECT count(*), min(a.raised_at) INTO n, oldest
	  FROM access_audit.alerts a
	 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k
						WHERE k.alert_id OPERATOR(pg_catalog.=) a.alert_id);
	status := CASE WHEN n > 0 THEN 'warning' ELSE 'ok' END;
	detail := n || CASE WHEN n = 1 THEN ' open alert' ELSE ' open alerts' END
		|| coalesce(', the oldest raised ' || to_char(oldest, 'YYYY-MM-DD HH24:MI TZ'), '');
	/* alerts stored without their NOTIFY (the notification queue was full) */
	SELECT count(*) INTO m
	  FROM access_audit.alerts a
	 WHERE a.detail OPERATOR(pg_catalog.@>) '{"notified": false}'::jsonb
	   AND NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k
						WHERE k.alert_id OPERATOR(pg_catalog.=) a.alert_id);
	IF m > 0 THEN
		detail := detail || '; ' || m || CASE WHEN m = 1 THEN ' of them was' ELSE ' of them were' END
			|| ' not announced with NOTIFY (the notification queue was over access_audit.alert_notify_limit:'
			|| ' a session that LISTENs and stays in an open transaction keeps it from emptying)';
	END IF;
	RETURN NEXT;

	check_name := 'tags';
	SELECT count(*), count(DISTINCT (t.schema, t."table")) INTO n, m FROM access_audit.tagged_columns t;
	status := CASE WHEN n = 0 THEN 'warning' ELSE 'ok' END;
	detail := n || CASE WHEN n = 1 THEN ' tagged column in ' ELSE ' tagged columns in ' END
		|| m || CASE WHEN m = 1 THEN ' table' ELSE ' tables' END
		|| CASE WHEN n = 0 THEN ' (nothing is audited: tag columns with SECURITY LABEL FOR access_audit)' ELSE '' END;
	RETURN NEXT;

	/* tags where nothing reads them: databases without the extension */
	FOR s IN
		SELECT coalesce(t.database::text, '(dropped database)') COLLATE "C" AS database, count(*) AS n,
			   string_agg(t.object || ' (' || t.tag || ')', ', ' ORDER BY t.object COLLATE "C") AS objects
		  FROM access_audit.tags_elsewhere t
		 GROUP BY 1
		 ORDER BY 1
	LOOP
		check_name := 'tags elsewhere';
		database := s.database;
		status := 'warning';
		detail := s.n || CASE WHEN s.n = 1 THEN ' tagged column' ELSE ' tagged columns' END
			|| ' in a database without access_audit, so not audited: ' || s.objects
			|| ' (run CREATE EXTENSION access_audit there)';
		RETURN NEXT;
	END LOOP;
	/*
	 * The registry is bounded: once full, tags left later are not listed,
	 * and a CREATEDB role can fill it by copying a template that holds tags.
	 */
	SELECT count(*) INTO n FROM access_audit.tags_elsewhere;
	IF n >= 256 THEN
		check_name := 'tags elsewhere';
		database := NULL;
		status := 'warning';
		detail := 'the registry of tags in databases without access_audit is full (' || n
			|| ' tagged columns): tags left since then by DROP EXTENSION or CREATE DATABASE ... TEMPLATE are not listed'
			|| ' (look for them with SELECT * FROM pg_seclabels WHERE provider = ''access_audit'' in each database)';
		RETURN NEXT;
	END IF;
END
$fn$;

COMMENT ON FUNCTION access_audit.status(boolean) IS
'Health of the set-up: extension and settings, per audited database its writer, queue, waits on a full queue and torn records (counters kept across restarts, since the time they state), then in this database the hash chain (walked with verify => true), open alerts and tagged columns, and the databases holding tags without the extension. Each row is ok, info, warning or error with a sentence.';

/*
 * The same as a view, for SELECT * FROM access_audit.status (the chain is
 * not walked: call status(verify => true) for that).  The view runs the
 * function with its owner's rights, so it is granted like the function.
 */
CREATE VIEW access_audit.status AS
	SELECT s.check_name, s.database, s.status, s.detail
	  FROM access_audit.status(false) s;

COMMENT ON VIEW access_audit.status IS
'Health of the set-up, one row per check (see access_audit.status(verify boolean)); the hash chain is not walked here.';

REVOKE ALL ON FUNCTION access_audit.status(boolean) FROM PUBLIC;
REVOKE ALL ON access_audit.status FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.status(boolean) TO access_audit_reader, access_audit_admin;
GRANT SELECT ON access_audit.status TO access_audit_reader, access_audit_admin;
