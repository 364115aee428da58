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

-- One progress notice per batch, for people; its DETAIL is the same as JSON, for
-- programs (the CLI's progress bar reads it; the numbers are timepart.migrations').
CREATE OR REPLACE FUNCTION timepart._migrate_progress(m timepart.migrations, run_started timestamptz, rows_at_start bigint)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    rate numeric := (m.rows_copied - rows_at_start)
                    / greatest(extract(epoch FROM pg_catalog.clock_timestamp() - run_started), 0.001);
BEGIN
    RAISE NOTICE 'timepart.migrate: % of ~% rows copied (block % of %, % rows/s)',
        m.rows_copied, greatest(m.rows_estimated, m.rows_copied), m.next_block, m.last_block, round(rate)
        USING DETAIL = jsonb_build_object('migration', m.id, 'rows_copied', m.rows_copied,
                                          'rows_estimated', greatest(m.rows_estimated, m.rows_copied),
                                          'next_block', m.next_block, 'last_block', m.last_block,
                                          'rows_per_second', round(rate))::text;
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
    run_started pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    rows_at_start pg_catalog.int8;
    n pg_catalog.int8;
    logged pg_catalog.jsonb;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(batch_size::text, 'NULL')), HINT = 'Copy e.g. 50000 rows per transaction.';
    END IF;
    m := timepart._migrate_begin(source, key_column, partition_interval, batch_size, premake, retention, time_zone);
    IF m.id IS NULL THEN
        RETURN;
    END IF;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    rows_at_start := m.rows_copied;
    WHILE m.state OPERATOR(pg_catalog.=) 'copying' LOOP
        PERFORM timepart._migrate_batch(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        SELECT * INTO m FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id;
        PERFORM timepart._migrate_progress(m, run_started, rows_at_start);
    END LOOP;
    LOOP
        n := timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
    CALL timepart._migrate_swap_retrying(m, batch_size);
    IF m.retention IS NOT NULL THEN
        PERFORM timepart.configure(m.target, pg_catalog.jsonb_build_object('retention', m.retention));
    END IF;
    logged := (SELECT pg_catalog.to_jsonb(g) OPERATOR(pg_catalog.-) ARRAY['source', 'source_checksum', 'target_checksum']::pg_catalog.text[]
               FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id);
    CALL timepart._log('migrate', m.source, m.target::pg_catalog.text, true, logged, NULL, run_started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM timepart._runner_session_unlock(m.source);
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
    IF NOT timepart._runner_lock(source, interval '0') THEN
        RAISE EXCEPTION 'a session is migrating % right now', source USING ERRCODE = '55006',
            DETAIL = 'It holds the table''s migration lock.', HINT = 'Cancel that CALL first (pg_cancel_backend), then abort.';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
    FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g WHERE g.tgrelid = source AND g.tgname LIKE 'timepart\_migrate\_%' LOOP
        PERFORM timepart._as_owner(source, format('DROP TRIGGER %I ON %s', t.tgname, source));
    END LOOP;
    PERFORM timepart._config_drop(m.target);
    PERFORM timepart._as_owner(source, format('DROP SCHEMA %I CASCADE', m.stage_schema));
    UPDATE timepart.migrations g SET state = 'aborted', finished_at = pg_catalog.clock_timestamp() WHERE g.id = m.id;
    CALL timepart._log('migrate_abort', source, NULL, true, jsonb_build_object('rows_copied', m.rows_copied), NULL, started);
    PERFORM timepart._runner_session_unlock(source);  -- this session's own hold, after a CALL that failed
    RETURN true;
END $$;
COMMENT ON FUNCTION timepart.migrate_abort(regclass) IS 'Stops an unfinished timepart.migrate: drops the partitioned copy and the capture triggers; the source stays as it is';

-- The newest migration of a table (by its name before or after the swap), for the
-- table's owner: the checksums are sums of row hashes, so they are shown only to a
-- role that may read the table's rows anyway (monitors read timepart.migrations without
-- them).
CREATE OR REPLACE FUNCTION timepart.migration(tbl regclass) RETURNS SETOF timepart.migrations
LANGUAGE plpgsql STABLE AS $$
DECLARE
    who name := timepart._caller();
    m timepart.migrations;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.target = tbl OR g.source = tbl ORDER BY g.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT (coalesce(timepart._may_act(who, m.target), false) OR coalesce(timepart._may_act(who, m.source), false)) THEN
        m.source_checksum := NULL;
        m.target_checksum := NULL;
    END IF;
    RETURN NEXT m;
END $$;
COMMENT ON FUNCTION timepart.migration(regclass) IS 'The newest timepart.migrate run of a table; checksums only for its owner';
