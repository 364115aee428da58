-- partition_admin on tables it does not own (the seed: "superuser or partition_admin").
-- Both sides: what an admin may run on another owner's registered table, and what it may
-- not; and escalation attempts through each piece of code that runs on the way: the
-- owner's (CHECK constraint, index expression, default), the admin's (planted look-alike
-- functions and operators on its search_path), and the private route called directly.
\ir setup.psql
SELECT plan(37);
CREATE ROLE tp_owner LOGIN IN ROLE partition_admin;
CREATE ROLE tp_admin LOGIN IN ROLE partition_admin;
CREATE ROLE tp_outsider LOGIN;
CREATE ROLE "Tp_Reader";
CREATE SCHEMA own AUTHORIZATION tp_owner;
CREATE SCHEMA adm AUTHORIZATION tp_admin;
GRANT CREATE ON SCHEMA public TO tp_owner;

-- Who ran whose code: every run is recorded, and each tries to make its role a superuser.
CREATE TABLE public.ran (who name, via text);
GRANT INSERT ON public.ran TO PUBLIC;
CREATE VIEW public.supers AS SELECT rolname FROM pg_roles WHERE rolname IN ('tp_owner', 'tp_admin') AND rolsuper;

SET ROLE tp_owner;
CREATE FUNCTION own.esc(via text) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
BEGIN
    INSERT INTO public.ran VALUES (current_user, via);
    BEGIN
        EXECUTE format('ALTER ROLE %I SUPERUSER', current_user);
    EXCEPTION WHEN insufficient_privilege THEN NULL;
    END;
    RETURN true;
END $f$;
CREATE FUNCTION own.imm(via text, x bigint) RETURNS bigint LANGUAGE plpgsql IMMUTABLE AS $f$
BEGIN
    PERFORM own.esc(via);
    RETURN x;
END $f$;
CREATE TABLE own.ev (id bigint GENERATED ALWAYS AS IDENTITY, ts timestamptz NOT NULL, n bigint DEFAULT 1,
                     CONSTRAINT checked CHECK (own.imm('check', n) IS NOT NULL)) PARTITION BY RANGE (ts);
