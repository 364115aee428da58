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
