-- Migration, 2 of 5: building the partitioned copy in its stage schema, and capturing
-- the source's changes while it is copied.

-- An index's key columns as a template column list: each column or (expression) with
-- its ordering; INCLUDE columns ride along (the template wraps the list in parentheses).
CREATE OR REPLACE FUNCTION timepart._migrate_index_columns(idx regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(CASE WHEN x.indkey[k - 1] = 0 THEN '(' || pg_catalog.pg_get_indexdef(x.indexrelid, k, true) || ')'
                           ELSE pg_catalog.pg_get_indexdef(x.indexrelid, k, true) END
                      || CASE WHEN k > x.indnkeyatts THEN ''
                              WHEN x.indoption[k - 1] & 3 = 3 THEN ' DESC'
                              WHEN x.indoption[k - 1] & 3 = 1 THEN ' DESC NULLS LAST'
                              WHEN x.indoption[k - 1] & 3 = 2 THEN ' NULLS FIRST' ELSE '' END
                      || CASE WHEN k = x.indnkeyatts AND x.indnatts > x.indnkeyatts THEN ') INCLUDE (' WHEN k < x.indnatts THEN ', ' ELSE '' END,
                      '' ORDER BY k)
    FROM pg_catalog.pg_index x, pg_catalog.generate_series(1, x.indnatts) k
    WHERE x.indexrelid = idx;
END;

-- Creates the partitioned copy in the stage schema: same columns, defaults, CHECK and
-- NOT NULL constraints, identity and generated columns, comments; NOT NULL on the key;
-- the primary key, unique constraints and outgoing foreign keys; the table's grants;
-- then what 87_migrate_carry.sql carries.
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
    FOR k IN SELECT g.privilege_type, g.grantee, g.is_grantable FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) g
             WHERE c.oid = source AND g.grantee <> c.relowner LOOP
        PERFORM timepart._as_owner(source, format('GRANT %s ON %s TO %s%s', k.privilege_type, target,
                       CASE WHEN k.grantee = 0 THEN 'PUBLIC' ELSE k.grantee::regrole::text END,
                       CASE WHEN k.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END));
    END LOOP;
    -- Column grants, row security and policies, comments, statistics targets, replica
    -- identity, and the triggers (disabled until the swap): 87_migrate_carry.sql.
    PERFORM timepart._migrate_carry(source, target);
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
    keys text[] := '{}'::text[];
    part text[];
