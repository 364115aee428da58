-- Statistics: per-partition figures that are fast on big tables. Sealed (past)
-- partitions use the exact figures of the daily snapshot while their change
-- counters have not moved; live ones use catalog estimates. Nothing counts rows
-- or takes a lock on a sealed partition when stats are read.

CREATE TABLE timepart.stats_history (
    snapshot_date   date NOT NULL,
    parent_table    regclass NOT NULL,
    partition_oid   oid NOT NULL,
    partition_name  name NOT NULL,
    range_start     timestamptz,
    range_end       timestamptz,
    record_count    bigint NOT NULL,
    size_bytes      bigint NOT NULL,
    oldest_record   timestamptz,
    newest_record   timestamptz,
    changes_seen    bigint NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (snapshot_date, partition_oid)
);
CREATE INDEX stats_history_partition_idx ON timepart.stats_history (partition_oid, snapshot_date DESC);
COMMENT ON TABLE timepart.stats_history IS 'Daily exact per-partition figures (snapshot_stats), the history behind growth rates';
COMMENT ON COLUMN timepart.stats_history.changes_seen IS 'Rows inserted+updated+deleted in the partition when counted; a change means the count is stale';
SELECT timepart._config_dump('timepart.stats_history');

-- The tables that hold the rows of a partition: itself, or, when it is partitioned in
-- turn (by LIST, say), its leaves at any depth (foreign ones excepted). From pg_inherits:
-- no lock.
CREATE OR REPLACE FUNCTION timepart._leaves(rel oid) RETURNS TABLE (leaf oid)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH RECURSIVE tree(r) AS (
        SELECT rel
        UNION ALL
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.r
    )
    SELECT t.r FROM tree t JOIN pg_catalog.pg_class c ON c.oid = t.r WHERE c.relkind IN ('r', 'm');
END;

-- Rows inserted, updated and deleted in a table (over its leaves, if partitioned) since
-- statistics began, this transaction's own changes included. Any change makes a stored
-- count stale.
CREATE OR REPLACE FUNCTION timepart._changes(rel oid) RETURNS bigint
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT coalesce(sum(pg_catalog.pg_stat_get_tuples_inserted(l.leaf) + pg_catalog.pg_stat_get_tuples_updated(l.leaf)
         + pg_catalog.pg_stat_get_tuples_deleted(l.leaf) + pg_catalog.pg_stat_get_xact_tuples_inserted(l.leaf)
         + pg_catalog.pg_stat_get_xact_tuples_updated(l.leaf) + pg_catalog.pg_stat_get_xact_tuples_deleted(l.leaf)), 0)::bigint
    FROM timepart._leaves(rel) l;
END;


-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last
-- VACUUM/ANALYZE. heap_bytes, when known, stands in for the table's own relpages. A
-- one-row set so the planner inlines it (a scalar SQL function is planned on every call).
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid, heap_bytes bigint DEFAULT NULL) RETURNS TABLE (bytes bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(heap_bytes, c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint)
           + (coalesce(t.relpages, 0)
              + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i  -- the table's and its TOAST table's indexes
                          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid IN (rel, c.reltoastrelid)), 0)::bigint)
             * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel;
END;

-- A partition's sizes and live-row estimate over its leaves when it is partitioned in
-- turn (a partitioned table has no storage of its own). heap: the tables alone; total:
-- with indexes and TOAST (both measured, so they open the leaves).
CREATE OR REPLACE FUNCTION timepart._tree_figures(rel oid)
RETURNS TABLE (heap_bytes bigint, total_bytes bigint, estimated_bytes bigint, live_rows bigint) LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT sum(pg_catalog.pg_relation_size(l.leaf))::bigint, sum(pg_catalog.pg_total_relation_size(l.leaf))::bigint,
           sum((SELECT e.bytes FROM timepart._estimated_bytes(l.leaf) e))::bigint,
           sum(greatest(pg_catalog.pg_stat_get_live_tuples(l.leaf),
                        (SELECT greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c WHERE c.oid = l.leaf)))::bigint
    FROM timepart._leaves(rel) l;
END;

