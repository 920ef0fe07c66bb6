/* extension/access_audit--1.0.sql */

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

CREATE SEQUENCE access_audit.strings_id_seq AS integer;
CREATE SEQUENCE access_audit.string_sets_id_seq AS integer;
CREATE TABLE access_audit.strings (
    id    integer PRIMARY KEY,
    hash  bigint  NOT NULL,
    value text    NOT NULL
);
CREATE INDEX strings_hash_idx ON access_audit.strings (hash);

CREATE TABLE access_audit.string_sets (
    id    integer PRIMARY KEY,
    hash  bigint  NOT NULL,
    value text[]  NOT NULL
);
CREATE INDEX string_sets_hash_idx ON access_audit.string_sets (hash);

-- Who read (database, roles, actor, application, address, backend): one
-- row per distinct combination, usually one per connection.
CREATE SEQUENCE access_audit.sessions_id_seq AS integer;
CREATE TABLE access_audit.sessions (
    id                  integer PRIMARY KEY,
    hash                bigint  NOT NULL,
    database_id         integer,
    login_role_id       integer,
    effective_role_id   integer,
    actor_id            integer,
    claimed_actor_id    integer,
    application_name_id integer,
    client_addr_id      integer,
    backend_pid         integer
);
CREATE INDEX sessions_hash_idx ON access_audit.sessions (hash);

-- What was run, on what: one row per distinct statement shape.
CREATE SEQUENCE access_audit.shapes_id_seq AS integer;
CREATE TABLE access_audit.shapes (
    id                   integer PRIMARY KEY,
    hash                 bigint  NOT NULL,
    query_id             bigint,
    query_text_id        integer,
    command_id           integer,
    nesting_level        integer,
    relations_id         integer,
    columns_id           integer,
    predicate_columns_id integer,
    tags_id              integer
);
CREATE INDEX shapes_hash_idx ON access_audit.shapes (hash);

CREATE TABLE access_audit.log_data (
    seq          bigint      NOT NULL,
    ts           timestamptz NOT NULL,
    rows         bigint,
    tagged_rows  bigint,
    duration_us  bigint,
    session_id   integer     NOT NULL,
    shape_id     integer     NOT NULL,
    outcome_ok   boolean,
    detail       text,
    origin_id    integer,
    origin_seq   bigint,
    hash         bytea       NOT NULL,
    CONSTRAINT log_data_pkey PRIMARY KEY (seq)
);
COMMENT ON TABLE access_audit.log_data IS
    'Compact storage of access_audit.log; query the view access_audit.log instead.';

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
RETURNS integer
AS 'MODULE_PATHNAME', 'access_audit_dict_string_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_set_id(s text[])
RETURNS integer
AS 'MODULE_PATHNAME', 'access_audit_dict_set_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_session_id(database name, login_role name, effective_role name,
    actor text, claimed_actor text, application_name text, client_addr inet, backend_pid integer)
RETURNS integer
AS 'MODULE_PATHNAME', 'access_audit_dict_session_id'
LANGUAGE C VOLATILE;

CREATE FUNCTION access_audit._dict_shape_id(query_id bigint, query text, command text,
    nesting_level integer, relations text[], columns text[], predicate_columns text[], tags text[])
RETURNS integer
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
    UNIQUE (actor, window_start, window_end)
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
LANGUAGE C STRICT IMMUTABLE;

-- ---------------------------------------------------------------------------
-- Tagging helpers: thin wrappers over SECURITY LABEL (so pg_dump carries
-- tags).  Only access_audit_admin members (and superusers) may execute them;
-- they run as the extension owner so that an admin can tag any table, even
-- one it does not own (plain SECURITY LABEL also requires ownership).  The
-- audit record keeps the caller as login_role.
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
     WHERE command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET');

CREATE VIEW access_audit.tag_changes AS
    SELECT seq, ts, (detail::jsonb) ->> 'by' AS changed_by, login_role, effective_role, actor,
           relations[1] AS relation, columns[1] AS "column",
           (detail::jsonb) ->> 'old' AS old_tag, (detail::jsonb) ->> 'new' AS new_tag,
           (detail::jsonb) ->> 'why' AS why, outcome, query
      FROM access_audit.log
     WHERE command = 'SECURITY LABEL';

GRANT SELECT ON access_audit.reads, access_audit.tag_changes TO access_audit_reader, access_audit_admin;

-- Rebuild the roll-up from the raw log (after importing or repairing).
CREATE FUNCTION access_audit.rebuild_daily()
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tz text := current_setting('access_audit.business_timezone');
    h0 int := current_setting('access_audit.business_hours_start')::int;
    h1 int := current_setting('access_audit.business_hours_end')::int;
    n bigint;
