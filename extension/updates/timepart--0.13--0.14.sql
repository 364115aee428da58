-- timepart 0.13 -> 0.14: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names') AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN ALTER EVENT TRIGGER timepart_seed_names DISABLE; END IF; END $$;

-- ---- pending.sql
UPDATE timepart.stats_history h SET changes_seen = -1
FROM timepart.config c WHERE h.parent_table = c.parent AND c.key_type <> 'pg_catalog.timestamptz'::pg_catalog.regtype;

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._exact_figures(oid, name);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT '0.14'::text;
END;

-- An offset as people write it: +05:30, -08:00.
CREATE OR REPLACE FUNCTION timepart._utc_offset(o interval) RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN o < interval '0' THEN '-' ELSE '+' END || pg_catalog.to_char(CASE WHEN o < interval '0' THEN -o ELSE o END, 'HH24:MI');
END;

-- The refusal for a time zone that is not a full zone name. PostgreSQL also reads
-- abbreviations ('IST' is Israel's +02, not India's; 'PST' is a fixed -08 all summer),
-- POSIX-style names ('EST5EDT') and fixed offsets ('Etc/GMT+5' is UTC-05, sign inverted);
-- period boundaries need a zone's real history, so only a region name or UTC will do.
CREATE OR REPLACE FUNCTION timepart._check_time_zone(time_zone text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    abbrev record;
BEGIN
    IF time_zone IS NOT NULL AND EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone)
       AND (time_zone ~ '^(Etc/)?(UTC|UCT|Universal|Zulu|Greenwich|GMT([+-]?0)?)$'
            OR NOT (time_zone ~ '^(Etc/)?GMT[+-]?[0-9]' OR time_zone ~ '^[A-Z]{3}[0-9]' OR time_zone ~ '^posix'
                    OR time_zone IN ('EST', 'MST', 'HST', 'CET', 'EET', 'MET', 'WET', 'Factory', 'localtime', 'posixrules'))) THEN
        RETURN;
    END IF;
    SELECT a.utc_offset, a.is_dst INTO abbrev FROM pg_catalog.pg_timezone_abbrevs a WHERE a.abbrev = time_zone;
    IF FOUND THEN
        RAISE EXCEPTION 'time zone "%" is an abbreviation, not a zone', time_zone USING ERRCODE = '22023',
            DETAIL = format('PostgreSQL reads "%s" as the fixed offset UTC%s%s, all year: no daylight saving, and not '
                            'necessarily the region you mean.', time_zone, timepart._utc_offset(abbrev.utc_offset),
                            CASE WHEN abbrev.is_dst THEN ' (a summer time)' ELSE '' END),
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Asia/Kolkata'', ''America/Los_Angeles'' or ''UTC''.';
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone) THEN
        RAISE EXCEPTION 'time zone "%" is a fixed offset or an old POSIX-style name, not a region', time_zone
            USING ERRCODE = '22023',
            DETAIL = format('"%s" is UTC%s now; %s', time_zone,
                            (SELECT timepart._utc_offset(z.utc_offset) FROM pg_catalog.pg_timezone_names z WHERE z.name = time_zone),
                            CASE WHEN time_zone ~ '^Etc/GMT[+-]' THEN 'Etc/GMT names invert the sign (Etc/GMT+5 is UTC-05).'
                                 ELSE 'such names follow no region''s history.' END),
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Europe/Berlin'', or ''UTC''.';
    ELSE
        RAISE EXCEPTION 'unknown time zone "%"', time_zone USING ERRCODE = '22023',
            DETAIL = 'Period boundaries are computed in this time zone.',
            HINT = 'Use a region name from pg_timezone_names, e.g. ''Europe/Berlin'', or ''UTC''.';
    END IF;
END $$;

