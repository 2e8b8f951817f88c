"""The tuner controller's per-model work in one tick over 10,000 ModelScalers, the API left out.

Each model gets a synthetic plant (a latency knee, a load, an objective; some idle, some with
stale metrics), and its ModelScaler, InferenceService and Revision as the informers hold them.
The controller's own ``ModelReconciler`` runs each tick for each model as ``Controller.tick``
does: the model's plan read from those objects, the policy's decision per revision, the
annotations the decision writes, the ModelScaler status built (conditions, summary, learned
curve, checkpoint) and compared with the last one written, plus the explain lines the
dashboard records per decision. What is left out, timed by nothing here: the API (the writes go
to a stub that updates the Revision as the informer would see it; a status that changed is
diffed into its patch, not sent), the Events and CloudEvents (a stub), the metric scrape and its
parsing (each revision's observation is given), and the dashboard's recording of the tick.

A few warm-up ticks first, so each state holds a learned curve and idle history. Then, measured
with ``time.process_time`` over the same tick's inputs, each part after a full garbage
collection (else a collection the warm-up owes, most of a second at 10,000 models, falls into
whichever part happens to trigger it):

- floor: copy each observation and iterate its histogram, the least any per-model pass does
  (not a competing controller; it says what the loop itself costs at this count);
- policy decisions alone: one ``recommend`` per model (the tuner's decision, nothing else);
- per-model tick: plan, reconcile (decision, writes to the stub, status) and explain lines.

Prints each CPU time, its ratio to the floor, the time per model, how many models had
annotations to write, and the aim: a tick under 1 s CPU per 10,000 models (scaled to
``--models``).

Run: .venv/bin/python bench/tuner_scale.py [--models N] [--seed S]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import math
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client

from autoscaler.kube import model as km
from autoscaler.kube.apply import Written
from autoscaler.kube.reconciler import ModelReconciler
from autoscaler.kube.scaler_status import same_status, status_patch
from autoscaler.kube.settings import ControllerSettings
from autoscaler.kube.telemetry import ControllerMetrics
from autoscaler.metrics.source import RevisionKey
from autoscaler.runtime.reconcile import names
from autoscaler.tuner import (
    LATENCY_BUCKETS_MS,
    ModelScalerSpec,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    recommend,
)
from autoscaler.tuner.explain import explain
from autoscaler.tuner.policy import ANNOTATION_TARGET

TICK_S = 30.0
WARMUP_TICKS = 6


def counts_for(p95_ms: float, n: int) -> tuple[float, ...]:
    """A fixed spread of ``n`` latencies whose 95th percentile is ``p95_ms``, bucketed."""
    out = [0.0] * (len(LATENCY_BUCKETS_MS) + 1)
    if n == 0:
        return tuple(out)
    for q, share in ((0.6, 0.5), (0.9, 0.45), (1.0, 0.05)):
        x = p95_ms * q
        i = next((k for k, b in enumerate(LATENCY_BUCKETS_MS) if x <= b), len(LATENCY_BUCKETS_MS))
        out[i] += n * share
    return tuple(out)


@dataclasses.dataclass
class Model:
    """One model: its plant, and its objects as the controller's informers hold them."""

    index: int
    objective_ms: float
    knee: float
    load: float
    period_s: float  # 0: steady traffic
    stale: bool
    target: float | None = None  # the target in force (written by the tuner)
    scaler: dict[str, Any] = dataclasses.field(default_factory=dict)
    isvc: dict[str, Any] = dataclasses.field(default_factory=dict)
    revision: dict[str, Any] = dataclasses.field(default_factory=dict)
    memory: km.ModelMemory = dataclasses.field(default_factory=km.ModelMemory)

    @property
    def name(self) -> str:
        return f"m{self.index}"

    @property
    def revision_name(self) -> str:
        return f"m{self.index}-predictor-00001"

    def observe(self, t: float) -> RevisionObservation | None:
        if self.stale and t > WARMUP_TICKS * TICK_S:
            return None
        active = self.period_s == 0 or (t - TICK_S) % self.period_s < TICK_S
        target = self.target if self.target is not None else 100.0
        replicas = max(1, math.ceil(self.load / (target * 0.7))) if active else 0
        self.revision["status"]["actualReplicas"] = replicas
        self.revision["status"]["desiredReplicas"] = replicas
        c = self.load / replicas if active else 0.0
        p95 = 50.0 if c <= self.knee else 50.0 * (c / self.knee) ** 2
        n = int(self.load * 20) if active else 0
        return RevisionObservation(
            t_s=t,
            interval_s=TICK_S,
            ready_replicas=replicas,
            avg_concurrency_per_replica=c,
            request_count=n,
            latency_counts=counts_for(p95, n),
            applied_target=self.target,
        )

    def plan(self) -> km.ModelPlan:
        """What ``Controller._plan`` reads for this model from the informers' caches."""
        return km.plan_model(self.scaler, self.isvc, [self.revision])


