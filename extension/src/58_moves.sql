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
