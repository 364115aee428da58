-- timepart 0.10 -> 0.11: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._estimated_bytes(oid);
DROP FUNCTION IF EXISTS timepart._histogram_end(name, name, name, boolean);
DROP FUNCTION IF EXISTS timepart._partitions(regclass, text);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.11'::text $$;

-- A role's executor (its qualified name), created when missing. SECURITY DEFINER (as the extension's owner):
-- only it may create a function owned by another role. Refuses an executor whose owner or
-- security someone changed (it is re-created only by dropping it); gives an older
-- timepart's executor this one's body.
CREATE OR REPLACE FUNCTION timepart._executor(owner_oid oid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    fname name := timepart._executor_name(owner_oid);
    owner_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner_oid);
    f record;
    sig text;
    body text;
    ddl text;
BEGIN
    IF owner_name IS NULL THEN
        RAISE EXCEPTION 'role with oid % does not exist', owner_oid USING ERRCODE = '42704',
            DETAIL = 'timepart runs work on a table with its owner''s rights.', HINT = 'Check the table''s owner.';
    END IF;
    sig := pg_catalog.format('timepart.%I(pg_catalog.text, pg_catalog.bool)', fname);
    body := timepart._executor_body(owner_name);
    ddl := pg_catalog.format('CREATE OR REPLACE FUNCTION %s RETURNS pg_catalog.jsonb LANGUAGE plpgsql SECURITY DEFINER '
                             'SET search_path = pg_catalog, pg_temp AS %L',
                             pg_catalog.format('timepart.%I(q pg_catalog.text, wants_value pg_catalog.bool)', fname), body);
    SELECT p.proowner, p.prosecdef, p.prosrc INTO f FROM pg_catalog.pg_proc p
    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'timepart'::pg_catalog.regnamespace AND p.proname OPERATOR(pg_catalog.=) fname;
    IF FOUND THEN
        IF f.proowner OPERATOR(pg_catalog.<>) owner_oid OR NOT f.prosecdef THEN
            RAISE EXCEPTION 'the timepart executor of role % was altered', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('%s: owner %s, security definer %s.', sig, f.proowner::regrole, f.prosecdef),
                HINT = pg_catalog.format('A superuser can drop it (ALTER EXTENSION timepart DROP FUNCTION %s; DROP FUNCTION %s;); '
                                         'timepart makes it again.', sig, sig);
        END IF;
        -- Its owner cannot change the body (no CREATE on schema timepart): another body is
        -- an older timepart's, which this one replaces.
        IF f.prosrc OPERATOR(pg_catalog.<>) body THEN
            EXECUTE ddl;
        END IF;
        RETURN pg_catalog.format('timepart.%I', fname);
    END IF;
    -- A new executor only for a role whose tables timepart works on (a registered table,
    -- a partition of one, a table being migrated), or one the caller may act as: nobody
    -- hands an arbitrary role a function it would then have to be rid of.
    IF NOT coalesce(pg_catalog.pg_has_role(timepart._caller(), owner_oid, 'USAGE'), false)
       AND NOT EXISTS (SELECT 1 FROM timepart.config g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.parent
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid)
       AND NOT EXISTS (SELECT 1 FROM timepart.migrations m JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.source
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid)
       AND NOT EXISTS (SELECT 1 FROM timepart.config g JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) g.parent
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid) THEN
        RAISE EXCEPTION 'timepart has no table of role % to work on', owner_name USING ERRCODE = '42501',
            DETAIL = 'An executor is made only for the owner of a registered or migrating table, or for a role the caller may act as.',
            HINT = 'Register the table with timepart.manage() (as its owner) first.';
    END IF;
    EXECUTE ddl;
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', sig);
    IF owner_name OPERATOR(pg_catalog.<>) current_user THEN
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', sig, owner_name);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'timepart cannot act with the rights of role %', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('timepart''s owner %s is not a superuser and cannot give role %s a function.',
                                           current_user, owner_name),
                HINT = 'Install timepart as a superuser, or manage only tables owned by the role that installed it.';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'timepart') THEN
        -- DROP EXTENSION takes it along.
        EXECUTE pg_catalog.format('ALTER EXTENSION timepart ADD FUNCTION %s', sig);
    END IF;
    RETURN pg_catalog.format('timepart.%I', fname);
