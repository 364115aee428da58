-- maintain(): current and future periods, gaps, rows out of the default partition.
\ir setup.psql
SELECT plan(20);

CREATE TABLE ev (id bigint, ts timestamptz NOT NULL, note text) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 2, as_of => '2024-03-15 12:00+00');

SELECT is((SELECT string_agg(format('%s %s %s', partition_name, range_start, range_end), ', ' ORDER BY range_start)
           FROM timepart._partitions('ev') WHERE NOT is_default),
    'ev_2024_03 2024-03-01 00:00:00+00 2024-04-01 00:00:00+00, ev_2024_04 2024-04-01 00:00:00+00 2024-05-01 00:00:00+00, '
    'ev_2024_05 2024-05-01 00:00:00+00 2024-06-01 00:00:00+00',
    'current period and 2 ahead exist, with month bounds');

-- Time passes: two months later, maintain keeps 2 ahead.
SELECT is(timepart.maintain('ev', NULL, '2024-05-20 00:00+00')->'created_partitions', '["ev_2024_06", "ev_2024_07"]'::jsonb,
          'two months later maintain adds the next two periods');
SELECT ok((SELECT timepart.maintain('ev', NULL, '2024-05-20 00:00+00') ?& ARRAY['success', 'created_partitions',
          'dropped_partitions', 'errors', 'execution_time_ms']), 'maintain returns the seed''s /maintain shape');
SELECT is(timepart.maintain('ev', NULL, '2024-05-20 00:00+00')->'created_partitions', '[]'::jsonb, 'a second run is a no-op');
SELECT is(timepart.maintain('ev', 4, '2024-05-20 00:00+00')->'created_partitions', '["ev_2024_08", "ev_2024_09"]'::jsonb,
          'a premake argument overrides the configured one');

-- A gap: a partition dropped in the middle is recreated.
DROP TABLE ev_2024_04;
SELECT is(timepart.maintain('ev', NULL, '2024-05-20 00:00+00')->'created_partitions', '["ev_2024_04"]'::jsonb, 'a gap is filled');

-- Rows that landed in the default partition move to their own partitions.
DROP TABLE ev_2024_07;
INSERT INTO ev SELECT g, '2024-07-01 00:00+00'::timestamptz + g * interval '1 hour', 'x' FROM generate_series(0, 99) g;
INSERT INTO ev VALUES (1000, '2031-01-01 00:00+00', 'far future');
SELECT is((SELECT count(*) FROM ev_default), 101::bigint, 'rows without a partition land in the default partition');
SELECT is(timepart.maintain('ev', NULL, '2024-05-20 00:00+00')->'moved_rows', '100'::jsonb, 'maintain moves the July rows');
SELECT is((SELECT count(*) FROM ev_2024_07), 100::bigint, 'July''s rows are in ev_2024_07');
SELECT is((SELECT count(*) FROM ev_default), 1::bigint, 'a row beyond the premake horizon stays in the default partition');
SELECT is((SELECT count(*) FROM ev), 101::bigint, 'no row was lost');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE operation_type = 'maintain' AND success), 7::bigint,
          'every maintain run is logged');

-- A daily table keyed on timestamp, and a weekly one keyed on date.
CREATE TABLE daily (ts timestamp NOT NULL) PARTITION BY RANGE (ts);
SELECT is(timepart.manage('daily', '1 day', 2, NULL, false, as_of => '2024-02-28 23:00+00')->'created_partitions',
          '["daily_2024_02_28", "daily_2024_02_29", "daily_2024_03_01"]'::jsonb, 'a daily table gets one partition a day, no default');
SELECT is((SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'daily_2024_02_29'),
          $$FOR VALUES FROM ('2024-02-29 00:00:00') TO ('2024-03-01 00:00:00')$$, 'a timestamp key gets timestamp bounds');
CREATE TABLE weekly (d date NOT NULL) PARTITION BY RANGE (d);
SELECT is(timepart.manage('weekly', '7 days', 1, as_of => '2024-03-14 00:00+00')->'created_partitions',
          '["weekly_default", "weekly_2024_03_11", "weekly_2024_03_18"]'::jsonb, 'weekly periods start on Monday');
SELECT is((SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'weekly_2024_03_11'),
          $$FOR VALUES FROM ('2024-03-11') TO ('2024-03-18')$$, 'a date key gets date bounds');
CREATE TABLE quarterly (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT is(timepart.manage('quarterly', '3 months', 1, NULL, false, as_of => '2024-05-15 00:00+00')->'created_partitions',
          '["quarterly_2024_04", "quarterly_2024_07"]'::jsonb, 'quarters start in January, April, July, October');
CREATE TABLE berlin (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('berlin', '1 month', 1, NULL, false, '100ms', 'Europe/Berlin', '2024-03-15 00:00+00');
SELECT is((SELECT range_start FROM timepart._partitions('berlin') ORDER BY 1 LIMIT 1), '2024-02-29 23:00+00'::timestamptz,
          'a table in Europe/Berlin starts its months at local midnight');

-- All tables at once.
SELECT is(jsonb_array_length(timepart.maintain(NULL, NULL, '2024-07-15 00:00+00')->'created_partitions') > 0, true,
          'maintain() with no table maintains every managed table');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE NOT success), 0::bigint, 'no run failed');

SELECT * FROM finish();
ROLLBACK;
