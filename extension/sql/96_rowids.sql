-- ---------------------------------------------------------------------------
-- Breach scoping: row identities (extension/rowids.c, docs/breach.md).
--
-- For tables an admin marks with track_rows(), each read record also keeps
-- the keys of the tagged rows it read (the primary key or a chosen unique
-- column).  Integer keys are kept as they are; text, varchar and uuid keys
-- as a keyed 64-bit hash (HMAC-SHA256 truncated, key in row_key), so the
-- log is no second copy of the data.  Capture sends the keys of a
-- statement as chunks of a sorted, run-length and delta encoded set; the
-- writer stores them in row_sets, chained, and links the read record to
-- them in row_set_reads.  This part runs after the guard's (90): its
-- chained tables get their guard triggers here, the same on install and on
-- update from 1.0.
-- ---------------------------------------------------------------------------

-- Tables whose reads keep row identities (admins edit them with track_rows()).
CREATE TABLE access_audit.row_identities (
    rel        regclass PRIMARY KEY,
    relation   text NOT NULL,
    key_column name NOT NULL,
    set_by     name NOT NULL DEFAULT session_user,
    set_at     timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE access_audit.row_identities IS
'Tables whose read records keep the keys of the rows read (access_audit.track_rows()); relation is the table''s name when tracking began (as row_sets name it); key_column is the primary key or a unique column of type smallint, integer, bigint, uuid, text or varchar.';

-- The key of the keyed hash of text and uuid row keys: one row, made by the
-- first track_rows().  No role the extension watches can read it.
CREATE TABLE access_audit.row_key (
    id  int PRIMARY KEY CHECK (id = 1),
    k   bytea NOT NULL CHECK (pg_catalog.length(k) = 32),
    made_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE access_audit.row_key IS
'The secret of the keyed hash (HMAC-SHA256, first 8 bytes) that text and uuid row keys are kept as; dumped with the log, so that a restored log answers who_read() too.';

-- One chunk of the row set of one read record, per relation: keys lo .. hi,
-- n of them, encoded in data (see rowids.c).  link ties it to its record
-- (row_set_reads).  hash chains the rows in id order.
CREATE TABLE access_audit.row_sets (
    id       bigint PRIMARY KEY,
    link     bigint NOT NULL,
    relation text NOT NULL,
    chunk    int NOT NULL,
    lo       bigint NOT NULL,
    hi       bigint NOT NULL,
    n        int NOT NULL,
    data     bytea NOT NULL,
    hash     bytea NOT NULL
);
CREATE INDEX row_sets_link ON access_audit.row_sets (link);
CREATE INDEX row_sets_range ON access_audit.row_sets USING gist (pg_catalog.int8range(lo, hi, '[]'));
COMMENT ON TABLE access_audit.row_sets IS
'Row identities read: chunk of the set of keys of relation that the record linked by link read.  hash = sha256(previous row''s hash || id || link || relation || 0 || chunk || lo || hi || n || data), integers in network byte order.';

-- Which read record a row set belongs to.  hash = sha256(the record's hash
-- in the log || link), followed by a byte 1 if the set is incomplete: the
-- link cannot be moved to another record, nor the mark removed.
-- incomplete: a chunk of the set was left out (its backend was cancelled
-- while waiting for room in a full queue).
CREATE TABLE access_audit.row_set_reads (
    seq   bigint PRIMARY KEY,
    link  bigint NOT NULL,
    hash  bytea NOT NULL,
    incomplete boolean NOT NULL DEFAULT false
);
CREATE INDEX row_set_reads_link ON access_audit.row_set_reads (link);
CREATE INDEX row_set_reads_incomplete ON access_audit.row_set_reads (seq) WHERE incomplete;
COMMENT ON TABLE access_audit.row_set_reads IS
'The read record (seq) whose row identities are the row_sets rows with this link; incomplete: some of them were left out (a cancelled backend, full queue).';

-- A central server's copies of its sources' row identities: sources publish
-- row_sets, row_set_reads and row_key (publication_tables(), 30_remote.sql)
-- and the collect triggers below divert the replicated rows here, keyed by
-- the source (the subscription's name), as collected_log is.  The sources'
-- secrets are readable by no role, as row_key is: who_read() hashes a key
-- with the secret of each source (rowids.c).
CREATE TABLE access_audit.collected_row_sets (
    source text NOT NULL,
    LIKE access_audit.row_sets,
    CONSTRAINT collected_row_sets_pkey PRIMARY KEY (source, id)
);
CREATE INDEX collected_row_sets_link ON access_audit.collected_row_sets (source, link);
CREATE INDEX collected_row_sets_range ON access_audit.collected_row_sets
    USING gist (pg_catalog.int8range(lo, hi, '[]'));
COMMENT ON TABLE access_audit.collected_row_sets IS
'Row sets collected from other servers by logical replication, each on its source''s chain (verify_rows(source)).';

CREATE TABLE access_audit.collected_row_set_reads (
    source text NOT NULL,
    LIKE access_audit.row_set_reads,
    CONSTRAINT collected_row_set_reads_pkey PRIMARY KEY (source, seq)
);
CREATE INDEX collected_row_set_reads_link ON access_audit.collected_row_set_reads (source, link);
CREATE INDEX collected_row_set_reads_incomplete ON access_audit.collected_row_set_reads (source, seq)
    WHERE incomplete;
COMMENT ON TABLE access_audit.collected_row_set_reads IS
'Links of collected records (collected_log) to their collected row sets.';

CREATE TABLE access_audit.collected_row_keys (
    source text NOT NULL,
    LIKE access_audit.row_key,
    CONSTRAINT collected_row_keys_pkey PRIMARY KEY (source, id)
);
COMMENT ON TABLE access_audit.collected_row_keys IS
'The secret each source hashes its text and uuid row keys with, so that who_read() answers for them here.';

SELECT pg_catalog.pg_extension_config_dump('access_audit.row_identities', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.row_key', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.row_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.row_set_reads', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_row_sets', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_row_set_reads', '');
SELECT pg_catalog.pg_extension_config_dump('access_audit.collected_row_keys', '');

REVOKE ALL ON access_audit.row_identities, access_audit.row_key,
    access_audit.row_sets, access_audit.row_set_reads, access_audit.collected_row_sets,
    access_audit.collected_row_set_reads, access_audit.collected_row_keys FROM PUBLIC;
GRANT SELECT ON access_audit.row_identities, access_audit.row_sets,
    access_audit.row_set_reads, access_audit.collected_row_sets,
    access_audit.collected_row_set_reads TO access_audit_reader, access_audit_admin;

-- the chained tables are guarded like the log (see 90_guard.sql)
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['row_sets', 'row_set_reads', 'collected_row_sets',
                             'collected_row_set_reads', 'collected_row_keys']
    LOOP
        EXECUTE format('CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE '
                       'ON access_audit.%I FOR EACH STATEMENT '
                       'EXECUTE FUNCTION access_audit._guard_trigger()', t);
        EXECUTE format('ALTER TABLE access_audit.%I ENABLE ALWAYS TRIGGER guard', t);
    END LOOP;
END
$$;

-- The hash of a row of row_sets after prev (see the table's comment).
CREATE FUNCTION access_audit._row_set_hash(prev bytea, id bigint, link bigint, relation text,
                                           chunk int, lo bigint, hi bigint, n int, data bytea)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.sha256(prev || pg_catalog.int8send(id) || pg_catalog.int8send(link)
    || pg_catalog.convert_to(relation, 'UTF8') || '\x00'::bytea || pg_catalog.int4send(chunk)
    || pg_catalog.int8send(lo) || pg_catalog.int8send(hi) || pg_catalog.int4send(n) || data);
REVOKE ALL ON FUNCTION access_audit._row_set_hash(bytea, bigint, bigint, text, int, bigint,
    bigint, int, bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._row_set_hash(bytea, bigint, bigint, text, int, bigint,
    bigint, int, bytea) TO access_audit_reader, access_audit_admin;

-- The hash of a row of row_set_reads (see the table's comment).
CREATE FUNCTION access_audit._row_link_hash(record_hash bytea, link bigint, incomplete boolean)
RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
RETURN pg_catalog.sha256(record_hash || pg_catalog.int8send(link)
    || CASE WHEN incomplete THEN '\x01'::bytea ELSE '\x'::bytea END);
REVOKE ALL ON FUNCTION access_audit._row_link_hash(bytea, bigint, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._row_link_hash(bytea, bigint, boolean)
    TO access_audit_reader, access_audit_admin;

-- Divert a replicated row of row_sets, row_set_reads or row_key into its
-- collected_* twin (ENABLE REPLICA, like _collect_row() in 30_remote.sql).
-- A chunk that does not follow from the source's chunk before it, and a
-- link that does not belong to its collected record, are refused: not
-- stored, recorded (REFUSED), and verify_rows(source) names the gap.  What
-- arrives before its predecessor (a subscription's first copy) is checked
-- by verify_rows(source).
CREATE FUNCTION access_audit._collect_row_ids()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    src text := access_audit._collect_source();
    prev bytea;
    why text;
BEGIN
    IF TG_OP <> 'INSERT' THEN
        RETURN NULL;
    END IF;
    IF TG_TABLE_NAME = 'row_sets' THEN
        IF NEW.id = 1 THEN
            prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        ELSE
            SELECT c.hash INTO prev FROM access_audit.collected_row_sets c
             WHERE c.source = src AND c.id = NEW.id - 1;
        END IF;
        IF prev IS NOT NULL AND NEW.hash IS DISTINCT FROM access_audit._row_set_hash(
                prev, NEW.id, NEW.link, NEW.relation, NEW.chunk, NEW.lo, NEW.hi, NEW.n, NEW.data) THEN
            why := format('row set %s does not match its hash', NEW.id);
        ELSE
            INSERT INTO access_audit.collected_row_sets SELECT src, (NEW).* ON CONFLICT DO NOTHING;
        END IF;
    ELSIF TG_TABLE_NAME = 'row_set_reads' THEN
        SELECT c.hash INTO prev FROM access_audit.collected_log c
         WHERE c.source = src AND c.seq = NEW.seq;
        IF prev IS NOT NULL AND NEW.hash IS DISTINCT FROM access_audit._row_link_hash(prev, NEW.link, NEW.incomplete) THEN
            why := format('the row set link of record %s does not match the record', NEW.seq);
        ELSE
            INSERT INTO access_audit.collected_row_set_reads SELECT src, (NEW).* ON CONFLICT DO NOTHING;
        END IF;
    ELSIF TG_TABLE_NAME = 'row_key' THEN
        INSERT INTO access_audit.collected_row_keys SELECT src, (NEW).* ON CONFLICT DO NOTHING;
    END IF;
    IF why IS NOT NULL THEN
        PERFORM access_audit._quota_event('REFUSED', jsonb_build_object(
            'action', 'COLLECT', 'source', src, 'table', 'access_audit.' || TG_TABLE_NAME,
            'why', why)::text);
        RAISE WARNING 'access_audit refused a row of access_audit.% collected from source "%": %',
            TG_TABLE_NAME, src, why;
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION access_audit._collect_row_ids() FROM PUBLIC;

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['row_sets', 'row_set_reads', 'row_key']
    LOOP
        EXECUTE format('CREATE TRIGGER collect BEFORE INSERT OR UPDATE OR DELETE '
                       'ON access_audit.%I FOR EACH ROW '
                       'EXECUTE FUNCTION access_audit._collect_row_ids()', t);
        EXECUTE format('ALTER TABLE access_audit.%I ENABLE REPLICA TRIGGER collect', t);
    END LOOP;
END
$$;

-- Retention (drop_before() in 90_guard.sql): the links of the records up
-- to cut_seq, and the longest prefix (by id) of row_sets that holds only
-- chunks of removed records, so that what is kept still verifies.  Chunks
-- of removed records after that prefix stay, unreachable.
CREATE FUNCTION access_audit._row_sets_cut(cut_seq bigint)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    first_kept bigint;
BEGIN
    SELECT min(s.id) INTO first_kept
      FROM access_audit.row_sets s
     WHERE NOT EXISTS (SELECT 1 FROM access_audit.row_set_reads r
                        WHERE r.link = s.link AND r.seq <= cut_seq);
    DELETE FROM access_audit.row_sets s
     WHERE first_kept IS NULL OR s.id < first_kept;
    DELETE FROM access_audit.row_set_reads r WHERE r.seq <= cut_seq;
END
$$;
REVOKE ALL ON FUNCTION access_audit._row_sets_cut(bigint) FROM PUBLIC;

-- The key's value for _row_relation(tbl) here (source null) and as a
-- source collected here keeps it (its own secret for hashed keys); null if
-- hashed keys have no secret there.
CREATE FUNCTION access_audit._row_key_value(tbl regclass, key text, source text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_row_key_value'
LANGUAGE C STABLE;

-- C helpers
CREATE FUNCTION access_audit._row_set_keys(data bytea, lo bigint)
RETURNS SETOF bigint
AS 'MODULE_PATHNAME', 'access_audit_row_set_keys'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION access_audit._row_set_has(data bytea, lo bigint, key bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'access_audit_row_set_has'
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE;

-- The key a row of tbl is kept as, from its key value written as text.
CREATE FUNCTION access_audit.row_key_of(tbl regclass, key text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_row_key_of'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION access_audit.row_key_of(regclass, text) IS
    'The identity a row of a tracked table is kept as: the key itself for integer keys, the keyed hash for text, varchar and uuid keys.';

-- The keyed hash of a text or uuid key, to join kept identities back to a
-- table: WHERE access_audit.row_key_hash(c.email) IN (...).
CREATE FUNCTION access_audit.row_key_hash(key text)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_row_key_hash_text'
LANGUAGE C STRICT STABLE;
CREATE FUNCTION access_audit.row_key_hash(key uuid)
RETURNS bigint
AS 'MODULE_PATHNAME', 'access_audit_row_key_hash_uuid'
LANGUAGE C STRICT STABLE;
COMMENT ON FUNCTION access_audit.row_key_hash(text) IS
    'The keyed hash a text or varchar row key is kept as (join the sets of rows_read() back to the table with it).';
COMMENT ON FUNCTION access_audit.row_key_hash(uuid) IS
    'The keyed hash a uuid row key is kept as (join the sets of rows_read() back to the table with it).';

-- The name row sets know a relation by (as the log's relations column).
CREATE FUNCTION access_audit._row_relation(tbl regclass)
RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = tbl
$$;

-- Every change to the tracked tables is recorded and reaches every
-- backend's cache at commit.
CREATE FUNCTION access_audit._row_identities_changed()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF TG_TABLE_NAME = 'row_identities' THEN
        PERFORM access_audit._quota_event(
            'ROW IDENTITY ' || TG_OP,
            pg_catalog.jsonb_build_object(
                'old', CASE WHEN TG_OP <> 'INSERT' THEN pg_catalog.jsonb_build_object(
                    'relation', OLD.relation, 'key_column', OLD.key_column) END,
                'new', CASE WHEN TG_OP <> 'DELETE' THEN pg_catalog.jsonb_build_object(
                    'relation', NEW.relation, 'key_column', NEW.key_column) END)::text);
    ELSE
        PERFORM access_audit._quota_event('ROW KEY ' || TG_OP, NULL);
    END IF;
    PERFORM access_audit._tags_changed();
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION access_audit._row_identities_changed() FROM PUBLIC;
CREATE TRIGGER row_identities_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.row_identities
    FOR EACH ROW EXECUTE FUNCTION access_audit._row_identities_changed();
CREATE TRIGGER row_identities_changed AFTER INSERT OR UPDATE OR DELETE ON access_audit.row_key
    FOR EACH ROW EXECUTE FUNCTION access_audit._row_identities_changed();
ALTER TABLE access_audit.row_identities ENABLE ALWAYS TRIGGER row_identities_changed;
ALTER TABLE access_audit.row_key ENABLE ALWAYS TRIGGER row_identities_changed;

-- A dropped table stops being tracked (its row would otherwise name an OID
-- that a restore could give to another table).
CREATE FUNCTION access_audit._row_identities_dropped()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM access_audit.row_identities r
     WHERE r.rel::oid IN (SELECT o.objid FROM pg_catalog.pg_event_trigger_dropped_objects() o
                           WHERE o.classid = 'pg_catalog.pg_class'::regclass AND o.objsubid = 0);
END
$$;
REVOKE ALL ON FUNCTION access_audit._row_identities_dropped() FROM PUBLIC;
CREATE EVENT TRIGGER access_audit_row_identities_dropped ON sql_drop
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION access_audit._row_identities_dropped();

-- track_rows: reads of tbl keep the identities of the rows read.
CREATE FUNCTION access_audit.track_rows(tbl regclass, key_column name DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    col name := key_column;
    typ regtype;
    uniq boolean;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'table must not be null'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'relation "%" is not a table', tbl
            USING ERRCODE = 'wrong_object_type',
                  HINT = 'Row identities are kept for tables and partitioned tables.';
    END IF;
    IF col IS NULL THEN
        SELECT a.attname INTO col
          FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
         WHERE i.indrelid = tbl AND i.indisprimary AND i.indnatts = 1;
        IF col IS NULL THEN
            RAISE EXCEPTION 'table "%" has no single-column primary key', tbl
                USING ERRCODE = 'invalid_table_definition',
                      HINT = 'Name a unique column: access_audit.track_rows(table, key_column).';
        END IF;
    END IF;
    SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
     WHERE a.attrelid = tbl AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
    IF typ IS NULL THEN
        RAISE EXCEPTION 'column "%" of relation "%" does not exist', col, tbl
            USING ERRCODE = 'undefined_column';
    END IF;
    IF typ NOT IN ('smallint', 'integer', 'bigint', 'uuid', 'text', 'character varying') THEN
        RAISE EXCEPTION 'column "%" of relation "%" has type %, which row identities do not support', col, tbl, typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Choose a key column of type smallint, integer, bigint, uuid, text or varchar.';
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                    WHERE i.indrelid = tbl AND i.indisunique AND i.indnatts = 1 AND a.attname = col
                      AND i.indpred IS NULL)
      INTO uniq;
    IF NOT uniq THEN
        RAISE WARNING 'column "%" of relation "%" is not unique: a kept identity may stand for several rows', col, tbl;
    END IF;
    IF typ IN ('uuid', 'text', 'character varying') THEN
        INSERT INTO access_audit.row_key (id, k)
        SELECT 1, pg_catalog.sha256(pg_catalog.convert_to(
                   pg_catalog.gen_random_uuid()::text || pg_catalog.gen_random_uuid()::text ||
                   pg_catalog.clock_timestamp()::text, 'UTF8'))
        WHERE NOT EXISTS (SELECT 1 FROM access_audit.row_key);
    END IF;
    INSERT INTO access_audit.row_identities AS r (rel, relation, key_column)
    VALUES (tbl, access_audit._row_relation(tbl), col)
    ON CONFLICT (rel) DO UPDATE SET key_column = excluded.key_column, relation = excluded.relation,
                                    set_by = session_user, set_at = now()
    WHERE r.key_column IS DISTINCT FROM excluded.key_column OR r.relation IS DISTINCT FROM excluded.relation;
END
$$;
COMMENT ON FUNCTION access_audit.track_rows(regclass, name) IS
    'Reads of tagged columns of tbl keep the identities of the rows read: key_column (default: the single-column primary key), of type smallint, integer, bigint, uuid, text or varchar.  Recorded.';

CREATE FUNCTION access_audit.untrack_rows(tbl regclass)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    DELETE FROM access_audit.row_identities r WHERE r.rel = tbl;
END
$$;
COMMENT ON FUNCTION access_audit.untrack_rows(regclass) IS
    'Reads of tbl no longer keep row identities (those kept stay).  Recorded.';

-- The sources a central server has collected row sets from.
CREATE FUNCTION access_audit._row_set_sources()
RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH RECURSIVE s(source) AS (
        SELECT min(c.source) FROM access_audit.collected_row_set_reads c
        UNION ALL
        SELECT (SELECT min(c.source) FROM access_audit.collected_row_set_reads c WHERE c.source > s.source)
          FROM s WHERE s.source IS NOT NULL
    )
    SELECT s.source FROM s WHERE s.source IS NOT NULL
$$;

-- who_read: every record whose row set holds the key, this server's own
-- (source null) and, on a central server, those collected from each source.
CREATE FUNCTION access_audit.who_read(tbl regclass, key text)
RETURNS TABLE (seq bigint, ts timestamptz, actor text, login_role name, effective_role name,
               client_addr inet, command text, outcome text, query text, source text,
               set_complete boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
-- a few index probes: the generic plan's estimate would make JIT compile it
SET jit = off
AS $$
    -- the records first (a few index probes), then each record from the log
    -- by its seq (OFFSET 0 keeps it a lookup: joined with the whole view,
    -- the planner would scan the view)
    WITH rel AS (SELECT access_audit._row_relation(tbl) AS name),
    -- the key as this server keeps it (source null) and as each source does
    ks AS (
        SELECT NULL::text AS source, access_audit._row_key_value(tbl, key, NULL) AS v
        UNION ALL
        SELECT c.source, access_audit._row_key_value(tbl, key, c.source)
          FROM access_audit._row_set_sources() AS c(source)
    ),
    -- a record whose set is incomplete may have read the key: it is listed
    -- whenever it read the relation, with set_complete false
    hits AS MATERIALIZED (
        SELECT m.seq, bool_and(m.complete) AS complete
          FROM (SELECT r.seq, NOT r.incomplete AS complete
                  FROM ks
                  JOIN rel ON true
                  JOIN access_audit.row_sets s
                    ON pg_catalog.int8range(s.lo, s.hi, '[]') @> ks.v AND s.relation = rel.name
                   AND access_audit._row_set_has(s.data, s.lo, ks.v)
                  JOIN access_audit.row_set_reads r ON r.link = s.link
                 WHERE ks.source IS NULL
                UNION ALL
                SELECT r.seq, false
                  FROM access_audit.row_set_reads r, rel
                 WHERE r.incomplete
                   AND EXISTS (SELECT 1 FROM access_audit.log l
                                WHERE l.seq = r.seq AND rel.name = ANY (l.relations))) m
         GROUP BY m.seq),
    collected_hits AS MATERIALIZED (
        SELECT m.source, m.seq, bool_and(m.complete) AS complete
          FROM (SELECT r.source, r.seq, NOT r.incomplete AS complete
                  FROM ks
                  JOIN rel ON true
                  JOIN access_audit.collected_row_sets s
                    ON pg_catalog.int8range(s.lo, s.hi, '[]') @> ks.v AND s.source = ks.source
                   AND s.relation = rel.name AND access_audit._row_set_has(s.data, s.lo, ks.v)
                  JOIN access_audit.collected_row_set_reads r
                    ON r.source = s.source AND r.link = s.link
                UNION ALL
                SELECT r.source, r.seq, false
                  FROM access_audit.collected_row_set_reads r, rel
                 WHERE r.incomplete
                   AND EXISTS (SELECT 1 FROM access_audit.collected c
                                WHERE c.source = r.source AND c.seq = r.seq
                                  AND rel.name = ANY (c.relations))) m
         GROUP BY m.source, m.seq)
    SELECT l.seq, l.ts, l.actor, l.login_role, l.effective_role, l.client_addr,
           l.command, l.outcome, l.query, NULL::text, h.complete
      FROM hits h
      CROSS JOIN LATERAL (SELECT * FROM access_audit.log l WHERE l.seq = h.seq OFFSET 0) l
    UNION ALL
    SELECT c.seq, c.ts, c.actor, c.login_role, c.effective_role, c.client_addr,
           c.command, c.outcome, c.query, c.source, h.complete
      FROM collected_hits h
      CROSS JOIN LATERAL (SELECT * FROM access_audit.collected c
                           WHERE c.source = h.source AND c.seq = h.seq OFFSET 0) c
     ORDER BY 10 NULLS FIRST, 1
$$;
CREATE FUNCTION access_audit.who_read(tbl regclass, key bigint)
RETURNS TABLE (seq bigint, ts timestamptz, actor text, login_role name, effective_role name,
               client_addr inet, command text, outcome text, query text, source text,
               set_complete boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM access_audit.who_read(tbl, key::text) $$;
CREATE FUNCTION access_audit.who_read(tbl regclass, key uuid)
RETURNS TABLE (seq bigint, ts timestamptz, actor text, login_role name, effective_role name,
               client_addr inet, command text, outcome text, query text, source text,
               set_complete boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM access_audit.who_read(tbl, key::text) $$;
COMMENT ON FUNCTION access_audit.who_read(regclass, text) IS
    'Every read record whose kept row identities hold this key of tbl (a tracked table): who read the row, when, with what statement, and whether it succeeded; on a central server also the records collected from each source (source; null for this server''s own).  set_complete is false when part of the record''s set was left out (its backend was cancelled while the queue was full): the record may have read the row even if it is not listed.';

-- The keys one record read, per relation (source: a central server's).
CREATE FUNCTION access_audit.rows_read(seq bigint, source text DEFAULT NULL)
RETURNS TABLE (relation text, key bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT DISTINCT s.relation, k.key
      FROM access_audit.row_set_reads r
      JOIN access_audit.row_sets s ON s.link = r.link
      CROSS JOIN LATERAL access_audit._row_set_keys(s.data, s.lo) AS k(key)
     WHERE r.seq = rows_read.seq AND rows_read.source IS NULL
    UNION
    SELECT s.relation, k.key
      FROM access_audit.collected_row_set_reads r
      JOIN access_audit.collected_row_sets s ON s.source = r.source AND s.link = r.link
      CROSS JOIN LATERAL access_audit._row_set_keys(s.data, s.lo) AS k(key)
     WHERE r.source = rows_read.source AND r.seq = rows_read.seq
     ORDER BY 1, 2
$$;
COMMENT ON FUNCTION access_audit.rows_read(bigint, text) IS
    'The row identities record seq (of this server, or collected from source) kept, per relation: keys of integer-keyed tables, keyed hashes (access_audit.row_key_hash()) of the others.';

-- The keys one actor read over a period (records with ts in [from, to)),
-- here (source null) and on each source collected here.
CREATE FUNCTION access_audit.rows_read_by(actor text, since timestamptz, until timestamptz)
RETURNS TABLE (relation text, key bigint, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.relation, k.key, NULL::text
      FROM access_audit.log l
      JOIN access_audit.row_set_reads r ON r.seq = l.seq
      JOIN access_audit.row_sets s ON s.link = r.link
      CROSS JOIN LATERAL access_audit._row_set_keys(s.data, s.lo) AS k(key)
     WHERE l.actor = rows_read_by.actor AND l.ts >= since AND l.ts < until
    UNION
    SELECT s.relation, k.key, c.source
      FROM access_audit.collected c
      JOIN access_audit.collected_row_set_reads r ON r.source = c.source AND r.seq = c.seq
      JOIN access_audit.collected_row_sets s ON s.source = r.source AND s.link = r.link
      CROSS JOIN LATERAL access_audit._row_set_keys(s.data, s.lo) AS k(key)
     WHERE c.actor = rows_read_by.actor AND c.ts >= since AND c.ts < until
     ORDER BY 3 NULLS FIRST, 1, 2
$$;
COMMENT ON FUNCTION access_audit.rows_read_by(text, timestamptz, timestamptz) IS
    'Every row identity the actor''s records with ts in [since, until) kept, once, per relation and source (null: this server''s own records).';

-- Counts per table: distinct rows and records of an actor over a period.
CREATE FUNCTION access_audit.rows_read_counts(actor text, since timestamptz, until timestamptz)
RETURNS TABLE (relation text, distinct_rows bigint, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT b.relation, count(*), b.source
      FROM access_audit.rows_read_by(actor, since, until) b
     GROUP BY b.source, b.relation
     ORDER BY b.source NULLS FIRST, b.relation
$$;
COMMENT ON FUNCTION access_audit.rows_read_counts(text, timestamptz, timestamptz) IS
    'Per relation and source, how many distinct rows the actor''s records with ts in [since, until) read.';

-- The rows both actors read over a period (the same source's rows).
CREATE FUNCTION access_audit.overlap(actor_a text, actor_b text, since timestamptz, until timestamptz)
RETURNS TABLE (relation text, key bigint, source text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.relation, a.key, a.source FROM access_audit.rows_read_by(actor_a, since, until) a
    INTERSECT
    SELECT b.relation, b.key, b.source FROM access_audit.rows_read_by(actor_b, since, until) b
    ORDER BY 3 NULLS FIRST, 1, 2
$$;
COMMENT ON FUNCTION access_audit.overlap(text, text, timestamptz, timestamptz) IS
    'The row identities both actors read in [since, until), per relation and source.';

-- verify_rows: the row sets' chain and their links to the log.
-- _verify_row_sets: the chain alone (a restore checks it as row_sets, or
-- collected_row_sets for each source, loads).
CREATE FUNCTION access_audit._verify_row_sets(source text DEFAULT NULL, OUT ok boolean,
                                              OUT checked bigint, OUT first_bad_id bigint,
                                              OUT detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    prev bytea := NULL;
    last_id bigint;
    r record;
    cur refcursor;
BEGIN
    ok := true;
    checked := 0;
    -- retention removes a prefix (by id): the first row kept starts the walk
    IF source IS NULL THEN
        OPEN cur FOR SELECT s.id, s.link, s.relation, s.chunk, s.lo, s.hi, s.n, s.data, s.hash
                       FROM access_audit.row_sets s ORDER BY s.id;
    ELSE
        OPEN cur FOR SELECT s.id, s.link, s.relation, s.chunk, s.lo, s.hi, s.n, s.data, s.hash
                       FROM access_audit.collected_row_sets s
                      WHERE s.source = _verify_row_sets.source ORDER BY s.id;
    END IF;
    LOOP
        FETCH cur INTO r;
        EXIT WHEN NOT FOUND;
        IF prev IS NOT NULL AND r.id <> last_id + 1 THEN
            ok := false;
            first_bad_id := last_id + 1;
            detail := format('row set %s is missing', last_id + 1);
            RETURN;
        END IF;
        IF prev IS NULL AND r.id = 1 THEN
            prev := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
        END IF;
        IF prev IS NOT NULL AND r.hash <> access_audit._row_set_hash(prev, r.id, r.link,
                r.relation, r.chunk, r.lo, r.hi, r.n, r.data) THEN
            ok := false;
            first_bad_id := r.id;
            detail := format('row set %s does not match its hash', r.id);
            RETURN;
        END IF;
        prev := r.hash;
        last_id := r.id;
        checked := checked + 1;
    END LOOP;
    CLOSE cur;
END
$$;
REVOKE ALL ON FUNCTION access_audit._verify_row_sets(text) FROM PUBLIC;

CREATE FUNCTION access_audit.verify_rows(source text DEFAULT NULL, OUT ok boolean,
                                         OUT checked bigint, OUT first_bad_id bigint,
                                         OUT detail text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF source IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM access_audit.collected_log c WHERE c.source = verify_rows.source) THEN
        RAISE EXCEPTION 'no records have been collected from source "%"', source
            USING ERRCODE = 'undefined_object',
                  HINT = 'The sources are listed in access_audit.sources.';
    END IF;
    SELECT v.ok, v.checked, v.first_bad_id, v.detail INTO ok, checked, first_bad_id, detail
      FROM access_audit._verify_row_sets(source) v;
    IF NOT ok THEN
        RETURN;
    END IF;
    IF source IS NULL THEN
        SELECT s.seq INTO first_bad_id
          FROM access_audit.row_set_reads s JOIN access_audit.log_data d ON d.seq = s.seq
         WHERE s.hash <> access_audit._row_link_hash(d.hash, s.link, s.incomplete)
         ORDER BY s.seq LIMIT 1;
    ELSE
        SELECT s.seq INTO first_bad_id
          FROM access_audit.collected_row_set_reads s
          JOIN access_audit.collected_log d ON d.source = s.source AND d.seq = s.seq
         WHERE s.source = verify_rows.source
           AND s.hash <> access_audit._row_link_hash(d.hash, s.link, s.incomplete)
         ORDER BY s.seq LIMIT 1;
    END IF;
    IF first_bad_id IS NOT NULL THEN
        ok := false;
        detail := format('the row set link of record %s does not match the record', first_bad_id);
    END IF;
END
$$;
COMMENT ON FUNCTION access_audit.verify_rows(text) IS
    'Checks the chain of access_audit.row_sets (from its first row kept) and that each row_set_reads link belongs to its record; with source, the same for the row sets a central server collected from that source.';

REVOKE ALL ON FUNCTION access_audit.track_rows(regclass, name), access_audit.untrack_rows(regclass),
    access_audit._row_set_keys(bytea, bigint), access_audit._row_set_has(bytea, bigint, bigint),
    access_audit.row_key_of(regclass, text), access_audit.row_key_hash(text),
    access_audit.row_key_hash(uuid), access_audit._row_relation(regclass),
    access_audit.who_read(regclass, text), access_audit.who_read(regclass, bigint),
    access_audit.who_read(regclass, uuid), access_audit.rows_read(bigint, text),
    access_audit._row_key_value(regclass, text, text), access_audit._row_set_sources(),
    access_audit.rows_read_by(text, timestamptz, timestamptz),
    access_audit.rows_read_counts(text, timestamptz, timestamptz),
    access_audit.overlap(text, text, timestamptz, timestamptz),
    access_audit.verify_rows(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit.track_rows(regclass, name), access_audit.untrack_rows(regclass)
    TO access_audit_admin;
GRANT EXECUTE ON FUNCTION
    access_audit._row_set_keys(bytea, bigint), access_audit._row_set_has(bytea, bigint, bigint),
    access_audit.row_key_of(regclass, text), access_audit.row_key_hash(text),
    access_audit.row_key_hash(uuid), access_audit._row_relation(regclass),
    access_audit.who_read(regclass, text), access_audit.who_read(regclass, bigint),
    access_audit.who_read(regclass, uuid), access_audit.rows_read(bigint, text),
    access_audit._row_key_value(regclass, text, text), access_audit._row_set_sources(),
    access_audit.rows_read_by(text, timestamptz, timestamptz),
    access_audit.rows_read_counts(text, timestamptz, timestamptz),
    access_audit.overlap(text, text, timestamptz, timestamptz),
    access_audit.verify_rows(text)
    TO access_audit_reader, access_audit_admin;
