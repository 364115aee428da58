-- The one runner of maintain and cleanup. _run takes the tables one at a time (the
-- replica exit, the per-table advisory lock, the result shape); _run_steps takes one
-- table's partition steps one at a time (each logged, the back-off on a lock timeout).

-- The managed tables (all, or one), in a stable order. A configuration whose table
-- was dropped is not a managed table.
CREATE OR REPLACE FUNCTION timepart._managed(parent regclass DEFAULT NULL) RETURNS SETOF timepart.config
LANGUAGE sql STABLE AS $$
    SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE _managed.parent IS NULL OR c.parent = _managed.parent
    ORDER BY c.parent::text
$$;

-- Runs `operation` ('maintain' or 'cleanup') on every managed table, or one. Each table
-- is taken under its advisory lock, or skipped (another run holds it); nothing runs on a
-- replica. Returns the seed's shape: success, created_partitions, dropped_partitions,
-- errors, execution_time_ms, plus moved_rows, skipped (tables) and tables (each one's result).
CREATE OR REPLACE FUNCTION timepart._run(operation text, parent regclass, premake integer, retention interval,
                                         dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    created jsonb := '[]'::jsonb;
    dropped jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    skipped jsonb := '[]'::jsonb;
    tables jsonb := '[]'::jsonb;
    moved bigint := 0;
BEGIN
    IF _run.parent IS NOT NULL THEN
        PERFORM timepart._config(_run.parent);
    END IF;
    -- cleanup removes data: a moment further past the table's newest partition than
    -- maintain would reach (premake + 1 periods)
    -- (a typo, a clock gone wrong: every partition, today's too, would look old) or a retention shorter than
    -- one partition is refused for every table before any change. Moments inside the
    -- partitions stay allowed, so tests and soaks can move time.
    IF operation = 'cleanup' THEN
        FOR cfg IN SELECT * FROM timepart._managed(_run.parent) LOOP
            IF as_of > greatest(now(), (SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end))
                                        FROM timepart._partitions(cfg.parent, cfg.time_zone) p WHERE NOT p.is_default)
                                       + cfg.partition_interval * (cfg.premake + 1)) THEN
                RAISE EXCEPTION 'cleanup refuses a moment past the partitions of %', cfg.parent USING ERRCODE = '22023',
                    DETAIL = format('as_of is %s; the newest partition of %s ends %s.', as_of, cfg.parent,
                                    (SELECT max(p.range_end) FROM timepart._partitions(cfg.parent, cfg.time_zone) p WHERE NOT p.is_default)),
                    HINT = 'Leave as_of out to clean up as of now; a dry run (dry_run => true) shows what a moment would remove.';
            END IF;
            IF _run.retention IS NOT NULL AND _run.retention < cfg.partition_interval THEN
                RAISE EXCEPTION 'retention is shorter than one partition of %', cfg.parent USING ERRCODE = '22023',
                    DETAIL = format('Retention %s, partition interval %s.', _run.retention, cfg.partition_interval),
                    HINT = 'Keep at least one partition interval, e.g. 12 months for monthly partitions.';
            END IF;
        END LOOP;
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; % runs on the primary', operation;
        skipped := '["replica"]';
    END IF;
    FOR cfg IN SELECT * FROM timepart._managed(_run.parent) WHERE NOT pg_catalog.pg_is_in_recovery() LOOP
        IF operation = 'cleanup' AND coalesce(_run.retention, cfg.retention) IS NULL THEN
            res := jsonb_build_object('table', cfg.parent::text, 'skipped', 'no retention configured');
        ELSIF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
            RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
            PERFORM timepart._log(operation, cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
            skipped := skipped || to_jsonb(cfg.parent::text);
            res := jsonb_build_object('table', cfg.parent::text, 'skipped', 'another run holds the table');
        ELSIF operation = 'maintain' THEN
            res := timepart._maintain_table(cfg, coalesce(_run.premake, cfg.premake), as_of);
        ELSE
            res := timepart._cleanup_table(cfg, coalesce(_run.retention, cfg.retention), dry_run, as_of);
        END IF;
        created := created || coalesce(res->'created', '[]'::jsonb);
        dropped := dropped || coalesce(res->'removed', '[]'::jsonb);
        errors := errors || coalesce(res->'errors', '[]'::jsonb);
        moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', created,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'moved_rows', moved, 'skipped', skipped, 'tables', tables)
        || CASE WHEN operation = 'cleanup' THEN jsonb_build_object('dry_run', dry_run) ELSE '{}'::jsonb END;
END $$;

-- One table's partition steps, in order: each {"partition", "action" ('build' or
-- 'retire'), "range_start", "range_end", ...} runs through _attempt and is logged as
-- log_operation with its extra keys. A lock timeout ends the run for this table (traffic
-- holds it: back off for the whole table, not partition by partition). Never raises.
-- Returns {"done": [names], "errors": [texts], "moved_rows": n}.
CREATE OR REPLACE FUNCTION timepart._run_steps(cfg timepart.config, log_operation text, steps jsonb, rest text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    partition_interval jsonb;
    step_started timestamptz;
    part_name name;
    res jsonb;
    done jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
BEGIN
    FOR partition_interval IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        step_started := pg_catalog.clock_timestamp();
        part_name := partition_interval->>'partition';
        BEGIN
            IF partition_interval->>'action' = 'build' THEN
                PERFORM timepart._check_name_free(cfg.parent, part_name);
            END IF;
            res := timepart._attempt(cfg, partition_interval->>'action', part_name, (partition_interval->>'range_start')::timestamptz,
                                     (partition_interval->>'range_end')::timestamptz);
        EXCEPTION WHEN OTHERS THEN
            res := jsonb_build_object('ok', false, 'error', SQLERRM, 'sqlstate', SQLSTATE);
        END;
        res := res || (partition_interval - 'partition' - 'action');
        PERFORM timepart._log(log_operation, cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            done := done || to_jsonb(part_name::text);
            moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
        ELSE
            errors := errors || to_jsonb(format('%s: %s', part_name, res->>'error'));
            IF res->>'sqlstate' = '55P03' THEN
                errors := errors || to_jsonb(format('%s: the other %s are left for the next run', cfg.parent, rest));
                EXIT;
            END IF;
        END IF;
    END LOOP;
    RETURN jsonb_build_object('done', done, 'errors', errors, 'moved_rows', moved);
END $$;
