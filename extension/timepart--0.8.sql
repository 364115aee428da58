-- timepart 0.8: generated from extension/src/*.sql by 'make'; edit those, not this file.

-- ==== src/00_schema.sql
-- The schema and the version marker. The same file runs under CREATE EXTENSION
-- and over a plain connection (the installer's script mode), so no psql \quit guard.
CREATE SCHEMA IF NOT EXISTS timepart;
COMMENT ON SCHEMA timepart IS 'timepart: time-partitioned tables that keep themselves healthy';

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.8'::text $$;
COMMENT ON FUNCTION timepart.version() IS 'The version of the timepart SQL installed in this database';

-- pg_dump must keep configuration rows; only possible under CREATE EXTENSION.
CREATE OR REPLACE FUNCTION timepart._config_dump(tbl regclass, filter text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timepart') THEN
        PERFORM pg_catalog.pg_extension_config_dump(tbl, filter);
    END IF;
END $$;

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

-- ==== src/10_tables.sql
-- Tables: configuration (one row per managed table), index templates, maintenance log.

CREATE TABLE timepart.config (
    parent              regclass PRIMARY KEY,
    key_column          name NOT NULL,
    key_type            regtype NOT NULL,
    partition_interval  interval NOT NULL DEFAULT '1 month',
    premake             integer NOT NULL DEFAULT 6,
    retention           interval,
    retention_action    text NOT NULL DEFAULT 'drop',
    archive_schema      name,
    default_partition   boolean NOT NULL DEFAULT true,
    lock_timeout        interval NOT NULL DEFAULT '100 milliseconds',
    lock_retries        integer NOT NULL DEFAULT 3,
    time_zone           text NOT NULL DEFAULT 'UTC',
    alert_max_size_bytes    bigint NOT NULL DEFAULT 5368709120,
    alert_max_rows          bigint NOT NULL DEFAULT 10000000,
    alert_min_future        integer NOT NULL DEFAULT 2,
    alert_growth_ratio      numeric NOT NULL DEFAULT 0.5,
    alert_old_age           interval NOT NULL DEFAULT '13 months',
    created_at          timestamptz NOT NULL DEFAULT now(),
    interval_anchor     timestamptz,
    monitor_sees_values boolean NOT NULL DEFAULT false,
    CONSTRAINT config_key_type_is_time CHECK (key_type IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)),
    CONSTRAINT config_interval_whole_days_or_months CHECK (
        partition_interval = pg_catalog.make_interval(months => pg_catalog.date_part('month', partition_interval)::int
                                                      + 12 * pg_catalog.date_part('year', partition_interval)::int,
                                                      days => pg_catalog.date_part('day', partition_interval)::int)
        AND (pg_catalog.date_part('day', partition_interval) = 0
             OR (pg_catalog.date_part('month', partition_interval) = 0 AND pg_catalog.date_part('year', partition_interval) = 0))
        AND partition_interval > interval '0'),
    CONSTRAINT config_premake_positive CHECK (premake > 0 AND premake <= 1000),
    CONSTRAINT config_retention_positive CHECK (retention IS NULL OR retention > interval '0'),
    CONSTRAINT config_retention_action_known CHECK (retention_action IN ('drop', 'detach', 'archive')),
    CONSTRAINT config_archive_needs_schema CHECK (retention_action <> 'archive' OR archive_schema IS NOT NULL),
    CONSTRAINT config_lock_timeout_bounded CHECK (lock_timeout > interval '0' AND lock_timeout <= interval '1 minute'),
    CONSTRAINT config_lock_retries_bounded CHECK (lock_retries BETWEEN 0 AND 20),
    CONSTRAINT config_alert_thresholds_positive CHECK (alert_max_size_bytes > 0 AND alert_max_rows > 0
        AND alert_min_future >= 0 AND alert_growth_ratio > 0 AND alert_old_age > interval '0')
);
COMMENT ON TABLE timepart.config IS 'One row per table timepart manages: interval, premake, retention, lock budget, alert thresholds';
COMMENT ON COLUMN timepart.config.partition_interval IS 'Width of one partition: a whole number of days or of months';
COMMENT ON COLUMN timepart.config.premake IS 'How many future partitions maintain keeps ahead of the current one';
COMMENT ON COLUMN timepart.config.retention IS 'Partitions wholly older than (start of current period - retention) are removed by cleanup; NULL keeps everything';
COMMENT ON COLUMN timepart.config.lock_timeout IS 'Longest a maintenance step waits for a lock before backing off';
COMMENT ON COLUMN timepart.config.interval_anchor IS 'Where periods of the current interval start counting (set by change_interval); NULL: natural boundaries';
COMMENT ON COLUMN timepart.config.monitor_sees_values IS 'Whether roles that may not SELECT the table see its exact oldest and newest key values in stats (counts and sizes they always see)';
COMMENT ON COLUMN timepart.config.time_zone IS 'Time zone in which period boundaries (midnight, first of month) are computed';
SELECT timepart._config_dump('timepart.config');

CREATE TABLE timepart.index_templates (
    parent          regclass NOT NULL REFERENCES timepart.config (parent) ON DELETE CASCADE,
    suffix          text NOT NULL,
    columns         text NOT NULL,
    method          text NOT NULL DEFAULT 'btree',
    where_clause    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (parent, suffix),
    CONSTRAINT index_templates_suffix_simple CHECK (suffix ~ '^[a-z0-9_]{1,40}$'),
    CONSTRAINT index_templates_single_statement CHECK (position(';' IN columns) = 0
        AND position(';' IN coalesce(where_clause, '')) = 0)
);
COMMENT ON TABLE timepart.index_templates IS 'Indexes every partition of a managed table gets, named <partition>_<suffix>';
SELECT timepart._config_dump('timepart.index_templates');

CREATE TABLE timepart.maintenance_log (
    id              bigserial PRIMARY KEY,
    operation_type  text NOT NULL,
    parent_table    text,
    partition_name  text,
    success         boolean NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    details         jsonb NOT NULL DEFAULT '{}',
    error           text,
    duration        interval,
    run_by          name NOT NULL DEFAULT session_user,
    run_as          name NOT NULL DEFAULT current_user
);
CREATE INDEX maintenance_log_created_at_idx ON timepart.maintenance_log (created_at DESC);
COMMENT ON TABLE timepart.maintenance_log IS 'Every timepart operation and its outcome, failures included';
COMMENT ON COLUMN timepart.maintenance_log.run_by IS 'session_user of the run';
COMMENT ON COLUMN timepart.maintenance_log.run_as IS 'current_user of the run (differs under SECURITY DEFINER)';

-- ==== src/20_naming.sql
-- Periods and names: where a period starts, what a partition is called, how a
-- bound is written. Pure functions; "now" is always a parameter.

-- Longest name PostgreSQL keeps (NAMEDATALEN - 1 bytes).
CREATE OR REPLACE FUNCTION timepart._fit_name(base text, suffix text) RETURNS name
LANGUAGE plpgsql IMMUTABLE STRICT AS $$
/* base || '_' || suffix, kept within 63 bytes: when too long, base is cut at a
   character boundary and an 8-hex hash of the full name keeps it unique. */
DECLARE
    full_name text := base || '_' || suffix;
    tag text := '_' || left(pg_catalog.md5(full_name), 8);
    room int;
    cut text;
BEGIN
    IF octet_length(full_name) <= 63 THEN
        RETURN full_name::name;
    END IF;
    room := 63 - octet_length(tag) - octet_length('_' || suffix);
    IF room < 1 THEN
        RAISE EXCEPTION 'name suffix "%" is too long', suffix USING ERRCODE = '22023',
            DETAIL = format('%s bytes leave no room for a table name within 63 bytes.', octet_length(suffix)),
            HINT = 'Use a shorter suffix.';
    END IF;
    cut := base;
    WHILE octet_length(cut) > room LOOP
        cut := left(cut, -1);
    END LOOP;
    RETURN (cut || tag || '_' || suffix)::name;
END $$;
COMMENT ON FUNCTION timepart._fit_name(text, text) IS 'base_suffix within 63 bytes, deterministic (cut + hash) when longer';

-- The period containing a moment, in the table's time zone. Month intervals align
-- to month 0 of year 0 (so quarters and years fall on natural boundaries); day
-- intervals align to Monday 2000-01-03 (so weeks start on Monday).
CREATE OR REPLACE FUNCTION timepart._period_start(at_time timestamptz, step interval, tz text)
RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    local_ts timestamp := at_time AT TIME ZONE tz;
    months int := (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))::int;
    days int := pg_catalog.date_part('day', step)::int;
    n bigint;
BEGIN
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', local_ts) * 12 + pg_catalog.date_part('month', local_ts) - 1)::bigint;
        n := n - ((n % months) + months) % months;
        RETURN pg_catalog.make_timestamp((n / 12)::int, (n % 12)::int + 1, 1, 0, 0, 0) AT TIME ZONE tz;
    END IF;
    n := local_ts::date - date '2000-01-03';
    n := n - ((n % days) + days) % days;
    RETURN (date '2000-01-03' + n::int)::timestamp AT TIME ZONE tz;
END $$;
COMMENT ON FUNCTION timepart._period_start(timestamptz, interval, text) IS 'Start of the partition period containing a moment';

-- The moment n periods after a period start (n may be negative), in local time.
CREATE OR REPLACE FUNCTION timepart._period_add(period_start timestamptz, step interval, n int, tz text)
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT ((period_start AT TIME ZONE tz) + step * n) AT TIME ZONE tz
$$;

-- Label of a period as used in partition names: YYYY_MM for month intervals starting
-- on the 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._period_label(period_start timestamptz, step interval, tz text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.to_char(period_start AT TIME ZONE tz,
           CASE WHEN pg_catalog.date_part('day', step) = 0
                 AND pg_catalog.date_trunc('month', period_start AT TIME ZONE tz) = period_start AT TIME ZONE tz
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, tz text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT pg_catalog.to_char(range_start AT TIME ZONE tz,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE tz) = range_start AT TIME ZONE tz
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE tz) = range_end AT TIME ZONE tz
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END)
$$;

-- The period of a managed table containing a moment: natural boundaries, or counted
-- from interval_anchor once the interval was changed.
CREATE OR REPLACE FUNCTION timepart._period_of(cfg timepart.config, at_time timestamptz) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    step interval := cfg.partition_interval;
    tz text := cfg.time_zone;
    a timestamp := cfg.interval_anchor AT TIME ZONE cfg.time_zone;
    t timestamp := at_time AT TIME ZONE cfg.time_zone;
    months int := (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))::int;
    n bigint;
BEGIN
    IF cfg.interval_anchor IS NULL THEN
        RETURN timepart._period_start(at_time, step, tz);
    END IF;
    IF months > 0 THEN
        n := (pg_catalog.date_part('year', t) * 12 + pg_catalog.date_part('month', t))::bigint
           - (pg_catalog.date_part('year', a) * 12 + pg_catalog.date_part('month', a))::bigint;
        IF a + pg_catalog.make_interval(months => n::int) > t THEN n := n - 1; END IF;
        n := n - ((n % months) + months) % months;
        RETURN (a + pg_catalog.make_interval(months => n::int)) AT TIME ZONE tz;
    END IF;
    n := pg_catalog.floor(extract(epoch FROM t - a) / 86400)::bigint;
    n := n - ((n % pg_catalog.date_part('day', step)::int) + pg_catalog.date_part('day', step)::int) % pg_catalog.date_part('day', step)::int;
    RETURN (a + pg_catalog.make_interval(days => n::int)) AT TIME ZONE tz;
