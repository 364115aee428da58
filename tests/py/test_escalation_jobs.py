"""The job procedures (which COMMIT, so they cannot pin search_path) run as a superuser,
as pg_cron runs them, over a table whose owner planted code and an operator: the owner
gains no right."""
import psycopg
import pytest


def test_job_procedures_run_the_owners_code_only_as_the_owner(connect):
    su = connect()
    su.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    su.execute("DROP ROLE IF EXISTS tp_jobs_evil")
    su.execute("CREATE ROLE tp_jobs_evil LOGIN IN ROLE partition_admin")
    su.execute("CREATE SCHEMA jobs_evil AUTHORIZATION tp_jobs_evil")
    su.execute("GRANT CREATE ON SCHEMA public TO tp_jobs_evil")
    su.execute("CREATE TABLE public.jobs_attempts (who name, via text)")
    su.execute("GRANT INSERT ON public.jobs_attempts TO PUBLIC")
    evil = connect()
    evil.execute("SET ROLE tp_jobs_evil")
    evil.execute("""CREATE FUNCTION jobs_evil.esc(via text) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN
            INSERT INTO public.jobs_attempts VALUES (current_user, via);
            BEGIN ALTER ROLE tp_jobs_evil SUPERUSER; EXCEPTION WHEN insufficient_privilege THEN NULL; END;
            RETURN true;
        END $f$""")
    evil.execute("""CREATE FUNCTION jobs_evil.trg() RETURNS trigger LANGUAGE plpgsql AS $f$
        BEGIN PERFORM jobs_evil.esc(TG_NAME); RETURN coalesce(NEW, OLD); END $f$""")
    # An operator that beats pg_catalog's =(oid, oid) for oid = regclass, planted where the job's search_path looks.
    evil.execute("""CREATE FUNCTION public.jobs_evil_eq(oid, regclass) RETURNS boolean LANGUAGE plpgsql AS $f$
        BEGIN PERFORM jobs_evil.esc('operator'); RETURN $1 = $2::oid; END $f$""")
    evil.execute("CREATE OPERATOR public.= (LEFTARG = oid, RIGHTARG = regclass, FUNCTION = public.jobs_evil_eq)")
    evil.execute("CREATE TABLE jobs_evil.ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    evil.execute("SELECT timepart.manage('jobs_evil.ev', '1 month', 2)")
    evil.execute("CREATE TRIGGER row_delete AFTER DELETE ON jobs_evil.ev FOR EACH ROW EXECUTE FUNCTION jobs_evil.trg()")
    evil.execute("INSERT INTO jobs_evil.ev VALUES (1, now() + interval '6 months')")  # lands in the default partition
    evil.execute("SELECT timepart.configure('jobs_evil.ev', '{\"premake\": 8}')")

    # The refused move is a failure of the job (pg_cron records it), after the rest is done.
    with pytest.raises(psycopg.errors.RaiseException, match="maintain failed for 1 table"):
        su.execute("CALL timepart.maintain_each()")
    su.execute("CALL timepart.cleanup_each()")
    su.execute("SELECT timepart.snapshot_stats()")
    su.execute("SELECT count(*) FROM timepart.check_alerts()")

    # A move would fire the owner's row trigger: it is refused, and the row waits (reported).
    assert su.execute("SELECT count(*) FROM ONLY jobs_evil.ev_default").fetchone()[0] == 1, "the waiting row stays"
    whos = {r[0] for r in su.execute("SELECT DISTINCT who FROM public.jobs_attempts").fetchall()}
    assert whos <= {"tp_jobs_evil"}, f"the owner's code ran as {whos}"
    assert "row_delete" not in {r[0] for r in su.execute("SELECT via FROM public.jobs_attempts").fetchall()}
    assert su.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'tp_jobs_evil'").fetchone()[0] is False
