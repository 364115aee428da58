"""Names and messages from the database never drive the terminal: a managed table named with
escape sequences (a window title, a screen clear) and a bidi override is printed by every
human view with those characters as visible escapes; --json stays valid JSON, ASCII only."""
import json
import re

import psycopg
import pytest
from click.testing import CliRunner
from psycopg import sql

from timepart.cli import cli
from timepart.output import safe

# OSC "set the window title", CSI "clear the screen", DEL, a right-to-left override.
NAME = "ev\x1b]0;pwned\x07\x1b[2J\x7f\u202eents"
SHOWN = "ev\\x1b]0;pwned\\x07\\x1b[2J\\x7f\\u202eents"
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")  # all but \n


@pytest.fixture(scope="module")
def db(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        table = sql.Identifier(NAME)
        conn.execute(sql.SQL("CREATE TABLE {} (id bigint, at timestamptz NOT NULL) PARTITION BY RANGE (at)").format(table))
        # Managed as of 2020: old partitions (for cleanup) and none for the current period, a
        # critical alert (for health and alerts) whose message names the table.
        conn.execute("SELECT timepart.manage(%s::regclass, '1 month', 1, NULL, true, '100 ms', 'UTC', '2020-01-15')",
                     (table.as_string(conn),))
        conn.execute(sql.SQL("INSERT INTO {} VALUES (1, '2020-01-20')").format(table))
        conn.execute("SELECT count(*) FROM timepart.check_alerts()")
    return dsn


def run(dsn, *args):
    result = CliRunner().invoke(cli, ["--dsn", dsn, *args])
    assert "Traceback" not in result.output
    return result


def assert_safe(text):
    raw = RAW.findall(text)
    assert not raw, f"raw control characters {raw!r} in {text!r}"


@pytest.mark.parametrize("args, code", [
    (["log"], 0), (["stats"], 0), (["health"], 2), (["summary"], 0), (["alerts"], 0), (["status"], 0),
    (["cleanup", "--dry-run", "--retention", "12 months"], 0), (["maintain", "--premake", "2"], 0),  # last
])
def test_every_human_view_escapes_the_name(db, args, code):
    result = run(db, *args)
    assert result.exit_code == code, result.output
    assert_safe(result.output)
    assert SHOWN in result.output, result.output


def test_the_columns_stay_aligned(db):
    """Widths are measured on the escaped text, as it is shown."""
    lines = run(db, "stats").output.splitlines()
    header, rule, rows = lines[0], lines[1], lines[2:]
    assert rows and all(r.startswith(SHOWN) for r in rows)
    widest = max(len(r.split("  ")[0]) for r in rows)
    assert len(rule.split()[0]) == widest and header.index("period") == widest + 2


def test_error_lines_escape_too(db):
    result = run(db, "stats", "--table", f"missing\x1b[31m{NAME}")
    assert result.exit_code == 1
    assert_safe(result.stderr)
    assert result.stderr.startswith('Error: relation "missing\\x1b[31mev\\x1b]0;pwned')


@pytest.mark.parametrize("args", [["--json", "log"], ["--json", "stats"], ["--json", "health"],
                                  ["--json", "summary"], ["--json", "alerts"], ["--json", "status"]])
def test_json_stays_valid_and_ascii(db, args):
    result = run(db, *args)
    assert_safe(result.output)
    assert result.output.isascii()
    assert any(NAME in text for text in strings(json.loads(result.output))), "the name, exactly, once decoded"


def strings(data):
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from strings(value)
    elif isinstance(data, list):
        for value in data:
            yield from strings(value)


def test_safe_escapes_what_a_terminal_acts_on_and_nothing_else():
    assert safe("a\x1b[2Jb\x07\x00\t\n\r\x7f\x9b\u202e\u2066\u200f\u2028c") == \
        "a\\x1b[2Jb\\x07\\x00\\x09\\x0a\\x0d\\x7f\\x9b\\u202e\\u2066\\u200f\\u2028c"
    assert safe("é 日本 ñ \\x1b already shown") == "é 日本 ñ \\x1b already shown"
    assert safe(safe(NAME)) == safe(NAME) == SHOWN
