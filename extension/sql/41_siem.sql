-- ---------------------------------------------------------------------------
-- SIEM: alerts and audit records as JSON lines (extension/siem.c).
--
-- One JSON object per alert or record (json, not jsonb: keys stay in the
-- documented order, and it is cheaper to build), with ECS-style field names
-- (@timestamp, event.*, user.*, source.ip, process.pid) plus db.* and the
-- record's own fields under access_audit.*, including the chain hash.
-- access_audit.siem_log = alerts | all writes them to the server log behind
-- a fixed prefix; access_audit.records_after() hands the same lines to
-- pull-based collectors.  README "Alerts and records in your SIEM" lists
-- every field.
-- ---------------------------------------------------------------------------

/*
 * _iso: a timestamp as ISO 8601 in UTC with microseconds ("...Z").
 */
CREATE FUNCTION access_audit._iso(ts timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN pg_catalog.to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"');

COMMENT ON FUNCTION access_audit._iso(timestamptz) IS
'Internal: ISO 8601 UTC text of a timestamp, for the SIEM JSON lines.';

CREATE FUNCTION access_audit._siem_emit(kind text, line text)
RETURNS void
AS 'MODULE_PATHNAME', 'access_audit_siem_emit'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION access_audit._siem_emit(text, text) IS
'Internal: writes one ACCESS_AUDIT_ALERT line to the server log when access_audit.siem_log is alerts or all.';

/*
 * records_after: the audit records after seq after_seq (at most
 * max_records, in seq order) as JSON lines.  A collector remembers the
 * last seq it stored and asks for the next ones; each line's
 * access_audit.prev_hash equals the previous line's access_audit.hash, so
 * the collector can tell that it missed nothing (and verify the hashes
 * with the encoding in the README).
 */
CREATE FUNCTION access_audit.records_after(after_seq bigint, max_records integer DEFAULT 1000)
RETURNS SETOF text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	IF after_seq IS NULL THEN
		RAISE EXCEPTION 'after_seq must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass 0 to start from the first record, then the last seq you stored.';
	END IF;
	IF max_records IS NULL OR max_records < 1 OR max_records > 100000 THEN
		RAISE EXCEPTION 'max_records must be between 1 and 100000'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a batch size such as 1000.';
	END IF;
	RETURN QUERY
	SELECT json_build_object(
			   '@timestamp', access_audit._iso(l.ts),
			   'event', json_build_object(
				   'kind', 'event',
				   'module', 'access_audit',
				   'dataset', 'access_audit.log',
				   'category', json_build_array('database'),
				   'type', json_build_array('access'),
				   'action', l.command,
				   'outcome', CASE l.outcome WHEN 'ok' THEN 'success'
									WHEN 'error' THEN 'failure' ELSE 'unknown' END,
				   'sequence', l.seq,
				   'duration', (extract(epoch FROM l.duration) * 1000000000)::bigint),
			   'user', json_build_object(
				   'name', l.actor,
				   'effective', json_build_object('name', l.effective_role)),
			   'source', json_build_object('ip', host(l.client_addr)),
			   'process', json_build_object('pid', l.backend_pid),
			   'db', json_build_object(
				   'name', l.database,
				   'user', l.login_role,
				   'operation', l.command,
				   'statement', l.query),
			   'access_audit', json_build_object(
				   'seq', l.seq,
				   'actor', l.actor,
				   'claimed_actor', l.claimed_actor,
				   'login_role', l.login_role,
				   'effective_role', l.effective_role,
				   'application_name', l.application_name,
				   'query_id', l.query_id::text,
				   'nesting_level', l.nesting_level,
				   'relations', to_json(l.relations),
				   'columns', to_json(l.columns),
				   'predicate_columns', to_json(l.predicate_columns),
				   'tags', to_json(l.tags),
				   'rows', l.rows,
				   'tagged_rows', l.tagged_rows,
				   'outcome', l.outcome,
				   'detail', l.detail,
				   'origin', l.origin,
				   'origin_seq', l.origin_seq,
				   'prev_hash', encode(l.prev_hash, 'hex'),
				   'hash', encode(l.hash, 'hex')))::text
	  FROM access_audit.log l
	 WHERE l.seq > after_seq
	 ORDER BY l.seq
	 LIMIT max_records;
END
$fn$;

COMMENT ON FUNCTION access_audit.records_after(bigint, integer) IS
'The audit records after seq after_seq (at most max_records, in seq order) as JSON lines with ECS-style fields and the chain hash (access_audit.prev_hash, access_audit.hash), for pull-based SIEM collectors.';

/*
 * _alert_json: the JSON line of an alert.
 */
CREATE FUNCTION access_audit._alert_json(a access_audit.alerts)
RETURNS text
LANGUAGE sql STABLE
RETURN pg_catalog.json_build_object(
	'@timestamp', access_audit._iso(a.raised_at),
	'event', pg_catalog.json_build_object(
		'kind', 'alert',
		'module', 'access_audit',
		'dataset', 'access_audit.alerts',
		'category', pg_catalog.json_build_array('database'),
		'type', pg_catalog.json_build_array('info'),
		'action', a.kind,
		'id', a.alert_id::text,
		'risk_score', a.score,
		'reason', a.reason,
		'start', access_audit._iso(a.window_start),
		'end', access_audit._iso(a.window_end)),
	'user', pg_catalog.json_build_object('name', a.actor),
	'db', pg_catalog.json_build_object('name', pg_catalog.current_database()),
	'access_audit', pg_catalog.json_build_object(
		'alert_id', a.alert_id,
		'actor', a.actor,
		'score', a.score,
		'reason', a.reason,
		'window_start', access_audit._iso(a.window_start),
		'window_end', access_audit._iso(a.window_end),
		'detail', a.detail,
		'kind', a.kind,
		'quota_id', a.quota_id))::text;

COMMENT ON FUNCTION access_audit._alert_json(access_audit.alerts) IS
'Internal: the JSON line of an alert, as access_audit.siem_log writes it.';

/*
 * _alert_siem: deferred row trigger on access_audit.alerts: writes the
 * alert's line when its transaction commits (so an alert rolled back is
 * not sent), whoever raised it.  SECURITY DEFINER: only the extension's
 * owner may call _siem_emit.
 */
CREATE FUNCTION access_audit._alert_siem()
RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
	/* _siem_emit writes nothing unless access_audit.siem_log asks for it */
	PERFORM access_audit._siem_emit('alert', access_audit._alert_json(NEW));
	RETURN NULL;
END
$fn$;

COMMENT ON FUNCTION access_audit._alert_siem() IS
'Internal: trigger writing each new alert to the server log as a JSON line (access_audit.siem_log).';

CREATE CONSTRAINT TRIGGER siem_log AFTER INSERT ON access_audit.alerts
	DEFERRABLE INITIALLY DEFERRED
	FOR EACH ROW EXECUTE FUNCTION access_audit._alert_siem();
ALTER TABLE access_audit.alerts ENABLE ALWAYS TRIGGER siem_log;

REVOKE ALL ON FUNCTION access_audit._iso(timestamptz), access_audit._siem_emit(text, text),
	access_audit.records_after(bigint, integer), access_audit._alert_json(access_audit.alerts),
	access_audit._alert_siem() FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT EXECUTE ON FUNCTION access_audit._iso(timestamptz),
			access_audit.records_after(bigint, integer),
			access_audit._alert_json(access_audit.alerts)
			TO access_audit_reader, access_audit_admin;
	END IF;
END
$do$;

/*
 * _alert_may_notify: may a new alert be announced with NOTIFY
 * access_audit_alert now (extension/notify.c)?  false when the server's
 * notification queue is at least access_audit.alert_notify_limit full (a
 * listener idle in an open transaction keeps it from emptying, and a full
 * queue fails the commit of the transaction that stores the alert) or
 * while the writer writes a batch again after an error.  The callers
 * (_quota_alert, check_exports) then keep the alert and mark it
 * "notified": false.
 */
CREATE FUNCTION access_audit._alert_may_notify()
RETURNS boolean
AS 'MODULE_PATHNAME', 'access_audit_alert_may_notify'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION access_audit._alert_may_notify() IS
'Internal: false when a new alert must not be announced with NOTIFY (the notification queue is at least access_audit.alert_notify_limit full, or the writer is writing a batch again); the alert is then stored with "notified": false.';

REVOKE ALL ON FUNCTION access_audit._alert_may_notify() FROM PUBLIC;
