-- ---------------------------------------------------------------------------
-- Append-only guard (extension/guard.c) and retention.
--
-- The hooks in guard.c refuse INSERT (from anyone but the writer), UPDATE,
-- DELETE, TRUNCATE, ALTER and DROP of everything in schema access_audit,
-- for owners and superusers too, outside maintenance mode; the rows of
-- actor_groups, ingest_sources, quotas and quota_exemptions are ordinary data (admins edit them).  The triggers below are the second line:
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
              WHERE c.relnamespace = 'access_audit'::regnamespace AND c.relkind IN ('r', 'p')
                AND c.relname NOT IN ('actor_groups', 'ingest_sources', 'quotas', 'quota_exemptions')
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
    p record;
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
    -- the row identities of the records removed (96_rowids.sql)
    PERFORM access_audit._row_sets_cut(cut_seq);

    -- whole partitions below the cut go at once; rows are deleted only in
    -- the partition the cut falls into (and the default partition)
    FOR p IN SELECT l.partition FROM access_audit._log_partitions() l
              WHERE l.end_seq OPERATOR(pg_catalog.<=) cut_seq + 1
              ORDER BY l.first_seq
    LOOP
        EXECUTE format('DROP TABLE %s', p.partition);
    END LOOP;
    DELETE FROM access_audit.log_data d WHERE d.seq <= cut_seq;
    -- verify() walked every record up to the cut: that many are removed
    RETURN v.checked;
END
$$;
COMMENT ON FUNCTION access_audit.drop_before(timestamptz) IS
    'Retention (maintenance mode, superuser): removes the oldest whole records, in seq order, that are older than ts, after verifying them, and keeps the seq and hash of the last one removed in access_audit.chain_checkpoints so that verify() passes over what remains. Returns the number of records removed.';
REVOKE ALL ON FUNCTION access_audit.drop_before(timestamptz) FROM PUBLIC;

COMMENT ON TABLE access_audit.chain_checkpoints IS
    'Retention cut points: the seq and hash of the last record removed by drop_before(); verify() continues the chain from them.';
