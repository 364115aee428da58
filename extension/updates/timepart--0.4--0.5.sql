-- timepart--0.4--0.5.sql: security. Roles partition_admin and partition_monitor, a pinned
-- search_path on every function, SECURITY DEFINER for reading and for jobs that write only
-- timepart's tables, PUBLIC revoked, the ownership guard on timepart.config, partitions
-- owned by their parent's owner; intervals over 10 years and runs that would create over
-- 1000 partitions refused; functions cleaned for plpgsql_check.

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.5'::text $$;

-- ==== src/35_registry.sql
-- Registry: adopting a partitioned table (manage) and letting it go (unmanage).

-- The refusal for an interval that is not a whole number of days or of months.
CREATE OR REPLACE FUNCTION timepart._check_interval(step interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF step IS NULL OR step <= interval '0'
       OR step <> pg_catalog.make_interval(months => (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))::int,
                                           days => pg_catalog.date_part('day', step)::int)
       OR (pg_catalog.date_part('day', step) <> 0 AND pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step) <> 0) THEN
        RAISE EXCEPTION 'partition interval must be a whole number of days or of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(step::text, 'NULL')),
            HINT = 'Use e.g. ''1 day'', ''7 days'', ''1 month'' or ''3 months''; not hours, and not months and days mixed.';
    END IF;
    IF step > interval '10 years' THEN
        RAISE EXCEPTION 'partition interval is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 10 years.', step),
            HINT = 'Partition by month or year; a table that needs longer partitions needs none.';
    END IF;
END $$;

-- Creates the templated indexes a partition lacks and attaches each to the parent's
-- index. Returns the names created. Runs inside the caller's sub-transaction.
CREATE OR REPLACE FUNCTION timepart._index_partition(tbl regclass, part oid) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    created text[] := '{}'::text[];
BEGIN
    -- One query says, for every template, the index's name, whether it exists and
    -- whether it still needs attaching to the parent's index.
    FOR t IN
        WITH p AS (
            SELECT c.relname, c.relnamespace, n.nspname, c.relispartition
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = part
        ), want AS (
            SELECT it AS tmpl, timepart._fit_name(p.relname, it.suffix) AS idx, p.*,
                   timepart._template_parent_index(tbl, it.suffix) AS parent_idx
            FROM timepart.index_templates it, p WHERE it.parent = tbl
        )
        SELECT w.*, x.oid AS idx_oid,
               EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = x.oid) AS attached
        FROM want w
        LEFT JOIN pg_catalog.pg_class x ON x.relname = w.idx AND x.relnamespace = w.relnamespace
        ORDER BY (w.tmpl).suffix
    LOOP
        IF t.idx_oid IS NULL THEN
            EXECUTE timepart._template_sql(t.tmpl, t.idx, t.nspname, t.relname, false);
            created := created || t.idx::text;
        END IF;
        -- An attached partition's index is attached here; a new table's at its ATTACH.
        IF t.parent_idx IS NOT NULL AND t.relispartition AND NOT t.attached THEN
            EXECUTE format('ALTER INDEX %s ATTACH PARTITION %I.%I', t.parent_idx, t.nspname, t.idx);
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- Builds one partition inside the caller's transaction: CREATE TABLE (LIKE parent),
-- rows for its range moved out of the default partition, templated indexes, ATTACH.
-- A bound of NULL means the default partition. Returns what it did.
CREATE OR REPLACE FUNCTION timepart._build_partition(cfg timepart.config, part_name name,
                                                     range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    part_schema name;
    default_part regclass;
    part regclass;
    moved bigint := 0;
    indexes text[];
    cols text := timepart._column_list(cfg.parent);
BEGIN
    SELECT n.nspname INTO part_schema FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = cfg.parent;
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;

    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES)', part_schema, part_name, cfg.parent);
    part := format('%I.%I', part_schema, part_name)::regclass;
    -- Partitions belong to whoever owns the parent, not to whoever ran maintenance.
    IF (SELECT relowner FROM pg_catalog.pg_class WHERE oid = part) <> (SELECT relowner FROM pg_catalog.pg_class WHERE oid = cfg.parent) THEN
        EXECUTE format('ALTER TABLE %s OWNER TO %I', part,
                       (SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE oid = cfg.parent));
    END IF;

    IF range_start IS NOT NULL AND default_part IS NOT NULL THEN
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %s AND %I < %s RETURNING *) '
                       'INSERT INTO %s (%s) SELECT %s FROM moved',
                       default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
                       cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
                       part, cols, cols);
        GET DIAGNOSTICS moved = ROW_COUNT;
    END IF;

    indexes := timepart._index_partition(cfg.parent, part);
    IF range_start IS NULL THEN
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', cfg.parent, part);
    ELSE
        EXECUTE format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)', cfg.parent, part,
                       timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
                       timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone));
    END IF;
    -- ATTACH matched the indexes built above to the parent's templated indexes.
    RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved);
