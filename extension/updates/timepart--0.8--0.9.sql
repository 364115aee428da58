-- timepart 0.8 -> 0.9: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- pending.sql
ALTER TABLE timepart.config ADD COLUMN partition_options jsonb NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE timepart.config ADD COLUMN partition_unlogged boolean NOT NULL DEFAULT false;
ALTER TABLE timepart.config ADD CONSTRAINT config_partition_options_object CHECK (jsonb_typeof(partition_options) = 'object');

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._period_start(timestamp with time zone, interval, text);
DROP FUNCTION IF EXISTS timepart._period_add(timestamp with time zone, interval, integer, text);
DROP FUNCTION IF EXISTS timepart._period_label(timestamp with time zone, interval, text);
DROP FUNCTION IF EXISTS timepart._bounds_label(timestamp with time zone, timestamp with time zone, text);
DROP FUNCTION IF EXISTS timepart._partition_name(regclass, timestamp with time zone, interval, text);
DROP FUNCTION IF EXISTS timepart._bound_literal(timestamp with time zone, regtype, text);
DROP FUNCTION IF EXISTS timepart._bound_value(text, oid, text);
DROP FUNCTION IF EXISTS timepart._partitions(regclass, text);
DROP FUNCTION IF EXISTS timepart._check_interval(interval);
DROP FUNCTION IF EXISTS timepart._register(regclass, interval, integer, interval, boolean, interval, text);
DROP FUNCTION IF EXISTS timepart._retention_boundary(timepart.config, interval, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._plan_retention(timepart.config, interval, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._cleanup_table(timepart.config, interval, boolean, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._plan_partitions(regclass, integer, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._maintain_table(timepart.config, integer, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._migrate_key_expr(name, regtype, text);
DROP FUNCTION IF EXISTS timepart._migrate_check(regclass, name, interval, text);
DROP FUNCTION IF EXISTS timepart._migrate_facts(regclass, name, regtype, text);
DROP FUNCTION IF EXISTS timepart._migrate_periods(regclass, name, regtype, interval, text, timestamp with time zone, timestamp with time zone, bigint, boolean);
DROP FUNCTION IF EXISTS timepart._migrate_prepare(regclass, name, regtype, interval, integer, interval, text, integer, bigint, timestamp with time zone, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._migrate_begin(regclass, name, interval, integer, integer, interval, text);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.9'::text $$;

-- The body of an executor for one role. Every name in it is schema-qualified and every
-- operator spelled OPERATOR(pg_catalog.x): its owner can change its search_path.
CREATE OR REPLACE FUNCTION timepart._executor_body(owner_name name) RETURNS text
LANGUAGE sql STABLE AS $body$
    SELECT pg_catalog.format($f$
DECLARE
    result pg_catalog.jsonb;
    n pg_catalog.int8;
    escaped pg_catalog.bool := false;
BEGIN
    IF current_user OPERATOR(pg_catalog.<>) %1$L::pg_catalog.name THEN
        RAISE EXCEPTION 'timepart: the executor of %% runs as %%', %1$L, current_user USING ERRCODE = '42501';
    END IF;
    -- Only a security-definer context refuses a role change: prove we are in one.
    BEGIN
        PERFORM pg_catalog.set_config('role', 'none', true);
        escaped := true;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    IF escaped THEN
        RAISE EXCEPTION 'timepart: the executor of %% is not a security definer', %1$L USING ERRCODE = '42501',
            HINT = 'Someone altered it; timepart refuses to run user code through it.';
    END IF;
    IF wants_value THEN
        EXECUTE q INTO result;
    ELSE
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := pg_catalog.jsonb_build_object('rows', n);
    END IF;
    RETURN result;
END $f$, owner_name)
$body$;

COMMENT ON COLUMN timepart.config.partition_options IS 'Storage parameters every new partition gets (fillfactor, autovacuum_*, toast.*), e.g. {"fillfactor": 90}';

COMMENT ON COLUMN timepart.config.partition_unlogged IS 'Whether new partitions are UNLOGGED (not crash-safe, not replicated; faster writes)';

CREATE INDEX maintenance_log_table_idx ON timepart.maintenance_log (parent_table, operation_type, id DESC);

-- pg_dump keeps the log (the seed's audit trail) and its ids.
SELECT timepart._config_dump('timepart.maintenance_log');

SELECT timepart._config_dump('timepart.maintenance_log_id_seq');

-- ==== src/20_naming.sql
-- Periods and names: where a period starts, what a partition is called, how a
-- bound is written. Pure functions; "now" is always a parameter.

-- Longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
CREATE OR REPLACE FUNCTION timepart._fit_name(base text, suffix text) RETURNS name
LANGUAGE plpgsql STABLE STRICT AS $$
/* base || '_' || suffix, kept within 63 bytes: when too long, base is cut at a
   character boundary and an 8-hex hash of the full name keeps it unique. */
DECLARE
    full_name text := base || '_' || suffix;
    tag text := '_' || left(pg_catalog.md5(full_name), 8);
    room int;
    cut text;
BEGIN
    IF octet_length(full_name) <= 63 THEN
        RETURN full_name::name;
    END IF;
    room := 63 - octet_length(tag) - octet_length('_' || suffix);
    IF room < 1 THEN
        RAISE EXCEPTION 'name suffix "%" is too long', suffix USING ERRCODE = '22023',
            DETAIL = format('%s bytes leave no room for a table name within 63 bytes.', octet_length(suffix)),
            HINT = 'Use a shorter suffix.';
    END IF;
    cut := base;
    WHILE octet_length(cut) > room LOOP
        cut := left(cut, -1);
    END LOOP;
    RETURN (cut || tag || '_' || suffix)::name;
END $$;

-- The period containing a moment, in the table's time zone. Month intervals align
-- to month 0 of year 0 (so quarters and years fall on natural boundaries); day
-- intervals align to Monday 2000-01-03 (so weeks start on Monday).
CREATE OR REPLACE FUNCTION timepart._period_start(at_time timestamptz, partition_interval interval, time_zone text)
RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    local_ts timestamp := at_time AT TIME ZONE time_zone;
    months int := (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))::int;
    days int := pg_catalog.date_part('day', partition_interval)::int;
    n bigint;
BEGIN
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', local_ts) * 12 + pg_catalog.date_part('month', local_ts) - 1)::bigint;
        n := n - ((n % months) + months) % months;
        RETURN pg_catalog.make_timestamp((n / 12)::int, (n % 12)::int + 1, 1, 0, 0, 0) AT TIME ZONE time_zone;
    END IF;
    n := local_ts::date - date '2000-01-03';
    n := n - ((n % days) + days) % days;
    RETURN (date '2000-01-03' + n::int)::timestamp AT TIME ZONE time_zone;
END $$;

COMMENT ON FUNCTION timepart._period_start(timestamptz, interval, text) IS 'Start of the partition period containing a moment';

-- The moment n periods after a period start (n may be negative), in local time.
CREATE OR REPLACE FUNCTION timepart._period_add(period_start timestamptz, partition_interval interval, n int, time_zone text)
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ((period_start AT TIME ZONE time_zone) + partition_interval * n) AT TIME ZONE time_zone
$$;

-- Label of a period as used in partition names: YYYY_MM for month intervals starting
-- on the 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._period_label(period_start timestamptz, partition_interval interval, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.to_char(period_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_part('day', partition_interval) = 0
                 AND pg_catalog.date_trunc('month', period_start AT TIME ZONE time_zone) = period_start AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.to_char(range_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE time_zone) = range_start AT TIME ZONE time_zone
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE time_zone) = range_end AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- The period of a managed table containing a moment: natural boundaries, or counted
-- from interval_anchor once the interval was changed.
CREATE OR REPLACE FUNCTION timepart._period_of(cfg timepart.config, at_time timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    a timestamp := cfg.interval_anchor AT TIME ZONE cfg.time_zone;
    t timestamp := at_time AT TIME ZONE cfg.time_zone;
    months int := (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))::int;
    n bigint;
BEGIN
    IF cfg.interval_anchor IS NULL THEN
        RETURN timepart._period_start(at_time, partition_interval, time_zone);
    END IF;
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', t) * 12 + pg_catalog.date_part('month', t))::bigint
           - (pg_catalog.date_part('year', a) * 12 + pg_catalog.date_part('month', a))::bigint;
        IF a + pg_catalog.make_interval(months => n::int) > t THEN n := n - 1; END IF;
        n := n - ((n % months) + months) % months;
        RETURN (a + pg_catalog.make_interval(months => n::int)) AT TIME ZONE time_zone;
    END IF;
    n := pg_catalog.floor(extract(epoch FROM t - a) / 86400)::bigint;
    n := n - ((n % pg_catalog.date_part('day', partition_interval)::int) + pg_catalog.date_part('day', partition_interval)::int) % pg_catalog.date_part('day', partition_interval)::int;
    RETURN (a + pg_catalog.make_interval(days => n::int)) AT TIME ZONE time_zone;
END $$;

-- Name of the partition for a period: <parent>_<label>, fitted to 63 bytes.
CREATE OR REPLACE FUNCTION timepart._partition_name(parent regclass, period_start timestamptz, partition_interval interval, time_zone text)
RETURNS name LANGUAGE sql STABLE STRICT AS $$
    SELECT timepart._fit_name(c.relname, timepart._period_label(period_start, partition_interval, time_zone))
    FROM pg_catalog.pg_class c WHERE c.oid = parent
$$;

-- Name of a partition that fills part of a period (next to a hand-made partition): the
-- parent's name and both bounds, YYYY_MM_DD (with HH24MI when a bound is not at midnight).
CREATE OR REPLACE FUNCTION timepart._piece_name(parent regclass, range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS name LANGUAGE sql STABLE STRICT AS $$
    SELECT timepart._fit_name(c.relname, pg_catalog.to_char(range_start AT TIME ZONE time_zone, f) || '_' || pg_catalog.to_char(range_end AT TIME ZONE time_zone, f))
    FROM pg_catalog.pg_class c,
         (SELECT CASE WHEN (range_start AT TIME ZONE time_zone)::time = '00:00' AND (range_end AT TIME ZONE time_zone)::time = '00:00'
                      THEN 'YYYY_MM_DD' ELSE 'YYYY_MM_DD_HH24MI' END AS f) x
    WHERE c.oid = parent
$$;

-- A bound written as a literal of the key's type (timestamptz in UTC with its offset,
-- local time for timestamp and date keys), independent of DateStyle and TimeZone.
CREATE OR REPLACE FUNCTION timepart._bound_literal(bound timestamptz, key_type regtype, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.quote_literal(CASE key_type
        WHEN 'timestamptz'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00"')
        WHEN 'timestamp'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD"T"HH24:MI:SS.US')
        ELSE pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD') END)
$$;

-- ==== src/30_catalog.sql
-- Reading the catalog: a managed table's configuration and its partitions' bounds,
-- every partition in one query (never one query per partition).

-- The one place that asks which PostgreSQL this is: every difference between the
-- supported majors (15 to 18) is a named fact below, read from here.
CREATE OR REPLACE FUNCTION timepart._server_major() RETURNS integer
LANGUAGE sql STABLE AS $$ SELECT pg_catalog.current_setting('server_version_num')::integer / 10000 $$;

-- Since 17 a partition shares its parent's identity columns (and must have none of its
-- own to be attached); before, a partition's identity would be a second sequence.
CREATE OR REPLACE FUNCTION timepart._partitions_share_identity() RETURNS boolean
LANGUAGE sql STABLE AS $$ SELECT timepart._server_major() >= 17 $$;

-- One bound as the catalog prints it (a literal, MINVALUE or MAXVALUE) to a moment.
-- A single SQL expression, so the planner inlines it.
CREATE OR REPLACE FUNCTION timepart._bound_value(printed text, key_type oid, time_zone text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN printed = 'MINVALUE' THEN '-infinity'::timestamptz
                WHEN printed = 'MAXVALUE' THEN 'infinity'::timestamptz
                WHEN key_type = 'timestamptz'::regtype THEN printed::timestamptz
                WHEN key_type = 'timestamp'::regtype THEN printed::timestamp AT TIME ZONE time_zone
                ELSE printed::date::timestamp AT TIME ZONE time_zone END
$$;

-- Every partition of a parent with its bounds read from the catalog (never from its
-- name), in one query. MINVALUE/MAXVALUE read as -infinity/infinity; the default
-- partition has NULL bounds.
CREATE OR REPLACE FUNCTION timepart._partitions(tbl regclass, time_zone text DEFAULT 'UTC')
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, is_default boolean)
LANGUAGE sql STABLE AS $$
    WITH parts AS MATERIALIZED (
        SELECT c.oid, n.nspname, c.relname,
               pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, 0),  -- 0: bounds are constants; no partition is opened or locked
                                       '^FOR VALUES FROM \(''?([^'']*)''?\) TO \(''?([^'']*)''?\)$') AS b
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    ), key AS (
        SELECT a.atttypid AS key_type
        FROM pg_catalog.pg_partitioned_table p
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = tbl
    )
    SELECT p.oid, p.nspname, p.relname,
           timepart._bound_value(p.b[1], k.key_type, time_zone), timepart._bound_value(p.b[2], k.key_type, time_zone), p.b IS NULL
    FROM parts p CROSS JOIN key k
    ORDER BY 4 NULLS FIRST
$$;

-- ==== src/32_checks.sql
-- The refusals shared by manage, configure, maintain, cleanup and migrate: one rule,
-- one message and one SQLSTATE for each setting, wherever it is given.

-- The refusal for an interval that is not a whole number of days or of months.
CREATE OR REPLACE FUNCTION timepart._check_interval(partition_interval interval) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF partition_interval IS NULL OR partition_interval <= interval '0'
       OR partition_interval <> pg_catalog.make_interval(months => (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval))::int,
                                           days => pg_catalog.date_part('day', partition_interval)::int)
       OR (pg_catalog.date_part('day', partition_interval) <> 0 AND pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval) <> 0) THEN
        RAISE EXCEPTION 'partition interval must be a whole number of days or of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(partition_interval::text, 'NULL')),
            HINT = 'Use e.g. ''1 day'', ''7 days'', ''1 month'' or ''3 months''; not hours, and not months and days mixed.';
    END IF;
    IF partition_interval > interval '10 years' THEN
        RAISE EXCEPTION 'partition interval is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 10 years.', partition_interval),
            HINT = 'Partition by month or year; a table that needs longer partitions needs none.';
    END IF;
END $$;

-- The refusal for settings that break a rule, with the rule in the message. The
-- CHECK constraints on timepart.config say the same; this says it with DETAIL and HINT.
CREATE OR REPLACE FUNCTION timepart._check_settings(cfg timepart.config) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM timepart._check_interval(cfg.partition_interval);
    PERFORM timepart._check_premake(cfg.premake);
    PERFORM timepart._check_retention(cfg.retention);
    IF cfg.retention_action IS NULL OR cfg.retention_action NOT IN ('drop', 'detach', 'archive') THEN
        RAISE EXCEPTION 'retention_action must be drop, detach or archive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.retention_action, 'NULL')),
            HINT = 'drop removes old partitions, detach keeps them as tables, archive moves them to archive_schema.';
    END IF;
    IF cfg.archive_schema IS NOT NULL THEN
        PERFORM timepart._check_archive_schema(cfg.archive_schema);
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
    IF cfg.retention IS NOT NULL AND cfg.retention < cfg.partition_interval THEN
        RAISE EXCEPTION 'retention is shorter than one partition' USING ERRCODE = '22023',
            DETAIL = format('Retention %s, partition interval %s: no partition could ever be kept whole.', cfg.retention, cfg.partition_interval),
            HINT = 'Keep at least one partition interval, e.g. 12 months for monthly partitions.';
    END IF;
    IF cfg.default_partition IS NULL THEN
        RAISE EXCEPTION 'default_partition must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'true (the default) keeps a default partition that catches rows no partition takes.';
    END IF;
    IF cfg.partition_unlogged IS NULL THEN
        RAISE EXCEPTION 'partition_unlogged must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'false (the default) keeps partitions crash-safe and replicated.';
    END IF;
    IF cfg.lock_retries IS NULL OR cfg.lock_retries NOT BETWEEN 0 AND 20 THEN
        RAISE EXCEPTION 'lock_retries must be between 0 and 20' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_retries::text, 'NULL')), HINT = 'A few retries (3) suit most tables.';
    END IF;
    PERFORM timepart._check_time_zone(cfg.time_zone);
    IF cfg.alert_max_size_bytes IS NULL OR cfg.alert_max_size_bytes <= 0 OR cfg.alert_max_rows IS NULL OR cfg.alert_max_rows <= 0
       OR cfg.alert_min_future IS NULL OR cfg.alert_min_future < 0 OR cfg.alert_growth_ratio IS NULL OR cfg.alert_growth_ratio <= 0
       OR cfg.alert_old_age IS NULL OR cfg.alert_old_age <= interval '0' THEN
        RAISE EXCEPTION 'alert thresholds must be positive' USING ERRCODE = '22023',
            DETAIL = format('max size %s bytes, max rows %s, min future %s, growth ratio %s, old age %s.',
                            cfg.alert_max_size_bytes, cfg.alert_max_rows, cfg.alert_min_future, cfg.alert_growth_ratio, cfg.alert_old_age),
            HINT = 'The seed''s defaults are 5 GB, 10 million rows, 2 future partitions, 0.5 (50%) and 13 months.';
    END IF;
END $$;

-- The refusal for a premake (future partitions kept ready) out of range.
CREATE OR REPLACE FUNCTION timepart._check_premake(premake integer) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF premake IS NULL OR premake < 1 OR premake > 1000 THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(premake::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
    END IF;
END $$;

-- The refusal for a retention that is not positive (NULL: keep everything).
CREATE OR REPLACE FUNCTION timepart._check_retention(retention interval) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF retention IS NOT NULL AND (retention <= interval '0' OR timepart._mixed_signs(retention)) THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', retention), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
    END IF;
    IF retention > interval '1000 years' THEN
        RAISE EXCEPTION 'retention is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 1000 years.', retention),
            HINT = 'Use NULL to keep everything.';
    END IF;
END $$;

-- The refusal for a time zone PostgreSQL does not know.
CREATE OR REPLACE FUNCTION timepart._check_time_zone(time_zone text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone)
                        AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs z WHERE z.abbrev = time_zone) THEN
        RAISE EXCEPTION 'unknown time zone "%"', time_zone USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
