-- What a partition inherits from its parent: privileges (table and columns), row-level
-- security with the parent's policies, replica identity, the table comment and the
-- configured storage options (partition_options). One function says how each partition
-- differs from what it should be, with the statement that fixes it: a new partition is
-- born through it, sync_partitions applies it later, and the partition_drift alert reads it.
-- Tablespace and logged-ness are given at birth (CREATE TABLE); changing them later
-- rewrites the table, so for existing partitions they are reported, never applied.

-- The storage options configured for a table's partitions that live on the partition
-- itself: toast.* options live on its TOAST table and are given at birth only.
CREATE OR REPLACE FUNCTION timepart._table_options(cfg timepart.config) RETURNS jsonb
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(jsonb_object_agg(o.key, o.value), '{}'::jsonb)
    FROM jsonb_each(coalesce(cfg.partition_options, '{}'::jsonb)) o WHERE o.key NOT LIKE 'toast.%';
END;

-- Those options as the partition's own reloptions text ('fillfactor=90'), sorted.
CREATE OR REPLACE FUNCTION timepart._partition_reloptions(cfg timepart.config) RETURNS text[]
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(array_agg(o.key || '=' || o.value ORDER BY o.key), '{}'::text[])
    FROM jsonb_each_text(timepart._table_options(cfg)) o;
END;

-- The options as a WITH clause body: fillfactor = '90', toast.autovacuum_enabled = 'false'.
CREATE OR REPLACE FUNCTION timepart._reloptions_sql(options jsonb) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(CASE WHEN o.key LIKE 'toast.%' THEN format('toast.%I = %L', substr(o.key, 7), o.value)
                           ELSE format('%I = %L', o.key, o.value) END, ', ' ORDER BY o.key)
    FROM jsonb_each_text(options) o;
END;

-- The refusal for partition_options PostgreSQL would not take: tried on a throwaway
-- temporary table, rolled back, so a bad option is refused before anything changes.
CREATE OR REPLACE FUNCTION timepart._check_partition_options(options jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF options IS NULL OR pg_catalog.jsonb_typeof(options) <> 'object' THEN
        RAISE EXCEPTION 'partition_options must be a JSON object' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(options::text, 'NULL')),
            HINT = 'E.g. {"fillfactor": 90, "autovacuum_vacuum_scale_factor": 0.01}.';
    END IF;
    IF options = '{}'::jsonb THEN
        RETURN;
    END IF;
    BEGIN
        EXECUTE format('CREATE TEMPORARY TABLE timepart_options_probe (x integer) WITH (%s)', timepart._reloptions_sql(options));
        RAISE EXCEPTION USING ERRCODE = 'P0004', MESSAGE = 'probe done';
    EXCEPTION
        WHEN assert_failure THEN NULL;  -- the probe table is rolled back
        WHEN invalid_parameter_value OR syntax_error OR feature_not_supported OR invalid_text_representation THEN
            RAISE EXCEPTION 'invalid partition_options: %', SQLERRM USING ERRCODE = '22023',
                DETAIL = format('Got %s.', options),
                HINT = 'Use table storage parameters (fillfactor, autovacuum_*, toast.*), e.g. {"fillfactor": 90}.';
    END;
END $$;

