-- timepart 0.10 -> 0.11: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._estimated_bytes(oid);
DROP FUNCTION IF EXISTS timepart._histogram_end(name, name, name, boolean);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.11'::text $$;

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
               range_start timestamptz, range_end timestamptz, is_default boolean)
LANGUAGE sql STABLE AS $$
    WITH printed AS MATERIALIZED (
        SELECT c.oid, n.nspname, c.relname,
               pg_catalog.pg_get_expr(c.relpartbound, 0) AS e  -- 0: bounds are constants; no partition is opened or locked
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    ), parts AS MATERIALIZED (
        -- "FOR VALUES FROM ('lower') TO ('upper')", or DEFAULT. Plain string functions: a
        -- regular expression here cost more than everything else at 1,000 partitions.
        SELECT p.oid, p.nspname, p.relname,
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
           timepart._bound_value(p.b[1], k.key_type, time_zone), timepart._bound_value(p.b[2], k.key_type, time_zone), p.b IS NULL
    FROM parts p CROSS JOIN key k
    ORDER BY 4 NULLS FIRST
$$;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last
-- VACUUM/ANALYZE. heap_bytes, when known, stands in for the table's own relpages.
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid, heap_bytes bigint DEFAULT NULL) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT coalesce(heap_bytes, c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint)
           + (coalesce(t.relpages, 0)
              + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i
                          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = rel), 0)::bigint)
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
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    -- First whether the database has any foreign-table partition at all (cheap to plan).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.relkind = 'f' AND r.relispartition) THEN
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
          AND (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = p.partition_oid) <> 'f'
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        -- A live partition with an empty heap (the future ones) and only B-tree indexes is
        -- sized from the catalog, to the byte: its indexes are as their build or last VACUUM
        -- left them, and opening them all costs a session's first call more than the rest
        -- of the statistics. (Other index types keep a free space map the catalog omits.)
        SELECT p.*, CASE WHEN p.heap_bytes = 0 AND NOT EXISTS (
                             SELECT 1 FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                             WHERE i.indrelid = p.partition_oid AND ic.relam <> 403)  -- 403: btree's fixed oid
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
    LEFT JOIN LATERAL (SELECT CASE WHEN j.reveal AND NOT j.sealed AND j.x_rows IS NULL
                                   THEN timepart._histogram_ends(j.schema_name, j.partition_name, j.key_column) END AS e
                       OFFSET 0) h ON true
    -- Index counts in one pass over pg_index, not one scan per partition.
    LEFT JOIN (SELECT i.indrelid, count(*) AS n FROM pg_catalog.pg_index i GROUP BY i.indrelid) ix ON ix.indrelid = j.partition_oid
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
            -- An empty heap holds no rows: no count (nor the owner's executor) needed.
            IF pg_catalog.pg_relation_size(default_part) > 0 THEN
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

SELECT timepart._harden();
