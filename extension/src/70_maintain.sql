-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest
-- row waiting in the default partition) to `ahead` periods past the current one,
-- never before the retention boundary. Periods that overlap a partition are skipped.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, premake integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, partition_interval, premake + 1, time_zone);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE time_zone) - cfg.retention) AT TIME ZONE time_zone);
    END IF;
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, default_part
    FROM timepart._partitions(tbl, time_zone) p;
    IF oldest IS NOT NULL AND pg_catalog.isfinite(oldest) THEN
        first_start := least(first_start, timepart._period_of(cfg, oldest));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
        default_min := (timepart._as_owner(tbl, format(
            'SELECT pg_catalog.to_jsonb(min(%I)::pg_catalog.timestamptz) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
            cfg.key_column, default_part,
            cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, time_zone),
            cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, time_zone)), true) #>> '{}')::timestamptz;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE time_zone;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_of(cfg, default_min));
        END IF;
    END IF;
    first_start := greatest(first_start, floor_start);
    -- A moment far from the existing partitions (a typo, a clock gone wrong) must not
    -- make thousands of tables: refuse before generating anything.
    IF extract(epoch FROM horizon - first_start) / 86400
       / (pg_catalog.date_part('day', partition_interval) + 31 * (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))) > premake + 1000 THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', premake + 1000, tbl USING ERRCODE = '22023',
            DETAIL = format('From %s to %s in periods of %s.', first_start, horizon, partition_interval),
            HINT = 'Check as_of and the oldest partition; create far-away periods with timepart.create_partition().';
    END IF;

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE time_zone AS s, (g + partition_interval) AT TIME ZONE time_zone AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE time_zone, (horizon AT TIME ZONE time_zone) - partition_interval, partition_interval) g
    ), existing AS (
        SELECT x.s, x.e FROM unnest(starts, ends) AS x(s, e)
    ), missing AS (
        SELECT pr.s, pr.e FROM periods pr WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s = pr.s)
    )
    SELECT m.s, m.e, CASE WHEN m.s > cur THEN 'premake' WHEN m.s = cur THEN 'current' ELSE 'gap' END
    FROM missing m
    WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s < m.e AND x.e > m.s)
    ORDER BY m.s;
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

-- One table's maintenance, under its advisory lock (taken by _run). Never raises:
-- failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, premake integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    res jsonb;
    steps jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
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
            PERFORM timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
                                  res, res->>'error', started);
            IF (res->>'ok')::boolean THEN created := created || to_jsonb(res->>'partition');
            ELSE errors := errors || to_jsonb(format('%s: %s', res->>'partition', res->>'error')); END IF;
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'partition', timepart._partition_name(cfg.parent, p.range_start, cfg.partition_interval, cfg.time_zone),
                   'action', 'build', 'range_start', p.range_start, 'range_end', p.range_end, 'reason', p.reason)
                   ORDER BY p.range_start), '[]'::jsonb)
        INTO steps FROM timepart._plan_partitions(cfg.parent, premake, as_of) p;
        res := timepart._run_steps(cfg, 'create_partition', steps, 'missing periods');
        created := created || (res->'done');
        errors := errors || (res->'errors');
        moved := (res->>'moved_rows')::bigint;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || to_jsonb(err);
    END;
    PERFORM timepart._log('maintain', cfg.parent, NULL, jsonb_array_length(errors) = 0,
        jsonb_build_object('created', created, 'errors', errors, 'moved_rows', moved, 'premake', premake, 'as_of', as_of),
        NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(errors)), '; '), ''), started);
    RETURN jsonb_build_object('table', cfg.parent::text, 'created', created, 'errors', errors, 'moved_rows', moved);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
BEGIN
    IF premake IS NOT NULL THEN
        PERFORM timepart._check_premake(premake);
    END IF;
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite moment' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
    RETURN timepart._run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
END $$;
COMMENT ON FUNCTION timepart.maintain(regclass, integer, timestamptz) IS
    'Creates current and future partitions, fills gaps, empties the default partition; returns the seed''s /maintain shape';
