-- Migration, 3 of 5: the batch copy by block ranges, the catch-up of captured changes,
-- and the checksum both sides are compared by.

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
