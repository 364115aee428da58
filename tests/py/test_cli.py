"""The operation commands (maintain, cleanup, stats, health, summary, log, alerts):
output, JSON and exit codes; connection errors; the real console script."""
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from timepart.cli import cli

TIMEPART = shutil.which("timepart") or str(Path(sys.executable).parent / "timepart")


@pytest.fixture(scope="module")
def db(dsn):
    """The module's database with timepart and the seed's email_events table."""
    result = CliRunner().invoke(cli, ["--dsn", dsn, "install", "--mode", "extension", "--with-email-events"])
    assert result.exit_code == 0, result.output
    with psycopg.connect(dsn, autocommit=True) as conn:
        # A managed table with no partition for the current period: critical health.
        conn.execute("CREATE TABLE stale (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)")
        conn.execute("SELECT timepart.manage('stale', '1 month', 1, NULL, false, '100 ms', 'UTC', '2020-01-15')")
    return dsn


def run(dsn, *args, **kwargs):
    result = CliRunner().invoke(cli, ["--dsn", dsn, *args], **kwargs)
    assert "Traceback" not in result.output
    return result


def month(conn, offset):
    """The name of the email_events partition `offset` months from the current one."""
    return conn.execute("SELECT 'email_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
                        " + %s * interval '1 month', 'YYYY_MM')", (offset,)).fetchone()[0]


def add_events(conn, at, n):
    conn.execute("INSERT INTO email_events (workspace_id, campaign_id, lead_id, event_type, created_at)"
                 " SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'open', %s"
                 " FROM generate_series(1, %s)", (at, n))


# ---- maintain ---------------------------------------------------------------------

def test_maintain_creates_what_is_missing(db, connect):
    conn = connect()
    result = run(db, "maintain", "--table", "email_events", "--premake", "8")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("maintain: ok in ")
    assert lines[1:] == [f"  created {month(conn, 7)}", f"  created {month(conn, 8)}"]
    again = run(db, "--json", "maintain", "--table", "email_events", "--premake", "8")
    assert again.exit_code == 0, again.output
    data = json.loads(again.output)
    assert (data["success"], data["created_partitions"], data["dropped_partitions"], data["errors"]) == \
        (True, [], [], [])
    assert isinstance(data["execution_time_ms"], (int, float))


def test_maintain_that_fails_exits_1(db, connect):
    reader = connect(autocommit=False)
    reader.execute("SELECT count(*) FROM email_events")  # holds a lock maintain must wait for
    result = run(db, "--json", "maintain", "--table", "email_events", "--premake", "9")
    reader.rollback()
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["success"] is False and data["created_partitions"] == []
    assert "lock" in data["errors"][0]


def test_maintain_refuses_a_missing_table_and_a_bad_premake(db):
    result = run(db, "maintain", "--table", "no_such_table")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == 'Error: relation "no_such_table" does not exist\n'
    result = run(db, "maintain", "--premake", "0")
    assert result.exit_code == 2
    assert "Invalid value for '--premake'" in result.stderr


# ---- cleanup ----------------------------------------------------------------------

def test_cleanup_dry_run_then_for_real(db, connect):
    conn = connect()
    old = conn.execute("SELECT timepart.create_partition('email_events', date_trunc('month', now()) - interval '3 years',"
                       " date_trunc('month', now()) - interval '35 months')").fetchone()[0].split(".")[-1]
    add_events(conn, conn.execute("SELECT date_trunc('month', now()) - interval '3 years' + interval '1 day'").fetchone()[0], 3)

    result = run(db, "--json", "cleanup", "--table", "email_events", "--retention", "12 months", "--dry-run")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["success"] is True and data["dry_run"] is True
    assert [old, 3] in data["dropped_partitions"]
    assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (old,)).fetchone()[0]

    result = run(db, "cleanup", "--table", "email_events", "--retention", "12 months")
    assert result.exit_code == 0, result.output
    assert f"  dropped {old} (3 rows)" in result.output.splitlines()
    assert conn.execute("SELECT to_regclass(%s)", (old,)).fetchone()[0] is None


def test_cleanup_refuses_a_retention_that_is_not_an_interval(db):
    result = run(db, "cleanup", "--table", "email_events", "--retention", "soon")
    assert result.exit_code == 1
    assert result.stderr.startswith('Error: invalid input syntax for type interval: "soon"')


