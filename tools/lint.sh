#!/usr/bin/env bash
# make lint: Python (ruff: errors and pyflakes) and SQL (plpgsql_check over every function,
# plus the hardening rules) on the throwaway cluster.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ -x .venv/bin/ruff ] || .venv/bin/pip install -q ruff
.venv/bin/ruff check --select E9,F --quiet installer tests bench tools
tools/cluster.sh start
trap 'tools/cluster.sh stop' EXIT
eval "$(tools/cluster.sh env)"
pg_prove --ext .sql tests/pgtap/static_checks.sql
