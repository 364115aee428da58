#!/usr/bin/env bash
# make test: pgTAP (pg_prove) then pytest, on a fresh database in the throwaway cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLUSTER=tools/cluster.sh
$CLUSTER start
trap '$CLUSTER stop' EXIT
eval "$($CLUSTER env)"

# A fresh test database every run, so nothing left by an earlier run can hide a bug.
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $PGDATABASE WITH (FORCE)" -c "CREATE DATABASE $PGDATABASE"
psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION IF NOT EXISTS pgtap"

status=0
echo "== pgTAP"
pg_prove --failures --ext .sql tests/pgtap/ || status=1

echo "== pytest"
set +e
"$ROOT/.venv/bin/python" -m pytest -q tests/py
rc=$?
set -e
# Exit 5 means no tests were collected: a suite that collects nothing is a failure.
if [ $rc -ne 0 ]; then echo "pytest failed (exit $rc)"; status=1; fi
exit $status
