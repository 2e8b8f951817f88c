#!/usr/bin/env bash
# The test command: set up (idempotent), then lint, type-check and run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/kpa -k panic
# The suite runs in MODELSCALE_TEST_WORKERS worker processes (2; 0: in this one), a test file
# to a worker: most of its time is spent waiting on real processes and Knative's windows.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --tests
venv="${MODELSCALE_VENV:-$root/.venv}"
cd "$root"
export PATH="$venv/bin:$PATH"
if [ "$#" -eq 0 ]; then
  echo "== ruff"; ruff check autoscaler tests bench functions scripts
  echo "== mypy"; mypy
  for fn in functions/*/; do
    pkg="$(basename "$fn" | tr - _)"
    (cd "$fn" && mypy --config-file "$root/pyproject.toml" "$pkg")
  done
fi
echo "== pytest"
exec python -m pytest -n "${MODELSCALE_TEST_WORKERS:-2}" --dist loadfile "$@"
