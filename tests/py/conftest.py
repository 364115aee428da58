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