-- How each partition of a table (or just `part`) differs from what it should be, one row
-- per difference, with the statement that fixes it (NULL: only a rewrite would, so it is
-- reported and left). `attached`: whether the partition is attached yet (a replica
-- identity index only maps to a partition's index once it is).
-- PL/pgSQL (RETURN QUERY) so its plan is cached: a new partition asks once or twice.
CREATE OR REPLACE FUNCTION timepart._partition_drift(tbl regclass, part regclass DEFAULT NULL)
RETURNS TABLE (partition_oid oid, property text, current_value text, wanted text, statement text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    -- Most tables hand nothing down and their partitions hold nothing of their own: one
    -- catalog probe then says there is no difference, without planning the query below.
    -- Each relation looked up by its oid: never a scan of all of pg_class, pg_attribute or
    -- pg_description, which in a database of many tables costs more than the rest.
    IF NOT EXISTS (
        SELECT 1
        FROM (SELECT tbl::oid AS oid UNION ALL SELECT part::oid WHERE part IS NOT NULL
              UNION ALL SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE part IS NULL AND i.inhparent = tbl) r
        CROSS JOIN LATERAL (SELECT c.* FROM pg_catalog.pg_class c WHERE c.oid = r.oid OFFSET 0) c
        WHERE (c.oid = tbl OR c.relkind = 'r')
          AND (c.relacl IS NOT NULL OR c.relrowsecurity OR c.relforcerowsecurity OR c.relreplident <> 'd'
               OR (c.oid <> tbl AND (c.reloptions IS NOT NULL OR c.relpersistence = 'u'
                                     OR c.reltablespace <> (SELECT p.reltablespace FROM pg_catalog.pg_class p WHERE p.oid = tbl)))
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy y WHERE y.polrelid = c.oid)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_description d
                          WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0)))
       AND NOT EXISTS (SELECT 1 FROM timepart.config g WHERE g.parent = tbl
                       AND (g.partition_unlogged
                            OR (g.partition_options <> '{}' AND timepart._table_options(g) <> '{}'::jsonb))) THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH cfg AS (SELECT c.* FROM timepart.config c WHERE c.parent = tbl),
    par AS (SELECT c.* FROM pg_catalog.pg_class c WHERE c.oid = tbl),
    parts AS (
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_class c
        WHERE c.relkind = 'r' AND c.oid = part
        UNION ALL
        SELECT c.oid, c.oid::regclass AS rel, c.relowner, c.relacl, c.relrowsecurity, c.relforcerowsecurity, c.relreplident,
               c.reloptions, c.relpersistence, c.reltablespace, c.relkind
        FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        WHERE part IS NULL AND i.inhparent = tbl AND c.relkind = 'r'
    ),
    -- Privileges: the parent's grants (not the owner's own), granted by the partition's owner.
    acl_want AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par, LATERAL pg_catalog.aclexplode(par.relacl) g WHERE g.grantee <> par.relowner
    ),
    acl_have AS (
        SELECT p.oid, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, LATERAL pg_catalog.aclexplode(p.relacl) g WHERE g.grantee <> p.relowner
    ),
    acl AS (
        SELECT w.oid, 'privilege' AS property, NULL::text AS current_value,
               format('%s%s to %s', w.privilege_type, CASE WHEN w.is_grantable THEN ' with grant option' ELSE '' END,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s ON %s TO %s%s', w.privilege_type, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM acl_want EXCEPT SELECT * FROM acl_have) w
        UNION ALL
        SELECT h.oid, 'privilege', format('%s to %s', h.privilege_type,
                                          CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s ON %s FROM %s', h.privilege_type, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END)
        FROM (SELECT * FROM acl_have EXCEPT SELECT * FROM acl_want) h
    ),
    col_want AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p, par JOIN pg_catalog.pg_attribute a ON a.attrelid = par.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> par.relowner
    ),
    col_have AS (
        SELECT p.oid, a.attname, g.grantee, g.privilege_type, g.is_grantable
        FROM parts p JOIN pg_catalog.pg_attribute a ON a.attrelid = p.oid AND a.attnum > 0 AND NOT a.attisdropped,
             LATERAL pg_catalog.aclexplode(a.attacl) g WHERE g.grantee <> p.relowner
    ),
    col AS (
        SELECT w.oid, 'column privilege' AS property, NULL::text AS current_value,
               format('%s (%s) to %s', w.privilege_type, w.attname,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END) AS wanted,
               format('GRANT %s (%I) ON %s TO %s%s', w.privilege_type, w.attname, w.oid::regclass,
                      CASE WHEN w.grantee = 0 THEN 'PUBLIC' ELSE w.grantee::regrole::text END,
                      CASE WHEN w.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END) AS statement
        FROM (SELECT * FROM col_want EXCEPT SELECT * FROM col_have) w
        UNION ALL
        SELECT h.oid, 'column privilege', format('%s (%s) to %s', h.privilege_type, h.attname,
                                                 CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END), NULL,
               format('REVOKE %s (%I) ON %s FROM %s', h.privilege_type, h.attname, h.oid::regclass,
                      CASE WHEN h.grantee = 0 THEN 'PUBLIC' ELSE h.grantee::regrole::text END)
        FROM (SELECT * FROM col_have EXCEPT SELECT * FROM col_want) h
    ),
    -- Row-level security: enabled and forced as on the parent, with the parent's policies.
    rls AS (
        SELECT p.oid, 'row security', CASE WHEN p.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               CASE WHEN par.relrowsecurity THEN 'enabled' ELSE 'disabled' END,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relrowsecurity THEN 'ENABLE' ELSE 'DISABLE' END)
        FROM parts p, par WHERE p.relrowsecurity <> par.relrowsecurity
        UNION ALL
        SELECT p.oid, 'forced row security', p.relforcerowsecurity::text, par.relforcerowsecurity::text,
               format('ALTER TABLE %s %s ROW LEVEL SECURITY', p.rel, CASE WHEN par.relforcerowsecurity THEN 'FORCE' ELSE 'NO FORCE' END)
        FROM parts p, par WHERE p.relforcerowsecurity <> par.relforcerowsecurity
    ),
    pol_def AS (
        SELECT pl.polrelid, pl.polname,
               format('AS %s FOR %s TO %s%s%s', CASE WHEN pl.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                      CASE pl.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                      (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE r::regrole::text END, ', ' ORDER BY r)
                       FROM unnest(pl.polroles) r),
                      ' USING (' || pg_catalog.pg_get_expr(pl.polqual, pl.polrelid) || ')',
                      ' WITH CHECK (' || pg_catalog.pg_get_expr(pl.polwithcheck, pl.polrelid) || ')') AS def
        FROM pg_catalog.pg_policy pl
        WHERE pl.polrelid = tbl OR pl.polrelid IN (SELECT p.oid FROM parts p)
    ),
    pol AS (
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, w.polname || ' ' || w.def,
               CASE WHEN h.polname IS NOT NULL THEN format('DROP POLICY %I ON %s; ', h.polname, p.rel) ELSE '' END
               || format('CREATE POLICY %I ON %s %s', w.polname, p.rel, w.def)
        FROM parts p JOIN pol_def w ON w.polrelid = tbl
        LEFT JOIN pol_def h ON h.polrelid = p.oid AND h.polname = w.polname
        WHERE h.def IS DISTINCT FROM w.def
        UNION ALL
        SELECT p.oid, 'policy', h.polname || ' ' || h.def, NULL, format('DROP POLICY %I ON %s', h.polname, p.rel)
        FROM parts p JOIN pol_def h ON h.polrelid = p.oid
        WHERE NOT EXISTS (SELECT 1 FROM pol_def w WHERE w.polrelid = tbl AND w.polname = h.polname)
    ),
    -- Replica identity; the parent's identity index maps to the partition's index attached to it.
    ident AS (
        SELECT p.oid, 'replica identity', p.relreplident::text || coalesce(' ' || pi.indexrelid::regclass::text, ''),
               par.relreplident::text || coalesce(' ' || ci.inhrelid::regclass::text, ''),
               format('ALTER TABLE %s REPLICA IDENTITY %s', p.rel,
                      CASE par.relreplident WHEN 'd' THEN 'DEFAULT' WHEN 'n' THEN 'NOTHING' WHEN 'f' THEN 'FULL'
                           ELSE 'USING INDEX ' || pg_catalog.quote_ident((SELECT x.relname FROM pg_catalog.pg_class x WHERE x.oid = ci.inhrelid)) END)
        FROM parts p CROSS JOIN par
        LEFT JOIN pg_catalog.pg_index pi ON pi.indrelid = p.oid AND pi.indisreplident
        LEFT JOIN pg_catalog.pg_index xi ON xi.indrelid = par.oid AND xi.indisreplident
        LEFT JOIN LATERAL (SELECT h.inhrelid FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index y ON y.indexrelid = h.inhrelid
                           WHERE h.inhparent = xi.indexrelid AND y.indrelid = p.oid) ci ON true
        WHERE (p.relreplident <> par.relreplident OR pi.indexrelid IS DISTINCT FROM ci.inhrelid)
          AND (par.relreplident <> 'i' OR ci.inhrelid IS NOT NULL)
    ),
    comment AS (
        SELECT p.oid, 'comment', pg_catalog.obj_description(p.oid, 'pg_class'), pg_catalog.obj_description(tbl, 'pg_class'),
               format('COMMENT ON TABLE %s IS %s', p.rel, coalesce(pg_catalog.quote_literal(pg_catalog.obj_description(tbl, 'pg_class')), 'NULL'))
        FROM parts p
        WHERE pg_catalog.obj_description(p.oid, 'pg_class') IS DISTINCT FROM pg_catalog.obj_description(tbl, 'pg_class')
    ),
    options AS (
        SELECT p.oid, 'storage options', array_to_string(coalesce(p.reloptions, '{}'), ', '),
               array_to_string(timepart._partition_reloptions(cfg), ', '),
               concat_ws('; ',
                   CASE WHEN p.reloptions IS NOT NULL THEN format('ALTER TABLE %s RESET (%s)', p.rel,
                       (SELECT string_agg(CASE WHEN split_part(o, '=', 1) LIKE 'toast.%' THEN 'toast.' || pg_catalog.quote_ident(substr(split_part(o, '=', 1), 7))
                                               ELSE pg_catalog.quote_ident(split_part(o, '=', 1)) END, ', ') FROM unnest(p.reloptions) o)) END,
                   CASE WHEN timepart._table_options(cfg) <> '{}' THEN format('ALTER TABLE %s SET (%s)', p.rel,
                       timepart._reloptions_sql(timepart._table_options(cfg))) END)
        FROM parts p, cfg
        WHERE ARRAY(SELECT o FROM unnest(coalesce(p.reloptions, '{}')) o ORDER BY o) <> timepart._partition_reloptions(cfg)
    ),
    -- Given at birth only: changing them later rewrites the partition.
    rewrite AS (
        SELECT p.oid, 'tablespace', coalesce(NULLIF(p.reltablespace, 0)::text, 'default'), coalesce(NULLIF(par.reltablespace, 0)::text, 'default'),
               NULL::text
        FROM parts p, par WHERE p.reltablespace <> par.reltablespace
        UNION ALL
        SELECT p.oid, 'unlogged', (p.relpersistence = 'u')::text, cfg.partition_unlogged::text, NULL
        FROM parts p, cfg WHERE (p.relpersistence = 'u') <> cfg.partition_unlogged
    )
    SELECT * FROM acl UNION ALL SELECT * FROM col UNION ALL SELECT * FROM rls UNION ALL SELECT * FROM pol
    UNION ALL SELECT * FROM ident UNION ALL SELECT * FROM comment UNION ALL SELECT * FROM options UNION ALL SELECT * FROM rewrite
    ORDER BY 1, 2, 5;
