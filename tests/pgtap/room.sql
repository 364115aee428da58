-- The owner's room: a table owner's code (here a CHECK constraint, run when maintain
-- moves a row, and an index predicate, folded whenever a query on the default partition
-- is planned) tries to leave something in the session of whoever runs timepart: a
-- superuser's maintain and partition_stats, a monitor's health. Whatever it tries, the
-- session is as it was afterwards, a write step that tried fails and is undone, and
-- the log says why. (LISTEN takes effect only at commit: tests/py/test_room.py.)
\ir setup.psql
SELECT plan(40);
CREATE ROLE tp_room_owner LOGIN IN ROLE partition_admin;
CREATE ROLE tp_room_mon LOGIN IN ROLE partition_monitor;
CREATE SCHEMA own AUTHORIZATION tp_room_owner;

-- What the owner's code does when it runs: each statement in public.act, as the owner.
CREATE TABLE public.act (what text);
GRANT SELECT ON public.act TO tp_room_owner;
SET ROLE tp_room_owner;
CREATE FUNCTION own.leave() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $f$
DECLARE
    w text;
BEGIN
    FOR w IN SELECT a.what FROM public.act a LOOP
        BEGIN
            EXECUTE w;
        EXCEPTION WHEN OTHERS THEN  -- done at an earlier row already
            NULL;
        END;
    END LOOP;
    RETURN true;
END $f$;
CREATE FUNCTION own.leave_imm() RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $f$ BEGIN RETURN own.leave(); END $f$;
CREATE TABLE own.ev (id bigint, ts timestamptz NOT NULL, CONSTRAINT leaves CHECK (own.leave())) PARTITION BY RANGE (ts);
SELECT timepart.manage('own.ev', '1 month', 2, as_of => '2024-03-15');
CREATE INDEX ev_default_trap ON own.ev_default (id) WHERE own.leave_imm();
INSERT INTO own.ev SELECT g, '2025-01-01'::timestamptz + g * interval '1 day' FROM generate_series(1, 12) g;
RESET ROLE;

-- The session's own things, which must be there, unchanged, afterwards.
PREPARE app_stmt AS SELECT 42;
SELECT pg_advisory_lock(77);
CREATE TEMP TABLE mine (x int);

CREATE FUNCTION pg_temp.session_clean() RETURNS text LANGUAGE sql AS $$
    SELECT concat_ws('; ',
        CASE WHEN to_regclass('pg_temp.pg_stat_database') IS NOT NULL THEN 'a temporary view' END,
        CASE WHEN to_regtype('pg_temp.regclass') IS NOT NULL THEN 'a temporary domain' END,
        CASE WHEN to_regclass('pg_temp.mine') IS NULL THEN 'the session''s temporary table is gone' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'evil_stmt' OR statement LIKE '%666%') THEN 'a prepared statement' END,
        CASE WHEN NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'app_stmt' AND statement LIKE '%42%') THEN 'the session''s prepared statement is gone' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_cursors WHERE name = 'evil_cur') THEN 'a cursor' END,
        CASE WHEN current_setting('default_transaction_read_only') <> 'off' THEN 'default_transaction_read_only' END,
        CASE WHEN current_setting('statement_timeout') <> '0' THEN 'statement_timeout' END,
        CASE WHEN current_setting('search_path') <> '"$user", public' THEN 'search_path' END,
        CASE WHEN EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = 4242) THEN 'an advisory lock' END,
        CASE WHEN NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND objid = 77) THEN 'the session''s advisory lock is gone' END)
$$;
SET search_path = "$user", public;
SELECT is(pg_temp.session_clean(), '', 'the session starts clean');

