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
    PERFORM timepart._check_interval(step);
    IF ahead IS NULL OR ahead < 1 OR ahead > 1000 THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(ahead::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
    END IF;
    IF keep IS NOT NULL AND keep <= interval '0' THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', keep), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
    END IF;
    IF lock_wait IS NULL OR lock_wait <= interval '0' OR lock_wait > interval '1 minute' THEN
        RAISE EXCEPTION 'lock_timeout must be between 0 and 1 minute' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(lock_wait::text, 'NULL')),
            HINT = 'A maintenance step waits at most this long for a lock; 100 ms suits busy tables.';
    END IF;
    IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = tz)
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs WHERE abbrev = tz) THEN
        RAISE EXCEPTION 'unknown time zone "%"', tz USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
    SELECT * INTO old FROM timepart.config c WHERE c.parent = tbl;
    IF FOUND AND old.partition_interval <> step THEN
        RAISE EXCEPTION 'table % is already managed with interval %', tbl, old.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', step),
            HINT = 'Changing the interval of a managed table is not supported yet; unmanage it first if it has no partitions.';
    END IF;
    INSERT INTO timepart.config AS c (parent, key_column, key_type, partition_interval, premake, retention,
                                      default_partition, lock_timeout, time_zone)
    VALUES (tbl, pt.attname, pt.keytype, step, ahead, keep, with_default, lock_wait, tz)
    ON CONFLICT (parent) DO UPDATE SET premake = excluded.premake, retention = excluded.retention,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout, time_zone = excluded.time_zone
    RETURNING * INTO cfg;
    RETURN cfg;
END $$;

CREATE OR REPLACE FUNCTION timepart.manage(parent regclass, partition_interval interval DEFAULT '1 month',
                                           premake integer DEFAULT 6, retention interval DEFAULT NULL,
                                           default_partition boolean DEFAULT true,
                                           lock_timeout interval DEFAULT '100 milliseconds',
                                           time_zone text DEFAULT 'UTC', as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Adopts a table partitioned BY RANGE on a time column and creates the partitions
   it needs now. Calling it again updates the settings. Returns what maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
BEGIN
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    PERFORM timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
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
    DELETE FROM timepart.config c WHERE c.parent = unmanage.parent;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % is not managed by timepart', parent;
        RETURN false;
    END IF;
    PERFORM timepart._log('unmanage', parent, NULL, true, '{}', NULL, started);
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.unmanage(regclass) IS 'Stops managing a table; its partitions and rows stay';
