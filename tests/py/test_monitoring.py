"""Watching timepart where DBAs look: Debian's postgres_exporter serving timepart.metrics
through monitoring/postgres_exporter.yml, the Prometheus rules checked and unit-tested
by promtool, and `timepart report` drawn by a real (headless) Chromium."""
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import zlib
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from timepart.cli import cli

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "monitoring"


@pytest.fixture(scope="module")
def db(dsn):
    """A monthly table with rows, a snapshot, a row waiting in the default partition and its alert."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
        conn.execute("CREATE TABLE mon_ev (id bigint, ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        conn.execute("SELECT timepart.manage('mon_ev', '1 month', 3)")
        conn.execute("INSERT INTO mon_ev SELECT g, date_trunc('month', now()) + g * interval '1 minute'"
                     " FROM generate_series(1, 500) g")
        conn.execute("INSERT INTO mon_ev_default VALUES (0, now() + interval '10 years')")
        conn.execute("SELECT timepart.snapshot_stats()")
        conn.execute("SELECT count(*) FROM timepart.check_alerts('mon_ev')")
    return dsn


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_postgres_exporter_serves_the_timepart_metrics(db):
    exporter = shutil.which("prometheus-postgres-exporter")
    assert exporter, "Debian's prometheus-postgres-exporter is installed by the harness (tools/cluster.sh deps)"
    info = psycopg.conninfo.conninfo_to_dict(db)
    dsn = (f"host={os.environ['PGHOST']} port={os.environ['PGPORT']} user={os.environ['PGUSER']} "
           f"dbname={info['dbname']} sslmode=disable")
    port = free_port()
    proc = subprocess.Popen([exporter, f"--extend.query-path={MONITORING / 'postgres_exporter.yml'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--disable-settings-metrics"],
                            env={**os.environ, "DATA_SOURCE_NAME": dsn}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        body, deadline = "", time.monotonic() + 30
        while time.monotonic() < deadline and "timepart_future_partitions" not in body:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                time.sleep(0.3)
        lines = [line for line in body.splitlines() if line.startswith("timepart_")]
        assert lines, f"no timepart_ metrics in /metrics:\n{body[-2000:]}"
        samples = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines}
        month = time.strftime("%Y_%m", time.gmtime())
        assert samples[f'timepart_partition_rows{{exact="true",partition="mon_ev_{month}",period="{month}",'
                       f'server="{os.environ["PGHOST"]}:{os.environ["PGPORT"]}",table="public.mon_ev"}}'] == 500
        by_name = {}
        for key, value in samples.items():
            by_name.setdefault(key.split("{")[0], []).append(value)
        assert by_name["timepart_future_partitions"] == [3]
        assert by_name["timepart_default_partition_rows"] == [1]
        assert by_name["timepart_health_status"] == [1]
        assert by_name["timepart_open_alerts"] == [1]
        assert by_name["timepart_maintenance_failures_total"] == [0]
        assert by_name["timepart_partition_size_bytes"] and min(by_name["timepart_partition_size_bytes"]) >= 0
        assert abs(by_name["timepart_last_maintenance_success_timestamp_seconds"][0] - time.time()) < 600
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_alerting_rules_pass_promtool():
    promtool = shutil.which("promtool")
    assert promtool, "Debian's prometheus package (promtool) is installed by the harness"
    check = subprocess.run([promtool, "check", "rules", "timepart-rules.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check.stdout + check.stderr
    test = subprocess.run([promtool, "test", "rules", "timepart-rules.test.yml"], cwd=MONITORING, capture_output=True, text=True)
    assert test.returncode == 0 and "SUCCESS" in test.stdout, test.stdout + test.stderr


def _png_distinct_bytes(path):
    """How many distinct byte values the PNG's pixel data holds: a blank page has very few."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    i, idat = 8, b""
    while i < len(data):
        length = int.from_bytes(data[i:i + 4], "big")
        kind = data[i + 4:i + 8]
        if kind == b"IDAT":
            idat += data[i + 8:i + 8 + length]
        i += 12 + length
    return len(set(zlib.decompress(idat)))


def test_the_report_draws_its_charts_in_a_browser(db, tmp_path):
    page = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["--dsn", db, "report", "--output", str(page)])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {page}\n"
    text = page.read_text()
    assert "<script" not in text and "http://" not in text and "https://" not in text, "the page must fetch nothing"
    for title in ("Partition sizes of public.mon_ev", "Partition rows of public.mon_ev", "Growth of public.mon_ev",
                  "Future-partition runway of public.mon_ev", "Open alerts", "Recent maintenance log"):
        assert title in text
    assert "mon_ev_default (default)" in text and "rows_in_default_partition" in text
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by the harness"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1100,1800"]
    shot = tmp_path / "report.png"
    subprocess.run([chromium, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert _png_distinct_bytes(shot) > 50, "the screenshot is blank"
    dom = subprocess.run([chromium, *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert dom.count("<svg") >= 4 and dom.count("<rect") >= 5, "the browser built the charts"
    assert "Partition sizes of public.mon_ev" in dom
    if os.environ.get("TIMEPART_SAVE_REPORT_PNG"):
        shutil.copy(shot, os.environ["TIMEPART_SAVE_REPORT_PNG"])
