-- health(): the seed's /health shape reaches healthy, warning, critical and error; summary().
\ir setup.psql
SELECT plan(15);
CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('ev', '1 month', 3, as_of => '2024-04-15');

SELECT ok(timepart.health('ev', '2024-04-15') ?& ARRAY['status', 'issues', 'recommendations', 'partition_count',
          'total_size_mb', 'oldest_partition', 'newest_partition'], 'health has the seed''s /health keys');
SELECT is(timepart.health('ev', '2024-04-15')->>'status', 'healthy', 'a maintained table is healthy');
SELECT is(timepart.health('ev', '2024-04-15')->'partition_count', '4'::jsonb, 'partition_count leaves out the default partition');
SELECT is(timepart.health('ev', '2024-04-15')->>'oldest_partition', 'ev_2024_04', 'oldest_partition is named');
SELECT is(timepart.health('ev', '2024-04-15')->>'newest_partition', 'ev_2024_07', 'newest_partition is named');
SELECT is(timepart.health('ev', '2024-06-15')->>'status', 'warning', 'one future partition left is a warning');
SELECT is(timepart.health('ev', '2024-06-15')->'issues', '["public.ev has 1 future partition(s), fewer than 2"]'::jsonb,
          'the issue says what is wrong');
SELECT is(timepart.health('ev', '2024-09-15')->>'status', 'critical', 'no current partition is critical');
SELECT matches(timepart.health('ev', '2024-09-15')->'issues'->>0, 'covers the current period starting 2024-09-01',
               'and names the period that has no partition');
SELECT is(timepart.health('pg_class')->>'status', 'error', 'an evaluation that fails gives error, not an exception');
SELECT matches(timepart.health('pg_class')->'issues'->>0, 'not managed', 'and says why');
SELECT is(timepart.health(NULL, '2024-04-15')->>'status', 'healthy', 'health() covers every managed table');
-- A second table in a schema that needs quotes: every table is listed once, in name order,
-- and summary's stats cover them table by table.
CREATE SCHEMA "Zed ""Q""";
CREATE TABLE "Zed ""Q"""."Ev Two" (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('"Zed ""Q"""."Ev Two"', '1 month', 3, as_of => '2024-04-15');
SELECT is(timepart.health(NULL, '2024-04-15')->'tables',
          (SELECT jsonb_agg(t ORDER BY t) FROM unnest(ARRAY['public.ev', '"Zed ""Q"""."Ev Two"']) t),
          'health lists every managed table by name');
SELECT is((SELECT jsonb_agg(DISTINCT s->>'parent_table' ORDER BY s->>'parent_table') FROM jsonb_array_elements(timepart.summary(NULL, '2024-04-15')->'stats') s),
          (SELECT jsonb_agg(t ORDER BY t) FROM unnest(ARRAY['public.ev', '"Zed ""Q"""."Ev Two"']) t),
          'summary''s stats cover both tables');
SELECT ok(timepart.summary('ev', '2024-04-15') ?& ARRAY['health', 'stats', 'configuration', 'jobs', 'recent_log', 'open_alerts'],
          'summary has health, stats, configuration, jobs, recent log and open alerts');

SELECT * FROM finish();
ROLLBACK;
