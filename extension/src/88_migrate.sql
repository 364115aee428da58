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
