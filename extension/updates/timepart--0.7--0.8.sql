-- timepart 0.7 -> 0.8: no path to more rights.
-- Work on user tables runs through the table owner's executor; guards see old and new
-- rows; the log and migration state are written only by timepart; scheduling runs as
-- the caller; archive schemas belong to the table's owner; monitors see no key values.
-- Drafted by tools/sqldelta.py from the 0.7 and 0.8 full scripts; tables by hand.

ALTER TABLE timepart.config ADD COLUMN monitor_sees_values boolean NOT NULL DEFAULT false;
ALTER TABLE timepart.jobs ADD COLUMN scheduled_by name NOT NULL DEFAULT current_user;
-- Jobs scheduled before 0.8 ran as timepart's owner: they stay that role's.
UPDATE timepart.jobs SET scheduled_by = (SELECT r.rolname FROM pg_catalog.pg_roles r JOIN pg_catalog.pg_namespace n ON n.nspowner = r.oid
                                         WHERE n.nspname = 'timepart');

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.8'::text $$;

-- ==== src/05_owner.sql
-- Running work on a user's table with the table owner's rights, and only those.
--
-- Every statement timepart runs on a user's table (DDL, row moves, counts) may make
-- PostgreSQL run code the owner controls: triggers, constraints, defaults, generated
-- columns, index expressions and predicates (the planner folds those too), policies.
-- So none of them runs as the caller. Each goes through the owner's executor: a
-- SECURITY DEFINER function owned by the table's owner, created by timepart, that
-- refuses to run unless it really runs as that owner with no way to change role
-- (inside a security-definer function PostgreSQL refuses SET ROLE and SET SESSION
-- AUTHORIZATION). This is how VACUUM, ANALYZE and REINDEX run index code, from SQL.
--
-- The owner may ALTER its executor (it owns it) but cannot replace its body (no CREATE
-- on schema timepart); the body checks its own context on every call, so an executor
-- turned into SECURITY INVOKER, or given other settings, refuses to run.

-- The role that called into timepart, seen from inside a SECURITY DEFINER function
-- (where current_user is the definer): the session's SET ROLE, else the session user.
CREATE OR REPLACE FUNCTION timepart._caller() RETURNS name
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none' THEN session_user
                ELSE pg_catalog.current_setting('role')::name END
$$;

-- Whether a role may act on a table: it owns it, is a member of its owner role, or is a
-- superuser. NULL when the table does not exist.
CREATE OR REPLACE FUNCTION timepart._may_act(who name, tbl regclass) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT pg_catalog.pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl), 'USAGE')
$$;

-- The refusal when a role may not act on a table; action completes "must be owner of table t to ...".
CREATE OR REPLACE FUNCTION timepart._check_may_act(who name, tbl regclass, action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT coalesce(timepart._may_act(who, tbl), false) THEN
        RAISE EXCEPTION 'must be owner of table % to %', tbl, action USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s; %s is neither that role, a member of it, nor a superuser.', tbl,
                            coalesce((SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c WHERE c.oid = tbl), 'nobody'), who),
            HINT = 'Run it as the table''s owner, a member of the owning role, or a superuser.';
    END IF;
END $$;

-- The name of a role's executor.
CREATE OR REPLACE FUNCTION timepart._executor_name(owner_oid oid) RETURNS name
LANGUAGE sql IMMUTABLE AS $$ SELECT ('_as_owner_' || owner_oid::text)::name $$;

-- The body of an executor for one role. Every name in it is schema-qualified and every
-- operator spelled OPERATOR(pg_catalog.x): its owner can change its search_path.
CREATE OR REPLACE FUNCTION timepart._executor_body(owner_name name) RETURNS text
LANGUAGE sql IMMUTABLE AS $body$
    SELECT pg_catalog.format($f$
DECLARE
    result pg_catalog.jsonb;
    n pg_catalog.int8;
    escaped pg_catalog.bool := false;
BEGIN
    IF current_user OPERATOR(pg_catalog.<>) %1$L::pg_catalog.name THEN
        RAISE EXCEPTION 'timepart: the executor of %% runs as %%', %1$L, current_user USING ERRCODE = '42501';
    END IF;
    -- Only a security-definer context refuses a role change: prove we are in one.
    BEGIN
        PERFORM pg_catalog.set_config('role', 'none', true);
        escaped := true;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    IF escaped THEN
        RAISE EXCEPTION 'timepart: the executor of %% is not a security definer', %1$L USING ERRCODE = '42501',
            HINT = 'Someone altered it; timepart refuses to run user code through it.';
    END IF;
    IF wants_value THEN
        EXECUTE q INTO result;
    ELSE
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := pg_catalog.jsonb_build_object('rows', n);
    END IF;
    RETURN result;
END $f$, owner_name)
$body$;

-- A role's executor (its qualified name), created when missing. SECURITY DEFINER (as the extension's owner):
-- only it may create a function owned by another role. Refuses an executor someone
-- tampered with (it is re-created only by dropping it).
CREATE OR REPLACE FUNCTION timepart._executor(owner_oid oid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    fname name := timepart._executor_name(owner_oid);
    owner_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner_oid);
    f record;
    sig text;
BEGIN
    IF owner_name IS NULL THEN
        RAISE EXCEPTION 'role with oid % does not exist', owner_oid USING ERRCODE = '42704',
            DETAIL = 'timepart runs work on a table with its owner''s rights.', HINT = 'Check the table''s owner.';
    END IF;
    sig := pg_catalog.format('timepart.%I(pg_catalog.text, pg_catalog.bool)', fname);
    SELECT p.proowner, p.prosecdef, p.prosrc INTO f FROM pg_catalog.pg_proc p
    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'timepart'::pg_catalog.regnamespace AND p.proname OPERATOR(pg_catalog.=) fname;
    IF FOUND THEN
        IF f.proowner OPERATOR(pg_catalog.<>) owner_oid OR NOT f.prosecdef
           OR f.prosrc OPERATOR(pg_catalog.<>) timepart._executor_body(owner_name) THEN
            RAISE EXCEPTION 'the timepart executor of role % was altered', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('%s: owner %s, security definer %s.', sig, f.proowner::regrole, f.prosecdef),
                HINT = pg_catalog.format('A superuser can drop it (ALTER EXTENSION timepart DROP FUNCTION %s; DROP FUNCTION %s;); '
                                         'timepart makes it again.', sig, sig);
        END IF;
        RETURN pg_catalog.format('timepart.%I', fname);
    END IF;
    EXECUTE pg_catalog.format('CREATE FUNCTION %s RETURNS pg_catalog.jsonb LANGUAGE plpgsql SECURITY DEFINER '
                              'SET search_path = pg_catalog, pg_temp AS %L',
                              pg_catalog.format('timepart.%I(q pg_catalog.text, wants_value pg_catalog.bool)', fname),
                              timepart._executor_body(owner_name));
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', sig);
    IF owner_name OPERATOR(pg_catalog.<>) current_user THEN
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', sig, owner_name);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'timepart cannot act with the rights of role %', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('timepart''s owner %s is not a superuser and cannot give role %s a function.',
                                           current_user, owner_name),
                HINT = 'Install timepart as a superuser, or manage only tables owned by the role that installed it.';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'timepart') THEN
        -- DROP EXTENSION takes it along.
        EXECUTE pg_catalog.format('ALTER EXTENSION timepart ADD FUNCTION %s', sig);
    END IF;
    RETURN pg_catalog.format('timepart.%I', fname);
END $$;

-- Runs one statement on a user's table with the rights of the table's owner. wants_value:
-- the statement returns one jsonb value, which comes back; else {"rows": n}.
CREATE OR REPLACE FUNCTION timepart._as_owner(tbl regclass, q text, wants_value boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
    result jsonb;
BEGIN
    IF owner_oid IS NULL THEN
        RAISE EXCEPTION 'relation % does not exist', tbl USING ERRCODE = '42P01';
    END IF;
    PERFORM timepart._check_may_act(current_user, tbl, 'run this on it');
    EXECUTE pg_catalog.format('SELECT %s($1, $2)', timepart._executor(owner_oid)) INTO result USING q, wants_value;
    RETURN result;
END $$;

COMMENT ON COLUMN timepart.config.monitor_sees_values IS 'Whether roles that may not SELECT the table see its exact oldest and newest key values in stats (counts and sizes they always see)';

-- The refusal for settings that break a rule, with the rule in the message. The
-- CHECK constraints on timepart.config say the same; this says it with DETAIL and HINT.
CREATE OR REPLACE FUNCTION timepart._check_settings(cfg timepart.config) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM timepart._check_interval(cfg.partition_interval);
    IF cfg.premake IS NULL OR cfg.premake < 1 OR cfg.premake > 1000 THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.premake::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
    END IF;
    IF cfg.retention IS NOT NULL AND (cfg.retention <= interval '0' OR timepart._mixed_signs(cfg.retention)) THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', cfg.retention), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
    END IF;
    IF cfg.retention_action IS NULL OR cfg.retention_action NOT IN ('drop', 'detach', 'archive') THEN
        RAISE EXCEPTION 'retention_action must be drop, detach or archive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.retention_action, 'NULL')),
            HINT = 'drop removes old partitions, detach keeps them as tables, archive moves them to archive_schema.';
    END IF;
    IF cfg.archive_schema IS NOT NULL THEN
        PERFORM timepart._check_archive_schema(cfg.archive_schema);
    END IF;
    IF cfg.retention_action = 'archive' AND cfg.archive_schema IS NULL THEN
        RAISE EXCEPTION 'retention_action archive needs an archive_schema' USING ERRCODE = '22023',
            DETAIL = 'archive_schema is NULL.', HINT = 'Set archive_schema, e.g. ''archive''; it is created when missing.';
    END IF;
    IF cfg.lock_timeout IS NULL OR cfg.lock_timeout <= interval '0' OR cfg.lock_timeout > interval '1 minute' THEN
        RAISE EXCEPTION 'lock_timeout must be between 0 and 1 minute' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_timeout::text, 'NULL')),
            HINT = 'A maintenance step waits at most this long for a lock; 100 ms suits busy tables.';
    END IF;
    IF cfg.lock_retries IS NULL OR cfg.lock_retries NOT BETWEEN 0 AND 20 THEN
        RAISE EXCEPTION 'lock_retries must be between 0 and 20' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_retries::text, 'NULL')), HINT = 'A few retries (3) suit most tables.';
    END IF;
    IF cfg.time_zone IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names WHERE name = cfg.time_zone)
                  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_abbrevs WHERE abbrev = cfg.time_zone) THEN
        RAISE EXCEPTION 'unknown time zone "%"', cfg.time_zone USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
    IF cfg.alert_max_size_bytes IS NULL OR cfg.alert_max_size_bytes <= 0 OR cfg.alert_max_rows IS NULL OR cfg.alert_max_rows <= 0
       OR cfg.alert_min_future IS NULL OR cfg.alert_min_future < 0 OR cfg.alert_growth_ratio IS NULL OR cfg.alert_growth_ratio <= 0
       OR cfg.alert_old_age IS NULL OR cfg.alert_old_age <= interval '0' THEN
        RAISE EXCEPTION 'alert thresholds must be positive' USING ERRCODE = '22023',
            DETAIL = format('max size %s bytes, max rows %s, min future %s, growth ratio %s, old age %s.',
                            cfg.alert_max_size_bytes, cfg.alert_max_rows, cfg.alert_min_future, cfg.alert_growth_ratio, cfg.alert_old_age),
            HINT = 'The seed''s defaults are 5 GB, 10 million rows, 2 future partitions, 0.5 (50%) and 13 months.';
    END IF;
