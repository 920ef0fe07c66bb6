-- ---------------------------------------------------------------------------
-- Beyond one server (extension/remote.c).
--
-- Hot standbys: a standby's writer ships its records to the primary's
-- access_audit.ingest(), callable by members of access_audit_ingest; they
-- are chained on the primary like local records and keep their origin.
--
-- Central collection: each source publishes its log, dictionaries,
-- retention checkpoints and row identities (access_audit.publication_tables(),
-- the row identities' twins are in 96_rowids.sql); a central
-- database subscribes to every source.  There, the ENABLE REPLICA triggers
-- below divert the replicated rows into collected_* tables, keyed by the
-- source (the subscription's name), so that sources' sequence numbers and
-- dictionary ids never clash with each other or with the central server's
-- own log.  collect_rollup() adds what arrived to actor_daily, so that
-- rank_exporters() ranks every employee across all sources.
-- ---------------------------------------------------------------------------
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_ingest') THEN
        CREATE ROLE access_audit_ingest NOLOGIN;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA access_audit TO access_audit_ingest;
GRANT SELECT ON access_audit.writer_state TO access_audit_ingest;

-- Which role ships which standby ring (and origin): the first role to ship
-- a ring registers it; only that role (or a superuser) may ship more for it,
-- and an origin belongs to one role.  Admins may set or change the mapping.
CREATE TABLE access_audit.ingest_sources (
    ring_id       bigint PRIMARY KEY,
    origin        text NOT NULL,
    role          name NOT NULL,
    registered_at timestamptz NOT NULL
);
COMMENT ON TABLE access_audit.ingest_sources IS
    'Standby rings and the origin and role each is bound to: ingest() takes a ring''s records only from its role. Admins may edit the rows.';
GRANT SELECT, INSERT, UPDATE, DELETE ON access_audit.ingest_sources TO access_audit_admin;
GRANT SELECT ON access_audit.ingest_sources TO access_audit_reader;

CREATE FUNCTION access_audit.ingest(origin text, ring_id bigint, records bytea)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_ingest'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION access_audit.ingest(text, bigint, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.ingest(text, bigint, bytea) TO access_audit_ingest;
COMMENT ON FUNCTION access_audit.ingest(text, bigint, bytea) IS
    'Takes audit records shipped by a hot standby''s writer, queues them with their origin and waits until they are committed; returns how far the standby''s queue is written here.';

-- ---------------------------------------------------------------------------
-- Central collection
-- ---------------------------------------------------------------------------
-- The tables a source publishes, for CREATE PUBLICATION.
CREATE FUNCTION access_audit.publication_tables()
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN 'access_audit.log_data, access_audit.sessions, access_audit.shapes, access_audit.strings, '
       'access_audit.string_sets, access_audit.chain_checkpoints, '
       'access_audit.row_sets, access_audit.row_set_reads, access_audit.row_key';
COMMENT ON FUNCTION access_audit.publication_tables() IS
    'The tables a source publishes to a central audit server: CREATE PUBLICATION ... FOR TABLE <these> WITH (publish = ''insert'', publish_via_partition_root = true).';

-- log_data's columns, in its order, then the source.
CREATE TABLE access_audit.collected_log (LIKE access_audit.log_data);
ALTER TABLE access_audit.collected_log ADD COLUMN source text NOT NULL;
ALTER TABLE access_audit.collected_log
    ADD CONSTRAINT collected_log_pkey PRIMARY KEY (source, seq);
COMMENT ON TABLE access_audit.collected_log IS
    'Records collected from other servers by logical replication; query access_audit.collected instead.';

-- The dictionaries lead with the source (dict.c reads them so), then the
-- columns of the source's own dictionary.
CREATE TABLE access_audit.collected_sessions (
    source text NOT NULL,
    LIKE access_audit.sessions,
    CONSTRAINT collected_sessions_pkey PRIMARY KEY (source, id)
);

CREATE TABLE access_audit.collected_shapes (
    source text NOT NULL,
    LIKE access_audit.shapes,
    CONSTRAINT collected_shapes_pkey PRIMARY KEY (source, id)
);

CREATE TABLE access_audit.collected_strings (
    source text NOT NULL,
    LIKE access_audit.strings,
    CONSTRAINT collected_strings_pkey PRIMARY KEY (source, id)
);

CREATE TABLE access_audit.collected_string_sets (
    source text NOT NULL,
    LIKE access_audit.string_sets,
    CONSTRAINT collected_string_sets_pkey PRIMARY KEY (source, id)
);

CREATE TABLE access_audit.collected_checkpoints (
    source     text   NOT NULL,
    seq        bigint NOT NULL,
    hash       bytea  NOT NULL,
    cut_at     timestamptz,
    cut_by     name,
    cut_before timestamptz,
    CONSTRAINT collected_checkpoints_pkey PRIMARY KEY (source, seq)
);

-- How far each source's records are in actor_daily.
CREATE TABLE access_audit.collect_progress (
    source      text PRIMARY KEY,
    rolled_upto bigint NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE FUNCTION access_audit._collect_source()
RETURNS text
AS 'MODULE_PATHNAME', 'access_audit_collect_source'
LANGUAGE C VOLATILE;

-- Divert a replicated row into collected_*.  Fires only in logical
-- replication workers (ENABLE REPLICA), and _collect_source() refuses any
-- other caller.  A source's audit data is append-only: replicated updates
-- and deletes are not applied; a row delivered twice (a subscription made
-- again under the same name) is kept once.
CREATE FUNCTION access_audit._collect_row()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text := access_audit._collect_source();
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RETURN NULL;
    END IF;
    -- log_data's rows reach the partition they route to (its clone of this trigger)
    IF pg_catalog.pg_partition_root(TG_RELID) OPERATOR(pg_catalog.=) 'access_audit.log_data'::pg_catalog.regclass THEN
        INSERT INTO access_audit.collected_log SELECT (NEW).*, src ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'sessions' THEN
        INSERT INTO access_audit.collected_sessions SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'shapes' THEN
        INSERT INTO access_audit.collected_shapes SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'strings' THEN
        INSERT INTO access_audit.collected_strings SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'string_sets' THEN
        INSERT INTO access_audit.collected_string_sets SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    ELSIF TG_TABLE_NAME = 'chain_checkpoints' THEN
        INSERT INTO access_audit.collected_checkpoints SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['log_data', 'sessions', 'shapes', 'strings', 'string_sets',
                             'chain_checkpoints']
    LOOP
        EXECUTE format('CREATE TRIGGER collect BEFORE INSERT OR UPDATE OR DELETE '
                       'ON access_audit.%I FOR EACH ROW '
                       'EXECUTE FUNCTION access_audit._collect_row()', t);
        EXECUTE format('ALTER TABLE access_audit.%I ENABLE REPLICA TRIGGER collect', t);
    END LOOP;
    -- the collected tables are append-only like the log: 90_guard.sql
END
$$;

-- The collected records, resolved like access_audit.log, with their source.
CREATE VIEW access_audit.collected AS
SELECT d.source, d.seq, d.ts,
       s_db.value::name AS database,
       s_login.value::name AS login_role,
       s_eff.value::name AS effective_role,
       s_actor.value AS actor,
       s_claim.value AS claimed_actor,
       s_addr.value::inet AS client_addr,
       s_app.value AS application_name,
       se.backend_pid,
       sh.query_id,
       s_query.value AS query,
       s_cmd.value AS command,
       sh.nesting_level,
       ss_rel.value AS relations,
       ss_col.value AS columns,
       ss_pred.value AS predicate_columns,
       ss_tags.value AS tags,
       d.rows,
       d.tagged_rows,
       CASE WHEN d.outcome_ok THEN 'ok' WHEN NOT d.outcome_ok THEN 'error' END AS outcome,
       d.duration_us * interval '1 microsecond' AS duration,
       d.detail,
       s_origin.value AS origin,
       d.origin_seq,
       d.hash
  FROM access_audit.collected_log d
  LEFT JOIN access_audit.collected_sessions se ON se.source = d.source AND se.id = d.session_id
  LEFT JOIN access_audit.collected_shapes sh ON sh.source = d.source AND sh.id = d.shape_id
  LEFT JOIN access_audit.collected_strings s_db ON s_db.source = d.source AND s_db.id = se.database_id
  LEFT JOIN access_audit.collected_strings s_login ON s_login.source = d.source AND s_login.id = se.login_role_id
  LEFT JOIN access_audit.collected_strings s_eff ON s_eff.source = d.source AND s_eff.id = se.effective_role_id
  LEFT JOIN access_audit.collected_strings s_actor ON s_actor.source = d.source AND s_actor.id = se.actor_id
  LEFT JOIN access_audit.collected_strings s_claim ON s_claim.source = d.source AND s_claim.id = se.claimed_actor_id
  LEFT JOIN access_audit.collected_strings s_app ON s_app.source = d.source AND s_app.id = se.application_name_id
  LEFT JOIN access_audit.collected_strings s_addr ON s_addr.source = d.source AND s_addr.id = se.client_addr_id
  LEFT JOIN access_audit.collected_strings s_query ON s_query.source = d.source AND s_query.id = sh.query_text_id
  LEFT JOIN access_audit.collected_strings s_cmd ON s_cmd.source = d.source AND s_cmd.id = sh.command_id
  LEFT JOIN access_audit.collected_string_sets ss_rel ON ss_rel.source = d.source AND ss_rel.id = sh.relations_id
  LEFT JOIN access_audit.collected_string_sets ss_col ON ss_col.source = d.source AND ss_col.id = sh.columns_id
  LEFT JOIN access_audit.collected_string_sets ss_pred ON ss_pred.source = d.source AND ss_pred.id = sh.predicate_columns_id
  LEFT JOIN access_audit.collected_string_sets ss_tags ON ss_tags.source = d.source AND ss_tags.id = sh.tags_id
  LEFT JOIN access_audit.collected_strings s_origin ON s_origin.source = d.source AND s_origin.id = d.origin_id;
COMMENT ON VIEW access_audit.collected IS
    'Audit records a central server collected from its sources (subscriptions), each with its source.';

-- The sources a central server has records from.
CREATE VIEW access_audit.sources AS
WITH RECURSIVE s(source) AS (
    SELECT min(c.source) FROM access_audit.collected_log c
    UNION ALL
    SELECT (SELECT min(c.source) FROM access_audit.collected_log c WHERE c.source > s.source)
      FROM s WHERE s.source IS NOT NULL
)
SELECT s.source,
       (SELECT min(c.seq) FROM access_audit.collected_log c WHERE c.source = s.source) AS first_seq,
       (SELECT max(c.seq) FROM access_audit.collected_log c WHERE c.source = s.source) AS last_seq,
       p.rolled_upto,
       p.updated_at AS rolled_at
  FROM s
  LEFT JOIN access_audit.collect_progress p ON p.source = s.source
 WHERE s.source IS NOT NULL;
COMMENT ON VIEW access_audit.sources IS
    'Sources of collected records: their sequence range and how far they are in actor_daily.';

-- Add collected records to actor_daily (relation named "source:relation"),
-- per source in seq order, up to the first record whose strings have not
-- arrived yet (during a subscription's first copy, dictionaries and log
-- arrive in any order).  Returns the number of records added.
CREATE FUNCTION access_audit.collect_rollup()
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('access_audit.business_timezone');
    h0 int;
    h1 int;
    r record;
    cut bigint;
    upto bigint;
    n bigint;
    total bigint := 0;
BEGIN
    SELECT b.h0, b.h1 INTO h0, h1 FROM access_audit._business_hours() b;
    -- one roll-up at a time
    LOCK TABLE access_audit.collect_progress IN SHARE ROW EXCLUSIVE MODE;
    FOR r IN
        SELECT s.source, coalesce(p.rolled_upto, 0) AS done
          FROM access_audit.sources s
          LEFT JOIN access_audit.collect_progress p ON p.source = s.source
         WHERE s.last_seq > coalesce(p.rolled_upto, 0)
    LOOP
        -- the first record whose session, shape, actor, command or
        -- relations have not arrived yet
        SELECT min(c.seq) INTO cut
          FROM access_audit.collected_log c
          LEFT JOIN access_audit.collected_sessions se ON se.source = c.source AND se.id = c.session_id
          LEFT JOIN access_audit.collected_shapes sh ON sh.source = c.source AND sh.id = c.shape_id
          LEFT JOIN access_audit.collected_strings a ON a.source = c.source AND a.id = se.actor_id
          LEFT JOIN access_audit.collected_strings k ON k.source = c.source AND k.id = sh.command_id
          LEFT JOIN access_audit.collected_string_sets rs ON rs.source = c.source AND rs.id = sh.relations_id
         WHERE c.source = r.source AND c.seq > r.done
           AND (se.id IS NULL OR sh.id IS NULL
                OR (se.actor_id IS NOT NULL AND a.id IS NULL)
                OR (sh.command_id IS NOT NULL AND k.id IS NULL)
                OR (sh.relations_id IS NOT NULL AND rs.id IS NULL));
        IF cut IS NULL THEN
            SELECT max(c.seq) INTO upto FROM access_audit.collected_log c WHERE c.source = r.source;
        ELSE
            upto := cut - 1;
        END IF;
        CONTINUE WHEN upto <= r.done;

        INSERT INTO access_audit.actor_daily AS d
            (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
        -- each relation gets a whole share of the statement's totals (the
        -- k-th of n: x * k / n - x * (k - 1) / n), so a statement counts once
        SELECT (c.ts AT TIME ZONE tz)::date, a.value, r.source || ':' || rel.name,
               sum(c.rows * rel.k / rel.n - c.rows * (rel.k - 1) / rel.n),
               sum(c.tagged_rows * rel.k / rel.n - c.tagged_rows * (rel.k - 1) / rel.n),
               sum(rel.k / rel.n - (rel.k - 1) / rel.n),
               sum(CASE WHEN extract(isodow FROM c.ts AT TIME ZONE tz) >= 6
                          OR extract(hour FROM c.ts AT TIME ZONE tz) < h0
                          OR extract(hour FROM c.ts AT TIME ZONE tz) >= h1
                        THEN greatest(c.rows, c.tagged_rows) * rel.k / rel.n
                             - greatest(c.rows, c.tagged_rows) * (rel.k - 1) / rel.n
                        ELSE 0 END)
          FROM access_audit.collected_log c
          JOIN access_audit.collected_sessions se ON se.source = c.source AND se.id = c.session_id
          JOIN access_audit.collected_shapes sh ON sh.source = c.source AND sh.id = c.shape_id
          JOIN access_audit.collected_strings a ON a.source = c.source AND a.id = se.actor_id
          JOIN access_audit.collected_strings k ON k.source = c.source AND k.id = sh.command_id
          JOIN access_audit.collected_string_sets rs ON rs.source = c.source AND rs.id = sh.relations_id
         CROSS JOIN LATERAL (SELECT u.name, u.k, cardinality(rs.value)::bigint AS n
                               FROM unnest(rs.value) WITH ORDINALITY AS u(name, k)) AS rel
         WHERE c.source = r.source AND c.seq > r.done AND c.seq <= upto
           AND k.value NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET')
         GROUP BY 1, 2, 3
        ON CONFLICT (day, actor, relation) DO UPDATE SET
            rows = d.rows + excluded.rows,
            tagged_rows = d.tagged_rows + excluded.tagged_rows,
            statements = d.statements + excluded.statements,
            off_hours_rows = d.off_hours_rows + excluded.off_hours_rows;

        SELECT count(*) INTO n FROM access_audit.collected_log c
         WHERE c.source = r.source AND c.seq > r.done AND c.seq <= upto;
        total := total + n;
        INSERT INTO access_audit.collect_progress AS p (source, rolled_upto, updated_at)
        VALUES (r.source, upto, now())
        ON CONFLICT (source) DO UPDATE SET rolled_upto = excluded.rolled_upto,
                                           updated_at = excluded.updated_at;
    END LOOP;
    RETURN total;
END
$$;
COMMENT ON FUNCTION access_audit.collect_rollup() IS
    'On a central server: adds newly collected records to actor_daily so that rank_exporters() covers every source; check_exports() calls it first.';

REVOKE ALL ON FUNCTION access_audit._collect_source(), access_audit._collect_row(),
    access_audit.collect_rollup() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.collect_rollup() TO access_audit_admin;
GRANT EXECUTE ON FUNCTION access_audit.publication_tables() TO access_audit_admin, access_audit_reader;
REVOKE ALL ON access_audit.collected_log, access_audit.collected_sessions,
    access_audit.collected_shapes, access_audit.collected_strings,
    access_audit.collected_string_sets, access_audit.collected_checkpoints,
    access_audit.collect_progress, access_audit.collected, access_audit.sources FROM PUBLIC;
GRANT SELECT ON access_audit.collected_log, access_audit.collected_sessions,
    access_audit.collected_shapes, access_audit.collected_strings,
    access_audit.collected_string_sets, access_audit.collected_checkpoints,
    access_audit.collect_progress, access_audit.collected, access_audit.sources
    TO access_audit_reader, access_audit_admin;
