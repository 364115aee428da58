-- Migration, 2b of 5: what the partitioned table carries over from the source, besides
-- columns, defaults, identity, constraints and indexes (87_migrate_capture.sql): column
-- privileges, row-level security and its policies, comments, statistics targets, replica
-- identity, storage options (as partition_options), triggers and publications.
--
-- Triggers are made on the copy when it is made, disabled, so the copy and the catch-up
-- fire none of them; at the swap each takes the source's enabled state and the old
-- table's is disabled: every write fires them exactly once, before or after the swap.
-- Publications change at the swap too: the copy joins the source's, the old table leaves.

-- One row per property a migration carries over or cannot, with how or why. Changes
-- nothing and refuses nothing: migrate_plan and migrate refuse what cannot be carried.
CREATE OR REPLACE FUNCTION timepart.migrate_carried(source regclass)
RETURNS TABLE (item text, name text, carried boolean, how text) LANGUAGE plpgsql STABLE AS $$
/* What timepart.migrate carries over from the table, and what it cannot (with the reason). */
DECLARE
    rel record;
BEGIN
    IF source IS NULL THEN
        RAISE EXCEPTION 'source table must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'migrate_carried lists what a migration of one table carries over.',
            HINT = 'Name the table, e.g. SELECT * FROM timepart.migrate_carried(''public.email_events'');';
    END IF;
    SELECT c.relowner::regrole::text AS owner, c.relrowsecurity, c.relforcerowsecurity, c.relreplident, c.reloptions,
           (SELECT r.rolbypassrls OR r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = c.relowner) AS owner_bypasses
    INTO rel FROM pg_catalog.pg_class c WHERE c.oid = source;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'relation % does not exist', source USING ERRCODE = '42P01', HINT = 'Name an existing table.';
    END IF;
    RETURN QUERY
    SELECT 'owner', rel.owner, true, 'the copy is made by its owner''s executor'
    UNION ALL SELECT 'columns, defaults, identity, generated columns, storage, compression', NULL, true, 'CREATE TABLE (LIKE)'
    UNION ALL SELECT 'CHECK and NOT NULL constraints, primary key, unique constraints and indexes, foreign keys', NULL, true,
                     'on the partitioned table (unique ones must contain the key: checked up front)'
    UNION ALL SELECT 'index', c.relname::text, true, 'an index template: every partition gets it'
    FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid WHERE x.indrelid = source AND NOT x.indisunique
    UNION ALL SELECT 'privileges', NULL, true, 'table and column grants, on the table and every partition'
    WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = source AND c.relacl IS NOT NULL)
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attacl IS NOT NULL)
    UNION ALL SELECT 'row level security', CASE WHEN rel.relforcerowsecurity THEN 'forced' ELSE 'enabled' END,
                     NOT rel.relforcerowsecurity OR rel.owner_bypasses,
                     CASE WHEN rel.relforcerowsecurity AND NOT rel.owner_bypasses
                          THEN 'refused: forced on the owner, whose copy would see only the rows its policies allow'
                          ELSE 'as on the source, with every policy, on the table and every partition' END
    WHERE rel.relrowsecurity OR rel.relforcerowsecurity
    UNION ALL SELECT 'policy', p.polname::text, true, 'the same command, roles, USING and WITH CHECK'
    FROM pg_catalog.pg_policy p WHERE p.polrelid = source
    UNION ALL SELECT 'trigger', t.tgname::text, NOT (t.tgtype & 1 = 1 AND (t.tgoldtable IS NOT NULL OR t.tgnewtable IS NOT NULL)),
                     CASE WHEN t.tgtype & 1 = 1 AND (t.tgoldtable IS NOT NULL OR t.tgnewtable IS NOT NULL)
                          THEN 'refused: PostgreSQL allows no row trigger with transition tables on a partitioned table'
                          ELSE format('moved at the swap, %s as on the source', CASE t.tgenabled WHEN 'D' THEN 'disabled'
                                      WHEN 'R' THEN 'enabled for replicas' WHEN 'A' THEN 'always enabled' ELSE 'enabled' END) END
    FROM pg_catalog.pg_trigger t WHERE t.tgrelid = source AND NOT t.tgisinternal AND t.tgname NOT LIKE 'timepart\_migrate\_%'
    UNION ALL SELECT 'publication', p.pubname::text, p.pubviaroot OR (r.prattrs IS NULL AND r.prqual IS NULL),
                     CASE WHEN NOT p.pubviaroot AND (r.prattrs IS NOT NULL OR r.prqual IS NOT NULL)
                          THEN 'refused: PostgreSQL allows a column list or row filter on a partitioned table only with publish_via_partition_root'
                          ELSE 'moved at the swap, with its column list and row filter'
                               || CASE WHEN p.pubviaroot THEN '' ELSE '; changes are published under the partitions'' names (publish_via_partition_root is off)' END END
    FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid WHERE r.prrelid = source
    UNION ALL SELECT 'replica identity', CASE rel.relreplident WHEN 'f' THEN 'full' WHEN 'n' THEN 'nothing' ELSE 'index' END, true,
                     'on the table and every partition'
    WHERE rel.relreplident <> 'd'
    UNION ALL SELECT 'comment', 'table', true, 'the table''s, its columns'' and its constraints'''
    WHERE pg_catalog.obj_description(source, 'pg_class') IS NOT NULL
       OR EXISTS (SELECT 1 FROM pg_catalog.pg_description d WHERE d.objoid = source AND d.objsubid > 0)
    UNION ALL SELECT 'storage options', pg_catalog.array_to_string(rel.reloptions, ', '), true, 'as partition_options: every partition is made with them'
    WHERE rel.reloptions IS NOT NULL
    UNION ALL SELECT 'statistics target', a.attname::text, true, format('%s, on the partitioned table', a.attstattarget)
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
    UNION ALL SELECT 'extended statistics', s.stxname::text, false, 'not carried: the old table keeps the name; CREATE STATISTICS again after the swap'
    FROM pg_catalog.pg_statistic_ext s WHERE s.stxrelid = source
    UNION ALL SELECT 'rule', r.rulename::text, false, 'refused: a rule would stay on the old table'
    FROM pg_catalog.pg_rewrite r WHERE r.ev_class = source AND r.rulename <> '_RETURN'
    UNION ALL SELECT 'view', v.ev_class::regclass::text, false, 'refused: it would still read the old table'
    FROM (SELECT DISTINCT w.ev_class FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w ON w.oid = d.objid
          WHERE d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.refobjid = source AND w.ev_class <> source) v
    UNION ALL SELECT 'function', d.objid::regprocedure::text, false, 'refused: its body would still name the old table'
    FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.refobjid = source AND d.deptype = 'n'
    UNION ALL SELECT 'foreign key to it', k.conname || ' on ' || k.conrelid::regclass::text, false,
                     'refused: re-create it against the partitioned table after the swap'
    FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = source;
