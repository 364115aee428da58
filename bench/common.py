"""Shared pieces of the benchmarks: throwaway databases, the seed's table for each
contender (timepart, raw DDL, pg_partman), fast bulk loads, timing and table rows."""
import statistics
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg

# The seed's five indexes: (timepart template suffix, columns, partial-index condition).
INDEXES = [
    ("workspace_created_idx", "workspace_id, created_at DESC", None),
    ("campaign_event_idx", "campaign_id, event_type, created_at DESC", None),
    ("lead_event_idx", "lead_id, event_type, created_at DESC", None),
    ("event_type_idx", "event_type, created_at DESC", "event_type IN ('open', 'click', 'delivery', 'bounce')"),
    ("external_id_idx", "external_id", "external_id IS NOT NULL"),
]

SEED_TABLE = """
CREATE TYPE {enum} AS ENUM ('sent', 'delivery', 'open', 'click', 'reply', 'bounce', 'complaint', 'unsubscribe', 'webhook');
CREATE TABLE {name} (
    id uuid DEFAULT gen_random_uuid(), workspace_id uuid NOT NULL, campaign_id uuid NOT NULL, lead_id uuid NOT NULL,
    campaign_lead_id uuid, event_type {enum} NOT NULL, email_id text, external_id text,
    metadata jsonb DEFAULT '{{}}', created_at timestamptz DEFAULT now(), PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
"""

# `rows` events spread evenly over one month from `start`; ids ascend (a uuid pool
# keyed by the row number) and the other keys come from realistic pools.
FILL = """INSERT INTO {table} (id, workspace_id, campaign_id, lead_id, event_type, external_id, created_at)
SELECT ('00000000-0000-4000-8000-' || lpad(to_hex({offset} + g), 12, '0'))::uuid,
       md5('w' || g % 100)::uuid, md5('c' || g % 2000)::uuid, md5('l' || g % 200000)::uuid,
       (ARRAY['sent','delivery','open','click','bounce']::{enum}[])[1 + g % 5],
       CASE WHEN g % 3 = 0 THEN 'msg-' || g END,
       {start}::timestamptz + (g - 1) * ((({start}::timestamptz + interval '1 month') - {start}::timestamptz) / {rows})
FROM generate_series(1, {rows}) g"""


@contextmanager
def database(extensions=("timepart",)):
    """A fresh database with the given extensions (pg_partman goes in schema partman), dropped afterwards."""
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(dbname=name, autocommit=True) as conn:
            for ext in extensions:
                if ext == "pg_partman":
                    conn.execute("CREATE SCHEMA partman; CREATE EXTENSION pg_partman SCHEMA partman")
                else:
                    conn.execute(f"CREATE EXTENSION {ext}")
            yield conn
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def timed(conn, sql, params=None):
    """Milliseconds one statement takes, round trip included."""
    started = time.perf_counter()
    conn.execute(sql, params)
    return (time.perf_counter() - started) * 1000


def median_of(conn, sql, runs, params=None):
    return statistics.median(timed(conn, sql, params) for _ in range(runs))


def month(i):
    """The first of the i-th month after January 1990, as an ISO date."""
    return f"{1990 + i // 12:04d}-{i % 12 + 1:02d}-01"


def add_months(iso_first, n):
    y, m = int(iso_first[:4]), int(iso_first[5:7]) - 1 + n
    return f"{y + m // 12:04d}-{m % 12 + 1:02d}-01"


def current_month(conn):
    return conn.execute("SELECT date_trunc('month', now())::date::text").fetchone()[0]


def create_timepart_table(conn, as_of):
    """The seed's table as timepart makes it: monthly, five index templates, 6 ahead, 12 months kept."""
    conn.execute("SELECT timepart.create_email_events_table('public', %s)", (as_of,))
    return "email_events", "email_event_type"


