-- timepart 0.11 -> 0.12: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._estimated_bytes(oid, bigint);
DROP FUNCTION IF EXISTS timepart._histogram_ends(name, name, name);
DROP FUNCTION IF EXISTS timepart._statistic_ends(oid, name);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.12'::text $$;

-- ==== src/20_naming.sql
-- Periods and names: where a period starts, what a partition is called, how a
-- bound is written. Pure functions; "now" is always a parameter.

-- Longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes). _fit_name's slow path.
CREATE OR REPLACE FUNCTION timepart._fit_long_name(base text, suffix text) RETURNS name
LANGUAGE plpgsql STABLE STRICT AS $$
/* base || '_' || suffix cut to 63 bytes: base is cut at a character boundary and an
   8-hex hash of the full name keeps it unique. */
DECLARE
    full_name text := base || '_' || suffix;
    tag text := '_' || left(pg_catalog.md5(full_name), 8);
    room int;
    cut text;
BEGIN
    IF octet_length(full_name) <= 63 THEN
        RETURN full_name::name;
    END IF;
    room := 63 - octet_length(tag) - octet_length('_' || suffix);
    IF room < 1 THEN
        RAISE EXCEPTION 'name suffix "%" is too long', suffix USING ERRCODE = '22023',
            DETAIL = format('%s bytes leave no room for a table name within 63 bytes.', octet_length(suffix)),
            HINT = 'Use a shorter suffix.';
    END IF;
    cut := base;
    WHILE octet_length(cut) > room LOOP
        cut := left(cut, -1);
    END LOOP;
    RETURN (cut || tag || '_' || suffix)::name;
END $$;

-- base || '_' || suffix, kept within 63 bytes: when too long, base is cut and a hash of
-- the full name keeps it unique. One SQL expression (NULL in, NULL out), so the planner
-- inlines it: a query that matches names by it calls no function for a short name.
CREATE OR REPLACE FUNCTION timepart._fit_name(base text, suffix text) RETURNS name
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN pg_catalog.octet_length(base || '_' || suffix) <= 63 THEN (base || '_' || suffix)::name
                ELSE timepart._fit_long_name(base, suffix) END
$$;

