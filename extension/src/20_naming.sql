-- Periods and names: where a period starts, what a partition is called, how a
-- bound is written. Pure functions; "now" is always a parameter.

-- Longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes). _fit_name's slow path.
CREATE OR REPLACE FUNCTION timepart._fit_long_name(base text, suffix text) RETURNS name
LANGUAGE plpgsql STABLE STRICT AS $$
/* base || '_' || suffix cut to 63 bytes: base is cut at a character boundary and an
   8-hex hash of the full name keeps it unique. */
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

-- base || '_' || suffix, kept within 63 bytes: when too long, base is cut and a hash of
-- the full name keeps it unique. One SQL expression (NULL in, NULL out), so the planner
-- inlines it: a query that matches names by it calls no function for a short name.
CREATE OR REPLACE FUNCTION timepart._fit_name(base text, suffix text) RETURNS name
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN pg_catalog.octet_length(base || '_' || suffix) <= 63 THEN (base || '_' || suffix)::name
                ELSE timepart._fit_long_name(base, suffix) END;
END;
COMMENT ON FUNCTION timepart._fit_name(text, text) IS 'base_suffix within 63 bytes, deterministic (cut + hash) when longer';

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
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT ((period_start AT TIME ZONE time_zone) + partition_interval * n) AT TIME ZONE time_zone;
END;

-- Label of a period as used in partition names: YYYY_MM for month intervals starting
-- on the 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._period_label(period_start timestamptz, partition_interval interval, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.to_char(period_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_part('day', partition_interval) = 0
                 AND pg_catalog.date_trunc('month', period_start AT TIME ZONE time_zone) = period_start AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
END;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS text LANGUAGE sql STABLE
BEGIN ATOMIC
    -- STABLE as to_char is: so the planner inlines it
    SELECT pg_catalog.to_char(range_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE time_zone) = range_start AT TIME ZONE time_zone
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE time_zone) = range_end AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
END;

-- The period of a managed table containing a moment: natural boundaries, or counted
-- from interval_anchor once the interval was changed.
-- STABLE, not IMMUTABLE: the planner must not compute it while planning a query that
-- only needs it in a message that is rarely built (a session's first health call).
CREATE OR REPLACE FUNCTION timepart._period_of(cfg timepart.config, at_time timestamptz) RETURNS timestamptz
LANGUAGE plpgsql STABLE AS $$
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
RETURNS name LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT timepart._fit_name(c.relname, timepart._period_label(period_start, partition_interval, time_zone))
    FROM pg_catalog.pg_class c WHERE c.oid = parent;
END;

-- Name of a partition that fills part of a period (next to a hand-made partition): the
-- parent's name and both bounds, YYYY_MM_DD (with HH24MI when a bound is not at midnight).
CREATE OR REPLACE FUNCTION timepart._piece_name(parent regclass, range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS name LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT timepart._fit_name(c.relname, pg_catalog.to_char(range_start AT TIME ZONE time_zone, f) || '_' || pg_catalog.to_char(range_end AT TIME ZONE time_zone, f))
    FROM pg_catalog.pg_class c,
         (SELECT CASE WHEN (range_start AT TIME ZONE time_zone)::time = '00:00' AND (range_end AT TIME ZONE time_zone)::time = '00:00'
                      THEN 'YYYY_MM_DD' ELSE 'YYYY_MM_DD_HH24MI' END AS f) x
    WHERE c.oid = parent;
END;

-- A bound written as a literal of the key's type (timestamptz in UTC with its offset,
-- local time for timestamp and date keys), independent of DateStyle and TimeZone.
CREATE OR REPLACE FUNCTION timepart._bound_literal(bound timestamptz, key_type regtype, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.quote_literal(CASE key_type
        WHEN 'timestamptz'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00"')
        WHEN 'timestamp'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD"T"HH24:MI:SS.US')
        ELSE pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD') END);
END;

-- True for an interval whose months, days and time have opposite signs ('1 month -29 days'):
-- its length depends on the calendar, so it is no retention or period.
CREATE OR REPLACE FUNCTION timepart._mixed_signs(i interval) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT (m > 0 OR d > 0 OR t > 0) AND (m < 0 OR d < 0 OR t < 0)
    FROM (SELECT pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i) AS m,
                 pg_catalog.date_part('day', i) AS d,
                 pg_catalog.date_part('epoch', i - pg_catalog.justify_hours(pg_catalog.make_interval(
                     months => (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::int,
                     days => pg_catalog.date_part('day', i)::int))) AS t) parts;
END;
