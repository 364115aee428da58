"""Scheduling from a database that is not cron.database_name (through dblink), and one
real pg_cron run of the maintain job (pg_cron 1.4 has minute granularity: up to ~70 s)."""
import time

import psycopg
import pytest

pytestmark = pytest.mark.needs("pg_cron")


@pytest.fixture
def app(connect, dbname):
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    yield conn
    if conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'dblink'").fetchone()[0]:
        conn.execute("SELECT timepart.unschedule_jobs()")


def cron_jobs(dbname):
    with psycopg.connect(dbname="timepart_test", autocommit=True) as cron:
        return cron.execute("SELECT jobname, database FROM cron.job WHERE jobname LIKE %s ORDER BY 1",
                            (f"timepart-%@{dbname}",)).fetchall()


def test_without_dblink_the_refusal_says_what_to_do(app):
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as err:
        app.execute("SELECT * FROM timepart.schedule_jobs()")
    assert "pg_cron lives in database timepart_test" in str(err.value)
    assert "CREATE EXTENSION dblink" in err.value.diag.message_hint


def test_jobs_scheduled_in_another_database_run_here(app, dbname):
    app.execute("CREATE EXTENSION dblink")
    app.execute("SELECT * FROM timepart.schedule_jobs()")
    app.execute("SELECT * FROM timepart.schedule_jobs()")
    jobs = cron_jobs(dbname)
    assert [name for name, _ in jobs] == [f"timepart-{j}@{dbname}" for j in
                                          ("cleanup", "cron-history", "health", "maintain", "stats")]
    assert {db for name, db in jobs if "cron-history" not in name} == {dbname}
    assert dict(jobs)[f"timepart-cron-history@{dbname}"] == "timepart_test"
    summary = app.execute("SELECT timepart.summary()").fetchone()[0]
    assert [j["in_pg_cron"] for j in summary["jobs"]] == [True] * 5
    assert app.execute("SELECT timepart.unschedule_jobs()").fetchone()[0] == 5
    assert cron_jobs(dbname) == []


def test_drop_extension_takes_the_jobs_along(app, dbname):
    """No timepart job outlives timepart: DROP EXTENSION unschedules them (event trigger)."""
    app.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    app.execute("SELECT * FROM timepart.schedule_jobs()")
    assert len(cron_jobs(dbname)) == 5
    app.execute("DROP EXTENSION timepart")
    assert cron_jobs(dbname) == []
    app.execute("CREATE EXTENSION timepart")  # for the fixture's teardown


def test_pg_cron_runs_maintain(app, dbname):
    app.execute("CREATE EXTENSION IF NOT EXISTS dblink")
    app.execute("CREATE TABLE cron_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    app.execute("INSERT INTO timepart.config (parent, key_column, key_type) VALUES ('cron_ev', 'ts', 'timestamptz')")
    app.execute("SELECT * FROM timepart.schedule_jobs(maintain_schedule => '* * * * *')")
    deadline = time.monotonic() + 75
    runs = []
    while time.monotonic() < deadline:
        with psycopg.connect(dbname="timepart_test", autocommit=True) as cron:
            runs = cron.execute("SELECT d.status, d.return_message FROM cron.job_run_details d JOIN cron.job j USING (jobid) "
                                "WHERE j.jobname = %s", (f"timepart-maintain@{dbname}",)).fetchall()
        if runs and runs[0][0] in ("succeeded", "failed"):
            break
        time.sleep(2)
    assert runs and runs[0][0] == "succeeded", runs
    logged = app.execute("SELECT success, details->'created' FROM timepart.maintenance_log "
                         "WHERE operation_type = 'maintain' AND parent_table = 'public.cron_ev' ORDER BY id").fetchall()
    assert logged and logged[0][0] is True and len(logged[0][1]) == 8  # default, current, 6 ahead: the upcoming pass
    jobs = app.execute("SELECT success, details->>'state' FROM timepart.maintenance_log WHERE operation_type = 'maintain_job' "
                       "ORDER BY id").fetchall()
    assert jobs[:2] == [(True, "started"), (True, "finished")]
