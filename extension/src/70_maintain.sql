-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest
-- row waiting in the default partition) to `ahead` periods past the current one,
-- never before the retention boundary. Periods that overlap a partition are skipped.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, ahead integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    step interval := cfg.partition_interval;
    tz text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, step, ahead + 1, tz);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE tz) - cfg.retention) AT TIME ZONE tz);
    END IF;
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, default_part
    FROM timepart._partitions(tbl, tz) p;
    IF oldest IS NOT NULL AND pg_catalog.isfinite(oldest) THEN
        first_start := least(first_start, timepart._period_of(cfg, oldest));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
        default_min := (timepart._as_owner(tbl, format(
            'SELECT pg_catalog.to_jsonb(min(%I)::pg_catalog.timestamptz) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
            cfg.key_column, default_part,
            cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, tz),
            cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, tz)), true) #>> '{}')::timestamptz;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE tz;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_of(cfg, default_min));
        END IF;
    END IF;
    first_start := greatest(first_start, floor_start);
    -- A moment far from the existing partitions (a typo, a clock gone wrong) must not
    -- make thousands of tables: refuse before generating anything.
    IF extract(epoch FROM horizon - first_start) / 86400
       / (pg_catalog.date_part('day', step) + 31 * (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))) > ahead + 1000 THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', ahead + 1000, tbl USING ERRCODE = '22023',
            DETAIL = format('From %s to %s in periods of %s.', first_start, horizon, step),
            HINT = 'Check as_of and the oldest partition; create far-away periods with timepart.create_partition().';
    END IF;

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE tz AS s, (g + step) AT TIME ZONE tz AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE tz, (horizon AT TIME ZONE tz) - step, step) g
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

-- One table's maintenance. Never raises: failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, ahead integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    plan record;
    part_name name;
    res jsonb;
    created text[] := '{}'::text[];
    errors text[] := '{}'::text[];
    moved bigint := 0;
    err text;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
        RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
        PERFORM timepart._log('maintain', cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
        RETURN jsonb_build_object('created', '[]'::jsonb, 'errors', '[]'::jsonb, 'skipped', true);
    END IF;
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
            IF (res->>'ok')::boolean THEN created := created || (res->>'partition');
            ELSE errors := errors || format('%s: %s', res->>'partition', res->>'error'); END IF;
        END IF;
        FOR plan IN SELECT * FROM timepart._plan_partitions(cfg.parent, ahead, as_of) LOOP
            step_started := pg_catalog.clock_timestamp();
            part_name := timepart._partition_name(cfg.parent, plan.range_start, cfg.partition_interval, cfg.time_zone);
            BEGIN
                PERFORM timepart._check_name_free(cfg.parent, part_name);
                res := timepart._attempt(cfg, 'build', part_name, plan.range_start, plan.range_end);
            EXCEPTION WHEN OTHERS THEN
                res := jsonb_build_object('ok', false, 'error', SQLERRM, 'sqlstate', SQLSTATE);
            END;
            res := res || jsonb_build_object('range_start', plan.range_start, 'range_end', plan.range_end, 'reason', plan.reason);
            PERFORM timepart._log('create_partition', cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
            IF (res->>'ok')::boolean THEN
                created := created || part_name::text;
                moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
            ELSE
                errors := errors || format('%s: %s', part_name, res->>'error');
                -- Traffic holds the table: back off for the whole run, not per partition.
                IF res->>'sqlstate' = '55P03' THEN
                    errors := errors || format('%s: the other missing periods are left for the next run', cfg.parent);
                    EXIT;
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || err;
    END;
    PERFORM timepart._log('maintain', cfg.parent, NULL, cardinality(errors) = 0,
        jsonb_build_object('created', to_jsonb(created), 'errors', to_jsonb(errors), 'moved_rows', moved,
                           'premake', ahead, 'as_of', as_of), NULLIF(array_to_string(errors, '; '), ''), started);
    RETURN jsonb_build_object('created', to_jsonb(created), 'errors', to_jsonb(errors), 'moved_rows', moved, 'skipped', false);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    skipped jsonb := '[]'::jsonb;
BEGIN
    IF premake IS NOT NULL AND (premake < 1 OR premake > 1000) THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', premake), HINT = 'Pass how many future periods to keep ready, e.g. 6.';
    END IF;
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite moment' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
    IF maintain.parent IS NOT NULL THEN
        PERFORM timepart._config(maintain.parent);
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; maintenance runs on the primary';
        RETURN jsonb_build_object('success', true, 'created_partitions', created, 'dropped_partitions', '[]'::jsonb,
                                  'errors', errors, 'execution_time_ms', 0, 'skipped', jsonb_build_array('replica'));
    END IF;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE maintain.parent IS NULL OR c.parent = maintain.parent ORDER BY c.parent::text LOOP
        res := timepart._maintain_table(cfg, coalesce(maintain.premake, cfg.premake), as_of);
        created := created || (res->'created');
        errors := errors || (res->'errors');
        moved := moved + (res->>'moved_rows')::bigint;
        IF (res->>'skipped')::boolean THEN skipped := skipped || to_jsonb(cfg.parent::text); END IF;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', created,
        'dropped_partitions', '[]'::jsonb, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'moved_rows', moved, 'skipped', skipped);
END $$;
COMMENT ON FUNCTION timepart.maintain(regclass, integer, timestamptz) IS
    'Creates current and future partitions, fills gaps, empties the default partition; returns the seed''s /maintain shape';