END $$;

-- Validates a table and settings and writes its configuration row. No partitions yet.
CREATE OR REPLACE FUNCTION timepart._register(tbl regclass, step interval, ahead integer, keep interval,
                                              with_default boolean, lock_wait interval, tz text)
RETURNS timepart.config LANGUAGE plpgsql AS $$
DECLARE
    pt record;
    cfg timepart.config;
    old timepart.config;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'parent table must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'No table was given.', HINT = 'Pass the partitioned table, e.g. timepart.manage(''public.email_events'').';
    END IF;
    SELECT c.relkind, p.partstrat, p.partnatts, p.partattrs[0] AS keynum, a.attname, a.atttypid::regtype AS keytype
    INTO pt
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
    WHERE c.oid = tbl;
    IF pt.relkind IS DISTINCT FROM 'p' THEN
        RAISE EXCEPTION 'table % is not partitioned', tbl USING ERRCODE = '22023',
            DETAIL = format('relkind is %s; timepart manages tables declared PARTITION BY RANGE.', pt.relkind),
            HINT = 'Create it with PARTITION BY RANGE (<timestamptz column>).';
    END IF;
    IF pt.partstrat <> 'r' OR pt.partnatts <> 1 OR pt.keynum = 0 THEN
        RAISE EXCEPTION 'table % is not partitioned by range on a single column', tbl USING ERRCODE = '22023',
            DETAIL = format('Partition key: %s.', pg_catalog.pg_get_partkeydef(tbl)),
            HINT = 'timepart manages tables declared PARTITION BY RANGE (<one timestamptz, timestamp or date column>).';
    END IF;
    IF pt.keytype NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'partition key %.% is not a time column', tbl, pt.attname USING ERRCODE = '22023',
            DETAIL = format('Its type is %s.', pt.keytype),
            HINT = 'timepart manages tables partitioned on a timestamptz, timestamp or date column.';
    END IF;
    cfg := ROW(tbl, pt.attname, pt.keytype, step, ahead, keep, 'drop', NULL, with_default, lock_wait, 3, tz,
               5368709120, 10000000, 2, 0.5, '13 months', now(), NULL, false)::timepart.config;
    PERFORM timepart._check_settings(cfg);
    SELECT * INTO old FROM timepart.config c WHERE c.parent = tbl;
    IF FOUND AND old.time_zone <> tz THEN
        RAISE EXCEPTION 'table % is already managed in time zone %', tbl, old.time_zone USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', tz),
            HINT = 'Period boundaries depend on the time zone; it cannot change while partitions exist.';
    END IF;
    IF FOUND AND old.partition_interval::text <> step::text THEN
        RAISE EXCEPTION 'table % is already managed with interval %', tbl, old.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', step),
            HINT = format('Change it with SELECT timepart.change_interval(%L, %L);', tbl::text, step::text);
    END IF;
    INSERT INTO timepart.config AS c (parent, key_column, key_type, partition_interval, premake, retention,
                                      default_partition, lock_timeout, time_zone)
    VALUES (tbl, pt.attname, pt.keytype, step, ahead, keep, with_default, lock_wait, tz)
    ON CONFLICT (parent) DO UPDATE SET premake = excluded.premake, retention = excluded.retention,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout
    RETURNING * INTO cfg;
    RETURN cfg;
END $$;

CREATE OR REPLACE FUNCTION timepart.configure(parent regclass, settings jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
/* Changes a managed table's settings, e.g. '{"retention": "12 months", "premake": 3}'.
   Unknown or fixed keys and invalid values are refused; nothing changes then. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    bad text;
    fixed text[] := ARRAY['parent', 'key_column', 'key_type', 'partition_interval', 'time_zone', 'created_at', 'interval_anchor'];
BEGIN
    IF settings IS NULL OR pg_catalog.jsonb_typeof(settings) <> 'object' THEN
        RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(settings::text, 'NULL')), HINT = 'Pass e.g. ''{"premake": 3}''.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(settings) k
    WHERE k = ANY (fixed) OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = 'timepart.config'::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown or fixed setting(s): %', bad USING ERRCODE = '22023',
            DETAIL = format('Fixed: %s. The interval changes with timepart.change_interval().', array_to_string(fixed, ', ')),
            HINT = 'Settable: premake, retention, retention_action, archive_schema, default_partition, lock_timeout, '
                   'lock_retries, alert_max_size_bytes, alert_max_rows, alert_min_future, alert_growth_ratio, alert_old_age, '
                   'monitor_sees_values.';
    END IF;
    BEGIN
        cfg := jsonb_populate_record(cfg, settings);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'invalid setting value: %', SQLERRM USING ERRCODE = '22023',
            DETAIL = format('Settings: %s.', settings), HINT = 'Intervals are text such as "12 months"; counts are numbers.';
    END;
    PERFORM timepart._check_settings(cfg);
    UPDATE timepart.config c SET premake = cfg.premake, retention = cfg.retention, retention_action = cfg.retention_action,
        archive_schema = cfg.archive_schema, default_partition = cfg.default_partition, lock_timeout = cfg.lock_timeout,
        lock_retries = cfg.lock_retries, alert_max_size_bytes = cfg.alert_max_size_bytes,
        alert_max_rows = cfg.alert_max_rows, alert_min_future = cfg.alert_min_future,
        alert_growth_ratio = cfg.alert_growth_ratio, alert_old_age = cfg.alert_old_age,
        monitor_sees_values = cfg.monitor_sees_values
    WHERE c.parent = configure.parent;
    PERFORM timepart._log('configure', parent, NULL, true, settings, NULL, started);
    RETURN to_jsonb(cfg);
END $$;

-- ==== src/40_log.sql
-- The maintenance log: one row per operation outcome. Callers write it outside the
-- sub-transaction that failed, so a failure survives its own rollback.

CREATE OR REPLACE FUNCTION timepart._log(operation text, parent regclass, partition_name text,
                                         ok boolean, details jsonb, err text, started timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
/* PL/pgSQL on purpose: the log's guard accepts rows only from timepart's PL/pgSQL
   functions, and sets who and when itself. */
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO timepart.maintenance_log
        (operation_type, parent_table, partition_name, success, details, error, duration)
    VALUES (operation, parent::text, partition_name, ok, coalesce(details, '{}'), err,
            pg_catalog.clock_timestamp() - started)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

-- ==== src/50_indexes.sql
-- Index templates: every partition gets every template as <partition>_<suffix>,
-- attached to the template's partitioned index on the parent (<parent>_<suffix>).

CREATE OR REPLACE FUNCTION timepart._template_sql(t timepart.index_templates, index_name name,
                                                  schema_name name, table_name name, only_parent boolean)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT format('CREATE INDEX %I ON %s%I.%I USING %I (%s)%s',
                  index_name, CASE WHEN only_parent THEN 'ONLY ' ELSE '' END,
                  schema_name, table_name, t.method, t.columns,
                  CASE WHEN t.where_clause IS NULL THEN '' ELSE ' WHERE (' || t.where_clause || ')' END)
$$;

-- Creates the templated indexes a partition lacks and attaches each to the parent's
-- index. Returns the names created. Runs inside the caller's sub-transaction.
CREATE OR REPLACE FUNCTION timepart._index_partition(tbl regclass, part oid) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    created text[] := '{}'::text[];
BEGIN
    -- One query says, for every template, the index's name, whether it exists and
    -- whether it still needs attaching to the parent's index.
    FOR t IN
        WITH p AS (
            SELECT c.relname, c.relnamespace, n.nspname, c.relispartition
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = part
        ), want AS (
            SELECT it AS tmpl, timepart._fit_name(p.relname, it.suffix) AS idx, p.*,
                   timepart._template_parent_index(tbl, it.suffix) AS parent_idx
            FROM timepart.index_templates it, p WHERE it.parent = tbl
        )
        SELECT w.*, x.oid AS idx_oid,
               EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = x.oid) AS attached
        FROM want w
        LEFT JOIN pg_catalog.pg_class x ON x.relname = w.idx AND x.relnamespace = w.relnamespace
        ORDER BY (w.tmpl).suffix
    LOOP
        IF t.idx_oid IS NULL THEN
            PERFORM timepart._as_owner(tbl, timepart._template_sql(t.tmpl, t.idx, t.nspname, t.relname, false));
            created := created || t.idx::text;
        END IF;
        -- An attached partition's index is attached here; a new table's at its ATTACH.
        IF t.parent_idx IS NOT NULL AND t.relispartition AND NOT t.attached THEN
            PERFORM timepart._as_owner(tbl, format('ALTER INDEX %s ATTACH PARTITION %I.%I', t.parent_idx, t.nspname, t.idx));
        END IF;
    END LOOP;
    RETURN created;
END $$;

CREATE OR REPLACE FUNCTION timepart.add_index_template(parent regclass, suffix text, columns text,
                                                       where_clause text DEFAULT NULL, method text DEFAULT 'btree')
