-- timepart--0.6--0.7.sql: converting an existing unpartitioned table (migrate_plan,
-- CALL timepart.migrate, migrate_abort), resumable, keeping concurrent writes. Review fixes:
-- admins write only their own tables' rows in timepart's tables (owner guards on config,
-- templates and migrations; the log is append-only); rows under foreign keys are not
-- moved out of the default partition; identity values move; the retention boundary never
-- passes the current period and mixed-sign retentions are refused; a blocked default
-- partition does not stop the periods; '30 days' is not '1 month'; DateStyle is pinned;
-- the seed's names refuse to guess between several email_events. Also: the partition cap
-- grows with premake; health computes each table's stats once; empty live partitions are
-- not scanned; missing indexes found in sets; new partitions skip an empty row move; the
-- maintain and cleanup jobs commit after each table (maintain_each, cleanup_each); reading
-- the default partition and sizing or counting partitions wait within the lock budget; a
-- run that gives up on a lock backs off for the whole table, not partition by partition.

-- _evaluate takes the stats it may reuse: the old signature goes (it is private, so
-- nothing to re-comment; _harden() at the end re-grants).
DROP FUNCTION timepart._evaluate(regclass, timestamptz);
-- Admins lose the blanket table privileges of 0.5; _harden() below grants what they need.
REVOKE ALL ON ALL TABLES IN SCHEMA timepart FROM partition_admin;

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.7'::text $$;

-- True for an interval whose months, days and time have opposite signs ('1 month -29 days'):
-- its length depends on the calendar, so it is no retention or period.
CREATE OR REPLACE FUNCTION timepart._mixed_signs(i interval) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (m > 0 OR d > 0 OR t > 0) AND (m < 0 OR d < 0 OR t < 0)
    FROM (SELECT pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i) AS m,
                 pg_catalog.date_part('day', i) AS d,
                 pg_catalog.date_part('epoch', i - pg_catalog.justify_hours(pg_catalog.make_interval(
                     months => (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::int,
                     days => pg_catalog.date_part('day', i)::int))) AS t) parts
$$;

-- A table's lock budget as a lock_timeout setting. Every function that sets it runs with
-- a SET clause (99_security.sql), so the setting never outlives the call.
CREATE OR REPLACE FUNCTION timepart._lock_budget(cfg timepart.config) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM cfg.lock_timeout) * 1000)::bigint::text || 'ms'
$$;

-- The refusal for settings that break a rule, with the rule in the message. The
-- CHECK constraints on timepart.config say the same; this says it with DETAIL and HINT.
CREATE OR REPLACE FUNCTION timepart._check_settings(cfg timepart.config) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM timepart._check_interval(cfg.partition_interval);
    IF cfg.premake IS NULL OR cfg.premake < 1 OR cfg.premake > 1000 THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.premake::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
    END IF;
    IF cfg.retention IS NOT NULL AND (cfg.retention <= interval '0' OR timepart._mixed_signs(cfg.retention)) THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', cfg.retention), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
    END IF;
    IF cfg.retention_action IS NULL OR cfg.retention_action NOT IN ('drop', 'detach', 'archive') THEN
        RAISE EXCEPTION 'retention_action must be drop, detach or archive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.retention_action, 'NULL')),
            HINT = 'drop removes old partitions, detach keeps them as tables, archive moves them to archive_schema.';
    END IF;
    IF cfg.archive_schema IN ('timepart', 'public', 'information_schema') OR cfg.archive_schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'archive_schema must be a schema of its own' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', cfg.archive_schema),
            HINT = 'Use e.g. ''archive'': timepart''s, public and system schemas are refused.';
    END IF;
    IF cfg.retention_action = 'archive' AND cfg.archive_schema IS NULL THEN
        RAISE EXCEPTION 'retention_action archive needs an archive_schema' USING ERRCODE = '22023',
            DETAIL = 'archive_schema is NULL.', HINT = 'Set archive_schema, e.g. ''archive''; it is created when missing.';
    END IF;
    IF cfg.lock_timeout IS NULL OR cfg.lock_timeout <= interval '0' OR cfg.lock_timeout > interval '1 minute' THEN
        RAISE EXCEPTION 'lock_timeout must be between 0 and 1 minute' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_timeout::text, 'NULL')),
            HINT = 'A maintenance step waits at most this long for a lock; 100 ms suits busy tables.';
    END IF;
    IF cfg.lock_retries IS NULL OR cfg.lock_retries NOT BETWEEN 0 AND 20 THEN
        RAISE EXCEPTION 'lock_retries must be between 0 and 20' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_retries::text, 'NULL')), HINT = 'A few retries (3) suit most tables.';
    END IF;
    IF cfg.time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = cfg.time_zone)
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs WHERE abbrev = cfg.time_zone) THEN
        RAISE EXCEPTION 'unknown time zone "%"', cfg.time_zone USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
    IF cfg.alert_max_size_bytes IS NULL OR cfg.alert_max_size_bytes <= 0 OR cfg.alert_max_rows IS NULL OR cfg.alert_max_rows <= 0
       OR cfg.alert_min_future IS NULL OR cfg.alert_min_future < 0 OR cfg.alert_growth_ratio IS NULL OR cfg.alert_growth_ratio <= 0
       OR cfg.alert_old_age IS NULL OR cfg.alert_old_age <= interval '0' THEN
        RAISE EXCEPTION 'alert thresholds must be positive' USING ERRCODE = '22023',
            DETAIL = format('max size %s bytes, max rows %s, min future %s, growth ratio %s, old age %s.',
                            cfg.alert_max_size_bytes, cfg.alert_max_rows, cfg.alert_min_future, cfg.alert_growth_ratio, cfg.alert_old_age),
            HINT = 'The seed''s defaults are 5 GB, 10 million rows, 2 future partitions, 0.5 (50%) and 13 months.';
    END IF;
END $$;

-- Validates a table and settings and writes its configuration row. No partitions yet.
CREATE OR REPLACE FUNCTION timepart._register(tbl regclass, step interval, ahead integer, keep interval,
                                              with_default boolean, lock_wait interval, tz text)
RETURNS timepart.config LANGUAGE plpgsql AS $$
DECLARE
    pt record;
    cfg timepart.config;
    old timepart.config;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'parent table must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'No table was given.', HINT = 'Pass the partitioned table, e.g. timepart.manage(''public.email_events'').';
    END IF;
    SELECT c.relkind, p.partstrat, p.partnatts, p.partattrs[0] AS keynum, a.attname, a.atttypid::regtype AS keytype
    INTO pt
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
    WHERE c.oid = tbl;
    IF pt.relkind IS DISTINCT FROM 'p' THEN
        RAISE EXCEPTION 'table % is not partitioned', tbl USING ERRCODE = '22023',
            DETAIL = format('relkind is %s; timepart manages tables declared PARTITION BY RANGE.', pt.relkind),
            HINT = 'Create it with PARTITION BY RANGE (<timestamptz column>).';
    END IF;
    IF pt.partstrat <> 'r' OR pt.partnatts <> 1 OR pt.keynum = 0 THEN
        RAISE EXCEPTION 'table % is not partitioned by range on a single column', tbl USING ERRCODE = '22023',
            DETAIL = format('Partition key: %s.', pg_catalog.pg_get_partkeydef(tbl)),
            HINT = 'timepart manages tables declared PARTITION BY RANGE (<one timestamptz, timestamp or date column>).';
    END IF;
    IF pt.keytype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'partition key %.% is not a time column', tbl, pt.attname USING ERRCODE = '22023',
            DETAIL = format('Its type is %s.', pt.keytype),
            HINT = 'timepart manages tables partitioned on a timestamptz, timestamp or date column.';
    END IF;
    cfg := ROW(tbl, pt.attname, pt.keytype, step, ahead, keep, 'drop', NULL, with_default, lock_wait, 3, tz,
               5368709120, 10000000, 2, 0.5, '13 months', now(), NULL)::timepart.config;
    PERFORM timepart._check_settings(cfg);
    SELECT * INTO old FROM timepart.config c WHERE c.parent = tbl;
    IF FOUND AND old.time_zone <> tz THEN
        RAISE EXCEPTION 'table % is already managed in time zone %', tbl, old.time_zone USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', tz),
            HINT = 'Period boundaries depend on the time zone; it cannot change while partitions exist.';
    END IF;
    IF FOUND AND old.partition_interval::text <> step::text THEN
        RAISE EXCEPTION 'table % is already managed with interval %', tbl, old.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', step),
            HINT = format('Change it with SELECT timepart.change_interval(%L, %L);', tbl::text, step::text);
    END IF;
    INSERT INTO timepart.config AS c (parent, key_column, key_type, partition_interval, premake, retention,
                                      default_partition, lock_timeout, time_zone)
    VALUES (tbl, pt.attname, pt.keytype, step, ahead, keep, with_default, lock_wait, tz)
    ON CONFLICT (parent) DO UPDATE SET premake = excluded.premake, retention = excluded.retention,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout
    RETURNING * INTO cfg;
    RETURN cfg;
