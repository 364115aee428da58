-- change_interval(): existing partitions stay, new ones follow the new interval from the
-- end of the last one; stats, alerts and retention keep working across the mixed layout.
\ir setup.psql
SELECT plan(12);
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 2, '2 months', as_of => '2024-03-15');

SELECT throws_ok($$SELECT timepart.change_interval('ev', '36 hours')$$, '22023',
                 'partition interval must be a whole number of days or of months', 'an invalid interval is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"partition_interval": "1 day"}')$$, '22023',
                 'unknown or fixed setting(s): partition_interval', 'configure points elsewhere for the interval');
SELECT is(timepart.change_interval('ev', '7 days', '2024-03-15')->'created_partitions', '[]'::jsonb,
          'nothing new is due while the monthly partitions cover the premake horizon');
SELECT is((SELECT interval_anchor FROM timepart.config WHERE parent = 'ev'::regclass), '2024-06-01 00:00+00'::timestamptz,
          'the new interval counts from the end of the last partition');
SELECT is(timepart.maintain('ev', 2, '2024-05-25')->'created_partitions', '["ev_2024_06_01", "ev_2024_06_08"]'::jsonb,
          'new partitions are weekly from the end of the last monthly one');
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass), 6::bigint, 'the monthly partitions stay');
SELECT is((SELECT string_agg(period, ',' ORDER BY range_start) FROM timepart.partition_stats('ev') WHERE NOT is_default),
          '2024_03,2024_04,2024_05,2024_06_01,2024_06_08', 'stats label each partition by its own bounds');
SELECT throws_ok($$SELECT timepart.create_partition('ev', '2024-06-10', '2024-06-17')$$, '22023',
                 'partition range is not aligned with the interval of public.ev', 'new periods align to the anchor');
SELECT is(timepart.create_partition('ev', '2024-06-15', '2024-06-22'), 'public.ev_2024_06_15', 'an aligned week can be created');
SELECT is(timepart.health('ev', '2024-06-05')->>'status', 'healthy', 'health understands the mixed layout');
SELECT is(timepart.cleanup('ev', NULL, false, '2024-06-05')->'dropped_partitions', '[["ev_2024_03", 0]]'::jsonb,
          'retention keeps working: a month ending before the boundary goes');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 day')$$, '22023', 'table public.ev is already managed with interval 7 days',
                 'manage does not change the interval behind your back');

SELECT * FROM finish();
ROLLBACK;
