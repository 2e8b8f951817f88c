#!/usr/bin/env bash
# The test command: set up (idempotent), then lint, type-check and run the whole suite.
# Extra arguments go to pytest instead, in one process, e.g. scripts/test.sh tests/kpa -k panic
# The whole suite runs in two phases: every test but the end-to-end ones (marker e2e) in
# MODELSCALE_TEST_WORKERS worker processes (2; 0: in this one), a test file to a worker, as
# most of their time waits on real processes and Knative's windows; then the end-to-end tests
# one at a time, alone on the machine, as their figures (latency knees, cold starts, the
# simulator's parity with one-machine mode) are measured on real processes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh" --tests
venv="${MODELSCALE_VENV:-$root/.venv}"
cd "$root"
export PATH="$venv/bin:$PATH"
if [ "$#" -gt 0 ]; then
  echo "== pytest"
  exec python -m pytest "$@"
fi
echo "== ruff"; ruff check autoscaler tests bench functions scripts
echo "== mypy"; mypy
for fn in functions/*/; do
  pkg="$(basename "$fn" | tr - _)"
  (cd "$fn" && mypy --config-file "$root/pyproject.toml" "$pkg")
done
workers="${MODELSCALE_TEST_WORKERS:-2}"
echo "== pytest: all but the end-to-end tests, in $workers worker process(es)"
rc=0
python -m pytest -n "$workers" --dist loadfile -m "not e2e" || rc=$?
echo "== pytest: the end-to-end tests, one at a time"
python -m pytest -m e2e || rc=$((rc ? rc : $?))
exit "$rc"