END $$;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS text LANGUAGE sql STABLE AS $$  -- STABLE as to_char is: so the planner inlines it
    SELECT pg_catalog.to_char(range_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE time_zone) = range_start AT TIME ZONE time_zone
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE time_zone) = range_end AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- Every partition of a parent with its bounds read from the catalog (never from its
-- name), in one query. MINVALUE/MAXVALUE read as -infinity/infinity; the default
-- partition has NULL bounds.
CREATE OR REPLACE FUNCTION timepart._partitions(tbl regclass, time_zone text DEFAULT 'UTC')
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, is_default boolean, relkind "char")
LANGUAGE sql STABLE AS $$
    WITH printed AS MATERIALIZED (
        SELECT c.oid, n.nspname, c.relname, c.relkind,
               pg_catalog.pg_get_expr(c.relpartbound, 0) AS e  -- 0: bounds are constants; no partition is opened or locked
        FROM pg_catalog.pg_inherits i
        -- Each partition by its oid (OFFSET 0 keeps the lookup per row): never a scan of
        -- all of pg_class, which in a database of many tables costs more than the rest.
        CROSS JOIN LATERAL (SELECT c.oid, c.relname, c.relnamespace, c.relkind, c.relpartbound FROM pg_catalog.pg_class c
                            WHERE c.oid = i.inhrelid OFFSET 0) c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    ), parts AS MATERIALIZED (
        -- "FOR VALUES FROM ('lower') TO ('upper')", or DEFAULT. Plain string functions: a
        -- regular expression here cost more than everything else at 1,000 partitions.
        SELECT p.oid, p.nspname, p.relname, p.relkind,
               CASE WHEN p.e <> 'DEFAULT' THEN ARRAY[
                   pg_catalog.btrim(pg_catalog.split_part(pg_catalog.substr(p.e, 18), ') TO (', 1), ''''),
                   pg_catalog.btrim(pg_catalog.rtrim(pg_catalog.split_part(p.e, ') TO (', 2), ')'), '''')] END AS b
        FROM printed p
    ), key AS (
        SELECT a.atttypid AS key_type
        FROM pg_catalog.pg_partitioned_table p
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = tbl
    )
    SELECT p.oid, p.nspname, p.relname,
           timepart._bound_value(p.b[1], k.key_type, time_zone), timepart._bound_value(p.b[2], k.key_type, time_zone), p.b IS NULL, p.relkind
    FROM parts p CROSS JOIN key k
    ORDER BY 4 NULLS FIRST
$$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
-- Identity columns are the parent's alone: since 17 the attached partition shares them;
-- before, the partition's column takes its values from the parent's sequence, so a row
-- inserted straight into a partition never repeats an id.
-- The access method a new partition gets: the table's, never what a SET of the session (a
-- partition_admin's, say) made default_table_access_method. The parent's (17+), else the
-- one most partitions use, else the default the session started with (server, database,
-- role), else heap.
CREATE OR REPLACE FUNCTION timepart._partition_access_method(parent regclass) RETURNS name
LANGUAGE sql STABLE AS $$
    SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid = coalesce(
        (SELECT NULLIF(c.relam, 0) FROM pg_catalog.pg_class c WHERE c.oid = parent),
        (SELECT c.relam FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = parent AND c.relkind = 'r' GROUP BY c.relam ORDER BY count(*) DESC, c.relam LIMIT 1),
        (SELECT d.oid FROM pg_catalog.pg_am d JOIN pg_catalog.pg_settings g ON g.reset_val = d.amname
         WHERE g.name = 'default_table_access_method' AND d.amtype = 't'),
        (SELECT h.oid FROM pg_catalog.pg_am h WHERE h.amname = 'heap'))
$$;

CREATE OR REPLACE FUNCTION timepart._new_partition_table(parent regclass, part_name name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = parent);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    cfg timepart.config := timepart._config(parent);
    space name := (SELECT t.spcname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                   WHERE c.oid = parent);
    am name := timepart._partition_access_method(parent);
    -- Born with what cannot change later without a rewrite: logged-ness, the access
    -- method, the parent's tablespace, the configured storage options.
    ddl text := format('CREATE %sTABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY) USING %I%s',
                       CASE WHEN cfg.partition_unlogged THEN 'UNLOGGED ' ELSE '' END, part_schema, part_name, parent, am,
                       CASE WHEN cfg.partition_options <> '{}'::jsonb THEN format(' WITH (%s)', timepart._reloptions_sql(cfg.partition_options)) ELSE '' END);
    part regclass;
    col record;
    ctx text;
BEGIN
    -- Only as a step of _build_partition, whose bounds and name were checked: called on
    -- its own (it runs as timepart's owner) it would make tables of any name.
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF pg_catalog.split_part(ctx, E'\n', 2) !~ '^PL/pgSQL function timepart\._build_partition\(' THEN
        RAISE EXCEPTION 'timepart._new_partition_table is a step of making a partition' USING ERRCODE = '42501',
            DETAIL = 'It is called by timepart._build_partition only.', HINT = 'Use timepart.create_partition or timepart.maintain.';
    END IF;
    PERFORM timepart._check_may_maintain(timepart._caller(), parent, 'create its partitions');
    IF pg_catalog.has_schema_privilege(owner_oid, part_schema, 'CREATE') THEN
        PERFORM timepart._as_owner(parent, ddl || CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END);
    ELSE
        -- Made by timepart's owner, for whom no tablespace is out of bounds: the one the
        -- session's default_tablespace names (the caller's setting) must be the table
        -- owner's to use, and it is named outright.
        space := coalesce(space, NULLIF(pg_catalog.current_setting('default_tablespace'), ''));
        IF space IS NOT NULL AND space <> (SELECT t.spcname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t
                                             ON t.oid = d.dattablespace WHERE d.datname = pg_catalog.current_database())
           AND NOT pg_catalog.has_tablespace_privilege(owner_oid, space, 'CREATE') THEN
            RAISE EXCEPTION 'permission denied for tablespace %', space USING ERRCODE = '42501',
                DETAIL = format('The partition would go to tablespace %s, where %s, which owns %s, may not create tables.',
                                space, owner_oid::regrole, parent),
                HINT = 'Grant the owner CREATE on the tablespace, or RESET default_tablespace.';
        END IF;
        EXECUTE ddl || CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END;
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %s', part_schema, part_name, owner_oid::regrole);
    END IF;
    part := format('%I.%I', part_schema, part_name)::regclass;
    IF NOT timepart._partitions_share_identity() THEN
        FOR col IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(parent::text, a.attname) AS seq
                   FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = parent AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' LOOP
            PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass)',
                                                      part, col.attname, col.seq));
        END LOOP;
    END IF;
    -- The parent's privileges, row security and policies, comment and replica identity,
    -- all before the partition is attached and visible (55_look.sql).
    PERFORM timepart._match_parent(parent, part);
    RETURN part;
