-- timepart 0.9 -> 0.10: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart.create_email_events_table(name, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._email_events();
DROP FUNCTION IF EXISTS timepart._migrate_checksum(regclass, text);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT '0.10'::text $$;

-- ==== src/05_owner.sql
-- Running work on a user's table with the table owner's rights, and only those.
--
-- Every statement timepart runs on a user's table (DDL, row moves, counts) may make
-- PostgreSQL run code the owner controls: triggers, constraints, defaults, generated
-- columns, index expressions and predicates (the planner folds those too), policies.
-- So none of them runs as the caller. Each goes through the owner's executor: a
-- SECURITY DEFINER function owned by the table's owner, created by timepart, that
-- refuses to run unless it really runs as that owner with no way to change role
-- (inside a security-definer function PostgreSQL refuses SET ROLE and SET SESSION
-- AUTHORIZATION). This is how VACUUM, ANALYZE and REINDEX run index code, from SQL.
--
-- The owner may ALTER its executor (it owns it) but cannot replace its body (no CREATE
-- on schema timepart); the body checks its own context on every call, so an executor
-- turned into SECURITY INVOKER, or given other settings, refuses to run.

-- The role that called into timepart, seen from inside a SECURITY DEFINER function
-- (where current_user is the definer): the session's SET ROLE, else the session user.
-- Code running inside an executor (a table owner's trigger, constraint, policy or index
-- code, which may call timepart's functions) speaks for nobody: NULL, so no check it
-- reaches can borrow the session's rights. Only a function of schema timepart can put
-- "function timepart._as_owner_<oid>(" on the call stack.
CREATE OR REPLACE FUNCTION timepart._caller() RETURNS name
LANGUAGE plpgsql STABLE AS $$
DECLARE
    ctx text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF ctx ~ 'function timepart\._as_owner_[0-9]+\(' THEN
        RETURN NULL;
    END IF;
    RETURN CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.=) 'none' THEN session_user
                ELSE pg_catalog.current_setting('role')::name END;
END $$;

-- Whether a role has partition_admin's rights (false when the role does not exist).
CREATE OR REPLACE FUNCTION timepart._is_admin(who name) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(pg_catalog.pg_has_role(who, pg_catalog.to_regrole('partition_admin'), 'USAGE'), false)
$$;

-- The session settings timepart's code relies on, as one text, read the same way inside
-- an executor before and after the owner's code runs (an SQL expression, spelled out in
-- the executor's body).
CREATE OR REPLACE FUNCTION timepart._guarded_settings() RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'pg_catalog.concat_ws(pg_catalog.chr(1), ' || string_agg(format('pg_catalog.current_setting(%L, true)', g), ', ' ORDER BY g) || ')'
    FROM unnest(ARRAY['search_path', 'DateStyle', 'IntervalStyle', 'TimeZone', 'standard_conforming_strings', 'backslash_quote',
                      'default_tablespace', 'default_table_access_method', 'row_security', 'session_replication_role',
                      'timepart.log_retention']) g
$$;

-- The body of an executor for one role. Every name in it is schema-qualified and every
-- operator spelled OPERATOR(pg_catalog.x): its owner can change its search_path.
CREATE OR REPLACE FUNCTION timepart._executor_body(owner_name name) RETURNS text
LANGUAGE sql STABLE AS $body$
    SELECT pg_catalog.format($f$
DECLARE
    result pg_catalog.jsonb;
    n pg_catalog.int8;
    escaped pg_catalog.bool := false;
    settings pg_catalog.text;
BEGIN
    IF current_user OPERATOR(pg_catalog.<>) %1$L::pg_catalog.name THEN
        RAISE EXCEPTION 'timepart: the executor of %% runs as %%', %1$L, current_user USING ERRCODE = '42501';
    END IF;
    -- Only a security-definer context refuses a role change: prove we are in one.
    BEGIN
        PERFORM pg_catalog.set_config('role', 'none', true);
        escaped := true;
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    IF escaped THEN
        RAISE EXCEPTION 'timepart: the executor of %% is not a security definer', %1$L USING ERRCODE = '42501',
            HINT = 'Someone altered it; timepart refuses to run user code through it.';
    END IF;
    -- The owner's code must not leave settings behind that timepart's own code, which
    -- goes on after this returns, would then run with: a plain SET (or set_config(...,
    -- false)) outlives every function's SET clause. A change is refused, and the abort
    -- of the step puts the settings back.
    settings := %2$s;
    IF wants_value THEN
        EXECUTE q INTO result;
    ELSE
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := pg_catalog.jsonb_build_object('rows', n);
    END IF;
    IF settings OPERATOR(pg_catalog.<>) %2$s THEN
        RAISE EXCEPTION 'timepart: code of %% changed session settings', %1$L USING ERRCODE = '42501',
            DETAIL = 'A trigger, constraint, policy or index expression of the table set search_path or another setting timepart relies on.',
            HINT = 'Use SET LOCAL in a function with its own SET clause, or none at all.';
    END IF;
    RETURN result;
END $f$, owner_name, timepart._guarded_settings())
$body$;

-- A role's executor (its qualified name), created when missing. SECURITY DEFINER (as the extension's owner):
-- only it may create a function owned by another role. Refuses an executor whose owner or
-- security someone changed (it is re-created only by dropping it); gives an older
-- timepart's executor this one's body.
CREATE OR REPLACE FUNCTION timepart._executor(owner_oid oid) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    fname name := timepart._executor_name(owner_oid);
    owner_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) owner_oid);
    f record;
    sig text;
    body text;
    ddl text;
BEGIN
    IF owner_name IS NULL THEN
        RAISE EXCEPTION 'role with oid % does not exist', owner_oid USING ERRCODE = '42704',
            DETAIL = 'timepart runs work on a table with its owner''s rights.', HINT = 'Check the table''s owner.';
    END IF;
    sig := pg_catalog.format('timepart.%I(pg_catalog.text, pg_catalog.bool)', fname);
    body := timepart._executor_body(owner_name);
    ddl := pg_catalog.format('CREATE OR REPLACE FUNCTION %s RETURNS pg_catalog.jsonb LANGUAGE plpgsql SECURITY DEFINER '
                             'SET search_path = pg_catalog, pg_temp AS %L',
                             pg_catalog.format('timepart.%I(q pg_catalog.text, wants_value pg_catalog.bool)', fname), body);
    SELECT p.proowner, p.prosecdef, p.prosrc INTO f FROM pg_catalog.pg_proc p
    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'timepart'::pg_catalog.regnamespace AND p.proname OPERATOR(pg_catalog.=) fname;
    IF FOUND THEN
        IF f.proowner OPERATOR(pg_catalog.<>) owner_oid OR NOT f.prosecdef THEN
            RAISE EXCEPTION 'the timepart executor of role % was altered', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('%s: owner %s, security definer %s.', sig, f.proowner::regrole, f.prosecdef),
                HINT = pg_catalog.format('A superuser can drop it (ALTER EXTENSION timepart DROP FUNCTION %s; DROP FUNCTION %s;); '
                                         'timepart makes it again.', sig, sig);
        END IF;
        -- Its owner cannot change the body (no CREATE on schema timepart): another body is
        -- an older timepart's, which this one replaces.
        IF f.prosrc OPERATOR(pg_catalog.<>) body THEN
            EXECUTE ddl;
        END IF;
        RETURN pg_catalog.format('timepart.%I', fname);
    END IF;
    EXECUTE ddl;
    EXECUTE pg_catalog.format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', sig);
    IF owner_name OPERATOR(pg_catalog.<>) current_user THEN
        BEGIN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s OWNER TO %I', sig, owner_name);
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE EXCEPTION 'timepart cannot act with the rights of role %', owner_name USING ERRCODE = '42501',
                DETAIL = pg_catalog.format('timepart''s owner %s is not a superuser and cannot give role %s a function.',
                                           current_user, owner_name),
                HINT = 'Install timepart as a superuser, or manage only tables owned by the role that installed it.';
        END;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'timepart') THEN
        -- DROP EXTENSION takes it along.
        EXECUTE pg_catalog.format('ALTER EXTENSION timepart ADD FUNCTION %s', sig);
    END IF;
    RETURN pg_catalog.format('timepart.%I', fname);
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
    IF NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_class c
        WHERE (c.oid = tbl OR (c.relkind = 'r' AND (c.oid = part OR (part IS NULL
               AND c.oid IN (SELECT i.inhrelid FROM pg_catalog.pg_inherits i WHERE i.inhparent = tbl)))))
          AND (c.relacl IS NOT NULL OR c.relrowsecurity OR c.relforcerowsecurity OR c.relreplident <> 'd'
               OR (c.oid <> tbl AND (c.reloptions IS NOT NULL OR c.relpersistence = 'u'
                                     OR c.reltablespace <> (SELECT p.reltablespace FROM pg_catalog.pg_class p WHERE p.oid = tbl)))
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND a.attacl IS NOT NULL)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_policy y WHERE y.polrelid = c.oid)
               OR EXISTS (SELECT 1 FROM pg_catalog.pg_description d
                          WHERE d.objoid = c.oid AND d.classoid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0)))
       AND NOT EXISTS (SELECT 1 FROM timepart.config g WHERE g.parent = tbl
                       AND (g.partition_unlogged OR timepart._table_options(g) <> '{}'::jsonb)) THEN
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

