-- Migration, 4 of 5: the swap: the last changes (each round verified, 88_migrate_copy),
-- the user's triggers and publications moved, and the renames, in one short transaction
-- whose length depends on the changes since the last round, not on the table's size.
-- Retried within the lock budget.

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

-- The swap, in the caller's (short) transaction: writes wait (EXCLUSIVE lock), the last
-- changes are applied and verified, then, under ACCESS EXCLUSIVE, the user's triggers
-- and publication memberships move to the copy and the names change. A lock wait longer
-- than lock_wait raises lock_not_available.
CREATE OR REPLACE FUNCTION timepart._migrate_swap(m timepart.migrations, lock_wait interval) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    schema_name name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = m.source);
    old_name text;
    last_changes bigint := 0;
    n bigint;
    done timepart.migrations;
    moved jsonb;
BEGIN
    PERFORM pg_catalog.set_config('lock_timeout', greatest(1, ceil(extract(epoch FROM lock_wait) * 1000))::bigint::text || 'ms', true);
    EXECUTE format('LOCK TABLE ONLY %s IN EXCLUSIVE MODE', m.source);
    -- Every change since the copy began went through the capture triggers: they must all
    -- still be there and enabled, never altered since, or the copy may have missed one.
    PERFORM timepart._migrate_check_capture(m);
    LOOP
        n := timepart._migrate_catch_up(m, 1000000);
        last_changes := last_changes + n;
        EXIT WHEN n = 0;
    END LOOP;
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE', m.source);
    moved := timepart._migrate_move_triggers(m) || timepart._migrate_publications(m);
    old_name := timepart._migrate_retire_source(m);
    PERFORM timepart._migrate_place_target(m, schema_name);
    -- Every step was verified: the source's figures are the copy's.
    UPDATE timepart.migrations g SET state = 'done', finished_at = pg_catalog.clock_timestamp(), updated_at = pg_catalog.clock_timestamp(),
        source_rows = g.target_rows, source_checksum = g.target_checksum
    WHERE g.id = m.id RETURNING * INTO done;
    RETURN jsonb_build_object('old_table', old_name, 'table', m.target::text, 'rows', done.target_rows,
        'checksum', done.target_checksum, 'last_changes', last_changes, 'carried', moved,
        'swap_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1));
END $$;

-- The swap, retried: each attempt is one short transaction; between attempts the
-- backlog is applied so the next one has little to do. A mismatch or any other
-- error ends the run (logged first, so the log row survives), the state stays.
CREATE OR REPLACE PROCEDURE timepart._migrate_swap_retrying(m timepart.migrations, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    started pg_catalog.timestamptz;
    lock_wait pg_catalog.interval;
    result pg_catalog.jsonb;
    attempt pg_catalog.int4 := 0;
    err pg_catalog.text;
    state pg_catalog.text;
    detail pg_catalog.text;
    hint pg_catalog.text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    lock_wait := (SELECT c.lock_timeout FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) m.target);
    LOOP
        attempt := attempt OPERATOR(pg_catalog.+) 1;
        started := pg_catalog.clock_timestamp();
        BEGIN
            result := timepart._migrate_swap(m, lock_wait);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        END;
        IF result IS NOT NULL THEN
            -- The checksum is a sum of row hashes: the log, which monitors read, does not keep it.
            CALL timepart._log('migrate_swap', m.target, m.target::pg_catalog.text, true,
                                  (result OPERATOR(pg_catalog.-) 'checksum') OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('attempts', attempt),
                                  NULL, started);
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            RAISE NOTICE 'timepart.migrate: % is partitioned now (% rows, checksum %, swap took % ms); the old table is %',
                m.target, result->>'rows', result->>'checksum', result->>'swap_ms', result->>'old_table';
            RETURN;
        END IF;
        CALL timepart._log('migrate_swap', m.source, m.target::pg_catalog.text, false, pg_catalog.jsonb_build_object('attempt', attempt, 'sqlstate', state), err, started);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF state OPERATOR(pg_catalog.<>) '55P03' OR attempt OPERATOR(pg_catalog.>=) 20 THEN
            PERFORM timepart._runner_session_unlock(m.source);
            RAISE EXCEPTION '%', err USING ERRCODE = state, DETAIL = detail,
                HINT = CASE WHEN state OPERATOR(pg_catalog.=) '55P03' THEN pg_catalog.format('Gave up after %s lock waits of %s. CALL timepart.migrate again when traffic allows; the copy is kept.', attempt, lock_wait) ELSE hint END;
        END IF;
        RAISE NOTICE 'timepart.migrate: swap attempt % waited too long for a lock; retrying', attempt;
        PERFORM pg_catalog.pg_sleep(least(2, 0.1 OPERATOR(pg_catalog.*) attempt));
        PERFORM timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
END $$;
