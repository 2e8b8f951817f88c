"""Which Broker and Trigger CRDs one-machine mode serves: Knative Eventing's own.

The API server ships short CRDs for ``brokers``/``triggers.eventing.knative.dev`` (names, printer
columns, status subresource); one-machine mode applies the upstream definitions over them
(``config/core/resources/broker.yaml`` and ``trigger.yaml`` of knative/eventing, kept unmodified
in the shared data directory) so the API validates Brokers and Triggers as a cluster does. The
data directory is ``MODELSCALE_SHARED``, else ``<checkout>/../shared``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["UPSTREAM_CRD_FILES", "upstream_crds"]

log = logging.getLogger(__name__)

UPSTREAM_CRD_FILES = ("knative-eventing_broker.yaml", "knative-eventing_trigger.yaml")


def shared_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    root = env.get("MODELSCALE_SHARED")
    return Path(root) if root else Path(__file__).resolve().parents[2] / ".." / "shared"


def upstream_crds(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The upstream Broker and Trigger CRD files, or none when not found: logged at info in a
    plain checkout (no ``../shared``, the usual case), as a warning when ``MODELSCALE_SHARED``
    names a directory that lacks them."""
    env = os.environ if environ is None else environ
    folder = shared_dir(env) / "crds"
    paths = [folder / name for name in UPSTREAM_CRD_FILES]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        level = logging.WARNING if env.get("MODELSCALE_SHARED") else logging.INFO
        log.log(level, "upstream eventing CRDs not found (%s): serving the built-in ones", missing)
        return []
    return paths