END $$;

-- Name of the partition for a period: <parent>_<label>, fitted to 63 bytes.
CREATE OR REPLACE FUNCTION timepart._partition_name(parent regclass, period_start timestamptz, step interval, tz text)
RETURNS name LANGUAGE sql STABLE STRICT AS $$
    SELECT timepart._fit_name(c.relname, timepart._period_label(period_start, step, tz))
    FROM pg_catalog.pg_class c WHERE c.oid = parent
$$;

-- A bound written as a literal of the key's type (timestamptz in UTC with its offset,
-- local time for timestamp and date keys), independent of DateStyle and TimeZone.
CREATE OR REPLACE FUNCTION timepart._bound_literal(bound timestamptz, key_type regtype, tz text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT pg_catalog.quote_literal(CASE key_type
        WHEN 'timestamptz'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00"')
        WHEN 'timestamp'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE tz, 'YYYY-MM-DD"T"HH24:MI:SS.US')
        ELSE pg_catalog.to_char(bound AT TIME ZONE tz, 'YYYY-MM-DD') END)
$$;

-- True for an interval whose months, days and time have opposite signs ('1 month -29 days'):
-- its length depends on the calendar, so it is no retention or period.
CREATE OR REPLACE FUNCTION timepart._mixed_signs(i interval) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT (m > 0 OR d > 0 OR t > 0) AND (m < 0 OR d < 0 OR t < 0)
    FROM (SELECT pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i) AS m,
                 pg_catalog.date_part('day', i) AS d,
                 pg_catalog.date_part('epoch', i - pg_catalog.justify_hours(pg_catalog.make_interval(
                     months => (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::int,
                     days => pg_catalog.date_part('day', i)::int))) AS t) parts
$$;

-- ==== src/30_catalog.sql
-- Reading the catalog: a managed table's configuration and its partitions' bounds,
-- every partition in one query (never one query per partition).

CREATE OR REPLACE FUNCTION timepart._config(tbl regclass) RETURNS timepart.config
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config;
BEGIN
    SELECT * INTO cfg FROM timepart.config c WHERE c.parent = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed by timepart', tbl USING ERRCODE = '22023',
            DETAIL = 'It has no row in timepart.config.',
            HINT = format('Run SELECT timepart.manage(%L) first.', tbl::text);
    END IF;
    RETURN cfg;
END $$;

-- One bound as the catalog prints it (a literal, MINVALUE or MAXVALUE) to a moment.
-- A single SQL expression, so the planner inlines it.
CREATE OR REPLACE FUNCTION timepart._bound_value(printed text, key_type oid, tz text)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN printed = 'MINVALUE' THEN '-infinity'::timestamptz
                WHEN printed = 'MAXVALUE' THEN 'infinity'::timestamptz
                WHEN key_type = 'timestamptz'::regtype THEN printed::timestamptz
                WHEN key_type = 'timestamp'::regtype THEN printed::timestamp AT TIME ZONE tz
                ELSE printed::date::timestamp AT TIME ZONE tz END
$$;

-- Every partition of a parent with its bounds read from the catalog (never from its
-- name), in one query. MINVALUE/MAXVALUE read as -infinity/infinity; the default
-- partition has NULL bounds.
CREATE OR REPLACE FUNCTION timepart._partitions(tbl regclass, tz text DEFAULT 'UTC')
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, is_default boolean)
LANGUAGE sql STABLE AS $$
    WITH parts AS MATERIALIZED (
        SELECT c.oid, n.nspname, c.relname,
               pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, 0),  -- 0: bounds are constants; no partition is opened or locked
                                       '^FOR VALUES FROM \(''?([^'']*)''?\) TO \(''?([^'']*)''?\)$') AS b
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    ), key AS (
        SELECT a.atttypid AS key_type
        FROM pg_catalog.pg_partitioned_table p
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = tbl
    )
    SELECT p.oid, p.nspname, p.relname,
           timepart._bound_value(p.b[1], k.key_type, tz), timepart._bound_value(p.b[2], k.key_type, tz), p.b IS NULL
    FROM parts p CROSS JOIN key k
    ORDER BY 4 NULLS FIRST
$$;

-- A table's lock budget as a lock_timeout setting. Every function that sets it runs with
-- a SET clause (99_security.sql), so the setting never outlives the call.
CREATE OR REPLACE FUNCTION timepart._lock_budget(cfg timepart.config) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM cfg.lock_timeout) * 1000)::bigint::text || 'ms'
$$;

-- ==== src/35_registry.sql
-- Registry: adopting a partitioned table (manage) and letting it go (unmanage).

-- The refusal for an interval that is not a whole number of days or of months.
CREATE OR REPLACE FUNCTION timepart._check_interval(step interval) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF step IS NULL OR step <= interval '0'
       OR step <> pg_catalog.make_interval(months => (pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step))::int,
                                           days => pg_catalog.date_part('day', step)::int)
       OR (pg_catalog.date_part('day', step) <> 0 AND pg_catalog.date_part('year', step) * 12 + pg_catalog.date_part('month', step) <> 0) THEN
        RAISE EXCEPTION 'partition interval must be a whole number of days or of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(step::text, 'NULL')),
            HINT = 'Use e.g. ''1 day'', ''7 days'', ''1 month'' or ''3 months''; not hours, and not months and days mixed.';
    END IF;
    IF step > interval '10 years' THEN
        RAISE EXCEPTION 'partition interval is too long' USING ERRCODE = '22023',
            DETAIL = format('Got %s; the longest supported is 10 years.', step),
            HINT = 'Partition by month or year; a table that needs longer partitions needs none.';
    END IF;
END $$;

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