def create_raw_table(conn, name, default_partition=True):
    """The seed's table with its five indexes on the parent, partitions left to the caller."""
    enum = f"{name}_type"
    conn.execute(SEED_TABLE.format(name=name, enum=enum))
    for suffix, cols, where in INDEXES:
        conn.execute(f"CREATE INDEX {name}_{suffix} ON {name} ({cols})" + (f" WHERE {where}" if where else ""))
    if default_partition:
        conn.execute(f"CREATE TABLE {name}_default PARTITION OF {name} DEFAULT")
    return name, enum


def partman_version(conn):
    """pg_partman's major version here: 4 (Debian 12) or 5 (Debian 13)."""
    return int(conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'pg_partman'").fetchone()[0].split(".")[0])


def partman_create_parent(conn, table, premake, start):
    """pg_partman's create_parent, monthly, at its own defaults otherwise: 4.x takes
    'native' and 'monthly', 5.x an interval (and partitions natively, by range, always)."""
    if partman_version(conn) >= 5:
        return conn.execute("SELECT partman.create_parent(%s, 'created_at', '1 month', p_premake := %s, "
                            "p_start_partition := %s, p_jobmon := false)", (table, premake, start))
    return conn.execute("SELECT partman.create_parent(%s, 'created_at', 'native', 'monthly', p_premake := %s, "
                        "p_start_partition := %s, p_jobmon := false)", (table, premake, start))


def create_partman_table(conn, name, premake, start):
    """The seed's table handed to pg_partman (4.7 or 5.x): monthly, `premake` ahead from `start`."""
    _, enum = create_raw_table(conn, name, default_partition=False)
    partman_create_parent(conn, f"public.{name}", premake, start)
    return name, enum


def partition_count(conn, parent):
    return conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = %s::regclass", (parent,)).fetchone()[0]


def load_partition(conn, parent, enum, part, start, rows, offset=0):
    """A one-month partition `part` of `parent` holding `rows` events, built the fast way:
    a standalone table (LIKE the parent, as timepart builds its partitions), loaded,
    indexed with the templates' names (<partition>_<suffix>), then attached, so every
    index attaches to the parent's. The result is the catalog state timepart's own
    create_partition leaves, at a quarter of the cost of inserting through six indexes.
    An existing (empty) partition of that name is dropped first."""
    end = add_months(start, 1)
    conn.execute(f"DROP TABLE IF EXISTS {part}")
    conn.execute(f"CREATE TABLE {part} (LIKE {parent} INCLUDING ALL EXCLUDING INDEXES)")
    conn.execute(FILL.format(table=part, enum=enum, rows=rows, offset=offset, start=f"'{start}'"))
    for suffix, cols, where in INDEXES:
        conn.execute(f"CREATE INDEX {part}_{suffix} ON {part} ({cols})" + (f" WHERE {where}" if where else ""))
    conn.execute(f"ALTER TABLE {part} ADD PRIMARY KEY (id, created_at)")
    conn.execute(f"ALTER TABLE {parent} ATTACH PARTITION {part} FOR VALUES FROM ('{start}') TO ('{end}')")


def ms(x):
    """A duration for the table: ms below 10 s, seconds above."""
    if x is None:
        return ""
    if x >= 10000:
        return f"{x / 1000:.1f} s"
    return f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms"


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else ""


@dataclass
class Row:
    """One line of the results table. Numbers are already formatted; `met` is yes/no/blank."""
    case: str
    timepart: str = ""
    raw: str = ""
    partman: str = ""
    vs_raw: str = ""
    vs_partman: str = ""
    goal: str = ""
    met: str = ""

    HEADER = ("case", "timepart", "raw DDL", "pg_partman", "timepart ÷ raw", "timepart ÷ pg_partman", "goal", "met")

    def cells(self):
        return (self.case, self.timepart, self.raw, self.partman, self.vs_raw, self.vs_partman, self.goal, self.met)


def met(ok):
    return "yes" if ok else "NO"


def render(rows):
    """The one results table, as markdown."""
    lines = ["| " + " | ".join(Row.HEADER) + " |", "|" + "---|" * len(Row.HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines) + "\n"
