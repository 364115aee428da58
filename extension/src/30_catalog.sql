-- Reading the catalog: a managed table's configuration and its partitions' bounds,
-- every partition in one query (never one query per partition).

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

-- Every partition of a parent with its bounds read from the catalog (never from its
-- name). MINVALUE/MAXVALUE read as -infinity/infinity; the default partition has NULL bounds.
CREATE OR REPLACE FUNCTION timepart._partitions(tbl regclass, tz text DEFAULT 'UTC')
RETURNS TABLE (partition_oid oid, schema_name name, partition_name name,
               range_start timestamptz, range_end timestamptz, is_default boolean)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    key_type regtype;
BEGIN
    SELECT a.atttypid::regtype INTO key_type
    FROM pg_catalog.pg_partitioned_table p
    JOIN pg_catalog.pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = tbl;

    RETURN QUERY
    WITH parts AS (
        SELECT c.oid, n.nspname, c.relname,
               pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                       '^FOR VALUES FROM \((.*)\) TO \((.*)\)$') AS b
        FROM pg_catalog.pg_inherits i
        JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE i.inhparent = tbl
    )
    SELECT p.oid, p.nspname, p.relname,
           timepart._bound_value(p.b[1], key_type, tz),
           timepart._bound_value(p.b[2], key_type, tz),
           p.b IS NULL
    FROM parts p
    ORDER BY 4 NULLS FIRST;
END $$;

-- One bound as the catalog prints it ('...' literal, MINVALUE or MAXVALUE) to a moment.
CREATE OR REPLACE FUNCTION timepart._bound_value(printed text, key_type regtype, tz text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
    v text;
BEGIN
    IF printed IS NULL THEN RETURN NULL; END IF;
    IF printed = 'MINVALUE' THEN RETURN '-infinity'; END IF;
    IF printed = 'MAXVALUE' THEN RETURN 'infinity'; END IF;
    v := pg_catalog.btrim(printed, '''');
    RETURN CASE key_type
        WHEN 'timestamptz'::regtype THEN v::timestamptz
        WHEN 'timestamp'::regtype THEN v::timestamp AT TIME ZONE tz
        ELSE v::date::timestamp AT TIME ZONE tz END;
END $$;
