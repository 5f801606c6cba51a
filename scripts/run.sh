#!/usr/bin/env bash
# The main job: `benefits demo`. On a machine with nothing installed it runs on the embedded
# default (SQLite and the embedded event log); give *_DATABASE_URL and *_KAFKA_BOOTSTRAP_SERVERS
# to run it on PostgreSQL and Kafka instead. Extra arguments go to `benefits demo`. Installs the
# runtime profile only (requirements/runtime.txt): no test or lint package.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh runtime
exec .venv/bin/benefits demo "$@"
