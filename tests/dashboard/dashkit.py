"""The dashboard tests' one stand-in, ``StaticSource`` (a ``DashboardSource`` over fixed
objects), and ``Scenario``, which builds those objects the way the controller would: real
InferenceService/Revision/ModelScaler shapes, the real tuner policy deciding on real
``RevisionObservation``s, the real status builders, and ``feed_tick`` on a real ``TickReport``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from autoscaler.dashboard import Recorder, World, feed_tick
from autoscaler.kube.controller import TickReport
from autoscaler.kube.model import objective_condition
from autoscaler.kube.reconciler import ModelReport
from autoscaler.kube.scaler_status import build_status
from autoscaler.runtime.reconcile.names import ISVC_LABEL
from autoscaler.tuner import (
    LATENCY_BUCKETS_MS,
    N_LATENCY_COUNTS,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    learned_status,
    new_state,
    parse_spec,
    recommend,
    recommendation_status,
)

NS = "default"
T0 = 1_800_000_000.0
TICK_S = 10.0


@dataclass
class StaticSource:
    """A dashboard source over fixed lists; tests change them between requests."""

    isvcs: list[dict[str, Any]] = field(default_factory=list)
    scalers: list[dict[str, Any]] = field(default_factory=list)
    revisions: list[dict[str, Any]] = field(default_factory=list)
    live: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    now_s: float = T0
    recorder: Recorder = field(default_factory=Recorder)
    sample_period_s: float = 0.0
    leading: bool = True
    tick_period_s: float = TICK_S
    sees_waiting: bool = False

    def snapshot(self) -> World:
        return World(self.now_s, self.isvcs, self.scalers, self.revisions, self.live,
                     self.recorder, leading=self.leading, tick_period_s=self.tick_period_s,
                     sees_waiting=self.sees_waiting)  # fmt: skip

    async def world(self) -> World:
        return self.snapshot()

    async def sample(self) -> None:
        return None


def isvc(name: str, traffic: list[tuple[str, int]]) -> dict[str, Any]:
    """An InferenceService as KServe's status shows it: the last entry is the latest revision."""
    latest = traffic[-1][0]
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": NS},
        "status": {
            "url": f"http://{name}.{NS}.example.com",
            "components": {
                "predictor": {
                    "latestReadyRevision": latest,
                    "traffic": [
                        {"revisionName": rev, "percent": pct, "latestRevision": rev == latest}
                        for rev, pct in traffic
                    ],
                }
            },
        },
    }


def revision(model: str, name: str, desired: int, actual: int) -> dict[str, Any]:
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {"name": name, "namespace": NS, "labels": {ISVC_LABEL: model}},
        "status": {"desiredReplicas": desired, "actualReplicas": actual},
    }


def scaler(model: str, latency_ms: float = 200.0, mode: str = "Auto") -> dict[str, Any]:
    return {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": model, "namespace": NS, "generation": 1},
        "spec": {
            "targetRef": {"name": model},
            "objective": {"percentile": 95, "latencyMs": latency_ms},
            "updateMode": mode,
        },
    }


def observation(
    t_s: float, requests: int, latency_ms: float, replicas: int = 2, concurrency: float = 3.0
) -> RevisionObservation:
    """``requests`` all in the latency bucket whose bound is ``latency_ms``."""
    counts = [0.0] * N_LATENCY_COUNTS
    counts[LATENCY_BUCKETS_MS.index(latency_ms)] = float(requests)
    return RevisionObservation(
        t_s=t_s,
        interval_s=TICK_S,
        ready_replicas=replicas,
        avg_concurrency_per_replica=concurrency,
        request_count=requests,
        latency_counts=tuple(counts),
        applied_target=4.0,
    )


@dataclass
class Scenario:
    """One tuned model driven tick by tick through the real policy into a StaticSource."""

    source: StaticSource
    model: str
    live: str
    config: TunerConfig = field(default_factory=TunerConfig)
    state: RevisionState | None = None

    def tick(self, obs: RevisionObservation | None, now_s: float) -> None:
        scaler_obj = next(s for s in self.source.scalers if s["metadata"]["name"] == self.model)
        spec = parse_spec(scaler_obj["spec"])
        state = self.state or new_state(self.live, self.config.target.bin_ratio)
        rec, self.state = recommend(obs, spec, self.config, state, now_s)
        scaler_obj["status"] = build_status(
            previous=scaler_obj.get("status"),
            generation=1,
            mode=spec.update_mode,
            conditions=[objective_condition(rec, spec, paused=False)],
            now_wall_s=now_s,
            summary={"target": rec.target, "keepAlive": f"{round(rec.keep_alive_s)}s"},
            recommendation=recommendation_status(rec),
            revisions=[learned_status(self.state, spec, self.config, now_s)],
        )
        self.source.now_s = now_s
        report = TickReport(
            now_s, True, {(NS, self.model): ModelReport(spec.update_mode, {self.live: rec})}
        )
        feed_tick(self.source.recorder, report, self.source.snapshot())
