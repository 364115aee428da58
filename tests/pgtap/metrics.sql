-- timepart.metrics: Prometheus-shaped samples (name, labels, value) for every promised
-- metric, with values that follow the table; growth(); the bounded maintenance log.
\ir setup.psql
SELECT plan(24);

CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 3, as_of => now());
INSERT INTO ev SELECT g, date_trunc('month', now()) + g * interval '1 minute' FROM generate_series(1, 250) g;
INSERT INTO ev_default SELECT 0, date_trunc('month', now()) + interval '10 years';   -- far past the premake horizon
SELECT timepart.snapshot_stats();
SELECT count(*) FROM timepart.check_alerts('ev');

CREATE TEMP TABLE m AS SELECT * FROM timepart.metrics;
SELECT is((SELECT array_agg(DISTINCT name ORDER BY name) FROM m),
          ARRAY['timepart_default_partition_rows', 'timepart_future_partitions', 'timepart_health_status',
                'timepart_last_maintenance_success_timestamp_seconds', 'timepart_maintenance_failures_total',
                'timepart_open_alerts', 'timepart_partition_rows', 'timepart_partition_size_bytes',
                'timepart_retention_failures_total'],
          'every table-level metric is there (job samples need scheduled jobs; retention success once cleanup succeeded)');
SELECT is((SELECT value FROM m WHERE name = 'timepart_partition_rows' AND labels->>'partition' = 'ev_' || to_char(now(), 'YYYY_MM')),
          250::float8, 'the current partition''s rows');
SELECT is((SELECT labels->>'exact' FROM m WHERE name = 'timepart_partition_rows' AND labels->>'partition' = 'ev_' || to_char(now(), 'YYYY_MM')),
          'true', 'labelled exact');
SELECT is((SELECT labels->>'period' FROM m WHERE name = 'timepart_partition_rows' AND labels->>'partition' = 'ev_' || to_char(now(), 'YYYY_MM')),
          to_char(now(), 'YYYY_MM'), 'and with its period');
SELECT is((SELECT labels->>'table' FROM m WHERE name = 'timepart_partition_rows' LIMIT 1), 'public.ev', 'and its table');
SELECT ok((SELECT value > 0 FROM m WHERE name = 'timepart_partition_size_bytes' AND labels->>'partition' = 'ev_' || to_char(now(), 'YYYY_MM')),
          'sizes are in bytes');
SELECT is((SELECT value FROM m WHERE name = 'timepart_future_partitions'), 3::float8, 'three future partitions');
SELECT is((SELECT value FROM m WHERE name = 'timepart_default_partition_rows'), 1::float8, 'one row waits in the default partition');
SELECT is((SELECT value FROM m WHERE name = 'timepart_health_status'), 1::float8, 'a row in the default partition: warning (1)');
SELECT is((SELECT value FROM m WHERE name = 'timepart_open_alerts' AND labels->>'type' = 'rows_in_default_partition'), 1::float8,
          'the open alert is counted by table, type and severity');
SELECT is((SELECT labels FROM m WHERE name = 'timepart_open_alerts' AND labels->>'type' = 'rows_in_default_partition'),
          '{"table": "public.ev", "type": "rows_in_default_partition", "severity": "warning"}'::jsonb, 'with those labels');
SELECT ok((SELECT abs(value - extract(epoch FROM now())) < 60 FROM m WHERE name = 'timepart_last_maintenance_success_timestamp_seconds'),
          'the last successful maintenance is a Unix time');
SELECT is((SELECT value FROM m WHERE name = 'timepart_maintenance_failures_total'), 0::float8, 'no failed maintenance yet');

-- Things go wrong: next month's partition detached by hand (maintain cannot make it again
-- under a taken name), then the current one dropped.
SELECT 'ev_' || to_char(now(), 'YYYY_MM') AS cur, 'ev_' || to_char(now() + interval '1 month', 'YYYY_MM') AS nxt \gset
ALTER TABLE ev DETACH PARTITION :"nxt";
SELECT timepart.maintain('ev', 3, now())->>'success' AS maintained \gset
SELECT is(:'maintained'::text, 'false', 'maintain fails while a detached table holds the partition''s name');
CREATE TEMP TABLE m2 AS SELECT * FROM timepart.metrics;
SELECT is((SELECT value FROM m2 WHERE name = 'timepart_maintenance_failures_total'), 1::float8, 'the failure is counted');
SELECT is((SELECT value FROM m2 WHERE name = 'timepart_health_status'), 1::float8, 'failing maintenance: warning (1)');
DROP TABLE :"cur";
SELECT is((SELECT value FROM timepart.metrics WHERE name = 'timepart_health_status'), 2::float8,
          'no partition for the current period: critical (2)');

-- Who may read it.
CREATE ROLE tp_mon IN ROLE partition_monitor;
CREATE ROLE tp_nobody;
SET LOCAL ROLE tp_mon;
SELECT ok((SELECT count(*) > 0 FROM timepart.metrics), 'partition_monitor reads the metrics');
RESET ROLE;
SET LOCAL ROLE tp_nobody;
SELECT throws_ok('SELECT * FROM timepart.metrics', '42501', NULL, 'a role without partition_monitor does not');
RESET ROLE;

-- growth(): the statistics history per table and day.
SELECT is((SELECT record_count FROM timepart.growth('ev') WHERE snapshot_date = current_date), 251::bigint,
          'growth() sums the day''s snapshot, the default partition''s row included');

-- The bounded log: 90 days unless timepart.log_retention says otherwise.
ALTER TABLE timepart.maintenance_log DISABLE TRIGGER maintenance_log_written_by_timepart;
UPDATE timepart.maintenance_log SET created_at = now() - interval '100 days' WHERE operation_type = 'manage';
ALTER TABLE timepart.maintenance_log ENABLE TRIGGER maintenance_log_written_by_timepart;
SELECT format('ALTER DATABASE %I SET timepart.log_retention = ''200 days''', current_database()) \gexec
SELECT is(timepart.purge_log(), 0::bigint, 'with a 200-day retention, 100-day-old rows stay');
SET LOCAL timepart.log_retention = '1 day';
SELECT is(timepart.purge_log(), 0::bigint, 'a session''s own setting does not shorten it (the database''s counts)');
RESET timepart.log_retention;
SELECT format('ALTER DATABASE %I RESET timepart.log_retention', current_database()) \gexec
SELECT is(timepart.purge_log(), (SELECT count(*) FROM timepart.maintenance_log WHERE created_at < now() - interval '90 days'),
          'by default, rows older than 90 days go');
SELECT throws_ok($$SELECT timepart.purge_log(NULL, now() + interval '1 year')$$, '22023', NULL, 'a future moment is refused');

SELECT * FROM finish();
ROLLBACK;
