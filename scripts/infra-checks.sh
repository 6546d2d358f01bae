#!/usr/bin/env bash
# Static checks of infra/ that need neither Azure nor the Bicep CLI:
#   1. every .bicep file parses with pycep-parser, the parser checkov uses (checkov itself only
#      counts a file it cannot parse as a "parsing error" and still exits 0, so an unparsable
#      file would silently escape every check);
#   2. checkov --framework bicep over infra/: any failed check fails this script. A check that does
#      not apply is skipped inline in the .bicep file with its reason (// checkov:skip=ID: reason).
# checkov lives in its own venv (.venv-infra, pinned by requirements-infra.txt) because its
# dependencies conflict with the app's pins. The venv is (re)built when missing or when
# requirements-infra.txt changed, so this runs unattended on a fresh clone.
set -euo pipefail

cd "$(dirname "$0")/.."
venv=.venv-infra
stamp="$venv/.requirements-infra.sha256"

if [ ! -x "$venv/bin/checkov" ] || ! sha256sum --check --status "$stamp" 2>/dev/null; then
  log="$(mktemp)"
  if ! { python3 -m venv "$venv" && "$venv/bin/pip" install -q --disable-pip-version-check -r requirements-infra.txt; } >"$log" 2>&1; then
    echo "infra-checks: could not install requirements-infra.txt into $venv:" >&2
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
  sha256sum requirements-infra.txt >"$stamp"
fi

"$venv/bin/python" - <<'PY'
import sys
from pathlib import Path

from pycep import BicepParser

parser = BicepParser()
failures = 0
for path in sorted(Path("infra").rglob("*.bicep")):
    try:
        parser.parse(file_path=path)
    except Exception as exc:  # lark raises several error types; all mean "checkov cannot read it"
        failures += 1
        detail = " ".join(str(exc).split("\n")[:2])
        print(f"infra-checks: {path} does not parse with pycep-parser (checkov would skip it): {detail}")
sys.exit(1 if failures else 0)
PY

# --skip-download: no call to the Prisma Cloud API (no network here, nothing needed from it).
output="$("$venv/bin/checkov" --framework bicep -d infra --compact --quiet --skip-download 2>&1)" && status=0 || status=$?
echo "$output"
if echo "$output" | grep -Eq "Parsing errors: [1-9]"; then
  echo "infra-checks: checkov could not parse some files (see above)" >&2
  exit 1
fi
exit "$status"
