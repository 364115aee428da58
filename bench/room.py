"""What the owner's room (0.13) costs: the same steps on the same table, with timepart
0.12 and with the newest version, side by side in one run on one cluster.
    tools/bench.sh room   (or: .venv/bin/python bench/room.py --runs 3, PG* set)
A daily table with an identity column and two index templates; a back-fill of 300 days,
a no-op maintain over them, statistics and health, and a move of 1,000 rows out of the
default partition. Medians of --runs fresh databases per version."""
import argparse
import statistics
import time
import uuid

import psycopg

STEPS = [
    ("back-fill of 300 daily partitions", "SELECT timepart.maintain('bf', 3, '2025-10-01')"),
    ("no-op maintain over them", "SELECT timepart.maintain('bf', 3, '2025-10-01')"),
    ("partition_stats", "SELECT count(*) FROM timepart.partition_stats('bf')"),
    ("health", "SELECT timepart.health('bf')"),
    ("moving 1,000 waiting rows", "SELECT timepart.maintain('bf', 3, '2025-10-02')"),
]


def run(version):
    name = "room_" + uuid.uuid4().hex[:8]
    with psycopg.connect(dbname="postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(dbname=name, autocommit=True) as conn:
            conn.execute(f"CREATE EXTENSION timepart VERSION '{version}'" if version else "CREATE EXTENSION timepart")
            conn.execute("CREATE TABLE bf (id bigint GENERATED ALWAYS AS IDENTITY, ws int, ts timestamptz NOT NULL, note text) "
                         "PARTITION BY RANGE (ts)")
            conn.execute("SELECT timepart.manage('bf', '1 day', 3, as_of => '2025-01-01')")
            conn.execute("SELECT timepart.add_index_template('bf', 'ws_ts', 'ws, ts DESC')")
            conn.execute("SELECT timepart.add_index_template('bf', 'note', 'note', 'note IS NOT NULL')")
            times = []
            for label, sql in STEPS:
                if label.startswith("moving"):
                    conn.execute("INSERT INTO bf (ws, ts) SELECT g % 10, '2025-10-05'::timestamptz + g * interval '1 second' "
                                 "FROM generate_series(1, 1000) g")
                started = time.perf_counter()
                conn.execute(sql)
                times.append((time.perf_counter() - started) * 1000)
            return times
    finally:
        with psycopg.connect(dbname="postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    newest = None
    with psycopg.connect(dbname="postgres") as conn:
        newest = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'timepart'").fetchone()[0]
    results = {}
    for version in ("0.12", newest):
        runs = [run(version) for _ in range(args.runs)]
        results[version] = [statistics.median(r[i] for r in runs) for i in range(len(STEPS))]
    print(f"| step | 0.12 (ms) | {newest} (ms) | ratio |")
    print("|---|---|---|---|")
    for i, (label, _) in enumerate(STEPS):
        a, b = results["0.12"][i], results[newest][i]
        print(f"| {label} | {a:.1f} | {b:.1f} | {b / a:.2f} |")


if __name__ == "__main__":
    main()