BEGIN
    DELETE FROM access_audit.actor_daily;
    INSERT INTO access_audit.actor_daily
        (day, actor, relation, rows, tagged_rows, statements, off_hours_rows)
    SELECT (l.ts AT TIME ZONE tz)::date, l.actor, r.rel, sum(l.rows), sum(l.tagged_rows), count(*),
           sum(CASE WHEN extract(isodow FROM l.ts AT TIME ZONE tz) >= 6
                      OR extract(hour FROM l.ts AT TIME ZONE tz) < h0
                      OR extract(hour FROM l.ts AT TIME ZONE tz) >= h1
                    THEN greatest(l.rows, l.tagged_rows) ELSE 0 END)
      FROM access_audit.log l CROSS JOIN LATERAL unnest(l.relations) AS r(rel)
     WHERE l.actor IS NOT NULL AND l.command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET')
     GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA access_audit FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.flush(interval), access_audit._stats(),
    access_audit.verify(bigint, bigint, text), access_audit.chain_head(),
    access_audit.valid_tag(text)
    TO access_audit_reader, access_audit_admin;
GRANT EXECUTE ON FUNCTION access_audit.tag(regclass, name, text), access_audit.tag_table(regclass, text),
    access_audit.untag(regclass, name), access_audit.untag_table(regclass)
    TO access_audit_admin;

-- Every backend's tag cache must notice the new extension.
SELECT access_audit._tags_changed();
/* extension/detect.sql */
--
-- Detection half of access_audit: ranks actors by how abnormally much they
-- exported, raises alerts, and records acknowledgements.
--
-- Everything here reads only the daily roll-up (access_audit.actor_daily or
-- a table of the same shape), never the raw log, so ranking 10,000 actors
-- over 90 days stays well under a second.  The scoring follows
-- /work/shared/DETECTION.md; the comments below say where and why it
-- differs.
--
-- This file is appended to access_audit--1.0.sql after the tables exist.

/*
 * The three helpers below have SQL-standard bodies, parsed at creation, so
 * search_path cannot change what they call; they carry no SET clause so
 * that they can be inlined (a SET clause costs a GUC save and restore on
 * every call, which was half of rank_exporters' run time).
 */

/*
 * format_count: a row count as text with thousands separators
 * ("48,210").  Fractions are rounded.  Internal helper for reasons.
 */
