"""A database without timepart: every command that needs it, and every client call, says
so in one line (NotInstalledError), instead of the SQL error it runs into."""
import asyncio

import psycopg
import pytest
from click.testing import CliRunner
from psycopg_pool import AsyncConnectionPool

from timepart.cli import cli
from timepart.client import EmailEventsPartitionManager, NotInstalledError, PartitionManager, PartitionMonitor


@pytest.fixture(scope="module")
def bare(dsn):
    """The module's database, with a table but no timepart."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (id bigint, at timestamptz NOT NULL)")
    return dsn


def message(dbname):
    return f'timepart is not installed in database "{dbname}"; run `timepart install` first'


@pytest.mark.parametrize("args, code", [
    (["health"], 3),
    (["health", "--table", "no_such_table"], 3),  # the missing table is not what matters
    (["--json", "health"], 3),
    (["stats"], 1),
    (["summary"], 1),
    (["maintain", "--table", "events"], 1),
    (["cleanup", "--dry-run"], 1),
    (["alerts"], 1),
    (["alerts", "--follow"], 1),
    (["log"], 1),
    (["report", "--output", "never-written.html"], 1),
    (["migrate", "events", "--key", "at", "--dry-run"], 1),
    (["migrate", "events", "--key", "at"], 1),
])
def test_each_command_says_timepart_is_not_installed(bare, dbname, args, code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["--dsn", bare, *args])
    assert (result.exit_code, result.stdout, result.stderr) == (code, "", f"Error: {message(dbname)}\n")
    assert not (tmp_path / "never-written.html").exists()


def test_the_seeds_variables_do_not_hide_it(bare, dbname):
    result = CliRunner().invoke(cli, ["--dsn", bare, "maintain"], env={"PARTITION_MONTHS_AHEAD": "4"})
    assert (result.exit_code, result.stderr) == (1, f"Error: {message(dbname)}\n")


def test_status_still_reports_it_plainly(bare):
    result = CliRunner().invoke(cli, ["--dsn", bare, "status"])
    assert result.exit_code == 0 and "timepart is not installed in this database" in result.output


CALLS = [
    lambda m: m.maintain(), lambda m: m.cleanup("12 months"), lambda m: m.partition_stats(), lambda m: m.health(),
    lambda m: m.summary(), lambda m: m.check_alerts(), lambda m: m.maintenance_log(5), lambda m: m.snapshot_stats(),
    lambda m: m.create_partition(None, None), lambda m: m.tables(), lambda m: m.require_installed(),
    lambda m: PartitionMonitor(m.conn).run_comprehensive_check(),
]


@pytest.mark.parametrize("call", CALLS)
def test_each_client_call_raises_not_installed(bare, dbname, call):
    async def go():
        conn = await psycopg.AsyncConnection.connect(bare, autocommit=True)
        try:
            with pytest.raises(NotInstalledError) as missing:
                await call(EmailEventsPartitionManager(conn))
            return missing.value
        finally:
            await conn.close()
    error = asyncio.run(go())
    assert (str(error), error.database) == (message(dbname), dbname)
    assert error.__cause__ is None or isinstance(error.__cause__, psycopg.Error)


def test_over_a_pool_and_inside_the_callers_transaction(bare, dbname):
    async def go():
        async with AsyncConnectionPool(bare, min_size=1, max_size=1, open=False) as pool:
            with pytest.raises(NotInstalledError, match="not installed"):
                await PartitionManager(pool, parent=None).health()
        conn = await psycopg.AsyncConnection.connect(bare)  # not autocommit: the caller's transaction
        try:
            await conn.execute("INSERT INTO events VALUES (1, now())")
            with pytest.raises(NotInstalledError):
                await PartitionManager(conn).maintain()
            await conn.commit()
        finally:
            await conn.close()
    asyncio.run(go())
    with psycopg.connect(bare) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 1, "the caller's insert survived"


def test_a_missing_table_with_timepart_installed_is_still_that(make_database):
    installed = make_database()
    with psycopg.connect(installed, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")

    async def go():
        conn = await psycopg.AsyncConnection.connect(installed, autocommit=True)
        try:
            with pytest.raises(psycopg.errors.UndefinedTable, match='relation "no_such_table" does not exist'):
                await PartitionManager(conn, "no_such_table").health()
        finally:
            await conn.close()
    asyncio.run(go())
