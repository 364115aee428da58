-- Security, in one place: the two roles, who may execute and read what, which
-- functions act with the owner's rights (SECURITY DEFINER), and a pinned search_path.
-- Every version script ends by running timepart._harden(), so functions added or
-- replaced by an upgrade get the same treatment as a fresh install.
--
-- The model (README, Security):
-- * Every statement on a user's table runs through the table owner's executor
--   (05_owner.sql): user code (triggers, constraints, index expressions, policies)
--   runs with the owner's rights only, whoever called.
-- * Operations (manage, maintain, cleanup, create_partition, ...) run as the caller,
--   who must own the table (or be a member of its owner, or a superuser); configuration,
--   templates and jobs are written through timepart's own functions, which check the
--   caller; the owner guards on timepart's tables check the old and the new row. A partition_admin who
--   does not own a registered table runs maintain, cleanup (configured retention) and
--   create_partition on it through 63_admin.sql, as timepart's owner.
-- * Reading (partition_stats, health, summary) and snapshot_stats, check_alerts run as
--   timepart's owner, so monitors need no access to the data; they read user tables
--   only through executors, and check the caller (_caller()) where rights matter.
-- * Scheduling runs as the caller. The log and migration state are written only by
--   timepart's PL/pgSQL functions (_written_by_timepart).
-- * Every PL/pgSQL function and every public wrapper runs with search_path pinned to
--   pg_catalog, pg_temp. Small private SQL helpers stay unpinned so the planner can
--   inline them; they are only called from pinned functions.

-- Roles timepart trusts are the two it made, or that a superuser made for it: no
-- attribute but NOLOGIN, and every membership in them granted by a superuser or by the
-- role installing timepart, with ADMIN OPTION held by no one else. A role made first by
-- a CREATEROLE role keeps ADMIN OPTION on it (16 and later) and could hand it to anyone.
CREATE OR REPLACE FUNCTION timepart._check_roles() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(x.problem, '; ' ORDER BY x.problem) INTO found FROM (
        SELECT format('%s has attributes beyond NOLOGIN', r.rolname) AS problem FROM pg_catalog.pg_roles r
        WHERE r.rolname IN ('partition_admin', 'partition_monitor')
          AND (r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls)
        UNION ALL
        SELECT format('%s was granted to %s by %s%s', r.rolname, m.member::regrole, m.grantor::regrole,
                      CASE WHEN m.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END)
        FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
        LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.grantor LEFT JOIN pg_catalog.pg_roles w ON w.oid = m.member
        WHERE r.rolname IN ('partition_admin', 'partition_monitor') AND NOT coalesce(w.rolsuper, false)
          AND ((m.admin_option AND w.rolname IS DISTINCT FROM current_user)
               OR (NOT coalesce(g.rolsuper, false) AND g.rolname IS DISTINCT FROM current_user))
        UNION ALL
        -- Whoever made the role first could have made objects as it (a SECURITY DEFINER
        -- function that keeps its rights): a role timepart trusts owns nothing, anywhere.
        SELECT format('%s owns objects (%s in all, in any database)', r.rolname, count(*))
        FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.deptype = 'o'
          AND r.rolname IN ('partition_admin', 'partition_monitor')
        GROUP BY r.rolname) x;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'roles partition_admin and partition_monitor exist already, with rights timepart did not give'
            USING ERRCODE = '42501', DETAIL = found || '.',
                  HINT = 'A superuser revokes those grants and attributes (REVOKE partition_admin FROM ...; ALTER ROLE ... NOLOGIN), '
                         'or drops the roles, then installs timepart.';
    END IF;
END $$;

-- (fresh install only) The roles: made when missing, checked when found.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_monitor', 'partition_admin')) THEN
        PERFORM timepart._check_roles();
    END IF;
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
    END;
END $$;

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Only an owner of a table (or a member of its owner role, or a superuser) may
   register, reconfigure or forget it, or change its index templates or migration.
   Both the row as it was and the row as it becomes are checked, so an UPDATE cannot
   take another owner's row. TG_ARGV names the columns holding tables (a migration's
   source and target both). */
