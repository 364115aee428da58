-- timepart 0.12 -> 0.13: assembled by `make delta` (tools/sqldelta.py) from
-- extension/pending.sql, the differences from the released chain, and the hardening call.

SET LOCAL search_path = pg_catalog, pg_temp;

DO $$ BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names') AND (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN ALTER EVENT TRIGGER timepart_seed_names DISABLE; END IF; END $$;

-- ---- pending.sql
UPDATE timepart.config SET lock_timeout = greatest(interval '1 millisecond',
    pg_catalog.make_interval(secs => pg_catalog.round(extract(epoch FROM lock_timeout) * 1000) / 1000.0))
WHERE lock_timeout < interval '1 millisecond'
   OR extract(epoch FROM lock_timeout) * 1000 <> pg_catalog.floor(extract(epoch FROM lock_timeout) * 1000);
ALTER TABLE timepart.config DROP CONSTRAINT config_lock_timeout_bounded;
ALTER TABLE timepart.config ADD CONSTRAINT config_lock_timeout_bounded CHECK (lock_timeout >= interval '1 millisecond'
    AND lock_timeout <= interval '1 minute' AND extract(epoch FROM lock_timeout) * 1000 = floor(extract(epoch FROM lock_timeout) * 1000));

-- 0.13: the capture triggers as made, checked at every batch, round and the swap (a
-- migration under way gets its mark at its next batch).
ALTER TABLE timepart.migrations ADD COLUMN capture_triggers text;
COMMENT ON COLUMN timepart.migrations.capture_triggers IS 'The capture triggers as made (timepart._capture_mark): checked at every batch, round and the swap';

-- 0.13: a migration's row is checked against the owner of its target too.
DROP TRIGGER IF EXISTS migrations_owner_guard ON timepart.migrations;
CREATE TRIGGER migrations_owner_guard BEFORE INSERT OR UPDATE OR DELETE ON timepart.migrations
    FOR EACH ROW EXECUTE FUNCTION timepart._config_guard('source', 'target');

-- ---- gone, or changed in a way CREATE OR REPLACE cannot do
DROP FUNCTION IF EXISTS timepart._log(text, regclass, text, boolean, jsonb, text, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._lock_key(regclass);
DROP FUNCTION IF EXISTS timepart._new_partition_table(regclass, name);
DROP FUNCTION IF EXISTS timepart._guarded_settings();
DROP FUNCTION IF EXISTS timepart._admin_run(text, regclass, integer, interval, boolean, timestamp with time zone);
DROP FUNCTION IF EXISTS timepart._admin_create_partition(regclass, timestamp with time zone, timestamp with time zone);

-- ---- new and changed
CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT '0.13'::text;
END;

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

-- ==== src/06_room.sql
-- The owner's room: every statement on a user's table runs through its owner's executor
-- (05_owner.sql), and what the owner's code could leave in this session is checked
-- around the call. Inside a security-definer function PostgreSQL switches the user and
-- nothing else, so a trigger, constraint, default, policy or index expression of the
-- owner could otherwise leave temporary objects (which shadow relation and type names),
-- prepared statements, cursors, settings, LISTENs or session advisory locks behind, for
-- the caller (a superuser, a monitor, an application) to use next.
--
-- A read (_read_as_owner) always runs in a sub-transaction that is rolled back: whatever
-- the owner's code did that is transactional (temporary objects, settings, LISTEN,
-- cursors, transaction locks) is undone whatever it was. A write (_as_owner) keeps its
-- changes, so the session's state is compared before and after, and a difference fails
-- the step and undoes it. What no rollback undoes (prepared statements, session advisory
-- locks) is put back by _room_sweep: added ones are removed, and a removed one fails the
-- step. LISTEN and UNLISTEN take effect only at commit and cannot be seen before: after
-- a write, the session's committed channels are listened to again, and nothing else.

-- The session's settings that a role can change at run time (contexts user and
-- superuser, plus timepart's own), as one array. The body is generated from this
-- server's settings by _make_settings_digest (run by _harden at every install and
-- upgrade): a list of current_setting calls costs some 50 microseconds, a read of
-- pg_settings twenty times that. PL/pgSQL with no SET clause of its own (not pinned,
-- _unpinned_functions): it reads the settings its caller runs with, and its plan is kept
-- for the session (an SQL function's would be made again at every call). This stand-in
-- reads pg_settings.
CREATE OR REPLACE FUNCTION timepart._settings_now() RETURNS text[]
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN (SELECT pg_catalog.array_agg(pg_catalog.current_setting(s.name, true) ORDER BY s.name) FROM pg_catalog.pg_settings s
            WHERE s.context OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'superuser']::pg_catalog.text[])
               OR s.name OPERATOR(pg_catalog.~~) 'timepart.%');
END $$;

-- The names _settings_now reads, in its order (for saying which one changed).
CREATE OR REPLACE FUNCTION timepart._settings_names() RETURNS text[]
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.array_agg(s.name::pg_catalog.text ORDER BY s.name) FROM pg_catalog.pg_settings s
    WHERE s.context OPERATOR(pg_catalog.=) ANY (ARRAY['user', 'superuser']::pg_catalog.text[])
       OR s.name OPERATOR(pg_catalog.~~) 'timepart.%';
END;

-- Writes _settings_now and _settings_names as fixed lists of this server's settings.
-- Settings of context superuser are read only by roles that may read them all (some,
-- such as session_preload_libraries, are hidden from others); other roles cannot change
-- them either, unless granted SET on them.
CREATE OR REPLACE FUNCTION timepart._make_settings_digest() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    names text[];
    reads text;
BEGIN
    SELECT array_agg(x.n ORDER BY x.n), string_agg(CASE WHEN x.su THEN format('CASE WHEN p.priv THEN pg_catalog.current_setting(%L, true) END', x.n)
                                                   ELSE format('pg_catalog.current_setting(%L, true)', x.n) END, ', ' ORDER BY x.n)
    INTO names, reads
    FROM (SELECT s.name::text AS n, s.context = 'superuser' AS su FROM pg_catalog.pg_settings s WHERE s.context IN ('user', 'superuser')
          UNION SELECT 'timepart.log_retention', false) x;
    EXECUTE format('CREATE OR REPLACE FUNCTION timepart._settings_now() RETURNS text[] LANGUAGE plpgsql VOLATILE AS %L',
                   format('BEGIN RETURN (SELECT ARRAY[%s]::pg_catalog.text[] FROM (SELECT '
                          'pg_catalog.current_setting(%L) OPERATOR(pg_catalog.=) %L '
                          'OR pg_catalog.pg_has_role(CURRENT_USER, %L, %L) AS priv) p); END',
                          reads, 'is_superuser', 'on', 'pg_read_all_settings', 'USAGE'));
    EXECUTE format('CREATE OR REPLACE FUNCTION timepart._settings_names() RETURNS text[] LANGUAGE sql IMMUTABLE RETURN %L::pg_catalog.text[]',
                   names);
END $$;

-- The objects in this session's temporary schema (relations, types, functions, operators,
-- collations, conversions, text search configurations and dictionaries, statistics), as
-- one text: '' while the session has no temporary schema, the usual case.
CREATE OR REPLACE FUNCTION timepart._temp_objects() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    temp oid := pg_catalog.pg_my_temp_schema();
BEGIN
    IF temp = 0 THEN
        RETURN '';
    END IF;
    RETURN temp::text || ':' || coalesce((SELECT pg_catalog.md5(string_agg(x.o::text, ',' ORDER BY x.o)) FROM (
        SELECT c.oid AS o FROM pg_catalog.pg_class c WHERE c.relnamespace = temp
        UNION ALL SELECT t.oid FROM pg_catalog.pg_type t WHERE t.typnamespace = temp
        UNION ALL SELECT p.oid FROM pg_catalog.pg_proc p WHERE p.pronamespace = temp
        UNION ALL SELECT o.oid FROM pg_catalog.pg_operator o WHERE o.oprnamespace = temp
        UNION ALL SELECT l.oid FROM pg_catalog.pg_collation l WHERE l.collnamespace = temp
        UNION ALL SELECT v.oid FROM pg_catalog.pg_conversion v WHERE v.connamespace = temp
        UNION ALL SELECT f.oid FROM pg_catalog.pg_ts_config f WHERE f.cfgnamespace = temp
        UNION ALL SELECT d.oid FROM pg_catalog.pg_ts_dict d WHERE d.dictnamespace = temp
        UNION ALL SELECT s.oid FROM pg_catalog.pg_statistic_ext s WHERE s.stxnamespace = temp) x), '');
END $$;

-- The session's state the owner's code must not change: what no rollback undoes
-- (prepared statements, cursors, advisory locks), and with settings true also what a
-- rollback does (settings, temporary objects). Not pinned either (_unpinned_functions):
-- it reads the settings its caller runs with; every name in it is qualified.
CREATE OR REPLACE FUNCTION timepart._room_state(settings boolean) RETURNS jsonb
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    RETURN pg_catalog.jsonb_build_object(
        'prepared statements', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(p.name, p.prepare_time,
                                                                     pg_catalog.md5(p.statement)) ORDER BY p.name), '[]')
                                FROM pg_catalog.pg_prepared_statements p),
        'cursors', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(c.name, c.creation_time) ORDER BY c.name), '[]')
                    FROM pg_catalog.pg_cursors c),
        'advisory locks', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_array(l.classid, l.objid, l.objsubid, l.mode)
                                                                ORDER BY l.classid, l.objid, l.objsubid, l.mode), '[]')
                           FROM pg_catalog.pg_locks l
                           WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()
                             AND l.granted))
        OPERATOR(pg_catalog.||) CASE WHEN settings THEN pg_catalog.jsonb_build_object('settings', pg_catalog.to_jsonb(timepart._settings_now()),
                                                                                      'temporary objects', timepart._temp_objects())
                                     ELSE '{}'::pg_catalog.jsonb END;
END $$;

-- What changed between two states, in words (NULL: nothing).
CREATE OR REPLACE FUNCTION timepart._room_changes(before jsonb, after jsonb) RETURNS text
LANGUAGE plpgsql STABLE AS $$
DECLARE
    said text[] := '{}'::text[];
    k text;
    added text;
    removed text;
BEGIN
    IF before = after THEN
        RETURN NULL;
    END IF;
    FOR k IN SELECT b.key FROM jsonb_each(before) b WHERE b.value IS DISTINCT FROM after->b.key ORDER BY b.key LOOP
        IF k = 'settings' THEN
            said := array_append(said, format('settings changed: %s', (
                SELECT string_agg(n.name, ', ' ORDER BY n.i) FROM unnest(timepart._settings_names()) WITH ORDINALITY n(name, i)
                WHERE before->k->>(n.i::int - 1) IS DISTINCT FROM after->k->>(n.i::int - 1))));
        ELSIF k = 'temporary objects' THEN
            said := array_append(said, 'temporary objects were created or dropped');
        ELSE
            SELECT string_agg(x->>0, ', ') INTO added FROM jsonb_array_elements(after->k) x WHERE NOT before->k @> jsonb_build_array(x);
            SELECT string_agg(x->>0, ', ') INTO removed FROM jsonb_array_elements(before->k) x WHERE NOT after->k @> jsonb_build_array(x);
            said := array_append(said, format('%s%s%s', k, ' added or replaced: ' || added, ' removed: ' || removed));
        END IF;
    END LOOP;
    RETURN array_to_string(said, '; ');
END $$;

-- Takes (take) or releases a session advisory lock given as pg_locks shows it: one bigint
-- key (objsubid 1) or two integer keys (objsubid 2). Returns what the call returned.
CREATE OR REPLACE FUNCTION timepart._advisory(classid bigint, objid bigint, objsubid int, shared boolean, take boolean)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    k1 int := (classid - CASE WHEN classid > 2147483647 THEN 4294967296 ELSE 0 END)::int;
    k2 int := (objid - CASE WHEN objid > 2147483647 THEN 4294967296 ELSE 0 END)::int;
    k bigint := (classid << 32) | objid;
BEGIN
    IF objsubid = 1 THEN
        RETURN CASE WHEN take AND shared THEN pg_catalog.pg_try_advisory_lock_shared(k) WHEN take THEN pg_catalog.pg_try_advisory_lock(k)
                    WHEN shared THEN pg_catalog.pg_advisory_unlock_shared(k) ELSE pg_catalog.pg_advisory_unlock(k) END;
    END IF;
    RETURN CASE WHEN take AND shared THEN pg_catalog.pg_try_advisory_lock_shared(k1, k2) WHEN take THEN pg_catalog.pg_try_advisory_lock(k1, k2)
                WHEN shared THEN pg_catalog.pg_advisory_unlock_shared(k1, k2) ELSE pg_catalog.pg_advisory_unlock(k1, k2) END;
END $$;

-- After a rollback: removes the prepared statements and session advisory locks the
-- owner's code added (a rollback leaves both), and takes back the advisory locks it
-- released, where it can.
CREATE OR REPLACE FUNCTION timepart._room_sweep(before jsonb) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    ok boolean;
BEGIN
    FOR r IN SELECT p.name FROM pg_catalog.pg_prepared_statements p
             WHERE NOT before->'prepared statements' @> jsonb_build_array(jsonb_build_array(p.name, p.prepare_time, pg_catalog.md5(p.statement))) LOOP
        EXECUTE format('DEALLOCATE %I', r.name);
    END LOOP;
    FOR r IN SELECT l.c, l.o, l.sub, l.mode, bool_or(l.held) AS held FROM (
                 SELECT (x->>0)::bigint AS c, (x->>1)::bigint AS o, (x->>2)::int AS sub, x->>3 AS mode, false AS held
                 FROM jsonb_array_elements(before->'advisory locks') x
                 UNION ALL
                 SELECT l.classid::bigint, l.objid::bigint, l.objsubid::int, l.mode, true
                 FROM pg_catalog.pg_locks l WHERE l.locktype = 'advisory' AND l.pid = pg_catalog.pg_backend_pid() AND l.granted) l
             GROUP BY l.c, l.o, l.sub, l.mode HAVING count(*) = 1 LOOP
        -- Held now and not before: the owner's code took it; let go (as often as it was taken).
        -- Held before and not now: the owner's code released it; take it back.
        LOOP
            ok := timepart._advisory(r.c, r.o, r.sub, r.mode = 'ShareLock', NOT r.held);
            EXIT WHEN NOT ok OR NOT r.held;
        END LOOP;
    END LOOP;
END $$;