END $$;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE AS $$
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, retention, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
      -- Foreign-table partitions are someone else's storage: retention leaves them (said in cleanup).
      AND p.relkind <> 'f'
    ORDER BY p.range_start
$$;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last
-- VACUUM/ANALYZE. heap_bytes, when known, stands in for the table's own relpages.
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid, heap_bytes bigint DEFAULT NULL) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(heap_bytes, c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint)
           + (coalesce(t.relpages, 0)
              + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i  -- the table's and its TOAST table's indexes
                          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid IN (rel, c.reltoastrelid)), 0)::bigint)
             * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel
$$;

-- The first and last bounds of the ANALYZE histogram of a column, as text (NULL without
-- one): both ends in one lookup, so the pg_stats view is planned once.
CREATE OR REPLACE FUNCTION timepart._histogram_ends(schema_name name, table_name name, column_name name)
RETURNS text[] LANGUAGE sql STABLE AS $$
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT st.histogram_bounds::text::text[] AS e FROM pg_catalog.pg_stats st
          WHERE st.schemaname = schema_name AND st.tablename = table_name AND st.attname = column_name) h
$$;

-- The same read straight from pg_statistic, for an owner who may (a superuser): the
-- pg_stats view costs a session's first statistics call several milliseconds to plan.
CREATE OR REPLACE FUNCTION timepart._statistic_ends(rel oid, column_name name)
RETURNS text[] LANGUAGE sql STABLE AS $$
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
                         THEN timepart._estimated_bytes(p.partition_oid, 0)
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
                       ELSE timepart._estimated_bytes(j.partition_oid) END) / 1048576.0, 2),
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
                                   WHEN statistic THEN timepart._statistic_ends(j.partition_oid, j.key_column)
                                   ELSE timepart._histogram_ends(j.schema_name, j.partition_name, j.key_column) END AS e
                       OFFSET 0) h ON true
    -- Index counts from the index on pg_index.indrelid, partition by partition: the cost
    -- grows with the table's partitions, not with every index of the database.
    LEFT JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid) ix ON true
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;

