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
