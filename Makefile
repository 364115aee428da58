# The front door: make demo | test | test-all | bench | install | lint | dist | psql | cli | stop
#   PG=15 (default), 16, 17 or 18 picks the PostgreSQL major of the throwaway cluster.
SHELL := /bin/bash
CLUSTER := tools/cluster.sh
PG ?= 15
export PG
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all sql delta install demo test test-all bench bench-quick lint deps dist clean

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

demo: deps
	$(CLUSTER) install
	tools/demo.sh

# make test TESTS="tests/pgtap/maintain.sql tests/py/test_cli.py" runs just those.
test: deps
	$(CLUSTER) install
	tools/test.sh $(TESTS)

# Every supported major, one after another (what .ci/run calls).
test-all:
	tools/test-all.sh

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
	for pg in 15 16 17 18; do PG=$$pg $(CLUSTER) stop || true; done
	rm -rf .pg .pg-* dist
