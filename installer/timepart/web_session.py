"""timepart.web's plumbing: the connection a request uses (what make_router's factory
gives), and every error as the JSON answer the routes promise."""
import inspect
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Optional

import psycopg
from fastapi.responses import JSONResponse

from .db import NotInstalledError, TimepartError, UntrustedError
from .runner import sqlstate


class BadRequest(Exception):
    """A parameter the route refuses before any database work (422)."""

    def __init__(self, message: str, detail: Optional[str], hint: Optional[str]):
        super().__init__(message)
        self.message, self.detail, self.hint = message, detail, hint

    def response(self) -> JSONResponse:
        return error(422, self.message, self.detail, self.hint)


# ---- the connection of a request ------------------------------------------------------

def _ready(made) -> bool:
    """A pool or a psycopg connection the application keeps: used as it is, never closed."""
    if isinstance(made, psycopg.AsyncConnection):
        return True
    try:
        from psycopg_pool.base import BasePool
    except ImportError:  # no pool without psycopg_pool
        return False
    return isinstance(made, BasePool)


@asynccontextmanager
async def request_session(factory):
    """What conn_factory gives, for one request (see make_router). A SQLAlchemy session or
    connection is committed when the work succeeds: the client runs its call in a
    SAVEPOINT and leaves the commit to the caller, here the request."""
    made = factory()
    if inspect.isasyncgen(made):  # driven as FastAPI drives a dependency: failures thrown in
        made = asynccontextmanager(lambda: made)()
    elif not _ready(made) and not hasattr(made, "__aenter__") and inspect.isawaitable(made):
        made = await made  # made for this request: closed after it
        if isinstance(made, psycopg.AsyncConnection):
            async with made:
                yield made
            return
    if _ready(made) or not hasattr(made, "__aenter__"):
        yield made
        return
    async with made as target:
        yield target
        if type(target).__module__.startswith("sqlalchemy.") and hasattr(target, "commit"):
            await target.commit()


# ---- answers ---------------------------------------------------------------------------

def plain(value):
    """JSON as the seed writes it: times in UTC with a Z, numbers as numbers."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            return value.astimezone(timezone.utc).replace(tzinfo=None).isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def error(status: int, message: str, detail: Optional[str] = None, hint: Optional[str] = None,
          code: Optional[str] = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"message": message, "detail": detail, "hint": hint,
                                                     "sqlstate": code})


# SQLSTATEs (or classes) of a request's bad input. Names PostgreSQL cannot resolve or parse
# (42P01, 42602, 42601, 0A000: another database's) count only when the request named them.
_BAD_INPUT = ("22", "42704", "3F000")
_BAD_NAME = ("42P01", "42602", "42601", "0A000")


def _status(code: Optional[str], asked: bool) -> int:
    if code == "42501":
        return 403
    if code and (code in _BAD_INPUT or code[:2] in _BAD_INPUT or (asked and code in _BAD_NAME)):
        return 422
    if code and code[:2] in ("55", "40"):
        return 409  # in use, locked, serialization: try again later
    if code and code[:2] in ("08", "57", "53"):
        return 503
    return 500


def _fields(exc: BaseException) -> dict:
    """message, DETAIL, HINT of a driver error: psycopg's diag, asyncpg's attributes,
    through SQLAlchemy's wrapper (.orig) and asyncpg's adapter (__cause__)."""
    seen = [exc, getattr(exc, "orig", None)]
    seen.append(getattr(seen[-1], "__cause__", None))
    for err in (e for e in seen if e is not None):
        diag = getattr(err, "diag", None)
        if diag is not None and getattr(diag, "message_primary", None):
            return {"message": diag.message_primary, "detail": diag.message_detail, "hint": diag.message_hint}
        if getattr(err, "sqlstate", None) and isinstance(getattr(err, "message", None), str):
            return {"message": err.message, "detail": getattr(err, "detail", None), "hint": getattr(err, "hint", None)}
    text = str(getattr(exc, "orig", None) or exc).strip()
    return {"message": text.splitlines()[0] if text else type(exc).__name__, "detail": None, "hint": None}


def _unreachable(exc: BaseException) -> bool:
    """The database could not be reached or the pool gave no connection (no SQLSTATE)."""
    if isinstance(exc, psycopg.OperationalError):
        return True
    name = type(exc).__module__ + "." + type(exc).__name__
    return name in ("sqlalchemy.exc.OperationalError", "sqlalchemy.exc.TimeoutError")


def error_response(exc: BaseException, asked: bool) -> Optional[JSONResponse]:
    """The answer for a database's error or timepart's own; None for anything else (a bug,
    which the application's handlers see as it is)."""
    if isinstance(exc, BadRequest):
        return exc.response()
    if isinstance(exc, NotInstalledError):
        return error(503, str(exc), None, "Install timepart in this database: timepart install.")
    if isinstance(exc, UntrustedError):
        return error(503, str(exc), None, "See docs/security.md: what timepart trusts and who must own it.")
    if isinstance(exc, TimepartError):  # connect_async: the database could not be reached
        return error(503, str(exc), None, "Check the application's connection settings and the server.")
    code = sqlstate(exc)
    if code is None:
        if _unreachable(exc):
            return error(503, f"cannot reach the database: {_fields(exc)['message']}", None,
                         "Check the application's connection settings, the server and the pool's size.")
        if isinstance(exc, psycopg.DataError):  # refused by the driver before it was sent
            return error(422, _fields(exc)["message"], None, "Check the request's parameters.")
        if isinstance(exc, TypeError) and "client takes" in str(exc):  # runner_for: the factory's result
            return error(500, f"make_router's conn_factory gave what timepart cannot use: {exc}", None,
                         "Give a psycopg AsyncConnection or pool, or a SQLAlchemy AsyncSession or AsyncConnection.")
        return None
    fields = _fields(exc)
    status = _status(code, asked)
    if status == 500 and not asked and code in _BAD_NAME:
        fields["hint"] = fields["hint"] or "The router's parent= names a table this connection cannot find."
    return error(status, fields["message"], fields["detail"], fields["hint"], code)
