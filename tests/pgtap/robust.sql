-- Maintenance that never stalls and never touches what it should not, on real tables'
-- shapes and mistakes: years of daily partitions, a stray ancient row, user triggers,
-- hand-made partitions, a partition detached by hand, a table dropped by hand, calls with
-- fewer arguments, NULLs, foreign-table partitions.
\ir setup.psql
SELECT plan(38);

-- Years of daily partitions (made by hand here, fast): the guard counts what a run
-- would create, not the table's history.
CREATE TABLE daily (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
DO $$ BEGIN
    FOR i IN 0..1099 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF daily FOR VALUES FROM (%L) TO (%L)', 'daily_' || to_char(d, 'YYYY_MM_DD'), d, d + 1)
        FROM (SELECT '2021-01-01'::date + i AS d) x;
    END LOOP;
END $$;
SELECT is(timepart.manage('daily', '1 day', 3, as_of => '2024-01-04')->>'success', 'true',
          'a daily table with 1,100 partitions is managed');
SELECT is(timepart.maintain('daily', NULL, '2024-01-10')->'created_partitions',
          '["daily_2024_01_10", "daily_2024_01_11", "daily_2024_01_12", "daily_2024_01_13", "daily_2024_01_08", "daily_2024_01_09"]'::jsonb,
          'and maintained days later: only the missing days are made, the current and later ones first');

-- A stray ancient row in the default partition does not stop maintenance; it stays.
INSERT INTO daily_default VALUES (1, '1970-01-01');
SELECT is(timepart.maintain('daily', NULL, '2024-01-12')->>'success', 'true', 'a 1970 row in the default partition stops nothing');
SELECT ok(to_regclass('daily_2024_01_15') IS NOT NULL, 'the new days are made');
SELECT is((SELECT count(*) FROM daily_default), 1::bigint, 'the stray row stays where it is');
SELECT ok(EXISTS (SELECT 1 FROM timepart._evaluate('daily', '2024-01-12') e WHERE e.alert_type = 'rows_in_default_partition'),
          'and is reported');
SELECT matches(timepart.maintain('daily', NULL, '2034-01-12')->'errors'->>0, 'maintain would create more than 1003 partitions of public.daily',
                 'a moment ten years past the newest partition is still refused');

-- cleanup refuses a moment after the next period, and a retention shorter than a partition.
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL, note text) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 2, '12 months', as_of => now());
SELECT throws_ok($$SELECT timepart.cleanup('ev', NULL, false, now() + interval '10 years')$$, '22023',
                 'cleanup refuses a moment past the partitions of public.ev', 'cleanup ten years ahead is refused');
SELECT throws_ok($$SELECT timepart.cleanup('ev', '1 day')$$, '22023', 'retention is shorter than one partition of public.ev',
                 'a retention shorter than one partition is refused by cleanup');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention": "1 day"}')$$, '22023', 'retention is shorter than one partition',
                 'and by configure');

-- manage() called again changes only what it is given.
SELECT timepart.manage('ev', premake => 3);
SELECT is((SELECT format('%s %s %s', premake, retention, partition_interval) FROM timepart.config WHERE parent = 'ev'::regclass),
          '3 1 year 1 mon', 'manage(ev, premake => 3) keeps the retention and the interval');
SELECT timepart.manage('ev');
SELECT is((SELECT format('%s %s', premake, retention) FROM timepart.config WHERE parent = 'ev'::regclass), '3 1 year',
          'manage(ev) with nothing else changes nothing');

