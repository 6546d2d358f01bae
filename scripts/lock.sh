#!/usr/bin/env bash
# Re-make the hashed dependency locks from the direct dependencies (docs/dependencies.md):
#   requirements.in     -> requirements.txt      (runtime: what the Functions build installs)
#   requirements-dev.in -> requirements-dev.txt  (runtime + development: what bootstrap installs)
# Versions already in the locks are kept unless UPGRADE=1 (or UPGRADE_PACKAGE=name to move one).
# The locks are universal (every platform, Python 3.11 as deployed) and carry the hash of every
# file of each pinned release, so pip --require-hashes accepts whichever wheel fits the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.8
TOOL=${LOCK_TOOL_VENV:-${TMPDIR:-/tmp}/relay-lock-tool}
if [ "$("$TOOL/bin/uv" --version 2>/dev/null | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  python3 -m venv "$TOOL"
  "$TOOL/bin/pip" install -q --disable-pip-version-check "uv==$UV_VERSION"
fi
args=(--quiet --generate-hashes --universal --python-version 3.11 --custom-compile-command scripts/lock.sh)
if [ "${UPGRADE:-}" = 1 ]; then args+=(--upgrade); fi
if [ -n "${UPGRADE_PACKAGE:-}" ]; then args+=(--upgrade-package "$UPGRADE_PACKAGE"); fi

export UV_NO_CONFIG=1
# -o reads the existing lock first: its versions are kept unless asked to upgrade.
"$TOOL/bin/uv" pip compile "${args[@]}" ${LOCK_CONSTRAINTS:+-c "$LOCK_CONSTRAINTS"} requirements.in -o requirements.txt
# The dev lock is constrained by the runtime lock: the tests run on exactly what is deployed.
"$TOOL/bin/uv" pip compile "${args[@]}" -c requirements.txt ${LOCK_CONSTRAINTS:+-c "$LOCK_CONSTRAINTS"} \
  requirements-dev.in -o requirements-dev.txt
echo "locked: requirements.txt ($(grep -c '==' requirements.txt) packages), requirements-dev.txt ($(grep -c '==' requirements-dev.txt) packages)"
