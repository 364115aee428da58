-- Security, in one place: the two roles, who may execute and read what, which
-- functions act with the owner's rights (SECURITY DEFINER), and a pinned search_path.
-- Every version script ends by running timepart._harden(), so functions added or
-- replaced by an upgrade get the same treatment as a fresh install.
--
-- The model:
-- * Operations (manage, maintain, cleanup, create_partition, ...) run with the
--   caller's rights: PostgreSQL's own ownership rules decide whose tables can be
--   partitioned, and the guard trigger on timepart.config refuses to register a
--   table the caller does not own (even by a direct INSERT).
-- * Reading (partition_stats, health, summary, the log) and the jobs that only read
--   user tables or write timepart's own (snapshot_stats, check_alerts, scheduling) run
--   with the owner's rights, so partition_monitor needs no access to the data. They
--   accept managed tables only.
-- * Every PL/pgSQL function and every public wrapper runs with search_path pinned to
--   pg_catalog, pg_temp, so nothing planted on a caller's search_path is picked up.
--   Small private SQL helpers stay unpinned so the planner can inline them; PUBLIC
--   cannot execute them and they are only called from pinned functions.

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'partition_monitor') THEN
        CREATE ROLE partition_monitor NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'partition_admin') THEN
        CREATE ROLE partition_admin NOLOGIN;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE WARNING 'timepart: could not create roles partition_admin and partition_monitor: %', SQLERRM
        USING HINT = 'Create them as a role with CREATEROLE, then run SELECT timepart._harden();';
END $$;

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Runs as the caller: only an owner of a table (or a member of its owner role) may
   register, reconfigure or forget it, or change its index templates or migration.
   TG_ARGV[0] names the column holding the table (default: parent). */
DECLARE
    tbl regclass := (pg_catalog.to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END)
                     ->> coalesce(TG_ARGV[0], 'parent'))::regclass;
BEGIN
    IF NOT pg_catalog.pg_has_role(current_user, (SELECT relowner FROM pg_catalog.pg_class WHERE oid = tbl), 'USAGE') THEN
        RAISE EXCEPTION 'must be owner of table % to manage it', tbl USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s.', tbl, (SELECT relowner::regrole FROM pg_catalog.pg_class WHERE oid = tbl)),
            HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
    END IF;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;
DROP TRIGGER IF EXISTS config_owner_guard ON timepart.config;
CREATE TRIGGER config_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.config
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard();
DROP TRIGGER IF EXISTS index_templates_owner_guard ON timepart.index_templates;
CREATE TRIGGER index_templates_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.index_templates
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('parent');
DROP TRIGGER IF EXISTS migrations_owner_guard ON timepart.migrations;
CREATE TRIGGER migrations_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('source');

-- Which public functions a role may call. Everything else in the schema is private.
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log']
$$;

-- Functions that act with the owner's rights (they read user tables or write timepart's own).
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT timepart._monitor_functions() || ARRAY['timepart.snapshot_stats', 'timepart.check_alerts',
                                                  'timepart.schedule_jobs', 'timepart.unschedule_jobs']
$$;

-- The seed's names timepart puts in public.
CREATE OR REPLACE FUNCTION timepart._public_names() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['create_email_events_partition', 'maintain_email_events_partitions', 'cleanup_old_email_events_partitions',
                 'get_email_events_partition_stats', 'get_partition_maintenance_log']
$$;

CREATE OR REPLACE FUNCTION timepart._harden() RETURNS void
LANGUAGE plpgsql AS $$
/* Pins search_path, sets SECURITY DEFINER where listed, revokes everything from
   PUBLIC and grants the two roles their share. Safe to run again. */
DECLARE
    f record;
    roles_exist boolean := (SELECT count(*) = 2 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_admin', 'partition_monitor'));
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, n.nspname || '.' || p.proname AS qname, l.lanname, p.prokind, n.nspname
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE n.nspname = 'timepart' OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they qualify every name instead.
        IF f.prokind = 'f' AND (f.lanname = 'plpgsql' OR f.nspname = 'public' OR f.qname = ANY (timepart._definer_functions())) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD''', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        IF roles_exist THEN
            EXECUTE format('GRANT EXECUTE ON %s %s TO partition_admin', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
            IF f.qname = ANY (timepart._monitor_functions()) THEN
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO partition_monitor', f.sig);
            END IF;
        END IF;
    END LOOP;

    REVOKE ALL ON ALL TABLES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON public.partition_maintenance_log FROM PUBLIC;
    IF roles_exist THEN
        GRANT partition_monitor TO partition_admin;
        GRANT USAGE ON SCHEMA timepart TO partition_admin, partition_monitor;
        GRANT SELECT ON ALL TABLES IN SCHEMA timepart TO partition_monitor;
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        GRANT INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.migrations TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;
SELECT timepart._harden();