-- Row moves never fire a user's triggers: refused, reported, rows and attachments intact.
CREATE TABLE attachments (event_id bigint);
CREATE FUNCTION drop_attachments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN DELETE FROM attachments WHERE event_id = OLD.id; RETURN OLD; END $$;
CREATE TRIGGER ev_attachments AFTER DELETE ON ev FOR EACH ROW EXECUTE FUNCTION drop_attachments();
DROP TABLE ev_default;
SELECT timepart.maintain('ev', 3, now());
INSERT INTO ev SELECT 7, date_trunc('month', now()) + interval '6 months';
INSERT INTO attachments VALUES (7);
SELECT ok(NOT (timepart.maintain('ev', 6, now())->>'success')::boolean, 'maintain reports the move it will not make');
SELECT is((SELECT count(*) FROM ev_default), 1::bigint, 'the row waits in the default partition still');
SELECT is((SELECT count(*) FROM attachments), 1::bigint, 'the row trigger never fired: its attachment is there');
SELECT ok((SELECT error FROM timepart.maintenance_log WHERE operation_type = 'create_partition' AND NOT success ORDER BY id DESC LIMIT 1)
          LIKE '%it has triggers%', 'the log says why');
DROP TRIGGER ev_attachments ON ev;
CREATE FUNCTION count_deletes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO attachments VALUES (-1); RETURN NULL; END $$;
CREATE TRIGGER ev_default_deletes AFTER DELETE ON ev_default FOR EACH STATEMENT EXECUTE FUNCTION count_deletes();
SELECT ok(NOT (timepart.maintain('ev', 6, now())->>'success')::boolean, 'a statement trigger on the default partition refuses the move too');
SELECT is((SELECT count(*) FROM attachments WHERE event_id = -1), 0::bigint, 'and never fired');
DROP TRIGGER ev_default_deletes ON ev_default;
SELECT is(timepart.maintain('ev', 6, now())->>'success', 'true', 'without triggers the row moves');

-- A hand-made partition with bounds off the interval: the holes next to it are filled exactly.
CREATE TABLE hm (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
CREATE TABLE hm_special PARTITION OF hm FOR VALUES FROM ('2024-04-10 00:00+00') TO ('2024-04-20 00:00+00');
SELECT timepart.manage('hm', '1 month', 2, as_of => '2024-03-15');
SELECT is((SELECT string_agg(partition_name || ' ' || range_start || ' ' || range_end, ', ' ORDER BY range_start)
           FROM timepart._partitions('hm') WHERE range_start >= '2024-04-01' AND range_start < '2024-05-01'),
          'hm_2024_04_01_2024_04_10 2024-04-01 00:00:00+00 2024-04-10 00:00:00+00, hm_special 2024-04-10 00:00:00+00 2024-04-20 00:00:00+00, '
          'hm_2024_04_20_2024_05_01 2024-04-20 00:00:00+00 2024-05-01 00:00:00+00', 'April is covered around the hand-made partition');
SELECT ok(NOT EXISTS (SELECT 1 FROM timepart._evaluate('hm', '2024-04-25') e WHERE e.severity = 'critical'),
          'health has nothing critical in the days after it');

-- A partition detached by hand makes every maintain run fail: an alert says so.
SELECT 'ev_' || to_char(now() + interval '1 month', 'YYYY_MM') AS nxt \gset
ALTER TABLE ev DETACH PARTITION :"nxt";
SELECT ok(NOT (timepart.maintain('ev', NULL, now())->>'success')::boolean, 'maintain fails while the detached table holds the name');
SELECT ok(EXISTS (SELECT 1 FROM timepart._evaluate('ev', now()) e WHERE e.alert_type = 'maintenance_failing' AND e.message LIKE '%already exists%'),
          'the maintenance_failing alert fires with the error');
SELECT is(timepart.health('ev')->>'status', 'warning', 'health is not healthy');
DROP TABLE :"nxt";
SELECT timepart.maintain('ev', NULL, now());
SELECT ok(NOT EXISTS (SELECT 1 FROM timepart._evaluate('ev', now()) e WHERE e.alert_type = 'maintenance_failing'),
          'it resolves with the next successful run');

-- A managed table dropped by hand: its configuration is forgotten, and that is logged.
CREATE TABLE gone (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('gone', '1 month', 1, as_of => now());
SELECT count(*) FROM timepart.check_alerts('gone', now());
INSERT INTO gone VALUES (now() + interval '5 years');   -- waits in the default partition: an open alert
SELECT count(*) FROM timepart.check_alerts('gone', now());
SELECT ok(EXISTS (SELECT 1 FROM timepart.alerts WHERE parent_table = 'public.gone' AND resolved_at IS NULL), 'the table has an open alert');
DROP TABLE gone;
SELECT count(*) FROM timepart.check_alerts();
SELECT ok(NOT EXISTS (SELECT 1 FROM timepart.alerts WHERE parent_table = 'public.gone' AND resolved_at IS NULL),
          'a dropped table''s open alerts are resolved');
SELECT is((SELECT count(*) FROM timepart.config c WHERE NOT EXISTS (SELECT 1 FROM pg_class r WHERE r.oid = c.parent)), 0::bigint,
          'check_alerts forgets the configuration of a dropped table');
SELECT ok(EXISTS (SELECT 1 FROM timepart.maintenance_log WHERE operation_type = 'forget'), 'and logs it');

-- NULLs and absurd values are refused with a clear message.
SELECT is(timepart.health('ev', NULL)->'issues', '["health evaluation failed: as_of must be a finite moment"]'::jsonb,
          'health (which never raises) says a NULL moment is no moment, and invents no alert');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"default_partition": null}')$$, '22023', 'default_partition must be true or false',
                 'a NULL default_partition is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention": "300000 years"}')$$, '22023', 'retention is too long',
                 'a retention of 300,000 years is refused');
