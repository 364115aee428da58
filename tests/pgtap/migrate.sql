-- migrate_plan() and every refusal of migrate(). The procedure's copy COMMITs, so it
-- cannot run in this rolled-back transaction; tests/py/test_migrate.py runs it for real.
\ir setup.psql
SELECT plan(33);

CREATE TABLE ev (id bigint, created_at timestamptz NOT NULL, kind text, PRIMARY KEY (id, created_at));
INSERT INTO ev SELECT g, timestamptz '2024-01-31 00:00+00' + g * interval '1 hour', 'k' FROM generate_series(0, 99) g;

SELECT results_eq(
    $$SELECT partition_name, range_start, range_end, estimated_rows, rows_from FROM timepart.migrate_plan('ev', 'created_at')$$,
    $$VALUES ('ev_2024_01'::text, '2024-01-01 00:00+00'::timestamptz, '2024-02-01 00:00+00'::timestamptz, 24::bigint, 'counted'::text),
             ('ev_2024_02', '2024-02-01 00:00+00', '2024-03-01 00:00+00', 76, 'counted')$$,
    'the plan lists one partition per month with data and counts the rows of a small table');
SELECT results_eq(
    $$SELECT partition_name, estimated_rows FROM timepart.migrate_plan('ev', 'created_at', '1 day')$$,
    $$VALUES ('ev_2024_01_31'::text, 24::bigint), ('ev_2024_02_01', 24), ('ev_2024_02_02', 24), ('ev_2024_02_03', 24), ('ev_2024_02_04', 4)$$,
    'a daily plan names partitions YYYY_MM_DD');
SELECT results_eq(
    $$SELECT partition_name FROM timepart.migrate_plan('ev', 'created_at', '1 month', 'America/New_York')$$,
    $$VALUES ('ev_2024_01'::text), ('ev_2024_02')$$,
    'periods are cut in the time zone asked for');
SELECT ok((SELECT bool_and(estimated_seconds >= 0) FROM timepart.migrate_plan('ev', 'created_at')),
          'every planned partition has a time estimate');

CREATE TABLE ev_date (day date NOT NULL, n int);
INSERT INTO ev_date SELECT date '2023-12-30' + g, g FROM generate_series(0, 4) g;
SELECT results_eq($$SELECT partition_name, estimated_rows FROM timepart.migrate_plan('ev_date', 'day')$$,
                  $$VALUES ('ev_date_2023_12'::text, 2::bigint), ('ev_date_2024_01', 3)$$,
                  'a date key is planned by its local day');
CREATE TABLE ev_ts (at timestamp NOT NULL);
INSERT INTO ev_ts VALUES ('2024-03-31 23:30'), ('2024-04-01 00:30');
SELECT results_eq($$SELECT partition_name, estimated_rows FROM timepart.migrate_plan('ev_ts', 'at')$$,
                  $$VALUES ('ev_ts_2024_03'::text, 1::bigint), ('ev_ts_2024_04', 1)$$,
                  'a timestamp key is planned by its local time');
CREATE TABLE ev_empty (at timestamptz);
SELECT is((SELECT count(*) FROM timepart.migrate_plan('ev_empty', 'at')), 0::bigint, 'an empty table needs no data partitions');

-- Big tables are estimated from pg_stats instead of counted.
CREATE TABLE ev_big (at timestamptz NOT NULL);
INSERT INTO ev_big SELECT timestamptz '2024-01-01 00:00+00' + g * interval '1 minute' FROM generate_series(0, 129599) g;
ANALYZE ev_big;
SELECT is((SELECT min(rows_from) FROM timepart.migrate_plan('ev_big', 'at')), 'statistics', 'a big table''s rows come from statistics');
SELECT ok((SELECT sum(estimated_rows) BETWEEN 120000 AND 140000 FROM timepart.migrate_plan('ev_big', 'at')),
          'the estimates add up to about the table''s rows');

-- Refusals, by migrate_plan and by CALL migrate (both refuse before the first COMMIT).
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('no_such_table', 'created_at')$$, '42P01',
                 'relation "no_such_table" does not exist', 'a table that does not exist is refused');
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev', 'happened_at')$$, '42703',
                 'column "happened_at" of table public.ev does not exist', 'a missing key column is refused');
SELECT throws_ok($$CALL timepart.migrate('ev', 'happened_at')$$, '42703',
                 'column "happened_at" of table public.ev does not exist', 'migrate refuses a missing key column');
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev', 'kind')$$, '22023',
                 'key column public.ev.kind is not a time column', 'a text key is refused');
SELECT throws_ok($$CALL timepart.migrate('ev', 'id')$$, '22023',
                 'key column public.ev.id is not a time column', 'migrate refuses a bigint key');

CREATE TABLE ev_nulls (at timestamptz);
INSERT INTO ev_nulls VALUES ('2024-01-01'), (NULL);
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev_nulls', 'at')$$, '23502',
                 'key column public.ev_nulls.at has NULL values', 'a key with NULLs is refused');
SELECT throws_ok($$CALL timepart.migrate('ev_nulls', 'at')$$, '23502',
                 'key column public.ev_nulls.at has NULL values', 'migrate refuses a key with NULLs');

CREATE TABLE ev_parted (at timestamptz NOT NULL) PARTITION BY RANGE (at);
SELECT throws_ok($$CALL timepart.migrate('ev_parted', 'at')$$, '22023',
                 'table public.ev_parted is already partitioned', 'an already partitioned table is refused');

CREATE TABLE ev_pk (id bigint PRIMARY KEY, at timestamptz NOT NULL);
SELECT throws_ok($$CALL timepart.migrate('ev_pk', 'at')$$, '0A000',
                 'a primary key or unique constraint of public.ev_pk lacks the key column at',
                 'a primary key without the key column is refused');