RETURNS integer LANGUAGE plpgsql AS $$
/* Registers an index every partition gets, creates it on the parent (ON ONLY, so
   no lock on the partitions) and back-fills every existing partition. Returns how
   many partition indexes were created. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    t timepart.index_templates;
    p record;
    pname name;
    pschema name;
    made integer := 0;
    existing timepart.index_templates;
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_template(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    SELECT * INTO existing FROM timepart.index_templates it WHERE it.parent = add_index_template.parent AND it.suffix = add_index_template.suffix;
    IF FOUND THEN
        IF existing.columns IS DISTINCT FROM add_index_template.columns
           OR existing.method IS DISTINCT FROM add_index_template.method
           OR existing.where_clause IS DISTINCT FROM add_index_template.where_clause THEN
            RAISE EXCEPTION 'index template "%" already exists on % with another definition', suffix, parent
                USING ERRCODE = '42710',
                DETAIL = format('Existing: USING %s (%s)%s', existing.method, existing.columns,
                                coalesce(' WHERE ' || existing.where_clause, '')),
                HINT = 'Remove it with timepart.drop_index_template() first, or choose another suffix.';
        END IF;
        t := existing;
    ELSE
        INSERT INTO timepart.index_templates AS it (parent, suffix, columns, method, where_clause)
        VALUES (parent, suffix, columns, coalesce(method, 'btree'), where_clause) RETURNING * INTO t;
    END IF;

    SELECT c.relname, n.nspname INTO pname, pschema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF timepart._template_parent_index(parent, suffix) IS NULL THEN
        -- An invalid definition fails here, before any partition is touched.
        PERFORM timepart._as_owner(parent, timepart._template_sql(t, timepart._fit_name(pname, suffix), pschema, pname, true));
    END IF;
    FOR p IN SELECT * FROM timepart._partitions(parent) LOOP
        made := made + coalesce(array_length(timepart._index_partition(parent, p.partition_oid), 1), 0);
    END LOOP;
    PERFORM timepart._log('add_index_template', parent, NULL, true,
        jsonb_build_object('suffix', suffix, 'columns', columns, 'method', t.method,
                           'where', where_clause, 'indexes_created', made), NULL, started);
    RETURN made;
END $$;

-- Builds one partition inside the caller's transaction: CREATE TABLE (LIKE parent),
-- rows for its range moved out of the default partition, templated indexes, ATTACH.
-- A bound of NULL means the default partition. Returns what it did.
CREATE OR REPLACE FUNCTION timepart._build_partition(cfg timepart.config, part_name name,
                                                     range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    default_part regclass;
    part regclass;
    moved bigint := 0;
    indexes text[];
    cols text;
    waiting boolean;
BEGIN
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;

    part := timepart._new_partition_table(cfg.parent, part_name);

    IF range_start IS NOT NULL AND default_part IS NOT NULL THEN
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        -- Usually nothing waits there: a cheap probe spares the move statement.
        waiting := timepart._as_owner(cfg.parent, format(
            'SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s))',
            default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
            cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)), true)::text::boolean;
        IF waiting AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = cfg.parent) THEN
            -- Moving is a DELETE and an INSERT: it would fire ON DELETE CASCADE / SET NULL
            -- on the tables that reference this one. Leave the rows where they are.
            RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and foreign keys reference the table',
                range_start, range_end, cfg.parent USING ERRCODE = '55000',
                DETAIL = 'Moving them would fire the foreign keys'' ON DELETE actions on the referencing tables.',
                HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
        END IF;
        IF waiting THEN
            cols := timepart._column_list(cfg.parent);
            -- User code (triggers, constraints, index expressions) runs with the owner's rights only.
            moved := (timepart._as_owner(cfg.parent, format(
                'WITH moved AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s RETURNING *) '
                'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved',
                default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
                cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
                part, cols, cols))->>'rows')::bigint;
        END IF;
    END IF;

    indexes := timepart._index_partition(cfg.parent, part);
    IF range_start IS NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', cfg.parent, part));
    ELSE
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)',
            cfg.parent, part, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
            timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)));
    END IF;
    -- ATTACH matched the indexes built above to the parent's templated indexes.
    RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved);
END $$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
CREATE OR REPLACE FUNCTION timepart._new_partition_table(parent regclass, part_name name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = parent);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    ddl text := format('CREATE TABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES)', part_schema, part_name, parent);
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_may_act(timepart._caller(), parent, 'create its partitions');
    IF pg_catalog.has_schema_privilege(owner_oid, part_schema, 'CREATE') THEN
        PERFORM timepart._as_owner(parent, ddl);
    ELSE
        EXECUTE ddl;
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', part_schema, part_name, owner_oid::regrole::text);
    END IF;
    RETURN format('%I.%I', part_schema, part_name)::regclass;
END $$;

-- Removes one partition per the table's retention_action. Runs inside _attempt's
-- sub-transaction. DETACH needs an ACCESS EXCLUSIVE lock on the parent, which the lock
-- budget bounds and which is held to the end of the run: cleanup counts rows before
-- its first detach, so nothing slow happens while it is held.
CREATE OR REPLACE FUNCTION timepart._retire_partition(cfg timepart.config, part_name name,
                                                      range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    part regclass;
    bytes bigint;
BEGIN
    SELECT p.partition_oid::regclass INTO part FROM timepart._partitions(cfg.parent, cfg.time_zone) p
    WHERE p.partition_name = part_name AND p.range_start = _retire_partition.range_start
      AND p.range_end = _retire_partition.range_end;
    IF part IS NULL THEN
        RAISE EXCEPTION 'partition % of % no longer covers % to %', part_name, cfg.parent, range_start, range_end
            USING ERRCODE = '55000', HINT = 'It changed since cleanup planned; run cleanup again.';
    END IF;
    bytes := pg_catalog.pg_total_relation_size(part);
    IF cfg.retention_action = 'archive' THEN
        PERFORM timepart._archive_schema(cfg.parent);
    END IF;
    PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s DETACH PARTITION %s', cfg.parent, part));
    IF cfg.retention_action = 'drop' THEN
        PERFORM timepart._as_owner(cfg.parent, format('DROP TABLE %s', part));
    ELSIF cfg.retention_action = 'archive' THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s SET SCHEMA %I', part, cfg.archive_schema));
    END IF;
    RETURN jsonb_build_object('action', cfg.retention_action, 'size_bytes', bytes,
                              'archive_schema', CASE WHEN cfg.retention_action = 'archive' THEN cfg.archive_schema END);
END $$;

-- The archive schema of a table, owned by the table's owner: created so when missing,
-- refused when someone else owns it or when it is named like a role (a role's "$user"
-- schema would put archived tables on that role's search_path). SECURITY DEFINER: the
-- table's owner may lack CREATE on the database.
CREATE OR REPLACE FUNCTION timepart._archive_schema(tbl regclass) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl);
    schema_owner oid;
BEGIN
    PERFORM timepart._check_archive_schema(cfg.archive_schema);
    SELECT n.nspowner INTO schema_owner FROM pg_catalog.pg_namespace n WHERE n.nspname = cfg.archive_schema;
    IF NOT FOUND THEN
        EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', cfg.archive_schema, owner_oid::regrole::text);
    ELSIF schema_owner <> owner_oid THEN
        RAISE EXCEPTION 'archive schema % belongs to %, not to the owner of %', cfg.archive_schema, schema_owner::regrole, tbl
            USING ERRCODE = '42501', DETAIL = format('%s is owned by %s.', tbl, owner_oid::regrole),
                  HINT = 'Archive into a schema the table''s owner owns, or one that does not exist yet (timepart creates it).';
    END IF;
    RETURN cfg.archive_schema;
END $$;

-- The refusal for an archive schema named like a role or like a system schema.
CREATE OR REPLACE FUNCTION timepart._check_archive_schema(archive_schema name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF archive_schema IN ('timepart', 'public', 'information_schema') OR archive_schema LIKE 'pg\_%' THEN
        RAISE EXCEPTION 'archive_schema must be a schema of its own' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', archive_schema),
            HINT = 'Use e.g. ''archive'': timepart''s, public and system schemas are refused.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = archive_schema) THEN
        RAISE EXCEPTION 'archive_schema "%" is named like a role', archive_schema USING ERRCODE = '22023',
            DETAIL = 'A schema named like a role is on that role''s search_path ("$user"), so archived tables would shadow its tables.',
            HINT = 'Use a name no role has, e.g. ''archive''.';
    END IF;
END $$;

-- One table's cleanup. Never raises: failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, keep interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    boundary timestamptz := timepart._retention_boundary(cfg, keep, as_of);
    p record;
    plan jsonb;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
        RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
        PERFORM timepart._log('cleanup', cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
        RETURN jsonb_build_object('removed', removed, 'errors', errors, 'skipped', true);
    END IF;
    -- Row counts first (exact: the snapshot's when still valid), before any lock is taken.
    SELECT coalesce(jsonb_agg(to_jsonb(r) || jsonb_build_object('record_count',
               CASE WHEN r.verdict = 'retire' THEN timepart._record_count(r.partition_oid) END) ORDER BY r.range_start), '[]'::jsonb)
    INTO plan FROM timepart._plan_retention(cfg, keep, as_of) r;
    FOR p IN SELECT * FROM jsonb_to_recordset(plan) AS x(partition_oid oid, schema_name name, partition_name name,
                                                         range_start timestamptz, range_end timestamptz, verdict text,
                                                         record_count bigint) LOOP
        IF p.verdict = 'straddles' THEN
            kept := kept || jsonb_build_object('partition', p.partition_name, 'reason',
                format('its range %s to %s reaches past the retention boundary %s', p.range_start, p.range_end, boundary));
            CONTINUE;
        END IF;
        IF dry_run THEN
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, p.record_count));
            CONTINUE;
        END IF;
        step_started := pg_catalog.clock_timestamp();
        res := timepart._attempt(cfg, 'retire', p.partition_name, p.range_start, p.range_end)
               || jsonb_build_object('range_start', p.range_start, 'range_end', p.range_end, 'boundary', boundary,
                                     'record_count', p.record_count);
        PERFORM timepart._log('cleanup_partition', cfg.parent, p.partition_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            removed := removed || jsonb_build_array(jsonb_build_array(p.partition_name, p.record_count));
        ELSE
            errors := errors || to_jsonb(format('%s: %s', p.partition_name, res->>'error'));
            -- Traffic holds the table: back off for the whole run, not per partition.
            IF res->>'sqlstate' = '55P03' THEN
                errors := errors || to_jsonb(format('%s: the other old partitions are left for the next run', cfg.parent));
                EXIT;
            END IF;
        END IF;
    END LOOP;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_old := timepart._as_owner(cfg.parent, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM %s WHERE %I OPERATOR(pg_catalog.<) %s', default_part, cfg.key_column,
                timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)), true)::text::bigint;
        EXCEPTION WHEN lock_not_available THEN
            errors := errors || to_jsonb(format('%s: could not count its rows past the boundary within the lock budget', default_part));
        END;
    END IF;
    res := jsonb_build_object('table', cfg.parent::text, 'boundary', boundary, 'action', cfg.retention_action,
                              'dry_run', dry_run, 'removed', removed, 'kept', kept, 'errors', errors,
                              'default_rows_past_retention', default_old);
    PERFORM timepart._log(CASE WHEN dry_run THEN 'cleanup_dry_run' ELSE 'cleanup' END, cfg.parent, NULL,
                          jsonb_array_length(errors) = 0, res, NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(errors)), '; '), ''), started);
    IF jsonb_array_length(kept) > 0 OR default_old > 0 THEN
        RAISE WARNING 'timepart: % keeps data past its retention boundary %', cfg.parent, boundary
            USING DETAIL = format('%s partition(s) reach past the boundary; %s row(s) past it wait in the default partition.',
                                  jsonb_array_length(kept), default_old),
                  HINT = 'Run maintain to move default rows into partitions; split or drop straddling partitions yourself.';
    END IF;
    RETURN res || jsonb_build_object('skipped', false);
END $$;

-- ==== src/70_maintain.sql
-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest
-- row waiting in the default partition) to `ahead` periods past the current one,
-- never before the retention boundary. Periods that overlap a partition are skipped.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, ahead integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    step interval := cfg.partition_interval;
    tz text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, step, ahead + 1, tz);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE tz) - cfg.retention) AT TIME ZONE tz);
    END IF;
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, default_part
    FROM timepart._partitions(tbl, tz) p;
    IF oldest IS NOT NULL AND pg_catalog.isfinite(oldest) THEN
        first_start := least(first_start, timepart._period_of(cfg, oldest));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
        default_min := (timepart._as_owner(tbl, format(
            'SELECT pg_catalog.to_jsonb(min(%I)::pg_catalog.timestamptz) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
            cfg.key_column, default_part,
            cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, tz),
            cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, tz)), true) #>> '{}')::timestamptz;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE tz;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_of(cfg, default_min));
        END IF;
    END IF;
    first_start := greatest(first_start, floor_start);
    -- A moment far from the existing partitions (a typo, a clock gone wrong) must not
    -- make thousands of tables: refuse before generating anything.
    IF extract(epoch FROM horizon - first_start) / 86400
       / (pg_catalog.date_part('day', step) + 31 * (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))) > ahead + 1000 THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', ahead + 1000, tbl USING ERRCODE = '22023',
            DETAIL = format('From %s to %s in periods of %s.', first_start, horizon, step),
            HINT = 'Check as_of and the oldest partition; create far-away periods with timepart.create_partition().';
    END IF;

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE tz AS s, (g + step) AT TIME ZONE tz AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE tz, (horizon AT TIME ZONE tz) - step, step) g
    ), existing AS (
        SELECT x.s, x.e FROM unnest(starts, ends) AS x(s, e)
    ), missing AS (
        SELECT pr.s, pr.e FROM periods pr WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s = pr.s)
    )
    SELECT m.s, m.e, CASE WHEN m.s > cur THEN 'premake' WHEN m.s = cur THEN 'current' ELSE 'gap' END
    FROM missing m
    WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s < m.e AND x.e > m.s)
    ORDER BY m.s;
END $$;

-- Exact rows, oldest and newest of one partition (a scan: only for small ones).
-- Read with the owner's rights: planning the scan runs the owner's index code.
CREATE OR REPLACE FUNCTION timepart._exact_figures(rel oid, key_column name)
RETURNS TABLE (record_count bigint, oldest timestamptz, newest timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb := timepart._as_owner(rel::regclass, format(
        'SELECT pg_catalog.jsonb_build_array(count(*), min(%I)::pg_catalog.timestamptz, max(%I)::pg_catalog.timestamptz) FROM %s',
        key_column, key_column, rel::regclass), true);
BEGIN
    RETURN QUERY SELECT (r->>0)::bigint, (r->>1)::timestamptz, (r->>2)::timestamptz;
END $$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that may not SELECT the table, unless monitor_sees_values. exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    RETURN QUERY
    WITH parts AS (
        SELECT c.*, v.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM timepart.config c
        JOIN pg_catalog.pg_class r ON r.oid = c.parent
        -- Exact key values are data: shown to roles that may read the table, or when its
        -- owner allows. Decided once per table.
        CROSS JOIN LATERAL (SELECT c.monitor_sees_values OR timepart._may_act(timepart._caller(), c.parent)
                                   OR pg_catalog.has_table_privilege(timepart._caller(), c.parent, 'SELECT') AS reveal) v
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes,
               CASE WHEN p.live THEN pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes
        FROM parts p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, h.ends, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        -- The condition inside the subquery makes it a one-time filter: only small live
        -- partitions are scanned.
        -- An empty heap holds no rows: exact without a scan.
        LEFT JOIN LATERAL (SELECT 0::bigint AS record_count, NULL::timestamptz AS oldest, NULL::timestamptz AS newest
                           WHERE p.live AND p.heap_bytes = 0
                           UNION ALL
                           SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column) f
                           WHERE p.live AND p.heap_bytes > 0 AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
        -- Oldest and newest from the ANALYZE histogram of the key: approximate, no scan.
        LEFT JOIN LATERAL (
            SELECT st.histogram_bounds::text::text[] AS ends FROM pg_catalog.pg_stats st
            WHERE st.schemaname = p.schema_name AND st.tablename = p.partition_name AND st.attname = p.key_column
        ) h ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._bounds_label(j.range_start, j.range_end, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       ELSE timepart._estimated_bytes(j.partition_oid) END) / 1048576.0, 2),
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(j.ends[1], j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(j.ends[array_length(j.ends, 1)], j.key_type, j.time_zone) END,
           (SELECT count(*)::int FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid),
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;

CREATE OR REPLACE FUNCTION timepart.snapshot_stats(as_of timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
/* Stores today's exact figures for every partition of every managed table (the
   seed's daily statistics generation). A partition whose change counters have not
   moved since its last snapshot is not counted again. Returns the rows stored. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    p record;
    prev timepart.stats_history;
    rows bigint;
    oldest timestamptz;
    newest timestamptz;
    stored integer := 0;
    counted integer := 0;
    skipped text[] := '{}'::text[];
    cfg timepart.config;
BEGIN
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            BEGIN
                -- A partition someone holds locked is skipped (its last figures stay), not waited for.
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
                FROM timepart._exact_figures(p.partition_oid, p.key_column) f;
            EXCEPTION WHEN lock_not_available THEN
                skipped := skipped || p.partition_name::text;
                CONTINUE;
            END;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, pg_catalog.pg_total_relation_size(p.partition_oid), oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    PERFORM timepart._log('snapshot_stats', NULL, NULL, cardinality(skipped) = 0,
                          jsonb_build_object('partitions', stored, 'counted', counted, 'skipped', to_jsonb(skipped)),
                          CASE WHEN cardinality(skipped) > 0 THEN 'locked partitions skipped: ' || array_to_string(skipped, ', ') END,
                          started);
    RETURN stored;
END $$;

-- Exact rows of a partition: the snapshot's count while the partition has not changed
-- since, else a count(*).
CREATE OR REPLACE FUNCTION timepart._record_count(rel oid) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    SELECT h.record_count INTO n FROM timepart.stats_history h
    WHERE h.partition_oid = rel AND h.changes_seen = timepart._changes(rel)
    ORDER BY h.snapshot_date DESC LIMIT 1;
    IF n IS NULL THEN
        n := timepart._as_owner(rel::regclass, format('SELECT pg_catalog.to_jsonb(count(*)) FROM %s', rel::regclass), true)::text::bigint;
    END IF;
    RETURN n;
END $$;

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too). stats: the table's partition_stats rows as JSON when the
-- caller has them already.
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz, stats jsonb DEFAULT NULL)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    tz text := cfg.time_zone;
    cur timestamptz := timepart._period_of(cfg, as_of);
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE tz);
    old_before timestamptz := ((as_of AT TIME ZONE tz) - cfg.alert_old_age) AT TIME ZONE tz;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_rows := timepart._as_owner(tbl, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part), true)::text::bigint;
        EXCEPTION WHEN lock_not_available THEN
            default_rows := 0;  -- counted again at the next check
        END;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT * FROM timepart.partition_stats(tbl) WHERE stats IS NULL
        UNION ALL
        SELECT * FROM jsonb_populate_recordset(NULL::timepart.partition_stats_row, stats) WHERE stats IS NOT NULL),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE tz
                                              AND s.range_start < month_start AT TIME ZONE tz) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE tz
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE tz) AS month_before
        FROM s WHERE NOT s.is_default
    ), future AS (
        SELECT count(*) AS n FROM s WHERE NOT s.is_default AND s.range_start > as_of
    ), old AS (
        SELECT count(*) AS n, (array_agg(s.partition_name ORDER BY s.range_start))[1] AS oldest
        FROM s WHERE NOT s.is_default AND s.range_end <= old_before
    )
    SELECT 'partition_too_large', 'warning', tbl::text, s.partition_name,
           format('%s is %s MB, over %s MB', s.partition_name, s.size_mb, max_mb),
           'Use a shorter partition interval, or archive old data', s.size_mb, max_mb
    FROM s WHERE s.size_mb > max_mb
    UNION ALL
    SELECT 'partition_too_many_rows', 'warning', tbl::text, s.partition_name,
           format('%s holds %s rows, over %s', s.partition_name, s.record_count, cfg.alert_max_rows),
           'Use a shorter partition interval', s.record_count, cfg.alert_max_rows
    FROM s WHERE s.record_count > cfg.alert_max_rows
    UNION ALL
    SELECT 'missing_current_partition', 'critical', tbl::text, '',
           format('no partition of %s covers the current period starting %s', tbl, cur),
           'Create it now: run timepart.maintain()', 0, 1
    WHERE NOT EXISTS (SELECT 1 FROM s WHERE NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of)
    UNION ALL
    SELECT 'insufficient_future_partitions', 'warning', tbl::text, '',
           format('%s has %s future partition(s), fewer than %s', tbl, f.n, cfg.alert_min_future),
           'Run timepart.maintain() and check that its scheduled job runs', f.n, cfg.alert_min_future
    FROM future f WHERE f.n < cfg.alert_min_future
    UNION ALL
    SELECT 'old_partitions', 'info', tbl::text, o.oldest,
           format('%s has %s partition(s) older than %s', tbl, o.n, cfg.alert_old_age),
           'Consider archival: set a retention and run timepart.cleanup()', o.n, 0
    FROM old o WHERE o.n > 0
    UNION ALL
    SELECT 'high_growth', 'info', tbl::text, '',
           format('%s grew %s%% month over month (%s to %s rows)', tbl,
                  round((g.last_month - g.month_before) / g.month_before * 100), g.month_before, g.last_month),
           'Plan capacity: storage, retention and partition interval',
           round((g.last_month - g.month_before) / g.month_before, 3), cfg.alert_growth_ratio
    FROM growth g WHERE g.month_before > 0 AND (g.last_month - g.month_before) / g.month_before > cfg.alert_growth_ratio
    UNION ALL
    SELECT 'rows_in_default_partition', 'warning', tbl::text, default_part::text,
           format('%s%s row(s) wait in the default partition %s', CASE WHEN default_rows >= 1000000 THEN 'at least ' ELSE '' END,
                  default_rows, default_part),
           'Run timepart.maintain() to move them into partitions; rows past the premake horizon or the retention boundary stay',
           default_rows, 0
    WHERE default_rows > 0
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
END $$;

CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one; the scheduled jobs too
   when no table is named), keeps each alert's lifecycle (an open alert is updated,
   not duplicated; one no longer raised is resolved), announces new ones with
   pg_notify('timepart_alerts', json) and a WARNING, logs the run, and returns the
   open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    evaluated jsonb := '[]'::jsonb;
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}'::text[];
BEGIN
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite moment' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
        -- Runs as timepart's owner: the caller's rights are checked here.
        PERFORM timepart._check_may_act(timepart._caller(), check_alerts.parent, 'check its alerts');
    END IF;
    -- Only the tables the caller may maintain: nobody opens or resolves another owner's alerts.
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE (check_alerts.parent IS NULL OR c.parent = check_alerts.parent)
                 AND timepart._may_act(timepart._caller(), c.parent) LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL AND NOT EXISTS (SELECT 1 FROM timepart.jobs j JOIN pg_catalog.pg_roles r ON r.rolname = j.scheduled_by
                                                   WHERE NOT pg_catalog.pg_has_role(timepart._caller(), r.oid, 'USAGE')) THEN
        checked := checked || '(scheduler)'::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate_jobs(as_of) e), '[]'::jsonb);
    END IF;

    FOR a IN SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, '') AS partition_name, e.message,
                    e.recommendation, e.value, e.threshold
             FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                     message text, recommendation text, value numeric, threshold numeric) LOOP
        UPDATE timepart.alerts x SET last_seen = now_ts, message = a.message, value = a.value, threshold = a.threshold,
                                    severity = a.severity, recommendation = a.recommendation
        WHERE x.resolved_at IS NULL AND x.alert_type = a.alert_type AND x.parent_table = a.parent_table
          AND x.partition_name = a.partition_name;
        IF NOT FOUND THEN
            INSERT INTO timepart.alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value,
                                         threshold, first_seen, last_seen)
            VALUES (a.alert_type, a.severity, a.parent_table, a.partition_name, a.message, a.recommendation, a.value,
                    a.threshold, now_ts, now_ts);
            new_count := new_count + 1;
            PERFORM pg_catalog.pg_notify('timepart_alerts', jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity,
                'parent_table', a.parent_table, 'partition_name', NULLIF(a.partition_name, ''), 'message', a.message,
                'recommendation', a.recommendation, 'value', a.value, 'threshold', a.threshold, 'first_seen', now_ts)::text);
            RAISE WARNING 'timepart alert [%] %', a.severity, a.message USING HINT = coalesce(a.recommendation, '');
        END IF;
    END LOOP;
    UPDATE timepart.alerts x SET resolved_at = now_ts
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(evaluated) e
                      WHERE e->>'alert_type' = x.alert_type AND e->>'parent_table' = x.parent_table
                        AND coalesce(e->>'partition_name', '') = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    PERFORM timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;

COMMENT ON COLUMN timepart.jobs.scheduled_by IS 'The role that scheduled the job, which pg_cron runs it as';

-- Jobs run as the role that scheduled them: only that role (or a member, or a
-- superuser) may replace or remove them, and scheduled_by is always the scheduler.
CREATE OR REPLACE FUNCTION timepart._jobs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = OLD.scheduled_by)
       AND NOT pg_catalog.pg_has_role(current_user, OLD.scheduled_by, 'USAGE') THEN
        RAISE EXCEPTION 'timepart''s jobs were scheduled by %', OLD.scheduled_by USING ERRCODE = '42501',
            DETAIL = format('%s cannot replace or remove jobs that run as %s.', current_user, OLD.scheduled_by),
            HINT = format('Ask %s (or a superuser) to run timepart.unschedule_jobs() first.', OLD.scheduled_by);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    NEW.scheduled_by := current_user;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS jobs_scheduler_guard ON timepart.jobs;

CREATE TRIGGER jobs_scheduler_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.jobs
    FOR EACH ROW EXECUTE FUNCTION timepart._jobs_guard();

-- The managed tables the current role may maintain (it owns them, is a member of their
-- owner, or is a superuser), in a stable order: what the job procedures work through.
-- PL/pgSQL so that it runs on a pinned search_path: the procedures call it from the caller's.
CREATE OR REPLACE FUNCTION timepart._job_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT c.parent FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE timepart._may_act(current_user, c.parent)
    ORDER BY c.parent::text;
END $$;

CREATE OR REPLACE FUNCTION timepart.schedule_jobs(maintain_schedule text DEFAULT '17 3 * * 0',
                                                  cleanup_schedule text DEFAULT '37 4 1 * *',
                                                  health_schedule text DEFAULT '7 6 * * *',
                                                  stats_schedule text DEFAULT '47 2 * * *',
                                                  cron_history_schedule text DEFAULT '57 5 * * *',
                                                  cron_history_keep interval DEFAULT '30 days')
RETURNS TABLE (jobname text, schedule text, command text) LANGUAGE plpgsql AS $$
/* The seed's jobs in pg_cron, at quiet hours: weekly maintain, monthly cleanup (each
   table's configured retention; email_events keeps 12 months; both one table per
   transaction, a CALL alone in its command as pg_cron requires), daily health check
   (check_alerts), daily statistics snapshot, plus a daily trim of
   cron.job_run_details. Named timepart-<job>@<database>; running it again updates
   them in place. Works when pg_cron lives in another database (through dblink). */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    statements text;
    new_jobs timepart.jobs[];
