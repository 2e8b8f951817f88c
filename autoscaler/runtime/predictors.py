"""Predictors a replica can serve: KServe's sklearn predictor and custom ``kserve.Model`` classes.

KServe's own sklearn server (``sklearnserver``) is not part of the ``kserve`` wheel, so
``SKLearnModel`` is our small equivalent: it loads ``model.joblib`` with joblib and serves
``predict`` for V1 ``instances`` and V2 ``inputs`` through kserve's own input/output helpers,
and fails as sklearnserver does (500, the estimator's message).

This module imports ``kserve``, so only replica processes (and the zygote) import it.
"""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import kserve
from kserve.errors import InferenceError
from kserve.utils.utils import get_predict_input, get_predict_response

from autoscaler.runtime.spec import PredictorKind, ReplicaSpec

MODEL_EXTENSIONS = (".joblib", ".pkl", ".pickle")


def local_path(storage_uri: str) -> Path:
    """A local path or ``file://`` URI as a path; other schemes cannot be served on one machine."""
    parsed = urlparse(storage_uri)
    if parsed.scheme in ("", "file"):
        return Path(unquote(parsed.path) if parsed.scheme else storage_uri)
    raise ValueError(
        f"storageUri={storage_uri!r}: one-machine mode serves local paths and file:// URIs only"
    )


def resolve_model_file(storage_uri: str) -> Path:
    """The joblib file: the path itself, or ``model.joblib`` (else the one model file) in a dir."""
    path = local_path(storage_uri)
    if path.is_file():
        return path
    if path.is_dir():
        preferred = path / "model.joblib"
        if preferred.is_file():
            return preferred
        found = sorted(p for p in path.iterdir() if p.suffix in MODEL_EXTENSIONS)
        if len(found) == 1:
            return found[0]
        raise ValueError(
            f"storageUri={storage_uri!r}: expected model.joblib or exactly one model file, "
            f"found {[p.name for p in found]}"
        )
    raise ValueError(f"storageUri={storage_uri!r}: no such file or directory")


class SKLearnModel(kserve.Model):
    """A scikit-learn estimator loaded with joblib; ``predict`` for V1 and V2."""

    def __init__(self, name: str, storage_uri: str) -> None:
        super().__init__(name)
        self.storage_uri = storage_uri
        self._model: Any = None

    def load(self) -> bool:
        import joblib

        self._model = joblib.load(resolve_model_file(self.storage_uri))
        self.ready = True
        return self.ready

    def predict(
        self, payload: dict[str, Any] | kserve.InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | kserve.InferResponse:
        try:
            instances = get_predict_input(payload)
            result = self._model.predict(instances)
            return get_predict_response(payload, result, self.name)
        except Exception as exc:
            # as KServe's sklearnserver: any failure, input the estimator refuses included, is
            # an InferenceError, answered 500 with {"error": the estimator's message}
            raise InferenceError(str(exc)) from exc


def import_class(ref: str) -> type[Any]:
    module_name, _, attr = ref.partition(":")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part)
    if not (inspect.isclass(obj) and issubclass(obj, kserve.Model)):
        raise TypeError(f"model_class={ref!r}: not a kserve.Model subclass")
    return obj


def build_model(spec: ReplicaSpec) -> kserve.Model:
    """Construct and load the spec's model. Custom classes get ``args``/``env`` if they ask."""
    if spec.predictor is PredictorKind.SKLEARN:
        assert spec.storage_uri is not None
        model: kserve.Model = SKLearnModel(spec.model_name, spec.storage_uri)
    else:
        assert spec.model_class is not None
        cls = import_class(spec.model_class)
        params = inspect.signature(cls).parameters
        kwargs: dict[str, Any] = {}
        if "args" in params:
            kwargs["args"] = list(spec.args)
        if "env" in params:
            kwargs["env"] = spec.env_dict()
        if "storage_uri" in params:
            kwargs["storage_uri"] = spec.storage_uri
        model = cls(spec.model_name, **kwargs)
    if not model.ready:
        model.load()
    return model
