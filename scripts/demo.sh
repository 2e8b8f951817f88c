#!/usr/bin/env bash
# The main job: set up (idempotent), then run the one-machine demo.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
venv="${MODELSCALE_VENV:-$root/.venv}"
cd "$root"
exec "$venv/bin/modelscale" demo "$@"
