"""timepart benchmarks: each case builds its own database, times an operation a
number of times and reports the median. Run with `make bench` (or bench-quick)."""
import argparse
import statistics
import time
import uuid
from contextlib import contextmanager

import psycopg

SEED_TABLE = """
CREATE TYPE email_event_type AS ENUM ('sent', 'delivery', 'open', 'click', 'reply', 'bounce', 'complaint', 'unsubscribe', 'webhook');
CREATE TABLE {name} (
    id uuid DEFAULT gen_random_uuid(), workspace_id uuid NOT NULL, campaign_id uuid NOT NULL, lead_id uuid NOT NULL,
    campaign_lead_id uuid, event_type email_event_type NOT NULL, email_id text, external_id text,
    metadata jsonb DEFAULT '{{}}', created_at timestamptz DEFAULT now(), PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
CREATE INDEX ON {name} (workspace_id, created_at DESC);
CREATE INDEX ON {name} (campaign_id, event_type, created_at DESC);
CREATE INDEX ON {name} (lead_id, event_type, created_at DESC);
CREATE INDEX ON {name} (event_type, created_at DESC) WHERE event_type IN ('open', 'click', 'delivery', 'bounce');
CREATE INDEX ON {name} (external_id) WHERE external_id IS NOT NULL;
"""


@contextmanager
def database():
    """A fresh database with timepart installed, dropped afterwards."""
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(dbname=name, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timepart")
            yield conn
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def timed(conn, sql, params=None):
    started = time.perf_counter()
    conn.execute(sql, params)
    return (time.perf_counter() - started) * 1000


def month(i):
    """The first of the i-th month after January 1990, as an ISO date."""
    return f"{1990 + i // 12:04d}-{i % 12 + 1:02d}-01"


def bench_create_partition(runs):
    """One partition with the seed's five indexes: timepart vs raw DDL."""
    with database() as conn:
        conn.execute("SELECT timepart.create_email_events_table('public', '1990-01-15')")
        conn.execute(SEED_TABLE.replace("CREATE TYPE email_event_type", "CREATE TYPE raw_type").format(name="raw_events")
                     .replace("email_event_type NOT NULL", "raw_type NOT NULL"))
        conn.execute(SEED_TABLE.replace("CREATE TYPE email_event_type", "CREATE TYPE rawd_type").format(name="rawd_events")
                     .replace("email_event_type NOT NULL", "rawd_type NOT NULL"))
        conn.execute("CREATE TABLE rawd_events_default PARTITION OF rawd_events DEFAULT")
        tp, raw, rawd = [], [], []
        for i in range(24, 24 + runs):
            tp.append(timed(conn, "SELECT timepart.create_partition('email_events', %s, %s)", (month(i), month(i + 1))))
            raw.append(timed(conn, f"CREATE TABLE raw_events_{i} PARTITION OF raw_events "
                                   f"FOR VALUES FROM ('{month(i)}') TO ('{month(i + 1)}')"))
            rawd.append(timed(conn, f"CREATE TABLE rawd_events_{i} PARTITION OF rawd_events "
                                    f"FOR VALUES FROM ('{month(i)}') TO ('{month(i + 1)}')"))
        t, r, rd = statistics.median(tp), statistics.median(raw), statistics.median(rawd)
        return [("create 1 partition (5 indexes) vs raw DDL, no default partition", f"{t:.1f} ms", f"{r:.1f} ms",
                 f"{t / r:.2f}x", "<= 1.3x raw"),
                ("create 1 partition (5 indexes) vs raw DDL, both with a default partition", f"{t:.1f} ms", f"{rd:.1f} ms",
                 f"{t / rd:.2f}x", "<= 1.3x raw")]


def bench_noop_maintain(sizes, runs):
    """maintain when nothing is due, on tables of growing partition counts."""
    rows = []
    goals = {14: 5, 120: 10, 1000: 50}
    for size in sizes:
        with database() as conn:
            conn.execute("SELECT timepart.create_email_events_table('public', '2024-01-15')")
            conn.execute("SELECT timepart.configure('email_events', %s)", (f'{{"premake": {size - 2}}}',))
            conn.execute("SELECT timepart.maintain('email_events', NULL, '2024-01-15')")
            count = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'email_events'::regclass").fetchone()[0]
            times = [timed(conn, "SELECT timepart.maintain('email_events', NULL, '2024-01-15')") for _ in range(runs)]
            med = statistics.median(times)
            rows.append((f"no-op maintain, {count} partitions", f"{med:.1f} ms", "", "", f"<= {goals.get(size, '?')} ms"))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--out")
    args = parser.parse_args()
    quick = args.size == "quick"
    rows = []
    rows += bench_create_partition(runs=10 if quick else 30)
    rows += bench_noop_maintain([14, 120] if quick else [14, 120, 1000], runs=10 if quick else 30)
    header = "| case | timepart | raw DDL | ratio | goal |\n|---|---|---|---|---|\n"
    table = header + "".join(f"| {' | '.join(r)} |\n" for r in rows)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
