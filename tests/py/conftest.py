"""Fixtures: connections to the harness cluster (tools/cluster.sh sets PG* variables),
and a fresh database per test module so tests never see each other's objects."""
import os
import uuid

import psycopg
import pytest


def _admin_dsn(dbname="postgres"):
    return psycopg.conninfo.make_conninfo(dbname=dbname)


@pytest.fixture(scope="module")
def dbname():
    """A throwaway database, dropped after the module."""
    name = "tp_" + uuid.uuid4().hex[:10]
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def dsn(dbname):
    return psycopg.conninfo.make_conninfo(dbname=dbname)


@pytest.fixture
def connect(dsn):
    """Opens autocommit connections to the module's database; closes them afterwards."""
    opened = []

    def _connect(**kwargs):
        kwargs.setdefault("autocommit", True)
        conn = psycopg.connect(dsn, **kwargs)
        opened.append(conn)
        return conn

    yield _connect
    for conn in opened:
        conn.close()


def pytest_configure(config):
    if not os.environ.get("PGHOST"):
        raise pytest.UsageError("PGHOST is not set: run the tests with `make test` (tools/test.sh)")
    config.addinivalue_line("markers", "needs(feature): the test needs pg_cron, plpgsql_check, pg_partman or pg_dump")


def pytest_collection_modifyitems(config, items):
    """A test marked needs("pg_cron") is skipped, with the reason, on a server build
    without it (tools/cluster.sh says which features this major's build has)."""
    have = set(os.environ.get("TIMEPART_FEATURES", "").split())
    major = os.environ.get("TIMEPART_PG", "?")
    for item in items:
        for mark in item.iter_markers("needs"):
            missing = [f for f in mark.args if f not in have]
            if missing:
                item.add_marker(pytest.mark.skip(
                    reason=f"needs {', '.join(missing)}, which the PostgreSQL {major} build used here lacks"))


@pytest.fixture(scope="module")
def make_database():
    """Creates more throwaway databases for a module (e.g. one per install mode);
    returns each one's DSN. All are dropped after the module."""
    created = []

    def _make():
        name = "tp_" + uuid.uuid4().hex[:10]
        with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return psycopg.conninfo.make_conninfo(dbname=name)

    yield _make
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
