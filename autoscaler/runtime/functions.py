"""Local functions: which directory a Knative Service's container image names, and its command.

One-machine mode runs a Knative Service whose container is a Knative Function as a process, not
an image. The manifest stays the one a cluster runs: the image's last path component without its
tag or digest names the function, so ``ghcr.io/modelscale/predict-on-event:0.1.0`` runs
``<functions root>/predict-on-event/``, with the ``web:`` line of its ``Procfile`` as the command
(the buildpacks convention the function's image is built with). ``python`` at the head of that
command is this interpreter, so a function runs with the project's environment.

The root is ``MODELSCALE_FUNCTIONS_DIR`` when set, else the checkout's ``functions/``.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_HEALTH_PATH",
    "FunctionCatalog",
    "LocalFunction",
    "UnknownFunction",
    "default_catalog",
    "function_name",
]

FUNCTIONS_DIR_ENV = "MODELSCALE_FUNCTIONS_DIR"
# Knative Functions' readiness probe path; a container's own readinessProbe overrides it.
DEFAULT_HEALTH_PATH = "/health/readiness"
_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$")
_PYTHONS = frozenset({"python", "python3"})


class UnknownFunction(LookupError):
    """An image that names no local function; the message says what was looked for and where."""


@dataclass(frozen=True)
class LocalFunction:
    """A function directory and the command that serves it."""

    name: str
    directory: Path
    command: tuple[str, ...]


def function_name(image: str) -> str:
    """The function an image names: its last path component without tag or digest."""
    last = image.strip().rsplit("/", 1)[-1]
    return last.split("@", 1)[0].split(":", 1)[0]


def _default_root() -> Path:
    return Path(__file__).resolve().parents[2] / "functions"


class FunctionCatalog:
    """The local functions under one root directory, read when asked (a new one needs no restart)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.parent.name for p in self.root.glob("*/Procfile"))

    def lookup(self, image: str) -> LocalFunction:
        """The function ``image`` names; ``UnknownFunction`` saying why not."""
        name = function_name(image)
        known = ", ".join(self.names()) or "none"
        if not _NAME.match(name):
            raise UnknownFunction(f"image {image!r}: {name!r} is not a function name")
        directory = self.root / name
        procfile = directory / "Procfile"
        if not procfile.is_file():
            raise UnknownFunction(
                f"image {image!r} names function {name!r}, which is not a local function "
                f"(no {procfile}; known under {self.root}: {known})"
            )
        return LocalFunction(name, directory, _web_command(procfile))

    def knows(self, image: str) -> bool:
        try:
            self.lookup(image)
        except UnknownFunction:
            return False
        return True


def _web_command(procfile: Path) -> tuple[str, ...]:
    for line in procfile.read_text().splitlines():
        kind, sep, command = line.partition(":")
        if sep and kind.strip() == "web" and command.strip():
            argv = shlex.split(command)
            if argv[0] in _PYTHONS:
                argv[0] = sys.executable
            return tuple(argv)
    raise UnknownFunction(f"{procfile}: no 'web:' line")


def default_catalog(environ: Mapping[str, str] | None = None) -> FunctionCatalog:
    """The catalog at ``MODELSCALE_FUNCTIONS_DIR``, else the checkout's ``functions/``."""
    env = os.environ if environ is None else environ
    root = env.get(FUNCTIONS_DIR_ENV)
    return FunctionCatalog(Path(root) if root else _default_root())
