-- The maintenance log: one row per operation outcome. Callers write it outside the
-- sub-transaction that failed, so a failure survives its own rollback.

CREATE OR REPLACE FUNCTION timepart._log(operation text, parent regclass, partition_name text,
                                         ok boolean, details jsonb, err text, started timestamptz)
RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
/* PL/pgSQL on purpose: the log's guard accepts rows only from timepart's PL/pgSQL
   functions, and sets who and when itself. */
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO timepart.maintenance_log
        (operation_type, parent_table, partition_name, success, details, error, duration)
    VALUES (operation, parent::text, partition_name, ok, coalesce(details, '{}'), err,
            pg_catalog.clock_timestamp() - started)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

CREATE OR REPLACE FUNCTION timepart.get_maintenance_log(max_rows integer DEFAULT 100)
RETURNS SETOF timepart.maintenance_log LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF max_rows IS NULL OR max_rows < 1 THEN
        RAISE EXCEPTION 'log limit must be a positive number' USING ERRCODE = '22023',
            DETAIL = format('Got %s.', coalesce(max_rows::text, 'NULL')),
            HINT = 'Pass how many of the newest rows you want, e.g. 100.';
    END IF;
    RETURN QUERY SELECT * FROM timepart.maintenance_log l ORDER BY l.created_at DESC, l.id DESC LIMIT max_rows;
END $$;
COMMENT ON FUNCTION timepart.get_maintenance_log(integer) IS 'The newest maintenance log rows, newest first';