-- The refusal for a table whose owner may not create in its schema or tablespace.
-- Partitions, their indexes and a migration's renames are the owner's DDL there (its code
-- runs with its rights only), and PostgreSQL asks for CREATE on the schema for each; so
-- manage, add_index_template, migrate and every partition build refuse up front, before
-- anything is registered, copied or made, and name the GRANT that fixes it.
CREATE OR REPLACE FUNCTION timepart._check_owner_can_create(tbl regclass, action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    r record;
BEGIN
    SELECT c.relowner, c.relowner::regrole::text AS owner_name, n.nspname, t.spcname INTO r
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
    WHERE c.oid = tbl;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT pg_catalog.has_schema_privilege(r.relowner, r.nspname, 'CREATE') THEN
        RAISE EXCEPTION 'the owner of % may not create in schema %', tbl, r.nspname USING ERRCODE = '42501',
            DETAIL = format('To %s, timepart makes tables and indexes in schema %s as %s, which owns %s and lacks CREATE there. '
                            'Nothing was changed.', action, r.nspname, r.owner_name, tbl),
            HINT = format('A superuser or the schema''s owner runs: GRANT CREATE ON SCHEMA %I TO %s;', r.nspname, r.owner_name);
    END IF;
    IF r.spcname IS NOT NULL AND NOT pg_catalog.has_tablespace_privilege(r.relowner, r.spcname, 'CREATE') THEN
        RAISE EXCEPTION 'the owner of % may not create in tablespace %', tbl, r.spcname USING ERRCODE = '42501',
            DETAIL = format('To %s, timepart makes tables in tablespace %s (the table''s) as %s, which owns %s and lacks '
                            'CREATE there. Nothing was changed.', action, r.spcname, r.owner_name, tbl),
            HINT = format('A superuser runs: GRANT CREATE ON TABLESPACE %I TO %s;', r.spcname, r.owner_name);
    END IF;
END $$;

CREATE OR REPLACE FUNCTION timepart.manage(parent regclass, partition_interval interval DEFAULT NULL,
                                           premake integer DEFAULT NULL, retention interval DEFAULT NULL,
                                           default_partition boolean DEFAULT NULL,
                                           lock_timeout interval DEFAULT NULL,
                                           time_zone text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Adopts a table partitioned BY RANGE on a time column and creates the partitions
   it needs now. A new table gets '1 month', premake 6, no retention, a default
   partition, a 100 ms lock budget and UTC for what is not given. Calling it again
   changes only the settings given (to clear a retention, use configure). Returns what
   maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
BEGIN
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._check_owner_can_create(parent, 'manage it');
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    CALL timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
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
    err text;
    state text;
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_owner_can_create(parent, 'index its partitions');
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
        t := timepart._template_put(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    END IF;

    SELECT c.relname, n.nspname INTO pname, pschema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF timepart._template_parent_index(parent, suffix) IS NULL THEN
        -- An invalid definition fails here, before any partition is touched.
        BEGIN
            PERFORM timepart._as_owner(parent, timepart._template_sql(t, timepart._fit_name(pname, suffix), pschema, pname, true));
        EXCEPTION WHEN undefined_column OR undefined_function OR undefined_object OR syntax_error OR datatype_mismatch
                       OR wrong_object_type OR invalid_object_definition THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'index template "%" does not fit %: %', suffix, parent, err USING ERRCODE = state,
                DETAIL = format('Template: USING %s (%s)%s.', t.method, t.columns, coalesce(' WHERE ' || t.where_clause, '')),
                HINT = format('Use columns and expressions of %s (\d %s lists them); nothing was changed.', parent, parent);
        END;
    END IF;
    FOR p IN SELECT * FROM timepart._partitions(parent) LOOP
        made := made + coalesce(array_length(timepart._index_partition(parent, p.partition_oid), 1), 0);
    END LOOP;
    CALL timepart._log('add_index_template', parent, NULL, true,
        jsonb_build_object('suffix', suffix, 'columns', columns, 'method', t.method,
                           'where', where_clause, 'indexes_created', made), NULL, started);
    RETURN made;
END $$;

-- ==== src/58_moves.sql
-- Moving rows that wait in the default partition into the partition of their period.
-- Two ways, both one transaction: into the new table before it is attached (the bulk of
-- the work holds the default partition only), or, when something decodes this database
-- logically (a publication of the table, a logical slot), out to a buffer, ATTACH, and
-- back into the attached partition, so subscribers and change-data capture see a delete
-- and an insert of the table's rows, never rows vanishing into a table they do not know.

-- The refusals, with nothing moved, when moving would fire something of the user's:
-- foreign-key actions on referencing tables, triggers on the default partition (a move is
-- a DELETE and an INSERT), rules that would rewrite either.
CREATE OR REPLACE FUNCTION timepart._check_move(cfg timepart.config, default_part regclass, part regclass,
                                               range_start timestamptz, range_end timestamptz) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D') THEN
        -- The user's triggers there (cloned from the parent's, row or statement) would
        -- fire as if rows were deleted.
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and it has triggers', range_start, range_end,
            cfg.parent USING ERRCODE = '55000',
            DETAIL = format('Moving them is a DELETE and an INSERT: it would fire %s.',
                (SELECT string_agg(t.tgname::text, ', ' ORDER BY t.tgname) FROM pg_catalog.pg_trigger t
                 WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D')),
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class IN (default_part, part)) THEN
        -- A rule would turn the DELETE or the INSERT into statements of the owner's choosing.
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and it has rules', range_start, range_end,
            cfg.parent USING ERRCODE = '55000',
            DETAIL = format('Moving them is a DELETE and an INSERT, which these rules would rewrite: %s.',
                (SELECT string_agg(format('%s on %s', r.rulename, r.ev_class::regclass), ', ' ORDER BY r.rulename)
                 FROM pg_catalog.pg_rewrite r WHERE r.ev_class IN (default_part, part))),
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = cfg.parent) THEN
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and foreign keys reference the table',
            range_start, range_end, cfg.parent USING ERRCODE = '55000',
            DETAIL = 'Moving them would fire the foreign keys'' ON DELETE actions on the referencing tables.',
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
END $$;

-- Whether anything decodes this database logically and would see the table's rows move:
-- a publication that includes the table (through its root, its partitions, its schema or
-- all tables), or a logical replication slot (change-data capture needs no publication).
CREATE OR REPLACE FUNCTION timepart._decoded(tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s
                   WHERE s.slot_type = 'logical' AND s.database = pg_catalog.current_database())
        OR EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables p
                   JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
                   JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
                   WHERE c.oid = tbl OR c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl));
END;

-- The publications that publish the table partition by partition (publish_via_partition_root
-- off): a move's inserts would reach their subscribers under a new partition they lack.
CREATE OR REPLACE FUNCTION timepart._leaf_publications(tbl regclass, default_part regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(DISTINCT p.pubname::text, ', ' ORDER BY p.pubname::text)
    FROM pg_catalog.pg_publication_tables p
    JOIN pg_catalog.pg_namespace n ON n.nspname = p.schemaname
    JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename
    WHERE c.oid = default_part;
END;

-- Whether rows of [range_start, range_end) wait in the default partition: usually none, and
-- this cheap probe (as the owner: planning it runs the owner's index code) spares the rest.
CREATE OR REPLACE FUNCTION timepart._rows_waiting(cfg timepart.config, default_part regclass,
                                                 range_start timestamptz, range_end timestamptz) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RETURN timepart._read_as_owner(cfg.parent, format(
        'SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s))',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)))::text::boolean;
END $$;

-- Moves the rows of [range_start, range_end) waiting in the default partition into the
-- new (not yet attached) partition; returns how many. Refused, with nothing moved, when
-- moving would fire something of the user's: foreign-key actions on referencing tables,
-- or triggers on the default partition (a move is a DELETE and an INSERT).
CREATE OR REPLACE FUNCTION timepart._move_waiting_rows(cfg timepart.config, default_part regclass, part regclass,
                                                       range_start timestamptz, range_end timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
BEGIN
    IF NOT timepart._rows_waiting(cfg, default_part, range_start, range_end) THEN
        RETURN 0;
    END IF;
    PERFORM timepart._check_move(cfg, default_part, part, range_start, range_end);
    cols := timepart._column_list(cfg.parent);
    -- User code (constraints, index expressions) runs with the owner's rights only.
    RETURN (timepart._as_owner(cfg.parent, format(
        'WITH moved AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s RETURNING *) '
        'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
        part, cols, cols))->>'rows')::bigint;
END $$;

-- The decoded way: under EXCLUSIVE on the default partition (reads go on, and inserts
-- into the other partitions), the waiting rows are deleted into an unlogged buffer, which
-- logical decoding never sees; then, under the locks ATTACH needs, the partition is
-- attached and the rows inserted into it, and the buffer dropped: all in one room entry,
-- as the owner. Returns how many rows moved (counted under the lock, before the move).
-- Refused first when a publication sends the table partition by partition.
CREATE OR REPLACE FUNCTION timepart._move_and_attach_decoded(cfg timepart.config, default_part regclass, part regclass,
                                                             range_start timestamptz, range_end timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    lo text := timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone);
    hi text := timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone);
    leaf_pubs text := timepart._leaf_publications(cfg.parent, default_part);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = part);
    buffer name := timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = part), 'timepart_moving');
    cols text := timepart._column_list(cfg.parent);
    n bigint;
