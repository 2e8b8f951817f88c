"""What scripts/setup.sh installed into the virtual environment, and whether a request is covered.

    python scripts/install_state.py check  STATE PYPROJECT [EXTRA...]   exit 0: covered, 1: install
    python scripts/install_state.py record STATE PYPROJECT [EXTRA...]

STATE (a file in the virtual environment) holds the SHA-256 of pyproject.toml at the last install
and the extras installed then. A request is covered when pyproject.toml is unchanged and its
extras are among those installed: `setup.sh` after `setup.sh --tests` installs nothing, and an
edited pyproject.toml installs again. Only the standard library: it runs before the package is in.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path


def digest(pyproject: Path) -> str:
    return hashlib.sha256(pyproject.read_bytes()).hexdigest()


def read_state(state: Path) -> tuple[str, frozenset[str]] | None:
    """(pyproject digest, extras) as recorded, or None when absent or unreadable."""
    try:
        raw = json.loads(state.read_text())
        return str(raw["pyproject_sha256"]), frozenset(str(e) for e in raw["extras"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def covered(state: Path, pyproject: Path, extras: list[str]) -> bool:
    """True when the last install, of this pyproject.toml, included every extra asked for."""
    recorded = read_state(state)
    if recorded is None:
        return False
    sha, installed = recorded
    return sha == digest(pyproject) and set(extras) <= installed


def record(state: Path, pyproject: Path, extras: list[str]) -> None:
    """After an install of ``extras``: those, and the ones installed before when pyproject.toml
    is unchanged (an install adds packages, it removes none)."""
    sha = digest(pyproject)
    recorded = read_state(state)
    kept = recorded[1] if recorded is not None and recorded[0] == sha else frozenset()
    body = {"pyproject_sha256": sha, "extras": sorted(set(extras) | kept)}
    tmp = state.with_name(state.name + ".tmp")
    tmp.write_text(json.dumps(body) + "\n")
    tmp.replace(state)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] not in ("check", "record"):
        print(__doc__, file=sys.stderr)
        return 2
    command, state, pyproject, extras = argv[0], Path(argv[1]), Path(argv[2]), argv[3:]
    if command == "check":
        return 0 if covered(state, pyproject, extras) else 1
    record(state, pyproject, extras)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
