"""The async client over SQLAlchemy (the `sqlalchemy` extra), with both async dialects:
postgresql+psycopg and postgresql+asyncpg. Each call runs on the session's connection,
inside the session's transaction, in a savepoint; the caller commits or rolls back."""
import asyncio
import os
import subprocess
import sys
from datetime import datetime, timezone

import psycopg
import pytest
from sqlalchemy import URL, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from timepart.client import (EmailEventsPartitionManager, Health, LogEntry, NotInstalledError, OperationResult,
                             PartitionManager, PartitionMonitor, PartitionStats, get_partition_maintenance_log)
from timepart.runner import sqlstate

DIALECTS = ["postgresql+psycopg", "postgresql+asyncpg"]


@pytest.fixture(scope="module")
def db(dbname):
    with psycopg.connect(dbname=dbname, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timepart")
        conn.execute("SELECT timepart.create_email_events_table()")
    return dbname


def url(driver, database):
    """The harness cluster (a Unix socket directory in PGHOST) for a SQLAlchemy dialect."""
    return URL.create(driver, username=os.environ.get("PGUSER"), host=os.environ["PGHOST"],
                      port=int(os.environ["PGPORT"]), database=database)


def in_session(driver, database, work, **engine_options):
    """Runs `work(session)` in an AsyncSession of a fresh engine; returns what it returns."""
    async def go():
        engine = create_async_engine(url(driver, database), **engine_options)
        try:
            async with AsyncSession(engine) as session:
                return await work(session)
        finally:
            await engine.dispose()
    return asyncio.run(go())


def exists(dsn_db, name):
    with psycopg.connect(dbname=dsn_db) as conn:
        return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]


@pytest.mark.parametrize("driver", DIALECTS)
def test_a_session_maintains_and_reports(db, driver):
    async def work(session):
        manager = EmailEventsPartitionManager(session)
        result = await manager.maintain_partitions(months_ahead=7)
        await session.commit()
        return (result, await manager.get_partition_stats(), await manager.check_partition_health(),
                await manager.summary(), await get_partition_maintenance_log(limit=3, conn=session))
    result, stats, health, summary, log = in_session(driver, db, work)
    assert isinstance(result, OperationResult) and result.success is True and result.errors == []
    assert result.extra["tables"][0]["table"] == "public.email_events"
    assert stats and all(isinstance(s, PartitionStats) and s.name == s.partition_name for s in stats)
    now = datetime.now(timezone.utc)
    assert [s.period for s in stats if not s.is_default and s.range_start <= now < s.range_end] == [now.strftime("%Y_%m")]
    assert isinstance(health, Health) and health.status == "healthy" and health.partition_count >= 8
    assert isinstance(summary, dict) and summary["health"]["status"] == "healthy"  # jsonb decoded, asyncpg too
    assert len(log) == 3 and all(isinstance(r, LogEntry) and isinstance(r.details, dict) for r in log)
    with psycopg.connect(dbname=db) as conn:
        seventh = conn.execute("SELECT 'email_events_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')"
                               " + interval '7 months', 'YYYY_MM')").fetchone()[0]
    assert exists(db, seventh), "the seventh month ahead was committed"


@pytest.mark.parametrize("driver", DIALECTS)
def test_jsonb_handed_over_as_text_is_decoded(db, driver):
    """An engine whose json_deserializer keeps the text (asyncpg's own default) still gives data."""
    async def work(session):
        manager = EmailEventsPartitionManager(session)
        return (await manager.maintain(), await manager.health(), await manager.summary(),
                await manager.maintenance_log(1), (await session.execute(text("SELECT timepart.health()"))).scalar())
    result, health, summary, log, raw = in_session(driver, db, work, json_deserializer=lambda doc: doc)
    assert isinstance(raw, (str, bytes)), "the engine hands jsonb over undecoded"
    assert result.success is True and health.status == "healthy" and summary["health"]["status"] == "healthy"
    assert isinstance(log[0].details, dict)


@pytest.mark.parametrize("driver", DIALECTS)
def test_the_work_is_inside_the_sessions_transaction(db, driver):
    """Seen inside the session, invisible to others until commit; a rollback undoes it."""
    async def work(session):
        name = await EmailEventsPartitionManager(session).create_partition(datetime(2019, 1, 1), datetime(2019, 2, 1))
        inside = (await session.execute(text("SELECT to_regclass('email_events_2019_01') IS NOT NULL"))).scalar()
        outside = exists(db, "email_events_2019_01")
        await session.rollback()
        return name, inside, outside
    name, inside, outside = in_session(driver, db, work)
    assert (name, inside, outside) == ("public.email_events_2019_01", True, False)
    assert not exists(db, "email_events_2019_01"), "the rollback undid it"


@pytest.mark.parametrize("driver", DIALECTS)
def test_a_failing_call_leaves_the_callers_transaction_usable(db, driver):
    async def work(session):
        await session.execute(text("CREATE TABLE callers_work (id int)"))
        with pytest.raises(DBAPIError) as refused:
            await EmailEventsPartitionManager(session).create_partition(datetime(2024, 5, 1), datetime(2024, 4, 1))
        health = await EmailEventsPartitionManager(session).health()  # the transaction goes on
        await session.commit()
        return sqlstate(refused.value), health
    code, health = in_session(driver, db, work)
    assert code == "22023" and health.status == "healthy"
    assert exists(db, "callers_work"), "the caller's own work before the failure was committed"
    with psycopg.connect(dbname=db, autocommit=True) as conn:
        conn.execute("DROP TABLE callers_work")


@pytest.mark.parametrize("driver", DIALECTS)
def test_a_sqlalchemy_connection_works_like_a_session(db, driver):
    async def go():
        engine = create_async_engine(url(driver, db))
        try:
            async with engine.connect() as conn:
                alerts = await PartitionMonitor(conn).run_comprehensive_check()
                stats = await PartitionManager(conn, parent=None).partition_stats()
                await conn.commit()
                return alerts, stats
        finally:
            await engine.dispose()
    alerts, stats = asyncio.run(go())
    assert isinstance(alerts, list) and {s.parent_table for s in stats} == {"public.email_events"}


@pytest.mark.parametrize("driver", DIALECTS)
def test_without_timepart_a_session_says_so(make_database, driver):
    bare = psycopg.conninfo.conninfo_to_dict(make_database())["dbname"]

    async def work(session):
        with pytest.raises(NotInstalledError) as missing:
            await EmailEventsPartitionManager(session).health()
        return str(missing.value), (await session.execute(text("SELECT 1"))).scalar()
    message, still_usable = in_session(driver, bare, work)
    assert message == f'timepart is not installed in database "{bare}"; run `timepart install` first'
    assert still_usable == 1


def test_the_client_does_not_need_sqlalchemy():
    """SQLAlchemy is an optional extra: the client and the CLI import without it."""
    code = ("import sys; sys.modules['sqlalchemy'] = None\n"
            "import timepart.client, timepart.cli\n"
            "print('sqlalchemy' in sys.modules and sys.modules['sqlalchemy'] is not None)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert (done.returncode, done.stdout) == (0, "False\n"), done.stderr


def test_something_else_is_refused_clearly():
    with pytest.raises(TypeError, match="takes a psycopg AsyncConnection or AsyncConnectionPool, or a SQLAlchemy "
                                        "AsyncSession or AsyncConnection, not str"):
        PartitionManager("dbname=app")