END $$;

-- One step on one partition (action 'build': _build_partition, 'retire':
-- _retire_partition) in a sub-transaction,
-- retried with backoff while it only fails for want of a lock. Never raises:
-- returns the step's result with {"ok", "attempts"} or {"ok": false, "error", "sqlstate"}.
CREATE OR REPLACE FUNCTION timepart._attempt(cfg timepart.config, action text, part_name name,
                                             range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
    old_timeout text := pg_catalog.current_setting('lock_timeout');
    attempt int := 0;
    err text;
    state text;
BEGIN
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', (extract(epoch FROM cfg.lock_timeout) * 1000)::bigint::text || 'ms', true);
            result := CASE action
                WHEN 'build' THEN timepart._build_partition(cfg, part_name, range_start, range_end)
                WHEN 'retire' THEN timepart._retire_partition(cfg, part_name, range_start, range_end)
                END;
            PERFORM pg_catalog.set_config('lock_timeout', old_timeout, true);
            RETURN result || jsonb_build_object('ok', true, 'attempts', attempt);
        EXCEPTION
            WHEN lock_not_available THEN
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                IF attempt > cfg.lock_retries THEN
                    RETURN jsonb_build_object('ok', false, 'attempts', attempt, 'sqlstate', state,
                        'error', format('gave up after %s lock waits of %s: %s', attempt, cfg.lock_timeout, err));
                END IF;
                PERFORM pg_catalog.pg_sleep(0.05 * attempt);
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                RETURN jsonb_build_object('ok', false, 'attempts', attempt, 'sqlstate', state, 'error', err);
        END;
    END LOOP;
    RETURN NULL;  -- not reached: every way out of the loop returns
END $$;

-- One table's cleanup. Never raises: failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, keep interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    boundary timestamptz := timepart._retention_boundary(cfg, keep, as_of);
    p record;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
    rows bigint;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
        RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
        PERFORM timepart._log('cleanup', cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
        RETURN jsonb_build_object('removed', removed, 'errors', errors, 'skipped', true);
    END IF;
    FOR p IN SELECT * FROM timepart._plan_retention(cfg, keep, as_of) LOOP
        IF p.verdict = 'straddles' THEN
            kept := kept || jsonb_build_object('partition', p.partition_name, 'reason',
                format('its range %s to %s reaches past the retention boundary %s', p.range_start, p.range_end, boundary));
            CONTINUE;
        END IF;
        IF dry_run THEN
            EXECUTE format('SELECT count(*) FROM %I.%I', p.schema_name, p.partition_name) INTO rows;
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, rows));
            CONTINUE;
        END IF;
        step_started := pg_catalog.clock_timestamp();
        res := timepart._attempt(cfg, 'retire', p.partition_name, p.range_start, p.range_end)
               || jsonb_build_object('range_start', p.range_start, 'range_end', p.range_end, 'boundary', boundary);
        PERFORM timepart._log('cleanup_partition', cfg.parent, p.partition_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, (res->>'record_count')::bigint));
        ELSE
            errors := errors || to_jsonb(format('%s: %s', p.partition_name, res->>'error'));
        END IF;
    END LOOP;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        EXECUTE format('SELECT count(*) FROM %s WHERE %I < %s', default_part, cfg.key_column,
                       timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)) INTO default_old;
    END IF;
    res := jsonb_build_object('table', cfg.parent::text, 'boundary', boundary, 'action', cfg.retention_action,
                              'dry_run', dry_run, 'removed', removed, 'kept', kept, 'errors', errors,
                              'default_rows_past_retention', default_old);
    PERFORM timepart._log(CASE WHEN dry_run THEN 'cleanup_dry_run' ELSE 'cleanup' END, cfg.parent, NULL,
                          jsonb_array_length(errors) = 0, res, NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(errors)), '; '), ''), started);
    IF jsonb_array_length(kept) > 0 OR default_old > 0 THEN
        RAISE WARNING 'timepart: % keeps data past its retention boundary %', cfg.parent, boundary
            USING DETAIL = format('%s partition(s) reach past the boundary; %s row(s) past it wait in the default partition.',
                                  jsonb_array_length(kept), default_old),
                  HINT = 'Run maintain to move default rows into partitions; split or drop straddling partitions yourself.';
    END IF;
    RETURN res || jsonb_build_object('skipped', false);
