-- The seed's names, callable unqualified with the default search_path, acting on
-- email_events. Each finds email_events along the caller's search_path, so with one
-- email_events per tenant schema `SET search_path = tenant_a, public` picks tenant_a's.
--
-- That is why these wrappers, unlike the rest of timepart, carry no pinned search_path:
-- a pinned path would hide the caller's. Each is one SQL statement in which the path
-- chooses nothing but the table: every function is schema-qualified, no operator is
-- written, and the work happens in the pinned timepart function it calls. They run as
-- the caller (SECURITY INVOKER).

-- The seed's names timepart puts in public, and their signatures.
CREATE OR REPLACE FUNCTION timepart._public_names() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['create_email_events_partition', 'maintain_email_events_partitions', 'cleanup_old_email_events_partitions',
             'get_email_events_partition_stats', 'get_partition_maintenance_log'];

CREATE OR REPLACE FUNCTION timepart._public_signatures() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['public.create_email_events_partition(date,date)', 'public.maintain_email_events_partitions(integer)',
             'public.cleanup_old_email_events_partitions(integer)', 'public.get_email_events_partition_stats()',
             'public.get_partition_maintenance_log(integer)'];

-- The relation of a name in the first of the schemas (the caller's search_path as
-- current_schemas(false) gives it: pg_temp only where the caller put it, never first).
CREATE OR REPLACE FUNCTION timepart._on_path(relation_name name, schemas name[]) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT c.oid::regclass FROM unnest(schemas) WITH ORDINALITY s(nsp, i)
            JOIN pg_catalog.pg_namespace n ON n.nspname = s.nsp
            JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = relation_name
            ORDER BY s.i LIMIT 1);
END $$;

-- The pinned bodies of the seed's names (first: a script-mode install checks the
-- wrappers' bodies); `on_path` is the caller's email_events.

CREATE OR REPLACE FUNCTION timepart._seed_create_partition(on_path regclass, start_date date, end_date date)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tbl regclass := timepart._email_events(on_path);
    tz text := (SELECT c.time_zone FROM timepart.config c WHERE c.parent = tbl);
BEGIN
    RETURN timepart.create_partition(tbl, start_date::timestamp AT TIME ZONE tz, end_date::timestamp AT TIME ZONE tz);
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_cleanup(on_path regclass, retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    IF retention_months IS NULL OR retention_months < 1 THEN
        RAISE EXCEPTION 'retention_months must be a positive number of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(retention_months::text, 'NULL')),
            HINT = 'Keep e.g. 12 months: SELECT * FROM cleanup_old_email_events_partitions(12);';
    END IF;
    RETURN QUERY
    SELECT d->>0, (d->>1)::bigint
    FROM jsonb_array_elements(timepart.cleanup(timepart._email_events(on_path), pg_catalog.make_interval(months => retention_months))
                              ->'dropped_partitions') d;
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_stats(on_path regclass)
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT s.partition_name, s.period, s.record_count, s.size_mb, s.oldest_record, s.newest_record,
           s.range_start, s.range_end, s.exact
    FROM timepart.partition_stats(timepart._email_events(on_path)) s;
END $$;

CREATE OR REPLACE FUNCTION public.create_email_events_partition(start_date date, end_date date)
RETURNS text LANGUAGE sql
BEGIN ATOMIC
    SELECT timepart._seed_create_partition(timepart._on_path('email_events', pg_catalog.current_schemas(false)), start_date, end_date);
END;
COMMENT ON FUNCTION public.create_email_events_partition(date, date) IS
    'Seed name: creates the email_events partition for [start_date, end_date) with its indexes';

CREATE OR REPLACE FUNCTION public.maintain_email_events_partitions(months_ahead integer DEFAULT 6)
RETURNS jsonb LANGUAGE sql
BEGIN ATOMIC
    SELECT timepart.maintain(timepart._email_events(timepart._on_path('email_events', pg_catalog.current_schemas(false))), months_ahead);
END;
COMMENT ON FUNCTION public.maintain_email_events_partitions(integer) IS
    'Seed name: keeps email_events partitions for the current month and months_ahead more';

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart._seed_cleanup(timepart._on_path('email_events', pg_catalog.current_schemas(false)), retention_months);
END;
COMMENT ON FUNCTION public.cleanup_old_email_events_partitions(integer) IS
    'Seed name: removes email_events partitions wholly older than retention_months; returns each with its row count';

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart._seed_stats(timepart._on_path('email_events', pg_catalog.current_schemas(false)));
END;
COMMENT ON FUNCTION public.get_email_events_partition_stats() IS
    'Seed name: per-partition name, period, record_count, size_mb, oldest and newest record of email_events';

CREATE OR REPLACE FUNCTION public.get_partition_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart.get_maintenance_log(max_rows);
END;
COMMENT ON FUNCTION public.get_partition_maintenance_log(integer) IS 'Seed name: the newest maintenance log rows';

CREATE OR REPLACE VIEW public.partition_maintenance_log AS
    SELECT id, operation_type, parent_table, partition_name, success, created_at, details, error, duration, run_by, run_as
    FROM timepart.maintenance_log;
COMMENT ON VIEW public.partition_maintenance_log IS 'Seed name: the timepart maintenance log';

-- Nobody else may take the seed's names. They are called unqualified, so an overload
-- in public (PostgreSQL prefers create_email_events_partition(text, text) to timepart's
-- (date, date) for two quoted literals), or a function or relation of the same name in
-- a schema earlier on the caller's path (a role's "$user" schema), would run instead,
-- with the caller's rights. Whatever timepart did not make under those names is a
-- shadow: the install refuses while there is one, and an event trigger refuses the DDL
-- that would make one, by anyone.
CREATE OR REPLACE FUNCTION timepart._seed_shadows()
RETURNS TABLE (description text, object_id oid, namespace oid) LANGUAGE plpgsql STABLE AS $$
DECLARE
    maker oid := (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'timepart');
