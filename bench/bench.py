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


FILL = """INSERT INTO {table} (workspace_id, campaign_id, lead_id, event_type, external_id, created_at)
SELECT md5('w' || g % 100)::uuid, md5('c' || g % 2000)::uuid, md5('l' || g % 200000)::uuid,
       (ARRAY['sent','delivery','open','click','bounce']::{enum}[])[1 + g % 5],
       CASE WHEN g % 3 = 0 THEN 'msg-' || g END,
       '2024-01-01'::timestamptz + (g % 2678400) * interval '1 second'
FROM generate_series(1, {rows}) g"""


def bench_retention(rows, runs):
    """Retiring one month of `rows` rows: timepart cleanup vs DROP TABLE vs DELETE + VACUUM."""
    tp, drop, delete, vacuum = [], [], [], []
    for _ in range(runs):
        with database() as conn:
            conn.execute("SELECT timepart.create_email_events_table('public', '2024-01-15')")
            conn.execute(FILL.format(table="email_events", enum="email_event_type", rows=rows))
            conn.execute(SEED_TABLE.replace("CREATE TYPE email_event_type", "CREATE TYPE raw_type").format(name="raw_events")
                         .replace("email_event_type NOT NULL", "raw_type NOT NULL"))
            conn.execute("CREATE TABLE raw_events_2024_01 PARTITION OF raw_events FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')")
            conn.execute(FILL.format(table="raw_events", enum="raw_type", rows=rows))
            conn.execute("CREATE TABLE flat (LIKE raw_events INCLUDING ALL)")
            for col in ("workspace_id, created_at DESC", "campaign_id, event_type, created_at DESC",
                        "lead_id, event_type, created_at DESC", "external_id"):
                conn.execute(f"CREATE INDEX ON flat ({col})")
            conn.execute("INSERT INTO flat SELECT * FROM raw_events")
            conn.execute("INSERT INTO flat SELECT id, workspace_id, campaign_id, lead_id, campaign_lead_id, event_type, email_id, "
                         "external_id, metadata, created_at + interval '1 month' FROM raw_events")
            conn.execute("CHECKPOINT")
            tp.append(timed(conn, "SELECT timepart.cleanup('email_events', '12 months', false, '2025-03-15')"))
            drop.append(timed(conn, "DROP TABLE raw_events_2024_01"))
            delete.append(timed(conn, "DELETE FROM flat WHERE created_at < '2024-02-01'"))
            vacuum.append(timed(conn, "VACUUM flat"))
    t, d = statistics.median(tp), statistics.median(drop)
    de, va = statistics.median(delete), statistics.median(vacuum)
    label = f"{rows // 1000}k" if rows < 1_000_000 else f"{rows // 1_000_000}M"
    return [(f"retention of a {label}-row partition vs DROP TABLE", f"{t:.0f} ms", f"{d:.0f} ms", f"{t / d:.2f}x", "<= 1.2x DROP"),
            (f"retention of {label} rows vs DELETE + VACUUM, unpartitioned", f"{t:.0f} ms",
             f"{de:.0f} + {va:.0f} ms", f"{t / (de + va):.2f}x", "")]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--out")
    args = parser.parse_args()
    quick = args.size == "quick"
    rows = []
    rows += bench_create_partition(runs=10 if quick else 30)
    rows += bench_noop_maintain([14, 120] if quick else [14, 120, 1000], runs=10 if quick else 30)
    rows += bench_retention(rows=100_000 if quick else 1_000_000, runs=1 if quick else 3)
    header = "| case | timepart | raw DDL | ratio | goal |\n|---|---|---|---|---|\n"
    table = header + "".join(f"| {' | '.join(r)} |\n" for r in rows)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table)


if __name__ == "__main__":
    main()
