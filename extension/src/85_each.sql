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
COMMENT ON PROCEDURE timepart.maintain_each(integer) IS 'maintain() every managed table in slices of its lock budget when traffic waits, committing after each (the maintain job)';

CREATE OR REPLACE PROCEDURE timepart.cleanup_each()
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    CALL timepart._each('cleanup', NULL);
END $$;
COMMENT ON PROCEDURE timepart.cleanup_each() IS 'cleanup() every managed table in slices of its lock budget, committing after each (the cleanup job)';