END $$;

-- Makes a partition just made look like its parent: every difference _partition_drift
-- finds that a statement fixes, in one call of the owner's executor. Returns the
-- properties fixed. A parent with nothing to hand down (no grants, row security,
-- policies, comment or replica identity of its own) costs one catalog probe: a new
-- partition has none of those either, and its options came with CREATE TABLE.
CREATE OR REPLACE FUNCTION timepart._match_parent(tbl regclass, part regclass) RETURNS text[]
LANGUAGE plpgsql AS $$
DECLARE
    fixes text[];
    statements text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl
                   AND (c.relacl IS NOT NULL OR c.relrowsecurity OR c.relforcerowsecurity OR c.relreplident <> 'd'))
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = tbl AND a.attnum > 0 AND a.attacl IS NOT NULL)
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = tbl)
       AND pg_catalog.obj_description(tbl, 'pg_class') IS NULL THEN
        RETURN '{}'::text[];
    END IF;
    SELECT array_agg(DISTINCT d.property ORDER BY d.property), string_agg(d.statement, '; ' ORDER BY d.property, d.statement)
    INTO fixes, statements
    FROM timepart._partition_drift(tbl, part) d WHERE d.statement IS NOT NULL;
    IF statements IS NOT NULL THEN
        PERFORM timepart._as_owner(tbl, statements);
    END IF;
    RETURN coalesce(fixes, '{}'::text[]);