BEGIN
    SELECT * INTO m FROM timepart.migrations x
    WHERE x.source = TG_RELID::regclass AND x.state IN ('copying', 'catching_up');
    IF NOT FOUND OR TG_TABLE_NAME <> (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = m.source)
       OR TG_NAME NOT LIKE 'timepart\_migrate\_%' THEN
        RETURN NULL;
    END IF;
    -- The keys are read here as row text (a type's output function is C, a superuser's:
    -- no user code; to_jsonb would call a user's cast to json) and turned back into rows
    -- by the owner's executor (input functions, with the owner's rights): the change log
    -- is the owner's table, in the owner's stage schema.
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('SELECT coalesce(array_agg(k::pg_catalog.text), ''{}'') FROM (SELECT %s FROM old_rows) k',
                       timepart._migrate_key_list(m.source, m.row_key)) INTO part;
        keys := keys || part;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        EXECUTE format('SELECT coalesce(array_agg(k::pg_catalog.text), ''{}'') FROM (SELECT %s FROM new_rows) k',
                       timepart._migrate_key_list(m.source, m.row_key)) INTO part;
        keys := keys || part;
    END IF;
    IF cardinality(keys) > 0 THEN
        PERFORM timepart._as_owner(m.source, format(
            'INSERT INTO %1$I.changes SELECT (x::%1$I.changes).* FROM pg_catalog.unnest(%2$L::pg_catalog.text[]) x',
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
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT array_agg(a.attname ORDER BY k.n)
    FROM pg_catalog.pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), pg_catalog.pg_attribute a
    WHERE c.conrelid = source AND c.contype = 'p' AND a.attrelid = source AND a.attnum = k.attnum;
END;

-- The change log's columns: the row key, or every copied column.
CREATE OR REPLACE FUNCTION timepart._migrate_key_list(source regclass, row_key name[]) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN row_key IS NULL THEN timepart._column_list(source)
                ELSE (SELECT string_agg(pg_catalog.quote_ident(k), ', ' ORDER BY n) FROM unnest(row_key) WITH ORDINALITY AS u(k, n)) END;
END;

-- The capture triggers as they are now: each one's row in pg_trigger (oid, enabled state,
-- and where the row is: ALTER TABLE ... DISABLE or ENABLE TRIGGER writes a new one). The
-- mark taken when they were made must hold at every batch, round and at the swap: a
-- trigger disabled and enabled again in between missed the changes made meanwhile.
CREATE OR REPLACE FUNCTION timepart._capture_mark(source regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s:%s', t.oid, t.tgenabled, t.ctid), ',' ORDER BY t.tgname)
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid OPERATOR(pg_catalog.=) source AND t.tgname OPERATOR(pg_catalog.~~) 'timepart\_migrate\_%';
END;

-- The refusal when the capture is not as it was made (or a migration begun before 0.13,
-- which has no mark: it gets one now).
CREATE OR REPLACE FUNCTION timepart._migrate_check_capture(m timepart.migrations) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_mark text := timepart._capture_mark(m.source);
BEGIN
    IF m.capture_triggers IS NULL THEN
        UPDATE timepart.migrations g SET capture_triggers = now_mark WHERE g.id = m.id;
    ELSIF now_mark IS DISTINCT FROM m.capture_triggers
          OR (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = m.source AND t.tgname LIKE 'timepart\_migrate\_%'
              AND t.tgenabled IN ('A', 'O')) <> 4 THEN
        RAISE EXCEPTION 'the change capture of % was disabled, dropped or altered during the migration', m.source USING ERRCODE = 'XX001',
            DETAIL = 'A change made while it was not capturing may be missing from the partitioned copy; nothing more is copied or swapped.',
            HINT = format('SELECT timepart.migrate_abort(%L) removes the copy; then migrate again.', m.source::text);
    END IF;
END $$;

-- Installs the change log and its triggers on the source.
CREATE OR REPLACE FUNCTION timepart._migrate_install_capture(source regclass, stage name, row_key name[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    log_table text := format('%I.changes', stage);
    keys text := timepart._migrate_key_list(source, row_key);
BEGIN
    PERFORM timepart._as_owner(source, format('CREATE TABLE %s AS SELECT %s FROM ONLY %s WITH NO DATA', log_table, keys, source));
    -- Each batch looks its rows up in the log (88_migrate_copy.sql): by the key, indexed.
    IF row_key IS NOT NULL THEN
        PERFORM timepart._as_owner(source, format('CREATE INDEX ON %s (%s)', log_table, keys));
    END IF;
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
    -- They fire under session_replication_role = replica too (a subscriber's apply, a
    -- bulk load with triggers off): a change missed is a row lost or resurrected.
    EXECUTE format('ALTER TABLE %1$s ENABLE ALWAYS TRIGGER timepart_migrate_insert, ENABLE ALWAYS TRIGGER timepart_migrate_update, '
                   'ENABLE ALWAYS TRIGGER timepart_migrate_delete, ENABLE ALWAYS TRIGGER timepart_migrate_truncate', source);
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
    EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %s', stage, owner_oid::regrole);
END $$;

-- Everything before the first batch, in the caller's transaction: the copy, its
-- registration and templates, the partitions the rows need (and maintain's current
-- and future ones), the change capture and the progress row. Retention is set only at
-- the swap, so cleanup cannot drop copied rows while the old table still holds them.
CREATE OR REPLACE FUNCTION timepart._migrate_prepare(source regclass, key_column name, key_type regtype, partition_interval interval,
                                                     premake integer, retention interval, time_zone text, batch_size integer,
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
    PERFORM timepart._register(target, partition_interval, premake, NULL, true, '100 milliseconds', time_zone);
    -- The source's storage options become the partitions' (a partitioned table has none).
    IF (SELECT c.reloptions FROM pg_catalog.pg_class c WHERE c.oid = source) IS NOT NULL THEN
        PERFORM timepart.configure(target, jsonb_build_object('partition_options',
            (SELECT jsonb_object_agg(split_part(o, '=', 1), substr(o, strpos(o, '=') + 1))
             FROM pg_catalog.pg_class c, unnest(c.reloptions) o WHERE c.oid = source)));
    END IF;
    templates := timepart._migrate_templates(source, target);
    FOR p IN SELECT * FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone, oldest, newest, 0, false) LOOP
        PERFORM timepart.create_partition(target, p.range_start, p.range_end);
    END LOOP;
    PERFORM timepart.maintain(target, premake);
    -- The trigger's lock waits for writers in flight; every write after it is captured,
    -- every row before it lies below the size measured now.
    PERFORM timepart._migrate_install_capture(source, stage, row_key);
    blocks := pg_catalog.pg_relation_size(source) / pg_catalog.current_setting('block_size')::bigint;
    INSERT INTO timepart.migrations AS g (source, source_name, target, stage_schema, key_column, partition_interval, time_zone,
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated,
                                          capture_triggers)
    VALUES (source, source::text, target, stage, key_column, partition_interval, time_zone, retention, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated, timepart._capture_mark(source))
    RETURNING * INTO m;
    CALL timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
END $$;
