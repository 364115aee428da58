-- Nothing timepart trusts can be planted first: the seed's names (an overload PostgreSQL
-- would prefer, a function in a "$user" schema, a renamed function, a look-alike view),
-- schema timepart, the roles, a CREATE EXTENSION by a non-superuser; and the table
-- timepart takes its runner lock on is no one else's to lock.
\ir setup.psql
SELECT plan(24);
CREATE ROLE tp_dbo LOGIN IN ROLE partition_admin;
CREATE ROLE tp_plain LOGIN;
GRANT CREATE ON DATABASE timepart_test TO tp_dbo;
GRANT CREATE ON SCHEMA public TO tp_dbo;

-- 1. The seed's names, as a role that may create in public and in the database.
SET ROLE tp_dbo;
SELECT throws_ok($$CREATE FUNCTION public.create_email_events_partition(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a'$$,
                 '42723', 'the seed''s names are timepart''s',
                 'an overload in public that PostgreSQL would prefer for two quoted literals is refused');
SELECT throws_ok($$CREATE FUNCTION public.maintain_email_events_partitions() RETURNS jsonb LANGUAGE sql AS 'SELECT NULL::jsonb'$$,
                 '42723', NULL, 'a zero-argument overload is refused');
CREATE SCHEMA postgres;  -- the superuser's "$user" schema: first on its default search_path
SELECT throws_ok($$CREATE FUNCTION postgres.get_partition_maintenance_log(n integer) RETURNS integer LANGUAGE sql AS 'SELECT n'$$,
                 '42723', NULL, 'the same signature in a "$user" schema is refused');
SELECT throws_ok($$CREATE VIEW postgres.partition_maintenance_log AS SELECT 1 AS id$$, '42723', NULL,
                 'a look-alike of the seed''s view is refused');
SELECT throws_ok($$CREATE TEMP VIEW partition_maintenance_log AS SELECT 1 AS id$$, '42723', NULL, 'so is a temporary one');
CREATE FUNCTION postgres.harmless(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a';
SELECT throws_ok($$ALTER FUNCTION postgres.harmless(text, text) RENAME TO create_email_events_partition$$, '42723', NULL,
                 'a function renamed to a seed name is refused');
SELECT throws_ok($$CREATE TYPE postgres.create_email_events_partition AS RANGE (subtype = text)$$, '42723', NULL,
                 'so is a range type, whose constructor is a function of its name');
CREATE TABLE postgres.t (x int);
SELECT throws_ok($$CREATE INDEX partition_maintenance_log ON postgres.t (x)$$, '42723', NULL, 'and an index named like the seed''s view');
RESET ROLE;
SELECT is((SELECT array_agg(p.oid::regprocedure::text ORDER BY p.oid::regprocedure::text) FROM pg_proc p WHERE p.proname = ANY (timepart._public_names())),
          (SELECT array_agg(s::regprocedure::text ORDER BY s::regprocedure::text) FROM unnest(timepart._public_signatures()) s),
          'only timepart''s five seed functions exist');
SET search_path = "$user", public;
SELECT throws_ok($$SELECT create_email_events_partition('2024-03-01', '2024-04-01')$$, '42P01', 'no managed email_events table',
                 'the seed call with two literals reaches timepart''s function');
RESET search_path;

-- A shadow made while the event trigger was off is found, and an install refuses it.
ALTER EVENT TRIGGER timepart_seed_names DISABLE;
SET ROLE tp_dbo;
CREATE FUNCTION public.create_email_events_partition(a text, b text) RETURNS text LANGUAGE sql AS 'SELECT a';
RESET ROLE;
ALTER EVENT TRIGGER timepart_seed_names ENABLE;
SELECT throws_like($$SELECT timepart._refuse_seed_shadows()$$, '%seed''s names are timepart''s%', 'the shadow is found');
SELECT lives_ok($$CREATE TABLE public.unrelated (x int)$$, 'but it fails no one''s unrelated DDL');
DROP EXTENSION timepart;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42723', NULL, 'a fresh install refuses while the shadow is there');
DROP FUNCTION public.create_email_events_partition(text, text);

-- 2. Schema timepart made first by someone else.
SET ROLE tp_dbo;
CREATE SCHEMA timepart;
CREATE FUNCTION timepart.version() RETURNS text LANGUAGE sql AS 'SELECT ''0.13''';
RESET ROLE;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42P06', 'schema timepart exists already, owned by tp_dbo',
                 'an install refuses a schema timepart someone else made');
DROP SCHEMA timepart CASCADE;

-- 3. Only a superuser installs timepart as an extension.
SET ROLE tp_dbo;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42501', NULL, 'CREATE EXTENSION by a non-superuser is refused');
RESET ROLE;

-- 4. Roles made first by a CREATEROLE role, which could then hand them to anyone.
ALTER ROLE partition_admin RENAME TO tp_admin_was;
ALTER ROLE partition_monitor RENAME TO tp_monitor_was;
CREATE ROLE tp_creator CREATEROLE;
SET ROLE tp_creator;
CREATE ROLE partition_monitor;
CREATE ROLE partition_admin;
GRANT partition_admin TO tp_plain;
RESET ROLE;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42501',
                 'roles partition_admin and partition_monitor exist already, with rights timepart did not give',
                 'an install refuses roles someone else made and granted');
DROP ROLE partition_admin;
DROP ROLE partition_monitor;
CREATE ROLE partition_monitor NOLOGIN;
CREATE ROLE partition_admin LOGIN;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42501', NULL, 'and roles that may log in');
DROP ROLE partition_admin;
DROP ROLE partition_monitor;
CREATE ROLE partition_monitor NOLOGIN;
CREATE ROLE partition_admin NOLOGIN;
CREATE FUNCTION public.kept_rights() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
ALTER FUNCTION public.kept_rights() OWNER TO partition_admin;
SELECT throws_ok($$CREATE EXTENSION timepart$$, '42501', NULL, 'and roles that own something (made as the role by whoever made it)');
DROP FUNCTION public.kept_rights();
DROP ROLE partition_admin;
DROP ROLE partition_monitor;
ALTER ROLE tp_admin_was RENAME TO partition_admin;
ALTER ROLE tp_monitor_was RENAME TO partition_monitor;
SELECT lives_ok($$CREATE EXTENSION timepart$$, 'roles a superuser made and granted are timepart''s to use');
SELECT is((SELECT count(*) FROM pg_auth_members m WHERE m.roleid IN ('partition_admin'::regrole, 'partition_monitor'::regrole)
           AND m.admin_option), 0::bigint, 'nobody holds ADMIN OPTION on timepart''s roles');

-- 5. The runner lock: rows only timepart's owner may lock.
CREATE TABLE public.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
ALTER TABLE public.ev OWNER TO tp_dbo;
SET ROLE tp_dbo;
SELECT timepart.manage('public.ev', '1 month', 1, as_of => '2024-03-15') IS NOT NULL;
SELECT throws_ok($$SELECT * FROM timepart.runners FOR UPDATE$$, '42501', NULL, 'a partition_admin cannot lock a runner row');
SELECT throws_ok($$LOCK TABLE timepart.runners$$, '42501', NULL, 'nor the table');
RESET ROLE;
SET ROLE tp_plain;
SELECT throws_ok($$SELECT timepart._runner_lock('public.ev', '0')$$, '42501', NULL, 'a role outside timepart cannot take the lock');
RESET ROLE;
SET ROLE partition_monitor;
SELECT throws_ok($$SELECT timepart._runner_lock('public.ev', '0')$$, '42501', NULL, 'nor can a monitor');
RESET ROLE;
SELECT * FROM finish();
ROLLBACK;