END $$;

CREATE OR REPLACE FUNCTION timepart.sync_partitions(parent regclass, dry_run boolean DEFAULT false)
RETURNS TABLE (partition_name text, property text, current_value text, wanted text, statement text, applied boolean, error text)
LANGUAGE plpgsql AS $$
/* Brings existing partitions in line with their parent after it changed: a new GRANT or
   REVOKE, row security and its policies, replica identity, the comment, the configured
   partition_options. dry_run lists the differences and changes nothing. Each partition is
   changed in one step within the table's lock budget, and logged. Tablespace and
   UNLOGGED are listed with no statement: changing them rewrites the partition. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    step_started timestamptz;
    cfg timepart.config;
    p record;
    err text;
    fixed integer := 0;
    failed integer := 0;
BEGIN
    IF sync_partitions.parent IS NULL OR sync_partitions.dry_run IS NULL THEN
        RAISE EXCEPTION 'parent and dry_run must not be NULL' USING ERRCODE = '22004',
            DETAIL = format('Got %s and %s.', coalesce(sync_partitions.parent::text, 'NULL'), coalesce(sync_partitions.dry_run::text, 'NULL')),
            HINT = 'E.g. SELECT * FROM timepart.sync_partitions(''public.email_events'', dry_run => true);';
    END IF;
    cfg := timepart._config(sync_partitions.parent);
    PERFORM timepart._check_may_act(timepart._caller(), cfg.parent, 'sync its partitions');
    FOR p IN SELECT d.partition_oid, jsonb_agg(to_jsonb(d) ORDER BY d.property, d.statement) AS rows,
                    array_agg(DISTINCT d.property) FILTER (WHERE d.statement IS NOT NULL) AS properties,
                    string_agg(d.statement, '; ' ORDER BY d.property, d.statement) AS statements
             FROM timepart._partition_drift(cfg.parent) d GROUP BY d.partition_oid ORDER BY d.partition_oid::regclass::text LOOP
        err := NULL;
        IF NOT sync_partitions.dry_run AND p.statements IS NOT NULL THEN
            step_started := pg_catalog.clock_timestamp();
            BEGIN
                PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
                PERFORM timepart._as_owner(cfg.parent, p.statements);
                fixed := fixed + 1;
            EXCEPTION WHEN OTHERS THEN
                err := SQLERRM;
                failed := failed + 1;
            END;
            CALL timepart._log('sync_partition', cfg.parent, pg_catalog.split_part(p.partition_oid::regclass::text, '.', 2), err IS NULL,
                                  jsonb_build_object('properties', p.properties, 'statements', p.statements), err, step_started);
        END IF;
        RETURN QUERY
        SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid), r.property, r.current_value, r.wanted, r.statement,
               NOT sync_partitions.dry_run AND r.statement IS NOT NULL AND err IS NULL, err
        FROM jsonb_to_recordset(p.rows) AS r(property text, current_value text, wanted text, statement text);
    END LOOP;
    IF NOT sync_partitions.dry_run THEN
        CALL timepart._log('sync_partitions', cfg.parent, NULL, failed = 0,
                              jsonb_build_object('partitions_fixed', fixed, 'partitions_failed', failed), NULL, started);
    END IF;
END $$;
COMMENT ON FUNCTION timepart.sync_partitions(regclass, boolean) IS
    'Lists (dry_run) or applies the differences between existing partitions and their parent: privileges, row security, policies, replica identity, comment, partition_options';