BEGIN
    -- The jobs run as the caller, over every managed table: scheduling must not let a
    -- role reach tables it could not maintain itself.
    IF EXISTS (SELECT 1 FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE NOT timepart._may_act(current_user, c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            DETAIL = format('%s may not maintain: %s.', current_user,
                (SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text) FROM timepart.config c
                 JOIN pg_catalog.pg_class r ON r.oid = c.parent WHERE NOT timepart._may_act(current_user, c.parent))),
            HINT = 'Schedule as a superuser, or as a role that is a member of every managed table''s owner.';
    END IF;
    IF cron_history_keep IS NULL OR cron_history_keep <= interval '0' THEN
        RAISE EXCEPTION 'cron_history_keep must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cron_history_keep::text, 'NULL')), HINT = 'Keep e.g. ''30 days'' of job runs.';
    END IF;
    SELECT array_agg(ROW(j.job, format('timepart-%s@%s', j.job, current_database()), j.sched, j.cmd, j.db,
                         timepart._expected_every(j.sched), now(), current_user)::timepart.jobs)
    INTO new_jobs
    FROM (VALUES
        ('maintain', maintain_schedule, 'CALL timepart.maintain_each()', current_database()),
        ('cleanup', cleanup_schedule, 'CALL timepart.cleanup_each()', current_database()),
        ('health', health_schedule, 'SELECT count(*) FROM timepart.check_alerts()', current_database()),
        ('stats', stats_schedule, 'SELECT timepart.snapshot_stats()', current_database()),
        ('cron-history', cron_history_schedule,
         -- Only timepart's jobs' history: other jobs' runs are not ours to delete.
         format('DELETE FROM cron.job_run_details d WHERE d.end_time < now() - %L::interval '
                'AND d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname LIKE ''timepart-%%'')', cron_history_keep),
         coalesce(pg_catalog.current_setting('cron.database_name', true), current_database()))
    ) AS j(job, sched, cmd, db);
    IF EXISTS (SELECT 1 FROM unnest(new_jobs) n WHERE n.schedule IS NULL
               OR array_length(pg_catalog.regexp_split_to_array(pg_catalog.btrim(n.schedule), '\s+'), 1) <> 5) THEN
        RAISE EXCEPTION 'a cron schedule must have five fields' USING ERRCODE = '22023',
            DETAIL = (SELECT string_agg(format('%s: %s', n.job, coalesce(n.schedule, 'NULL')), ', ') FROM unnest(new_jobs) n),
            HINT = 'minute hour day-of-month month day-of-week, e.g. ''17 3 * * 0'' for Sundays at 03:17.';
    END IF;

    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM unnest(new_jobs);
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM unnest(new_jobs) n;
    PERFORM timepart._cron_exec(statements);
    PERFORM timepart._log('schedule_jobs', NULL, NULL, true,
        (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM unnest(new_jobs) n), NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM unnest(new_jobs) n ORDER BY n.job;
END $$;

CREATE OR REPLACE FUNCTION timepart.unschedule_jobs() RETURNS integer
LANGUAGE plpgsql AS $$
/* Removes this database's timepart jobs from pg_cron. Returns how many there were. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    names text[];
BEGIN
    -- First, so a role that may not remove the jobs is refused before pg_cron is touched.
    DELETE FROM timepart.jobs;
    IF NOT FOUND THEN
        -- Nothing was scheduled from here; pg_cron need not even be reachable.
        BEGIN
            SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            names := NULL;
        END;
    ELSE
        SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
    END IF;
    IF names IS NOT NULL THEN
        PERFORM timepart._cron_exec(format('DO $do$ BEGIN %s END $do$',
            (SELECT string_agg(format('PERFORM cron.unschedule(%L);', n), ' ') FROM unnest(names) n)));
    END IF;
    PERFORM timepart._log('unschedule_jobs', NULL, NULL, true, jsonb_build_object('jobs', to_jsonb(coalesce(names, '{}'))), NULL, started);
    RETURN coalesce(array_length(names, 1), 0);
END $$;

-- The jobs' entry points: one table at a time with a COMMIT after each, so the locks
-- one table's maintenance takes are never held while another's waits. Procedures that
-- COMMIT carry no SET clause: every name here is qualified instead.
-- The bodies use no operator and name every function and type with its schema: they
-- run on the caller's search_path, where anyone with CREATE could plant an operator.
CREATE OR REPLACE PROCEDURE timepart.maintain_each(premake pg_catalog.int4 DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        PERFORM timepart.maintain(t, premake);
        COMMIT;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
BEGIN
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        PERFORM timepart.cleanup(t);
        COMMIT;
    END LOOP;
END $$;

-- What the rows look like: how many (counted when small or never analyzed, else
-- pg_class.reltuples), whether the key has NULLs, its oldest and newest value.
CREATE OR REPLACE FUNCTION timepart._migrate_facts(source regclass, key_column name, key_type regtype, tz text,
                                                   OUT row_count bigint, OUT counted boolean, OUT has_nulls boolean,
                                                   OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    estimate real := (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = source);
    key_expr text := timepart._migrate_key_expr(key_column, key_type, tz);
    r jsonb;
BEGIN
    counted := estimate < 100000;
    -- Every read of the source runs with its owner's rights (05_owner.sql).
    IF counted THEN
        r := timepart._as_owner(source, format('SELECT pg_catalog.jsonb_build_array(count(*), count(*) FILTER (WHERE %I IS NULL) '
                                               'OPERATOR(pg_catalog.>) 0, min(%s), max(%s)) FROM ONLY %s',
                                               key_column, key_expr, key_expr, source), true);
        row_count := (r->>0)::bigint; has_nulls := (r->>1)::boolean; oldest := (r->>2)::timestamptz; newest := (r->>3)::timestamptz;
        RETURN;
    END IF;
    row_count := estimate::bigint;
    -- Separate queries, so an index on the key answers each without a scan.
    has_nulls := timepart._as_owner(source, format('SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NULL))',
                                                   source, key_column), true)::text::boolean;
    r := timepart._as_owner(source, format('SELECT pg_catalog.jsonb_build_array(min(%1$I)::pg_catalog.text, max(%1$I)::pg_catalog.text) FROM ONLY %2$s',
                                           key_column, source), true);
    IF key_type = 'timestamptz'::regtype THEN
        oldest := (r->>0)::timestamptz; newest := (r->>1)::timestamptz;
    ELSE
        oldest := (r->>0)::timestamp; newest := (r->>1)::timestamp;
    END IF;
    IF key_type <> 'timestamptz'::regtype THEN
        -- min/max came back in the session's time zone; they meant local time in tz.
        oldest := (oldest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE tz;
        newest := (newest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE tz;
    END IF;
END $$;

-- The periods from the oldest to the newest key value, with rows per period: counted
-- exactly (one scan) or estimated from the key's histogram in pg_stats.
CREATE OR REPLACE FUNCTION timepart._migrate_periods(source regclass, key_column name, key_type regtype, step interval,
                                                     tz text, oldest timestamptz, newest timestamptz,
                                                     row_count bigint, counted boolean)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, rows bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    starts timestamptz[];
    bucket_rows bigint[];
    hist text[];
BEGIN
    IF oldest IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(g AT TIME ZONE tz ORDER BY g) INTO starts
    FROM pg_catalog.generate_series(timepart._period_start(oldest, step, tz) AT TIME ZONE tz,
                                    timepart._period_start(newest, step, tz) AT TIME ZONE tz, step) g;
    IF counted THEN
        SELECT array_agg(x::bigint) INTO bucket_rows FROM jsonb_array_elements_text(timepart._as_owner(source, format(
            'SELECT pg_catalog.to_jsonb(pg_catalog.array_agg(coalesce(b.n, 0) ORDER BY i)) FROM pg_catalog.generate_series(1, %s) i '
            'LEFT JOIN (SELECT pg_catalog.width_bucket(%s, %L::pg_catalog.timestamptz[]) AS w, count(*) AS n FROM ONLY %s GROUP BY 1) b '
            'ON b.w OPERATOR(pg_catalog.=) i',
            cardinality(starts), timepart._migrate_key_expr(key_column, key_type, tz), starts::text, source), true)) x;
    ELSE
        SELECT s.histogram_bounds::text::text[] INTO hist FROM pg_catalog.pg_stats s
        JOIN pg_catalog.pg_class c ON c.relname = s.tablename JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
        WHERE c.oid = source AND s.attname = key_column;
        -- Each histogram bound stands for an equal share of the rows.
        SELECT array_agg(round(coalesce(b.n, 0)::numeric * row_count / greatest(cardinality(hist), 1))::bigint ORDER BY i)
        INTO bucket_rows
        FROM pg_catalog.generate_series(1, cardinality(starts)) i
        LEFT JOIN (SELECT pg_catalog.width_bucket(CASE key_type WHEN 'timestamptz'::regtype THEN h::timestamptz
                                                      WHEN 'timestamp'::regtype THEN h::timestamp AT TIME ZONE tz
                                                      ELSE h::date::timestamp AT TIME ZONE tz END, starts) AS w, count(*) AS n
                   FROM unnest(hist) h GROUP BY 1) b ON b.w = i;
    END IF;
    RETURN QUERY SELECT u.s, timepart._period_add(u.s, step, 1, tz), u.n
                 FROM unnest(starts, bucket_rows) AS u(s, n) ORDER BY u.s;
END $$;

-- Creates the partitioned copy in the stage schema: same columns, defaults, CHECK and
-- NOT NULL constraints, identity and generated columns, comments; NOT NULL on the key;
-- the primary key, unique constraints and outgoing foreign keys; the table's grants.
CREATE OR REPLACE FUNCTION timepart._migrate_create_target(source regclass, key_column name, stage name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    target regclass;
    k record;
BEGIN
    -- The copy is made by the source's owner (its executor), so it is the owner's table.
    PERFORM timepart._migrate_stage_schema(source, stage);
    PERFORM timepart._as_owner(source, format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY '
                   'INCLUDING GENERATED INCLUDING STORAGE INCLUDING COMPRESSION INCLUDING COMMENTS) PARTITION BY RANGE (%I)',
                   stage, (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), source, key_column));
    target := format('%I.%I', stage, (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source))::regclass;
    PERFORM timepart._as_owner(source, format('ALTER TABLE %s ALTER COLUMN %I SET NOT NULL', target, key_column));
    FOR k IN SELECT c.conname, pg_catalog.pg_get_constraintdef(c.oid) AS def FROM pg_catalog.pg_constraint c
             WHERE c.conrelid = source AND c.contype IN ('p', 'u', 'f') ORDER BY c.contype DESC, c.conname LOOP
        PERFORM timepart._as_owner(source, format('ALTER TABLE %s ADD CONSTRAINT %I %s', target, k.conname, k.def));
    END LOOP;
    -- Unique indexes that are not constraints stay unique: on the parent, so every partition gets one.
    FOR k IN SELECT c.relname, a.amname, timepart._migrate_index_columns(x.indexrelid) AS cols,
                    pg_catalog.pg_get_expr(x.indpred, x.indrelid, true) AS pred
             FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam
             WHERE x.indrelid = source AND x.indisunique AND x.indisvalid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint n WHERE n.conindid = x.indexrelid) LOOP
        PERFORM timepart._as_owner(source, format('CREATE UNIQUE INDEX %I ON %s USING %I (%s)%s', k.relname, target, k.amname, k.cols,
                       coalesce(' WHERE ' || k.pred, '')));
    END LOOP;
    FOR k IN SELECT g.privilege_type, g.grantee FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) g
             WHERE c.oid = source AND g.grantee <> c.relowner LOOP
        PERFORM timepart._as_owner(source, format('GRANT %s ON %s TO %s', k.privilege_type, target,
                       CASE WHEN k.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.quote_ident(k.grantee::regrole::text) END));
    END LOOP;
    RETURN target;
END $$;

-- Records the key of every row written to the source into the change log. Runs with
-- the owner's rights, so writers need no access to the stage schema.
CREATE OR REPLACE FUNCTION timepart._migrate_capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
/* Runs as timepart's owner so any writer of the source can log its changes (through
   the table owner's executor). Nobody may attach it elsewhere (EXECUTE is timepart's
   alone), and it takes nothing from its caller: the change table and key columns come from the
   running migration of the table it fires on, so a trigger planted elsewhere (with
   any arguments) does nothing. */
DECLARE
    m timepart.migrations;
    keys jsonb := '[]'::jsonb;
    part jsonb;
BEGIN
    SELECT * INTO m FROM timepart.migrations x
    WHERE x.source = TG_RELID::regclass AND x.state IN ('copying', 'catching_up');
    IF NOT FOUND OR TG_TABLE_NAME <> (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = m.source)
       OR TG_NAME NOT LIKE 'timepart\_migrate\_%' THEN
        RETURN NULL;
    END IF;
    -- The keys are read here (reading runs no user code) and written by the owner's
    -- executor: the change log is the owner's table, in the owner's stage schema.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(k)), ''[]'') FROM (SELECT %s FROM old_rows) k',
                       timepart._migrate_key_list(m.source, m.row_key)) INTO part;
        keys := keys || part;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT coalesce(jsonb_agg(to_jsonb(k)), ''[]'') FROM (SELECT %s FROM new_rows) k',
                       timepart._migrate_key_list(m.source, m.row_key)) INTO part;
        keys := keys || part;
    END IF;
    IF jsonb_array_length(keys) > 0 THEN
        PERFORM timepart._as_owner(m.source, format(
            'INSERT INTO %1$I.changes SELECT * FROM pg_catalog.jsonb_populate_recordset(NULL::%1$I.changes, %2$L::pg_catalog.jsonb)',
            m.stage_schema, keys));
    END IF;
    RETURN NULL;