END $$;

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    dropped jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    tables jsonb := '[]'::jsonb;
BEGIN
    IF retention IS NOT NULL AND retention <= interval '0' THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', retention), HINT = 'Use e.g. ''12 months'', or NULL for each table''s configured retention.';
    END IF;
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    IF cleanup.parent IS NOT NULL THEN
        PERFORM timepart._config(cleanup.parent);
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; cleanup runs on the primary';
        RETURN jsonb_build_object('success', true, 'created_partitions', '[]'::jsonb, 'dropped_partitions', dropped,
                                  'errors', errors, 'execution_time_ms', 0, 'dry_run', dry_run, 'tables', tables);
    END IF;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE cleanup.parent IS NULL OR c.parent = cleanup.parent ORDER BY c.parent::text LOOP
        IF coalesce(cleanup.retention, cfg.retention) IS NULL THEN
            tables := tables || jsonb_build_object('table', cfg.parent::text, 'skipped', 'no retention configured');
            CONTINUE;
        END IF;
        res := timepart._cleanup_table(cfg, coalesce(cleanup.retention, cfg.retention), dry_run, as_of);
        dropped := dropped || coalesce(res->'removed', '[]'::jsonb);
        errors := errors || coalesce(res->'errors', '[]'::jsonb);
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', '[]'::jsonb,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'dry_run', dry_run, 'tables', tables);
END $$;

-- ==== src/70_maintain.sql
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
    cur timestamptz := timepart._period_start(as_of, step, tz);
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
        floor_start := timepart._period_start(((cur AT TIME ZONE tz) - cfg.retention) AT TIME ZONE tz, step, tz);
    END IF;
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, default_part
    FROM timepart._partitions(tbl, tz) p;
    IF oldest IS NOT NULL AND pg_catalog.isfinite(oldest) THEN
        first_start := least(first_start, timepart._period_start(oldest, step, tz));
    END IF;
    IF default_part IS NOT NULL THEN
        EXECUTE format('SELECT min(%I)::timestamptz FROM %s WHERE %I >= %s AND %I < %s', cfg.key_column, default_part,
                       cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, tz),
                       cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, tz))
            INTO default_min;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE tz;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_start(default_min, step, tz));
        END IF;
    END IF;
    first_start := greatest(first_start, floor_start);
    -- A moment far from the existing partitions (a typo, a clock gone wrong) must not
    -- make thousands of tables: refuse before generating anything.
    IF extract(epoch FROM horizon - first_start) / 86400
       / (pg_catalog.date_part('day', step) + 30 * (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))) > 1000 THEN
        RAISE EXCEPTION 'maintain would create more than 1000 partitions of %', tbl USING ERRCODE = '22023',
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
        res := timepart._ensure_default(cfg);
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

CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one; the scheduled jobs too
   when no table is named), keeps each alert's lifecycle (an open alert is updated,
   not duplicated; one no longer raised is resolved), announces new ones with
   pg_notify('timepart_alerts', json) and a WARNING, logs the run, and returns the
   open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    evaluated jsonb := '[]'::jsonb;
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}'::text[];
BEGIN
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
    END IF;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE check_alerts.parent IS NULL OR c.parent = check_alerts.parent LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL THEN
        checked := checked || '(scheduler)'::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate_jobs(as_of) e), '[]'::jsonb);
    END IF;

    FOR a IN SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, '') AS partition_name, e.message,
                    e.recommendation, e.value, e.threshold
             FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                     message text, recommendation text, value numeric, threshold numeric) LOOP
        UPDATE timepart.alerts x SET last_seen = now_ts, message = a.message, value = a.value, threshold = a.threshold,
                                    severity = a.severity, recommendation = a.recommendation
        WHERE x.resolved_at IS NULL AND x.alert_type = a.alert_type AND x.parent_table = a.parent_table
          AND x.partition_name = a.partition_name;
        IF NOT FOUND THEN
            INSERT INTO timepart.alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value,
                                         threshold, first_seen, last_seen)
            VALUES (a.alert_type, a.severity, a.parent_table, a.partition_name, a.message, a.recommendation, a.value,
                    a.threshold, now_ts, now_ts);
            new_count := new_count + 1;
            PERFORM pg_catalog.pg_notify('timepart_alerts', jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity,
                'parent_table', a.parent_table, 'partition_name', NULLIF(a.partition_name, ''), 'message', a.message,
                'recommendation', a.recommendation, 'value', a.value, 'threshold', a.threshold, 'first_seen', now_ts)::text);
            RAISE WARNING 'timepart alert [%] %', a.severity, a.message USING HINT = coalesce(a.recommendation, '');
        END IF;
    END LOOP;
    UPDATE timepart.alerts x SET resolved_at = now_ts
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(evaluated) e
                      WHERE e->>'alert_type' = x.alert_type AND e->>'parent_table' = x.parent_table
                        AND coalesce(e->>'partition_name', '') = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    PERFORM timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;

