-- timepart--0.3--0.4.sql: scheduling with pg_cron (schedule_jobs, unschedule_jobs, the
-- cron-history trim), job alerts in check_alerts and health, jobs in summary.

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.4'::text $$;
COMMENT ON FUNCTION timepart.version() IS 'The version of the timepart SQL installed in this database';

-- Scheduling with pg_cron: the seed's four jobs plus a fifth that keeps
-- cron.job_run_details small, named timepart-<job>@<database>. pg_cron lives in one
-- database (cron.database_name): reached directly when that is this one, through
-- dblink otherwise.

CREATE TABLE timepart.jobs (
    job             text PRIMARY KEY CONSTRAINT jobs_job_known CHECK (job IN ('maintain', 'cleanup', 'health', 'stats', 'cron-history')),
    jobname         text NOT NULL,
    schedule        text NOT NULL,
    command         text NOT NULL,
    run_in          name NOT NULL,
    expected_every  interval NOT NULL,
    scheduled_at    timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE timepart.jobs IS 'The pg_cron jobs schedule_jobs() set up, and how often each should run (for the job alerts)';
SELECT timepart._config_dump('timepart.jobs');

-- How pg_cron is reached: 'local' (its schema is here), 'dblink', or a refusal that
-- says exactly what to do. preload is shared_preload_libraries (a parameter for tests).
CREATE OR REPLACE FUNCTION timepart._cron_route(preload text DEFAULT pg_catalog.current_setting('shared_preload_libraries'))
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF preload IS NULL OR preload !~ '(^|[\s,])pg_cron($|[\s,])' THEN
        RAISE EXCEPTION 'pg_cron is not loaded by this server' USING ERRCODE = '55000',
            DETAIL = format('shared_preload_libraries is ''%s''.', coalesce(preload, '')),
            HINT = format('Add to postgresql.conf: shared_preload_libraries = ''pg_cron'' and cron.database_name = ''%s'', '
                          'restart PostgreSQL, then run CREATE EXTENSION pg_cron in that database.', current_database());
    END IF;
    IF cron_db IS NULL OR cron_db = current_database() THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
            RAISE EXCEPTION 'pg_cron is loaded but its extension is not created in database %', current_database()
                USING ERRCODE = '55000', DETAIL = 'cron.database_name is this database.',
                      HINT = 'Run CREATE EXTENSION pg_cron; here, then schedule again.';
        END IF;
        RETURN 'local';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink') THEN
        RAISE EXCEPTION 'pg_cron lives in database %, not in %', cron_db, current_database() USING ERRCODE = '55000',
            DETAIL = 'timepart reaches another database''s pg_cron through dblink, which is not installed here.',
            HINT = format('Run CREATE EXTENSION dblink; here, or schedule from database %s with '
                          'SELECT cron.schedule_in_database(''timepart-maintain@%s'', ''17 3 * * 0'', ''SELECT timepart.maintain()'', %L);',
                          cron_db, current_database(), current_database());
    END IF;
    RETURN 'dblink';
END $$;

-- A connection string to the pg_cron database on this server, as the current user.
CREATE OR REPLACE FUNCTION timepart._cron_conninfo() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('dbname=%s host=%s port=%s user=%s', pg_catalog.quote_ident(pg_catalog.current_setting('cron.database_name')),
                  split_part(pg_catalog.current_setting('unix_socket_directories'), ',', 1),
                  pg_catalog.current_setting('port'), pg_catalog.quote_ident(current_user))
$$;

-- Runs statements where pg_cron lives, in one transaction there.
CREATE OR REPLACE FUNCTION timepart._cron_exec(statements text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    dblink_schema name;
BEGIN
    IF timepart._cron_route() = 'local' THEN
        EXECUTE statements;
        RETURN;
    END IF;
    SELECT n.nspname INTO dblink_schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    EXECUTE format('SELECT %I.dblink_exec(%L, %L)', dblink_schema, timepart._cron_conninfo(), statements);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'not allowed to schedule pg_cron jobs: %', SQLERRM USING ERRCODE = '42501',
        DETAIL = 'cron.schedule_in_database is revoked from PUBLIC by pg_cron.',
        HINT = format('As a superuser in database %s: GRANT USAGE ON SCHEMA cron TO %I; '
                      'GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text,text,text,text,text,boolean) TO %I;',
                      pg_catalog.current_setting('cron.database_name', true), current_user, current_user);
END $$;

-- timepart's jobs as pg_cron knows them, with each one's latest run.
CREATE OR REPLACE FUNCTION timepart._cron_jobs()
RETURNS TABLE (jobname text, schedule text, command text, run_in text, active boolean,
               last_status text, last_start timestamptz, last_end timestamptz, last_message text, last_success timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    q text := format($q$
        SELECT j.jobname::text, j.schedule, j.command, j.database, j.active, r.status, r.start_time, r.end_time,
               r.return_message, s.end_time
        FROM cron.job j
        LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d WHERE d.jobid = j.jobid ORDER BY d.runid DESC LIMIT 1) r ON true
        LEFT JOIN LATERAL (SELECT max(d.end_time) AS end_time FROM cron.job_run_details d
                           WHERE d.jobid = j.jobid AND d.status = 'succeeded') s ON true
        WHERE j.jobname LIKE 'timepart-%%@' || %L$q$, current_database());
    dblink_schema name;
BEGIN
    IF timepart._cron_route() = 'local' THEN
        RETURN QUERY EXECUTE q;
        RETURN;
    END IF;
    SELECT n.nspname INTO dblink_schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    RETURN QUERY EXECUTE format('SELECT * FROM %I.dblink(%L, %L) AS t(jobname text, schedule text, command text, '
        'run_in text, active boolean, last_status text, last_start timestamptz, last_end timestamptz, last_message text, '
        'last_success timestamptz)', dblink_schema, timepart._cron_conninfo(), q);
END $$;

-- How long may pass between two runs of a cron schedule before it is overdue.
CREATE OR REPLACE FUNCTION timepart._expected_every(schedule text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN f[3] <> '*' THEN interval '32 days' WHEN f[5] <> '*' THEN interval '8 days'
                WHEN f[2] = '*' OR f[2] LIKE '*/%' THEN interval '2 hours' ELSE interval '2 days' END
    FROM (SELECT pg_catalog.regexp_split_to_array(pg_catalog.btrim(schedule), '\s+') AS f) s
$$;

CREATE OR REPLACE FUNCTION timepart.schedule_jobs(maintain_schedule text DEFAULT '17 3 * * 0',
                                                  cleanup_schedule text DEFAULT '37 4 1 * *',
                                                  health_schedule text DEFAULT '7 6 * * *',
                                                  stats_schedule text DEFAULT '47 2 * * *',
                                                  cron_history_schedule text DEFAULT '57 5 * * *',
                                                  cron_history_keep interval DEFAULT '30 days')
RETURNS TABLE (jobname text, schedule text, command text) LANGUAGE plpgsql AS $$
/* The seed's jobs in pg_cron, at quiet hours: weekly maintain, monthly cleanup (each
   table's configured retention; email_events keeps 12 months), daily health check
   (check_alerts), daily statistics snapshot, plus a daily trim of
   cron.job_run_details. Named timepart-<job>@<database>; running it again updates
   them in place. Works when pg_cron lives in another database (through dblink). */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    statements text;
BEGIN
    IF cron_history_keep IS NULL OR cron_history_keep <= interval '0' THEN
        RAISE EXCEPTION 'cron_history_keep must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cron_history_keep::text, 'NULL')), HINT = 'Keep e.g. ''30 days'' of job runs.';
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS timepart_new_jobs (LIKE timepart.jobs) ON COMMIT DROP;
    TRUNCATE timepart_new_jobs;
    INSERT INTO timepart_new_jobs
    SELECT j.job, format('timepart-%s@%s', j.job, current_database()), j.sched, j.cmd, j.db,
           timepart._expected_every(j.sched), now()
    FROM (VALUES
        ('maintain', maintain_schedule, 'SELECT timepart.maintain()', current_database()),
        ('cleanup', cleanup_schedule, 'SELECT timepart.cleanup()', current_database()),
        ('health', health_schedule, 'SELECT count(*) FROM timepart.check_alerts()', current_database()),
        ('stats', stats_schedule, 'SELECT timepart.snapshot_stats()', current_database()),
        ('cron-history', cron_history_schedule,
         format('DELETE FROM cron.job_run_details WHERE end_time < now() - %L::interval', cron_history_keep),
         coalesce(pg_catalog.current_setting('cron.database_name', true), current_database()))
    ) AS j(job, sched, cmd, db);
    IF EXISTS (SELECT 1 FROM timepart_new_jobs n WHERE n.schedule IS NULL
               OR array_length(pg_catalog.regexp_split_to_array(pg_catalog.btrim(n.schedule), '\s+'), 1) <> 5) THEN
        RAISE EXCEPTION 'a cron schedule must have five fields' USING ERRCODE = '22023',
            DETAIL = (SELECT string_agg(format('%s: %s', n.job, coalesce(n.schedule, 'NULL')), ', ') FROM timepart_new_jobs n),
            HINT = 'minute hour day-of-month month day-of-week, e.g. ''17 3 * * 0'' for Sundays at 03:17.';
    END IF;

    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM timepart_new_jobs;
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM timepart_new_jobs n;
    PERFORM timepart._cron_exec(statements);
    PERFORM timepart._log('schedule_jobs', NULL, NULL, true,
        (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM timepart_new_jobs n), NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM timepart_new_jobs n ORDER BY n.job;
END $$;
COMMENT ON FUNCTION timepart.schedule_jobs(text, text, text, text, text, interval) IS
    'Schedules maintain, cleanup, health, stats and cron-history jobs in pg_cron (timepart-<job>@<database>); idempotent';

CREATE OR REPLACE FUNCTION timepart.unschedule_jobs() RETURNS integer
LANGUAGE plpgsql AS $$
/* Removes this database's timepart jobs from pg_cron. Returns how many there were. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    names text[];
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        -- Nothing was scheduled from here; pg_cron need not even be reachable.
        BEGIN
            SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            names := NULL;
        END;
    ELSE
        SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
    END IF;
    IF names IS NOT NULL THEN
        PERFORM timepart._cron_exec(format('DO $do$ BEGIN %s END $do$',
            (SELECT string_agg(format('PERFORM cron.unschedule(%L);', n), ' ') FROM unnest(names) n)));
    END IF;
    DELETE FROM timepart.jobs;
    PERFORM timepart._log('unschedule_jobs', NULL, NULL, true, jsonb_build_object('jobs', to_jsonb(coalesce(names, '{}'))), NULL, started);
    RETURN coalesce(array_length(names, 1), 0);
END $$;
COMMENT ON FUNCTION timepart.unschedule_jobs() IS 'Removes this database''s timepart jobs from pg_cron';

-- Alerts about the scheduled jobs: missing, last run failed, or overdue. Only for jobs
-- schedule_jobs() set up; if pg_cron cannot be reached, that is the alert.
CREATE OR REPLACE FUNCTION timepart._evaluate_jobs(as_of timestamptz)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    err text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH c AS MATERIALIZED (SELECT * FROM timepart._cron_jobs())
    SELECT 'job_missing', 'warning', '(scheduler)', j.jobname, format('scheduled job %s is missing from pg_cron', j.jobname),
           'Run SELECT * FROM timepart.schedule_jobs(); again', NULL::numeric, NULL::numeric
    FROM timepart.jobs j WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.jobname = j.jobname)
    UNION ALL
    SELECT 'job_failed', 'warning', '(scheduler)', c.jobname,
           format('last run of %s at %s failed: %s', c.jobname, c.last_start, coalesce(c.last_message, 'no message')),
           'Read cron.job_run_details and timepart.maintenance_log for the cause, fix it, and run the job''s command by hand',
           NULL, NULL
    FROM c WHERE c.last_status = 'failed'
    UNION ALL
    SELECT 'job_overdue', 'warning', '(scheduler)', j.jobname,
           format('%s has not succeeded since %s (expected every %s)', j.jobname,
                  coalesce(c.last_success::text, 'it was scheduled'), j.expected_every),
           'Check that pg_cron runs (cron.job active, the launcher in pg_stat_activity) and the job''s last runs',
           round(extract(epoch FROM as_of - coalesce(c.last_success, j.scheduled_at)) / 3600, 1),
           round(extract(epoch FROM j.expected_every) / 3600, 1)
    FROM timepart.jobs j JOIN c ON c.jobname = j.jobname
    WHERE coalesce(c.last_success, j.scheduled_at) < as_of - j.expected_every AND c.last_status IS DISTINCT FROM 'failed';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN QUERY SELECT 'jobs_unreachable', 'warning', '(scheduler)', '', format('pg_cron cannot be reached: %s', err),
        'Check pg_cron (shared_preload_libraries, cron.database_name) and dblink', NULL::numeric, NULL::numeric;
END $$;

-- The scheduled jobs for summary(): what schedule_jobs() set up, with pg_cron's view
-- of each (active, latest run). Never raises: an unreachable pg_cron is reported.
CREATE OR REPLACE FUNCTION timepart._jobs_summary() RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN '[]';
    END IF;
    RETURN (SELECT jsonb_agg(jsonb_build_object('job', j.job, 'jobname', j.jobname, 'schedule', j.schedule,
                'command', j.command, 'database', j.run_in, 'expected_every', j.expected_every, 'in_pg_cron', c.jobname IS NOT NULL,
                'active', c.active, 'last_status', c.last_status, 'last_start', c.last_start, 'last_end', c.last_end,
                'last_success', c.last_success, 'last_message', c.last_message) ORDER BY j.job)
            FROM timepart.jobs j LEFT JOIN timepart._cron_jobs() c ON c.jobname = j.jobname);
EXCEPTION WHEN OTHERS THEN
    RETURN jsonb_build_array(jsonb_build_object('error', 'pg_cron cannot be reached: ' || SQLERRM));
END $$;

-- check_alerts also evaluates the scheduled jobs.
CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one), keeps each alert's
   lifecycle (an open alert is updated, not duplicated; one no longer raised is
   resolved), announces new ones with pg_notify('timepart_alerts', json) and a
   WARNING, logs the run, and returns the open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}';
BEGIN
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
    END IF;
    CREATE TEMP TABLE IF NOT EXISTS timepart_eval_alerts (alert_type text, severity text, parent_table text,
        partition_name text, message text, recommendation text, value numeric, threshold numeric) ON COMMIT DROP;
    TRUNCATE timepart_eval_alerts;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE check_alerts.parent IS NULL OR c.parent = check_alerts.parent LOOP
        checked := checked || cfg.parent::text;
        INSERT INTO timepart_eval_alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value, threshold)
        SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, ''), e.message, e.recommendation, e.value, e.threshold
        FROM timepart._evaluate(cfg.parent, as_of) e;
    END LOOP;
    IF check_alerts.parent IS NULL THEN
        checked := checked || '(scheduler)'::text;
        INSERT INTO timepart_eval_alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value, threshold)
        SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, ''), e.message, e.recommendation, e.value, e.threshold
        FROM timepart._evaluate_jobs(as_of) e;
    END IF;

    FOR a IN SELECT e.* FROM timepart_eval_alerts e LOOP
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
      AND NOT EXISTS (SELECT 1 FROM timepart_eval_alerts e WHERE e.alert_type = x.alert_type
                      AND e.parent_table = x.parent_table AND e.partition_name = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    PERFORM timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', (SELECT count(*) FROM timepart_eval_alerts),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;
COMMENT ON FUNCTION timepart.check_alerts(regclass, timestamptz) IS
    'Evaluates the alert rules, keeps each alert''s lifecycle, announces new ones on channel timepart_alerts; returns open alerts';

-- health and summary learn about the jobs.
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

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j WHERE health.parent IS NULL) e;

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM unnest(coalesce(tables, '{}')) t, timepart.partition_stats(t) s;

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
COMMENT ON FUNCTION timepart.health(regclass, timestamptz) IS
    'The seed''s /health document: healthy, warning, critical or error, with issues and recommendations; never raises';

CREATE OR REPLACE FUNCTION timepart.summary(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /summary: health, per-partition stats, configuration, scheduled jobs with
   their latest runs, recent log and open alerts. */
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    RETURN jsonb_build_object(
        'health', timepart.health(summary.parent, as_of),
        'stats', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM timepart.partition_stats(summary.parent) s),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', timepart._jobs_summary(),
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.summary(regclass, timestamptz) IS 'The seed''s /summary document: health, stats, configuration, jobs, recent log, open alerts';
