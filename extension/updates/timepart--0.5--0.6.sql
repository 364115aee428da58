-- timepart--0.5--0.6.sql: change_interval() (periods counted from an anchor, labels from
-- each partition's bounds); inserts no longer fail when maintain attaches the period they
-- were routed to the default partition for (the parent is locked first); partition_stats
-- scans only small live partitions; cleanup counts rows (from the snapshot when still
-- exact) before its first detach.

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.6'::text $$;

-- ==== src/10_tables.sql
-- Tables: configuration (one row per managed table), index templates, maintenance log.

ALTER TABLE timepart.config ADD COLUMN interval_anchor timestamptz;

COMMENT ON COLUMN timepart.config.interval_anchor IS 'Where periods of the current interval start counting (set by change_interval); NULL: natural boundaries';

-- Label of a period as used in partition names: YYYY_MM for month intervals starting
-- on the 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._period_label(period_start timestamptz, step interval, tz text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.to_char(period_start AT TIME ZONE tz,
           CASE WHEN pg_catalog.date_part('day', step) = 0
                 AND pg_catalog.date_trunc('month', period_start AT TIME ZONE tz) = period_start AT TIME ZONE tz
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, tz text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.to_char(range_start AT TIME ZONE tz,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE tz) = range_start AT TIME ZONE tz
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE tz) = range_end AT TIME ZONE tz
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- The period of a managed table containing a moment: natural boundaries, or counted
-- from interval_anchor once the interval was changed.
CREATE OR REPLACE FUNCTION timepart._period_of(cfg timepart.config, at_time timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    step interval := cfg.partition_interval;
    tz text := cfg.time_zone;
    a timestamp := cfg.interval_anchor AT TIME ZONE cfg.time_zone;
    t timestamp := at_time AT TIME ZONE cfg.time_zone;
    months int := (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))::int;
    n bigint;
BEGIN
    IF cfg.interval_anchor IS NULL THEN
        RETURN timepart._period_start(at_time, step, tz);
    END IF;
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', t) * 12 + pg_catalog.date_part('month', t))::bigint
           - (pg_catalog.date_part('year', a) * 12 + pg_catalog.date_part('month', a))::bigint;
        IF a + pg_catalog.make_interval(months => n::int) > t THEN n := n - 1; END IF;
        n := n - ((n % months) + months) % months;
        RETURN (a + pg_catalog.make_interval(months => n::int)) AT TIME ZONE tz;
    END IF;
    n := pg_catalog.floor(extract(epoch FROM t - a) / 86400)::bigint;
    n := n - ((n % pg_catalog.date_part('day', step)::int) + pg_catalog.date_part('day', step)::int) % pg_catalog.date_part('day', step)::int;
    RETURN (a + pg_catalog.make_interval(days => n::int)) AT TIME ZONE tz;
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
    IF FOUND AND old.partition_interval <> step THEN
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

CREATE OR REPLACE FUNCTION timepart.configure(parent regclass, settings jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
/* Changes a managed table's settings, e.g. '{"retention": "12 months", "premake": 3}'.
   Unknown or fixed keys and invalid values are refused; nothing changes then. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    bad text;
    fixed text[] := ARRAY['parent', 'key_column', 'key_type', 'partition_interval', 'time_zone', 'created_at', 'interval_anchor'];
BEGIN
    IF settings IS NULL OR pg_catalog.jsonb_typeof(settings) <> 'object' THEN
        RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(settings::text, 'NULL')), HINT = 'Pass e.g. ''{"premake": 3}''.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(settings) k
    WHERE k = ANY (fixed) OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = 'timepart.config'::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown or fixed setting(s): %', bad USING ERRCODE = '22023',
            DETAIL = format('Fixed: %s. The interval changes with timepart.change_interval().', array_to_string(fixed, ', ')),
            HINT = 'Settable: premake, retention, retention_action, archive_schema, default_partition, lock_timeout, '
                   'lock_retries, alert_max_size_bytes, alert_max_rows, alert_min_future, alert_growth_ratio, alert_old_age.';
    END IF;
    BEGIN
        cfg := jsonb_populate_record(cfg, settings);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'invalid setting value: %', SQLERRM USING ERRCODE = '22023',
            DETAIL = format('Settings: %s.', settings), HINT = 'Intervals are text such as "12 months"; counts are numbers.';
    END;
    PERFORM timepart._check_settings(cfg);
    UPDATE timepart.config c SET premake = cfg.premake, retention = cfg.retention, retention_action = cfg.retention_action,
        archive_schema = cfg.archive_schema, default_partition = cfg.default_partition, lock_timeout = cfg.lock_timeout,
        lock_retries = cfg.lock_retries, alert_max_size_bytes = cfg.alert_max_size_bytes,
        alert_max_rows = cfg.alert_max_rows, alert_min_future = cfg.alert_min_future,
        alert_growth_ratio = cfg.alert_growth_ratio, alert_old_age = cfg.alert_old_age
    WHERE c.parent = configure.parent;
    PERFORM timepart._log('configure', parent, NULL, true, settings, NULL, started);
    RETURN to_jsonb(cfg);
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
    IF new_interval = cfg.partition_interval THEN
        RAISE NOTICE 'table % already uses interval %', parent, new_interval;
        RETURN timepart.maintain(parent, NULL, as_of);
    END IF;
    SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end)) INTO anchor
    FROM timepart._partitions(parent, cfg.time_zone) p WHERE NOT p.is_default;
    UPDATE timepart.config c SET partition_interval = new_interval, interval_anchor = anchor
    WHERE c.parent = change_interval.parent;
    PERFORM timepart._log('change_interval', parent, NULL, true,
        jsonb_build_object('from', cfg.partition_interval, 'to', new_interval, 'anchor', anchor), NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;

COMMENT ON FUNCTION timepart.change_interval(regclass, interval, timestamptz) IS
    'Changes a managed table''s partition interval; existing partitions stay, new ones follow from the end of the last';

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
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
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

-- The refusal for a range that cannot become a partition. Returns the partition
-- that already covers exactly this range, or NULL.
CREATE OR REPLACE FUNCTION timepart._check_range(cfg timepart.config, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    aligned timestamptz;
    clash record;
BEGIN
    IF range_start IS NULL OR range_end IS NULL OR NOT pg_catalog.isfinite(range_start) OR NOT pg_catalog.isfinite(range_end) THEN
        RAISE EXCEPTION 'partition bounds must be finite moments' USING ERRCODE = '22023',
            DETAIL = format('Got %s to %s.', coalesce(range_start::text, 'NULL'), coalesce(range_end::text, 'NULL')),
            HINT = 'Pass the start and end of one period, e.g. ''2024-03-01'' and ''2024-04-01''.';
    END IF;
    IF range_end <= range_start THEN
        RAISE EXCEPTION 'partition range is reversed or empty' USING ERRCODE = '22023',
            DETAIL = format('Start %s is not before end %s.', range_start, range_end),
            HINT = 'Pass the earlier moment first.';
    END IF;
    aligned := timepart._period_of(cfg, range_start);
    IF aligned <> range_start OR timepart._period_add(aligned, cfg.partition_interval, 1, cfg.time_zone) <> range_end THEN
        RAISE EXCEPTION 'partition range is not aligned with the interval of %', cfg.parent USING ERRCODE = '22023',
            DETAIL = format('Got %s to %s; partitions of this table cover one period of %s in time zone %s.',
                            range_start, range_end, cfg.partition_interval, cfg.time_zone),
            HINT = format('The period containing the start is %s to %s.', aligned,
                          timepart._period_add(aligned, cfg.partition_interval, 1, cfg.time_zone));
    END IF;
    SELECT p.schema_name, p.partition_name, p.range_start AS s, p.range_end AS e INTO clash
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p
    WHERE NOT p.is_default AND p.range_start < _check_range.range_end AND p.range_end > _check_range.range_start
    ORDER BY (p.range_start = _check_range.range_start AND p.range_end = _check_range.range_end) DESC
    LIMIT 1;
    IF FOUND AND clash.s = range_start AND clash.e = range_end THEN
        RETURN format('%I.%I', clash.schema_name, clash.partition_name);
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'partition range overlaps existing partition %', clash.partition_name USING ERRCODE = '22023',
            DETAIL = format('Asked for %s to %s; %s covers %s to %s.', range_start, range_end,
                            clash.partition_name, clash.s, clash.e),
            HINT = 'Choose a period that no partition covers yet.';
    END IF;
    RETURN NULL;
END $$;

-- ==== src/65_retention.sql
-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT ((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - keep)
           AT TIME ZONE cfg.time_zone
$$;

-- Removes one partition per the table's retention_action. Runs inside _attempt's
-- sub-transaction. DETACH needs an ACCESS EXCLUSIVE lock on the parent, which the lock
-- budget bounds and which is held to the end of the run: cleanup counts rows before
-- its first detach, so nothing slow happens while it is held.
CREATE OR REPLACE FUNCTION timepart._retire_partition(cfg timepart.config, part_name name,
                                                      range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    part regclass;
    bytes bigint;
BEGIN
    SELECT p.partition_oid::regclass INTO part FROM timepart._partitions(cfg.parent, cfg.time_zone) p
    WHERE p.partition_name = part_name AND p.range_start = _retire_partition.range_start
      AND p.range_end = _retire_partition.range_end;
    IF part IS NULL THEN
        RAISE EXCEPTION 'partition % of % no longer covers % to %', part_name, cfg.parent, range_start, range_end
            USING ERRCODE = '55000', HINT = 'It changed since cleanup planned; run cleanup again.';
    END IF;
    bytes := pg_catalog.pg_total_relation_size(part);
    EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', cfg.parent, part);
    IF cfg.retention_action = 'drop' THEN
        EXECUTE format('DROP TABLE %s', part);
    ELSIF cfg.retention_action = 'archive' THEN
        EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', cfg.archive_schema);
        EXECUTE format('ALTER TABLE %s SET SCHEMA %I', part, cfg.archive_schema);
    END IF;
    RETURN jsonb_build_object('action', cfg.retention_action, 'size_bytes', bytes,
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
        SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM parts p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, h.ends, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        -- The condition inside the subquery makes it a one-time filter: only small live
        -- partitions are scanned.
        LEFT JOIN LATERAL (SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column) f
                           WHERE p.live AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
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

-- Exact rows of a partition: the snapshot's count while the partition has not changed
-- since, else a count(*).
CREATE OR REPLACE FUNCTION timepart._record_count(rel oid) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT h.record_count INTO n FROM timepart.stats_history h
    WHERE h.partition_oid = rel AND h.changes_seen = timepart._changes(rel)
    ORDER BY h.snapshot_date DESC LIMIT 1;
    IF n IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %s', rel::regclass) INTO n;
    END IF;
    RETURN n;
END $$;

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too).
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz)
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
        EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part) INTO default_rows;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (SELECT * FROM timepart.partition_stats(tbl)),
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

SELECT timepart._harden();
