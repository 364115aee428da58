-- partition_stats / snapshot_stats / the seed's get_email_events_partition_stats.
\ir setup.psql
SELECT plan(21);
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 1, as_of => '2024-03-15');
INSERT INTO ev SELECT g, '2024-03-01'::timestamptz + g * interval '1 hour' FROM generate_series(1, 100) g;

SELECT is((SELECT string_agg(period, ',' ORDER BY range_start NULLS FIRST) FROM timepart.partition_stats('ev')),
          'default,2024_03,2024_04', 'one row per partition, periods labelled YYYY_MM and default');
SELECT is((SELECT exact FROM timepart.partition_stats('ev') WHERE period = '2024_03'), false,
          'a past partition with no snapshot is an estimate');
-- Without a snapshot, oldest and newest come from the ANALYZE histogram's ends; a role
-- that may not read the table sees none.
ANALYZE ev;
SELECT results_eq($$SELECT oldest_record, newest_record, exact FROM timepart.partition_stats('ev') WHERE period = '2024_03'$$,
    $$VALUES ('2024-03-01 01:00+00'::timestamptz, '2024-03-05 04:00+00'::timestamptz, false)$$,
    'an estimate takes oldest and newest from the histogram');
SELECT is((SELECT ends FROM timepart._statistic_ends('ev_2024_03'::regclass, 'ts')), (SELECT ends FROM timepart._histogram_ends('public', 'ev_2024_03', 'ts')),
          'pg_statistic read directly gives the histogram ends pg_stats gives');
CREATE ROLE stats_watcher IN ROLE partition_monitor;
SET LOCAL ROLE stats_watcher;
SELECT results_eq($$SELECT count(*) FILTER (WHERE oldest_record IS NULL AND newest_record IS NULL), count(*) FROM timepart.partition_stats('ev')$$,
    $$VALUES (3::bigint, 3::bigint)$$, 'a monitor that may not read the table sees no key values');
RESET ROLE;
SELECT is(timepart.snapshot_stats(), 3, 'snapshot_stats stores one row per partition');
SELECT results_eq($$SELECT record_count, oldest_record, newest_record, exact FROM timepart.partition_stats('ev') WHERE period = '2024_03'$$,
    $$VALUES (100::bigint, '2024-03-01 01:00+00'::timestamptz, '2024-03-05 04:00+00'::timestamptz, true)$$,
    'after the snapshot a sealed partition has exact rows, oldest and newest');
SELECT is((SELECT count(*) FROM timepart.stats_history WHERE record_count = 100 AND snapshot_date = current_date), 1::bigint,
          'the history keeps today''s exact figures');
INSERT INTO ev VALUES (1000, '2024-03-20');
SELECT is((SELECT exact FROM timepart.partition_stats('ev') WHERE period = '2024_03'), false,
          'a row written after the snapshot makes the figures estimates again');
SELECT timepart.snapshot_stats();
SELECT is((SELECT record_count FROM timepart.partition_stats('ev') WHERE period = '2024_03'), 101::bigint,
          'the next snapshot counts it again');
SELECT is((SELECT details->>'counted' FROM timepart.maintenance_log WHERE operation_type = 'snapshot_stats' ORDER BY id DESC LIMIT 1),
          '1', 'only the changed partition was recounted');

