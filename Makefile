# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-kerberos lint types unit smoke bench bench-plan bench-verify bench-capture clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m m365archive.sim.demo

lint: $(STAMP)
	$(BIN)/ruff check m365archive tests benchmarks
	$(BIN)/ruff format --check m365archive tests benchmarks
	$(BIN)/lint-imports --no-cache
	$(BIN)/vulture

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -n auto --durations=20

# The wheel as a user gets it: built (sdist and wheel), installed with [sim] into a fresh venv outside
# the source tree, then run from there (tests/smoke/wheel_smoke.py says what it checks).
smoke: $(STAMP)
	tests/smoke/run.sh $(BIN)/python $(PYTHON)

test: lint types unit smoke

# On-premises Exchange with Kerberos against a real MIT KDC on loopback (tests/test_kerberos.py). Needs Debian's
# krb5-kdc, krb5-admin-server and libkrb5-dev (.ci/run installs them); adds the [kerberos] extra to the venv.
test-kerberos: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,kerberos]'
	$(BIN)/pytest -q -m kerberos tests/test_kerberos.py --durations=10

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# Only the read-only plan of `make bench`, at BENCH_PLAN_SIZES (default 20000,100000): peak RSS, time, requests.
bench-plan: $(STAMP)
	$(BIN)/python -m benchmarks.plan_memory

# Only the verify part of `make bench`, at BENCH_VERIFY_USERS (default 10000): requests per mailbox, time, RSS.
bench-verify: $(STAMP)
	BENCH_ONLY=verify $(BIN)/python -m benchmarks.run

# Only the capture part of `make bench`, at BENCH_CAPTURE_USERS (default 100000): time, peak RSS, requests, writes.
bench-capture: $(STAMP)
	BENCH_ONLY=capture $(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .pytest_cache .ruff_cache
