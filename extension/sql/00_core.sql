/* extension/access_audit--1.1.sql, assembled from the parts in extension/sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION access_audit" to load this file. \quit

-- Roles are cluster-wide: create them once, keep them across databases.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_admin') THEN
        CREATE ROLE access_audit_admin NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_app') THEN
        CREATE ROLE access_audit_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
        CREATE ROLE access_audit_reader NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA access_audit FROM PUBLIC;
GRANT USAGE ON SCHEMA access_audit TO access_audit_reader, access_audit_admin;

-- ---------------------------------------------------------------------------
-- The audit log: one row per audited statement, written only by the writer.
--
-- Storage is compact (see the performance notes in the README): repeated
-- strings -- roles, actors, application names, commands, query texts -- are
-- stored once in access_audit.strings and lists of relations, columns and
-- tags once in access_audit.string_sets; a record refers to its session
-- (access_audit.sessions: who, from where) and its shape
-- (access_audit.shapes: what statement, on what), each stored once; prev_hash
-- is not stored but is the previous record's hash.  access_audit.log is the view
-- users and tools query; its columns are the public interface.
-- ---------------------------------------------------------------------------
-- Retention cut points: the chain continues from these hashes.
CREATE TABLE access_audit.chain_checkpoints (
    seq     bigint PRIMARY KEY,
    hash    bytea NOT NULL,
    cut_at  timestamptz NOT NULL DEFAULT now(),
    cut_by  name NOT NULL DEFAULT session_user,
    cut_before timestamptz
);

-- Ids are bigint (never reused, a busy server with unparameterised
-- statements would run out of integers); the writer gives a new entry one
-- more than the table's highest id, so no sequence that setval() could
-- turn back stands in its way.
CREATE TABLE access_audit.strings (
    id    bigint  PRIMARY KEY,
    hash  bigint  NOT NULL,
    value text    NOT NULL
);
CREATE INDEX strings_hash_idx ON access_audit.strings (hash);

CREATE TABLE access_audit.string_sets (
    id    bigint  PRIMARY KEY,
    hash  bigint  NOT NULL,
    value text[]  NOT NULL
);
CREATE INDEX string_sets_hash_idx ON access_audit.string_sets (hash);

-- Who read (database, roles, actor, application, address, backend): one
-- row per distinct combination, usually one per connection.
CREATE TABLE access_audit.sessions (
    id                  bigint  PRIMARY KEY,
    hash                bigint  NOT NULL,
    database_id         bigint,
    login_role_id       bigint,
    effective_role_id   bigint,
    actor_id            bigint,
    claimed_actor_id    bigint,
    application_name_id bigint,
    client_addr_id      bigint,
    backend_pid         integer
);
CREATE INDEX sessions_hash_idx ON access_audit.sessions (hash);

-- What was run, on what: one row per distinct statement shape.
CREATE TABLE access_audit.shapes (
    id                   bigint  PRIMARY KEY,
    hash                 bigint  NOT NULL,
    query_id             bigint,
    query_text_id        bigint,
    command_id           bigint,
    nesting_level        integer,
    relations_id         bigint,
    columns_id           bigint,
    predicate_columns_id bigint,
    tags_id              bigint
);
CREATE INDEX shapes_hash_idx ON access_audit.shapes (hash);

CREATE TABLE access_audit.log_data (
    seq          bigint      NOT NULL,
    ts           timestamptz NOT NULL,
    rows         bigint,
    tagged_rows  bigint,
    duration_us  bigint,
    session_id   bigint      NOT NULL,
    shape_id     bigint      NOT NULL,
    outcome_ok   boolean,
    detail       text,
    origin_id    bigint,
    origin_seq   bigint,
    hash         bytea       NOT NULL,
    CONSTRAINT log_data_pkey PRIMARY KEY (seq)
) PARTITION BY RANGE (seq);
COMMENT ON TABLE access_audit.log_data IS
    'Compact storage of access_audit.log; query the view access_audit.log instead.';

-- The log is range-partitioned by seq (the chain order, so that retention
-- cuts a prefix of whole partitions): the writer creates each partition,
-- access_audit.log_data_p<first seq>, access_audit.partition_size records
-- wide, before it is needed (extension/partition.c).  Records that find no
-- partition (the writer could not create one in time, a central server's
-- collected rows on their way to collected_log, a restored 1.0 dump) go to
-- the default partition, so that none is ever refused.
CREATE TABLE access_audit.log_data_default PARTITION OF access_audit.log_data DEFAULT;
COMMENT ON TABLE access_audit.log_data_default IS
    'Records of access_audit.log_data that no seq range partition covered when they were stored; usually empty.';

CREATE VIEW access_audit.log AS
SELECT d.seq, d.ts,
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
       CASE WHEN d.seq = 1 THEN '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
            ELSE coalesce((SELECT p.hash FROM access_audit.log_data p WHERE p.seq = d.seq - 1),
                          (SELECT c.hash FROM access_audit.chain_checkpoints c WHERE c.seq = d.seq - 1))
       END AS prev_hash,
       d.hash
  FROM access_audit.log_data d
  LEFT JOIN access_audit.sessions se ON se.id = d.session_id
  LEFT JOIN access_audit.shapes sh ON sh.id = d.shape_id
  LEFT JOIN access_audit.strings s_db ON s_db.id = se.database_id
  LEFT JOIN access_audit.strings s_login ON s_login.id = se.login_role_id
  LEFT JOIN access_audit.strings s_eff ON s_eff.id = se.effective_role_id
  LEFT JOIN access_audit.strings s_actor ON s_actor.id = se.actor_id
  LEFT JOIN access_audit.strings s_claim ON s_claim.id = se.claimed_actor_id
  LEFT JOIN access_audit.strings s_app ON s_app.id = se.application_name_id
  LEFT JOIN access_audit.strings s_addr ON s_addr.id = se.client_addr_id
  LEFT JOIN access_audit.strings s_query ON s_query.id = sh.query_text_id
  LEFT JOIN access_audit.strings s_cmd ON s_cmd.id = sh.command_id
  LEFT JOIN access_audit.string_sets ss_rel ON ss_rel.id = sh.relations_id
  LEFT JOIN access_audit.string_sets ss_col ON ss_col.id = sh.columns_id
  LEFT JOIN access_audit.string_sets ss_pred ON ss_pred.id = sh.predicate_columns_id
  LEFT JOIN access_audit.string_sets ss_tags ON ss_tags.id = sh.tags_id
  LEFT JOIN access_audit.strings s_origin ON s_origin.id = d.origin_id;
CREATE FUNCTION access_audit._dict_string_id(s text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_string_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_set_id(s text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_set_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_session_id(database name, login_role name, effective_role name,
    actor text, claimed_actor text, application_name text, client_addr inet, backend_pid integer)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_session_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_shape_id(query_id bigint, query text, command text,
    nesting_level integer, relations text[], columns text[], predicate_columns text[], tags text[])
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_dict_shape_id'
LANGUAGE C VOLATILE;

-- Writes through the log view (repairs in maintenance mode, and the tests
-- that prove verify() catches them) go to the compact storage.  Whether a
-- write is allowed at all is decided by the guard on access_audit.log_data.
CREATE FUNCTION access_audit._log_view_write()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        DELETE FROM access_audit.log_data WHERE seq = OLD.seq;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        DELETE FROM access_audit.log_data WHERE seq = OLD.seq;
    END IF;
    INSERT INTO access_audit.log_data
        (seq, ts, rows, tagged_rows, duration_us, session_id, shape_id, outcome_ok, detail,
         origin_id, origin_seq, hash)
    VALUES (NEW.seq, NEW.ts, NEW.rows, NEW.tagged_rows,
            (extract(epoch FROM NEW.duration) * 1000000)::bigint,
            access_audit._dict_session_id(NEW.database, NEW.login_role, NEW.effective_role,
                NEW.actor, NEW.claimed_actor, NEW.application_name, NEW.client_addr,
                NEW.backend_pid),
            access_audit._dict_shape_id(NEW.query_id, NEW.query, NEW.command, NEW.nesting_level,
                NEW.relations, NEW.columns, NEW.predicate_columns, NEW.tags),
            CASE NEW.outcome WHEN 'ok' THEN true WHEN 'error' THEN false END,
            NEW.detail,
            access_audit._dict_string_id(NEW.origin), NEW.origin_seq,
            coalesce(NEW.hash, '\x'::bytea));
    RETURN NEW;
END
$$;

CREATE TRIGGER log_view_write
    INSTEAD OF INSERT OR UPDATE OR DELETE ON access_audit.log
    FOR EACH ROW EXECUTE FUNCTION access_audit._log_view_write();

COMMENT ON VIEW access_audit.log IS
    'Append-only record of every statement that read a tagged column, hash-chained (see access_audit.verify).';

-- Where each writer got to in the queue, committed with its records.  A
-- row whose origin is set is a hot standby's queue, whose records were
-- ingested here (see access_audit.ingest()).
CREATE TABLE access_audit.writer_state (
    ring_id    bigint PRIMARY KEY,
    last_pos   bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    origin     text
);

-- Daily roll-up per actor and relation, kept by the writer.
CREATE TABLE access_audit.actor_daily (
    day            date   NOT NULL,
    actor          text   NOT NULL,
    relation       text   NOT NULL,
    rows           bigint NOT NULL DEFAULT 0,
    tagged_rows    bigint NOT NULL DEFAULT 0,
    statements     bigint NOT NULL DEFAULT 0,
    off_hours_rows bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, actor, relation)
);

-- Peer groups, maintained by admins; unmapped actors are in 'default'.
CREATE TABLE access_audit.actor_groups (
    actor      text PRIMARY KEY,
    peer_group text NOT NULL DEFAULT 'default',
    bulk_user  boolean NOT NULL DEFAULT false,
    note       text
);

CREATE TABLE access_audit.alerts (
    alert_id     bigserial PRIMARY KEY,
    raised_at    timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    window_start timestamptz NOT NULL,
    window_end   timestamptz NOT NULL,
    score        float8 NOT NULL,
    reason       text NOT NULL,
    detail       jsonb,
    kind         text NOT NULL DEFAULT 'export_anomaly'
                 CHECK (kind IN ('export_anomaly', 'quota_warn', 'quota_block',
                                 'quota_no_reason', 'quota_reason')),
    quota_id     int,
    CONSTRAINT alerts_once UNIQUE NULLS NOT DISTINCT
        (actor, window_start, window_end, kind, quota_id)
);

CREATE TABLE access_audit.alert_acks (
    ack_id   bigserial PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES access_audit.alerts,
    acked_at timestamptz NOT NULL DEFAULT now(),
    acked_by name NOT NULL DEFAULT session_user,
    note     text
);

REVOKE ALL ON ALL TABLES IN SCHEMA access_audit FROM PUBLIC;
GRANT SELECT ON access_audit.log, access_audit.log_data, access_audit.strings,
    access_audit.string_sets, access_audit.sessions, access_audit.shapes, access_audit.actor_daily, access_audit.actor_groups,
    access_audit.alerts, access_audit.alert_acks, access_audit.chain_checkpoints
    TO access_audit_reader, access_audit_admin;
GRANT INSERT, UPDATE, DELETE ON access_audit.actor_groups TO access_audit_admin;

-- ---------------------------------------------------------------------------
-- C functions
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit.flush(timeout interval DEFAULT '10 s')
RETURNS boolean
AS 'MODULE_PATHNAME', 'access_audit_flush'
LANGUAGE C STRICT VOLATILE;
COMMENT ON FUNCTION access_audit.flush(interval) IS
    'Waits until every record this database queued before the call is committed in the log; false on timeout.';

CREATE FUNCTION access_audit._stats(
    OUT dboid oid, OUT queued bigint, OUT written bigint, OUT pending_bytes bigint,
    OUT queue_bytes bigint, OUT queue_capacity bigint, OUT oldest_pending timestamptz,
    OUT waits bigint, OUT gaps bigint, OUT writer_pid integer,
    OUT last_flush timestamptz, OUT ring_id bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_stats'
LANGUAGE C STRICT VOLATILE;

CREATE VIEW access_audit.stats AS
    SELECT d.datname AS database, s.queued, s.written, s.pending_bytes,
           s.queue_bytes, s.queue_capacity,
           now() - s.oldest_pending AS oldest_pending_age,
           s.waits, s.gaps, s.writer_pid, s.last_flush
      FROM access_audit._stats() s
      LEFT JOIN pg_catalog.pg_database d ON d.oid = s.dboid;

CREATE FUNCTION access_audit.verify(from_seq bigint DEFAULT NULL, to_seq bigint DEFAULT NULL,
    source text DEFAULT NULL,
    OUT ok boolean, OUT checked bigint, OUT first_bad_seq bigint, OUT detail text)
RETURNS record
AS 'MODULE_PATHNAME', 'access_audit_verify'
LANGUAGE C VOLATILE;
COMMENT ON FUNCTION access_audit.verify(bigint, bigint, text) IS
    'Walks the hash chain of access_audit.log (or, with source, of the records a central server collected from that source) and names the first changed, removed or inserted record.';

-- The partitions of the log with their seq ranges (first_seq <= seq <
-- end_seq), in seq order, then the default partition with null bounds.
CREATE FUNCTION access_audit._log_partitions(OUT partition regclass, OUT first_seq bigint,
    OUT end_seq bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_log_partitions'
LANGUAGE C STRICT STABLE;
REVOKE ALL ON FUNCTION access_audit._log_partitions() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._log_partitions() TO access_audit_admin, access_audit_reader;

CREATE FUNCTION access_audit.chain_head(OUT seq bigint, OUT hash bytea, OUT ts timestamptz)
RETURNS record
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.seq, l.hash, l.ts FROM access_audit.log_data l ORDER BY l.seq DESC LIMIT 1
$$;

CREATE FUNCTION access_audit._tags_changed()
RETURNS void
AS 'MODULE_PATHNAME', 'access_audit_tags_changed'
LANGUAGE C STRICT VOLATILE;

CREATE FUNCTION access_audit.valid_tag(tag text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'access_audit_valid_tag'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- ---------------------------------------------------------------------------
-- Tagging helpers: thin wrappers over SECURITY LABEL (so pg_dump carries
-- tags).  Only access_audit_admin members (and superusers) may execute them;
-- they run as the extension owner so that an admin can tag any table, even
-- one it does not own (SECURITY LABEL FOR access_audit lets admins do so
-- too: see tags.c).  The audit record keeps the caller as login_role.
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit.tag(rel regclass, col name, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rel IS NULL OR col IS NULL OR tag IS NULL THEN
        RAISE EXCEPTION 'relation, column and tag must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'To remove a tag, use access_audit.untag().';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = rel AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('SECURITY LABEL FOR access_audit ON COLUMN %s.%I IS %L', rel, col, tag);
END
$$;

CREATE FUNCTION access_audit.tag_table(rel regclass, tag text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rel IS NULL OR tag IS NULL THEN
        RAISE EXCEPTION 'relation and tag must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'To remove a table tag, use access_audit.untag_table().';
    END IF;
    EXECUTE format('SECURITY LABEL FOR access_audit ON TABLE %s IS %L', rel, tag);
END
$$;

CREATE FUNCTION access_audit.untag(rel regclass, col name)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rel IS NULL OR col IS NULL THEN
        RAISE EXCEPTION 'relation and column must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute
                    WHERE attrelid = rel AND attname = col AND attnum > 0 AND NOT attisdropped) THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, rel
            USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('SECURITY LABEL FOR access_audit ON COLUMN %s.%I IS NULL', rel, col);
END
$$;

CREATE FUNCTION access_audit.untag_table(rel regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF rel IS NULL THEN
        RAISE EXCEPTION 'relation must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    EXECUTE format('SECURITY LABEL FOR access_audit ON TABLE %s IS NULL', rel);
END
$$;

-- Effective tags: own labels plus those inherited from every ancestor
-- (inheritance and partitioning), matched by column name.
CREATE VIEW access_audit.tagged_columns AS
WITH RECURSIVE anc(relid, ancestor) AS (
    SELECT c.oid, c.oid FROM pg_catalog.pg_class c
     WHERE c.relkind IN ('r', 'p', 'm', 'f') AND c.oid >= 16384
    UNION
    SELECT a.relid, i.inhparent
      FROM anc a JOIN pg_catalog.pg_inherits i ON i.inhrelid = a.ancestor
),
labels AS (
    SELECT a.relid, a.ancestor, s.objsubid, s.label
      FROM anc a
      JOIN pg_catalog.pg_seclabel s
        ON s.objoid = a.ancestor AND s.classoid = 'pg_catalog.pg_class'::regclass
       AND s.provider = 'access_audit'
),
own AS (
    SELECT l.relid, att.attnum, n.nspname AS schema, c.relname AS "table", att.attname AS "column",
           l.label AS tag,
           CASE WHEN l.ancestor = l.relid THEN NULL ELSE l.ancestor::regclass END AS inherited_from
      FROM labels l
      JOIN pg_catalog.pg_class c ON c.oid = l.relid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_catalog.pg_attribute att ON att.attrelid = l.relid AND att.attnum > 0 AND NOT att.attisdropped
     WHERE l.objsubid = 0
        OR (l.ancestor = l.relid AND att.attnum = l.objsubid)
        OR (l.ancestor <> l.relid AND att.attname = (SELECT pa.attname FROM pg_catalog.pg_attribute pa
                                                      WHERE pa.attrelid = l.ancestor AND pa.attnum = l.objsubid))
)
SELECT schema, "table", "column", tag, inherited_from, NULL::name AS computed_from
  FROM own
UNION ALL
-- a stored generated column without a tag of its own carries the tags of
-- the columns it is computed from (its expression's dependencies: on the
-- pg_attrdef entry in PostgreSQL 15, on the column itself later)
SELECT DISTINCT o.schema, o."table", g.attname, o.tag, o.inherited_from, o."column"
  FROM own o
  JOIN pg_catalog.pg_attribute g
    ON g.attrelid = o.relid AND g.attgenerated = 's' AND NOT g.attisdropped
 WHERE NOT EXISTS (SELECT 1 FROM own x WHERE x.relid = o.relid AND x.attnum = g.attnum)
   AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = o.relid
                  AND d.refobjsubid = o.attnum AND d.deptype IN ('n', 'a')
                  AND ((d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = o.relid
                        AND d.objsubid = g.attnum)
                    OR (d.classid = 'pg_catalog.pg_attrdef'::regclass
                        AND d.objid = (SELECT ad.oid FROM pg_catalog.pg_attrdef ad
                                        WHERE ad.adrelid = o.relid AND ad.adnum = g.attnum))));

-- Tagged columns that a publication sends to its subscribers now, whenever
-- they were tagged or published (a table created later under FOR ALL
-- TABLES, a column tagged after its table was published).
CREATE VIEW access_audit.published_columns AS
SELECT p.pubname AS publication, t.schema, t."table", t."column", t.tag
  FROM access_audit.tagged_columns t
  JOIN pg_catalog.pg_publication_tables p
    ON p.schemaname = t.schema AND p.tablename = t."table"
   AND t."column" = ANY (p.attnames);
COMMENT ON VIEW access_audit.published_columns IS
    'Tagged columns that a logical replication publication streams to its subscribers.';

GRANT SELECT ON access_audit.tagged_columns, access_audit.stats, access_audit.published_columns
    TO access_audit_reader, access_audit_admin;

-- ---------------------------------------------------------------------------
-- Readable views over the log
-- ---------------------------------------------------------------------------
CREATE VIEW access_audit.reads AS
    SELECT seq, ts, actor, login_role, effective_role, claimed_actor, client_addr,
           application_name, command, relations, columns, predicate_columns, tags,
           rows, tagged_rows, greatest(rows, tagged_rows) AS volume, outcome, duration,
           nesting_level, query, origin
      FROM access_audit.log
     WHERE command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET',
                           'GRANT ROLE', 'REVOKE ROLE', 'ALTER ROLE', 'DROP ROLE',
                           'PREVIOUS LOG', 'INGEST SOURCE');

CREATE VIEW access_audit.tag_changes AS
    SELECT seq, ts, (detail::jsonb) ->> 'by' AS changed_by, login_role, effective_role, actor,
           relations[1] AS relation, columns[1] AS "column",
           (detail::jsonb) ->> 'old' AS old_tag, (detail::jsonb) ->> 'new' AS new_tag,
           (detail::jsonb) ->> 'why' AS why, outcome, query, origin
      FROM access_audit.log
     WHERE command = 'SECURITY LABEL';

GRANT SELECT ON access_audit.reads, access_audit.tag_changes TO access_audit_reader, access_audit_admin;

-- The business hours in effect: the settings, or 8 to 18 with a WARNING when
-- end is not after start (each setting is checked alone, so a reload may
-- leave such a pair; the server still starts, see README "Settings").
CREATE FUNCTION access_audit._business_hours(OUT h0 int, OUT h1 int)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    h0 := pg_catalog.current_setting('access_audit.business_hours_start')::int;
    h1 := pg_catalog.current_setting('access_audit.business_hours_end')::int;
    IF h1 OPERATOR(pg_catalog.<=) h0 THEN
        RAISE WARNING 'access_audit.business_hours_end (%) is not after access_audit.business_hours_start (%), using business hours 8 to 18', h1, h0
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Business hours are [start, end) in the business time zone, for example 8 to 18; fix the settings and reload.';
        h0 := 8;
        h1 := 18;
    END IF;
END
$$;

-- Rebuild the roll-up from the raw log (after importing or repairing).
CREATE FUNCTION access_audit.rebuild_daily()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('access_audit.business_timezone');
    h0 int;
    h1 int;
    n bigint;
BEGIN
    SELECT b.h0, b.h1 INTO h0, h1 FROM access_audit._business_hours() b;
    DELETE FROM access_audit.actor_daily;
    INSERT INTO access_audit.actor_daily
        (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
    -- each relation gets a whole share of the statement's totals (the k-th
    -- of n: x * k / n - x * (k - 1) / n), so that a statement counts once
    SELECT (l.ts AT TIME ZONE tz)::date, l.actor, r.rel,
           sum(l.rows * r.k / r.n - l.rows * (r.k - 1) / r.n),
           sum(l.tagged_rows * r.k / r.n - l.tagged_rows * (r.k - 1) / r.n),
           sum(r.k / r.n - (r.k - 1) / r.n),
           sum(CASE WHEN extract(isodow FROM l.ts AT TIME ZONE tz) >= 6
                      OR extract(hour FROM l.ts AT TIME ZONE tz) < h0
                      OR extract(hour FROM l.ts AT TIME ZONE tz) >= h1
                    THEN greatest(l.rows, l.tagged_rows) * r.k / r.n
                         - greatest(l.rows, l.tagged_rows) * (r.k - 1) / r.n
                    ELSE 0 END)
      FROM access_audit.log l
     CROSS JOIN LATERAL (SELECT u.rel, u.k, cardinality(l.relations)::bigint AS n
                           FROM unnest(l.relations) WITH ORDINALITY AS u(rel, k)) AS r
     WHERE l.actor IS NOT NULL AND l.command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET')
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA access_audit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._business_hours() TO PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.flush(interval), access_audit._stats(),
    access_audit.verify(bigint, bigint, text), access_audit.chain_head(),
    access_audit.valid_tag(text)
    TO access_audit_reader, access_audit_admin;
GRANT EXECUTE ON FUNCTION access_audit.tag(regclass, name, text), access_audit.tag_table(regclass, text),
    access_audit.untag(regclass, name), access_audit.untag_table(regclass)
    TO access_audit_admin;

-- Every backend's tag cache must notice the new extension.
SELECT access_audit._tags_changed();

-- ---------------------------------------------------------------------------
-- Reads in progress (capture)
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._reads_in_progress(
    OUT pid integer, OUT database text, OUT since timestamptz,
    OUT login_role text, OUT effective_role text, OUT actor text, OUT claimed_actor text,
    OUT client_addr text, OUT application_name text, OUT command text, OUT query text,
    OUT relations text[], OUT columns text[], OUT tags text[],
    OUT rows bigint, OUT tagged_rows bigint)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'access_audit_reads_in_progress'
LANGUAGE C STRICT VOLATILE;
REVOKE ALL ON FUNCTION access_audit._reads_in_progress() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._reads_in_progress()
    TO access_audit_reader, access_audit_admin;

-- Audited statements sending rows now or holding an open cursor (an export
-- left open in a transaction), with the rows sent and read so far: from the
-- intent slots the backends keep for crash safety.  Their records reach
-- the log when they end.
CREATE VIEW access_audit.reads_in_progress AS
    SELECT pid, database, since, now() - since AS running_for, login_role::name,
           effective_role::name, actor, claimed_actor, client_addr::inet,
           application_name, command, relations, columns, tags,
           rows AS rows_so_far, tagged_rows AS tagged_rows_so_far,
           greatest(rows, tagged_rows) AS volume_so_far, query
      FROM access_audit._reads_in_progress();
COMMENT ON VIEW access_audit.reads_in_progress IS
    'Audited statements in progress that send many rows or hold an open cursor, with the rows sent so far.';
GRANT SELECT ON access_audit.reads_in_progress TO access_audit_reader, access_audit_admin;