-- A live partition (now, not 2024) under 10 MB is counted exactly on every read.
CREATE TABLE live (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('live', '1 day', 1);
INSERT INTO live SELECT now() FROM generate_series(1, 7);
SELECT results_eq($$SELECT record_count, exact FROM timepart.partition_stats('live') WHERE range_start <= now() AND range_end > now()$$,
    $$VALUES (7::bigint, true)$$, 'a small live partition is counted exactly');
SELECT is((SELECT index_count FROM timepart.partition_stats('ev') WHERE period = '2024_03'), 0, 'index_count is reported');
-- An empty live partition is sized from the catalog (its indexes are not opened), to the
-- byte: its indexes, its TOAST table and the TOAST table's index.
SELECT timepart.add_index_template('live', 'ts_idx', 'ts');
CREATE TABLE live_notes (ts timestamptz NOT NULL, note text, PRIMARY KEY (ts)) PARTITION BY RANGE (ts);
SELECT timepart.manage('live_notes', '1 day', 2);
SELECT is((SELECT array_agg((SELECT e.bytes FROM timepart._estimated_bytes(p.partition_oid, 0) e) ORDER BY p.partition_name)
           FROM (SELECT * FROM timepart._partitions('live') UNION ALL SELECT * FROM timepart._partitions('live_notes')) p WHERE p.range_start > now()),
          (SELECT array_agg(pg_total_relation_size(p.partition_oid) ORDER BY p.partition_name)
           FROM (SELECT * FROM timepart._partitions('live') UNION ALL SELECT * FROM timepart._partitions('live_notes')) p WHERE p.range_start > now()),
          'an empty partition''s size from the catalog is what pg_total_relation_size says');
-- An unlogged partition's indexes have init forks the catalog does not show: measured.
CREATE TABLE unlogged_ev (ts timestamptz NOT NULL PRIMARY KEY) PARTITION BY RANGE (ts);
SELECT timepart.manage('unlogged_ev', '1 day', 2);
SELECT timepart.configure('unlogged_ev', '{"partition_unlogged": true}');
SELECT timepart.create_partition('unlogged_ev', '2099-01-01', '2099-01-02');
SELECT is((SELECT round(size_mb * 1048576) FROM timepart.partition_stats('unlogged_ev') WHERE partition_name = 'unlogged_ev_2099_01_01'),
          round(round(pg_total_relation_size('unlogged_ev_2099_01_01') / 1048576.0, 2) * 1048576),
          'an unlogged partition is sized by PostgreSQL (its init forks count)');
-- A BRIN index keeps a free space map the catalog does not show: such partitions are measured.
SELECT timepart.add_index_template('live', 'ts_brin', 'ts', method => 'brin');
SELECT is((SELECT array_agg(round(s.size_mb * 1048576)) FROM timepart.partition_stats('live') s WHERE s.range_start > now()),
          (SELECT array_agg(round(round(pg_total_relation_size(p.partition_oid) / 1048576.0, 2) * 1048576))
           FROM timepart._partitions('live') p WHERE p.range_start > now()),
          'a partition with a BRIN index is sized by PostgreSQL');

-- Bounds are read from the catalog as printed: MINVALUE and MAXVALUE, the default
-- partition, timestamp and date keys in the table's time zone.
CREATE TABLE hb (ts timestamp NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE hb_old PARTITION OF hb FOR VALUES FROM (MINVALUE) TO ('2024-01-01');
CREATE TABLE hb_jan PARTITION OF hb FOR VALUES FROM ('2024-01-01') TO ('2024-02-01 12:30');
CREATE TABLE hb_rest PARTITION OF hb FOR VALUES FROM ('2024-02-01 12:30') TO (MAXVALUE);
CREATE TABLE hb_def PARTITION OF hb DEFAULT;
SELECT results_eq($$SELECT partition_name, range_start, range_end, is_default FROM timepart._partitions('hb', 'Europe/Berlin')$$,
    $$VALUES ('hb_def'::name, NULL::timestamptz, NULL::timestamptz, true),
             ('hb_old', '-infinity', '2023-12-31 23:00+00', false),
             ('hb_jan', '2023-12-31 23:00+00', '2024-02-01 11:30+00', false),
             ('hb_rest', '2024-02-01 11:30+00', 'infinity', false)$$,
    'timestamp bounds, MINVALUE, MAXVALUE and the default partition are read from the catalog');
CREATE TABLE hd (d date NOT NULL) PARTITION BY RANGE (d);
CREATE TABLE "hd 1" PARTITION OF hd FOR VALUES FROM ('2024-03-01') TO ('2024-03-02');
SELECT results_eq($$SELECT partition_name, range_start, range_end FROM timepart._partitions('hd', 'America/New_York')$$,
    $$VALUES ('hd 1'::name, '2024-03-01 05:00+00'::timestamptz, '2024-03-02 05:00+00'::timestamptz)$$,
    'date bounds are midnight in the table''s time zone');

-- The seed's call, verbatim.
SELECT timepart.create_email_events_table('public', '2024-03-15');
SELECT lives_ok($$SELECT * FROM get_email_events_partition_stats() ORDER BY size_mb DESC$$,
                'SELECT * FROM get_email_events_partition_stats() ORDER BY size_mb DESC runs');
SELECT is((SELECT count(*) FROM get_email_events_partition_stats()), 8::bigint, 'it lists every email_events partition');
SELECT throws_ok($$SELECT * FROM timepart.partition_stats('pg_class')$$, '22023', 'table pg_class is not managed by timepart',
                 'an unmanaged table is refused');

SELECT * FROM finish();
ROLLBACK;
