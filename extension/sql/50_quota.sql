-- ---------------------------------------------------------------------------
-- Prevention: export quotas and break-glass exemptions (extension/quota.c).
--
-- Admins limit the tagged rows an actor, a role's members or a peer group
-- may read, per statement, hour or day, on one tagged table or on all of
-- them.  quota.c counts rows while statements run and warns, requires
-- access_audit.reason, or stops the statement at the row that crosses the
-- limit.  Every change to these tables, and every hit, is an audit record.
-- ---------------------------------------------------------------------------
CREATE TABLE access_audit.quotas (
    quota_id     serial PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('actor', 'role', 'group')),
    subject      text NOT NULL CHECK (subject <> ''),
    relation     regclass,
    per          text NOT NULL CHECK (per IN ('statement', 'hour', 'day')),
    max_rows     bigint NOT NULL CHECK (max_rows >= 0),
    action       text NOT NULL CHECK (action IN ('warn', 'require_reason', 'block')),
    shared       boolean NOT NULL DEFAULT false,
    created_by   name NOT NULL DEFAULT session_user,
    created_at   timestamptz NOT NULL DEFAULT now(),
    note         text
);
COMMENT ON TABLE access_audit.quotas IS
'Export quotas: at most max_rows tagged rows per statement, hour or day (in access_audit.business_timezone), read from relation (NULL: all tagged relations together) by the actor named, by each member of the role named (session user; SET ROLE changes nothing), or by each actor of the peer group named (access_audit.actor_groups).  shared = true gives all matching actors one counter.  action: warn (WARNING and an alert), require_reason (the statement fails until the session sets access_audit.reason), block (the statement fails at the crossing row).';

CREATE TABLE access_audit.quota_exemptions (
    exemption_id serial PRIMARY KEY,
    subject_kind text NOT NULL CHECK (subject_kind IN ('actor', 'role', 'group')),
    subject      text NOT NULL CHECK (subject <> ''),
    quota_id     int REFERENCES access_audit.quotas ON DELETE CASCADE,
    granted_by   name NOT NULL DEFAULT session_user,
    granted_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    reason       text NOT NULL CHECK (reason <> ''),
    CHECK (expires_at > granted_at)
);
COMMENT ON TABLE access_audit.quota_exemptions IS
'Break glass: until expires_at, quota_id (NULL: every quota) does not apply to the subject.  Superusers are under quotas like everyone else unless exempted here.';

SELECT pg_catalog.pg_extension_config_dump('access_audit.quotas', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quota_exemptions', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quotas_quota_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.quota_exemptions_exemption_id_seq', '');

REVOKE ALL ON access_audit.quotas, access_audit.quota_exemptions FROM PUBLIC;
GRANT SELECT ON access_audit.quotas, access_audit.quota_exemptions
    TO access_audit_reader, access_audit_admin;
GRANT INSERT, UPDATE, DELETE ON access_audit.quotas, access_audit.quota_exemptions
    TO access_audit_admin;
GRANT USAGE ON SEQUENCE access_audit.quotas_quota_id_seq,
    access_audit.quota_exemptions_exemption_id_seq TO access_audit_admin;

