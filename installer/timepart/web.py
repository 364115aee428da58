"""The seed's admin API as a FastAPI router an application mounts (the optional `web`
extra): GET /stats, /health and /summary, POST /maintain and /cleanup, each one call
of the async client, so one timepart SQL function. Authorization is twofold: the
application's own `require_admin` dependency guards every route, and the database
decides what the connection's role may do (partition_monitor reads, partition_admin or
the table's owner acts). A database refusal is a 403, bad input a 422, and every error
body carries PostgreSQL's message, DETAIL, HINT and SQLSTATE."""
import inspect
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Optional

try:
    from fastapi import APIRouter, Body, Depends, Query
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel
except ImportError as exc:  # pragma: no cover - what a user without the extra sees
    raise ImportError('timepart.web needs FastAPI, the "web" extra: pip install "timepart[web]"') from exc

from .client import OperationResult, PartitionManager
from .db import TimepartError
from .runner import sqlstate

__all__ = ["make_router"]

SEED_PREFIX = "/api/system/partitions"


class MaintainRequest(BaseModel):
    months_ahead: Optional[int] = None  # default 6


class CleanupRequest(BaseModel):
    retention_months: Optional[int] = None  # default 12
    dry_run: Optional[bool] = None


def make_router(conn_factory: Callable[[], Any], *, require_admin: Callable[..., Any],
                prefix: str = SEED_PREFIX, parent: Optional[str] = "email_events") -> APIRouter:
    """The router. `conn_factory()` is called once a request and gives (or awaits to, or
    yields, as a FastAPI dependency generator does) what the client accepts:
    - a psycopg AsyncConnectionPool: used as it is and left open;
    - a psycopg AsyncConnection, a SQLAlchemy AsyncSession or AsyncConnection, or an async
      context manager giving one (`pool.connection`, an `async_sessionmaker`): used for
      the request and closed after it; a SQLAlchemy transaction is committed when the
      call succeeds.
    `require_admin` is the application's FastAPI dependency that admits admins only; there
    is no default. `parent` is the managed table (None: every managed table)."""
    if not callable(conn_factory):
        raise TypeError("make_router: conn_factory must be a callable that gives a connection, pool or session")
    if require_admin is None or not callable(require_admin):
        raise TypeError("make_router: require_admin must be the application's FastAPI dependency that admits "
                        "admins only; timepart has no default authentication")
    if parent is not None and (not isinstance(parent, str) or not parent.strip()):
        raise ValueError("make_router: parent must be a table name, or None for every managed table")

    router = APIRouter(prefix=prefix, dependencies=[Depends(require_admin)], tags=["partitions"])

    async def call(table: Optional[str], work):
        try:
            async with _session(conn_factory) as target:
                result = await work(PartitionManager(target, table))
                await _commit(target)
                return result
        except Exception as exc:
            response = _error_response(exc)
            if response is None:
                raise
            return response

    table_query = Query(None, description="A managed table (default: the router's)")

    @router.get("/stats", summary="Per-partition statistics")
    async def stats(table: Optional[str] = table_query):
        rows = await call(table or parent, lambda m: m.partition_stats())
        return rows if isinstance(rows, JSONResponse) else [_stats_row(r) for r in rows]

    @router.get("/health", summary="Partition system health")
    async def health(table: Optional[str] = table_query):
        result = await call(table or parent, lambda m: m.health())
        return result if isinstance(result, JSONResponse) else _plain(result.as_dict())

    @router.get("/summary", summary="Health, statistics, configuration, jobs, log and alerts")
    async def summary(table: Optional[str] = table_query):
        result = await call(table or parent, lambda m: m.summary())
        return result if isinstance(result, JSONResponse) else _plain(result)

    @router.post("/maintain", summary="Create current and future partitions")
    async def maintain(months_ahead: Optional[int] = Query(None, description="Periods to keep ahead (default 6)"),
                       body: Optional[MaintainRequest] = Body(None)):
        value = _one(months_ahead, body and body.months_ahead, "months_ahead", 6)
        if isinstance(value, JSONResponse):
            return value
        return _operation(await call(parent, lambda m: m.maintain(premake=value)))

    @router.post("/cleanup", summary="Remove partitions past the retention")
    async def cleanup(retention_months: Optional[int] = Query(None, description="Months to keep (default 12)"),
                      dry_run: Optional[bool] = Query(None, description="Report only; change nothing"),
                      body: Optional[CleanupRequest] = Body(None)):
        months = _one(retention_months, body and body.retention_months, "retention_months", 12)
        if isinstance(months, JSONResponse):
            return months
        dry = _one(dry_run, body and body.dry_run, "dry_run", False)
        if isinstance(dry, JSONResponse):
            return dry
        return _operation(await call(parent, lambda m: m.cleanup(retention=f"{months} months", dry_run=dry)))

    return router


