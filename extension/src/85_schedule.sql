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
    scheduled_at    timestamptz NOT NULL DEFAULT now(),
    scheduled_by    name NOT NULL DEFAULT current_user
);
COMMENT ON COLUMN timepart.jobs.scheduled_by IS 'The role that scheduled the job, which pg_cron runs it as';
COMMENT ON TABLE timepart.jobs IS 'The pg_cron jobs schedule_jobs() set up, and how often each should run (for the job alerts)';
SELECT timepart._config_dump('timepart.jobs');

-- Jobs run as the role that scheduled them: only that role (or a member, or a
-- superuser) may replace or remove them, and scheduled_by is always the scheduler (the
-- session's role: the rows are written by timepart's owner, through _jobs_put).
CREATE OR REPLACE FUNCTION timepart._jobs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who name := timepart._caller();
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = OLD.scheduled_by)
       AND NOT coalesce(pg_catalog.pg_has_role(who, OLD.scheduled_by, 'USAGE'), false) THEN
        RAISE EXCEPTION 'timepart''s jobs were scheduled by %', OLD.scheduled_by USING ERRCODE = '42501',
            DETAIL = format('%s cannot replace or remove jobs that run as %s.', coalesce(who, 'a table owner''s code'), OLD.scheduled_by),
            HINT = format('Ask %s (or a superuser) to run timepart.unschedule_jobs() first.', OLD.scheduled_by);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF who IS NULL THEN
        RAISE EXCEPTION 'timepart''s jobs are not scheduled from a table owner''s code' USING ERRCODE = '42501';
    END IF;
    NEW.scheduled_by := who;
    RETURN NEW;
END $$;