END $$;

-- Installs the change log and its triggers on the source.
CREATE OR REPLACE FUNCTION timepart._migrate_install_capture(source regclass, stage name, row_key name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    log_table text := format('%I.changes', stage);
    keys text := timepart._migrate_key_list(source, row_key);
BEGIN
    PERFORM timepart._as_owner(source, format('CREATE TABLE %s AS SELECT %s FROM ONLY %s WITH NO DATA', log_table, keys, source));
    PERFORM timepart._migrate_triggers(source);
END $$;

-- The capture triggers, created by timepart's owner: only it may execute the trigger
-- functions. The caller must be allowed to act on the table (owner, member, superuser).
CREATE OR REPLACE FUNCTION timepart._migrate_triggers(source regclass) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), source, 'migrate it');
    EXECUTE format('CREATE TRIGGER timepart_migrate_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS old_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_capture()', source);
    EXECUTE format('CREATE TRIGGER timepart_migrate_truncate BEFORE TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION timepart._migrate_refuse_truncate()', source);
END $$;

-- The stage schema of a migration, owned by the source's owner (who may lack CREATE on
-- the database, hence timepart's owner makes it). Same check as above.
CREATE OR REPLACE FUNCTION timepart._migrate_stage_schema(source regclass, stage name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = source);
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), source, 'migrate it');
    IF stage IS DISTINCT FROM timepart._fit_name('timepart_migrate', source::oid::text) THEN
        RAISE EXCEPTION 'invalid stage schema %', stage USING ERRCODE = '22023',
            DETAIL = 'A migration stages its copy in timepart_migrate_<oid of the source>.', HINT = 'Use timepart.migrate.';
    END IF;
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %I', stage, owner_oid::regrole::text);
END $$;

