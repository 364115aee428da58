"""The async client for applications: each method is a call to a timepart SQL function,
over a psycopg AsyncConnection or AsyncConnectionPool, or a SQLAlchemy AsyncSession or
AsyncConnection (the optional `sqlalchemy` extra; see runner.py), with typed results."""
import inspect
import json
import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Dict, Iterable, List, Optional, Tuple, Union

from . import db
from .db import NotInstalledError  # noqa: F401  (raised by every call; importable from here)
from .runner import decoded, runner_for

logger = logging.getLogger("timepart")

ALERT_CHANNEL = "timepart_alerts"


# ---- results ----------------------------------------------------------------------

@dataclass
class _JsonResult:
    """A jsonb result: the keys we know as fields, any others in `extra`."""
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data):
        data = decoded(data)
        known = {f.name for f in fields(cls)} - {"extra"}
        obj = cls(**{k: v for k, v in data.items() if k in known})
        obj.extra = {k: v for k, v in data.items() if k not in known}
        return obj

    def as_dict(self) -> dict:
        data = asdict(self)
        return {**{k: v for k, v in data.items() if k != "extra"}, **data["extra"]}


@dataclass
class OperationResult(_JsonResult):
    """The seed's /maintain and /cleanup shape."""
    success: bool = False
    created_partitions: List[str] = field(default_factory=list)
    dropped_partitions: List[list] = field(default_factory=list)  # cleanup: [[name, record_count], ...]
    errors: List[str] = field(default_factory=list)
    execution_time_ms: float = 0
    dry_run: bool = False

    @classmethod
    def combined(cls, results: Iterable["OperationResult"]) -> "OperationResult":
        """Several calls (one a table) as one result, as a call covering those tables
        returns it: lists joined, counts and times added, success only if all succeeded."""
        merged = {}
        for data in (r.as_dict() for r in results):
            for key, value in data.items():
                if key not in merged:
                    merged[key] = value
                elif key == "success":
                    merged[key] = merged[key] and value
                elif isinstance(value, (list, int, float)) and not isinstance(value, bool):
                    merged[key] = merged[key] + value
        return cls.from_json(merged)


@dataclass
class Health(_JsonResult):
    """The seed's /health shape."""
    status: str = "error"
    issues: List[str] = field(default_factory=list)
    recommendations: List[str] = field(default_factory=list)
    partition_count: int = 0
    total_size_mb: float = 0
    oldest_partition: Optional[str] = None
    newest_partition: Optional[str] = None


@dataclass
class PartitionStats:
    """One partition_stats row; `name` is partition_name under the seed's /stats key."""
    name: str = field(init=False)
    parent_table: str
    partition_name: str
    period: Optional[str]
    range_start: Optional[datetime]
    range_end: Optional[datetime]
    record_count: int
    size_mb: Decimal
    oldest_record: Optional[datetime]
    newest_record: Optional[datetime]
    index_count: int
    is_default: bool
    exact: bool

    def __post_init__(self):
        self.name = self.partition_name


@dataclass
class Alert:
    alert_type: str
    severity: str
    parent_table: Optional[str]
    partition_name: Optional[str]
    message: str
    recommendation: Optional[str]
    value: Optional[Decimal]
    threshold: Optional[Decimal]
    first_seen: Optional[datetime]
    last_seen: Optional[datetime]
    is_new: bool


@dataclass
class LogEntry:
    id: int
    operation_type: str
    parent_table: Optional[str]
    partition_name: Optional[str]
    success: bool
    created_at: datetime
    details: dict
    error: Optional[str]
    duration: Optional[timedelta]
    run_by: str
    run_as: str

    def __post_init__(self):
        self.details = decoded(self.details)


@dataclass
class ManagedTable:
    parent: str   # schema-qualified, as the SQL functions report it
    name: str     # the table's own name


def _columns(cls) -> str:
    return ", ".join(f.name for f in fields(cls) if f.init)


def _interval(value: Union[str, timedelta, None]) -> Optional[str]:
    """An interval as PostgreSQL reads it from text (asyncpg binds no str as interval)."""
    if isinstance(value, timedelta):
        return f"{value.days} days {value.seconds + value.microseconds / 1e6} seconds"
    return value


# ---- the manager ------------------------------------------------------------------

