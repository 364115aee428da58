"""The async client for applications: each method is one call to a timepart SQL
function, over a psycopg AsyncConnection or AsyncConnectionPool, with typed results."""
import inspect
import json
import logging
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, AsyncIterator, Callable, Dict, List, Optional, Union

from psycopg import AsyncConnection
from psycopg.rows import dict_row

logger = logging.getLogger("timepart")

ALERT_CHANNEL = "timepart_alerts"


# ---- results ----------------------------------------------------------------------

@dataclass
class _JsonResult:
    """A jsonb result: the keys we know as fields, any others in `extra`."""
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, data: dict):
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


def _columns(cls) -> str:
    return ", ".join(f.name for f in fields(cls))


# ---- the manager ------------------------------------------------------------------

class PartitionManager:
    """Operations on one managed table (parent), or on every managed table when parent
    is None. `conn` is a psycopg AsyncConnection or AsyncConnectionPool."""

    def __init__(self, conn, parent: Optional[str] = "email_events"):
        self.conn = conn
        self.parent = parent

    @asynccontextmanager
    async def _cursor(self):
        # A pool lends a connection; a connection runs the call in its own transaction
        # (a savepoint when the caller already has one open).
        if isinstance(self.conn, AsyncConnection):
            async with self.conn.transaction(), self.conn.cursor(row_factory=dict_row) as cur:
                yield cur
        else:
            async with self.conn.connection() as conn, conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
                yield cur

    async def _rows(self, query: str, params=()) -> List[dict]:
        async with self._cursor() as cur:
            await cur.execute(query, params)
            return await cur.fetchall()

    async def _value(self, query: str, params=()) -> Any:
        rows = await self._rows(query, params)
        return next(iter(rows[0].values()))

    async def create_partition(self, start: datetime, end: datetime) -> str:
        """Creates the partition for [start, end) with its indexes; returns its name."""
        return await self._value("SELECT timepart.create_partition(%s::regclass, %s, %s)", (self.parent, start, end))

    async def maintain(self, premake: Optional[int] = None) -> OperationResult:
        return OperationResult.from_json(
            await self._value("SELECT timepart.maintain(%s::regclass, %s)", (self.parent, premake)))

    async def cleanup(self, retention: Union[str, timedelta, None] = None, dry_run: bool = False) -> OperationResult:
        return OperationResult.from_json(await self._value(
            "SELECT timepart.cleanup(%s::regclass, %s::interval, %s)", (self.parent, retention, dry_run)))

    async def partition_stats(self) -> List[PartitionStats]:
        rows = await self._rows(f"SELECT {_columns(PartitionStats)} FROM timepart.partition_stats(%s::regclass)",
                                (self.parent,))
        return [PartitionStats(**r) for r in rows]

    async def snapshot_stats(self) -> int:
        """Stores today's per-partition figures (growth history); returns the rows stored."""
        return await self._value("SELECT timepart.snapshot_stats()")

    async def health(self) -> Health:
        return Health.from_json(await self._value("SELECT timepart.health(%s::regclass)", (self.parent,)))

    async def summary(self) -> dict:
        return await self._value("SELECT timepart.summary(%s::regclass)", (self.parent,))

    async def check_alerts(self) -> List[Alert]:
        rows = await self._rows(f"SELECT {_columns(Alert)} FROM timepart.check_alerts(%s::regclass)", (self.parent,))
        return [Alert(**r) for r in rows]

    async def maintenance_log(self, limit: int = 100) -> List[LogEntry]:
        rows = await self._rows(f"SELECT {_columns(LogEntry)} FROM timepart.get_maintenance_log(%s)", (limit,))
        return [LogEntry(**r) for r in rows]


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


# ---- monitoring and alerting ------------------------------------------------------

class PartitionMonitor:
    def __init__(self, manager: PartitionManager):
        self.manager = manager

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
        cur = await conn.execute("SELECT row_to_json(a)::text FROM timepart.open_alerts a")
        for (text,) in await cur.fetchall():
            alert = json.loads(text)
            key = (alert["alert_type"], alert["parent_table"], alert["partition_name"], alert["first_seen"])
            if key not in seen:
                seen.add(key)
                yield alert
