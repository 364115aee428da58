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
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(timepart._may_act(who, tbl), false)
        OR (timepart._is_admin(who) AND EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) tbl));
END;

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
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM timepart._managed(parent) c WHERE NOT coalesce(timepart._may_act(current_user, c.parent), false));
END;

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

-- maintain or cleanup for a partition_admin (see _run), as timepart's owner. Procedures,
-- CALLed from maintain, cleanup and create_partition: a CALL is a statement no text can
-- follow, so the check of the caller (_calling_function) cannot be fooled.
CREATE OR REPLACE PROCEDURE timepart._admin_run(operation text, parent regclass, premake integer, retention interval,
                                                dry_run boolean, as_of timestamptz, INOUT result jsonb DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
BEGIN
    -- Only from maintain or cleanup, which fire the admin's pending deferred trigger events
    -- first, as the admin (_flush_deferred): none of them may be left to fire in another
    -- owner's executor, as that owner.
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF coalesce(timepart._calling_function(ctx), '') !~ '^PL/pgSQL function timepart\.(maintain|cleanup)\(' THEN
        RAISE EXCEPTION 'timepart._admin_run is a step of maintain and cleanup' USING ERRCODE = '42501',
            DETAIL = 'It is called by timepart.maintain and timepart.cleanup only.', HINT = 'Call those.';
    END IF;
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
    result := timepart._run(operation, parent, premake, retention, coalesce(dry_run, false), as_of);
END $$;

-- create_partition for a partition_admin, as timepart's owner: the table must be managed.
CREATE OR REPLACE PROCEDURE timepart._admin_create_partition(parent regclass, range_start timestamptz, range_end timestamptz,
                                                             INOUT made text DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF coalesce(timepart._calling_function(ctx), '') !~ '^PL/pgSQL function timepart\.create_partition\(' THEN
        RAISE EXCEPTION 'timepart._admin_create_partition is a step of create_partition' USING ERRCODE = '42501',
            DETAIL = 'It is called by timepart.create_partition only.', HINT = 'Call timepart.create_partition.';
    END IF;
    PERFORM timepart._config(parent);
    PERFORM timepart._check_owner_reach(parent);
    made := timepart._create_partition(parent, range_start, range_end);
END $$;
