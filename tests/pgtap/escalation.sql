-- No path to more rights: an attacker who is a member of partition_admin and owns a
-- schema and a table tries every path the security issue found. In each, user code runs
-- only as the attacker (the table's owner), never as the superuser who runs timepart,
-- and the integrity attacks are refused with nothing changed.
\ir setup.psql
SELECT plan(60);
CREATE ROLE tp_evil LOGIN IN ROLE partition_admin;
CREATE ROLE tp_victim LOGIN IN ROLE partition_admin;
CREATE ROLE tp_mon LOGIN IN ROLE partition_monitor;
CREATE SCHEMA evil AUTHORIZATION tp_evil;
GRANT CREATE ON SCHEMA public TO tp_victim;

-- Who ran the attacker's code: every attempt is recorded, and the attempt itself tries
-- to make tp_evil a superuser (which only works when it runs as a superuser).
CREATE TABLE public.attempts (who name, via text);
GRANT INSERT, DELETE ON public.attempts TO PUBLIC;
SET ROLE tp_evil;
CREATE FUNCTION evil.esc(via text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
    INSERT INTO public.attempts VALUES (current_user, via);
    BEGIN
        ALTER ROLE tp_evil SUPERUSER;
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END $f$;
CREATE FUNCTION evil.imm(via text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM evil.esc(via);
    RETURN true;
END $f$;
CREATE FUNCTION evil.trg() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
    PERFORM evil.esc(TG_NAME);
    RETURN coalesce(NEW, OLD);
END $f$;
CREATE TABLE evil.ev (id bigint, ts timestamptz NOT NULL, note text) PARTITION BY RANGE (ts);
SELECT timepart.manage('evil.ev', '1 month', 2, as_of => '2024-03-15');
CREATE TRIGGER row_delete AFTER DELETE ON evil.ev FOR EACH ROW EXECUTE FUNCTION evil.trg();
RESET ROLE;
CREATE VIEW public.escalated AS SELECT rolsuper FROM pg_roles WHERE rolname = 'tp_evil';

-- 1. Row moves: a row waits in the default partition; a superuser's maintain moves it.
SET ROLE tp_evil;
INSERT INTO evil.ev VALUES (1, '2024-09-03', 'waits');
RESET ROLE;
-- A move is a DELETE and an INSERT: it never fires a user's trigger, so it is refused.
SELECT is(timepart.maintain('evil.ev', 2, '2024-09-15')->>'success', 'false',
          'a superuser''s maintain will not move the row past the owner''s row trigger');
SELECT ok(NOT EXISTS (SELECT 1 FROM public.attempts WHERE via = 'row_delete'), 'the owner''s row trigger never ran');
SELECT is((SELECT count(*) FROM evil.ev_default), 1::bigint, 'the row waits in the default partition, reported');
SELECT is((SELECT rolsuper FROM public.escalated), false, 'the owner did not become superuser through a row trigger');
DELETE FROM public.attempts;
SET ROLE tp_evil;
DROP TRIGGER row_delete ON evil.ev;
RESET ROLE;

-- The same with a CHECK constraint that calls the owner's function.
SET ROLE tp_evil;
ALTER TABLE evil.ev ADD CONSTRAINT sneaky CHECK (evil.imm('check') IS NOT NULL) NOT VALID;
INSERT INTO evil.ev VALUES (2, '2024-12-03', 'waits');
DELETE FROM public.attempts;
RESET ROLE;
SELECT is(timepart.maintain('evil.ev', 2, '2024-12-15')->>'success', 'true', 'maintain moves a row past a CHECK constraint');
SELECT is((SELECT array_agg(DISTINCT who) FROM public.attempts WHERE via = 'check'), ARRAY['tp_evil']::name[],
          'the constraint ran as the owner only');
SELECT is((SELECT rolsuper FROM public.escalated), false, 'no escalation through a CHECK constraint');
DELETE FROM public.attempts;

-- 2. Index predicates: folded by the planner whenever a query on a partition is planned.
SET ROLE tp_evil;
SELECT lives_ok($$SELECT timepart.add_index_template('evil.ev', 'trap', 'id', 'evil.imm(''predicate'')')$$,
                'the owner adds a template whose predicate calls its own function');
RESET ROLE;
SELECT lives_ok($$SELECT timepart.health()$$, 'health reads the table');
SELECT lives_ok($$SELECT * FROM timepart.partition_stats()$$, 'partition_stats reads it');
SELECT lives_ok($$SELECT timepart.snapshot_stats('2024-12-20')$$, 'snapshot_stats counts it');
SELECT lives_ok($$SELECT * FROM timepart.check_alerts()$$, 'check_alerts evaluates it');
SET ROLE tp_mon;
SELECT lives_ok($$SELECT timepart.health()$$, 'a monitor''s health reads it');
RESET ROLE;
SELECT ok(NOT EXISTS (SELECT 1 FROM public.attempts WHERE who <> 'tp_evil'), 'no predicate ran as anyone but the owner');
SELECT is((SELECT rolsuper FROM public.escalated), false, 'no escalation through an index predicate');

-- The owner turns its executor into SECURITY INVOKER: timepart refuses to use it.
SET ROLE tp_evil;
SELECT lives_ok(format('ALTER FUNCTION timepart.%I(text, boolean) SECURITY INVOKER', timepart._executor_name('tp_evil'::regrole)),
                'the owner can alter its executor (it owns it)');
SELECT throws_ok(format('CREATE OR REPLACE FUNCTION timepart.%I(q text, wants_value boolean) RETURNS jsonb LANGUAGE sql AS $$SELECT NULL::jsonb$$',
                        timepart._executor_name('tp_evil'::regrole)), '42501', NULL, 'but cannot replace its body');
RESET ROLE;
SELECT is(timepart.maintain('evil.ev', 3, '2024-12-15')->>'success', 'false', 'a tampered executor is refused');
SELECT ok((SELECT error FROM timepart.maintenance_log WHERE operation_type = 'maintain' ORDER BY id DESC LIMIT 1) ~ 'altered',
          'and the refusal is logged');
SELECT ok(NOT EXISTS (SELECT 1 FROM public.attempts WHERE who <> 'tp_evil'), 'nothing ran as the superuser');
SELECT lives_ok(format('ALTER EXTENSION timepart DROP FUNCTION timepart.%1$I(text, boolean); DROP FUNCTION timepart.%1$I(text, boolean)',
                       timepart._executor_name('tp_evil'::regrole)),
                'a superuser drops the tampered executor');
SELECT is(timepart.maintain('evil.ev', 3, '2024-12-15')->>'success', 'true', 'and timepart makes it again');

-- 3. Forged migration state and the capture trigger function.
SET ROLE tp_evil;
SELECT throws_ok($$INSERT INTO timepart.migrations (source, source_name, target, stage_schema, key_column, partition_interval,
                   time_zone, source_filenode, last_block) VALUES ('evil.ev', 'evil.ev', 'evil.ev', 'evil', 'ts', '1 month', 'UTC', 1, 1)$$,
                 '42501', NULL, 'migration state cannot be written directly');
CREATE TABLE evil.plain (id int);
SELECT throws_ok($$CREATE TRIGGER cap AFTER INSERT ON evil.plain REFERENCING NEW TABLE AS new_rows
                   FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()$$, '42501', NULL,
                 'timepart''s capture trigger function cannot be attached by an admin');
SELECT throws_ok($q$DO $d$ BEGIN CALL timepart._log('forged', NULL, NULL, true, '{}', NULL, now()); END $d$$q$, '42501', NULL,
                 'the log cannot be written through timepart''s helper from a DO block');
SELECT throws_ok($$INSERT INTO timepart.maintenance_log (operation_type, success, run_by, created_at) VALUES ('x', true, 'postgres', '2020-01-01')$$,
                 '42501', NULL, 'nor directly');
SELECT throws_ok($q$DO $d$ BEGIN EXECUTE E'INSERT INTO timepart.maintenance_log (operation_type, parent_table, success) '
                 'VALUES (''cleanup'', ''public.victim_ev'', true) /*\nPL/pgSQL function timepart._run(text) line 1 at SQL statement\n*/'; END $d$$q$,
                 '42501', NULL, 'nor with a faked timepart frame in the statement''s text');
SELECT throws_ok($q$DO $d$ BEGIN EXECUTE E'CALL timepart._log(''cleanup'', NULL, NULL, true, ''{}'', NULL, now()) /*\n'
                 'PL/pgSQL function timepart._run(text,regclass,integer,interval,boolean,timestamp with time zone) line 1 at CALL\n*/'; END $d$$q$,
                 '42501', NULL, 'nor through _log with one');
RESET ROLE;
SELECT is((SELECT count(*) FROM timepart.maintenance_log WHERE run_as = 'tp_evil' AND created_at < now() - interval '1 day'), 0::bigint,
          'no log row carries a time the caller chose');

-- 4. Archive retention into a role's "$user" schema, or a schema someone else owns.
SET ROLE tp_evil;
SELECT throws_ok($$SELECT timepart.configure('evil.ev', '{"retention_action": "archive", "archive_schema": "postgres"}')$$,
                 '22023', NULL, 'an archive schema named like a role is refused');
RESET ROLE;
CREATE SCHEMA not_evils AUTHORIZATION tp_victim;
SET ROLE tp_evil;
SELECT lives_ok($$SELECT timepart.configure('evil.ev', '{"retention_action": "archive", "archive_schema": "not_evils", "retention": "3 months"}')$$,
                'an archive schema owned by another role can be configured');
RESET ROLE;
SELECT ok(jsonb_array_length(timepart.cleanup('evil.ev', as_of => '2025-03-15')->'errors') > 0, 'but cleanup refuses to archive into it');
SELECT is((SELECT count(*) FROM pg_class WHERE relnamespace = 'not_evils'::regnamespace), 0::bigint, 'and moves nothing there');
SET ROLE tp_evil;
SELECT timepart.configure('evil.ev', '{"archive_schema": "evil_archive"}');
RESET ROLE;
SELECT ok(jsonb_array_length(timepart.cleanup('evil.ev', as_of => '2025-03-15')->'dropped_partitions') > 0, 'a missing archive schema is created and used');
SELECT is((SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'evil_archive'), 'postgres',
          'owned by timepart''s owner: the table''s owner cannot hand it to a role of that name one day');
SELECT ok(has_schema_privilege('tp_evil', 'evil_archive', 'USAGE') AND has_schema_privilege('tp_evil', 'evil_archive', 'CREATE')
          AND NOT has_schema_privilege('tp_victim', 'evil_archive', 'USAGE'),
          'the table''s owner uses it and creates in it; nobody else may');
SELECT is((SELECT array_agg(DISTINCT c.relowner::regrole::text) FROM pg_class c WHERE c.relnamespace = 'evil_archive'::regnamespace),
          ARRAY['tp_evil'], 'the archived partitions stay the owner''s');
SET ROLE tp_victim;
CREATE TABLE public.victim_arc (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('public.victim_arc', '1 month', 1, '1 month', as_of => '2024-03-15');
SELECT timepart.configure('public.victim_arc', '{"retention_action": "archive", "archive_schema": "evil_archive"}');
RESET ROLE;
SELECT ok(jsonb_array_length(timepart.cleanup('public.victim_arc', as_of => '2024-06-15')->'errors') > 0,
          'another owner''s table is not archived into a schema timepart made for tp_evil''s tables');

-- 5. Scheduling cannot widen rights.
SET ROLE tp_victim;
CREATE TABLE public.victim_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('public.victim_ev', '1 month', 1, as_of => '2024-03-15');
RESET ROLE;
SET ROLE tp_evil;
SELECT throws_ok($$SELECT * FROM timepart.schedule_jobs()$$, '42501', NULL, 'an admin cannot schedule jobs over tables it may not maintain');
RESET ROLE;
SELECT is((SELECT count(*) FROM pg_proc WHERE proname IN ('schedule_jobs', 'unschedule_jobs') AND prosecdef), 0::bigint,
          'scheduling runs as the caller, not as timepart''s owner');

-- 6. Pinned paths: every function pins search_path; the procedures use no bare operator.
SELECT is((SELECT count(*) FROM pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace AND p.prokind = 'f' AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
           AND format('timepart.%s', p.proname) <> ALL (timepart._unpinned_functions())
           AND NOT coalesce(p.proconfig::text ~ 'search_path=', false)), 0::bigint, 'every PL/pgSQL function pins its search_path');
SELECT is((SELECT string_agg(p.proname, ', ') FROM pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace AND p.prokind = 'p'
           AND format('timepart.%s', p.proname) = ANY (timepart._committing_procedures())
           AND regexp_replace(p.prosrc, 'OPERATOR\(pg_catalog\.[^)]*\)|''[^'']*''|--[^\n]*|:=|\m\w+ = (MESSAGE_TEXT|RETURNED_SQLSTATE|PG_EXCEPTION_\w+)|\m(ERRCODE|DETAIL|HINT) =|SELECT \*', '', 'g')
               ~ '[^<>!:/]\s*(=|<>|<=|>=|<|>|\|\||\+|\*)\s'),
          NULL, 'no procedure body holds an unqualified operator');

-- Integrity: owner guards see the old row too.
SET ROLE tp_evil;
CREATE TABLE evil.decoy (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT throws_ok($$UPDATE timepart.config SET parent = 'evil.decoy' WHERE parent = 'public.victim_ev'::regclass$$, '42501', NULL,
                 'an admin cannot take another owner''s configuration by UPDATE');
SELECT throws_ok($$DELETE FROM timepart.config WHERE parent = 'public.victim_ev'::regclass$$, '42501', NULL, 'nor delete it');
RESET ROLE;
SELECT ok(EXISTS (SELECT 1 FROM timepart.config WHERE parent = 'public.victim_ev'::regclass), 'the victim''s table is still managed');

-- An admin checks every registered table's alerts, but only as of now: another moment
-- would resolve (or open) another owner's alerts on a state that is not theirs.
SELECT * FROM timepart.check_alerts('public.victim_ev', '2024-09-15');
SET ROLE tp_evil;
SELECT throws_ok($$SELECT * FROM timepart.check_alerts(NULL, '2024-03-15')$$, '42501',
                 'only a table''s owner may check its alerts as of another moment', 'an admin cannot check alerts as of a chosen moment');
SELECT lives_ok($$SELECT * FROM timepart.check_alerts('evil.ev', '2024-03-15')$$, 'but may for its own table');
RESET ROLE;
SELECT ok(EXISTS (SELECT 1 FROM timepart.alerts WHERE parent_table = 'public.victim_ev' AND alert_type = 'missing_current_partition' AND resolved_at IS NULL),
          'another owner''s open alert stays open');

-- Monitors see counts, not key values of tables they cannot read.
SET ROLE tp_mon;
SELECT is((SELECT count(*) FROM timepart.partition_stats() WHERE parent_table = 'evil.ev' AND (oldest_record IS NOT NULL OR newest_record IS NOT NULL)),
          0::bigint, 'a monitor sees no key values of a table it cannot read');
RESET ROLE;
SELECT is(has_table_privilege('tp_mon', 'timepart.stats_history', 'SELECT'), false, 'nor the exact figures in the stats history');

SELECT is((SELECT rolsuper FROM public.escalated), false, 'after everything, the attacker is no superuser');
-- 7. The owner's code inside its executor changes session settings (a plain SET outlives
-- every SET clause): refused, and put back, so timepart's code never runs on its path.
SET ROLE tp_evil;
CREATE FUNCTION evil.flip(x bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'evil, pg_catalog', false);
    PERFORM pg_catalog.set_config('timepart.log_retention', '1 day', false);
    RETURN x;
END $f$;
CREATE FUNCTION evil.format(text, text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN PERFORM evil.esc('format on a flipped path'); RETURN 'x'; END $f$;
CREATE TABLE evil.g (id bigint, ts timestamptz NOT NULL, CHECK (evil.flip(id) IS NOT NULL)) PARTITION BY RANGE (ts);
SELECT timepart.manage('evil.g', '1 month', 1, as_of => '2024-03-15');
INSERT INTO evil.g VALUES (1, '2024-08-03');
RESET search_path;                    -- the owner's own insert flipped its own session
RESET timepart.log_retention;
-- The owner's code tries timepart's checks from inside its executor: it speaks for nobody.
CREATE FUNCTION evil.borrow(x bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    BEGIN
        PERFORM timepart._migrate_triggers('public.victim_ev');
        PERFORM evil.esc('borrowed the caller');
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN x;
END $f$;
CREATE TABLE evil.b (id bigint, ts timestamptz NOT NULL, CHECK (evil.borrow(id) IS NOT NULL)) PARTITION BY RANGE (ts);
SELECT timepart.manage('evil.b', '1 month', 1, as_of => '2024-03-15');
INSERT INTO evil.b VALUES (1, '2024-08-03');
RESET ROLE;
DELETE FROM public.attempts;
SELECT is(timepart.maintain('evil.g', 1, '2024-08-15')->>'success', 'false', 'a move whose owner code sets search_path is refused');
SELECT ok((SELECT error FROM timepart.maintenance_log WHERE parent_table = 'evil.g' AND NOT success ORDER BY id DESC LIMIT 1)
          ~ 'tried to leave something in this session', 'and the log says why');
SELECT is(current_setting('search_path'), '"$user", public', 'the session''s search_path is as it was');
SELECT is(current_setting('timepart.log_retention', true), '', 'and so is timepart.log_retention');
SELECT is((SELECT count(*) FROM public.attempts WHERE via = 'format on a flipped path'), 0::bigint,
          'timepart never ran a look-alike from the owner''s path');
SELECT is(timepart.maintain('evil.b', 1, '2024-08-15')->>'success', 'true', 'a move whose owner code calls timepart goes on');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.victim_ev'::regclass AND tgname LIKE 'timepart_migrate%'), 0::bigint,
          'but the owner''s code could not borrow the caller''s rights to put triggers on another table');
SELECT is((SELECT count(*) FROM public.attempts WHERE via = 'borrowed the caller'), 0::bigint, 'the call was refused');
SELECT is((SELECT rolsuper FROM public.escalated), false, 'no escalation through session settings or borrowed rights');

SELECT * FROM finish();
ROLLBACK;
