-- cleanup(): drop, detach, archive; dry run; the boundary on both sides; refusals.
\ir setup.psql
SELECT plan(26);

-- email_events from January 2023, 12 months kept, moment fixed at 2024-03-15.
SELECT timepart.create_email_events_table('public', '2023-01-15');
SELECT timepart.maintain('email_events', 1, '2024-03-15');
-- These cases test the boundary, not the slicing (robust.sql does): a budget so long that
-- every call retires everything due, however slow the machine.
SELECT timepart.configure('email_events', '{"lock_timeout": "1 minute"}');
INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', '2023-01-01'::timestamptz + g * interval '1 hour'
FROM generate_series(0, 24 * 59 - 1) g;  -- January and February 2023
INSERT INTO email_events_default (workspace_id, campaign_id, lead_id, event_type, created_at)
SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', '2022-06-01';  -- older than any partition

-- Dry run: the plan, nothing changed.
SELECT is(timepart.cleanup('email_events', NULL, true, '2024-03-15')->'dropped_partitions',
          '[["email_events_2023_01", 744], ["email_events_2023_02", 672]]'::jsonb,
          'a dry run lists the partitions wholly older than 12 months with their row counts');
SELECT has_table('email_events_2023_01', 'the dry run dropped nothing');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE operation_type = 'cleanup_dry_run'), 1::bigint,
          'the dry run is logged as one row');

-- The real run.
SELECT is(timepart.cleanup('email_events', NULL, false, '2024-03-15')->'dropped_partitions',
          '[["email_events_2023_01", 744], ["email_events_2023_02", 672]]'::jsonb,
          'the real run drops January and February 2023 and returns their row counts');
SELECT hasnt_table('email_events_2023_01', 'email_events_2023_01 is gone');
SELECT has_table('email_events_2023_03', 'email_events_2023_03 (ends after the boundary 2023-03-01) stays');
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE operation_type = 'cleanup_partition' AND success
           AND details->>'action' = 'drop' AND (details->>'record_count')::bigint > 0 AND details ? 'size_bytes'), 2::bigint,
          'one log row per dropped partition with its action, row count and size');
SELECT is((SELECT count(*) FROM email_events_default), 1::bigint, 'the old row in the default partition is not deleted');
SELECT is((SELECT details->>'default_rows_past_retention' FROM timepart.maintenance_log
           WHERE operation_type = 'cleanup' ORDER BY id DESC LIMIT 1), '1', 'it is reported instead');
SELECT is(timepart.cleanup('email_events', NULL, false, '2024-03-15')->'dropped_partitions', '[]'::jsonb,
          'a second run removes nothing');

-- Never the current, a future or the default partition: a retention shorter than one
-- partition is refused, and the shortest one allowed keeps the current partition.
SELECT throws_ok($$SELECT timepart.cleanup('email_events', '1 day', false, '2024-03-15')$$, '22023',
                 'retention is shorter than one partition of public.email_events', 'a 1-day retention of a monthly table is refused');
SELECT timepart.cleanup('email_events', '1 month', false, '2024-03-15');
SELECT has_table('email_events_2024_03', 'the current partition stays with a 1-month retention');
SELECT has_table('email_events_2024_04', 'a future partition stays');
SELECT has_table('email_events_default', 'the default partition stays');
SELECT hasnt_table('email_events_2024_01', 'a partition ending a whole period before the current one is removed');

-- Refusals change nothing.
SELECT throws_ok($$SELECT timepart.cleanup('email_events', '0')$$, '22023', 'retention must be positive',
                 'a zero interval is refused');
SELECT throws_ok($$SELECT timepart.cleanup('email_events', '-1 month')$$, '22023', 'retention must be positive',
                 'a negative interval is refused');
SELECT has_table('email_events_2024_02', 'refused calls removed nothing');

-- The boundary on both sides, on a daily table: 10 days kept at 2024-03-15 puts it at 2024-03-05 00:00.
CREATE TABLE daily (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('daily', '1 day', 1, '10 days', false, as_of => '2024-03-03');
SELECT timepart.maintain('daily', 1, '2024-03-15');
SELECT is(timepart.cleanup('daily', NULL, false, '2024-03-15')->'dropped_partitions',
          '[["daily_2024_03_03", 0], ["daily_2024_03_04", 0]]'::jsonb, 'daily partitions ending at or before the boundary go');
SELECT has_table('daily_2024_03_05', 'the partition starting at the boundary stays');

CREATE TABLE odd (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('odd', '1 day', 1, '10 days', false, as_of => '2024-03-15');
CREATE TABLE odd_manual PARTITION OF odd FOR VALUES FROM ('2024-03-04 00:00:01+00') TO ('2024-03-05 00:00:01+00');
SELECT is(timepart.cleanup('odd', NULL, false, '2024-03-15')->'tables'->0->'kept'->0->>'partition', 'odd_manual',
          'a partition ending a second after the boundary is kept and reported');

-- detach and archive.
SELECT timepart.configure('email_events', '{"retention_action": "detach"}');
SELECT timepart.create_partition('email_events', '2023-12-01', '2024-01-01');
SELECT is(timepart.cleanup('email_events', '1 month', false, '2024-03-15')->'dropped_partitions',
          '[["email_events_2023_12", 0]]'::jsonb, 'detach reports the partition it detached');
SELECT is((SELECT relispartition FROM pg_class WHERE relname = 'email_events_2023_12'), false,
          'detach keeps an old partition as a standalone table');
SELECT timepart.configure('email_events', '{"retention_action": "archive", "archive_schema": "old events"}');
SELECT timepart.maintain('email_events', 1, '2024-03-15');
SELECT timepart.create_partition('email_events', '2023-10-01', '2023-11-01');
SELECT is(timepart.cleanup('email_events', '1 month', false, '2024-03-15')->'dropped_partitions',
          '[["email_events_2023_10", 0]]'::jsonb, 'archive reports the partition it moved');
SELECT has_table('old events', 'email_events_2023_10', 'archive moves it into the archive schema, created when missing');

-- A table with no retention is left alone.
CREATE TABLE keep_all (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('keep_all', '1 month', 1, as_of => '2020-01-15');
SELECT is(timepart.cleanup('keep_all', NULL, false, '2024-03-15')->'tables'->0->>'skipped', 'no retention configured',
          'a table with no retention configured is left alone');

SELECT * FROM finish();
ROLLBACK;