# ---- stats, health, summary -------------------------------------------------------

def test_stats_lists_each_partition_as_json_and_as_a_table(db, connect):
    conn = connect()
    add_events(conn, conn.execute("SELECT date_trunc('month', now()) + interval '2 days'").fetchone()[0], 4)
    current = month(conn, 0)
    data = json.loads(run(db, "--json", "stats", "--table", "email_events").output)
    row, = [r for r in data if r["partition_name"] == current]
    assert row["period"] == current[-7:] and row["parent_table"] == "public.email_events"
    assert row["name"] == current, "the seed's /stats key"
    assert row["record_count"] >= 4 if not row["exact"] else row["record_count"] == 4
    result = run(db, "stats", "--table", "email_events")
    assert result.exit_code == 0, result.output
    assert result.output.split()[:6] == ["partition_name", "period", "record_count", "size_mb", "oldest_record",
                                         "newest_record"]
    assert any(line.startswith(current) for line in result.output.splitlines())


def test_health_exit_code_follows_the_status(db):
    result = run(db, "--json", "health", "--table", "stale")
    data = json.loads(result.output)
    assert data["status"] == "critical"
    assert result.exit_code == 2
    assert data["issues"] and data["recommendations"]
    result = run(db, "health", "--table", "email_events")
    status = result.output.splitlines()[0].split(": ")[1]
    assert result.exit_code == {"healthy": 0, "warning": 1, "critical": 2, "error": 3}[status]


def test_health_exits_3_on_bad_usage_or_a_missing_table(db):
    result = run(db, "health", "--no-such-option")
    assert result.exit_code == 3
    assert "No such option" in result.stderr
    result = run(db, "health", "--table", "no_such_table")
    assert (result.exit_code, result.stderr) == (3, 'Error: relation "no_such_table" does not exist\n')


def test_summary_json_is_the_sql_document(db, connect):
    result = run(db, "--json", "summary", "--table", "email_events")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    sql = connect().execute("SELECT timepart.summary('email_events')").fetchone()[0]
    assert set(data) == set(sql) == {"health", "stats", "configuration", "jobs", "recent_log", "open_alerts",
                                     "generated_at"}
    assert data["configuration"] == sql["configuration"]
    assert [s["partition_name"] for s in data["stats"]] == [s["partition_name"] for s in sql["stats"]]


def test_summary_for_people_is_in_sections(db, connect):
    connect().execute("SELECT * FROM timepart.check_alerts('stale')")  # opens stale's alerts
    result = run(db, "summary")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("timepart summary, 20")
    sections = [line for line in lines if line.startswith("== ")]
    assert sections == ["== health", "== tables", "== partitions", "== jobs", "== recent log (newest 10)", "== alerts"]
    body = {title: lines[lines.index(title) + 1:] for title in sections}
    assert body["== health"][0] == "status: critical"  # stale has no current partition
    assert body["== tables"][0].split() == ["parent", "partition_interval", "premake", "retention", "time_zone",
                                            "default_partition"]
    assert body["== tables"][2].split()[:4] == ["public.email_events", "1", "mon", "6"]
    assert any(line.startswith(f"public.email_events  {month(connect(), 0)} ") for line in body["== partitions"])
    assert body["== jobs"][0].startswith("none scheduled")
    log = body["== recent log (newest 10)"]
    newest = connect().execute("SELECT operation_type FROM timepart.maintenance_log ORDER BY created_at DESC, id DESC"
                               " LIMIT 10").fetchall()
    assert [line.split()[2] for line in log[2:12]] == [r[0] for r in newest]
    assert log[12] == "", "ten rows, then the next section"
    assert any(line.split()[:3] == ["critical", "missing_current_partition", "public.stale"]
               for line in body["== alerts"])


# ---- log and alerts ---------------------------------------------------------------

def test_log_prints_the_newest_rows_first_with_every_field(db):
    result = run(db, "--json", "log", "--limit", "2")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 2
    assert rows[0]["created_at"] >= rows[1]["created_at"]
    assert set(rows[0]) == {"id", "operation_type", "parent_table", "partition_name", "success", "created_at",
                            "details", "error", "duration", "run_by", "run_as"}
    result = run(db, "log", "--limit", "3")
    assert result.output.split()[:6] == ["created_at", "operation_type", "parent_table", "partition_name",
                                         "success", "error"]
    assert len(result.output.splitlines()) == 5
    assert run(db, "log", "--limit", "0").exit_code == 2