-- Builds one partition inside the caller's transaction: CREATE TABLE (LIKE parent),
-- rows for its range moved out of the default partition, templated indexes, ATTACH.
-- A bound of NULL means the default partition. Returns what it did.
-- Traffic first: the bulk of a move runs before any lock that blocks inserts into the
-- table (it holds the default partition only); the short lock that ATTACH needs comes
-- after, when nothing is left to move.
CREATE OR REPLACE FUNCTION timepart._build_partition(cfg timepart.config, part_name name,
                                                     range_start timestamptz, range_end timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    default_part regclass;
    part regclass;
    moved bigint := 0;
    indexes text[];
    fence name;
    lo text := timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone);   -- NULL for the default partition
    hi text := timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone);
BEGIN
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;

    part := timepart._new_partition_table(cfg.parent, part_name);

    IF range_start IS NOT NULL AND default_part IS NOT NULL THEN
        -- EXCLUSIVE on the default partition alone: reads go on, and so do inserts into
        -- every other partition; what waits is only traffic for the default partition
        -- itself, which resumes after the move and finds the rows where they now are.
        EXECUTE format('LOCK TABLE %s IN EXCLUSIVE MODE', default_part);
        moved := timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
        IF moved > 0 THEN
            -- The move leaves its rows behind as dead tuples, which another look and
            -- ATTACH's check of the default partition would each scan while inserts wait
            -- at the parent. A constraint saying the default holds nothing of this range,
            -- checked now (inserts into the table go on), spares both.
            fence := timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = default_part), 'timepart_fence');
            PERFORM timepart._as_owner(cfg.parent, format(
                'ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NULL OR %I OPERATOR(pg_catalog.<) %s OR %I OPERATOR(pg_catalog.>=) %s) NOT VALID',
                default_part, fence, cfg.key_column, cfg.key_column, lo, cfg.key_column, hi));
            PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s VALIDATE CONSTRAINT %I', default_part, fence));
            -- The same for the new partition's own check of the rows it now holds.
            PERFORM timepart._as_owner(cfg.parent, format(
                'ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I IS NOT NULL AND %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s)',
                part, fence, cfg.key_column, cfg.key_column, lo, cfg.key_column, hi));
        END IF;
        -- Inserts wait at the parent (within the lock budget) rather than at the default
        -- partition: one routed to the default before the new partition exists would fail
        -- its partition check once we commit; one waiting at the parent is routed afresh.
        EXECUTE format('LOCK TABLE ONLY %s IN SHARE ROW EXCLUSIVE MODE', cfg.parent);
        -- ATTACH takes this lock anyway; taking it first keeps new rows for this range
        -- out of the default partition while the last of its old ones move.
        EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', default_part);
        IF fence IS NULL THEN
            moved := moved + timepart._move_waiting_rows(cfg, default_part, part, range_start, range_end);
        END IF;
    END IF;

    indexes := timepart._index_partition(cfg.parent, part);
    IF range_start IS NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s DEFAULT', cfg.parent, part));
    ELSE
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s ATTACH PARTITION %s FOR VALUES FROM (%s) TO (%s)',
            cfg.parent, part, lo, hi));
    END IF;
    IF fence IS NOT NULL THEN
        PERFORM timepart._as_owner(cfg.parent, format('ALTER TABLE %s DROP CONSTRAINT %I; ALTER TABLE %s DROP CONSTRAINT %I',
                                                      default_part, fence, part, fence));
    END IF;
    -- ATTACH matched the indexes built above to the parent's templated indexes; a replica
    -- identity index maps to the partition's index now.
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cfg.parent AND c.relreplident = 'i') THEN
        PERFORM timepart._match_parent(cfg.parent, part);
    END IF;
    RETURN jsonb_build_object('indexes', to_jsonb(indexes), 'moved_rows', moved);
END $$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
-- Identity columns are the parent's alone: since 17 the attached partition shares them;
-- before, the partition's column takes its values from the parent's sequence, so a row
-- inserted straight into a partition never repeats an id.
CREATE OR REPLACE FUNCTION timepart._new_partition_table(parent regclass, part_name name) RETURNS regclass
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = parent);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    cfg timepart.config := timepart._config(parent);
    space name := (SELECT t.spcname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                   WHERE c.oid = parent);
    -- Born with what cannot change later without a rewrite: logged-ness, the parent's
    -- tablespace, the configured storage options.
    ddl text := format('CREATE %sTABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY)%s',
                       CASE WHEN cfg.partition_unlogged THEN 'UNLOGGED ' ELSE '' END, part_schema, part_name, parent,
                       CASE WHEN cfg.partition_options <> '{}'::jsonb THEN format(' WITH (%s)', timepart._reloptions_sql(cfg.partition_options)) ELSE '' END);
    part regclass;
    col record;
    ctx text;
BEGIN
    -- Only as a step of _build_partition, whose bounds and name were checked: called on
    -- its own (it runs as timepart's owner) it would make tables of any name.
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF pg_catalog.split_part(ctx, E'\n', 2) !~ '^PL/pgSQL function timepart\._build_partition\(' THEN
        RAISE EXCEPTION 'timepart._new_partition_table is a step of making a partition' USING ERRCODE = '42501',
            DETAIL = 'It is called by timepart._build_partition only.', HINT = 'Use timepart.create_partition or timepart.maintain.';
    END IF;
    PERFORM timepart._check_may_maintain(timepart._caller(), parent, 'create its partitions');
    IF pg_catalog.has_schema_privilege(owner_oid, part_schema, 'CREATE') THEN
        PERFORM timepart._as_owner(parent, ddl || CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END);
    ELSE
        -- Made by timepart's owner, for whom no tablespace is out of bounds: the one the
        -- session's default_tablespace names (the caller's setting) must be the table
        -- owner's to use, and it is named outright.
        space := coalesce(space, NULLIF(pg_catalog.current_setting('default_tablespace'), ''));
        IF space IS NOT NULL AND space <> (SELECT t.spcname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_tablespace t
                                             ON t.oid = d.dattablespace WHERE d.datname = pg_catalog.current_database())
           AND NOT pg_catalog.has_tablespace_privilege(owner_oid, space, 'CREATE') THEN
            RAISE EXCEPTION 'permission denied for tablespace %', space USING ERRCODE = '42501',
                DETAIL = format('The partition would go to tablespace %s, where %s, which owns %s, may not create tables.',
                                space, owner_oid::regrole, parent),
                HINT = 'Grant the owner CREATE on the tablespace, or RESET default_tablespace.';
        END IF;
        EXECUTE ddl || CASE WHEN space IS NOT NULL THEN format(' TABLESPACE %I', space) ELSE '' END;
        EXECUTE format('ALTER TABLE %I.%I OWNER TO %s', part_schema, part_name, owner_oid::regrole);
    END IF;
    part := format('%I.%I', part_schema, part_name)::regclass;
    IF NOT timepart._partitions_share_identity() THEN
        FOR col IN SELECT a.attname, pg_catalog.pg_get_serial_sequence(parent::text, a.attname) AS seq
                   FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = parent AND a.attnum > 0 AND NOT a.attisdropped AND a.attidentity <> '' LOOP
            PERFORM timepart._as_owner(parent, format('ALTER TABLE %s ALTER COLUMN %I SET DEFAULT pg_catalog.nextval(%L::pg_catalog.regclass)',
                                                      part, col.attname, col.seq));
        END LOOP;
    END IF;
    -- The parent's privileges, row security and policies, comment and replica identity,
    -- all before the partition is attached and visible (55_look.sql).
    PERFORM timepart._match_parent(parent, part);
    RETURN part;
END $$;

CREATE OR REPLACE FUNCTION timepart.create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
/* Creates one partition with its templated indexes. Already there: a notice and its
   name. Misaligned, reversed or overlapping bounds: an error, nothing changed. */
BEGIN
    IF timepart._needs_admin(create_partition.parent) THEN
        RETURN timepart._admin_create_partition(create_partition.parent, range_start, range_end);
    END IF;
    RETURN timepart._create_partition(create_partition.parent, range_start, range_end);
END $$;

CREATE OR REPLACE FUNCTION timepart._create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    part_name name;
    existing text;
    result jsonb;
BEGIN
    existing := timepart._check_range(cfg, range_start, range_end);
    IF existing IS NOT NULL THEN
        RAISE NOTICE 'partition % already exists', existing;
        RETURN existing;
    END IF;
    part_name := timepart._partition_name(parent, range_start, cfg.partition_interval, cfg.time_zone);
    PERFORM timepart._check_name_free(parent, part_name);
    PERFORM pg_catalog.pg_advisory_xact_lock(timepart._lock_key(parent));
    result := timepart._attempt(cfg, 'build', part_name, range_start, range_end);
    IF NOT (result->>'ok')::boolean THEN
        PERFORM timepart._log('create_partition', parent, part_name, false, result, result->>'error', started);
        RAISE EXCEPTION 'could not create partition %: %', part_name, result->>'error'
            USING ERRCODE = coalesce(result->>'sqlstate', 'P0001'),
                  DETAIL = format('Range %s to %s, %s attempt(s).', range_start, range_end, result->>'attempts'),
                  HINT = 'A lock wait gives up after the table''s lock_timeout; run it again when traffic allows.';
    END IF;
    PERFORM timepart._log('create_partition', parent, part_name, true,
        result || jsonb_build_object('range_start', range_start, 'range_end', range_end), NULL, started);
    RETURN format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
                            ON n.oid = c.relnamespace WHERE c.oid = parent), part_name);
END $$;

