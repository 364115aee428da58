#!/usr/bin/env bash
# make test: pgTAP (pg_prove) then pytest, on a fresh database in the throwaway cluster.
#   tools/test.sh                       everything
#   tools/test.sh tests/pgtap/maintain.sql tests/py/test_cli.py::test_x   just those
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLUSTER=tools/cluster.sh
$CLUSTER start
trap '$CLUSTER stop' EXIT
eval "$($CLUSTER env)"

pgtap=() py=()
for t in "$@"; do
  case "$t" in
    *.sql|*pgtap|*pgtap/) pgtap+=("$t") ;;
    *) py+=("$t") ;;
  esac
done
if [ $# -eq 0 ]; then pgtap=(tests/pgtap/); py=(tests/py); fi

# The test database is also cron.database_name: it is kept (dropping it would stop the
# pg_cron launcher until the next restart) and cleaned instead, so nothing left by an
# earlier run can hide a bug. pgTAP files run in transactions that are rolled back;
# pytest modules make databases of their own.
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -c "DROP EXTENSION IF EXISTS timepart CASCADE" \
    -c "CREATE EXTENSION IF NOT EXISTS pgtap" -c "CREATE EXTENSION IF NOT EXISTS pg_cron" \
    -c "SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname LIKE 'timepart-%'" >/dev/null

status=0
if [ ${#pgtap[@]} -gt 0 ]; then
  echo "== pgTAP"
  pg_prove --failures --ext .sql "${pgtap[@]}" || status=1
fi

if [ ${#py[@]} -gt 0 ]; then
  echo "== pytest"
  set +e
  "$ROOT/.venv/bin/python" -m pytest -q "${py[@]}"
  rc=$?
  set -e
  # Exit 5 means no tests were collected: a suite that collects nothing is a failure.
  if [ $rc -ne 0 ]; then echo "pytest failed (exit $rc)"; status=1; fi
fi
exit $status
