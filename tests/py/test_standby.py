"""A real hot standby of the test cluster (pg_basebackup -R): alerts, health and the CLI
answer there, read-only, with what the primary knows (#27)."""
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

BIN = Path(os.environ.get("TIMEPART_PG_BIN", "/nonexistent"))
ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not (BIN / "pg_basebackup").exists(),
                                reason="the server's programs run inside the Debian 13 root for this major; "
                                       "the standby test runs on 15, 16 and 18")


def as_owner(args, **kwargs):
    """A server program as the cluster's owner (postgres when the tests run as root)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run(prefix + [str(a) for a in args], capture_output=True, text=True, cwd="/", **kwargs)


@pytest.fixture
def standby(make_database):
    dsn = make_database()
    folder = Path(tempfile.mkdtemp(prefix="tp-standby-", dir="/tmp"))
    folder.chmod(0o755)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = int(os.environ["PGPORT"]) + 1000
    data = folder / "data"
    done = as_owner([BIN / "pg_basebackup", "-h", os.environ["PGHOST"], "-p", os.environ["PGPORT"], "-U", "postgres",
                     "-D", data, "-R", "-X", "stream", "-c", "fast"])
    assert done.returncode == 0, done.stderr
    as_owner(["sh", "-c", f"printf \"port = {port}\\nunix_socket_directories = '{folder}'\\n"
                          f"shared_preload_libraries = ''\\n\" >> {data}/postgresql.auto.conf"])
    done = as_owner([BIN / "pg_ctl", "-D", data, "-l", folder / "log", "-w", "-t", "60", "start"])
    assert done.returncode == 0, done.stdout + done.stderr + (folder / "log").read_text()
    try:
        yield dsn, psycopg.conninfo.make_conninfo(dsn, host=str(folder), port=port)
    finally:
        as_owner([BIN / "pg_ctl", "-D", data, "-m", "immediate", "stop"])
        shutil.rmtree(folder, ignore_errors=True)


def caught_up(primary, replica):
    with psycopg.connect(primary, autocommit=True) as conn:
        lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with psycopg.connect(replica, autocommit=True) as conn:
                if conn.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()[0]:
                    return
        except psycopg.OperationalError:
            pass
        time.sleep(0.2)
    raise AssertionError("the standby did not catch up in 30 s")


def test_alerts_health_and_the_cli_answer_on_a_standby(standby):
    primary, replica = standby
    with psycopg.connect(primary, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("CREATE TABLE ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        conn.execute("SELECT timepart.manage('ev', '1 month', 2)")
        conn.execute("SELECT count(*) FROM timepart.check_alerts()")  # the primary's lifecycle: nothing open
        conn.execute("INSERT INTO ev VALUES (1, now() + interval '20 years')")  # a row waits in the default partition
        first = conn.execute("SELECT first_seen FROM timepart.check_alerts() WHERE alert_type = 'rows_in_default_partition'"
                             ).fetchone()[0]
        log_rows = conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0]
    caught_up(primary, replica)
    with psycopg.connect(replica, autocommit=True) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]
        alerts = {r[0]: r for r in conn.execute("SELECT alert_type, first_seen, is_new FROM timepart.check_alerts()")}
        assert "rows_in_default_partition" in alerts, alerts
        assert alerts["rows_in_default_partition"][1] == first and alerts["rows_in_default_partition"][2] is False, \
            "the standby reports the primary's lifecycle"
        assert conn.execute("SELECT timepart.health()->>'status'").fetchone()[0] == "warning"
        assert conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0] == log_rows
    env = {**os.environ, "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ['PATH']}"}
    cli = subprocess.run(["timepart", "--dsn", replica, "alerts"], capture_output=True, text=True, env=env)
    assert cli.returncode == 0 and "rows_in_default_partition" in cli.stdout, cli.stdout + cli.stderr
    cli = subprocess.run(["timepart", "health", "--dsn", replica], capture_output=True, text=True, env=env)
    assert cli.returncode == 1 and "read-only" not in cli.stderr, cli.stdout + cli.stderr
