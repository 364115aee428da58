-- Monitors see no more than their own SELECT would show them, and a table's owner runs its
-- own cleanup without rights on timepart's private tables.
\ir setup.psql
SELECT plan(10);
CREATE ROLE tp_mon_owner LOGIN IN ROLE partition_admin;
CREATE ROLE tp_mon_reader LOGIN IN ROLE partition_monitor;
CREATE ROLE tp_mon_plain LOGIN IN ROLE partition_monitor;
GRANT CREATE ON SCHEMA public TO tp_mon_owner;
SET ROLE tp_mon_owner;
CREATE TABLE public.mon_ev (id bigint, tenant text NOT NULL, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('public.mon_ev', '1 month', 1, '2 months', as_of => '2024-03-15') IS NOT NULL;
INSERT INTO public.mon_ev VALUES (1, 'a', '2024-03-02 10:00'), (2, 'b', '2024-03-20 11:00');
GRANT SELECT ON public.mon_ev TO tp_mon_reader;
RESET ROLE;
-- March 2024 is sealed: its exact figures come from the snapshot.
SELECT timepart.snapshot_stats('2024-05-20') > 0;

-- 1. A monitor that may SELECT the table sees its exact key values; once row security
-- hides rows from it, it sees none (the timestamps of rows its policy hides are data).
SET ROLE tp_mon_reader;
SELECT is((SELECT newest_record FROM timepart.partition_stats('public.mon_ev') WHERE partition_name = 'mon_ev_2024_03'),
          '2024-03-20 11:00+00'::timestamptz, 'a reader of every row sees the newest key value');
RESET ROLE;
SET ROLE tp_mon_owner;
ALTER TABLE public.mon_ev ENABLE ROW LEVEL SECURITY;
CREATE POLICY only_a ON public.mon_ev FOR SELECT USING (tenant = 'a');
SELECT timepart.sync_partitions('public.mon_ev') IS NOT NULL;
RESET ROLE;
SET ROLE tp_mon_reader;
SELECT is((SELECT count(*) FROM public.mon_ev), 1::bigint, 'its own SELECT sees one row of two');
SELECT is((SELECT newest_record FROM timepart.partition_stats('public.mon_ev') WHERE partition_name = 'mon_ev_2024_03'),
          NULL::timestamptz, 'so statistics show it no key value');
SELECT is((SELECT record_count FROM timepart.partition_stats('public.mon_ev') WHERE partition_name = 'mon_ev_2024_03'),
          2::bigint, 'counts it sees (what pg_class shows everyone)');
RESET ROLE;
SET ROLE tp_mon_plain;
SELECT is((SELECT oldest_record FROM timepart.partition_stats('public.mon_ev') WHERE partition_name = 'mon_ev_2024_03'),
          NULL::timestamptz, 'a monitor without SELECT sees no key value');
RESET ROLE;
SET ROLE tp_mon_owner;
SELECT timepart.configure('public.mon_ev', '{"monitor_sees_values": true}') IS NOT NULL;
RESET ROLE;
SET ROLE tp_mon_plain;
SELECT is((SELECT oldest_record FROM timepart.partition_stats('public.mon_ev') WHERE partition_name = 'mon_ev_2024_03'),
          '2024-03-02 10:00+00'::timestamptz, 'unless the owner allows it');

-- 2. Migration checksums are sums of row hashes: not for monitors.
SELECT throws_ok($$SELECT source_checksum FROM timepart.migrations$$, '42501', NULL, 'a monitor cannot read migration checksums');
SELECT lives_ok($$SELECT id, state, rows_copied, target_rows FROM timepart.migrations$$, 'but reads a migration''s progress');
RESET ROLE;

-- 3. The owner's own cleanup, with a partition past retention (it reads the partition's
-- count from the snapshot, which only timepart's owner may read).
SET ROLE tp_mon_owner;
SELECT is(timepart.cleanup('public.mon_ev', as_of => '2024-06-15')->'dropped_partitions',
          '[["mon_ev_2024_03", 2]]'::jsonb, 'a table owner cleans up its own table, with the counts');
SELECT throws_ok($$SELECT * FROM timepart.stats_history$$, '42501', NULL, 'without reading the snapshot table itself');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