-- After a write: the session listens to the channels it listened to before, and to no
-- other (what the owner's code did with LISTEN or UNLISTEN would take effect at commit).
CREATE OR REPLACE FUNCTION timepart._room_listen(channels text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    ch text;
BEGIN
    UNLISTEN *;
    FOREACH ch IN ARRAY channels LOOP
        EXECUTE format('LISTEN %I', ch);
    END LOOP;
END $$;

-- The refusal for owner code that tried to leave something in this session.
CREATE OR REPLACE FUNCTION timepart._room_refuse(tbl regclass, changed text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'code of the owner of % tried to leave something in this session: %', tbl, changed USING ERRCODE = '42501',
        DETAIL = 'A trigger, rule, constraint, default, policy or index expression of the table ran with its owner''s rights '
                 'and did this; the step was undone.',
        HINT = 'Owner code that timepart runs may not create temporary objects, prepare statements, open cursors, change '
               'settings (use SET LOCAL in a function with its own SET clause), LISTEN or take session advisory locks.';
END $$;

-- The owner's code may end with assert_failure, which PL/pgSQL's WHEN OTHERS does not
-- catch: it would end the whole run, for every table, past timepart's own handlers. The
-- room catches it and raises this, which every caller can catch. (A cancel stays a cancel.)
CREATE OR REPLACE FUNCTION timepart._room_assertion(message text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'code of a table''s owner failed an assertion: %', message USING ERRCODE = 'P0001',
        DETAIL = 'PostgreSQL''s assert_failure cannot be caught by WHEN OTHERS; timepart reports it as an ordinary error.';
END $$;

-- The refusal to run a table owner's code in a session that holds what that code could
-- use with the session's rights, and that no check afterwards could take back: an open
-- cursor (the owner's code could FETCH from it) or a dblink connection (it could send SQL
-- through it).
CREATE OR REPLACE FUNCTION timepart._room_open(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    held text;
    dblink_schema name := (SELECT n.nspname FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                           WHERE e.extname = 'dblink');
    links text[];
BEGIN
    -- Not the portals of PL/pgSQL loops (<unnamed portal N>, timepart's own among them), nor
    -- the protocol's unnamed portal running the client's statement (which cannot be fetched
    -- from while it runs).
    SELECT string_agg(format('cursor %s', c.name), ', ' ORDER BY c.name) INTO held FROM pg_catalog.pg_cursors c
    WHERE c.name !~ '^<unnamed portal [0-9]+>$' AND c.name <> '';
    IF dblink_schema IS NOT NULL THEN
        EXECUTE format('SELECT %I.dblink_get_connections()', dblink_schema) INTO links;
        IF links IS NOT NULL THEN
            held := concat_ws(', ', held, 'dblink connection(s) ' || array_to_string(links, ', '));
        END IF;
    END IF;
    IF held IS NOT NULL THEN
        RAISE EXCEPTION 'this session holds what the code of the owner of % could use with its rights', tbl USING ERRCODE = '55000',
            DETAIL = format('Open: %s. timepart runs a table owner''s code (triggers, constraints, index expressions, '
                            'policies) in this session.', held),
            HINT = 'Close them first (CLOSE, dblink_disconnect), or run timepart in a session of its own.';
    END IF;
END $$;

-- Runs one statement that changes a user's table with the rights of the table's owner.
-- wants_value: the statement returns one jsonb value, which comes back; else {"rows": n}.
CREATE OR REPLACE FUNCTION timepart._as_owner(tbl regclass, q text, wants_value boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    executor text := timepart._owner_executor(tbl);
    before jsonb;
    channels text[] := ARRAY(SELECT pg_catalog.pg_listening_channels());
    result jsonb;
    changed text;
BEGIN
    PERFORM timepart._flush_deferred();  -- the caller's own events, as the caller, before the state is read
    PERFORM timepart._room_open(tbl);
    before := timepart._room_state(true);
    BEGIN
        EXECUTE format('SELECT %s($1, $2)', executor) INTO result USING q, wants_value;
        changed := timepart._room_changes(before, timepart._room_state(true));
        IF changed IS NOT NULL THEN
            PERFORM timepart._room_refuse(tbl, changed);
        END IF;
    EXCEPTION WHEN OTHERS OR query_canceled OR assert_failure THEN
        PERFORM timepart._room_sweep(before);
        IF SQLSTATE = 'P0004' THEN
            PERFORM timepart._room_assertion(SQLERRM);
        END IF;
        RAISE;
    END;
    PERFORM timepart._room_listen(channels);
    RETURN result;
END $$;

-- Runs one query that only reads a user's table with the rights of the table's owner,
-- and returns its one jsonb value. Whatever the owner's code did meanwhile is rolled back.
CREATE OR REPLACE FUNCTION timepart._read_as_owner(tbl regclass, q text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    executor text := timepart._owner_executor(tbl);
    before jsonb := timepart._room_state(false);
    after jsonb;
    result jsonb;
    done boolean := false;
BEGIN
    PERFORM timepart._room_open(tbl);
    BEGIN
        EXECUTE format('SELECT %s($1, true)', executor) INTO result USING '-- timepart: read' || E'\n' || q;
        done := true;
        RAISE EXCEPTION USING ERRCODE = 'TP001';  -- undo all of it
    EXCEPTION WHEN OTHERS OR query_canceled OR assert_failure THEN
        after := timepart._room_state(false);
        IF after <> before THEN
            PERFORM timepart._room_sweep(before);
            after := timepart._room_state(false);
        END IF;
        IF SQLSTATE = 'P0004' THEN
            PERFORM timepart._room_assertion(SQLERRM);
        END IF;
        IF NOT done OR SQLSTATE <> 'TP001' THEN
            RAISE;
        END IF;
    END;
    IF after <> before THEN
        PERFORM timepart._room_refuse(tbl, timepart._room_changes(before, after));
    END IF;
    RETURN result;
END $$;

-- base || '_' || suffix, kept within 63 bytes: when too long, base is cut and a hash of
-- the full name keeps it unique. One SQL expression (NULL in, NULL out), so the planner
-- inlines it: a query that matches names by it calls no function for a short name.
CREATE OR REPLACE FUNCTION timepart._fit_name(base text, suffix text) RETURNS name
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN pg_catalog.octet_length(base || '_' || suffix) <= 63 THEN (base || '_' || suffix)::name
                ELSE timepart._fit_long_name(base, suffix) END;
END;

-- The moment n periods after a period start (n may be negative), in local time.
CREATE OR REPLACE FUNCTION timepart._period_add(period_start timestamptz, partition_interval interval, n int, time_zone text)
RETURNS timestamptz LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT ((period_start AT TIME ZONE time_zone) + partition_interval * n) AT TIME ZONE time_zone;
END;

-- Label of a period as used in partition names: YYYY_MM for month intervals starting
-- on the 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._period_label(period_start timestamptz, partition_interval interval, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.to_char(period_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_part('day', partition_interval) = 0
                 AND pg_catalog.date_trunc('month', period_start AT TIME ZONE time_zone) = period_start AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
END;

-- Label of a partition from its own bounds (a table whose interval changed holds both
-- kinds): YYYY_MM when it runs from a 1st to a 1st, YYYY_MM_DD otherwise.
CREATE OR REPLACE FUNCTION timepart._bounds_label(range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS text LANGUAGE sql STABLE
BEGIN ATOMIC
    -- STABLE as to_char is: so the planner inlines it
    SELECT pg_catalog.to_char(range_start AT TIME ZONE time_zone,
           CASE WHEN pg_catalog.date_trunc('month', range_start AT TIME ZONE time_zone) = range_start AT TIME ZONE time_zone
                 AND pg_catalog.date_trunc('month', range_end AT TIME ZONE time_zone) = range_end AT TIME ZONE time_zone
                THEN 'YYYY_MM' ELSE 'YYYY_MM_DD' END);
END;

-- Name of the partition for a period: <parent>_<label>, fitted to 63 bytes.
CREATE OR REPLACE FUNCTION timepart._partition_name(parent regclass, period_start timestamptz, partition_interval interval, time_zone text)
RETURNS name LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT timepart._fit_name(c.relname, timepart._period_label(period_start, partition_interval, time_zone))
    FROM pg_catalog.pg_class c WHERE c.oid = parent;
END;

-- Name of a partition that fills part of a period (next to a hand-made partition): the
-- parent's name and both bounds, YYYY_MM_DD (with HH24MI when a bound is not at midnight).
CREATE OR REPLACE FUNCTION timepart._piece_name(parent regclass, range_start timestamptz, range_end timestamptz, time_zone text)
RETURNS name LANGUAGE sql STABLE STRICT
BEGIN ATOMIC
    SELECT timepart._fit_name(c.relname, pg_catalog.to_char(range_start AT TIME ZONE time_zone, f) || '_' || pg_catalog.to_char(range_end AT TIME ZONE time_zone, f))
    FROM pg_catalog.pg_class c,
         (SELECT CASE WHEN (range_start AT TIME ZONE time_zone)::time = '00:00' AND (range_end AT TIME ZONE time_zone)::time = '00:00'
                      THEN 'YYYY_MM_DD' ELSE 'YYYY_MM_DD_HH24MI' END AS f) x
    WHERE c.oid = parent;
END;

-- A bound written as a literal of the key's type (timestamptz in UTC with its offset,
-- local time for timestamp and date keys), independent of DateStyle and TimeZone.
CREATE OR REPLACE FUNCTION timepart._bound_literal(bound timestamptz, key_type regtype, time_zone text)
RETURNS text LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT pg_catalog.quote_literal(CASE key_type
        WHEN 'timestamptz'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00"')
        WHEN 'timestamp'::regtype THEN pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD"T"HH24:MI:SS.US')
        ELSE pg_catalog.to_char(bound AT TIME ZONE time_zone, 'YYYY-MM-DD') END);
END;

-- True for an interval whose months, days and time have opposite signs ('1 month -29 days'):
-- its length depends on the calendar, so it is no retention or period.
CREATE OR REPLACE FUNCTION timepart._mixed_signs(i interval) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT
BEGIN ATOMIC
    SELECT (m > 0 OR d > 0 OR t > 0) AND (m < 0 OR d < 0 OR t < 0)
    FROM (SELECT pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i) AS m,
                 pg_catalog.date_part('day', i) AS d,
                 pg_catalog.date_part('epoch', i - pg_catalog.justify_hours(pg_catalog.make_interval(
                     months => (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::int,
                     days => pg_catalog.date_part('day', i)::int))) AS t) parts;
END;

-- ==== src/30_catalog.sql
-- Reading the catalog: a managed table's configuration and its partitions' bounds,
-- every partition in one query (never one query per partition).

-- The one place that asks which PostgreSQL this is: every difference between the
-- supported majors (15 to 18) is a named fact below, read from here.
CREATE OR REPLACE FUNCTION timepart._server_major() RETURNS integer
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.current_setting('server_version_num')::integer / 10000;
END;

-- Since 17 a partition shares its parent's identity columns (and must have none of its
-- own to be attached); before, a partition's identity would be a second sequence.
CREATE OR REPLACE FUNCTION timepart._partitions_share_identity() RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT timepart._server_major() >= 17;
END;

-- One bound as the catalog prints it (a literal, MINVALUE or MAXVALUE) to a moment.
-- A single SQL expression, so the planner inlines it.
CREATE OR REPLACE FUNCTION timepart._bound_value(printed text, key_type oid, time_zone text)
RETURNS timestamptz LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN printed = 'MINVALUE' THEN '-infinity'::timestamptz
                WHEN printed = 'MAXVALUE' THEN 'infinity'::timestamptz
                WHEN key_type = 'timestamptz'::regtype THEN printed::timestamptz
                WHEN key_type = 'timestamp'::regtype THEN printed::timestamp AT TIME ZONE time_zone
                ELSE printed::date::timestamp AT TIME ZONE time_zone END;
END;

-- Every partition of a parent with its bounds read from the catalog (never from its
-- name), in one query. MINVALUE/MAXVALUE read as -infinity/infinity; the default
-- partition has NULL bounds.
CREATE OR REPLACE FUNCTION timepart._partitions(tbl regclass, time_zone text DEFAULT 'UTC')
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, is_default boolean, relkind "char")
LANGUAGE sql STABLE
BEGIN ATOMIC
    WITH printed AS MATERIALIZED (
        SELECT c.oid, n.nspname, c.relname, c.relkind,
               pg_catalog.pg_get_expr(c.relpartbound, 0) AS e  -- 0: bounds are constants; no partition is opened or locked
        FROM pg_catalog.pg_inherits i
        -- Each partition by its oid (OFFSET 0 keeps the lookup per row): never a scan of
        -- all of pg_class, which in a database of many tables costs more than the rest.
        CROSS JOIN LATERAL (SELECT c.oid, c.relname, c.relnamespace, c.relkind, c.relpartbound FROM pg_catalog.pg_class c
                            WHERE c.oid = i.inhrelid OFFSET 0) c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    ), parts AS MATERIALIZED (
        -- "FOR VALUES FROM ('lower') TO ('upper')", or DEFAULT. Plain string functions: a
        -- regular expression here cost more than everything else at 1,000 partitions.
        SELECT p.oid, p.nspname, p.relname, p.relkind,
               CASE WHEN p.e <> 'DEFAULT' THEN ARRAY[
                   pg_catalog.btrim(pg_catalog.split_part(pg_catalog.substr(p.e, 18), ') TO (', 1), ''''),
                   pg_catalog.btrim(pg_catalog.rtrim(pg_catalog.split_part(p.e, ') TO (', 2), ')'), '''')] END AS b
        FROM printed p
    ), key AS (
        SELECT a.atttypid AS key_type
        FROM pg_catalog.pg_partitioned_table p
        JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
        WHERE p.partrelid = tbl
    )
    SELECT p.oid, p.nspname, p.relname,
           timepart._bound_value(p.b[1], k.key_type, time_zone), timepart._bound_value(p.b[2], k.key_type, time_zone), p.b IS NULL, p.relkind
    FROM parts p CROSS JOIN key k
    ORDER BY 4 NULLS FIRST;
END;

-- A table's lock budget as a lock_timeout setting: whole milliseconds, never 0 (which
-- PostgreSQL reads as no limit).
CREATE OR REPLACE FUNCTION timepart._lock_budget(cfg timepart.config) RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT greatest(1, ceil(extract(epoch FROM cfg.lock_timeout) * 1000))::bigint::text || 'ms';
END;

-- The refusal for settings that break a rule, with the rule in the message. The
-- CHECK constraints on timepart.config say the same; this says it with DETAIL and HINT.
CREATE OR REPLACE FUNCTION timepart._check_settings(cfg timepart.config) RETURNS void
LANGUAGE plpgsql STABLE AS $$
BEGIN
    PERFORM timepart._check_interval(cfg.partition_interval);
    PERFORM timepart._check_premake(cfg.premake);
    PERFORM timepart._check_retention(cfg.retention);
    IF cfg.retention_action IS NULL OR cfg.retention_action NOT IN ('drop', 'detach', 'archive') THEN
        RAISE EXCEPTION 'retention_action must be drop, detach or archive' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.retention_action, 'NULL')),
            HINT = 'drop removes old partitions, detach keeps them as tables, archive moves them to archive_schema.';
    END IF;
    IF cfg.archive_schema IS NOT NULL THEN
        PERFORM timepart._check_archive_schema(cfg.archive_schema);
    END IF;
    IF cfg.retention_action = 'archive' AND cfg.archive_schema IS NULL THEN
        RAISE EXCEPTION 'retention_action archive needs an archive_schema' USING ERRCODE = '22023',
            DETAIL = 'archive_schema is NULL.', HINT = 'Set archive_schema, e.g. ''archive''; it is created when missing.';
    END IF;
    -- PostgreSQL's lock_timeout counts whole milliseconds, and 0 means no limit at all.
    IF cfg.lock_timeout IS NULL OR cfg.lock_timeout < interval '1 millisecond' OR cfg.lock_timeout > interval '1 minute'
       OR extract(epoch FROM cfg.lock_timeout) * 1000 <> floor(extract(epoch FROM cfg.lock_timeout) * 1000) THEN
        RAISE EXCEPTION 'lock_timeout must be a whole number of milliseconds from 1 ms to 1 minute' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_timeout::text, 'NULL')),
            HINT = 'A maintenance step waits at most this long for a lock; 100 ms suits busy tables.';
    END IF;
    IF cfg.retention IS NOT NULL AND cfg.retention < cfg.partition_interval THEN
        RAISE EXCEPTION 'retention is shorter than one partition' USING ERRCODE = '22023',
            DETAIL = format('Retention %s, partition interval %s: no partition could ever be kept whole.', cfg.retention, cfg.partition_interval),
            HINT = 'Keep at least one partition interval, e.g. 12 months for monthly partitions.';
    END IF;
    IF cfg.default_partition IS NULL THEN
        RAISE EXCEPTION 'default_partition must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'true (the default) keeps a default partition that catches rows no partition takes.';
    END IF;
    IF cfg.partition_unlogged IS NULL THEN
        RAISE EXCEPTION 'partition_unlogged must be true or false' USING ERRCODE = '22023',
            DETAIL = 'Got NULL.', HINT = 'false (the default) keeps partitions crash-safe and replicated.';
    END IF;
    IF cfg.lock_retries IS NULL OR cfg.lock_retries NOT BETWEEN 0 AND 20 THEN
        RAISE EXCEPTION 'lock_retries must be between 0 and 20' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(cfg.lock_retries::text, 'NULL')), HINT = 'A few retries (3) suit most tables.';
    END IF;
    PERFORM timepart._check_time_zone(cfg.time_zone);
    IF cfg.alert_max_size_bytes IS NULL OR cfg.alert_max_size_bytes <= 0 OR cfg.alert_max_rows IS NULL OR cfg.alert_max_rows <= 0
       OR cfg.alert_min_future IS NULL OR cfg.alert_min_future < 0 OR cfg.alert_growth_ratio IS NULL OR cfg.alert_growth_ratio <= 0
       OR cfg.alert_old_age IS NULL OR cfg.alert_old_age <= interval '0' THEN
        RAISE EXCEPTION 'alert thresholds must be positive' USING ERRCODE = '22023',
            DETAIL = format('max size %s bytes, max rows %s, min future %s, growth ratio %s, old age %s.',
                            cfg.alert_max_size_bytes, cfg.alert_max_rows, cfg.alert_min_future, cfg.alert_growth_ratio, cfg.alert_old_age),
            HINT = 'The seed''s defaults are 5 GB, 10 million rows, 2 future partitions, 0.5 (50%) and 13 months.';
    END IF;
END $$;

-- ==== src/35_registry.sql
-- Registry: adopting a partitioned table (manage) and letting it go (unmanage).

-- timepart's own tables are written only through these, as timepart's owner (SECURITY
-- DEFINER), each checking what the session's role (_caller()) may do: no other role holds
-- a right to write them, so none can lock them either (LOCK TABLE needs one) and hold
-- every table's maintenance up. Registering and forgetting a table, and its templates,
-- stay its owner's (or a member's, or a superuser's).
CREATE OR REPLACE FUNCTION timepart._config_put(cfg timepart.config) RETURNS timepart.config
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), cfg.parent, 'manage it');
    INSERT INTO timepart.config AS c SELECT cfg.*
    ON CONFLICT (parent) DO UPDATE SET key_column = excluded.key_column, key_type = excluded.key_type,
        partition_interval = excluded.partition_interval, premake = excluded.premake, retention = excluded.retention,
        retention_action = excluded.retention_action, archive_schema = excluded.archive_schema,
        default_partition = excluded.default_partition, lock_timeout = excluded.lock_timeout, lock_retries = excluded.lock_retries,
        time_zone = excluded.time_zone, alert_max_size_bytes = excluded.alert_max_size_bytes, alert_max_rows = excluded.alert_max_rows,
        alert_min_future = excluded.alert_min_future, alert_growth_ratio = excluded.alert_growth_ratio,
        alert_old_age = excluded.alert_old_age, interval_anchor = excluded.interval_anchor,
        monitor_sees_values = excluded.monitor_sees_values, partition_options = excluded.partition_options,
        partition_unlogged = excluded.partition_unlogged
    RETURNING * INTO cfg;
    RETURN cfg;
END $$;

CREATE OR REPLACE FUNCTION timepart._config_drop(tbl regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), tbl, 'stop managing it');
    DELETE FROM timepart.config c WHERE c.parent = tbl;
    RETURN FOUND;
END $$;

-- Validates a table and settings and writes its configuration row. No partitions yet.
-- A setting given as NULL keeps what the table has (or the default, for a new table).
CREATE OR REPLACE FUNCTION timepart._register(tbl regclass, partition_interval interval, premake integer, retention interval,
                                              with_default boolean, lock_wait interval, time_zone text)
RETURNS timepart.config LANGUAGE plpgsql AS $$
DECLARE
    pt record;
    cfg timepart.config;
    old timepart.config;
    known boolean;
BEGIN
    IF tbl IS NULL THEN
        RAISE EXCEPTION 'parent table must not be NULL' USING ERRCODE = '22004',
            DETAIL = 'No table was given.', HINT = 'Pass the partitioned table, e.g. timepart.manage(''public.email_events'').';
    END IF;
    SELECT c.relkind, p.partstrat, p.partnatts, p.partattrs[0] AS keynum, a.attname, a.atttypid::regtype AS keytype
    INTO pt
    FROM pg_catalog.pg_class c
    LEFT JOIN pg_catalog.pg_partitioned_table p ON p.partrelid = c.oid
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
    WHERE c.oid = tbl;
    IF pt.relkind IS DISTINCT FROM 'p' THEN
        RAISE EXCEPTION 'table % is not partitioned', tbl USING ERRCODE = '22023',
            DETAIL = format('relkind is %s; timepart manages tables declared PARTITION BY RANGE.', pt.relkind),
            HINT = 'Create it with PARTITION BY RANGE (<timestamptz column>).';
    END IF;
    IF pt.partstrat <> 'r' OR pt.partnatts <> 1 OR pt.keynum = 0 THEN
        RAISE EXCEPTION 'table % is not partitioned by range on a single column', tbl USING ERRCODE = '22023',
            DETAIL = format('Partition key: %s.', pg_catalog.pg_get_partkeydef(tbl)),
            HINT = 'timepart manages tables declared PARTITION BY RANGE (<one timestamptz, timestamp or date column>).';
    END IF;
    PERFORM timepart._check_time_column(tbl, pt.attname, pt.keytype);
    SELECT * INTO old FROM timepart.config c WHERE c.parent = tbl;
    known := FOUND;
    IF NOT known THEN
        old := ROW(tbl, pt.attname, pt.keytype, '1 month', 6, NULL, 'drop', NULL, true, '100 milliseconds', 3, 'UTC',
                   5368709120, 10000000, 2, 0.5, '13 months', now(), NULL, false, '{}', false)::timepart.config;
        cfg := old;
        cfg.retention := retention;
    ELSE
        cfg := old;
        cfg.retention := coalesce(retention, old.retention);
    END IF;
    cfg.partition_interval := coalesce(partition_interval, old.partition_interval);
    cfg.premake := coalesce(premake, old.premake);
    cfg.default_partition := coalesce(with_default, old.default_partition);
    cfg.lock_timeout := coalesce(lock_wait, old.lock_timeout);
    cfg.time_zone := coalesce(time_zone, old.time_zone);
    PERFORM timepart._check_settings(cfg);
    IF known AND old.time_zone <> cfg.time_zone THEN
        RAISE EXCEPTION 'table % is already managed in time zone %', tbl, old.time_zone USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', cfg.time_zone),
            HINT = 'Period boundaries depend on the time zone; it cannot change while partitions exist.';
    END IF;
    IF known AND old.partition_interval::text <> cfg.partition_interval::text THEN
        RAISE EXCEPTION 'table % is already managed with interval %', tbl, old.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s.', cfg.partition_interval),
            HINT = format('Change it with SELECT timepart.change_interval(%L, %L);', tbl::text, cfg.partition_interval::text);
    END IF;
    RETURN timepart._config_put(cfg);
END $$;

CREATE OR REPLACE FUNCTION timepart.manage(parent regclass, partition_interval interval DEFAULT NULL,
                                           premake integer DEFAULT NULL, retention interval DEFAULT NULL,
                                           default_partition boolean DEFAULT NULL,
                                           lock_timeout interval DEFAULT NULL,
                                           time_zone text DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Adopts a table partitioned BY RANGE on a time column and creates the partitions
   it needs now. A new table gets '1 month', premake 6, no retention, a default
   partition, a 100 ms lock budget and UTC for what is not given. Calling it again
   changes only the settings given (to clear a retention, use configure). Returns what
   maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
BEGIN
    PERFORM timepart._check_moment(as_of);
    cfg := timepart._register(parent, partition_interval, premake, retention, default_partition, lock_timeout, time_zone);
    CALL timepart._log('manage', parent, NULL, true, to_jsonb(cfg) - 'parent', NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;

CREATE OR REPLACE FUNCTION timepart.unmanage(parent regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops managing a table. Every partition, index and row stays. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF NOT timepart._config_drop(unmanage.parent) THEN
        RAISE NOTICE 'table % is not managed by timepart', parent;
        RETURN false;
    END IF;
    CALL timepart._log('unmanage', parent, NULL, true, '{}', NULL, started);
    RETURN true;
END $$;

CREATE OR REPLACE FUNCTION timepart.configure(parent regclass, settings jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
/* Changes a managed table's settings, e.g. '{"retention": "12 months", "premake": 3}'.
   Unknown or fixed keys and invalid values are refused; nothing changes then. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    bad text;
    fixed text[] := ARRAY['parent', 'key_column', 'key_type', 'partition_interval', 'time_zone', 'created_at', 'interval_anchor'];
BEGIN
    IF settings IS NULL OR pg_catalog.jsonb_typeof(settings) <> 'object' THEN
        RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(settings::text, 'NULL')), HINT = 'Pass e.g. ''{"premake": 3}''.';
    END IF;
    SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(settings) k
    WHERE k = ANY (fixed) OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
        WHERE a.attrelid = 'timepart.config'::regclass AND a.attname = k AND a.attnum > 0 AND NOT a.attisdropped);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'unknown or fixed setting(s): %', bad USING ERRCODE = '22023',
            DETAIL = format('Fixed: %s. The interval changes with timepart.change_interval().', array_to_string(fixed, ', ')),
            HINT = 'Settable: premake, retention, retention_action, archive_schema, default_partition, lock_timeout, '
                   'lock_retries, alert_max_size_bytes, alert_max_rows, alert_min_future, alert_growth_ratio, alert_old_age, '
                   'monitor_sees_values, partition_options, partition_unlogged.';
    END IF;
    BEGIN
        cfg := jsonb_populate_record(cfg, settings);
    EXCEPTION WHEN data_exception THEN
        RAISE EXCEPTION 'invalid setting value: %', SQLERRM USING ERRCODE = '22023',
            DETAIL = format('Settings: %s.', settings), HINT = 'Intervals are text such as "12 months"; counts are numbers.';
    END;
    PERFORM timepart._check_settings(cfg);
    PERFORM timepart._check_partition_options(cfg.partition_options);
    PERFORM timepart._config_put(cfg);
    CALL timepart._log('configure', parent, NULL, true, settings, NULL, started);
    RETURN to_jsonb(cfg);
END $$;

CREATE OR REPLACE FUNCTION timepart.change_interval(parent regclass, new_interval interval, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Changes the partition interval of a managed table (say monthly to daily). Existing
   partitions stay as they are; new ones follow the new interval from the end of the
   last existing one. Returns what maintain returns. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config := timepart._config(parent);
    anchor timestamptz;
BEGIN
    PERFORM timepart._check_interval(new_interval);
    IF new_interval::text = cfg.partition_interval::text THEN
        RAISE NOTICE 'table % already uses interval %', parent, new_interval;
        RETURN timepart.maintain(parent, NULL, as_of);
    END IF;
    SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end)) INTO anchor
    FROM timepart._partitions(parent, cfg.time_zone) p WHERE NOT p.is_default;
    IF pg_catalog.date_part('day', new_interval) = 0 AND anchor IS NOT NULL
       AND pg_catalog.date_trunc('month', anchor AT TIME ZONE cfg.time_zone) <> anchor AT TIME ZONE cfg.time_zone THEN
        RAISE EXCEPTION 'month partitions must start on the 1st' USING ERRCODE = '22023',
            DETAIL = format('The last partition of %s ends %s, not on the 1st of a month.', parent, anchor),
            HINT = 'Create partitions of the current interval up to the next 1st, then change the interval.';
    END IF;
    cfg.partition_interval := new_interval;
    cfg.interval_anchor := anchor;
    PERFORM timepart._config_put(cfg);
    CALL timepart._log('change_interval', parent, NULL, true,
        jsonb_build_object('from', cfg.partition_interval, 'to', new_interval, 'anchor', anchor), NULL, started);
    RETURN timepart.maintain(parent, NULL, as_of);
END $$;

-- ==== src/40_log.sql
-- The maintenance log: one row per operation outcome. Callers write it outside the
-- sub-transaction that failed, so a failure survives its own rollback.

-- A step's errors (a jsonb array of texts) as the log's one error text; NULL for none.
CREATE OR REPLACE FUNCTION timepart._joined_errors(errors jsonb) RETURNS text
LANGUAGE sql IMMUTABLE
RETURN NULLIF(pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.jsonb_array_elements_text(errors)), '; '), '');

CREATE OR REPLACE PROCEDURE timepart._log(operation text, parent regclass, partition_name text,
                                          ok boolean, details jsonb, err text, started timestamptz)
LANGUAGE plpgsql AS $$
/* A procedure, CALLed: the log's guard believes a row only from this INSERT, run by a
   CALL written in one of timepart's PL/pgSQL functions (_calling_context); who and when
   it sets itself. */
BEGIN
    INSERT INTO timepart.maintenance_log (operation_type, parent_table, partition_name, success, details, error, duration)
    VALUES (operation, parent::text, partition_name, ok, coalesce(details, '{}'), err, pg_catalog.clock_timestamp() - started);
END $$;

-- ==== src/50_indexes.sql
-- Index templates: every partition gets every template as <partition>_<suffix>,
-- attached to the template's partitioned index on the parent (<parent>_<suffix>).

CREATE OR REPLACE FUNCTION timepart._template_sql(t timepart.index_templates, index_name name,
                                                  schema_name name, table_name name, only_parent boolean)
RETURNS text LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('CREATE INDEX %I ON %s%I.%I USING %I (%s)%s',
                  index_name, CASE WHEN only_parent THEN 'ONLY ' ELSE '' END,
                  schema_name, table_name, t.method, t.columns,
                  CASE WHEN t.where_clause IS NULL THEN '' ELSE ' WHERE (' || t.where_clause || ')' END);
END;

-- The partitioned index on the parent that a template's partition indexes attach to.
CREATE OR REPLACE FUNCTION timepart._template_parent_index(tbl regclass, suffix text) RETURNS regclass
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT c.oid::regclass FROM pg_catalog.pg_class c, pg_catalog.pg_class p
    WHERE p.oid = tbl AND c.relnamespace = p.relnamespace
      AND c.relname = timepart._fit_name(p.relname, suffix) AND c.relkind = 'I';
END;

-- A template's row, written as timepart's owner for the table's owner (see _config_put).
CREATE OR REPLACE FUNCTION timepart._template_put(t timepart.index_templates) RETURNS timepart.index_templates
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), t.parent, 'change its index templates');
    INSERT INTO timepart.index_templates AS it SELECT t.* RETURNING * INTO t;
    RETURN t;
END $$;

CREATE OR REPLACE FUNCTION timepart._template_drop(tbl regclass, template_suffix text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), tbl, 'change its index templates');
    DELETE FROM timepart.index_templates it WHERE it.parent = tbl AND it.suffix = template_suffix;
    RETURN FOUND;
END $$;

CREATE OR REPLACE FUNCTION timepart.add_index_template(parent regclass, suffix text, columns text,
                                                       where_clause text DEFAULT NULL, method text DEFAULT 'btree')
RETURNS integer LANGUAGE plpgsql AS $$
/* Registers an index every partition gets, creates it on the parent (ON ONLY, so
   no lock on the partitions) and back-fills every existing partition. Returns how
   many partition indexes were created. Safe to repeat. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    t timepart.index_templates;
    p record;
    pname name;
    pschema name;
    made integer := 0;
    existing timepart.index_templates;
    err text;
    state text;
BEGIN
    PERFORM timepart._config(parent);
    PERFORM timepart._check_template(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    SELECT * INTO existing FROM timepart.index_templates it WHERE it.parent = add_index_template.parent AND it.suffix = add_index_template.suffix;
    IF FOUND THEN
        IF existing.columns IS DISTINCT FROM add_index_template.columns
           OR existing.method IS DISTINCT FROM add_index_template.method
           OR existing.where_clause IS DISTINCT FROM add_index_template.where_clause THEN
            RAISE EXCEPTION 'index template "%" already exists on % with another definition', suffix, parent
                USING ERRCODE = '42710',
                DETAIL = format('Existing: USING %s (%s)%s', existing.method, existing.columns,
                                coalesce(' WHERE ' || existing.where_clause, '')),
                HINT = 'Remove it with timepart.drop_index_template() first, or choose another suffix.';
        END IF;
        t := existing;
    ELSE
        t := timepart._template_put(ROW(parent, suffix, columns, coalesce(method, 'btree'), where_clause, now())::timepart.index_templates);
    END IF;

    SELECT c.relname, n.nspname INTO pname, pschema
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF timepart._template_parent_index(parent, suffix) IS NULL THEN
        -- An invalid definition fails here, before any partition is touched.
        BEGIN
            PERFORM timepart._as_owner(parent, timepart._template_sql(t, timepart._fit_name(pname, suffix), pschema, pname, true));
        EXCEPTION WHEN undefined_column OR undefined_function OR undefined_object OR syntax_error OR datatype_mismatch
                       OR wrong_object_type OR invalid_object_definition THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            RAISE EXCEPTION 'index template "%" does not fit %: %', suffix, parent, err USING ERRCODE = state,
                DETAIL = format('Template: USING %s (%s)%s.', t.method, t.columns, coalesce(' WHERE ' || t.where_clause, '')),
                HINT = format('Use columns and expressions of %s (\d %s lists them); nothing was changed.', parent, parent);
        END;
    END IF;
    FOR p IN SELECT * FROM timepart._partitions(parent) LOOP
        made := made + coalesce(array_length(timepart._index_partition(parent, p.partition_oid), 1), 0);
    END LOOP;
    CALL timepart._log('add_index_template', parent, NULL, true,
        jsonb_build_object('suffix', suffix, 'columns', columns, 'method', t.method,
                           'where', where_clause, 'indexes_created', made), NULL, started);
    RETURN made;
END $$;

CREATE OR REPLACE FUNCTION timepart.drop_index_template(parent regclass, suffix text) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Forgets a template. Existing indexes stay; drop the parent's index yourself to remove them all. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
BEGIN
    IF NOT timepart._template_drop(drop_index_template.parent, drop_index_template.suffix) THEN
        RAISE NOTICE 'no index template "%" on %', suffix, parent;
        RETURN false;
    END IF;
    CALL timepart._log('drop_index_template', parent, NULL, true, jsonb_build_object('suffix', suffix), NULL, started);
    RETURN true;
END $$;

-- ==== src/55_look.sql
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

-- ==== src/60_create.sql
-- Creating partitions: standalone table + indexes, then ATTACH (weak lock on the
-- parent), every lock wait bounded by the table's lock budget and retried.

-- The columns rows are copied by (no dropped or generated columns), quoted.
CREATE OR REPLACE FUNCTION timepart._column_list(tbl regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum)
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '';
END;

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

    CALL timepart._new_partition_table(cfg.parent, part_name, part);

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

-- Moves the rows of [range_start, range_end) waiting in the default partition into the
-- new (not yet attached) partition; returns how many. Refused, with nothing moved, when
-- moving would fire something of the user's: foreign-key actions on referencing tables,
-- or triggers on the default partition (a move is a DELETE and an INSERT).
CREATE OR REPLACE FUNCTION timepart._move_waiting_rows(cfg timepart.config, default_part regclass, part regclass,
                                                       range_start timestamptz, range_end timestamptz)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cols text;
    waiting boolean;
BEGIN
    -- Usually nothing waits there: a cheap probe spares the move statement.
    waiting := timepart._read_as_owner(cfg.parent, format(
        'SELECT pg_catalog.to_jsonb(EXISTS (SELECT 1 FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s))',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone)))::text::boolean;
    IF NOT waiting THEN
        RETURN 0;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D') THEN
        -- The user's triggers there (cloned from the parent's, row or statement) would
        -- fire as if rows were deleted.
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and it has triggers', range_start, range_end,
            cfg.parent USING ERRCODE = '55000',
            DETAIL = format('Moving them is a DELETE and an INSERT: it would fire %s.',
                (SELECT string_agg(t.tgname::text, ', ' ORDER BY t.tgname) FROM pg_catalog.pg_trigger t
                 WHERE t.tgrelid = default_part AND NOT t.tgisinternal AND t.tgenabled <> 'D')),
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite r WHERE r.ev_class IN (default_part, part)) THEN
        -- A rule would turn the DELETE or the INSERT into statements of the owner's choosing.
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and it has rules', range_start, range_end,
            cfg.parent USING ERRCODE = '55000',
            DETAIL = format('Moving them is a DELETE and an INSERT, which these rules would rewrite: %s.',
                (SELECT string_agg(format('%s on %s', r.rulename, r.ev_class::regclass), ', ' ORDER BY r.rulename)
                 FROM pg_catalog.pg_rewrite r WHERE r.ev_class IN (default_part, part))),
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k WHERE k.contype = 'f' AND k.confrelid = cfg.parent) THEN
        RAISE EXCEPTION 'rows for % to % wait in the default partition of %, and foreign keys reference the table',
            range_start, range_end, cfg.parent USING ERRCODE = '55000',
            DETAIL = 'Moving them would fire the foreign keys'' ON DELETE actions on the referencing tables.',
            HINT = 'Move them yourself (detach the default partition, create this partition, re-insert), then run maintain.';
    END IF;
    cols := timepart._column_list(cfg.parent);
    -- User code (constraints, index expressions) runs with the owner's rights only.
    RETURN (timepart._as_owner(cfg.parent, format(
        'WITH moved AS (DELETE FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s RETURNING *) '
        'INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM moved',
        default_part, cfg.key_column, timepart._bound_literal(range_start, cfg.key_type, cfg.time_zone),
        cfg.key_column, timepart._bound_literal(range_end, cfg.key_type, cfg.time_zone),
        part, cols, cols))->>'rows')::bigint;
END $$;

-- The empty table a partition starts as, in the parent's schema, owned by the parent's
-- owner. Made by that owner's executor when it may create tables there; else by
-- timepart's owner (SECURITY DEFINER), which then hands it over: CREATE TABLE (LIKE)
-- copies definitions and runs no user code. Everything after runs as the owner.
-- Identity columns are the parent's alone: since 17 the attached partition shares them;
-- before, the partition's column takes its values from the parent's sequence, so a row
-- inserted straight into a partition never repeats an id.
-- The access method a new partition gets: the table's, never what a SET of the session (a
-- partition_admin's, say) made default_table_access_method. The parent's (17+), else the
-- one most partitions use, else the default the session started with (server, database,
-- role), else heap.
CREATE OR REPLACE FUNCTION timepart._partition_access_method(parent regclass) RETURNS name
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT a.amname FROM pg_catalog.pg_am a WHERE a.oid = coalesce(
        (SELECT NULLIF(c.relam, 0) FROM pg_catalog.pg_class c WHERE c.oid = parent),
        (SELECT c.relam FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = parent AND c.relkind = 'r' GROUP BY c.relam ORDER BY count(*) DESC, c.relam LIMIT 1),
        (SELECT d.oid FROM pg_catalog.pg_am d JOIN pg_catalog.pg_settings g ON g.reset_val = d.amname
         WHERE g.name = 'default_table_access_method' AND d.amtype = 't'),
        (SELECT h.oid FROM pg_catalog.pg_am h WHERE h.amname = 'heap'));
END;

CREATE OR REPLACE PROCEDURE timepart._new_partition_table(parent regclass, part_name name, INOUT part regclass DEFAULT NULL)
LANGUAGE plpgsql AS $$
DECLARE
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = parent);
    part_schema name := (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE c.oid = parent);
    cfg timepart.config := timepart._config(parent);
    space name := (SELECT t.spcname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_tablespace t ON t.oid = c.reltablespace
                   WHERE c.oid = parent);
    am name := timepart._partition_access_method(parent);
    -- Born with what cannot change later without a rewrite: logged-ness, the access
    -- method, the parent's tablespace, the configured storage options.
    ddl text := format('CREATE %sTABLE %I.%I (LIKE %s INCLUDING ALL EXCLUDING INDEXES EXCLUDING IDENTITY) USING %I%s',
                       CASE WHEN cfg.partition_unlogged THEN 'UNLOGGED ' ELSE '' END, part_schema, part_name, parent, am,
                       CASE WHEN cfg.partition_options <> '{}'::jsonb THEN format(' WITH (%s)', timepart._reloptions_sql(cfg.partition_options)) ELSE '' END);
    col record;
    ctx text;
BEGIN
    -- Only as a step of _build_partition, whose bounds and name were checked: called on
    -- its own (it runs as timepart's owner) it would make tables of any name. A procedure,
    -- CALLed, so the call cannot be dressed up as one of _build_partition's (_calling_function).
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    IF coalesce(timepart._calling_function(ctx), '') !~ '^PL/pgSQL function timepart\._build_partition\(' THEN
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
END $$;

CREATE OR REPLACE FUNCTION timepart.create_partition(parent regclass, range_start timestamptz, range_end timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
/* Creates one partition with its templated indexes. Already there: a notice and its
   name. Misaligned, reversed or overlapping bounds: an error, nothing changed. */
DECLARE
    made text;
BEGIN
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(create_partition.parent) THEN
        CALL timepart._admin_create_partition(create_partition.parent, range_start, range_end, made);
        RETURN made;
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
    IF NOT timepart._runner_lock(parent, cfg.lock_timeout) THEN
        CALL timepart._log('create_partition', parent, part_name, false, '{"skipped": "another run holds the table"}',
                              'skipped: another run holds the table', started);
        RAISE EXCEPTION 'could not create partition %: another run holds %', part_name, parent USING ERRCODE = '55P03',
            DETAIL = format('Waited %s (the table''s lock budget) for a maintenance run of %s to finish.', cfg.lock_timeout, parent),
            HINT = 'Run it again when that run is over.';
    END IF;
    result := timepart._attempt(cfg, 'build', part_name, range_start, range_end);
    IF NOT (result->>'ok')::boolean THEN
        CALL timepart._log('create_partition', parent, part_name, false, result, result->>'error', started);
        RAISE EXCEPTION 'could not create partition %: %', part_name, result->>'error'
            USING ERRCODE = coalesce(result->>'sqlstate', 'P0001'),
                  DETAIL = format('Range %s to %s, %s attempt(s).', range_start, range_end, result->>'attempts'),
                  HINT = 'A lock wait gives up after the table''s lock_timeout; run it again when traffic allows.';
    END IF;
    CALL timepart._log('create_partition', parent, part_name, true,
        result || jsonb_build_object('range_start', range_start, 'range_end', range_end), NULL, started);
    RETURN format('%I.%I', (SELECT n.nspname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
                            ON n.oid = c.relnamespace WHERE c.oid = parent), part_name);
END $$;

-- ==== src/61_runners.sql
-- One runner per table. maintain, cleanup and create_partition hold a row lock on the
-- table's row of timepart.runners for their transaction; a migration, which commits as
-- it goes, records its session there and holds a session advisory lock whose key is
-- drawn at random and meaningful only with that session's pid. Nobody but timepart's
-- owner may lock or write these rows, so no role outside timepart can hold a table's
-- maintenance up (an advisory lock alone can be taken by anyone who knows its key).

CREATE TABLE timepart.runners (
    parent          regclass PRIMARY KEY,
    session_pid     integer,
    session_key     bigint,
    session_since   timestamptz
);

COMMENT ON TABLE timepart.runners IS 'Who runs timepart on a table now: a row lock for one transaction, or a migration''s session';

-- Whether another session, a migration's, holds the table (its backend is alive and
-- holds the key). This session's own hold is no obstacle to itself (migrate_abort after
-- a failed CALL timepart.migrate, in the same session).
CREATE OR REPLACE FUNCTION timepart._runner_session_alive(r timepart.runners) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT r.session_pid IS NOT NULL AND r.session_pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() AND EXISTS (
        SELECT 1 FROM pg_catalog.pg_locks l
        WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.pid OPERATOR(pg_catalog.=) r.session_pid AND l.granted
          AND l.objsubid OPERATOR(pg_catalog.=) 1
          AND ((l.classid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32) OPERATOR(pg_catalog.|) l.objid::pg_catalog.int8)
              OPERATOR(pg_catalog.=) r.session_key);
