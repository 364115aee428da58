"""timepart benchmarks, side by side with raw DDL and pg_partman 4.7, on one throwaway
cluster (tools/bench.sh starts it; `make bench`, `make bench-quick`).

Where things live:
  common.py     throwaway databases, the seed's table per contender, bulk loads, table rows
  cases.py      creating partitions, no-op maintenance, retention, stats/health, seed queries
  lockqueue.py  a long reader vs maintenance vs a stream of inserts (timepart and pg_partman)
  soak.py       pgbench inserts while maintain/cleanup loop over simulated days, with faults
  traffic.py    the worst insert wait while maintain moves a backlog and cleanup drops 1,000 partitions
This file picks the sizes, runs the cases and prints ONE table (medians; the machine is
shared, so single numbers are noisy)."""
import argparse
import sys
import time

from cases import bench_big_table, bench_create_partition, bench_maintain, bench_retention
from common import render
from lockqueue import bench_lock_queue
from soak import bench_soak
from traffic import bench_traffic

SIZES = {
    "quick": dict(create_runs=10, maintain_sizes=[14, 120], maintain_runs=10, retention_rows=100_000,
                  retention_runs=1, big_months=12, big_rows=100_000, big_runs=10, hold_seconds=3, soak_seconds=30,
                  traffic_rows=100_000, traffic_partitions=200),
    "full": dict(create_runs=30, maintain_sizes=[14, 120, 1000], maintain_runs=20, retention_rows=1_000_000,
                 retention_runs=3, big_months=12, big_rows=1_000_000, big_runs=3, hold_seconds=8, soak_seconds=90,
                 traffic_rows=1_000_000, traffic_partitions=1000),
}

CASES = ("create", "maintain", "retention", "big", "lock", "soak", "traffic")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", action="append", choices=CASES, help="run only these cases (repeatable)")
    parser.add_argument("--out", help="also write the table (markdown) here")
    args = parser.parse_args()
    s = SIZES[args.size]
    wanted = args.only or CASES
    runners = {
        "create": lambda: bench_create_partition(s["create_runs"]),
        "maintain": lambda: bench_maintain(s["maintain_sizes"], s["maintain_runs"]),
        "retention": lambda: bench_retention(s["retention_rows"], s["retention_runs"]),
        "big": lambda: bench_big_table(s["big_months"], s["big_rows"], s["big_runs"]),
        "lock": lambda: bench_lock_queue(s["hold_seconds"]),
        "soak": lambda: bench_soak(s["soak_seconds"]),
        "traffic": lambda: bench_traffic(s["traffic_rows"], s["traffic_partitions"]),
    }
    rows = []
    started = time.monotonic()
    for case in CASES:
        if case in wanted:
            t0 = time.monotonic()
            rows += runners[case]()
            print(f"bench: {case} done in {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    table = render(rows)
    note = (f"\n{args.size} run, {time.strftime('%Y-%m-%d')}, {time.monotonic() - started:.0f} s in all. "
            "Medians of repeated runs on a shared 2-core machine (fsync off); single-shot figures "
            "are marked as such. ratio < 1 means timepart is faster.\n")
    print(table + note)
    if args.out:
        with open(args.out, "w") as f:
            f.write(table + note)


if __name__ == "__main__":
    main()
