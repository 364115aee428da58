-- Functions that act with timepart's owner's rights (SECURITY DEFINER): every one is of
-- a declared kind (the public API, an entry point that checks its caller, or private),
-- the private ones are executable by timepart's owner alone, and each entry point,
-- called directly by a partition_admin on another owner's table, refuses what that
-- admin may not do itself.
\ir setup.psql
SELECT plan(20);
CREATE ROLE tp_def_admin LOGIN IN ROLE partition_admin;
CREATE ROLE tp_def_owner LOGIN IN ROLE partition_admin;
CREATE ROLE tp_def_stranger LOGIN;
CREATE SCHEMA victim AUTHORIZATION tp_def_owner;
SET ROLE tp_def_owner;
CREATE TABLE victim.ev (id bigint PRIMARY KEY, ts timestamptz NOT NULL);
CREATE TABLE victim.pev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('victim.pev', '1 month', 1, '2 months', as_of => '2024-03-15') IS NOT NULL;
-- An admin names the tables (USAGE on their schema), and may not act on them itself.
GRANT USAGE ON SCHEMA victim TO tp_def_admin, tp_def_stranger, partition_monitor;
RESET ROLE;

SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace = 'timepart'::regnamespace AND p.proname !~ '^_as_owner_[0-9]+$'
             AND format('timepart.%s', p.proname) <> ALL (timepart._definer_api() || timepart._definer_entry_points()
                                                          || timepart._private_functions())),
          NULL, 'every SECURITY DEFINER function is of a declared kind');
SELECT is((SELECT string_agg(f, ', ') FROM unnest(timepart._definer_functions()) f
           WHERE NOT EXISTS (SELECT 1 FROM pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace
                             AND format('timepart.%s', p.proname) = f AND p.prosecdef)),
          NULL, 'and every declared one is SECURITY DEFINER');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.pronamespace = 'timepart'::regnamespace AND format('timepart.%s', p.proname) = ANY (timepart._private_functions())
             AND (has_function_privilege('partition_admin', p.oid, 'EXECUTE') OR has_function_privilege('partition_monitor', p.oid, 'EXECUTE')
                  OR has_function_privilege('tp_def_stranger', p.oid, 'EXECUTE'))),
          NULL, 'no role but timepart''s owner may execute a private one');
SELECT is((SELECT string_agg(p.oid::regprocedure::text, ', ') FROM pg_proc p
           WHERE p.prosecdef AND p.pronamespace = 'timepart'::regnamespace
             AND has_function_privilege('tp_def_stranger', p.oid, 'EXECUTE')),
          NULL, 'a role outside timepart may execute none of them');

-- Each entry point, called directly by an admin on a table it does not own.
SET ROLE tp_def_admin;
SELECT throws_ok($$SELECT timepart._executor('tp_def_stranger'::regrole)$$, '42501', NULL,
                 '_executor: no executor for a role whose tables timepart does not work on');
SELECT throws_ok($$SELECT timepart._migrate_triggers('victim.ev')$$, '42501', NULL, '_migrate_triggers: only the table''s owner');
SELECT throws_ok($$SELECT timepart._migrate_stage_schema('victim.ev', timepart._fit_name('timepart_migrate', 'victim.ev'::regclass::oid::text))$$,
                 '42501', NULL, '_migrate_stage_schema: only the table''s owner');
SELECT throws_ok($$SELECT timepart._migrate_publications(ROW(1, 'victim.ev', 'victim.ev', 'victim.pev', 's', 'ts', '1 month', 'UTC', NULL, NULL,
                   'copying', 0, 0, 1, 1, 0, 0, 0, NULL, NULL, NULL, NULL, now(), now(), NULL, NULL)::timepart.migrations)$$,
                 '42501', NULL, '_migrate_publications: only the tables'' owner');
SELECT throws_ok($$CALL timepart._new_partition_table('victim.pev', 'pev_2030_01')$$, '42501', NULL,
                 '_new_partition_table: only as a step of making a partition');
SELECT throws_ok($$CALL timepart._admin_run('cleanup', 'victim.pev', NULL, '1 month', false, now())$$, '42501', NULL,
                 '_admin_run: an admin may not shorten another owner''s retention');
SELECT throws_ok($$CALL timepart._admin_create_partition('victim.ev', '2024-03-01', '2024-04-01')$$, NULL, NULL,
                 '_admin_create_partition: only on a registered table');
-- A statement's text shows in PG_CONTEXT verbatim: lines in it that look like one of
-- timepart's frames must not pass for one (a comment, or a quoted alias or variable).
SELECT throws_ok($q$DO $d$ BEGIN EXECUTE E'CALL timepart._new_partition_table(''victim.pev'', ''users'') /*\n'
                 'PL/pgSQL function timepart._build_partition(timepart.config,name,timestamp with time zone,timestamp with time zone) line 13 at CALL\n*/'; END $d$$q$,
                 '42501', NULL, 'a faked frame in a comment does not pass for _build_partition');
CREATE FUNCTION pg_temp.forge(parent regclass, part_name name) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    part regclass;
    "
PL/pgSQL function timepart._build_partition(timepart.config,name,timestamp with time zone,timestamp with time zone) line 13 at CALL
" regclass;
BEGIN
    CALL timepart._new_partition_table(parent, part_name, "
PL/pgSQL function timepart._build_partition(timepart.config,name,timestamp with time zone,timestamp with time zone) line 13 at CALL
");
END $f$;
SELECT throws_ok($$SELECT pg_temp.forge('victim.pev', 'users')$$, '42501', NULL, 'nor one in a quoted variable''s name');
SELECT is(to_regclass('victim.users'), NULL, 'no table was made');
SELECT throws_ok($$SELECT timepart._runner_lock('victim.ev', '0')$$, '42501', NULL, '_runner_lock: only a table the admin may maintain');
SELECT throws_ok($$SELECT timepart._runner_session_lock('victim.pev')$$, '42501', NULL, '_runner_session_lock: only the table''s owner');
SELECT lives_ok($$SELECT timepart._runner_session_unlock('victim.pev')$$, '_runner_session_unlock: lets go of this session''s hold only');
RESET ROLE;
SELECT is((SELECT session_pid FROM timepart.runners WHERE parent = 'victim.pev'::regclass), NULL::int, 'and there was none');
SET ROLE tp_def_stranger;
SELECT throws_ok($$SELECT timepart._archive_schema('victim.pev')$$, '42501', NULL, '_archive_schema: a role outside timepart cannot call it');
RESET ROLE;
SET ROLE partition_monitor;
SELECT throws_ok($$SELECT timepart._archive_schema('victim.pev')$$, '42501', NULL, 'nor a monitor');
RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