BEGIN
    IF leaf_pubs IS NOT NULL THEN
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and publication % sends it partition by partition',
            range_start, range_end, cfg.parent, leaf_pubs USING ERRCODE = '55000',
            DETAIL = format('Moving them would send their subscribers inserts into %s, which they do not have: the apply '
                            'would fail in a loop while the slot holds WAL. Nothing was moved.', part),
            HINT = format('ALTER PUBLICATION ... SET (publish_via_partition_root = true) for %s (the subscriber then needs '
                          'the table, not its partitions), or create %s on every subscriber first; then run maintain.',
                          leaf_pubs, part);
    END IF;
    PERFORM timepart._check_move(cfg, default_part, part, range_start, range_end);
    n := timepart._read_as_owner(cfg.parent, format(
        'SELECT pg_catalog.to_jsonb(count(*)) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
        default_part, cfg.key_column, lo, cfg.key_column, hi))::text::bigint;
    PERFORM timepart._as_owner(cfg.parent, format(
        'CREATE UNLOGGED TABLE %1$I.%2$I (LIKE %3$s); '
        'WITH moved AS (DELETE FROM %4$s WHERE %5$I OPERATOR(pg_catalog.>=) %6$s AND %5$I OPERATOR(pg_catalog.<) %7$s RETURNING *) '
        'INSERT INTO %1$I.%2$I SELECT * FROM moved; '
        'LOCK TABLE ONLY %3$s IN SHARE ROW EXCLUSIVE MODE; LOCK TABLE %4$s IN ACCESS EXCLUSIVE MODE; '
        'ALTER TABLE %3$s ATTACH PARTITION %8$s FOR VALUES FROM (%6$s) TO (%7$s); '
        'INSERT INTO %8$s (%9$s) OVERRIDING SYSTEM VALUE SELECT %9$s FROM %1$I.%2$I; '
        'DROP TABLE %1$I.%2$I',
        part_schema, buffer, cfg.parent, default_part, cfg.key_column, lo, hi, part, cols));
    RETURN n;
END $$;

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

-- One table's maintenance, under its runner lock (taken by _run). Never raises:
-- failures come back in "errors" and the log. The current and later periods come first,
-- then the older ones (gaps, whose rows wait in the default partition: the costly moves).
-- The jobs' first pass over a table (timepart.job_pass = 'upcoming', _each) makes only
-- the current and later ones, and commits them before any move of older rows can be
-- cancelled (a statement_timeout) or fail.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, premake integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cur timestamptz := timepart._period_of(cfg, as_of);
    upcoming_only boolean := coalesce(pg_catalog.current_setting('timepart.job_pass', true), '') = 'upcoming';
    older integer := 0;
    res jsonb;
    steps jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    err text;