CREATE OR REPLACE FUNCTION timepart.schedule_jobs(maintain_schedule text DEFAULT '17 3 * * 0',
                                                  cleanup_schedule text DEFAULT '37 4 1 * *',
                                                  health_schedule text DEFAULT '7 6 * * *',
                                                  stats_schedule text DEFAULT '47 2 * * *',
                                                  cron_history_schedule text DEFAULT '57 5 * * *',
                                                  cron_history_keep interval DEFAULT '30 days')
RETURNS TABLE (jobname text, schedule text, command text) LANGUAGE plpgsql AS $$
/* The seed's jobs in pg_cron, at quiet hours: weekly maintain, monthly cleanup (each
   table's configured retention; email_events keeps 12 months), daily health check
   (check_alerts), daily statistics snapshot, plus a daily trim of
   cron.job_run_details. Named timepart-<job>@<database>; running it again updates
   them in place. Works when pg_cron lives in another database (through dblink). */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    statements text;
    new_jobs timepart.jobs[];
BEGIN
    IF cron_history_keep IS NULL OR cron_history_keep <= interval '0' THEN
        RAISE EXCEPTION 'cron_history_keep must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cron_history_keep::text, 'NULL')), HINT = 'Keep e.g. ''30 days'' of job runs.';
    END IF;
    SELECT array_agg(ROW(j.job, format('timepart-%s@%s', j.job, current_database()), j.sched, j.cmd, j.db,
                         timepart._expected_every(j.sched), now())::timepart.jobs)
    INTO new_jobs
    FROM (VALUES
        ('maintain', maintain_schedule, 'SELECT timepart.maintain()', current_database()),
        ('cleanup', cleanup_schedule, 'SELECT timepart.cleanup()', current_database()),
        ('health', health_schedule, 'SELECT count(*) FROM timepart.check_alerts()', current_database()),
        ('stats', stats_schedule, 'SELECT timepart.snapshot_stats()', current_database()),
        ('cron-history', cron_history_schedule,
         format('DELETE FROM cron.job_run_details WHERE end_time < now() - %L::interval', cron_history_keep),
         coalesce(pg_catalog.current_setting('cron.database_name', true), current_database()))
    ) AS j(job, sched, cmd, db);
    IF EXISTS (SELECT 1 FROM unnest(new_jobs) n WHERE n.schedule IS NULL
               OR array_length(pg_catalog.regexp_split_to_array(pg_catalog.btrim(n.schedule), '\s+'), 1) <> 5) THEN
        RAISE EXCEPTION 'a cron schedule must have five fields' USING ERRCODE = '22023',
            DETAIL = (SELECT string_agg(format('%s: %s', n.job, coalesce(n.schedule, 'NULL')), ', ') FROM unnest(new_jobs) n),
            HINT = 'minute hour day-of-month month day-of-week, e.g. ''17 3 * * 0'' for Sundays at 03:17.';
    END IF;

    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM unnest(new_jobs);
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM unnest(new_jobs) n;
    PERFORM timepart._cron_exec(statements);
    PERFORM timepart._log('schedule_jobs', NULL, NULL, true,
        (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM unnest(new_jobs) n), NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM unnest(new_jobs) n ORDER BY n.job;
END $$;

-- The scheduled jobs for summary(): what schedule_jobs() set up, with pg_cron's view
-- of each (active, latest run). Never raises: an unreachable pg_cron is reported.
CREATE OR REPLACE FUNCTION timepart._jobs_summary() RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN '[]'::jsonb;
    END IF;
    RETURN (SELECT jsonb_agg(jsonb_build_object('job', j.job, 'jobname', j.jobname, 'schedule', j.schedule,
                'command', j.command, 'database', j.run_in, 'expected_every', j.expected_every, 'in_pg_cron', c.jobname IS NOT NULL,
                'active', c.active, 'last_status', c.last_status, 'last_start', c.last_start, 'last_end', c.last_end,
                'last_success', c.last_success, 'last_message', c.last_message) ORDER BY j.job)
            FROM timepart.jobs j LEFT JOIN timepart._cron_jobs() c ON c.jobname = j.jobname);
EXCEPTION WHEN OTHERS THEN
    RETURN jsonb_build_array(jsonb_build_object('error', 'pg_cron cannot be reached: ' || SQLERRM));
END $$;

-- ==== src/99_security.sql
-- Security, in one place: the two roles, who may execute and read what, which
-- functions act with the owner's rights (SECURITY DEFINER), and a pinned search_path.
-- Every version script ends by running timepart._harden(), so functions added or
-- replaced by an upgrade get the same treatment as a fresh install.
--
-- The model:
-- * Operations (manage, maintain, cleanup, create_partition, ...) run with the
--   caller's rights: PostgreSQL's own ownership rules decide whose tables can be
--   partitioned, and the guard trigger on timepart.config refuses to register a
--   table the caller does not own (even by a direct INSERT).
-- * Reading (partition_stats, health, summary, the log) and the jobs that only read
--   user tables or write timepart's own (snapshot_stats, check_alerts, scheduling) run
--   with the owner's rights, so partition_monitor needs no access to the data. They
--   accept managed tables only.
-- * Every PL/pgSQL function and every public wrapper runs with search_path pinned to
--   pg_catalog, pg_temp, so nothing planted on a caller's search_path is picked up.
--   Small private SQL helpers stay unpinned so the planner can inline them; PUBLIC
--   cannot execute them and they are only called from pinned functions.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'partition_monitor') THEN
        CREATE ROLE partition_monitor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'partition_admin') THEN
        CREATE ROLE partition_admin NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'timepart: could not create roles partition_admin and partition_monitor: %', SQLERRM
        USING HINT = 'Create them as a role with CREATEROLE, then run SELECT timepart._harden();';
