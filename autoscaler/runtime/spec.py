"""What one replica runs: ``ReplicaSpec`` and the revision key it belongs to.

Mirrors the parts of a KServe InferenceService predictor that a one-machine replica needs: the
predictor kind (``sklearn`` or ``custom``), the storage URI of a model artefact, or for a custom
predictor the Python ``kserve.Model`` class (``"module:Class"``) with its container args and env.
A third kind, ``function``, is a Knative Service whose container names a local function: the
command of its Procfile run in its directory (``command``, ``working_dir``), ready when
``health_path`` answers 200.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class PredictorKind(StrEnum):
    SKLEARN = "sklearn"
    CUSTOM = "custom"
    FUNCTION = "function"


# Where a replica says it is ready: the KServe model server's, or a function's readiness probe.
KSERVE_READY_PATH = "/v2/health/ready"


@dataclass(frozen=True, order=True)
class RevisionKey:
    """A revision's identity: namespace and revision name."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything a replica process needs to serve one model. Immutable, like a revision."""

    namespace: str
    revision: str
    model_name: str
    predictor: PredictorKind
    storage_uri: str | None = None
    model_class: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    command: tuple[str, ...] = ()  # function: the Procfile's web command
    working_dir: str | None = None  # function: its directory
    health_path: str = KSERVE_READY_PATH

    def __post_init__(self) -> None:
        object.__setattr__(self, "predictor", PredictorKind(self.predictor))
        object.__setattr__(self, "args", tuple(self.args))
        object.__setattr__(self, "command", tuple(self.command))
        env = self.env.items() if isinstance(self.env, dict) else self.env
        object.__setattr__(self, "env", tuple(sorted((str(k), str(v)) for k, v in env)))
        if not self.model_name:
            raise ValueError("model_name: must not be empty")
        if self.predictor is PredictorKind.SKLEARN and not self.storage_uri:
            raise ValueError(f"storage_uri: required for predictor {self.predictor.value!r}")
        if self.predictor is PredictorKind.CUSTOM and (
            not self.model_class or ":" not in self.model_class
        ):
            raise ValueError(
                f"model_class={self.model_class!r}: a custom predictor needs 'module:Class'"
            )
        if self.predictor is PredictorKind.FUNCTION and (not self.command or not self.working_dir):
            raise ValueError("command, working_dir: a function replica needs both")
        if not self.health_path.startswith("/"):
            raise ValueError(f"health_path={self.health_path!r}: must start with '/'")

    @property
    def key(self) -> RevisionKey:
        return RevisionKey(self.namespace, self.revision)

    def env_dict(self) -> dict[str, str]:
        return dict(self.env)

    def to_json(self) -> str:
        return json.dumps(
            {
                "namespace": self.namespace,
                "revision": self.revision,
                "model_name": self.model_name,
                "predictor": self.predictor.value,
                "storage_uri": self.storage_uri,
                "model_class": self.model_class,
                "args": list(self.args),
                "env": dict(self.env),
                "command": list(self.command),
                "working_dir": self.working_dir,
                "health_path": self.health_path,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> ReplicaSpec:
        data: dict[str, Any] = json.loads(text)
        return cls(
            namespace=data["namespace"],
            revision=data["revision"],
            model_name=data["model_name"],
            predictor=PredictorKind(data["predictor"]),
            storage_uri=data.get("storage_uri"),
            model_class=data.get("model_class"),
            args=tuple(data.get("args", ())),
            env=tuple(dict(data.get("env", {})).items()),
            command=tuple(data.get("command", ())),
            working_dir=data.get("working_dir"),
            health_path=data.get("health_path", KSERVE_READY_PATH),
        )