BEGIN
    BEGIN
        BEGIN
            res := timepart._ensure_default(cfg);
        EXCEPTION WHEN OTHERS THEN
            -- A default partition that cannot be made must not stop the periods below.
            res := jsonb_build_object('ok', false, 'partition', cfg.parent::text || ' default', 'error', SQLERRM);
        END;
        IF res IS NOT NULL THEN
            CALL timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
                                  res, res->>'error', started);
            IF (res->>'ok')::boolean THEN created := created || to_jsonb(res->>'partition');
            ELSE errors := errors || to_jsonb(format('%s: %s', res->>'partition', res->>'error')); END IF;
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'partition', CASE WHEN p.whole THEN timepart._partition_name(cfg.parent, p.range_start, cfg.partition_interval, cfg.time_zone)
                                     ELSE timepart._piece_name(cfg.parent, p.range_start, p.range_end, cfg.time_zone) END,
                   'action', 'build', 'range_start', p.range_start, 'range_end', p.range_end, 'reason', p.reason)
                   ORDER BY p.range_end <= cur, p.range_start) FILTER (WHERE NOT upcoming_only OR p.range_end > cur), '[]'::jsonb),
               count(*) FILTER (WHERE upcoming_only AND p.range_end <= cur)
        INTO steps, older FROM timepart._plan_partitions(cfg.parent, premake, as_of) p;
        res := timepart._run_steps(cfg, 'create_partition', steps, 'missing periods');
        created := created || (res->'done');
        errors := errors || (res->'errors');
        moved := (res->>'moved_rows')::bigint;
        left_over := (res->>'left')::integer + older;  -- the older periods the upcoming pass left
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || to_jsonb(err);
    END;
    CALL timepart._log('maintain', cfg.parent, NULL, jsonb_array_length(errors) = 0,
        jsonb_build_object('created', created, 'errors', errors, 'moved_rows', moved, 'premake', premake, 'as_of', as_of,
                           'left', left_over),
        timepart._joined_errors(errors), started);
    RETURN jsonb_build_object('table', cfg.parent::text, 'created', created, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

-- The tables that hold the rows of a partition: itself, or, when it is partitioned in
-- turn (by LIST, say), its leaves at any depth (foreign ones excepted). From pg_inherits:
-- no lock.
CREATE OR REPLACE FUNCTION timepart._leaves(rel oid) RETURNS TABLE (leaf oid)
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH RECURSIVE tree(r) AS (
        SELECT rel
        UNION ALL
        SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.r
    )
    SELECT t.r FROM tree t JOIN pg_catalog.pg_class c ON c.oid = t.r WHERE c.relkind IN ('r', 'm');
END;

-- Rows inserted, updated and deleted in a table (over its leaves, if partitioned) since
-- statistics began, this transaction's own changes included. Any change makes a stored
-- count stale.
CREATE OR REPLACE FUNCTION timepart._changes(rel oid) RETURNS bigint
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT coalesce(sum(pg_catalog.pg_stat_get_tuples_inserted(l.leaf) + pg_catalog.pg_stat_get_tuples_updated(l.leaf)
         + pg_catalog.pg_stat_get_tuples_deleted(l.leaf) + pg_catalog.pg_stat_get_xact_tuples_inserted(l.leaf)
         + pg_catalog.pg_stat_get_xact_tuples_updated(l.leaf) + pg_catalog.pg_stat_get_xact_tuples_deleted(l.leaf)), 0)::bigint
    FROM timepart._leaves(rel) l;
END;

-- A partition's sizes and live-row estimate over its leaves when it is partitioned in
-- turn (a partitioned table has no storage of its own). heap: the tables alone; total:
-- with indexes and TOAST (both measured, so they open the leaves).
CREATE OR REPLACE FUNCTION timepart._tree_figures(rel oid)
RETURNS TABLE (heap_bytes bigint, total_bytes bigint, estimated_bytes bigint, live_rows bigint) LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT sum(pg_catalog.pg_relation_size(l.leaf))::bigint, sum(pg_catalog.pg_total_relation_size(l.leaf))::bigint,
           sum((SELECT e.bytes FROM timepart._estimated_bytes(l.leaf) e))::bigint,
           sum(greatest(pg_catalog.pg_stat_get_live_tuples(l.leaf),
                        (SELECT greatest(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c WHERE c.oid = l.leaf)))::bigint
    FROM timepart._leaves(rel) l;
END;

-- Exact rows, oldest and newest of one partition (a scan: only for small ones). The
-- oldest and newest of a timestamp or date key are moments in the table's time zone, as
-- its bounds are, whatever the session's.
-- Read with the owner's rights: planning the scan runs the owner's index code. No row
-- when the count could not be had (the partition is locked beyond the budget, or the
-- owner's code failed): the caller falls back on estimates, and one table's owner cannot
-- make everyone's statistics fail.
CREATE OR REPLACE FUNCTION timepart._exact_figures(rel oid, key_column name, key_type regtype, time_zone text)
RETURNS TABLE (record_count bigint, oldest timestamptz, newest timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
    moment text := CASE WHEN key_type = 'timestamptz'::regtype THEN '%s(%I)'
                        ELSE format('pg_catalog.timezone(%L, %%s(%%I)::pg_catalog.timestamp)', time_zone) END;
BEGIN
    BEGIN
        r := timepart._read_as_owner(rel::regclass, format(
            'SELECT pg_catalog.jsonb_build_array(count(*), ' || moment || ', ' || moment || ') FROM %s',
            'min', key_column, 'max', key_column, rel::regclass));
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timepart: % was not counted: %', rel::regclass, SQLERRM;
        RETURN;
    END;
    RETURN QUERY SELECT (r->>0)::bigint, (r->>1)::timestamptz, (r->>2)::timestamptz;
END $$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that could not read every row's key itself (no SELECT on it, or row security hides rows
   from it), unless monitor_sees_values. exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
DECLARE
    who name := timepart._caller();  -- once: it reads the call stack
    statistic boolean := pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT');
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    -- First whether the database has any foreign table at all (pg_foreign_table is small).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_table) THEN
        IF EXISTS (SELECT 1 FROM timepart._managed(partition_stats.parent) c JOIN pg_catalog.pg_inherits i ON i.inhparent = c.parent
                   JOIN pg_catalog.pg_class r ON r.oid = i.inhrelid WHERE r.relkind = 'f') THEN
            RAISE NOTICE 'timepart: partition_stats skips foreign-table partitions';
        END IF;
    END IF;
    RETURN QUERY
    -- Exact key values are data: shown to roles that may read the table, or when its
    -- owner allows. Decided once per table (materialized, so not once per partition).
    WITH tables AS MATERIALIZED (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type,
               c.monitor_sees_values OR timepart._reads_every_row(who, c.parent, c.key_column) AS reveal
        FROM timepart._managed(partition_stats.parent) c
    ), parts AS (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type, c.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM tables c
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE (partition_stats.parent IS NULL OR c.parent = partition_stats.parent)
          -- Foreign-table partitions: counting them would read remote data (said below).
          AND p.relkind <> 'f'
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        -- A live partition never written (the future ones: empty heap, no changes), logged,
        -- with only B-tree indexes is sized from the catalog, to the byte: its indexes are
        -- as their build left them, and opening them all costs a session's first call more
        -- than the rest of the statistics. Written-to ones may have free space maps,
        -- unlogged ones init forks, other index types maps of their own: those are measured.
        -- (Scalar subqueries: looked up only for those, never over all of pg_index.)
        SELECT p.*, CASE WHEN p.relkind = 'p' THEN CASE WHEN p.live THEN p.tree_total END
                         WHEN p.live AND p.heap_bytes = 0 AND p.changes = 0
                              AND (SELECT c.relpersistence = 'p' FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid)
                              AND (SELECT bool_and(ic.relam = 403)  -- 403: btree's fixed oid
                                   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                                   WHERE i.indrelid = p.partition_oid) IS NOT FALSE
                         THEN (SELECT e.bytes FROM timepart._estimated_bytes(p.partition_oid, 0) e)
                         WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM (SELECT p.*, CASE WHEN NOT p.live THEN NULL WHEN p.relkind = 'p' THEN t.heap_bytes
                               ELSE pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes,
                     t.total_bytes AS tree_total, t.estimated_bytes AS tree_estimate, t.live_rows AS tree_rows
              FROM parts p
              -- A partition partitioned in turn: its figures are its leaves'.
              LEFT JOIN LATERAL (SELECT f.* FROM timepart._tree_figures(p.partition_oid) f WHERE p.relkind = 'p') t ON true
              OFFSET 0) p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        -- The condition inside the subquery makes it a one-time filter: only small live
        -- partitions are scanned.
        -- An empty heap holds no rows: exact without a scan.
        LEFT JOIN LATERAL (SELECT 0::bigint AS record_count, NULL::timestamptz AS oldest, NULL::timestamptz AS newest
                           WHERE p.live AND p.heap_bytes = 0
                           UNION ALL
                           SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column, p.key_type, p.time_zone) f
                           WHERE p.live AND p.heap_bytes > 0 AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._bounds_label(j.range_start, j.range_end, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                WHEN j.relkind = 'p' THEN coalesce(j.tree_rows, 0)
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       WHEN j.relkind = 'p' THEN coalesce(j.tree_estimate, 0)
                       ELSE (SELECT e.bytes FROM timepart._estimated_bytes(j.partition_oid) e) END) / 1048576.0, 2),
           -- Else oldest and newest from the ANALYZE histogram of the key: approximate, no
           -- scan, and looked up only for the partitions that need it.
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(h.e[1], j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(h.e[2], j.key_type, j.time_zone) END,
           coalesce(ix.n, 0)::int,
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    -- The histogram only where it is shown (OFFSET 0: looked up once per row, not per use).
    LEFT JOIN LATERAL (SELECT CASE WHEN NOT j.reveal OR j.sealed OR j.x_rows IS NOT NULL THEN NULL
                                   WHEN statistic THEN (SELECT e.ends FROM timepart._statistic_ends(j.partition_oid, j.key_column) e)
                                   ELSE (SELECT e.ends FROM timepart._histogram_ends(j.schema_name, j.partition_name, j.key_column) e)
                              END AS e
                       OFFSET 0) h ON true
    -- Index counts from the index on pg_index.indrelid, partition by partition: the cost
    -- grows with the table's partitions, not with every index of the database.
    LEFT JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid) ix ON true
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
    PERFORM timepart._check_moment(as_of);
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart._managed() c
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x
             WHERE x.relkind <> 'f' LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            -- A partition someone holds locked (or whose owner's code fails) is skipped: its
            -- last figures stay, nothing waits.
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
            FROM timepart._exact_figures(p.partition_oid, p.key_column, cfg.key_type, cfg.time_zone) f;
            IF NOT FOUND THEN
                skipped := skipped || p.partition_name::text;
                CONTINUE;
            END IF;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, CASE WHEN p.relkind = 'p' THEN (SELECT f.total_bytes FROM timepart._tree_figures(p.partition_oid) f)
                           ELSE pg_catalog.pg_total_relation_size(p.partition_oid) END, oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    CALL timepart._log('snapshot_stats', NULL, NULL, cardinality(skipped) = 0,
                          jsonb_build_object('partitions', stored, 'counted', counted, 'skipped', to_jsonb(skipped)),
                          CASE WHEN cardinality(skipped) > 0 THEN 'partitions not counted (locked, or their owner''s code failed): '
                                                                 || array_to_string(skipped, ', ') END,
                          started);
    RETURN stored;
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
    time_zone text := cfg.time_zone;
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE time_zone);
    old_before timestamptz := ((as_of AT TIME ZONE time_zone) - cfg.alert_old_age) AT TIME ZONE time_zone;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            -- An empty heap holds no rows: no count (nor the owner's executor) needed. A
            -- default partition that is itself partitioned has no heap: always counted.
            IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = default_part) <> 'r'
               OR pg_catalog.pg_relation_size(default_part) > 0 THEN
                default_rows := timepart._read_as_owner(tbl, format(
                    'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part))::text::bigint;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            default_rows := 0;  -- locked, or the owner's code failed: counted again at the next check
        END;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT * FROM timepart.partition_stats(tbl) WHERE stats IS NULL
        UNION ALL
        SELECT * FROM jsonb_populate_recordset(NULL::timepart.partition_stats_row, stats) WHERE stats IS NOT NULL),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE time_zone
                                              AND s.range_start < month_start AT TIME ZONE time_zone) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE time_zone
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE time_zone) AS month_before
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
           format('no partition of %s covers the current period starting %s', tbl, timepart._period_of(cfg, as_of)),  -- only then
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
    SELECT 'maintenance_failing', 'warning', tbl::text, '',
           format('the last maintain run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the failed step and fix its cause (a table in the way of a partition name: '
           'a partition detached by hand?); the alert resolves with the next successful run', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'maintain' AND NOT m.details ? 'skipped'
          ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    -- Retention that fails (a foreign key references an old partition, say) or does not run.
    SELECT 'retention_failing', 'critical', tbl::text, '',
           format('the last cleanup run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the partition that could not be removed and fix its cause (a foreign '
           'key referencing it?); the alert resolves with the next successful cleanup', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'cleanup' AND NOT m.details ? 'skipped'
          ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    SELECT 'retention_overdue', 'warning', tbl::text, '',
           format('%s partition(s) of %s are past its retention of %s by more than a month and a partition (the oldest ends %s)',
                  o.n, tbl, cfg.retention, o.oldest_end),
           'Run timepart.cleanup(); schedule it with timepart.schedule_jobs(); if it fails, see the retention_failing alert',
           o.n, 0
    FROM (SELECT count(*) AS n, min(p.range_end) AS oldest_end FROM timepart._partitions(tbl, time_zone) p
          WHERE NOT p.is_default AND cfg.retention IS NOT NULL
            -- The cleanup job runs monthly by default: overdue past a month and a partition.
            AND p.range_end <= ((as_of AT TIME ZONE time_zone) - cfg.retention - cfg.partition_interval - interval '31 days')
                               AT TIME ZONE time_zone) o
    WHERE o.n > 0
    UNION ALL
    -- Runs that found the table held by another: fine once (two runs met), not for an hour.
    SELECT 'maintenance_skipped', 'warning', tbl::text, '',
           format('maintain and cleanup of %s have been skipped since %s: another run holds the table (%s runs skipped)',
                  tbl, k.since, k.n),
           'A maintain, cleanup or create_partition left in an open transaction holds its table until that transaction '
           'ends: find it in pg_stat_activity (state idle in transaction) and end it', k.n, 1
    FROM (SELECT count(*) AS n, min(m.created_at) AS since FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type IN ('maintain', 'cleanup') AND m.details ? 'skipped'
            AND m.id > coalesce((SELECT max(d.id) FROM timepart.maintenance_log d WHERE d.parent_table = tbl::text
                                 AND d.operation_type IN ('maintain', 'cleanup') AND NOT d.details ? 'skipped'), 0)) k
    WHERE k.n > 0 AND k.since < as_of - interval '1 hour'
    UNION ALL
    SELECT 'partition_drift', 'warning', tbl::text, d.partition_name,
           format('%s differs from %s: %s', d.partition_name, tbl, d.properties),
           format('See SELECT * FROM timepart.sync_partitions(%L, dry_run => true); run it without dry_run to apply', tbl::text),
           d.n, 0
    FROM (SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = x.partition_oid) AS partition_name,
                 string_agg(DISTINCT x.property, ', ') AS properties,
                 count(*)::numeric AS n
          FROM timepart._partition_drift(tbl) x GROUP BY x.partition_oid) d
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
    who name := timepart._caller();   -- runs as timepart's owner: the caller's rights are checked here
BEGIN
    PERFORM timepart._check_moment(as_of);
    IF NOT pg_catalog.pg_is_in_recovery() THEN
        PERFORM timepart._forget_orphans();
    END IF;
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
        PERFORM timepart._check_may_maintain(who, check_alerts.parent, 'check its alerts');
    END IF;
    -- A partition_admin evaluates other owners' tables as of now only: another moment
    -- would open or resolve their alerts on a state that is not theirs.
    IF as_of <> now() AND EXISTS (SELECT 1 FROM timepart._managed(check_alerts.parent) c
                                  WHERE NOT coalesce(timepart._may_act(who, c.parent), false)) THEN
        RAISE EXCEPTION 'only a table''s owner may check its alerts as of another moment' USING ERRCODE = '42501',
            DETAIL = format('as_of is %s, now is %s; %s does not own every table checked.', as_of, now(), who),
            HINT = 'Leave as_of out, or name a table you own.';
    END IF;
    -- Only the tables the caller may maintain (its own; every managed one for a
    -- partition_admin): a table owner outside partition_admin touches no one else's alerts.
    FOR cfg IN SELECT c.* FROM timepart._managed(check_alerts.parent) c
               WHERE timepart._may_maintain(who, c.parent) LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL AND NOT EXISTS (SELECT 1 FROM timepart.jobs j JOIN pg_catalog.pg_roles r ON r.rolname = j.scheduled_by
                                                   WHERE NOT pg_catalog.pg_has_role(who, r.oid, 'USAGE')) THEN
        checked := checked || '(scheduler)'::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate_jobs(as_of) e), '[]'::jsonb);
    END IF;

    -- A hot standby is read-only: the rules are evaluated as on the primary and the open
    -- alerts returned, with the lifecycle the primary recorded (first_seen); nothing is
    -- written, announced or logged there.
    IF pg_catalog.pg_is_in_recovery() THEN
        RETURN QUERY
        SELECT e.alert_type, e.severity, e.parent_table, e.partition_name, e.message, e.recommendation, e.value, e.threshold,
               coalesce(x.first_seen, now_ts), now_ts, x.id IS NULL
        FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                message text, recommendation text, value numeric, threshold numeric)
        LEFT JOIN timepart.alerts x ON x.resolved_at IS NULL AND x.alert_type = e.alert_type
              AND x.parent_table = e.parent_table AND x.partition_name = coalesce(e.partition_name, '')
        ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, 11, 9;
        RETURN;
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
    CALL timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;