BEGIN
    RETURN QUERY
    SELECT format('function %s owned by %s', p.oid::regprocedure, p.proowner::regrole), p.oid, p.pronamespace
    FROM pg_catalog.pg_proc p
    WHERE p.proname = ANY (timepart._public_names())
      AND NOT (p.proowner = maker
               AND p.oid = ANY (ARRAY(SELECT pg_catalog.to_regprocedure(x) FROM unnest(timepart._public_signatures()) x)))
    UNION ALL
    SELECT format('%s %s owned by %s', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'relation' END, c.oid::regclass, c.relowner::regrole),
           c.oid, c.relnamespace
    FROM pg_catalog.pg_class c
    WHERE c.relname = 'partition_maintenance_log'
      AND NOT (c.relnamespace = 'public'::regnamespace AND c.relowner = maker AND c.relkind = 'v');
END $$;

-- The refusal for a shadow of the seed's names, with what to do.
CREATE OR REPLACE FUNCTION timepart._refuse_seed_shadows() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found text := (SELECT string_agg(s.description, '; ' ORDER BY s.description) FROM timepart._seed_shadows() s);
BEGIN
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'the seed''s names are timepart''s' USING ERRCODE = '42723',
            DETAIL = format('Found: %s. Called unqualified, it would run instead of timepart''s, with the caller''s rights.', found),
            HINT = 'Drop or rename it: create_email_events_partition, maintain_email_events_partitions, '
                   'cleanup_old_email_events_partitions, get_email_events_partition_stats, get_partition_maintenance_log and '
                   'partition_maintenance_log are timepart''s names in this database.';
    END IF;
END $$;
SELECT timepart._refuse_seed_shadows();

-- The event trigger's function: after any DDL that can make a function or a relation, or
-- move or rename one, it refuses a shadow that this command made (a function or relation
-- it created, altered or renamed, or one in a schema or type it created or renamed): a
-- shadow made otherwise (while the trigger was off) fails the install, the installer and
-- that DDL, never someone's unrelated DDL. As timepart's owner (SECURITY DEFINER): it
-- reads the catalog only, whoever ran the DDL.
CREATE OR REPLACE FUNCTION timepart._guard_seed_names() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    found text;
BEGIN
    -- Most DDL names nothing of the seed's: a look at what this statement made says so
    -- without reading the catalog.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                   WHERE c.object_type IN ('schema', 'type', 'extension')
                      OR c.object_identity ~ '(create_email_events_partition|maintain_email_events_partitions|cleanup_old_email_events_partitions|get_email_events_partition_stats|get_partition_maintenance_log|partition_maintenance_log)') THEN
        RETURN;
    END IF;
    SELECT string_agg(DISTINCT s.description, '; ') INTO found
    FROM timepart._seed_shadows() s, pg_catalog.pg_event_trigger_ddl_commands() c
    WHERE c.objid = s.object_id
       OR (c.object_type IN ('schema', 'type', 'extension') AND s.namespace IN (c.objid, (
               SELECT t.typnamespace FROM pg_catalog.pg_type t WHERE t.oid = c.objid AND c.object_type = 'type')));
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'the seed''s names are timepart''s' USING ERRCODE = '42723',
            DETAIL = format('This statement would make %s. Called unqualified, it would run instead of timepart''s, '
                            'with the caller''s rights.', found),
            HINT = 'Choose another name: create_email_events_partition, maintain_email_events_partitions, '
                   'cleanup_old_email_events_partitions, get_email_events_partition_stats, get_partition_maintenance_log and '
                   'partition_maintenance_log are timepart''s names in this database.';
    END IF;
END $$;

-- The event trigger itself is made by _harden (99_security.sql), last in every script.

