"""Helpers for the tuner's end-to-end tests on one-machine mode: InferenceServices of the
capacity-limited example model, ModelScalers and the tuner ConfigMap applied with kubectl, a
closed-loop load of real HTTP clients through the ingress, and a recorder of the tuner's ticks.

The capacity model's knee is known (``autoscaler/examples/capacity.py``): with capacity ``c``
and base latency ``b`` ms, ``n`` requests in flight on one replica take ``b * max(1, n / c)``
ms each, so an objective ``L`` ms holds up to ``n = c * L / b`` per replica and the least
replica count for ``N`` closed-loop clients is ``ceil(N / (c * L / b))``.
"""

from __future__ import annotations

import http.client
import json
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from autoscaler.kube.controller import TickReport
from autoscaler.runtime.testing import RunningOneMachine

# Knative's own annotations shorten its windows: 6 s stable window (the least allowed), the
# activator only while at zero (so it does not sit in the request path under load).
FAST_KNATIVE = {
    "autoscaling.knative.dev/window": "6s",
    "autoscaling.knative.dev/target-burst-capacity": "0",
}
CAPACITY_MODEL = "autoscaler.examples.capacity:CapacityLimitedModel"


def least_replicas(clients: int, capacity: int, base_ms: float, objective_ms: float) -> int:
    """The least replica count at which ``clients`` closed-loop clients meet the objective."""
    per_replica = capacity * objective_ms / base_ms
    return math.ceil(clients / per_replica)


def capacity_isvc(
    name: str,
    *,
    capacity: int,
    base_ms: float,
    min_replicas: int = 1,
    max_replicas: int = 0,
    annotations: dict[str, str] | None = None,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    env = {"MODEL_CLASS": CAPACITY_MODEL, "MODEL_CAPACITY": str(capacity)}
    env["MODEL_BASE_LATENCY_MS"] = f"{base_ms:g}"
    env.update(extra_env or {})
    predictor: dict[str, Any] = {
        "minReplicas": min_replicas,
        "containers": [
            {
                "name": "kserve-container",
                "env": [{"name": k, "value": v} for k, v in env.items()],
            }
        ],
    }
    if max_replicas:
        predictor["maxReplicas"] = max_replicas
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": "default",
            "annotations": {**FAST_KNATIVE, **(annotations or {})},
        },
        "spec": {"predictor": predictor},
    }


def model_scaler(name: str, objective_ms: float, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "targetRef": {"name": name},
            "objective": {"percentile": 95, "latencyMs": objective_ms},
            **spec,
        },
    }


def tuner_config(**data: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "modelscale-tuner", "namespace": "default"},
        "data": data,
    }


def apply(om: RunningOneMachine, obj: dict[str, Any]) -> None:
    out = om.kubectl("apply", "-f", "-", input=json.dumps(obj))
    assert out.returncode == 0, out.stderr


def get_obj(om: RunningOneMachine, kind: str, name: str) -> dict[str, Any]:
    out = om.kubectl("get", kind, name, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else {}


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def is_ready(obj: dict[str, Any]) -> bool:
    return condition(obj, "Ready").get("status") == "True"


def wait_ready(om: RunningOneMachine, name: str, timeout_s: float = 120) -> None:
    om.wait(lambda: is_ready(get_obj(om, "isvc", name)), timeout_s, f"{name} ready")


def predict(
    conn: http.client.HTTPConnection, host: str, model: str
) -> tuple[int, float | str | None]:
    """One V1 predict; (status, the model's own service time in ms when it answered, else the
    start of the error body)."""
    body = json.dumps({"instances": [[1.0]]})
    conn.request(
        "POST",
        f"/v1/models/{model}:predict",
        body=body,
        headers={"Host": host, "Content-Type": "application/json"},
    )
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        return resp.status, data[:200].decode(errors="replace")
    return resp.status, float(json.loads(data)["predictions"][0])


@dataclass
class Sample:
    t_s: float  # monotonic, when the answer came
    status: int
    model_ms: float | None
    client_ms: float
    error: str = ""  # the start of the body of an answer that was not 200


@dataclass
class ClosedLoad:
    """``clients`` threads, each sending its next request as soon as the last one answered."""

    om: RunningOneMachine
    model: str
    clients: int
    samples: list[Sample] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _client(self) -> None:
        host = f"{self.model}.default.example.com"
        port = int(self.om.ingress_url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while not self._stop.is_set():
            started = time.monotonic()
            error = ""
            try:
                status, answer = predict(conn, host, self.model)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                status, answer, error = 599, None, repr(exc)
            if isinstance(answer, str):
                error, answer = answer, None
            done = time.monotonic()
            with self._lock:
                self.samples.append(Sample(done, status, answer, (done - started) * 1000, error))
        conn.close()

    def start(self) -> ClosedLoad:
        for i in range(self.clients):
            t = threading.Thread(target=self._client, name=f"load-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(90)

    def between(self, start_s: float, end_s: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if start_s <= s.t_s < end_s]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class TickRow:
    """What one tuner tick saw and did for one model."""

    tick: int
    t_s: float  # monotonic, when the recorder saw the tick
    target: float | None
    applied: bool
    replicas: int | None
    concurrency: float | None
    latency_ms: float | None
    reason: str


class TickRecorder:
    """Polls the one-machine tuner's ``last_report`` and keeps one row per tick for ``model``."""

    def __init__(self, om: RunningOneMachine, model: str) -> None:
        self.om = om
        self.model = model
        self.rows: list[TickRow] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tick-recorder", daemon=True)

    def _run(self) -> None:
        ctl = self.om.machine.tuner
        seen = ctl.ticks
        while not self._stop.is_set():
            if ctl.ticks != seen:
                seen = ctl.ticks
                report = ctl.last_report
                if report is not None:
                    self._record(seen, report)
            time.sleep(0.05)

    def _record(self, tick: int, report: TickReport) -> None:
        model = report.models.get(("default", self.model))
        if model is None or not model.recommendations:
            return
        rev = sorted(model.recommendations)[-1]
        rec = model.recommendations[rev]
        obs = rec.observation
        self.rows.append(
            TickRow(
                tick=tick,
                t_s=time.monotonic(),
                target=rec.target,
                applied=rec.should_apply and any(w.new for w in model.written),
                replicas=obs.ready_replicas if obs is not None else None,
                concurrency=obs.avg_concurrency_per_replica if obs is not None else None,
                latency_ms=rec.latency_ms,
                reason=rec.reasons[0] if rec.reasons else "",
            )
        )

    def start(self) -> TickRecorder:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def wait_rows(self, n: int, timeout_s: float) -> None:
        self.om.wait(lambda: len(self.rows) >= n, timeout_s, f"{n} tuner ticks")


def predict_once(om: RunningOneMachine, model: str, timeout_s: float = 120) -> int:
    """One predict on a fresh connection (waits through a cold start); the HTTP status."""
    port = int(om.ingress_url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        return predict(conn, f"{model}.default.example.com", model)[0]
    finally:
        conn.close()
