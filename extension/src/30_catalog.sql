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

CREATE OR REPLACE FUNCTION timepart._config(tbl regclass) RETURNS timepart.config
LANGUAGE plpgsql STABLE AS $$
DECLARE
    cfg timepart.config;
BEGIN
    SELECT * INTO cfg FROM timepart.config c WHERE c.parent = tbl;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not managed by timepart', tbl USING ERRCODE = '22023',
            DETAIL = 'It has no row in timepart.config.',
            HINT = format('Run SELECT timepart.manage(%L) first.', tbl::text);
    END IF;
    RETURN cfg;
END $$;

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