END;

-- Takes the table's runner lock for this transaction, waiting at most `wait` (0: not at
-- all). False when another run holds it. As timepart's owner (SECURITY DEFINER): only it
-- may lock the row; the caller must be allowed to run maintenance on the table.
CREATE OR REPLACE FUNCTION timepart._runner_lock(tbl regclass, wait interval) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    r timepart.runners;
    old_timeout text := pg_catalog.current_setting('lock_timeout');
BEGIN
    PERFORM timepart._check_may_maintain(timepart._caller(), tbl, 'run maintenance on it');
    IF wait IS NULL OR wait < interval '0' THEN
        RAISE EXCEPTION 'a lock wait must be zero or more' USING ERRCODE = '22023', DETAIL = format('Got %s.', coalesce(wait::text, 'NULL')),
            HINT = 'Pass the table''s lock budget.';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', greatest(1, extract(epoch FROM wait) * 1000)::bigint::text || 'ms', true);
    BEGIN
        INSERT INTO timepart.runners AS x (parent) VALUES (tbl) ON CONFLICT (parent) DO NOTHING;
        IF wait = interval '0' THEN
            SELECT * INTO r FROM timepart.runners x WHERE x.parent = tbl FOR UPDATE SKIP LOCKED;
        ELSE
            SELECT * INTO r FROM timepart.runners x WHERE x.parent = tbl FOR UPDATE;
        END IF;
    EXCEPTION WHEN lock_not_available THEN
        r := NULL;
    END;
    PERFORM pg_catalog.set_config('lock_timeout', old_timeout, true);
    RETURN r.parent IS NOT NULL AND NOT timepart._runner_session_alive(r);