-- The period of a managed table that contains a moment: the bounds create_partition
-- accepts for it. For callers holding a moment with a time of day (the seed's
-- datetime.now().replace(day=1)).
CREATE OR REPLACE FUNCTION timepart.period_of(parent regclass, moment timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config := timepart._config(parent);
BEGIN
    PERFORM timepart._check_moment(moment, 'moment');
    range_start := timepart._period_of(cfg, moment);
    range_end := timepart._period_add(range_start, cfg.partition_interval, 1, cfg.time_zone);
    RETURN NEXT;
END $$;

COMMENT ON FUNCTION timepart.period_of(regclass, timestamptz) IS
    'The bounds of the period of a managed table that contains a moment';

-- One table's partition steps, in order: each {"partition", "action" ('build' or
-- 'retire'), "range_start", "range_end", ...} runs through _attempt and is logged as
-- log_operation with its extra keys. A lock timeout ends the run for this table (traffic
-- holds it: back off for the whole table, not partition by partition). Never raises.
-- Traffic first: a DETACH or DROP holds the parent's ACCESS EXCLUSIVE lock to the end of
-- the transaction, so once retiring has held it for the table's lock budget no further
-- partition is retired in this call; they are counted in "left" for the next call
-- (cleanup_each commits and calls again). Building next to a default partition holds the
-- parent's SHARE ROW EXCLUSIVE lock (inserts wait) the same way: once that has lasted the
-- lock budget and an insert or a read is waiting for the table, the rest of the periods
-- are left for the next call (maintain_each commits and calls again). With nobody
-- waiting the call goes on: that stalls no one.
-- Returns {"done": [names], "errors": [texts], "moved_rows": n, "left": n}.
CREATE OR REPLACE FUNCTION timepart._run_steps(cfg timepart.config, log_operation text, steps jsonb, rest text)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    step jsonb;
    step_started timestamptz;
    locked_since timestamptz;
    part_name name;
    res jsonb;
    done jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    -- A build locks the parent against inserts only next to a default partition.
    build_locks boolean := EXISTS (SELECT 1 FROM pg_catalog.pg_partitioned_table t WHERE t.partrelid = cfg.parent AND t.partdefid <> 0);
BEGIN
    FOR step IN SELECT s FROM jsonb_array_elements(steps) s LOOP
        step_started := pg_catalog.clock_timestamp();
        IF step_started - locked_since > cfg.lock_timeout
           AND (step->>'action' = 'retire' OR left_over > 0 OR timepart._traffic_waits()) THEN
            left_over := left_over + 1;
            CONTINUE;
        END IF;
        part_name := step->>'partition';
        BEGIN
            IF step->>'action' = 'build' THEN
                PERFORM timepart._check_name_free(cfg.parent, part_name);
            END IF;
            res := timepart._attempt(cfg, step->>'action', part_name, (step->>'range_start')::timestamptz,
                                     (step->>'range_end')::timestamptz);
        EXCEPTION WHEN OTHERS THEN
            res := jsonb_build_object('ok', false, 'error', SQLERRM, 'sqlstate', SQLSTATE);
        END;
        res := res || (step - 'partition' - 'action');
        PERFORM timepart._log(log_operation, cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
        IF (res->>'ok')::boolean THEN
            IF step->>'action' = 'retire' OR (build_locks AND step->>'range_start' IS NOT NULL) THEN
                locked_since := coalesce(locked_since, step_started);
            END IF;
            done := done || to_jsonb(part_name::text);
            moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
        ELSE
            errors := errors || to_jsonb(format('%s: %s', part_name, res->>'error'));
            IF res->>'sqlstate' = '55P03' THEN
                errors := errors || to_jsonb(format('%s: the other %s are left for the next run', cfg.parent, rest));
                EXIT;
            END IF;
        END IF;
    END LOOP;
    IF left_over > 0 THEN
        RAISE NOTICE 'timepart: % partition(s) of % left for the next call: this one held the table for its lock budget (%)',
            left_over, cfg.parent, cfg.lock_timeout;
    END IF;
    RETURN jsonb_build_object('done', done, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

-- Whether another session waits for a lock this transaction holds (an insert at the
-- parent, a read or write at the default partition).
CREATE OR REPLACE FUNCTION timepart._traffic_waits() RETURNS boolean
LANGUAGE sql VOLATILE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                   WHERE NOT l.granted AND pg_catalog.pg_backend_pid() = ANY (pg_catalog.pg_blocking_pids(l.pid)))
$$;

-- ==== src/63_admin.sql
-- Operations for partition_admin on tables it does not own.
--
-- The seed: "partition management requires superuser or partition_admin". A member of
-- partition_admin may run maintain, cleanup with the configured retention,
-- create_partition, snapshot_stats and check_alerts on every table its owner registered,
-- without owning it. It may not register or reconfigure such a table, shorten its
-- retention, or touch a table nobody registered.
--
-- How: the public operations run as the caller. When the caller may not act on a table
-- itself (_needs_admin), they hand the run to _admin_run / _admin_create_partition,
-- which run as timepart's owner (SECURITY DEFINER) after checking the admin's limits
-- themselves, so calling them directly gives nothing more. EXECUTE on them is
-- partition_admin's (and the owner's), and PostgreSQL checks that against the real
-- caller. As everywhere, every statement on the table still runs through its owner's
-- executor (05_owner.sql): the owner's code runs with the owner's rights only, and
-- nothing the admin controls (its search_path, its objects) is used on the way.

-- Whether a role may run the operations (maintain, cleanup with the configured
-- retention, create_partition, snapshot, alerts) on a table: it may act on it, or it is
-- a partition_admin and the table's owner registered it. Registering, reconfiguring and
-- migrating stay the owner's (_may_act).
CREATE OR REPLACE FUNCTION timepart._may_maintain(who name, tbl regclass) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(timepart._may_act(who, tbl), false)
        OR (timepart._is_admin(who) AND EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) tbl))
$$;

CREATE OR REPLACE FUNCTION timepart._check_may_maintain(who name, tbl regclass, action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT timepart._may_maintain(who, tbl) THEN
        RAISE EXCEPTION 'must be owner of table %, or a partition_admin on a managed table, to %', tbl, action
            USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s and %s managed; %s is neither a member of the owner nor of partition_admin.',
                            tbl, coalesce((SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c WHERE c.oid = tbl), 'nobody'),
                            CASE WHEN EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN 'is' ELSE 'is not' END, who),
            HINT = 'Run it as the table''s owner, or GRANT partition_admin to the role once the owner has registered the table.';
    END IF;
END $$;

-- Whether the caller (current_user: this runs as the caller) needs partition_admin's
-- route for one table or every managed one: it may not act on one of them itself.
CREATE OR REPLACE FUNCTION timepart._needs_admin(parent regclass) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM timepart._managed(parent) c WHERE NOT coalesce(timepart._may_act(current_user, c.parent), false))
$$;

-- The admin's limits on a cleanup, checked for every table before any change: the
-- configured retention or a longer one, as of now or earlier. A dry run changes
-- nothing and may ask anything.
CREATE OR REPLACE FUNCTION timepart._check_admin_cleanup(parent regclass, retention interval, dry_run boolean,
                                                         as_of timestamptz) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config;
BEGIN
    IF dry_run THEN
        RETURN;
    END IF;
    IF as_of > now() THEN
        RAISE EXCEPTION 'only a table''s owner may clean up as of a later moment' USING ERRCODE = '42501',
            DETAIL = format('as_of is %s, now is %s: a later moment removes partitions the retention still keeps.', as_of, now()),
            HINT = 'Leave as_of out; a dry run (dry_run => true) shows what a later moment would remove.';
    END IF;
    FOR cfg IN SELECT * FROM timepart._managed(parent) LOOP
        -- Compared by the boundary each draws, not as intervals ('360 days' is not
        -- shorter than '1 year' as an interval, but it keeps fewer days).
        IF retention IS NOT NULL AND (cfg.retention IS NULL OR timepart._retention_boundary(cfg, retention, now())
                                                               > timepart._retention_boundary(cfg, cfg.retention, now())) THEN
            RAISE EXCEPTION 'only the owner of % may shorten its retention', cfg.parent USING ERRCODE = '42501',
                DETAIL = format('Its retention is %s; %s asked for %s. partition_admin cleans up with the configured retention.',
                                coalesce(cfg.retention::text, 'none (keep everything)'), timepart._caller(), retention),
                HINT = format('Leave the retention out, or ask %s''s owner (%s) to change it with timepart.configure().',
                              cfg.parent, (SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c WHERE c.oid = cfg.parent));
        END IF;
    END LOOP;
END $$;

-- timepart's owner acts for other roles only with rights it has: as a superuser for
-- anyone, else only for tables of roles it is a member of (script mode on a managed
-- service). Refused up front, saying what to grant instead.
CREATE OR REPLACE FUNCTION timepart._check_owner_reach(parent regclass) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
    out_of_reach text;
BEGIN
    SELECT string_agg(format('%s (owned by %s)', c.parent, r.relowner::regrole), ', ') INTO out_of_reach
    FROM timepart._managed(parent) c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE NOT coalesce(timepart._may_act(current_user, c.parent), false);
    IF out_of_reach IS NOT NULL THEN
        RAISE EXCEPTION 'timepart cannot act for partition_admin on %', out_of_reach USING ERRCODE = '42501',
            DETAIL = format('timepart''s owner %s is not a superuser, nor a member of the owning role.', current_user),
            HINT = 'Grant the admin the owning role instead (GRANT <owner> TO <admin>), or install timepart as a superuser.';
    END IF;
