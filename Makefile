.PHONY: run test lint lock infra-up infra-down bench bench-baselines fault-run fuzz

# Every target runs on a developer's machine: development unless *_ENVIRONMENT says otherwise (an
# unset environment is production, which refuses the development secrets these runs use).
export INTAKE_ENVIRONMENT ?= development
export PAYOUT_ENVIRONMENT ?= development
export PAYOUT_BANKS_ENVIRONMENT ?= development
export REPORTING_ENVIRONMENT ?= development

# The main job: `benefits demo` (embedded default unless PostgreSQL/Kafka settings are given).
# Installs the runtime dependencies only.
run:
	scripts/run.sh

# The whole test suite from a fresh machine.
test:
	scripts/test.sh

# The gates CI runs before the tests: ruff's rules, ruff's format, mypy over the shipped code,
# strictest on the layers that hold the rules (configuration in pyproject.toml). Every gate runs; any finding fails the target.
LINT_PATHS = services shared tests bench
TYPED_PATHS = services shared
lint:
	scripts/bootstrap.sh test
	@status=0; \
	.venv/bin/ruff check $(LINT_PATHS) || status=1; \
	.venv/bin/ruff format --check --output-format concise $(LINT_PATHS) || status=1; \
	.venv/bin/mypy $(TYPED_PATHS) || status=1; \
	exit $$status

# Regenerate requirements/*.txt (with hashes) from pyproject.toml, keeping the current pins;
# `make lock UPGRADE=1` moves every pin to the newest version allowed.
lock:
	scripts/lock.sh $(if $(UPGRADE),--upgrade)

infra-up:
	scripts/infra.sh up

infra-down:
	scripts/infra.sh down

# Every benchmark in one run: one table, JSON in bench/results/, compared with the previous run.
bench:
	scripts/bootstrap.sh test && scripts/infra.sh up && .venv/bin/python -m bench.run

bench-baselines:
	scripts/bootstrap.sh test && scripts/infra.sh up && .venv/bin/python -m bench.baselines

# 100,000 installments under injected faults, worker kills and infrastructure restarts.
fault-run:
	scripts/bootstrap.sh test && scripts/infra.sh up && .venv/bin/python bench/fault_run.py

# Schemathesis against every service's OpenAPI with many examples.
fuzz:
	scripts/bootstrap.sh test && scripts/infra.sh up && .venv/bin/python bench/fuzz.py
