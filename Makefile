# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit lock clean bench bench-ingest bench-reconcile bench-compare bench-margin bench-proxy bench-serve

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/talktime demo

test: $(STAMP) lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q

# Regenerate the lock file after changing dependencies in pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml requirements-build.in --extra dev --generate-hashes \
		--python-version 3.11 --output-file requirements.lock

clean:
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache

# Ingestion load test: a real server on loopback, embedded store, bounded in time and events (benchmarks/).
bench-ingest: $(STAMP)
	$(BIN)/python benchmarks/bench_ingest.py --seconds 20 --max-events 2000000 --batch 10000 --clients 2
	$(BIN)/python benchmarks/bench_ingest.py --seconds 20 --max-events 2000000 --batch 10000 --clients 2 --workers 2

# Reconciliation speed: a million Twilio statement lines against a million records (benchmarks/).
bench-reconcile: $(STAMP)
	$(BIN)/python benchmarks/bench_reconcile.py --lines 1000000

# Metering speed: talktime meter --summary vs hand-written DuckDB SQL vs the scalar reference (N=10M).
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_meter.py --records $${N:-10000000}

# Provider switch speed: talktime compare on the vectorised engine at 1M and 10M records, the Python reference
# on a sample; seconds and peak memory (benchmarks/).
bench-compare: $(STAMP)
	$(BIN)/python benchmarks/bench_compare.py --records $${N:-1000000,10000000}

# WebSocket metering proxy: latency it adds per message on loopback (p50/p99 vs direct), connections held at
# once and its memory per connection (benchmarks/).
bench-proxy: $(STAMP)
	$(BIN)/python benchmarks/bench_proxy.py --messages 10000 --connections 2000

# Margin speed: talktime margin (cost stack, price, margin per call) on the vectorised engine at 1M and 10M
# whole-call records, the Python reference on a sample; seconds and peak memory (benchmarks/).
bench-margin: $(STAMP)
	$(BIN)/python benchmarks/bench_margin.py --records $${N:-1000000,10000000}

# Reads while serving: usage for a customer-month and a whole tenant, record look-ups, and ingest beside them,
# over a store of N events (10M by default; N=1000000 for a quick run) (benchmarks/).
bench-serve: $(STAMP)
	$(BIN)/python benchmarks/bench_serve.py --events $${N:-10000000}
