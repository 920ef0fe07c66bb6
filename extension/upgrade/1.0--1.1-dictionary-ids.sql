/* extension/upgrade/1.0--1.1-dictionary-ids.sql: the last part of access_audit--1.0--1.1.sql */

-- ---------------------------------------------------------------------------
-- writer (issue 16, items 8 and 9): dictionary ids are bigint, and so is every
-- column that refers to them, in this database's log and in the records
-- collected from other servers.  The views over these tables (access_audit.log
-- and the views built on it, access_audit.collected) cannot stay while their
-- columns change type: each is saved with its options, comment, privileges
-- and triggers, dropped, and made again from its saved definition, so that
-- whatever definition it has at this point of the update is kept.  The
-- dictionaries' sequences go: the writer gives a new entry one more than the
-- table's highest id, so there is nothing left for setval() to turn back.
-- ---------------------------------------------------------------------------
CREATE FUNCTION access_audit._partition_log_v1() RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $aa_part$
DECLARE
    lo bigint;
    hi bigint;
    old text;
    c record;
BEGIN
    SELECT pg_catalog.min(d.seq), pg_catalog.max(d.seq) INTO lo, hi FROM access_audit.log_data d;
    old := 'log_data_p' OPERATOR(pg_catalog.||) coalesce(lo, 1);
    EXECUTE pg_catalog.format('ALTER TABLE access_audit.log_data RENAME TO %I', old);
    EXECUTE pg_catalog.format('ALTER INDEX access_audit.log_data_pkey RENAME TO %I',
                              old OPERATOR(pg_catalog.||) '_pkey');
    -- the partitioned log's own (cloned) trigger replaces it
    EXECUTE pg_catalog.format('DROP TRIGGER collect ON access_audit.%I', old);

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
    -- PostgreSQL 18 names NOT NULL constraints, unique in the schema, and
    -- 1.0's collected_log (LIKE log_data) holds log_data's names: take them
    -- back, as a fresh install has them, before the default partition
    -- inherits them (nothing to do before 18)
    FOR c IN SELECT con.conname FROM pg_catalog.pg_constraint con
              WHERE con.conrelid OPERATOR(pg_catalog.=) 'access_audit.log_data'::pg_catalog.regclass
                AND con.contype OPERATOR(pg_catalog.=) 'n'
                AND con.conname OPERATOR(pg_catalog.~) '_not_null[0-9]+$' LOOP
        EXECUTE pg_catalog.format('ALTER TABLE access_audit.log_data RENAME CONSTRAINT %I TO %I', c.conname,
                                  pg_catalog.regexp_replace(c.conname, '[0-9]+$', ''));
    END LOOP;
    COMMENT ON TABLE access_audit.log_data IS
        'Compact storage of access_audit.log; query the view access_audit.log instead.';
    CREATE TABLE access_audit.log_data_default PARTITION OF access_audit.log_data DEFAULT;
    COMMENT ON TABLE access_audit.log_data_default IS
        'Records of access_audit.log_data that no seq range partition covered when they were stored; usually empty.';
    REVOKE ALL ON access_audit.log_data, access_audit.log_data_default FROM PUBLIC;
    GRANT SELECT ON access_audit.log_data TO access_audit_reader, access_audit_admin;
    CREATE TRIGGER collect BEFORE INSERT OR UPDATE OR DELETE ON access_audit.log_data
        FOR EACH ROW EXECUTE FUNCTION access_audit._collect_row();
    ALTER TABLE access_audit.log_data ENABLE REPLICA TRIGGER collect;
    CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON access_audit.log_data
        FOR EACH STATEMENT EXECUTE FUNCTION access_audit._guard_trigger();
    ALTER TABLE access_audit.log_data ENABLE ALWAYS TRIGGER guard;
    CREATE TRIGGER guard BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON access_audit.log_data_default
        FOR EACH STATEMENT EXECUTE FUNCTION access_audit._guard_trigger();
    ALTER TABLE access_audit.log_data_default ENABLE ALWAYS TRIGGER guard;

    IF lo IS NULL THEN
        EXECUTE pg_catalog.format('DROP TABLE access_audit.%I', old);
    ELSE
        EXECUTE pg_catalog.format('ALTER TABLE access_audit.log_data ATTACH PARTITION access_audit.%I '
                                  'FOR VALUES FROM (%s) TO (%s)', old, lo, hi OPERATOR(pg_catalog.+) 1);
        EXECUTE pg_catalog.format('ALTER EXTENSION access_audit DROP TABLE access_audit.%I', old);
    END IF;
    PERFORM pg_catalog.pg_extension_config_dump('access_audit.log_data', '');
    PERFORM pg_catalog.pg_extension_config_dump('access_audit.log_data_default', '');
