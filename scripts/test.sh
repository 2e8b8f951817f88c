#!/usr/bin/env bash
# The test command: set up (idempotent), then lint, type-check and run the whole suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/kpa -k panic
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
exec python -m pytest "$@"
