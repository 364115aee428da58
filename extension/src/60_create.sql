-- Creating partitions: standalone table + indexes, then ATTACH (weak lock on the
-- parent), every lock wait bounded by the table's lock budget and retried.

-- The columns rows are copied by (no dropped or generated columns), quoted.
CREATE OR REPLACE FUNCTION timepart._column_list(tbl regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
END;

-- Builds one partition inside the caller's transaction: CREATE TABLE (LIKE parent),
-- rows for its range moved out of the default partition, templated indexes, ATTACH.
-- A bound of NULL means the default partition. Returns what it did.
-- Traffic first: the bulk of a move runs before any lock that blocks inserts into the
-- table (it holds the default partition only); the short lock that ATTACH needs comes
-- after, when nothing is left to move.
CREATE OR REPLACE FUNCTION timepart._build_partition(cfg timepart.config, part_name name,
                                                     range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    default_part regclass;
    part regclass;
    moved bigint := 0;
    indexes text[];
    fence name;
    lo text := timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone);   -- NULL for the default partition
    hi text := timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone);
BEGIN
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;

    CALL timepart._new_partition_table(cfg.parent, part_name, part);

    -- Whether rows wait comes first: decoding is asked (publications, slots) only then.
    IF range_start IS NOT NULL AND default_part IS NOT NULL
       AND timepart._rows_waiting(cfg, default_part, range_start, range_end) AND timepart._decoded(cfg.parent) THEN
        -- Rows wait and something decodes them: they leave the default partition and
        -- enter the attached partition, as logical decoding must see it (58_moves.sql).
        EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', default_part);
        indexes := timepart._index_partition(cfg.parent, part);
        moved := timepart._move_and_attach_decoded(cfg, default_part, part, range_start, range_end);
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cfg.parent AND c.relreplident = 'i') THEN
            PERFORM timepart._match_parent(cfg.parent, part);
        END IF;
        RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved, 'decoded', true);
    END IF;

    IF range_start IS NOT NULL AND default_part IS NOT NULL THEN
        -- EXCLUSIVE on the default partition alone: reads go on, and so do inserts into
        -- every other partition; what waits is only traffic for the default partition
        -- itself, which resumes after the move and finds the rows where they now are.
        EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', default_part);
        moved := timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
        IF moved > 0 THEN
            -- The move leaves its rows behind as dead tuples, which another look and
            -- ATTACH's check of the default partition would each scan while inserts wait
            -- at the parent. A constraint saying the default holds nothing of this range,
            -- checked now (inserts into the table go on), spares both.
            fence := timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = default_part), 'timepart_fence');
            PERFORM timepart._as_owner(cfg.parent, format(
                'ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NULL OR %I OPERATOR(pg_catalog.<) %s OR %I OPERATOR(pg_catalog.>=) %s) NOT VALID',
                default_part, fence, cfg.key_column, cfg.key_column, lo, cfg.key_column, hi));
            PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s VALIDATE CONSTRAINT %I', default_part, fence));
            -- The same for the new partition's own check of the rows it now holds.
            PERFORM timepart._as_owner(cfg.parent, format(
                'ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s)',
                part, fence, cfg.key_column, cfg.key_column, lo, cfg.key_column, hi));
        END IF;
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while the last of its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        IF fence IS NULL THEN
            moved := moved + timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
        END IF;
    END IF;

    indexes := timepart._index_partition(cfg.parent, part);
    IF range_start IS NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', cfg.parent, part));
    ELSE
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)',
            cfg.parent, part, lo, hi));
    END IF;
    IF fence IS NOT NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s DROP CONSTRAINT %I; ALTER TABLE %s DROP CONSTRAINT %I',
                                                      default_part, fence, part, fence));
    END IF;
    -- ATTACH matched the indexes built above to the parent's templated indexes; a replica
    -- identity index maps to the partition's index now.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cfg.parent AND c.relreplident = 'i') THEN
        PERFORM timepart._match_parent(cfg.parent, part);
    END IF;
    RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved);
END $$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
-- Identity columns are the parent's alone: since 17 the attached partition shares them;
-- before, the partition's column takes its values from the parent's sequence, so a row
-- inserted straight into a partition never repeats an id.
-- The access method a new partition gets: the table's, never what a SET of the session (a
-- partition_admin's, say) made default_table_access_method. The parent's (17+), else the
-- one most partitions use, else the default the session started with (server, database,
-- role), else heap.
CREATE OR REPLACE FUNCTION timepart._partition_access_method(parent regclass) RETURNS name
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid = coalesce(
        (SELECT NULLIF(c.relam, 0) FROM pg_catalog.pg_class c WHERE c.oid = parent),
        (SELECT c.relam FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = parent AND c.relkind = 'r' GROUP BY c.relam ORDER BY count(*) DESC, c.relam LIMIT 1),
        (SELECT d.oid FROM pg_catalog.pg_am d JOIN pg_catalog.pg_settings g ON g.reset_val = d.amname
         WHERE g.name = 'default_table_access_method' AND d.amtype = 't'),
        (SELECT h.oid FROM pg_catalog.pg_am h WHERE h.amname = 'heap'));
