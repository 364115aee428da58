-- What the installer asks the database before it removes a script-mode install: the
-- objects timepart put outside its schema, and the user objects that depend on timepart.
-- The facts live here, next to the objects, so the Python side derives none of them.

-- The objects timepart created outside schema timepart (its event trigger, the seed's
-- names in public), in the order they must be dropped (a seed view depends on the log).
-- PL/pgSQL: its body names functions defined later in the script.
CREATE OR REPLACE FUNCTION timepart._installed_objects() RETURNS TABLE (kind text, name text)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT 'EVENT TRIGGER'::text, pg_catalog.quote_ident(e.evtname::text) FROM pg_catalog.pg_event_trigger e
    WHERE e.evtname IN ('timepart_drop_jobs', 'timepart_seed_names')
    UNION ALL
    SELECT 'VIEW'::text, c.oid::regclass::text FROM pg_catalog.pg_class c
    WHERE c.oid = pg_catalog.to_regclass('public.partition_maintenance_log')
    UNION ALL
    SELECT 'FUNCTION'::text, p.oid::regprocedure::text FROM pg_catalog.pg_proc p
    WHERE p.pronamespace = 'public'::regnamespace AND p.proname = ANY (timepart._public_names());
END $$;
COMMENT ON FUNCTION timepart._installed_objects() IS 'The objects timepart created outside its schema (the seed''s names in public), in drop order';

-- Objects outside schema timepart that depend on something inside it (a user's view on
-- timepart.config, a column of a timepart type, ...). An uninstall refuses while there
-- are any, as DROP EXTENSION without CASCADE does.
CREATE OR REPLACE FUNCTION timepart._outside_dependents() RETURNS SETOF text
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    WITH ours AS (
        SELECT 'pg_catalog.pg_class'::regclass AS classid, c.oid FROM pg_catalog.pg_class c WHERE c.relnamespace = 'timepart'::regnamespace
        UNION ALL SELECT 'pg_catalog.pg_proc'::regclass, p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace = 'timepart'::regnamespace
        UNION ALL SELECT 'pg_catalog.pg_type'::regclass, t.oid FROM pg_catalog.pg_type t WHERE t.typnamespace = 'timepart'::regnamespace
    ), mine AS (  -- timepart's own objects outside its schema go with it
        SELECT i.name::regprocedure::oid AS oid FROM timepart._installed_objects() i WHERE i.kind = 'FUNCTION'
        UNION ALL
        SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = pg_catalog.to_regclass('public.partition_maintenance_log')
        UNION ALL
        SELECT e.oid FROM pg_catalog.pg_event_trigger e WHERE e.evtname IN ('timepart_drop_jobs', 'timepart_seed_names')
    ), dependents AS (
        -- The schema each dependent lives in: its own, or its table's.
        SELECT d.classid, d.objid, d.objsubid,
               CASE d.classid
                   WHEN 'pg_catalog.pg_class'::regclass THEN (SELECT x.relnamespace FROM pg_catalog.pg_class x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_proc'::regclass THEN (SELECT x.pronamespace FROM pg_catalog.pg_proc x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_type'::regclass THEN (SELECT x.typnamespace FROM pg_catalog.pg_type x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_constraint'::regclass THEN (SELECT x.connamespace FROM pg_catalog.pg_constraint x WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_rewrite x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.ev_class WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_attrdef'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_attrdef x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.adrelid WHERE x.oid = d.objid)
                   WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_trigger x
                                                                JOIN pg_catalog.pg_class c ON c.oid = x.tgrelid WHERE x.oid = d.objid)
               END AS home
        FROM pg_catalog.pg_depend d JOIN ours o ON o.classid = d.refclassid AND o.oid = d.refobjid
        WHERE d.deptype = 'n' AND d.objid NOT IN (SELECT m.oid FROM mine m)
    )
    SELECT DISTINCT pg_catalog.pg_describe_object(x.classid, x.objid, x.objsubid) FROM dependents x
    WHERE x.home IS DISTINCT FROM 'timepart'::regnamespace
    ORDER BY 1;
END $$;
COMMENT ON FUNCTION timepart._outside_dependents() IS 'User objects outside schema timepart that depend on it: an uninstall refuses while there are any';