-- The jobs' rows, written as timepart's owner (no other role may write, so none may lock
-- them): replaced by a role that may maintain every managed table, as schedule_jobs
-- requires; removed by the scheduler (the guard above).
CREATE OR REPLACE FUNCTION timepart._jobs_put(new_jobs timepart.jobs[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF timepart._caller() IS NULL OR EXISTS (SELECT 1 FROM timepart._managed() c WHERE NOT timepart._may_maintain(timepart._caller(), c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            HINT = 'Schedule as a superuser, a member of partition_admin, or a member of every managed table''s owner.';
    END IF;
    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM unnest(new_jobs);
END $$;

CREATE OR REPLACE FUNCTION timepart._jobs_clear() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM timepart.jobs;
    RETURN FOUND;
END $$;
DROP TRIGGER IF EXISTS jobs_scheduler_guard ON timepart.jobs;
CREATE TRIGGER jobs_scheduler_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.jobs
    FOR EACH ROW EXECUTE FUNCTION timepart._jobs_guard();

-- The managed tables the current role may maintain (it owns them, is a member of their
-- owner, a superuser or a partition_admin), in a stable order: what the job procedures work through.
-- PL/pgSQL so that it runs on a pinned search_path: the procedures call it from the caller's.
CREATE OR REPLACE FUNCTION timepart._job_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT c.parent FROM timepart._managed() c WHERE timepart._may_maintain(current_user, c.parent);
END $$;

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
                          'SELECT cron.schedule_in_database(''timepart-maintain@%s'', ''17 3 * * 0'', ''CALL timepart.maintain_each()'', %L);',
                          cron_db, current_database(), current_database());
    END IF;
    RETURN 'dblink';
END $$;

-- A connection string to the pg_cron database on this server, as the current user.
CREATE OR REPLACE FUNCTION timepart._cron_conninfo() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('dbname=%s host=%s port=%s user=%s', pg_catalog.quote_ident(pg_catalog.current_setting('cron.database_name')),
                  split_part(pg_catalog.current_setting('unix_socket_directories'), ',', 1),
                  pg_catalog.current_setting('port'), pg_catalog.quote_ident(current_user));
END;

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
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN f[3] <> '*' THEN interval '32 days' WHEN f[5] <> '*' THEN interval '8 days'
                WHEN f[2] = '*' OR f[2] LIKE '*/%' THEN interval '2 hours' ELSE interval '2 days' END
    FROM (SELECT pg_catalog.regexp_split_to_array(pg_catalog.btrim(schedule), '\s+') AS f) s;
END;

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
    logged jsonb;
BEGIN
    -- The jobs run as the caller, over every managed table: scheduling must not let a
    -- role reach tables it could not maintain itself.
    IF EXISTS (SELECT 1 FROM timepart._managed() c WHERE NOT timepart._may_maintain(current_user, c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            DETAIL = format('%s may not maintain: %s.', current_user,
                (SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text) FROM timepart._managed() c
                 WHERE NOT timepart._may_maintain(current_user, c.parent))),
            HINT = 'Schedule as a superuser, a member of partition_admin, or a member of every managed table''s owner.';
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

    PERFORM timepart._jobs_put(new_jobs);
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM unnest(new_jobs) n;
    PERFORM timepart._cron_exec(statements);
    logged := (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM unnest(new_jobs) n);
    CALL timepart._log('schedule_jobs', NULL, NULL, true, logged, NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM unnest(new_jobs) n ORDER BY n.job;
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
    -- First, so a role that may not remove the jobs is refused before pg_cron is touched.
    IF NOT timepart._jobs_clear() THEN
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
    CALL timepart._log('unschedule_jobs', NULL, NULL, true, jsonb_build_object('jobs', to_jsonb(coalesce(names, '{}'))), NULL, started);
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
    -- A job's run that started and never ended (killed, a person's cancel, the server
    -- stopped), whoever ran it (pg_cron or CALL by hand): its "started" row is the newest
    -- of its kind and its backend is gone. The next run that ends resolves it.
    RETURN QUERY
    SELECT 'run_interrupted', 'warning', '(scheduler)', l.operation_type,
           format('the %s run started at %s (pid %s) never finished: it was killed, cancelled, or the server stopped',
                  pg_catalog.replace(l.operation_type, '_job', ''), l.created_at, l.details->>'pid'),
           'See timepart.get_maintenance_log() for how far it got and the server log for why it stopped, then run it '
           'again (CALL timepart.maintain_each(); or CALL timepart.cleanup_each();)', NULL::numeric, NULL::numeric
    FROM (SELECT DISTINCT ON (m.operation_type) m.* FROM timepart.maintenance_log m
          WHERE m.operation_type IN ('maintain_job', 'cleanup_job') ORDER BY m.operation_type, m.id DESC) l
    WHERE l.details->>'state' = 'started'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                      WHERE a.pid = (l.details->>'pid')::integer AND a.backend_start <= l.created_at);
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
-- It fires for every DROP EXTENSION in the database, by any role, so it fails no one's
-- statement and reads nothing as that role (SECURITY DEFINER, every error a WARNING),
-- and acts only when timepart is named and the role may drop it: someone else's failing
-- DROP EXTENSION timepart must not take the jobs (a dblink route commits at once).
CREATE OR REPLACE FUNCTION timepart._drop_jobs_with_extension() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- ddl_command_start names no object: the statement says which extension goes.
    IF pg_catalog.current_query() !~* '\mtimepart\M' OR pg_catalog.current_query() !~* '\mdrop\s+extension\M' THEN
        RETURN;
    END IF;
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'timepart'
                   AND pg_catalog.pg_has_role(timepart._caller(), e.extowner, 'USAGE'))
           AND EXISTS (SELECT 1 FROM timepart.jobs) THEN
            PERFORM timepart.unschedule_jobs();
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'timepart: could not unschedule its pg_cron jobs: %', SQLERRM
            USING HINT = 'Remove them with SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE ''timepart-%''.';
    END;
END $$;
DO $$
BEGIN
    IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_drop_jobs') THEN
        CREATE EVENT TRIGGER timepart_drop_jobs ON ddl_command_start WHEN TAG IN ('DROP EXTENSION')
            EXECUTE FUNCTION timepart._drop_jobs_with_extension();
    END IF;
END $$;