class PartitionManager:
    """Operations on one managed table (parent), or on every managed table when parent
    is None. `conn`: a psycopg AsyncConnection or AsyncConnectionPool, a SQLAlchemy
    AsyncSession or AsyncConnection (each call then runs in a SAVEPOINT of the caller's
    transaction, which the caller commits), or another manager (its connection)."""

    def __init__(self, conn, parent: Optional[str] = "email_events"):
        if isinstance(conn, PartitionManager):  # another manager's connection
            conn = conn.conn
        self.conn = conn
        self.runner = runner_for(conn)
        self.parent = parent

    def for_table(self, parent: Optional[str]) -> "PartitionManager":
        """A manager of another table over the same connection."""
        return PartitionManager(self, parent)

    async def _rows(self, query: str, **params) -> List[dict]:
        return await self.runner.rows(query, params)

    async def _value(self, query: str, **params) -> Any:
        rows = await self._rows(query, **params)
        return next(iter(rows[0].values()))

    async def require_installed(self) -> None:
        """Raises UntrustedError when schema timepart (or a name it trusts) belongs to a
        role the caller must not trust, NotInstalledError when timepart is not in the
        database (every call also raises that when it fails for that reason)."""
        await self.runner.require_installed()

    async def create_partition(self, start: datetime, end: datetime) -> str:
        """Creates the partition of the period holding `start`, with its indexes; returns its
        name. Bounds with a time of day (the seed's datetime.now().replace(day=1)) become
        the period's: `end` moves to the start of its own period, or, when that is not
        after `start`'s, to the end of `start`'s period. Aligned bounds stay as they are;
        reversed ones reach SQL unchanged, which refuses them."""
        start, end = await self._period_bounds(start, end)
        return await self._value("SELECT timepart.create_partition(%(parent)s::pg_catalog.regclass, %(start)s, %(end)s)",
                                 parent=self.parent, start=start, end=end)

    async def _period_bounds(self, start: datetime, end: datetime) -> Tuple[datetime, datetime]:
        """create_partition's rule, on the table's own periods (timepart.period_of)."""
        rows = await self._rows(
            "SELECT s.range_start, CASE WHEN e.range_start OPERATOR(pg_catalog.>) s.range_start THEN e.range_start"
            " ELSE s.range_end END AS range_end FROM timepart.period_of(%(parent)s::pg_catalog.regclass, %(start)s) s,"
            " timepart.period_of(%(parent)s::pg_catalog.regclass, %(end)s) e"
            " WHERE %(end)s::pg_catalog.timestamptz OPERATOR(pg_catalog.>) %(start)s::pg_catalog.timestamptz",
            parent=self.parent, start=start, end=end)
        return (rows[0]["range_start"], rows[0]["range_end"]) if rows else (start, end)

    async def maintain(self, premake: Optional[int] = None) -> OperationResult:
        return OperationResult.from_json(await self._value(
            "SELECT timepart.maintain(%(parent)s::pg_catalog.regclass, %(premake)s::pg_catalog.int4)",
            parent=self.parent, premake=premake))

    async def cleanup(self, retention: Union[str, timedelta, None] = None, dry_run: bool = False) -> OperationResult:
        return OperationResult.from_json(await self._value(
            "SELECT timepart.cleanup(%(parent)s::pg_catalog.regclass, %(retention)s::pg_catalog.text::pg_catalog.interval,"
            " %(dry_run)s::pg_catalog.bool)",
            parent=self.parent, retention=_interval(retention), dry_run=dry_run))

    async def partition_stats(self) -> List[PartitionStats]:
        rows = await self._rows(
            f"SELECT {_columns(PartitionStats)} FROM timepart.partition_stats(%(parent)s::pg_catalog.regclass)",
            parent=self.parent)
        return [PartitionStats(**r) for r in rows]

    async def snapshot_stats(self) -> int:
        """Stores today's per-partition figures (growth history); returns the rows stored."""
        return await self._value("SELECT timepart.snapshot_stats()")

    async def health(self) -> Health:
        return Health.from_json(await self._value("SELECT timepart.health(%(parent)s::pg_catalog.regclass)", parent=self.parent))

    async def summary(self) -> dict:
        return decoded(await self._value("SELECT timepart.summary(%(parent)s::pg_catalog.regclass)", parent=self.parent))

    async def check_alerts(self) -> List[Alert]:
        rows = await self._rows(f"SELECT {_columns(Alert)} FROM timepart.check_alerts(%(parent)s::pg_catalog.regclass)",
                                parent=self.parent)
        return [Alert(**r) for r in rows]

    async def maintenance_log(self, limit: int = 100) -> List[LogEntry]:
        rows = await self._rows(
            f"SELECT {_columns(LogEntry)} FROM timepart.get_maintenance_log(%(limit)s::pg_catalog.int4)", limit=limit)
        return [LogEntry(**r) for r in rows]

    async def tables(self) -> List[ManagedTable]:
        """The managed tables (every one, or this manager's), in parent order."""
        rows = await self._rows(
            "SELECT pg_catalog.concat(pg_catalog.quote_ident(n.nspname), '.', pg_catalog.quote_ident(r.relname)) AS parent,"
            " r.relname::pg_catalog.text AS name FROM timepart.config c"
            " JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) c.parent"
            " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) r.relnamespace"
            " WHERE %(parent)s::pg_catalog.regclass IS NULL OR c.parent OPERATOR(pg_catalog.=) %(parent)s::pg_catalog.regclass"
            " ORDER BY 1", parent=self.parent)
        return [ManagedTable(**r) for r in rows]


