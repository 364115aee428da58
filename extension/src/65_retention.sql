-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention, and never
-- later than the start of the current period, whatever the retention says.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT least(((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - retention) AT TIME ZONE cfg.time_zone,
                 timepart._period_of(cfg, as_of));
END;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, retention, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
      -- Foreign-table partitions are someone else's storage: retention leaves them (said in cleanup).
      AND p.relkind <> 'f'
    ORDER BY p.range_start;
END;

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
    bytes := coalesce((SELECT f.total_bytes FROM timepart._tree_figures(part) f WHERE
                       (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = part) = 'p'), pg_catalog.pg_total_relation_size(part));
    IF cfg.retention_action = 'archive' THEN
        PERFORM timepart._archive_schema(cfg.parent);
    END IF;
    PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s DETACH PARTITION %s', cfg.parent, part));
    PERFORM timepart._release_identity(cfg.parent, part);
    IF cfg.retention_action = 'drop' THEN
        PERFORM timepart._as_owner(cfg.parent, format('DROP TABLE %s', part));
    ELSIF cfg.retention_action = 'archive' THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s SET SCHEMA %I', part, cfg.archive_schema));
    END IF;
    RETURN jsonb_build_object('action', cfg.retention_action, 'size_bytes', bytes,
                              'archive_schema', CASE WHEN cfg.retention_action = 'archive' THEN cfg.archive_schema END);
END $$;

-- A detached partition keeps no tie to its old parent's identity sequences: before 17,
-- its columns took their values from them (see _new_partition_table); those defaults
-- go, so the parent can later be dropped without the detached table. Since 17
-- PostgreSQL's DETACH itself leaves the detached table without the shared identity.
CREATE OR REPLACE FUNCTION timepart._release_identity(parent regclass, part regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    col name;
BEGIN
    FOR col IN SELECT a.attname FROM pg_catalog.pg_attrdef d
               JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
               JOIN pg_catalog.pg_depend dep ON dep.classid = 'pg_catalog.pg_attrdef'::regclass AND dep.objid = d.oid
                                             AND dep.refclassid = 'pg_catalog.pg_class'::regclass
               JOIN pg_catalog.pg_attribute pa ON pa.attrelid = parent AND pa.attidentity <> ''
                                              AND dep.refobjid = pg_catalog.pg_get_serial_sequence(parent::text, pa.attname)::regclass
               WHERE d.adrelid = part LOOP
        PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I DROP DEFAULT', part, col));
    END LOOP;
END $$;

-- The archive schema of a table. One timepart makes (when it is missing) belongs to
-- timepart's owner, serves the tables of one owner, who may use it and create in it (its
-- archived partitions stay its own), and nobody else may: the table's owner cannot hand
-- it to another role, so even if a role of its name appears one day, it never lands on
-- that role's search_path as its "$user" schema. One the table's owner made itself is
-- its own. Any other is refused, and so is a name that is a role's now. SECURITY
-- DEFINER: the table's owner may lack CREATE on the database.
CREATE OR REPLACE FUNCTION timepart._archive_schema(tbl regclass) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl);
    mark text := format('timepart: the archive of the tables of role oid %s', owner_oid);
    ns record;
BEGIN
    PERFORM timepart._check_may_maintain(timepart._caller(), tbl, 'clean it up');
    PERFORM timepart._check_archive_schema(cfg.archive_schema);
    SELECT n.oid, n.nspowner, pg_catalog.obj_description(n.oid, 'pg_namespace') AS note INTO ns
    FROM pg_catalog.pg_namespace n WHERE n.nspname = cfg.archive_schema;
    IF NOT FOUND THEN
        EXECUTE format('CREATE SCHEMA %I', cfg.archive_schema);
        EXECUTE format('COMMENT ON SCHEMA %I IS %L', cfg.archive_schema, mark);
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %s', cfg.archive_schema, owner_oid::regrole);
    ELSIF ns.nspowner <> owner_oid
          AND NOT (ns.nspowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AND ns.note IS NOT DISTINCT FROM mark) THEN
        RAISE EXCEPTION 'archive schema % belongs to %, not to the owner of %', cfg.archive_schema, ns.nspowner::regrole, tbl
            USING ERRCODE = '42501', DETAIL = format('%s is owned by %s; timepart archives only into a schema of that owner''s, '
                                                     'or one it made for that owner''s tables.', tbl, owner_oid::regrole),
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

-- One table's cleanup, under its advisory lock (taken by _run). Never raises:
-- failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, retention interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    boundary timestamptz := timepart._retention_boundary(cfg, retention, as_of);
    plan jsonb;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
    left_over integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = cfg.parent AND c.relkind = 'f') THEN
        RAISE NOTICE 'timepart: cleanup of % skips its foreign-table partitions', cfg.parent;
    END IF;
    -- Row counts first (exact: the snapshot's when still valid), before any lock is taken.
    SELECT coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'action', 'retire',
                                  'range_start', r.range_start, 'range_end', r.range_end, 'boundary', boundary,
                                  'record_count', timepart._record_count(r.partition_oid)) ORDER BY r.range_start)
                        FILTER (WHERE r.verdict = 'retire'), '[]'::jsonb),
           coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'reason',
                                  format('its range %s to %s reaches past the retention boundary %s', r.range_start, r.range_end, boundary))
                              ORDER BY r.range_start) FILTER (WHERE r.verdict = 'straddles'), '[]'::jsonb)
    INTO plan, kept FROM timepart._plan_retention(cfg, retention, as_of) r;
    IF dry_run THEN
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p;
    ELSE
        res := timepart._run_steps(cfg, 'cleanup_partition', plan, 'old partitions');
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p WHERE res->'done' ? (p->>'partition');
        errors := res->'errors';
        left_over := (res->>'left')::integer;
    END IF;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_old := timepart._read_as_owner(cfg.parent, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM %s WHERE %I OPERATOR(pg_catalog.<) %s', default_part, cfg.key_column,
                timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)))::text::bigint;
        EXCEPTION WHEN lock_not_available THEN
            errors := errors || to_jsonb(format('%s: could not count its rows past the boundary within the lock budget', default_part));
        END;
    END IF;
    res := jsonb_build_object('table', cfg.parent::text, 'boundary', boundary, 'action', cfg.retention_action,
                              'dry_run', dry_run, 'removed', removed, 'kept', kept, 'errors', errors,
                              'default_rows_past_retention', default_old, 'left', left_over);
    CALL timepart._log(CASE WHEN dry_run THEN 'cleanup_dry_run' ELSE 'cleanup' END, cfg.parent, NULL,
                          jsonb_array_length(errors) = 0, res, timepart._joined_errors(errors), started);
    IF jsonb_array_length(kept) > 0 OR default_old > 0 THEN
        RAISE WARNING 'timepart: % keeps data past its retention boundary %', cfg.parent, boundary
            USING DETAIL = format('%s partition(s) reach past the boundary; %s row(s) past it wait in the default partition.',
                                  jsonb_array_length(kept), default_old),
                  HINT = 'Run maintain to move default rows into partitions; split or drop straddling partitions yourself.';
    END IF;
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
DECLARE
    result jsonb;
BEGIN
    PERFORM timepart._check_retention(retention);
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(cleanup.parent) THEN
        CALL timepart._admin_run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of, result);
        RETURN result;
    END IF;
    RETURN timepart._run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of);
END $$;
COMMENT ON FUNCTION timepart.cleanup(regclass, interval, boolean, timestamptz) IS
    'Drops, detaches or archives partitions wholly past the retention boundary; dry_run reports without changing anything';