CREATE TABLE ev_parent (id bigint, at timestamptz NOT NULL, PRIMARY KEY (id, at));
CREATE TABLE ev_child (parent_id bigint, parent_at timestamptz, FOREIGN KEY (parent_id, parent_at) REFERENCES ev_parent);
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev_parent', 'at')$$, '2BP01',
                 'table public.ev_parent is referenced by foreign keys', 'a table that foreign keys point at is refused');
CREATE TABLE ev_uniq (email text UNIQUE, at timestamptz NOT NULL);
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev_uniq', 'at')$$, '0A000',
                 'a primary key or unique constraint of public.ev_uniq lacks the key column at',
                 'a unique constraint without the key column is refused');

SELECT throws_ok($$CALL timepart.migrate('ev', 'created_at', batch_size => 0)$$, '22023',
                 'batch_size must be at least 1', 'a batch size below 1 is refused');
SELECT throws_ok($$CALL timepart.migrate('ev', 'created_at', '1 hour')$$, '22023',
                 'partition interval must be a whole number of days or of months', 'an hourly interval is refused');
SELECT throws_ok($$CALL timepart.migrate('ev', 'created_at', premake => 0)$$, '22023',
                 'premake must be between 1 and 1000', 'a premake of 0 is refused');
SELECT throws_ok($$SELECT * FROM timepart.migrate_plan('ev', 'created_at', '1 month', 'Mars/Olympus')$$, '22023',
                 'unknown time zone "Mars/Olympus"', 'an unknown time zone is refused');

-- What cannot be carried over is refused up front, each saying why; migrate_carried lists it.
CREATE TABLE ev_used (id bigint, at timestamptz NOT NULL);
CREATE FUNCTION ev_used_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM ev_used; END;
SELECT throws_ok($$CALL timepart.migrate('ev_used', 'at')$$, '2BP01', 'table public.ev_used has what a migration cannot carry over',
                 'a function whose body names the table is refused');
SELECT is((SELECT how FROM timepart.migrate_carried('ev_used') WHERE item = 'function'),
          'refused: its body would still name the old table', 'migrate_carried says why');
CREATE TABLE ev_stats (a int, b int, at timestamptz NOT NULL);
CREATE STATISTICS ev_stats_ab ON a, b FROM ev_stats;
ALTER TABLE ev_stats ALTER COLUMN a SET STATISTICS 300;
SELECT results_eq($$SELECT item, name, carried FROM timepart.migrate_carried('ev_stats') WHERE item LIKE '%statistic%' ORDER BY 1$$,
                  $$VALUES ('extended statistics', 'ev_stats_ab', false), ('statistics target', 'a', true)$$,
                  'statistics targets are carried; extended statistics are listed as not carried');
SELECT lives_ok($$SELECT * FROM timepart.migrate_plan('ev_stats', 'at')$$, 'what is only listed as not carried does not refuse');
SELECT throws_ok($$SELECT * FROM timepart.migrate_carried(NULL)$$, '22004', 'source table must not be NULL', 'migrate_carried refuses NULL');

-- A trigger is re-created on the copy where its definition names the table, however its
-- name, columns and condition read (each here looks like " ON ev_trg ").
CREATE TABLE ev_trg (id int, "c ON ev_trg d" int, at timestamptz NOT NULL);
CREATE TABLE ev_trg_copy (LIKE ev_trg);
CREATE FUNCTION trg_fn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER "t ON ev_trg z" BEFORE INSERT OR UPDATE OF "c ON ev_trg d", id ON ev_trg
    FOR EACH ROW WHEN (NEW IS DISTINCT FROM NULL OR ' ON ev_trg ' <> '') EXECUTE FUNCTION trg_fn();
CREATE TRIGGER plain AFTER DELETE OR TRUNCATE ON ev_trg FOR EACH STATEMENT EXECUTE FUNCTION trg_fn();
SELECT results_eq($$SELECT s FROM timepart._migrate_carry_statements('ev_trg', 'ev_trg_copy') s WHERE s LIKE 'CREATE%' ORDER BY 1$$,
    $$VALUES ('CREATE TRIGGER "t ON ev_trg z" BEFORE INSERT OR UPDATE OF "c ON ev_trg d", id ON ev_trg_copy FOR EACH ROW '
              'WHEN (((new.* IS DISTINCT FROM NULL) OR ('' ON ev_trg ''::text <> ''''::text))) EXECUTE FUNCTION trg_fn()'),
             ('CREATE TRIGGER plain AFTER DELETE OR TRUNCATE ON ev_trg_copy FOR EACH STATEMENT EXECUTE FUNCTION trg_fn()')$$,
    'a trigger is carried to the copy whatever its name, columns and condition say');
SELECT lives_ok($$SELECT timepart._migrate_carry('ev_trg', 'ev_trg_copy')$$, 'and the statements run');

SELECT ok(NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname LIKE 'timepart_migrate%')
          AND NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname LIKE 'timepart_migrate%')
          AND NOT EXISTS (SELECT 1 FROM timepart.migrations),
          'the refusals changed nothing: no stage schema, no trigger, no progress row');
SELECT ok(obj_description('timepart.migrate_plan(regclass, name, interval, text)'::regprocedure, 'pg_proc') IS NOT NULL
          AND obj_description('timepart.migrate(regclass, name, interval, integer, integer, interval, text)'::regprocedure, 'pg_proc') IS NOT NULL,
          'migrate_plan and migrate carry a comment');

SELECT * FROM finish();
ROLLBACK;