DECLARE
    col text;
    tbl regclass;
    side record;
BEGIN
    FOR side IN SELECT x.r, u.c FROM (VALUES (CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN pg_catalog.to_jsonb(OLD) END),
                                            (CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN pg_catalog.to_jsonb(NEW) END)) x(r),
                                    unnest(CASE WHEN TG_NARGS = 0 THEN ARRAY['parent'] ELSE TG_ARGV END) u(c)
                WHERE x.r IS NOT NULL LOOP
        col := side.c;
        -- A dropped table's oid prints as digits: cast those without a catalog lookup.
        tbl := CASE WHEN (side.r ->> col) ~ '^[0-9]+$' THEN (side.r ->> col)::oid::regclass ELSE (side.r ->> col)::regclass END;
        -- The session's role (timepart's functions write these rows as timepart's owner);
        -- nobody's inside a table owner's code. A row may go on naming a dropped table (a
        -- migration's copy after an abort), never start to.
        IF NOT (CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl) THEN TG_OP <> 'INSERT'
                     ELSE coalesce(timepart._may_act(timepart._caller(), tbl), false) END) THEN
            RAISE EXCEPTION 'must be owner of table % to manage it', coalesce(tbl::regclass::text, side.r ->> col) USING ERRCODE = '42501',
                DETAIL = format('%s is owned by %s.', tbl::regclass,
                                coalesce((SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE oid = tbl), 'nobody: it does not exist')),
                HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

-- Tables only timepart's own functions write: the statement must be one of a PL/pgSQL
-- function of schema timepart, as its source has it (the nearest frame, _calling_function), not
-- from a client, a DO block, a user's function or a trigger; and no table owner's code
-- may be running (an executor on the stack): a rule action has no frame of its own, so
-- an owner's DO INSTEAD rule would otherwise pass as the executor's own statement. On
-- the log, who and when are set here, by the server.
CREATE OR REPLACE FUNCTION timepart._written_by_timepart() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
    stack text;
    frame text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    -- The function that ran the writing statement, told for certain (_calling_context);
    -- for timepart._log, the function that called it (CALL timepart._log(...)), the same way.
    ctx := timepart._calling_context(ctx);
    IF split_part(ctx, E'\n', 1) ~ '^PL/pgSQL function timepart\._log\(' THEN
        ctx := timepart._calling_context(ctx);
    END IF;
    frame := NULLIF(split_part(ctx, E'\n', 1), '');
    -- Nobody writes these rows but timepart, and a superuser: pg_restore puts a dump's log
    -- and migration rows back as they were (who and when included); a superuser may trim.
    GET DIAGNOSTICS stack = PG_CONTEXT;
    IF frame IS NULL OR frame !~ '^PL/pgSQL function timepart\.' OR stack ~ 'function timepart\._as_owner_[0-9]+\(' THEN
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        RAISE EXCEPTION 'timepart.% is written only by timepart''s functions', TG_TABLE_NAME USING ERRCODE = '42501',
            DETAIL = format('A direct %s was refused (from %s).', TG_OP, coalesce(frame, 'a client statement')),
            HINT = 'Use timepart''s functions; this table records what they did.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_TABLE_NAME = 'maintenance_log' AND TG_OP = 'INSERT' THEN
        NEW.created_at := pg_catalog.clock_timestamp();
        NEW.run_by := session_user;
        NEW.run_as := current_user;
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS maintenance_log_written_by_timepart ON timepart.maintenance_log;
CREATE TRIGGER maintenance_log_written_by_timepart BEFORE INSERT OR UPDATE OR DELETE ON timepart.maintenance_log
    FOR EACH ROW EXECUTE FUNCTION timepart._written_by_timepart();
DROP TRIGGER IF EXISTS migrations_written_by_timepart ON timepart.migrations;
CREATE TRIGGER migrations_written_by_timepart BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._written_by_timepart();