END $$;

-- The refusal for a key column that is not a time column.
CREATE OR REPLACE FUNCTION timepart._check_time_column(tbl regclass, key_column name, key_type regtype) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF key_type IS NULL OR key_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'key column %.% is not a time column', tbl, key_column USING ERRCODE = '22023',
            DETAIL = format('Its type is %s.', coalesce(key_type::text, 'unknown')),
            HINT = 'timepart partitions by a timestamptz, timestamp or date column.';
    END IF;
END $$;

-- The refusal for a moment that is no moment: NULL or infinite.
CREATE OR REPLACE FUNCTION timepart._check_moment(as_of timestamptz, what text DEFAULT 'as_of') RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION '% must be a finite moment', what USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
END $$;

-- ==== src/35_registry.sql
-- Registry: adopting a partitioned table (manage) and letting it go (unmanage).

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
    INSERT INTO timepart.config AS c (parent, key_column, key_type, partition_interval, premake, retention,
                                      default_partition, lock_timeout, time_zone)
    VALUES (tbl, pt.attname, pt.keytype, cfg.partition_interval, cfg.premake, cfg.retention, cfg.default_partition,
            cfg.lock_timeout, cfg.time_zone)
    ON CONFLICT (parent) DO UPDATE SET premake = excluded.premake, retention = excluded.retention,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout
    RETURNING * INTO cfg;
    RETURN cfg;
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
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    PERFORM timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
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
    UPDATE timepart.config c SET premake = cfg.premake, retention = cfg.retention, retention_action = cfg.retention_action,
        archive_schema = cfg.archive_schema, default_partition = cfg.default_partition, lock_timeout = cfg.lock_timeout,
        lock_retries = cfg.lock_retries, alert_max_size_bytes = cfg.alert_max_size_bytes,
        alert_max_rows = cfg.alert_max_rows, alert_min_future = cfg.alert_min_future,
        alert_growth_ratio = cfg.alert_growth_ratio, alert_old_age = cfg.alert_old_age,
        monitor_sees_values = cfg.monitor_sees_values, partition_options = cfg.partition_options,
        partition_unlogged = cfg.partition_unlogged
    WHERE c.parent = configure.parent;
    PERFORM timepart._log('configure', parent, NULL, true, settings, NULL, started);
    RETURN to_jsonb(cfg);
END $$;

-- ==== src/50_indexes.sql
-- Index templates: every partition gets every template as <partition>_<suffix>,
-- attached to the template's partitioned index on the parent (<parent>_<suffix>).

CREATE OR REPLACE FUNCTION timepart._template_sql(t timepart.index_templates, index_name name,
                                                  schema_name name, table_name name, only_parent boolean)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT format('CREATE INDEX %I ON %s%I.%I USING %I (%s)%s',
                  index_name, CASE WHEN only_parent THEN 'ONLY ' ELSE '' END,
                  schema_name, table_name, t.method, t.columns,
                  CASE WHEN t.where_clause IS NULL THEN '' ELSE ' WHERE (' || t.where_clause || ')' END)
$$;

-- Creates the templated indexes a partition lacks and attaches each to the parent's
-- index. Returns the names created. Runs inside the caller's sub-transaction.
CREATE OR REPLACE FUNCTION timepart._index_partition(tbl regclass, part oid) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    created text[] := '{}'::text[];
    statements text[] := '{}'::text[];
BEGIN
    -- A foreign-table partition holds no index: skipped, said once.
    IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = part) = 'f' THEN
        RAISE NOTICE 'timepart: % is a foreign table; index templates skip it', part::regclass;
        RETURN created;
    END IF;
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
            statements := statements || timepart._template_sql(t.tmpl, t.idx, t.nspname, t.relname, false);
            created := created || t.idx::text;
        END IF;
        -- An attached partition's index is attached here; a new table's at its ATTACH.
        IF t.parent_idx IS NOT NULL AND t.relispartition AND NOT t.attached THEN
            statements := statements || format('ALTER INDEX %s ATTACH PARTITION %I.%I', t.parent_idx, t.nspname, t.idx);
        END IF;
    END LOOP;
    -- All of a partition's index statements in one call of the owner's executor.
    IF cardinality(statements) > 0 THEN
        PERFORM timepart._as_owner(tbl, array_to_string(statements, '; '));
    END IF;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION timepart.add_index_template(parent regclass, suffix text, columns text,
                                                       where_clause text DEFAULT NULL, method text DEFAULT 'btree')