-- Each thing the owner's code tries, through a write (a superuser's maintain moves the
-- rows waiting in the default partition past the CHECK constraint) and through reads.
-- what: the owner's statements; gone: what of the session's own no rollback can bring
-- back (a prepared statement or cursor the owner's code dropped: the step still fails).
CREATE TABLE public.tries (what text, label text, gone text);
INSERT INTO public.tries VALUES
    ('CREATE TEMP VIEW pg_stat_database AS SELECT 1', 'a temporary view named like a catalog view', ''),
    ('CREATE DOMAIN pg_temp.regclass AS text', 'a temporary domain named regclass', ''),
    ('DISCARD TEMP', 'dropping the session''s temporary objects', ''),
    ('PREPARE evil_stmt AS SELECT 1', 'a prepared statement', ''),
    ('DEALLOCATE app_stmt; PREPARE app_stmt AS SELECT 666', 'the session''s prepared statement replaced',
     'the session''s prepared statement is gone'),
    ('DECLARE evil_cur CURSOR WITH HOLD FOR SELECT 1', 'a holdable cursor', ''),
    ('SET default_transaction_read_only = on', 'default_transaction_read_only', ''),
    ('SET LOCAL statement_timeout = 1', 'statement_timeout, SET LOCAL', ''),
    ('SELECT pg_catalog.set_config(''search_path'', ''own'', false)', 'search_path', ''),
    ('SELECT pg_advisory_lock(4242) FROM generate_series(1, 1001)', 'a session advisory lock, 1001 times', ''),
    ('SELECT pg_advisory_unlock_all()', 'the session''s advisory locks released', '');

-- The session's own things, made again where a try took them away for good.
CREATE FUNCTION pg_temp.restore() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM public.act;
    IF NOT EXISTS (SELECT 1 FROM pg_prepared_statements WHERE name = 'app_stmt') THEN
        EXECUTE 'PREPARE app_stmt AS SELECT 42';
    END IF;
END $$;

CREATE FUNCTION pg_temp.try_write(what text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    clean text;
BEGIN
    INSERT INTO public.act SELECT unnest(string_to_array(what, '; '));
    r := timepart.maintain('own.ev', 2, '2025-01-15');
    DELETE FROM public.act;
    clean := pg_temp.session_clean();
    PERFORM pg_temp.restore();
    RETURN concat_ws(' | ', r->>'success', (SELECT count(*) FROM own.ev_default)::text,
                     (SELECT (l.error LIKE '%code of the owner of own.ev% tried to leave something in this session%')::text
                      FROM timepart.maintenance_log l WHERE l.parent_table = 'own.ev' ORDER BY l.id DESC LIMIT 1), clean);
END $$;

SELECT is(pg_temp.try_write(t.what), format('false | 12 | true | %s', t.gone), format('maintain: %s is refused, undone, logged', t.label))
FROM public.tries t;

CREATE FUNCTION pg_temp.try_read(what text, reader name) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    err text;
    clean text;
BEGIN
    INSERT INTO public.act SELECT unnest(string_to_array(what, '; '));
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', reader);
        PERFORM count(*) FROM timepart.partition_stats('own.ev');
        PERFORM timepart.health('own.ev');
        RESET ROLE;
    EXCEPTION WHEN OTHERS THEN
        err := SQLERRM;
    END;
    RESET ROLE;
    DELETE FROM public.act;
    clean := pg_temp.session_clean();
    PERFORM pg_temp.restore();
    RETURN concat_ws(' | ', coalesce(split_part(err, ': ', 1), 'read'), clean);
END $$;

-- A read undoes what the owner's code did; where it took something of the session's
-- away for good, that is refused and the partition is not counted (statistics fall back
-- on estimates, so one table's owner cannot make everyone's statistics fail).
SELECT is(pg_temp.try_read(t.what, r.reader), 'read | ' || t.gone,
          format('%s: %s leaves nothing', r.label, t.label))
FROM public.tries t, (VALUES ('postgres'::name, 'a superuser''s statistics and health'), ('tp_room_mon', 'a monitor''s')) r(reader, label);

-- A session with an open cursor (the owner's code could FETCH from it, with the session's
-- rights) or a dblink connection: timepart runs no owner code in it at all.
DELETE FROM public.act;
DECLARE mine_cur CURSOR WITH HOLD FOR SELECT 1;
SELECT is((SELECT exact FROM timepart.partition_stats('own.ev') WHERE is_default), false,
          'statistics run no owner code while the session has an open cursor: the default partition is estimated');
SELECT ok((timepart.maintain('own.ev', 2, '2025-01-15')->>'errors') LIKE '%this session holds what the code of the owner%',
          'maintain refuses it too, and says why');
SELECT is((SELECT count(*) FROM own.ev_default), 12::bigint, 'and moved nothing');
CLOSE mine_cur;

-- An assertion (assert_failure, which WHEN OTHERS does not catch) after a prepared
-- statement: still swept, and reported as an ordinary error that maintain logs.
CREATE FUNCTION pg_temp.assert_after(what text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    r jsonb;
    err text;
BEGIN
    DELETE FROM public.act;
    INSERT INTO public.act VALUES (what), ('DO $x$ BEGIN ASSERT false, ''the owner''''s assertion''; END $x$');
    r := timepart.maintain('own.ev', 2, '2025-01-15');
    BEGIN
        PERFORM count(*) FROM timepart.partition_stats('own.ev');
    EXCEPTION WHEN OTHERS THEN
        err := SQLERRM;
    END;
    DELETE FROM public.act;
    RETURN concat_ws(' | ', r->>'success', (r->'errors'->>0) LIKE '%failed an assertion%', coalesce(err, 'read'),
                     pg_temp.session_clean());
END $$;
SELECT is(pg_temp.assert_after('PREPARE evil_stmt AS SELECT 1'), 'false | t | read | ',
          'an assertion ends neither maintain nor the read uncaught, and what came before it is swept');

-- The owner's code ran, as the owner, each time (the attacks were real).
SET ROLE tp_room_owner;
SELECT lives_ok($$SELECT own.leave()$$, 'the owner may run its own code');
RESET ROLE;
SELECT is(pg_temp.session_clean(), '', 'the session ends clean');
SELECT * FROM finish();
ROLLBACK;
