-- The seed's names, callable unqualified with the default search_path, acting on
-- email_events. Each finds email_events along the caller's search_path, so with one
-- email_events per tenant schema `SET search_path = tenant_a, public` picks tenant_a's.
--
-- That is why these wrappers, unlike the rest of timepart, carry no pinned search_path:
-- a pinned path would hide the caller's. Each is one SQL statement in which the path
-- chooses nothing but the table: every function is schema-qualified, no operator is
-- written, and the work happens in the pinned timepart function it calls. They run as
-- the caller (SECURITY INVOKER).

-- The pinned bodies of the seed's names (first: a script-mode install checks the
-- wrappers' bodies); `on_path` is the caller's email_events.

CREATE OR REPLACE FUNCTION timepart._seed_create_partition(on_path regclass, start_date date, end_date date)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tbl regclass := timepart._email_events(on_path);
    tz text := (SELECT c.time_zone FROM timepart.config c WHERE c.parent = tbl);
BEGIN
    RETURN timepart.create_partition(tbl, start_date::timestamp AT TIME ZONE tz, end_date::timestamp AT TIME ZONE tz);
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_cleanup(on_path regclass, retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    IF retention_months IS NULL OR retention_months < 1 THEN
        RAISE EXCEPTION 'retention_months must be a positive number of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(retention_months::text, 'NULL')),
            HINT = 'Keep e.g. 12 months: SELECT * FROM cleanup_old_email_events_partitions(12);';
    END IF;
    RETURN QUERY
    SELECT d->>0, (d->>1)::bigint
    FROM jsonb_array_elements(timepart.cleanup(timepart._email_events(on_path), pg_catalog.make_interval(months => retention_months))
                              ->'dropped_partitions') d;
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_stats(on_path regclass)
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT s.partition_name, s.period, s.record_count, s.size_mb, s.oldest_record, s.newest_record,
           s.range_start, s.range_end, s.exact
    FROM timepart.partition_stats(timepart._email_events(on_path)) s;
END $$;

CREATE OR REPLACE FUNCTION public.create_email_events_partition(start_date date, end_date date)
RETURNS text LANGUAGE sql AS $$
    SELECT timepart._seed_create_partition(pg_catalog.to_regclass('email_events'), start_date, end_date)
$$;
COMMENT ON FUNCTION public.create_email_events_partition(date, date) IS
    'Seed name: creates the email_events partition for [start_date, end_date) with its indexes';

CREATE OR REPLACE FUNCTION public.maintain_email_events_partitions(months_ahead integer DEFAULT 6)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT timepart.maintain(timepart._email_events(pg_catalog.to_regclass('email_events')), months_ahead)
$$;
COMMENT ON FUNCTION public.maintain_email_events_partitions(integer) IS
    'Seed name: keeps email_events partitions for the current month and months_ahead more';

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE sql AS $$
    SELECT * FROM timepart._seed_cleanup(pg_catalog.to_regclass('email_events'), retention_months)
$$;
COMMENT ON FUNCTION public.cleanup_old_email_events_partitions(integer) IS
    'Seed name: removes email_events partitions wholly older than retention_months; returns each with its row count';

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql AS $$
    SELECT * FROM timepart._seed_stats(pg_catalog.to_regclass('email_events'))
$$;
COMMENT ON FUNCTION public.get_email_events_partition_stats() IS
    'Seed name: per-partition name, period, record_count, size_mb, oldest and newest record of email_events';

CREATE OR REPLACE FUNCTION public.get_partition_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE sql AS $$
    SELECT * FROM timepart.get_maintenance_log(max_rows)
$$;
COMMENT ON FUNCTION public.get_partition_maintenance_log(integer) IS 'Seed name: the newest maintenance log rows';

CREATE OR REPLACE VIEW public.partition_maintenance_log AS
    SELECT id, operation_type, parent_table, partition_name, success, created_at, details, error, duration, run_by, run_as
    FROM timepart.maintenance_log;
COMMENT ON VIEW public.partition_maintenance_log IS 'Seed name: the timepart maintenance log';