SELECT throws_ok($$SELECT timepart.add_index_template('ev', 'nope', 'no_such_column')$$, '42703',
                 'index template "nope" does not fit public.ev: column "no_such_column" does not exist', 'a template on a missing column is refused');

-- Retiring many partitions holds the parent's lock for at most the lock budget per call;
-- the rest is left for the next call (cleanup_each commits between calls).
CREATE TABLE old_daily (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
DO $$ BEGIN
    FOR i IN 0..59 LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF old_daily FOR VALUES FROM (%L) TO (%L)',
                       'old_daily_' || to_char('2020-01-01'::date + i, 'YYYY_MM_DD'), '2020-01-01'::date + i, '2020-01-01'::date + i + 1);
    END LOOP;
END $$;
SELECT timepart.manage('old_daily', '1 day', 1, '7 days', as_of => '2020-03-01');
SELECT timepart.configure('old_daily', '{"lock_timeout": "1 ms"}');
CREATE TEMP TABLE first_call AS SELECT timepart.cleanup('old_daily', NULL, false, '2020-03-01') AS r;
SELECT ok((SELECT jsonb_array_length(r->'dropped_partitions') >= 1 AND (r->>'left_partitions')::int > 0 FROM first_call),
          'one call retires within the lock budget and says how many are left');
DO $$ BEGIN
    FOR i IN 1..100 LOOP
        EXIT WHEN (timepart.cleanup('old_daily', NULL, false, '2020-03-01')->>'left_partitions')::int = 0;
    END LOOP;
END $$;
SELECT is((SELECT count(*) FROM timepart._partitions('old_daily') WHERE range_end <= '2020-02-23'), 0::bigint,
          'calling again until nothing is left retires them all');

-- Foreign-table partitions are skipped by templates, stats and retention.
CREATE EXTENSION file_fdw;
CREATE SERVER files FOREIGN DATA WRAPPER file_fdw;
CREATE FOREIGN TABLE ev_archive_2020 PARTITION OF ev FOR VALUES FROM ('2020-01-01') TO ('2020-02-01')
    SERVER files OPTIONS (filename '/dev/null', format 'csv');
SELECT lives_ok($$SELECT timepart.add_index_template('ev', 'note_idx', 'note')$$, 'an index template skips a foreign partition');
SELECT is(timepart.cleanup('ev')->>'success', 'true', 'cleanup works with a foreign partition past retention');
SELECT ok(to_regclass('ev_archive_2020') IS NOT NULL, 'and leaves it');

SELECT * FROM finish();
ROLLBACK;
