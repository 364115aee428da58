#!/usr/bin/env bash
# The local PostgreSQL harness: installs what is missing, runs a throwaway
# cluster inside the repo (socket and data under $TIMEPART_PGDIR), stops it.
#   tools/cluster.sh deps | start | stop | env | psql [args]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PGDIR=${TIMEPART_PGDIR:-$ROOT/.pg}
PORT=${TIMEPART_PGPORT:-54329}
DB=${TIMEPART_PGDATABASE:-timepart_test}
PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
VENV=$ROOT/.venv
DEB_PACKAGES="postgresql-15 postgresql-15-cron postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-server-dev-15 postgresql-15-partman postgresql-15-plpgsql-check"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
# PostgreSQL refuses to run as root: the cluster belongs to 'postgres' then.
as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

deps() {
  local missing=""
  for p in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "harness: installing$missing"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing >/dev/null
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || {
      DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq python3-venv >/dev/null
      python3 -m venv "$VENV"; }
  fi
  # The package version is the control file's default_version: a bump reinstalls it.
  if [ ! -f "$VENV/.deps-ok" ] || [ "$ROOT/installer/pyproject.toml" -nt "$VENV/.deps-ok" ] \
     || [ "$ROOT/extension/timepart.control" -nt "$VENV/.deps-ok" ]; then
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    if [ -f "$ROOT/installer/pyproject.toml" ]; then
      "$VENV/bin/pip" install -q -e "$ROOT/installer[test]"
    else
      "$VENV/bin/pip" install -q pytest "psycopg[binary]" click
    fi
    touch "$VENV/.deps-ok"
  fi
}

running() { [ -f "$PGDIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; }

start() {
  if running; then return 0; fi
  if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    rm -rf "$PGDIR"; mkdir -p "$PGDIR/run"
    [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$PGDIR"
    as_owner "$PGBIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log"
    cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$PGDIR/run'
shared_preload_libraries = 'pg_cron'
cron.database_name = '$DB'
cron.use_background_workers = on
max_worker_processes = 16
timezone = 'UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
max_locks_per_transaction = 512
log_min_messages = warning
CONF
  fi
  as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w -t 60 start >/dev/null
  psql_ -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql_ -d postgres -qc "CREATE DATABASE $DB"
}

stop() { if running; then as_owner "$PGBIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >/dev/null; fi; }

envvars() { echo "export PGHOST=$PGDIR/run PGPORT=$PORT PGUSER=postgres PGDATABASE=$DB"; }

psql_() { PGHOST=$PGDIR/run PGPORT=$PORT PGUSER=postgres psql -X -v ON_ERROR_STOP=1 "$@"; }

case "${1:-}" in
  deps) deps ;;
  start) start ;;
  stop) stop ;;
  env) envvars ;;
  psql) shift; psql_ -d "$DB" "$@" ;;
  *) echo "usage: $0 deps|start|stop|env|psql" >&2; exit 2 ;;
esac