-- ==== src/82_metrics.sql
-- Watching timepart where DBAs already look: samples shaped for Prometheus (name, labels,
-- value) for postgres_exporter, sql_exporter or any collector (monitoring/), the growth
-- history behind the HTML report, and the bounded maintenance log.

CREATE OR REPLACE FUNCTION timepart.metrics(as_of timestamptz DEFAULT now())
RETURNS TABLE (name text, labels jsonb, value double precision)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per Prometheus sample: partition rows and sizes (labelled table, partition,
   period, exact), future partitions, rows waiting in the default partition, a health
   status per table (0 healthy, 1 warning, 2 critical, 3 error), open alerts by table, type
   and severity, the last successful maintenance and the count of failed ones, and each
   scheduled job's last success. Reads what partition_stats reads; writes nothing. */
DECLARE
    jobs jsonb := '[]'::jsonb;
BEGIN
    PERFORM timepart._check_moment(as_of);
    BEGIN
        SELECT coalesce(jsonb_agg(to_jsonb(j)), '[]'::jsonb) INTO jobs FROM timepart.job_status() j;
    EXCEPTION WHEN OTHERS THEN
        jobs := '[]'::jsonb;  -- pg_cron out of reach: no job samples (the job alerts say why)
    END;
    RETURN QUERY
    WITH s AS MATERIALIZED (SELECT * FROM timepart.partition_stats()),
    log AS (
        SELECT l.parent_table, max(l.created_at) FILTER (WHERE l.success AND l.operation_type = 'maintain') AS last_ok,
               count(*) FILTER (WHERE NOT l.success AND l.operation_type = 'maintain') AS failures,
               max(l.created_at) FILTER (WHERE l.success AND l.operation_type = 'cleanup') AS cleanup_last_ok,
               count(*) FILTER (WHERE NOT l.success AND l.operation_type = 'cleanup' AND NOT l.details ? 'skipped') AS cleanup_failures,
               (array_agg(l.success ORDER BY l.id DESC) FILTER (WHERE l.operation_type = 'maintain'))[1] AS last_run_ok,
               (array_agg(l.success ORDER BY l.id DESC)
                    FILTER (WHERE l.operation_type = 'cleanup' AND NOT l.details ? 'skipped'))[1] AS last_cleanup_ok
        FROM timepart.maintenance_log l WHERE l.operation_type IN ('maintain', 'cleanup') GROUP BY l.parent_table
    ),
    tables AS (
        SELECT c.parent::text AS tbl, c.alert_min_future,
               count(s.partition_name) FILTER (WHERE NOT s.is_default AND s.range_start > as_of) AS future,
               coalesce(sum(s.record_count) FILTER (WHERE s.is_default), 0) AS default_rows,
               coalesce(bool_or(NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of), false) AS has_current
        FROM timepart._managed() c LEFT JOIN s ON s.parent_table = c.parent::text
        GROUP BY c.parent, c.alert_min_future
    )
    SELECT 'timepart_partition_rows', jsonb_build_object('table', s.parent_table, 'partition', s.partition_name,
               'period', s.period, 'exact', s.exact::text), s.record_count::float8
    FROM s
    UNION ALL
    SELECT 'timepart_partition_size_bytes', jsonb_build_object('table', s.parent_table, 'partition', s.partition_name,
               'period', s.period, 'exact', s.exact::text), round(s.size_mb * 1048576)::float8
    FROM s
    UNION ALL
    SELECT 'timepart_future_partitions', jsonb_build_object('table', t.tbl), t.future::float8 FROM tables t
    UNION ALL
    SELECT 'timepart_default_partition_rows', jsonb_build_object('table', t.tbl), t.default_rows::float8 FROM tables t
    UNION ALL
    SELECT 'timepart_health_status', jsonb_build_object('table', t.tbl),
           CASE WHEN NOT t.has_current THEN 2
                WHEN t.future < t.alert_min_future OR t.default_rows > 0 OR NOT coalesce(g.last_run_ok, true)
                     OR NOT coalesce(g.last_cleanup_ok, true) THEN 1
                ELSE 0 END::float8
    FROM tables t LEFT JOIN log g ON g.parent_table = t.tbl
    UNION ALL
    SELECT 'timepart_open_alerts', jsonb_build_object('table', a.parent_table, 'type', a.alert_type, 'severity', a.severity),
           count(*)::float8
    FROM timepart.alerts a WHERE a.resolved_at IS NULL GROUP BY a.parent_table, a.alert_type, a.severity
    UNION ALL
    SELECT 'timepart_last_maintenance_success_timestamp_seconds', jsonb_build_object('table', t.tbl),
           extract(epoch FROM g.last_ok)::float8
    FROM tables t JOIN log g ON g.parent_table = t.tbl WHERE g.last_ok IS NOT NULL
    UNION ALL
    SELECT 'timepart_maintenance_failures_total', jsonb_build_object('table', t.tbl), coalesce(g.failures, 0)::float8
    FROM tables t LEFT JOIN log g ON g.parent_table = t.tbl
    UNION ALL
    SELECT 'timepart_last_retention_success_timestamp_seconds', jsonb_build_object('table', t.tbl),
           extract(epoch FROM g.cleanup_last_ok)::float8
    FROM tables t JOIN log g ON g.parent_table = t.tbl WHERE g.cleanup_last_ok IS NOT NULL
    UNION ALL
    SELECT 'timepart_retention_failures_total', jsonb_build_object('table', t.tbl), coalesce(g.cleanup_failures, 0)::float8
    FROM tables t LEFT JOIN log g ON g.parent_table = t.tbl
    UNION ALL
    SELECT 'timepart_job_last_success_timestamp_seconds', jsonb_build_object('job', j->>'jobname'),
           extract(epoch FROM (j->>'last_success')::timestamptz)::float8
    FROM jsonb_array_elements(jobs) j WHERE j->>'last_success' IS NOT NULL;