def objects(m: Model) -> None:
    ns, rev = "default", m.revision_name
    ready = {"type": "Ready", "status": "True"}
    m.scaler = {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": m.name, "namespace": ns, "generation": 1, "uid": f"ms-{m.index}"},
        "spec": {"targetRef": {"name": m.name}, "objective": {"latencyMs": m.objective_ms}},
    }
    m.isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": m.name, "namespace": ns, "generation": 1},
        "spec": {"predictor": {"sklearn": {"storageUri": "file:///models/iris"}}},
        "status": {
            "conditions": [ready],
            "components": {
                "predictor": {
                    "latestReadyRevision": rev,
                    "traffic": [{"revisionName": rev, "percent": 100, "latestRevision": True}],
                }
            },
        },
    }
    m.revision = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": rev,
            "namespace": ns,
            "uid": f"rev-{m.index}",
            "labels": {
                names.ISVC_LABEL: m.name,
                names.CONFIGURATION_LABEL: f"{m.name}-predictor",
                names.SERVICE_LABEL: f"{m.name}-predictor",
            },
            "annotations": {},
        },
        "spec": {"containerConcurrency": 0},
        "status": {"conditions": [ready], "actualReplicas": 0, "desiredReplicas": 0},
    }


class RevisionWriter:
    """Stands in for the API: a write sets the annotations on the Revision object, as the
    informer would then hold it, and returns what changed, as ``Writer.write`` does."""

    def __init__(self, models: Mapping[str, Model]) -> None:
        self.models = models  # by revision name
        self.lock = threading.Lock()

    def write(
        self, method: str, namespace: str, isvc: str, revision: str, values: Mapping[str, str]
    ) -> Written:
        with self.lock:
            m = self.models[revision]
            annotations = m.revision["metadata"]["annotations"]
            old = {k: annotations.get(k) for k in values}
            new = {k: v for k, v in values.items() if annotations.get(k) != v}
            annotations.update(new)
            if ANNOTATION_TARGET in new:
                m.target = float(new[ANNOTATION_TARGET])
            return Written(method, "Revision", revision, old, new)


class NoNotifier:
    def kube_event(
        self, scaler: Mapping[str, Any], reason: str, message: str, wall_s: float
    ) -> bool:
        return True

    def cloud_event(self, data: Mapping[str, Any]) -> None:
        return None


class Reconciler(ModelReconciler):
    """The controller's reconciler; a status that changed is diffed into its patch and kept as
    written, not sent."""

    async def _write_status(
        self, plan: km.ModelPlan, mem: km.ModelMemory, status: dict[str, Any]
    ) -> bool:
        previous = self._previous_status(plan, mem)
        if same_status(previous, status):
            return False
        status_patch(previous, status)
        mem.status = status
        return True


def reconciler(models: list[Model]) -> Reconciler:
    r = Reconciler(
        client.ApiClient(),
        ControllerSettings(),
        ControllerMetrics(),
        NoNotifier(),  # type: ignore[arg-type]
        lambda: True,
    )
    r._writer = RevisionWriter({m.revision_name: m for m in models})  # type: ignore[assignment]
    return r