END $$;

-- A migration's hold on its table for the whole session (its transactions commit as it
-- goes). False when another session holds it. Only the table's owner may.
CREATE OR REPLACE FUNCTION timepart._runner_session_lock(tbl regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    key bigint;
BEGIN
    PERFORM timepart._check_may_act(timepart._caller(), tbl, 'migrate it');
    IF NOT timepart._runner_lock(tbl, interval '0') THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM timepart.runners x WHERE x.parent = tbl AND x.session_pid = pg_catalog.pg_backend_pid()) THEN
        RETURN true;  -- this session holds it already (a CALL that failed, called again)
    END IF;
    -- A random key, tried until one is free (a key someone else holds is skipped).
    LOOP
        key := (pg_catalog.random() * 9.2e18)::bigint;
        EXIT WHEN pg_catalog.pg_try_advisory_lock(key);
    END LOOP;
    UPDATE timepart.runners x SET session_pid = pg_catalog.pg_backend_pid(), session_key = key,
        session_since = pg_catalog.clock_timestamp()
    WHERE x.parent = tbl;
    RETURN true;
END $$;

-- Lets go of this session's hold on a table (a no-op when it has none).
CREATE OR REPLACE FUNCTION timepart._runner_session_unlock(tbl regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    r timepart.runners;
BEGIN
    SELECT * INTO r FROM timepart.runners x WHERE x.parent = tbl AND x.session_pid = pg_catalog.pg_backend_pid();
    IF FOUND THEN
        PERFORM pg_catalog.pg_advisory_unlock(r.session_key);
        UPDATE timepart.runners x SET session_pid = NULL, session_key = NULL, session_since = NULL WHERE x.parent = tbl;
    END IF;
END $$;

-- ==== src/62_runner.sql
-- The one runner of maintain and cleanup. _run takes the tables one at a time (the
-- replica exit, the per-table runner lock, the result shape); _run_steps takes one
-- table's partition steps one at a time (each logged, the back-off on a lock timeout).

-- The managed tables (all, or one), in a stable order. A configuration whose table
-- was dropped is not a managed table.
CREATE OR REPLACE FUNCTION timepart._managed(parent regclass DEFAULT NULL) RETURNS SETOF timepart.config
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT c.* FROM timepart.config c JOIN pg_catalog.pg_class r ON r.oid = c.parent
    WHERE _managed.parent IS NULL OR c.parent = _managed.parent
    ORDER BY c.parent::text;
END;

-- Runs `operation` ('maintain' or 'cleanup') on every managed table, or one. Each table
-- is taken under its runner lock (61_runners.sql), or skipped (another run holds it); nothing runs on a
-- replica. Returns the seed's shape: success, created_partitions, dropped_partitions,
-- errors, execution_time_ms, plus moved_rows, skipped (tables), tables (each one's result)
-- and left_partitions (retirements left for the next call, see _run_steps).
CREATE OR REPLACE FUNCTION timepart._run(operation text, parent regclass, premake integer, retention interval,
                                         dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    cfg timepart.config;
    res jsonb;
    created jsonb := '[]'::jsonb;
    dropped jsonb := '[]'::jsonb;
    errors jsonb := '[]'::jsonb;
    skipped jsonb := '[]'::jsonb;
    tables jsonb := '[]'::jsonb;
    moved bigint := 0;
    left_over integer := 0;
    newest timestamptz;
BEGIN
    IF _run.parent IS NOT NULL THEN
        PERFORM timepart._config(_run.parent);
    END IF;
    -- cleanup removes data. Refused for every table before any change: a moment further
    -- past the newest partition (or now) than maintain would reach (premake + 1 periods, at
    -- least a month: a typo, a clock gone wrong, and every partition would look old), and a
    -- retention shorter than one partition. Moments near the partitions stay allowed, so
    -- tests and soaks can move time.
    IF operation = 'cleanup' THEN
        FOR cfg IN SELECT * FROM timepart._managed(_run.parent) LOOP
            newest := (SELECT max(p.range_end) FILTER (WHERE pg_catalog.isfinite(p.range_end))
                       FROM timepart._partitions(cfg.parent, cfg.time_zone) p WHERE NOT p.is_default);
            -- A table without partitions has nothing a moment could remove: newest is NULL.
            IF newest IS NOT NULL AND as_of > greatest(now(), newest) + greatest(cfg.partition_interval * (cfg.premake + 1), interval '1 month') THEN
                RAISE EXCEPTION 'cleanup refuses a moment past the partitions of %', cfg.parent USING ERRCODE = '22023',
                    DETAIL = format('as_of is %s; the newest partition of %s ends %s.', as_of, cfg.parent, newest),
                    HINT = 'Leave as_of out to clean up as of now; a dry run (dry_run => true) shows what a moment would remove.';
            END IF;
            IF _run.retention IS NOT NULL AND _run.retention < cfg.partition_interval THEN
                RAISE EXCEPTION 'retention is shorter than one partition of %', cfg.parent USING ERRCODE = '22023',
                    DETAIL = format('Retention %s, partition interval %s.', _run.retention, cfg.partition_interval),
                    HINT = 'Keep at least one partition interval, e.g. 12 months for monthly partitions.';
            END IF;
        END LOOP;
    END IF;
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE NOTICE 'timepart: this server is a replica; % runs on the primary', operation;
        skipped := '["replica"]';
    END IF;
    FOR cfg IN SELECT * FROM timepart._managed(_run.parent) WHERE NOT pg_catalog.pg_is_in_recovery() LOOP
        IF operation = 'cleanup' AND coalesce(_run.retention, cfg.retention) IS NULL THEN
            res := jsonb_build_object('table', cfg.parent::text, 'skipped', 'no retention configured');
        ELSIF NOT timepart._runner_lock(cfg.parent, interval '0') THEN
            -- Not a success: nothing was done. A table held for long raises maintenance_skipped.
            RAISE NOTICE 'timepart: another maintenance run holds %, skipping it', cfg.parent;
            CALL timepart._log(operation, cfg.parent, NULL, false, '{"skipped": "another run holds the table"}',
                                  'skipped: another run holds the table', started);
            skipped := skipped || to_jsonb(cfg.parent::text);
            res := jsonb_build_object('table', cfg.parent::text, 'skipped', 'another run holds the table');
        ELSIF operation = 'maintain' THEN
            res := timepart._maintain_table(cfg, coalesce(_run.premake, cfg.premake), as_of);
        ELSE
            res := timepart._cleanup_table(cfg, coalesce(_run.retention, cfg.retention), dry_run, as_of);
        END IF;
        created := created || coalesce(res->'created', '[]'::jsonb);
        dropped := dropped || coalesce(res->'removed', '[]'::jsonb);
        errors := errors || coalesce(res->'errors', '[]'::jsonb);
        moved := moved + coalesce((res->>'moved_rows')::bigint, 0);
        left_over := left_over + coalesce((res->>'left')::integer, 0);
        tables := tables || res;
    END LOOP;
    RETURN jsonb_build_object('success', jsonb_array_length(errors) = 0, 'created_partitions', created,
        'dropped_partitions', dropped, 'errors', errors,
        'execution_time_ms', round(extract(epoch FROM pg_catalog.clock_timestamp() - started) * 1000, 1),
        'moved_rows', moved, 'skipped', skipped, 'tables', tables, 'left_partitions', left_over)
        || CASE WHEN operation = 'cleanup' THEN jsonb_build_object('dry_run', dry_run) ELSE '{}'::jsonb END;
END $$;

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
        CALL timepart._log(log_operation, cfg.parent, part_name, (res->>'ok')::boolean, res, res->>'error', step_started);
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
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_locks l
                   WHERE NOT l.granted AND pg_catalog.pg_backend_pid() = ANY (pg_catalog.pg_blocking_pids(l.pid)));
END;

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
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(timepart._may_act(who, tbl), false)
        OR (timepart._is_admin(who) AND EXISTS (SELECT 1 FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) tbl));
END;

-- Whether the caller (current_user: this runs as the caller) needs partition_admin's
-- route for one table or every managed one: it may not act on one of them itself.
CREATE OR REPLACE FUNCTION timepart._needs_admin(parent regclass) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT EXISTS (SELECT 1 FROM timepart._managed(parent) c WHERE NOT coalesce(timepart._may_act(current_user, c.parent), false));
END;

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

-- ==== src/65_retention.sql
-- Retention: which partitions are wholly past a table's retention boundary (pure),
-- and removing them (drop, detach or archive), one sub-transaction each, logged.

-- The retention boundary: start of the current period minus the retention, and never
-- later than the start of the current period, whatever the retention says.
CREATE OR REPLACE FUNCTION timepart._retention_boundary(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT least(((timepart._period_of(cfg, as_of) AT TIME ZONE cfg.time_zone) - retention) AT TIME ZONE cfg.time_zone,
                 timepart._period_of(cfg, as_of));
END;

-- Every partition judged against the boundary, by its bounds: 'retire' (ends at or
-- before it), 'straddles' (starts before it, ends after: kept and reported).
CREATE OR REPLACE FUNCTION timepart._plan_retention(cfg timepart.config, retention interval, as_of timestamptz)
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, verdict text)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT p.partition_oid, p.schema_name, p.partition_name, p.range_start, p.range_end,
           CASE WHEN p.range_end <= b.boundary THEN 'retire' ELSE 'straddles' END
    FROM timepart._partitions(cfg.parent, cfg.time_zone) p,
         (SELECT timepart._retention_boundary(cfg, retention, as_of) AS boundary) b
    WHERE NOT p.is_default AND p.range_start < b.boundary
      -- Foreign-table partitions are someone else's storage: retention leaves them (said in cleanup).
      AND p.relkind <> 'f'
    ORDER BY p.range_start;
END;

-- The archive schema of a table. One timepart makes (when it is missing) belongs to
-- timepart's owner, serves the tables of one owner, who may use it and create in it (its
-- archived partitions stay its own), and nobody else may: the table's owner cannot hand
-- it to another role, so even if a role of its name appears one day, it never lands on
-- that role's search_path as its "$user" schema. One the table's owner made itself is
-- its own. Any other is refused, and so is a name that is a role's now. SECURITY
-- DEFINER: the table's owner may lack CREATE on the database.
CREATE OR REPLACE FUNCTION timepart._archive_schema(tbl regclass) RETURNS name
LANGUAGE plpgsql AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    owner_oid oid := (SELECT c.relowner FROM pg_catalog.pg_class c WHERE c.oid = tbl);
    mark text := format('timepart: the archive of the tables of role oid %s', owner_oid);
    ns record;
BEGIN
    PERFORM timepart._check_may_maintain(timepart._caller(), tbl, 'clean it up');
    PERFORM timepart._check_archive_schema(cfg.archive_schema);
    SELECT n.oid, n.nspowner, pg_catalog.obj_description(n.oid, 'pg_namespace') AS note INTO ns
    FROM pg_catalog.pg_namespace n WHERE n.nspname = cfg.archive_schema;
    IF NOT FOUND THEN
        EXECUTE format('CREATE SCHEMA %I', cfg.archive_schema);
        EXECUTE format('COMMENT ON SCHEMA %I IS %L', cfg.archive_schema, mark);
        EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %s', cfg.archive_schema, owner_oid::regrole);
    ELSIF ns.nspowner <> owner_oid
          AND NOT (ns.nspowner = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) AND ns.note IS NOT DISTINCT FROM mark) THEN
        RAISE EXCEPTION 'archive schema % belongs to %, not to the owner of %', cfg.archive_schema, ns.nspowner::regrole, tbl
            USING ERRCODE = '42501', DETAIL = format('%s is owned by %s; timepart archives only into a schema of that owner''s, '
                                                     'or one it made for that owner''s tables.', tbl, owner_oid::regrole),
                  HINT = 'Archive into a schema the table''s owner owns, or one that does not exist yet (timepart creates it).';
    END IF;
    RETURN cfg.archive_schema;
END $$;

-- One table's cleanup, under its advisory lock (taken by _run). Never raises:
-- failures come back in "errors" and the log.
CREATE OR REPLACE FUNCTION timepart._cleanup_table(cfg timepart.config, retention interval, dry_run boolean, as_of timestamptz)
RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    boundary timestamptz := timepart._retention_boundary(cfg, retention, as_of);
    plan jsonb;
    res jsonb;
    removed jsonb := '[]'::jsonb;
    kept jsonb;
    errors jsonb := '[]'::jsonb;
    default_part regclass;
    default_old bigint := 0;
    left_over integer := 0;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = cfg.parent AND c.relkind = 'f') THEN
        RAISE NOTICE 'timepart: cleanup of % skips its foreign-table partitions', cfg.parent;
    END IF;
    -- Row counts first (exact: the snapshot's when still valid), before any lock is taken.
    SELECT coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'action', 'retire',
                                  'range_start', r.range_start, 'range_end', r.range_end, 'boundary', boundary,
                                  'record_count', timepart._record_count(r.partition_oid)) ORDER BY r.range_start)
                        FILTER (WHERE r.verdict = 'retire'), '[]'::jsonb),
           coalesce(jsonb_agg(jsonb_build_object('partition', r.partition_name, 'reason',
                                  format('its range %s to %s reaches past the retention boundary %s', r.range_start, r.range_end, boundary))
                              ORDER BY r.range_start) FILTER (WHERE r.verdict = 'straddles'), '[]'::jsonb)
    INTO plan, kept FROM timepart._plan_retention(cfg, retention, as_of) r;
    IF dry_run THEN
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p;
    ELSE
        res := timepart._run_steps(cfg, 'cleanup_partition', plan, 'old partitions');
        SELECT coalesce(jsonb_agg(jsonb_build_array(p->'partition', p->'record_count')), '[]'::jsonb) INTO removed
        FROM jsonb_array_elements(plan) p WHERE res->'done' ? (p->>'partition');
        errors := res->'errors';
        left_over := (res->>'left')::integer;
    END IF;
    -- Rows past the boundary waiting in the default partition are reported, never deleted.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = cfg.parent;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            default_old := timepart._read_as_owner(cfg.parent, format(
                'SELECT pg_catalog.to_jsonb(count(*)) FROM %s WHERE %I OPERATOR(pg_catalog.<) %s', default_part, cfg.key_column,
                timepart._bound_literal(boundary, cfg.key_type, cfg.time_zone)))::text::bigint;
        EXCEPTION WHEN lock_not_available THEN
            errors := errors || to_jsonb(format('%s: could not count its rows past the boundary within the lock budget', default_part));
        END;
    END IF;
    res := jsonb_build_object('table', cfg.parent::text, 'boundary', boundary, 'action', cfg.retention_action,
                              'dry_run', dry_run, 'removed', removed, 'kept', kept, 'errors', errors,
                              'default_rows_past_retention', default_old, 'left', left_over);
    CALL timepart._log(CASE WHEN dry_run THEN 'cleanup_dry_run' ELSE 'cleanup' END, cfg.parent, NULL,
                          jsonb_array_length(errors) = 0, res, timepart._joined_errors(errors), started);
    IF jsonb_array_length(kept) > 0 OR default_old > 0 THEN
        RAISE WARNING 'timepart: % keeps data past its retention boundary %', cfg.parent, boundary
            USING DETAIL = format('%s partition(s) reach past the boundary; %s row(s) past it wait in the default partition.',
                                  jsonb_array_length(kept), default_old),
                  HINT = 'Run maintain to move default rows into partitions; split or drop straddling partitions yourself.';
    END IF;
    RETURN res;
END $$;

CREATE OR REPLACE FUNCTION timepart.cleanup(parent regclass DEFAULT NULL, retention interval DEFAULT NULL,
                                            dry_run boolean DEFAULT false, as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Removes partitions wholly older than (start of current period - retention): drop,
   detach or archive per configuration. NULL retention: the table's own; a table with
   none is left alone. Never the current, a future or the default partition.
   dry_run reports exactly what would go. Returns the seed's /cleanup shape. */
DECLARE
    result jsonb;
BEGIN
    PERFORM timepart._check_retention(retention);
    IF as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR dry_run IS NULL THEN
        RAISE EXCEPTION 'as_of must be a finite moment and dry_run true or false' USING ERRCODE = '22023',
            DETAIL = format('as_of %s, dry_run %s.', coalesce(as_of::text, 'NULL'), coalesce(dry_run::text, 'NULL')),
            HINT = 'Leave them out for now() and a real run.';
    END IF;
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(cleanup.parent) THEN
        CALL timepart._admin_run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of, result);
        RETURN result;
    END IF;
    RETURN timepart._run('cleanup', cleanup.parent, NULL, cleanup.retention, cleanup.dry_run, as_of);
END $$;

-- ==== src/70_maintain.sql
-- Maintain: plan what partitions a table should have at a moment (pure), then
-- make them, each in its own sub-transaction, every outcome logged.

