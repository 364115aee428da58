-- Migration, 3 of 5: the batch copy by block ranges and the catch-up of captured
-- changes, each verified as it goes, so the swap has only the last changes to check.
--
-- The invariant: a row whose key is not in the change log has not changed since the
-- capture began, sits at a fixed ctid and is copied exactly once, by its batch. So each
-- batch checks that the rows of its blocks not in the log are exactly (count and
-- checksum) the rows it inserted not in the log; each catch-up round checks that what it
-- inserted is exactly the source's rows for the keys it applied. A logged key is
-- re-synchronised, and so checked, by a later round. Running totals of the copy's rows
-- and checksum are kept in timepart.migrations.

-- How many blocks hold about batch_size rows, from the table's statistics (or its size).
CREATE OR REPLACE FUNCTION timepart._migrate_batch_blocks(source regclass, batch_size integer) RETURNS integer
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT greatest(1, least(1000000, CASE WHEN c.relpages > 0 AND c.reltuples > 0
                                           THEN batch_size / (c.reltuples / c.relpages)
                                           ELSE batch_size / 50 END))::integer
    FROM pg_catalog.pg_class c WHERE c.oid = source;
END;

-- The copy and the catch-up write the copy and the change log and read the source; a rule
-- on one of them (its owner may add one at any time) would rewrite those statements.
CREATE OR REPLACE FUNCTION timepart._migrate_check_rules(m timepart.migrations) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(format('%s on %s', r.rulename, r.ev_class::regclass), ', ' ORDER BY r.rulename) INTO found
    FROM pg_catalog.pg_rewrite r
    WHERE r.ev_class IN (m.source, m.target, pg_catalog.to_regclass(format('%I.changes', m.stage_schema)));
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'a rule was added to a table the migration of % writes or reads', m.source USING ERRCODE = '55000',
            DETAIL = format('Rules: %s. They would rewrite the copy''s statements.', found),
            HINT = format('Drop the rules, then CALL timepart.migrate again; or SELECT timepart.migrate_abort(%L).', m.source::text);
    END IF;
END $$;