END $$;

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Runs as the caller: only an owner of a table (or a member of its owner role) may register
   or reconfigure it. */
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = NEW.parent), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to manage it', NEW.parent USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s.', NEW.parent,
                            (SELECT relowner::regrole FROM pg_catalog.pg_class WHERE oid = NEW.parent)),
            HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS config_owner_guard ON timepart.config;

CREATE TRIGGER config_owner_guard BEFORE INSERT OR UPDATE ON timepart.config
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard();

-- Which public functions a role may call. Everything else in the schema is private.
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log']
$$;

-- Functions that act with the owner's rights (they read user tables or write timepart's own).
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT timepart._monitor_functions() || ARRAY['timepart.snapshot_stats', 'timepart.check_alerts',
                                                  'timepart.schedule_jobs', 'timepart.unschedule_jobs']
$$;

-- The seed's names timepart puts in public.
CREATE OR REPLACE FUNCTION timepart._public_names() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['create_email_events_partition', 'maintain_email_events_partitions', 'cleanup_old_email_events_partitions',
                 'get_email_events_partition_stats', 'get_partition_maintenance_log']
$$;

CREATE OR REPLACE FUNCTION timepart._harden() RETURNS void
LANGUAGE plpgsql AS $$
/* Pins search_path, sets SECURITY DEFINER where listed, revokes everything from
   PUBLIC and grants the two roles their share. Safe to run again. */
DECLARE
    f record;
    roles_exist boolean := (SELECT count(*) = 2 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_admin', 'partition_monitor'));
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, n.nspname || '.' || p.proname AS qname, l.lanname, p.prokind, n.nspname
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'timepart' OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they qualify every name instead.
        IF f.prokind = 'f' AND (f.lanname = 'plpgsql' OR f.nspname = 'public' OR f.qname = ANY (timepart._definer_functions())) THEN
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        IF roles_exist THEN
            EXECUTE format('GRANT EXECUTE ON %s %s TO partition_admin', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
            IF f.qname = ANY (timepart._monitor_functions()) THEN
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO partition_monitor', f.sig);
            END IF;
        END IF;
    END LOOP;

    REVOKE ALL ON ALL TABLES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON public.partition_maintenance_log FROM PUBLIC;
    IF roles_exist THEN
        GRANT partition_monitor TO partition_admin;
        GRANT USAGE ON SCHEMA timepart TO partition_admin, partition_monitor;
        GRANT SELECT ON ALL TABLES IN SCHEMA timepart TO partition_monitor;
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA timepart TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;

SELECT timepart._harden();