-- The periods a table lacks at a moment: from the oldest partition (or the oldest row
-- waiting in the default partition) to `premake` periods past the current one, never
-- before the retention boundary nor more than premake + 1000 periods back. A period a
-- hand-made partition covers in part yields the pieces it leaves uncovered (whole =
-- false), so no hole stays next to it. Refuses a moment far past the newest partition.
CREATE OR REPLACE FUNCTION timepart._plan_partitions(tbl regclass, premake integer, as_of timestamptz)
RETURNS TABLE (range_start timestamptz, range_end timestamptz, reason text, whole boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    partition_interval interval := cfg.partition_interval;
    time_zone text := cfg.time_zone;
    cap integer := premake + 1000;
    cur timestamptz := timepart._period_of(cfg, as_of);
    horizon timestamptz := timepart._period_add(cur, partition_interval, premake + 1, time_zone);
    -- Rows or partitions further back than this are not filled in: reported, left alone.
    window_start timestamptz := timepart._period_add(cur, partition_interval, -cap, time_zone);
    floor_start timestamptz := '-infinity'::timestamptz;
    first_start timestamptz := cur;
    oldest timestamptz;
    newest timestamptz;
    default_part regclass;
    default_min timestamptz;
    starts timestamptz[];
    ends timestamptz[];
    period_days numeric := pg_catalog.date_part('day', partition_interval)
                           + 31 * (pg_catalog.date_part('year', partition_interval) * 12 + pg_catalog.date_part('month', partition_interval));
BEGIN
    IF cfg.retention IS NOT NULL THEN
        floor_start := timepart._period_of(cfg, ((cur AT TIME ZONE time_zone) - cfg.retention) AT TIME ZONE time_zone);
    END IF;
    floor_start := greatest(floor_start, window_start);
    SELECT array_agg(p.range_start) FILTER (WHERE NOT p.is_default),
           array_agg(p.range_end) FILTER (WHERE NOT p.is_default),
           min(p.range_start) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_start)),
           max(p.range_end) FILTER (WHERE NOT p.is_default AND pg_catalog.isfinite(p.range_end)),
           max(p.partition_oid) FILTER (WHERE p.is_default)::regclass
    INTO starts, ends, oldest, newest, default_part
    FROM timepart._partitions(tbl, time_zone) p;
    -- A moment far past the newest partition (a typo, a clock gone wrong) must not make
    -- thousands of tables: refuse before generating anything. What a run would create
    -- is counted, not the table's history.
    IF newest IS NOT NULL AND extract(epoch FROM horizon - newest) / 86400 / period_days > cap THEN
        RAISE EXCEPTION 'maintain would create more than % partitions of %', cap, tbl USING ERRCODE = '22023',
            DETAIL = format('The newest partition ends %s; as_of %s asks for partitions up to %s in periods of %s.',
                            newest, as_of, horizon, partition_interval),
            HINT = 'Check as_of; create far-away periods with timepart.create_partition().';
    END IF;
    IF oldest IS NOT NULL THEN
        first_start := least(first_start, timepart._period_of(cfg, greatest(oldest, floor_start)));
    END IF;
    IF default_part IS NOT NULL THEN
        -- Reading the default partition waits for its lock within the table's budget too.
        -- Only rows inside the window count: a stray ancient or far-future row stays
        -- where it is (the rows_in_default_partition alert reports it).
        PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
        default_min := (timepart._read_as_owner(tbl, format(
            'SELECT pg_catalog.to_jsonb(min(%I)::pg_catalog.timestamptz) FROM %s WHERE %I OPERATOR(pg_catalog.>=) %s AND %I OPERATOR(pg_catalog.<) %s',
            cfg.key_column, default_part,
            cfg.key_column, timepart._bound_literal(greatest(floor_start, '1900-01-01'), cfg.key_type, time_zone),
            cfg.key_column, timepart._bound_literal(horizon, cfg.key_type, time_zone))) #>> '{}')::timestamptz;
        IF cfg.key_type <> 'timestamptz'::regtype AND default_min IS NOT NULL THEN
            default_min := (default_min AT TIME ZONE current_setting('TimeZone')) AT TIME ZONE time_zone;
        END IF;
        IF default_min IS NOT NULL THEN
            first_start := least(first_start, timepart._period_of(cfg, default_min));
        END IF;
    END IF;
    first_start := greatest(first_start, timepart._period_of(cfg, floor_start));

    RETURN QUERY
    WITH periods AS (
        SELECT g AT TIME ZONE time_zone AS s, (g + partition_interval) AT TIME ZONE time_zone AS e
        FROM pg_catalog.generate_series(first_start AT TIME ZONE time_zone, (horizon AT TIME ZONE time_zone) - partition_interval, partition_interval) g
    ), existing AS (
        SELECT x.s, x.e FROM unnest(starts, ends) AS x(s, e)
    ), missing AS (
        SELECT pr.s, pr.e, EXISTS (SELECT 1 FROM existing x WHERE x.s < pr.e AND x.e > pr.s) AS partial
        FROM periods pr WHERE NOT EXISTS (SELECT 1 FROM existing x WHERE x.s = pr.s AND x.e = pr.e)
    ), cuts AS (
        -- The parts of a period that partitions cover (partitions never overlap each other).
        SELECT m.s AS ps, m.e AS pe, greatest(x.s, m.s) AS os, least(x.e, m.e) AS oe
        FROM missing m JOIN existing x ON x.s < m.e AND x.e > m.s WHERE m.partial
    ), pieces AS (
        SELECT c.ps, coalesce(lag(c.oe) OVER w, c.ps) AS s, c.os AS e FROM cuts c WINDOW w AS (PARTITION BY c.ps ORDER BY c.os)
        UNION ALL
        SELECT c.ps, max(c.oe), c.pe FROM cuts c GROUP BY c.ps, c.pe
    )
    SELECT m.s, m.e, CASE WHEN m.s > cur THEN 'premake' WHEN m.s = cur THEN 'current' ELSE 'gap' END, true
    FROM missing m WHERE NOT m.partial
    UNION ALL
    SELECT p.s, p.e, 'hole', false FROM pieces p
    -- A hole lies between partitions, or in the current and later periods, or where rows
    -- wait in the default partition: not before the oldest partition for its own sake.
    WHERE p.s < p.e AND (p.s >= oldest OR p.ps >= cur OR (p.s <= default_min AND p.e > default_min))
    ORDER BY 1;
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
            CALL timepart._log('create_partition', cfg.parent, res->>'partition', (res->>'ok')::boolean,
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
    CALL timepart._log('maintain', cfg.parent, NULL, jsonb_array_length(errors) = 0,
        jsonb_build_object('created', created, 'errors', errors, 'moved_rows', moved, 'premake', premake, 'as_of', as_of,
                           'left', left_over),
        timepart._joined_errors(errors), started);
    RETURN jsonb_build_object('table', cfg.parent::text, 'created', created, 'errors', errors, 'moved_rows', moved, 'left', left_over);
END $$;

CREATE OR REPLACE FUNCTION timepart.maintain(parent regclass DEFAULT NULL, premake integer DEFAULT NULL,
                                             as_of timestamptz DEFAULT now())
RETURNS jsonb LANGUAGE plpgsql AS $$
/* Makes sure every managed table (or one) has its current period and `premake`
   future ones, fills gaps, moves rows out of the default partition. Returns the
   seed's /maintain shape. Operational failures are reported, not raised. */
DECLARE
    result jsonb;
BEGIN
    IF premake IS NOT NULL THEN
        PERFORM timepart._check_premake(premake);
    END IF;
    PERFORM timepart._check_moment(as_of);
    PERFORM timepart._flush_deferred();
    IF timepart._needs_admin(maintain.parent) THEN
        CALL timepart._admin_run('maintain', maintain.parent, maintain.premake, NULL, false, as_of, result);
        RETURN result;
    END IF;
    RETURN timepart._run('maintain', maintain.parent, maintain.premake, NULL, false, as_of);
END $$;

-- Rows inserted, updated and deleted in a table since statistics began, this
-- transaction's own changes included. Any change makes a stored count stale.
CREATE OR REPLACE FUNCTION timepart._changes(rel oid) RETURNS bigint
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT pg_catalog.pg_stat_get_tuples_inserted(rel) + pg_catalog.pg_stat_get_tuples_updated(rel)
         + pg_catalog.pg_stat_get_tuples_deleted(rel) + pg_catalog.pg_stat_get_xact_tuples_inserted(rel)
         + pg_catalog.pg_stat_get_xact_tuples_updated(rel) + pg_catalog.pg_stat_get_xact_tuples_deleted(rel);
END;

-- Bytes of a table with its indexes and TOAST from relpages: no lock, as fresh as the last
-- VACUUM/ANALYZE. heap_bytes, when known, stands in for the table's own relpages. A
-- one-row set so the planner inlines it (a scalar SQL function is planned on every call).
CREATE OR REPLACE FUNCTION timepart._estimated_bytes(rel oid, heap_bytes bigint DEFAULT NULL) RETURNS TABLE (bytes bigint)
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(heap_bytes, c.relpages::bigint * pg_catalog.current_setting('block_size')::bigint)
           + (coalesce(t.relpages, 0)
              + coalesce((SELECT sum(ic.relpages) FROM pg_catalog.pg_index i  -- the table's and its TOAST table's indexes
                          JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid WHERE i.indrelid IN (rel, c.reltoastrelid)), 0)::bigint)
             * pg_catalog.current_setting('block_size')::bigint
    FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_class t ON t.oid = c.reltoastrelid
    WHERE c.oid = rel;
END;

-- Exact rows, oldest and newest of one partition (a scan: only for small ones).
-- Read with the owner's rights: planning the scan runs the owner's index code. No row
-- when the count could not be had (the partition is locked beyond the budget, or the
-- owner's code failed): the caller falls back on estimates, and one table's owner cannot
-- make everyone's statistics fail.
CREATE OR REPLACE FUNCTION timepart._exact_figures(rel oid, key_column name)
RETURNS TABLE (record_count bigint, oldest timestamptz, newest timestamptz) LANGUAGE plpgsql STABLE AS $$
DECLARE
    r jsonb;
BEGIN
    BEGIN
        r := timepart._read_as_owner(rel::regclass, format(
            'SELECT pg_catalog.jsonb_build_array(count(*), min(%I)::pg_catalog.timestamptz, max(%I)::pg_catalog.timestamptz) FROM %s',
            key_column, key_column, rel::regclass));
    EXCEPTION WHEN OTHERS THEN
        RAISE NOTICE 'timepart: % was not counted: %', rel::regclass, SQLERRM;
        RETURN;
    END;
    RETURN QUERY SELECT (r->>0)::bigint, (r->>1)::timestamptz, (r->>2)::timestamptz;
END $$;

-- The first and last bounds of the ANALYZE histogram of a column, as text (no row without
-- one): both ends in one lookup, so the pg_stats view is planned once. Sets, like the
-- next one, so the planner inlines them.
CREATE OR REPLACE FUNCTION timepart._histogram_ends(schema_name name, table_name name, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT st.histogram_bounds::text::text[] AS e FROM pg_catalog.pg_stats st
          WHERE st.schemaname = schema_name AND st.tablename = table_name AND st.attname = column_name) h;
END;

-- The same read straight from pg_statistic, for an owner who may (a superuser): the
-- pg_stats view costs a session's first statistics call several milliseconds to plan.
CREATE OR REPLACE FUNCTION timepart._statistic_ends(rel oid, column_name name)
RETURNS TABLE (ends text[]) LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT ARRAY[e[1], e[array_length(e, 1)]]
    FROM (SELECT (CASE 2 WHEN s.stakind1 THEN s.stavalues1 WHEN s.stakind2 THEN s.stavalues2 WHEN s.stakind3 THEN s.stavalues3
                         WHEN s.stakind4 THEN s.stavalues4 WHEN s.stakind5 THEN s.stavalues5 END)::text::text[] AS e  -- 2: a histogram
          FROM pg_catalog.pg_statistic s JOIN pg_catalog.pg_attribute a ON a.attrelid = s.starelid AND a.attnum = s.staattnum
          -- A partition that is itself partitioned has only the inherited row.
          WHERE s.starelid = rel AND a.attname = column_name ORDER BY s.stainherit LIMIT 1) h;
END;

-- Whether a role could read every row's key itself: it may act on the table (owner,
-- member, superuser), or it may SELECT the key column and no row security hides rows from
-- it (none on the table, or the role bypasses it). Only then are exact key values shown.
CREATE OR REPLACE FUNCTION timepart._reads_every_row(who name, tbl regclass, key_column name) RETURNS boolean
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT coalesce(timepart._may_act(who, tbl), false)
        OR coalesce(pg_catalog.has_column_privilege(who, tbl, key_column, 'SELECT')
                    AND NOT (SELECT c.relrowsecurity FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
                    OR (SELECT r.rolbypassrls FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) who)
                       AND pg_catalog.has_column_privilege(who, tbl, key_column, 'SELECT'), false);
END;

-- Live partitions up to this size are counted exactly on every read (a few ms at most).
CREATE OR REPLACE FUNCTION timepart._exact_limit_bytes() RETURNS bigint
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT 10485760::bigint;
END;

CREATE OR REPLACE FUNCTION timepart.partition_stats(parent regclass DEFAULT NULL)
RETURNS TABLE (parent_table text, partition_name text, period text, range_start timestamptz, range_end timestamptz,
               record_count bigint, size_mb numeric, oldest_record timestamptz, newest_record timestamptz,
               index_count integer, is_default boolean, exact boolean)
LANGUAGE plpgsql VOLATILE AS $$
/* One row per partition of every managed table (or one). oldest_record and newest_record
   are NULL for a caller that could not read every row's key itself (no SELECT on it, or row security hides rows
   from it), unless monitor_sees_values. exact = true: the snapshot's
   exact figures for a sealed partition unchanged since, or a live partition under
   10 MB counted now; false: estimates (row count from statistics, size from relpages,
   oldest and newest from the ANALYZE histogram). */
DECLARE
    who name := timepart._caller();  -- once: it reads the call stack
    statistic boolean := pg_catalog.has_table_privilege('pg_catalog.pg_statistic', 'SELECT');
BEGIN
    IF partition_stats.parent IS NOT NULL THEN
        PERFORM timepart._config(partition_stats.parent);
    END IF;
    -- Sizing and counting live partitions opens them: wait for a lock within the
    -- (largest) lock budget of the tables read, never indefinitely.
    PERFORM pg_catalog.set_config('lock_timeout', coalesce((SELECT timepart._lock_budget(c) FROM timepart.config c
        WHERE partition_stats.parent IS NULL OR c.parent = partition_stats.parent ORDER BY c.lock_timeout DESC LIMIT 1), '100ms'), true);
    -- First whether the database has any foreign table at all (pg_foreign_table is small).
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_foreign_table) THEN
        IF EXISTS (SELECT 1 FROM timepart._managed(partition_stats.parent) c JOIN pg_catalog.pg_inherits i ON i.inhparent = c.parent
                   JOIN pg_catalog.pg_class r ON r.oid = i.inhrelid WHERE r.relkind = 'f') THEN
            RAISE NOTICE 'timepart: partition_stats skips foreign-table partitions';
        END IF;
    END IF;
    RETURN QUERY
    -- Exact key values are data: shown to roles that may read the table, or when its
    -- owner allows. Decided once per table (materialized, so not once per partition).
    WITH tables AS MATERIALIZED (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type,
               c.monitor_sees_values OR timepart._reads_every_row(who, c.parent, c.key_column) AS reveal
        FROM timepart._managed(partition_stats.parent) c
    ), parts AS (
        SELECT c.parent, c.time_zone, c.key_column, c.key_type, c.reveal, p.*, timepart._changes(p.partition_oid) AS changes,
               (p.is_default OR p.range_end > now()) AS live
        FROM tables c
        CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) p
        WHERE (partition_stats.parent IS NULL OR c.parent = partition_stats.parent)
          -- Foreign-table partitions: counting them would read remote data (said below).
          AND p.relkind <> 'f'
    ), snap AS (
        SELECT DISTINCT ON (h.partition_oid) h.*
        FROM timepart.stats_history h JOIN parts p ON p.partition_oid = h.partition_oid
        ORDER BY h.partition_oid, h.snapshot_date DESC
    ), sized AS (
        -- A live partition never written (the future ones: empty heap, no changes), logged,
        -- with only B-tree indexes is sized from the catalog, to the byte: its indexes are
        -- as their build left them, and opening them all costs a session's first call more
        -- than the rest of the statistics. Written-to ones may have free space maps,
        -- unlogged ones init forks, other index types maps of their own: those are measured.
        -- (Scalar subqueries: looked up only for those, never over all of pg_index.)
        SELECT p.*, CASE WHEN p.live AND p.heap_bytes = 0 AND p.changes = 0
                              AND (SELECT c.relpersistence = 'p' FROM pg_catalog.pg_class c WHERE c.oid = p.partition_oid)
                              AND (SELECT bool_and(ic.relam = 403)  -- 403: btree's fixed oid
                                   FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                                   WHERE i.indrelid = p.partition_oid) IS NOT FALSE
                         THEN (SELECT e.bytes FROM timepart._estimated_bytes(p.partition_oid, 0) e)
                         WHEN p.live THEN pg_catalog.pg_total_relation_size(p.partition_oid) END AS live_bytes
        FROM (SELECT p.*, CASE WHEN p.live THEN pg_catalog.pg_relation_size(p.partition_oid) END AS heap_bytes
              FROM parts p OFFSET 0) p
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
                       ELSE (SELECT e.bytes FROM timepart._estimated_bytes(j.partition_oid) e) END) / 1048576.0, 2),
           -- Else oldest and newest from the ANALYZE histogram of the key: approximate, no
           -- scan, and looked up only for the partitions that need it.
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_oldest WHEN j.x_rows IS NOT NULL THEN j.x_oldest
                ELSE timepart._bound_value(h.e[1], j.key_type, j.time_zone) END,
           CASE WHEN NOT j.reveal THEN NULL WHEN j.sealed THEN j.s_newest WHEN j.x_rows IS NOT NULL THEN j.x_newest
                ELSE timepart._bound_value(h.e[2], j.key_type, j.time_zone) END,
           coalesce(ix.n, 0)::int,
           j.is_default, j.sealed OR j.x_rows IS NOT NULL
    FROM judged j
    -- The histogram only where it is shown (OFFSET 0: looked up once per row, not per use).
    LEFT JOIN LATERAL (SELECT CASE WHEN NOT j.reveal OR j.sealed OR j.x_rows IS NOT NULL THEN NULL
                                   WHEN statistic THEN (SELECT e.ends FROM timepart._statistic_ends(j.partition_oid, j.key_column) e)
                                   ELSE (SELECT e.ends FROM timepart._histogram_ends(j.schema_name, j.partition_name, j.key_column) e)
                              END AS e
                       OFFSET 0) h ON true
    -- Index counts from the index on pg_index.indrelid, partition by partition: the cost
    -- grows with the table's partitions, not with every index of the database.
    LEFT JOIN LATERAL (SELECT count(*) AS n FROM pg_catalog.pg_index i WHERE i.indrelid = j.partition_oid) ix ON true
    ORDER BY j.parent::text, j.range_start NULLS FIRST;
END $$;

