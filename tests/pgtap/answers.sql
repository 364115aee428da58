-- Right answers (#27): full zone names only; partitions partitioned in turn measured over
-- their leaves; a timestamp key's oldest and newest in the table's time zone, whatever
-- the session's; retention that fails or does not run shows in alerts, health and metrics.
\ir setup.psql
SELECT plan(25);

-- 1. Time zones: a region name or UTC; abbreviations and fixed offsets are refused, saying what they are.
CREATE TABLE tz_ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT throws_ok($$SELECT timepart.manage('tz_ev', time_zone => 'IST')$$, '22023',
                 'time zone "IST" is an abbreviation, not a zone', 'IST is refused (PostgreSQL reads it as Israel''s +02)');
SELECT throws_like($$SELECT timepart.manage('tz_ev', time_zone => 'PST')$$, '%abbreviation%', 'PST is refused (a fixed -08 all summer)');
SELECT throws_like($$SELECT timepart.manage('tz_ev', time_zone => 'Etc/GMT+5')$$, '%fixed offset%', 'Etc/GMT+5 is refused (UTC-05)');
SELECT throws_like($$SELECT timepart.manage('tz_ev', time_zone => 'EST5EDT')$$, '%time zone "EST5EDT"%',
                   'a POSIX-style name is refused (or unknown: newer tzdata keeps it in backward only)');
SELECT throws_like($$SELECT timepart.manage('tz_ev', time_zone => 'Mars/Olympus')$$, '%unknown time zone%', 'an unknown name is refused');
SELECT is((SELECT count(*) FROM timepart.config), 0::bigint, 'a refused manage registers nothing');
DO $$
BEGIN
    PERFORM timepart.manage('tz_ev', time_zone => 'IST');
EXCEPTION WHEN OTHERS THEN
    DECLARE d text; h text;
    BEGIN
        GET STACKED DIAGNOSTICS d = PG_EXCEPTION_DETAIL, h = PG_EXCEPTION_HINT;
        IF d NOT LIKE '%UTC+02:00%' OR h NOT LIKE '%Asia/Kolkata%' THEN
            RAISE EXCEPTION 'detail % / hint %', d, h;
        END IF;
    END;
END $$;
SELECT pass('the refusal says what IST means (UTC+02:00) and names a region instead');
SELECT lives_ok($$SELECT timepart.manage('tz_ev', time_zone => 'Asia/Kolkata', as_of => '2024-03-15')$$, 'a region name is taken');
SELECT is((SELECT time_zone FROM timepart.config WHERE parent = 'tz_ev'::regclass), 'Asia/Kolkata', 'and kept');
CREATE TABLE legacy (id bigint, ts timestamptz NOT NULL);
SELECT throws_like($$SELECT * FROM timepart.migrate_plan('legacy', 'ts', time_zone => 'CET')$$,
                   '%time zone "CET"%', 'migrate_plan refuses CET too');

-- 2. A partition partitioned in turn (by LIST) is measured over its leaves.
CREATE TABLE sub_ev (id bigint, ts timestamptz NOT NULL, region text NOT NULL, payload text) PARTITION BY RANGE (ts);
SELECT timepart.manage('sub_ev', '1 month', 1, as_of => now()) IS NOT NULL;
DO $$
DECLARE
    m timestamptz := date_trunc('month', now());
    next_m timestamptz := date_trunc('month', now()) + interval '1 month';
    cur text := (SELECT partition_name FROM timepart.partition_stats('sub_ev') WHERE range_start = date_trunc('month', now()));
BEGIN
    EXECUTE format('DROP TABLE %I', cur);
    EXECUTE format('CREATE TABLE sub_cur PARTITION OF sub_ev FOR VALUES FROM (%L) TO (%L) PARTITION BY LIST (region)', m, next_m);
    CREATE TABLE sub_cur_eu PARTITION OF sub_cur FOR VALUES IN ('eu');
    CREATE TABLE sub_cur_us PARTITION OF sub_cur FOR VALUES IN ('us');
    INSERT INTO sub_ev SELECT g, date_trunc('month', now()) + (g % 1000) * interval '1 minute',
                              CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, repeat('x', 200)
    FROM generate_series(1, 100000) g;
END $$;
ANALYZE sub_cur_eu, sub_cur_us;
SELECT cmp_ok((SELECT record_count FROM timepart.partition_stats('sub_ev') WHERE partition_name = 'sub_cur'), '>', 90000::bigint,
              'its rows are its leaves'' (100,000; estimated: it is over the exact-count size)');
SELECT cmp_ok((SELECT size_mb FROM timepart.partition_stats('sub_ev') WHERE partition_name = 'sub_cur'), '>', 20::numeric,
              'its size is its leaves'' (about 25 MB)');
SELECT is((SELECT exact FROM timepart.partition_stats('sub_ev') WHERE partition_name = 'sub_cur'), false,
          'and exact says they are estimates');
TRUNCATE sub_cur_eu, sub_cur_us;
INSERT INTO sub_ev SELECT g, date_trunc('month', now()) + g * interval '1 minute', CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END
FROM generate_series(1, 500) g;
SELECT is((SELECT record_count FROM timepart.partition_stats('sub_ev') WHERE partition_name = 'sub_cur'), 500::bigint,
          'a small one is counted exactly over its leaves');

-- 3. A timestamp key: oldest and newest are moments in the table's time zone, in any session.
CREATE TABLE local_ev (id bigint, ts timestamp NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('local_ev', '1 month', 1, time_zone => 'America/New_York', as_of => now()) IS NOT NULL;
INSERT INTO local_ev VALUES (1, date_trunc('month', now() AT TIME ZONE 'America/New_York') + interval '1 day 23 hours 30 minutes');
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT is((SELECT newest_record FROM timepart.partition_stats('local_ev') WHERE record_count = 1),
          (date_trunc('month', now() AT TIME ZONE 'America/New_York') + interval '1 day 23 hours 30 minutes') AT TIME ZONE 'America/New_York',
          'newest is 23:30 in New York, read in a Tokyo session');
SELECT ok((SELECT newest_record >= range_start AND newest_record < range_end FROM timepart.partition_stats('local_ev')
           WHERE record_count = 1), 'and inside its partition''s bounds');
SET LOCAL TimeZone = 'UTC';
SELECT is((SELECT newest_record FROM timepart.partition_stats('local_ev') WHERE record_count = 1),
          (date_trunc('month', now() AT TIME ZONE 'America/New_York') + interval '1 day 23 hours 30 minutes') AT TIME ZONE 'America/New_York',
          'the same moment in a UTC session');

-- 4. Retention that cannot remove a partition (a foreign key references it) is a failure everyone sees.
CREATE TABLE kept (id bigint, ts timestamptz NOT NULL, PRIMARY KEY (id, ts)) PARTITION BY RANGE (ts);
SELECT timepart.manage('kept', '1 month', 1, '2 months', as_of => '2024-01-15') IS NOT NULL;
CREATE TABLE kept_refs (id bigint, ts timestamptz, FOREIGN KEY (id, ts) REFERENCES kept_2024_01 (id, ts));
SELECT is(timepart.cleanup('kept', NULL, false, '2024-06-15')->>'success', 'false', 'cleanup cannot drop the referenced month');
SELECT is((SELECT severity FROM timepart.check_alerts('kept', '2024-06-15') WHERE alert_type = 'retention_failing'), 'critical',
          'retention_failing is a critical alert');
SELECT is(timepart.health('kept', '2024-06-15')->>'status', 'critical', 'health is critical');
SELECT is((SELECT value FROM timepart.metrics('2024-06-15') WHERE name = 'timepart_retention_failures_total'
           AND labels->>'table' = 'public.kept'), 1::float8, 'the failure is counted in the metrics');
DROP TABLE kept_refs;
SELECT is(timepart.cleanup('kept', NULL, false, '2024-06-15')->>'success', 'true', 'once the reference is gone, cleanup succeeds');
SELECT ok(NOT EXISTS (SELECT 1 FROM timepart.check_alerts('kept', '2024-06-15') WHERE alert_type = 'retention_failing'),
          'and the alert resolves');

-- 5. Retention that never runs is overdue after a month and a partition.
CREATE TABLE old_ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('old_ev', '1 month', 1, '1 month', as_of => '2024-01-15') IS NOT NULL;
SELECT timepart.maintain('old_ev', NULL, '2024-04-15') IS NOT NULL;
SELECT is((SELECT alert_type FROM timepart._evaluate('old_ev'::regclass, '2024-04-15') WHERE alert_type LIKE 'retention%'), NULL,
          'a month past the boundary is not overdue yet (the cleanup job is monthly)');
SELECT is((SELECT value FROM timepart._evaluate('old_ev'::regclass, '2024-06-15') WHERE alert_type = 'retention_overdue'), 2::numeric,
          'three months on, the two months older than a month and a partition past it are overdue');
