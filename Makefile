# The front door: make demo | test | bench | install | lint | sql
SHELL := /bin/bash
CLUSTER := tools/cluster.sh
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all sql delta install demo test test-sql test-py bench bench-quick lint deps clean

all: sql

sql:
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) all

# The next upgrade script, assembled from extension/pending.sql and the source (see README).
delta:
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) delta

deps:
	$(CLUSTER) deps

# Scripts of an earlier install (full scripts no longer shipped) go first, so the server
# sees exactly the base, the chain and the newest full script.
install: sql
	$(SUDO) rm -f "$$($(PG_CONFIG) --sharedir)"/extension/timepart--*.sql
	$(SUDO) $(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) install

demo: deps install
	tools/demo.sh

# make test TESTS="tests/pgtap/maintain.sql tests/py/test_cli.py" runs just those.
test: deps install
	tools/test.sh $(TESTS)

bench: deps install
	tools/bench.sh full

bench-quick: deps install
	tools/bench.sh quick

lint: deps install
	tools/lint.sh

clean:
	$(CLUSTER) stop || true
	rm -rf .pg .pg-*