RETURNS integer LANGUAGE plpgsql AS $$
/* Registers an index every partition gets, creates it on the parent (ON ONLY, so
   no lock on the partitions) and back-fills every existing partition. Returns how
   many partition indexes were created. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    t timepart.index_templates;
    p record;
    pname name;
    pschema name;
    made integer := 0;
    existing timepart.index_templates;
    err text;
    state text;
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_template(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    SELECT * INTO existing FROM timepart.index_templates it WHERE it.parent = add_index_template.parent AND it.suffix = add_index_template.suffix;
    IF FOUND THEN
        IF existing.columns IS DISTINCT FROM add_index_template.columns
           OR existing.method IS DISTINCT FROM add_index_template.method
           OR existing.where_clause IS DISTINCT FROM add_index_template.where_clause THEN
            RAISE EXCEPTION 'index template "%" already exists on % with another definition', suffix, parent
                USING ERRCODE = '42710',
                DETAIL = format('Existing: USING %s (%s)%s', existing.method, existing.columns,
                                coalesce(' WHERE ' || existing.where_clause, '')),
                HINT = 'Remove it with timepart.drop_index_template() first, or choose another suffix.';
        END IF;
        t := existing;
    ELSE
        INSERT INTO timepart.index_templates AS it (parent, suffix, columns, method, where_clause)
        VALUES (parent, suffix, columns, coalesce(method, 'btree'), where_clause) RETURNING * INTO t;
    END IF;

    SELECT c.relname, n.nspname INTO pname, pschema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF timepart._template_parent_index(parent, suffix) IS NULL THEN
        -- An invalid definition fails here, before any partition is touched.
        BEGIN
            PERFORM timepart._as_owner(parent, timepart._template_sql(t, timepart._fit_name(pname, suffix), pschema, pname, true));
        EXCEPTION WHEN undefined_column OR undefined_function OR undefined_object OR syntax_error OR datatype_mismatch
                       OR wrong_object_type OR invalid_object_definition THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'index template "%" does not fit %: %', suffix, parent, err USING ERRCODE = state,
                DETAIL = format('Template: USING %s (%s)%s.', t.method, t.columns, coalesce(' WHERE ' || t.where_clause, '')),
                HINT = format('Use columns and expressions of %s (\d %s lists them); nothing was changed.', parent, parent);
        END;
    END IF;
    FOR p IN SELECT * FROM timepart._partitions(parent) LOOP
        made := made + coalesce(array_length(timepart._index_partition(parent, p.partition_oid), 1), 0);
    END LOOP;
    PERFORM timepart._log('add_index_template', parent, NULL, true,
        jsonb_build_object('suffix', suffix, 'columns', columns, 'method', t.method,
                           'where', where_clause, 'indexes_created', made), NULL, started);
    RETURN made;
END $$;

-- ==== src/55_look.sql
-- What a partition inherits from its parent: privileges (table and columns), row-level
-- security with the parent's policies, replica identity, the table comment and the
-- configured storage options (partition_options). One function says how each partition
-- differs from what it should be, with the statement that fixes it: a new partition is
-- born through it, sync_partitions applies it later, and the partition_drift alert reads it.
-- Tablespace and logged-ness are given at birth (CREATE TABLE); changing them later
-- rewrites the table, so for existing partitions they are reported, never applied.

-- The storage options configured for a table's partitions that live on the partition
-- itself: toast.* options live on its TOAST table and are given at birth only.
CREATE OR REPLACE FUNCTION timepart._table_options(cfg timepart.config) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}'::jsonb)
    FROM jsonb_each(coalesce(cfg.partition_options, '{}'::jsonb)) o WHERE o.key NOT LIKE 'toast.%'
$$;

-- Those options as the partition's own reloptions text ('fillfactor=90'), sorted.
CREATE OR REPLACE FUNCTION timepart._partition_reloptions(cfg timepart.config) RETURNS text[]
LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(o.key || '=' || o.value ORDER BY o.key), '{}'::text[])
    FROM jsonb_each_text(timepart._table_options(cfg)) o
$$;

-- The options as a WITH clause body: fillfactor = '90', toast.autovacuum_enabled = 'false'.
CREATE OR REPLACE FUNCTION timepart._reloptions_sql(options jsonb) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(CASE WHEN o.key LIKE 'toast.%' THEN format('toast.%I = %L', substr(o.key, 7), o.value)
                           ELSE format('%I = %L', o.key, o.value) END, ', ' ORDER BY o.key)
    FROM jsonb_each_text(options) o
$$;

-- The refusal for partition_options PostgreSQL would not take: tried on a throwaway
-- temporary table, rolled back, so a bad option is refused before anything changes.
CREATE OR REPLACE FUNCTION timepart._check_partition_options(options jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF options IS NULL OR pg_catalog.jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'partition_options must be a JSON object' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(options::text, 'NULL')),
            HINT = 'E.g. {"fillfactor": 90, "autovacuum_vacuum_scale_factor": 0.01}.';
    END IF;
    IF options = '{}'::jsonb THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('CREATE TEMPORARY TABLE timepart_options_probe (x integer) WITH (%s)', timepart._reloptions_sql(options));
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'probe done';
    EXCEPTION
        WHEN assert_failure THEN NULL;  -- the probe table is rolled back
        WHEN invalid_parameter_value OR syntax_error OR feature_not_supported OR invalid_text_representation THEN
            RAISE EXCEPTION 'invalid partition_options: %', SQLERRM USING ERRCODE = '22023',
                DETAIL = format('Got %s.', options),
                HINT = 'Use table storage parameters (fillfactor, autovacuum_*, toast.*), e.g. {"fillfactor": 90}.';
    END;
END $$;

-- How each partition of a table (or just `part`) differs from what it should be, one row
-- per difference, with the statement that fixes it (NULL: only a rewrite would, so it is
-- reported and left). `attached`: whether the partition is attached yet (a replica
-- identity index only maps to a partition's index once it is).
-- PL/pgSQL (RETURN QUERY) so its plan is cached: a new partition asks once or twice.
CREATE OR REPLACE FUNCTION timepart._partition_drift(tbl regclass, part regclass DEFAULT NULL)
RETURNS TABLE (partition_oid oid, property text, current_value text, wanted text, statement text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH cfg AS (SELECT c.* FROM timepart.config c WHERE c.parent = tbl),
    par AS (SELECT c.* FROM pg_catalog.pg_class c WHERE c.oid = tbl),
    parts AS (
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_class c
        WHERE c.relkind = 'r' AND c.oid = part
        UNION ALL
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        WHERE part IS NULL AND i.inhparent = tbl AND c.relkind = 'r'
    ),
    -- Privileges: the parent's grants (not the owner's own), granted by the partition's owner.
    acl_want AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par, LATERAL pg_catalog.aclexplode(par.relacl) g WHERE g.grantee <> par.relowner
    ),
    acl_have AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, LATERAL pg_catalog.aclexplode(p.relacl) g WHERE g.grantee <> p.relowner
    ),
    acl AS (
        SELECT w.oid, 'privilege' AS property, NULL::text AS current_value,
               format('%s%s to %s', w.privilege_type, CASE WHEN w.is_grantable THEN ' with grant option' ELSE '' END,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s ON %s TO %s%s', w.privilege_type, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(w.grantee::regrole::text) END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM acl_want EXCEPT SELECT * FROM acl_have) w
        UNION ALL
        SELECT h.oid, 'privilege', format('%s to %s', h.privilege_type,
                                          CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s ON %s FROM %s', h.privilege_type, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(h.grantee::regrole::text) END)
        FROM (SELECT * FROM acl_have EXCEPT SELECT * FROM acl_want) h
    ),
    col_want AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par JOIN pg_catalog.pg_attribute a ON a.attrelid = par.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> par.relowner
    ),
    col_have AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p JOIN pg_catalog.pg_attribute a ON a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> p.relowner
    ),
    col AS (
        SELECT w.oid, 'column privilege' AS property, NULL::text AS current_value,
               format('%s (%s) to %s', w.privilege_type, w.attname,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s (%I) ON %s TO %s%s', w.privilege_type, w.attname, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(w.grantee::regrole::text) END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM col_want EXCEPT SELECT * FROM col_have) w
        UNION ALL
        SELECT h.oid, 'column privilege', format('%s (%s) to %s', h.privilege_type, h.attname,
                                                 CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s (%I) ON %s FROM %s', h.privilege_type, h.attname, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(h.grantee::regrole::text) END)
        FROM (SELECT * FROM col_have EXCEPT SELECT * FROM col_want) h
    ),
    -- Row-level security: enabled and forced as on the parent, with the parent's policies.
    rls AS (
        SELECT p.oid, 'row security', CASE WHEN p.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               CASE WHEN par.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END)
        FROM parts p, par WHERE p.relrowsecurity <> par.relrowsecurity
        UNION ALL
        SELECT p.oid, 'forced row security', p.relforcerowsecurity::text, par.relforcerowsecurity::text,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END)
        FROM parts p, par WHERE p.relforcerowsecurity <> par.relforcerowsecurity
    ),
    pol_def AS (
        SELECT pl.polrelid, pl.polname,
               format('AS %s FOR %s TO %s%s%s', CASE WHEN pl.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE pl.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r::regrole::text) END, ', ' ORDER BY r)
                       FROM unnest(pl.polroles) r),
                      ' USING (' || pg_catalog.pg_get_expr(pl.polqual, pl.polrelid) || ')',
                      ' WITH CHECK (' || pg_catalog.pg_get_expr(pl.polwithcheck, pl.polrelid) || ')') AS def
        FROM pg_catalog.pg_policy pl
        WHERE pl.polrelid = tbl OR pl.polrelid IN (SELECT p.oid FROM parts p)
    ),
    pol AS (
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, w.polname || ' ' || w.def,
               CASE WHEN h.polname IS NOT NULL THEN format('DROP POLICY %I ON %s; ', h.polname, p.rel) ELSE '' END
               || format('CREATE POLICY %I ON %s %s', w.polname, p.rel, w.def)
        FROM parts p JOIN pol_def w ON w.polrelid = tbl
        LEFT JOIN pol_def h ON h.polrelid = p.oid AND h.polname = w.polname
        WHERE h.def IS DISTINCT FROM w.def
        UNION ALL
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, NULL, format('DROP POLICY %I ON %s', h.polname, p.rel)
        FROM parts p JOIN pol_def h ON h.polrelid = p.oid
        WHERE NOT EXISTS (SELECT 1 FROM pol_def w WHERE w.polrelid = tbl AND w.polname = h.polname)
    ),
    -- Replica identity; the parent's identity index maps to the partition's index attached to it.
    ident AS (
        SELECT p.oid, 'replica identity', p.relreplident::text || coalesce(' ' || pi.indexrelid::regclass::text, ''),
               par.relreplident::text || coalesce(' ' || ci.inhrelid::regclass::text, ''),
               format('ALTER TABLE %s REPLICA IDENTITY %s', p.rel,
                      CASE par.relreplident WHEN 'd' THEN 'DEFAULT' WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL'
                           ELSE 'USING INDEX ' || pg_catalog.quote_ident((SELECT x.relname FROM pg_catalog.pg_class x WHERE x.oid = ci.inhrelid)) END)
        FROM parts p CROSS JOIN par
        LEFT JOIN pg_catalog.pg_index pi ON pi.indrelid = p.oid AND pi.indisreplident
        LEFT JOIN pg_catalog.pg_index xi ON xi.indrelid = par.oid AND xi.indisreplident
        LEFT JOIN LATERAL (SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index y ON y.indexrelid = h.inhrelid
                           WHERE h.inhparent = xi.indexrelid AND y.indrelid = p.oid) ci ON true
        WHERE (p.relreplident <> par.relreplident OR pi.indexrelid IS DISTINCT FROM ci.inhrelid)
          AND (par.relreplident <> 'i' OR ci.inhrelid IS NOT NULL)
    ),
    comment AS (
        SELECT p.oid, 'comment', pg_catalog.obj_description(p.oid, 'pg_class'), pg_catalog.obj_description(tbl, 'pg_class'),
               format('COMMENT ON TABLE %s IS %s', p.rel, coalesce(pg_catalog.quote_literal(pg_catalog.obj_description(tbl, 'pg_class')), 'NULL'))
        FROM parts p
        WHERE pg_catalog.obj_description(p.oid, 'pg_class') IS DISTINCT FROM pg_catalog.obj_description(tbl, 'pg_class')
    ),
    options AS (
        SELECT p.oid, 'storage options', array_to_string(coalesce(p.reloptions, '{}'), ', '),
               array_to_string(timepart._partition_reloptions(cfg), ', '),
               concat_ws('; ',
                   CASE WHEN p.reloptions IS NOT NULL THEN format('ALTER TABLE %s RESET (%s)', p.rel,
                       (SELECT string_agg(CASE WHEN split_part(o, '=', 1) LIKE 'toast.%' THEN 'toast.' || pg_catalog.quote_ident(substr(split_part(o, '=', 1), 7))
                                               ELSE pg_catalog.quote_ident(split_part(o, '=', 1)) END, ', ') FROM unnest(p.reloptions) o)) END,
                   CASE WHEN timepart._table_options(cfg) <> '{}' THEN format('ALTER TABLE %s SET (%s)', p.rel,
                       timepart._reloptions_sql(timepart._table_options(cfg))) END)
        FROM parts p, cfg
        WHERE ARRAY(SELECT o FROM unnest(coalesce(p.reloptions, '{}')) o ORDER BY o) <> timepart._partition_reloptions(cfg)
    ),
    -- Given at birth only: changing them later rewrites the partition.
    rewrite AS (
        SELECT p.oid, 'tablespace', coalesce(NULLIF(p.reltablespace, 0)::text, 'default'), coalesce(NULLIF(par.reltablespace, 0)::text, 'default'),
               NULL::text
        FROM parts p, par WHERE p.reltablespace <> par.reltablespace
        UNION ALL
        SELECT p.oid, 'unlogged', (p.relpersistence = 'u')::text, cfg.partition_unlogged::text, NULL
        FROM parts p, cfg WHERE (p.relpersistence = 'u') <> cfg.partition_unlogged
    )
    SELECT * FROM acl UNION ALL SELECT * FROM col UNION ALL SELECT * FROM rls UNION ALL SELECT * FROM pol
    UNION ALL SELECT * FROM ident UNION ALL SELECT * FROM comment UNION ALL SELECT * FROM options UNION ALL SELECT * FROM rewrite
    ORDER BY 1, 2, 5;
END $$;

-- Makes a partition just made look like its parent: every difference _partition_drift
-- finds that a statement fixes, in one call of the owner's executor. Returns the
-- properties fixed. A parent with nothing to hand down (no grants, row security,
-- policies, comment or replica identity of its own) costs one catalog probe: a new
-- partition has none of those either, and its options came with CREATE TABLE.
CREATE OR REPLACE FUNCTION timepart._match_parent(tbl regclass, part regclass) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    fixes text[];
    statements text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl
                   AND (c.relacl IS NOT NULL OR c.relrowsecurity OR c.relforcerowsecurity OR c.relreplident <> 'd'))
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND a.attacl IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl)
       AND pg_catalog.obj_description(tbl, 'pg_class') IS NULL THEN
        RETURN '{}'::text[];
    END IF;
    SELECT array_agg(DISTINCT d.property ORDER BY d.property), string_agg(d.statement, '; ' ORDER BY d.property, d.statement)
    INTO fixes, statements
    FROM timepart._partition_drift(tbl, part) d WHERE d.statement IS NOT NULL;
    IF statements IS NOT NULL THEN
        PERFORM timepart._as_owner(tbl, statements);
    END IF;
    RETURN coalesce(fixes, '{}'::text[]);
END $$;

CREATE OR REPLACE FUNCTION timepart.sync_partitions(parent regclass, dry_run boolean DEFAULT false)
RETURNS TABLE (partition_name text, property text, current_value text, wanted text, statement text, applied boolean, error text)
LANGUAGE plpgsql AS $$
/* Brings existing partitions in line with their parent after it changed: a new GRANT or
   REVOKE, row security and its policies, replica identity, the comment, the configured
   partition_options. dry_run lists the differences and changes nothing. Each partition is
   changed in one step within the table's lock budget, and logged. Tablespace and
   UNLOGGED are listed with no statement: changing them rewrites the partition. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    cfg timepart.config;
    p record;
    err text;
    fixed integer := 0;
    failed integer := 0;
BEGIN
    IF sync_partitions.parent IS NULL OR sync_partitions.dry_run IS NULL THEN
        RAISE EXCEPTION 'parent and dry_run must not be NULL' USING ERRCODE = '22004',
            DETAIL = format('Got %s and %s.', coalesce(sync_partitions.parent::text, 'NULL'), coalesce(sync_partitions.dry_run::text, 'NULL')),
            HINT = 'E.g. SELECT * FROM timepart.sync_partitions(''public.email_events'', dry_run => true);';
    END IF;
    cfg := timepart._config(sync_partitions.parent);
    PERFORM timepart._check_may_act(timepart._caller(), cfg.parent, 'sync its partitions');
    FOR p IN SELECT d.partition_oid, jsonb_agg(to_jsonb(d) ORDER BY d.property, d.statement) AS rows,
                    array_agg(DISTINCT d.property) FILTER (WHERE d.statement IS NOT NULL) AS properties,
                    string_agg(d.statement, '; ' ORDER BY d.property, d.statement) AS statements
             FROM timepart._partition_drift(cfg.parent) d GROUP BY d.partition_oid ORDER BY d.partition_oid::regclass::text LOOP
        err := NULL;
        IF NOT sync_partitions.dry_run AND p.statements IS NOT NULL THEN
            step_started := pg_catalog.clock_timestamp();
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                PERFORM timepart._as_owner(cfg.parent, p.statements);
                fixed := fixed + 1;
            EXCEPTION WHEN OTHERS THEN
                err := SQLERRM;
                failed := failed + 1;
            END;
            PERFORM timepart._log('sync_partition', cfg.parent, (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid), err IS NULL,
                                  jsonb_build_object('properties', p.properties, 'statements', p.statements), err, step_started);
        END IF;
        RETURN QUERY
        SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid), r.property, r.current_value, r.wanted, r.statement,
               NOT sync_partitions.dry_run AND r.statement IS NOT NULL AND err IS NULL, err
        FROM jsonb_to_recordset(p.rows) AS r(property text, current_value text, wanted text, statement text);
    END LOOP;
    IF NOT sync_partitions.dry_run THEN
        PERFORM timepart._log('sync_partitions', cfg.parent, NULL, failed = 0,
                              jsonb_build_object('partitions_fixed', fixed, 'partitions_failed', failed), NULL, started);
    END IF;
END $$;

COMMENT ON FUNCTION timepart.sync_partitions(regclass, boolean) IS
    'Lists (dry_run) or applies the differences between existing partitions and their parent: privileges, row security, policies, replica identity, comment, partition_options';

-- Builds one partition inside the caller's transaction: CREATE TABLE (LIKE parent),
-- rows for its range moved out of the default partition, templated indexes, ATTACH.
-- A bound of NULL means the default partition. Returns what it did.
-- Traffic first: the bulk of a move runs before any lock that blocks inserts into the
-- table (it holds the default partition only); the short lock that ATTACH needs comes
-- after, when nothing is left to move.
CREATE OR REPLACE FUNCTION timepart._build_partition(cfg timepart.config, part_name name,
                                                     range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    default_part regclass;
    part regclass;
    moved bigint := 0;
    indexes text[];
BEGIN
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;

    part := timepart._new_partition_table(cfg.parent, part_name);

    IF range_start IS NOT NULL AND default_part IS NOT NULL THEN
        -- EXCLUSIVE on the default partition alone: reads go on, and so do inserts into
        -- every other partition; what waits is only traffic for the default partition
        -- itself, which resumes after the move and finds the rows where they now are.
        EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', default_part);
        moved := timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while the last of its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        moved := moved + timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
    END IF;

    indexes := timepart._index_partition(cfg.parent, part);
    IF range_start IS NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', cfg.parent, part));
    ELSE
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)',
            cfg.parent, part, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
            timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)));
    END IF;
    -- ATTACH matched the indexes built above to the parent's templated indexes; a replica
    -- identity index maps to the partition's index now.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cfg.parent AND c.relreplident = 'i') THEN
        PERFORM timepart._match_parent(cfg.parent, part);
    END IF;
    RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved);
END $$;

-- Moves the rows of [range_start, range_end) waiting in the default partition into the
-- new (not yet attached) partition; returns how many. Refused, with nothing moved, when
-- moving would fire something of the user's: foreign-key actions on referencing tables,
-- or triggers on the default partition (a move is a DELETE and an INSERT).
CREATE OR REPLACE FUNCTION timepart._move_waiting_rows(cfg timepart.config, default_part regclass, part regclass,
                                                       range_start timestamptz, range_end timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    waiting boolean;
BEGIN
    -- Usually nothing waits there: a cheap probe spares the move statement.
    waiting := timepart._as_owner(cfg.parent, format(
        'SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s))',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)), true)::text::boolean;
    IF NOT waiting THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D') THEN
        -- The user's triggers there (cloned from the parent's, row or statement) would
        -- fire as if rows were deleted.
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and it has triggers', range_start, range_end,
            cfg.parent USING ERRCODE = '55000',
            DETAIL = format('Moving them is a DELETE and an INSERT: it would fire %s.',
                (SELECT string_agg(t.tgname::text, ', ' ORDER BY t.tgname) FROM pg_catalog.pg_trigger t
                 WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D')),
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = cfg.parent) THEN
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and foreign keys reference the table',
            range_start, range_end, cfg.parent USING ERRCODE = '55000',
            DETAIL = 'Moving them would fire the foreign keys'' ON DELETE actions on the referencing tables.',
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    cols := timepart._column_list(cfg.parent);
    -- User code (constraints, index expressions) runs with the owner's rights only.
    RETURN (timepart._as_owner(cfg.parent, format(
        'WITH moved AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s RETURNING *) '
        'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
        part, cols, cols))->>'rows')::bigint;
END $$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
-- Identity columns are the parent's alone: since 17 the attached partition shares them;
-- before, the partition's column takes its values from the parent's sequence, so a row
-- inserted straight into a partition never repeats an id.
CREATE OR REPLACE FUNCTION timepart._new_partition_table(parent regclass, part_name name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = parent);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    cfg timepart.config := timepart._config(parent);
    space name := (SELECT t.spcname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                   WHERE c.oid = parent);
    -- Born with what cannot change later without a rewrite: logged-ness, the parent's
    -- tablespace, the configured storage options.
    ddl text := format('CREATE %sTABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY)%s%s',
                       CASE WHEN cfg.partition_unlogged THEN 'UNLOGGED ' ELSE '' END, part_schema, part_name, parent,
                       CASE WHEN cfg.partition_options <> '{}'::jsonb THEN format(' WITH (%s)', timepart._reloptions_sql(cfg.partition_options)) ELSE '' END,
                       CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END);
    part regclass;
    col record;
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), parent, 'create its partitions');
    IF pg_catalog.has_schema_privilege(owner_oid, part_schema, 'CREATE') THEN
        PERFORM timepart._as_owner(parent, ddl);
    ELSE
        EXECUTE ddl;
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', part_schema, part_name, owner_oid::regrole::text);
    END IF;
    part := format('%I.%I', part_schema, part_name)::regclass;
    IF NOT timepart._partitions_share_identity() THEN
        FOR col IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(parent::text, a.attname) AS seq
                   FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = parent AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' LOOP
            PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass)',
                                                      part, col.attname, col.seq));
        END LOOP;
    END IF;
    -- The parent's privileges, row security and policies, comment and replica identity,
    -- all before the partition is attached and visible (55_look.sql).
    PERFORM timepart._match_parent(parent, part);
    RETURN part;
END $$;

-- ==== src/62_runner.sql
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
-- Traffic first for retirement: a DETACH or DROP holds the parent's ACCESS EXCLUSIVE lock
-- to the end of the transaction, so once retiring has held it for the table's lock budget
-- no further partition is retired in this call; they are counted in "left" for the next
-- call (cleanup_each commits and calls again).
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
BEGIN
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        step_started := pg_catalog.clock_timestamp();
        IF step->>'action' = 'retire' AND step_started - locked_since > cfg.lock_timeout THEN
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
        PERFORM timepart._log(log_operation, cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            IF step->>'action' = 'retire' THEN
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

-- ==== src/65_retention.sql
-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention, and never
-- later than the start of the current period, whatever the retention says.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT least(((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - retention) AT TIME ZONE cfg.time_zone,
                 timepart._period_of(cfg, as_of))
$$;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE AS $$
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, retention, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
      -- Foreign-table partitions are someone else's storage: retention leaves them (said in cleanup).
      AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid) <> 'f'
    ORDER BY p.range_start
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
    IF cfg.retention_action = 'archive' THEN
        PERFORM timepart._archive_schema(cfg.parent);
    END IF;
    PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s DETACH PARTITION %s', cfg.parent, part));
    PERFORM timepart._release_identity(cfg.parent, part);
    IF cfg.retention_action = 'drop' THEN
        PERFORM timepart._as_owner(cfg.parent, format('DROP TABLE %s', part));
    ELSIF cfg.retention_action = 'archive' THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s SET SCHEMA %I', part, cfg.archive_schema));
    END IF;
    RETURN jsonb_build_object('action', cfg.retention_action, 'size_bytes', bytes,
                              'archive_schema', CASE WHEN cfg.retention_action = 'archive' THEN cfg.archive_schema END);
END $$;

-- A detached partition keeps no tie to its old parent's identity sequences: before 17,
-- its columns took their values from them (see _new_partition_table); those defaults
-- go, so the parent can later be dropped without the detached table. Since 17
-- PostgreSQL's DETACH itself leaves the detached table without the shared identity.
CREATE OR REPLACE FUNCTION timepart._release_identity(parent regclass, part regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    col name;
BEGIN
    FOR col IN SELECT a.attname FROM pg_catalog.pg_attrdef d
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
               JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
                                             AND dep.refclassid = 'pg_catalog.pg_class'::regclass
               JOIN pg_catalog.pg_attribute pa ON pa.attrelid = parent AND pa.attidentity <> ''
                                              AND dep.refobjid = pg_catalog.pg_get_serial_sequence(parent::text, pa.attname)::regclass
               WHERE d.adrelid = part LOOP
        PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', part, col));
    END LOOP;
END $$;

-- One table's cleanup, under its advisory lock (taken by _run). Never raises:
-- failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, retention interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    boundary timestamptz := timepart._retention_boundary(cfg, retention, as_of);
    plan jsonb;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
    left_over integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = cfg.parent AND c.relkind = 'f') THEN
        RAISE NOTICE 'timepart: cleanup of % skips its foreign-table partitions', cfg.parent;
    END IF;
    -- Row counts first (exact: the snapshot's when still valid), before any lock is taken.
    SELECT coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'action', 'retire',
                                  'range_start', r.range_start, 'range_end', r.range_end, 'boundary', boundary,
                                  'record_count', timepart._record_count(r.partition_oid)) ORDER BY r.range_start)
                        FILTER (WHERE r.verdict = 'retire'), '[]'::jsonb),
           coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'reason',
                                  format('its range %s to %s reaches past the retention boundary %s', r.range_start, r.range_end, boundary))
                              ORDER BY r.range_start) FILTER (WHERE r.verdict = 'straddles'), '[]'::jsonb)
    INTO plan, kept FROM timepart._plan_retention(cfg, retention, as_of) r;
    IF dry_run THEN
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p;
    ELSE
        res := timepart._run_steps(cfg, 'cleanup_partition', plan, 'old partitions');
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p WHERE res->'done' ? (p->>'partition');
        errors := res->'errors';
        left_over := (res->>'left')::integer;
    END IF;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_old := timepart._as_owner(cfg.parent, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM %s WHERE %I OPERATOR(pg_catalog.<) %s', default_part, cfg.key_column,
                timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)), true)::text::bigint;
        EXCEPTION WHEN lock_not_available THEN
            errors := errors || to_jsonb(format('%s: could not count its rows past the boundary within the lock budget', default_part));
        END;
    END IF;
    res := jsonb_build_object('table', cfg.parent::text, 'boundary', boundary, 'action', cfg.retention_action,
                              'dry_run', dry_run, 'removed', removed, 'kept', kept, 'errors', errors,
                              'default_rows_past_retention', default_old, 'left', left_over);
    PERFORM timepart._log(CASE WHEN dry_run THEN 'cleanup_dry_run' ELSE 'cleanup' END, cfg.parent, NULL,
                          jsonb_array_length(errors) = 0, res, NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(errors)), '; '), ''), started);
    IF jsonb_array_length(kept) > 0 OR default_old > 0 THEN
        RAISE WARNING 'timepart: % keeps data past its retention boundary %', cfg.parent, boundary
            USING DETAIL = format('%s partition(s) reach past the boundary; %s row(s) past it wait in the default partition.',
                                  jsonb_array_length(kept), default_old),
                  HINT = 'Run maintain to move default rows into partitions; split or drop straddling partitions yourself.';
    END IF;
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
BEGIN
    PERFORM timepart._check_retention(retention);
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    RETURN timepart._run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of);
END $$;

-- ==== src/70_maintain.sql
-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest row
-- waiting in the default partition) to `premake` periods past the current one, never
-- before the retention boundary nor more than premake + 1000 periods back. A period a
-- hand-made partition covers in part yields the pieces it leaves uncovered (whole =
-- false), so no hole stays next to it. Refuses a moment far past the newest partition.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, premake integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text, whole boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    cap integer := premake + 1000;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, partition_interval, premake + 1, time_zone);
    -- Rows or partitions further back than this are not filled in: reported, left alone.
    window_start timestamptz := timepart._period_add(cur, partition_interval, -cap, time_zone);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    newest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
    period_days numeric := pg_catalog.date_part('day', partition_interval)
                           + 31 * (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval));
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE time_zone) - cfg.retention) AT TIME ZONE time_zone);
    END IF;
    floor_start := greatest(floor_start, window_start);
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_start)),
           max(p.range_end) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_end)),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, newest, default_part
    FROM timepart._partitions(tbl, time_zone) p;
    -- A moment far past the newest partition (a typo, a clock gone wrong) must not make
    -- thousands of tables: refuse before generating anything. What a run would create
    -- is counted, not the table's history.
    IF newest IS NOT NULL AND extract(epoch FROM horizon - newest) / 86400 / period_days > cap THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', cap, tbl USING ERRCODE = '22023',
            DETAIL = format('The newest partition ends %s; as_of %s asks for partitions up to %s in periods of %s.',
                            newest, as_of, horizon, partition_interval),
            HINT = 'Check as_of; create far-away periods with timepart.create_partition().';
    END IF;
    IF oldest IS NOT NULL THEN
        first_start := least(first_start, timepart._period_of(cfg, greatest(oldest, floor_start)));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        -- Only rows inside the window count: a stray ancient or far-future row stays
        -- where it is (the rows_in_default_partition alert reports it).
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
    first_start := greatest(first_start, timepart._period_of(cfg, floor_start));

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE time_zone AS s, (g + partition_interval) AT TIME ZONE time_zone AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE time_zone, (horizon AT TIME ZONE time_zone) - partition_interval, partition_interval) g
    ), existing AS (
        SELECT x.s, x.e FROM unnest(starts, ends) AS x(s, e)
    ), missing AS (
        SELECT pr.s, pr.e, EXISTS (SELECT 1 FROM existing x WHERE x.s < pr.e AND x.e > pr.s) AS partial
        FROM periods pr WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s = pr.s AND x.e = pr.e)
    ), cuts AS (
        -- The parts of a period that partitions cover (partitions never overlap each other).
        SELECT m.s AS ps, m.e AS pe, greatest(x.s, m.s) AS os, least(x.e, m.e) AS oe
        FROM missing m JOIN existing x ON x.s < m.e AND x.e > m.s WHERE m.partial
    ), pieces AS (
        SELECT c.ps, coalesce(lag(c.oe) OVER w, c.ps) AS s, c.os AS e FROM cuts c WINDOW w AS (PARTITION BY c.ps ORDER BY c.os)
        UNION ALL
        SELECT c.ps, max(c.oe), c.pe FROM cuts c GROUP BY c.ps, c.pe
    )
    SELECT m.s, m.e, CASE WHEN m.s > cur THEN 'premake' WHEN m.s = cur THEN 'current' ELSE 'gap' END, true
    FROM missing m WHERE NOT m.partial
    UNION ALL
    SELECT p.s, p.e, 'hole', false FROM pieces p
    -- A hole lies between partitions, or in the current and later periods, or where rows
    -- wait in the default partition: not before the oldest partition for its own sake.
    WHERE p.s < p.e AND (p.s >= oldest OR p.ps >= cur OR (p.s <= default_min AND p.e > default_min))
    ORDER BY 1;
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
                   'partition', CASE WHEN p.whole THEN timepart._partition_name(cfg.parent, p.range_start, cfg.partition_interval, cfg.time_zone)
                                     ELSE timepart._piece_name(cfg.parent, p.range_start, p.range_end, cfg.time_zone) END,
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
    PERFORM timepart._check_moment(as_of);
    RETURN timepart._run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
END $$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that may not SELECT the table, unless monitor_sees_values. exact = true: the snapshot's
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
    IF EXISTS (SELECT 1 FROM timepart._managed(partition_stats.parent) c JOIN pg_catalog.pg_inherits i ON i.inhparent = c.parent
               JOIN pg_catalog.pg_class r ON r.oid = i.inhrelid WHERE r.relkind = 'f') THEN
        RAISE NOTICE 'timepart: partition_stats skips foreign-table partitions';
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT c.*, v.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM timepart._managed(partition_stats.parent) c
        -- Exact key values are data: shown to roles that may read the table, or when its
        -- owner allows. Decided once per table.
        CROSS JOIN LATERAL (SELECT c.monitor_sees_values OR timepart._may_act(timepart._caller(), c.parent)
                                   OR pg_catalog.has_table_privilege(timepart._caller(), c.parent, 'SELECT') AS reveal) v
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE (partition_stats.parent IS NULL OR c.parent = partition_stats.parent)
          -- Foreign-table partitions: counting them would read remote data (said below).
          AND (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = p.partition_oid) <> 'f'
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
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(j.ends[1], j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
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
    PERFORM timepart._check_moment(as_of);
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart._managed() c
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x
             WHERE (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = x.partition_oid) <> 'f' LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            BEGIN
                -- A partition someone holds locked is skipped (its last figures stay), not waited for.
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
                FROM timepart._exact_figures(p.partition_oid, p.key_column) f;
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

-- pg_dump keeps the alert state (and its ids).
SELECT timepart._config_dump('timepart.alerts');

SELECT timepart._config_dump('timepart.alerts_id_seq');

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too). stats: the table's partition_stats rows as JSON when the
-- caller has them already.
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz, stats jsonb DEFAULT NULL)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    time_zone text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE time_zone);
    old_before timestamptz := ((as_of AT TIME ZONE time_zone) - cfg.alert_old_age) AT TIME ZONE time_zone;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_rows := timepart._as_owner(tbl, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part), true)::text::bigint;
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
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE time_zone
                                              AND s.range_start < month_start AT TIME ZONE time_zone) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE time_zone
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE time_zone) AS month_before
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
    SELECT 'maintenance_failing', 'warning', tbl::text, '',
           format('the last maintain run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the failed step and fix its cause (a table in the way of a partition name: '
           'a partition detached by hand?); the alert resolves with the next successful run', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'maintain' ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    SELECT 'partition_drift', 'warning', tbl::text, d.partition_name,
           format('%s differs from %s: %s', d.partition_name, tbl, d.properties),
           format('See SELECT * FROM timepart.sync_partitions(%L, dry_run => true); run it without dry_run to apply', tbl::text),
           d.n, 0
    FROM (SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = x.partition_oid) AS partition_name,
                 string_agg(DISTINCT x.property, ', ') AS properties,
                 count(*)::numeric AS n
          FROM timepart._partition_drift(tbl) x GROUP BY x.partition_oid) d
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
END $$;

-- A managed table dropped by hand leaves its configuration behind: it is forgotten (with
-- its index templates), its open alerts resolved, and that is logged. check_alerts, the
-- daily health job, does it. Returns how many were forgotten.
CREATE OR REPLACE FUNCTION timepart._forget_orphans() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
    n integer := 0;
BEGIN
    FOR gone IN DELETE FROM timepart.config c WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.parent)
                RETURNING c.parent::oid AS table_oid, c.key_column, c.partition_interval LOOP
        UPDATE timepart.alerts a SET resolved_at = pg_catalog.clock_timestamp()
        WHERE a.resolved_at IS NULL AND a.parent_table = gone.table_oid::text;
        PERFORM timepart._log('forget', NULL, NULL, true,
            jsonb_build_object('table_oid', gone.table_oid, 'key_column', gone.key_column, 'partition_interval', gone.partition_interval,
                               'reason', 'the table was dropped; its configuration and index templates are forgotten'), NULL,
            pg_catalog.clock_timestamp());
        n := n + 1;
    END LOOP;
    RETURN n;
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
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl AND c.relkind <> 'f'
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname
$$;

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
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._forget_orphans();
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
        -- Runs as timepart's owner: the caller's rights are checked here.
        PERFORM timepart._check_may_act(timepart._caller(), check_alerts.parent, 'check its alerts');
    END IF;
    -- Only the tables the caller may maintain: nobody opens or resolves another owner's alerts.
    FOR cfg IN SELECT c.* FROM timepart._managed(check_alerts.parent) c
               WHERE timepart._may_act(timepart._caller(), c.parent) LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL AND NOT EXISTS (SELECT 1 FROM timepart.jobs j JOIN pg_catalog.pg_roles r ON r.rolname = j.scheduled_by
                                                   WHERE NOT pg_catalog.pg_has_role(timepart._caller(), r.oid, 'USAGE')) THEN
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
    PERFORM timepart._check_moment(as_of);
    IF health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', health.parent;
    END IF;
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart._managed(health.parent) c;

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

-- ==== src/82_metrics.sql
-- Watching timepart where DBAs already look: samples shaped for Prometheus (name, labels,
-- value) for postgres_exporter, sql_exporter or any collector (monitoring/), the growth
-- history behind the HTML report, and the bounded maintenance log.

CREATE OR REPLACE FUNCTION timepart.metrics(as_of timestamptz DEFAULT now())
RETURNS TABLE (name text, labels jsonb, value double precision)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per Prometheus sample: partition rows and sizes (labelled table, partition,
   period, exact), future partitions, rows waiting in the default partition, a health
   status per table (0 healthy, 1 warning, 2 critical, 3 error), open alerts by table, type
   and severity, the last successful maintenance and the count of failed ones, and each
   scheduled job's last success. Reads what partition_stats reads; writes nothing. */
