#!/usr/bin/env bash
# The whole test suite from a fresh machine: Python packages, PostgreSQL, Kafka, Chromium, pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$(date +%s)
scripts/bootstrap.sh test
scripts/infra.sh up
if [ -x scripts/browser.sh ]; then scripts/browser.sh; fi
mkdir -p test-artifacts
.venv/bin/python -m pytest "$@"
echo "test suite finished in $(( $(date +%s) - start )) s (installs and infrastructure start included)"
