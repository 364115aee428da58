"""The seed's admin API as a FastAPI router an application mounts (the optional `web`
extra): GET /stats, /health and /summary, POST /maintain and /cleanup, each one call
of the async client, so one timepart SQL function. Authorization is twofold: the
application's own `require_admin` dependency guards every route, and the database
decides what the connection's role may do (partition_monitor reads, partition_admin or
the table's owner acts). A database refusal is a 403, bad input a 422 (a parameter the
route does not know included), a run another run kept from starting a 409, a run that
failed a 500 with the seed's document. Every error body is
{"message", "detail", "hint", "sqlstate"}. The connection handling is in web_session.py."""
import json
from typing import Any, Callable, Dict, Optional

try:
    from fastapi import APIRouter, Depends, Request
    from fastapi.responses import JSONResponse
except ImportError as exc:  # what a user without the extra sees
    raise ImportError('timepart.web needs FastAPI, the "web" extra: pip install "timepart[web]"') from exc

from .client import PartitionManager
from .web_session import BadRequest, error_response, plain, request_session

__all__ = ["make_router"]

SEED_PREFIX = "/api/system/partitions"

# Each route's parameters: name -> (parse, default).
_INT, _BOOL, _TEXT = "integer", "boolean", "text"
_PARAMS = {
    "read": {"table": (_TEXT, None)},
    "maintain": {"months_ahead": (_INT, 6)},
    "cleanup": {"retention_months": (_INT, 12), "dry_run": (_BOOL, False)},
}


def make_router(conn_factory: Callable[[], Any], *, require_admin: Callable[..., Any],
                prefix: str = SEED_PREFIX, parent: Optional[str] = "email_events") -> APIRouter:
    """The router. `conn_factory()` takes no arguments and is called once a request; what it
    gives is used for that request:
    - a psycopg AsyncConnectionPool or AsyncConnection: used as it is, and left open;
    - a coroutine (psycopg.AsyncConnection.connect(...), timepart.db.connect_async): the
      connection it makes, closed after the request;
    - an async context manager (pool.connection, engine.connect, an async_sessionmaker's
      session or .begin()) or an async generator (a FastAPI-style dependency): entered for
      the request and left as FastAPI would (a failure is thrown into it).
    A SQLAlchemy session or connection is committed when the call succeeds (an engine in
    AUTOCOMMIT cannot run the client's savepoints). `require_admin` is the application's
    FastAPI dependency that admits admins only; there is no default. `parent` is the
    managed table the routes act on (None: every managed table); GETs take ?table=."""
    if not callable(conn_factory):
        raise TypeError("make_router: conn_factory must be a callable that gives a connection, pool or session")
    if require_admin is None or not callable(require_admin):
        raise TypeError("make_router: require_admin must be the application's FastAPI dependency that admits "
                        "admins only; timepart has no default authentication")
    if parent is not None and (not isinstance(parent, str) or not parent.strip()):
        raise ValueError("make_router: parent must be a table name, or None for every managed table")

    router = APIRouter(prefix=prefix, dependencies=[Depends(require_admin)], tags=["partitions"])

    async def call(table: Optional[str], asked: bool, work):
        """work(manager) on a connection from the factory; an error as its JSON answer.
        `asked`: the table came from the request, so a table PostgreSQL cannot find is the
        request's fault (422), not the router's (500)."""
        try:
            async with request_session(conn_factory) as target:
                return await work(PartitionManager(target, table))
        except Exception as exc:
            response = error_response(exc, asked)
            if response is None:
                raise
            return response

    async def read(request: Request, work, shape=plain):
        try:
            args = await _arguments(request, "read")
        except BadRequest as bad:
            return bad.response()
        table = args["table"]
        result = await call(table or parent, bool(table), work)
        return result if isinstance(result, JSONResponse) else shape(result)

    @router.get("/stats", summary="Per-partition statistics", openapi_extra=_docs("read"))
    async def stats(request: Request):
        return await read(request, lambda m: m.partition_stats(), lambda rows: [_stats_row(r) for r in rows])

    @router.get("/health", summary="Partition system health", openapi_extra=_docs("read"))
    async def health(request: Request):
        return await read(request, lambda m: m.health(), lambda h: plain(h.as_dict()))

    @router.get("/summary", summary="Health, statistics, configuration, jobs, log and alerts",
                openapi_extra=_docs("read"))
    async def summary(request: Request):
        return await read(request, lambda m: m.summary())

    async def act(request: Request, route: str, work):
        try:
            args = await _arguments(request, route)
        except BadRequest as bad:
            return bad.response()
        result = await call(parent, False, lambda m: work(m, args))
        if isinstance(result, JSONResponse):
            return result
        data = plain(result.as_dict())
        if data.get("skipped"):  # another run holds the table: nothing was done
            return JSONResponse(status_code=409, content={**data, "success": False})
        return data if result.success else JSONResponse(status_code=500, content=data)

    @router.post("/maintain", summary="Create current and future partitions", openapi_extra=_docs("maintain"))
    async def maintain(request: Request):
        return await act(request, "maintain", lambda m, a: m.maintain(premake=a["months_ahead"]))

    @router.post("/cleanup", summary="Remove partitions past the retention", openapi_extra=_docs("cleanup"))
    async def cleanup(request: Request):
        return await act(request, "cleanup", lambda m, a: m.cleanup(retention=f"{a['retention_months']} months",
                                                                  dry_run=a["dry_run"]))

    return router


