#!/usr/bin/env bash
# Debian's Chromium for the dashboard's browser test (idempotent: does nothing when present).
#
#   scripts/browser.sh          install /usr/bin/chromium if it is missing
#
# The test drives it headless through Playwright's Python package with executable_path set, so
# no browser build is ever downloaded by Playwright itself.
set -euo pipefail

CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    echo "[browser] $("$CHROMIUM" --version 2>/dev/null || echo chromium) already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# Fonts with Vietnamese glyphs so screenshots show diacritics.
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core fonts-liberation >/dev/null
echo "[browser] installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
