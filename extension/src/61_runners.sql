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
