#!/usr/bin/env bash
# make test-all: the matrix, one major after another: the full suite on 15 (Debian 12) and
# 17 (Debian 13 root), pgTAP and pytest on 16 and 18 (npm server builds). Every major runs
# even when one fails; the last line sums them up.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
passed=0 failed=0 summary=""
for pg in ${MAJORS:-15 17 16 18}; do
  echo "==== PostgreSQL $pg"
  start=$(date +%s)
  if make -s test PG="$pg"; then passed=$((passed + 1)); result=passed; else failed=$((failed + 1)); result=FAILED; fi
  summary="$summary  PostgreSQL $pg: $result in $(( $(date +%s) - start )) s\n"
done
printf "==== matrix\n%b" "$summary"
echo "matrix: $passed passed, $failed failed"
[ "$failed" = 0 ]