END $$;

CREATE OR REPLACE FUNCTION timepart.change_interval(parent regclass, new_interval interval, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Changes the partition interval of a managed table (say monthly to daily). Existing
   partitions stay as they are; new ones follow the new interval from the end of the
   last existing one. Returns what maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    anchor timestamptz;
BEGIN
    PERFORM timepart._check_interval(new_interval);
    IF new_interval::text = cfg.partition_interval::text THEN
        RAISE NOTICE 'table % already uses interval %', parent, new_interval;
        RETURN timepart.maintain(parent, NULL, as_of);
    END IF;
    SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end)) INTO anchor
    FROM timepart._partitions(parent, cfg.time_zone) p WHERE NOT p.is_default;
    IF pg_catalog.date_part('day', new_interval) = 0 AND anchor IS NOT NULL
       AND pg_catalog.date_trunc('month', anchor AT TIME ZONE cfg.time_zone) <> anchor AT TIME ZONE cfg.time_zone THEN
        RAISE EXCEPTION 'month partitions must start on the 1st' USING ERRCODE = '22023',
            DETAIL = format('The last partition of %s ends %s, not on the 1st of a month.', parent, anchor),
            HINT = 'Create partitions of the current interval up to the next 1st, then change the interval.';
    END IF;
    UPDATE timepart.config c SET partition_interval = new_interval, interval_anchor = anchor
    WHERE c.parent = change_interval.parent;
    PERFORM timepart._log('change_interval', parent, NULL, true,
        jsonb_build_object('from', cfg.partition_interval, 'to', new_interval, 'anchor', anchor), NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
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
    cols text;
    waiting boolean;
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
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        -- Usually nothing waits there: a cheap probe spares the move statement.
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s WHERE %I >= %s AND %I < %s)', default_part,
                       cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
                       cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)) INTO waiting;
        IF waiting AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = cfg.parent) THEN
            -- Moving is a DELETE and an INSERT: it would fire ON DELETE CASCADE / SET NULL
            -- on the tables that reference this one. Leave the rows where they are.
            RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and foreign keys reference the table',
                range_start, range_end, cfg.parent USING ERRCODE = '55000',
                DETAIL = 'Moving them would fire the foreign keys'' ON DELETE actions on the referencing tables.',
                HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
        END IF;
        IF waiting THEN
            cols := timepart._column_list(cfg.parent);
            EXECUTE format('WITH moved AS (DELETE FROM %s WHERE %I >= %s AND %I < %s RETURNING *) '
                           'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved',
                           default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
                           cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
                           part, cols, cols);
            GET DIAGNOSTICS moved = ROW_COUNT;
        END IF;
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
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
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

-- ==== src/65_retention.sql
-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention, and never
-- later than the start of the current period, whatever the retention says.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT least(((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - keep) AT TIME ZONE cfg.time_zone,
                 timepart._period_of(cfg, as_of))
$$;

-- One table's cleanup. Never raises: failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, keep interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    boundary timestamptz := timepart._retention_boundary(cfg, keep, as_of);
    p record;
    plan jsonb;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
        RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
        PERFORM timepart._log('cleanup', cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
        RETURN jsonb_build_object('removed', removed, 'errors', errors, 'skipped', true);
    END IF;
    -- Row counts first (exact: the snapshot's when still valid), before any lock is taken.
    SELECT coalesce(jsonb_agg(to_jsonb(r) || jsonb_build_object('record_count',
               CASE WHEN r.verdict = 'retire' THEN timepart._record_count(r.partition_oid) END) ORDER BY r.range_start), '[]'::jsonb)
    INTO plan FROM timepart._plan_retention(cfg, keep, as_of) r;
    FOR p IN SELECT * FROM jsonb_to_recordset(plan) AS x(partition_oid oid, schema_name name, partition_name name,
                                                         range_start timestamptz, range_end timestamptz, verdict text,
                                                         record_count bigint) LOOP
        IF p.verdict = 'straddles' THEN
            kept := kept || jsonb_build_object('partition', p.partition_name, 'reason',
                format('its range %s to %s reaches past the retention boundary %s', p.range_start, p.range_end, boundary));
            CONTINUE;
        END IF;
        IF dry_run THEN
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, p.record_count));
            CONTINUE;
        END IF;
        step_started := pg_catalog.clock_timestamp();
        res := timepart._attempt(cfg, 'retire', p.partition_name, p.range_start, p.range_end)
               || jsonb_build_object('range_start', p.range_start, 'range_end', p.range_end, 'boundary', boundary,
                                     'record_count', p.record_count);
        PERFORM timepart._log('cleanup_partition', cfg.parent, p.partition_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, p.record_count));
        ELSE
            errors := errors || to_jsonb(format('%s: %s', p.partition_name, res->>'error'));
            -- Traffic holds the table: back off for the whole run, not per partition.
            IF res->>'sqlstate' = '55P03' THEN
                errors := errors || to_jsonb(format('%s: the other old partitions are left for the next run', cfg.parent));
                EXIT;
            END IF;
        END IF;
    END LOOP;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            EXECUTE format('SELECT count(*) FROM %s WHERE %I < %s', default_part, cfg.key_column,
                           timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)) INTO default_old;
        EXCEPTION WHEN lock_not_available THEN
            errors := errors || to_jsonb(format('%s: could not count its rows past the boundary within the lock budget', default_part));
        END;
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
    IF retention IS NOT NULL AND (retention <= interval '0' OR timepart._mixed_signs(retention)) THEN
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
        EXECUTE format('SELECT min(%I)::timestamptz FROM %s WHERE %I >= %s AND %I < %s', cfg.key_column, default_part,
                       cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, tz),
                       cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, tz))
            INTO default_min;
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

-- The shape of one partition_stats row, for passing rows around as JSON.
CREATE TYPE timepart.partition_stats_row AS (parent_table text, partition_name text, period text, range_start timestamptz,
    range_end timestamptz, record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
    index_count integer, is_default boolean, exact boolean);

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    RETURN QUERY
    WITH parts AS (
        SELECT c.*, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM timepart.config c
        JOIN pg_catalog.pg_class r ON r.oid = c.parent
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes,
               CASE WHEN p.live THEN pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes
        FROM parts p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, h.ends, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
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
        -- Oldest and newest from the ANALYZE histogram of the key: approximate, no scan.
        LEFT JOIN LATERAL (
            SELECT st.histogram_bounds::text::text[] AS ends FROM pg_catalog.pg_stats st
            WHERE st.schemaname = p.schema_name AND st.tablename = p.partition_name AND st.attname = p.key_column
        ) h ON true
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
           CASE WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(j.ends[1], j.key_type, j.time_zone) END,
           CASE WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(j.ends[array_length(j.ends, 1)], j.key_type, j.time_zone) END,
           (SELECT count(*)::int FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid),
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
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
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            BEGIN
                -- A partition someone holds locked is skipped (its last figures stay), not waited for.
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                EXECUTE format('SELECT count(*), min(%I)::timestamptz, max(%I)::timestamptz FROM %I.%I',
                               p.key_column, p.key_column, p.schema_name, p.partition_name) INTO rows, oldest, newest;
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
    tz text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE tz);
    old_before timestamptz := ((as_of AT TIME ZONE tz) - cfg.alert_old_age) AT TIME ZONE tz;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part) INTO default_rows;
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
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE tz
                                              AND s.range_start < month_start AT TIME ZONE tz) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE tz
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE tz) AS month_before
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
        SELECT it.suffix, timepart._template_parent_index(tbl, it.suffix) AS parent_idx
        FROM timepart.index_templates it WHERE it.parent = tbl
    ), attached AS MATERIALIZED (
        SELECT i.indrelid AS partition_oid, h.inhparent AS parent_idx
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indexrelid = h.inhrelid
        WHERE h.inhparent IN (SELECT t.parent_idx FROM t)
    ), parts AS MATERIALIZED (
        SELECT i.inhrelid AS partition_oid, c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname
$$;

-- ==== src/78_health.sql
-- Health and summary: the seed's /health and /summary documents, computed from the
-- alert rules and statistics without side effects.

CREATE OR REPLACE FUNCTION timepart.health(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /health shape: status healthy | warning | critical | error, issues,
   recommendations, partition_count, total_size_mb, oldest_partition,
   newest_partition. Info alerts are recommendations, not issues. It never raises:
   if evaluation fails, status is error with the reason. */
DECLARE
    tables regclass[];
    per_table jsonb;
    alerts jsonb;
    stats record;
    err text;
BEGIN
    IF health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', health.parent;
    END IF;
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE health.parent IS NULL OR c.parent = health.parent;

    -- Each table's stats once: the rules and the totals below share them.
    SELECT coalesce(jsonb_object_agg(t::text, (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb) FROM timepart.partition_stats(t) s)),
                    '{}'::jsonb)
    INTO per_table FROM unnest(coalesce(tables, '{}')) t;

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of, per_table->(t::text)) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j WHERE health.parent IS NULL) e;

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