END $$;

-- maintain or cleanup for a partition_admin (see _run), as timepart's owner.
CREATE OR REPLACE FUNCTION timepart._admin_run(operation text, parent regclass, premake integer, retention interval,
                                               dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
BEGIN
    IF operation IS NULL OR operation NOT IN ('maintain', 'cleanup') THEN
        RAISE EXCEPTION 'unknown operation %', coalesce(operation, 'NULL') USING ERRCODE = '22023',
            DETAIL = 'partition_admin runs maintain and cleanup on tables it does not own.', HINT = 'Call timepart.maintain or timepart.cleanup.';
    END IF;
    IF parent IS NOT NULL THEN
        PERFORM timepart._config(parent);
    END IF;
    IF premake IS NOT NULL THEN
        PERFORM timepart._check_premake(premake);
    END IF;
    PERFORM timepart._check_retention(retention);
    PERFORM timepart._check_moment(as_of);
    IF operation = 'cleanup' THEN
        PERFORM timepart._check_admin_cleanup(parent, retention, coalesce(dry_run, false), as_of);
    END IF;
    PERFORM timepart._check_owner_reach(parent);
    RETURN timepart._run(operation, parent, premake, retention, coalesce(dry_run, false), as_of);
END $$;

-- create_partition for a partition_admin, as timepart's owner: the table must be managed.
CREATE OR REPLACE FUNCTION timepart._admin_create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_owner_reach(parent);
    RETURN timepart._create_partition(parent, range_start, range_end);
END $$;

-- The archive schema of a table, owned by the table's owner: created so when missing,
-- refused when someone else owns it or when it is named like a role (a role's "$user"
-- schema would put archived tables on that role's search_path). SECURITY DEFINER: the
-- table's owner may lack CREATE on the database.
CREATE OR REPLACE FUNCTION timepart._archive_schema(tbl regclass) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl);
    schema_owner oid;
BEGIN
    PERFORM timepart._check_archive_schema(cfg.archive_schema);
    SELECT n.nspowner INTO schema_owner FROM pg_catalog.pg_namespace n WHERE n.nspname = cfg.archive_schema;
    IF NOT FOUND THEN
        EXECUTE format('CREATE SCHEMA %I AUTHORIZATION %s', cfg.archive_schema, owner_oid::regrole);
    ELSIF schema_owner <> owner_oid THEN
        RAISE EXCEPTION 'archive schema % belongs to %, not to the owner of %', cfg.archive_schema, schema_owner::regrole, tbl
            USING ERRCODE = '42501', DETAIL = format('%s is owned by %s.', tbl, owner_oid::regrole),
                  HINT = 'Archive into a schema the table''s owner owns, or one that does not exist yet (timepart creates it).';
    END IF;
    RETURN cfg.archive_schema;
END $$;

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
BEGIN
    PERFORM timepart._check_retention(retention);
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    IF timepart._needs_admin(cleanup.parent) THEN
        RETURN timepart._admin_run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of);
    END IF;
    RETURN timepart._run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of);
END $$;

