-- Roles: partition_admin operates on tables it owns, partition_monitor reads, nobody else does anything.
\ir setup.psql
SELECT plan(37);
CREATE ROLE tp_admin LOGIN IN ROLE partition_admin;
CREATE ROLE tp_monitor LOGIN IN ROLE partition_monitor;
CREATE ROLE tp_nobody LOGIN;
CREATE ROLE tp_other LOGIN;
GRANT CREATE ON SCHEMA public TO tp_admin, tp_other;  -- an owner needs CREATE where its partitions go
CREATE TABLE admin_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE admin_ev OWNER TO tp_admin;
CREATE TABLE other_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE other_ev OWNER TO tp_other;
SELECT timepart.manage('other_ev', '1 month', 1, as_of => '2024-03-15');
CREATE TABLE loose_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE loose_ev OWNER TO tp_other;

SELECT is((SELECT count(*) FROM pg_proc p WHERE (p.pronamespace = 'timepart'::regnamespace OR p.proname = ANY (timepart._public_names()))
           AND has_function_privilege('tp_nobody', p.oid, 'EXECUTE')), 0::bigint, 'PUBLIC may execute no timepart function');
SELECT is((SELECT count(*) FROM pg_class c WHERE c.relnamespace = 'timepart'::regnamespace AND c.relkind IN ('r', 'v')
           AND has_table_privilege('tp_nobody', c.oid, 'SELECT')), 0::bigint, 'PUBLIC may read no timepart table');
SELECT is(has_table_privilege('tp_nobody', 'public.partition_maintenance_log', 'SELECT'), false, 'nor the seed''s log view');

SET ROLE tp_nobody;
SELECT throws_ok($$SELECT timepart.health()$$, '42501', NULL, 'a role in neither group cannot check health');
SELECT throws_ok($$SELECT * FROM get_email_events_partition_stats()$$, '42501', NULL, 'nor read stats through the seed name');
SELECT throws_ok($$SELECT timepart.maintain()$$, '42501', NULL, 'nor maintain');
RESET ROLE;

SET ROLE tp_monitor;
SELECT is(timepart.health('other_ev', '2024-03-15')->>'status', 'warning', 'a monitor reads health');
SELECT is((SELECT count(*) FROM timepart.partition_stats('other_ev')), 3::bigint, 'a monitor reads stats without access to the rows');
SELECT lives_ok($$SELECT timepart.summary()$$, 'a monitor reads the summary');
SELECT lives_ok($$SELECT * FROM timepart.get_maintenance_log(5)$$, 'a monitor reads the log');
SELECT lives_ok($$SELECT * FROM timepart.open_alerts$$, 'a monitor reads open alerts');
SELECT throws_ok($$SELECT timepart.maintain('other_ev')$$, '42501', NULL, 'a monitor cannot maintain');
SELECT throws_ok($$SELECT timepart.cleanup('other_ev')$$, '42501', NULL, 'a monitor cannot clean up');
SELECT throws_ok($$SELECT * FROM timepart.check_alerts()$$, '42501', NULL, 'a monitor cannot run the alert check');
SELECT throws_ok($$SELECT timepart.configure('other_ev', '{"premake": 2}')$$, '42501', NULL, 'a monitor cannot configure');
SELECT throws_ok($$SELECT * FROM timepart.schedule_jobs()$$, '42501', NULL, 'a monitor cannot schedule');
SELECT throws_ok($$SELECT timepart.health(NULL, NULL); INSERT INTO timepart.maintenance_log (operation_type, success) VALUES ('x', true)$$,
                 '42501', NULL, 'a monitor cannot write the log');
RESET ROLE;

SET ROLE tp_admin;
SELECT lives_ok($$SELECT timepart.manage('admin_ev', '1 month', 1, as_of => '2024-03-15')$$, 'an admin manages a table it owns');
SELECT is((SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
           WHERE i.inhparent = 'admin_ev'::regclass AND c.relowner = 'tp_admin'::regrole), 3::bigint,
          'its partitions belong to the table''s owner');