-- The period of a managed table containing a moment: natural boundaries, or counted
-- from interval_anchor once the interval was changed.
-- STABLE, not IMMUTABLE: the planner must not compute it while planning a query that
-- only needs it in a message that is rarely built (a session's first health call).
CREATE OR REPLACE FUNCTION timepart._period_of(cfg timepart.config, at_time timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
DECLARE
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    a timestamp := cfg.interval_anchor AT TIME ZONE cfg.time_zone;
    t timestamp := at_time AT TIME ZONE cfg.time_zone;
    months int := (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))::int;
    n bigint;
BEGIN
    IF cfg.interval_anchor IS NULL THEN
        RETURN timepart._period_start(at_time, partition_interval, time_zone);
    END IF;
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', t) * 12 + pg_catalog.date_part('month', t))::bigint
           - (pg_catalog.date_part('year', a) * 12 + pg_catalog.date_part('month', a))::bigint;
        IF a + pg_catalog.make_interval(months => n::int) > t THEN n := n - 1; END IF;
        n := n - ((n % months) + months) % months;
        RETURN (a + pg_catalog.make_interval(months => n::int)) AT TIME ZONE time_zone;
    END IF;
    n := pg_catalog.floor(extract(epoch FROM t - a) / 86400)::bigint;
    n := n - ((n % pg_catalog.date_part('day', partition_interval)::int) + pg_catalog.date_part('day', partition_interval)::int) % pg_catalog.date_part('day', partition_interval)::int;
    RETURN (a + pg_catalog.make_interval(days => n::int)) AT TIME ZONE time_zone;
END $$;

-- How each partition of a table (or just `part`) differs from what it should be, one row
-- per difference, with the statement that fixes it (NULL: only a rewrite would, so it is
-- reported and left). `attached`: whether the partition is attached yet (a replica
-- identity index only maps to a partition's index once it is).
-- PL/pgSQL (RETURN QUERY) so its plan is cached: a new partition asks once or twice.
CREATE OR REPLACE FUNCTION timepart._partition_drift(tbl regclass, part regclass DEFAULT NULL)
RETURNS TABLE (partition_oid oid, property text, current_value text, wanted text, statement text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Most tables hand nothing down and their partitions hold nothing of their own: one
    -- catalog probe then says there is no difference, without planning the query below.
    -- Each relation looked up by its oid: never a scan of all of pg_class, pg_attribute or
    -- pg_description, which in a database of many tables costs more than the rest.
    IF NOT EXISTS (
        SELECT 1
        FROM (SELECT tbl::oid AS oid UNION ALL SELECT part::oid WHERE part IS NOT NULL
              UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE part IS NULL AND i.inhparent = tbl) r
        CROSS JOIN LATERAL (SELECT c.* FROM pg_catalog.pg_class c WHERE c.oid = r.oid OFFSET 0) c
        WHERE (c.oid = tbl OR c.relkind = 'r')
          AND (c.relacl IS NOT NULL OR c.relrowsecurity OR c.relforcerowsecurity OR c.relreplident <> 'd'
               OR (c.oid <> tbl AND (c.reloptions IS NOT NULL OR c.relpersistence = 'u'
                                     OR c.reltablespace <> (SELECT p.reltablespace FROM pg_catalog.pg_class p WHERE p.oid = tbl)))
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy y WHERE y.polrelid = c.oid)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_description d
                          WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0)))
       AND NOT EXISTS (SELECT 1 FROM timepart.config g WHERE g.parent = tbl
                       AND (g.partition_unlogged
                            OR (g.partition_options <> '{}' AND timepart._table_options(g) <> '{}'::jsonb))) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cfg AS (SELECT c.* FROM timepart.config c WHERE c.parent = tbl),
    par AS (SELECT c.* FROM pg_catalog.pg_class c WHERE c.oid = tbl),
    parts AS (
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_class c
        WHERE c.relkind = 'r' AND c.oid = part
        UNION ALL
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        WHERE part IS NULL AND i.inhparent = tbl AND c.relkind = 'r'
    ),
    -- Privileges: the parent's grants (not the owner's own), granted by the partition's owner.
    acl_want AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par, LATERAL pg_catalog.aclexplode(par.relacl) g WHERE g.grantee <> par.relowner
    ),
    acl_have AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, LATERAL pg_catalog.aclexplode(p.relacl) g WHERE g.grantee <> p.relowner
    ),
    acl AS (
        SELECT w.oid, 'privilege' AS property, NULL::text AS current_value,
               format('%s%s to %s', w.privilege_type, CASE WHEN w.is_grantable THEN ' with grant option' ELSE '' END,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s ON %s TO %s%s', w.privilege_type, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM acl_want EXCEPT SELECT * FROM acl_have) w
        UNION ALL
        SELECT h.oid, 'privilege', format('%s to %s', h.privilege_type,
                                          CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s ON %s FROM %s', h.privilege_type, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END)
        FROM (SELECT * FROM acl_have EXCEPT SELECT * FROM acl_want) h
    ),
    col_want AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par JOIN pg_catalog.pg_attribute a ON a.attrelid = par.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> par.relowner
    ),
    col_have AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p JOIN pg_catalog.pg_attribute a ON a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> p.relowner
    ),
    col AS (
        SELECT w.oid, 'column privilege' AS property, NULL::text AS current_value,
               format('%s (%s) to %s', w.privilege_type, w.attname,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s (%I) ON %s TO %s%s', w.privilege_type, w.attname, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM col_want EXCEPT SELECT * FROM col_have) w
        UNION ALL
        SELECT h.oid, 'column privilege', format('%s (%s) to %s', h.privilege_type, h.attname,
                                                 CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s (%I) ON %s FROM %s', h.privilege_type, h.attname, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END)
        FROM (SELECT * FROM col_have EXCEPT SELECT * FROM col_want) h
    ),
    -- Row-level security: enabled and forced as on the parent, with the parent's policies.
    rls AS (
        SELECT p.oid, 'row security', CASE WHEN p.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               CASE WHEN par.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END)
        FROM parts p, par WHERE p.relrowsecurity <> par.relrowsecurity
        UNION ALL
        SELECT p.oid, 'forced row security', p.relforcerowsecurity::text, par.relforcerowsecurity::text,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END)
        FROM parts p, par WHERE p.relforcerowsecurity <> par.relforcerowsecurity
    ),
    pol_def AS (
        SELECT pl.polrelid, pl.polname,
               format('AS %s FOR %s TO %s%s%s', CASE WHEN pl.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE pl.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ' ORDER BY r)
                       FROM unnest(pl.polroles) r),
                      ' USING (' || pg_catalog.pg_get_expr(pl.polqual, pl.polrelid) || ')',
                      ' WITH CHECK (' || pg_catalog.pg_get_expr(pl.polwithcheck, pl.polrelid) || ')') AS def
        FROM pg_catalog.pg_policy pl
        WHERE pl.polrelid = tbl OR pl.polrelid IN (SELECT p.oid FROM parts p)
    ),
    pol AS (
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, w.polname || ' ' || w.def,
               CASE WHEN h.polname IS NOT NULL THEN format('DROP POLICY %I ON %s; ', h.polname, p.rel) ELSE '' END
               || format('CREATE POLICY %I ON %s %s', w.polname, p.rel, w.def)
        FROM parts p JOIN pol_def w ON w.polrelid = tbl
        LEFT JOIN pol_def h ON h.polrelid = p.oid AND h.polname = w.polname
        WHERE h.def IS DISTINCT FROM w.def
        UNION ALL
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, NULL, format('DROP POLICY %I ON %s', h.polname, p.rel)
        FROM parts p JOIN pol_def h ON h.polrelid = p.oid
        WHERE NOT EXISTS (SELECT 1 FROM pol_def w WHERE w.polrelid = tbl AND w.polname = h.polname)
    ),
    -- Replica identity; the parent's identity index maps to the partition's index attached to it.
    ident AS (
        SELECT p.oid, 'replica identity', p.relreplident::text || coalesce(' ' || pi.indexrelid::regclass::text, ''),
               par.relreplident::text || coalesce(' ' || ci.inhrelid::regclass::text, ''),
               format('ALTER TABLE %s REPLICA IDENTITY %s', p.rel,
                      CASE par.relreplident WHEN 'd' THEN 'DEFAULT' WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL'
                           ELSE 'USING INDEX ' || pg_catalog.quote_ident((SELECT x.relname FROM pg_catalog.pg_class x WHERE x.oid = ci.inhrelid)) END)
        FROM parts p CROSS JOIN par
        LEFT JOIN pg_catalog.pg_index pi ON pi.indrelid = p.oid AND pi.indisreplident
        LEFT JOIN pg_catalog.pg_index xi ON xi.indrelid = par.oid AND xi.indisreplident
        LEFT JOIN LATERAL (SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index y ON y.indexrelid = h.inhrelid
                           WHERE h.inhparent = xi.indexrelid AND y.indrelid = p.oid) ci ON true
        WHERE (p.relreplident <> par.relreplident OR pi.indexrelid IS DISTINCT FROM ci.inhrelid)
          AND (par.relreplident <> 'i' OR ci.inhrelid IS NOT NULL)
    ),
    comment AS (
        SELECT p.oid, 'comment', pg_catalog.obj_description(p.oid, 'pg_class'), pg_catalog.obj_description(tbl, 'pg_class'),
               format('COMMENT ON TABLE %s IS %s', p.rel, coalesce(pg_catalog.quote_literal(pg_catalog.obj_description(tbl, 'pg_class')), 'NULL'))
        FROM parts p
        WHERE pg_catalog.obj_description(p.oid, 'pg_class') IS DISTINCT FROM pg_catalog.obj_description(tbl, 'pg_class')
    ),
    options AS (
        SELECT p.oid, 'storage options', array_to_string(coalesce(p.reloptions, '{}'), ', '),
               array_to_string(timepart._partition_reloptions(cfg), ', '),
               concat_ws('; ',
                   CASE WHEN p.reloptions IS NOT NULL THEN format('ALTER TABLE %s RESET (%s)', p.rel,
                       (SELECT string_agg(CASE WHEN split_part(o, '=', 1) LIKE 'toast.%' THEN 'toast.' || pg_catalog.quote_ident(substr(split_part(o, '=', 1), 7))
                                               ELSE pg_catalog.quote_ident(split_part(o, '=', 1)) END, ', ') FROM unnest(p.reloptions) o)) END,
                   CASE WHEN timepart._table_options(cfg) <> '{}' THEN format('ALTER TABLE %s SET (%s)', p.rel,
                       timepart._reloptions_sql(timepart._table_options(cfg))) END)
        FROM parts p, cfg
        WHERE ARRAY(SELECT o FROM unnest(coalesce(p.reloptions, '{}')) o ORDER BY o) <> timepart._partition_reloptions(cfg)
    ),
    -- Given at birth only: changing them later rewrites the partition.
    rewrite AS (
        SELECT p.oid, 'tablespace', coalesce(NULLIF(p.reltablespace, 0)::text, 'default'), coalesce(NULLIF(par.reltablespace, 0)::text, 'default'),
               NULL::text
        FROM parts p, par WHERE p.reltablespace <> par.reltablespace
        UNION ALL
        SELECT p.oid, 'unlogged', (p.relpersistence = 'u')::text, cfg.partition_unlogged::text, NULL
        FROM parts p, cfg WHERE (p.relpersistence = 'u') <> cfg.partition_unlogged
    )
    SELECT * FROM acl UNION ALL SELECT * FROM col UNION ALL SELECT * FROM rls UNION ALL SELECT * FROM pol
    UNION ALL SELECT * FROM ident UNION ALL SELECT * FROM comment UNION ALL SELECT * FROM options UNION ALL SELECT * FROM rewrite
    ORDER BY 1, 2, 5;
