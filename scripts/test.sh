#!/usr/bin/env bash
# Every check of the project, in the order that fails fastest: lint, unit, end to end, infra.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== deployed app imports no dev code"
.venv/bin/python scripts/check_deploy_imports.py
if [ -f scripts/infra-checks.sh ]; then
  echo "== infra (checkov)"
  bash scripts/infra-checks.sh
fi
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider -n 2 "$@"