CREATE OR REPLACE FUNCTION timepart.manage(parent regclass, partition_interval interval DEFAULT '1 month',
                                           premake integer DEFAULT 6, retention interval DEFAULT NULL,
                                           default_partition boolean DEFAULT true,
                                           lock_timeout interval DEFAULT '100 milliseconds',
                                           time_zone text DEFAULT 'UTC', as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Adopts a table partitioned BY RANGE on a time column and creates the partitions
   it needs now. Calling it again updates the settings. Returns what maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
BEGIN
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    PERFORM timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;
COMMENT ON FUNCTION timepart.manage(regclass, interval, integer, interval, boolean, interval, text, timestamptz) IS
    'Adopts a range-partitioned table: records its settings and creates the partitions it needs now';

CREATE OR REPLACE FUNCTION timepart.unmanage(parent regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops managing a table. Every partition, index and row stays. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    DELETE FROM timepart.config c WHERE c.parent = unmanage.parent;
    IF NOT FOUND THEN
        RAISE NOTICE 'table % is not managed by timepart', parent;
        RETURN false;
    END IF;
    PERFORM timepart._log('unmanage', parent, NULL, true, '{}', NULL, started);
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.unmanage(regclass) IS 'Stops managing a table; its partitions and rows stay';

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
COMMENT ON FUNCTION timepart.configure(regclass, jsonb) IS 'Changes a managed table''s settings from a JSON object; invalid settings change nothing';

CREATE OR REPLACE FUNCTION timepart.change_interval(parent regclass, new_interval interval, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Changes the partition interval of a managed table (say monthly to daily). Existing
   partitions stay as they are; new ones follow the new interval from the end of the
   last existing one. Returns what maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    anchor timestamptz;
BEGIN
    PERFORM timepart._check_interval(new_interval);
    IF new_interval::text = cfg.partition_interval::text THEN
        RAISE NOTICE 'table % already uses interval %', parent, new_interval;
        RETURN timepart.maintain(parent, NULL, as_of);
    END IF;
    SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end)) INTO anchor
    FROM timepart._partitions(parent, cfg.time_zone) p WHERE NOT p.is_default;
    IF pg_catalog.date_part('day', new_interval) = 0 AND anchor IS NOT NULL
       AND pg_catalog.date_trunc('month', anchor AT TIME ZONE cfg.time_zone) <> anchor AT TIME ZONE cfg.time_zone THEN
        RAISE EXCEPTION 'month partitions must start on the 1st' USING ERRCODE = '22023',
            DETAIL = format('The last partition of %s ends %s, not on the 1st of a month.', parent, anchor),
            HINT = 'Create partitions of the current interval up to the next 1st, then change the interval.';
    END IF;
    UPDATE timepart.config c SET partition_interval = new_interval, interval_anchor = anchor
    WHERE c.parent = change_interval.parent;
    PERFORM timepart._log('change_interval', parent, NULL, true,
        jsonb_build_object('from', cfg.partition_interval, 'to', new_interval, 'anchor', anchor), NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;
COMMENT ON FUNCTION timepart.change_interval(regclass, interval, timestamptz) IS
    'Changes a managed table''s partition interval; existing partitions stay, new ones follow from the end of the last';

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

CREATE OR REPLACE FUNCTION timepart.get_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'log limit must be a positive number' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(max_rows::text, 'NULL')),
            HINT = 'Pass how many of the newest rows you want, e.g. 100.';
    END IF;
    RETURN QUERY SELECT * FROM timepart.maintenance_log l ORDER BY l.created_at DESC, l.id DESC LIMIT max_rows;
END $$;
COMMENT ON FUNCTION timepart.get_maintenance_log(integer) IS 'The newest maintenance log rows, newest first';

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

-- The partitioned index on the parent that a template's partition indexes attach to.
CREATE OR REPLACE FUNCTION timepart._template_parent_index(tbl regclass, suffix text) RETURNS regclass
LANGUAGE sql STABLE AS $$
    SELECT c.oid::regclass FROM pg_catalog.pg_class c, pg_catalog.pg_class p
    WHERE p.oid = tbl AND c.relnamespace = p.relnamespace
      AND c.relname = timepart._fit_name(p.relname, suffix) AND c.relkind = 'I'
$$;

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
COMMENT ON FUNCTION timepart.add_index_template(regclass, text, text, text, text) IS
    'Adds an index every partition gets (<partition>_<suffix>) and back-fills existing partitions';

CREATE OR REPLACE FUNCTION timepart.drop_index_template(parent regclass, suffix text) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Forgets a template. Existing indexes stay; drop the parent's index yourself to remove them all. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    DELETE FROM timepart.index_templates it WHERE it.parent = drop_index_template.parent AND it.suffix = drop_index_template.suffix;
    IF NOT FOUND THEN
        RAISE NOTICE 'no index template "%" on %', suffix, parent;
        RETURN false;
    END IF;
    PERFORM timepart._log('drop_index_template', parent, NULL, true, jsonb_build_object('suffix', suffix), NULL, started);
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.drop_index_template(regclass, text) IS 'Stops adding an index to new partitions; existing indexes stay';

-- ==== src/60_create.sql
-- Creating partitions: standalone table + indexes, then ATTACH (weak lock on the
-- parent), every lock wait bounded by the table's lock budget and retried.

-- The columns rows are copied by (no dropped or generated columns), quoted.
CREATE OR REPLACE FUNCTION timepart._column_list(tbl regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
$$;

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

-- One step on one partition (action 'build': _build_partition, 'retire':
-- _retire_partition) in a sub-transaction,
-- retried with backoff while it only fails for want of a lock. Never raises:
-- returns the step's result with {"ok", "attempts"} or {"ok": false, "error", "sqlstate"}.
CREATE OR REPLACE FUNCTION timepart._attempt(cfg timepart.config, action text, part_name name,
                                             range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    result jsonb;
    old_timeout text := pg_catalog.current_setting('lock_timeout');
    attempt int := 0;
    err text;
    state text;
BEGIN
    LOOP
        attempt := attempt + 1;
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            result := CASE action
                WHEN 'build' THEN timepart._build_partition(cfg, part_name, range_start, range_end)
                WHEN 'retire' THEN timepart._retire_partition(cfg, part_name, range_start, range_end)
                END;
            PERFORM pg_catalog.set_config('lock_timeout', old_timeout, true);
            RETURN result || jsonb_build_object('ok', true, 'attempts', attempt);
        EXCEPTION
            WHEN lock_not_available THEN
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                IF attempt > cfg.lock_retries THEN
                    RETURN jsonb_build_object('ok', false, 'attempts', attempt, 'sqlstate', state,
                        'error', format('gave up after %s lock waits of %s: %s', attempt, cfg.lock_timeout, err));
                END IF;
                PERFORM pg_catalog.pg_sleep(0.05 * attempt);
            WHEN OTHERS THEN
                GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
                RETURN jsonb_build_object('ok', false, 'attempts', attempt, 'sqlstate', state, 'error', err);
        END;
    END LOOP;
    RETURN NULL;  -- not reached: every way out of the loop returns
END $$;

-- The refusal for a range that cannot become a partition. Returns the partition
-- that already covers exactly this range, or NULL.
CREATE OR REPLACE FUNCTION timepart._check_range(cfg timepart.config, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    aligned timestamptz;
    clash record;
BEGIN
    IF range_start IS NULL OR range_end IS NULL OR NOT pg_catalog.isfinite(range_start) OR NOT pg_catalog.isfinite(range_end) THEN
        RAISE EXCEPTION 'partition bounds must be finite moments' USING ERRCODE = '22023',
            DETAIL = format('Got %s to %s.', coalesce(range_start::text, 'NULL'), coalesce(range_end::text, 'NULL')),
            HINT = 'Pass the start and end of one period, e.g. ''2024-03-01'' and ''2024-04-01''.';
    END IF;
    IF range_end <= range_start THEN
        RAISE EXCEPTION 'partition range is reversed or empty' USING ERRCODE = '22023',
            DETAIL = format('Start %s is not before end %s.', range_start, range_end),
            HINT = 'Pass the earlier moment first.';
    END IF;
    aligned := timepart._period_of(cfg, range_start);
    IF aligned <> range_start OR timepart._period_add(aligned, cfg.partition_interval, 1, cfg.time_zone) <> range_end THEN
        RAISE EXCEPTION 'partition range is not aligned with the interval of %', cfg.parent USING ERRCODE = '22023',
            DETAIL = format('Got %s to %s; partitions of this table cover one period of %s in time zone %s.',
                            range_start, range_end, cfg.partition_interval, cfg.time_zone),
            HINT = format('The period containing the start is %s to %s.', aligned,
                          timepart._period_add(aligned, cfg.partition_interval, 1, cfg.time_zone));
    END IF;
    SELECT p.schema_name, p.partition_name, p.range_start AS s, p.range_end AS e INTO clash
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p
    WHERE NOT p.is_default AND p.range_start < _check_range.range_end AND p.range_end > _check_range.range_start
    ORDER BY (p.range_start = _check_range.range_start AND p.range_end = _check_range.range_end) DESC
    LIMIT 1;
    IF FOUND AND clash.s = range_start AND clash.e = range_end THEN
        RETURN format('%I.%I', clash.schema_name, clash.partition_name);
    END IF;
    IF FOUND THEN
        RAISE EXCEPTION 'partition range overlaps existing partition %', clash.partition_name USING ERRCODE = '22023',
            DETAIL = format('Asked for %s to %s; %s covers %s to %s.', range_start, range_end,
                            clash.partition_name, clash.s, clash.e),
            HINT = 'Choose a period that no partition covers yet.';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION timepart.create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
/* Creates one partition with its templated indexes. Already there: a notice and its
   name. Misaligned, reversed or overlapping bounds: an error, nothing changed. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    part_name name;
    existing text;
    result jsonb;
BEGIN
    existing := timepart._check_range(cfg, range_start, range_end);
    IF existing IS NOT NULL THEN
        RAISE NOTICE 'partition % already exists', existing;
        RETURN existing;
    END IF;
    part_name := timepart._partition_name(parent, range_start, cfg.partition_interval, cfg.time_zone);
    PERFORM timepart._check_name_free(parent, part_name);
    PERFORM pg_catalog.pg_advisory_xact_lock(timepart._lock_key(parent));
    result := timepart._attempt(cfg, 'build', part_name, range_start, range_end);
    IF NOT (result->>'ok')::boolean THEN
        PERFORM timepart._log('create_partition', parent, part_name, false, result, result->>'error', started);
        RAISE EXCEPTION 'could not create partition %: %', part_name, result->>'error'
            USING ERRCODE = coalesce(result->>'sqlstate', 'P0001'),
                  DETAIL = format('Range %s to %s, %s attempt(s).', range_start, range_end, result->>'attempts'),
                  HINT = 'A lock wait gives up after the table''s lock_timeout; run it again when traffic allows.';
    END IF;
    PERFORM timepart._log('create_partition', parent, part_name, true,
        result || jsonb_build_object('range_start', range_start, 'range_end', range_end), NULL, started);
    RETURN format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
                            ON n.oid = c.relnamespace WHERE c.oid = parent), part_name);
END $$;
COMMENT ON FUNCTION timepart.create_partition(regclass, timestamptz, timestamptz) IS
    'Creates one partition (one period) with its templated indexes; a notice if it already exists';

-- A table of that name that is not the partition we want is in the way.
CREATE OR REPLACE FUNCTION timepart._check_name_free(parent regclass, part_name name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found_rel regclass;
BEGIN
    SELECT c.oid INTO found_rel FROM pg_catalog.pg_class c, pg_catalog.pg_class p
    WHERE p.oid = parent AND c.relnamespace = p.relnamespace AND c.relname = part_name;
    IF found_rel IS NOT NULL THEN
        RAISE EXCEPTION 'relation % already exists and is not the partition wanted', found_rel USING ERRCODE = '42P07',
            DETAIL = format('timepart would name the new partition of %s "%s".', parent, part_name),
            HINT = 'Rename or drop that relation, or attach it yourself if it holds this period''s rows.';
    END IF;
END $$;

-- One advisory lock key per managed table, shared by every operation on it.
CREATE OR REPLACE FUNCTION timepart._lock_key(parent regclass) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
    SELECT (pg_catalog.hashtext('timepart')::bigint << 32) | parent::oid::bigint
$$;

-- ==== src/65_retention.sql
-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention, and never
-- later than the start of the current period, whatever the retention says.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT least(((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - keep) AT TIME ZONE cfg.time_zone,
                 timepart._period_of(cfg, as_of))
$$;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, keep interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE AS $$
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, keep, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
    ORDER BY p.range_start
$$;

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

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    dropped jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    tables jsonb := '[]'::jsonb;
BEGIN
    IF retention IS NOT NULL AND (retention <= interval '0' OR timepart._mixed_signs(retention)) THEN
        RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', retention), HINT = 'Use e.g. ''12 months'', or NULL for each table''s configured retention.';
    END IF;
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    IF cleanup.parent IS NOT NULL THEN
        PERFORM timepart._config(cleanup.parent);
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; cleanup runs on the primary';
        RETURN jsonb_build_object('success', true, 'created_partitions', '[]'::jsonb, 'dropped_partitions', dropped,
                                  'errors', errors, 'execution_time_ms', 0, 'dry_run', dry_run, 'tables', tables);
    END IF;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE cleanup.parent IS NULL OR c.parent = cleanup.parent ORDER BY c.parent::text LOOP
        IF coalesce(cleanup.retention, cfg.retention) IS NULL THEN
            tables := tables || jsonb_build_object('table', cfg.parent::text, 'skipped', 'no retention configured');
            CONTINUE;
        END IF;
        res := timepart._cleanup_table(cfg, coalesce(cleanup.retention, cfg.retention), dry_run, as_of);
        dropped := dropped || coalesce(res->'removed', '[]'::jsonb);
        errors := errors || coalesce(res->'errors', '[]'::jsonb);
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', '[]'::jsonb,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'dry_run', dry_run, 'tables', tables);
END $$;
COMMENT ON FUNCTION timepart.cleanup(regclass, interval, boolean, timestamptz) IS
    'Drops, detaches or archives partitions wholly past the retention boundary; dry_run reports without changing anything';

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

-- Creates the default partition of a table configured for one when it has none.
CREATE OR REPLACE FUNCTION timepart._ensure_default(cfg timepart.config) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    part_name name;
BEGIN
    IF NOT cfg.default_partition
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table WHERE partrelid = cfg.parent AND partdefid <> 0) THEN
        RETURN NULL;
    END IF;
    part_name := timepart._fit_name((SELECT relname FROM pg_catalog.pg_class WHERE oid = cfg.parent), 'default');
    PERFORM timepart._check_name_free(cfg.parent, part_name);
    RETURN timepart._attempt(cfg, 'build', part_name, NULL, NULL) || jsonb_build_object('partition', part_name);
END $$;

-- One table's maintenance. Never raises: failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, ahead integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    plan record;
    part_name name;
    res jsonb;
    created text[] := '{}'::text[];
    errors text[] := '{}'::text[];
    moved bigint := 0;
    err text;
BEGIN
    IF NOT pg_catalog.pg_try_advisory_xact_lock(timepart._lock_key(cfg.parent)) THEN
        RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
        PERFORM timepart._log('maintain', cfg.parent, NULL, true, '{"skipped": "another run holds the table"}', NULL, started);
        RETURN jsonb_build_object('created', '[]'::jsonb, 'errors', '[]'::jsonb, 'skipped', true);
    END IF;
    BEGIN
        BEGIN
            res := timepart._ensure_default(cfg);
        EXCEPTION WHEN OTHERS THEN
            -- A default partition that cannot be made must not stop the periods below.
            res := jsonb_build_object('ok', false, 'partition', cfg.parent::text || ' default', 'error', SQLERRM);
        END;
        IF res IS NOT NULL THEN
            PERFORM timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
                                  res, res->>'error', started);
            IF (res->>'ok')::boolean THEN created := created || (res->>'partition');
            ELSE errors := errors || format('%s: %s', res->>'partition', res->>'error'); END IF;
        END IF;
        FOR plan IN SELECT * FROM timepart._plan_partitions(cfg.parent, ahead, as_of) LOOP
            step_started := pg_catalog.clock_timestamp();
            part_name := timepart._partition_name(cfg.parent, plan.range_start, cfg.partition_interval, cfg.time_zone);
            BEGIN
                PERFORM timepart._check_name_free(cfg.parent, part_name);
                res := timepart._attempt(cfg, 'build', part_name, plan.range_start, plan.range_end);
            EXCEPTION WHEN OTHERS THEN
                res := jsonb_build_object('ok', false, 'error', SQLERRM, 'sqlstate', SQLSTATE);
            END;
            res := res || jsonb_build_object('range_start', plan.range_start, 'range_end', plan.range_end, 'reason', plan.reason);
            PERFORM timepart._log('create_partition', cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
            IF (res->>'ok')::boolean THEN
                created := created || part_name::text;
                moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
            ELSE
                errors := errors || format('%s: %s', part_name, res->>'error');
                -- Traffic holds the table: back off for the whole run, not per partition.
                IF res->>'sqlstate' = '55P03' THEN
                    errors := errors || format('%s: the other missing periods are left for the next run', cfg.parent);
                    EXIT;
                END IF;
            END IF;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || err;
    END;
    PERFORM timepart._log('maintain', cfg.parent, NULL, cardinality(errors) = 0,
        jsonb_build_object('created', to_jsonb(created), 'errors', to_jsonb(errors), 'moved_rows', moved,
                           'premake', ahead, 'as_of', as_of), NULLIF(array_to_string(errors, '; '), ''), started);
    RETURN jsonb_build_object('created', to_jsonb(created), 'errors', to_jsonb(errors), 'moved_rows', moved, 'skipped', false);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    skipped jsonb := '[]'::jsonb;
BEGIN
    IF premake IS NOT NULL AND (premake < 1 OR premake > 1000) THEN
        RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', premake), HINT = 'Pass how many future periods to keep ready, e.g. 6.';
    END IF;
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) THEN
        RAISE EXCEPTION 'as_of must be a finite moment' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(as_of::text, 'NULL')), HINT = 'Leave it out to use now().';
    END IF;
    IF maintain.parent IS NOT NULL THEN
        PERFORM timepart._config(maintain.parent);
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; maintenance runs on the primary';
        RETURN jsonb_build_object('success', true, 'created_partitions', created, 'dropped_partitions', '[]'::jsonb,
                                  'errors', errors, 'execution_time_ms', 0, 'skipped', jsonb_build_array('replica'));
    END IF;
    FOR cfg IN SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
               WHERE maintain.parent IS NULL OR c.parent = maintain.parent ORDER BY c.parent::text LOOP
        res := timepart._maintain_table(cfg, coalesce(maintain.premake, cfg.premake), as_of);
        created := created || (res->'created');
        errors := errors || (res->'errors');
        moved := moved + (res->>'moved_rows')::bigint;
        IF (res->>'skipped')::boolean THEN skipped := skipped || to_jsonb(cfg.parent::text); END IF;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', created,
        'dropped_partitions', '[]'::jsonb, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'moved_rows', moved, 'skipped', skipped);
END $$;
COMMENT ON FUNCTION timepart.maintain(regclass, integer, timestamptz) IS
    'Creates current and future partitions, fills gaps, empties the default partition; returns the seed''s /maintain shape';

-- ==== src/75_stats.sql
-- Statistics: per-partition figures that are fast on big tables. Sealed (past)
-- partitions use the exact figures of the daily snapshot while their change
-- counters have not moved; live ones use catalog estimates. Nothing counts rows
-- or takes a lock on a sealed partition when stats are read.

CREATE TABLE timepart.stats_history (
    snapshot_date   date NOT NULL,
    parent_table    regclass NOT NULL,
    partition_oid   oid NOT NULL,
    partition_name  name NOT NULL,
    range_start     timestamptz,
    range_end       timestamptz,
    record_count    bigint NOT NULL,
    size_bytes      bigint NOT NULL,
    oldest_record   timestamptz,
    newest_record   timestamptz,
    changes_seen    bigint NOT NULL,
    taken_at        timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (snapshot_date, partition_oid)
);
CREATE INDEX stats_history_partition_idx ON timepart.stats_history (partition_oid, snapshot_date DESC);
COMMENT ON TABLE timepart.stats_history IS 'Daily exact per-partition figures (snapshot_stats), the history behind growth rates';
COMMENT ON COLUMN timepart.stats_history.changes_seen IS 'Rows inserted+updated+deleted in the partition when counted; a change means the count is stale';
SELECT timepart._config_dump('timepart.stats_history');

-- Rows inserted, updated and deleted in a table since statistics began, this
-- transaction's own changes included. Any change makes a stored count stale.
CREATE OR REPLACE FUNCTION timepart._changes(rel oid) RETURNS bigint
LANGUAGE sql VOLATILE AS $$
    SELECT pg_catalog.pg_stat_get_tuples_inserted(rel) + pg_catalog.pg_stat_get_tuples_updated(rel)
         + pg_catalog.pg_stat_get_tuples_deleted(rel) + pg_catalog.pg_stat_get_xact_tuples_inserted(rel)
         + pg_catalog.pg_stat_get_xact_tuples_updated(rel) + pg_catalog.pg_stat_get_xact_tuples_deleted(rel)
$$;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last VACUUM/ANALYZE.
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid) RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT (c.relpages::bigint + coalesce(t.relpages, 0)
            + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i
                        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid = rel), 0)::bigint)
           * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel
$$;

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

-- Live partitions up to this size are counted exactly on every read (a few ms at most).
CREATE OR REPLACE FUNCTION timepart._exact_limit_bytes() RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT 10485760::bigint $$;

-- The shape of one partition_stats row, for passing rows around as JSON.
CREATE TYPE timepart.partition_stats_row AS (parent_table text, partition_name text, period text, range_start timestamptz,
    range_end timestamptz, record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
    index_count integer, is_default boolean, exact boolean);

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
COMMENT ON FUNCTION timepart.partition_stats(regclass) IS
    'Per-partition rows, size, oldest and newest record: exact for sealed partitions from the snapshot, estimates for live ones';

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
COMMENT ON FUNCTION timepart.snapshot_stats(timestamptz) IS 'Stores today''s exact per-partition figures; unchanged partitions are not recounted';

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

-- ==== src/77_alerts.sql
-- Alerts: rules evaluated over a table's partitions (pure, no side effects), and
-- check_alerts, which keeps each alert's lifecycle and announces new ones.

CREATE TABLE timepart.alerts (
    id              bigserial PRIMARY KEY,
    alert_type      text NOT NULL,
    severity        text NOT NULL CONSTRAINT alerts_severity_known CHECK (severity IN ('info', 'warning', 'critical')),
    parent_table    text NOT NULL,
    partition_name  text NOT NULL DEFAULT '',
    message         text NOT NULL,
    recommendation  text,
    value           numeric,
    threshold       numeric,
    first_seen      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    last_seen       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    resolved_at     timestamptz
);
CREATE UNIQUE INDEX alerts_one_open_idx ON timepart.alerts (alert_type, parent_table, partition_name) WHERE resolved_at IS NULL;
COMMENT ON TABLE timepart.alerts IS 'Every alert with its lifecycle: first seen, last seen, resolved';

CREATE OR REPLACE VIEW timepart.open_alerts AS
    SELECT a.alert_type, a.severity, a.parent_table, NULLIF(a.partition_name, '') AS partition_name, a.message,
           a.recommendation, a.value, a.threshold, a.first_seen, a.last_seen
    FROM timepart.alerts a WHERE a.resolved_at IS NULL
    ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, a.first_seen;
COMMENT ON VIEW timepart.open_alerts IS 'Alerts not resolved yet, most severe first';

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

-- Partitions lacking a templated index (not attached to the template's parent index).
CREATE OR REPLACE FUNCTION timepart._missing_indexes(tbl regclass)
RETURNS TABLE (partition_name text, missing text, n numeric) LANGUAGE sql STABLE AS $$
    -- In sets: every (partition, template) pair against every attached partition index.
    WITH t AS MATERIALIZED (
        SELECT it.suffix, timepart._template_parent_index(tbl, it.suffix) AS parent_idx
        FROM timepart.index_templates it WHERE it.parent = tbl
    ), attached AS MATERIALIZED (
        SELECT i.indrelid AS partition_oid, h.inhparent AS parent_idx
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indexrelid = h.inhrelid
        WHERE h.inhparent IN (SELECT t.parent_idx FROM t)
    ), parts AS MATERIALIZED (
        SELECT i.inhrelid AS partition_oid, c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname
$$;

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
COMMENT ON FUNCTION timepart.check_alerts(regclass, timestamptz) IS
    'Evaluates the alert rules, keeps each alert''s lifecycle, announces new ones on channel timepart_alerts; returns open alerts';

-- ==== src/78_health.sql
-- Health and summary: the seed's /health and /summary documents, computed from the
-- alert rules and statistics without side effects.

CREATE OR REPLACE FUNCTION timepart.health(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /health shape: status healthy | warning | critical | error, issues,
   recommendations, partition_count, total_size_mb, oldest_partition,
   newest_partition. Info alerts are recommendations, not issues. It never raises:
   if evaluation fails, status is error with the reason. */
DECLARE
    tables regclass[];
    per_table jsonb;
    alerts jsonb;
    stats record;
    err text;
BEGIN
    IF health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', health.parent;
    END IF;
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE health.parent IS NULL OR c.parent = health.parent;

    -- Each table's stats once: the rules and the totals below share them.
    SELECT coalesce(jsonb_object_agg(t::text, (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb) FROM timepart.partition_stats(t) s)),
                    '{}'::jsonb)
    INTO per_table FROM unnest(coalesce(tables, '{}')) t;

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of, per_table->(t::text)) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j WHERE health.parent IS NULL) e;

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM jsonb_each(per_table) t, jsonb_populate_recordset(NULL::timepart.partition_stats_row, t.value) s;

    RETURN jsonb_build_object(
        'status', CASE WHEN alerts @> '[{"severity": "critical"}]' THEN 'critical'
                       WHEN alerts @> '[{"severity": "warning"}]' THEN 'warning' ELSE 'healthy' END,
        'issues', (SELECT coalesce(jsonb_agg(a->>'message'), '[]') FROM jsonb_array_elements(alerts) a WHERE a->>'severity' <> 'info'),
        'recommendations', (SELECT coalesce(jsonb_agg(DISTINCT a->>'recommendation'), '[]') FROM jsonb_array_elements(alerts) a),
        'partition_count', stats.n, 'total_size_mb', stats.mb,
        'oldest_partition', stats.oldest, 'newest_partition', stats.newest,
        'tables', (SELECT coalesce(jsonb_agg(t::text), '[]') FROM unnest(coalesce(tables, '{}')) t),
        'alerts', alerts, 'checked_at', pg_catalog.clock_timestamp());
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN jsonb_build_object('status', 'error', 'issues', jsonb_build_array('health evaluation failed: ' || err),
        'recommendations', jsonb_build_array('Check the table and timepart''s installation; see the server log'),
        'partition_count', NULL, 'total_size_mb', NULL, 'oldest_partition', NULL, 'newest_partition', NULL,
        'checked_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.health(regclass, timestamptz) IS
    'The seed''s /health document: healthy, warning, critical or error, with issues and recommendations; never raises';

CREATE OR REPLACE FUNCTION timepart.summary(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /summary: health, per-partition stats, configuration, scheduled jobs with
   their latest runs, recent log and open alerts. */
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    RETURN jsonb_build_object(
        'health', timepart.health(summary.parent, as_of),
        'stats', (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]') FROM timepart.partition_stats(summary.parent) s),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', timepart._jobs_summary(),
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;
COMMENT ON FUNCTION timepart.summary(regclass, timestamptz) IS 'The seed''s /summary document: health, stats, configuration, jobs, recent log, open alerts';

-- ==== src/80_email_events.sql
-- The flagship preset: the seed's email_events table, managed monthly with its
-- five indexes, 6 periods ahead and 12 months of retention.

CREATE OR REPLACE FUNCTION timepart.create_email_events_table(schema name DEFAULT 'public', as_of timestamptz DEFAULT now())
RETURNS regclass LANGUAGE plpgsql AS $$
/* Creates the seed's email_event_type enum and email_events table in a schema
   (the foreign key to campaign_leads only where that table exists), registers the
   seed's five index templates and creates the partitions it needs now. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    tbl regclass;
    has_leads boolean;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000',
            DETAIL = 'email_events is created in an existing schema.', HINT = 'Create the schema first, or use public.';
    END IF;
    tbl := pg_catalog.to_regclass(format('%I.email_events', schema));
    IF tbl IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
            RAISE NOTICE 'table % already exists and is managed', tbl;
            RETURN tbl;
        END IF;
        RAISE EXCEPTION 'table % already exists', tbl USING ERRCODE = '42P07',
            DETAIL = 'It is not managed by timepart.',
            HINT = format('Manage it with SELECT timepart.manage(%L) if it is partitioned by month on created_at.', tbl::text);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = schema AND t.typname = 'email_event_type') THEN
        EXECUTE format($f$CREATE TYPE %I.email_event_type AS ENUM ('sent', 'delivery', 'open', 'click', 'reply',
                          'bounce', 'complaint', 'unsubscribe', 'webhook')$f$, schema);
    END IF;
    has_leads := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = pg_catalog.to_regclass(format('%I.campaign_leads', schema))
                           AND a.attname = 'id' AND NOT a.attisdropped);
    EXECUTE format($f$
        CREATE TABLE %1$I.email_events (
            id uuid DEFAULT gen_random_uuid(),
            workspace_id uuid NOT NULL,
            campaign_id uuid NOT NULL,
            lead_id uuid NOT NULL,
            campaign_lead_id uuid %2$s,
            event_type %1$I.email_event_type NOT NULL,
            email_id text,
            external_id text,
            metadata jsonb DEFAULT '{}',
            created_at timestamptz DEFAULT now(),
            PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at)$f$, schema,
        CASE WHEN has_leads THEN format('REFERENCES %I.campaign_leads(id) ON DELETE CASCADE', schema) ELSE '' END);
    tbl := format('%I.email_events', schema)::regclass;
    PERFORM timepart._register(tbl, '1 month', 6, '12 months', true, '100 milliseconds', 'UTC');
    PERFORM timepart._log('manage', tbl, NULL, true, '{"preset": "email_events"}', NULL, started);
    PERFORM timepart.add_index_template(tbl, 'workspace_created_idx', 'workspace_id, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'campaign_event_idx', 'campaign_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'lead_event_idx', 'lead_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'event_type_idx', 'event_type, created_at DESC',
                                        $w$event_type IN ('open', 'click', 'delivery', 'bounce')$w$);
    PERFORM timepart.add_index_template(tbl, 'external_id_idx', 'external_id', 'external_id IS NOT NULL');
    PERFORM timepart.maintain(tbl, NULL, as_of);
    RETURN tbl;
END $$;
COMMENT ON FUNCTION timepart.create_email_events_table(name, timestamptz) IS
    'Creates the seed''s email_events table, managed monthly with its five indexes, 6 ahead, 12 months retention';

-- The email_events table the seed's functions act on: the managed one the
-- search_path finds, else the only managed table of that name.
CREATE OR REPLACE FUNCTION timepart._email_events() RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tbl regclass := pg_catalog.to_regclass('email_events');
BEGIN
    IF tbl IS NULL OR NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
        IF (SELECT count(*) FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
            WHERE r.relname = 'email_events') > 1 THEN
            RAISE EXCEPTION 'more than one managed email_events table' USING ERRCODE = '42P09',
                DETAIL = (SELECT string_agg(c.parent::text, ', ') FROM timepart.config c JOIN pg_catalog.pg_class r
                          ON r.oid = c.parent WHERE r.relname = 'email_events'),
                HINT = 'Name the table: e.g. SELECT timepart.cleanup(''tenant_a.email_events'', ''12 months'').';
        END IF;
        SELECT c.parent INTO tbl FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
        WHERE r.relname = 'email_events';
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no managed email_events table' USING ERRCODE = '42P01',
            DETAIL = 'The seed''s functions act on the table email_events managed by timepart.',
            HINT = 'Create it with SELECT timepart.create_email_events_table();';
    END IF;
    RETURN tbl;
END $$;

-- ==== src/85_schedule.sql
-- Scheduling with pg_cron: the seed's four jobs plus a fifth that keeps
-- cron.job_run_details small, named timepart-<job>@<database>. pg_cron lives in one
-- database (cron.database_name): reached directly when that is this one, through
-- dblink otherwise.

CREATE TABLE timepart.jobs (
    job             text PRIMARY KEY CONSTRAINT jobs_job_known CHECK (job IN ('maintain', 'cleanup', 'health', 'stats', 'cron-history')),
    jobname         text NOT NULL,
    schedule        text NOT NULL,
    command         text NOT NULL,
    run_in          name NOT NULL,
    expected_every  interval NOT NULL,
    scheduled_at    timestamptz NOT NULL DEFAULT now(),
    scheduled_by    name NOT NULL DEFAULT current_user
);
COMMENT ON COLUMN timepart.jobs.scheduled_by IS 'The role that scheduled the job, which pg_cron runs it as';
COMMENT ON TABLE timepart.jobs IS 'The pg_cron jobs schedule_jobs() set up, and how often each should run (for the job alerts)';
SELECT timepart._config_dump('timepart.jobs');

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

-- How pg_cron is reached: 'local' (its schema is here), 'dblink', or a refusal that
-- says exactly what to do. preload is shared_preload_libraries (a parameter for tests).
CREATE OR REPLACE FUNCTION timepart._cron_route(preload text DEFAULT pg_catalog.current_setting('shared_preload_libraries'))
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF preload IS NULL OR preload !~ '(^|[\s,])pg_cron($|[\s,])' THEN
        RAISE EXCEPTION 'pg_cron is not loaded by this server' USING ERRCODE = '55000',
            DETAIL = format('shared_preload_libraries is ''%s''.', coalesce(preload, '')),
            HINT = format('Add to postgresql.conf: shared_preload_libraries = ''pg_cron'' and cron.database_name = ''%s'', '
                          'restart PostgreSQL, then run CREATE EXTENSION pg_cron in that database.', current_database());
    END IF;
    IF cron_db IS NULL OR cron_db = current_database() THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
            RAISE EXCEPTION 'pg_cron is loaded but its extension is not created in database %', current_database()
                USING ERRCODE = '55000', DETAIL = 'cron.database_name is this database.',
                      HINT = 'Run CREATE EXTENSION pg_cron; here, then schedule again.';
        END IF;
        RETURN 'local';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink') THEN
        RAISE EXCEPTION 'pg_cron lives in database %, not in %', cron_db, current_database() USING ERRCODE = '55000',
            DETAIL = 'timepart reaches another database''s pg_cron through dblink, which is not installed here.',
            HINT = format('Run CREATE EXTENSION dblink; here, or schedule from database %s with '
                          'SELECT cron.schedule_in_database(''timepart-maintain@%s'', ''17 3 * * 0'', ''SELECT timepart.maintain()'', %L);',
                          cron_db, current_database(), current_database());
    END IF;
    RETURN 'dblink';
END $$;

-- A connection string to the pg_cron database on this server, as the current user.
CREATE OR REPLACE FUNCTION timepart._cron_conninfo() RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('dbname=%s host=%s port=%s user=%s', pg_catalog.quote_ident(pg_catalog.current_setting('cron.database_name')),
                  split_part(pg_catalog.current_setting('unix_socket_directories'), ',', 1),
                  pg_catalog.current_setting('port'), pg_catalog.quote_ident(current_user))
$$;

-- Runs statements where pg_cron lives, in one transaction there.
CREATE OR REPLACE FUNCTION timepart._cron_exec(statements text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    dblink_schema name;
BEGIN
    IF timepart._cron_route() = 'local' THEN
        EXECUTE statements;
        RETURN;
    END IF;
    SELECT n.nspname INTO dblink_schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    EXECUTE format('SELECT %I.dblink_exec(%L, %L)', dblink_schema, timepart._cron_conninfo(), statements);
EXCEPTION WHEN insufficient_privilege THEN
    RAISE EXCEPTION 'not allowed to schedule pg_cron jobs: %', SQLERRM USING ERRCODE = '42501',
        DETAIL = 'cron.schedule_in_database is revoked from PUBLIC by pg_cron.',
        HINT = format('As a superuser in database %s: GRANT USAGE ON SCHEMA cron TO %I; '
                      'GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text,text,text,text,text,boolean) TO %I;',
                      pg_catalog.current_setting('cron.database_name', true), current_user, current_user);
END $$;

-- timepart's jobs as pg_cron knows them, with each one's latest run.
CREATE OR REPLACE FUNCTION timepart._cron_jobs()
RETURNS TABLE (jobname text, schedule text, command text, run_in text, active boolean,
               last_status text, last_start timestamptz, last_end timestamptz, last_message text, last_success timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    q text := format($q$
        SELECT j.jobname::text, j.schedule, j.command, j.database, j.active, r.status, r.start_time, r.end_time,
               r.return_message, s.end_time
        FROM cron.job j
        LEFT JOIN LATERAL (SELECT * FROM cron.job_run_details d WHERE d.jobid = j.jobid ORDER BY d.runid DESC LIMIT 1) r ON true
        LEFT JOIN LATERAL (SELECT max(d.end_time) AS end_time FROM cron.job_run_details d
                           WHERE d.jobid = j.jobid AND d.status = 'succeeded') s ON true
        WHERE j.jobname LIKE 'timepart-%%@' || %L$q$, current_database());
    dblink_schema name;
BEGIN
    IF timepart._cron_route() = 'local' THEN
        RETURN QUERY EXECUTE q;
        RETURN;
    END IF;
    SELECT n.nspname INTO dblink_schema FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'dblink';
    RETURN QUERY EXECUTE format('SELECT * FROM %I.dblink(%L, %L) AS t(jobname text, schedule text, command text, '
        'run_in text, active boolean, last_status text, last_start timestamptz, last_end timestamptz, last_message text, '
        'last_success timestamptz)', dblink_schema, timepart._cron_conninfo(), q);
END $$;

-- How long may pass between two runs of a cron schedule before it is overdue.
CREATE OR REPLACE FUNCTION timepart._expected_every(schedule text) RETURNS interval
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN f[3] <> '*' THEN interval '32 days' WHEN f[5] <> '*' THEN interval '8 days'
                WHEN f[2] = '*' OR f[2] LIKE '*/%' THEN interval '2 hours' ELSE interval '2 days' END
    FROM (SELECT pg_catalog.regexp_split_to_array(pg_catalog.btrim(schedule), '\s+') AS f) s
$$;

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
COMMENT ON FUNCTION timepart.schedule_jobs(text, text, text, text, text, interval) IS
    'Schedules maintain, cleanup, health, stats and cron-history jobs in pg_cron (timepart-<job>@<database>); idempotent';

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
COMMENT ON FUNCTION timepart.unschedule_jobs() IS 'Removes this database''s timepart jobs from pg_cron';

-- Alerts about the scheduled jobs: missing, last run failed, or overdue. Only for jobs
-- schedule_jobs() set up; if pg_cron cannot be reached, that is the alert.
CREATE OR REPLACE FUNCTION timepart._evaluate_jobs(as_of timestamptz)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    err text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH c AS MATERIALIZED (SELECT * FROM timepart._cron_jobs())
    SELECT 'job_missing', 'warning', '(scheduler)', j.jobname, format('scheduled job %s is missing from pg_cron', j.jobname),
           'Run SELECT * FROM timepart.schedule_jobs(); again', NULL::numeric, NULL::numeric
    FROM timepart.jobs j WHERE NOT EXISTS (SELECT 1 FROM c WHERE c.jobname = j.jobname)
    UNION ALL
    SELECT 'job_failed', 'warning', '(scheduler)', c.jobname,
           format('last run of %s at %s failed: %s', c.jobname, c.last_start, coalesce(c.last_message, 'no message')),
           'Read cron.job_run_details and timepart.maintenance_log for the cause, fix it, and run the job''s command by hand',
           NULL, NULL
    FROM c WHERE c.last_status = 'failed'
    UNION ALL
    SELECT 'job_overdue', 'warning', '(scheduler)', j.jobname,
           format('%s has not succeeded since %s (expected every %s)', j.jobname,
                  coalesce(c.last_success::text, 'it was scheduled'), j.expected_every),
           'Check that pg_cron runs (cron.job active, the launcher in pg_stat_activity) and the job''s last runs',
           round(extract(epoch FROM as_of - coalesce(c.last_success, j.scheduled_at)) / 3600, 1),
           round(extract(epoch FROM j.expected_every) / 3600, 1)
    FROM timepart.jobs j JOIN c ON c.jobname = j.jobname
    WHERE coalesce(c.last_success, j.scheduled_at) < as_of - j.expected_every AND c.last_status IS DISTINCT FROM 'failed';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN QUERY SELECT 'jobs_unreachable', 'warning', '(scheduler)', '', format('pg_cron cannot be reached: %s', err),
        'Check pg_cron (shared_preload_libraries, cron.database_name) and dblink', NULL::numeric, NULL::numeric;
END $$;

-- The scheduled jobs for summary(): what schedule_jobs() set up, with pg_cron's view
-- of each (active, latest run). Never raises: an unreachable pg_cron is reported.
CREATE OR REPLACE FUNCTION timepart._jobs_summary() RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM timepart.jobs) THEN
        RETURN '[]'::jsonb;
    END IF;
    RETURN (SELECT jsonb_agg(jsonb_build_object('job', j.job, 'jobname', j.jobname, 'schedule', j.schedule,
                'command', j.command, 'database', j.run_in, 'expected_every', j.expected_every, 'in_pg_cron', c.jobname IS NOT NULL,
                'active', c.active, 'last_status', c.last_status, 'last_start', c.last_start, 'last_end', c.last_end,
                'last_success', c.last_success, 'last_message', c.last_message) ORDER BY j.job)
            FROM timepart.jobs j LEFT JOIN timepart._cron_jobs() c ON c.jobname = j.jobname);
EXCEPTION WHEN OTHERS THEN
    RETURN jsonb_build_array(jsonb_build_object('error', 'pg_cron cannot be reached: ' || SQLERRM));
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
COMMENT ON PROCEDURE timepart.maintain_each(integer) IS 'maintain() every managed table, committing after each (the maintain job)';

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
COMMENT ON PROCEDURE timepart.cleanup_each() IS 'cleanup() every managed table, committing after each (the cleanup job)';

-- ==== src/88_migrate.sql
-- Migration: turn an existing unpartitioned table into a managed partitioned one
-- while it stays in use. migrate_plan is the dry run; CALL timepart.migrate runs it.
--
-- How it works (and why):
-- * Staging. The partitioned copy is built under the table's own name in a schema of
--   its own (timepart_migrate_<oid>), so its partitions and indexes get their final
--   names (email_events_2024_03, ..._created_at_idx) and the swap only moves them.
-- * Capture, not forwarding. Statement triggers with transition tables on the source
--   record the *key* of every row inserted, updated or deleted into a changes table.
--   A forwarding trigger would race with the batch copy (an update forwarded before
--   the batch that copies the old version commits is lost); a key log does not: a
--   logged key is later re-synchronised as a whole (delete its rows from the copy,
--   insert the source's current rows), which is right whatever was copied before.
--   The key is the primary key, or the whole row (as text) when there is none.
-- * Batches. Rows are copied by ctid ranges of whole blocks, each batch in its own
--   transaction that also advances timepart.migrations.next_block, so an interrupted
--   run (terminated backend, crash) resumes at the first block not committed: no row
--   twice, none lost. Rows unchanged since the trigger was installed sit at a fixed
--   ctid below last_block and are copied exactly once; every other row is in the log.
--   A table rewrite (VACUUM FULL, CLUSTER) changes the filenode and restarts the copy.
-- * Catch-up. After the copy, the log is applied in rounds without blocking anyone;
--   each round deletes the log rows it applies, so a change committed late is simply
--   applied by a later round.
-- * Swap. One short transaction: EXCLUSIVE lock on the source (reads go on, writes
--   wait), the last changes, row count and checksum of both sides compared (a
--   mismatch aborts the swap and says so), then ACCESS EXCLUSIVE for the renames:
--   the source becomes <name>_unpartitioned_old (its indexes get an _old suffix) and
--   the copy moves into the source's schema. Every lock wait is bounded by the
--   table's lock_timeout and retried. The old table stays until you drop it.

CREATE TABLE timepart.migrations (
    id                  bigserial PRIMARY KEY,
    source              regclass NOT NULL,
    source_name         text NOT NULL,
    target              regclass NOT NULL,
    stage_schema        name NOT NULL,
    key_column          name NOT NULL,
    partition_interval  interval NOT NULL,
    time_zone           text NOT NULL,
    retention           interval,
    row_key             name[],
    state               text NOT NULL DEFAULT 'copying',
    source_filenode     oid NOT NULL,
    next_block          bigint NOT NULL DEFAULT 0,
    last_block          bigint NOT NULL,
    blocks_per_batch    integer NOT NULL DEFAULT 1,
    rows_estimated      bigint NOT NULL DEFAULT 0,
    rows_copied         bigint NOT NULL DEFAULT 0,
    changes_applied     bigint NOT NULL DEFAULT 0,
    source_rows         bigint,
    source_checksum     numeric,
    target_rows         bigint,
    target_checksum     numeric,
    started_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    finished_at         timestamptz,
    CONSTRAINT migrations_state_known CHECK (state IN ('copying', 'catching_up', 'done', 'aborted')),
    CONSTRAINT migrations_blocks_in_range CHECK (next_block >= 0 AND next_block <= last_block AND blocks_per_batch > 0)
);
CREATE UNIQUE INDEX migrations_one_running ON timepart.migrations (source) WHERE state IN ('copying', 'catching_up');
COMMENT ON TABLE timepart.migrations IS 'Progress of timepart.migrate runs, committed with every batch so a run can resume';
COMMENT ON COLUMN timepart.migrations.next_block IS 'First block of the source not copied yet; committed with the batch that copied the blocks before it';
COMMENT ON COLUMN timepart.migrations.row_key IS 'Columns that identify a row in the change log (the primary key); NULL: the whole row';

-- Rows per second assumed by migrate_plan's time estimate (measured by bench/migrate.py).
CREATE OR REPLACE FUNCTION timepart._migrate_rate() RETURNS numeric
LANGUAGE sql IMMUTABLE AS $$ SELECT 40000::numeric $$;

-- The key column as a timestamptz expression (timestamp and date keys are local time in tz).
CREATE OR REPLACE FUNCTION timepart._migrate_key_expr(key_column name, key_type regtype, tz text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE key_type WHEN 'timestamptz'::regtype THEN pg_catalog.format('%I', key_column)
                         WHEN 'timestamp'::regtype THEN pg_catalog.format('(%I AT TIME ZONE %L)', key_column, tz)
                         ELSE pg_catalog.format('(%I::pg_catalog.timestamp AT TIME ZONE %L)', key_column, tz) END
$$;

-- The refusals that need no scan of the rows. Returns the key's type.
CREATE OR REPLACE FUNCTION timepart._migrate_check(source regclass, key_column name, step interval, tz text)
RETURNS regtype LANGUAGE plpgsql STABLE AS $$
DECLARE
    rel record;
    key_type regtype;
    refs text;
    bad text;
BEGIN
    IF source IS NULL OR key_column IS NULL THEN
        RAISE EXCEPTION 'source table and key column must not be NULL' USING ERRCODE = '22004',
            DETAIL = format('Got %s and %s.', coalesce(source::text, 'NULL'), coalesce(key_column::text, 'NULL')),
            HINT = 'Pass the table and its time column, e.g. CALL timepart.migrate(''public.email_events'', ''created_at'').';
    END IF;
    SELECT c.relkind, c.relispartition, c.relhassubclass, c.relname, c.relnamespace,
           EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid) AS inherits
    INTO rel FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF rel.relkind = 'p' THEN
        RAISE EXCEPTION 'table % is already partitioned', source USING ERRCODE = '22023',
            DETAIL = format('Partition key: %s.', pg_catalog.pg_get_partkeydef(source)),
            HINT = format('Manage it as it is with SELECT timepart.manage(%L).', source::text);
    END IF;
    IF rel.relkind IS DISTINCT FROM 'r' OR rel.relispartition OR rel.relhassubclass OR rel.inherits THEN
        RAISE EXCEPTION '% is not a plain table', source USING ERRCODE = '22023',
            DETAIL = format('relkind %s, partition %s, inheritance parent %s, inheritance child %s.',
                            rel.relkind, rel.relispartition, rel.relhassubclass, rel.inherits),
            HINT = 'timepart.migrate converts an ordinary table that neither inherits nor is inherited.';
    END IF;
    SELECT a.atttypid::regtype INTO key_type FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = source AND a.attname = key_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', key_column, source USING ERRCODE = '42703',
            DETAIL = format('Time columns of %s: %s.', source, coalesce((SELECT string_agg(a.attname::text, ', ' ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
                AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype)), 'none')),
            HINT = 'Pass the column the partitions are cut by, e.g. created_at.';
    END IF;
    IF key_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'key column %.% is not a time column', source, key_column USING ERRCODE = '42804',
            DETAIL = format('Its type is %s.', key_type),
            HINT = 'The key must be timestamptz, timestamp or date.';
    END IF;
    PERFORM timepart._check_interval(step);
    IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = tz) THEN
        RAISE EXCEPTION 'unknown time zone "%"', tz USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.', HINT = 'Use a name from pg_timezone_names, e.g. UTC.';
    END IF;
    SELECT string_agg(format('%s on %s', k.conname, k.conrelid::regclass), ', ') INTO refs
    FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = source;
    IF refs IS NOT NULL THEN
        RAISE EXCEPTION 'table % is referenced by foreign keys', source USING ERRCODE = '2BP01',
            DETAIL = format('Foreign keys: %s.', refs),
            HINT = format('Drop them, migrate, then re-create them against the partitioned table (the referenced columns must include %s).', key_column);
    END IF;
    PERFORM timepart._migrate_check_uniques(source, key_column);
    SELECT string_agg(DISTINCT r.ev_class::regclass::text, ', ') INTO refs
    FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r ON r.oid = d.objid
    WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = source AND r.ev_class <> source;
    IF refs IS NOT NULL THEN
        RAISE EXCEPTION 'table % is used by views', source USING ERRCODE = '2BP01',
            DETAIL = format('Views: %s. After the swap they would still read the old table.', refs),
            HINT = 'Drop the views, migrate, then create them again.';
    END IF;
    bad := timepart._fit_name(rel.relname, 'unpartitioned_old');
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.relnamespace = rel.relnamespace AND c.relname = bad) THEN
        RAISE EXCEPTION 'relation "%" already exists', bad USING ERRCODE = '42P07',
            DETAIL = format('The old %s is kept under this name after the swap.', source),
            HINT = 'Drop or rename it (a previous migration''s leftover?) first.';
    END IF;
    RETURN key_type;
END $$;

-- Unique constraints and indexes of a partitioned table must contain its key; exclusion
-- constraints are not supported on partitioned tables before PostgreSQL 17.
CREATE OR REPLACE FUNCTION timepart._migrate_check_uniques(source regclass, key_column name) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad text;
    key_num int2 := (SELECT a.attnum FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attname = key_column);
BEGIN
    SELECT string_agg(format('%s (%s)', x.indexrelid::regclass, pg_catalog.pg_get_indexdef(x.indexrelid)), '; ') INTO bad
    FROM pg_catalog.pg_index x
    WHERE x.indrelid = source AND (x.indisunique OR x.indisexclusion)
      AND (x.indisexclusion OR x.indexprs IS NOT NULL
           OR NOT EXISTS (SELECT 1 FROM pg_catalog.generate_series(0, x.indnkeyatts - 1) k WHERE x.indkey[k] = key_num));
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'a primary key or unique constraint of % lacks the key column %', source, key_column
            USING ERRCODE = '0A000',
            DETAIL = format('Indexes: %s.', bad),
            HINT = format('A partitioned table can only enforce uniqueness over columns that include %1$s: change it to e.g. PRIMARY KEY (id, %1$s) first, or drop it.', key_column);
    END IF;
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

-- The refusal for a key column with NULLs: a range partition cannot hold them.
CREATE OR REPLACE FUNCTION timepart._migrate_check_nulls(source regclass, key_column name, has_nulls boolean) RETURNS void
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    IF has_nulls THEN
        RAISE EXCEPTION 'key column %.% has NULL values', source, key_column USING ERRCODE = '23502',
            DETAIL = 'Rows of a range-partitioned table need a key value to find their partition.',
            HINT = format('Fill them in (UPDATE %s SET %I = ... WHERE %I IS NULL) or delete them, then migrate.',
                          source, key_column, key_column);
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

CREATE OR REPLACE FUNCTION timepart.migrate_plan(source regclass, key_column name,
                                                 partition_interval interval DEFAULT '1 month', time_zone text DEFAULT 'UTC')
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz,
               estimated_rows bigint, rows_from text, estimated_seconds numeric)
LANGUAGE plpgsql STABLE AS $$
/* The dry run of timepart.migrate: the partitions the existing rows need, rows per
   partition (counted, or estimated from statistics on big tables: rows_from says
   which) and a rough copy time. Refuses what migrate would refuse. Changes nothing. */
DECLARE
    key_type regtype := timepart._migrate_check(source, key_column, partition_interval, time_zone);
    f record;
BEGIN
    SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, time_zone);
    PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
    RETURN QUERY
    SELECT timepart._partition_name(source, p.range_start, partition_interval, time_zone)::text, p.range_start, p.range_end,
           p.rows, CASE WHEN f.counted THEN 'counted' ELSE 'statistics' END,
           round(p.rows / timepart._migrate_rate(), 1)
    FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone,
                                   f.oldest, f.newest, f.row_count, f.counted) p;