END $$;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last
-- VACUUM/ANALYZE. heap_bytes, when known, stands in for the table's own relpages. A
-- one-row set so the planner inlines it (a scalar SQL function is planned on every call).
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid, heap_bytes bigint DEFAULT NULL) RETURNS TABLE (bytes bigint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(heap_bytes, c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint)
           + (coalesce(t.relpages, 0)
              + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i  -- the table's and its TOAST table's indexes
                          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid IN (rel, c.reltoastrelid)), 0)::bigint)
             * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel
$$;

-- The first and last bounds of the ANALYZE histogram of a column, as text (no row without
-- one): both ends in one lookup, so the pg_stats view is planned once. Sets, like the
-- next one, so the planner inlines them.
CREATE OR REPLACE FUNCTION timepart._histogram_ends(schema_name name, table_name name, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE AS $$
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT st.histogram_bounds::text::text[] AS e FROM pg_catalog.pg_stats st
          WHERE st.schemaname = schema_name AND st.tablename = table_name AND st.attname = column_name) h
$$;

-- The same read straight from pg_statistic, for an owner who may (a superuser): the
-- pg_stats view costs a session's first statistics call several milliseconds to plan.
CREATE OR REPLACE FUNCTION timepart._statistic_ends(rel oid, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE AS $$
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT (CASE 2 WHEN s.stakind1 THEN s.stavalues1 WHEN s.stakind2 THEN s.stavalues2 WHEN s.stakind3 THEN s.stavalues3
                         WHEN s.stakind4 THEN s.stavalues4 WHEN s.stakind5 THEN s.stavalues5 END)::text::text[] AS e  -- 2: a histogram
          FROM pg_catalog.pg_statistic s JOIN pg_catalog.pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
          -- A partition that is itself partitioned has only the inherited row.
          WHERE s.starelid = rel AND a.attname = column_name ORDER BY s.stainherit LIMIT 1) h
