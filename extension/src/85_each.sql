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
-- again, a bounded number of times. maintain makes each table's current and later
-- periods first, in a pass of their own that commits, so nothing later (a move of old
-- rows) can cost them. One table's failure does not stop the others, and a cancel by
-- statement_timeout is caught and logged (the timer fires once per statement: the rest of
-- the job runs untimed); a person's cancel ends the job. The run is logged as it starts
-- (committed: a run that dies leaves that row alone, and the run_interrupted alert says
-- so) and as it ends; when any table failed, the job then ends with an error, so pg_cron
-- records it as failed.
CREATE OR REPLACE PROCEDURE timepart._each(operation pg_catalog.text, premake pg_catalog.int4)
LANGUAGE plpgsql AS $$
DECLARE
    t pg_catalog.regclass;
    left_over pg_catalog.int4;
    res pg_catalog.jsonb;
    failed pg_catalog.text[] := '{}'::pg_catalog.text[];
    table_failed pg_catalog.text;
    run pg_catalog.jsonb := pg_catalog.jsonb_build_object('run', pg_catalog.md5(pg_catalog.concat(pg_catalog.clock_timestamp(),
                                pg_catalog.pg_backend_pid())), 'pid', pg_catalog.pg_backend_pid());
    started pg_catalog.timestamptz := pg_catalog.clock_timestamp();
BEGIN
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    CALL timepart._log(operation OPERATOR(pg_catalog.||) '_job', NULL, NULL, true,
                       run OPERATOR(pg_catalog.||) '{"state": "started"}', NULL, started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    FOR t IN SELECT j FROM timepart._job_tables() j LOOP
        table_failed := NULL;  -- the table's last failure: what its last pass left
        FOR i IN 0..10000 LOOP
            CONTINUE WHEN i OPERATOR(pg_catalog.=) 0 AND operation OPERATOR(pg_catalog.<>) 'maintain';
            -- What a failed pass leaves: after the upcoming pass, the rest; else nothing.
            left_over := CASE WHEN i OPERATOR(pg_catalog.=) 0 THEN 1 ELSE 0 END;
            BEGIN
                IF i OPERATOR(pg_catalog.=) 0 THEN  -- the current and later periods, committed first
                    PERFORM pg_catalog.set_config('timepart.job_pass', 'upcoming', true);
                END IF;
                res := CASE WHEN operation OPERATOR(pg_catalog.=) 'maintain' THEN timepart.maintain(t, premake)
                            ELSE timepart.cleanup(t) END;
                PERFORM pg_catalog.set_config('timepart.job_pass', '', true);
                IF NOT (res OPERATOR(pg_catalog.->>) 'success')::pg_catalog.bool THEN
                    table_failed := pg_catalog.format('%s: %s', t, timepart._joined_errors(res OPERATOR(pg_catalog.->) 'errors'));
                ELSE
                    table_failed := NULL;
                    left_over := (res OPERATOR(pg_catalog.->>) 'left_partitions')::pg_catalog.int4;
                END IF;
            EXCEPTION
                WHEN query_canceled THEN
                    -- The timer's cancel, told by the time it came (in any language): a
                    -- person's cancel ends the job.
                    IF pg_catalog.current_setting('statement_timeout') OPERATOR(pg_catalog.=) '0'
                       OR pg_catalog.clock_timestamp() OPERATOR(pg_catalog.-) pg_catalog.statement_timestamp()
                          OPERATOR(pg_catalog.<) pg_catalog.current_setting('statement_timeout')::pg_catalog.interval THEN
                        RAISE;
                    END IF;
                    table_failed := pg_catalog.format('%s: %s', t, SQLERRM);
                    CALL timepart._log(operation, t, NULL, false, run OPERATOR(pg_catalog.||) '{"cancelled": "statement_timeout"}',
                                       pg_catalog.format('%s of %s was cancelled by statement_timeout (%s); the next run goes on '
                                           'from here. A single move longer than that never ends: give the job''s role '
                                           'its own (ALTER ROLE ... SET statement_timeout = 0), or run maintain by hand',
                                           operation, t, pg_catalog.current_setting('statement_timeout')), started);
                WHEN OTHERS THEN
                    RAISE WARNING 'timepart: % of % failed: %', operation, t, SQLERRM;
                    table_failed := pg_catalog.format('%s: %s', t, SQLERRM);
                    CALL timepart._log(operation, t, NULL, false, run, SQLERRM, started);
            END;
            COMMIT;
            PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
            -- Done when nothing is left: after the upcoming pass, no older period waits.
            EXIT WHEN left_over OPERATOR(pg_catalog.=) 0;
        END LOOP;
        IF table_failed IS NOT NULL THEN
            failed := failed OPERATOR(pg_catalog.||) table_failed;
        END IF;
    END LOOP;
    CALL timepart._log(operation OPERATOR(pg_catalog.||) '_job', NULL, NULL, pg_catalog.cardinality(failed) OPERATOR(pg_catalog.=) 0,
                       run OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('state', 'finished', 'failed', pg_catalog.to_jsonb(failed)),
                       CASE WHEN pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN pg_catalog.array_to_string(failed, '; ') END,
                       started);
    COMMIT;
    PERFORM pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true);
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'timepart: % failed for % table(s)', operation, pg_catalog.cardinality(failed)
            USING ERRCODE = 'P0001', DETAIL = pg_catalog.array_to_string(failed, '; '),
                  HINT = 'The other tables were done and committed. See SELECT * FROM timepart.get_maintenance_log(); '
                         'for each failure, fix its cause, and run the job again.';
    END IF;
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
