#!/usr/bin/env bash
# Set up everything modelscale needs on a Debian machine; safe to run again.
#
#   scripts/setup.sh            the runtime: virtual environment, package, kubectl, example models
#   scripts/setup.sh --tests    also the test tools (dev extras, Prometheus, Chromium)
#
# The virtual environment is .venv in the checkout (MODELSCALE_VENV overrides it). Each step checks
# first and does nothing when its result is already there.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${MODELSCALE_VENV:-$root/.venv}"
data="${MODELSCALE_DATA:-$root/.data}"
with_tests=0
for arg in "$@"; do
  case "$arg" in
    --tests) with_tests=1 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --tests)" >&2; exit 2 ;;
  esac
done

say() { printf '[setup] %s\n' "$*" >&2; }

apt_updated=0
apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { say "need root or sudo to install: $*"; exit 1; }
    sudo="sudo"
  fi
  if [ "$apt_updated" -eq 0 ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 1. A Python of at least 3.11 with venv.
find_python() {
  for candidate in python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}
if [ ! -x "$venv/bin/python" ]; then
  py="$(find_python || true)"
  if [ -z "$py" ]; then
    say "installing python3 and python3-venv from Debian's packages"
    apt_install python3 python3-venv python3-pip
    py="$(find_python)"
  fi
  say "creating the virtual environment $venv with $py"
  "$py" -m venv "$venv" || { apt_install python3-venv; "$py" -m venv "$venv"; }
fi
pybin="$venv/bin/python"

# 2. The package and its dependencies: installed when pyproject.toml changed since the last install
#    or when an extra asked for is not in yet (scripts/install_state.py keeps the record in the
#    virtual environment), so alternating setup.sh and setup.sh --tests installs nothing again.
extras=()
[ "$with_tests" -eq 1 ] && extras=(dev)
state="$venv/.install-state-modelscale.json"
if ! "$pybin" "$root/scripts/install_state.py" check "$state" "$root/pyproject.toml" "${extras[@]}"; then
  spec="."
  [ "${#extras[@]}" -gt 0 ] && spec=".[$(IFS=,; echo "${extras[*]}")]"
  say "installing modelscale$( [ "$with_tests" -eq 1 ] && echo ' with test tools') into $venv (a few minutes the first time)"
  # -qq: errors only (pip's warnings about the machine's package indexes are not ours to fix)
  "$pybin" -m pip install -qq --upgrade pip >/dev/null
  (cd "$root" && "$pybin" -m pip install -qq -e "$spec")
  rm -f "$venv"/.modelscale-*  # the stamps earlier versions of this script left
  "$pybin" "$root/scripts/install_state.py" record "$state" "$root/pyproject.toml" "${extras[@]}"
fi

# 3. kubectl: the one on PATH, else Debian's package.
if ! command -v kubectl >/dev/null 2>&1; then
  say "kubectl not on PATH: installing it from Debian's packages"
  apt_install kubectl 2>/dev/null || apt_install kubernetes-client
fi

# 4. System tools the tests drive: a real Prometheus server and headless Chromium.
if [ "$with_tests" -eq 1 ]; then
  command -v prometheus >/dev/null 2>&1 || { say "installing prometheus"; apt_install prometheus; }
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 ||
    { say "installing chromium and chromium-driver"; apt_install chromium chromium-driver; }
fi

# 5. Example models (made here, never downloaded).
if [ -f "$root/autoscaler/examples/build.py" ]; then
  "$pybin" -m autoscaler.examples.build --out "$data/models"
fi
say "ready: $venv"