CREATE FUNCTION access_audit.format_count(n float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN pg_catalog.to_char(pg_catalog.round(n::numeric), 'FM999,999,999,999,999,990');

COMMENT ON FUNCTION access_audit.format_count(float8) IS
'Internal: formats a row count with thousands separators for alert reasons.';

/*
 * format_ratio: a multiplier as text, "37x" from ten up, "2.5x" below.
 */
CREATE FUNCTION access_audit.format_ratio(r float8)
RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN CASE
	WHEN r >= 10 THEN pg_catalog.to_char(pg_catalog.round(r::numeric), 'FM999,999,999,990')
	ELSE pg_catalog.to_char(pg_catalog.round(r::numeric, 1), 'FM990.0')
END || 'x';

COMMENT ON FUNCTION access_audit.format_ratio(float8) IS
'Internal: formats a multiplier ("37x", "2.5x") for alert reasons.';

/*
 * business_day: the business-time-zone calendar day of a timestamp.  The
 * roll-up's day column is in access_audit.business_timezone; when that
 * setting is unset or empty the session's TimeZone is used.
 */
CREATE FUNCTION access_audit.business_day(ts timestamptz)
RETURNS date
LANGUAGE sql STABLE STRICT PARALLEL SAFE
RETURN (ts AT TIME ZONE coalesce(
			nullif(pg_catalog.current_setting('access_audit.business_timezone', true), ''),
			pg_catalog.current_setting('TimeZone')))::date;

COMMENT ON FUNCTION access_audit.business_day(timestamptz) IS
'Calendar day of a timestamp in access_audit.business_timezone (falling back to the session TimeZone), the day actor_daily uses.';

/*
 * check_rollup_shape: raise an error unless "source" is a table or view
 * with the columns rank_exporters reads, in usable types.
 */
CREATE FUNCTION access_audit.check_rollup_shape(source regclass)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	kind		"char";
	req			record;
	found_type	regtype;
BEGIN
	IF source IS NULL THEN
		RAISE EXCEPTION 'source must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a table of the roll-up''s shape, such as ''access_audit.actor_daily''.';
	END IF;

	SELECT c.relkind INTO kind FROM pg_catalog.pg_class c WHERE c.oid = source;
	IF kind IS NULL OR kind NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION 'source "%" is not a table or view', source
			USING ERRCODE = 'wrong_object_type',
				  HINT = 'Pass a table of the roll-up''s shape, such as ''access_audit.actor_daily''.';
	END IF;

	FOR req IN
		SELECT * FROM (VALUES
			('day', ARRAY['date'::regtype]),
			('actor', ARRAY['text'::regtype, 'varchar'::regtype, 'name'::regtype]),
			('relation', ARRAY['text'::regtype, 'varchar'::regtype, 'name'::regtype]),
			('rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype]),
			('tagged_rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype]),
			('off_hours_rows', ARRAY['int8'::regtype, 'int4'::regtype, 'int2'::regtype, 'numeric'::regtype])
		) AS r(col, types)
	LOOP
		found_type := NULL;
		SELECT a.atttypid::regtype INTO found_type
		  FROM pg_catalog.pg_attribute a
		 WHERE a.attrelid = source AND a.attname = req.col
		   AND a.attnum > 0 AND NOT a.attisdropped;
		IF found_type IS NULL THEN
			RAISE EXCEPTION 'source "%" has no column "%"', source, req.col
				USING ERRCODE = 'undefined_column',
					  HINT = 'The source needs the columns of access_audit.actor_daily: day, actor, relation, rows, tagged_rows and off_hours_rows.';
		END IF;
		IF NOT found_type = ANY (req.types) THEN
			RAISE EXCEPTION 'column "%" of source "%" has type %, expected %',
				req.col, source, found_type, req.types[1]
				USING ERRCODE = 'datatype_mismatch',
					  HINT = 'Give the source the column types of access_audit.actor_daily.';
		END IF;
	END LOOP;
END
$fn$;

COMMENT ON FUNCTION access_audit.check_rollup_shape(regclass) IS
'Internal: raises an error unless the relation has the columns of access_audit.actor_daily that rank_exporters reads.';

/*
 * _detect_actors: the per-actor terms of rank_exporters over source for the
 * window of nd days ending on d1 and a baseline of nb days (C, detect.c).
 * One row per actor active in the window or in the ramp period.  Runs with
 * the caller's rights on source and access_audit.actor_groups.
 */
CREATE FUNCTION access_audit._detect_actors(source regclass, d1 date, nd int, nb int)
RETURNS TABLE (actor text, grp text, bulk boolean, v float8, n_base bigint,
			   base_median float8, s_self float8, self_typ float8, self_z float8,
			   peer_typ float8, peer_z float8, ramp_z float8, ramp_excess float8,
			   recent_ratio float8, ref_typ float8, off_share float8,
			   off_share_base float8, n_rel bigint, new_share float8)
AS 'MODULE_PATHNAME', 'access_audit_detect_actors'
LANGUAGE C STABLE;

COMMENT ON FUNCTION access_audit._detect_actors(regclass, date, int, int) IS
'Internal: the per-actor terms that rank_exporters combines into a score.';

/*
 * rank_exporters: score every actor active in the window (or in the last
 * weeks, for the slow-ramp term) and rank them, most abnormal first.
 *
 * Days: the window is the last nd = ceil(window / 1 day) business days up
 * to and including the day of as_of (so with as_of = now() the current,
 * partial day counts).  The baseline is the nb = ceil(baseline / 1 day)
 * days before the window.  The ramp period is the last least(28, nb) days;
 * its reference level comes from the nb days before it.
 *
 * All statistics work on y = ln(1 + volume), volume = greatest(rows,
 * tagged_rows), because daily volumes are roughly log-normal.  A robust
 * spread is s = greatest(1.4826 * MAD, 1.2533 * mean absolute deviation,
 * 0.5): the mean-absolute-deviation term and the floor keep an actor whose
 * history is the same number every day from getting an infinite z.
 *
 * Terms (each is a z in robust-SD units):
 *   self_z  the window total vs the median of the actor's own totals of the
 *           same length ending on each active baseline day (active days only:
 *           counting empty weekends made every weekend export a spike).  For
 *           1-day windows daily values are first corrected for the
 *           organisation's day-of-week effect (quiet weekends).  NULL with
 *           fewer than 3 active baseline days.
 *   peer_z  ln(1+window total) vs the same quantity for the actor's peer
 *           group in the same window, which cancels team-wide changes
 *           (quarter-end reports, a team doubling).  Groups with fewer than
 *           5 human actors use all human actors; with fewer than 5 peers
 *           active in the window, the group's pooled baseline is used.
 *   ramp_z  Page's CUSUM S_t = max(0, S_{t-1} + u_t - 0.5) over the active
 *           days of the ramp period, where u_t is the day's excess over the
 *           actor's earlier level in robust SDs (clipped to [-3, 3] so one
 *           odd day cannot make a ramp) minus the peers' median excess of the
 *           same day when positive.  The value is S at the last day; Page's
 *           alarm level is about 5.
 *
 * Combination:
 *   spike = sqrt(max(z_eff, 0) * max(peer_z, 0)), z_eff = w * self_z +
 *           (1 - w) * peer_z, w = n / (n + 14) with n active baseline days:
 *           a soft AND, so a power user who is always high (peer only) or a
 *           team-wide surge (self only) stays low.  No history: peer_z alone.
 *           Bulk users: self_z alone.
 *   slow  = 0.6 * ramp_z, so Page's alarm level 5 lines up with z = 3.
 *   Each is scaled by a size gate min(1, excess rows / 1,000) (the ramp by
 *   the excess over the whole ramp period / 5,000), so tiny absolute
 *   excesses never top the list.
 *   score = max(spike, slow) + context * min(1, max(self_z, 0) / 3) * size
 *   gate, where context = 2.0 * rise in the off-hours share of rows over
 *   the actor's baseline + 1.5 * share of window rows from relations the
 *   actor had not read in the look-back (peer_z stands in for self_z without
 *   history).  Context only amplifies an excess over the actor's own usual.
 */
CREATE FUNCTION access_audit.rank_exporters(
	"window" interval DEFAULT '1 day',
	baseline interval DEFAULT '30 days',
	as_of timestamptz DEFAULT now(),
	source regclass DEFAULT 'access_audit.actor_daily')
RETURNS TABLE (rank int, actor text, peer_group text, volume bigint,
			   baseline_median float8, baseline_mad float8, self_z float8,
			   peer_z float8, ramp_z float8, score float8, reason text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
-- The query below joins nothing; JIT would only add compile time.
SET jit = off
AS $fn$
DECLARE
	nd			int;			/* window length in days */
	nb			int;			/* baseline length in days */
	nr			int;			/* ramp period length in days */
	d1			date;			/* last day of the window (as_of's day) */
BEGIN
	IF "window" IS NULL THEN
		RAISE EXCEPTION 'window must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF baseline IS NULL THEN
		RAISE EXCEPTION 'baseline must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''30 days''.';
	END IF;
	IF as_of IS NULL THEN
		RAISE EXCEPTION 'as_of must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a timestamp such as now().';
	END IF;
	IF "window" <= interval '0' THEN
		RAISE EXCEPTION 'window must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF baseline <= interval '0' THEN
		RAISE EXCEPTION 'baseline must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''30 days''.';
	END IF;
	IF "window" > baseline THEN
		RAISE EXCEPTION 'window must not be longer than baseline'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = pg_catalog.format('The window is %s and the baseline %s.', "window", baseline),
				  HINT = 'Pass a baseline several times longer than the window, such as ''30 days'' for a window of ''1 day''.';
	END IF;
	PERFORM access_audit.check_rollup_shape(source);

	/* The roll-up is daily: round intervals up to whole days. */
	nd := pg_catalog.ceil(extract(epoch FROM "window") / 86400.0)::int;
	nb := pg_catalog.ceil(extract(epoch FROM baseline) / 86400.0)::int;
	nr := least(28, nb);
	d1 := access_audit.business_day(as_of);

	/*
	 * Parameters: $1 d1, $2 nd, $3 nb, $4 nr, $5 source.  The per-actor
	 * terms (CTE z) come from access_audit._detect_actors, a one-pass C
	 * implementation of the CTEs this query used to run (agg, who, peerkey,
	 * season, days, self, win, relw, pws, pbs, ramp; see detect.c): grouping
	 * 350,000 actor-days by text and thousands of small percentile sorts
	 * took seconds at 10,000 actors.  Scoring and reasons stay here.
	 */
	RETURN QUERY EXECUTE $q$
WITH
z AS (
	SELECT x.actor COLLATE "C" AS actor, x.grp COLLATE "C" AS grp, x.bulk,
		   x.v, x.n_base, x.base_median, x.s_self, x.self_typ, x.self_z,
		   x.peer_typ, x.peer_z, x.ramp_z, x.ramp_excess, x.recent_ratio,
		   x.ref_typ, x.off_share, x.off_share_base, x.n_rel, x.new_share
	  FROM access_audit._detect_actors($5, $1, $2, $3) x
),
-- Combine: soft AND of self and peers, size gates, context.
sc AS (
	SELECT z.*,
		   least(1, greatest(0, z.v - coalesce(z.self_typ, z.peer_typ, 0)) / 1000.0)
		   * CASE WHEN z.bulk OR z.peer_z IS NULL THEN greatest(coalesce(z.self_z, 0), 0)
				  WHEN z.self_z IS NULL THEN greatest(z.peer_z, 0)
				  ELSE sqrt(greatest(z.n_base / (z.n_base + 14.0) * z.self_z
									 + 14.0 / (z.n_base + 14.0) * z.peer_z, 0)
							* greatest(z.peer_z, 0))
			 END AS spike,
		   0.6 * greatest(coalesce(z.ramp_z, 0), 0) * least(1, z.ramp_excess / 5000.0) AS slow,
		   2.0 * greatest(0, z.off_share - z.off_share_base) + 1.5 * z.new_share AS context
	  FROM z
),
-- Context amplifies an excess over the actor's own history (or, without
-- history, over peers): an off-hours dump of 7x one's usual is suspicious
-- even when peers read as much by day.
fin AS (
	SELECT sc.*,
		   greatest(sc.spike, sc.slow)
		   + sc.context * least(1, greatest(coalesce(sc.self_z, sc.peer_z, 0), 0) / 3)
			 * least(1, greatest(0, sc.v - coalesce(sc.self_typ, sc.peer_typ, 0)) / 1000.0) AS score
	  FROM sc
)
SELECT (row_number() OVER (ORDER BY f.score DESC, f.v DESC, f.actor))::int,
	   f.actor, f.grp, f.v::bigint, f.base_median, f.s_self,
	   f.self_z, f.peer_z, f.ramp_z, f.score,
	   CASE
		 WHEN f.slow > f.spike THEN
		   'slow ramp: over the last ' || $4 || ' days daily volume rose to '
		   || access_audit.format_ratio(f.recent_ratio) || ' their earlier median of '
		   || access_audit.format_count(f.ref_typ) || ' rows (CUSUM '
		   || round(f.ramp_z::numeric, 1) || ' robust SDs); exported '
		   || access_audit.format_count(f.v) || ' rows in the last '
		   || $2 || CASE WHEN $2 = 1 THEN ' day' ELSE ' days' END
		 ELSE
		   'exported ' || access_audit.format_count(f.v) || ' rows in the last '
		   || $2 || CASE WHEN $2 = 1 THEN ' day' ELSE ' days' END
		   || CASE
				WHEN f.bulk AND f.self_typ IS NOT NULL THEN
				  ', ' || access_audit.format_ratio(f.v / greatest(f.self_typ, 1))
				  || ' its ' || $3 || '-day median of ' || access_audit.format_count(f.self_typ)
				  || ' (bulk account, judged against its own history only)'
				WHEN f.bulk THEN ' (bulk account without history)'
				WHEN f.self_typ IS NOT NULL THEN
				  ', ' || access_audit.format_ratio(f.v / greatest(f.self_typ, 1))
				  || ' their ' || $3 || '-day median of ' || access_audit.format_count(f.self_typ)
				  || coalesce(' and ' || access_audit.format_ratio(f.v / greatest(f.peer_typ, 1))
							  || ' their peers'' median', '')
				ELSE
				  ' with no history of their own'
				  || coalesce(', ' || access_audit.format_ratio(f.v / greatest(f.peer_typ, 1))
							  || ' their peers'' median of ' || access_audit.format_count(f.peer_typ), '')
			  END
	   END
	   || CASE WHEN f.off_share >= 0.5 AND f.off_share - f.off_share_base >= 0.25
			   THEN '; ' || round(100 * f.off_share) || '% outside business hours' ELSE '' END
	   || CASE WHEN f.new_share >= 0.5
			   THEN '; ' || round(100 * f.new_share) || '% from tables they had not read before ('
					|| f.n_rel || ' tables in the window)' ELSE '' END
  FROM fin f
 ORDER BY 1
$q$
	USING d1, nd, nb, nr, source;
END
$fn$;

COMMENT ON FUNCTION access_audit.rank_exporters(interval, interval, timestamptz, regclass) IS
'Ranks actors by how abnormally much they exported in the last "window" (rounded up to whole days, ending with the day of as_of) compared with their own "baseline" history (self_z, weekday-corrected, median/MAD of ln(1+rows)), their peer group in the same window (peer_z; groups under 5 humans use all humans) and a slow-ramp CUSUM over the last 28 days (ramp_z). score is sqrt(z_eff * peer_z) for people (a soft AND, so high-but-usual power users and team-wide surges stay low), plus off-hours and new-table context; around 3 is notable; check_exports alerts above 4 by default. Actors mapped with bulk_user = true in access_audit.actor_groups (batch service accounts) are judged only against their own history: they get no peer_z, are left out of every peer baseline, and score on self_z alone, so an ETL account exporting millions every night stays quiet while a jump against its own history still ranks. Unmapped actors are in peer group ''default''. source may name any table or view of actor_daily''s shape.';

/*
 * check_exports: raise an alert for every actor whose rank_exporters score
 * is above threshold in the current window.
 *
 * The window ends at the next business-day boundary after now() and starts
 * nd days earlier, so every run within the same day produces the same
 * bounds; ON CONFLICT on (actor, window_start, window_end) then makes
 * repeated runs (e.g. from cron every minute) raise each alert once.  Each
 * new alert is announced with NOTIFY access_audit_alert and a JSON payload.
 *
 * The default threshold 4: on the seeded evaluation population (1,000
 * actors x 90 days, bench/detect_eval.sh, seeds 1-3) it raised 5-6 of the 10
 * injected exfiltrators and 1-2 legitimate actors per day; 3 raised 9-10
 * injected but 3-5 legitimate, 6 only one injected.  Review the rest of the
 * ranking with rank_exporters().
 */
CREATE FUNCTION access_audit.check_exports(
	threshold float8 DEFAULT 4,
	"window" interval DEFAULT '1 day')
RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
#variable_conflict use_column
DECLARE
	nd			int;
	d1			date;
	tz			text;
	ws			timestamptz;
	we			timestamptz;
	raised		int := 0;
	a			record;
BEGIN
	IF threshold IS NULL OR threshold = 'NaN'::float8 THEN
		RAISE EXCEPTION 'threshold must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass a score such as 4.';
	END IF;
	IF threshold <= 0 THEN
		RAISE EXCEPTION 'threshold must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass a score such as 4; around 3 is notable.';
	END IF;
	IF "window" IS NULL THEN
		RAISE EXCEPTION 'window must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;
	IF "window" <= interval '0' THEN
		RAISE EXCEPTION 'window must be positive'
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = 'Pass an interval such as ''1 day''.';
	END IF;

	nd := pg_catalog.ceil(extract(epoch FROM "window") / 86400.0)::int;
	tz := coalesce(
		nullif(pg_catalog.current_setting('access_audit.business_timezone', true), ''),
		pg_catalog.current_setting('TimeZone'));
	d1 := access_audit.business_day(pg_catalog.now());
	we := (d1 + 1)::timestamp AT TIME ZONE tz;
	ws := (d1 - nd + 1)::timestamp AT TIME ZONE tz;

	-- on a central server, rank what arrived from the sources too
	PERFORM access_audit.collect_rollup();

	FOR a IN
		INSERT INTO access_audit.alerts AS al
			(actor, window_start, window_end, score, reason, detail)
		SELECT r.actor, ws, we, r.score, r.reason,
			   pg_catalog.jsonb_build_object(
				   'rank', r.rank, 'peer_group', r.peer_group,
				   'volume', r.volume, 'baseline_median', r.baseline_median,
				   'baseline_mad', r.baseline_mad, 'self_z', r.self_z,
				   'peer_z', r.peer_z, 'ramp_z', r.ramp_z,
				   'threshold', threshold)
		  FROM access_audit.rank_exporters("window",
										   greatest(interval '30 days', "window"),
										   pg_catalog.now(),
										   'access_audit.actor_daily') r
		 WHERE r.score > threshold
		 ORDER BY r.rank
		ON CONFLICT (actor, window_start, window_end) DO NOTHING
		RETURNING al.alert_id, al.actor, al.score, al.reason
	LOOP
		PERFORM pg_catalog.pg_notify('access_audit_alert',
			pg_catalog.jsonb_build_object(
				'alert_id', a.alert_id, 'actor', a.actor, 'score', a.score,
				'reason', a.reason,
				'window', pg_catalog.jsonb_build_object('start', ws, 'end', we))::text);
		raised := raised + 1;
	END LOOP;

	RETURN raised;
END
$fn$;

COMMENT ON FUNCTION access_audit.check_exports(float8, interval) IS
'Inserts an alert into access_audit.alerts for every actor whose rank_exporters score (30-day baseline) exceeds threshold in the current window, which ends at the next business-day boundary; repeated runs in the same window raise each alert once. Sends NOTIFY access_audit_alert with a JSON payload per new alert and returns how many were raised. The default threshold 4 is a budget choice: on the seeded evaluation population (1,000 actors) it alerted on about 6 of 10 injected exfiltrators and 1-2 legitimate actors per day; lower it to 3 for recall, raise it for fewer alerts.';

/*
 * ack: acknowledge an alert.  Appends to alert_acks (alerts itself is never
 * updated) and returns the new ack_id; acked_by is the session user.
 */
CREATE FUNCTION access_audit.ack(alert_id bigint, note text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	new_id		bigint;
BEGIN
	IF ack.alert_id IS NULL THEN
		RAISE EXCEPTION 'alert_id must not be null'
			USING ERRCODE = 'null_value_not_allowed',
				  HINT = 'Pass the alert_id of a row in access_audit.alerts.';
	END IF;
	/* Lock the alert so it cannot vanish between the check and the insert. */
	PERFORM 1 FROM access_audit.alerts al WHERE al.alert_id = ack.alert_id FOR KEY SHARE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'alert % does not exist', ack.alert_id
			USING ERRCODE = 'no_data_found',
				  HINT = 'See access_audit.alerts_open for the alerts waiting for an acknowledgement.';
	END IF;
	INSERT INTO access_audit.alert_acks (alert_id, acked_by, note)
	VALUES (ack.alert_id, session_user, ack.note)
	RETURNING ack_id INTO new_id;
	RETURN new_id;
END
$fn$;

COMMENT ON FUNCTION access_audit.ack(bigint, text) IS
'Acknowledges an alert: appends a row to access_audit.alert_acks (acked_by = session user) and returns its ack_id. Alerts are never updated. Raises an error if the alert does not exist.';

/*
 * daily_exports: the roll-up summed over relations, one row per actor and
 * day.  volume sums greatest(rows, tagged_rows) per relation, as
 * rank_exporters does.
 */
CREATE VIEW access_audit.daily_exports AS
SELECT d.day, d.actor,
	   sum(d.rows)::bigint AS rows,
	   sum(d.tagged_rows)::bigint AS tagged_rows,
	   sum(greatest(d.rows, d.tagged_rows))::bigint AS volume,
	   sum(d.statements)::bigint AS statements,
	   sum(d.off_hours_rows)::bigint AS off_hours_rows,
	   count(*)::int AS relations
  FROM access_audit.actor_daily d
 GROUP BY d.day, d.actor;

COMMENT ON VIEW access_audit.daily_exports IS
'Per actor and business day: rows, tagged rows, volume (sum of greatest(rows, tagged_rows) per relation), statements, off-hours rows and the number of relations read.';

/*
 * alerts_open: alerts without any acknowledgement.  latest_score and
 * latest_reason come from the actor's most recent open alert, so a reviewer
 * looking at an old alert sees where the actor stands now.
 */
CREATE VIEW access_audit.alerts_open AS
SELECT a.alert_id, a.raised_at, a.actor, a.window_start, a.window_end,
	   a.score, a.reason, a.detail,
	   count(*) OVER (PARTITION BY a.actor) AS open_alerts,
	   first_value(a.score) OVER latest AS latest_score,
	   first_value(a.reason) OVER latest AS latest_reason
  FROM access_audit.alerts a
 WHERE NOT EXISTS (SELECT 1 FROM access_audit.alert_acks k WHERE k.alert_id = a.alert_id)
WINDOW latest AS (PARTITION BY a.actor ORDER BY a.window_end DESC, a.raised_at DESC, a.alert_id DESC);

COMMENT ON VIEW access_audit.alerts_open IS
'Alerts without an acknowledgement, with the count of open alerts for the actor and the score and reason of their latest one.';

/*
 * Privileges: rank_exporters runs with the caller's rights on the source.
 * check_exports and ack run as the owner; only the extension's roles may
 * call them (the roles exist when the main script created them).
 */
REVOKE ALL ON FUNCTION access_audit.check_exports(float8, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION access_audit.ack(bigint, text) FROM PUBLIC;
DO $do$
BEGIN
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_admin') THEN
		GRANT EXECUTE ON FUNCTION access_audit.check_exports(float8, interval) TO access_audit_admin;
		GRANT EXECUTE ON FUNCTION access_audit.ack(bigint, text) TO access_audit_admin;
	END IF;
	IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'access_audit_reader') THEN
		GRANT SELECT ON access_audit.daily_exports, access_audit.alerts_open TO access_audit_reader;
	END IF;
END
$do$;
-- ---------------------------------------------------------------------------
-- Beyond one server (extension/remote.c).
--
-- Hot standbys: a standby's writer ships its records to the primary's
-- access_audit.ingest(), callable by members of access_audit_ingest; they
-- are chained on the primary like local records and keep their origin.
--
-- Central collection: each source publishes its log, dictionaries and
-- retention checkpoints (access_audit.publication_tables()); a central
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
LANGUAGE sql IMMUTABLE
RETURN 'access_audit.log_data, access_audit.sessions, access_audit.shapes, access_audit.strings, '
       'access_audit.string_sets, access_audit.chain_checkpoints';
COMMENT ON FUNCTION access_audit.publication_tables() IS
    'The tables a source publishes to a central audit server: CREATE PUBLICATION ... FOR TABLE <these> WITH (publish = ''insert'').';

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
    IF TG_TABLE_NAME = 'log_data' THEN
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
    h0 int := current_setting('access_audit.business_hours_start')::int;
    h1 int := current_setting('access_audit.business_hours_end')::int;
    r record;
    cut bigint;
    upto bigint;
    n bigint;
    total bigint := 0;
BEGIN
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
        SELECT (c.ts AT TIME ZONE tz)::date, a.value, r.source || ':' || rel.name,
               sum(c.rows), sum(c.tagged_rows), count(*),
               sum(CASE WHEN extract(isodow FROM c.ts AT TIME ZONE tz) >= 6
                          OR extract(hour FROM c.ts AT TIME ZONE tz) < h0
                          OR extract(hour FROM c.ts AT TIME ZONE tz) >= h1
                        THEN greatest(c.rows, c.tagged_rows) ELSE 0 END)
          FROM access_audit.collected_log c
          JOIN access_audit.collected_sessions se ON se.source = c.source AND se.id = c.session_id
          JOIN access_audit.collected_shapes sh ON sh.source = c.source AND sh.id = c.shape_id
          JOIN access_audit.collected_strings a ON a.source = c.source AND a.id = se.actor_id
          JOIN access_audit.collected_strings k ON k.source = c.source AND k.id = sh.command_id
          JOIN access_audit.collected_string_sets rs ON rs.source = c.source AND rs.id = sh.relations_id
         CROSS JOIN LATERAL unnest(rs.value) AS rel(name)
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
-- ---------------------------------------------------------------------------
-- Append-only guard (extension/guard.c) and retention.
--
-- The hooks in guard.c refuse INSERT (from anyone but the writer), UPDATE,
-- DELETE, TRUNCATE, ALTER and DROP of everything in schema access_audit,
-- for owners and superusers too, outside maintenance mode; the rows of
-- actor_groups are ordinary data.  The triggers below are the second line:
-- statement-level, ENABLE ALWAYS so that session_replication_role = replica
-- does not silence them, and they catch COPY FROM as well.  This part runs
-- last, so that the triggers go on every table of the schema, the same
-- rule the hooks apply.
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._guard_trigger()
RETURNS trigger
AS 'MODULE_PATHNAME', 'access_audit_guard_trigger'
LANGUAGE C;
REVOKE ALL ON FUNCTION access_audit._guard_trigger() FROM PUBLIC;
COMMENT ON FUNCTION access_audit._guard_trigger() IS
    'Refuses writes to the audit tables outside maintenance mode (see access_audit.maintenance).';

DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_catalog.pg_class c
              WHERE c.relnamespace = 'access_audit'::regnamespace AND c.relkind = 'r'
                AND c.relname <> 'actor_groups'
              ORDER BY c.relname
    LOOP
        EXECUTE format('CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE '
                       'ON access_audit.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION access_audit._guard_trigger()', t);
        EXECUTE format('ALTER TABLE access_audit.%I ENABLE ALWAYS TRIGGER guard', t);
    END LOOP;
END
$$;

-- ---------------------------------------------------------------------------
-- Retention: access_audit.drop_before(ts)
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit.drop_before(ts timestamptz)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    cut_seq  bigint;
    cut_hash bytea;
    first_kept bigint;
    v record;
    n bigint;
BEGIN
    IF ts IS NULL THEN
        RAISE EXCEPTION 'cut-off time must not be null'
            USING ERRCODE = 'null_value_not_allowed',
                  HINT = 'Pass the time before which whole records are removed, for example now() - interval ''1 year''.';
    END IF;
    IF ts > pg_catalog.clock_timestamp() THEN
        RAISE EXCEPTION 'cut-off time % is in the future', ts
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a time in the past; retention never removes records newer than it.';
    END IF;
    IF NOT pg_catalog.current_setting('access_audit.maintenance')::boolean THEN
        RAISE EXCEPTION 'access_audit.drop_before() requires maintenance mode'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'A superuser may SET access_audit.maintenance = on first; that is recorded.';
    END IF;
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RAISE EXCEPTION 'access_audit.drop_before() requires a superuser'
            USING ERRCODE = 'insufficient_privilege';
    END IF;

    -- one retention at a time; the writer only appends above the cut
    LOCK TABLE access_audit.chain_checkpoints IN SHARE ROW EXCLUSIVE MODE;

    -- cut after the longest prefix, in seq order, of records older than ts
    SELECT min(d.seq) INTO first_kept FROM access_audit.log_data d WHERE d.ts >= drop_before.ts;
    IF first_kept IS NULL THEN
        SELECT max(d.seq) INTO cut_seq FROM access_audit.log_data d;
    ELSE
        SELECT max(d.seq) INTO cut_seq FROM access_audit.log_data d WHERE d.seq < first_kept;
    END IF;
    IF cut_seq IS NULL THEN
        RETURN 0;
    END IF;

    -- never launder tampering: what is removed must verify first
    v := access_audit.verify(NULL, cut_seq);
    IF NOT v.ok THEN
        RAISE EXCEPTION 'the records to be removed do not verify: %', v.detail
            USING ERRCODE = 'data_corrupted',
                  DETAIL = format('The first bad record is seq %s.', v.first_bad_seq),
                  HINT = 'Investigate with access_audit.verify(); a repair in maintenance mode must come first.';
    END IF;

    SELECT d.hash INTO cut_hash FROM access_audit.log_data d WHERE d.seq = cut_seq;
    INSERT INTO access_audit.chain_checkpoints (seq, hash, cut_before)
    VALUES (cut_seq, cut_hash, drop_before.ts)
    ON CONFLICT (seq) DO UPDATE SET cut_before = excluded.cut_before, cut_at = excluded.cut_at;
    DELETE FROM access_audit.log_data d WHERE d.seq <= cut_seq;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;
COMMENT ON FUNCTION access_audit.drop_before(timestamptz) IS
    'Retention (maintenance mode, superuser): removes the oldest whole records, in seq order, that are older than ts, after verifying them, and keeps the seq and hash of the last one removed in access_audit.chain_checkpoints so that verify() passes over what remains. Returns the number of records removed.';
REVOKE ALL ON FUNCTION access_audit.drop_before(timestamptz) FROM PUBLIC;

COMMENT ON TABLE access_audit.chain_checkpoints IS
    'Retention cut points: the seq and hash of the last record removed by drop_before(); verify() continues the chain from them.';
