#!/usr/bin/env bash
# Regenerate the lock files in requirements/ (`make lock`), with a hash for every artifact:
#   test.txt      runtime + the test and lint extras, resolved once, together;
#   runtime.txt   the runtime dependencies alone, constrained to test.txt's pins (so the tests run
#                 on exactly the versions that ship);
#   build.txt     the build backend of [build-system] (installing the project checks its hashes);
#   bootstrap.txt uv itself (requirements/bootstrap.in).
# The current pins are kept unless asked: `make lock UPGRADE=1` (or `scripts/lock.sh --upgrade`,
# `scripts/lock.sh --upgrade-package NAME`); other arguments go to the test.txt resolution.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh uv
# Any platform, CPython 3.11 and later: the image (python:3.11-slim) and every developer's machine.
compile=(.venv/uv/bin/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes
  --custom-compile-command "make lock")
"${compile[@]}" "$@" pyproject.toml --extra test --extra lint -o requirements/test.txt
"${compile[@]}" pyproject.toml -c requirements/test.txt -o requirements/runtime.txt
.venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
  | "${compile[@]}" "$@" - -o requirements/build.txt
"${compile[@]}" requirements/bootstrap.in -o requirements/bootstrap.txt