END $$;
COMMENT ON FUNCTION timepart.migrate_carried(regclass) IS
    'What timepart.migrate carries over from a table (owner, grants, RLS, triggers, publications, ...) and what it cannot, with the reason';

-- The refusal for what migrate_carried marks refused.
CREATE OR REPLACE FUNCTION timepart._migrate_check_carried(source regclass) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    bad text;
BEGIN
    SELECT string_agg(format('%s %s: %s', c.item, c.name, substr(c.how, 10)), '; ') INTO bad
    FROM timepart.migrate_carried(source) c WHERE NOT c.carried AND c.how LIKE 'refused: %';
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'table % has what a migration cannot carry over', source USING ERRCODE = '2BP01',
            DETAIL = bad || '.',
            HINT = format('SELECT * FROM timepart.migrate_carried(%L) lists everything; change these, migrate, then put them back.', source::text);
    END IF;
END $$;

-- What pg_get_triggerdef prints before " ON <table> ": CREATE [CONSTRAINT ]TRIGGER, the
-- quoted name, the timing, and the events with UPDATE's columns (ruleutils' order).
CREATE OR REPLACE FUNCTION timepart._trigger_head(trigger_oid oid) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT 'CREATE ' || CASE WHEN t.tgconstraint <> 0 THEN 'CONSTRAINT ' ELSE '' END || 'TRIGGER ' || pg_catalog.quote_ident(t.tgname) || ' '
           || CASE WHEN t.tgtype & 2 <> 0 THEN 'BEFORE' WHEN t.tgtype & 64 <> 0 THEN 'INSTEAD OF' ELSE 'AFTER' END || ' '
           || pg_catalog.concat_ws(' OR ', CASE WHEN t.tgtype & 4 <> 0 THEN 'INSERT' END, CASE WHEN t.tgtype & 8 <> 0 THEN 'DELETE' END,
                                   CASE WHEN t.tgtype & 16 <> 0 THEN 'UPDATE' || coalesce(' OF ' || (
                                       SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)
                                       FROM unnest(t.tgattr::int2[]) WITH ORDINALITY k(attnum, n)
                                       JOIN pg_catalog.pg_attribute a ON a.attrelid = t.tgrelid AND a.attnum = k.attnum), '') END,
                                   CASE WHEN t.tgtype & 32 <> 0 THEN 'TRUNCATE' END)
    FROM pg_catalog.pg_trigger t WHERE t.oid = trigger_oid;