DECLARE
    jobs jsonb := '[]'::jsonb;
BEGIN
    PERFORM timepart._check_moment(as_of);
    BEGIN
        SELECT coalesce(jsonb_agg(to_jsonb(j)), '[]'::jsonb) INTO jobs FROM timepart.job_status() j;
    EXCEPTION WHEN OTHERS THEN
        jobs := '[]'::jsonb;  -- pg_cron out of reach: no job samples (the job alerts say why)
    END;
    RETURN QUERY
    WITH s AS MATERIALIZED (SELECT * FROM timepart.partition_stats()),
    log AS (
        SELECT l.parent_table, max(l.created_at) FILTER (WHERE l.success) AS last_ok,
               count(*) FILTER (WHERE NOT l.success) AS failures,
               (array_agg(l.success ORDER BY l.id DESC))[1] AS last_run_ok
        FROM timepart.maintenance_log l WHERE l.operation_type = 'maintain' GROUP BY l.parent_table
    ),
    tables AS (
        SELECT c.parent::text AS tbl, c.alert_min_future,
               count(s.partition_name) FILTER (WHERE NOT s.is_default AND s.range_start > as_of) AS future,
               coalesce(sum(s.record_count) FILTER (WHERE s.is_default), 0) AS default_rows,
               coalesce(bool_or(NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of), false) AS has_current
        FROM timepart._managed() c LEFT JOIN s ON s.parent_table = c.parent::text
        GROUP BY c.parent, c.alert_min_future
    )
    SELECT 'timepart_partition_rows', jsonb_build_object('table', s.parent_table, 'partition', s.partition_name,
               'period', s.period, 'exact', s.exact::text), s.record_count::float8
    FROM s
    UNION ALL
    SELECT 'timepart_partition_size_bytes', jsonb_build_object('table', s.parent_table, 'partition', s.partition_name,
               'period', s.period, 'exact', s.exact::text), round(s.size_mb * 1048576)::float8
    FROM s
    UNION ALL
    SELECT 'timepart_future_partitions', jsonb_build_object('table', t.tbl), t.future::float8 FROM tables t
    UNION ALL
    SELECT 'timepart_default_partition_rows', jsonb_build_object('table', t.tbl), t.default_rows::float8 FROM tables t
    UNION ALL
    SELECT 'timepart_health_status', jsonb_build_object('table', t.tbl),
           CASE WHEN NOT t.has_current THEN 2
                WHEN t.future < t.alert_min_future OR t.default_rows > 0 OR NOT coalesce(g.last_run_ok, true) THEN 1
                ELSE 0 END::float8
    FROM tables t LEFT JOIN log g ON g.parent_table = t.tbl
    UNION ALL
    SELECT 'timepart_open_alerts', jsonb_build_object('table', a.parent_table, 'type', a.alert_type, 'severity', a.severity),
           count(*)::float8
    FROM timepart.alerts a WHERE a.resolved_at IS NULL GROUP BY a.parent_table, a.alert_type, a.severity
    UNION ALL
    SELECT 'timepart_last_maintenance_success_timestamp_seconds', jsonb_build_object('table', t.tbl),
           extract(epoch FROM g.last_ok)::float8
    FROM tables t JOIN log g ON g.parent_table = t.tbl WHERE g.last_ok IS NOT NULL
    UNION ALL
    SELECT 'timepart_maintenance_failures_total', jsonb_build_object('table', t.tbl), coalesce(g.failures, 0)::float8
    FROM tables t LEFT JOIN log g ON g.parent_table = t.tbl
    UNION ALL
    SELECT 'timepart_job_last_success_timestamp_seconds', jsonb_build_object('job', j->>'jobname'),
           extract(epoch FROM (j->>'last_success')::timestamptz)::float8
    FROM jsonb_array_elements(jobs) j WHERE j->>'last_success' IS NOT NULL;
