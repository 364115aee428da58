#!/usr/bin/env bash
# make bench / bench-quick [PG=15|17] (tools/bench.sh room: the owner's room, 0.12 vs newest): benchmarks on their own throwaway cluster (port 544NN).
# pg_partman is the one this major's packages carry: 4.7 on 15 (Debian 12), 5.x on 17 (Debian 13).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PG=${PG:-15}
export TIMEPART_CLUSTER=bench TIMEPART_PGPORT=$((54400 + PG)) TIMEPART_PGDATABASE=timepart_bench
case " $(tools/cluster.sh features) " in *" pg_partman "*) ;; *) echo "bench: PostgreSQL $PG's build here has no pg_partman: use PG=15 or PG=17" >&2; exit 2 ;; esac
tools/cluster.sh start
eval "$(tools/cluster.sh env)"
# Bigger buffers than the test cluster: the retention case loads millions of indexed rows.
if [ "$(psql -X -Atc "SHOW shared_buffers")" != 1GB ]; then
  psql -X -q -c "ALTER SYSTEM SET shared_buffers = '1GB'" -c "ALTER SYSTEM SET maintenance_work_mem = '256MB'" \
       -c "ALTER SYSTEM SET max_wal_size = '4GB'"
  tools/cluster.sh stop; tools/cluster.sh start
fi
trap 'tools/cluster.sh stop' EXIT
mkdir -p bench/results
if [ "${1:-}" = room ]; then
  "$ROOT/.venv/bin/python" bench/room.py --runs 5 | tee "bench/results/room-pg$PG.md"
  exit 0
fi
if [ "${BENCH_MIGRATE_ONLY:-}" = "" ]; then
  "$ROOT/.venv/bin/python" bench/bench.py --size "${1:-full}" --out "bench/results/bench-${1:-full}-pg$PG.md" ${BENCH_ONLY:+$BENCH_ONLY}
fi
# The online migration with concurrent writes: 1M and 10M rows in the full run
# (BENCH_MIGRATE_ONLY=1 runs just these), 100k in the quick one.
if [ "${1:-full}" = full ]; then sizes="1000000 10000000"; else sizes="100000"; fi
for rows in $sizes; do
  echo "== bench/migrate.py --rows $rows"
  "$ROOT/.venv/bin/python" bench/migrate.py --rows "$rows" | tee "bench/results/migrate-$rows-pg$PG.md"
done