CREATE OR REPLACE FUNCTION timepart.snapshot_stats(as_of timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
/* Stores today's exact figures for every partition of every managed table (the
   seed's daily statistics generation). A partition whose change counters have not
   moved since its last snapshot is not counted again. Returns the rows stored. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    p record;
    prev timepart.stats_history;
    rows bigint;
    oldest timestamptz;
    newest timestamptz;
    stored integer := 0;
    counted integer := 0;
    skipped text[] := '{}'::text[];
    cfg timepart.config;
BEGIN
    PERFORM timepart._check_moment(as_of);
    FOR p IN SELECT c.parent, c.key_column, c.time_zone, x.*, timepart._changes(x.partition_oid) AS changes
             FROM timepart._managed() c
             CROSS JOIN LATERAL timepart._partitions(c.parent, c.time_zone) x
             WHERE x.relkind <> 'f' LOOP
        SELECT * INTO prev FROM timepart.stats_history h WHERE h.partition_oid = p.partition_oid
        ORDER BY h.snapshot_date DESC LIMIT 1;
        IF FOUND AND prev.changes_seen = p.changes THEN
            rows := prev.record_count; oldest := prev.oldest_record; newest := prev.newest_record;
        ELSE
            cfg := timepart._config(p.parent);
            -- A partition someone holds locked (or whose owner's code fails) is skipped: its
            -- last figures stay, nothing waits.
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            SELECT f.record_count, f.oldest, f.newest INTO rows, oldest, newest
            FROM timepart._exact_figures(p.partition_oid, p.key_column) f;
            IF NOT FOUND THEN
                skipped := skipped || p.partition_name::text;
                CONTINUE;
            END IF;
            counted := counted + 1;
        END IF;
        INSERT INTO timepart.stats_history AS h (snapshot_date, parent_table, partition_oid, partition_name, range_start,
                                                 range_end, record_count, size_bytes, oldest_record, newest_record, changes_seen)
        VALUES ((as_of AT TIME ZONE 'UTC')::date, p.parent, p.partition_oid, p.partition_name, p.range_start, p.range_end,
                rows, pg_catalog.pg_total_relation_size(p.partition_oid), oldest, newest, p.changes)
        ON CONFLICT (snapshot_date, partition_oid) DO UPDATE SET record_count = excluded.record_count,
            size_bytes = excluded.size_bytes, oldest_record = excluded.oldest_record, newest_record = excluded.newest_record,
            changes_seen = excluded.changes_seen, taken_at = excluded.taken_at, partition_name = excluded.partition_name;
        stored := stored + 1;
    END LOOP;
    CALL timepart._log('snapshot_stats', NULL, NULL, cardinality(skipped) = 0,
                          jsonb_build_object('partitions', stored, 'counted', counted, 'skipped', to_jsonb(skipped)),
                          CASE WHEN cardinality(skipped) > 0 THEN 'partitions not counted (locked, or their owner''s code failed): '
                                                                 || array_to_string(skipped, ', ') END,
                          started);
    RETURN stored;
END $$;

-- The snapshot's count of a partition while it has not changed since, else NULL. As
-- timepart's owner (SECURITY DEFINER): stats_history, which also holds exact key values,
-- is readable by no caller, yet a table owner's cleanup counts its rows through it; a
-- count is what partition_stats shows any monitor.
CREATE OR REPLACE FUNCTION timepart._snapshot_count(rel oid) RETURNS bigint
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT h.record_count FROM timepart.stats_history h
            WHERE h.partition_oid = rel AND h.changes_seen = timepart._changes(rel)
            ORDER BY h.snapshot_date DESC LIMIT 1);
END $$;

-- Exact rows of a partition: the snapshot's count while the partition has not changed
-- since, else a count(*).
CREATE OR REPLACE FUNCTION timepart._record_count(rel oid) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    n bigint := timepart._snapshot_count(rel);
BEGIN
    IF n IS NULL THEN
        n := timepart._read_as_owner(rel::regclass, format('SELECT pg_catalog.to_jsonb(count(*)) FROM %s', rel::regclass))::text::bigint;
    END IF;
    RETURN n;
END $$;

-- The alerts one table raises at a moment. Pure: reads, never writes (so health()
-- works on a replica too). stats: the table's partition_stats rows as JSON when the
-- caller has them already.
CREATE OR REPLACE FUNCTION timepart._evaluate(tbl regclass, as_of timestamptz, stats jsonb DEFAULT NULL)
RETURNS TABLE (alert_type text, severity text, parent_table text, partition_name text, message text,
               recommendation text, value numeric, threshold numeric)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    cfg timepart.config := timepart._config(tbl);
    time_zone text := cfg.time_zone;
    month_start timestamp := pg_catalog.date_trunc('month', as_of AT TIME ZONE time_zone);
    old_before timestamptz := ((as_of AT TIME ZONE time_zone) - cfg.alert_old_age) AT TIME ZONE time_zone;
    max_mb numeric := round(cfg.alert_max_size_bytes / 1048576.0, 2);
    default_part regclass;
    default_rows bigint := 0;
BEGIN
    -- Rows waiting in the default partition, counted up to a bound so a huge default stays cheap.
    SELECT NULLIF(pt.partdefid, 0)::regclass INTO default_part FROM pg_catalog.pg_partitioned_table pt WHERE pt.partrelid = tbl;
    IF default_part IS NOT NULL THEN
        BEGIN
            PERFORM pg_catalog.set_config('lock_timeout', timepart._lock_budget(cfg), true);
            -- An empty heap holds no rows: no count (nor the owner's executor) needed. A
            -- default partition that is itself partitioned has no heap: always counted.
            IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = default_part) <> 'r'
               OR pg_catalog.pg_relation_size(default_part) > 0 THEN
                default_rows := timepart._read_as_owner(tbl, format(
                    'SELECT pg_catalog.to_jsonb(count(*)) FROM (SELECT 1 FROM %s LIMIT 1000000) d', default_part))::text::bigint;
            END IF;
        EXCEPTION WHEN OTHERS THEN
            default_rows := 0;  -- locked, or the owner's code failed: counted again at the next check
        END;
    END IF;

    RETURN QUERY
    WITH s AS MATERIALIZED (
        SELECT * FROM timepart.partition_stats(tbl) WHERE stats IS NULL
        UNION ALL
        SELECT * FROM jsonb_populate_recordset(NULL::timepart.partition_stats_row, stats) WHERE stats IS NOT NULL),
    growth AS (
        SELECT sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '1 month') AT TIME ZONE time_zone
                                              AND s.range_start < month_start AT TIME ZONE time_zone) AS last_month,
               sum(s.record_count) FILTER (WHERE s.range_start >= (month_start - interval '2 months') AT TIME ZONE time_zone
                                              AND s.range_start < (month_start - interval '1 month') AT TIME ZONE time_zone) AS month_before
        FROM s WHERE NOT s.is_default
    ), future AS (
        SELECT count(*) AS n FROM s WHERE NOT s.is_default AND s.range_start > as_of
    ), old AS (
        SELECT count(*) AS n, (array_agg(s.partition_name ORDER BY s.range_start))[1] AS oldest
        FROM s WHERE NOT s.is_default AND s.range_end <= old_before
    )
    SELECT 'partition_too_large', 'warning', tbl::text, s.partition_name,
           format('%s is %s MB, over %s MB', s.partition_name, s.size_mb, max_mb),
           'Use a shorter partition interval, or archive old data', s.size_mb, max_mb
    FROM s WHERE s.size_mb > max_mb
    UNION ALL
    SELECT 'partition_too_many_rows', 'warning', tbl::text, s.partition_name,
           format('%s holds %s rows, over %s', s.partition_name, s.record_count, cfg.alert_max_rows),
           'Use a shorter partition interval', s.record_count, cfg.alert_max_rows
    FROM s WHERE s.record_count > cfg.alert_max_rows
    UNION ALL
    SELECT 'missing_current_partition', 'critical', tbl::text, '',
           format('no partition of %s covers the current period starting %s', tbl, timepart._period_of(cfg, as_of)),  -- only then
           'Create it now: run timepart.maintain()', 0, 1
    WHERE NOT EXISTS (SELECT 1 FROM s WHERE NOT s.is_default AND s.range_start <= as_of AND s.range_end > as_of)
    UNION ALL
    SELECT 'insufficient_future_partitions', 'warning', tbl::text, '',
           format('%s has %s future partition(s), fewer than %s', tbl, f.n, cfg.alert_min_future),
           'Run timepart.maintain() and check that its scheduled job runs', f.n, cfg.alert_min_future
    FROM future f WHERE f.n < cfg.alert_min_future
    UNION ALL
    SELECT 'old_partitions', 'info', tbl::text, o.oldest,
           format('%s has %s partition(s) older than %s', tbl, o.n, cfg.alert_old_age),
           'Consider archival: set a retention and run timepart.cleanup()', o.n, 0
    FROM old o WHERE o.n > 0
    UNION ALL
    SELECT 'high_growth', 'info', tbl::text, '',
           format('%s grew %s%% month over month (%s to %s rows)', tbl,
                  round((g.last_month - g.month_before) / g.month_before * 100), g.month_before, g.last_month),
           'Plan capacity: storage, retention and partition interval',
           round((g.last_month - g.month_before) / g.month_before, 3), cfg.alert_growth_ratio
    FROM growth g WHERE g.month_before > 0 AND (g.last_month - g.month_before) / g.month_before > cfg.alert_growth_ratio
    UNION ALL
    SELECT 'rows_in_default_partition', 'warning', tbl::text, default_part::text,
           format('%s%s row(s) wait in the default partition %s', CASE WHEN default_rows >= 1000000 THEN 'at least ' ELSE '' END,
                  default_rows, default_part),
           'Run timepart.maintain() to move them into partitions; rows past the premake horizon or the retention boundary stay',
           default_rows, 0
    WHERE default_rows > 0
    UNION ALL
    SELECT 'maintenance_failing', 'warning', tbl::text, '',
           format('the last maintain run of %s failed: %s', tbl, l.error),
           'Read timepart.get_maintenance_log() for the failed step and fix its cause (a table in the way of a partition name: '
           'a partition detached by hand?); the alert resolves with the next successful run', 1, 0
    FROM (SELECT m.success, m.error FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type = 'maintain' AND NOT m.details ? 'skipped'
          ORDER BY m.id DESC LIMIT 1) l
    WHERE NOT l.success
    UNION ALL
    -- Runs that found the table held by another: fine once (two runs met), not for an hour.
    SELECT 'maintenance_skipped', 'warning', tbl::text, '',
           format('maintain and cleanup of %s have been skipped since %s: another run holds the table (%s runs skipped)',
                  tbl, k.since, k.n),
           'A maintain, cleanup or create_partition left in an open transaction holds its table until that transaction '
           'ends: find it in pg_stat_activity (state idle in transaction) and end it', k.n, 1
    FROM (SELECT count(*) AS n, min(m.created_at) AS since FROM timepart.maintenance_log m
          WHERE m.parent_table = tbl::text AND m.operation_type IN ('maintain', 'cleanup') AND m.details ? 'skipped'
            AND m.id > coalesce((SELECT max(d.id) FROM timepart.maintenance_log d WHERE d.parent_table = tbl::text
                                 AND d.operation_type IN ('maintain', 'cleanup') AND NOT d.details ? 'skipped'), 0)) k
    WHERE k.n > 0 AND k.since < as_of - interval '1 hour'
    UNION ALL
    SELECT 'partition_drift', 'warning', tbl::text, d.partition_name,
           format('%s differs from %s: %s', d.partition_name, tbl, d.properties),
           format('See SELECT * FROM timepart.sync_partitions(%L, dry_run => true); run it without dry_run to apply', tbl::text),
           d.n, 0
    FROM (SELECT (SELECT c.relname::text FROM pg_catalog.pg_class c WHERE c.oid = x.partition_oid) AS partition_name,
                 string_agg(DISTINCT x.property, ', ') AS properties,
                 count(*)::numeric AS n
          FROM timepart._partition_drift(tbl) x GROUP BY x.partition_oid) d
    UNION ALL
    SELECT 'missing_index', 'warning', tbl::text, m.partition_name,
           format('%s lacks templated index(es) %s', m.partition_name, m.missing),
           'Back-fill them with timepart.add_index_template() (same arguments), or create them by hand', m.n, 0
    FROM timepart._missing_indexes(tbl) m;
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
        CALL timepart._log('forget', NULL, NULL, true,
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

-- Partitions lacking a templated index (not attached to the template's parent index).
CREATE OR REPLACE FUNCTION timepart._missing_indexes(tbl regclass)
RETURNS TABLE (partition_name text, missing text, n numeric) LANGUAGE sql STABLE
BEGIN ATOMIC
    -- In sets: every (partition, template) pair against every attached partition index.
    WITH t AS MATERIALIZED (
        -- Each template's index on the parent, by its name (as _template_parent_index finds it).
        SELECT it.suffix, ix.oid AS parent_idx
        FROM timepart.index_templates it
        JOIN pg_catalog.pg_class p ON p.oid = tbl
        LEFT JOIN pg_catalog.pg_class ix ON ix.relnamespace = p.relnamespace
             AND ix.relname = timepart._fit_name(p.relname, it.suffix) AND ix.relkind = 'I'
        WHERE it.parent = tbl
    ), attached AS MATERIALIZED (
        SELECT i.indrelid AS partition_oid, h.inhparent AS parent_idx
        FROM pg_catalog.pg_inherits h JOIN pg_catalog.pg_index i ON i.indexrelid = h.inhrelid
        WHERE h.inhparent IN (SELECT t.parent_idx FROM t)
    ), parts AS MATERIALIZED (
        SELECT i.inhrelid AS partition_oid, c.relname FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl AND c.relkind <> 'f'
    )
    SELECT p.relname::text, string_agg(t.suffix, ', ' ORDER BY t.suffix), count(*)::numeric
    FROM parts p CROSS JOIN t
    LEFT JOIN attached a ON a.partition_oid = p.partition_oid AND a.parent_idx = t.parent_idx
    WHERE a.partition_oid IS NULL
    GROUP BY p.relname;
END;

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
    CALL timepart._log('check_alerts', check_alerts.parent, NULL, true,
        jsonb_build_object('tables', to_jsonb(checked), 'open', jsonb_array_length(evaluated),
                           'new', new_count, 'resolved', resolved), NULL, started);
    RETURN QUERY
    SELECT x.alert_type, x.severity, x.parent_table, NULLIF(x.partition_name, ''), x.message, x.recommendation, x.value,
           x.threshold, x.first_seen, x.last_seen, x.first_seen = now_ts
    FROM timepart.alerts x
    WHERE x.resolved_at IS NULL AND x.parent_table = ANY (checked)
    ORDER BY CASE x.severity WHEN 'critical' THEN 0 WHEN 'warning' THEN 1 ELSE 2 END, x.first_seen, x.id;
END $$;

-- Each managed table's partition_stats (all, or one), as {"table": [rows...]}: health's
-- rules, its totals and summary's stats share one reading.
CREATE OR REPLACE FUNCTION timepart._stats_by_table(parent regclass) RETURNS jsonb
LANGUAGE sql VOLATILE
BEGIN ATOMIC
    SELECT coalesce(jsonb_object_agg(c.parent::text, (SELECT coalesce(jsonb_agg(to_jsonb(s)), '[]'::jsonb)
                                                      FROM timepart.partition_stats(c.parent) s)), '{}'::jsonb)
    FROM timepart._managed(parent) c;
END;

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
    CALL timepart._log('manage', tbl, NULL, true, '{"preset": "email_events"}', NULL, started);
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

CREATE OR REPLACE FUNCTION timepart.purge_log(older_than interval DEFAULT NULL, as_of timestamptz DEFAULT now())
RETURNS bigint LANGUAGE plpgsql AS $$
/* Deletes maintenance log rows older than older_than (default: the timepart.log_retention
   setting, 90 days when unset). The daily health job runs it. Returns the rows deleted;
   the purge itself is logged. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    keep interval := coalesce(purge_log.older_than, timepart._log_retention());
    n bigint;
BEGIN
    -- The log is the audit trail: only a superuser or timepart's owner chooses a shorter
    -- keep than the database's setting; everyone else purges by the setting.
    IF purge_log.older_than IS NOT NULL AND NOT EXISTS (
           SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = timepart._caller()
             AND (r.rolsuper OR pg_catalog.pg_has_role(r.oid, (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'timepart'), 'USAGE'))) THEN
        RAISE EXCEPTION 'only a superuser or timepart''s owner may purge the log by its own interval' USING ERRCODE = '42501',
            DETAIL = format('%s asked for %s.', timepart._caller(), purge_log.older_than),
            HINT = 'Call timepart.purge_log() to keep the timepart.log_retention setting (90 days when unset).';
    END IF;
    IF keep < interval '1 day' OR as_of IS NULL OR NOT pg_catalog.isfinite(as_of) OR as_of > now() THEN
        RAISE EXCEPTION 'the log keeps at least 1 day, counted back from a moment not in the future' USING ERRCODE = '22023',
            DETAIL = format('Got older_than %s, as_of %s.', keep, coalesce(as_of::text, 'NULL')),
            HINT = 'E.g. SELECT timepart.purge_log(''30 days'');';
    END IF;
    DELETE FROM timepart.maintenance_log l WHERE l.created_at < as_of - keep;
    GET DIAGNOSTICS n = ROW_COUNT;
    CALL timepart._log('purge_log', NULL, NULL, true, jsonb_build_object('deleted', n, 'older_than', keep), NULL, started);
    RETURN n;
END $$;

-- ==== src/85_each.sql
-- The pg_cron jobs' procedures (maintain_each, cleanup_each): what 85_schedule.sql schedules.

-- The jobs' entry points: one table at a time with a COMMIT after each, so the locks
-- one table's maintenance takes are never held while another's waits. Procedures that
-- COMMIT carry no SET clause: they pin search_path to pg_catalog, pg_temp at the start of
-- every transaction, and name every type of their variables by schema (PL/pgSQL reads
-- those when it first compiles the body, on the caller's path).
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
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
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
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            EXIT WHEN left_over OPERATOR(pg_catalog.=) 0;
        END LOOP;
    END LOOP;
END $$;

CREATE OR REPLACE PROCEDURE timepart.maintain_each(premake pg_catalog.int4 DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    CALL timepart._each('maintain', premake);
END $$;

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    CALL timepart._each('cleanup', NULL);
END $$;

-- Jobs run as the role that scheduled them: only that role (or a member, or a
-- superuser) may replace or remove them, and scheduled_by is always the scheduler (the
-- session's role: the rows are written by timepart's owner, through _jobs_put).
CREATE OR REPLACE FUNCTION timepart._jobs_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    who name := timepart._caller();
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = OLD.scheduled_by)
       AND NOT coalesce(pg_catalog.pg_has_role(who, OLD.scheduled_by, 'USAGE'), false) THEN
        RAISE EXCEPTION 'timepart''s jobs were scheduled by %', OLD.scheduled_by USING ERRCODE = '42501',
            DETAIL = format('%s cannot replace or remove jobs that run as %s.', coalesce(who, 'a table owner''s code'), OLD.scheduled_by),
            HINT = format('Ask %s (or a superuser) to run timepart.unschedule_jobs() first.', OLD.scheduled_by);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF who IS NULL THEN
        RAISE EXCEPTION 'timepart''s jobs are not scheduled from a table owner''s code' USING ERRCODE = '42501';
    END IF;
    NEW.scheduled_by := who;
    RETURN NEW;
END $$;

-- The jobs' rows, written as timepart's owner (no other role may write, so none may lock
-- them): replaced by a role that may maintain every managed table, as schedule_jobs
-- requires; removed by the scheduler (the guard above).
CREATE OR REPLACE FUNCTION timepart._jobs_put(new_jobs timepart.jobs[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF timepart._caller() IS NULL OR EXISTS (SELECT 1 FROM timepart._managed() c WHERE NOT timepart._may_maintain(timepart._caller(), c.parent)) THEN
        RAISE EXCEPTION 'only a role that may maintain every managed table may schedule timepart''s jobs' USING ERRCODE = '42501',
            HINT = 'Schedule as a superuser, a member of partition_admin, or a member of every managed table''s owner.';
    END IF;
    DELETE FROM timepart.jobs;
    INSERT INTO timepart.jobs SELECT * FROM unnest(new_jobs);
END $$;

CREATE OR REPLACE FUNCTION timepart._jobs_clear() RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM timepart.jobs;
    RETURN FOUND;
END $$;

-- A connection string to the pg_cron database on this server, as the current user.
CREATE OR REPLACE FUNCTION timepart._cron_conninfo() RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT format('dbname=%s host=%s port=%s user=%s', pg_catalog.quote_ident(pg_catalog.current_setting('cron.database_name')),
                  split_part(pg_catalog.current_setting('unix_socket_directories'), ',', 1),
                  pg_catalog.current_setting('port'), pg_catalog.quote_ident(current_user));
END;

-- How long may pass between two runs of a cron schedule before it is overdue.
CREATE OR REPLACE FUNCTION timepart._expected_every(schedule text) RETURNS interval
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT CASE WHEN f[3] <> '*' THEN interval '32 days' WHEN f[5] <> '*' THEN interval '8 days'
                WHEN f[2] = '*' OR f[2] LIKE '*/%' THEN interval '2 hours' ELSE interval '2 days' END
    FROM (SELECT pg_catalog.regexp_split_to_array(pg_catalog.btrim(schedule), '\s+') AS f) s;
END;

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
    logged jsonb;
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

    PERFORM timepart._jobs_put(new_jobs);
    -- One statement, one transaction where pg_cron lives: all five jobs or none.
    SELECT format('DO $do$ BEGIN %s END $do$', string_agg(format('PERFORM cron.schedule_in_database(%L, %L, %L, %L);',
                  n.jobname, n.schedule, n.command, n.run_in), ' '))
    INTO statements FROM unnest(new_jobs) n;
    PERFORM timepart._cron_exec(statements);
    logged := (SELECT jsonb_agg(jsonb_build_object('job', n.jobname, 'schedule', n.schedule)) FROM unnest(new_jobs) n);
    CALL timepart._log('schedule_jobs', NULL, NULL, true, logged, NULL, started);
    RETURN QUERY SELECT n.jobname, n.schedule, n.command FROM unnest(new_jobs) n ORDER BY n.job;
END $$;

CREATE OR REPLACE FUNCTION timepart.unschedule_jobs() RETURNS integer
LANGUAGE plpgsql AS $$
/* Removes this database's timepart jobs from pg_cron. Returns how many there were. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    names text[];
BEGIN
    -- First, so a role that may not remove the jobs is refused before pg_cron is touched.
    IF NOT timepart._jobs_clear() THEN
        -- Nothing was scheduled from here; pg_cron need not even be reachable.
        BEGIN
            SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            names := NULL;
        END;
    ELSE
        SELECT array_agg(j.jobname) INTO names FROM timepart._cron_jobs() j;
    END IF;
    IF names IS NOT NULL THEN
        PERFORM timepart._cron_exec(format('DO $do$ BEGIN %s END $do$',
            (SELECT string_agg(format('PERFORM cron.unschedule(%L);', n), ' ') FROM unnest(names) n)));
    END IF;
    CALL timepart._log('unschedule_jobs', NULL, NULL, true, jsonb_build_object('jobs', to_jsonb(coalesce(names, '{}'))), NULL, started);
    RETURN coalesce(array_length(names, 1), 0);
END $$;

-- DROP EXTENSION timepart takes this database's jobs along: pg_cron would run them and
-- fail every time. An event trigger (made only when a superuser installs, as event
-- triggers need) unschedules them as the DROP starts; it goes with the extension.
-- It fires for every DROP EXTENSION in the database, by any role, so it fails no one's
-- statement and reads nothing as that role (SECURITY DEFINER, every error a WARNING),
-- and acts only when timepart is named and the role may drop it: someone else's failing
-- DROP EXTENSION timepart must not take the jobs (a dblink route commits at once).
CREATE OR REPLACE FUNCTION timepart._drop_jobs_with_extension() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- ddl_command_start names no object: the statement says which extension goes.
    IF pg_catalog.current_query() !~* '\mtimepart\M' OR pg_catalog.current_query() !~* '\mdrop\s+extension\M' THEN
        RETURN;
    END IF;
    BEGIN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension e WHERE e.extname = 'timepart'
                   AND pg_catalog.pg_has_role(timepart._caller(), e.extowner, 'USAGE'))
           AND EXISTS (SELECT 1 FROM timepart.jobs) THEN
            PERFORM timepart.unschedule_jobs();
        END IF;
    EXCEPTION WHEN OTHERS THEN
        RAISE WARNING 'timepart: could not unschedule its pg_cron jobs: %', SQLERRM
            USING HINT = 'Remove them with SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE ''timepart-%''.';
    END;
END $$;

COMMENT ON COLUMN timepart.migrations.capture_triggers IS 'The capture triggers as made (timepart._capture_mark): checked at every batch, round and the swap';

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

-- ==== src/87_migrate_capture.sql
-- Migration, 2 of 5: building the partitioned copy in its stage schema, and capturing
-- the source's changes while it is copied.

-- An index's key columns as a template column list: each column or (expression) with
-- its ordering; INCLUDE columns ride along (the template wraps the list in parentheses).
CREATE OR REPLACE FUNCTION timepart._migrate_index_columns(idx regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT string_agg(CASE WHEN x.indkey[k - 1] = 0 THEN '(' || pg_catalog.pg_get_indexdef(x.indexrelid, k, true) || ')'
                           ELSE pg_catalog.pg_get_indexdef(x.indexrelid, k, true) END
                      || CASE WHEN k > x.indnkeyatts THEN ''
                              WHEN x.indoption[k - 1] & 3 = 3 THEN ' DESC'
                              WHEN x.indoption[k - 1] & 3 = 1 THEN ' DESC NULLS LAST'
                              WHEN x.indoption[k - 1] & 3 = 2 THEN ' NULLS FIRST' ELSE '' END
                      || CASE WHEN k = x.indnkeyatts AND x.indnatts > x.indnkeyatts THEN ') INCLUDE (' WHEN k < x.indnatts THEN ', ' ELSE '' END,
                      '' ORDER BY k)
    FROM pg_catalog.pg_index x, pg_catalog.generate_series(1, x.indnatts) k
    WHERE x.indexrelid = idx;
END;

-- The columns that identify a row in the change log: the primary key, else the whole row.
CREATE OR REPLACE FUNCTION timepart._migrate_row_key(source regclass) RETURNS name[]
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT array_agg(a.attname ORDER BY k.n)
    FROM pg_catalog.pg_constraint c, unnest(c.conkey) WITH ORDINALITY AS k(attnum, n), pg_catalog.pg_attribute a
    WHERE c.conrelid = source AND c.contype = 'p' AND a.attrelid = source AND a.attnum = k.attnum;
END;

-- The change log's columns: the row key, or every copied column.
CREATE OR REPLACE FUNCTION timepart._migrate_key_list(source regclass, row_key name[]) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT CASE WHEN row_key IS NULL THEN timepart._column_list(source)
                ELSE (SELECT string_agg(pg_catalog.quote_ident(k), ', ' ORDER BY n) FROM unnest(row_key) WITH ORDINALITY AS u(k, n)) END;
END;

-- The capture triggers as they are now: each one's row in pg_trigger (oid, enabled state,
-- and where the row is: ALTER TABLE ... DISABLE or ENABLE TRIGGER writes a new one). The
-- mark taken when they were made must hold at every batch, round and at the swap: a
-- trigger disabled and enabled again in between missed the changes made meanwhile.
CREATE OR REPLACE FUNCTION timepart._capture_mark(source regclass) RETURNS text
LANGUAGE sql STABLE
BEGIN ATOMIC
    SELECT pg_catalog.string_agg(pg_catalog.format('%s:%s:%s', t.oid, t.tgenabled, t.ctid), ',' ORDER BY t.tgname)
    FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid OPERATOR(pg_catalog.=) source AND t.tgname OPERATOR(pg_catalog.~~) 'timepart\_migrate\_%';
END;

-- The refusal when the capture is not as it was made (or a migration begun before 0.13,
-- which has no mark: it gets one now).
CREATE OR REPLACE FUNCTION timepart._migrate_check_capture(m timepart.migrations) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    now_mark text := timepart._capture_mark(m.source);
BEGIN
    IF m.capture_triggers IS NULL THEN
        UPDATE timepart.migrations g SET capture_triggers = now_mark WHERE g.id = m.id;
    ELSIF now_mark IS DISTINCT FROM m.capture_triggers
          OR (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = m.source AND t.tgname LIKE 'timepart\_migrate\_%'
              AND t.tgenabled IN ('A', 'O')) <> 4 THEN
        RAISE EXCEPTION 'the change capture of % was disabled, dropped or altered during the migration', m.source USING ERRCODE = 'XX001',
            DETAIL = 'A change made while it was not capturing may be missing from the partitioned copy; nothing more is copied or swapped.',
            HINT = format('SELECT timepart.migrate_abort(%L) removes the copy; then migrate again.', m.source::text);
    END IF;
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
                                          retention, row_key, source_filenode, last_block, blocks_per_batch, rows_estimated,
                                          capture_triggers)
    VALUES (source, source::text, target, stage, key_column, partition_interval, time_zone, retention, row_key, pg_catalog.pg_relation_filenode(source),
            blocks, timepart._migrate_batch_blocks(source, batch_size), rows_estimated, timepart._capture_mark(source))
    RETURNING * INTO m;
    CALL timepart._log('migrate_prepare', source, target::text, true,
        jsonb_build_object('target', target::text, 'templates', to_jsonb(templates), 'row_key', to_jsonb(row_key),
                           'blocks', blocks, 'rows_estimated', rows_estimated), NULL, started);
    RETURN m;
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

-- ==== src/88_migrate_copy.sql
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
    PERFORM pg_catalog.set_config('lock_timeout', greatest(1, ceil(extract(epoch FROM lock_wait) * 1000))::bigint::text || 'ms', true);
    EXECUTE format('LOCK TABLE ONLY %s IN EXCLUSIVE MODE', m.source);
    -- Every change since the copy began went through the capture triggers: they must all
    -- still be there and enabled, never altered since, or the copy may have missed one.
    PERFORM timepart._migrate_check_capture(m);
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

-- The swap, retried: each attempt is one short transaction; between attempts the
-- backlog is applied so the next one has little to do. A mismatch or any other
-- error ends the run (logged first, so the log row survives), the state stays.
CREATE OR REPLACE PROCEDURE timepart._migrate_swap_retrying(m timepart.migrations, batch_size integer)
LANGUAGE plpgsql AS $$
DECLARE
    started pg_catalog.timestamptz;
    lock_wait pg_catalog.interval;
    result pg_catalog.jsonb;
    attempt pg_catalog.int4 := 0;
    err pg_catalog.text;
    state pg_catalog.text;
    detail pg_catalog.text;
    hint pg_catalog.text;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    lock_wait := (SELECT c.lock_timeout FROM timepart.config c WHERE c.parent OPERATOR(pg_catalog.=) m.target);
    LOOP
        attempt := attempt OPERATOR(pg_catalog.+) 1;
        started := pg_catalog.clock_timestamp();
        BEGIN
            result := timepart._migrate_swap(m, lock_wait);
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS err = MESSAGE_TEXT, state = RETURNED_SQLSTATE, detail = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
        END;
        IF result IS NOT NULL THEN
            -- The checksum is a sum of row hashes: the log, which monitors read, does not keep it.
            CALL timepart._log('migrate_swap', m.target, m.target::pg_catalog.text, true,
                                  (result OPERATOR(pg_catalog.-) 'checksum') OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('attempts', attempt),
                                  NULL, started);
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            RAISE NOTICE 'timepart.migrate: % is partitioned now (% rows, checksum %, swap took % ms); the old table is %',
                m.target, result->>'rows', result->>'checksum', result->>'swap_ms', result->>'old_table';
            RETURN;
        END IF;
        CALL timepart._log('migrate_swap', m.source, m.target::pg_catalog.text, false, pg_catalog.jsonb_build_object('attempt', attempt, 'sqlstate', state), err, started);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        IF state OPERATOR(pg_catalog.<>) '55P03' OR attempt OPERATOR(pg_catalog.>=) 20 THEN
            PERFORM timepart._runner_session_unlock(m.source);
            RAISE EXCEPTION '%', err USING ERRCODE = state, DETAIL = detail,
                HINT = CASE WHEN state OPERATOR(pg_catalog.=) '55P03' THEN pg_catalog.format('Gave up after %s lock waits of %s. CALL timepart.migrate again when traffic allows; the copy is kept.', attempt, lock_wait) ELSE hint END;
        END IF;
        RAISE NOTICE 'timepart.migrate: swap attempt % waited too long for a lock; retrying', attempt;
        PERFORM pg_catalog.pg_sleep(least(2, 0.1 OPERATOR(pg_catalog.*) attempt));
        PERFORM timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    END LOOP;
END $$;

-- ==== src/89_migrate_run.sql
-- Migration, 5 of 5: the entry points: starting or resuming a run, its progress, CALL
-- timepart.migrate and migrate_abort.

-- A run's start: the migration under way for this table (same key and interval), or,
-- after every check, a new one prepared. NULL when the table was already migrated.
-- Takes the per-table session lock that keeps a second runner out.
CREATE OR REPLACE FUNCTION timepart._migrate_begin(source regclass, key_column name, partition_interval interval, batch_size integer,
                                                   premake integer, retention interval, time_zone text)
RETURNS timepart.migrations LANGUAGE plpgsql AS $$
DECLARE
    m timepart.migrations;
    key_type regtype;
    f record;
    attempt int := 0;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = _migrate_begin.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND AND EXISTS (SELECT 1 FROM timepart.migrations g WHERE g.target = _migrate_begin.source AND g.state = 'done') THEN
        RAISE NOTICE 'timepart.migrate: % is already migrated', source;
        RETURN NULL;
    ELSIF FOUND AND (m.key_column <> key_column OR m.partition_interval <> partition_interval) THEN
        RAISE EXCEPTION 'a migration of % by % every % is under way', source, m.key_column, m.partition_interval USING ERRCODE = '22023',
            DETAIL = format('Asked for %s every %s.', key_column, partition_interval),
            HINT = format('Resume it with the same key and interval, or stop it with SELECT timepart.migrate_abort(%L).', source::text);
    ELSIF NOT FOUND THEN
        key_type := timepart._migrate_check(source, key_column, partition_interval, time_zone);
        PERFORM timepart._check_premake(premake);
        PERFORM timepart._check_retention(retention);
        SELECT * INTO f FROM timepart._migrate_facts(source, key_column, key_type, time_zone);
        PERFORM timepart._migrate_check_nulls(source, key_column, f.has_nulls);
        PERFORM timepart._migrate_check_names(source, ARRAY[timepart._fit_name((SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid = source), 'default')::text]
            || ARRAY(SELECT timepart._partition_name(source, p.range_start, partition_interval, time_zone)::text
                     FROM timepart._migrate_periods(source, key_column, key_type, partition_interval, time_zone, f.oldest, f.newest, 0, false) p));
    END IF;
    IF NOT timepart._runner_session_lock(source) THEN
        RAISE EXCEPTION 'another session is migrating %', source USING ERRCODE = '55006',
            DETAIL = 'Only one run at a time copies a table.', HINT = 'Wait for it to finish, or end that session to take over.';
    END IF;
    IF m.id IS NOT NULL THEN
        RAISE NOTICE 'timepart.migrate: resuming % at block % of % (% rows copied)', source, m.next_block, m.last_block, m.rows_copied;
        RETURN m;
    END IF;
    BEGIN
        LOOP
            attempt := attempt + 1;
            BEGIN
                -- The capture trigger's lock on the source waits at most this long per attempt.
                PERFORM pg_catalog.set_config('lock_timeout', '200ms', true);
                RETURN timepart._migrate_prepare(source, key_column, key_type, partition_interval, premake, retention, time_zone, batch_size,
                                                 f.row_count, f.oldest, f.newest);
            EXCEPTION WHEN lock_not_available THEN
                IF attempt >= 20 THEN RAISE; END IF;
                PERFORM pg_catalog.pg_sleep(least(2, 0.1 * attempt));
            END;
        END LOOP;
    EXCEPTION WHEN OTHERS THEN
        PERFORM timepart._runner_session_unlock(source);
        RAISE;
    END;
    RETURN NULL;  -- not reached: the loop returns or raises
END $$;

CREATE OR REPLACE PROCEDURE timepart.migrate(source regclass, key_column name, partition_interval interval DEFAULT '1 month',
                                             batch_size integer DEFAULT 50000, premake integer DEFAULT 6,
                                             retention interval DEFAULT NULL, time_zone text DEFAULT 'UTC')
LANGUAGE plpgsql AS $$
/* Converts an unpartitioned table into a managed partitioned one of the same name
   while it stays in use: batches of batch_size rows, a COMMIT after each, concurrent
   writes captured and applied, counts and checksums compared, names swapped in one
   short transaction. CALL it outside a transaction block; CALL it again to resume. */
DECLARE
    m timepart.migrations;
    run_started pg_catalog.timestamptz := pg_catalog.clock_timestamp();
    rows_at_start pg_catalog.int8;
    n pg_catalog.int8;
    logged pg_catalog.jsonb;
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'batch_size must be at least 1' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(batch_size::text, 'NULL')), HINT = 'Copy e.g. 50000 rows per transaction.';
    END IF;
    m := timepart._migrate_begin(source, key_column, partition_interval, batch_size, premake, retention, time_zone);
    IF m.id IS NULL THEN
        RETURN;
    END IF;
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    rows_at_start := m.rows_copied;
    WHILE m.state OPERATOR(pg_catalog.=) 'copying' LOOP
        PERFORM timepart._migrate_batch(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        SELECT * INTO m FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id;
        PERFORM timepart._migrate_progress(m, run_started, rows_at_start);
    END LOOP;
    LOOP
        n := timepart._migrate_catch_up(m, batch_size);
        COMMIT;
        PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
        EXIT WHEN n OPERATOR(pg_catalog.<) batch_size;
    END LOOP;
    CALL timepart._migrate_swap_retrying(m, batch_size);
    IF m.retention IS NOT NULL THEN
        PERFORM timepart.configure(m.target, pg_catalog.jsonb_build_object('retention', m.retention));
    END IF;
    logged := (SELECT pg_catalog.to_jsonb(g) OPERATOR(pg_catalog.-) ARRAY['source', 'source_checksum', 'target_checksum']::pg_catalog.text[]
               FROM timepart.migrations g WHERE g.id OPERATOR(pg_catalog.=) m.id);
    CALL timepart._log('migrate', m.source, m.target::pg_catalog.text, true, logged, NULL, run_started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    PERFORM timepart._runner_session_unlock(m.source);
END $$;

CREATE OR REPLACE FUNCTION timepart.migrate_abort(source regclass) RETURNS boolean
LANGUAGE plpgsql AS $$
/* Stops an unfinished migration: removes the capture triggers, the partitioned copy
   and its registration. The source table and its rows are untouched. */
DECLARE
    started timestamptz := pg_catalog.clock_timestamp();
    m timepart.migrations;
    t record;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.source = migrate_abort.source AND g.state IN ('copying', 'catching_up');
    IF NOT FOUND THEN
        RAISE NOTICE 'no migration of % is under way', source;
        RETURN false;
    END IF;
    IF NOT timepart._runner_lock(source, interval '0') THEN
        RAISE EXCEPTION 'a session is migrating % right now', source USING ERRCODE = '55006',
            DETAIL = 'It holds the table''s migration lock.', HINT = 'Cancel that CALL first (pg_cancel_backend), then abort.';
    END IF;
    PERFORM pg_catalog.set_config('lock_timeout', '2s', true);
    FOR t IN SELECT g.tgname FROM pg_catalog.pg_trigger g WHERE g.tgrelid = source AND g.tgname LIKE 'timepart\_migrate\_%' LOOP
        PERFORM timepart._as_owner(source, format('DROP TRIGGER %I ON %s', t.tgname, source));
    END LOOP;
    PERFORM timepart._config_drop(m.target);
    PERFORM timepart._as_owner(source, format('DROP SCHEMA %I CASCADE', m.stage_schema));
    UPDATE timepart.migrations g SET state = 'aborted', finished_at = pg_catalog.clock_timestamp() WHERE g.id = m.id;
    CALL timepart._log('migrate_abort', source, NULL, true, jsonb_build_object('rows_copied', m.rows_copied), NULL, started);
    PERFORM timepart._runner_session_unlock(source);  -- this session's own hold, after a CALL that failed
    RETURN true;
END $$;

-- The newest migration of a table (by its name before or after the swap), for the
-- table's owner: the checksums are sums of row hashes, so they are shown only to a
-- role that may read the table's rows anyway (monitors read timepart.migrations without
-- them).
CREATE OR REPLACE FUNCTION timepart.migration(tbl regclass) RETURNS SETOF timepart.migrations
LANGUAGE plpgsql STABLE AS $$
DECLARE
    who name := timepart._caller();
    m timepart.migrations;
BEGIN
    SELECT * INTO m FROM timepart.migrations g WHERE g.target = tbl OR g.source = tbl ORDER BY g.id DESC LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF NOT (coalesce(timepart._may_act(who, m.target), false) OR coalesce(timepart._may_act(who, m.source), false)) THEN
        m.source_checksum := NULL;
        m.target_checksum := NULL;
    END IF;
    RETURN NEXT m;
END $$;

COMMENT ON FUNCTION timepart.migration(regclass) IS 'The newest timepart.migrate run of a table; checksums only for its owner';

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

-- The seed's names timepart puts in public, and their signatures.
CREATE OR REPLACE FUNCTION timepart._public_names() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['create_email_events_partition', 'maintain_email_events_partitions', 'cleanup_old_email_events_partitions',
             'get_email_events_partition_stats', 'get_partition_maintenance_log'];

CREATE OR REPLACE FUNCTION timepart._public_signatures() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['public.create_email_events_partition(date,date)', 'public.maintain_email_events_partitions(integer)',
             'public.cleanup_old_email_events_partitions(integer)', 'public.get_email_events_partition_stats()',
             'public.get_partition_maintenance_log(integer)'];

-- The relation of a name in the first of the schemas (the caller's search_path as
-- current_schemas(false) gives it: pg_temp only where the caller put it, never first).
CREATE OR REPLACE FUNCTION timepart._on_path(relation_name name, schemas name[]) RETURNS regclass
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT c.oid::regclass FROM unnest(schemas) WITH ORDINALITY s(nsp, i)
            JOIN pg_catalog.pg_namespace n ON n.nspname = s.nsp
            JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = relation_name
            ORDER BY s.i LIMIT 1);
