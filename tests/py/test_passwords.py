"""No password reaches the terminal: connection errors (libpq and psycopg quote the
connection string in some), and any other error, are printed with the passwords of --dsn,
DATABASE_URL and PGPASSWORD replaced by ***."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from timepart import db
from timepart.cli import cli

SECRET = "s3cr3t"
COMMANDS = [(["status"], 1), (["health"], 3), (["--json", "health"], 3), (["stats"], 1), (["install"], 1),
            (["maintain"], 1), (["log"], 1)]

# Nothing listens on port 1; the invalid ones are quoted back by libpq.
DSNS = {
    "uri": f"postgresql://u:{SECRET}@127.0.0.1:1/db",
    "keywords": f"host=127.0.0.1 port=1 user=u password={SECRET} dbname=db",
    "quoted keyword": f"host=127.0.0.1 port=1 user=u password='{SECRET}' dbname=db",
    "invalid uri": f"postgresql://u:{SECRET}@[::1:1/db",
    "invalid percent-encoding": f"postgresql://u:{SECRET}%zz@127.0.0.1:1/db",
    "invalid keywords": f"host=127.0.0.1 password={SECRET} {SECRET}",
    "unterminated quote": f"host=127.0.0.1 password='{SECRET}",
}


def assert_scrubbed(result, code):
    assert result.exit_code == code, result.output
    assert SECRET not in result.output and SECRET not in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("args, code", COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
@pytest.mark.parametrize("dsn", DSNS.values(), ids=DSNS.keys())
def test_dsn_passwords_never_print(dsn, args, code):
    assert_scrubbed(CliRunner().invoke(cli, ["--dsn", dsn, *args]), code)


def test_the_invalid_ones_really_quote_the_password():
    """The premise: without the scrubbing, libpq's messages would show it."""
    for name in ("invalid uri", "invalid keywords"):
        with pytest.raises(psycopg.Error) as failed:
            psycopg.connect(DSNS[name])
        assert SECRET in str(failed.value), name


@pytest.mark.parametrize("dsn", [DSNS["uri"], DSNS["invalid uri"], DSNS["invalid percent-encoding"]],
                         ids=["uri", "invalid uri", "invalid percent-encoding"])
def test_database_url_passwords_never_print(dsn):
    for args, code in COMMANDS:
        assert_scrubbed(CliRunner().invoke(cli, args, env={"DATABASE_URL": dsn}), code)


def test_pgpassword_never_prints():
    env = {"PGPASSWORD": SECRET}
    assert_scrubbed(CliRunner().invoke(cli, ["--dsn", f"host=127.0.0.1 {SECRET}", "status"], env=env), 1)


def test_the_console_script_scrubs_too():
    timepart = shutil.which("timepart") or str(Path(sys.executable).parent / "timepart")
    done = subprocess.run([timepart, "--dsn", DSNS["invalid uri"], "health"], capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": DSNS["invalid keywords"]}, timeout=60)
    assert done.returncode == 3 and SECRET not in done.stdout + done.stderr
    assert done.stderr.startswith("Error: cannot connect to the database: ")


def test_errors_after_connecting_are_scrubbed_too(dsn):
    """A password that also appears in a server's message (here, as a table name)."""
    with_password = f"{dsn} password={SECRET}"  # the harness's cluster trusts local connections
    assert CliRunner().invoke(cli, ["--dsn", with_password, "install"]).exit_code == 0
    for args, code in ((["stats", "--table", SECRET], 1), (["health", "--table", SECRET], 3)):
        result = CliRunner().invoke(cli, ["--dsn", with_password, *args])
        assert_scrubbed(result, code)
        assert 'relation "***" does not exist' in result.stderr


@pytest.mark.parametrize("text, expected", [
    ("bad: postgresql://u:pw@h/db", "bad: postgresql://u:***@h/db"),
    ("bad: postgres://:pw@h", "bad: postgres://:***@h"),
    ('bad "postgresql://u:p/w@[::1"', 'bad "postgresql://u:***@[::1"'),
    ("host=h password=pw dbname=d", "host=h password=*** dbname=d"),
    ("host=h PASSWORD = 'p w\\'x' dbname=d", "host=h PASSWORD = *** dbname=d"),
    ("nothing to hide: port 1", "nothing to hide: port 1"),
])
def test_scrub_patterns(text, expected):
    assert db.scrub(text) == expected


def test_scrub_finds_the_passwords_of_every_source():
    assert set(db.passwords("host=h password='a b'", env={"PGPASSWORD": "c"})) == {"a b", "c"}
    assert set(db.passwords(None, env={"DATABASE_URL": "postgresql://u:d%40e@h/db"})) >= {"d@e"}
    assert db.passwords("postgresql://u:f@[::1", env={}) == ["f"]  # invalid: found without libpq
    assert db.scrub("x d@e y d%40e", db.passwords("postgresql://u:d%40e@h/db", env={})) == "x *** y ***"
