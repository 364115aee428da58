#!/usr/bin/env bash
# make test [PG=15|16|17|18]: pgTAP (pg_prove) then pytest, on the throwaway cluster of one major.
#   tools/test.sh                       everything
#   tools/test.sh tests/pgtap/maintain.sql tests/py/test_cli.py::test_x   just those
# A test that needs what this major's build lacks (pg_cron, plpgsql_check) is skipped, and
# the run says so: pgTAP files declare it in a "-- needs:" line, pytest tests with a marker.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
CLUSTER=tools/cluster.sh
$CLUSTER start
trap '$CLUSTER stop' EXIT
eval "$($CLUSTER env)"
echo "== PostgreSQL $(psql -X -Atc 'SHOW server_version') (PG=$TIMEPART_PG; has: ${TIMEPART_FEATURES:-no pg_cron, plpgsql_check or pg_partman})"

pgtap=() py=()
for t in "$@"; do
  case "$t" in
    *.sql|*pgtap|*pgtap/) pgtap+=("$t") ;;
    *) py+=("$t") ;;
  esac
done
if [ $# -eq 0 ]; then pgtap=(tests/pgtap/); py=(tests/py); fi

# The files to run, less those needing a feature this build lacks (said, never silent).
files=()
for t in "${pgtap[@]}"; do
  for f in $( [ -d "$t" ] && ls "${t%/}"/*.sql || echo "$t"); do
    needs=$(sed -n 's/^-- needs: //p' "$f")
    missing=""
    for n in $needs; do case " $TIMEPART_FEATURES " in *" $n "*) ;; *) missing="$missing $n" ;; esac; done
    if [ -n "$missing" ]; then echo "skipped on PostgreSQL $TIMEPART_PG: $f (needs$missing, which this build lacks)"
    else files+=("$f"); fi
  done
done

# A fresh test database on every run, so nothing left by an earlier run (or done by
# hand) can upset or hide anything. It is also cron.database_name: the server restarts
# so that pg_cron's launcher finds the new one. pgTAP files run in transactions that
# are rolled back; pytest modules make databases of their own.
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -d postgres \
    -c "DROP DATABASE IF EXISTS $PGDATABASE WITH (FORCE)" -c "CREATE DATABASE $PGDATABASE"
$CLUSTER restart
cron=""
case " $TIMEPART_FEATURES " in *" pg_cron "*) cron="CREATE EXTENSION pg_cron;" ;; esac
PGOPTIONS="-c client_min_messages=warning" psql -X -q -v ON_ERROR_STOP=1 -c "CREATE EXTENSION pgtap" ${cron:+-c "$cron"} >/dev/null

status=0
if [ ${#files[@]} -gt 0 ]; then
  echo "== pgTAP"
  pg_prove --failures --ext .sql "${files[@]}" || status=1
fi

if [ ${#py[@]} -gt 0 ]; then
  echo "== pytest"
  set +e
  "$ROOT/.venv/bin/python" -m pytest -q -rs "${py[@]}"
  rc=$?
  set -e
  # Exit 5 means no tests were collected: a suite that collects nothing is a failure.
  if [ $rc -ne 0 ]; then echo "pytest failed (exit $rc)"; status=1; fi
fi
exit $status