$$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that may not SELECT the table, unless monitor_sees_values. exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
DECLARE
    who name := timepart._caller();  -- once: it reads the call stack
    statistic boolean := pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT');
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    -- First whether the database has any foreign table at all (pg_foreign_table is small).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_table) THEN
        IF EXISTS (SELECT 1 FROM timepart._managed(partition_stats.parent) c JOIN pg_catalog.pg_inherits i ON i.inhparent = c.parent
                   JOIN pg_catalog.pg_class r ON r.oid = i.inhrelid WHERE r.relkind = 'f') THEN
            RAISE NOTICE 'timepart: partition_stats skips foreign-table partitions';
        END IF;
    END IF;
    RETURN QUERY
    -- Exact key values are data: shown to roles that may read the table, or when its
    -- owner allows. Decided once per table (materialized, so not once per partition).
    WITH tables AS MATERIALIZED (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type, coalesce(c.monitor_sees_values OR timepart._may_act(who, c.parent)
                             OR pg_catalog.has_table_privilege(who, c.parent, 'SELECT'), false) AS reveal
        FROM timepart._managed(partition_stats.parent) c
    ), parts AS (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type, c.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM tables c
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE (partition_stats.parent IS NULL OR c.parent = partition_stats.parent)
          -- Foreign-table partitions: counting them would read remote data (said below).
          AND p.relkind <> 'f'
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        -- A live partition never written (the future ones: empty heap, no changes), logged,
        -- with only B-tree indexes is sized from the catalog, to the byte: its indexes are
        -- as their build left them, and opening them all costs a session's first call more
        -- than the rest of the statistics. Written-to ones may have free space maps,
        -- unlogged ones init forks, other index types maps of their own: those are measured.
        -- (Scalar subqueries: looked up only for those, never over all of pg_index.)
        SELECT p.*, CASE WHEN p.live AND p.heap_bytes = 0 AND p.changes = 0
                              AND (SELECT c.relpersistence = 'p' FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid)
                              AND (SELECT bool_and(ic.relam = 403)  -- 403: btree's fixed oid
                                   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                                   WHERE i.indrelid = p.partition_oid) IS NOT FALSE
                         THEN (SELECT e.bytes FROM timepart._estimated_bytes(p.partition_oid, 0) e)
                         WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM (SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes
              FROM parts p OFFSET 0) p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        -- The condition inside the subquery makes it a one-time filter: only small live
        -- partitions are scanned.
        -- An empty heap holds no rows: exact without a scan.
        LEFT JOIN LATERAL (SELECT 0::bigint AS record_count, NULL::timestamptz AS oldest, NULL::timestamptz AS newest
                           WHERE p.live AND p.heap_bytes = 0
                           UNION ALL
                           SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column) f
                           WHERE p.live AND p.heap_bytes > 0 AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._bounds_label(j.range_start, j.range_end, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       ELSE (SELECT e.bytes FROM timepart._estimated_bytes(j.partition_oid) e) END) / 1048576.0, 2),
           -- Else oldest and newest from the ANALYZE histogram of the key: approximate, no
           -- scan, and looked up only for the partitions that need it.
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(h.e[1], j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(h.e[2], j.key_type, j.time_zone) END,
           coalesce(ix.n, 0)::int,
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    -- The histogram only where it is shown (OFFSET 0: looked up once per row, not per use).
    LEFT JOIN LATERAL (SELECT CASE WHEN NOT j.reveal OR j.sealed OR j.x_rows IS NOT NULL THEN NULL
                                   WHEN statistic THEN (SELECT e.ends FROM timepart._statistic_ends(j.partition_oid, j.key_column) e)
                                   ELSE (SELECT e.ends FROM timepart._histogram_ends(j.schema_name, j.partition_name, j.key_column) e)
                              END AS e
                       OFFSET 0) h ON true
    -- Index counts from the index on pg_index.indrelid, partition by partition: the cost
    -- grows with the table's partitions, not with every index of the database.
    LEFT JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid) ix ON true
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too). stats: the table's partition_stats rows as JSON when the
-- caller has them already.
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz, stats jsonb DEFAULT NULL)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    time_zone text := cfg.time_zone;
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE time_zone);
    old_before timestamptz := ((as_of AT TIME ZONE time_zone) - cfg.alert_old_age) AT TIME ZONE time_zone;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            -- An empty heap holds no rows: no count (nor the owner's executor) needed. A
            -- default partition that is itself partitioned has no heap: always counted.
            IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = default_part) <> 'r'
               OR pg_catalog.pg_relation_size(default_part) > 0 THEN
                default_rows := timepart._as_owner(tbl, format(
                    'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part), true)::text::bigint;
            END IF;
        EXCEPTION WHEN lock_not_available THEN
            default_rows := 0;  -- counted again at the next check
        END;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT * FROM timepart.partition_stats(tbl) WHERE stats IS NULL
        UNION ALL
        SELECT * FROM jsonb_populate_recordset(NULL::timepart.partition_stats_row, stats) WHERE stats IS NOT NULL),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE time_zone
                                              AND s.range_start < month_start AT TIME ZONE time_zone) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE time_zone
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE time_zone) AS month_before
        FROM s WHERE NOT s.is_default
    ), future AS (
        SELECT count(*) AS n FROM s WHERE NOT s.is_default AND s.range_start > as_of
    ), old AS (
        SELECT count(*) AS n, (array_agg(s.partition_name ORDER BY s.range_start))[1] AS oldest
        FROM s WHERE NOT s.is_default AND s.range_end <= old_before
    )
    SELECT 'partition_too_large', 'warning', tbl::text, s.partition_name,
           format('%s is %s MB, over %s MB', s.partition_name, s.size_mb, max_mb),
           'Use a shorter partition interval, or archive old data', s.size_mb, max_mb
    FROM s WHERE s.size_mb > max_mb
    UNION ALL
    SELECT 'partition_too_many_rows', 'warning', tbl::text, s.partition_name,
           format('%s holds %s rows, over %s', s.partition_name, s.record_count, cfg.alert_max_rows),
           'Use a shorter partition interval', s.record_count, cfg.alert_max_rows
    FROM s WHERE s.record_count > cfg.alert_max_rows
    UNION ALL
    SELECT 'missing_current_partition', 'critical', tbl::text, '',
           format('no partition of %s covers the current period starting %s', tbl, timepart._period_of(cfg, as_of)),  -- only then
           'Create it now: run timepart.maintain()', 0, 1
    WHERE NOT EXISTS (SELECT 1 FROM s WHERE NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of)
    UNION ALL
    SELECT 'insufficient_future_partitions', 'warning', tbl::text, '',
           format('%s has %s future partition(s), fewer than %s', tbl, f.n, cfg.alert_min_future),
           'Run timepart.maintain() and check that its scheduled job runs', f.n, cfg.alert_min_future
    FROM future f WHERE f.n < cfg.alert_min_future
    UNION ALL
    SELECT 'old_partitions', 'info', tbl::text, o.oldest,
           format('%s has %s partition(s) older than %s', tbl, o.n, cfg.alert_old_age),
           'Consider archival: set a retention and run timepart.cleanup()', o.n, 0
    FROM old o WHERE o.n > 0
    UNION ALL
    SELECT 'high_growth', 'info', tbl::text, '',
           format('%s grew %s%% month over month (%s to %s rows)', tbl,
                  round((g.last_month - g.month_before) / g.month_before * 100), g.month_before, g.last_month),
           'Plan capacity: storage, retention and partition interval',
           round((g.last_month - g.month_before) / g.month_before, 3), cfg.alert_growth_ratio
    FROM growth g WHERE g.month_before > 0 AND (g.last_month - g.month_before) / g.month_before > cfg.alert_growth_ratio
    UNION ALL
    SELECT 'rows_in_default_partition', 'warning', tbl::text, default_part::text,
           format('%s%s row(s) wait in the default partition %s', CASE WHEN default_rows >= 1000000 THEN 'at least ' ELSE '' END,
                  default_rows, default_part),
           'Run timepart.maintain() to move them into partitions; rows past the premake horizon or the retention boundary stay',
           default_rows, 0
    WHERE default_rows > 0
    UNION ALL
    SELECT 'maintenance_failing', 'warning', tbl::text, '',
           format('the last maintain run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the failed step and fix its cause (a table in the way of a partition name: '
           'a partition detached by hand?); the alert resolves with the next successful run', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'maintain' ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    SELECT 'partition_drift', 'warning', tbl::text, d.partition_name,
           format('%s differs from %s: %s', d.partition_name, tbl, d.properties),
           format('See SELECT * FROM timepart.sync_partitions(%L, dry_run => true); run it without dry_run to apply', tbl::text),
           d.n, 0
    FROM (SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = x.partition_oid) AS partition_name,
                 string_agg(DISTINCT x.property, ', ') AS properties,
                 count(*)::numeric AS n
          FROM timepart._partition_drift(tbl) x GROUP BY x.partition_oid) d
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
END $$;

