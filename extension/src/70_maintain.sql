-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest row
-- waiting in the default partition) to `premake` periods past the current one, never
-- before the retention boundary nor more than premake + 1000 periods back. A period a
-- hand-made partition covers in part yields the pieces it leaves uncovered (whole =
-- false), so no hole stays next to it. Refuses a moment far past the newest partition.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, premake integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text, whole boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    cap integer := premake + 1000;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, partition_interval, premake + 1, time_zone);
    -- Rows or partitions further back than this are not filled in: reported, left alone.
    window_start timestamptz := timepart._period_add(cur, partition_interval, -cap, time_zone);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    newest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
    period_days numeric := pg_catalog.date_part('day', partition_interval)
                           + 31 * (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval));
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE time_zone) - cfg.retention) AT TIME ZONE time_zone);
    END IF;
    floor_start := greatest(floor_start, window_start);
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_start)),
           max(p.range_end) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_end)),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, newest, default_part
    FROM timepart._partitions(tbl, time_zone) p;
    -- A moment far past the newest partition (a typo, a clock gone wrong) must not make
    -- thousands of tables: refuse before generating anything. What a run would create
    -- is counted, not the table's history.
    IF newest IS NOT NULL AND extract(epoch FROM horizon - newest) / 86400 / period_days > cap THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', cap, tbl USING ERRCODE = '22023',
            DETAIL = format('The newest partition ends %s; as_of %s asks for partitions up to %s in periods of %s.',
                            newest, as_of, horizon, partition_interval),
            HINT = 'Check as_of; create far-away periods with timepart.create_partition().';
    END IF;
    IF oldest IS NOT NULL THEN
        first_start := least(first_start, timepart._period_of(cfg, greatest(oldest, floor_start)));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        -- Only rows inside the window count: a stray ancient or far-future row stays
        -- where it is (the rows_in_default_partition alert reports it).
        PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
        default_min := (timepart._read_as_owner(tbl, format(
            'SELECT pg_catalog.to_jsonb(min(%I)::pg_catalog.timestamptz) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
            cfg.key_column, default_part,
            cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, time_zone),
            cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, time_zone))) #>> '{}')::timestamptz;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE time_zone;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_of(cfg, default_min));
        END IF;
    END IF;
    first_start := greatest(first_start, timepart._period_of(cfg, floor_start));

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE time_zone AS s, (g + partition_interval) AT TIME ZONE time_zone AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE time_zone, (horizon AT TIME ZONE time_zone) - partition_interval, partition_interval) g
    ), existing AS (
        SELECT x.s, x.e FROM unnest(starts, ends) AS x(s, e)
    ), missing AS (
        SELECT pr.s, pr.e, EXISTS (SELECT 1 FROM existing x WHERE x.s < pr.e AND x.e > pr.s) AS partial
        FROM periods pr WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s = pr.s AND x.e = pr.e)
    ), cuts AS (
        -- The parts of a period that partitions cover (partitions never overlap each other).
        SELECT m.s AS ps, m.e AS pe, greatest(x.s, m.s) AS os, least(x.e, m.e) AS oe
        FROM missing m JOIN existing x ON x.s < m.e AND x.e > m.s WHERE m.partial
    ), pieces AS (
        SELECT c.ps, coalesce(lag(c.oe) OVER w, c.ps) AS s, c.os AS e FROM cuts c WINDOW w AS (PARTITION BY c.ps ORDER BY c.os)
        UNION ALL
        SELECT c.ps, max(c.oe), c.pe FROM cuts c GROUP BY c.ps, c.pe
    )
    SELECT m.s, m.e, CASE WHEN m.s > cur THEN 'premake' WHEN m.s = cur THEN 'current' ELSE 'gap' END, true
    FROM missing m WHERE NOT m.partial
    UNION ALL
    SELECT p.s, p.e, 'hole', false FROM pieces p
    -- A hole lies between partitions, or in the current and later periods, or where rows
    -- wait in the default partition: not before the oldest partition for its own sake.
    WHERE p.s < p.e AND (p.s >= oldest OR p.ps >= cur OR (p.s <= default_min AND p.e > default_min))
    ORDER BY 1;