END $$;
COMMENT ON FUNCTION timepart.migrate_plan(regclass, name, interval, text) IS
    'Dry run of timepart.migrate: partitions to create, rows per partition (counted or estimated) and estimated copy time';

-- An index's key columns as a template column list: each column or (expression) with
-- its ordering; INCLUDE columns ride along (the template wraps the list in parentheses).
CREATE OR REPLACE FUNCTION timepart._migrate_index_columns(idx regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT string_agg(CASE WHEN x.indkey[k - 1] = 0 THEN '(' || pg_catalog.pg_get_indexdef(x.indexrelid, k, true) || ')'
                           ELSE pg_catalog.pg_get_indexdef(x.indexrelid, k, true) END
                      || CASE WHEN k > x.indnkeyatts THEN ''
                              WHEN x.indoption[k - 1] & 3 = 3 THEN ' DESC'
                              WHEN x.indoption[k - 1] & 3 = 1 THEN ' DESC NULLS LAST'
                              WHEN x.indoption[k - 1] & 3 = 2 THEN ' NULLS FIRST' ELSE '' END
                      || CASE WHEN k = x.indnkeyatts AND x.indnatts > x.indnkeyatts THEN ') INCLUDE (' WHEN k < x.indnatts THEN ', ' ELSE '' END,
                      '' ORDER BY k)
    FROM pg_catalog.pg_index x, pg_catalog.generate_series(1, x.indnatts) k
    WHERE x.indexrelid = idx
$$;

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

-- Every other valid index of the source becomes an index template of the copy, its
-- suffix the index name without the table's name (email_events_created_idx: created_idx).
CREATE OR REPLACE FUNCTION timepart._migrate_templates(source regclass, target regclass) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    i record;
    suffix text;
    made text[] := '{}'::text[];
BEGIN
    FOR i IN SELECT c.relname::text AS idx_name, a.amname, timepart._migrate_index_columns(x.indexrelid) AS cols,
                    pg_catalog.pg_get_expr(x.indpred, x.indrelid, true) AS pred, t.relname::text AS table_name
             FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
             JOIN pg_catalog.pg_class t ON t.oid = x.indrelid JOIN pg_catalog.pg_am a ON a.oid = c.relam
             WHERE x.indrelid = source AND NOT x.indisunique AND x.indisvalid ORDER BY c.relname LOOP
        suffix := left(pg_catalog.regexp_replace(lower(CASE WHEN starts_with(i.idx_name, i.table_name || '_')
                       THEN substr(i.idx_name, length(i.table_name) + 2) ELSE i.idx_name END), '[^a-z0-9_]', '_', 'g'), 40);
        IF suffix = '' OR suffix = ANY (made) THEN
            suffix := left(suffix, 32) || '_' || left(pg_catalog.md5(i.idx_name), 7);
        END IF;
        PERFORM timepart.add_index_template(target, suffix, i.cols, i.pred, i.amname);
        made := made || suffix;
    END LOOP;
    RETURN made;
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

-- TRUNCATE fires no row changes to capture; refuse it while the copy is under way.
CREATE OR REPLACE FUNCTION timepart._migrate_refuse_truncate() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'table % is being migrated by timepart', TG_RELID::regclass USING ERRCODE = '55006',
        DETAIL = 'TRUNCATE cannot be replayed onto the partitioned copy.',
        HINT = format('Wait for CALL timepart.migrate to finish, or stop it with SELECT timepart.migrate_abort(%L).', TG_RELID::regclass::text);
END $$;

-- The columns that identify a row in the change log: the primary key, else the whole row.
CREATE OR REPLACE FUNCTION timepart._migrate_row_key(source regclass) RETURNS name[]
LANGUAGE sql STABLE AS $$
    SELECT array_agg(a.attname ORDER BY k.n)
    FROM pg_catalog.pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), pg_catalog.pg_attribute a
    WHERE c.conrelid = source AND c.contype = 'p' AND a.attrelid = source AND a.attnum = k.attnum