END $$;

CREATE OR REPLACE FUNCTION public.create_email_events_partition(start_date date, end_date date)
RETURNS text LANGUAGE sql
BEGIN ATOMIC
    SELECT timepart._seed_create_partition(timepart._on_path('email_events', pg_catalog.current_schemas(false)), start_date, end_date);
END;

CREATE OR REPLACE FUNCTION public.maintain_email_events_partitions(months_ahead integer DEFAULT 6)
RETURNS jsonb LANGUAGE sql
BEGIN ATOMIC
    SELECT timepart.maintain(timepart._email_events(timepart._on_path('email_events', pg_catalog.current_schemas(false))), months_ahead);
END;

CREATE OR REPLACE FUNCTION public.cleanup_old_email_events_partitions(retention_months integer)
RETURNS TABLE (partition_name text, record_count bigint) LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart._seed_cleanup(timepart._on_path('email_events', pg_catalog.current_schemas(false)), retention_months);
END;

CREATE OR REPLACE FUNCTION public.get_email_events_partition_stats()
RETURNS TABLE (name text, period text, record_count bigint, size_mb numeric, oldest_record timestamptz,
               newest_record timestamptz, range_start timestamptz, range_end timestamptz, exact boolean)
LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart._seed_stats(timepart._on_path('email_events', pg_catalog.current_schemas(false)));
END;

CREATE OR REPLACE FUNCTION public.get_partition_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE sql
BEGIN ATOMIC
    SELECT * FROM timepart.get_maintenance_log(max_rows);
END;

-- Nobody else may take the seed's names. They are called unqualified, so an overload
-- in public (PostgreSQL prefers create_email_events_partition(text, text) to timepart's
-- (date, date) for two quoted literals), or a function or relation of the same name in
-- a schema earlier on the caller's path (a role's "$user" schema), would run instead,
-- with the caller's rights. Whatever timepart did not make under those names is a
-- shadow: the install refuses while there is one, and an event trigger refuses the DDL
-- that would make one, by anyone.
CREATE OR REPLACE FUNCTION timepart._seed_shadows()
RETURNS TABLE (description text, object_id oid, namespace oid) LANGUAGE plpgsql STABLE AS $$
DECLARE
    maker oid := (SELECT n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = 'timepart');
