-- Upgrades: for every older version, install it, put data in, update along the
-- chain to the newest, and compare every extension object with a fresh install.
\set without_timepart 1
\ir setup.psql

-- A fingerprint of every object of the extension: functions with their source,
-- result, volatility, security, settings and comment; tables and views with columns,
-- defaults, constraints, indexes and comments.
CREATE FUNCTION pg_temp.timepart_shape() RETURNS TABLE (kind text, ident text, def text) LANGUAGE sql AS $$
    WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'timepart'),
    members AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refobjid = ext.oid AND d.deptype = 'e')
    SELECT 'function', p.oid::regprocedure::text,
           concat_ws(' | ', pg_get_function_result(p.oid), md5(p.prosrc || coalesce(pg_get_function_sqlbody(p.oid), '')), p.provolatile, p.prosecdef, p.proconfig::text,
                     obj_description(p.oid, 'pg_proc'), p.proacl::text, p.prolang)
    FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    -- Executors are made per table owner at run time (05_owner.sql), not by a script.
    WHERE p.proname NOT LIKE '\_as\_owner\_%'
    UNION ALL
    SELECT 'relation', c.oid::regclass::text,
           concat_ws(' | ', c.relkind, obj_description(c.oid, 'pg_class'), pg_get_viewdef(c.oid), c.relacl::text,
               (SELECT string_agg(format('%s %s %s', t.tgname, t.tgfoid::regproc, t.tgtype), ', ' ORDER BY t.tgname)
                FROM pg_trigger t WHERE t.tgrelid = c.oid AND NOT t.tgisinternal),
               (SELECT string_agg(format('%s %s %s %s %s', a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                                         pg_get_expr(ad.adbin, ad.adrelid), col_description(c.oid, a.attnum)), ', ' ORDER BY a.attname)
                FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               (SELECT string_agg(format('%s %s', co.conname, pg_get_constraintdef(co.oid)), ', ' ORDER BY co.conname)
                FROM pg_constraint co WHERE co.conrelid = c.oid),
               (SELECT string_agg(pg_get_indexdef(i.indexrelid), ', ' ORDER BY pg_get_indexdef(i.indexrelid)) FROM pg_index i WHERE i.indrelid = c.oid))
    FROM pg_class c JOIN members m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
    UNION ALL
    SELECT 'schema', n.nspname::text, obj_description(n.oid, 'pg_namespace')
    FROM pg_namespace n JOIN members m ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid
$$;

CREATE TEMP TABLE upgrade_results (from_version text, differences text, rows_kept bigint, maintain_ok boolean);

CREATE FUNCTION pg_temp.check_upgrades() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    newest text := (SELECT default_version FROM pg_available_extensions WHERE name = 'timepart');
    v text;
    diff text;
BEGIN
    CREATE EXTENSION timepart;
    CREATE TEMP TABLE fresh AS SELECT * FROM pg_temp.timepart_shape();
    DROP EXTENSION timepart;
    FOR v IN SELECT version FROM pg_available_extension_versions WHERE name = 'timepart' AND version <> newest ORDER BY version LOOP
        EXECUTE format('CREATE EXTENSION timepart VERSION %L', v);
        CREATE TABLE up_ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts);
        PERFORM timepart.manage('up_ev', '1 month', 2, as_of => '2024-03-15');
        INSERT INTO up_ev SELECT g, '2024-03-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 500) g;
        ALTER EXTENSION timepart UPDATE;
        SELECT string_agg(format('%s %s %s', coalesce(f.kind, u.kind), coalesce(f.ident, u.ident),
                                 CASE WHEN f.ident IS NULL THEN 'only after upgrade' WHEN u.ident IS NULL THEN 'missing after upgrade'
                                      -- the parts that differ, fresh install first
                                      ELSE format('differs: %s <> %s',
                                          (SELECT string_agg(x, ' | ') FROM (SELECT regexp_split_to_table(f.def, ' \| ')
                                                                             EXCEPT SELECT regexp_split_to_table(u.def, ' \| ')) d(x)),
                                          (SELECT string_agg(x, ' | ') FROM (SELECT regexp_split_to_table(u.def, ' \| ')
                                                                             EXCEPT SELECT regexp_split_to_table(f.def, ' \| ')) d(x))) END), '; ')
        INTO diff
        FROM fresh f FULL JOIN pg_temp.timepart_shape() u ON u.kind = f.kind AND u.ident = f.ident
        WHERE f.def IS DISTINCT FROM u.def;
        INSERT INTO upgrade_results VALUES (v, coalesce(diff, ''), (SELECT count(*) FROM up_ev),
            (timepart.maintain('up_ev', 3, '2024-03-15')->>'success')::boolean
            AND EXISTS (SELECT 1 FROM timepart.config WHERE parent = 'up_ev'::regclass));
        DROP TABLE up_ev;
        DROP EXTENSION timepart;
    END LOOP;
END $$;
SELECT pg_temp.check_upgrades();

SELECT plan(1 + 3 * (SELECT count(*)::int FROM upgrade_results));
SELECT cmp_ok((SELECT count(*) FROM upgrade_results), '>=', 1::bigint, 'there is at least one older version to upgrade from');
SELECT is(differences, '', format('%s updated to the newest version equals a fresh install', from_version)) FROM upgrade_results;
SELECT is(rows_kept, 500::bigint, format('rows put in at %s are all there after the upgrade', from_version)) FROM upgrade_results;
SELECT ok(maintain_ok, format('configuration from %s survives and maintain works after the upgrade', from_version)) FROM upgrade_results;

SELECT * FROM finish();
ROLLBACK;
