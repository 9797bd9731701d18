# Everything starts from a fresh clone: each target creates .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo serve test test-fast lint conformance bench fuzz clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## demo: a synthetic city (5,000 people, 12 months) through the real Airflow DAG on SQLite
demo: $(STAMP)
	$(BIN)/risk demo --out var/demo

## serve: the web app over the demo database (runs the demo first when there is none); accounts in var/demo/demo-accounts.txt
serve: $(STAMP)
	test -f var/demo/risk.db || $(BIN)/risk demo --out var/demo
	$(BIN)/risk serve --db sqlite:///$(CURDIR)/var/demo/risk.db

## test: lint, then the whole suite (SQLite always; PostgreSQL, Airflow and the rest where marked)
test: lint
	$(BIN)/python -m pytest -q -n 2

## test-fast: SQLite only, no Airflow
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not postgres and not airflow and not slow"

lint: $(STAMP)
	$(BIN)/ruff check risk dags tests benchmarks fuzz testbed
	$(BIN)/mypy risk

## conformance: the contract's sample landing against what it must produce
conformance: $(STAMP)
	../shared/tools/conformance

## bench: risk run against DuckDB reading the same CSV files (a benchmark, not a test); a million people: make bench ARGS=--million
ARGS ?=
bench: $(STAMP)
	$(BIN)/python -m benchmarks.ingest --people 100000 --months 12 $(ARGS)

## fuzz: coverage-guided fuzzing of the delivered-file reader (atheris), FUZZ_SECONDS long (findings land in var/fuzz)
FUZZ_SECONDS ?= 60
fuzz: $(STAMP)
	mkdir -p var/fuzz/corpus && cp fuzz/seeds/* var/fuzz/corpus/
	cd var/fuzz && $(CURDIR)/$(BIN)/python $(CURDIR)/fuzz/reader.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 corpus

clean:
	rm -rf var