-- The email_events table the seed's functions act on: the managed one the
-- search_path finds, else the only managed table of that name.
CREATE OR REPLACE FUNCTION timepart._email_events() RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tbl regclass := pg_catalog.to_regclass('email_events');
BEGIN
    IF tbl IS NULL OR NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
        IF (SELECT count(*) FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
            WHERE r.relname = 'email_events') > 1 THEN
            RAISE EXCEPTION 'more than one managed email_events table' USING ERRCODE = '42P09',
                DETAIL = (SELECT string_agg(c.parent::text, ', ') FROM timepart.config c JOIN pg_catalog.pg_class r
                          ON r.oid = c.parent WHERE r.relname = 'email_events'),
                HINT = 'Name the table: e.g. SELECT timepart.cleanup(''tenant_a.email_events'', ''12 months'').';
        END IF;
        SELECT c.parent INTO tbl FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
        WHERE r.relname = 'email_events';
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no managed email_events table' USING ERRCODE = '42P01',
            DETAIL = 'The seed''s functions act on the table email_events managed by timepart.',
            HINT = 'Create it with SELECT timepart.create_email_events_table();';
    END IF;
    RETURN tbl;
END $$;

CREATE OR REPLACE FUNCTION timepart.schedule_jobs(maintain_schedule text DEFAULT '17 3 * * 0',
                                                  cleanup_schedule text DEFAULT '37 4 1 * *',
                                                  health_schedule text DEFAULT '7 6 * * *',
                                                  stats_schedule text DEFAULT '47 2 * * *',
                                                  cron_history_schedule text DEFAULT '57 5 * * *',
                                                  cron_history_keep interval DEFAULT '30 days')