$$;

-- The change log's columns: the row key, or every copied column.
CREATE OR REPLACE FUNCTION timepart._migrate_key_list(source regclass, row_key name[]) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN row_key IS NULL THEN timepart._column_list(source)
                ELSE (SELECT string_agg(pg_catalog.quote_ident(k), ', ' ORDER BY n) FROM unnest(row_key) WITH ORDINALITY AS u(k, n)) END
$$;

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

-- Everything before the first batch, in the caller's transaction: the copy, its
-- registration and templates, the partitions the rows need (and maintain's current
-- and future ones), the change capture and the progress row. Retention is set only at
-- the swap, so cleanup cannot drop copied rows while the old table still holds them.
CREATE OR REPLACE FUNCTION timepart._migrate_prepare(source regclass, key_column name, key_type regtype, step interval,
                                                     ahead integer, keep interval, tz text, batch_size integer,
                                                     rows_estimated bigint, oldest timestamptz, newest timestamptz)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    stage name := timepart._fit_name('timepart_migrate', source::oid::text);
    target regclass;
    row_key name[] := timepart._migrate_row_key(source);
    p record;
    templates text[];
    blocks bigint;
    m timepart.migrations;
BEGIN
    target := timepart._migrate_create_target(source, key_column, stage);
    PERFORM timepart._register(target, step, ahead, NULL, true, '100 milliseconds', tz);
    templates := timepart._migrate_templates(source, target);
    FOR p IN SELECT * FROM timepart._migrate_periods(source, key_column, key_type, step, tz, oldest, newest, 0, false) LOOP
        PERFORM timepart.create_partition(target, p.range_start, p.range_end);
    END LOOP;
    PERFORM timepart.maintain(target, ahead);
    -- The trigger's lock waits for writers in flight; every write after it is captured,
    -- every row before it lies below the size measured now.
    PERFORM timepart._migrate_install_capture(source, stage, row_key);
    blocks := pg_catalog.pg_relation_size(source) / pg_catalog.current_setting('block_size')::bigint;
    INSERT INTO timepart.migrations AS g (source, source_name, target, stage_schema, key_column, partition_interval, time_zone,
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated)
    VALUES (source, source::text, target, stage, key_column, step, tz, keep, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated)
    RETURNING * INTO m;
    PERFORM timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
