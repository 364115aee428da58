# The front door: make demo | test | test-all | newcomer | bench | install | lint | dist | psql | cli | stop
#   PG=15 (default), 16, 17 or 18 picks the PostgreSQL major of the throwaway cluster.
SHELL := /bin/bash
CLUSTER := tools/cluster.sh
PG ?= 15
export PG
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all sql delta install demo psql cli env stop test test-all newcomer bench bench-quick lint deps dist clean

all: sql

sql:
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) all

# The next upgrade script, assembled from extension/pending.sql and the source (see README).
delta:
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) delta

deps:
	$(CLUSTER) deps

# Into this machine's PostgreSQL (PGXS), for CREATE EXTENSION timepart. Scripts of an earlier
# install (full scripts no longer shipped) go first, so the server sees exactly the base, the
# chain and the newest full script.
install: sql
	$(SUDO) rm -f "$$($(PG_CONFIG) --sharedir)"/extension/timepart--*.sql
	$(SUDO) $(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) install

demo:
	$(CLUSTER) deps demo
	$(CLUSTER) install
	tools/demo.sh

# The demo's cluster, left running by make demo (its own port and database, not the tests').
DEMO := TIMEPART_CLUSTER=demo $(CLUSTER)
psql:
	@$(DEMO) start
	@eval "$$($(DEMO) conn)" && psql -X $(ARGS)

cli:
	@$(DEMO) start
	@eval "$$($(DEMO) conn)" && .venv/bin/timepart $(ARGS)

# eval "$(make -s env)": the demo's connection in your shell.
env:
	@$(DEMO) conn

stop:
	@$(DEMO) stop

# make test TESTS="tests/pgtap/maintain.sql tests/py/test_cli.py" runs just those.
test: deps
	$(CLUSTER) install
	tools/test.sh $(TESTS)

# Every supported major, one after another (what .ci/run calls).
test-all:
	tools/test-all.sh

# A fresh clone and the README's commands, as root and as a plain user (tools/newcomer.sh).
newcomer:
	tools/newcomer.sh

bench: deps
	$(CLUSTER) install
	tools/bench.sh full

bench-quick: deps
	$(CLUSTER) install
	tools/bench.sh quick

lint: deps
	$(CLUSTER) install
	tools/lint.sh

# The PGXN distribution: timepart-X.Y.zip with META.json, the extension and the docs.
dist: sql
	python3 tools/dist.py

clean:
	for pg in 15 16 17 18; do for c in '' demo bench; do TIMEPART_CLUSTER=$$c PG=$$pg $(CLUSTER) stop || true; done; done
	rm -rf .pg .pg-* dist