END $$;

-- Creates the default partition of a table configured for one when it has none.
CREATE OR REPLACE FUNCTION timepart._ensure_default(cfg timepart.config) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    part_name name;
BEGIN
    IF NOT cfg.default_partition
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table WHERE partrelid = cfg.parent AND partdefid <> 0) THEN
        RETURN NULL;
    END IF;
    part_name := timepart._fit_name((SELECT relname FROM pg_catalog.pg_class WHERE oid = cfg.parent), 'default');
    PERFORM timepart._check_name_free(cfg.parent, part_name);
    RETURN timepart._attempt(cfg, 'build', part_name, NULL, NULL) || jsonb_build_object('partition', part_name);
END $$;

-- One table's maintenance, under its runner lock (taken by _run). Never raises:
-- failures come back in "errors" and the log. The current and later periods come first,
-- then the older ones (gaps, whose rows wait in the default partition: the costly moves).
-- The jobs' first pass over a table (timepart.job_pass = 'upcoming', _each) makes only
-- the current and later ones, and commits them before any move of older rows can be
-- cancelled (a statement_timeout) or fail.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, premake integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cur timestamptz := timepart._period_of(cfg, as_of);
    upcoming_only boolean := coalesce(pg_catalog.current_setting('timepart.job_pass', true), '') = 'upcoming';
    older integer := 0;
    res jsonb;
    steps jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    err text;
BEGIN
    BEGIN
        BEGIN
            res := timepart._ensure_default(cfg);
        EXCEPTION WHEN OTHERS THEN
            -- A default partition that cannot be made must not stop the periods below.
            res := jsonb_build_object('ok', false, 'partition', cfg.parent::text || ' default', 'error', SQLERRM);
        END;
        IF res IS NOT NULL THEN
            CALL timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
                                  res, res->>'error', started);
            IF (res->>'ok')::boolean THEN created := created || to_jsonb(res->>'partition');
            ELSE errors := errors || to_jsonb(format('%s: %s', res->>'partition', res->>'error')); END IF;
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'partition', CASE WHEN p.whole THEN timepart._partition_name(cfg.parent, p.range_start, cfg.partition_interval, cfg.time_zone)
                                     ELSE timepart._piece_name(cfg.parent, p.range_start, p.range_end, cfg.time_zone) END,
                   'action', 'build', 'range_start', p.range_start, 'range_end', p.range_end, 'reason', p.reason)
                   ORDER BY p.range_end <= cur, p.range_start) FILTER (WHERE NOT upcoming_only OR p.range_end > cur), '[]'::jsonb),
               count(*) FILTER (WHERE upcoming_only AND p.range_end <= cur)
        INTO steps, older FROM timepart._plan_partitions(cfg.parent, premake, as_of) p;
        res := timepart._run_steps(cfg, 'create_partition', steps, 'missing periods');
        created := created || (res->'done');
        errors := errors || (res->'errors');
        moved := (res->>'moved_rows')::bigint;
        left_over := (res->>'left')::integer + older;  -- the older periods the upcoming pass left
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || to_jsonb(err);
    END;
    CALL timepart._log('maintain', cfg.parent, NULL, jsonb_array_length(errors) = 0,
        jsonb_build_object('created', created, 'errors', errors, 'moved_rows', moved, 'premake', premake, 'as_of', as_of,
                           'left', left_over),
        timepart._joined_errors(errors), started);
    RETURN jsonb_build_object('table', cfg.parent::text, 'created', created, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
DECLARE
    result jsonb;
BEGIN
    IF premake IS NOT NULL THEN
        PERFORM timepart._check_premake(premake);
    END IF;
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(maintain.parent) THEN
        CALL timepart._admin_run('maintain', maintain.parent, maintain.premake, NULL, false, as_of, result);
        RETURN result;
    END IF;
    RETURN timepart._run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
END $$;
COMMENT ON FUNCTION timepart.maintain(regclass, integer, timestamptz) IS
    'Creates current and future partitions, fills gaps, empties the default partition; returns the seed''s /maintain shape';
