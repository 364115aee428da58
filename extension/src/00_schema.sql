-- The schema and the version marker. The same file runs under CREATE EXTENSION
-- and over a plain connection (the installer's script mode), so no psql \quit guard.
-- The script binds the names of its SQL-standard function bodies, defaults and
-- constraints with pg_catalog first and pg_temp last, whatever the session's path (SET
-- LOCAL: CREATE EXTENSION and the installer's transaction both end with it).
SET LOCAL search_path = pg_catalog, pg_temp;
-- (fresh install only) A schema timepart found before the install is not timepart's:
-- whoever made it owns it and could replace what timepart puts there.
DO $$
DECLARE
    found_owner text := (SELECT n.nspowner::pg_catalog.regrole::pg_catalog.text FROM pg_catalog.pg_namespace n
                         WHERE n.nspname OPERATOR(pg_catalog.=) 'timepart');
BEGIN
    IF found_owner IS NOT NULL THEN
        RAISE EXCEPTION 'schema timepart exists already, owned by %', found_owner USING ERRCODE = '42P06',
            DETAIL = 'timepart makes its own schema: it trusts nothing someone else put there first.',
            HINT = 'A superuser renames or drops that schema (ALTER SCHEMA timepart RENAME TO ...), then installs timepart.';
    END IF;
END $$;
CREATE SCHEMA IF NOT EXISTS timepart;
COMMENT ON SCHEMA timepart IS 'timepart: time-partitioned tables that keep themselves healthy';

CREATE OR REPLACE FUNCTION timepart.version() RETURNS text
LANGUAGE sql IMMUTABLE
BEGIN ATOMIC
    SELECT '@TIMEPART_VERSION@'::text;
END;
COMMENT ON FUNCTION timepart.version() IS 'The version of the timepart SQL installed in this database';

-- pg_dump must keep configuration rows; only possible under CREATE EXTENSION.
CREATE OR REPLACE FUNCTION timepart._config_dump(tbl regclass, filter text DEFAULT '') RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'timepart') THEN
        PERFORM pg_catalog.pg_extension_config_dump(tbl, filter);
    END IF;
END $$;
