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

-- The context from the frame of the function that ran the statement (or called the
-- function) whose PG_CONTEXT this is, as PostgreSQL printed it, on; NULL when that frame
-- cannot be told for certain.
-- The context quotes the text of every SQL statement on the stack, verbatim, newlines
-- included, so a caller's own statement could carry lines that look like frames. A frame
-- is believed only when nothing stands between it and the first line (the call was a
-- plain expression), or when what stands between is a complete statement of that frame's
-- own function, as its source has it (a CALL, INSERT, UPDATE or DELETE there, which no
-- text can follow in valid SQL, so the quoted statement must end where it seems to).
CREATE OR REPLACE FUNCTION timepart._calling_context(ctx text) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    lines text[] := string_to_array(ctx, E'\n');
    stmt text;
    fn regprocedure;
    src text;
    at int;
BEGIN
    IF cardinality(lines) < 2 THEN
        RETURN NULL;
    ELSIF lines[2] ~ '^(PL/pgSQL|SQL) function ' THEN
        RETURN array_to_string(lines[2:], E'\n');
    ELSIF lines[2] !~ '^SQL statement "' THEN
        RETURN NULL;
    END IF;
    FOR k IN 2 .. cardinality(lines) - 1 LOOP
        CONTINUE WHEN lines[k] !~ '"$' OR lines[k + 1] !~ '^PL/pgSQL function timepart\.[a-z0-9_]+\(';
        -- The first such line only: a statement of someone else's that ends here is refused, not skipped.
        stmt := substr(array_to_string(lines[2:k], E'\n'), length('SQL statement "') + 1);
        stmt := left(stmt, -1);
        fn := pg_catalog.to_regprocedure(substring(lines[k + 1] FROM '^PL/pgSQL function (timepart\.[a-z0-9_]+\([^)]*\)) line [0-9]+ at '));
        src := (SELECT p.prosrc FROM pg_catalog.pg_proc p WHERE p.oid = fn);
        at := position(stmt IN src);
        IF stmt ~ '^\s*(CALL|INSERT|UPDATE|DELETE)\s' AND at > 0
           AND substr(src, at + length(stmt)) ~ '^\s*(INTO\s+(STRICT\s+)?[a-z_][a-z_0-9.]*\s*)?;' THEN
            RETURN array_to_string(lines[k + 1:], E'\n');
        END IF;
        RETURN NULL;
    END LOOP;
    RETURN NULL;
END $$;

-- That frame alone.
CREATE OR REPLACE FUNCTION timepart._calling_function(ctx text) RETURNS text
LANGUAGE sql STABLE
RETURN pg_catalog.split_part(timepart._calling_context(ctx), E'\n', 1);

-- Whether a role may act on a table: it owns it, is a member of its owner role, or is a
-- superuser. NULL when the table does not exist.
CREATE OR REPLACE FUNCTION timepart._may_act(who name, tbl regclass) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.pg_has_role(who, (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl), 'USAGE');
END;

-- The refusal when a role may not act on a table; action completes "must be owner of table t to ...".
CREATE OR REPLACE FUNCTION timepart._check_may_act(who name, tbl regclass, action text) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF NOT coalesce(timepart._may_act(who, tbl), false) THEN
        RAISE EXCEPTION 'must be owner of table % to %', tbl, action USING ERRCODE = '42501',
            DETAIL = format('%s is owned by %s; %s is neither that role, a member of it, nor a superuser.', tbl,
                            coalesce((SELECT c.relowner::regrole::text FROM pg_catalog.pg_class c WHERE c.oid = tbl), 'nobody'), who),
            HINT = 'Run it as the table''s owner, a member of the owning role, or a superuser.';
    END IF;
END $$;

-- Whether a role has partition_admin's rights (false when the role does not exist).
CREATE OR REPLACE FUNCTION timepart._is_admin(who name) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(pg_catalog.pg_has_role(who, pg_catalog.to_regrole('partition_admin'), 'USAGE'), false);
END;

-- The name of a role's executor.
CREATE OR REPLACE FUNCTION timepart._executor_name(owner_oid oid) RETURNS name
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ('_as_owner_' || owner_oid::text)::name;
END;

-- The body of an executor for one role. Every name in it is schema-qualified and every
-- operator spelled OPERATOR(pg_catalog.x): its owner can change its search_path. What the
-- owner's code may leave in the session is checked around the call (06_room.sql).
CREATE OR REPLACE FUNCTION timepart._executor_body(owner_name name) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.format($f$
DECLARE
    result pg_catalog.jsonb;
    n pg_catalog.int8;
    escaped pg_catalog.bool := false;
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
    IF wants_value THEN
        EXECUTE q INTO result;
    ELSE
        EXECUTE q;
        GET DIAGNOSTICS n = ROW_COUNT;
        result := pg_catalog.jsonb_build_object('rows', n);
    END IF;
    -- Deferred trigger events the owner's code queued fire here, as the owner: before 18,
    -- PostgreSQL would fire them at the caller's COMMIT, as the caller. (A read is rolled
    -- back with its events, and fires nothing: the caller's own events are not the owner's.)
    IF q NOT LIKE '-- timepart: read%%' AND NOT pg_catalog.pg_is_in_recovery() THEN
        SET CONSTRAINTS ALL IMMEDIATE;
    END IF;
    RETURN result;
END $f$, owner_name);
END;

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
    -- A new executor only for a role whose tables timepart works on (a registered table,
    -- a partition of one, a table being migrated), or one the caller may act as: nobody
    -- hands an arbitrary role a function it would then have to be rid of.
    IF NOT coalesce(pg_catalog.pg_has_role(timepart._caller(), owner_oid, 'USAGE'), false)
       AND NOT EXISTS (SELECT 1 FROM timepart.config g JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) g.parent
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid)
       AND NOT EXISTS (SELECT 1 FROM timepart.migrations m JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) m.source
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid)
       AND NOT EXISTS (SELECT 1 FROM timepart.config g JOIN pg_catalog.pg_inherits i ON i.inhparent OPERATOR(pg_catalog.=) g.parent
                       JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                       WHERE c.relowner OPERATOR(pg_catalog.=) owner_oid) THEN
        RAISE EXCEPTION 'timepart has no table of role % to work on', owner_name USING ERRCODE = '42501',
            DETAIL = 'An executor is made only for the owner of a registered or migrating table, or for a role the caller may act as.',
            HINT = 'Register the table with timepart.manage() (as its owner) first.';
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

-- Fires the session's pending deferred trigger events now, as the role the session runs
-- as (the caller of timepart, never timepart's owner): an executor fires every pending
-- event after its statement, as the table's owner, and the caller's own must not be among
-- them. Called where the caller's run begins (maintain, cleanup, create_partition) and
-- before each write; a no-op inside SECURITY DEFINER code and on a replica. The session's
-- deferrable constraints are immediate from then on.
CREATE OR REPLACE FUNCTION timepart._flush_deferred() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF current_user = timepart._caller() AND NOT pg_catalog.pg_is_in_recovery() THEN
        SET CONSTRAINTS ALL IMMEDIATE;
    END IF;
END $$;

-- The executor that runs a statement on a table with its owner's rights (created when
-- missing), after checking the role running timepart may act on the table.
CREATE OR REPLACE FUNCTION timepart._owner_executor(tbl regclass) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl);
BEGIN
    IF owner_oid IS NULL THEN
        RAISE EXCEPTION 'relation % does not exist', tbl USING ERRCODE = '42P01';
    END IF;
    PERFORM timepart._check_may_act(current_user, tbl, 'run this on it');
    RETURN timepart._executor(owner_oid);
END $$;
