#!/usr/bin/env bash
# make newcomer: what a newcomer does, for real. A fresh clone of this checkout's HEAD in the
# home folder, then the README's commands in order (its "sh newcomer" blocks, then those of
# docs/development.md), line by line. As root, it does that twice: as root in root's home,
# then as a plain user without sudo (made once: tpnewcomer), after the one command the
# README asks root to run for such a user. Each pass removes its clone and stops its
# clusters. Not in `make test`: it runs the whole suite once a pass (about 3 minutes).
set -eEuo pipefail
trap 'echo "newcomer: failed at line $LINENO: $BASH_COMMAND (exit $?)" >&2' ERR
ROOT=$(cd "$(dirname "$0")/.." && pwd)
unset MAKEFLAGS MAKELEVEL MFLAGS   # a newcomer's shell, not a sub-make of `make newcomer`
USER_NAME=${NEWCOMER_USER:-tpnewcomer}

# The lines of the "sh newcomer" blocks of a page, as written.
lines() { awk '/^```sh newcomer$/ {on = 1; next} /^```/ {on = 0} on && NF' "$ROOT/$1"; }

script() {  # what one pass runs, in the clone
  echo "set -eo pipefail"
  for page in README.md docs/development.md; do
    lines "$page" | while IFS= read -r line; do
      printf 'echo %q\n%s </dev/null\n' "+ $line" "$line"
    done
  done
}

# Removes a clone and every cluster the harness made for it (in the clone, or in the cache
# when the server could not enter it), so each pass starts as on a fresh machine.
forget() {  # $1: the user, $2: the clone, $3: the user's home
  local key; key=$(printf '%s' "$2" | md5sum | cut -c1-8)
  local cache=$3/.cache/timepart; [ "$1" = root ] && cache=/var/cache/timepart
  if [ -d "$2" ]; then
    (cd "$2" && if [ "$1" = "$(id -un)" ]; then make -s clean; else su "$1" -c "make -s clean"; fi) >/dev/null 2>&1 || true
    rm -rf "$2"
  fi
  rm -rf "$cache/clusters/$key"*
}

pass() {  # $1: the user; the clone goes into that user's home
  local who=$1 home; home=$(getent passwd "$who" | cut -d: -f6)
  local clone="$home/timepart-newcomer"
  echo "==== newcomer as $who, in $clone"
  forget "$who" "$clone" "$home"
  local run="git clone -q '$ROOT' '$clone' && cd '$clone' && bash -s"
  local status=0
  if [ "$who" = "$(id -un)" ]; then script | (cd "$home" && sh -c "$run") || status=$?
  else script | su - "$who" -c "git config --global --add safe.directory '$ROOT/.git'; $run" || status=$?; fi
  forget "$who" "$clone" "$home"   # whatever happened: clusters stopped and gone, the clone too
  [ "$status" = 0 ] || { echo "newcomer: the pass as $who failed (exit $status)" >&2; exit 1; }
  echo "==== newcomer as $who: passed"
}

if [ "$(id -u)" != 0 ]; then pass "$(id -un)"; exit 0; fi
pass root
id "$USER_NAME" >/dev/null 2>&1 || useradd -m -s /bin/bash "$USER_NAME"
"$ROOT/tools/cluster.sh" packages   # the README's one command for a plain user
pass "$USER_NAME"