-- One table's maintenance, under its advisory lock (taken by _run). Never raises:
-- failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._maintain_table(cfg timepart.config, premake integer, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    res jsonb;
    steps jsonb;
    created jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    err text;
BEGIN
    BEGIN
        BEGIN
            res := timepart._ensure_default(cfg);
        EXCEPTION WHEN OTHERS THEN
            -- A default partition that cannot be made must not stop the periods below.
            res := jsonb_build_object('ok', false, 'partition', cfg.parent::text || ' default', 'error', SQLERRM);
        END;
        IF res IS NOT NULL THEN
            PERFORM timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
                                  res, res->>'error', started);
            IF (res->>'ok')::boolean THEN created := created || to_jsonb(res->>'partition');
            ELSE errors := errors || to_jsonb(format('%s: %s', res->>'partition', res->>'error')); END IF;
        END IF;
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'partition', CASE WHEN p.whole THEN timepart._partition_name(cfg.parent, p.range_start, cfg.partition_interval, cfg.time_zone)
                                     ELSE timepart._piece_name(cfg.parent, p.range_start, p.range_end, cfg.time_zone) END,
                   'action', 'build', 'range_start', p.range_start, 'range_end', p.range_end, 'reason', p.reason)
                   ORDER BY p.range_start), '[]'::jsonb)
        INTO steps FROM timepart._plan_partitions(cfg.parent, premake, as_of) p;
        res := timepart._run_steps(cfg, 'create_partition', steps, 'missing periods');
        created := created || (res->'done');
        errors := errors || (res->'errors');
        moved := (res->>'moved_rows')::bigint;
        left_over := (res->>'left')::integer;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
        errors := errors || to_jsonb(err);
    END;
    PERFORM timepart._log('maintain', cfg.parent, NULL, jsonb_array_length(errors) = 0,
        jsonb_build_object('created', created, 'errors', errors, 'moved_rows', moved, 'premake', premake, 'as_of', as_of,
                           'left', left_over),
        NULLIF(array_to_string(ARRAY(SELECT jsonb_array_elements_text(errors)), '; '), ''), started);
    RETURN jsonb_build_object('table', cfg.parent::text, 'created', created, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
BEGIN
    IF premake IS NOT NULL THEN
        PERFORM timepart._check_premake(premake);
    END IF;
    PERFORM timepart._check_moment(as_of);
    IF timepart._needs_admin(maintain.parent) THEN
        RETURN timepart._admin_run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
    END IF;
    RETURN timepart._run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
END $$;

-- The first (or last) bound of the ANALYZE histogram of a column, as text; NULL without one.
CREATE OR REPLACE FUNCTION timepart._histogram_end(schema_name name, table_name name, column_name name, last boolean)
RETURNS text LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN last THEN e[array_length(e, 1)] ELSE e[1] END
    FROM (SELECT st.histogram_bounds::text::text[] AS e FROM pg_catalog.pg_stats st
          WHERE st.schemaname = schema_name AND st.tablename = table_name AND st.attname = column_name) h
$$;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that may not SELECT the table, unless monitor_sees_values. exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    IF EXISTS (SELECT 1 FROM timepart._managed(partition_stats.parent) c JOIN pg_catalog.pg_inherits i ON i.inhparent = c.parent
               JOIN pg_catalog.pg_class r ON r.oid = i.inhrelid WHERE r.relkind = 'f') THEN
        RAISE NOTICE 'timepart: partition_stats skips foreign-table partitions';
    END IF;
    RETURN QUERY
    WITH parts AS (
        SELECT c.*, v.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM timepart._managed(partition_stats.parent) c
        -- Exact key values are data: shown to roles that may read the table, or when its
        -- owner allows. Decided once per table.
        CROSS JOIN LATERAL (SELECT coalesce(c.monitor_sees_values OR timepart._may_act(timepart._caller(), c.parent)
                                   OR pg_catalog.has_table_privilege(timepart._caller(), c.parent, 'SELECT'), false) AS reveal) v
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE (partition_stats.parent IS NULL OR c.parent = partition_stats.parent)
          -- Foreign-table partitions: counting them would read remote data (said below).
          AND (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = p.partition_oid) <> 'f'
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes,
               CASE WHEN p.live THEN pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes
        FROM parts p
    ), judged AS (
        SELECT p.*, s.record_count AS s_rows, x.record_count AS x_rows, x.oldest AS x_oldest, x.newest AS x_newest, s.size_bytes AS s_bytes, s.oldest_record AS s_oldest, s.newest_record AS s_newest,
               (s.partition_oid IS NOT NULL AND NOT p.is_default AND p.range_end <= s.taken_at
                AND s.changes_seen = p.changes) AS sealed
        FROM sized p LEFT JOIN snap s ON s.partition_oid = p.partition_oid
        -- The condition inside the subquery makes it a one-time filter: only small live
        -- partitions are scanned.
        -- An empty heap holds no rows: exact without a scan.
        LEFT JOIN LATERAL (SELECT 0::bigint AS record_count, NULL::timestamptz AS oldest, NULL::timestamptz AS newest
                           WHERE p.live AND p.heap_bytes = 0
                           UNION ALL
                           SELECT f.* FROM timepart._exact_figures(p.partition_oid, p.key_column) f
                           WHERE p.live AND p.heap_bytes > 0 AND p.live_bytes <= timepart._exact_limit_bytes()) x ON true
    )
    SELECT j.parent::text, j.partition_name::text,
           CASE WHEN j.is_default THEN 'default'
                ELSE timepart._bounds_label(j.range_start, j.range_end, j.time_zone) END,
           j.range_start, j.range_end,
           CASE WHEN j.sealed THEN j.s_rows WHEN j.x_rows IS NOT NULL THEN j.x_rows
                ELSE greatest(pg_catalog.pg_stat_get_live_tuples(j.partition_oid),
                              (SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class WHERE oid = j.partition_oid)) END,
           round((CASE WHEN j.sealed THEN j.s_bytes WHEN j.live THEN j.live_bytes
                       ELSE timepart._estimated_bytes(j.partition_oid) END) / 1048576.0, 2),
           -- Else oldest and newest from the ANALYZE histogram of the key: approximate, no
           -- scan, and looked up only for the partitions that need it.
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(timepart._histogram_end(j.schema_name, j.partition_name, j.key_column, false),
                                           j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(timepart._histogram_end(j.schema_name, j.partition_name, j.key_column, true),
                                           j.key_type, j.time_zone) END,
           coalesce(ix.n, 0)::int,
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    -- Index counts in one pass over pg_index, not one scan per partition.
    LEFT JOIN (SELECT i.indrelid, count(*) AS n FROM pg_catalog.pg_index i GROUP BY i.indrelid) ix ON ix.indrelid = j.partition_oid
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;

-- A managed table dropped by hand leaves its configuration behind: it is forgotten (with
-- its index templates), its open alerts resolved, and that is logged. check_alerts, the
-- daily health job, does it. Returns how many were forgotten.
CREATE OR REPLACE FUNCTION timepart._forget_orphans() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    gone record;
    n integer := 0;
BEGIN
    FOR gone IN DELETE FROM timepart.config c WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class r WHERE r.oid = c.parent)
                RETURNING c.parent::oid AS table_oid, c.key_column, c.partition_interval LOOP
        UPDATE timepart.alerts a SET resolved_at = pg_catalog.clock_timestamp()
        WHERE a.resolved_at IS NULL AND a.parent_table = gone.table_oid::text;
        PERFORM timepart._log('forget', NULL, NULL, true,
            jsonb_build_object('table_oid', gone.table_oid, 'key_column', gone.key_column, 'partition_interval', gone.partition_interval,
                               'reason', 'the table was dropped; its configuration and index templates are forgotten'), NULL,
            pg_catalog.clock_timestamp());
        n := n + 1;
    END LOOP;
    -- Alerts name their table as text (schema-qualified): those of a table that is gone
    -- are resolved with it, whenever it went.
    UPDATE timepart.alerts a SET resolved_at = pg_catalog.clock_timestamp()
    WHERE a.resolved_at IS NULL AND a.parent_table LIKE '%.%' AND pg_catalog.to_regclass(a.parent_table) IS NULL;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION timepart.check_alerts(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text, recommendation text,
               value numeric, threshold numeric, first_seen timestamptz, last_seen timestamptz, is_new boolean)
LANGUAGE plpgsql AS $$
/* Evaluates the alert rules for every managed table (or one; the scheduled jobs too
   when no table is named), keeps each alert's lifecycle (an open alert is updated,
   not duplicated; one no longer raised is resolved), announces new ones with
   pg_notify('timepart_alerts', json) and a WARNING, logs the run, and returns the
   open alerts. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    a record;
    now_ts timestamptz := pg_catalog.clock_timestamp();
    evaluated jsonb := '[]'::jsonb;
    new_count integer := 0;
    resolved integer;
    checked text[] := '{}'::text[];
    who name := timepart._caller();   -- runs as timepart's owner: the caller's rights are checked here
BEGIN
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._forget_orphans();
    IF check_alerts.parent IS NOT NULL THEN
        PERFORM timepart._config(check_alerts.parent);
        PERFORM timepart._check_may_maintain(who, check_alerts.parent, 'check its alerts');
    END IF;
    -- A partition_admin evaluates other owners' tables as of now only: another moment
    -- would open or resolve their alerts on a state that is not theirs.
    IF as_of <> now() AND EXISTS (SELECT 1 FROM timepart._managed(check_alerts.parent) c
                                  WHERE NOT coalesce(timepart._may_act(who, c.parent), false)) THEN
        RAISE EXCEPTION 'only a table''s owner may check its alerts as of another moment' USING ERRCODE = '42501',
            DETAIL = format('as_of is %s, now is %s; %s does not own every table checked.', as_of, now(), who),
            HINT = 'Leave as_of out, or name a table you own.';
    END IF;
    -- Only the tables the caller may maintain (its own; every managed one for a
    -- partition_admin): a table owner outside partition_admin touches no one else's alerts.
    FOR cfg IN SELECT c.* FROM timepart._managed(check_alerts.parent) c
               WHERE timepart._may_maintain(who, c.parent) LOOP
        checked := checked || cfg.parent::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate(cfg.parent, as_of) e), '[]'::jsonb);
    END LOOP;
    IF check_alerts.parent IS NULL AND NOT EXISTS (SELECT 1 FROM timepart.jobs j JOIN pg_catalog.pg_roles r ON r.rolname = j.scheduled_by
                                                   WHERE NOT pg_catalog.pg_has_role(who, r.oid, 'USAGE')) THEN
        checked := checked || '(scheduler)'::text;
        evaluated := evaluated || coalesce((SELECT jsonb_agg(to_jsonb(e)) FROM timepart._evaluate_jobs(as_of) e), '[]'::jsonb);
    END IF;

    FOR a IN SELECT e.alert_type, e.severity, e.parent_table, coalesce(e.partition_name, '') AS partition_name, e.message,
                    e.recommendation, e.value, e.threshold
             FROM jsonb_to_recordset(evaluated) AS e(alert_type text, severity text, parent_table text, partition_name text,
                                                     message text, recommendation text, value numeric, threshold numeric) LOOP
        UPDATE timepart.alerts x SET last_seen = now_ts, message = a.message, value = a.value, threshold = a.threshold,
                                    severity = a.severity, recommendation = a.recommendation
        WHERE x.resolved_at IS NULL AND x.alert_type = a.alert_type AND x.parent_table = a.parent_table
          AND x.partition_name = a.partition_name;
        IF NOT FOUND THEN
            INSERT INTO timepart.alerts (alert_type, severity, parent_table, partition_name, message, recommendation, value,
                                         threshold, first_seen, last_seen)
            VALUES (a.alert_type, a.severity, a.parent_table, a.partition_name, a.message, a.recommendation, a.value,
                    a.threshold, now_ts, now_ts);
            new_count := new_count + 1;
            PERFORM pg_catalog.pg_notify('timepart_alerts', jsonb_build_object('alert_type', a.alert_type, 'severity', a.severity,
                'parent_table', a.parent_table, 'partition_name', NULLIF(a.partition_name, ''), 'message', a.message,
                'recommendation', a.recommendation, 'value', a.value, 'threshold', a.threshold, 'first_seen', now_ts)::text);
            RAISE WARNING 'timepart alert [%] %', a.severity, a.message USING HINT = coalesce(a.recommendation, '');
        END IF;
    END LOOP;
    UPDATE timepart.alerts x SET resolved_at = now_ts
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements(evaluated) e
                      WHERE e->>'alert_type' = x.alert_type AND e->>'parent_table' = x.parent_table
                        AND coalesce(e->>'partition_name', '') = x.partition_name);
    GET DIAGNOSTICS resolved = ROW_COUNT;
    PERFORM timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;

-- ==== src/78_health.sql
-- Health and summary: the seed's /health and /summary documents, computed from the
-- alert rules and statistics without side effects.

CREATE OR REPLACE FUNCTION timepart.health(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /health shape: status healthy | warning | critical | error, issues,
   recommendations, partition_count, total_size_mb, oldest_partition,
   newest_partition. Info alerts are recommendations, not issues. It never raises:
   if evaluation fails, status is error with the reason. */
BEGIN
    RETURN timepart._health(health.parent, as_of, NULL);
END $$;

-- Each managed table's partition_stats (all, or one), as {"table": [rows...]}: health's
-- rules, its totals and summary's stats share one reading.
CREATE OR REPLACE FUNCTION timepart._stats_by_table(parent regclass) RETURNS jsonb
LANGUAGE sql VOLATILE AS $$
    SELECT coalesce(jsonb_object_agg(c.parent::text, (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb)
                                                      FROM timepart.partition_stats(c.parent) s)), '{}'::jsonb)
    FROM timepart._managed(parent) c
$$;

-- health's document from statistics already read (NULL: read them here).
CREATE OR REPLACE FUNCTION timepart._health(parent regclass, as_of timestamptz, per_table jsonb)
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    tables regclass[];
    alerts jsonb;
    stats record;
    err text;
BEGIN
    PERFORM timepart._check_moment(as_of);
    IF _health.parent IS NOT NULL AND NOT EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = _health.parent) THEN
        RAISE EXCEPTION 'table % is not managed by timepart', _health.parent;
    END IF;
    SELECT array_agg(c.parent ORDER BY c.parent::text) INTO tables
    FROM timepart._managed(_health.parent) c;
    per_table := coalesce(per_table, timepart._stats_by_table(_health.parent));

    SELECT coalesce(jsonb_agg(to_jsonb(e) ORDER BY CASE e.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END), '[]')
    INTO alerts FROM (
        SELECT x.* FROM unnest(coalesce(tables, '{}')) t, timepart._evaluate(t, as_of, per_table->(t::text)) x
        UNION ALL
        SELECT j.* FROM timepart._evaluate_jobs(as_of) j WHERE _health.parent IS NULL) e;

    SELECT count(*) FILTER (WHERE NOT s.is_default) AS n, coalesce(round(sum(s.size_mb), 2), 0) AS mb,
           (array_agg(s.partition_name ORDER BY s.range_start) FILTER (WHERE NOT s.is_default))[1] AS oldest,
           (array_agg(s.partition_name ORDER BY s.range_start DESC) FILTER (WHERE NOT s.is_default))[1] AS newest
    INTO stats FROM jsonb_each(per_table) t, jsonb_populate_recordset(NULL::timepart.partition_stats_row, t.value) s;

    RETURN jsonb_build_object(
        'status', CASE WHEN alerts @> '[{"severity": "critical"}]' THEN 'critical'
                       WHEN alerts @> '[{"severity": "warning"}]' THEN 'warning' ELSE 'healthy' END,
        'issues', (SELECT coalesce(jsonb_agg(a->>'message'), '[]') FROM jsonb_array_elements(alerts) a WHERE a->>'severity' <> 'info'),
        'recommendations', (SELECT coalesce(jsonb_agg(DISTINCT a->>'recommendation'), '[]') FROM jsonb_array_elements(alerts) a),
        'partition_count', stats.n, 'total_size_mb', stats.mb,
        'oldest_partition', stats.oldest, 'newest_partition', stats.newest,
        'tables', (SELECT coalesce(jsonb_agg(t::text), '[]') FROM unnest(coalesce(tables, '{}')) t),
        'alerts', alerts, 'checked_at', pg_catalog.clock_timestamp());
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS err = MESSAGE_TEXT;
    RETURN jsonb_build_object('status', 'error', 'issues', jsonb_build_array('health evaluation failed: ' || err),
        'recommendations', jsonb_build_array('Check the table and timepart''s installation; see the server log'),
        'partition_count', NULL, 'total_size_mb', NULL, 'oldest_partition', NULL, 'newest_partition', NULL,
        'checked_at', pg_catalog.clock_timestamp());
