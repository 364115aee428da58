-- Every name resolves where timepart means it to: a static proof over every function
-- and procedure of timepart (and the seed's names in public), then the proof at work: a
-- session full of temporary look-alikes (a domain named regclass, text, jsonb and
-- timestamptz, views named like catalog views and timepart's tables) runs the operations
-- and the job procedures, and none of them is ever touched.
\ir setup.psql
SELECT plan(8);

-- Functions: PostgreSQL looks relation and type names up in pg_temp first unless the path
-- names it. Each function either pins its path (pg_temp last) or has a SQL-standard body,
-- whose names were bound when the install script (pinned the same way) ran.
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ' ORDER BY p.oid::regprocedure::text) FROM pg_proc p
           WHERE (p.prokind IN ('f', 'a', 'w') OR p.prokind = 'p' AND format('timepart.%s', p.proname) <> ALL (timepart._committing_procedures()))
             AND (p.pronamespace = 'timepart'::regnamespace OR p.proname = ANY (timepart._public_names()))
             AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
             AND pg_get_function_sqlbody(p.oid) IS NULL
             AND format('timepart.%s', p.proname) <> ALL (timepart._unpinned_functions())),
          NULL, 'every function pins search_path to pg_catalog, pg_temp or has a body bound at install');
-- The two that read their caller's settings, unpinned, name every function by schema.
SELECT is((SELECT string_agg(DISTINCT format('%s: %s', p.proname, m[1]), ', ') FROM pg_proc p,
           LATERAL regexp_matches(p.prosrc, '(?<![.\w])([A-Za-z_][A-Za-z0-9_]*)\s*\(', 'g') m
           WHERE p.pronamespace = 'timepart'::regnamespace AND format('timepart.%s', p.proname) = ANY (timepart._unpinned_functions())
             AND lower(m[1]) NOT IN ('return', 'select', 'coalesce', 'exists', 'and', 'or', 'not', 'in', 'any', 'as', 'when', 'then', 'else',
                                     'case', 'from', 'operator')),
          NULL, 'the unpinned functions call nothing unqualified');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.pronamespace = 'timepart'::regnamespace AND 'search_path=pg_catalog, pg_temp' = ANY (p.proconfig)
             AND pg_get_function_sqlbody(p.oid) IS NULL AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'sql')),
          NULL, 'no SQL function depends on a pinned path instead of a bound body');
-- Procedures that COMMIT cannot carry a SET clause: each pins the path at its start and
-- after every COMMIT, and names the type of every variable by schema (PL/pgSQL resolves
-- those when it compiles the body, on the caller's path).
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prokind = 'p' AND p.pronamespace = 'timepart'::regnamespace
             AND format('timepart.%s', p.proname) = ANY (timepart._committing_procedures())
             AND (p.prosrc !~ '^\s*(/\*.*\*/\s*)?(DECLARE\s.*)?\nBEGIN\s+PERFORM pg_catalog\.set_config\(''search_path'', ''pg_catalog, pg_temp'', true\);'
                  OR p.prosrc ~ 'COMMIT;(?!\s*PERFORM pg_catalog\.set_config\(''search_path'', ''pg_catalog, pg_temp'', true\);)')),
          NULL, 'every procedure pins search_path at its start and after every COMMIT');
SELECT is((SELECT string_agg(format('%s: %s', p.oid::regprocedure, d.decl), ', ') FROM pg_proc p,
           LATERAL regexp_matches(split_part((regexp_split_to_array(p.prosrc, '\nBEGIN\s*\n'))[1], 'DECLARE', 2),
                                  '\n\s*(\w+\s+[^;]*);', 'g') m,
           LATERAL (SELECT m[1] AS decl) d
           WHERE p.prokind = 'p' AND p.pronamespace = 'timepart'::regnamespace
             AND format('timepart.%s', p.proname) = ANY (timepart._committing_procedures())
             AND d.decl !~ '^\w+\s+(pg_catalog|timepart)\.\w+'),
          NULL, 'every variable of every procedure has a schema-qualified type');