class EmailEventsPartitionManager(PartitionManager):
    """The seed's manager for email_events, with the seed's method names."""

    def __init__(self, conn, parent: str = "email_events"):
        super().__init__(conn, parent)

    async def maintain_partitions(self, months_ahead: int = 6) -> OperationResult:
        return await self.maintain(premake=months_ahead)

    async def cleanup_old_partitions(self, retention_months: int = 12) -> OperationResult:
        return await self.cleanup(retention=f"{int(retention_months)} months")

    async def get_partition_stats(self) -> List[PartitionStats]:
        return await self.partition_stats()

    async def check_partition_health(self) -> Health:
        return await self.health()

    async def get_maintenance_log(self, limit: int = 100) -> List[LogEntry]:
        return await self.maintenance_log(limit)


async def get_partition_maintenance_log(limit: int = 100, conn=None) -> List[LogEntry]:
    """The newest maintenance log rows (the seed's diagnostics call). `conn`: a connection,
    pool, session or manager; without one, a connection from DATABASE_URL / PG* is opened
    for the call and closed."""
    if conn is not None:
        return await PartitionManager(conn, parent=None).maintenance_log(limit)
    own = await db.connect_async()
    try:
        return await PartitionManager(own, parent=None).maintenance_log(limit)
    finally:
        await own.close()


# ---- monitoring and alerting ------------------------------------------------------

class PartitionMonitor:
    """The seed's monitor. Given a manager (the seed's PartitionMonitor(partition_manager))
    it watches that manager's table; given a connection, pool or session, every managed table."""

    def __init__(self, target):
        self.manager = target if isinstance(target, PartitionManager) else PartitionManager(target, parent=None)

    async def run_comprehensive_check(self) -> List[Alert]:
        """Evaluates the alert rules; returns the open alerts (new ones are flagged is_new)."""
        return await self.manager.check_alerts()

    async def get_monitoring_summary(self) -> dict:
        return await self.manager.summary()


AlertHandler = Callable[[List[Alert]], Any]


class PartitionAlerting:
    """Passes alerts to every handler (sync or async); a failing handler is logged and
    does not keep the others from running."""

    def __init__(self):
        self.handlers: List[AlertHandler] = []

    def add_handler(self, handler: AlertHandler) -> None:
        self.handlers.append(handler)

    async def send_alerts(self, alerts: List[Alert]) -> None:
        if not alerts:
            return
        for handler in self.handlers:
            try:
                outcome = handler(alerts)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                logger.exception("timepart alert handler %r failed", handler)


_LEVELS = {"critical": logging.CRITICAL, "warning": logging.WARNING, "info": logging.INFO}


def log_alert_handler(alerts: List[Alert]) -> None:
    """Logs each alert at the level its severity calls for."""
    for alert in alerts:
        logger.log(_LEVELS.get(alert.severity, logging.WARNING), "[%s] %s: %s (%s)", alert.severity.upper(),
                   alert.alert_type, alert.message, alert.recommendation or "no recommendation")


async def listen_alerts(conn) -> AsyncIterator[Any]:
    """Yields each open alert once, read from timepart.open_alerts whenever the
    timepart_alerts channel rings. A notification is a doorbell, not a message: any role
    may NOTIFY on any channel, so its payload is never trusted. `conn` must be an
    autocommit AsyncConnection of a role that reads open_alerts; runs until cancelled."""
    await conn.execute(f"LISTEN {ALERT_CHANNEL}")
    seen = set()
    while True:
        async for _ in conn.notifies(stop_after=1):
            pass
        cur = await conn.execute("SELECT pg_catalog.row_to_json(a)::pg_catalog.text FROM timepart.open_alerts a")
        for (text,) in await cur.fetchall():
            alert = json.loads(text)
            key = (alert["alert_type"], alert["parent_table"], alert["partition_name"], alert["first_seen"])
            if key not in seen:
                seen.add(key)
                yield alert
