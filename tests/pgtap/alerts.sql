-- Alert rules: each fires on a situation built for it, then resolves when fixed.
\ir setup.psql
SELECT plan(29);
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 3, as_of => '2024-04-15');
SELECT timepart.create_partition('ev', '2024-02-01', '2024-03-01');
SELECT timepart.create_partition('ev', '2024-03-01', '2024-04-01');
INSERT INTO ev SELECT g, '2024-02-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 10) g;
INSERT INTO ev SELECT g, '2024-03-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 30) g;
SELECT timepart.snapshot_stats();

CREATE FUNCTION pg_temp.open(kind text) RETURNS bigint LANGUAGE sql AS
    $$ SELECT count(*) FROM timepart.alerts WHERE alert_type = kind AND resolved_at IS NULL $$;
CREATE FUNCTION pg_temp.fires(kind text, at timestamptz DEFAULT '2024-04-15') RETURNS boolean LANGUAGE sql AS
    $$ SELECT EXISTS (SELECT 1 FROM timepart.check_alerts('ev', at) WHERE alert_type = kind) $$;

SELECT is(pg_temp.fires('high_growth'), false, 'growth of 200% does not fire with a threshold of 300%')
FROM timepart.configure('ev', '{"alert_growth_ratio": 3}');
SELECT is(pg_temp.fires('high_growth'), true, 'growth of 200% month over month fires at 50%')
FROM timepart.configure('ev', '{"alert_growth_ratio": 0.5}');
SELECT is((SELECT severity || ' ' || value || ' ' || threshold FROM timepart.open_alerts WHERE alert_type = 'high_growth'),
          'info 2.000 0.5', 'high_growth is info, with its value and threshold');

SELECT is(pg_temp.fires('partition_too_many_rows'), true, 'a partition over the row threshold fires')
FROM timepart.configure('ev', '{"alert_max_rows": 20}');
SELECT is((SELECT partition_name FROM timepart.open_alerts WHERE alert_type = 'partition_too_many_rows'), 'ev_2024_03',
          'it names the partition');
SELECT is(pg_temp.fires('partition_too_large'), true, 'a partition over the size threshold fires')
FROM timepart.configure('ev', '{"alert_max_size_bytes": 1000}');
SELECT is(pg_temp.fires('old_partitions'), true, 'partitions older than the age threshold fire')
FROM timepart.configure('ev', '{"alert_old_age": "1 month"}');
SELECT is(pg_temp.fires('insufficient_future_partitions'), true, 'fewer future partitions than wanted fires')
FROM timepart.configure('ev', '{"alert_min_future": 5}');
SELECT is(pg_temp.fires('missing_current_partition', '2031-01-15'), true, 'no partition for the current period fires');
SELECT is((SELECT severity FROM timepart.open_alerts WHERE alert_type = 'missing_current_partition'), 'critical',
          'a missing current partition is critical');
INSERT INTO ev VALUES (0, '2035-01-01');
SELECT is(pg_temp.fires('rows_in_default_partition'), true, 'rows in the default partition fire');
-- A template registered but never back-filled (as after a back-fill that gave up on a lock).
INSERT INTO timepart.index_templates (parent, suffix, columns) VALUES ('ev', 'ts_idx', 'ts');
SELECT is(pg_temp.fires('missing_index'), true, 'a partition missing a templated index fires');
SELECT is((SELECT count(*) FROM timepart.open_alerts WHERE alert_type = 'missing_index'), 7::bigint,
          'one alert per partition without the index');

-- Lifecycle: no duplicates; new ones are announced once.
SELECT is((SELECT count(*) FROM timepart.check_alerts('ev', '2024-04-15') WHERE is_new), 0::bigint,
          'a second check announces nothing new');
SELECT is((SELECT count(*) FROM timepart.alerts WHERE alert_type = 'high_growth' AND resolved_at IS NULL), 1::bigint,
          'an open alert is not duplicated');
SELECT cmp_ok((SELECT last_seen FROM timepart.alerts WHERE alert_type = 'high_growth' AND resolved_at IS NULL), '>',
              (SELECT first_seen FROM timepart.alerts WHERE alert_type = 'high_growth' AND resolved_at IS NULL), 'last_seen moves on');

-- Each resolves when fixed.
SELECT timepart.configure('ev', '{"alert_growth_ratio": 3, "alert_max_rows": 1000, "alert_max_size_bytes": 5368709120,
                                  "alert_old_age": "10 years", "alert_min_future": 2}');
DELETE FROM ev WHERE ts = '2035-01-01';
SELECT timepart.add_index_template('ev', 'ts_idx', 'ts');
SELECT is(pg_temp.fires('high_growth'), false, 'high_growth resolves when the threshold is raised');
SELECT is(pg_temp.open('high_growth'), 0::bigint, 'it is no longer open');
SELECT isnt((SELECT resolved_at FROM timepart.alerts WHERE alert_type = 'high_growth' ORDER BY id DESC LIMIT 1), NULL,
            'its resolution time is kept');
SELECT is(pg_temp.open('partition_too_many_rows'), 0::bigint, 'partition_too_many_rows resolves');
SELECT is(pg_temp.open('partition_too_large'), 0::bigint, 'partition_too_large resolves');
SELECT is(pg_temp.open('old_partitions'), 0::bigint, 'old_partitions resolves');
SELECT is(pg_temp.open('insufficient_future_partitions'), 0::bigint, 'insufficient_future_partitions resolves');
SELECT is(pg_temp.open('rows_in_default_partition'), 0::bigint, 'rows_in_default_partition resolves');
SELECT is(pg_temp.open('missing_index'), 0::bigint, 'missing_index resolves when back-filled');
SELECT is(pg_temp.open('missing_current_partition'), 0::bigint, 'missing_current_partition resolves at a covered moment');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE operation_type = 'check_alerts'), 11::bigint, 'every check is logged');
SELECT throws_ok($$SELECT * FROM timepart.check_alerts('pg_class')$$, '22023', 'table pg_class is not managed by timepart',
                 'an unmanaged table is refused');

-- A default partition that is itself partitioned has no heap of its own: its rows are counted.
CREATE TABLE subdef (ts timestamptz NOT NULL, k int NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('subdef', '1 month', 1, default_partition => false, as_of => '2024-03-15');
CREATE TABLE subdef_default PARTITION OF subdef DEFAULT PARTITION BY LIST (k);
CREATE TABLE subdef_default_any PARTITION OF subdef_default DEFAULT;
INSERT INTO subdef VALUES ('2031-01-01', 1);
SELECT is((SELECT value FROM timepart._evaluate('subdef', '2024-03-15') WHERE alert_type = 'rows_in_default_partition'), 1::numeric,
          'rows in a partitioned default partition are counted');

SELECT * FROM finish();
ROLLBACK;