RETURNS TABLE (jobname text, schedule text, command text) LANGUAGE plpgsql AS $$
/* The seed's jobs in pg_cron, at quiet hours: weekly maintain, monthly cleanup (each
   table's configured retention; email_events keeps 12 months; both one table per
   transaction, a CALL alone in its command as pg_cron requires), daily health check
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
        ('maintain', maintain_schedule, 'CALL timepart.maintain_each()', current_database()),
        ('cleanup', cleanup_schedule, 'CALL timepart.cleanup_each()', current_database()),
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

-- The jobs' entry points: one table at a time with a COMMIT after each, so the locks
-- one table's maintenance takes are never held while another's waits. Procedures that
-- COMMIT carry no SET clause: every name here is qualified instead.
CREATE OR REPLACE PROCEDURE timepart.maintain_each(premake integer DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.parent FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
             ORDER BY c.parent::pg_catalog.text LOOP
        PERFORM timepart.maintain(t, premake);
        COMMIT;
    END LOOP;
END $$;

COMMENT ON PROCEDURE timepart.maintain_each(integer) IS 'maintain() every managed table, committing after each (the maintain job)';

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
DECLARE
    t regclass;
BEGIN
    FOR t IN SELECT c.parent FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
             ORDER BY c.parent::pg_catalog.text LOOP
        PERFORM timepart.cleanup(t);
        COMMIT;
    END LOOP;
END $$;

COMMENT ON PROCEDURE timepart.cleanup_each() IS 'cleanup() every managed table, committing after each (the cleanup job)';

-- ==== src/88_migrate.sql
-- Migration: turn an existing unpartitioned table into a managed partitioned one
-- while it stays in use. migrate_plan is the dry run; CALL timepart.migrate runs it.
--
-- How it works (and why):
-- * Staging. The partitioned copy is built under the table's own name in a schema of
--   its own (timepart_migrate_<oid>), so its partitions and indexes get their final
--   names (email_events_2024_03, ..._created_at_idx) and the swap only moves them.
-- * Capture, not forwarding. Statement triggers with transition tables on the source
--   record the *key* of every row inserted, updated or deleted into a changes table.
--   A forwarding trigger would race with the batch copy (an update forwarded before
--   the batch that copies the old version commits is lost); a key log does not: a
--   logged key is later re-synchronised as a whole (delete its rows from the copy,
--   insert the source's current rows), which is right whatever was copied before.
--   The key is the primary key, or the whole row (as text) when there is none.
-- * Batches. Rows are copied by ctid ranges of whole blocks, each batch in its own
--   transaction that also advances timepart.migrations.next_block, so an interrupted
--   run (terminated backend, crash) resumes at the first block not committed: no row
--   twice, none lost. Rows unchanged since the trigger was installed sit at a fixed
--   ctid below last_block and are copied exactly once; every other row is in the log.
--   A table rewrite (VACUUM FULL, CLUSTER) changes the filenode and restarts the copy.
-- * Catch-up. After the copy, the log is applied in rounds without blocking anyone;
--   each round deletes the log rows it applies, so a change committed late is simply
--   applied by a later round.
-- * Swap. One short transaction: EXCLUSIVE lock on the source (reads go on, writes
--   wait), the last changes, row count and checksum of both sides compared (a
--   mismatch aborts the swap and says so), then ACCESS EXCLUSIVE for the renames:
--   the source becomes <name>_unpartitioned_old (its indexes get an _old suffix) and
--   the copy moves into the source's schema. Every lock wait is bounded by the
--   table's lock_timeout and retried. The old table stays until you drop it.

CREATE TABLE timepart.migrations (
    id                  bigserial PRIMARY KEY,
    source              regclass NOT NULL,
    source_name         text NOT NULL,
    target              regclass NOT NULL,
    stage_schema        name NOT NULL,
    key_column          name NOT NULL,
    partition_interval  interval NOT NULL,
    time_zone           text NOT NULL,
    retention           interval,
    row_key             name[],
    state               text NOT NULL DEFAULT 'copying',
    source_filenode     oid NOT NULL,
    next_block          bigint NOT NULL DEFAULT 0,
    last_block          bigint NOT NULL,
    blocks_per_batch    integer NOT NULL DEFAULT 1,
    rows_estimated      bigint NOT NULL DEFAULT 0,
    rows_copied         bigint NOT NULL DEFAULT 0,
    changes_applied     bigint NOT NULL DEFAULT 0,
    source_rows         bigint,
    source_checksum     numeric,
    target_rows         bigint,
    target_checksum     numeric,
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at         timestamptz,
    CONSTRAINT migrations_state_known CHECK (state IN ('copying', 'catching_up', 'done', 'aborted')),
    CONSTRAINT migrations_blocks_in_range CHECK (next_block >= 0 AND next_block <= last_block AND blocks_per_batch > 0)
);

CREATE UNIQUE INDEX migrations_one_running ON timepart.migrations (source) WHERE state IN ('copying', 'catching_up');

COMMENT ON TABLE timepart.migrations IS 'Progress of timepart.migrate runs, committed with every batch so a run can resume';

COMMENT ON COLUMN timepart.migrations.next_block IS 'First block of the source not copied yet; committed with the batch that copied the blocks before it';

COMMENT ON COLUMN timepart.migrations.row_key IS 'Columns that identify a row in the change log (the primary key); NULL: the whole row';

-- Rows per second assumed by migrate_plan's time estimate (measured by bench/migrate.py).
CREATE OR REPLACE FUNCTION timepart._migrate_rate() RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT 40000::numeric $$;

-- The key column as a timestamptz expression (timestamp and date keys are local time in tz).
CREATE OR REPLACE FUNCTION timepart._migrate_key_expr(key_column name, key_type regtype, tz text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE key_type WHEN 'timestamptz'::regtype THEN pg_catalog.format('%I', key_column)
                         WHEN 'timestamp'::regtype THEN pg_catalog.format('(%I AT TIME ZONE %L)', key_column, tz)
                         ELSE pg_catalog.format('(%I::pg_catalog.timestamp AT TIME ZONE %L)', key_column, tz) END
$$;

-- The refusals that need no scan of the rows. Returns the key's type.
CREATE OR REPLACE FUNCTION timepart._migrate_check(source regclass, key_column name, step interval, tz text)
RETURNS regtype LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel record;
    key_type regtype;
    refs text;
    bad text;
BEGIN
    IF source IS NULL OR key_column IS NULL THEN
        RAISE EXCEPTION 'source table and key column must not be NULL' USING ERRCODE = '22004',
            DETAIL = format('Got %s and %s.', coalesce(source::text, 'NULL'), coalesce(key_column::text, 'NULL')),
            HINT = 'Pass the table and its time column, e.g. CALL timepart.migrate(''public.email_events'', ''created_at'').';
    END IF;
    SELECT c.relkind, c.relispartition, c.relhassubclass, c.relname, c.relnamespace,
           EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS inherits
    INTO rel FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF rel.relkind = 'p' THEN
        RAISE EXCEPTION 'table % is already partitioned', source USING ERRCODE = '22023',
            DETAIL = format('Partition key: %s.', pg_catalog.pg_get_partkeydef(source)),
            HINT = format('Manage it as it is with SELECT timepart.manage(%L).', source::text);
    END IF;
    IF rel.relkind IS DISTINCT FROM 'r' OR rel.relispartition OR rel.relhassubclass OR rel.inherits THEN
        RAISE EXCEPTION '% is not a plain table', source USING ERRCODE = '22023',
            DETAIL = format('relkind %s, partition %s, inheritance parent %s, inheritance child %s.',
                            rel.relkind, rel.relispartition, rel.relhassubclass, rel.inherits),
            HINT = 'timepart.migrate converts an ordinary table that neither inherits nor is inherited.';
    END IF;
    SELECT a.atttypid::regtype INTO key_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = source AND a.attname = key_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', key_column, source USING ERRCODE = '42703',
            DETAIL = format('Time columns of %s: %s.', source, coalesce((SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
                AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)), 'none')),
            HINT = 'Pass the column the partitions are cut by, e.g. created_at.';
    END IF;
    IF key_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'key column %.% is not a time column', source, key_column USING ERRCODE = '42804',
            DETAIL = format('Its type is %s.', key_type),
            HINT = 'The key must be timestamptz, timestamp or date.';
    END IF;
    PERFORM timepart._check_interval(step);
    IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = tz) THEN
        RAISE EXCEPTION 'unknown time zone "%"', tz USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
    SELECT string_agg(format('%s on %s', k.conname, k.conrelid::regclass), ', ') INTO refs
    FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = source;
    IF refs IS NOT NULL THEN
        RAISE EXCEPTION 'table % is referenced by foreign keys', source USING ERRCODE = '2BP01',
            DETAIL = format('Foreign keys: %s.', refs),
            HINT = format('Drop them, migrate, then re-create them against the partitioned table (the referenced columns must include %s).', key_column);
    END IF;
    PERFORM timepart._migrate_check_uniques(source, key_column);
    SELECT string_agg(DISTINCT r.ev_class::regclass::text, ', ') INTO refs
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = source AND r.ev_class <> source;
    IF refs IS NOT NULL THEN
        RAISE EXCEPTION 'table % is used by views', source USING ERRCODE = '2BP01',
            DETAIL = format('Views: %s. After the swap they would still read the old table.', refs),
            HINT = 'Drop the views, migrate, then create them again.';
    END IF;
    bad := timepart._fit_name(rel.relname, 'unpartitioned_old');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = rel.relnamespace AND c.relname = bad) THEN
        RAISE EXCEPTION 'relation "%" already exists', bad USING ERRCODE = '42P07',
            DETAIL = format('The old %s is kept under this name after the swap.', source),
            HINT = 'Drop or rename it (a previous migration''s leftover?) first.';
    END IF;
    RETURN key_type;
END $$;

-- Unique constraints and indexes of a partitioned table must contain its key; exclusion
-- constraints are not supported on partitioned tables before PostgreSQL 17.
CREATE OR REPLACE FUNCTION timepart._migrate_check_uniques(source regclass, key_column name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad text;
    key_num int2 := (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attname = key_column);
BEGIN
    SELECT string_agg(format('%s (%s)', x.indexrelid::regclass, pg_catalog.pg_get_indexdef(x.indexrelid)), '; ') INTO bad
    FROM pg_catalog.pg_index x
    WHERE x.indrelid = source AND (x.indisunique OR x.indisexclusion)
      AND (x.indisexclusion OR x.indexprs IS NOT NULL
           OR NOT EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) k WHERE x.indkey[k] = key_num));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'a primary key or unique constraint of % lacks the key column %', source, key_column
            USING ERRCODE = '0A000',
            DETAIL = format('Indexes: %s.', bad),
            HINT = format('A partitioned table can only enforce uniqueness over columns that include %1$s: change it to e.g. PRIMARY KEY (id, %1$s) first, or drop it.', key_column);
    END IF;
END $$;

-- What the rows look like: how many (counted when small or never analyzed, else
-- pg_class.reltuples), whether the key has NULLs, its oldest and newest value.
CREATE OR REPLACE FUNCTION timepart._migrate_facts(source regclass, key_column name, key_type regtype, tz text,
                                                   OUT row_count bigint, OUT counted boolean, OUT has_nulls boolean,
                                                   OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    estimate real := (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = source);
    key_expr text := timepart._migrate_key_expr(key_column, key_type, tz);
BEGIN
    counted := estimate < 100000;
    IF counted THEN
        EXECUTE format('SELECT count(*), count(*) FILTER (WHERE %I IS NULL) > 0, min(%s), max(%s) FROM ONLY %s',
                       key_column, key_expr, key_expr, source)
            INTO row_count, has_nulls, oldest, newest;
        RETURN;
    END IF;
    row_count := estimate::bigint;
    -- Separate queries, so an index on the key answers each without a scan.
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NULL)', source, key_column) INTO has_nulls;
    EXECUTE format('SELECT min(%1$I), max(%1$I) FROM ONLY %2$s', key_column, source) INTO oldest, newest;
    IF key_type <> 'timestamptz'::regtype THEN
        -- min/max came back in the session's time zone; they meant local time in tz.
        oldest := (oldest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE tz;
        newest := (newest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE tz;
    END IF;
END $$;

-- The refusal for a key column with NULLs: a range partition cannot hold them.
CREATE OR REPLACE FUNCTION timepart._migrate_check_nulls(source regclass, key_column name, has_nulls boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF has_nulls THEN
        RAISE EXCEPTION 'key column %.% has NULL values', source, key_column USING ERRCODE = '23502',
            DETAIL = 'Rows of a range-partitioned table need a key value to find their partition.',
            HINT = format('Fill them in (UPDATE %s SET %I = ... WHERE %I IS NULL) or delete them, then migrate.',
                          source, key_column, key_column);
    END IF;
END $$;

-- The periods from the oldest to the newest key value, with rows per period: counted
-- exactly (one scan) or estimated from the key's histogram in pg_stats.
CREATE OR REPLACE FUNCTION timepart._migrate_periods(source regclass, key_column name, key_type regtype, step interval,
                                                     tz text, oldest timestamptz, newest timestamptz,
                                                     row_count bigint, counted boolean)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, rows bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    starts timestamptz[];
    bucket_rows bigint[];
    hist text[];
BEGIN
    IF oldest IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(g AT TIME ZONE tz ORDER BY g) INTO starts
    FROM pg_catalog.generate_series(timepart._period_start(oldest, step, tz) AT TIME ZONE tz,
                                    timepart._period_start(newest, step, tz) AT TIME ZONE tz, step) g;
    IF counted THEN
        EXECUTE format('SELECT array_agg(coalesce(b.n, 0) ORDER BY i) FROM pg_catalog.generate_series(1, %s) i '
                       'LEFT JOIN (SELECT pg_catalog.width_bucket(%s, $1) AS w, count(*) AS n FROM ONLY %s GROUP BY 1) b ON b.w = i',
                       cardinality(starts), timepart._migrate_key_expr(key_column, key_type, tz), source)
            USING starts INTO bucket_rows;
    ELSE
        SELECT s.histogram_bounds::text::text[] INTO hist FROM pg_catalog.pg_stats s
        JOIN pg_catalog.pg_class c ON c.relname = s.tablename JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
        WHERE c.oid = source AND s.attname = key_column;
        -- Each histogram bound stands for an equal share of the rows.
        SELECT array_agg(round(coalesce(b.n, 0)::numeric * row_count / greatest(cardinality(hist), 1))::bigint ORDER BY i)
        INTO bucket_rows
        FROM pg_catalog.generate_series(1, cardinality(starts)) i
        LEFT JOIN (SELECT pg_catalog.width_bucket(CASE key_type WHEN 'timestamptz'::regtype THEN h::timestamptz
                                                      WHEN 'timestamp'::regtype THEN h::timestamp AT TIME ZONE tz
                                                      ELSE h::date::timestamp AT TIME ZONE tz END, starts) AS w, count(*) AS n
                   FROM unnest(hist) h GROUP BY 1) b ON b.w = i;
    END IF;
    RETURN QUERY SELECT u.s, timepart._period_add(u.s, step, 1, tz), u.n
                 FROM unnest(starts, bucket_rows) AS u(s, n) ORDER BY u.s;
END $$;

CREATE OR REPLACE FUNCTION timepart.migrate_plan(source regclass, key_column name,
                                                 partition_interval interval DEFAULT '1 month', time_zone text DEFAULT 'UTC')
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz,
               estimated_rows bigint, rows_from text, estimated_seconds numeric)
LANGUAGE plpgsql STABLE AS $$
/* The dry run of timepart.migrate: the partitions the existing rows need, rows per
   partition (counted, or estimated from statistics on big tables: rows_from says
   which) and a rough copy time. Refuses what migrate would refuse. Changes nothing. */