# ---- parameters: the query string or a JSON object body, known keys only -------------

async def _arguments(request: Request, route: str) -> Dict[str, Any]:
    known = _PARAMS[route]
    query: Dict[str, Any] = {}
    for key in set(request.query_params):
        values = request.query_params.getlist(key)
        if len(values) > 1:
            raise BadRequest(f"{key} was given {len(values)} times", f"Got {values}.", "Give it once.")
        query[key] = values[0]
    body: Dict[str, Any] = {}
    raw = await request.body()
    if raw.strip():
        try:
            body = json.loads(raw)
        except ValueError:
            raise BadRequest("the body is not JSON", None, 'Send a JSON object, e.g. {"months_ahead": 6}, or none.')
        if not isinstance(body, dict):
            raise BadRequest("the body is not a JSON object", f"Got {type(body).__name__}.", "Send a JSON object.")
    unknown = sorted((set(query) | set(body)) - set(known))
    if unknown:
        hint = ("?table= is for the GET routes; maintain and cleanup act on the router's table." if "table" in unknown
                else f"Give {', '.join(sorted(known))}, or nothing for the defaults.")
        raise BadRequest(f"unknown parameter {', '.join(unknown)}",
                         f"{request.method} {request.url.path} takes {', '.join(sorted(known))}.", hint)
    args = {}
    for key, (kind, default) in known.items():
        from_query = _parse(key, kind, query[key]) if key in query else None
        from_body = _parse(key, kind, body[key]) if key in body else None
        if key in query and key in body and from_query != from_body:
            raise BadRequest(f"{key} was given twice, with different values",
                             f"The query string says {query[key]}, the body {body[key]}.", "Give it once.")
        args[key] = from_query if key in query else from_body if key in body else default
    return args


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _parse(key: str, kind: str, value: Any) -> Any:
    """A value of the query string (text) or the body (JSON) as its kind; refused if it is not one."""
    if kind == _INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
            return int(value)
    elif kind == _BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
    elif isinstance(value, str):
        if "\x00" in value:
            raise BadRequest(f"{key} holds a NUL character", None, "Give a table name.")
        return value
    raise BadRequest(f"{key} must be {'an' if kind == _INT else 'a'} {kind}", f"Got {value!r}.",
                     {"integer": "e.g. 6", "boolean": "true or false", "text": "a table name"}[kind])


def _docs(route: str) -> dict:
    """The route's parameters for the OpenAPI page (the route parses them itself)."""
    kinds = {_INT: "integer", _BOOL: "boolean", _TEXT: "string"}
    params = [{"name": k, "in": "query", "required": False, "schema": {"type": kinds[kind], "default": default}}
              for k, (kind, default) in _PARAMS[route].items()]
    extra: dict = {"parameters": params}
    if route != "read":
        extra["requestBody"] = {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False,
            "properties": {k: {"type": kinds[kind], "default": default} for k, (kind, default) in _PARAMS[route].items()}}}}}
    return extra


def _stats_row(row) -> dict:
    """One partition in the seed's /stats shape, then the rest of what timepart knows."""
    return plain({"name": row.partition_name, "period": row.period, "record_count": row.record_count,
                  "size_mb": row.size_mb, "oldest_record": row.oldest_record, "newest_record": row.newest_record,
                  "parent_table": row.parent_table, "range_start": row.range_start, "range_end": row.range_end,
                  "index_count": row.index_count, "is_default": row.is_default, "exact": row.exact})