END;

CREATE OR REPLACE PROCEDURE timepart._new_partition_table(parent regclass, part_name name, INOUT part regclass DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    cfg timepart.config := timepart._config(parent);
    space name := (SELECT t.spcname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                   WHERE c.oid = parent);
    am name := timepart._partition_access_method(parent);
    -- Born with what cannot change later without a rewrite: logged-ness, the access
    -- method, the parent's tablespace, the configured storage options.
    ddl text := format('CREATE %sTABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY) USING %I%s',
                       CASE WHEN cfg.partition_unlogged THEN 'UNLOGGED ' ELSE '' END, part_schema, part_name, parent, am,
                       CASE WHEN cfg.partition_options <> '{}'::jsonb THEN format(' WITH (%s)', timepart._reloptions_sql(cfg.partition_options)) ELSE '' END);
    col record;
    ctx text;
BEGIN
    -- Only as a step of _build_partition, whose bounds and name were checked: called on
    -- its own (it runs as timepart's owner) it would make tables of any name. A procedure,
    -- CALLed, so the call cannot be dressed up as one of _build_partition's (_calling_function).
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF coalesce(timepart._calling_function(ctx), '') !~ '^PL/pgSQL function timepart\._build_partition\(' THEN
        RAISE EXCEPTION 'timepart._new_partition_table is a step of making a partition' USING ERRCODE = '42501',
            DETAIL = 'It is called by timepart._build_partition only.', HINT = 'Use timepart.create_partition or timepart.maintain.';
    END IF;
    PERFORM timepart._check_may_maintain(timepart._caller(), parent, 'create its partitions');
    PERFORM timepart._check_owner_can_create(parent, 'create its partitions');
    PERFORM timepart._as_owner(parent, ddl || CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END);
    part := format('%I.%I', part_schema, part_name)::regclass;
    IF NOT timepart._partitions_share_identity() THEN
        FOR col IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(parent::text, a.attname) AS seq
                   FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = parent AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' LOOP
            PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass)',
                                                      part, col.attname, col.seq));
        END LOOP;
    END IF;
    -- The parent's privileges, row security and policies, comment and replica identity,
    -- all before the partition is attached and visible (55_look.sql).
    PERFORM timepart._match_parent(parent, part);
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
    made text;
BEGIN
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(create_partition.parent) THEN
        CALL timepart._admin_create_partition(create_partition.parent, range_start, range_end, made);
        RETURN made;
    END IF;
    RETURN timepart._create_partition(create_partition.parent, range_start, range_end);
END $$;
COMMENT ON FUNCTION timepart.create_partition(regclass, timestamptz, timestamptz) IS
    'Creates one partition (one period) with its templated indexes; a notice if it already exists';

CREATE OR REPLACE FUNCTION timepart._create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
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
    IF NOT timepart._runner_lock(parent, cfg.lock_timeout) THEN
        CALL timepart._log('create_partition', parent, part_name, false, '{"skipped": "another run holds the table"}',
                              'skipped: another run holds the table', started);
        RAISE EXCEPTION 'could not create partition %: another run holds %', part_name, parent USING ERRCODE = '55P03',
            DETAIL = format('Waited %s (the table''s lock budget) for a maintenance run of %s to finish.', cfg.lock_timeout, parent),
            HINT = 'Run it again when that run is over.';
    END IF;
    result := timepart._attempt(cfg, 'build', part_name, range_start, range_end);
    IF NOT (result->>'ok')::boolean THEN
        CALL timepart._log('create_partition', parent, part_name, false, result, result->>'error', started);
        RAISE EXCEPTION 'could not create partition %: %', part_name, result->>'error'
            USING ERRCODE = coalesce(result->>'sqlstate', 'P0001'),
                  DETAIL = format('Range %s to %s, %s attempt(s).', range_start, range_end, result->>'attempts'),
                  HINT = 'A lock wait gives up after the table''s lock_timeout; run it again when traffic allows.';
    END IF;
    CALL timepart._log('create_partition', parent, part_name, true,
        result || jsonb_build_object('range_start', range_start, 'range_end', range_end), NULL, started);
    RETURN format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
                            ON n.oid = c.relnamespace WHERE c.oid = parent), part_name);
END $$;
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

-- The period of a managed table that contains a moment: the bounds create_partition
-- accepts for it. For callers holding a moment with a time of day (the seed's
-- datetime.now().replace(day=1)).
CREATE OR REPLACE FUNCTION timepart.period_of(parent regclass, moment timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config := timepart._config(parent);
BEGIN
    PERFORM timepart._check_moment(moment, 'moment');
    range_start := timepart._period_of(cfg, moment);
    range_end := timepart._period_add(range_start, cfg.partition_interval, 1, cfg.time_zone);
    RETURN NEXT;
END $$;
COMMENT ON FUNCTION timepart.period_of(regclass, timestamptz) IS
    'The bounds of the period of a managed table that contains a moment';
