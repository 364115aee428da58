"""The README's examples run verbatim: the quick start in psql, in a fresh database, twice
(the second time as after `make demo`, where its first lines are already done)."""
import os
import re
import subprocess
from pathlib import Path

import psycopg

README = Path(__file__).resolve().parents[2] / "README.md"


def block_after(heading: str, lang: str) -> str:
    """The first fenced block of a language after a heading."""
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {lang} block after {heading!r}"
    return match.group(1)


def psql(dsn: str, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", dsn], input=script,
                          capture_output=True, text=True)


def test_the_quick_start_runs_verbatim_and_again(dsn):
    script = block_after("## Quick start (psql)", "sql")
    first = psql(dsn, script)
    assert first.returncode == 0, first.stderr
    with psycopg.connect(dsn) as conn:
        partition = conn.execute("SELECT 'email_events_' || to_char(now() + interval '7 months', 'YYYY_MM')").fetchone()[0]
        assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (partition,)).fetchone()[0]
        assert conn.execute("SELECT count(*) FROM timepart.maintenance_log WHERE NOT success").fetchone()[0] == 0
    again = psql(dsn, script)
    assert again.returncode == 0, again.stderr
    assert "already exists and is managed" in again.stderr, again.stderr


def test_the_cli_examples_run_verbatim_in_order(dsn):
    """After the quick start, each line of the README's first CLI block (the `source` line
    is what make demo prepares: here the venv's bin is on PATH and PG* name the database)."""
    assert psql(dsn, block_after("## Quick start (psql)", "sql")).returncode == 0
    lines = [line for line in block_after("## The command line and the Python client", "sh").splitlines()
             if line.strip() and not line.startswith("source ")]
    assert len(lines) >= 8
    venv_bin = Path(__file__).resolve().parents[2] / ".venv" / "bin"
    env = {**os.environ, "PATH": f"{venv_bin}:{os.environ['PATH']}", "PGDATABASE": psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]}
    for line in lines:
        done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env)
        assert done.returncode == 0, f"{line}: {done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr and "Error" not in done.stderr, f"{line}: {done.stderr}"