DECLARE
    key_type regtype := timepart._migrate_check(source, key_column, partition_interval, time_zone);
    f record;
BEGIN
    SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, time_zone);
    PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
    RETURN QUERY
    SELECT timepart._partition_name(source, p.range_start, partition_interval, time_zone)::text, p.range_start, p.range_end,
           p.rows, CASE WHEN f.counted THEN 'counted' ELSE 'statistics' END,
           round(p.rows / timepart._migrate_rate(), 1)
    FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone,
                                   f.oldest, f.newest, f.row_count, f.counted) p;
END $$;

COMMENT ON FUNCTION timepart.migrate_plan(regclass, name, interval, text) IS
    'Dry run of timepart.migrate: partitions to create, rows per partition (counted or estimated) and estimated copy time';

-- An index's key columns as a template column list: each column or (expression) with
-- its ordering; INCLUDE columns ride along (the template wraps the list in parentheses).
CREATE OR REPLACE FUNCTION timepart._migrate_index_columns(idx regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(CASE WHEN x.indkey[k - 1] = 0 THEN '(' || pg_catalog.pg_get_indexdef(x.indexrelid, k, true) || ')'
                           ELSE pg_catalog.pg_get_indexdef(x.indexrelid, k, true) END
                      || CASE WHEN k > x.indnkeyatts THEN ''
                              WHEN x.indoption[k - 1] & 3 = 3 THEN ' DESC'
                              WHEN x.indoption[k - 1] & 3 = 1 THEN ' DESC NULLS LAST'
                              WHEN x.indoption[k - 1] & 3 = 2 THEN ' NULLS FIRST' ELSE '' END
                      || CASE WHEN k = x.indnkeyatts AND x.indnatts > x.indnkeyatts THEN ') INCLUDE (' WHEN k < x.indnatts THEN ', ' ELSE '' END,
                      '' ORDER BY k)
    FROM pg_catalog.pg_index x, pg_catalog.generate_series(1, x.indnatts) k
    WHERE x.indexrelid = idx
$$;

-- Creates the partitioned copy in the stage schema: same columns, defaults, CHECK and
-- NOT NULL constraints, identity and generated columns, comments; NOT NULL on the key;
-- the primary key, unique constraints and outgoing foreign keys; the table's grants.
CREATE OR REPLACE FUNCTION timepart._migrate_create_target(source regclass, key_column name, stage name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    target regclass;
    k record;
BEGIN
    EXECUTE format('CREATE SCHEMA %I', stage);
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY '
                   'INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY RANGE (%I)',
                   stage, (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), source, key_column);
    target := format('%I.%I', stage, (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source))::regclass;
    EXECUTE format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, key_column);
    FOR k IN SELECT c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def FROM pg_catalog.pg_constraint c
             WHERE c.conrelid = source AND c.contype IN ('p', 'u', 'f') ORDER BY c.contype DESC, c.conname LOOP
        EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I %s', target, k.conname, k.def);
    END LOOP;
    -- Unique indexes that are not constraints stay unique: on the parent, so every partition gets one.
    FOR k IN SELECT c.relname, a.amname, timepart._migrate_index_columns(x.indexrelid) AS cols,
                    pg_catalog.pg_get_expr(x.indpred, x.indrelid, true) AS pred
             FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam
             WHERE x.indrelid = source AND x.indisunique AND x.indisvalid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint n WHERE n.conindid = x.indexrelid) LOOP
        EXECUTE format('CREATE UNIQUE INDEX %I ON %s USING %I (%s)%s', k.relname, target, k.amname, k.cols,
                       coalesce(' WHERE ' || k.pred, ''));
    END LOOP;
    FOR k IN SELECT g.privilege_type, g.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) g
             WHERE c.oid = source AND g.grantee <> c.relowner LOOP
        EXECUTE format('GRANT %s ON %s TO %s', k.privilege_type, target,
                       CASE WHEN k.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(k.grantee::regrole::text) END);
    END LOOP;
    RETURN target;
END $$;

-- Every other valid index of the source becomes an index template of the copy, its
-- suffix the index name without the table's name (email_events_created_idx: created_idx).
CREATE OR REPLACE FUNCTION timepart._migrate_templates(source regclass, target regclass) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    i record;
    suffix text;
    made text[] := '{}'::text[];
BEGIN
    FOR i IN SELECT c.relname::text AS idx_name, a.amname, timepart._migrate_index_columns(x.indexrelid) AS cols,
                    pg_catalog.pg_get_expr(x.indpred, x.indrelid, true) AS pred, t.relname::text AS table_name
             FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
             JOIN pg_catalog.pg_class t ON t.oid = x.indrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam
             WHERE x.indrelid = source AND NOT x.indisunique AND x.indisvalid ORDER BY c.relname LOOP
        suffix := left(pg_catalog.regexp_replace(lower(CASE WHEN starts_with(i.idx_name, i.table_name || '_')
                       THEN substr(i.idx_name, length(i.table_name) + 2) ELSE i.idx_name END), '[^a-z0-9_]', '_', 'g'), 40);
        IF suffix = '' OR suffix = ANY (made) THEN
            suffix := left(suffix, 32) || '_' || left(pg_catalog.md5(i.idx_name), 7);
        END IF;
        PERFORM timepart.add_index_template(target, suffix, i.cols, i.pred, i.amname);
        made := made || suffix;
    END LOOP;
    RETURN made;
END $$;

-- Records the key of every row written to the source into the change log. Runs with
-- the owner's rights, so writers need no access to the stage schema.
CREATE OR REPLACE FUNCTION timepart._migrate_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
/* Runs with the owner's rights so any writer of the source can log its changes. It
   takes nothing from its caller: the change table and key columns come from the
   running migration of the table it fires on, so a trigger planted elsewhere (with
   any arguments) does nothing. */
DECLARE
    m timepart.migrations;
BEGIN
    SELECT * INTO m FROM timepart.migrations x
    WHERE x.source = TG_RELID::regclass AND x.state IN ('copying', 'catching_up');
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('INSERT INTO %I.changes SELECT %s FROM old_rows', m.stage_schema,
                       timepart._migrate_key_list(m.source, m.row_key));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('INSERT INTO %I.changes SELECT %s FROM new_rows', m.stage_schema,
                       timepart._migrate_key_list(m.source, m.row_key));
    END IF;
    RETURN NULL;
END $$;

