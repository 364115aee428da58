-- Names: hostile identifiers are quoted everywhere; names over 63 bytes stay unique and deterministic.
\ir setup.psql
SELECT plan(15);

CREATE SCHEMA "My ""Odd"" Schema; x";
CREATE TABLE "My ""Odd"" Schema; x"."Events ""Q""; DROP TABLE x" (id int, "Created At" timestamptz NOT NULL)
    PARTITION BY RANGE ("Created At");
SELECT lives_ok($$SELECT timepart.manage('"My ""Odd"" Schema; x"."Events ""Q""; DROP TABLE x"', '1 month', 1, as_of => '2024-03-15')$$,
                'a table with quotes, spaces, semicolons and mixed case can be managed');
SELECT lives_ok($$SELECT timepart.add_index_template('"My ""Odd"" Schema; x"."Events ""Q""; DROP TABLE x"', 'ts_idx', '"Created At" DESC')$$,
                'an index template on a quoted column back-fills');
SELECT is((SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'My "Odd" Schema; x' AND c.relname LIKE 'Events "Q"; DROP TABLE x_2024_0%' AND c.relkind = 'r'), 2::bigint,
          'both partitions exist under their exact names');
SELECT is((SELECT count(*) FROM pg_indexes WHERE schemaname = 'My "Odd" Schema; x' AND indexname LIKE '%_ts_idx'), 4::bigint,
          'the template index exists on the parent, both partitions and the default partition');

-- 63-byte names, with multibyte characters at the cut.
CREATE TABLE "événements_très_longs_pour_tester_la_limite_de_soixante_trois_o" (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT lives_ok($$SELECT timepart.manage('"événements_très_longs_pour_tester_la_limite_de_soixante_trois_o"', '1 day', 1, as_of => '2024-03-15')$$,
                'a table whose name is near 63 bytes can be managed');
SELECT is((SELECT max(octet_length(relname)) FROM pg_class WHERE relname LIKE 'événements_très_longs%'), 63,
          'partition names are cut to 63 bytes');
SELECT is((SELECT count(DISTINCT relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = '"événements_très_longs_pour_tester_la_limite_de_soixante_trois_o"'::regclass), 3::bigint,
          'the cut names stay unique (two days and the default)');
SELECT is(timepart._fit_name(repeat('é', 40), '2024_03_15'), timepart._fit_name(repeat('é', 40), '2024_03_15'),
          'a cut name is deterministic');
SELECT isnt(timepart._fit_name(repeat('é', 40), '2024_03_15'), timepart._fit_name(repeat('é', 40), '2024_03_16'),
          'two cut names for two periods differ');
SELECT is(timepart._fit_name(repeat('a', 55), '2024_03'), (repeat('a', 55) || '_2024_03')::name, 'a name of exactly 63 bytes is kept');
SELECT is(timepart._fit_name(repeat('a', 56), '2024_03'), timepart._fit_long_name(repeat('a', 56), '2024_03'),
          'one byte more takes the cut-and-hash path');
SELECT is(octet_length(timepart._fit_name(repeat('a', 56), '2024_03')), 63, 'and fits in 63 bytes');
SELECT is(timepart._fit_name(NULL, '2024_03'), NULL, 'no base, no name');
-- A template on the long-named table: its indexes are found by their cut names.
SELECT timepart.add_index_template('"événements_très_longs_pour_tester_la_limite_de_soixante_trois_o"', 'ts_idx', 'ts');
SELECT is((SELECT count(*) FROM timepart._missing_indexes('"événements_très_longs_pour_tester_la_limite_de_soixante_trois_o"')),
          0::bigint, 'no index is reported missing under a cut name');
SELECT is((SELECT count(*) FROM jsonb_array_elements(timepart.health('"événements_très_longs_pour_tester_la_limite_de_soixante_trois_o"', '2024-03-15')->'alerts') a
           WHERE a->>'alert_type' = 'missing_index'), 0::bigint, 'nor does health');

SELECT * FROM finish();
ROLLBACK;
