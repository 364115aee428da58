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
        SELECT l.parent_table, max(l.created_at) FILTER (WHERE l.success AND l.operation_type = 'maintain') AS last_ok,
               count(*) FILTER (WHERE NOT l.success AND l.operation_type = 'maintain') AS failures,
               max(l.created_at) FILTER (WHERE l.success AND l.operation_type = 'cleanup') AS cleanup_last_ok,
               count(*) FILTER (WHERE NOT l.success AND l.operation_type = 'cleanup' AND NOT l.details ? 'skipped') AS cleanup_failures,
               (array_agg(l.success ORDER BY l.id DESC) FILTER (WHERE l.operation_type = 'maintain'))[1] AS last_run_ok,
               (array_agg(l.success ORDER BY l.id DESC)
                    FILTER (WHERE l.operation_type = 'cleanup' AND NOT l.details ? 'skipped'))[1] AS last_cleanup_ok
        FROM timepart.maintenance_log l WHERE l.operation_type IN ('maintain', 'cleanup') GROUP BY l.parent_table
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
                WHEN t.future < t.alert_min_future OR t.default_rows > 0 OR NOT coalesce(g.last_run_ok, true)
                     OR NOT coalesce(g.last_cleanup_ok, true) THEN 1
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
    SELECT 'timepart_last_retention_success_timestamp_seconds', jsonb_build_object('table', t.tbl),
           extract(epoch FROM g.cleanup_last_ok)::float8
    FROM tables t JOIN log g ON g.parent_table = t.tbl WHERE g.cleanup_last_ok IS NOT NULL
    UNION ALL
    SELECT 'timepart_retention_failures_total', jsonb_build_object('table', t.tbl), coalesce(g.cleanup_failures, 0)::float8
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

-- How long the maintenance log keeps its rows: the setting timepart.log_retention of the
-- database (ALTER DATABASE app SET timepart.log_retention = '30 days'), 90 days when
-- unset. Read from the catalog, not the session: a session's SET (anyone's, or a table
-- owner's code) never decides how much of the audit trail goes.
CREATE OR REPLACE FUNCTION timepart._log_retention() RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
    setting text := (SELECT NULLIF(substr(c, length('timepart.log_retention=') + 1), '')
                     FROM pg_catalog.pg_db_role_setting r, unnest(r.setconfig) c
                     WHERE r.setrole = 0 AND r.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                       AND c LIKE 'timepart.log\_retention=%');
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
    CALL timepart._log('purge_log', NULL, NULL, true, jsonb_build_object('deleted', n, 'older_than', keep), NULL, started);
    RETURN n;
END $$;
COMMENT ON FUNCTION timepart.purge_log(interval, timestamptz) IS
    'Deletes maintenance log rows older than the log retention (timepart.log_retention, default 90 days)';