CREATE OR REPLACE FUNCTION timepart.snapshot_stats(as_of timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
/* Stores today's exact figures for every partition of every managed table (the
   seed's daily statistics generation). A partition whose change counters have not
   moved since its last snapshot is not counted again. Returns the rows stored. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    p record;
    prev timepart.stats_history;
    rows bigint;
    oldest timestamptz;
    newest timestamptz;
    stored integer := 0;
    counted integer := 0;
    skipped text[] := '{}'::text[];
    cfg timepart.config;
BEGIN
    PERFORM timepart._check_moment(as_of);
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart._managed() c
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x
             WHERE x.relkind <> 'f' LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            BEGIN
                -- A partition someone holds locked is skipped (its last figures stay), not waited for.
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
                FROM timepart._exact_figures(p.partition_oid, p.key_column) f;
            EXCEPTION WHEN lock_not_available THEN
                skipped := skipped || p.partition_name::text;
                CONTINUE;
            END;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, pg_catalog.pg_total_relation_size(p.partition_oid), oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    PERFORM timepart._log('snapshot_stats', NULL, NULL, cardinality(skipped) = 0,
                          jsonb_build_object('partitions', stored, 'counted', counted, 'skipped', to_jsonb(skipped)),
                          CASE WHEN cardinality(skipped) > 0 THEN 'locked partitions skipped: ' || array_to_string(skipped, ', ') END,
                          started);
    RETURN stored;
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
    cur timestamptz := timepart._period_of(cfg, as_of);
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
           format('no partition of %s covers the current period starting %s', tbl, cur),
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

-- Partitions lacking a templated index (not attached to the template's parent index).
CREATE OR REPLACE FUNCTION timepart._missing_indexes(tbl regclass)
RETURNS TABLE (partition_name text, missing text, n numeric) LANGUAGE sql STABLE AS $$
    -- In sets: every (partition, template) pair against every attached partition index.
    WITH t AS MATERIALIZED (
        -- Each template's index on the parent, by its name (as _template_parent_index finds it).
        SELECT it.suffix, ix.oid AS parent_idx
        FROM timepart.index_templates it
        JOIN pg_catalog.pg_class p ON p.oid = tbl
        LEFT JOIN pg_catalog.pg_class ix ON ix.relnamespace = p.relnamespace
             AND ix.relname = timepart._fit_name(p.relname, it.suffix) AND ix.relkind = 'I'
        WHERE it.parent = tbl
    ), attached AS MATERIALIZED (
        SELECT i.indrelid AS partition_oid, h.inhparent AS parent_idx
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indexrelid = h.inhrelid
        WHERE h.inhparent IN (SELECT t.parent_idx FROM t)
    ), parts AS MATERIALIZED (
        SELECT i.inhrelid AS partition_oid, c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl AND c.relkind <> 'f'
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname
$$;

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
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart._managed(_health.parent) c;
    per_table := coalesce(per_table, timepart._stats_by_table(_health.parent));

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
        'stats', (SELECT coalesce(jsonb_agg(r ORDER BY c.parent::text, n), '[]')
                  FROM timepart._managed(summary.parent) c,
                       jsonb_array_elements(per_table->(c.parent::text)) WITH ORDINALITY AS x(r, n)),
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

-- What pg_get_triggerdef prints before " ON <table> ": CREATE [CONSTRAINT ]TRIGGER, the
-- quoted name, the timing, and the events with UPDATE's columns (ruleutils' order).
CREATE OR REPLACE FUNCTION timepart._trigger_head(trigger_oid oid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT 'CREATE ' || CASE WHEN t.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END || 'TRIGGER ' || pg_catalog.quote_ident(t.tgname) || ' '
           || CASE WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' ELSE 'AFTER' END || ' '
           || pg_catalog.concat_ws(' OR ', CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END, CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
                                   CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' || coalesce(' OF ' || (
                                       SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
                                       FROM unnest(t.tgattr::int2[]) WITH ORDINALITY k(attnum, n)
                                       JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum), '') END,
                                   CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END)
    FROM pg_catalog.pg_trigger t WHERE t.oid = trigger_oid
$$;

-- The statements that give the copy (the partitioned table, before any partition is
-- made) what the source has besides its columns and constraints. Triggers come
-- disabled (_migrate_move_triggers enables them at the swap).
CREATE OR REPLACE FUNCTION timepart._migrate_carry_statements(source regclass, target regclass) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT format('GRANT %s (%I) ON %s TO %s%s', g.privilege_type, a.attname, target,
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) g
    WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
      AND g.grantee <> (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = source)
    UNION ALL
    SELECT format('COMMENT ON TABLE %s IS %L', target, pg_catalog.obj_description(source, 'pg_class'))
    WHERE pg_catalog.obj_description(source, 'pg_class') IS NOT NULL
    UNION ALL
    SELECT format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, target, pg_catalog.obj_description(k.oid, 'pg_constraint'))
    FROM pg_catalog.pg_constraint k
    WHERE k.conrelid = source AND k.contype IN ('p', 'u', 'f') AND pg_catalog.obj_description(k.oid, 'pg_constraint') IS NOT NULL
    UNION ALL
    SELECT format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', target, a.attname, a.attstattarget)
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
    UNION ALL
    SELECT format('ALTER TABLE %s REPLICA IDENTITY %s', target, CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
           ELSE (SELECT format('USING INDEX %I', i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = source AND x.indisreplident) END)
    FROM pg_catalog.pg_class c WHERE c.oid = source AND c.relreplident <> 'd'
    UNION ALL
    SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.policyname, target, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END, ', ') FROM unnest(p.roles) r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
    FROM pg_catalog.pg_policies p
    WHERE p.schemaname = (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source)
      AND p.tablename = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source)
    UNION ALL
    SELECT format('ALTER TABLE %s %s ROW LEVEL SECURITY', target, w)
    FROM pg_catalog.pg_class c, LATERAL (VALUES ('ENABLE', c.relrowsecurity), ('FORCE', c.relforcerowsecurity)) v(w, is_set)
    WHERE c.oid = source AND v.is_set
    UNION ALL
    -- A trigger's definition with the copy's name at the one place the table is named:
    -- right after the head (name, timing, events, columns) PostgreSQL prints, rebuilt
    -- here, so a name or column that looks like " ON table " is never the one replaced.
    -- Were the head not where expected, the statement is NULL and _migrate_carry refuses.
    SELECT s FROM pg_catalog.pg_trigger t,
           LATERAL (SELECT pg_catalog.pg_get_triggerdef(t.oid) AS def,
                           (SELECT format(' ON %I.%I ', n.nspname, c.relname) FROM pg_catalog.pg_class c
                            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source) AS was,
                           pg_catalog.length(timepart._trigger_head(t.oid)) AS at) d,
           LATERAL (VALUES (CASE WHEN pg_catalog.substr(d.def, d.at + 1, pg_catalog.length(d.was)) = d.was
                                 THEN overlay(d.def PLACING ' ON ' || target::text || ' ' FROM d.at + 1 FOR pg_catalog.length(d.was)) END),
                           (format('ALTER TABLE %s DISABLE TRIGGER %I', target, t.tgname))) x(s)
    WHERE t.tgrelid = source AND NOT t.tgisinternal AND t.tgname NOT LIKE 'timepart\_migrate\_%'
$$;

-- Gives the copy what _migrate_carry_statements lists, with the owner's rights.
CREATE OR REPLACE FUNCTION timepart._migrate_carry(source regclass, target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    FOR q IN SELECT * FROM timepart._migrate_carry_statements(source, target) LOOP
        IF q IS NULL THEN
            RAISE EXCEPTION 'cannot carry a trigger of % to the partitioned copy', source USING ERRCODE = '0A000',
                DETAIL = 'Its definition does not read as PostgreSQL prints trigger definitions.',
                HINT = 'Drop the trigger before the migration and create it on the table afterwards.';
        END IF;
        PERFORM timepart._as_owner(source, q);
    END LOOP;
END $$;

SELECT timepart._harden();