DROP TRIGGER IF EXISTS config_owner_guard ON timepart.config;
CREATE TRIGGER config_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.config
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard();
DROP TRIGGER IF EXISTS index_templates_owner_guard ON timepart.index_templates;
CREATE TRIGGER index_templates_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.index_templates
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('parent');
DROP TRIGGER IF EXISTS migrations_owner_guard ON timepart.migrations;
CREATE TRIGGER migrations_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('source', 'target');

-- Which public functions a monitor may call (partition_admin may call every function but
-- the private ones).
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.period_of', 'timepart.migration',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log',
                 'timepart._email_events', 'timepart._seed_stats', 'timepart._on_path'];
END;

-- Functions that act with timepart's owner's rights (SECURITY DEFINER), in three kinds;
-- tests/pgtap/definers.sql checks that every such function is one of them, and that each
-- entry point refuses what its caller may not do.
-- * Readers and operations of the public API, which check their caller (_caller()).
CREATE OR REPLACE FUNCTION timepart._definer_api() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.get_maintenance_log', 'timepart.migration',
                 'timepart.snapshot_stats', 'timepart.check_alerts'];
END;

-- * Entry points that timepart's own code reaches while running as its caller, so the
--   caller may execute them; each checks on its own, whoever calls it directly, that the
--   caller may do what it does: make an owner's executor, an archive or stage schema,
--   a partition's table, move a migration's triggers and publications, take a runner
--   lock, run partition_admin's operations; or gives what any monitor sees (a count).
CREATE OR REPLACE FUNCTION timepart._definer_entry_points() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart._executor', 'timepart._archive_schema', 'timepart._migrate_triggers', 'timepart._migrate_stage_schema',
                 'timepart._migrate_publications', 'timepart._new_partition_table', 'timepart._admin_run',
                 'timepart._admin_create_partition', 'timepart._runner_lock', 'timepart._runner_session_lock',
                 'timepart._runner_session_unlock', 'timepart._snapshot_count', 'timepart._config_put', 'timepart._config_drop',
                 'timepart._template_put', 'timepart._template_drop', 'timepart._jobs_put', 'timepart._jobs_clear'];
END;

-- * Private: trigger and event trigger functions, which nobody but timepart's owner may
--   execute (nobody can attach them to a table).
CREATE OR REPLACE FUNCTION timepart._private_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart._migrate_capture', 'timepart._migrate_refuse_truncate', 'timepart._config_guard',
                 'timepart._drop_jobs_with_extension', 'timepart._guard_seed_names', 'timepart._written_by_timepart',
                 'timepart._template_guard', 'timepart._jobs_guard'];
END;

-- PL/pgSQL functions that read the settings their caller runs with (a SET clause would
-- show them its own), and so carry none: the owner's room (06_room.sql). Every name in
-- their bodies is schema-qualified.
CREATE OR REPLACE FUNCTION timepart._unpinned_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['timepart._settings_now', 'timepart._room_state'];

-- Procedures that COMMIT (no SET clause possible): the job procedures and migrate.
CREATE OR REPLACE FUNCTION timepart._committing_procedures() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['timepart._each', 'timepart.maintain_each', 'timepart.cleanup_each', 'timepart.migrate',
             'timepart._migrate_swap_retrying'];

-- Every function that acts with timepart's owner's rights.
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT timepart._definer_api() OPERATOR(pg_catalog.||) timepart._definer_entry_points()
           OPERATOR(pg_catalog.||) ARRAY['timepart._migrate_capture', 'timepart._drop_jobs_with_extension', 'timepart._guard_seed_names'];
END;

CREATE OR REPLACE FUNCTION timepart._harden() RETURNS void
LANGUAGE plpgsql AS $$
/* Pins search_path, sets SECURITY DEFINER where listed, revokes everything from
   PUBLIC and grants the two roles their share. Safe to run again. */