-- Copies one batch of whole blocks and advances the progress row, in the caller's
-- transaction, so both commit together. A rewritten source (new filenode: VACUUM FULL,
-- CLUSTER) has moved its rows: the copy starts again; the change log stays valid.
CREATE OR REPLACE FUNCTION timepart._migrate_batch(m timepart.migrations, batch_size integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    upto bigint;
    copied bigint;
    cols text := timepart._column_list(m.source);
BEGIN
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', m.source);
    IF pg_catalog.pg_relation_filenode(m.source) <> m.source_filenode THEN
        RAISE NOTICE 'timepart.migrate: % was rewritten; copying it again from the start', m.source;
        PERFORM timepart._as_owner(m.source, format('TRUNCATE %s', m.target));
        UPDATE timepart.migrations g SET next_block = 0, rows_copied = 0,
            source_filenode = pg_catalog.pg_relation_filenode(m.source),
            last_block = pg_catalog.pg_relation_size(m.source) / pg_catalog.current_setting('block_size')::bigint
        WHERE g.id = m.id;
        RETURN 0;
    END IF;
    upto := least(m.next_block + m.blocks_per_batch, m.last_block);
    -- A key that is already in the copy belongs to a row changed since the capture
    -- began (an earlier batch copied its old version): it is in the change log, and
    -- the catch-up replaces it. So a conflict here is skipped, not an error.
    -- With the owner's rights: the copy runs the owner's index expressions and constraints.
    copied := (timepart._as_owner(m.source, format(
        'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM ONLY %s '
        'WHERE ctid OPERATOR(pg_catalog.>=) %L::pg_catalog.tid AND ctid OPERATOR(pg_catalog.<) %L::pg_catalog.tid '
        'ON CONFLICT DO NOTHING',
        m.target, cols, cols, m.source, format('(%s,0)', m.next_block), format('(%s,0)', upto)))->>'rows')::bigint;
    -- Aim the next batch at batch_size rows, from the density seen so far.
    UPDATE timepart.migrations g SET next_block = upto, rows_copied = g.rows_copied + copied,
        blocks_per_batch = CASE WHEN g.rows_copied + copied > 0
            THEN greatest(1, least(1000000, batch_size::numeric * upto / (g.rows_copied + copied)))::integer
            ELSE least(1000000, g.blocks_per_batch * 2) END,
        state = CASE WHEN upto >= m.last_block THEN 'catching_up' ELSE g.state END,
        updated_at = pg_catalog.clock_timestamp()
    WHERE g.id = m.id;
    PERFORM timepart._log('migrate_copy', m.source, m.target::text, true,
        jsonb_build_object('rows', copied, 'from_block', m.next_block, 'to_block', upto, 'last_block', m.last_block),
        NULL, started);
    RETURN copied;
END $$;

-- Applies up to max_changes logged changes: the logged keys' rows in the copy are
-- replaced by the source's current rows (a key logged twice needs no DISTINCT: the
-- join deletes each row once and the semi-join inserts each once). The applied log rows are deleted in the same
-- statement, so a change whose transaction commits later is applied by a later round.
-- Returns how many log rows were applied.
CREATE OR REPLACE FUNCTION timepart._migrate_catch_up(m timepart.migrations, max_changes integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    keys text := timepart._migrate_key_list(m.source, m.row_key);
    cols text := timepart._column_list(m.source);
    match text := timepart._migrate_match(m);
    applied bigint;
    removed bigint;
    inserted bigint;
    r jsonb;
BEGIN
    r := timepart._as_owner(m.source, format($q$
        WITH d AS (DELETE FROM %1$I.changes c WHERE c.ctid = ANY (ARRAY(SELECT ctid FROM %1$I.changes LIMIT %2$s)) RETURNING %3$s),
        gone AS (DELETE FROM %4$s a USING d b WHERE %5$s RETURNING 1),
        ins AS (INSERT INTO %4$s (%6$s) OVERRIDING SYSTEM VALUE
                SELECT %6$s FROM ONLY %7$s a WHERE EXISTS (SELECT 1 FROM d b WHERE %5$s) RETURNING 1)
        SELECT pg_catalog.jsonb_build_array((SELECT count(*) FROM d), (SELECT count(*) FROM gone), (SELECT count(*) FROM ins))$q$,
        m.stage_schema, max_changes, keys, m.target, match, cols, m.source), true);
    applied := (r->>0)::bigint; removed := (r->>1)::bigint; inserted := (r->>2)::bigint;
    IF applied > 0 THEN
        UPDATE timepart.migrations g SET changes_applied = g.changes_applied + applied, updated_at = pg_catalog.clock_timestamp()
        WHERE g.id = m.id;
        PERFORM timepart._log('migrate_catch_up', m.source, m.target::text, true,
            jsonb_build_object('changes', applied, 'rows_removed', removed, 'rows_inserted', inserted), NULL, started);
    END IF;
    RETURN applied;
END $$;

-- Row count and an order-independent checksum (sum of 64-bit hashes of each row as text).
CREATE OR REPLACE FUNCTION timepart._migrate_checksum(rel regclass, cols text, OUT row_count bigint, OUT checksum numeric)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT (r->>0)::bigint, (r->>1)::numeric INTO row_count, checksum
    FROM timepart._as_owner(rel, format('SELECT pg_catalog.jsonb_build_array(count(*), '
        'coalesce(sum(pg_catalog.hashtextextended(ROW(%s)::pg_catalog.text, 0)), 0)) FROM %s', cols, rel), true) r;
END $$;

-- Renames the old table's indexes and identity sequences out of the way of the
-- copy's (which keep the original names), then the table itself. Returns its new name.
CREATE OR REPLACE FUNCTION timepart._migrate_retire_source(m timepart.migrations) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    schema_name name;
    old_name name;
BEGIN
    SELECT n.nspname, timepart._fit_name(c.relname, 'unpartitioned_old') INTO schema_name, old_name
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = m.source;
    FOR r IN SELECT t.tgname FROM pg_catalog.pg_trigger t WHERE t.tgrelid = m.source AND t.tgname LIKE 'timepart\_migrate\_%' LOOP
        PERFORM timepart._as_owner(m.source, format('DROP TRIGGER %I ON %s', r.tgname, m.source));
    END LOOP;
    FOR r IN SELECT c.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
             WHERE x.indrelid = m.source LOOP
        PERFORM timepart._as_owner(m.source, format('ALTER INDEX %I.%I RENAME TO %I', schema_name, r.relname, timepart._fit_name(r.relname, 'old')));
    END LOOP;
    FOR r IN SELECT s.oid::regclass AS seq, s.relname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid
             WHERE d.refobjid = m.source AND d.classid = 'pg_catalog.pg_class'::regclass AND d.deptype = 'i' AND s.relkind = 'S' LOOP
        PERFORM timepart._as_owner(m.source, format('ALTER SEQUENCE %s RENAME TO %I', r.seq, timepart._fit_name(r.relname, 'old')));
    END LOOP;
    PERFORM timepart._as_owner(m.source, format('ALTER TABLE %s RENAME TO %I', m.source, old_name));
    RETURN format('%I.%I', schema_name, old_name);
END $$;

-- Moves the copy and its partitions into the source's schema, hands the source's
-- sequences over (serial: ownership; identity: the last value), drops the stage schema.
CREATE OR REPLACE FUNCTION timepart._migrate_place_target(m timepart.migrations, schema_name name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    -- SET SCHEMA runs no user code; an owner without CREATE there leaves it to the caller (its member or a superuser).
    owner_may_create boolean := pg_catalog.has_schema_privilege(
        (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = m.source), schema_name, 'CREATE');
BEGIN
    FOR r IN SELECT a.attname, a.attidentity, pg_catalog.pg_get_serial_sequence(m.source::text, a.attname) AS old_seq,
                    pg_catalog.pg_get_serial_sequence(m.target::text, a.attname) AS new_seq
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped LOOP
        IF r.old_seq IS NOT NULL AND r.new_seq IS NOT NULL THEN
            PERFORM timepart._as_owner(m.source, format('SELECT pg_catalog.setval(%L, s.last_value, s.is_called) FROM %s s', r.new_seq, r.old_seq));
        END IF;
    END LOOP;
    FOR r IN SELECT t.relid::regclass AS rel FROM pg_catalog.pg_partition_tree(m.target) t ORDER BY t.level LOOP
        IF owner_may_create THEN
            PERFORM timepart._as_owner(m.source, format('ALTER TABLE %s SET SCHEMA %I', r.rel, schema_name));
        ELSE
            EXECUTE format('ALTER TABLE %s SET SCHEMA %I', r.rel, schema_name);
        END IF;
    END LOOP;
    FOR r IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(m.source::text, a.attname) AS seq
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity = '' LOOP
        IF r.seq IS NOT NULL THEN
            -- The copy's default calls the same sequence; dropping the old table must not take it along.
            PERFORM timepart._as_owner(m.source, format('ALTER SEQUENCE %s OWNED BY %s.%I', r.seq, m.target, r.attname));
        END IF;
    END LOOP;
    PERFORM timepart._as_owner(m.source, format('DROP TABLE %I.changes', m.stage_schema));
    PERFORM timepart._as_owner(m.source, format('DROP SCHEMA %I', m.stage_schema));
END $$;

-- The swap, retried: each attempt is one short transaction; between attempts the
-- backlog is applied so the next one has little to do. A mismatch or any other
-- error ends the run (logged first, so the log row survives), the state stays.
CREATE OR REPLACE PROCEDURE timepart._migrate_swap_retrying(m timepart.migrations, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    lock_wait interval := (SELECT c.lock_timeout FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) m.target);
    result jsonb;
    attempt int := 0;
    err text;
    state text;
    detail text;
    hint text;
BEGIN
    LOOP
        attempt := attempt OPERATOR(pg_catalog.+) 1;
        started := pg_catalog.clock_timestamp();
        BEGIN
            result := timepart._migrate_swap(m, lock_wait);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        END;
        IF result IS NOT NULL THEN
            PERFORM timepart._log('migrate_swap', m.target, m.target::pg_catalog.text, true, result OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('attempts', attempt), NULL, started);
            COMMIT;
            RAISE NOTICE 'timepart.migrate: % is partitioned now (% rows, checksum %, swap took % ms); the old table is %',
                m.target, result->>'rows', result->>'checksum', result->>'swap_ms', result->>'old_table';
            RETURN;
        END IF;
        PERFORM timepart._log('migrate_swap', m.source, m.target::pg_catalog.text, false, pg_catalog.jsonb_build_object('attempt', attempt, 'sqlstate', state), err, started);
        COMMIT;
        IF state OPERATOR(pg_catalog.<>) '55P03' OR attempt OPERATOR(pg_catalog.>=) 20 THEN
            PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(m.source));
            RAISE EXCEPTION '%', err USING ERRCODE = state, DETAIL = detail,
                HINT = CASE WHEN state OPERATOR(pg_catalog.=) '55P03' THEN pg_catalog.format('Gave up after %s lock waits of %s. CALL timepart.migrate again when traffic allows; the copy is kept.', attempt, lock_wait) ELSE hint END;
        END IF;
        RAISE NOTICE 'timepart.migrate: swap attempt % waited too long for a lock; retrying', attempt;
        PERFORM pg_catalog.pg_sleep(least(2, 0.1 OPERATOR(pg_catalog.*) attempt));
        PERFORM timepart._migrate_catch_up(m, batch_size);
        COMMIT;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE timepart.migrate(source regclass, key_column name, partition_interval interval DEFAULT '1 month',
                                             batch_size integer DEFAULT 50000, premake integer DEFAULT 6,
                                             retention interval DEFAULT NULL, time_zone text DEFAULT 'UTC')
LANGUAGE plpgsql AS $$
/* Converts an unpartitioned table into a managed partitioned one of the same name
   while it stays in use: batches of batch_size rows, a COMMIT after each, concurrent
   writes captured and applied, counts and checksums compared, names swapped in one
   short transaction. CALL it outside a transaction block; CALL it again to resume. */
DECLARE
    m timepart.migrations;
    run_started timestamptz := pg_catalog.clock_timestamp();
    rows_at_start bigint;
    n bigint;
BEGIN
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(batch_size::text, 'NULL')), HINT = 'Copy e.g. 50000 rows per transaction.';
    END IF;
    m := timepart._migrate_begin(source, key_column, partition_interval, batch_size, premake, retention, time_zone);
    IF m.id IS NULL THEN
        RETURN;
    END IF;
    COMMIT;
    rows_at_start := m.rows_copied;
    WHILE m.state OPERATOR(pg_catalog.=) 'copying' LOOP
        PERFORM timepart._migrate_batch(m, batch_size);
        COMMIT;
        SELECT * INTO m FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id;
        PERFORM timepart._migrate_progress(m, run_started, rows_at_start);
    END LOOP;
    LOOP
        n := timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
    CALL timepart._migrate_swap_retrying(m, batch_size);
    IF m.retention IS NOT NULL THEN
        PERFORM timepart.configure(m.target, pg_catalog.jsonb_build_object('retention', m.retention));
    END IF;
    PERFORM timepart._log('migrate', m.source, m.target::pg_catalog.text, true,
        (SELECT pg_catalog.to_jsonb(g) OPERATOR(pg_catalog.-) 'source' FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id), NULL, run_started);
    COMMIT;
    PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(m.source));
