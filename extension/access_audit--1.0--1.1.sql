/* extension/access_audit--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "ALTER EXTENSION access_audit UPDATE TO '1.1'" to load this file. \quit

-- Every change made to extension/sql/*.sql after 1.0 is repeated here, so
-- that an updated 1.0 installation ends with the same objects as a fresh 1.1
-- install.

-- ---------------------------------------------------------------------------
-- guard: business hours checked at use time (issue 16, item 16).  A pair of
-- access_audit.business_hours_* settings with end <= start no longer stops
-- the server at start; the roll-up falls back to 8 to 18 with a WARNING.
-- ---------------------------------------------------------------------------
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
REVOKE ALL ON FUNCTION access_audit._business_hours() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION access_audit._business_hours() TO PUBLIC;
CREATE OR REPLACE FUNCTION access_audit.rebuild_daily()
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
CREATE OR REPLACE FUNCTION access_audit.collect_rollup()
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

-- ---------------------------------------------------------------------------
-- guard: trust and origins (issue 16 items 6, 7, 11).  The new event
-- commands (role changes, the previous log's end, ingest registrations) are
-- not reads; tag_changes shows where a record came from; ingest() binds
-- each standby ring and origin to the role that ships it.
-- ---------------------------------------------------------------------------
CREATE OR REPLACE VIEW access_audit.reads AS
    SELECT seq, ts, actor, login_role, effective_role, claimed_actor, client_addr,
           application_name, command, relations, columns, predicate_columns, tags,
           rows, tagged_rows, greatest(rows, tagged_rows) AS volume, outcome, duration,
           nesting_level, query, origin
      FROM access_audit.log
     WHERE command NOT IN ('SECURITY LABEL', 'GAP', 'MAINTENANCE', 'REFUSED', 'SET',
                           'GRANT ROLE', 'REVOKE ROLE', 'ALTER ROLE', 'DROP ROLE',
                           'PREVIOUS LOG', 'INGEST SOURCE');

CREATE OR REPLACE VIEW access_audit.tag_changes AS
    SELECT seq, ts, (detail::jsonb) ->> 'by' AS changed_by, login_role, effective_role, actor,
           relations[1] AS relation, columns[1] AS "column",
           (detail::jsonb) ->> 'old' AS old_tag, (detail::jsonb) ->> 'new' AS new_tag,
           (detail::jsonb) ->> 'why' AS why, outcome, query, origin
      FROM access_audit.log
     WHERE command = 'SECURITY LABEL';

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

