"""Revision -> ReplicaSpec: what one replica process of a revision runs.

The revision carries what KServe put on the Knative Service: the sklearn server's container with
the storage URI in the storage-initializer annotation, or the user's custom container naming its
``kserve.Model`` class (env ``MODEL_CLASS`` or ``--model_class``). ``--model_name`` names the model.
A Knative Service of its own whose image names a local function (``autoscaler.runtime.functions``)
runs that function's command; its readiness probe path, if any, is where it says it is ready.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autoscaler.runtime.functions import (
    DEFAULT_HEALTH_PATH,
    FunctionCatalog,
    UnknownFunction,
    default_catalog,
)
from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

from . import kserve


def _arg(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
    return None


def replica_spec(
    revision: Mapping[str, Any], functions: FunctionCatalog | None = None
) -> ReplicaSpec:
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
        # A function is named by its Service (K_SERVICE), not by a model.
        service = (meta.get("labels") or {}).get("serving.knative.dev/service")
        common["model_name"] = service or common["model_name"]
        return _function_spec(common, container, env, functions or default_catalog())
    rest = [a for a in args if not a.startswith(("--model_class", "--model_name"))]
    return ReplicaSpec(
        **common,
        predictor=PredictorKind.CUSTOM,
        model_class=model_class,
        args=tuple(rest),
        env=tuple(env.items()),
    )


def _function_spec(
    common: dict[str, Any],
    container: Mapping[str, Any],
    env: dict[str, str],
    functions: FunctionCatalog,
) -> ReplicaSpec:
    image = str(container.get("image") or "")
    try:
        function = functions.lookup(image)
    except UnknownFunction as exc:
        raise ValueError(
            "spec.containers[0]: one-machine mode runs the sklearn server, a container naming its "
            f"kserve.Model class in env {kserve.MODEL_CLASS_ENV} or --model_class, or a local "
            f"function; {exc}"
        ) from None
    probe = ((container.get("readinessProbe") or {}).get("httpGet") or {}).get("path")
    return ReplicaSpec(
        **common,
        predictor=PredictorKind.FUNCTION,
        env=tuple(env.items()),
        command=function.command,
        working_dir=str(function.directory),
        health_path=str(probe or DEFAULT_HEALTH_PATH),
    )


def runnable_problem(
    container: Mapping[str, Any], functions: FunctionCatalog | None = None
) -> str | None:
    """Why one-machine mode cannot run a Knative Service's own container, or None."""
    env = {str(e.get("name")): e for e in container.get("env") or [] if isinstance(e, Mapping)}
    args = [str(a) for a in container.get("args") or []]
    if kserve.MODEL_CLASS_ENV in env or _arg(args, "--model_class"):
        return None
    if container.get("image") == kserve.SKLEARN_IMAGE:
        return None
    try:
        (functions or default_catalog()).lookup(str(container.get("image") or ""))
    except UnknownFunction as exc:
        return str(exc)
    return None
