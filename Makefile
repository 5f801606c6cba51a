.PHONY: run test infra-up infra-down bench bench-baselines fault-run fuzz

# Every target runs on a developer's machine: development unless *_ENVIRONMENT says otherwise (an
# unset environment is production, which refuses the development secrets these runs use).
export INTAKE_ENVIRONMENT ?= development
export PAYOUT_ENVIRONMENT ?= development
export PAYOUT_BANKS_ENVIRONMENT ?= development
export REPORTING_ENVIRONMENT ?= development

# The main job: `benefits demo` (embedded default unless PostgreSQL/Kafka settings are given).
run:
	scripts/run.sh

# The whole test suite from a fresh machine.
test:
	scripts/test.sh

infra-up:
	scripts/infra.sh up

infra-down:
	scripts/infra.sh down

# Every benchmark in one run: one table, JSON in bench/results/, compared with the previous run.
bench:
	scripts/bootstrap.sh && scripts/infra.sh up && .venv/bin/python -m bench.run

bench-baselines:
	scripts/bootstrap.sh && scripts/infra.sh up && .venv/bin/python -m bench.baselines

# 100,000 installments under injected faults, worker kills and infrastructure restarts.
fault-run:
	scripts/bootstrap.sh && scripts/infra.sh up && .venv/bin/python bench/fault_run.py

# Schemathesis against every service's OpenAPI with many examples.
fuzz:
	scripts/bootstrap.sh && scripts/infra.sh up && .venv/bin/python bench/fuzz.py