-- TRUNCATE fires no row changes to capture; refuse it while the copy is under way.
CREATE OR REPLACE FUNCTION timepart._migrate_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is being migrated by timepart', TG_RELID::regclass USING ERRCODE = '55006',
        DETAIL = 'TRUNCATE cannot be replayed onto the partitioned copy.',
        HINT = format('Wait for CALL timepart.migrate to finish, or stop it with SELECT timepart.migrate_abort(%L).', TG_RELID::regclass::text);
END $$;

-- The columns that identify a row in the change log: the primary key, else the whole row.
CREATE OR REPLACE FUNCTION timepart._migrate_row_key(source regclass) RETURNS name[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname ORDER BY k.n)
    FROM pg_catalog.pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), pg_catalog.pg_attribute a
    WHERE c.conrelid = source AND c.contype = 'p' AND a.attrelid = source AND a.attnum = k.attnum
$$;

-- The change log's columns: the row key, or every copied column.
CREATE OR REPLACE FUNCTION timepart._migrate_key_list(source regclass, row_key name[]) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN row_key IS NULL THEN timepart._column_list(source)
                ELSE (SELECT string_agg(pg_catalog.quote_ident(k), ', ' ORDER BY n) FROM unnest(row_key) WITH ORDINALITY AS u(k, n)) END
$$;