-- Copies one batch of whole blocks and advances the progress row, in the caller's
-- transaction, so both commit together. A rewritten source (new filenode: VACUUM FULL,
-- CLUSTER) has moved its rows: the copy starts again; the change log stays valid.
CREATE OR REPLACE FUNCTION timepart._migrate_batch(m timepart.migrations, batch_size integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    upto bigint;
    copied bigint;
    r jsonb;
    cols text := timepart._column_list(m.source);
BEGIN
    PERFORM timepart._migrate_check_rules(m);
    PERFORM timepart._migrate_check_capture(m);
    EXECUTE format('LOCK TABLE ONLY %s IN ACCESS SHARE MODE', m.source);
    IF pg_catalog.pg_relation_filenode(m.source) <> m.source_filenode THEN
        RAISE NOTICE 'timepart.migrate: % was rewritten; copying it again from the start', m.source;
        PERFORM timepart._as_owner(m.source, format('TRUNCATE %s', m.target));
        UPDATE timepart.migrations g SET next_block = 0, rows_copied = 0, target_rows = 0, target_checksum = 0,
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
    r := timepart._as_owner(m.source, format($q$
        WITH src AS (SELECT %1$s FROM ONLY %3$s WHERE ctid OPERATOR(pg_catalog.>=) %4$L::pg_catalog.tid
                                                  AND ctid OPERATOR(pg_catalog.<) %5$L::pg_catalog.tid),
        ins AS (INSERT INTO %2$s (%1$s) OVERRIDING SYSTEM VALUE SELECT %1$s FROM src ON CONFLICT DO NOTHING RETURNING %1$s)
        SELECT pg_catalog.jsonb_build_array(
            (SELECT count(*) FROM ins), (SELECT %6$s FROM ins),
            (SELECT pg_catalog.jsonb_build_array(count(*), %6$s) FROM src a WHERE NOT EXISTS (SELECT 1 FROM %7$I.changes b WHERE %8$s)),
            (SELECT pg_catalog.jsonb_build_array(count(*), %6$s) FROM ins a WHERE NOT EXISTS (SELECT 1 FROM %7$I.changes b WHERE %8$s)))$q$,
        cols, m.target, m.source, format('(%s,0)', m.next_block), format('(%s,0)', upto),
        timepart._migrate_hash_sum(m.source), m.stage_schema, timepart._migrate_match(m)), true);
    copied := (r->>0)::bigint;
    IF (r->2) <> (r->3) THEN
        RAISE EXCEPTION 'the copy of blocks % to % of % does not match them; nothing of this batch was kept', m.next_block, upto, m.source
            USING ERRCODE = 'XX001',
            DETAIL = format('Unchanged rows in the source: %s (count, checksum); copied: %s.', r->2, r->3),
            HINT = format('Something rewrote rows on their way in (a trigger, a rule?). SELECT timepart.migrate_abort(%L) removes the copy.', m.source::text);
    END IF;
    -- Aim the next batch at batch_size rows, from the density seen so far.
    UPDATE timepart.migrations g SET next_block = upto, rows_copied = g.rows_copied + copied,
        target_rows = coalesce(g.target_rows, 0) + copied, target_checksum = coalesce(g.target_checksum, 0) + (r->>1)::numeric,
        blocks_per_batch = CASE WHEN g.rows_copied + copied > 0
            THEN greatest(1, least(1000000, batch_size::numeric * upto / (g.rows_copied + copied)))::integer
            ELSE least(1000000, g.blocks_per_batch * 2) END,
        state = CASE WHEN upto >= m.last_block THEN 'catching_up' ELSE g.state END,
        updated_at = pg_catalog.clock_timestamp()
    WHERE g.id = m.id;
    CALL timepart._log('migrate_copy', m.source, m.target::text, true,
        jsonb_build_object('rows', copied, 'from_block', m.next_block, 'to_block', upto, 'last_block', m.last_block,
                           'verified_rows', r->2->0),
        NULL, started);
    RETURN copied;
END $$;

-- The join condition between a table row (alias a) and a change log row (alias b):
-- equal primary keys, or equal whole rows compared as text (works for every type).
CREATE OR REPLACE FUNCTION timepart._migrate_match(m timepart.migrations) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN m.row_key IS NULL
                THEN format('ROW(%1$s)::text = ROW(%2$s)::text',
                            (SELECT string_agg('a.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''),
                            (SELECT string_agg('b.' || pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                             WHERE a.attrelid = m.source AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''))
                ELSE (SELECT string_agg(format('a.%1$I = b.%1$I', k), ' AND ') FROM unnest(m.row_key) k) END;
END;

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
    PERFORM timepart._migrate_check_rules(m);
    PERFORM timepart._migrate_check_capture(m);
    r := timepart._as_owner(m.source, format($q$
        WITH d AS (DELETE FROM %1$I.changes c WHERE c.ctid = ANY (ARRAY(SELECT ctid FROM %1$I.changes LIMIT %2$s)) RETURNING %3$s),
        gone AS (DELETE FROM %4$s a USING d b WHERE %5$s RETURNING a.*),
        src AS (SELECT %6$s FROM ONLY %7$s a WHERE EXISTS (SELECT 1 FROM d b WHERE %5$s)),
        ins AS (INSERT INTO %4$s (%6$s) OVERRIDING SYSTEM VALUE SELECT %6$s FROM src RETURNING %6$s)
        SELECT pg_catalog.jsonb_build_array((SELECT count(*) FROM d), (SELECT count(*) FROM gone), (SELECT count(*) FROM ins),
                                            (SELECT %8$s FROM gone), (SELECT %8$s FROM ins),
                                            (SELECT pg_catalog.jsonb_build_array(count(*), %8$s) FROM src),
                                            (SELECT pg_catalog.jsonb_build_array(count(*), %8$s) FROM ins))$q$,
        m.stage_schema, max_changes, keys, m.target, match, cols, m.source, timepart._migrate_hash_sum(m.source)), true);
    applied := (r->>0)::bigint; removed := (r->>1)::bigint; inserted := (r->>2)::bigint;
    IF (r->5) <> (r->6) THEN
        RAISE EXCEPTION 'the changes applied to the copy of % do not match the source; nothing of this round was kept', m.source
            USING ERRCODE = 'XX001',
            DETAIL = format('Source rows of the %s changed keys: %s (count, checksum); inserted: %s.', applied, r->5, r->6),
            HINT = format('Something rewrote rows on their way in (a trigger, a rule?). SELECT timepart.migrate_abort(%L) removes the copy.', m.source::text);
    END IF;
    IF applied > 0 THEN
        UPDATE timepart.migrations g SET changes_applied = g.changes_applied + applied, updated_at = pg_catalog.clock_timestamp(),
            target_rows = coalesce(g.target_rows, 0) + inserted - removed,
            target_checksum = coalesce(g.target_checksum, 0) + (r->>4)::numeric - (r->>3)::numeric
        WHERE g.id = m.id;
        CALL timepart._log('migrate_catch_up', m.source, m.target::text, true,
            jsonb_build_object('changes', applied, 'rows_removed', removed, 'rows_inserted', inserted, 'verified_rows', r->5->0),
            NULL, started);
    END IF;
    RETURN applied;
END $$;

-- The order-independent checksum of rows (alias-free columns of the source): the sum of
-- 64-bit hashes of each row as text, 0 for none.
CREATE OR REPLACE FUNCTION timepart._migrate_hash_sum(source regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('coalesce(sum(pg_catalog.hashtextextended(ROW(%s)::pg_catalog.text, 0)), 0)', timepart._column_list(source));
END;