# ---- connections --------------------------------------------------------------------

@asynccontextmanager
async def _session(factory):
    """What conn_factory gives, for one request (see make_router)."""
    made = factory()
    if inspect.isasyncgen(made):
        try:
            yield await made.__anext__()
        finally:
            await made.aclose()
        return
    # An async context manager first: SQLAlchemy's engine.connect() is awaitable too.
    if not hasattr(made, "__aenter__") and inspect.isawaitable(made):
        made = await made
    if type(made).__module__.startswith("psycopg_pool") or not hasattr(made, "__aenter__"):
        yield made
        return
    async with made as target:
        yield target


async def _commit(target) -> None:
    """A SQLAlchemy call runs in a SAVEPOINT of the caller's transaction; the request is
    the caller here, so it commits. psycopg connections commit their own call."""
    if type(target).__module__.startswith("sqlalchemy.") and hasattr(target, "commit"):
        await target.commit()


# ---- answers --------------------------------------------------------------------------

def _one(query, body, name: str, default):
    """A parameter given in the query string or the JSON body (the same value if both)."""
    if query is not None and body is not None and query != body:
        return _error(422, f"{name} was given twice, with different values",
                      f"The query string says {query}, the body {body}.", "Give it once.")
    return default if query is None and body is None else (query if query is not None else body)


def _operation(result):
    """The seed's /maintain and /cleanup document; a run that failed is a 500 with it."""
    if isinstance(result, JSONResponse):
        return result
    assert isinstance(result, OperationResult)
    data = _plain(result.as_dict())
    return data if result.success else JSONResponse(status_code=500, content=data)


def _stats_row(row) -> dict:
    """One partition in the seed's /stats shape, then the rest of what timepart knows."""
    return _plain({"name": row.partition_name, "period": row.period, "record_count": row.record_count,
                   "size_mb": row.size_mb, "oldest_record": row.oldest_record, "newest_record": row.newest_record,
                   "parent_table": row.parent_table, "range_start": row.range_start, "range_end": row.range_end,
                   "index_count": row.index_count, "is_default": row.is_default, "exact": row.exact})


def _plain(value):
    """JSON as the seed writes it: times in UTC with a Z, numbers as numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
            return value.isoformat() + "Z"
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# SQLSTATEs (or their classes) that mean the request itself was wrong.
_BAD_INPUT = ("22", "42P01", "42704", "42602", "3F000")


def _status(code: Optional[str]) -> int:
    if code == "42501":
        return 403
    if code and (code in _BAD_INPUT or code[:2] in _BAD_INPUT):
        return 422
    if code and code[:2] in ("55", "40"):
        return 409  # in use, locked, serialization: try again later
    if code and code[:2] in ("08", "57", "53"):
        return 503
    return 500


def _fields(exc: BaseException) -> dict:
    """message, DETAIL, HINT and SQLSTATE of a driver error: psycopg's diag, asyncpg's
    attributes, through SQLAlchemy's wrapper (.orig) and asyncpg's adapter (__cause__)."""
    seen = [exc, getattr(exc, "orig", None)]
    seen.append(getattr(seen[-1], "__cause__", None))
    for err in (e for e in seen if e is not None):
        diag = getattr(err, "diag", None)
        if diag is not None and getattr(diag, "message_primary", None):
            return {"message": diag.message_primary, "detail": diag.message_detail, "hint": diag.message_hint,
                    "sqlstate": diag.sqlstate}
        if getattr(err, "sqlstate", None) and isinstance(getattr(err, "message", None), str):
            return {"message": err.message, "detail": getattr(err, "detail", None), "hint": getattr(err, "hint", None),
                    "sqlstate": err.sqlstate}
    return {"message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__, "detail": None, "hint": None,
            "sqlstate": sqlstate(exc)}


def _error(status: int, message: str, detail: Optional[str] = None, hint: Optional[str] = None,
           code: Optional[str] = None) -> JSONResponse:
    return JSONResponse(status_code=status, content={"message": message, "detail": detail, "hint": hint,
                                                     "sqlstate": code})


def _error_response(exc: BaseException) -> Optional[JSONResponse]:
    """The answer for a database's error or timepart's own; None for anything else (a bug,
    which the application's handlers see as it is)."""
    if isinstance(exc, TimepartError):
        return _error(503, str(exc), None, "Install or repair timepart in this database (timepart install).")
    code = sqlstate(exc)
    if code is None:
        return None
    f = _fields(exc)
    return _error(_status(code), f["message"], f["detail"], f["hint"], code)