SELECT timepart.manage('own.ev', '1 month', 1, retention => '6 months', as_of => now() - interval '10 months');
SELECT timepart.add_index_template('own.ev', 'expr_idx', '(own.imm(''index'', n))');
INSERT INTO own.ev (ts) VALUES (now());            -- waits in the default partition
CREATE TABLE own.loose (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);   -- never registered
SELECT timepart.create_email_events_table();
CREATE TABLE own.days (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
SELECT timepart.manage('own.days', '1 day', 2, retention => '1 year');
GRANT USAGE ON SCHEMA own TO tp_admin;   -- to name its tables (regclass); no right on the tables
RESET ROLE;
DELETE FROM public.ran;

-- The admin's planted look-alikes, first on its search_path: none may ever run.
SET ROLE tp_admin;
CREATE FUNCTION adm.format(text, text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.ran VALUES (current_user, 'planted format'); RETURN 'x'; END $f$;
CREATE FUNCTION adm.format(text, text, text) RETURNS text LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.ran VALUES (current_user, 'planted format'); RETURN 'x'; END $f$;
CREATE FUNCTION adm.eq(timestamptz, timestamptz) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.ran VALUES (current_user, 'planted operator'); RETURN $1 OPERATOR(pg_catalog.=) $2; END $f$;
CREATE OPERATOR adm.= (LEFTARG = timestamptz, RIGHTARG = timestamptz, FUNCTION = adm.eq);
CREATE FUNCTION adm.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $f$
BEGIN INSERT INTO public.ran VALUES (current_user, 'planted to_regclass'); RETURN NULL; END $f$;
SET search_path = adm, public;

-- What an admin may do on another owner's registered table.
SELECT is((timepart.maintain('own.ev')->>'success')::boolean, true, 'an admin maintains another owner''s registered table');
SELECT is((SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = 'own.ev'::regclass
           AND inhrelid::regclass::text ~ 'ev_20'), 10::bigint, 'the periods it keeps (6 months back to next month) are there');
RESET ROLE;
SELECT is((SELECT count(*) FROM own.ev_default), 0::bigint, 'the waiting row moved out of the default partition');
SET ROLE tp_admin;
SELECT is((SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON i.inhrelid = c.oid
           WHERE i.inhparent = 'own.ev'::regclass AND c.relowner <> 'tp_owner'::regrole), 0::bigint,
          'every partition belongs to the table''s owner');
SELECT lives_ok($$SELECT timepart.create_partition('own.ev', date_trunc('month', now()) + interval '1 year',
                                                   date_trunc('month', now()) + interval '13 months')$$,
                'an admin creates a partition of another owner''s table');
SELECT is((timepart.cleanup('own.ev', dry_run => true, retention => '1 month')->>'success')::boolean, true,
          'a dry run may ask any retention: it changes nothing');
SELECT throws_ok($$SELECT timepart.cleanup('own.ev', '2 months')$$, '42501', 'only the owner of own.ev may shorten its retention',
                 'an admin may not clean up with a shorter retention than the owner configured');
SELECT throws_ok($$SELECT timepart.cleanup('own.ev', as_of => now() + interval '2 months')$$, '42501',
                 'only a table''s owner may clean up as of a later moment', 'nor as of a later moment (the same thing)');
SELECT is((SELECT count(*) FROM pg_catalog.pg_inherits WHERE inhparent = 'own.ev'::regclass), 12::bigint,
          'the refusals changed nothing');
SELECT is(jsonb_array_length(timepart.cleanup('own.ev')->'dropped_partitions'), 2,
          'cleanup with the configured retention (6 months) drops the 2 partitions past it');
SELECT is(jsonb_array_length(timepart.cleanup('own.ev', '2 years')->'dropped_partitions'), 0,
          'a longer retention is allowed, and keeps more');
SELECT cmp_ok(timepart.snapshot_stats(), '>', 0, 'an admin snapshots the statistics');
SELECT lives_ok($$SELECT * FROM timepart.check_alerts('own.ev')$$, 'and checks the alerts of another owner''s table');
SELECT is((maintain_email_events_partitions(6)->>'success')::boolean, true, 'the seed''s names work for an admin: maintain');
SELECT is(create_email_events_partition((date_trunc('month', now()) + interval '2 years')::date,
                                        (date_trunc('month', now()) + interval '25 months')::date),
          'public.email_events_' || to_char(now() + interval '2 years', 'YYYY_MM'), 'create_email_events_partition');
SELECT lives_ok($$SELECT * FROM cleanup_old_email_events_partitions(12)$$, 'cleanup_old_email_events_partitions (the configured 12)');
SELECT throws_ok($$SELECT * FROM cleanup_old_email_events_partitions(3)$$, '42501', NULL, 'but not with 3 months');
SELECT ok(EXISTS (SELECT 1 FROM timepart.maintenance_log WHERE parent_table = 'own.ev' AND operation_type = 'create_partition'
                  AND partition_name = 'ev_' || to_char(now(), 'YYYY_MM') AND success), 'the admin''s runs are in the log, each partition a row');

-- What an admin may not do.
SELECT throws_ok($$SELECT timepart.configure('own.ev', '{"retention": "1 month"}')$$, '42501', NULL,
                 'an admin may not reconfigure another owner''s table');
SELECT throws_ok($$SELECT timepart.manage('own.loose', '1 month')$$, '42501', NULL, 'nor register it');
SELECT throws_ok($$SELECT timepart.maintain('own.loose')$$, '22023', 'table own.loose is not managed by timepart',
                 'nor maintain a table nobody registered');
SELECT throws_ok($$SELECT timepart.create_partition('own.loose', '2024-01-01', '2024-02-01')$$, '22023', NULL,
                 'nor create its partitions');
SELECT throws_ok($$CALL timepart._admin_run('cleanup', 'own.ev', NULL, '1 month', false, now())$$, '42501', NULL,
                 'the admin route called directly keeps the same limits');
SELECT throws_ok($$SELECT timepart._as_owner('own.ev', 'DROP TABLE own.ev')$$, '42501', NULL,
                 'and the owner''s executor is out of the admin''s reach');
SELECT throws_ok($$SELECT timepart._executor('tp_outsider'::regrole)$$, '42501', 'timepart has no table of role tp_outsider to work on',
                 'nor hand an executor to a role with no table under timepart');
SELECT throws_ok($$SELECT timepart._executor('postgres'::regrole)$$, '42501', NULL, 'nor to a superuser');
SELECT throws_ok($$SELECT timepart.sync_partitions('own.ev')$$, '42501', NULL, 'sync_partitions stays the owner''s');
SELECT throws_ok($$CALL timepart._new_partition_table('own.ev', 'ev_2099_01')$$, '42501',
                 'timepart._new_partition_table is a step of making a partition', 'nor make tables of any name through a step called on its own');
SELECT throws_ok($$SELECT timepart.cleanup('own.days', '360 days')$$, '42501', 'only the owner of own.days may shorten its retention',
                 'a retention that only looks as long (360 days against 1 year of daily partitions) is refused');
RESET search_path;
RESET ROLE;

-- A grant to a role whose name needs quotes is handed down like any other.
SET ROLE tp_owner;
GRANT SELECT ON own.days TO "Tp_Reader";
SELECT timepart.maintain('own.days', 4);
RESET ROLE;
SELECT ok(has_table_privilege('Tp_Reader', (SELECT max(inhrelid::regclass::text) FROM pg_inherits WHERE inhparent = 'own.days'::regclass
                                             AND inhrelid::regclass::text ~ 'days_2'), 'SELECT'),
          'a partition made after a grant to "Tp_Reader" carries it');

-- Who ran what: the owner's code ran, as the owner only; the admin's planted code never.
SELECT ok(EXISTS (SELECT 1 FROM public.ran WHERE via = 'check') AND EXISTS (SELECT 1 FROM public.ran WHERE via = 'index'),
          'the owner''s CHECK and index expression ran (the test can see them)');
SELECT is((SELECT array_agg(DISTINCT who) FROM public.ran WHERE via IN ('check', 'index')), ARRAY['tp_owner']::name[],
          'and ran as the owner, never as the superuser who owns timepart or as the admin');
SELECT is((SELECT count(*) FROM public.ran WHERE via LIKE 'planted%'), 0::bigint,
          'the admin''s look-alike format(), = and to_regclass() never ran');
SELECT is((SELECT count(*) FROM public.supers), 0::bigint, 'neither the owner nor the admin became a superuser');
SELECT is((SELECT array_agg(p.proowner::regrole::text ORDER BY 1) FROM pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace
           AND p.proname ~ '^_as_owner_'), ARRAY['tp_owner'], 'the only executor is the table owner''s');

-- Someone outside partition_admin runs nothing.
SET ROLE tp_outsider;
SELECT throws_ok($$SELECT timepart.maintain('own.ev')$$, '42501', NULL, 'a role outside partition_admin cannot maintain');
SELECT throws_ok($$CALL timepart._admin_run('maintain', 'own.ev', NULL, NULL, false, now())$$, '42501', NULL,
                 'nor call the admin route');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