SELECT throws_ok($$SELECT timepart.manage('loose_ev')$$, '42501', 'must be owner of table public.loose_ev to manage it',
                 'an admin cannot register a table it does not own');
SELECT throws_ok($$INSERT INTO timepart.config (parent, key_column, key_type) VALUES ('loose_ev', 'ts', 'timestamptz')$$, '42501',
                 'permission denied for table config', 'not even by writing the configuration directly (only timepart writes it)');
SELECT throws_ok($$SELECT timepart._config_put(ROW('loose_ev', 'ts', 'timestamptz', '1 month', 6, NULL, 'drop', NULL, true, '100 ms', 3, 'UTC',
                   5368709120, 10000000, 2, 0.5, '13 months', now(), NULL, false, '{}', false)::timepart.config)$$, '42501',
                 'must be owner of table public.loose_ev to manage it', 'nor through timepart''s writer');
SELECT throws_ok($$LOCK TABLE timepart.config IN ACCESS EXCLUSIVE MODE$$, '42501', NULL,
                 'nor lock it, to hold every table''s maintenance up');
SELECT throws_ok($$SELECT timepart.configure('other_ev', '{"premake": 5}')$$, '42501',
                 'must be owner of table public.other_ev to manage it', 'nor reconfigure another owner''s table');
SELECT is(timepart.maintain('other_ev', 3, '2024-03-15')->'success', 'true'::jsonb,
          'an admin maintains another owner''s registered table (the seed: superuser or partition_admin; admin.sql)');
SELECT throws_ok($$SELECT timepart.create_partition('pg_class', '2024-01-01', '2024-02-01')$$, '22023',
                 'table pg_class is not managed by timepart', 'an unmanaged table is not touched');
SELECT lives_ok($$SELECT * FROM timepart.check_alerts()$$, 'an admin runs the alert check');
SELECT throws_ok($$INSERT INTO timepart.index_templates (parent, suffix, columns) VALUES ('other_ev', 'grab_idx', 'ts')$$, '42501',
                 'permission denied for table index_templates', 'an admin cannot add templates to another owner''s table');
SELECT throws_ok($$SELECT timepart.add_index_template('other_ev', 'grab_idx', 'ts')$$, '42501',
                 'must be owner of table public.other_ev to change its index templates', 'nor through timepart''s functions');
SELECT throws_ok($$DELETE FROM timepart.config WHERE parent = 'other_ev'::regclass$$, '42501',
                 'permission denied for table config', 'nor forget another owner''s table');
SELECT throws_ok($$SELECT timepart.unmanage('other_ev')$$, '42501',
                 'must be owner of table public.other_ev to stop managing it', 'even through unmanage');
SELECT throws_ok($$UPDATE timepart.maintenance_log SET success = true$$, '42501', NULL, 'nor rewrite the log');
SELECT throws_ok($$DELETE FROM timepart.stats_history$$, '42501', NULL, 'nor forge the stats history');
-- A planted capture trigger (the migration's, with arguments of the admin's choosing) does nothing.
CREATE TABLE sink (x text);
CREATE TABLE bait (x int);
SELECT throws_ok($$CREATE TRIGGER planted AFTER INSERT ON bait REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture('public.sink', 'current_user')$$, '42501', NULL,
    'the migration''s capture trigger function cannot be attached by an admin');
RESET ROLE;
SELECT is((SELECT rolsuper FROM pg_roles WHERE rolname = 'tp_admin'), false, 'the admin is no superuser');

SELECT is((SELECT count(*) FROM pg_inherits WHERE inhparent = 'other_ev'::regclass), 5::bigint,
          'another owner''s table holds what maintain made (3 ahead and the default), nothing else');
SELECT is((SELECT run_by || ' as ' || run_as FROM timepart.maintenance_log WHERE operation_type = 'manage'
           AND parent_table = 'public.admin_ev'), session_user || ' as tp_admin', 'the log records session_user and current_user');

SELECT * FROM finish();
ROLLBACK;