-- At work: a session whose temporary schema shadows the types and relations timepart uses.
CREATE TABLE public.touched (what text);
GRANT INSERT ON public.touched TO PUBLIC;
CREATE FUNCTION pg_temp.touch(what text) RETURNS boolean LANGUAGE sql AS $$ INSERT INTO public.touched VALUES (what) RETURNING true $$;
CREATE DOMAIN pg_temp.regclass AS pg_catalog.text CHECK (pg_temp.touch('regclass'));
CREATE DOMAIN pg_temp.text AS pg_catalog.text CHECK (pg_temp.touch('text'));
CREATE DOMAIN pg_temp.jsonb AS pg_catalog.jsonb CHECK (pg_temp.touch('jsonb'));
CREATE DOMAIN pg_temp.timestamptz AS pg_catalog.timestamptz CHECK (pg_temp.touch('timestamptz'));
CREATE DOMAIN pg_temp.interval AS pg_catalog.interval CHECK (pg_temp.touch('interval'));
CREATE TEMP VIEW pg_class AS SELECT * FROM pg_catalog.pg_class WHERE pg_temp.touch('pg_class');
CREATE TEMP VIEW pg_namespace AS SELECT * FROM pg_catalog.pg_namespace WHERE pg_temp.touch('pg_namespace');
CREATE TEMP VIEW pg_stat_database AS SELECT * FROM pg_catalog.pg_stat_database WHERE pg_temp.touch('pg_stat_database');
CREATE TEMP VIEW config AS SELECT * FROM timepart.config WHERE pg_temp.touch('config');
CREATE TEMP VIEW maintenance_log AS SELECT * FROM timepart.maintenance_log WHERE pg_temp.touch('maintenance_log');

-- The operations run as plain statements: pgTAP's own functions are not pinned, and would
-- touch the look-alikes themselves. A failure stops the file.
CREATE TABLE public.ev (id bigint, ts pg_catalog.timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('public.ev', '1 month', 2, '3 months', as_of => '2024-03-15') IS NOT NULL AS managed;
INSERT INTO public.ev SELECT g, '2024-08-01'::pg_catalog.timestamptz + g * '1 hour'::pg_catalog.interval FROM generate_series(1, 10) g;
SELECT timepart.maintain('public.ev', 2, '2024-08-15') IS NOT NULL AS maintained;
SELECT timepart.cleanup('public.ev', as_of => '2024-08-15') IS NOT NULL AS cleaned;
SELECT count(*) >= 0 AS stats FROM timepart.partition_stats();
SELECT timepart.health() IS NOT NULL AS health, timepart.summary() IS NOT NULL AS summary;
SELECT count(*) >= 0 AS alerts FROM timepart.check_alerts();
SELECT count(*) >= 0 AS metrics FROM timepart.metrics();
SELECT timepart.snapshot_stats() >= 0 AS snapshot;
SELECT count(*) >= 0 AS log FROM timepart.get_maintenance_log(5);
SELECT timepart.create_partition('public.ev', '2024-12-01', '2025-01-01') IS NOT NULL AS created;
CREATE TEMP TABLE seen AS SELECT string_agg(DISTINCT what, ', ') AS what FROM public.touched;
DROP VIEW pg_temp.pg_class, pg_temp.pg_namespace, pg_temp.pg_stat_database, pg_temp.config, pg_temp.maintenance_log;
DROP DOMAIN pg_temp.regclass, pg_temp.text, pg_temp.jsonb, pg_temp.timestamptz, pg_temp.interval;

SELECT is((SELECT count(*) FROM public.ev_default), 0::bigint, 'the operations did their work (the waiting rows were moved)');
SELECT ok((SELECT count(*) FROM timepart.maintenance_log WHERE parent_table = 'public.ev') > 3, 'and logged it');
SELECT is((SELECT what FROM seen), NULL, 'none of the look-alikes was touched');
SELECT * FROM finish();
ROLLBACK;