CREATE FUNCTION access_audit._quota_event(command text, detail text)
RETURNS void
AS 'MODULE_PATHNAME', 'access_audit_quota_event'
LANGUAGE C;
REVOKE ALL ON FUNCTION access_audit._quota_event(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._quota_event(text, text) TO access_audit_admin;

-- Every change to quotas, exemptions and peer groups is recorded, and makes
-- every backend reload its cache of them at commit.
CREATE FUNCTION access_audit._quota_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM access_audit._quota_event(
        CASE TG_TABLE_NAME
            WHEN 'quotas' THEN 'QUOTA ' || TG_OP
            WHEN 'quota_exemptions' THEN 'EXEMPTION ' || TG_OP
            ELSE 'PEER GROUP ' || TG_OP
        END,
        pg_catalog.jsonb_build_object(
            'old', CASE WHEN TG_OP <> 'INSERT' THEN pg_catalog.to_jsonb(OLD) END,
            'new', CASE WHEN TG_OP <> 'DELETE' THEN pg_catalog.to_jsonb(NEW) END)::text);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION access_audit._quota_changed() FROM PUBLIC;

CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.quotas
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.quota_exemptions
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
CREATE TRIGGER quota_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.actor_groups
    FOR EACH ROW EXECUTE FUNCTION access_audit._quota_changed();
ALTER TABLE access_audit.quotas ENABLE ALWAYS TRIGGER quota_changed;
ALTER TABLE access_audit.quota_exemptions ENABLE ALWAYS TRIGGER quota_changed;
ALTER TABLE access_audit.actor_groups ENABLE ALWAYS TRIGGER quota_changed;

-- _quota_alert: called by the writer (quota.c, aa_quota_raise_alerts) in
-- the transaction that stores a quota hit record: the hit becomes an alert
-- in access_audit.alerts, one per actor, window (the quota's hour or day;
-- the business day for a per-statement quota), kind and quota.  A later hit
-- in the same window adds to that alert's detail (hits, last_seq, last_at,
-- the most rows read) instead of raising another; a new alert is announced
-- like check_exports() does (NOTIFY access_audit_alert, same payload keys
-- plus kind and quota_id; not when the notification queue is too full, see
-- _alert_may_notify), and the alerts table's trigger writes its SIEM line.
CREATE FUNCTION access_audit._quota_alert(seq bigint, ts timestamptz, actor text,
                                          command text, detail text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    d jsonb;
    k text;
    ws timestamptz;
    we timestamptz;
    q int;
    sc float8;
    id bigint;
    announce boolean;
BEGIN
    k := CASE _quota_alert.command
             WHEN 'QUOTA WARN' THEN 'quota_warn'
             WHEN 'QUOTA BLOCK' THEN 'quota_block'
             WHEN 'QUOTA NO REASON' THEN 'quota_no_reason'
             WHEN 'QUOTA REASON' THEN 'quota_reason'
         END;
    IF k IS NULL THEN
        RETURN;
    END IF;
    d := _quota_alert.detail::jsonb;
    ws := (d OPERATOR(pg_catalog.->>) 'window_start')::timestamptz;
    we := (d OPERATOR(pg_catalog.->>) 'window_end')::timestamptz;
    q := (d OPERATOR(pg_catalog.->>) 'quota_id')::int;
    -- how far over: rows read per row allowed (a limit of 0 counts as 1)
    sc := (d OPERATOR(pg_catalog.->>) 'rows_read')::float8
          OPERATOR(pg_catalog./) GREATEST((d OPERATOR(pg_catalog.->>) 'max_rows')::float8, 1);
    d := (d OPERATOR(pg_catalog.-) 'message') OPERATOR(pg_catalog.||)
         pg_catalog.jsonb_build_object('hits', 1, 'first_seq', _quota_alert.seq,
                                       'last_seq', _quota_alert.seq,
                                       'last_at', _quota_alert.ts);

    UPDATE access_audit.alerts a
       SET detail = a.detail OPERATOR(pg_catalog.||)
                    ((d OPERATOR(pg_catalog.-) 'first_seq') OPERATOR(pg_catalog.-) 'hits')
                    OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object(
                        'hits', coalesce((a.detail OPERATOR(pg_catalog.->>) 'hits')::bigint, 1) + 1,
                        'rows_read', GREATEST((a.detail OPERATOR(pg_catalog.->>) 'rows_read')::bigint,
                                              (d OPERATOR(pg_catalog.->>) 'rows_read')::bigint)),
           score = GREATEST(a.score, sc)
     WHERE a.actor OPERATOR(pg_catalog.=) _quota_alert.actor
       AND a.window_start OPERATOR(pg_catalog.=) ws
       AND a.window_end OPERATOR(pg_catalog.=) we
       AND a.kind OPERATOR(pg_catalog.=) k
       AND a.quota_id OPERATOR(pg_catalog.=) q;
    IF FOUND THEN
        RETURN;
    END IF;

    -- never NOTIFY into a (nearly) full notification queue: its commit
    -- would fail, and this is the writer's batch (extension/notify.c)
    announce := access_audit._alert_may_notify();
    IF NOT announce THEN
        d := d OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('notified', false);
    END IF;
    INSERT INTO access_audit.alerts AS a
        (raised_at, actor, window_start, window_end, score, reason, detail, kind, quota_id)
    VALUES (_quota_alert.ts, _quota_alert.actor, ws, we, sc,
            _quota_alert.detail::jsonb OPERATOR(pg_catalog.->>) 'message', d, k, q)
    RETURNING a.alert_id INTO id;
    IF NOT announce THEN
        RETURN;
    END IF;
    PERFORM pg_catalog.pg_notify('access_audit_alert',
        pg_catalog.jsonb_build_object(
            'alert_id', id, 'actor', _quota_alert.actor, 'score', sc,
            'reason', _quota_alert.detail::jsonb OPERATOR(pg_catalog.->>) 'message',
            'window', pg_catalog.jsonb_build_object('start', ws, 'end', we),
            'kind', k, 'quota_id', q)::text);
END
$$;
REVOKE ALL ON FUNCTION access_audit._quota_alert(bigint, timestamptz, text, text, text) FROM PUBLIC;
COMMENT ON FUNCTION access_audit._quota_alert(bigint, timestamptz, text, text, text) IS
'Internal: the writer makes a stored quota hit an alert (one per actor, window, kind and quota; later hits add to its count in detail) and announces a new one with NOTIFY access_audit_alert, unless the notification queue is too full (then the alert has "notified": false in detail).';

-- set_quota: add a quota; returns its id.
CREATE FUNCTION access_audit.set_quota(subject_kind text, subject text, max_rows bigint,
                                       per text DEFAULT 'day', action text DEFAULT 'block',
                                       relation regclass DEFAULT NULL,
                                       shared boolean DEFAULT false, note text DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id int;
BEGIN
    IF set_quota.subject_kind IS NULL OR set_quota.subject_kind NOT IN ('actor', 'role', 'group') THEN
        RAISE EXCEPTION 'invalid quota subject kind "%"', set_quota.subject_kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''actor'', ''role'' or ''group''.';
    END IF;
    IF set_quota.subject IS NULL OR set_quota.subject = '' THEN
        RAISE EXCEPTION 'quota subject must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the actor, role or peer group the quota limits.';
    END IF;
    IF set_quota.subject_kind = 'role' AND to_regrole(quote_ident(set_quota.subject)) IS NULL THEN
        RAISE EXCEPTION 'role "%" does not exist', set_quota.subject
            USING ERRCODE = 'undefined_object',
                  HINT = 'Create the role first, or limit an actor or peer group instead.';
    END IF;
    IF set_quota.max_rows IS NULL OR set_quota.max_rows < 0 THEN
        RAISE EXCEPTION 'invalid quota limit %', coalesce(set_quota.max_rows::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'The limit is a number of tagged rows, 0 or more.';
    END IF;
    IF set_quota.per IS NULL OR set_quota.per NOT IN ('statement', 'hour', 'day') THEN
        RAISE EXCEPTION 'invalid quota period "%"', set_quota.per
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''statement'', ''hour'' or ''day''.';
    END IF;
    IF set_quota.action IS NULL OR set_quota.action NOT IN ('warn', 'require_reason', 'block') THEN
        RAISE EXCEPTION 'invalid quota action "%"', set_quota.action
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''warn'', ''require_reason'' or ''block''.';
    END IF;
    INSERT INTO access_audit.quotas AS q (subject_kind, subject, relation, per, max_rows,
                                         action, shared, note)
    VALUES (set_quota.subject_kind, set_quota.subject, set_quota.relation, set_quota.per,
            set_quota.max_rows, set_quota.action, coalesce(set_quota.shared, false),
            set_quota.note)
    RETURNING q.quota_id INTO id;
    RETURN id;
END
$$;
REVOKE ALL ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text)
    TO access_audit_admin;
COMMENT ON FUNCTION access_audit.set_quota(text, text, bigint, text, text, regclass, boolean, text) IS
'Adds an export quota (see table access_audit.quotas) and returns its id; recorded in the audit log.';

CREATE FUNCTION access_audit.drop_quota(quota_id int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM access_audit.quotas q WHERE q.quota_id OPERATOR(pg_catalog.=) drop_quota.quota_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'quota % does not exist', drop_quota.quota_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'See access_audit.quotas for the quotas in force.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION access_audit.drop_quota(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.drop_quota(int) TO access_audit_admin;

-- grant_exemption: break glass, for a limited time, with who and why.
CREATE FUNCTION access_audit.grant_exemption(subject_kind text, subject text, duration interval,
                                             reason text, quota_id int DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    id int;
BEGIN
    IF grant_exemption.subject_kind IS NULL OR grant_exemption.subject_kind NOT IN ('actor', 'role', 'group') THEN
        RAISE EXCEPTION 'invalid exemption subject kind "%"', grant_exemption.subject_kind
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use ''actor'', ''role'' or ''group''.';
    END IF;
    IF grant_exemption.subject IS NULL OR grant_exemption.subject = '' THEN
        RAISE EXCEPTION 'exemption subject must not be empty'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Name the actor, role or peer group the exemption is for.';
    END IF;
    IF grant_exemption.duration IS NULL OR grant_exemption.duration <= interval '0'
       OR grant_exemption.duration > interval '30 days' THEN
        RAISE EXCEPTION 'invalid exemption duration %', coalesce(grant_exemption.duration::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Break glass is time-limited: give a duration above zero and at most 30 days.';
    END IF;
    IF grant_exemption.reason IS NULL OR btrim(grant_exemption.reason) = '' THEN
        RAISE EXCEPTION 'an exemption needs a reason'
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Say why the exemption is granted, for example the incident or ticket number.';
    END IF;
    IF grant_exemption.quota_id IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM access_audit.quotas q
            WHERE q.quota_id OPERATOR(pg_catalog.=) grant_exemption.quota_id) THEN
        RAISE EXCEPTION 'quota % does not exist', grant_exemption.quota_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'Pass NULL to exempt from every quota, or a quota_id of access_audit.quotas.';
    END IF;
    INSERT INTO access_audit.quota_exemptions AS e (subject_kind, subject, quota_id,
                                                    expires_at, reason)
    VALUES (grant_exemption.subject_kind, grant_exemption.subject, grant_exemption.quota_id,
            pg_catalog.now() + grant_exemption.duration, grant_exemption.reason)
    RETURNING e.exemption_id INTO id;
    RETURN id;
END
$$;
REVOKE ALL ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int)
    TO access_audit_admin;
COMMENT ON FUNCTION access_audit.grant_exemption(text, text, interval, text, int) IS
'Break glass: exempts the subject from quota_id (NULL: every quota) for duration (at most 30 days); records who granted it and why.';

CREATE FUNCTION access_audit.revoke_exemption(exemption_id int)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    UPDATE access_audit.quota_exemptions e
       SET expires_at = GREATEST(e.granted_at + interval '1 microsecond', pg_catalog.now())
     WHERE e.exemption_id OPERATOR(pg_catalog.=) revoke_exemption.exemption_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'exemption % does not exist', revoke_exemption.exemption_id
            USING ERRCODE = 'undefined_object',
                  HINT = 'See access_audit.quota_exemptions.';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION access_audit.revoke_exemption(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.revoke_exemption(int) TO access_audit_admin;

CREATE FUNCTION access_audit._quota_counters(OUT quota_id int, OUT subject text,
                                             OUT window_start timestamptz,
                                             OUT window_end timestamptz, OUT used bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_quota_counters'
LANGUAGE C STRICT;
REVOKE ALL ON FUNCTION access_audit._quota_counters() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._quota_counters() TO access_audit_reader, access_audit_admin;

CREATE FUNCTION access_audit._quota_counters_saved()
RETURNS boolean
AS 'MODULE_PATHNAME', 'access_audit_quota_counters_saved'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION access_audit._quota_counters_saved() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._quota_counters_saved() TO access_audit_reader, access_audit_admin;
COMMENT ON FUNCTION access_audit._quota_counters_saved() IS
'Internal: true when the quota counters have been saved to their file (pg_access_audit/quota_counters, restored at start) since they last changed.';

-- Current usage against each quota with a window (hour, day), per subject.
CREATE VIEW access_audit.quota_usage AS
SELECT q.quota_id, q.subject_kind, q.subject AS quota_subject,
       coalesce(c.subject, '(shared)') AS actor, q.relation, q.per, q.action,
       c.window_start, c.window_end, c.used, q.max_rows,
       GREATEST(q.max_rows - c.used, 0) AS remaining
  FROM access_audit._quota_counters() c
  JOIN access_audit.quotas q ON q.quota_id = c.quota_id
 WHERE c.window_end > now();
GRANT SELECT ON access_audit.quota_usage TO access_audit_reader, access_audit_admin;
COMMENT ON VIEW access_audit.quota_usage IS
'Tagged rows read in the current window of each hour or day quota, per actor (or shared), including rows reserved by running statements.';

-- Quota hits and changes, from the log.
CREATE VIEW access_audit.quota_events AS
SELECT l.seq, l.ts, l.actor, l.login_role, l.command, l.relations, l.detail, l.query
  FROM access_audit.log l
 WHERE l.command IN ('QUOTA WARN', 'QUOTA REASON', 'QUOTA BLOCK', 'QUOTA NO REASON',
                     'QUOTA INSERT', 'QUOTA UPDATE', 'QUOTA DELETE',
                     'EXEMPTION INSERT', 'EXEMPTION UPDATE', 'EXEMPTION DELETE',
                     'PEER GROUP INSERT', 'PEER GROUP UPDATE', 'PEER GROUP DELETE');
GRANT SELECT ON access_audit.quota_events TO access_audit_reader, access_audit_admin;
