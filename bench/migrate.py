#!/usr/bin/env python3
"""Benchmark of CALL timepart.migrate: converts a table of N rows (1M by default) while a
concurrent client keeps inserting, and reports rows per second and how long writers
were held up (the swap transaction's duration and the worst insert latency), and
whether any row was lost or duplicated. The swap applies and verifies only the changes
since the last catch-up round, so its length does not grow with the table.

Connects with the usual PG* variables (or --dsn); needs timepart installed (it runs
CREATE EXTENSION IF NOT EXISTS timepart). Usage: bench/migrate.py [--rows N] [--batch-size N]"""
import argparse
import statistics
import threading
import time

import psycopg

TABLE = "bench_migrate_events"


def setup(conn, rows):
    conn.execute("CREATE EXTENSION IF NOT EXISTS timepart")
    conn.execute(f"SELECT timepart.migrate_abort(source) FROM timepart.migrations "
                 f"WHERE source_name = 'public.{TABLE}' AND state IN ('copying', 'catching_up')")
    conn.execute(f"DROP TABLE IF EXISTS {TABLE}, {TABLE}_unpartitioned_old CASCADE")
    conn.execute(f"""CREATE TABLE {TABLE} (
        id bigserial, workspace_id int NOT NULL, event_type text NOT NULL, created_at timestamptz NOT NULL,
        payload jsonb DEFAULT '{{}}', PRIMARY KEY (id, created_at))""")
    conn.execute(f"CREATE INDEX {TABLE}_workspace_created_idx ON {TABLE} (workspace_id, created_at DESC)")
    conn.execute(f"CREATE INDEX {TABLE}_event_type_idx ON {TABLE} (event_type, created_at DESC)")
    # A year of events, spread evenly.
    conn.execute(f"""INSERT INTO {TABLE} (workspace_id, event_type, created_at, payload)
        SELECT g %% 500, (ARRAY['sent','open','click','bounce'])[1 + g %% 4],
               timestamptz '2024-01-01 00:00+00' + (g * 31536000.0 / %s) * interval '1 second',
               jsonb_build_object('n', g)
        FROM generate_series(0, %s - 1) g""", (rows, rows))
    conn.execute(f"ANALYZE {TABLE}")


def inserter(dsn, stop, latencies):
    """One insert at a time into the table by name (after the swap: the partitioned one)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        while not stop.is_set():
            began = time.perf_counter()
            conn.execute(f"INSERT INTO {TABLE} (workspace_id, event_type, created_at) VALUES (1, 'open', now() - interval '1 day')")
            latencies.append(time.perf_counter() - began)
            time.sleep(0.002)


def migrate(dsn, batch_size):
    with psycopg.connect(dsn, autocommit=True) as conn:
        began = time.perf_counter()
        conn.execute(f"CALL timepart.migrate('{TABLE}', 'created_at', batch_size => {batch_size})")
        elapsed = time.perf_counter() - began
        swap = conn.execute("SELECT details FROM timepart.maintenance_log WHERE operation_type = 'migrate_swap' "
                            "AND success ORDER BY id DESC LIMIT 1").fetchone()[0]
        done = conn.execute("SELECT rows_copied, changes_applied, target_rows FROM timepart.migrations "
                            f"WHERE target = '{TABLE}'::regclass ORDER BY id DESC LIMIT 1").fetchone()
    return elapsed, swap, done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default="", help="Connection string (default: PG* variables).")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=50_000)
    parser.add_argument("--keep", action="store_true", help="Keep the tables afterwards.")
    args = parser.parse_args()

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        began = time.perf_counter()
        setup(conn, args.rows)
        print(f"set up {args.rows} rows in {time.perf_counter() - began:.1f} s")

    stop, latencies = threading.Event(), []
    writer = threading.Thread(target=inserter, args=(args.dsn, stop, latencies))
    writer.start()
    try:
        elapsed, swap, (copied, changes, final_rows) = migrate(args.dsn, args.batch_size)
        time.sleep(0.2)
    finally:
        stop.set()
        writer.join()

    with psycopg.connect(args.dsn, autocommit=True) as conn:
        now_rows, distinct_ids = conn.execute(f"SELECT count(*), count(DISTINCT id) FROM {TABLE}").fetchone()
        if not args.keep:
            conn.execute(f"DROP TABLE {TABLE}_unpartitioned_old")
            conn.execute(f"SELECT timepart.unmanage('{TABLE}')")
            conn.execute(f"DROP TABLE {TABLE}")
    ms = sorted(x * 1000 for x in latencies)
    lines = [
        ("rows migrated", f"{copied}"),
        ("concurrent inserts", f"{len(latencies)} (applied as {changes} captured changes)"),
        ("rows after the swap", f"{final_rows} (all present: {now_rows == args.rows + len(latencies)}, "
                                f"duplicated: {now_rows - distinct_ids})"),
        ("total time", f"{elapsed:.1f} s"),
        ("rows per second", f"{args.rows / elapsed:,.0f}"),
        ("swap transaction (writes wait)", f"{float(swap['swap_ms']):.0f} ms, {swap['attempts']} attempt(s)"),
        ("insert latency max", f"{ms[-1]:.0f} ms" if ms else "-"),
        ("insert latency p99", f"{ms[int(len(ms) * 0.99) - 1]:.1f} ms" if ms else "-"),
        ("insert latency median", f"{statistics.median(ms):.1f} ms" if ms else "-"),
    ]
    width = max(len(k) for k, _ in lines)
    print(f"\n{'measure'.ljust(width)}  value\n{'-' * width}  {'-' * 30}")
    for key, value in lines:
        print(f"{key.ljust(width)}  {value}")


if __name__ == "__main__":
    main()