END
$aa_part$;

CREATE TYPE access_audit._saved_view AS (name text, depth integer, def text, reloptions text[],
    comment text, relacl aclitem[], triggers text[], column_comments text[]);
DO LANGUAGE plpgsql $aa_ids$
DECLARE
    saved access_audit._saved_view[];
    v record;
    s text;
    g record;
BEGIN
    SELECT pg_catalog.array_agg(ROW(q.name, q.depth, q.def, q.reloptions, q.comment,
                                   q.relacl, q.triggers, q.column_comments)::access_audit._saved_view)
      INTO saved
      FROM (
        WITH RECURSIVE dep(oid, depth) AS (
            SELECT DISTINCT r.ev_class, 1
              FROM pg_catalog.pg_depend d
              JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
             WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
               AND d.refobjid OPERATOR(pg_catalog.=) ANY (ARRAY[
                       'access_audit.strings', 'access_audit.string_sets', 'access_audit.sessions',
                       'access_audit.shapes', 'access_audit.log_data', 'access_audit.collected_log',
                       'access_audit.collected_strings', 'access_audit.collected_string_sets',
                       'access_audit.collected_sessions', 'access_audit.collected_shapes'
                   ]::pg_catalog.regclass[]::pg_catalog.oid[])
               AND r.ev_class OPERATOR(pg_catalog.<>) d.refobjid
            UNION ALL
            SELECT r.ev_class, dep.depth OPERATOR(pg_catalog.+) 1
              FROM dep
              JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) dep.oid
               AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass
               AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
              JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid
             WHERE r.ev_class OPERATOR(pg_catalog.<>) dep.oid
        )
        SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS name,
               pg_catalog.max(dep.depth) AS depth,
               pg_catalog.pg_get_viewdef(c.oid) AS def,
               c.reloptions,
               pg_catalog.obj_description(c.oid, 'pg_class') AS comment,
               c.relacl,
               ARRAY(SELECT pg_catalog.pg_get_triggerdef(t.oid) FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND NOT t.tgisinternal
                      ORDER BY t.tgname) AS triggers,
               ARRAY(SELECT pg_catalog.format('COMMENT ON COLUMN %s.%I IS %L', c.oid::pg_catalog.regclass,
                                              a.attname, pg_catalog.col_description(c.oid, a.attnum))
                       FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attnum OPERATOR(pg_catalog.>) 0
                        AND pg_catalog.col_description(c.oid, a.attnum) IS NOT NULL) AS column_comments
          FROM dep JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) dep.oid
         WHERE c.relkind OPERATOR(pg_catalog.=) 'v'
         GROUP BY c.oid
      ) q;
    saved := coalesce(saved, '{}');

    FOR v IN SELECT * FROM pg_catalog.unnest(saved) AS x ORDER BY x.depth DESC, x.name LOOP
        EXECUTE pg_catalog.format('DROP VIEW %s', v.name);
    END LOOP;

    -- ids no longer come from sequences (issue 16, item 9)
    DROP SEQUENCE access_audit.strings_id_seq;
    DROP SEQUENCE access_audit.string_sets_id_seq;
    DROP SEQUENCE access_audit.sessions_id_seq;
    DROP SEQUENCE access_audit.shapes_id_seq;
    ALTER TABLE access_audit.strings ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.string_sets ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.sessions
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN database_id TYPE bigint,
        ALTER COLUMN login_role_id TYPE bigint,
        ALTER COLUMN effective_role_id TYPE bigint,
        ALTER COLUMN actor_id TYPE bigint,
        ALTER COLUMN claimed_actor_id TYPE bigint,
        ALTER COLUMN application_name_id TYPE bigint,
        ALTER COLUMN client_addr_id TYPE bigint;
    ALTER TABLE access_audit.shapes
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN query_text_id TYPE bigint,
        ALTER COLUMN command_id TYPE bigint,
        ALTER COLUMN relations_id TYPE bigint,
        ALTER COLUMN columns_id TYPE bigint,
        ALTER COLUMN predicate_columns_id TYPE bigint,
        ALTER COLUMN tags_id TYPE bigint;
    ALTER TABLE access_audit.log_data
        ALTER COLUMN session_id TYPE bigint,
        ALTER COLUMN shape_id TYPE bigint,
        ALTER COLUMN origin_id TYPE bigint;
    ALTER TABLE access_audit.collected_strings ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.collected_string_sets ALTER COLUMN id TYPE bigint;
    ALTER TABLE access_audit.collected_sessions
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN database_id TYPE bigint,
        ALTER COLUMN login_role_id TYPE bigint,
        ALTER COLUMN effective_role_id TYPE bigint,
        ALTER COLUMN actor_id TYPE bigint,
        ALTER COLUMN claimed_actor_id TYPE bigint,
        ALTER COLUMN application_name_id TYPE bigint,
        ALTER COLUMN client_addr_id TYPE bigint;
    ALTER TABLE access_audit.collected_shapes
        ALTER COLUMN id TYPE bigint,
        ALTER COLUMN query_text_id TYPE bigint,
        ALTER COLUMN command_id TYPE bigint,
        ALTER COLUMN relations_id TYPE bigint,
        ALTER COLUMN columns_id TYPE bigint,
        ALTER COLUMN predicate_columns_id TYPE bigint,
        ALTER COLUMN tags_id TYPE bigint;
    ALTER TABLE access_audit.collected_log
        ALTER COLUMN session_id TYPE bigint,
        ALTER COLUMN shape_id TYPE bigint,
        ALTER COLUMN origin_id TYPE bigint;

    -- durability (issue 18, retention at scale): log_data is partitioned by
    -- range of seq (extension/partition.c).  The 1.0 table, its records
    -- untouched, becomes the partition of the seqs it holds, named as the
    -- writer names partitions; like those it is no member of the extension
    -- (pg_dump dumps it as a table of its own).  Attaching it reads it once
    -- to check its seqs; nothing is rewritten.
    PERFORM access_audit._partition_log_v1();

    FOR v IN SELECT * FROM pg_catalog.unnest(saved) AS x ORDER BY x.depth, x.name LOOP
        EXECUTE pg_catalog.format('CREATE VIEW %s%s AS %s', v.name,
            CASE WHEN v.reloptions IS NULL THEN ''
                 ELSE ' WITH (' OPERATOR(pg_catalog.||)
                      pg_catalog.array_to_string(v.reloptions, ', ') OPERATOR(pg_catalog.||) ')' END,
            v.def);
        IF v.comment IS NOT NULL THEN
            EXECUTE pg_catalog.format('COMMENT ON VIEW %s IS %L', v.name, v.comment);
        END IF;
        FOREACH s IN ARRAY v.column_comments LOOP
            EXECUTE s;
        END LOOP;
        FOREACH s IN ARRAY v.triggers LOOP
            EXECUTE s;
        END LOOP;
        FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable
                   FROM pg_catalog.aclexplode(v.relacl) a
                  WHERE a.grantee OPERATOR(pg_catalog.<>) a.grantor LOOP
            EXECUTE pg_catalog.format('GRANT %s ON %s TO %s%s', g.privilege_type, v.name,
                CASE WHEN g.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(g.grantee)) END,
                CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
    END LOOP;
END
$aa_ids$;
DROP TYPE access_audit._saved_view;
DROP FUNCTION access_audit._partition_log_v1();

DROP FUNCTION access_audit._dict_string_id(text);
DROP FUNCTION access_audit._dict_set_id(text[]);
DROP FUNCTION access_audit._dict_session_id(name, name, name, text, text, text, inet, integer);
DROP FUNCTION access_audit._dict_shape_id(bigint, text, text, integer, text[], text[], text[], text[]);
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
-- as in a fresh install, only the writer (a superuser) may call them
REVOKE ALL ON FUNCTION access_audit._dict_string_id(text), access_audit._dict_set_id(text[]),
    access_audit._dict_session_id(name, name, name, text, text, text, inet, integer),
    access_audit._dict_shape_id(bigint, text, text, integer, text[], text[], text[], text[])
    FROM PUBLIC;