-- health's document from statistics already read (NULL: read them here).
CREATE OR REPLACE FUNCTION timepart._health(parent regclass, as_of timestamptz, per_table jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tables regclass[];
    alerts jsonb;
    stats record;
    err text;
BEGIN
    PERFORM timepart._check_moment(as_of);
    IF _health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = _health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', _health.parent;
    END IF;
    per_table := coalesce(per_table, timepart._stats_by_table(_health.parent));
    -- The tables are the statistics' keys (each table's name as text), in the same order.
    SELECT array_agg(t.k::regclass ORDER BY t.k) INTO tables FROM jsonb_object_keys(per_table) t(k);

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of, per_table->(t::text)) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j
        WHERE _health.parent IS NULL AND EXISTS (SELECT 1 FROM timepart.jobs)) e;  -- no jobs: not even called

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM jsonb_each(per_table) t, jsonb_populate_recordset(NULL::timepart.partition_stats_row, t.value) s;

    RETURN jsonb_build_object(
        'status', CASE WHEN alerts @> '[{"severity": "critical"}]' THEN 'critical'
                       WHEN alerts @> '[{"severity": "warning"}]' THEN 'warning' ELSE 'healthy' END,
        'issues', (SELECT coalesce(jsonb_agg(a->>'message'), '[]') FROM jsonb_array_elements(alerts) a WHERE a->>'severity' <> 'info'),
        'recommendations', (SELECT coalesce(jsonb_agg(DISTINCT a->>'recommendation'), '[]') FROM jsonb_array_elements(alerts) a),
        'partition_count', stats.n, 'total_size_mb', stats.mb,
        'oldest_partition', stats.oldest, 'newest_partition', stats.newest,
        'tables', (SELECT coalesce(jsonb_agg(t::text), '[]') FROM unnest(coalesce(tables, '{}')) t),
        'alerts', alerts, 'checked_at', pg_catalog.clock_timestamp());
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN jsonb_build_object('status', 'error', 'issues', jsonb_build_array('health evaluation failed: ' || err),
        'recommendations', jsonb_build_array('Check the table and timepart''s installation; see the server log'),
        'partition_count', NULL, 'total_size_mb', NULL, 'oldest_partition', NULL, 'newest_partition', NULL,
        'checked_at', pg_catalog.clock_timestamp());
END $$;

CREATE OR REPLACE FUNCTION timepart.summary(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /summary: health, per-partition stats, configuration, scheduled jobs with
   their latest runs, recent log and open alerts. */
DECLARE
    per_table jsonb;
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    -- The statistics once, for health and for the stats below (in partition_stats' order).
    per_table := timepart._stats_by_table(summary.parent);
    RETURN jsonb_build_object(
        'health', timepart._health(summary.parent, as_of, per_table),
        'stats', (SELECT coalesce(jsonb_agg(x.r ORDER BY t.key, x.n), '[]')
                  FROM jsonb_each(per_table) t, jsonb_array_elements(t.value) WITH ORDINALITY AS x(r, n)),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', CASE WHEN EXISTS (SELECT 1 FROM timepart.jobs) THEN timepart._jobs_summary() ELSE '[]'::jsonb END,
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;

SELECT timepart._harden();
