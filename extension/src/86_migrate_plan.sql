-- Migration, 1 of 5: the progress table, the checks and the plan (migrate_plan).
-- How a migration works, end to end (and why):
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
    capture_triggers    text,
    CONSTRAINT migrations_state_known CHECK (state IN ('copying', 'catching_up', 'done', 'aborted')),
    CONSTRAINT migrations_blocks_in_range CHECK (next_block >= 0 AND next_block <= last_block AND blocks_per_batch > 0)
);
CREATE UNIQUE INDEX migrations_one_running ON timepart.migrations (source) WHERE state IN ('copying', 'catching_up');
-- pg_dump keeps the migration state (and its ids).
SELECT timepart._config_dump('timepart.migrations');
SELECT timepart._config_dump('timepart.migrations_id_seq');
COMMENT ON TABLE timepart.migrations IS 'Progress of timepart.migrate runs, committed with every batch so a run can resume';
COMMENT ON COLUMN timepart.migrations.next_block IS 'First block of the source not copied yet; committed with the batch that copied the blocks before it';
COMMENT ON COLUMN timepart.migrations.capture_triggers IS 'The capture triggers as made (timepart._capture_mark): checked at every batch, round and the swap';
COMMENT ON COLUMN timepart.migrations.row_key IS 'Columns that identify a row in the change log (the primary key); NULL: the whole row';

-- Rows per second assumed by migrate_plan's time estimate (measured by bench/migrate.py).
CREATE OR REPLACE FUNCTION timepart._migrate_rate() RETURNS numeric
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT 40000::numeric;
END;

-- The key column as a timestamptz expression (timestamp and date keys are local time in tz).
CREATE OR REPLACE FUNCTION timepart._migrate_key_expr(key_column name, key_type regtype, time_zone text) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE key_type WHEN 'timestamptz'::regtype THEN pg_catalog.format('%I', key_column)
                         WHEN 'timestamp'::regtype THEN pg_catalog.format('(%I AT TIME ZONE %L)', key_column, time_zone)
                         ELSE pg_catalog.format('(%I::pg_catalog.timestamp AT TIME ZONE %L)', key_column, time_zone) END;
END;

-- The refusals that need no scan of the rows. Returns the key's type.
CREATE OR REPLACE FUNCTION timepart._migrate_check(source regclass, key_column name, partition_interval interval, time_zone text)
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
    PERFORM timepart._check_time_column(source, key_column, key_type);
    PERFORM timepart._check_interval(partition_interval);
    PERFORM timepart._check_time_zone(time_zone);
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
    PERFORM timepart._migrate_check_carried(source);
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
CREATE OR REPLACE FUNCTION timepart._migrate_facts(source regclass, key_column name, key_type regtype, time_zone text,
                                                   OUT row_count bigint, OUT counted boolean, OUT has_nulls boolean,
                                                   OUT oldest timestamptz, OUT newest timestamptz)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    estimate real := (SELECT c.reltuples FROM pg_catalog.pg_class c WHERE c.oid = source);
    key_expr text := timepart._migrate_key_expr(key_column, key_type, time_zone);
    r jsonb;
BEGIN
    counted := estimate < 100000;
    -- Every read of the source runs with its owner's rights (05_owner.sql).
    IF counted THEN
        r := timepart._read_as_owner(source, format('SELECT pg_catalog.jsonb_build_array(count(*), count(*) FILTER (WHERE %I IS NULL) '
                                               'OPERATOR(pg_catalog.>) 0, min(%s), max(%s)) FROM ONLY %s',
                                               key_column, key_expr, key_expr, source));
        row_count := (r->>0)::bigint; has_nulls := (r->>1)::boolean; oldest := (r->>2)::timestamptz; newest := (r->>3)::timestamptz;
        RETURN;
    END IF;
    row_count := estimate::bigint;
    -- Separate queries, so an index on the key answers each without a scan.
    has_nulls := timepart._read_as_owner(source, format('SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM ONLY %s WHERE %I IS NULL))',
                                                   source, key_column))::text::boolean;
    r := timepart._read_as_owner(source, format('SELECT pg_catalog.jsonb_build_array(min(%1$I)::pg_catalog.text, max(%1$I)::pg_catalog.text) FROM ONLY %2$s',
                                           key_column, source));
    IF key_type = 'timestamptz'::regtype THEN
        oldest := (r->>0)::timestamptz; newest := (r->>1)::timestamptz;
    ELSE
        oldest := (r->>0)::timestamp; newest := (r->>1)::timestamp;
    END IF;
    IF key_type <> 'timestamptz'::regtype THEN
        -- min/max came back in the session's time zone; they meant local time in tz.
        oldest := (oldest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE time_zone;
        newest := (newest AT TIME ZONE pg_catalog.current_setting('TimeZone')) AT TIME ZONE time_zone;
    END IF;
END $$;

-- The refusal for a key column with NULLs: a range partition cannot hold them.
CREATE OR REPLACE FUNCTION timepart._migrate_check_nulls(source regclass, key_column name, has_nulls boolean) RETURNS void
LANGUAGE plpgsql STABLE AS $$
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
CREATE OR REPLACE FUNCTION timepart._migrate_periods(source regclass, key_column name, key_type regtype, partition_interval interval,
                                                     time_zone text, oldest timestamptz, newest timestamptz,
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
    SELECT array_agg(g AT TIME ZONE time_zone ORDER BY g) INTO starts
    FROM pg_catalog.generate_series(timepart._period_start(oldest, partition_interval, time_zone) AT TIME ZONE time_zone,
                                    timepart._period_start(newest, partition_interval, time_zone) AT TIME ZONE time_zone, partition_interval) g;
    IF counted THEN
        SELECT array_agg(x::bigint) INTO bucket_rows FROM jsonb_array_elements_text(timepart._read_as_owner(source, format(
            'SELECT pg_catalog.to_jsonb(pg_catalog.array_agg(coalesce(b.n, 0) ORDER BY i)) FROM pg_catalog.generate_series(1, %s) i '
            'LEFT JOIN (SELECT pg_catalog.width_bucket(%s, %L::pg_catalog.timestamptz[]) AS w, count(*) AS n FROM ONLY %s GROUP BY 1) b '
            'ON b.w OPERATOR(pg_catalog.=) i',
            cardinality(starts), timepart._migrate_key_expr(key_column, key_type, time_zone), starts::text, source))) x;
    ELSE
        SELECT s.histogram_bounds::text::text[] INTO hist FROM pg_catalog.pg_stats s
        JOIN pg_catalog.pg_class c ON c.relname = s.tablename JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = s.schemaname
        WHERE c.oid = source AND s.attname = key_column;
        -- Each histogram bound stands for an equal share of the rows.
        SELECT array_agg(round(coalesce(b.n, 0)::numeric * row_count / greatest(cardinality(hist), 1))::bigint ORDER BY i)
        INTO bucket_rows
        FROM pg_catalog.generate_series(1, cardinality(starts)) i
        LEFT JOIN (SELECT pg_catalog.width_bucket(CASE key_type WHEN 'timestamptz'::regtype THEN h::timestamptz
                                                      WHEN 'timestamp'::regtype THEN h::timestamp AT TIME ZONE time_zone
                                                      ELSE h::date::timestamp AT TIME ZONE time_zone END, starts) AS w, count(*) AS n
                   FROM unnest(hist) h GROUP BY 1) b ON b.w = i;
    END IF;
    RETURN QUERY SELECT u.s, timepart._period_add(u.s, partition_interval, 1, time_zone), u.n
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