-- Exact rows, oldest and newest of one partition (a scan: only for small ones). The
-- oldest and newest of a timestamp or date key are moments in the table's time zone, as
-- its bounds are, whatever the session's.
-- Read with the owner's rights: planning the scan runs the owner's index code. No row
-- when the count could not be had (the partition is locked beyond the budget, or the
-- owner's code failed): the caller falls back on estimates, and one table's owner cannot
-- make everyone's statistics fail.
CREATE OR REPLACE FUNCTION timepart._exact_figures(rel oid, key_column name, key_type regtype, time_zone text)
RETURNS TABLE (record_count bigint, oldest timestamptz, newest timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
    moment text := CASE WHEN key_type = 'timestamptz'::regtype THEN '%s(%I)'
                        ELSE format('pg_catalog.timezone(%L, %%s(%%I)::pg_catalog.timestamp)', time_zone) END;
BEGIN
    BEGIN
        r := timepart._read_as_owner(rel::regclass, format(
            'SELECT pg_catalog.jsonb_build_array(count(*), ' || moment || ', ' || moment || ') FROM %s',
            'min', key_column, 'max', key_column, rel::regclass));
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timepart: % was not counted: %', rel::regclass, SQLERRM;
        RETURN;
    END;
    RETURN QUERY SELECT (r->>0)::bigint, (r->>1)::timestamptz, (r->>2)::timestamptz;
END $$;

-- The first and last bounds of the ANALYZE histogram of a column, as text (no row without
-- one): both ends in one lookup, so the pg_stats view is planned once. Sets, like the
-- next one, so the planner inlines them.
CREATE OR REPLACE FUNCTION timepart._histogram_ends(schema_name name, table_name name, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT st.histogram_bounds::text::text[] AS e FROM pg_catalog.pg_stats st
          WHERE st.schemaname = schema_name AND st.tablename = table_name AND st.attname = column_name) h;
END;

-- The same read straight from pg_statistic, for an owner who may (a superuser): the
-- pg_stats view costs a session's first statistics call several milliseconds to plan.
CREATE OR REPLACE FUNCTION timepart._statistic_ends(rel oid, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT (CASE 2 WHEN s.stakind1 THEN s.stavalues1 WHEN s.stakind2 THEN s.stavalues2 WHEN s.stakind3 THEN s.stavalues3
                         WHEN s.stakind4 THEN s.stavalues4 WHEN s.stakind5 THEN s.stavalues5 END)::text::text[] AS e  -- 2: a histogram
          FROM pg_catalog.pg_statistic s JOIN pg_catalog.pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
          -- A partition that is itself partitioned has only the inherited row.
          WHERE s.starelid = rel AND a.attname = column_name ORDER BY s.stainherit LIMIT 1) h;
END;

-- Whether a role could read every row's key itself: it may act on the table (owner,
-- member, superuser), or it may SELECT the key column and no row security hides rows from
-- it (none on the table, or the role bypasses it). Only then are exact key values shown.
CREATE OR REPLACE FUNCTION timepart._reads_every_row(who name, tbl regclass, key_column name) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(timepart._may_act(who, tbl), false)
        OR coalesce(pg_catalog.has_column_privilege(who, tbl, key_column, 'SELECT')
                    AND NOT (SELECT c.relrowsecurity FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
                    OR (SELECT r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) who)
                       AND pg_catalog.has_column_privilege(who, tbl, key_column, 'SELECT'), false);
END;

-- Live partitions up to this size are counted exactly on every read (a few ms at most).
CREATE OR REPLACE FUNCTION timepart._exact_limit_bytes() RETURNS bigint
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT 10485760::bigint;
END;

-- The shape of one partition_stats row, for passing rows around as JSON.
CREATE TYPE timepart.partition_stats_row AS (parent_table text, partition_name text, period text, range_start timestamptz,
    range_end timestamptz, record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
    index_count integer, is_default boolean, exact boolean);

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that could not read every row's key itself (no SELECT on it, or row security hides rows
   from it), unless monitor_sees_values. exact = true: the snapshot's
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
        SELECT c.parent, c.time_zone, c.key_column, c.key_type,
               c.monitor_sees_values OR timepart._reads_every_row(who, c.parent, c.key_column) AS reveal
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
        SELECT p.*, CASE WHEN p.relkind = 'p' THEN CASE WHEN p.live THEN p.tree_total END
                         WHEN p.live AND p.heap_bytes = 0 AND p.changes = 0
                              AND (SELECT c.relpersistence = 'p' FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid)
                              AND (SELECT bool_and(ic.relam = 403)  -- 403: btree's fixed oid
                                   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                                   WHERE i.indrelid = p.partition_oid) IS NOT FALSE
                         THEN (SELECT e.bytes FROM timepart._estimated_bytes(p.partition_oid, 0) e)
                         WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM (SELECT p.*, CASE WHEN NOT p.live THEN NULL WHEN p.relkind = 'p' THEN t.heap_bytes
                               ELSE pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes,
                     t.total_bytes AS tree_total, t.estimated_bytes AS tree_estimate, t.live_rows AS tree_rows
              FROM parts p
              -- A partition partitioned in turn: its figures are its leaves'.
              LEFT JOIN LATERAL (SELECT f.* FROM timepart._tree_figures(p.partition_oid) f WHERE p.relkind = 'p') t ON true
              OFFSET 0) p
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
                           SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column, p.key_type, p.time_zone) f
                           WHERE p.live AND p.heap_bytes > 0 AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._bounds_label(j.range_start, j.range_end, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                WHEN j.relkind = 'p' THEN coalesce(j.tree_rows, 0)
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       WHEN j.relkind = 'p' THEN coalesce(j.tree_estimate, 0)
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
COMMENT ON FUNCTION timepart.partition_stats(regclass) IS
    'Per-partition rows, size, oldest and newest record: exact for sealed partitions from the snapshot, estimates for live ones';

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
            -- A partition someone holds locked (or whose owner's code fails) is skipped: its
            -- last figures stay, nothing waits.
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
            FROM timepart._exact_figures(p.partition_oid, p.key_column, cfg.key_type, cfg.time_zone) f;
            IF NOT FOUND THEN
                skipped := skipped || p.partition_name::text;
                CONTINUE;
            END IF;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, CASE WHEN p.relkind = 'p' THEN (SELECT f.total_bytes FROM timepart._tree_figures(p.partition_oid) f)
                           ELSE pg_catalog.pg_total_relation_size(p.partition_oid) END, oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    CALL timepart._log('snapshot_stats', NULL, NULL, cardinality(skipped) = 0,
                          jsonb_build_object('partitions', stored, 'counted', counted, 'skipped', to_jsonb(skipped)),
                          CASE WHEN cardinality(skipped) > 0 THEN 'partitions not counted (locked, or their owner''s code failed): '
                                                                 || array_to_string(skipped, ', ') END,
                          started);
    RETURN stored;
END $$;
COMMENT ON FUNCTION timepart.snapshot_stats(timestamptz) IS 'Stores today''s exact per-partition figures; unchanged partitions are not recounted';

-- The snapshot's count of a partition while it has not changed since, else NULL. As
-- timepart's owner (SECURITY DEFINER): stats_history, which also holds exact key values,
-- is readable by no caller, yet a table owner's cleanup counts its rows through it; a
-- count is what partition_stats shows any monitor.
CREATE OR REPLACE FUNCTION timepart._snapshot_count(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT h.record_count FROM timepart.stats_history h
            WHERE h.partition_oid = rel AND h.changes_seen = timepart._changes(rel)
            ORDER BY h.snapshot_date DESC LIMIT 1);
END $$;

-- Exact rows of a partition: the snapshot's count while the partition has not changed
-- since, else a count(*).
CREATE OR REPLACE FUNCTION timepart._record_count(rel oid) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := timepart._snapshot_count(rel);
BEGIN
    IF n IS NULL THEN
        n := timepart._read_as_owner(rel::regclass, format('SELECT pg_catalog.to_jsonb(count(*)) FROM %s', rel::regclass))::text::bigint;
    END IF;
    RETURN n;
END $$;