END $$;

CREATE OR REPLACE FUNCTION timepart.migrate_abort(source regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops an unfinished migration: removes the capture triggers, the partitioned copy
   and its registration. The source table and its rows are untouched. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    m timepart.migrations;
    t record;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = migrate_abort.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND THEN
        RAISE NOTICE 'no migration of % is under way', source;
        RETURN false;
    END IF;
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(source)) THEN
        RAISE EXCEPTION 'a session is migrating % right now', source USING ERRCODE = '55006',
            DETAIL = 'It holds the table''s migration lock.', HINT = 'Cancel that CALL first (pg_cancel_backend), then abort.';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
    FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g WHERE g.tgrelid = source AND g.tgname LIKE 'timepart\_migrate\_%' LOOP
        PERFORM timepart._as_owner(source, format('DROP TRIGGER %I ON %s', t.tgname, source));
    END LOOP;
    DELETE FROM timepart.config c WHERE c.parent = m.target;
    PERFORM timepart._as_owner(source, format('DROP SCHEMA %I CASCADE', m.stage_schema));
    UPDATE timepart.migrations g SET state = 'aborted', finished_at = pg_catalog.clock_timestamp() WHERE g.id = m.id;
    PERFORM timepart._log('migrate_abort', source, NULL, true, jsonb_build_object('rows_copied', m.rows_copied), NULL, started);
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Runs as the caller: only an owner of a table (or a member of its owner role) may
   register, reconfigure or forget it, or change its index templates or migration.
   Both the row as it was and the row as it becomes are checked, so an UPDATE cannot
   take another owner's row. TG_ARGV[0] names the column holding the table. */
