"""Revision -> ReplicaSpec: what one replica process of a revision runs.

The revision carries what KServe put on the Knative Service: the sklearn server's container with
the storage URI in the storage-initializer annotation, or the user's custom container naming its
``kserve.Model`` class (env ``MODEL_CLASS`` or ``--model_class``). ``--model_name`` names the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

from . import kserve


def _arg(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def replica_spec(revision: Mapping[str, Any]) -> ReplicaSpec:
    """Raises ValueError naming the field when the revision cannot run on one machine."""
    meta = revision["metadata"]
    containers = (revision.get("spec") or {}).get("containers") or []
    if not containers:
        raise ValueError("spec.containers: a revision needs one container")
    container = containers[0]
    args = [str(a) for a in container.get("args") or []]
    env = {
        str(e["name"]): str(e.get("value", "")) for e in container.get("env") or [] if "name" in e
    }
    name = _arg(args, "--model_name") or meta.get("labels", {}).get(
        "serving.kserve.io/inferenceservice", meta["name"]
    )
    storage = (meta.get("annotations") or {}).get(kserve.STORAGE_URI_ANNOTATION)
    common = {
        "namespace": meta.get("namespace", "default"),
        "revision": meta["name"],
        "model_name": name,
    }
    if storage and container.get("image") == kserve.SKLEARN_IMAGE:
        return ReplicaSpec(
            **common, predictor=PredictorKind.SKLEARN, storage_uri=storage, env=tuple(env.items())
        )
    model_class = env.pop(kserve.MODEL_CLASS_ENV, None) or _arg(args, "--model_class")
    if not model_class:
        raise ValueError(
            "spec.containers[0]: one-machine mode runs the sklearn server or a container naming its "
            f"kserve.Model class in env {kserve.MODEL_CLASS_ENV} or --model_class"
        )
    rest = [a for a in args if not a.startswith(("--model_class", "--model_name"))]
    return ReplicaSpec(
        **common,
        predictor=PredictorKind.CUSTOM,
        model_class=model_class,
        args=tuple(rest),
        env=tuple(env.items()),
    )
