# The front door: make demo | test | bench | install | lint | sql
SHELL := /bin/bash
CLUSTER := tools/cluster.sh
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all sql install demo test test-sql test-py bench bench-quick lint deps clean

all: sql

sql:
	$(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) all

deps:
	$(CLUSTER) deps

install: sql
	$(SUDO) $(MAKE) -s -C extension PG_CONFIG=$(PG_CONFIG) install

demo: deps install
	tools/demo.sh

test: deps install
	tools/test.sh

bench: deps install
	tools/bench.sh full

bench-quick: deps install
	tools/bench.sh quick

lint: deps install
	tools/lint.sh

clean:
	$(CLUSTER) stop || true
	rm -rf .pg .pg-*