-- Installs the change log and its triggers on the source.
CREATE OR REPLACE FUNCTION timepart._migrate_install_capture(source regclass, stage name, row_key name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    log_table text := format('%I.changes', stage);
    keys text := timepart._migrate_key_list(source, row_key);
BEGIN
    EXECUTE format('CREATE TABLE %s AS SELECT %s FROM ONLY %s WITH NO DATA', log_table, keys, source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_refuse_truncate()', source);
END $$;

-- Everything before the first batch, in the caller's transaction: the copy, its
-- registration and templates, the partitions the rows need (and maintain's current
-- and future ones), the change capture and the progress row. Retention is set only at
-- the swap, so cleanup cannot drop copied rows while the old table still holds them.
CREATE OR REPLACE FUNCTION timepart._migrate_prepare(source regclass, key_column name, key_type regtype, step interval,
                                                     ahead integer, keep interval, tz text, batch_size integer,
                                                     rows_estimated bigint, oldest timestamptz, newest timestamptz)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    stage name := timepart._fit_name('timepart_migrate', source::oid::text);
    target regclass;
    row_key name[] := timepart._migrate_row_key(source);
    p record;
    templates text[];
    blocks bigint;
    m timepart.migrations;
BEGIN
    target := timepart._migrate_create_target(source, key_column, stage);
    PERFORM timepart._register(target, step, ahead, NULL, true, '100 milliseconds', tz);
    templates := timepart._migrate_templates(source, target);
    FOR p IN SELECT * FROM timepart._migrate_periods(source, key_column, key_type, step, tz, oldest, newest, 0, false) LOOP
        PERFORM timepart.create_partition(target, p.range_start, p.range_end);
    END LOOP;
    PERFORM timepart.maintain(target, ahead);
    -- The trigger's lock waits for writers in flight; every write after it is captured,
    -- every row before it lies below the size measured now.
    PERFORM timepart._migrate_install_capture(source, stage, row_key);
    blocks := pg_catalog.pg_relation_size(source) / pg_catalog.current_setting('block_size')::bigint;
    INSERT INTO timepart.migrations AS g (source, source_name, target, stage_schema, key_column, partition_interval, time_zone,
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated)
    VALUES (source, source::text, target, stage, key_column, step, tz, keep, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated)
    RETURNING * INTO m;
    PERFORM timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
END $$;

-- How many blocks hold about batch_size rows, from the table's statistics (or its size).
CREATE OR REPLACE FUNCTION timepart._migrate_batch_blocks(source regclass, batch_size integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT greatest(1, least(1000000, CASE WHEN c.relpages > 0 AND c.reltuples > 0
                                           THEN batch_size / (c.reltuples / c.relpages)
                                           ELSE batch_size / 50 END))::integer
    FROM pg_catalog.pg_class c WHERE c.oid = source
$$;

-- Copies one batch of whole blocks and advances the progress row, in the caller's
-- transaction, so both commit together. A rewritten source (new filenode: VACUUM FULL,
-- CLUSTER) has moved its rows: the copy starts again; the change log stays valid.
CREATE OR REPLACE FUNCTION timepart._migrate_batch(m timepart.migrations, batch_size integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    upto bigint;
    copied bigint;
    cols text := timepart._column_list(m.source);
BEGIN
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', m.source);
    IF pg_catalog.pg_relation_filenode(m.source) <> m.source_filenode THEN
        RAISE NOTICE 'timepart.migrate: % was rewritten; copying it again from the start', m.source;
        EXECUTE format('TRUNCATE %s', m.target);
        UPDATE timepart.migrations g SET next_block = 0, rows_copied = 0,
            source_filenode = pg_catalog.pg_relation_filenode(m.source),
            last_block = pg_catalog.pg_relation_size(m.source) / pg_catalog.current_setting('block_size')::bigint
        WHERE g.id = m.id;
        RETURN 0;
    END IF;
    upto := least(m.next_block + m.blocks_per_batch, m.last_block);
    -- A key that is already in the copy belongs to a row changed since the capture
    -- began (an earlier batch copied its old version): it is in the change log, and
    -- the catch-up replaces it. So a conflict here is skipped, not an error.
    EXECUTE format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ONLY %s WHERE ctid >= %L::pg_catalog.tid AND ctid < %L::pg_catalog.tid '
                   'ON CONFLICT DO NOTHING',
                   m.target, cols, cols, m.source, format('(%s,0)', m.next_block), format('(%s,0)', upto));
    GET DIAGNOSTICS copied = ROW_COUNT;
    -- Aim the next batch at batch_size rows, from the density seen so far.
    UPDATE timepart.migrations g SET next_block = upto, rows_copied = g.rows_copied + copied,
        blocks_per_batch = CASE WHEN g.rows_copied + copied > 0
            THEN greatest(1, least(1000000, batch_size::numeric * upto / (g.rows_copied + copied)))::integer
            ELSE least(1000000, g.blocks_per_batch * 2) END,
        state = CASE WHEN upto >= m.last_block THEN 'catching_up' ELSE g.state END,
        updated_at = pg_catalog.clock_timestamp()
    WHERE g.id = m.id;
    PERFORM timepart._log('migrate_copy', m.source, m.target::text, true,
        jsonb_build_object('rows', copied, 'from_block', m.next_block, 'to_block', upto, 'last_block', m.last_block),
        NULL, started);
    RETURN copied;
END $$;

-- The join condition between a table row (alias a) and a change log row (alias b):
-- equal primary keys, or equal whole rows compared as text (works for every type).
CREATE OR REPLACE FUNCTION timepart._migrate_match(m timepart.migrations) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN m.row_key IS NULL
                THEN format('ROW(%1$s)::text = ROW(%2$s)::text',
                            (SELECT string_agg('a.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
                            (SELECT string_agg('b.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''))
                ELSE (SELECT string_agg(format('a.%1$I = b.%1$I', k), ' AND ') FROM unnest(m.row_key) k) END
$$;

-- Applies up to max_changes logged changes: the logged keys' rows in the copy are
-- replaced by the source's current rows (a key logged twice needs no DISTINCT: the
-- join deletes each row once and the semi-join inserts each once). The applied log rows are deleted in the same
-- statement, so a change whose transaction commits later is applied by a later round.
-- Returns how many log rows were applied.
CREATE OR REPLACE FUNCTION timepart._migrate_catch_up(m timepart.migrations, max_changes integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    keys text := timepart._migrate_key_list(m.source, m.row_key);
    cols text := timepart._column_list(m.source);
    match text := timepart._migrate_match(m);
    applied bigint;
    removed bigint;
    inserted bigint;
BEGIN
    EXECUTE format($q$
        WITH d AS (DELETE FROM %1$I.changes c WHERE c.ctid = ANY (ARRAY(SELECT ctid FROM %1$I.changes LIMIT %2$s)) RETURNING %3$s),
        gone AS (DELETE FROM %4$s a USING d b WHERE %5$s RETURNING 1),
        ins AS (INSERT INTO %4$s (%6$s) OVERRIDING SYSTEM VALUE
                SELECT %6$s FROM ONLY %7$s a WHERE EXISTS (SELECT 1 FROM d b WHERE %5$s) RETURNING 1)
        SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM gone), (SELECT count(*) FROM ins)$q$,
        m.stage_schema, max_changes, keys, m.target, match, cols, m.source)
    INTO applied, removed, inserted;
    IF applied > 0 THEN
        UPDATE timepart.migrations g SET changes_applied = g.changes_applied + applied, updated_at = pg_catalog.clock_timestamp()
        WHERE g.id = m.id;
        PERFORM timepart._log('migrate_catch_up', m.source, m.target::text, true,
            jsonb_build_object('changes', applied, 'rows_removed', removed, 'rows_inserted', inserted), NULL, started);
    END IF;
    RETURN applied;
END $$;

-- Row count and an order-independent checksum (sum of 64-bit hashes of each row as text).
CREATE OR REPLACE FUNCTION timepart._migrate_checksum(rel regclass, cols text, OUT row_count bigint, OUT checksum numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    EXECUTE format('SELECT count(*), coalesce(sum(pg_catalog.hashtextextended(ROW(%s)::text, 0)), 0) FROM %s', cols, rel)
        INTO row_count, checksum;
END $$;

-- Renames the old table's indexes and identity sequences out of the way of the
-- copy's (which keep the original names), then the table itself. Returns its new name.
CREATE OR REPLACE FUNCTION timepart._migrate_retire_source(m timepart.migrations) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    schema_name name;
    old_name name;
BEGIN
    SELECT n.nspname, timepart._fit_name(c.relname, 'unpartitioned_old') INTO schema_name, old_name
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = m.source;
    FOR r IN SELECT t.tgname FROM pg_catalog.pg_trigger t WHERE t.tgrelid = m.source AND t.tgname LIKE 'timepart\_migrate\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', r.tgname, m.source);
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
             WHERE x.indrelid = m.source LOOP
        EXECUTE format('ALTER INDEX %I.%I RENAME TO %I', schema_name, r.relname, timepart._fit_name(r.relname, 'old'));
    END LOOP;
    FOR r IN SELECT s.oid::regclass AS seq, s.relname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid
             WHERE d.refobjid = m.source AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'i' AND s.relkind = 'S' LOOP
        EXECUTE format('ALTER SEQUENCE %s RENAME TO %I', r.seq, timepart._fit_name(r.relname, 'old'));
    END LOOP;
    EXECUTE format('ALTER TABLE %s RENAME TO %I', m.source, old_name);
    RETURN format('%I.%I', schema_name, old_name);
END $$;

-- Moves the copy and its partitions into the source's schema, hands the source's
-- sequences over (serial: ownership; identity: the last value), drops the stage schema.
CREATE OR REPLACE FUNCTION timepart._migrate_place_target(m timepart.migrations, schema_name name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.attname, a.attidentity, pg_catalog.pg_get_serial_sequence(m.source::text, a.attname) AS old_seq,
                    pg_catalog.pg_get_serial_sequence(m.target::text, a.attname) AS new_seq
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped LOOP
        IF r.old_seq IS NOT NULL AND r.new_seq IS NOT NULL THEN
            EXECUTE format('SELECT pg_catalog.setval(%L, s.last_value, s.is_called) FROM %s s', r.new_seq, r.old_seq);
        END IF;
    END LOOP;
    FOR r IN SELECT t.relid::regclass AS rel FROM pg_catalog.pg_partition_tree(m.target) t ORDER BY t.level LOOP
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', r.rel, schema_name);
    END LOOP;
    FOR r IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(m.source::text, a.attname) AS seq
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' LOOP
        IF r.seq IS NOT NULL THEN
            -- The copy's default calls the same sequence; dropping the old table must not take it along.
            EXECUTE format('ALTER SEQUENCE %s OWNED BY %s.%I', r.seq, m.target, r.attname);
        END IF;
    END LOOP;
    EXECUTE format('DROP TABLE %I.changes', m.stage_schema);
    EXECUTE format('DROP SCHEMA %I', m.stage_schema);
END $$;

-- The swap, in the caller's (short) transaction: writes wait (EXCLUSIVE lock), the last
-- changes are applied, both sides are counted and checksummed, then, under ACCESS
-- EXCLUSIVE, names change. A lock wait longer than lock_wait raises lock_not_available.
CREATE OR REPLACE FUNCTION timepart._migrate_swap(m timepart.migrations, lock_wait interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cols text := timepart._column_list(m.source);
    before record;
    after record;
    schema_name name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = m.source);
    old_name text;
    last_changes bigint := 0;
    n bigint;
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text || 'ms', true);
    EXECUTE format('LOCK TABLE ONLY %s IN EXCLUSIVE MODE', m.source);
    LOOP
        n := timepart._migrate_catch_up(m, 1000000);
        last_changes := last_changes + n;
        EXIT WHEN n = 0;
    END LOOP;
    SELECT * INTO before FROM timepart._migrate_checksum(m.source, cols);
    SELECT * INTO after FROM timepart._migrate_checksum(m.target, cols);
    IF before.row_count <> after.row_count OR before.checksum <> after.checksum THEN
        RAISE EXCEPTION 'the partitioned copy of % does not match it; nothing was swapped', m.source USING ERRCODE = 'XX001',
            DETAIL = format('Source: %s rows, checksum %s. Copy %s: %s rows, checksum %s.',
                            before.row_count, before.checksum, m.target, after.row_count, after.checksum),
            HINT = format('Inspect the copy; SELECT timepart.migrate_abort(%L) removes it, then migrate again.', m.source::text);
    END IF;
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', m.source);
    old_name := timepart._migrate_retire_source(m);
    PERFORM timepart._migrate_place_target(m, schema_name);
    UPDATE timepart.migrations g SET state = 'done', finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp(),
        source_rows = before.row_count, source_checksum = before.checksum,
        target_rows = after.row_count, target_checksum = after.checksum
    WHERE g.id = m.id;
    RETURN jsonb_build_object('old_table', old_name, 'table', m.target::text, 'rows', after.row_count,
        'checksum', after.checksum, 'last_changes', last_changes,
        'swap_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1));
END $$;

-- The refusal for a partition name that is taken in the source's schema: the swap
-- would fail there after the whole copy.
CREATE OR REPLACE FUNCTION timepart._migrate_check_names(source regclass, names text[]) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    taken text;
BEGIN
    SELECT string_agg(c.relname, ', ') INTO taken FROM pg_catalog.pg_class c, pg_catalog.pg_class s
    WHERE s.oid = source AND c.relnamespace = s.relnamespace AND c.relname = ANY (names);
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION 'relations named like the new partitions of % already exist', source USING ERRCODE = '42P07',
            DETAIL = format('Taken: %s.', taken), HINT = 'Rename or drop them first.';
    END IF;
END $$;

-- A run's start: the migration under way for this table (same key and interval), or,
-- after every check, a new one prepared. NULL when the table was already migrated.
-- Takes the per-table session lock that keeps a second runner out.
CREATE OR REPLACE FUNCTION timepart._migrate_begin(source regclass, key_column name, step interval, batch_size integer,
                                                   ahead integer, keep interval, tz text)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    m timepart.migrations;
    key_type regtype;
    f record;
    attempt int := 0;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = _migrate_begin.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND AND EXISTS (SELECT 1 FROM timepart.migrations g WHERE g.target = _migrate_begin.source AND g.state = 'done') THEN
        RAISE NOTICE 'timepart.migrate: % is already migrated', source;
        RETURN NULL;
    ELSIF FOUND AND (m.key_column <> key_column OR m.partition_interval <> step) THEN
        RAISE EXCEPTION 'a migration of % by % every % is under way', source, m.key_column, m.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s every %s.', key_column, step),
            HINT = format('Resume it with the same key and interval, or stop it with SELECT timepart.migrate_abort(%L).', source::text);
    ELSIF NOT FOUND THEN
        key_type := timepart._migrate_check(source, key_column, step, tz);
        IF ahead IS NULL OR ahead NOT BETWEEN 1 AND 1000 THEN
            RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
                DETAIL = format('Got %s.', coalesce(ahead::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
        END IF;
        IF keep <= interval '0' THEN
            RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
                DETAIL = format('Got %s.', keep), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
        END IF;
        SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, tz);
        PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
        PERFORM timepart._migrate_check_names(source, ARRAY[timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), 'default')::text]
            || ARRAY(SELECT timepart._partition_name(source, p.range_start, step, tz)::text
                     FROM timepart._migrate_periods(source, key_column, key_type, step, tz, f.oldest, f.newest, 0, false) p));
    END IF;
    IF NOT pg_catalog.pg_try_advisory_lock(timepart._lock_key(source)) THEN
        RAISE EXCEPTION 'another session is migrating %', source USING ERRCODE = '55006',
            DETAIL = 'Only one run at a time copies a table.', HINT = 'Wait for it to finish, or end that session to take over.';
    END IF;
    IF m.id IS NOT NULL THEN
        RAISE NOTICE 'timepart.migrate: resuming % at block % of % (% rows copied)', source, m.next_block, m.last_block, m.rows_copied;
        RETURN m;
    END IF;
    BEGIN
        LOOP
            attempt := attempt + 1;
            BEGIN
                -- The capture trigger's lock on the source waits at most this long per attempt.
                PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
                RETURN timepart._migrate_prepare(source, key_column, key_type, step, ahead, keep, tz, batch_size,
                                                 f.row_count, f.oldest, f.newest);
            EXCEPTION WHEN lock_not_available THEN
                IF attempt >= 20 THEN RAISE; END IF;
                PERFORM pg_catalog.pg_sleep(least(2, 0.1 * attempt));
            END;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(source));
        RAISE;
    END;
    RETURN NULL;  -- not reached: the loop returns or raises
END $$;

-- One progress line per batch; the CLI parses "<n> of ~<total> rows copied".
CREATE OR REPLACE FUNCTION timepart._migrate_progress(m timepart.migrations, run_started timestamptz, rows_at_start bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rate numeric := (m.rows_copied - rows_at_start)
                    / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - run_started), 0.001);
BEGIN
    RAISE NOTICE 'timepart.migrate: % of ~% rows copied (block % of %, % rows/s)',
        m.rows_copied, greatest(m.rows_estimated, m.rows_copied), m.next_block, m.last_block, round(rate);
END $$;

-- The swap, retried: each attempt is one short transaction; between attempts the
-- backlog is applied so the next one has little to do. A mismatch or any other
-- error ends the run (logged first, so the log row survives), the state stays.
CREATE OR REPLACE PROCEDURE timepart._migrate_swap_retrying(m timepart.migrations, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    lock_wait interval := (SELECT c.lock_timeout FROM timepart.config c WHERE c.parent = m.target);
    result jsonb;
    attempt int := 0;
    err text;
    state text;
    detail text;
    hint text;
BEGIN
    LOOP
        attempt := attempt + 1;
        started := pg_catalog.clock_timestamp();
        BEGIN
            result := timepart._migrate_swap(m, lock_wait);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        END;
        IF result IS NOT NULL THEN
            PERFORM timepart._log('migrate_swap', m.target, m.target::text, true, result || jsonb_build_object('attempts', attempt), NULL, started);
            COMMIT;
            RAISE NOTICE 'timepart.migrate: % is partitioned now (% rows, checksum %, swap took % ms); the old table is %',
                m.target, result->>'rows', result->>'checksum', result->>'swap_ms', result->>'old_table';
            RETURN;
        END IF;
        PERFORM timepart._log('migrate_swap', m.source, m.target::text, false, jsonb_build_object('attempt', attempt, 'sqlstate', state), err, started);
        COMMIT;
        IF state <> '55P03' OR attempt >= 20 THEN
            PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(m.source));
            RAISE EXCEPTION '%', err USING ERRCODE = state, DETAIL = detail,
                HINT = CASE WHEN state = '55P03' THEN format('Gave up after %s lock waits of %s. CALL timepart.migrate again when traffic allows; the copy is kept.', attempt, lock_wait) ELSE hint END;
        END IF;
        RAISE NOTICE 'timepart.migrate: swap attempt % waited too long for a lock; retrying', attempt;
        PERFORM pg_catalog.pg_sleep(least(2, 0.1 * attempt));
        PERFORM timepart._migrate_catch_up(m, batch_size);
        COMMIT;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE timepart.migrate(source regclass, key_column name, partition_interval interval DEFAULT '1 month',
                                             batch_size integer DEFAULT 50000, premake integer DEFAULT 6,
                                             retention interval DEFAULT NULL, time_zone text DEFAULT 'UTC')
LANGUAGE plpgsql AS $$
/* Converts an unpartitioned table into a managed partitioned one of the same name
   while it stays in use: batches of batch_size rows, a COMMIT after each, concurrent
   writes captured and applied, counts and checksums compared, names swapped in one
   short transaction. CALL it outside a transaction block; CALL it again to resume. */
DECLARE
    m timepart.migrations;
    run_started timestamptz := pg_catalog.clock_timestamp();
    rows_at_start bigint;
    n bigint;
BEGIN
    IF batch_size IS NULL OR batch_size < 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(batch_size::text, 'NULL')), HINT = 'Copy e.g. 50000 rows per transaction.';
    END IF;
    m := timepart._migrate_begin(source, key_column, partition_interval, batch_size, premake, retention, time_zone);
    IF m.id IS NULL THEN
        RETURN;
    END IF;
    COMMIT;
    rows_at_start := m.rows_copied;
    WHILE m.state = 'copying' LOOP
        PERFORM timepart._migrate_batch(m, batch_size);
        COMMIT;
        SELECT * INTO m FROM timepart.migrations g WHERE g.id = m.id;
        PERFORM timepart._migrate_progress(m, run_started, rows_at_start);
    END LOOP;
    LOOP
        n := timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        EXIT WHEN n < batch_size;
    END LOOP;
    CALL timepart._migrate_swap_retrying(m, batch_size);
    IF m.retention IS NOT NULL THEN
        PERFORM timepart.configure(m.target, jsonb_build_object('retention', m.retention));
    END IF;
    PERFORM timepart._log('migrate', m.source, m.target::text, true,
        (SELECT to_jsonb(g) - 'source' FROM timepart.migrations g WHERE g.id = m.id), NULL, run_started);
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(m.source));
END $$;

COMMENT ON PROCEDURE timepart.migrate(regclass, name, interval, integer, integer, interval, text) IS
    'Converts an unpartitioned table into a managed partitioned one online, in resumable batches; the old table is kept as <name>_unpartitioned_old';

CREATE OR REPLACE FUNCTION timepart.migrate_abort(source regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops an unfinished migration: removes the capture triggers, the partitioned copy
   and its registration. The source table and its rows are untouched. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    m timepart.migrations;
    t record;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = migrate_abort.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND THEN
        RAISE NOTICE 'no migration of % is under way', source;
        RETURN false;
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(source)) THEN
        RAISE EXCEPTION 'a session is migrating % right now', source USING ERRCODE = '55006',
            DETAIL = 'It holds the table''s migration lock.', HINT = 'Cancel that CALL first (pg_cancel_backend), then abort.';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
    FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g WHERE g.tgrelid = source AND g.tgname LIKE 'timepart\_migrate\_%' LOOP
        EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, source);
    END LOOP;
    DELETE FROM timepart.config c WHERE c.parent = m.target;
    EXECUTE format('DROP SCHEMA %I CASCADE', m.stage_schema);
    UPDATE timepart.migrations g SET state = 'aborted', finished_at = pg_catalog.clock_timestamp() WHERE g.id = m.id;
    PERFORM timepart._log('migrate_abort', source, NULL, true, jsonb_build_object('rows_copied', m.rows_copied), NULL, started);
    RETURN true;
END $$;

COMMENT ON FUNCTION timepart.migrate_abort(regclass) IS 'Stops an unfinished timepart.migrate: drops the partitioned copy and the capture triggers; the source stays as it is';

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Runs as the caller: only an owner of a table (or a member of its owner role) may
   register, reconfigure or forget it, or change its index templates or migration.
   TG_ARGV[0] names the column holding the table (default: parent). */
DECLARE
    tbl regclass := (pg_catalog.to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END)
                     ->> coalesce(TG_ARGV[0], 'parent'))::regclass;
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to manage it', tbl USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s.', tbl, (SELECT relowner::regrole FROM pg_catalog.pg_class WHERE oid = tbl)),
            HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

DROP TRIGGER IF EXISTS config_owner_guard ON timepart.config;
CREATE TRIGGER config_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.config
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard();

DROP TRIGGER IF EXISTS index_templates_owner_guard ON timepart.index_templates;

CREATE TRIGGER index_templates_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.index_templates
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('parent');

DROP TRIGGER IF EXISTS migrations_owner_guard ON timepart.migrations;

CREATE TRIGGER migrations_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('source');

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
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD''', f.sig);
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
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        GRANT INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.migrations TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;

SELECT timepart._harden();
