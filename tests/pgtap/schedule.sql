-- schedule_jobs / unschedule_jobs in the pg_cron database, and the job alerts.
-- needs: pg_cron
\ir setup.psql
SELECT plan(16);

SELECT is((SELECT string_agg(jobname, ',' ORDER BY jobname) FROM timepart.schedule_jobs()),
          format('timepart-cleanup@%1$s,timepart-cron-history@%1$s,timepart-health@%1$s,timepart-maintain@%1$s,timepart-stats@%1$s',
                 current_database()), 'schedule_jobs returns the five jobs, named timepart-<job>@<database>');
SELECT results_eq($$SELECT schedule, command FROM cron.job WHERE jobname = 'timepart-maintain@' || current_database()$$,
    $$VALUES ('17 3 * * 0'::text, 'CALL timepart.maintain_each()'::text)$$, 'maintain runs weekly at a quiet hour, one table per transaction');
SELECT is((SELECT schedule FROM cron.job WHERE jobname = 'timepart-cleanup@' || current_database()), '37 4 1 * *',
          'cleanup runs monthly');
SELECT is((SELECT count(*) FROM cron.job WHERE jobname LIKE 'timepart-%' AND schedule LIKE '% * * *' AND jobname ~ 'health|stats|cron-history'),
          3::bigint, 'health, stats and cron-history run daily');
SELECT matches((SELECT command FROM cron.job WHERE jobname = 'timepart-cron-history@' || current_database()),
               '^DELETE FROM cron.job_run_details d WHERE d.end_time < now\(\) - ''30 days''.*jobname LIKE ''timepart-%''', 'cron-history keeps 30 days of runs');

SELECT timepart.schedule_jobs(maintain_schedule => '0 1 * * 1', cron_history_keep => '7 days');
SELECT is((SELECT count(*) FROM cron.job WHERE jobname LIKE 'timepart-%'), 5::bigint, 'scheduling twice leaves five jobs');
SELECT is((SELECT schedule FROM cron.job WHERE jobname = 'timepart-maintain@' || current_database()), '0 1 * * 1',
          'the second run updates the cadence in place');

SELECT throws_ok($$SELECT timepart.schedule_jobs(maintain_schedule => 'every sunday')$$, '22023',
                 'a cron schedule must have five fields', 'a malformed schedule is refused');
SELECT throws_ok($$SELECT timepart.schedule_jobs(cron_history_keep => '-1 day')$$, '22023',
                 'cron_history_keep must be positive', 'a negative history age is refused');
SELECT is((SELECT schedule FROM cron.job WHERE jobname = 'timepart-maintain@' || current_database()), '0 1 * * 1',
          'refused calls changed no job');
SELECT throws_ok($$SELECT timepart._cron_route('pg_stat_statements')$$, '55000', 'pg_cron is not loaded by this server',
                 'without pg_cron preloaded, scheduling is refused with the line to add');

-- Job alerts.
SELECT is((SELECT count(*) FROM timepart.check_alerts(NULL, now() + interval '1 hour') WHERE alert_type LIKE 'job_%'), 0::bigint,
          'freshly scheduled jobs raise no alert');
SELECT cron.unschedule('timepart-stats@' || current_database());
INSERT INTO cron.job_run_details (jobid, runid, database, username, command, status, return_message, start_time, end_time)
SELECT jobid, 999999, database, username, command, 'failed', 'ERROR: something broke', now(), now()
FROM cron.job WHERE jobname = 'timepart-cleanup@' || current_database();
SELECT is((SELECT partition_name FROM timepart.check_alerts() WHERE alert_type = 'job_missing'),
          'timepart-stats@' || current_database(), 'a scheduled job missing from pg_cron raises job_missing');
SELECT matches((SELECT message FROM timepart.open_alerts WHERE alert_type = 'job_failed'), 'something broke',
               'a job whose last run failed raises job_failed with the error');
SELECT ok(EXISTS (SELECT 1 FROM timepart.check_alerts(NULL, now() + interval '9 days') WHERE alert_type = 'job_overdue'
                  AND partition_name = 'timepart-maintain@' || current_database()), 'a weekly job not run for 9 days is overdue');

SELECT is(timepart.unschedule_jobs(), 4, 'unschedule_jobs removes the jobs still in pg_cron');

SELECT * FROM finish();
ROLLBACK;