END $$;

COMMENT ON FUNCTION timepart.metrics(timestamptz) IS
    'Prometheus-shaped samples (name, labels, value): partition rows and sizes, future partitions, default rows, health, alerts, maintenance, jobs';

CREATE OR REPLACE VIEW timepart.metrics AS SELECT m.name, m.labels, m.value FROM timepart.metrics() m;

COMMENT ON VIEW timepart.metrics IS 'The Prometheus samples of timepart.metrics(now()): SELECT name, labels, value FROM timepart.metrics';

CREATE OR REPLACE FUNCTION timepart.growth(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, snapshot_date date, partitions integer, record_count bigint, size_bytes bigint)
LANGUAGE plpgsql STABLE AS $$
/* The statistics history per table and day (what snapshot_stats recorded): partitions,
   rows and bytes in all. Counts only, no key values, so monitors may read it. */
BEGIN
    IF growth.parent IS NOT NULL THEN
        PERFORM timepart._config(growth.parent);
    END IF;
    RETURN QUERY
    SELECT h.parent_table::text, h.snapshot_date, count(*)::integer, sum(h.record_count)::bigint, sum(h.size_bytes)::bigint
    FROM timepart.stats_history h
    WHERE growth.parent IS NULL OR h.parent_table = growth.parent
    GROUP BY h.parent_table, h.snapshot_date
    ORDER BY 1, 2;
