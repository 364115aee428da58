"""How the client reaches the database: one small adapter (a runner) for each kind of
connection an application holds, all running one statement and returning its rows as dicts.
SQL is written once, with psycopg's %(name)s parameters; SQLAlchemy gets it as text()."""
import json
import re
from typing import Any, List, Optional

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from . import db

_PARAM = re.compile(r"%\((\w+)\)s")


def sqlstate(exc: BaseException) -> Optional[str]:
    """A driver error's SQLSTATE, also when SQLAlchemy wraps it (DBAPIError.orig)."""
    for err in (exc, getattr(exc, "orig", None)):
        code = getattr(err, "sqlstate", None)
        if code:
            return code
    return None


def decoded(value: Any) -> Any:
    """A jsonb value as Python data. Drivers usually decode it; asyncpg on its own, or an
    engine with its own json_deserializer, hands over the text (or bytes)."""
    return json.loads(value) if isinstance(value, (str, bytes)) else value


class Runner:
    """Runs one statement in a transaction of its own (a savepoint inside the caller's) and
    returns its rows as dicts. A failure that may mean timepart is missing is checked
    against the catalog and then raised as NotInstalledError."""

    async def rows(self, sql: str, params: Optional[dict] = None) -> List[dict]:
        try:
            return await self._execute(sql, params or {})
        except Exception as exc:
            if sqlstate(exc) not in db.NOT_INSTALLED_SQLSTATES:
                raise
            missing = await self._not_installed()
            if missing:
                raise missing from exc
            raise

    async def require_installed(self) -> None:
        """Raises UntrustedError when what timepart would call belongs to a role the caller
        must not trust (db.check_trusted), NotInstalledError when timepart is not in the
        database."""
        row, = await self._execute(db.TRUST_QUERY, {})
        db.trust_verdict(row, require=True)

    async def _not_installed(self) -> Optional[db.NotInstalledError]:
        row, = await self._execute(db.TRUST_QUERY, {})
        return None if row["installed"] else db.NotInstalledError(row["database"])

    async def _execute(self, sql: str, params: dict) -> List[dict]:
        raise NotImplementedError


async def _fetch(conn: AsyncConnection, sql: str, params: dict) -> List[dict]:
    # On an autocommit connection this is the call's own transaction; inside one the
    # caller opened, a savepoint.
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params or None)
        return await cur.fetchall()


class _ConnectionRunner(Runner):
    """A psycopg AsyncConnection."""

    def __init__(self, conn: AsyncConnection):
        self.conn = conn

    async def _execute(self, sql: str, params: dict) -> List[dict]:
        return await _fetch(self.conn, sql, params)


class _PoolRunner(Runner):
    """A psycopg_pool AsyncConnectionPool: each call borrows a connection."""

    def __init__(self, pool):
        self.pool = pool

    async def _execute(self, sql: str, params: dict) -> List[dict]:
        async with self.pool.connection() as conn:
            return await _fetch(conn, sql, params)


class _SQLAlchemyRunner(Runner):
    """A SQLAlchemy AsyncSession or AsyncConnection, with any driver (psycopg, asyncpg):
    the call runs on its connection inside its transaction (begun if none is), in a
    SAVEPOINT, so a failing call leaves that transaction usable. The caller commits."""

    def __init__(self, target):
        from sqlalchemy import text  # the optional extra: imported only when used
        self.target, self._text = target, text

    async def _execute(self, sql: str, params: dict) -> List[dict]:
        # (:name) rather than :name: a cast right after it (:name::regclass) would not parse.
        statement = self._text(_PARAM.sub(r"(:\1)", sql))
        async with self.target.begin_nested():
            result = await self.target.execute(statement, params)
            return [dict(row) for row in result.mappings()]


def runner_for(target) -> Runner:
    """The runner for what the caller holds: a psycopg AsyncConnection or
    AsyncConnectionPool, or a SQLAlchemy AsyncSession or AsyncConnection."""
    if isinstance(target, AsyncConnection):
        return _ConnectionRunner(target)
    if type(target).__module__.startswith("sqlalchemy."):
        from sqlalchemy.ext.asyncio import AsyncConnection as SAConnection, AsyncSession
        if isinstance(target, (AsyncSession, SAConnection)):
            return _SQLAlchemyRunner(target)
    elif callable(getattr(target, "connection", None)):
        return _PoolRunner(target)
    raise TypeError(f"timepart's client takes a psycopg AsyncConnection or AsyncConnectionPool, or a SQLAlchemy "
                    f"AsyncSession or AsyncConnection, not {type(target).__name__}")
