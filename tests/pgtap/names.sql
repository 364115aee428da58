-- Names: hostile identifiers are quoted everywhere; names over 63 bytes stay unique and deterministic.
\ir setup.psql
SELECT plan(9);

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

SELECT * FROM finish();
ROLLBACK;