END $$;

CREATE OR REPLACE FUNCTION timepart.summary(parent regclass DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql VOLATILE AS $$
/* The seed's /summary: health, per-partition stats, configuration, scheduled jobs with
   their latest runs, recent log and open alerts. */
DECLARE
    per_table jsonb;
BEGIN
    IF summary.parent IS NOT NULL THEN
        PERFORM timepart._config(summary.parent);
    END IF;
    -- The statistics once, for health and for the stats below (in partition_stats' order).
    per_table := timepart._stats_by_table(summary.parent);
    RETURN jsonb_build_object(
        'health', timepart._health(summary.parent, as_of, per_table),
        'stats', (SELECT coalesce(jsonb_agg(r ORDER BY c.parent::text, n), '[]')
                  FROM timepart._managed(summary.parent) c,
                       jsonb_array_elements(per_table->(c.parent::text)) WITH ORDINALITY AS x(r, n)),
        'configuration', (SELECT coalesce(jsonb_agg(to_jsonb(c) || jsonb_build_object('parent', c.parent::text)), '[]')
                          FROM timepart.config c WHERE summary.parent IS NULL OR c.parent = summary.parent),
        'jobs', timepart._jobs_summary(),
        'recent_log', (SELECT coalesce(jsonb_agg(to_jsonb(l)), '[]')
                       FROM (SELECT * FROM timepart.maintenance_log m
                             WHERE summary.parent IS NULL OR m.parent_table = summary.parent::text
                             ORDER BY m.created_at DESC, m.id DESC LIMIT 20) l),
        'open_alerts', (SELECT coalesce(jsonb_agg(to_jsonb(a)), '[]') FROM timepart.open_alerts a
                        WHERE summary.parent IS NULL OR a.parent_table = summary.parent::text),
        'generated_at', pg_catalog.clock_timestamp());
END $$;

-- ==== src/80_email_events.sql
-- The flagship preset: the seed's email_events table, managed monthly with its
-- five indexes, 6 periods ahead and 12 months of retention.

CREATE OR REPLACE FUNCTION timepart.create_email_events_table(schema name DEFAULT 'public', as_of timestamptz DEFAULT now(),
                                                              settings jsonb DEFAULT NULL)
RETURNS regclass LANGUAGE plpgsql AS $$
/* Creates the seed's email_event_type enum and email_events table in a schema
   (the foreign key to campaign_leads only where that table exists), registers the
   seed's five index templates, applies `settings` (as timepart.configure takes them:
   the installer passes the seed's environment variables) and only then creates the
   partitions it needs now. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    tbl regclass;
    has_leads boolean;
BEGIN
    IF schema IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = schema) THEN
        RAISE EXCEPTION 'schema "%" does not exist', schema USING ERRCODE = '3F000',
            DETAIL = 'email_events is created in an existing schema.', HINT = 'Create the schema first, or use public.';
    END IF;
    tbl := pg_catalog.to_regclass(format('%I.email_events', schema));
    IF tbl IS NOT NULL THEN
        IF EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
            RAISE NOTICE 'table % already exists and is managed', tbl;
            RETURN tbl;
        END IF;
        RAISE EXCEPTION 'table % already exists', tbl USING ERRCODE = '42P07',
            DETAIL = 'It is not managed by timepart.',
            HINT = format('Manage it with SELECT timepart.manage(%L) if it is partitioned by month on created_at.', tbl::text);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
                   WHERE n.nspname = schema AND t.typname = 'email_event_type') THEN
        EXECUTE format($f$CREATE TYPE %I.email_event_type AS ENUM ('sent', 'delivery', 'open', 'click', 'reply',
                          'bounce', 'complaint', 'unsubscribe', 'webhook')$f$, schema);
    END IF;
    has_leads := EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                         WHERE a.attrelid = pg_catalog.to_regclass(format('%I.campaign_leads', schema))
                           AND a.attname = 'id' AND NOT a.attisdropped);
    EXECUTE format($f$
        CREATE TABLE %1$I.email_events (
            id uuid DEFAULT gen_random_uuid(),
            workspace_id uuid NOT NULL,
            campaign_id uuid NOT NULL,
            lead_id uuid NOT NULL,
            campaign_lead_id uuid %2$s,
            event_type %1$I.email_event_type NOT NULL,
            email_id text,
            external_id text,
            metadata jsonb DEFAULT '{}',
            created_at timestamptz DEFAULT now(),
            PRIMARY KEY (id, created_at)
        ) PARTITION BY RANGE (created_at)$f$, schema,
        CASE WHEN has_leads THEN format('REFERENCES %I.campaign_leads(id) ON DELETE CASCADE', schema) ELSE '' END);
    tbl := format('%I.email_events', schema)::regclass;
    PERFORM timepart._register(tbl, '1 month', 6, '12 months', true, '100 milliseconds', 'UTC');
    PERFORM timepart._log('manage', tbl, NULL, true, '{"preset": "email_events"}', NULL, started);
    PERFORM timepart.add_index_template(tbl, 'workspace_created_idx', 'workspace_id, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'campaign_event_idx', 'campaign_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'lead_event_idx', 'lead_id, event_type, created_at DESC');
    PERFORM timepart.add_index_template(tbl, 'event_type_idx', 'event_type, created_at DESC',
                                        $w$event_type IN ('open', 'click', 'delivery', 'bounce')$w$);
    PERFORM timepart.add_index_template(tbl, 'external_id_idx', 'external_id', 'external_id IS NOT NULL');
    IF settings IS NOT NULL AND settings <> '{}'::jsonb THEN
        PERFORM timepart.configure(tbl, settings);
    END IF;
    PERFORM timepart.maintain(tbl, NULL, as_of);
    RETURN tbl;
END $$;

COMMENT ON FUNCTION timepart.create_email_events_table(name, timestamptz, jsonb) IS
    'Creates the seed''s email_events table, managed monthly with its five indexes, 6 ahead, 12 months retention';

-- The email_events table the seed's functions act on. `on_path` is what the caller's
-- search_path finds (the seed's wrappers look it up before the pinned path applies):
-- that table when it is managed; else the only managed email_events, if there is one.
CREATE OR REPLACE FUNCTION timepart._email_events(on_path regclass) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
DECLARE
    tbl regclass := on_path;
    candidates text;
BEGIN
    IF tbl IS NOT NULL AND EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent = tbl) THEN
        RETURN tbl;
    END IF;
    SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text), min(c.parent::oid)::regclass INTO candidates, tbl
    FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent WHERE r.relname = 'email_events';
    IF candidates LIKE '%,%' THEN
        RAISE EXCEPTION 'more than one managed email_events table, and none on the search_path' USING ERRCODE = '42P09',
            DETAIL = format('Managed: %s. The caller''s search_path finds %s.', candidates,
                            coalesce(on_path::text || ', which is not managed', 'no email_events')),
            HINT = 'Put the schema first on the search_path (SET search_path = tenant_a, public), '
                   'or name the table: SELECT timepart.maintain(''tenant_a.email_events'').';
    END IF;
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'no managed email_events table' USING ERRCODE = '42P01',
            DETAIL = 'The seed''s functions act on the table email_events managed by timepart.',
            HINT = 'Create it with SELECT timepart.create_email_events_table();';
    END IF;
    RETURN tbl;
END $$;

-- How long the maintenance log keeps its rows: the setting timepart.log_retention of the
-- database (ALTER DATABASE app SET timepart.log_retention = '30 days'), 90 days when
-- unset. Read from the catalog, not the session: a session's SET (anyone's, or a table
-- owner's code) never decides how much of the audit trail goes.
CREATE OR REPLACE FUNCTION timepart._log_retention() RETURNS interval
LANGUAGE plpgsql STABLE AS $$
DECLARE
    setting text := (SELECT NULLIF(substr(c, length('timepart.log_retention=') + 1), '')
                     FROM pg_catalog.pg_db_role_setting r, unnest(r.setconfig) c
                     WHERE r.setrole = 0 AND r.setdatabase = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
                       AND c LIKE 'timepart.log\_retention=%');
    keep interval;
BEGIN
    IF setting IS NULL THEN
        RETURN interval '90 days';
    END IF;
    BEGIN
        keep := setting::interval;
    EXCEPTION WHEN OTHERS THEN
        keep := NULL;
    END;
    IF keep IS NULL OR keep < interval '1 day' THEN
        RAISE EXCEPTION 'timepart.log_retention must be an interval of at least 1 day' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', setting), HINT = 'E.g. ALTER DATABASE app SET timepart.log_retention = ''30 days''; or RESET it for 90 days.';
    END IF;
    RETURN keep;
END $$;

-- The managed tables the current role may maintain (it owns them, is a member of their
-- owner, a superuser or a partition_admin), in a stable order: what the job procedures work through.
-- PL/pgSQL so that it runs on a pinned search_path: the procedures call it from the caller's.
CREATE OR REPLACE FUNCTION timepart._job_tables() RETURNS SETOF regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY SELECT c.parent FROM timepart._managed() c WHERE timepart._may_maintain(current_user, c.parent);
END $$;

-- How pg_cron is reached: 'local' (its schema is here), 'dblink', or a refusal that
-- says exactly what to do. preload is shared_preload_libraries (a parameter for tests).
CREATE OR REPLACE FUNCTION timepart._cron_route(preload text DEFAULT pg_catalog.current_setting('shared_preload_libraries'))
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    cron_db text := pg_catalog.current_setting('cron.database_name', true);
BEGIN
    IF preload IS NULL OR preload !~ '(^|[\s,])pg_cron($|[\s,])' THEN
        RAISE EXCEPTION 'pg_cron is not loaded by this server' USING ERRCODE = '55000',
            DETAIL = format('shared_preload_libraries is ''%s''.', coalesce(preload, '')),
            HINT = format('Add to postgresql.conf: shared_preload_libraries = ''pg_cron'' and cron.database_name = ''%s'', '
                          'restart PostgreSQL, then run CREATE EXTENSION pg_cron in that database.', current_database());
    END IF;
    IF cron_db IS NULL OR cron_db = current_database() THEN
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_cron') THEN
            RAISE EXCEPTION 'pg_cron is loaded but its extension is not created in database %', current_database()
                USING ERRCODE = '55000', DETAIL = 'cron.database_name is this database.',
                      HINT = 'Run CREATE EXTENSION pg_cron; here, then schedule again.';
        END IF;
        RETURN 'local';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'dblink') THEN
        RAISE EXCEPTION 'pg_cron lives in database %, not in %', cron_db, current_database() USING ERRCODE = '55000',
            DETAIL = 'timepart reaches another database''s pg_cron through dblink, which is not installed here.',
            HINT = format('Run CREATE EXTENSION dblink; here, or schedule from database %s with '
                          'SELECT cron.schedule_in_database(''timepart-maintain@%s'', ''17 3 * * 0'', ''CALL timepart.maintain_each()'', %L);',
                          cron_db, current_database(), current_database());
    END IF;
    RETURN 'dblink';
END $$;

CREATE OR REPLACE FUNCTION timepart.schedule_jobs(maintain_schedule text DEFAULT '17 3 * * 0',
                                                  cleanup_schedule text DEFAULT '37 4 1 * *',
                                                  health_schedule text DEFAULT '7 6 * * *',
                                                  stats_schedule text DEFAULT '47 2 * * *',
                                                  cron_history_schedule text DEFAULT '57 5 * * *',
                                                  cron_history_keep interval DEFAULT '30 days')
RETURNS TABLE (jobname text, schedule text, command text) LANGUAGE plpgsql AS $$
/* The seed's jobs in pg_cron, at quiet hours: weekly maintain, monthly cleanup (each
   table's configured retention; email_events keeps 12 months; both one table per
   transaction, a CALL alone in its command as pg_cron requires), daily health check
   (check_alerts, then purge_log), daily statistics snapshot, plus a daily trim of
   cron.job_run_details. Named timepart-<job>@<database>; running it again updates
   them in place. Works when pg_cron lives in another database (through dblink). */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    statements text;
    new_jobs timepart.jobs[];
BEGIN
    -- The jobs run as the caller, over every managed table: scheduling must not let a
    -- role reach tables it could not maintain itself.
    IF EXISTS (SELECT 1 FROM timepart._managed() c WHERE NOT timepart._may_maintain(current_user, c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            DETAIL = format('%s may not maintain: %s.', current_user,
                (SELECT string_agg(c.parent::text, ', ' ORDER BY c.parent::text) FROM timepart._managed() c
                 WHERE NOT timepart._may_maintain(current_user, c.parent))),
            HINT = 'Schedule as a superuser, a member of partition_admin, or a member of every managed table''s owner.';
    END IF;
    IF cron_history_keep IS NULL OR cron_history_keep <= interval '0' THEN
        RAISE EXCEPTION 'cron_history_keep must be positive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cron_history_keep::text, 'NULL')), HINT = 'Keep e.g. ''30 days'' of job runs.';
    END IF;
    SELECT array_agg(ROW(j.job, format('timepart-%s@%s', j.job, current_database()), j.sched, j.cmd, j.db,
                         timepart._expected_every(j.sched), now(), current_user)::timepart.jobs)
    INTO new_jobs
    FROM (VALUES
        ('maintain', maintain_schedule, 'CALL timepart.maintain_each()', current_database()),
        ('cleanup', cleanup_schedule, 'CALL timepart.cleanup_each()', current_database()),
        -- The health job also keeps the maintenance log within its retention (timepart.purge_log).
        ('health', health_schedule, 'SELECT count(*) FROM timepart.check_alerts(); SELECT timepart.purge_log()', current_database()),
        ('stats', stats_schedule, 'SELECT timepart.snapshot_stats()', current_database()),
        ('cron-history', cron_history_schedule,
         -- Only timepart's jobs' history: other jobs' runs are not ours to delete.
         format('DELETE FROM cron.job_run_details d WHERE d.end_time < now() - %L::interval '
                'AND d.jobid IN (SELECT j.jobid FROM cron.job j WHERE j.jobname LIKE ''timepart-%%'')', cron_history_keep),
         coalesce(pg_catalog.current_setting('cron.database_name', true), current_database()))
    ) AS j(job, sched, cmd, db);
    IF EXISTS (SELECT 1 FROM unnest(new_jobs) n WHERE n.schedule IS NULL
               OR array_length(pg_catalog.regexp_split_to_array(pg_catalog.btrim(n.schedule), '\s+'), 1) <> 5) THEN
        RAISE EXCEPTION 'a cron schedule must have five fields' USING ERRCODE = '22023',
            DETAIL = (SELECT string_agg(format('%s: %s', n.job, coalesce(n.schedule, 'NULL')), ', ') FROM unnest(new_jobs) n),
            HINT = 'minute hour day-of-month month day-of-week, e.g. ''17 3 * * 0'' for Sundays at 03:17.';
    END IF;

    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM unnest(new_jobs);
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM unnest(new_jobs) n;
    PERFORM timepart._cron_exec(statements);
    PERFORM timepart._log('schedule_jobs', NULL, NULL, true,
        (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM unnest(new_jobs) n), NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM unnest(new_jobs) n ORDER BY n.job;
END $$;

-- The jobs' entry points: one table at a time with a COMMIT after each, so the locks
-- one table's maintenance takes are never held while another's waits. Procedures that
-- COMMIT carry no SET clause: every name here is qualified instead.
-- The bodies use no operator and name every function and type with its schema: they
-- run on the caller's search_path, where anyone with CREATE could plant an operator.
-- One job over every table it may maintain: each call of maintain or cleanup that held a
-- table for its lock budget says what is left, so commit (traffic goes on) and call
-- again, a bounded number of times. One table's refusal does not stop the others (it is a
-- WARNING in the job's log).
CREATE OR REPLACE PROCEDURE timepart._each(operation pg_catalog.text, premake pg_catalog.int4)
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
    left_over pg_catalog.int4;
BEGIN
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        FOR i IN 1..10000 LOOP
            BEGIN
                left_over := (CASE WHEN operation OPERATOR(pg_catalog.=) 'maintain' THEN timepart.maintain(t, premake)
                                   ELSE timepart.cleanup(t) END OPERATOR(pg_catalog.->>) 'left_partitions')::pg_catalog.int4;
            EXCEPTION WHEN OTHERS THEN
                RAISE WARNING 'timepart: % of % failed: %', operation, t, SQLERRM;
                left_over := 0;
            END;
            COMMIT;
            EXIT WHEN left_over OPERATOR(pg_catalog.=) 0;
        END LOOP;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE timepart.maintain_each(premake pg_catalog.int4 DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    CALL timepart._each('maintain', premake);
END $$;

COMMENT ON PROCEDURE timepart.maintain_each(integer) IS 'maintain() every managed table in slices of its lock budget when traffic waits, committing after each (the maintain job)';

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
BEGIN
    CALL timepart._each('cleanup', NULL);
END $$;

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
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated)
    VALUES (source, source::text, target, stage, key_column, partition_interval, time_zone, retention, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated)
    RETURNING * INTO m;
    PERFORM timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
END $$;

-- ==== src/87_migrate_carry.sql
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

-- The statements that give the copy (the partitioned table, before any partition is
-- made) what the source has besides its columns and constraints. Triggers come
-- disabled (_migrate_move_triggers enables them at the swap).
CREATE OR REPLACE FUNCTION timepart._migrate_carry_statements(source regclass, target regclass) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
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
    SELECT s FROM pg_catalog.pg_trigger t,
           LATERAL (SELECT pg_catalog.pg_get_triggerdef(t.oid) AS def, ' ON ' || source::text || ' ' AS was) d,
           LATERAL (VALUES (overlay(d.def PLACING ' ON ' || target::text || ' ' FROM pg_catalog.strpos(d.def, d.was)
                                               FOR pg_catalog.length(d.was))),
                           (format('ALTER TABLE %s DISABLE TRIGGER %I', target, t.tgname))) x(s)
    WHERE t.tgrelid = source AND NOT t.tgisinternal AND t.tgname NOT LIKE 'timepart\_migrate\_%'
$$;

-- Gives the copy what _migrate_carry_statements lists, with the owner's rights.
CREATE OR REPLACE FUNCTION timepart._migrate_carry(source regclass, target regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    q text;
BEGIN
    FOR q IN SELECT * FROM timepart._migrate_carry_statements(source, target) LOOP
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
    PERFORM timepart._check_may_act(timepart._caller(), m.source, 'migrate it');
    IF NOT EXISTS (SELECT 1 FROM timepart.migrations g WHERE g.id = m.id AND g.source = m.source AND g.target = m.target
                   AND g.state IN ('copying', 'catching_up')) THEN
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
    PERFORM timepart._log('migrate_copy', m.source, m.target::text, true,
        jsonb_build_object('rows', copied, 'from_block', m.next_block, 'to_block', upto, 'last_block', m.last_block,
                           'verified_rows', r->2->0),
        NULL, started);
    RETURN copied;
END $$;

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
        PERFORM timepart._log('migrate_catch_up', m.source, m.target::text, true,
            jsonb_build_object('changes', applied, 'rows_removed', removed, 'rows_inserted', inserted, 'verified_rows', r->5->0),
            NULL, started);
    END IF;
    RETURN applied;
END $$;

-- The order-independent checksum of rows (alias-free columns of the source): the sum of
-- 64-bit hashes of each row as text, 0 for none.
CREATE OR REPLACE FUNCTION timepart._migrate_hash_sum(source regclass) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT format('coalesce(sum(pg_catalog.hashtextextended(ROW(%s)::pg_catalog.text, 0)), 0)', timepart._column_list(source))
$$;

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
    PERFORM pg_catalog.set_config('lock_timeout', (extract(epoch FROM lock_wait) * 1000)::bigint::text || 'ms', true);
    EXECUTE format('LOCK TABLE ONLY %s IN EXCLUSIVE MODE', m.source);
    -- Every change since the copy began went through the capture triggers: they must all
    -- still be there and enabled, or the copy may have missed one.
    IF (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = m.source AND t.tgname LIKE 'timepart\_migrate\_%'
        AND t.tgenabled IN ('A', 'O')) <> 4 THEN
        RAISE EXCEPTION 'the change capture of % was disabled or dropped; nothing was swapped', m.source USING ERRCODE = 'XX001',
            DETAIL = 'A change made meanwhile may be missing from the partitioned copy.',
            HINT = format('SELECT timepart.migrate_abort(%L) removes the copy; then migrate again.', m.source::text);
    END IF;
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

-- ==== src/90_compat.sql
-- The seed's names, callable unqualified with the default search_path, acting on
-- email_events. Each finds email_events along the caller's search_path, so with one
-- email_events per tenant schema `SET search_path = tenant_a, public` picks tenant_a's.
--
-- That is why these wrappers, unlike the rest of timepart, carry no pinned search_path:
-- a pinned path would hide the caller's. Each is one SQL statement in which the path
-- chooses nothing but the table: every function is schema-qualified, no operator is
-- written, and the work happens in the pinned timepart function it calls. They run as
-- the caller (SECURITY INVOKER).

-- The pinned bodies of the seed's names (first: a script-mode install checks the
-- wrappers' bodies); `on_path` is the caller's email_events.

CREATE OR REPLACE FUNCTION timepart._seed_create_partition(on_path regclass, start_date date, end_date date)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    tbl regclass := timepart._email_events(on_path);
    tz text := (SELECT c.time_zone FROM timepart.config c WHERE c.parent = tbl);
BEGIN
    RETURN timepart.create_partition(tbl, start_date::timestamp AT TIME ZONE tz, end_date::timestamp AT TIME ZONE tz);
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_cleanup(on_path regclass, retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE plpgsql AS $$
BEGIN
    IF retention_months IS NULL OR retention_months < 1 THEN
        RAISE EXCEPTION 'retention_months must be a positive number of months' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(retention_months::text, 'NULL')),
            HINT = 'Keep e.g. 12 months: SELECT * FROM cleanup_old_email_events_partitions(12);';
    END IF;
    RETURN QUERY
    SELECT d->>0, (d->>1)::bigint
    FROM jsonb_array_elements(timepart.cleanup(timepart._email_events(on_path), pg_catalog.make_interval(months => retention_months))
                              ->'dropped_partitions') d;
END $$;

CREATE OR REPLACE FUNCTION timepart._seed_stats(on_path regclass)
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT s.partition_name, s.period, s.record_count, s.size_mb, s.oldest_record, s.newest_record,
           s.range_start, s.range_end, s.exact
    FROM timepart.partition_stats(timepart._email_events(on_path)) s;
END $$;

CREATE OR REPLACE FUNCTION public.create_email_events_partition(start_date date, end_date date)
RETURNS text LANGUAGE sql AS $$
    SELECT timepart._seed_create_partition(pg_catalog.to_regclass('email_events'), start_date, end_date)
$$;

CREATE OR REPLACE FUNCTION public.maintain_email_events_partitions(months_ahead integer DEFAULT 6)
RETURNS jsonb LANGUAGE sql AS $$
    SELECT timepart.maintain(timepart._email_events(pg_catalog.to_regclass('email_events')), months_ahead)
$$;

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE sql AS $$
    SELECT * FROM timepart._seed_cleanup(pg_catalog.to_regclass('email_events'), retention_months)
$$;

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql AS $$
    SELECT * FROM timepart._seed_stats(pg_catalog.to_regclass('email_events'))
$$;

-- Which public functions a role may call. Everything else in the schema is private.
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.period_of',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log',
                 'timepart._email_events', 'timepart._seed_stats']
$$;

-- Functions that act with timepart's owner's rights: the readers (they read user tables
-- through executors and timepart's own tables), the writers of timepart's own tables,
-- the makers of objects handed to an owner, and partition_admin's route (63_admin.sql).
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.get_maintenance_log',
                 'timepart.snapshot_stats', 'timepart.check_alerts',
                 'timepart._executor', 'timepart._archive_schema', 'timepart._migrate_capture',
                 'timepart._migrate_triggers', 'timepart._migrate_stage_schema', 'timepart._migrate_publications',
                 'timepart._new_partition_table', 'timepart._admin_run', 'timepart._admin_create_partition']
$$;

CREATE OR REPLACE FUNCTION timepart._harden() RETURNS void
LANGUAGE plpgsql AS $$
/* Pins search_path, sets SECURITY DEFINER where listed, revokes everything from
   PUBLIC and grants the two roles their share. Safe to run again. */
DECLARE
    f record;
    roles_exist boolean := (SELECT count(*) = 2 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_admin', 'partition_monitor'));
BEGIN
    FOR f IN
        SELECT p.oid::regprocedure AS sig, n.nspname || '.' || p.proname AS qname, l.lanname, p.prokind, n.nspname
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE (n.nspname = 'timepart' AND p.proname NOT LIKE '\_as\_owner\_%') OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they qualify every name instead.
        -- The seed's names in public neither: they find email_events on the caller's
        -- search_path (90_compat.sql), name everything else by schema and write no operator.
        IF f.prokind = 'f' AND f.nspname = 'timepart' AND (f.lanname = 'plpgsql' OR f.qname = ANY (timepart._definer_functions())) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            -- jit off: timepart's queries read catalogs and small tables; compiling them
            -- cost about a second on a session's first statistics call at 12 x 1M rows.
            EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD'' SET jit = off', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY DEFINER', f.sig);
        ELSIF f.prokind = 'f' THEN
            EXECUTE format('ALTER FUNCTION %s SECURITY INVOKER', f.sig);
            IF f.nspname = 'public' THEN
                EXECUTE format('ALTER FUNCTION %s RESET ALL', f.sig);
            END IF;
        END IF;
        EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        IF roles_exist THEN
            EXECUTE format('REVOKE ALL ON %s %s FROM partition_admin, partition_monitor',
                           CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
        END IF;
        -- Trigger functions are timepart's alone: nobody may attach them to a table.
        IF roles_exist AND f.qname <> ALL (timepart._private_functions()) THEN
            EXECUTE format('GRANT EXECUTE ON %s %s TO partition_admin', CASE f.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END, f.sig);
            IF f.qname = ANY (timepart._monitor_functions()) THEN
                EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO partition_monitor', f.sig);
            END IF;
        END IF;
    END LOOP;

    REVOKE ALL ON ALL TABLES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON ALL SEQUENCES IN SCHEMA timepart FROM PUBLIC;
    REVOKE ALL ON public.partition_maintenance_log FROM PUBLIC;
    IF roles_exist THEN
        GRANT partition_monitor TO partition_admin;
        GRANT USAGE ON SCHEMA timepart TO partition_admin, partition_monitor;
        GRANT SELECT ON ALL TABLES IN SCHEMA timepart TO partition_monitor;
        -- Exact key values are data: monitors read them through partition_stats, which hides them.
        REVOKE SELECT ON timepart.stats_history FROM partition_monitor;
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        GRANT INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.migrations TO partition_admin;
        GRANT INSERT, DELETE ON timepart.jobs TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
END $$;

SELECT timepart._harden();
