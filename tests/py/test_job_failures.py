"""A failure is a failure (#27): the jobs' procedures (maintain_each, cleanup_each, what
pg_cron runs) end with an error when a table's work failed, after committing every other
table's; a statement_timeout never costs the current period; a run that dies is visible."""
import threading
import time

import psycopg
import pytest


@pytest.fixture
def db(make_database):
    dsn = make_database()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
    return dsn


def month(conn, offset):
    return conn.execute("SELECT to_char(date_trunc('month', now()) + %s * interval '1 month', 'YYYY_MM')",
                        (offset,)).fetchone()[0]


def exists(conn, name):
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def log(conn, operation):
    return conn.execute("SELECT success, details, error FROM timepart.maintenance_log WHERE operation_type = %s ORDER BY id",
                        (operation,)).fetchall()


def test_a_job_whose_table_failed_ends_with_an_error_after_doing_the_others(db):
    with psycopg.connect(db, autocommit=True) as conn:
        for t in ("a_ev", "b_ev"):
            conn.execute(f"CREATE TABLE {t} (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
            conn.execute(f"SELECT timepart.manage('{t}', '1 month', 2)")
            conn.execute(f"DROP TABLE {t}_{month(conn, 2)}")
        # A table in the way of a_ev's partition name: a_ev's maintain fails.
        conn.execute(f"CREATE TABLE a_ev_{month(conn, 2)} (x int)")
        with pytest.raises(psycopg.errors.RaiseException) as failed:
            conn.execute("CALL timepart.maintain_each()")
        assert "maintain failed for 1 table(s)" in str(failed.value)
        assert "a_ev" in failed.value.diag.message_detail and failed.value.diag.message_hint
        assert exists(conn, f"b_ev_{month(conn, 2)}"), "the other table's partition was made and committed"
        runs = log(conn, "maintain_job")
        assert [r[1]["state"] for r in runs] == ["started", "finished"] and runs[1][0] is False and "a_ev" in runs[1][2]
        alerts = conn.execute("SELECT alert_type FROM timepart.check_alerts()").fetchall()
        assert ("maintenance_failing",) in alerts


def test_a_statement_timeout_never_costs_the_current_period(db):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        conn.execute("SELECT timepart.manage('ev', '1 month', 1)")
        current = f"ev_{month(conn, 0)}"
        conn.execute(f"DROP TABLE {current}")
        # A month three back waits in the default partition: a move longer than the timeout.
        conn.execute("INSERT INTO ev SELECT g, date_trunc('month', now()) - interval '3 months' + g * interval '1 second' "
                     "FROM generate_series(1, 1500000) g")
        conn.execute("INSERT INTO ev VALUES (0, now())")  # and a row of the current month
        conn.execute("SET statement_timeout = '1s'")
        with pytest.raises(psycopg.errors.RaiseException) as failed:
            conn.execute("CALL timepart.maintain_each()")
        assert "statement timeout" in failed.value.diag.message_detail
        conn.execute("SET statement_timeout = 0")
        assert exists(conn, current), "the current period was made and committed before the move was cancelled"
        assert conn.execute(f"SELECT count(*) FROM {current}").fetchone()[0] == 1
        cancelled = [r for r in log(conn, "maintain") if r[1].get("cancelled")]
        assert cancelled and "statement_timeout" in cancelled[0][2]
        # The next run, without the timeout, goes on from there.
        conn.execute("CALL timepart.maintain_each()")
        assert conn.execute("SELECT count(*) FROM ev_default").fetchone()[0] == 0


def test_a_run_that_dies_is_visible_and_the_next_one_resolves_it(db):
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        conn.execute("SELECT timepart.manage('ev', '1 month', 1)")
        conn.execute("INSERT INTO ev SELECT g, date_trunc('month', now()) - interval '3 months' + g * interval '1 second' "
                     "FROM generate_series(1, 2000000) g")
        victim = psycopg.connect(db, autocommit=True)
        pid = victim.info.backend_pid
        worker = threading.Thread(target=lambda: pytest.raises(psycopg.Error, victim.execute, "CALL timepart.maintain_each()"))
        worker.start()
        deadline = time.time() + 20
        while not log(conn, "maintain_job") and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        worker.join(30)
        deadline = time.time() + 10
        while conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0] and time.time() < deadline:
            time.sleep(0.05)
        assert [r[1]["state"] for r in log(conn, "maintain_job")] == ["started"]
        alerts = {a[0]: a[1] for a in conn.execute("SELECT alert_type, message FROM timepart.check_alerts()")}
        assert "run_interrupted" in alerts and str(pid) in alerts["run_interrupted"], alerts
        assert conn.execute("SELECT timepart.health()->>'status'").fetchone()[0] in ("warning", "critical")
        conn.execute("CALL timepart.maintain_each()")
        assert "run_interrupted" not in {a[0] for a in conn.execute("SELECT alert_type FROM timepart.check_alerts()")}