async def tick(
    rec: Reconciler, models: list[Model], config: TunerConfig, now: float
) -> tuple[int, int]:
    """One tick's per-model work, as ``Controller.tick`` does it after observing: each model's
    plan, its reconcile and its explain lines. Returns (models written, annotations written)."""
    observations = {RevisionKey("default", m.revision_name): m.observe(now) for m in models}
    return await reconcile_all(rec, models, config, observations, now)


async def reconcile_all(
    rec: Reconciler,
    models: list[Model],
    config: TunerConfig,
    observations: Mapping[RevisionKey, RevisionObservation | None],
    now: float,
) -> tuple[int, int]:
    writes = annotations = 0
    for m in models:
        report = await rec.reconcile(m.plan(), m.memory, config, observations, None, now)
        for r in report.recommendations.values():
            explain(r)
        new = sum(len(w.new) for w in report.written)
        if new:
            writes += 1
            annotations += new
    return writes, annotations


def build(n: int, rng: random.Random) -> list[Model]:
    models = []
    for i in range(n):
        m = Model(
            index=i,
            objective_ms=rng.choice([100.0, 200.0, 500.0]),
            knee=rng.choice([1.0, 4.0, 16.0]),
            load=rng.uniform(1, 100),
            period_s=rng.choice([0.0, 0.0, 0.0, 120.0, 300.0]),
            stale=rng.random() < 0.05,
        )
        objects(m)
        models.append(m)
    return models


async def run(n: int, seed: int) -> None:
    rng = random.Random(seed)
    config = TunerConfig()
    models = build(n, rng)
    rec = reconciler(models)
    for k in range(1, WARMUP_TICKS + 1):
        await tick(rec, models, config, k * TICK_S)
    now = (WARMUP_TICKS + 1) * TICK_S
    snapshots = [m.observe(now) for m in models]
    observations = {
        RevisionKey("default", m.revision_name): s for m, s in zip(models, snapshots, strict=True)
    }

    gc.collect()  # each timed part starts with no collection owed by what came before it
    t0 = time.process_time()
    copied = 0.0
    for snap in snapshots:
        if snap is not None:
            dup = dataclasses.replace(snap)
            copied += sum(dup.latency_counts)
    floor_s = time.process_time() - t0

    # the policy alone, from the same states (the reconcile below starts from them too)
    inputs: list[tuple[RevisionObservation | None, ModelScalerSpec, RevisionState]] = []
    for m, snap in zip(models, snapshots, strict=True):
        spec = m.plan().spec
        assert spec is not None
        inputs.append((snap, spec, m.memory.states[m.revision_name]))
    gc.collect()  # each timed part starts with no collection owed by what came before it
    t0 = time.process_time()
    for snap, spec, state in inputs:
        recommend(snap, spec, config, state, now)
    policy_s = time.process_time() - t0

    gc.collect()  # each timed part starts with no collection owed by what came before it
    t0 = time.process_time()
    writes, annotations = await reconcile_all(rec, models, config, observations, now)
    tick_s = time.process_time() - t0

    aim_s = n / 10_000
    print(f"models {n}  seed {seed}  (CPU seconds, time.process_time)")
    rows = (
        ("floor: copy + iterate each observation", floor_s),
        ("policy decisions alone (recommend)", policy_s),
        ("per-model tick: plan, reconcile, status, explain", tick_s),
    )
    for name, cpu in rows:
        print(
            f"{name:<50} {cpu:7.3f} s   {cpu / max(floor_s, 1e-9):6.1f}x floor"
            f"   {cpu / n * 1e6:6.0f} us/model"
        )
    print(
        f"outputs changed: {writes} models, {annotations} annotations written; "
        f"{n - writes} unchanged"
    )
    print(
        "not timed: API requests (writes to a stub, status diffed not sent), Events, the metric "
        "scrape and its parsing, the dashboard's recording"
    )
    print(
        f"aim: per-model tick under 1 s CPU per 10,000 models ({aim_s:.2f} s for {n}) -> "
        f"{'met' if tick_s < aim_s else 'NOT met'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asyncio.run(run(args.models, args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
