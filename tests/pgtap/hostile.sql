-- Hostile input: planted look-alike functions, NULLs, infinity, out-of-range moments,
-- absurd intervals. Every case: a clear error or a correct result, nothing else changed.
\ir setup.psql
SELECT plan(23);
CREATE TABLE ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 2, as_of => '2024-03-15');

-- Look-alikes of catalog functions, first on the search_path: none may be picked up.
CREATE SCHEMA evil;
CREATE FUNCTION evil.format(text, regclass) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evil.format was called'; END $$;
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evil.format was called'; END $$;
CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evil.now was called'; END $$;
CREATE FUNCTION evil.btrim(text, text) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evil.btrim was called'; END $$;
CREATE FUNCTION evil.quote_ident(text) RETURNS text LANGUAGE plpgsql AS
    $$ BEGIN RAISE EXCEPTION 'evil.quote_ident was called'; END $$;
CREATE FUNCTION evil.count(anyelement) RETURNS bigint LANGUAGE sql AS $$ SELECT -1::bigint $$;
SET search_path = evil, pg_catalog, public;
SELECT is(timepart.maintain('public.ev', 3, '2024-03-15')->'created_partitions', '["ev_2024_06"]'::jsonb,
          'maintain ignores look-alike functions on the caller''s search_path');
SELECT is(timepart.cleanup('public.ev', '1 month', true, '2024-06-15')->'dropped_partitions', '[["ev_2024_03", 0], ["ev_2024_04", 0]]'::jsonb,
          'cleanup too');
SELECT is(timepart.health('public.ev', '2024-03-15')->>'status', 'healthy', 'health too');
SELECT is((SELECT count(*) FROM timepart.partition_stats('public.ev')), 5::bigint, 'partition_stats too');
SELECT lives_ok($$SELECT * FROM timepart.check_alerts('public.ev', '2024-03-15')$$, 'check_alerts too');
RESET search_path;

-- NULLs, infinity, out-of-range moments, absurd intervals.
SELECT throws_ok($$SELECT timepart.maintain('ev', NULL, NULL)$$, '22023', 'as_of must be a finite moment', 'a NULL moment is refused');
SELECT throws_ok($$SELECT timepart.maintain('ev', NULL, 'infinity')$$, '22023', 'as_of must be a finite moment', 'an infinite moment is refused');
SELECT throws_ok($$SELECT timepart.cleanup('ev', NULL, NULL)$$, '22023', 'as_of must be a finite moment and dry_run true or false',
                 'a NULL dry_run is refused');
SELECT matches(timepart.maintain('ev', NULL, '2250-01-01')->'errors'->>0, 'maintain would create more than 1002 partitions of public.ev',
               'a moment that would need thousands of partitions is refused, and reported');
SELECT matches(timepart.maintain('ev', NULL, '294270-01-01')->'errors'->>0, 'more than 1002 partitions|out of range',
               'a moment at the end of the timestamp range is refused, and reported');
SELECT throws_ok($$SELECT timepart.manage('ev', '10000 years')$$, '22023', 'partition interval is too long', 'an absurd interval is refused');
SELECT throws_ok($$SELECT timepart.manage('ev', '1 month', 100000)$$, '22023', 'premake must be between 1 and 1000', 'an absurd premake is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', NULL)$$, '22023', 'settings must be a JSON object', 'NULL settings are refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"lock_timeout": "1 year"}')$$, '22023', 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute',
                 'an absurd lock budget is refused');
SELECT throws_ok($$SELECT timepart.add_index_template('ev', NULL, 'ts')$$, '22023', 'invalid index template suffix "<NULL>"',
                 'a NULL template suffix is refused');
SELECT throws_ok($$SELECT timepart.add_index_template('ev', 'x_idx', 'ts); DROP TABLE ev; --')$$, '22023',
                 'invalid index template definition', 'a template that tries a second statement is refused');
SELECT throws_ok($$SELECT timepart.cleanup('ev', '1 month -29 days')$$, '22023', 'retention must be positive',
                 'a retention whose parts have opposite signs is refused');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention": "1 month -29 days"}')$$, '22023', 'retention must be positive',
                 'also as a setting');
SELECT ok(timepart._retention_boundary(timepart._config('ev'::regclass), '1 month -40 days', '2024-03-15') <= '2024-03-01'::timestamptz,
          'the retention boundary never passes the start of the current period');
SELECT throws_ok($$SELECT timepart.configure('ev', '{"retention_action": "archive", "archive_schema": "timepart"}')$$, '22023',
                 'archive_schema must be a schema of its own', 'timepart''s own schema is no archive');
SELECT throws_ok($$SELECT timepart.manage('ev', '30 days')$$, '22023', 'table public.ev is already managed with interval 1 mon',
                 '30 days is not taken for 1 month');
SET datestyle = 'SQL, DMY';
SET timezone = 'Asia/Kolkata';
SELECT is(timepart.create_partition('ev', '2024-03-01 00:00+00', '2024-04-01 00:00+00'), 'public.ev_2024_03',
          'bounds are read right whatever the session''s DateStyle and TimeZone');
RESET datestyle;
RESET timezone;
SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'ev'::regclass), 5::bigint, 'no refused call changed the partitions');

SELECT * FROM finish();
ROLLBACK;
