"""Converting an unpartitioned table (timepart.migrate_plan, CALL timepart.migrate):
the plan as data, and the run with its progress reported to a callback."""
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Optional

import psycopg
from psycopg import sql
from psycopg.rows import dict_row


@dataclass
class PlanRow:
    partition_name: str
    range_start: datetime
    range_end: datetime
    estimated_rows: int
    rows_from: str
    estimated_seconds: float


@dataclass
class Progress:
    rows: int
    total: int
    rate: int

    @property
    def eta_seconds(self) -> Optional[float]:
        return max(self.total - self.rows, 0) / self.rate if self.rate else None


def _progress(detail: Optional[str]) -> Optional[Progress]:
    """A progress notice's DETAIL (JSON written by timepart._migrate_progress), else None."""
    try:
        data = json.loads(detail or "")
    except ValueError:
        return None
    if not isinstance(data, dict) or "rows_copied" not in data:
        return None
    return Progress(int(data["rows_copied"]), int(data["rows_estimated"]), int(data["rows_per_second"]))


def plan(conn: psycopg.Connection, table: str, key: str, interval: str = "1 month",
         time_zone: str = "UTC") -> list:
    """The partitions the table's rows need, rows per partition and the estimated time."""
    rows = conn.execute("SELECT * FROM timepart.migrate_plan(%s::pg_catalog.regclass, %s, %s::pg_catalog.interval, %s)",
                        (table, key, interval, time_zone)).fetchall()
    return [PlanRow(*r) for r in rows]


@dataclass
class Carried:
    item: str
    name: Optional[str]
    carried: bool
    how: str


def carried(conn: psycopg.Connection, table: str) -> list:
    """What a migration carries over from the table, and what it cannot (timepart.migrate_carried)."""
    rows = conn.execute("SELECT c.item, c.name, c.carried, c.how FROM timepart.migrate_carried(%s::pg_catalog.regclass) c",
                        (table,)).fetchall()
    return [Carried(*r) for r in rows]


def run(conn: psycopg.Connection, table: str, key: str, interval: str = "1 month", batch_size: int = 50000,
        on_progress: Optional[Callable[[Progress], None]] = None,
        on_message: Optional[Callable[[str], None]] = None) -> dict:
    """CALLs timepart.migrate on an autocommit connection; progress NOTICEs go to on_progress,
    other notices to on_message. Returns the finished timepart.migrations row."""
    def handle(diag):
        text = diag.message_primary or ""
        if not text.startswith("timepart.migrate"):
            return
        progress = _progress(diag.message_detail)
        if progress and on_progress:
            on_progress(progress)
        elif not progress and on_message:
            on_message(text)

    conn.add_notice_handler(handle)
    try:
        conn.execute(sql.SQL("CALL timepart.migrate({}::pg_catalog.regclass, {}, {}::pg_catalog.interval, {})").format(
            sql.Literal(table), sql.Literal(key), sql.Literal(interval), sql.Literal(batch_size)))
    finally:
        conn.remove_notice_handler(handle)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute("SELECT m.id, m.state, m.source::pg_catalog.text AS old_table, m.target::pg_catalog.text AS table,"
                           " m.rows_copied, m.changes_applied, m.source_rows, m.target_rows, m.source_checksum,"
                           " m.target_checksum, m.finished_at OPERATOR(pg_catalog.-) m.started_at AS duration"
                           " FROM timepart.migration(%s::pg_catalog.regclass) m", (table,)).fetchone() or {}
