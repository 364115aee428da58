"""The seed's PARTITION_MONTHS_AHEAD and PARTITION_RETENTION_MONTHS at run time: `timepart
maintain` and `cleanup` apply them to tables named email_events when no option is given
(option, then environment, then the table's configuration); other tables keep theirs."""
import json

import psycopg
import pytest
from click.testing import CliRunner

from timepart.cli import cli


@pytest.fixture(scope="module")
def db(dsn):
    """email_events (premake 6, 12 months) and other_ev (premake 1, no retention)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("SELECT timepart.create_email_events_table()")
        conn.execute("CREATE TABLE other_ev (ts timestamptz NOT NULL) PARTITION BY RANGE (ts)")
        conn.execute("SELECT timepart.manage('other_ev', '1 month', 1)")
    return dsn


def run(dsn, *args, env=None):
    result = CliRunner().invoke(cli, ["--dsn", dsn, *args], env=env)
    assert "Traceback" not in result.output
    return result


def month(conn, table, offset):
    """The name of `table`'s partition `offset` months from the current one."""
    return conn.execute(f"SELECT '{table}_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
                        " + %s * interval '1 month', 'YYYY_MM')", (offset,)).fetchone()[0]


def exists(conn, name):
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


def log_rows(conn):
    return conn.execute("SELECT count(*) FROM timepart.maintenance_log").fetchone()[0]


def test_maintain_takes_premake_from_the_environment_for_email_events(db, connect):
    conn = connect()
    result = run(db, "maintain", "--table", "email_events", env={"PARTITION_MONTHS_AHEAD": "7"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "from the environment: premake 7 (PARTITION_MONTHS_AHEAD) for public.email_events"
    assert lines[1].startswith("maintain: ok in ")
    assert lines[2:] == [f"  created {month(conn, 'email_events', 7)}"]


def test_the_option_wins_over_the_environment(db, connect):
    conn = connect()
    result = run(db, "--json", "maintain", "--table", "email_events", "--premake", "7",
                 env={"PARTITION_MONTHS_AHEAD": "8"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["created_partitions"] == []
    assert not exists(conn, month(conn, "email_events", 8))


def test_across_all_tables_only_email_events_takes_the_environment(db, connect):
    conn = connect()
    result = run(db, "--json", "maintain", env={"PARTITION_MONTHS_AHEAD": "8"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)  # JSON only: the environment line is for people
    assert data["success"] is True and data["errors"] == []
    assert data["created_partitions"] == [month(conn, "email_events", 8)]
    assert [t["table"] for t in data["tables"]] == ["public.email_events", "public.other_ev"]
    assert not exists(conn, month(conn, "other_ev", 2)), "other_ev keeps its premake of 1"


def test_another_table_keeps_its_configuration(db, connect):
    conn = connect()
    result = run(db, "maintain", "--table", "other_ev", env={"PARTITION_MONTHS_AHEAD": "3"})
    assert result.exit_code == 0, result.output
    assert result.output.startswith("maintain: ok in ") and "from the environment" not in result.output
    assert not exists(conn, month(conn, "other_ev", 3))


@pytest.mark.parametrize("command, var, value", [
    (["maintain"], "PARTITION_MONTHS_AHEAD", "six"),
    (["maintain", "--table", "email_events"], "PARTITION_MONTHS_AHEAD", "0"),
    (["cleanup"], "PARTITION_RETENTION_MONTHS", "-3"),
    (["cleanup", "--table", "email_events"], "PARTITION_RETENTION_MONTHS", "1.5"),
])
def test_an_invalid_value_is_one_error_line_and_changes_nothing(db, connect, command, var, value):
    conn = connect()
    before = log_rows(conn)
    result = run(db, *command, env={var: value})
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: {var} must be a whole number of months, 1 or more; got '{value}'\n"
    assert log_rows(conn) == before, "nothing ran"


def test_an_invalid_value_does_not_matter_when_the_option_is_given(db):
    result = run(db, "--json", "cleanup", "--retention", "10 years", "--dry-run",
                 env={"PARTITION_RETENTION_MONTHS": "soon"})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["dropped_partitions"] == []


def test_cleanup_takes_retention_from_the_environment_for_email_events_only(db, connect):
    conn = connect()
    for table in ("email_events", "other_ev"):  # one partition each, five months old
        conn.execute("SELECT timepart.create_partition(%s, date_trunc('month', now()) - interval '5 months',"
                     " date_trunc('month', now()) - interval '4 months')", (table,))
    old_events, old_other = month(conn, "email_events", -5), month(conn, "other_ev", -5)
    dry = run(db, "cleanup", "--dry-run", env={"PARTITION_RETENTION_MONTHS": "2"})
    assert dry.exit_code == 0, dry.output
    lines = dry.output.splitlines()
    assert lines[0] == "from the environment: retention 2 months (PARTITION_RETENTION_MONTHS) for public.email_events"
    assert lines[1].startswith("cleanup (dry run): ok in ")
    assert lines[2:] == [f"  would drop {old_events} (0 rows)"]
    assert exists(conn, old_events)

    result = run(db, "--json", "cleanup", env={"PARTITION_RETENTION_MONTHS": "2"})
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["dropped_partitions"], data["dry_run"]) == ([[old_events, 0]], False)
    assert [t["table"] for t in data["tables"]] == ["public.email_events", "public.other_ev"]
    assert not exists(conn, old_events) and exists(conn, old_other), "other_ev has no retention: kept"