END $$;

-- ==== src/85_each.sql
-- The pg_cron jobs' procedures (maintain_each, cleanup_each): what 85_schedule.sql schedules.

-- The jobs' entry points: one table at a time with a COMMIT after each, so the locks
-- one table's maintenance takes are never held while another's waits. Procedures that
-- COMMIT carry no SET clause: they pin search_path to pg_catalog, pg_temp at the start of
-- every transaction, and name every type of their variables by schema (PL/pgSQL reads
-- those when it first compiles the body, on the caller's path).
-- The bodies use no operator and name every function and type with its schema: they
-- run on the caller's search_path, where anyone with CREATE could plant an operator.
-- One job over every table it may maintain: each call of maintain or cleanup that held a
-- table for its lock budget says what is left, so commit (traffic goes on) and call
-- again, a bounded number of times. maintain makes each table's current and later
-- periods first, in a pass of their own that commits, so nothing later (a move of old
-- rows) can cost them. One table's failure does not stop the others, and a cancel by
-- statement_timeout is caught and logged (the timer fires once per statement: the rest of
-- the job runs untimed); a person's cancel ends the job. The run is logged as it starts
-- (committed: a run that dies leaves that row alone, and the run_interrupted alert says
-- so) and as it ends; when any table failed, the job then ends with an error, so pg_cron
-- records it as failed.
CREATE OR REPLACE PROCEDURE timepart._each(operation pg_catalog.text, premake pg_catalog.int4)
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
    left_over pg_catalog.int4;
    res pg_catalog.jsonb;
    failed pg_catalog.text[] := '{}'::pg_catalog.text[];
    table_failed pg_catalog.text;
    run pg_catalog.jsonb := pg_catalog.jsonb_build_object('run', pg_catalog.md5(pg_catalog.concat(pg_catalog.clock_timestamp(),
                                pg_catalog.pg_backend_pid())), 'pid', pg_catalog.pg_backend_pid());
    started pg_catalog.timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    CALL timepart._log(operation OPERATOR(pg_catalog.||) '_job', NULL, NULL, true,
                       run OPERATOR(pg_catalog.||) '{"state": "started"}', NULL, started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        table_failed := NULL;  -- the table's last failure: what its last pass left
        FOR i IN 0..10000 LOOP
            CONTINUE WHEN i OPERATOR(pg_catalog.=) 0 AND operation OPERATOR(pg_catalog.<>) 'maintain';
            -- What a failed pass leaves: after the upcoming pass, the rest; else nothing.
            left_over := CASE WHEN i OPERATOR(pg_catalog.=) 0 THEN 1 ELSE 0 END;
            BEGIN
                IF i OPERATOR(pg_catalog.=) 0 THEN  -- the current and later periods, committed first
                    PERFORM pg_catalog.set_config('timepart.job_pass', 'upcoming', true);
                END IF;
                res := CASE WHEN operation OPERATOR(pg_catalog.=) 'maintain' THEN timepart.maintain(t, premake)
                            ELSE timepart.cleanup(t) END;
                PERFORM pg_catalog.set_config('timepart.job_pass', '', true);
                IF NOT (res OPERATOR(pg_catalog.->>) 'success')::pg_catalog.bool THEN
                    table_failed := pg_catalog.format('%s: %s', t, timepart._joined_errors(res OPERATOR(pg_catalog.->) 'errors'));
                ELSE
                    table_failed := NULL;
                    left_over := (res OPERATOR(pg_catalog.->>) 'left_partitions')::pg_catalog.int4;
                END IF;
            EXCEPTION
                WHEN query_canceled THEN
                    -- The timer's cancel, told by the time it came (in any language): a
                    -- person's cancel ends the job.
                    IF pg_catalog.current_setting('statement_timeout') OPERATOR(pg_catalog.=) '0'
                       OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.statement_timestamp()
                          OPERATOR(pg_catalog.<) pg_catalog.current_setting('statement_timeout')::pg_catalog.interval THEN
                        RAISE;
                    END IF;
                    table_failed := pg_catalog.format('%s: %s', t, SQLERRM);
                    CALL timepart._log(operation, t, NULL, false, run OPERATOR(pg_catalog.||) '{"cancelled": "statement_timeout"}',
                                       pg_catalog.format('%s of %s was cancelled by statement_timeout (%s); the next run goes on '
                                           'from here. A single move longer than that never ends: give the job''s role '
                                           'its own (ALTER ROLE ... SET statement_timeout = 0), or run maintain by hand',
                                           operation, t, pg_catalog.current_setting('statement_timeout')), started);
                WHEN OTHERS THEN
                    RAISE WARNING 'timepart: % of % failed: %', operation, t, SQLERRM;
                    table_failed := pg_catalog.format('%s: %s', t, SQLERRM);
                    CALL timepart._log(operation, t, NULL, false, run, SQLERRM, started);
            END;
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            -- Done when nothing is left: after the upcoming pass, no older period waits.
            EXIT WHEN left_over OPERATOR(pg_catalog.=) 0;
        END LOOP;
        IF table_failed IS NOT NULL THEN
            failed := failed OPERATOR(pg_catalog.||) table_failed;
        END IF;
    END LOOP;
    CALL timepart._log(operation OPERATOR(pg_catalog.||) '_job', NULL, NULL, pg_catalog.cardinality(failed) OPERATOR(pg_catalog.=) 0,
                       run OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('state', 'finished', 'failed', pg_catalog.to_jsonb(failed)),
                       CASE WHEN pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN pg_catalog.array_to_string(failed, '; ') END,
                       started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'timepart: % failed for % table(s)', operation, pg_catalog.cardinality(failed)
            USING ERRCODE = 'P0001', DETAIL = pg_catalog.array_to_string(failed, '; '),
                  HINT = 'The other tables were done and committed. See SELECT * FROM timepart.get_maintenance_log(); '
                         'for each failure, fix its cause, and run the job again.';
    END IF;
END $$;

-- Alerts about the scheduled jobs: missing, last run failed, or overdue. Only for jobs
-- schedule_jobs() set up; if pg_cron cannot be reached, that is the alert.
CREATE OR REPLACE FUNCTION timepart._evaluate_jobs(as_of timestamptz)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    err text;
BEGIN
    -- A job's run that started and never ended (killed, a person's cancel, the server
    -- stopped), whoever ran it (pg_cron or CALL by hand): its "started" row is the newest
    -- of its kind and its backend is gone. The next run that ends resolves it.
    RETURN QUERY
    SELECT 'run_interrupted', 'warning', '(scheduler)', l.operation_type,
           format('the %s run started at %s (pid %s) never finished: it was killed, cancelled, or the server stopped',
                  pg_catalog.replace(l.operation_type, '_job', ''), l.created_at, l.details->>'pid'),
           'See timepart.get_maintenance_log() for how far it got and the server log for why it stopped, then run it '
           'again (CALL timepart.maintain_each(); or CALL timepart.cleanup_each();)', NULL::numeric, NULL::numeric
    FROM (SELECT DISTINCT ON (m.operation_type) m.* FROM timepart.maintenance_log m
          WHERE m.operation_type IN ('maintain_job', 'cleanup_job') ORDER BY m.operation_type, m.id DESC) l
    WHERE l.details->>'state' = 'started'
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_activity a
                      WHERE a.pid = (l.details->>'pid')::integer AND a.backend_start <= l.created_at);
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

-- Moves the copy and its partitions into the source's schema, hands the source's
-- sequences over (serial: ownership; identity: the last value), drops the stage schema.
CREATE OR REPLACE FUNCTION timepart._migrate_place_target(m timepart.migrations, schema_name name) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT a.attname, a.attidentity, pg_catalog.pg_get_serial_sequence(m.source::text, a.attname) AS old_seq,
                    pg_catalog.pg_get_serial_sequence(m.target::text, a.attname) AS new_seq
             FROM pg_catalog.pg_attribute a WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped LOOP
        IF r.old_seq IS NOT NULL AND r.new_seq IS NOT NULL THEN
            PERFORM timepart._as_owner(m.source, format('SELECT pg_catalog.setval(%L, s.last_value, s.is_called) FROM %s s', r.new_seq, r.old_seq));
        END IF;
    END LOOP;
    FOR r IN SELECT t.relid::regclass AS rel FROM pg_catalog.pg_partition_tree(m.target) t ORDER BY t.level LOOP
        -- The owner may create there: migrate checked it before the copy (_check_owner_can_create).
        PERFORM timepart._as_owner(m.source, format('ALTER TABLE %s SET SCHEMA %I', r.rel, schema_name));
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

-- ==== src/89_migrate_run.sql
-- Migration, 5 of 5: the entry points: starting or resuming a run, its progress, CALL
-- timepart.migrate and migrate_abort.

-- A run's start: the migration under way for this table (same key and interval), or,
-- after every check, a new one prepared. NULL when the table was already migrated.
-- Takes the per-table session lock that keeps a second runner out.
CREATE OR REPLACE FUNCTION timepart._migrate_begin(source regclass, key_column name, partition_interval interval, batch_size integer,
                                                   premake integer, retention interval, time_zone text)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    m timepart.migrations;
    key_type regtype;
    f record;
    attempt int := 0;
    resuming boolean;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = _migrate_begin.source AND g.state IN ('copying', 'catching_up');
    resuming := FOUND;
    IF NOT resuming AND EXISTS (SELECT 1 FROM timepart.migrations g WHERE g.target = _migrate_begin.source AND g.state = 'done') THEN
        RAISE NOTICE 'timepart.migrate: % is already migrated', source;
        RETURN NULL;
    END IF;
    -- Before any row is copied (or more of them, on a resume): the swap renames as the owner.
    PERFORM timepart._check_owner_can_create(source, 'migrate it');
    IF resuming AND (m.key_column <> key_column OR m.partition_interval <> partition_interval) THEN
        RAISE EXCEPTION 'a migration of % by % every % is under way', source, m.key_column, m.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s every %s.', key_column, partition_interval),
            HINT = format('Resume it with the same key and interval, or stop it with SELECT timepart.migrate_abort(%L).', source::text);
    ELSIF NOT resuming THEN
        key_type := timepart._migrate_check(source, key_column, partition_interval, time_zone);
        PERFORM timepart._check_premake(premake);
        PERFORM timepart._check_retention(retention);
        SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, time_zone);
        PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
        PERFORM timepart._migrate_check_names(source, ARRAY[timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), 'default')::text]
            || ARRAY(SELECT timepart._partition_name(source, p.range_start, partition_interval, time_zone)::text
                     FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone, f.oldest, f.newest, 0, false) p));
    END IF;
    IF NOT timepart._runner_session_lock(source) THEN
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
                RETURN timepart._migrate_prepare(source, key_column, key_type, partition_interval, premake, retention, time_zone, batch_size,
                                                 f.row_count, f.oldest, f.newest);
            EXCEPTION WHEN lock_not_available THEN
                IF attempt >= 20 THEN RAISE; END IF;
                PERFORM pg_catalog.pg_sleep(least(2, 0.1 * attempt));
            END;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM timepart._runner_session_unlock(source);
        RAISE;
    END;
    RETURN NULL;  -- not reached: the loop returns or raises
END $$;

SELECT timepart._harden();

SET LOCAL search_path TO DEFAULT;
