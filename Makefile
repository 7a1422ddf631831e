SHELL := bash
.SHELLFLAGS := -ceu
.DEFAULT_GOAL := help

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HTTP_ADDRESS ?= 127.0.0.1:3000

.PHONY: help
help:
	@echo "make install  - create $(VENV) and install coderapi with its test and dev extras"
	@echo "make run      - install, then serve on $(HTTP_ADDRESS) with the embedded SQLite database"
	@echo "make test     - install, then run the whole test suite (starts PostgreSQL/Redis, installs nginx, chromium, wrk when missing)"
	@echo "make check    - the fast suite (no real servers: -m 'not slow'), for the edit loop"
	@echo "make lint     - ruff and mypy"
	@echo "make bench    - HTTP benchmarks (wrk, real server vs bare Flask); writes BENCHMARKS.md"
	@echo "make hotpath  - in-process cost of a request over a bare Flask app (the quick loop for hot-path work)"
	@echo "make bench-stats - deployment-stats refresh at 100k workspaces / 1M agent stats on PostgreSQL"
	@echo "make cluster  - two nodes on one PostgreSQL and one Redis behind nginx"
	@echo "make soak     - 5 minutes of mixed traffic at concurrency 64 on 2 workers; writes BENCHMARKS.md"

$(PY):
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

.PHONY: install
install: $(PY)
	$(PIP) install --quiet -e '.[test,dev]'

.PHONY: run
run: install
	$(VENV)/bin/coderapi server --http-address $(HTTP_ADDRESS)

.PHONY: system
system:
	scripts/ensure-system.sh

.PHONY: test
test: install system
	cov=$$(mktemp -d); trap 'rm -rf "$$cov"' EXIT; \
	COVERAGE_FILE="$$cov/.coverage" $(VENV)/bin/pytest --cov --cov-report=term:skip-covered

.PHONY: check
check: install
	$(VENV)/bin/pytest -m "not slow"

.PHONY: lint
lint: install
	$(VENV)/bin/ruff check coderapi tests scripts wsgi.py gunicorn.conf.py
	$(VENV)/bin/ruff format --check coderapi tests scripts wsgi.py gunicorn.conf.py
	$(VENV)/bin/mypy

# Several nodes on one PostgreSQL and one Redis behind nginx (NODES=2 by default); Ctrl-C stops them.
NODES ?= 2
.PHONY: cluster
cluster: install system
	NODES=$(NODES) scripts/cluster.sh

# wrk against the real server and a bare Flask app under identical gunicorn settings; writes the
# "HTTP" section of BENCHMARKS.md.
.PHONY: bench
bench: install system
	$(PY) scripts/bench.py --duration 30 --profile

# The WSGI app called in a loop, no server: what each request costs the app itself.
.PHONY: hotpath
hotpath: install
	$(PY) scripts/hotpath.py

.PHONY: bench-stats
bench-stats: install system
	$(PY) scripts/bench_stats.py --workspaces 100000 --agent-stats 1000000 --span 14

# 5 minutes of mixed traffic at concurrency 64 against 2 workers on PostgreSQL; every status checked,
# worker RSS growth under 10%. Writes the "Soak" section of BENCHMARKS.md.
SOAK_SECONDS ?= 300
.PHONY: soak
soak: install system
	$(PY) scripts/soak.py --duration $(SOAK_SECONDS) --concurrency 64 --workers 2 --write
