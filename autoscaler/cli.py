"""The ``modelscale`` command: one subcommand per driver.

Each subcommand lives beside the code it drives, in a module that exposes
``add_arguments(parser)`` and ``run(args) -> int`` and keeps its imports light (heavy imports go
inside ``run``), so ``modelscale --help`` stays fast. A subcommand whose module is not there yet is
left out of the list.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "server": ("autoscaler.apiserver.cli", "run the embedded Kubernetes-compatible API server"),
    "up": ("autoscaler.runtime.cli", "run one-machine mode: API server, serving runtime and tuner"),
    "demo": (
        "autoscaler.runtime.demo",
        "deploy the example models on one machine and show them scale",
    ),
    "explain": (
        "autoscaler.kube.explain",
        "say why a model's target, keep-alive and pre-warm are what they are",
    ),
    "status": ("autoscaler.kube.status", "the overview of all models as a table"),
    "controller": ("autoscaler.kube.cli", "run the tuner controller against a Kubernetes API"),
    "simulate": (
        "autoscaler.sim.cli",
        "replay a trace through the KPA and the tuner and compare policies",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelscale",
        description="Serverless model deployment with per-model autoscaling for KServe on Knative.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and module_name.startswith(exc.name):
                continue  # not built yet
            raise
        sp = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    return int(run(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
