#!/usr/bin/env bash
# Create the project's virtualenv (.venv) and install one profile from the lock files, every
# artifact checked against its hash (idempotent: a stamp over the lock files says it is done):
#   runtime (default)  what the services and `benefits demo` import: requirements/runtime.txt
#   test               runtime + the test suite, benchmarks, fuzzing and the gates: requirements/test.txt
#   uv                 only uv itself, in .venv/uv (what `make lock` needs)
# The project itself is installed editable, without dependencies. Nothing goes outside .venv.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
profile="${1:-runtime}"
case "$profile" in
  runtime | test | uv) ;;
  *) echo "usage: scripts/bootstrap.sh [runtime|test|uv]" >&2; exit 2 ;;
esac
PYTHON="${PYTHON:-python3}"
UV=.venv/uv/bin/uv

digest() { cat "$@" | sha1sum | cut -c1-12; }

# No pip in the virtualenv: uv manages it, and skipping ensurepip saves seconds.
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv --without-pip .venv
fi

# uv, pinned with its hashes, installed by the interpreter's own pip into .venv/uv.
uv_stamp=".venv/.uv-$(digest requirements/bootstrap.txt)"
if [ ! -f "$uv_stamp" ] || [ ! -x "$UV" ]; then
  pip=("$PYTHON" -m pip)
  if ! "$PYTHON" -m pip --version >/dev/null 2>&1; then
    # An interpreter without pip (Debian's python3): borrow one in a throwaway virtualenv.
    "$PYTHON" -m venv .venv/pip
    pip=(.venv/pip/bin/python -m pip)
  fi
  rm -rf .venv/uv
  PIP_ROOT_USER_ACTION=ignore "${pip[@]}" install --quiet --disable-pip-version-check --no-deps --require-hashes \
    --target .venv/uv -r requirements/bootstrap.txt
  rm -rf .venv/pip .venv/.uv-*
  touch "$uv_stamp"
fi
[ "$profile" = uv ] && exit 0

# A stamp per profile over what decides the result: the lock, the build backend's lock and the
# project's metadata (entry points). A test venv already holds everything the runtime one needs.
stamp_for() { echo ".venv/.installed-$1-$(digest "requirements/$1.txt" requirements/build.txt pyproject.toml)"; }
stamp="$(stamp_for "$profile")"
if [ -f "$stamp" ] || { [ "$profile" = runtime ] && [ -f "$(stamp_for test)" ]; }; then
  exit 0
fi
# Exactly the lock: whatever another profile or an older lock left is removed.
"$UV" pip sync --quiet --python .venv/bin/python --require-hashes "requirements/$profile.txt"
"$UV" pip install --quiet --python .venv/bin/python --no-deps \
  --build-constraints requirements/build.txt --require-build-hashes \
  --preview-features build-dependency-hashes -e .
rm -f .venv/.installed-*
touch "$stamp"
