"""timepart.web with every kind of connection an application holds (make_router's
conn_factory): pools, connections, SQLAlchemy sessions and engines with psycopg and asyncpg,
FastAPI-style dependency generators; what it closes and what it leaves open; answers when
the database cannot be reached. The routes themselves: test_web.py."""
import asyncio

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from test_web import ADMIN, app_for, fresh_connection, month_name, partitions, request, web_database


@pytest.fixture(scope="module")
def db(dsn):
    return web_database(dsn)


def test_every_kind_of_connection_factory_works_and_commits(db, connect):
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    sa_url = "postgresql+psycopg://"  # PG* variables name the server; the database comes from the query
    dbname = psycopg.conninfo.conninfo_to_dict(db)["dbname"]

    async def go():
        months = iter(range(10, 16))
        pool = AsyncConnectionPool(db, open=False, min_size=1, max_size=2)
        await pool.open()
        engine = create_async_engine(sa_url, connect_args={"dbname": dbname})
        sessions = async_sessionmaker(engine)

        async def generator():  # a FastAPI-style dependency
            async with sessions() as session:
                yield session

        factories = {"pool": lambda: pool, "pool.connection": pool.connection, "connect": fresh_connection(db),
                     "sessionmaker": sessions, "generator": generator, "engine.connect": engine.connect}
        try:
            for kind, factory in factories.items():
                month = next(months)
                transport = httpx.ASGITransport(app=app_for(factory))
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                    answer = await client.post("/api/system/partitions/maintain", params={"months_ahead": month},
                                               headers={"x-admin": "yes"})
                    assert answer.status_code == 200, f"{kind}: {answer.text}"
                    assert answer.json()["created_partitions"][-1:] == [month_name(month)], f"{kind}: {answer.text}"
                    assert (await client.get("/api/system/partitions/health", headers={"x-admin": "yes"})).status_code == 200
        finally:
            await pool.close()
            await engine.dispose()

    asyncio.run(go())
    assert partitions(connect())[-1] == month_name(15)  # committed, whatever the kind


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_sqlalchemy_errors_carry_detail_and_hint_with_either_driver(db, driver):
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    info = psycopg.conninfo.conninfo_to_dict(db)
    host = psycopg.conninfo.conninfo_to_dict(psycopg.connect(db).info.dsn).get("host")
    port = psycopg.connect(db).info.port

    async def go():
        if driver == "asyncpg":
            engine = create_async_engine("postgresql+asyncpg://", connect_args={"host": host, "port": port,
                                                                                "database": info["dbname"]})
        else:
            engine = create_async_engine("postgresql+psycopg://", connect_args={"dbname": info["dbname"]})
        try:
            transport = httpx.ASGITransport(app=app_for(async_sessionmaker(engine)))
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                return await client.post("/api/system/partitions/maintain", params={"months_ahead": 0},
                                         headers={"x-admin": "yes"})
        finally:
            await engine.dispose()
    answer = asyncio.run(go())
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["sqlstate"] == "22023" and "premake" in body["message"] and body["detail"] == "Got 0." and body["hint"]


def test_a_dependency_generator_is_resumed_so_its_transaction_commits(db, connect):
    """A pool in its default mode (no autocommit) and a SET ROLE a request: the factory's
    own code after its yield runs, as FastAPI would run it."""
    events = []

    async def go():
        pool = AsyncConnectionPool(db, open=False, min_size=1, max_size=1)
        await pool.open()

        async def as_admin():
            async with pool.connection() as conn:
                await conn.execute(f"SET ROLE {ADMIN}")
                try:
                    yield conn
                    events.append("resumed")
                except Exception as exc:
                    events.append(f"thrown {type(exc).__name__}")
                    raise
                finally:
                    await conn.execute("RESET ROLE")
        try:
            transport = httpx.ASGITransport(app=app_for(as_admin))
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                headers = {"x-admin": "yes"}
                ok = await client.post("/api/system/partitions/maintain", params={"months_ahead": 17}, headers=headers)
                bad = await client.post("/api/system/partitions/maintain", params={"months_ahead": 0}, headers=headers)
                again = await client.get("/api/system/partitions/health", headers=headers)  # the one connection is back
                return ok, bad, again
        finally:
            await pool.close()
    ok, bad, again = asyncio.run(go())
    assert ok.status_code == 200 and month_name(17) in ok.json()["created_partitions"], ok.text
    assert bad.status_code == 422 and again.status_code == 200, (bad.text, again.text)
    assert events[0] == "resumed" and events[1].startswith("thrown"), events
    assert month_name(17) in partitions(connect())  # committed


def test_what_the_application_keeps_is_never_closed(db):
    """A shared connection, and a pool of the application's own subclass: both serve every request."""
    class AppPool(AsyncConnectionPool):
        pass

    async def go():
        conn = await psycopg.AsyncConnection.connect(db, autocommit=True)
        pool = AppPool(db, open=False, min_size=1, max_size=2)
        await pool.open()
        try:
            codes = []
            for factory in (lambda: conn, lambda: pool):
                transport = httpx.ASGITransport(app=app_for(factory))
                async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
                    for _ in range(3):
                        codes.append((await client.get("/api/system/partitions/health",
                                                       headers={"x-admin": "yes"})).status_code)
            return codes, conn.closed, pool.closed
        finally:
            await conn.close()
            await pool.close()
    codes, conn_closed, pool_closed = asyncio.run(go())
    assert codes == [200] * 6 and not conn_closed and not pool_closed


def test_an_unreachable_database_and_a_misconfigured_router_answer_in_json(db):
    nowhere = app_for(lambda: psycopg.AsyncConnection.connect("host=/nonexistent port=1 connect_timeout=2"))
    answer = request(nowhere, "GET", "/health")
    assert answer.status_code == 503 and "connect" in answer.json()["message"], answer.text
    typo = app_for(fresh_connection(db), parent="email_event")
    answer = request(typo, "POST", "/maintain")
    assert answer.status_code == 500 and "email_event" in answer.json()["message"], answer.text
    assert "parent=" in answer.json()["hint"], answer.text
    wrong = app_for(lambda: "postgresql://")
    answer = request(wrong, "GET", "/health")
    assert answer.status_code == 500 and "conn_factory" in answer.json()["message"], answer.text