def test_alerts_lists_the_open_alerts_of_a_table(db):
    result = run(db, "--json", "alerts", "--table", "stale")
    assert result.exit_code == 0, result.output
    alerts = json.loads(result.output)
    assert any(a["severity"] == "critical" and a["parent_table"] == "public.stale" for a in alerts)
    result = run(db, "alerts", "--table", "stale")
    assert result.output.split()[:5] == ["severity", "alert_type", "parent_table", "partition_name", "message"]


def test_alerts_follow_prints_alerts_from_the_table_not_the_payload(db, connect):
    """The real console script, LISTENing; stopped like Ctrl-C would."""
    proc = subprocess.Popen([TIMEPART, "--dsn", db, "alerts", "--follow"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    conn = connect()
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute("CREATE TABLE follow_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
    conn.execute("SELECT timepart.manage('follow_ev', '1 month', 1, NULL, false, '100 ms', 'UTC', '2024-03-15')")
    conn.execute("SELECT * FROM timepart.check_alerts('follow_ev', '2024-03-15')")
    # A forged payload only rings the bell: what is printed comes from the alerts table.
    payload = {"alert_type": "forged_alert", "severity": "critical", "parent_table": "stale"}
    printed = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the command is listening and prints our table's alert
            conn.execute("SELECT pg_notify('timepart_alerts', %s)", (json.dumps(payload),))
            try:
                printed.append(json.loads(lines.get(timeout=0.5)))
            except queue.Empty:
                continue
            if printed[-1]["parent_table"] == "public.follow_ev":
                break
        else:
            pytest.fail("no alert printed: " + proc.stderr.read() if proc.poll() is not None else "no alert printed")
        assert printed[-1]["alert_type"] == "insufficient_future_partitions"
        assert all(p["alert_type"] != "forged_alert" for p in printed), "a forged payload is never printed"
    finally:
        proc.send_signal(2)  # SIGINT, as Ctrl-C
        proc.wait(timeout=10)
    assert proc.returncode == 0
    assert "Traceback" not in proc.stderr.read()


# ---- connections ------------------------------------------------------------------

def test_console_script_takes_database_url_and_dsn_wins(db, dbname):
    env = {**os.environ, "DATABASE_URL": f"postgresql:///{dbname}?host={os.environ['PGHOST']}",
           "PGDATABASE": "postgres"}
    done = subprocess.run([TIMEPART, "--json", "status"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["mode"] == "extension"
    env["DATABASE_URL"] = "dbname=no_such_database_tp"
    done = subprocess.run([TIMEPART, "--dsn", db, "--json", "status"], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    done = subprocess.run([TIMEPART, "status"], env=env, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.startswith("Error: cannot connect to the database: ")
    assert 'database "no_such_database_tp" does not exist' in done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.parametrize("dsn_suffix, reason", [
    ("port=1", "No such file or directory"),  # nothing listens there: refused
    ("dbname=no_such_database_tp", 'database "no_such_database_tp" does not exist'),
    ("user=no_such_role_tp", 'role "no_such_role_tp" does not exist'),
])
def test_connection_errors_are_one_line(dsn_suffix, reason):
    dsn = f"host={os.environ['PGHOST']} {dsn_suffix}"
    for args, code in ((["status"], 1), (["maintain"], 1), (["health"], 3)):
        result = CliRunner().invoke(cli, ["--dsn", dsn, *args])
        assert result.exit_code == code, (args, result.output)
        assert result.stderr.startswith("Error: cannot connect to the database: ")
        assert reason in result.stderr and len(result.stderr.splitlines()) == 1
        assert "Traceback" not in result.output


def test_missing_privileges_are_one_line(make_database):
    other = make_database()
    role = "tp_plain_" + os.urandom(3).hex()
    with psycopg.connect(other, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN")
    try:
        result = CliRunner().invoke(cli, ["--dsn", f"{other} user={role}", "install", "--mode", "extension"])
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: permission denied ")
        result = CliRunner().invoke(cli, ["--dsn", f"{other} user={role}", "install", "--mode", "script"])
        assert result.exit_code == 1
        assert result.stderr.startswith("Error: permission denied for ")
    finally:
        with psycopg.connect(other, autocommit=True) as conn:
            conn.execute(f"DROP ROLE {role}")
