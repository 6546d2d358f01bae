#!/usr/bin/env bash
# Install everything the relay needs to run and test locally, idempotently:
# the Python venv from the hashed lock requirements-dev.txt (runtime + development, every
# transitive dependency pinned with its hashes: pip --require-hashes refuses anything else),
# and Azurite from npm. Re-runs are cheap: each step is skipped when its inputs have not changed.
# The locks are made by scripts/lock.sh (docs/dependencies.md).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.requirements.sha256

want=$(cat requirements.txt requirements-dev.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMP" 2>/dev/null)" != "$want" ]; then
  echo "bootstrap: installing Python requirements"
  "$VENV/bin/pip" install -q --disable-pip-version-check --require-hashes -r requirements-dev.txt \
    2> >(grep -v "^WARNING: Location" >&2)
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -e . 2> >(grep -v "^WARNING: Location" >&2)
  echo "$want" > "$STAMP"
fi

# Azurite (Blob + Queue emulator) from npm, pinned in package.json / package-lock.json.
if [ -f package.json ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing Node.js and npm from Debian packages"
    (apt-get update -qq && apt-get install -y -qq nodejs npm) >/dev/null
  fi
  lock_want=$(cat package.json package-lock.json 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ ! -x node_modules/.bin/azurite ] || [ "$(cat node_modules/.stamp 2>/dev/null)" != "$lock_want" ]; then
    echo "bootstrap: installing Azurite"
    if [ -f package-lock.json ]; then npm ci --silent --no-audit --no-fund; else npm install --silent --no-audit --no-fund; fi
    echo "$lock_want" > node_modules/.stamp
  fi
fi