BEGIN
    RETURN QUERY
    SELECT format('function %s owned by %s', p.oid::regprocedure, p.proowner::regrole), p.oid, p.pronamespace
    FROM pg_catalog.pg_proc p
    WHERE p.proname = ANY (timepart._public_names())
      AND NOT (p.proowner = maker
               AND p.oid = ANY (ARRAY(SELECT pg_catalog.to_regprocedure(x) FROM unnest(timepart._public_signatures()) x)))
    UNION ALL
    SELECT format('%s %s owned by %s', CASE c.relkind WHEN 'v' THEN 'view' ELSE 'relation' END, c.oid::regclass, c.relowner::regrole),
           c.oid, c.relnamespace
    FROM pg_catalog.pg_class c
    WHERE c.relname = 'partition_maintenance_log'
      AND NOT (c.relnamespace = 'public'::regnamespace AND c.relowner = maker AND c.relkind = 'v');
END $$;

-- The refusal for a shadow of the seed's names, with what to do.
CREATE OR REPLACE FUNCTION timepart._refuse_seed_shadows() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found text := (SELECT string_agg(s.description, '; ' ORDER BY s.description) FROM timepart._seed_shadows() s);
BEGIN
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'the seed''s names are timepart''s' USING ERRCODE = '42723',
            DETAIL = format('Found: %s. Called unqualified, it would run instead of timepart''s, with the caller''s rights.', found),
            HINT = 'Drop or rename it: create_email_events_partition, maintain_email_events_partitions, '
                   'cleanup_old_email_events_partitions, get_email_events_partition_stats, get_partition_maintenance_log and '
                   'partition_maintenance_log are timepart''s names in this database.';
    END IF;
END $$;

SELECT timepart._refuse_seed_shadows();

-- The event trigger's function: after any DDL that can make a function or a relation, or
-- move or rename one, it refuses a shadow that this command made (a function or relation
-- it created, altered or renamed, or one in a schema or type it created or renamed): a
-- shadow made otherwise (while the trigger was off) fails the install, the installer and
-- that DDL, never someone's unrelated DDL. As timepart's owner (SECURITY DEFINER): it
-- reads the catalog only, whoever ran the DDL.
CREATE OR REPLACE FUNCTION timepart._guard_seed_names() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    found text;
BEGIN
    -- Most DDL names nothing of the seed's: a look at what this statement made says so
    -- without reading the catalog.
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                   WHERE c.object_type IN ('schema', 'type', 'extension')
                      OR c.object_identity ~ '(create_email_events_partition|maintain_email_events_partitions|cleanup_old_email_events_partitions|get_email_events_partition_stats|get_partition_maintenance_log|partition_maintenance_log)') THEN
        RETURN;
    END IF;
    SELECT string_agg(DISTINCT s.description, '; ') INTO found
    FROM timepart._seed_shadows() s, pg_catalog.pg_event_trigger_ddl_commands() c
    WHERE c.objid = s.object_id
       OR (c.object_type IN ('schema', 'type', 'extension') AND s.namespace IN (c.objid, (
               SELECT t.typnamespace FROM pg_catalog.pg_type t WHERE t.oid = c.objid AND c.object_type = 'type')));
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'the seed''s names are timepart''s' USING ERRCODE = '42723',
            DETAIL = format('This statement would make %s. Called unqualified, it would run instead of timepart''s, '
                            'with the caller''s rights.', found),
            HINT = 'Choose another name: create_email_events_partition, maintain_email_events_partitions, '
                   'cleanup_old_email_events_partitions, get_email_events_partition_stats, get_partition_maintenance_log and '
                   'partition_maintenance_log are timepart''s names in this database.';
    END IF;
END $$;

-- The event trigger itself is made by _harden (99_security.sql), last in every script.


-- ==== src/95_install.sql
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

-- ==== src/99_security.sql
-- Security, in one place: the two roles, who may execute and read what, which
-- functions act with the owner's rights (SECURITY DEFINER), and a pinned search_path.
-- Every version script ends by running timepart._harden(), so functions added or
-- replaced by an upgrade get the same treatment as a fresh install.
--
-- The model (README, Security):
-- * Every statement on a user's table runs through the table owner's executor
--   (05_owner.sql): user code (triggers, constraints, index expressions, policies)
--   runs with the owner's rights only, whoever called.
-- * Operations (manage, maintain, cleanup, create_partition, ...) run as the caller,
--   who must own the table (or be a member of its owner, or a superuser); configuration,
--   templates and jobs are written through timepart's own functions, which check the
--   caller; the owner guards on timepart's tables check the old and the new row. A partition_admin who
--   does not own a registered table runs maintain, cleanup (configured retention) and
--   create_partition on it through 63_admin.sql, as timepart's owner.
-- * Reading (partition_stats, health, summary) and snapshot_stats, check_alerts run as
--   timepart's owner, so monitors need no access to the data; they read user tables
--   only through executors, and check the caller (_caller()) where rights matter.
-- * Scheduling runs as the caller. The log and migration state are written only by
--   timepart's PL/pgSQL functions (_written_by_timepart).
-- * Every PL/pgSQL function and every public wrapper runs with search_path pinned to
--   pg_catalog, pg_temp. Small private SQL helpers stay unpinned so the planner can
--   inline them; they are only called from pinned functions.

-- Roles timepart trusts are the two it made, or that a superuser made for it: no
-- attribute but NOLOGIN, and every membership in them granted by a superuser or by the
-- role installing timepart, with ADMIN OPTION held by no one else. A role made first by
-- a CREATEROLE role keeps ADMIN OPTION on it (16 and later) and could hand it to anyone.
CREATE OR REPLACE FUNCTION timepart._check_roles() RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    found text;
BEGIN
    SELECT string_agg(x.problem, '; ' ORDER BY x.problem) INTO found FROM (
        SELECT format('%s has attributes beyond NOLOGIN', r.rolname) AS problem FROM pg_catalog.pg_roles r
        WHERE r.rolname IN ('partition_admin', 'partition_monitor')
          AND (r.rolcanlogin OR r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls)
        UNION ALL
        SELECT format('%s was granted to %s by %s%s', r.rolname, m.member::regrole, m.grantor::regrole,
                      CASE WHEN m.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END)
        FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.roleid
        LEFT JOIN pg_catalog.pg_roles g ON g.oid = m.grantor LEFT JOIN pg_catalog.pg_roles w ON w.oid = m.member
        WHERE r.rolname IN ('partition_admin', 'partition_monitor') AND NOT coalesce(w.rolsuper, false)
          AND ((m.admin_option AND w.rolname IS DISTINCT FROM current_user)
               OR (NOT coalesce(g.rolsuper, false) AND g.rolname IS DISTINCT FROM current_user))
        UNION ALL
        -- Whoever made the role first could have made objects as it (a SECURITY DEFINER
        -- function that keeps its rights): a role timepart trusts owns nothing, anywhere.
        SELECT format('%s owns objects (%s in all, in any database)', r.rolname, count(*))
        FROM pg_catalog.pg_shdepend d JOIN pg_catalog.pg_roles r ON r.oid = d.refobjid
        WHERE d.refclassid = 'pg_catalog.pg_authid'::regclass AND d.deptype = 'o'
          AND r.rolname IN ('partition_admin', 'partition_monitor')
        GROUP BY r.rolname) x;
    IF found IS NOT NULL THEN
        RAISE EXCEPTION 'roles partition_admin and partition_monitor exist already, with rights timepart did not give'
            USING ERRCODE = '42501', DETAIL = found || '.',
                  HINT = 'A superuser revokes those grants and attributes (REVOKE partition_admin FROM ...; ALTER ROLE ... NOLOGIN), '
                         'or drops the roles, then installs timepart.';
    END IF;
END $$;

CREATE OR REPLACE FUNCTION timepart._config_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
/* Only an owner of a table (or a member of its owner role, or a superuser) may
   register, reconfigure or forget it, or change its index templates or migration.
   Both the row as it was and the row as it becomes are checked, so an UPDATE cannot
   take another owner's row. TG_ARGV names the columns holding tables (a migration's
   source and target both). */
DECLARE
    col text;
    tbl regclass;
    side record;
BEGIN
    FOR side IN SELECT x.r, u.c FROM (VALUES (CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN pg_catalog.to_jsonb(OLD) END),
                                            (CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN pg_catalog.to_jsonb(NEW) END)) x(r),
                                    unnest(CASE WHEN TG_NARGS = 0 THEN ARRAY['parent'] ELSE TG_ARGV END) u(c)
                WHERE x.r IS NOT NULL LOOP
        col := side.c;
        -- A dropped table's oid prints as digits: cast those without a catalog lookup.
        tbl := CASE WHEN (side.r ->> col) ~ '^[0-9]+$' THEN (side.r ->> col)::oid::regclass ELSE (side.r ->> col)::regclass END;
        -- The session's role (timepart's functions write these rows as timepart's owner);
        -- nobody's inside a table owner's code. A row may go on naming a dropped table (a
        -- migration's copy after an abort), never start to.
        IF NOT (CASE WHEN NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = tbl) THEN TG_OP <> 'INSERT'
                     ELSE coalesce(timepart._may_act(timepart._caller(), tbl), false) END) THEN
            RAISE EXCEPTION 'must be owner of table % to manage it', coalesce(tbl::regclass::text, side.r ->> col) USING ERRCODE = '42501',
                DETAIL = format('%s is owned by %s.', tbl::regclass,
                                coalesce((SELECT relowner::regrole::text FROM pg_catalog.pg_class WHERE oid = tbl), 'nobody: it does not exist')),
                HINT = 'Ask its owner to run timepart.manage(), or to grant you membership in the owning role.';
        END IF;
    END LOOP;
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END $$;

-- Tables only timepart's own functions write: the statement must be one of a PL/pgSQL
-- function of schema timepart, as its source has it (the nearest frame, _calling_function), not
-- from a client, a DO block, a user's function or a trigger; and no table owner's code
-- may be running (an executor on the stack): a rule action has no frame of its own, so
-- an owner's DO INSTEAD rule would otherwise pass as the executor's own statement. On
-- the log, who and when are set here, by the server.
CREATE OR REPLACE FUNCTION timepart._written_by_timepart() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    ctx text;
    stack text;
    frame text;
BEGIN
    GET DIAGNOSTICS ctx = PG_CONTEXT;
    -- The function that ran the writing statement, told for certain (_calling_context);
    -- for timepart._log, the function that called it (CALL timepart._log(...)), the same way.
    ctx := timepart._calling_context(ctx);
    IF split_part(ctx, E'\n', 1) ~ '^PL/pgSQL function timepart\._log\(' THEN
        ctx := timepart._calling_context(ctx);
    END IF;
    frame := NULLIF(split_part(ctx, E'\n', 1), '');
    -- Nobody writes these rows but timepart, and a superuser: pg_restore puts a dump's log
    -- and migration rows back as they were (who and when included); a superuser may trim.
    GET DIAGNOSTICS stack = PG_CONTEXT;
    IF frame IS NULL OR frame !~ '^PL/pgSQL function timepart\.' OR stack ~ 'function timepart\._as_owner_[0-9]+\(' THEN
        IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
            RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
        END IF;
        RAISE EXCEPTION 'timepart.% is written only by timepart''s functions', TG_TABLE_NAME USING ERRCODE = '42501',
            DETAIL = format('A direct %s was refused (from %s).', TG_OP, coalesce(frame, 'a client statement')),
            HINT = 'Use timepart''s functions; this table records what they did.';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    IF TG_TABLE_NAME = 'maintenance_log' AND TG_OP = 'INSERT' THEN
        NEW.created_at := pg_catalog.clock_timestamp();
        NEW.run_by := session_user;
        NEW.run_as := current_user;
    END IF;
    RETURN NEW;
END $$;

-- Which public functions a monitor may call (partition_admin may call every function but
-- the private ones).
CREATE OR REPLACE FUNCTION timepart._monitor_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.period_of', 'timepart.migration',
                 'timepart.get_maintenance_log', 'public.get_email_events_partition_stats', 'public.get_partition_maintenance_log',
                 'timepart._email_events', 'timepart._seed_stats', 'timepart._on_path'];
END;

-- Functions that act with timepart's owner's rights (SECURITY DEFINER), in three kinds;
-- tests/pgtap/definers.sql checks that every such function is one of them, and that each
-- entry point refuses what its caller may not do.
-- * Readers and operations of the public API, which check their caller (_caller()).
CREATE OR REPLACE FUNCTION timepart._definer_api() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart.version', 'timepart.partition_stats', 'timepart.health', 'timepart.summary', 'timepart.job_status',
                 'timepart.metrics', 'timepart.growth', 'timepart.get_maintenance_log', 'timepart.migration',
                 'timepart.snapshot_stats', 'timepart.check_alerts'];
END;

-- * Entry points that timepart's own code reaches while running as its caller, so the
--   caller may execute them; each checks on its own, whoever calls it directly, that the
--   caller may do what it does: make an owner's executor, an archive or stage schema,
--   a partition's table, move a migration's triggers and publications, take a runner
--   lock, run partition_admin's operations; or gives what any monitor sees (a count).
CREATE OR REPLACE FUNCTION timepart._definer_entry_points() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart._executor', 'timepart._archive_schema', 'timepart._migrate_triggers', 'timepart._migrate_stage_schema',
                 'timepart._migrate_publications', 'timepart._new_partition_table', 'timepart._admin_run',
                 'timepart._admin_create_partition', 'timepart._runner_lock', 'timepart._runner_session_lock',
                 'timepart._runner_session_unlock', 'timepart._snapshot_count', 'timepart._config_put', 'timepart._config_drop',
                 'timepart._template_put', 'timepart._template_drop', 'timepart._jobs_put', 'timepart._jobs_clear'];
END;

-- * Private: trigger and event trigger functions, which nobody but timepart's owner may
--   execute (nobody can attach them to a table).
CREATE OR REPLACE FUNCTION timepart._private_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT ARRAY['timepart._migrate_capture', 'timepart._migrate_refuse_truncate', 'timepart._config_guard',
                 'timepart._drop_jobs_with_extension', 'timepart._guard_seed_names', 'timepart._written_by_timepart',
                 'timepart._template_guard', 'timepart._jobs_guard'];
END;

-- PL/pgSQL functions that read the settings their caller runs with (a SET clause would
-- show them its own), and so carry none: the owner's room (06_room.sql). Every name in
-- their bodies is schema-qualified.
CREATE OR REPLACE FUNCTION timepart._unpinned_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['timepart._settings_now', 'timepart._room_state'];

-- Procedures that COMMIT (no SET clause possible): the job procedures and migrate.
CREATE OR REPLACE FUNCTION timepart._committing_procedures() RETURNS text[]
LANGUAGE sql IMMUTABLE
RETURN ARRAY['timepart._each', 'timepart.maintain_each', 'timepart.cleanup_each', 'timepart.migrate',
             'timepart._migrate_swap_retrying'];

-- Every function that acts with timepart's owner's rights.
CREATE OR REPLACE FUNCTION timepart._definer_functions() RETURNS text[]
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT timepart._definer_api() OPERATOR(pg_catalog.||) timepart._definer_entry_points()
           OPERATOR(pg_catalog.||) ARRAY['timepart._migrate_capture', 'timepart._drop_jobs_with_extension', 'timepart._guard_seed_names'];
END;

CREATE OR REPLACE FUNCTION timepart._harden() RETURNS void
LANGUAGE plpgsql AS $$
/* Pins search_path, sets SECURITY DEFINER where listed, revokes everything from
   PUBLIC and grants the two roles their share. Safe to run again. */
DECLARE
    f record;
    roles_exist boolean := (SELECT count(*) = 2 FROM pg_catalog.pg_roles WHERE rolname IN ('partition_admin', 'partition_monitor'));
BEGIN
    -- The owner's room compares this server's settings (06_room.sql).
    PERFORM timepart._make_settings_digest();
    FOR f IN
        SELECT p.oid::regprocedure AS sig, n.nspname || '.' || p.proname AS qname, l.lanname, p.prokind, n.nspname
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE (n.nspname = 'timepart' AND p.proname NOT LIKE '\_as\_owner\_%') OR (n.nspname = 'public' AND p.proname = ANY (timepart._public_names()))
    LOOP
        -- Procedures that COMMIT cannot carry a SET clause; they pin the path themselves,
        -- at the start of every transaction. The seed's names in public neither: SQL-standard
        -- bodies, bound at install, they find email_events on the caller's search_path.
        IF f.nspname = 'timepart' AND f.lanname = 'plpgsql' AND f.qname <> ALL (timepart._committing_procedures())
           AND f.qname <> ALL (timepart._unpinned_functions())
           OR f.prokind = 'f' AND f.qname = ANY (timepart._definer_functions()) THEN
            -- DateStyle ISO: partition bounds are read back from text, which must not
            -- depend on the session (in ISO style a timestamptz carries a numeric offset).
            -- jit off: timepart's queries read catalogs and small tables; compiling them
            -- cost about a second on a session's first statistics call at 12 x 1M rows.
            EXECUTE format('ALTER ROUTINE %s SET search_path = pg_catalog, pg_temp SET datestyle = ''ISO, YMD'' SET jit = off', f.sig);
        END IF;
        IF f.qname = ANY (timepart._definer_functions()) THEN
            EXECUTE format('ALTER ROUTINE %s SECURITY DEFINER', f.sig);
        ELSIF f.prokind IN ('f', 'p') THEN
            EXECUTE format('ALTER ROUTINE %s SECURITY INVOKER', f.sig);
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
        -- Who holds a table is timepart's business only.
        REVOKE SELECT ON timepart.runners FROM partition_monitor;
        -- A migration's checksums are sums of row hashes (a one-row table's could be guessed):
        -- its owner reads them through timepart.migration().
        REVOKE SELECT ON timepart.migrations FROM partition_monitor;
        EXECUTE (SELECT format('GRANT SELECT (%s) ON timepart.migrations TO partition_monitor',
                               string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum))
                 FROM pg_catalog.pg_attribute a WHERE a.attrelid = 'timepart.migrations'::regclass AND a.attnum > 0
                 AND NOT a.attisdropped AND a.attname NOT IN ('source_checksum', 'target_checksum'));
        GRANT SELECT ON public.partition_maintenance_log TO partition_monitor;
        -- Operations run as the caller, so an admin writes what they write, and no more:
        -- its own tables' configuration, templates and migrations (the guard checks
        -- ownership on every row), and new log rows (never changing old ones). Alerts,
        -- stats history and jobs are written only by functions that run as the owner.
        -- Configuration, templates and jobs are written through timepart's own functions
        -- only (_config_put, _template_put, _jobs_put): a role that may write a table may
        -- lock it, and every operation reads them.
        REVOKE INSERT, UPDATE, DELETE ON timepart.config, timepart.index_templates, timepart.jobs FROM partition_admin;
        GRANT INSERT, UPDATE, DELETE ON timepart.migrations TO partition_admin;
        GRANT INSERT ON timepart.maintenance_log TO partition_admin;
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA timepart TO partition_admin;
    END IF;
    -- The seed's names are guarded from here on (90_compat.sql): the event trigger comes
    -- last, once every function it calls is pinned. Event triggers need a superuser.
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
        NULL;
    ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names') THEN
        CREATE EVENT TRIGGER timepart_seed_names ON ddl_command_end
            WHEN TAG IN ('CREATE FUNCTION', 'ALTER FUNCTION', 'CREATE PROCEDURE', 'ALTER PROCEDURE', 'CREATE AGGREGATE',
                         'ALTER AGGREGATE', 'ALTER ROUTINE', 'CREATE VIEW', 'ALTER VIEW', 'CREATE TABLE',
                         'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE MATERIALIZED VIEW', 'ALTER MATERIALIZED VIEW',
                         'CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE', 'IMPORT FOREIGN SCHEMA', 'CREATE SEQUENCE',
                         'ALTER SEQUENCE', 'ALTER SCHEMA', 'CREATE SCHEMA', 'CREATE EXTENSION', 'ALTER EXTENSION',
                         'CREATE TYPE', 'ALTER TYPE', 'CREATE INDEX', 'ALTER INDEX')
            EXECUTE FUNCTION timepart._guard_seed_names();
    ELSIF EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'timepart_seed_names' AND e.evtenabled = 'D') THEN
        ALTER EVENT TRIGGER timepart_seed_names ENABLE;  -- an upgrade script turned it off for its own DDL
    END IF;
END $$;

SELECT timepart._harden();

SET LOCAL search_path TO DEFAULT;
