-- timepart--0.1--0.2.sql: retention (cleanup, drop/detach/archive, dry run) and the
-- seed's cleanup_old_email_events_partitions(). Only the delta from 0.1.

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.2'::text $$;
COMMENT ON FUNCTION timepart.version() IS 'The version of the timepart SQL installed in this database';

-- _attempt learns the 'retire' step.
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
END $$;

-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT ((timepart._period_start(as_of, cfg.partition_interval, cfg.time_zone) AT TIME ZONE cfg.time_zone) - keep)
           AT TIME ZONE cfg.time_zone
$$;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE AS $$
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, keep, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
    ORDER BY p.range_start
$$;

-- Removes one partition per the table's retention_action. Runs inside _attempt's
-- sub-transaction. DETACH needs a short ACCESS EXCLUSIVE lock on the parent, which
-- the lock budget bounds; the DROP then touches only the detached table.
CREATE OR REPLACE FUNCTION timepart._retire_partition(cfg timepart.config, part_name name,
                                                      range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    part regclass;
    rows bigint;
    bytes bigint;
BEGIN
    SELECT p.partition_oid::regclass INTO part FROM timepart._partitions(cfg.parent, cfg.time_zone) p
    WHERE p.partition_name = part_name AND p.range_start = _retire_partition.range_start
      AND p.range_end = _retire_partition.range_end;
    IF part IS NULL THEN
        RAISE EXCEPTION 'partition % of % no longer covers % to %', part_name, cfg.parent, range_start, range_end
            USING ERRCODE = '55000', HINT = 'It changed since cleanup planned; run cleanup again.';
    END IF;
    EXECUTE format('SELECT count(*) FROM %s', part) INTO rows;
    bytes := pg_catalog.pg_total_relation_size(part);
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', cfg.parent, part);
    IF cfg.retention_action = 'drop' THEN
        EXECUTE format('DROP TABLE %s', part);
    ELSIF cfg.retention_action = 'archive' THEN
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', cfg.archive_schema);
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', part, cfg.archive_schema);
    END IF;
    RETURN jsonb_build_object('action', cfg.retention_action, 'record_count', rows, 'size_bytes', bytes,
                              'archive_schema', CASE WHEN cfg.retention_action = 'archive' THEN cfg.archive_schema END);
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
    removed jsonb := '[]';
    kept jsonb := '[]';
    errors jsonb := '[]';
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
    dropped jsonb := '[]';
    errors jsonb := '[]';
    tables jsonb := '[]';
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
        dropped := dropped || coalesce(res->'removed', '[]');
        errors := errors || coalesce(res->'errors', '[]');
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', '[]'::jsonb,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'dry_run', dry_run, 'tables', tables);
END $$;
COMMENT ON FUNCTION timepart.cleanup(regclass, interval, boolean, timestamptz) IS
    'Drops, detaches or archives partitions wholly past the retention boundary; dry_run reports without changing anything';

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    IF retention_months IS NULL OR retention_months < 1 THEN
        RAISE EXCEPTION 'retention_months must be a positive number of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(retention_months::text, 'NULL')),
            HINT = 'Keep e.g. 12 months: SELECT * FROM cleanup_old_email_events_partitions(12);';
    END IF;
    RETURN QUERY
    SELECT d->>0, (d->>1)::bigint
    FROM jsonb_array_elements(timepart.cleanup(timepart._email_events(), pg_catalog.make_interval(months => retention_months))
                              ->'dropped_partitions') d;
END $$;
COMMENT ON FUNCTION public.cleanup_old_email_events_partitions(integer) IS
    'Seed name: removes email_events partitions wholly older than retention_months; returns each with its row count';