END $$;

-- How many blocks hold about batch_size rows, from the table's statistics (or its size).
CREATE OR REPLACE FUNCTION timepart._migrate_batch_blocks(source regclass, batch_size integer) RETURNS integer
LANGUAGE sql STABLE AS $$
    SELECT greatest(1, least(1000000, CASE WHEN c.relpages > 0 AND c.reltuples > 0
                                           THEN batch_size / (c.reltuples / c.relpages)
                                           ELSE batch_size / 50 END))::integer
    FROM pg_catalog.pg_class c WHERE c.oid = source
$$;

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

-- The join condition between a table row (alias a) and a change log row (alias b):
-- equal primary keys, or equal whole rows compared as text (works for every type).
CREATE OR REPLACE FUNCTION timepart._migrate_match(m timepart.migrations) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN m.row_key IS NULL
                THEN format('ROW(%1$s)::text = ROW(%2$s)::text',
                            (SELECT string_agg('a.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
                            (SELECT string_agg('b.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''))
                ELSE (SELECT string_agg(format('a.%1$I = b.%1$I', k), ' AND ') FROM unnest(m.row_key) k) END
$$;

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

-- The swap, in the caller's (short) transaction: writes wait (EXCLUSIVE lock), the last
-- changes are applied, both sides are counted and checksummed, then, under ACCESS
-- EXCLUSIVE, names change. A lock wait longer than lock_wait raises lock_not_available.
CREATE OR REPLACE FUNCTION timepart._migrate_swap(m timepart.migrations, lock_wait interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cols text := timepart._column_list(m.source);
    before record;
    after record;
    schema_name name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = m.source);
    old_name text;
    last_changes bigint := 0;
    n bigint;
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text || 'ms', true);
    EXECUTE format('LOCK TABLE ONLY %s IN EXCLUSIVE MODE', m.source);
    LOOP
        n := timepart._migrate_catch_up(m, 1000000);
        last_changes := last_changes + n;
        EXIT WHEN n = 0;
    END LOOP;
    SELECT * INTO before FROM timepart._migrate_checksum(m.source, cols);
    SELECT * INTO after FROM timepart._migrate_checksum(m.target, cols);
    IF before.row_count <> after.row_count OR before.checksum <> after.checksum THEN
        RAISE EXCEPTION 'the partitioned copy of % does not match it; nothing was swapped', m.source USING ERRCODE = 'XX001',
            DETAIL = format('Source: %s rows, checksum %s. Copy %s: %s rows, checksum %s.',
                            before.row_count, before.checksum, m.target, after.row_count, after.checksum),
            HINT = format('Inspect the copy; SELECT timepart.migrate_abort(%L) removes it, then migrate again.', m.source::text);
    END IF;
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', m.source);
    old_name := timepart._migrate_retire_source(m);
    PERFORM timepart._migrate_place_target(m, schema_name);
    UPDATE timepart.migrations g SET state = 'done', finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp(),
        source_rows = before.row_count, source_checksum = before.checksum,
        target_rows = after.row_count, target_checksum = after.checksum
    WHERE g.id = m.id;
    RETURN jsonb_build_object('old_table', old_name, 'table', m.target::text, 'rows', after.row_count,
        'checksum', after.checksum, 'last_changes', last_changes,
        'swap_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1));
END $$;

-- The refusal for a partition name that is taken in the source's schema: the swap
-- would fail there after the whole copy.
CREATE OR REPLACE FUNCTION timepart._migrate_check_names(source regclass, names text[]) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    taken text;
BEGIN
    SELECT string_agg(c.relname, ', ') INTO taken FROM pg_catalog.pg_class c, pg_catalog.pg_class s
    WHERE s.oid = source AND c.relnamespace = s.relnamespace AND c.relname = ANY (names);
    IF taken IS NOT NULL THEN
        RAISE EXCEPTION 'relations named like the new partitions of % already exist', source USING ERRCODE = '42P07',
            DETAIL = format('Taken: %s.', taken), HINT = 'Rename or drop them first.';
    END IF;
END $$;

-- A run's start: the migration under way for this table (same key and interval), or,
-- after every check, a new one prepared. NULL when the table was already migrated.
-- Takes the per-table session lock that keeps a second runner out.
CREATE OR REPLACE FUNCTION timepart._migrate_begin(source regclass, key_column name, step interval, batch_size integer,
                                                   ahead integer, keep interval, tz text)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    m timepart.migrations;
    key_type regtype;
    f record;
    attempt int := 0;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = _migrate_begin.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND AND EXISTS (SELECT 1 FROM timepart.migrations g WHERE g.target = _migrate_begin.source AND g.state = 'done') THEN
        RAISE NOTICE 'timepart.migrate: % is already migrated', source;
        RETURN NULL;
    ELSIF FOUND AND (m.key_column <> key_column OR m.partition_interval <> step) THEN
        RAISE EXCEPTION 'a migration of % by % every % is under way', source, m.key_column, m.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s every %s.', key_column, step),
            HINT = format('Resume it with the same key and interval, or stop it with SELECT timepart.migrate_abort(%L).', source::text);
    ELSIF NOT FOUND THEN
        key_type := timepart._migrate_check(source, key_column, step, tz);
        IF ahead IS NULL OR ahead NOT BETWEEN 1 AND 1000 THEN
            RAISE EXCEPTION 'premake must be between 1 and 1000' USING ERRCODE = '22023',
                DETAIL = format('Got %s.', coalesce(ahead::text, 'NULL')), HINT = 'Keep e.g. 6 future partitions ready.';
        END IF;
        IF keep <= interval '0' THEN
            RAISE EXCEPTION 'retention must be positive' USING ERRCODE = '22023',
                DETAIL = format('Got %s.', keep), HINT = 'Use e.g. ''12 months'', or NULL to keep everything.';
        END IF;
        SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, tz);
        PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
        PERFORM timepart._migrate_check_names(source, ARRAY[timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), 'default')::text]
            || ARRAY(SELECT timepart._partition_name(source, p.range_start, step, tz)::text
                     FROM timepart._migrate_periods(source, key_column, key_type, step, tz, f.oldest, f.newest, 0, false) p));
    END IF;
    IF NOT pg_catalog.pg_try_advisory_lock(timepart._lock_key(source)) THEN
        RAISE EXCEPTION 'another session is migrating %', source USING ERRCODE = '55006',
            DETAIL = 'Only one run at a time copies a table.', HINT = 'Wait for it to finish, or end that session to take over.';
    END IF;
    IF m.id IS NOT NULL THEN
        RAISE NOTICE 'timepart.migrate: resuming % at block % of % (% rows copied)', source, m.next_block, m.last_block, m.rows_copied;
        RETURN m;
    END IF;
    BEGIN
        LOOP
            attempt := attempt + 1;
            BEGIN
                -- The capture trigger's lock on the source waits at most this long per attempt.
                PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
                RETURN timepart._migrate_prepare(source, key_column, key_type, step, ahead, keep, tz, batch_size,
                                                 f.row_count, f.oldest, f.newest);
            EXCEPTION WHEN lock_not_available THEN
                IF attempt >= 20 THEN RAISE; END IF;
                PERFORM pg_catalog.pg_sleep(least(2, 0.1 * attempt));
            END;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_catalog.pg_advisory_unlock(timepart._lock_key(source));
        RAISE;
    END;
    RETURN NULL;  -- not reached: the loop returns or raises
END $$;

-- One progress line per batch; the CLI parses "<n> of ~<total> rows copied".
CREATE OR REPLACE FUNCTION timepart._migrate_progress(m timepart.migrations, run_started timestamptz, rows_at_start bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rate numeric := (m.rows_copied - rows_at_start)
                    / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - run_started), 0.001);
BEGIN
    RAISE NOTICE 'timepart.migrate: % of ~% rows copied (block % of %, % rows/s)',
        m.rows_copied, greatest(m.rows_estimated, m.rows_copied), m.next_block, m.last_block, round(rate);
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
COMMENT ON PROCEDURE timepart.migrate(regclass, name, interval, integer, integer, interval, text) IS
    'Converts an unpartitioned table into a managed partitioned one online, in resumable batches; the old table is kept as <name>_unpartitioned_old';

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
COMMENT ON FUNCTION timepart.migrate_abort(regclass) IS 'Stops an unfinished timepart.migrate: drops the partitioned copy and the capture triggers; the source stays as it is';

-- ==== src/90_compat.sql
-- The seed's names, callable unqualified with the default search_path, acting on
-- email_events. Each is one call to the generic function.

CREATE OR REPLACE FUNCTION public.create_email_events_partition(start_date date, end_date date)
RETURNS text LANGUAGE sql AS $$
    SELECT timepart.create_partition(timepart._email_events(),
                                     start_date::timestamp AT TIME ZONE 'UTC', end_date::timestamp AT TIME ZONE 'UTC')
$$;
COMMENT ON FUNCTION public.create_email_events_partition(date, date) IS
    'Seed name: creates the email_events partition for [start_date, end_date) with its indexes';

CREATE OR REPLACE FUNCTION public.maintain_email_events_partitions(months_ahead integer DEFAULT 6)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT timepart.maintain(timepart._email_events(), months_ahead)
$$;
COMMENT ON FUNCTION public.maintain_email_events_partitions(integer) IS
    'Seed name: keeps email_events partitions for the current month and months_ahead more';

CREATE OR REPLACE FUNCTION public.get_partition_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE sql AS $$
    SELECT * FROM timepart.get_maintenance_log(max_rows)
$$;
COMMENT ON FUNCTION public.get_partition_maintenance_log(integer) IS 'Seed name: the newest maintenance log rows';

CREATE OR REPLACE VIEW public.partition_maintenance_log AS
    SELECT id, operation_type, parent_table, partition_name, success, created_at, details, error, duration, run_by, run_as
    FROM timepart.maintenance_log;
COMMENT ON VIEW public.partition_maintenance_log IS 'Seed name: the timepart maintenance log';

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    IF retention_months IS NULL OR retention_months < 1 THEN
        RAISE EXCEPTION 'retention_months must be a positive number of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(retention_months::text, 'NULL')),
            HINT = 'Keep e.g. 12 months: SELECT * FROM cleanup_old_email_events_partitions(12);';
    END IF;
    RETURN QUERY
    SELECT d->>0, (d->>1)::bigint
    FROM jsonb_array_elements(timepart.cleanup(timepart._email_events(), pg_catalog.make_interval(months => retention_months))
                              ->'dropped_partitions') d;
END $$;
COMMENT ON FUNCTION public.cleanup_old_email_events_partitions(integer) IS
    'Seed name: removes email_events partitions wholly older than retention_months; returns each with its row count';

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql AS $$
    SELECT s.partition_name, s.period, s.record_count, s.size_mb, s.oldest_record, s.newest_record,
           s.range_start, s.range_end, s.exact
    FROM timepart.partition_stats(timepart._email_events()) s
$$;
COMMENT ON FUNCTION public.get_email_events_partition_stats() IS
    'Seed name: per-partition name, period, record_count, size_mb, oldest and newest record of email_events';

-- ==== src/99_security.sql
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
--   who must own the table (or be a member of its owner, or a superuser); the owner
--   guards on timepart's tables check the old and the new row.
-- * Reading (partition_stats, health, summary) and snapshot_stats, check_alerts run as
--   timepart's owner, so monitors need no access to the data; they read user tables
--   only through executors, and check the caller (_caller()) where rights matter.
-- * Scheduling runs as the caller. The log and migration state are written only by
--   timepart's PL/pgSQL functions (_written_by_timepart).
-- * Every PL/pgSQL function and every public wrapper runs with search_path pinned to
--   pg_catalog, pg_temp. Small private SQL helpers stay unpinned so the planner can
--   inline them; they are only called from pinned functions.

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
