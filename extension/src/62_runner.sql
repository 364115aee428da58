-- The one runner of maintain and cleanup. _run takes the tables one at a time (the
-- replica exit, the per-table runner lock, the result shape); _run_steps takes one
-- table's partition steps one at a time (each logged, the back-off on a lock timeout).

-- The managed tables (all, or one), in a stable order. A configuration whose table
-- was dropped is not a managed table.
CREATE OR REPLACE FUNCTION timepart._managed(parent regclass DEFAULT NULL) RETURNS SETOF timepart.config
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE _managed.parent IS NULL OR c.parent = _managed.parent
    ORDER BY c.parent::text;
END;

-- Runs `operation` ('maintain' or 'cleanup') on every managed table, or one. Each table
-- is taken under its runner lock (61_runners.sql), or skipped (another run holds it); nothing runs on a
-- replica. Returns the seed's shape: success, created_partitions, dropped_partitions,
-- errors, execution_time_ms, plus moved_rows, skipped (tables), tables (each one's result)
-- and left_partitions (retirements left for the next call, see _run_steps).
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
    left_over integer := 0;
    newest timestamptz;
BEGIN
    IF _run.parent IS NOT NULL THEN
        PERFORM timepart._config(_run.parent);
    END IF;
    -- cleanup removes data. Refused for every table before any change: a moment further
    -- past the newest partition (or now) than maintain would reach (premake + 1 periods, at
    -- least a month: a typo, a clock gone wrong, and every partition would look old), and a
    -- retention shorter than one partition. Moments near the partitions stay allowed, so
    -- tests and soaks can move time.
    IF operation = 'cleanup' THEN
        FOR cfg IN SELECT * FROM timepart._managed(_run.parent) LOOP
            newest := (SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end))
                       FROM timepart._partitions(cfg.parent, cfg.time_zone) p WHERE NOT p.is_default);
            -- A table without partitions has nothing a moment could remove: newest is NULL.
            IF newest IS NOT NULL AND as_of > greatest(now(), newest) + greatest(cfg.partition_interval * (cfg.premake + 1), interval '1 month') THEN
                RAISE EXCEPTION 'cleanup refuses a moment past the partitions of %', cfg.parent USING ERRCODE = '22023',
                    DETAIL = format('as_of is %s; the newest partition of %s ends %s.', as_of, cfg.parent, newest),
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
        ELSIF NOT timepart._runner_lock(cfg.parent, interval '0') THEN
            -- Not a success: nothing was done. A table held for long raises maintenance_skipped.
            RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
            CALL timepart._log(operation, cfg.parent, NULL, false, '{"skipped": "another run holds the table"}',
                                  'skipped: another run holds the table', started);
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
        left_over := left_over + coalesce((res->>'left')::integer, 0);
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', created,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'moved_rows', moved, 'skipped', skipped, 'tables', tables, 'left_partitions', left_over)
        || CASE WHEN operation = 'cleanup' THEN jsonb_build_object('dry_run', dry_run) ELSE '{}'::jsonb END;
END $$;

-- One table's partition steps, in order: each {"partition", "action" ('build' or
-- 'retire'), "range_start", "range_end", ...} runs through _attempt and is logged as
-- log_operation with its extra keys. A lock timeout ends the run for this table (traffic
-- holds it: back off for the whole table, not partition by partition). Never raises.
-- Traffic first: a DETACH or DROP holds the parent's ACCESS EXCLUSIVE lock to the end of
-- the transaction, so once retiring has held it for the table's lock budget no further
-- partition is retired in this call; they are counted in "left" for the next call
-- (cleanup_each commits and calls again). Building next to a default partition holds the
-- parent's SHARE ROW EXCLUSIVE lock (inserts wait) the same way: once that has lasted the
-- lock budget and an insert or a read is waiting for the table, the rest of the periods
-- are left for the next call (maintain_each commits and calls again). With nobody
-- waiting the call goes on: that stalls no one.
-- Returns {"done": [names], "errors": [texts], "moved_rows": n, "left": n}.
CREATE OR REPLACE FUNCTION timepart._run_steps(cfg timepart.config, log_operation text, steps jsonb, rest text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    step jsonb;
    step_started timestamptz;
    locked_since timestamptz;
    part_name name;
    res jsonb;
    done jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    -- A build locks the parent against inserts only next to a default partition.
    build_locks boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table t WHERE t.partrelid = cfg.parent AND t.partdefid <> 0);
BEGIN
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        step_started := pg_catalog.clock_timestamp();
        IF step_started - locked_since > cfg.lock_timeout
           AND (step->>'action' = 'retire' OR left_over > 0 OR timepart._traffic_waits()) THEN
            left_over := left_over + 1;
            CONTINUE;
        END IF;
        part_name := step->>'partition';
        BEGIN
            IF step->>'action' = 'build' THEN
                PERFORM timepart._check_name_free(cfg.parent, part_name);
            END IF;
            res := timepart._attempt(cfg, step->>'action', part_name, (step->>'range_start')::timestamptz,
                                     (step->>'range_end')::timestamptz);
        EXCEPTION WHEN OTHERS THEN
            res := jsonb_build_object('ok', false, 'error', SQLERRM, 'sqlstate', SQLSTATE);
        END;
        res := res || (step - 'partition' - 'action');
        CALL timepart._log(log_operation, cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            IF step->>'action' = 'retire' OR (build_locks AND step->>'range_start' IS NOT NULL) THEN
                locked_since := coalesce(locked_since, step_started);
            END IF;
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
    IF left_over > 0 THEN
        RAISE NOTICE 'timepart: % partition(s) of % left for the next call: this one held the table for its lock budget (%)',
            left_over, cfg.parent, cfg.lock_timeout;
    END IF;
    RETURN jsonb_build_object('done', done, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

-- Whether another session waits for a lock this transaction holds (an insert at the
-- parent, a read or write at the default partition).
CREATE OR REPLACE FUNCTION timepart._traffic_waits() RETURNS boolean
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                   WHERE NOT l.granted AND pg_catalog.pg_backend_pid() = ANY (pg_catalog.pg_blocking_pids(l.pid)));
END;
