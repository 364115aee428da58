#!/usr/bin/env bash
# make bench / bench-quick: benchmarks on their own throwaway cluster (port 54349).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export TIMEPART_PGDIR=$ROOT/.pg-bench TIMEPART_PGPORT=54349 TIMEPART_PGDATABASE=timepart_bench
tools/cluster.sh start
# Bigger buffers than the test cluster: the retention case loads millions of indexed rows.
grep -q "timepart bench" "$TIMEPART_PGDIR/data/postgresql.conf" || {
  printf "# timepart bench\nshared_buffers = '1GB'\nmaintenance_work_mem = '256MB'\nmax_wal_size = '4GB'\n" >> "$TIMEPART_PGDIR/data/postgresql.conf"
  tools/cluster.sh stop; tools/cluster.sh start; }
trap 'tools/cluster.sh stop' EXIT
eval "$(tools/cluster.sh env)"
mkdir -p bench/results
"$ROOT/.venv/bin/python" bench/bench.py --size "${1:-full}" --out "bench/results/bench-${1:-full}.md"