DECLARE
    f record;
    roles_exist boolean := (SELECT count(*) = 2 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_admin', 'partition_monitor'));
BEGIN
    -- The owner's room compares this server's settings (06_room.sql).
    PERFORM timepart._make_settings_digest();
    FOR f IN
        SELECT p.oid::regprocedure AS sig, n.nspname || '.' || p.proname AS qname, l.lanname, p.prokind, n.nspname
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE (n.nspname = 'timepart' AND p.proname NOT LIKE '\_as\_owner\_%') OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they pin the path themselves,
        -- at the start of every transaction. The seed's names in public neither: SQL-standard
        -- bodies, bound at install, they find email_events on the caller's search_path.
        IF f.nspname = 'timepart' AND f.lanname = 'plpgsql' AND f.qname <> ALL (timepart._committing_procedures())
           AND f.qname <> ALL (timepart._unpinned_functions())
           OR f.prokind = 'f' AND f.qname = ANY (timepart._definer_functions()) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            -- jit off: timepart's queries read catalogs and small tables; compiling them
            -- cost about a second on a session's first statistics call at 12 x 1M rows.
            EXECUTE format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD'' SET jit = off', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER ROUTINE %s SECURITY DEFINER', f.sig);
        ELSIF f.prokind IN ('f', 'p') THEN
            EXECUTE format('ALTER ROUTINE %s SECURITY INVOKER', f.sig);
            IF f.nspname = 'public' THEN
                EXECUTE format('ALTER FUNCTION %s RESET ALL', f.sig);
            END IF;
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        IF roles_exist THEN
            EXECUTE format('REVOKE ALL ON %s %s FROM partition_admin, partition_monitor',
                           CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        END IF;
        -- Trigger functions are timepart's alone: nobody may attach them to a table.
        IF roles_exist AND f.qname <> ALL (timepart._private_functions()) THEN
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
        -- Exact key values are data: monitors read them through partition_stats, which hides them.
        REVOKE SELECT ON timepart.stats_history FROM partition_monitor;
        -- Who holds a table is timepart's business only.
        REVOKE SELECT ON timepart.runners FROM partition_monitor;
        -- A migration's checksums are sums of row hashes (a one-row table's could be guessed):
        -- its owner reads them through timepart.migration().
        REVOKE SELECT ON timepart.migrations FROM partition_monitor;
        EXECUTE (SELECT format('GRANT SELECT (%s) ON timepart.migrations TO partition_monitor',
                               string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum))
                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'timepart.migrations'::regclass AND a.attnum > 0
                 AND NOT a.attisdropped AND a.attname NOT IN ('source_checksum', 'target_checksum'));
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        -- Configuration, templates and jobs are written through timepart's own functions
        -- only (_config_put, _template_put, _jobs_put): a role that may write a table may
        -- lock it, and every operation reads them.
        REVOKE INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.jobs FROM partition_admin;
        GRANT INSERT, UPDATE, DELETE ON timepart.migrations TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
    -- The seed's names are guarded from here on (90_compat.sql): the event trigger comes
    -- last, once every function it calls is pinned. Event triggers need a superuser.
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        NULL;
    ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names') THEN
        CREATE EVENT TRIGGER timepart_seed_names ON ddl_command_end
            WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE', 'CREATE AGGREGATE',
                         'ALTER AGGREGATE', 'ALTER ROUTINE', 'CREATE VIEW', 'ALTER VIEW', 'CREATE TABLE',
                         'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
                         'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA', 'CREATE SEQUENCE',
                         'ALTER SEQUENCE', 'ALTER SCHEMA', 'CREATE SCHEMA', 'CREATE EXTENSION', 'ALTER EXTENSION',
                         'CREATE TYPE', 'ALTER TYPE', 'CREATE INDEX', 'ALTER INDEX')
            EXECUTE FUNCTION timepart._guard_seed_names();
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names' AND e.evtenabled = 'D') THEN
        ALTER EVENT TRIGGER timepart_seed_names ENABLE;  -- an upgrade script turned it off for its own DDL
    END IF;
END $$;
SELECT timepart._harden();
-- The rest of the installer's transaction (script mode) runs on the session's own path again.
SET LOCAL search_path TO DEFAULT;