END;

-- The statements that give the copy (the partitioned table, before any partition is
-- made) what the source has besides its columns and constraints. Triggers come
-- disabled (_migrate_move_triggers enables them at the swap).
CREATE OR REPLACE FUNCTION timepart._migrate_carry_statements(source regclass, target regclass) RETURNS SETOF text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('GRANT %s (%I) ON %s TO %s%s', g.privilege_type, a.attname, target,
                  CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::regrole::text END,
                  CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
    FROM pg_catalog.pg_attribute a, pg_catalog.aclexplode(a.attacl) g
    WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
      AND g.grantee <> (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = source)
    UNION ALL
    SELECT format('COMMENT ON TABLE %s IS %L', target, pg_catalog.obj_description(source, 'pg_class'))
    WHERE pg_catalog.obj_description(source, 'pg_class') IS NOT NULL
    UNION ALL
    SELECT format('COMMENT ON CONSTRAINT %I ON %s IS %L', k.conname, target, pg_catalog.obj_description(k.oid, 'pg_constraint'))
    FROM pg_catalog.pg_constraint k
    WHERE k.conrelid = source AND k.contype IN ('p', 'u', 'f') AND pg_catalog.obj_description(k.oid, 'pg_constraint') IS NOT NULL
    UNION ALL
    SELECT format('ALTER TABLE %s ALTER COLUMN %I SET STATISTICS %s', target, a.attname, a.attstattarget)
    FROM pg_catalog.pg_attribute a WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped AND a.attstattarget >= 0
    UNION ALL
    SELECT format('ALTER TABLE %s REPLICA IDENTITY %s', target, CASE c.relreplident WHEN 'f' THEN 'FULL' WHEN 'n' THEN 'NOTHING'
           ELSE (SELECT format('USING INDEX %I', i.relname) FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                 WHERE x.indrelid = source AND x.indisreplident) END)
    FROM pg_catalog.pg_class c WHERE c.oid = source AND c.relreplident <> 'd'
    UNION ALL
    SELECT format('CREATE POLICY %I ON %s AS %s FOR %s TO %s%s%s', p.policyname, target, p.permissive, p.cmd,
                  (SELECT string_agg(CASE WHEN r = 'public' THEN 'PUBLIC' ELSE pg_catalog.quote_ident(r) END, ', ') FROM unnest(p.roles) r),
                  ' USING (' || p.qual || ')', ' WITH CHECK (' || p.with_check || ')')
    FROM pg_catalog.pg_policies p
    WHERE p.schemaname = (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source)
      AND p.tablename = (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source)
    UNION ALL
    SELECT format('ALTER TABLE %s %s ROW LEVEL SECURITY', target, w)
    FROM pg_catalog.pg_class c, LATERAL (VALUES ('ENABLE', c.relrowsecurity), ('FORCE', c.relforcerowsecurity)) v(w, is_set)
    WHERE c.oid = source AND v.is_set
    UNION ALL
    -- A trigger's definition with the copy's name at the one place the table is named:
    -- right after the head (name, timing, events, columns) PostgreSQL prints, rebuilt
    -- here, so a name or column that looks like " ON table " is never the one replaced.
    -- Were the head not where expected, the statement is NULL and _migrate_carry refuses.
    SELECT s FROM pg_catalog.pg_trigger t,
           LATERAL (SELECT pg_catalog.pg_get_triggerdef(t.oid) AS def,
                           (SELECT format(' ON %I.%I ', n.nspname, c.relname) FROM pg_catalog.pg_class c
                            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = source) AS was,
                           pg_catalog.length(timepart._trigger_head(t.oid)) AS at) d,
           LATERAL (VALUES (CASE WHEN pg_catalog.substr(d.def, d.at + 1, pg_catalog.length(d.was)) = d.was
                                 THEN overlay(d.def PLACING ' ON ' || target::text || ' ' FROM d.at + 1 FOR pg_catalog.length(d.was)) END),
                           (format('ALTER TABLE %s DISABLE TRIGGER %I', target, t.tgname))) x(s)
    WHERE t.tgrelid = source AND NOT t.tgisinternal AND t.tgname NOT LIKE 'timepart\_migrate\_%';
END;

-- Gives the copy what _migrate_carry_statements lists, with the owner's rights.
CREATE OR REPLACE FUNCTION timepart._migrate_carry(source regclass, target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    FOR q IN SELECT * FROM timepart._migrate_carry_statements(source, target) LOOP
        IF q IS NULL THEN
            RAISE EXCEPTION 'cannot carry a trigger of % to the partitioned copy', source USING ERRCODE = '0A000',
                DETAIL = 'Its definition does not read as PostgreSQL prints trigger definitions.',
                HINT = 'Drop the trigger before the migration and create it on the table afterwards.';
        END IF;
        PERFORM timepart._as_owner(source, q);
    END LOOP;
END $$;

-- At the swap: each user trigger of the source takes its enabled state on the copy, and
-- is disabled on the old table. Returns the triggers moved.
CREATE OR REPLACE FUNCTION timepart._migrate_move_triggers(m timepart.migrations) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    moved jsonb := '[]'::jsonb;
BEGIN
    FOR t IN SELECT g.tgname, g.tgenabled FROM pg_catalog.pg_trigger g
             WHERE g.tgrelid = m.source AND NOT g.tgisinternal AND g.tgname NOT LIKE 'timepart\_migrate\_%' ORDER BY g.tgname LOOP
        IF t.tgenabled <> 'D' THEN
            PERFORM timepart._as_owner(m.source, format('ALTER TABLE %s ENABLE %sTRIGGER %I', m.target,
                                       CASE t.tgenabled WHEN 'R' THEN 'REPLICA ' WHEN 'A' THEN 'ALWAYS ' ELSE '' END, t.tgname));
            PERFORM timepart._as_owner(m.source, format('ALTER TABLE %s DISABLE TRIGGER %I', m.source, t.tgname));
        END IF;
        moved := moved || to_jsonb('trigger ' || t.tgname);
    END LOOP;
    RETURN moved;
END $$;

-- At the swap: the copy joins every publication the source is in by name, with the same
-- column list and row filter, and the old table leaves them. As timepart's owner (SECURITY
-- DEFINER): the publications may belong to someone else, and ALTER PUBLICATION runs no
-- user code (a row filter may call built-in immutable functions only).
CREATE OR REPLACE FUNCTION timepart._migrate_publications(m timepart.migrations) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    p record;
    moved jsonb := '[]'::jsonb;
BEGIN
    -- The caller must own both tables, and they must be the two ends of a migration that
    -- timepart recorded (its rows are written only by timepart), the copy the source's
    -- owner's: a publication is never handed a table of anyone else's.
    PERFORM timepart._check_may_act(timepart._caller(), m.source, 'migrate it');
    PERFORM timepart._check_may_act(timepart._caller(), m.target, 'migrate into it');
    IF NOT EXISTS (SELECT 1 FROM timepart.migrations g JOIN pg_catalog.pg_class s ON s.oid = g.source
                   JOIN pg_catalog.pg_class t ON t.oid = g.target
                   WHERE g.id = m.id AND g.source = m.source AND g.target = m.target AND t.relowner = s.relowner
                   AND t.relkind = 'p' AND g.state IN ('copying', 'catching_up')) THEN
        RAISE EXCEPTION 'no migration of % to % is under way', m.source, m.target USING ERRCODE = '22023',
            DETAIL = 'Publications move only at a migration''s swap.', HINT = 'Use CALL timepart.migrate.';
    END IF;
    -- Only at the swap: this session holds the source's ACCESS EXCLUSIVE lock then.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.locktype = 'relation' AND l.relation = m.source
                   AND l.pid = pg_catalog.pg_backend_pid() AND l.mode = 'AccessExclusiveLock' AND l.granted) THEN
        RAISE EXCEPTION 'publications of % move only at the swap', m.source USING ERRCODE = '55000',
            DETAIL = 'The swap holds the table''s ACCESS EXCLUSIVE lock; this session does not.', HINT = 'Use CALL timepart.migrate.';
    END IF;
    FOR p IN SELECT b.pubname,
                    (SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs::int2[])) AS cols,
                    pg_catalog.pg_get_expr(r.prqual, r.prrelid) AS qual
             FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication b ON b.oid = r.prpubid
             WHERE r.prrelid = m.source ORDER BY b.pubname LOOP
        EXECUTE format('ALTER PUBLICATION %I ADD TABLE %s%s%s', p.pubname, m.target, ' (' || p.cols || ')', ' WHERE (' || p.qual || ')');
        EXECUTE format('ALTER PUBLICATION %I DROP TABLE %s', p.pubname, m.source);
        moved := moved || to_jsonb('publication ' || p.pubname);
    END LOOP;
    RETURN moved;
END $$;
