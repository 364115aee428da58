-- Registry: adopting a partitioned table (manage) and letting it go (unmanage).

-- timepart's own tables are written only through these, as timepart's owner (SECURITY
-- DEFINER), each checking what the session's role (_caller()) may do: no other role holds
-- a right to write them, so none can lock them either (LOCK TABLE needs one) and hold
-- every table's maintenance up. Registering and forgetting a table, and its templates,
-- stay its owner's (or a member's, or a superuser's).
CREATE OR REPLACE FUNCTION timepart._config_put(cfg timepart.config) RETURNS timepart.config
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), cfg.parent, 'manage it');
    INSERT INTO timepart.config AS c SELECT cfg.*
    ON CONFLICT (parent) DO UPDATE SET key_column = excluded.key_column, key_type = excluded.key_type,
        partition_interval = excluded.partition_interval, premake = excluded.premake, retention = excluded.retention,
        retention_action = excluded.retention_action, archive_schema = excluded.archive_schema,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout, lock_retries = excluded.lock_retries,
        time_zone = excluded.time_zone, alert_max_size_bytes = excluded.alert_max_size_bytes, alert_max_rows = excluded.alert_max_rows,
        alert_min_future = excluded.alert_min_future, alert_growth_ratio = excluded.alert_growth_ratio,
        alert_old_age = excluded.alert_old_age, interval_anchor = excluded.interval_anchor,
        monitor_sees_values = excluded.monitor_sees_values, partition_options = excluded.partition_options,
        partition_unlogged = excluded.partition_unlogged
    RETURNING * INTO cfg;
    RETURN cfg;
END $$;

CREATE OR REPLACE FUNCTION timepart._config_drop(tbl regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), tbl, 'stop managing it');
    DELETE FROM timepart.config c WHERE c.parent = tbl;
    RETURN FOUND;
END $$;

-- Validates a table and settings and writes its configuration row. No partitions yet.
-- A setting given as NULL keeps what the table has (or the default, for a new table).
CREATE OR REPLACE FUNCTION timepart._register(tbl regclass, partition_interval interval, premake integer, retention interval,
                                              with_default boolean, lock_wait interval, time_zone text)
RETURNS timepart.config LANGUAGE plpgsql AS $$
DECLARE
    pt record;
    cfg timepart.config;
    old timepart.config;
    known boolean;
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
    PERFORM timepart._check_time_column(tbl, pt.attname, pt.keytype);
    SELECT * INTO old FROM timepart.config c WHERE c.parent = tbl;
    known := FOUND;
    IF NOT known THEN
        old := ROW(tbl, pt.attname, pt.keytype, '1 month', 6, NULL, 'drop', NULL, true, '100 milliseconds', 3, 'UTC',
                   5368709120, 10000000, 2, 0.5, '13 months', now(), NULL, false, '{}', false)::timepart.config;
        cfg := old;
        cfg.retention := retention;
    ELSE
        cfg := old;
        cfg.retention := coalesce(retention, old.retention);
    END IF;
    cfg.partition_interval := coalesce(partition_interval, old.partition_interval);
    cfg.premake := coalesce(premake, old.premake);
    cfg.default_partition := coalesce(with_default, old.default_partition);
    cfg.lock_timeout := coalesce(lock_wait, old.lock_timeout);
    cfg.time_zone := coalesce(time_zone, old.time_zone);
    PERFORM timepart._check_settings(cfg);
    IF known AND old.time_zone <> cfg.time_zone THEN
        RAISE EXCEPTION 'table % is already managed in time zone %', tbl, old.time_zone USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', cfg.time_zone),
            HINT = 'Period boundaries depend on the time zone; it cannot change while partitions exist.';
    END IF;
    IF known AND old.partition_interval::text <> cfg.partition_interval::text THEN
        RAISE EXCEPTION 'table % is already managed with interval %', tbl, old.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', cfg.partition_interval),
            HINT = format('Change it with SELECT timepart.change_interval(%L, %L);', tbl::text, cfg.partition_interval::text);
    END IF;
    RETURN timepart._config_put(cfg);
END $$;

CREATE OR REPLACE FUNCTION timepart.manage(parent regclass, partition_interval interval DEFAULT NULL,
                                           premake integer DEFAULT NULL, retention interval DEFAULT NULL,
                                           default_partition boolean DEFAULT NULL,
                                           lock_timeout interval DEFAULT NULL,
                                           time_zone text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Adopts a table partitioned BY RANGE on a time column and creates the partitions
   it needs now. A new table gets '1 month', premake 6, no retention, a default
   partition, a 100 ms lock budget and UTC for what is not given. Calling it again
   changes only the settings given (to clear a retention, use configure). Returns what
   maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
BEGIN
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._check_owner_can_create(parent, 'manage it');
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    CALL timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;
COMMENT ON FUNCTION timepart.manage(regclass, interval, integer, interval, boolean, interval, text, timestamptz) IS
    'Adopts a range-partitioned table: records its settings and creates the partitions it needs now';

CREATE OR REPLACE FUNCTION timepart.unmanage(parent regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops managing a table. Every partition, index and row stays. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF NOT timepart._config_drop(unmanage.parent) THEN
        RAISE NOTICE 'table % is not managed by timepart', parent;
        RETURN false;
    END IF;
    CALL timepart._log('unmanage', parent, NULL, true, '{}', NULL, started);
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.unmanage(regclass) IS 'Stops managing a table; its partitions and rows stay';

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
                   'lock_retries, alert_max_size_bytes, alert_max_rows, alert_min_future, alert_growth_ratio, alert_old_age, '
                   'monitor_sees_values, partition_options, partition_unlogged.';
    END IF;
    BEGIN
        cfg := jsonb_populate_record(cfg, settings);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'invalid setting value: %', SQLERRM USING ERRCODE = '22023',
            DETAIL = format('Settings: %s.', settings), HINT = 'Intervals are text such as "12 months"; counts are numbers.';
    END;
    PERFORM timepart._check_settings(cfg);
    PERFORM timepart._check_partition_options(cfg.partition_options);
    PERFORM timepart._config_put(cfg);
    CALL timepart._log('configure', parent, NULL, true, settings, NULL, started);
    RETURN to_jsonb(cfg);
END $$;
COMMENT ON FUNCTION timepart.configure(regclass, jsonb) IS 'Changes a managed table''s settings from a JSON object; invalid settings change nothing';

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
    cfg.partition_interval := new_interval;
    cfg.interval_anchor := anchor;
    PERFORM timepart._config_put(cfg);
    CALL timepart._log('change_interval', parent, NULL, true,
        jsonb_build_object('from', cfg.partition_interval, 'to', new_interval, 'anchor', anchor), NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;
COMMENT ON FUNCTION timepart.change_interval(regclass, interval, timestamptz) IS
    'Changes a managed table''s partition interval; existing partitions stay, new ones follow from the end of the last';