END $$;

COMMENT ON FUNCTION timepart.growth(regclass) IS 'Rows, bytes and partitions per table and snapshot day, from the statistics history';

-- How long the maintenance log keeps its rows: the setting timepart.log_retention (e.g.
-- ALTER DATABASE app SET timepart.log_retention = '30 days'), 90 days when unset.
CREATE OR REPLACE FUNCTION timepart._log_retention() RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
    setting text := NULLIF(pg_catalog.current_setting('timepart.log_retention', true), '');
    keep interval;
BEGIN
    IF setting IS NULL THEN
        RETURN interval '90 days';
    END IF;
    BEGIN
        keep := setting::interval;
    EXCEPTION WHEN OTHERS THEN
        keep := NULL;
    END;
    IF keep IS NULL OR keep < interval '1 day' THEN
        RAISE EXCEPTION 'timepart.log_retention must be an interval of at least 1 day' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', setting), HINT = 'E.g. ALTER DATABASE app SET timepart.log_retention = ''30 days''; or RESET it for 90 days.';
    END IF;
    RETURN keep;
END $$;

CREATE OR REPLACE FUNCTION timepart.purge_log(older_than interval DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
/* Deletes maintenance log rows older than older_than (default: the timepart.log_retention
   setting, 90 days when unset). The daily health job runs it. Returns the rows deleted;
   the purge itself is logged. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    keep interval := coalesce(purge_log.older_than, timepart._log_retention());
    n bigint;
BEGIN
    -- The log is the audit trail: only a superuser or timepart's owner chooses a shorter
    -- keep than the database's setting; everyone else purges by the setting.
    IF purge_log.older_than IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = timepart._caller()
             AND (r.rolsuper OR pg_catalog.pg_has_role(r.oid, (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'timepart'), 'USAGE'))) THEN
        RAISE EXCEPTION 'only a superuser or timepart''s owner may purge the log by its own interval' USING ERRCODE = '42501',
            DETAIL = format('%s asked for %s.', timepart._caller(), purge_log.older_than),
            HINT = 'Call timepart.purge_log() to keep the timepart.log_retention setting (90 days when unset).';
    END IF;
    IF keep < interval '1 day' OR as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR as_of > now() THEN
        RAISE EXCEPTION 'the log keeps at least 1 day, counted back from a moment not in the future' USING ERRCODE = '22023',
            DETAIL = format('Got older_than %s, as_of %s.', keep, coalesce(as_of::text, 'NULL')),
            HINT = 'E.g. SELECT timepart.purge_log(''30 days'');';
    END IF;
    DELETE FROM timepart.maintenance_log l WHERE l.created_at < as_of - keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM timepart._log('purge_log', NULL, NULL, true, jsonb_build_object('deleted', n, 'older_than', keep), NULL, started);
    RETURN n;
END $$;

COMMENT ON FUNCTION timepart.purge_log(interval, timestamptz) IS
    'Deletes maintenance log rows older than the log retention (timepart.log_retention, default 90 days)';

-- The managed tables the current role may maintain (it owns them, is a member of their
-- owner, or is a superuser), in a stable order: what the job procedures work through.
-- PL/pgSQL so that it runs on a pinned search_path: the procedures call it from the caller's.
CREATE OR REPLACE FUNCTION timepart._job_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT c.parent FROM timepart._managed() c WHERE timepart._may_act(current_user, c.parent);
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
   (check_alerts, then purge_log), daily statistics snapshot, plus a daily trim of
   cron.job_run_details. Named timepart-<job>@<database>; running it again updates
   them in place. Works when pg_cron lives in another database (through dblink). */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    statements text;
    new_jobs timepart.jobs[];
BEGIN
    -- The jobs run as the caller, over every managed table: scheduling must not let a
    -- role reach tables it could not maintain itself.
    IF EXISTS (SELECT 1 FROM timepart._managed() c WHERE NOT timepart._may_act(current_user, c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            DETAIL = format('%s may not maintain: %s.', current_user,
                (SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text) FROM timepart._managed() c
                 WHERE NOT timepart._may_act(current_user, c.parent))),
            HINT = 'Schedule as a superuser, or as a role that is a member of every managed table''s owner.';
    END IF;
    IF cron_history_keep IS NULL OR cron_history_keep <= interval '0' THEN
        RAISE EXCEPTION 'cron_history_keep must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cron_history_keep::text, 'NULL')), HINT = 'Keep e.g. ''30 days'' of job runs.';
    END IF;
    SELECT array_agg(ROW(j.job, format('timepart-%s@%s', j.job, current_database()), j.sched, j.cmd, j.db,
                         timepart._expected_every(j.sched), now(), current_user)::timepart.jobs)
    INTO new_jobs
    FROM (VALUES
        ('maintain', maintain_schedule, 'CALL timepart.maintain_each()', current_database()),
        ('cleanup', cleanup_schedule, 'CALL timepart.cleanup_each()', current_database()),
        -- The health job also keeps the maintenance log within its retention (timepart.purge_log).
        ('health', health_schedule, 'SELECT count(*) FROM timepart.check_alerts(); SELECT timepart.purge_log()', current_database()),
        ('stats', stats_schedule, 'SELECT timepart.snapshot_stats()', current_database()),
        ('cron-history', cron_history_schedule,
         -- Only timepart's jobs' history: other jobs' runs are not ours to delete.
         format('DELETE FROM cron.job_run_details d WHERE d.end_time < now() - %L::interval '
                'AND d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname LIKE ''timepart-%%'')', cron_history_keep),
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

-- The scheduled jobs: what schedule_jobs() set up, with pg_cron's view of each (active,
-- latest run, latest success). Raises when pg_cron cannot be reached.
CREATE OR REPLACE FUNCTION timepart.job_status()
RETURNS TABLE (job text, jobname text, schedule text, command text, database text, expected_every interval,
               in_pg_cron boolean, active boolean, last_status text, last_start timestamptz, last_end timestamptz,
               last_success timestamptz, last_message text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT j.job, j.jobname, j.schedule, j.command, j.run_in::text, j.expected_every, c.jobname IS NOT NULL, c.active,
           c.last_status, c.last_start, c.last_end, c.last_success, c.last_message
    FROM timepart.jobs j LEFT JOIN timepart._cron_jobs() c ON c.jobname = j.jobname
    ORDER BY j.job;
END $$;

COMMENT ON FUNCTION timepart.job_status() IS 'The pg_cron jobs schedule_jobs() set up, with pg_cron''s view of each: active, latest run, latest success';

-- The scheduled jobs for summary(). Never raises: an unreachable pg_cron is reported.
CREATE OR REPLACE FUNCTION timepart._jobs_summary() RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN coalesce((SELECT jsonb_agg(to_jsonb(s) ORDER BY s.job) FROM timepart.job_status() s), '[]'::jsonb);
EXCEPTION WHEN OTHERS THEN
    RETURN jsonb_build_array(jsonb_build_object('error', 'pg_cron cannot be reached: ' || SQLERRM));
END $$;

-- DROP EXTENSION timepart takes this database's jobs along: pg_cron would run them and
-- fail every time. An event trigger (made only when a superuser installs, as event
-- triggers need) unschedules them as the DROP starts; it goes with the extension.
CREATE OR REPLACE FUNCTION timepart._drop_jobs_with_extension() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- ddl_command_start names no object: the statement says which extension goes.
    IF pg_catalog.current_query() ~* '\mdrop\s+extension\M' AND pg_catalog.current_query() ~* '\mtimepart\M'
       AND EXISTS (SELECT 1 FROM timepart.jobs) THEN
        BEGIN
            PERFORM timepart.unschedule_jobs();
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'timepart: could not unschedule its pg_cron jobs: %', SQLERRM
                USING HINT = 'Remove them with SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE ''timepart-%''.';
        END;
    END IF;
END $$;

DO $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_drop_jobs') THEN
        CREATE EVENT TRIGGER timepart_drop_jobs ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
            EXECUTE FUNCTION timepart._drop_jobs_with_extension();
    END IF;
END $$;

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        -- Each call retires for at most the table's lock budget and says what is left:
        -- commit (traffic goes on) and call again, a bounded number of times.
        FOR i IN 1..10000 LOOP
            EXIT WHEN (timepart.cleanup(t) OPERATOR(pg_catalog.->>) 'left_partitions')::pg_catalog.int4 OPERATOR(pg_catalog.=) 0;
            COMMIT;
        END LOOP;
        COMMIT;
    END LOOP;
END $$;

COMMENT ON PROCEDURE timepart.cleanup_each() IS 'cleanup() every managed table in slices of its lock budget, committing after each (the cleanup job)';

-- pg_dump keeps the migration state (and its ids).
SELECT timepart._config_dump('timepart.migrations');

SELECT timepart._config_dump('timepart.migrations_id_seq');

-- The key column as a timestamptz expression (timestamp and date keys are local time in tz).
CREATE OR REPLACE FUNCTION timepart._migrate_key_expr(key_column name, key_type regtype, time_zone text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE key_type WHEN 'timestamptz'::regtype THEN pg_catalog.format('%I', key_column)
                         WHEN 'timestamp'::regtype THEN pg_catalog.format('(%I AT TIME ZONE %L)', key_column, time_zone)
                         ELSE pg_catalog.format('(%I::pg_catalog.timestamp AT TIME ZONE %L)', key_column, time_zone) END
$$;

-- The refusals that need no scan of the rows. Returns the key's type.
CREATE OR REPLACE FUNCTION timepart._migrate_check(source regclass, key_column name, partition_interval interval, time_zone text)
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
    PERFORM timepart._check_time_column(source, key_column, key_type);
    PERFORM timepart._check_interval(partition_interval);
    PERFORM timepart._check_time_zone(time_zone);
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

-- What the rows look like: how many (counted when small or never analyzed, else
-- pg_class.reltuples), whether the key has NULLs, its oldest and newest value.
CREATE OR REPLACE FUNCTION timepart._migrate_facts(source regclass, key_column name, key_type regtype, time_zone text,
                                                   OUT row_count bigint, OUT counted boolean, OUT has_nulls boolean,
                                                   OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    estimate real := (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = source);
    key_expr text := timepart._migrate_key_expr(key_column, key_type, time_zone);
    r jsonb;
BEGIN
    counted := estimate < 100000;
    -- Every read of the source runs with its owner's rights (05_owner.sql).
    IF counted THEN
        r := timepart._as_owner(source, format('SELECT pg_catalog.jsonb_build_array(count(*), count(*) FILTER (WHERE %I IS NULL) '
                                               'OPERATOR(pg_catalog.>) 0, min(%s), max(%s)) FROM ONLY %s',
                                               key_column, key_expr, key_expr, source), true);
        row_count := (r->>0)::bigint; has_nulls := (r->>1)::boolean; oldest := (r->>2)::timestamptz; newest := (r->>3)::timestamptz;
        RETURN;
    END IF;
    row_count := estimate::bigint;
    -- Separate queries, so an index on the key answers each without a scan.
    has_nulls := timepart._as_owner(source, format('SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NULL))',
                                                   source, key_column), true)::text::boolean;
    r := timepart._as_owner(source, format('SELECT pg_catalog.jsonb_build_array(min(%1$I)::pg_catalog.text, max(%1$I)::pg_catalog.text) FROM ONLY %2$s',
                                           key_column, source), true);
    IF key_type = 'timestamptz'::regtype THEN
        oldest := (r->>0)::timestamptz; newest := (r->>1)::timestamptz;
    ELSE
        oldest := (r->>0)::timestamp; newest := (r->>1)::timestamp;
    END IF;
    IF key_type <> 'timestamptz'::regtype THEN
        -- min/max came back in the session's time zone; they meant local time in tz.
        oldest := (oldest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE time_zone;
        newest := (newest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE time_zone;
    END IF;
END $$;

-- The refusal for a key column with NULLs: a range partition cannot hold them.
CREATE OR REPLACE FUNCTION timepart._migrate_check_nulls(source regclass, key_column name, has_nulls boolean) RETURNS void
LANGUAGE plpgsql STABLE AS $$
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
CREATE OR REPLACE FUNCTION timepart._migrate_periods(source regclass, key_column name, key_type regtype, partition_interval interval,
                                                     time_zone text, oldest timestamptz, newest timestamptz,
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
    SELECT array_agg(g AT TIME ZONE time_zone ORDER BY g) INTO starts
    FROM pg_catalog.generate_series(timepart._period_start(oldest, partition_interval, time_zone) AT TIME ZONE time_zone,
                                    timepart._period_start(newest, partition_interval, time_zone) AT TIME ZONE time_zone, partition_interval) g;
    IF counted THEN
        SELECT array_agg(x::bigint) INTO bucket_rows FROM jsonb_array_elements_text(timepart._as_owner(source, format(
            'SELECT pg_catalog.to_jsonb(pg_catalog.array_agg(coalesce(b.n, 0) ORDER BY i)) FROM pg_catalog.generate_series(1, %s) i '
            'LEFT JOIN (SELECT pg_catalog.width_bucket(%s, %L::pg_catalog.timestamptz[]) AS w, count(*) AS n FROM ONLY %s GROUP BY 1) b '
            'ON b.w OPERATOR(pg_catalog.=) i',
            cardinality(starts), timepart._migrate_key_expr(key_column, key_type, time_zone), starts::text, source), true)) x;
    ELSE
        SELECT s.histogram_bounds::text::text[] INTO hist FROM pg_catalog.pg_stats s
        JOIN pg_catalog.pg_class c ON c.relname = s.tablename JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
        WHERE c.oid = source AND s.attname = key_column;
        -- Each histogram bound stands for an equal share of the rows.
        SELECT array_agg(round(coalesce(b.n, 0)::numeric * row_count / greatest(cardinality(hist), 1))::bigint ORDER BY i)
        INTO bucket_rows
        FROM pg_catalog.generate_series(1, cardinality(starts)) i
        LEFT JOIN (SELECT pg_catalog.width_bucket(CASE key_type WHEN 'timestamptz'::regtype THEN h::timestamptz
                                                      WHEN 'timestamp'::regtype THEN h::timestamp AT TIME ZONE time_zone
                                                      ELSE h::date::timestamp AT TIME ZONE time_zone END, starts) AS w, count(*) AS n
                   FROM unnest(hist) h GROUP BY 1) b ON b.w = i;
    END IF;
    RETURN QUERY SELECT u.s, timepart._period_add(u.s, partition_interval, 1, time_zone), u.n
                 FROM unnest(starts, bucket_rows) AS u(s, n) ORDER BY u.s;
END $$;

-- Everything before the first batch, in the caller's transaction: the copy, its
-- registration and templates, the partitions the rows need (and maintain's current
-- and future ones), the change capture and the progress row. Retention is set only at
-- the swap, so cleanup cannot drop copied rows while the old table still holds them.
CREATE OR REPLACE FUNCTION timepart._migrate_prepare(source regclass, key_column name, key_type regtype, partition_interval interval,
                                                     premake integer, retention interval, time_zone text, batch_size integer,
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
    PERFORM timepart._register(target, partition_interval, premake, NULL, true, '100 milliseconds', time_zone);
    templates := timepart._migrate_templates(source, target);
    FOR p IN SELECT * FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone, oldest, newest, 0, false) LOOP
        PERFORM timepart.create_partition(target, p.range_start, p.range_end);
    END LOOP;
    PERFORM timepart.maintain(target, premake);
    -- The trigger's lock waits for writers in flight; every write after it is captured,
    -- every row before it lies below the size measured now.
    PERFORM timepart._migrate_install_capture(source, stage, row_key);
    blocks := pg_catalog.pg_relation_size(source) / pg_catalog.current_setting('block_size')::bigint;
    INSERT INTO timepart.migrations AS g (source, source_name, target, stage_schema, key_column, partition_interval, time_zone,
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated)
    VALUES (source, source::text, target, stage, key_column, partition_interval, time_zone, retention, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated)
    RETURNING * INTO m;
    PERFORM timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
END $$;

-- ==== src/89_migrate_run.sql
-- Migration, 5 of 5: the entry points: starting or resuming a run, its progress, CALL
-- timepart.migrate and migrate_abort.

-- A run's start: the migration under way for this table (same key and interval), or,
-- after every check, a new one prepared. NULL when the table was already migrated.
-- Takes the per-table session lock that keeps a second runner out.
CREATE OR REPLACE FUNCTION timepart._migrate_begin(source regclass, key_column name, partition_interval interval, batch_size integer,
                                                   premake integer, retention interval, time_zone text)
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
    ELSIF FOUND AND (m.key_column <> key_column OR m.partition_interval <> partition_interval) THEN
        RAISE EXCEPTION 'a migration of % by % every % is under way', source, m.key_column, m.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s every %s.', key_column, partition_interval),
            HINT = format('Resume it with the same key and interval, or stop it with SELECT timepart.migrate_abort(%L).', source::text);
    ELSIF NOT FOUND THEN
        key_type := timepart._migrate_check(source, key_column, partition_interval, time_zone);
        PERFORM timepart._check_premake(premake);
        PERFORM timepart._check_retention(retention);
        SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, time_zone);
        PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
        PERFORM timepart._migrate_check_names(source, ARRAY[timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), 'default')::text]
            || ARRAY(SELECT timepart._partition_name(source, p.range_start, partition_interval, time_zone)::text
                     FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone, f.oldest, f.newest, 0, false) p));
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
                RETURN timepart._migrate_prepare(source, key_column, key_type, partition_interval, premake, retention, time_zone, batch_size,
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

-- One progress notice per batch, for people; its DETAIL is the same as JSON, for
-- programs (the CLI's progress bar reads it; the numbers are timepart.migrations').
CREATE OR REPLACE FUNCTION timepart._migrate_progress(m timepart.migrations, run_started timestamptz, rows_at_start bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rate numeric := (m.rows_copied - rows_at_start)
                    / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - run_started), 0.001);
BEGIN
    RAISE NOTICE 'timepart.migrate: % of ~% rows copied (block % of %, % rows/s)',
        m.rows_copied, greatest(m.rows_estimated, m.rows_copied), m.next_block, m.last_block, round(rate)
        USING DETAIL = jsonb_build_object('migration', m.id, 'rows_copied', m.rows_copied,
                                          'rows_estimated', greatest(m.rows_estimated, m.rows_copied),
                                          'next_block', m.next_block, 'last_block', m.last_block,
                                          'rows_per_second', round(rate))::text;
END $$;

-- ==== src/95_install.sql
-- What the installer asks the database before it removes a script-mode install: the
-- objects timepart put outside its schema, and the user objects that depend on timepart.
-- The facts live here, next to the objects, so the Python side derives none of them.

-- The objects timepart created outside schema timepart (its event trigger, the seed's
-- names in public), in the order they must be dropped (a seed view depends on the log).
-- PL/pgSQL: its body names functions defined later in the script.
CREATE OR REPLACE FUNCTION timepart._installed_objects() RETURNS TABLE (kind text, name text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT 'EVENT TRIGGER'::text, pg_catalog.quote_ident(e.evtname::text) FROM pg_catalog.pg_event_trigger e
    WHERE e.evtname = 'timepart_drop_jobs'
    UNION ALL
    SELECT 'VIEW'::text, c.oid::regclass::text FROM pg_catalog.pg_class c
    WHERE c.oid = pg_catalog.to_regclass('public.partition_maintenance_log')
    UNION ALL
    SELECT 'FUNCTION'::text, p.oid::regprocedure::text FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY (timepart._public_names());
END $$;

COMMENT ON FUNCTION timepart._installed_objects() IS 'The objects timepart created outside its schema (the seed''s names in public), in drop order';

-- Objects outside schema timepart that depend on something inside it (a user's view on
-- timepart.config, a column of a timepart type, ...). An uninstall refuses while there
-- are any, as DROP EXTENSION without CASCADE does.
CREATE OR REPLACE FUNCTION timepart._outside_dependents() RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH ours AS (
        SELECT 'pg_catalog.pg_class'::regclass AS classid, c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = 'timepart'::regnamespace
        UNION ALL SELECT 'pg_catalog.pg_proc'::regclass, p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace
        UNION ALL SELECT 'pg_catalog.pg_type'::regclass, t.oid FROM pg_catalog.pg_type t WHERE t.typnamespace = 'timepart'::regnamespace
    ), mine AS (  -- timepart's own objects outside its schema go with it
        SELECT i.name::regprocedure::oid AS oid FROM timepart._installed_objects() i WHERE i.kind = 'FUNCTION'
        UNION ALL
        SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = pg_catalog.to_regclass('public.partition_maintenance_log')
        UNION ALL
        SELECT e.oid FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_drop_jobs'
    ), dependents AS (
        -- The schema each dependent lives in: its own, or its table's.
        SELECT d.classid, d.objid, d.objsubid,
               CASE d.classid
                   WHEN 'pg_catalog.pg_class'::regclass THEN (SELECT x.relnamespace FROM pg_catalog.pg_class x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_proc'::regclass THEN (SELECT x.pronamespace FROM pg_catalog.pg_proc x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_type'::regclass THEN (SELECT x.typnamespace FROM pg_catalog.pg_type x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_constraint'::regclass THEN (SELECT x.connamespace FROM pg_catalog.pg_constraint x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_rewrite x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.ev_class WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_attrdef x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.adrelid WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_trigger x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.tgrelid WHERE x.oid = d.objid)
               END AS home
        FROM pg_catalog.pg_depend d JOIN ours o ON o.classid = d.refclassid AND o.oid = d.refobjid
        WHERE d.deptype = 'n' AND d.objid NOT IN (SELECT m.oid FROM mine m)
    )
    SELECT DISTINCT pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid) FROM dependents x
    WHERE x.home IS DISTINCT FROM 'timepart'::regnamespace
    ORDER BY 1;
END $$;

COMMENT ON FUNCTION timepart._outside_dependents() IS 'User objects outside schema timepart that depend on it: an uninstall refuses while there are any';

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Runs as the caller: only an owner of a table (or a member of its owner role) may
   register, reconfigure or forget it, or change its index templates or migration.
   Both the row as it was and the row as it becomes are checked, so an UPDATE cannot
   take another owner's row. TG_ARGV[0] names the column holding the table. */
DECLARE
    col text := coalesce(TG_ARGV[0], 'parent');
    tbl regclass;
    side record;
BEGIN
    FOR side IN SELECT x.r FROM (VALUES (CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN pg_catalog.to_jsonb(OLD) END),
                                        (CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN pg_catalog.to_jsonb(NEW) END)) x(r)
                WHERE x.r IS NOT NULL LOOP
        -- A dropped table's oid prints as digits: cast those without a catalog lookup.
        tbl := CASE WHEN (side.r ->> col) ~ '^[0-9]+$' THEN (side.r ->> col)::oid::regclass ELSE (side.r ->> col)::regclass END;
        IF NOT coalesce(timepart._may_act(current_user, tbl), TG_OP = 'DELETE') THEN
            RAISE EXCEPTION 'must be owner of table % to manage it', coalesce(tbl::regclass::text, side.r ->> col) USING ERRCODE = '42501',
                DETAIL = format('%s is owned by %s.', tbl::regclass,
                                coalesce((SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE oid = tbl), 'nobody: it does not exist')),
                HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

-- Tables only timepart's own functions write: the statement must come straight from a
-- PL/pgSQL function in schema timepart (the nearest function on the call stack), not
-- from a client, a DO block, a user's function or a trigger. On the log, who and when
-- are set here, by the server.
CREATE OR REPLACE FUNCTION timepart._written_by_timepart() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
    frame text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    -- The nearest function frame, looking through timepart._log to whatever called it.
    SELECT x.l INTO frame FROM unnest((pg_catalog.string_to_array(ctx, E'\n'))[2:]) WITH ORDINALITY AS x(l, i)
    WHERE x.l ~ '^(PL/pgSQL|SQL) function' AND x.l !~ '^PL/pgSQL function timepart\._log\(' ORDER BY x.i LIMIT 1;
    -- Nobody writes these rows but timepart, and a superuser: pg_restore puts a dump's log
    -- and migration rows back as they were (who and when included); a superuser may trim.
    IF frame IS NULL OR frame !~ '^PL/pgSQL function timepart\.' THEN
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        RAISE EXCEPTION 'timepart.% is written only by timepart''s functions', TG_TABLE_NAME USING ERRCODE = '42501',
            DETAIL = format('A direct %s was refused (from %s).', TG_OP, coalesce(frame, 'a client statement')),
            HINT = 'Use timepart''s functions; this table records what they did.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_TABLE_NAME = 'maintenance_log' AND TG_OP = 'INSERT' THEN
        NEW.created_at := pg_catalog.clock_timestamp();
        NEW.run_by := session_user;
        NEW.run_as := current_user;
    END IF;
    RETURN NEW;
END $$;

-- Index templates are checked as text, however they arrive (the API or a direct
-- INSERT): the column list and the condition must each stay inside the parentheses
-- timepart puts them in, so no clause (TABLESPACE, WITH, a second statement) can be
-- smuggled into the CREATE INDEX it builds.
CREATE OR REPLACE FUNCTION timepart._check_template_text(txt text, what text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    i int := 1;
    n int := length(txt);
    c text;
    depth int := 0;
    bad text;
BEGIN
    IF txt IS NULL OR btrim(txt) = '' THEN
        bad := 'it is empty';
    END IF;
    WHILE bad IS NULL AND i <= n LOOP
        c := substr(txt, i, 1);
        IF c = '''' OR c = '"' THEN
            i := i + 1;
            LOOP
                IF i > n THEN bad := 'a quote is not closed'; EXIT; END IF;
                IF substr(txt, i, 1) = '\' THEN bad := 'it holds a backslash'; EXIT; END IF;
                IF substr(txt, i, 1) = c THEN
                    IF substr(txt, i + 1, 1) = c THEN i := i + 2; CONTINUE; END IF;
                    EXIT;
                END IF;
                i := i + 1;
            END LOOP;
        ELSIF c = '(' THEN depth := depth + 1;
        ELSIF c = ')' THEN
            depth := depth - 1;
            IF depth < 0 THEN bad := 'a parenthesis closes that was never opened'; END IF;
        ELSIF c IN (';', '\', '$') THEN bad := format('it holds %s', c);
        ELSIF substr(txt, i, 2) IN ('--', '/*') THEN bad := 'it holds a comment';
        END IF;
        i := i + 1;
    END LOOP;
    IF bad IS NULL AND depth <> 0 THEN
        bad := 'a parenthesis is not closed';
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid index template definition' USING ERRCODE = '22023',
            DETAIL = format('The %s is refused: %s. Got %s.', what, bad, coalesce(txt, 'NULL')),
            HINT = 'Give a column list such as ''workspace_id, created_at DESC'' and an optional condition such as '
                   '''status = ''''open''''''; no semicolons, comments, backslashes, dollar quotes or unbalanced parentheses.';
    END IF;
END $$;

-- Which public functions a role may call. Everything else in the schema is private.
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log']
$$;

-- Functions nobody but timepart's owner may execute: trigger functions (which must not
-- be attached to anyone's table) and the executor factory's helpers.
CREATE OR REPLACE FUNCTION timepart._private_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart._migrate_capture', 'timepart._migrate_refuse_truncate', 'timepart._config_guard', 'timepart._drop_jobs_with_extension',
                 'timepart._written_by_timepart', 'timepart._template_guard']
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
        WHERE (n.nspname = 'timepart' AND p.proname NOT LIKE '\_as\_owner\_%') OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they qualify every name instead.
        IF f.prokind = 'f' AND (f.lanname = 'plpgsql' OR f.nspname = 'public' OR f.qname = ANY (timepart._definer_functions())) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            -- jit off: timepart's queries read catalogs and small tables; compiling them
            -- cost about a second on a session's first statistics call at 12 x 1M rows.
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD'' SET jit = off', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        ELSIF f.prokind = 'f' THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER', f.sig);
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        IF roles_exist THEN
            EXECUTE format('REVOKE ALL ON %s %s FROM partition_admin, partition_monitor',
                           CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        END IF;
        -- Trigger functions are timepart's alone: nobody may attach them to a table.
        IF roles_exist AND f.qname <> ALL (timepart._private_functions()) THEN
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
        -- Exact key values are data: monitors read them through partition_stats, which hides them.
        REVOKE SELECT ON timepart.stats_history FROM partition_monitor;
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        GRANT INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.migrations TO partition_admin;
        GRANT INSERT, DELETE ON timepart.jobs TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;

SELECT timepart._harden();