DECLARE
    col text := coalesce(TG_ARGV[0], 'parent');
    tbl regclass;
    side record;
BEGIN
    FOR side IN SELECT x.r FROM (VALUES (CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN pg_catalog.to_jsonb(OLD) END),
                                        (CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN pg_catalog.to_jsonb(NEW) END)) x(r)
                WHERE x.r IS NOT NULL LOOP
        tbl := (side.r ->> col)::regclass;
        IF NOT coalesce(timepart._may_act(current_user, tbl), TG_OP = 'DELETE') THEN
            RAISE EXCEPTION 'must be owner of table % to manage it', coalesce(tbl::regclass::text, side.r ->> col) USING ERRCODE = '42501',
                DETAIL = format('%s is owned by %s.', tbl::regclass,
                                coalesce((SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE oid = tbl), 'nobody: it does not exist')),
                HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

-- Tables only timepart's own functions write: the statement must come straight from a
-- PL/pgSQL function in schema timepart (the nearest function on the call stack), not
-- from a client, a DO block, a user's function or a trigger. On the log, who and when
-- are set here, by the server.
CREATE OR REPLACE FUNCTION timepart._written_by_timepart() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
    frame text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    -- The nearest function frame, looking through timepart._log to whatever called it.
    SELECT x.l INTO frame FROM unnest((pg_catalog.string_to_array(ctx, E'\n'))[2:]) WITH ORDINALITY AS x(l, i)
    WHERE x.l ~ '^(PL/pgSQL|SQL) function' AND x.l !~ '^PL/pgSQL function timepart\._log\(' ORDER BY x.i LIMIT 1;
    -- A superuser may trim the log (DELETE); nobody writes rows into it but timepart.
    IF (frame IS NULL OR frame !~ '^PL/pgSQL function timepart\.')
       AND NOT (TG_OP = 'DELETE' AND TG_TABLE_NAME = 'maintenance_log'
                AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)) THEN
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

-- Index templates are checked as text, however they arrive (the API or a direct
-- INSERT): the column list and the condition must each stay inside the parentheses
-- timepart puts them in, so no clause (TABLESPACE, WITH, a second statement) can be
-- smuggled into the CREATE INDEX it builds.
CREATE OR REPLACE FUNCTION timepart._check_template_text(txt text, what text) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    i int := 1;
    n int := length(txt);
    c text;
    depth int := 0;
    bad text;
BEGIN
    IF txt IS NULL OR btrim(txt) = '' THEN
        bad := 'it is empty';
    END IF;
    WHILE bad IS NULL AND i <= n LOOP
        c := substr(txt, i, 1);
        IF c = '''' OR c = '"' THEN
            i := i + 1;
            LOOP
                IF i > n THEN bad := 'a quote is not closed'; EXIT; END IF;
                IF substr(txt, i, 1) = '\' THEN bad := 'it holds a backslash'; EXIT; END IF;
                IF substr(txt, i, 1) = c THEN
                    IF substr(txt, i + 1, 1) = c THEN i := i + 2; CONTINUE; END IF;
                    EXIT;
                END IF;
                i := i + 1;
            END LOOP;
        ELSIF c = '(' THEN depth := depth + 1;
        ELSIF c = ')' THEN
            depth := depth - 1;
            IF depth < 0 THEN bad := 'a parenthesis closes that was never opened'; END IF;
        ELSIF c IN (';', '\', '$') THEN bad := format('it holds %s', c);
        ELSIF substr(txt, i, 2) IN ('--', '/*') THEN bad := 'it holds a comment';
        END IF;
        i := i + 1;
    END LOOP;
    IF bad IS NULL AND depth <> 0 THEN
        bad := 'a parenthesis is not closed';
    END IF;
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'invalid index template definition' USING ERRCODE = '22023',
            DETAIL = format('The %s is refused: %s. Got %s.', what, bad, coalesce(txt, 'NULL')),
            HINT = 'Give a column list such as ''workspace_id, created_at DESC'' and an optional condition such as '
                   '''status = ''''open''''''; no semicolons, comments, backslashes, dollar quotes or unbalanced parentheses.';
    END IF;
END $$;

-- The refusal for a template that cannot be built as it stands: add_index_template and
-- the trigger below (direct INSERTs and UPDATEs) check the same way.
CREATE OR REPLACE FUNCTION timepart._check_template(t timepart.index_templates) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF t.suffix IS NULL OR t.suffix !~ '^[a-z0-9_]{1,40}$' THEN
        RAISE EXCEPTION 'invalid index template suffix "%"', t.suffix USING ERRCODE = '22023',
            DETAIL = 'A suffix is 1 to 40 characters of a-z, 0-9 and _.', HINT = 'Use a name such as workspace_created_idx.';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_am a WHERE a.amname = t.method AND a.amtype = 'i') THEN
        RAISE EXCEPTION 'unknown index method "%"', t.method USING ERRCODE = '22023',
            DETAIL = 'It is not an index access method of this database.', HINT = 'Use btree, hash, gist, gin or brin.';
    END IF;
    PERFORM timepart._check_template_text(t.columns, 'column list');
    IF t.where_clause IS NOT NULL THEN
        PERFORM timepart._check_template_text(t.where_clause, 'condition');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION timepart._template_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_template(NEW);
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS index_templates_checked ON timepart.index_templates;

CREATE TRIGGER index_templates_checked BEFORE INSERT OR UPDATE ON timepart.index_templates
    FOR EACH ROW EXECUTE FUNCTION timepart._template_guard();

-- Functions that act with the owner's rights (they read user tables or write timepart's own).
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT timepart._monitor_functions() || ARRAY['timepart.snapshot_stats', 'timepart.check_alerts',
                                                  'timepart._executor', 'timepart._archive_schema', 'timepart._migrate_capture',
                                                  'timepart._migrate_triggers', 'timepart._migrate_stage_schema',
                                                  'timepart._new_partition_table']
$$;

-- Functions nobody but timepart's owner may execute: trigger functions (which must not
-- be attached to anyone's table) and the executor factory's helpers.
CREATE OR REPLACE FUNCTION timepart._private_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart._migrate_capture', 'timepart._migrate_refuse_truncate', 'timepart._config_guard',
                 'timepart._written_by_timepart', 'timepart._template_guard']
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
        WHERE (n.nspname = 'timepart' AND p.proname NOT LIKE '\_as\_owner\_%') OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they qualify every name instead.
        IF f.prokind = 'f' AND (f.lanname = 'plpgsql' OR f.nspname = 'public' OR f.qname = ANY (timepart._definer_functions())) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD''', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        ELSIF f.prokind = 'f' THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER', f.sig);
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
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        GRANT INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.migrations TO partition_admin;
        GRANT INSERT, DELETE ON timepart.jobs TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;

SELECT timepart._harden();
