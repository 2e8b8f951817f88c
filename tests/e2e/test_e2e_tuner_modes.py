"""Update modes on one-machine mode, with real replicas under load: Recommend writes status and
no annotation; the InferenceService's pause annotation keeps Auto from writing; a new revision
(kubectl apply of a changed InferenceService) starts from the target its predecessor learned.

Each model: capacity 2, base latency 100 ms, 4 closed-loop clients on Knative's default target
(one replica, 4 in flight: 200 ms), objective p95 150 ms, so the tuner has something to change.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    ClosedLoad,
    annotations,
    apply,
    capacity_isvc,
    condition,
    get_obj,
    model_scaler,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(420)]

TARGET = "autoscaling.knative.dev/target"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
TUNED = (TARGET, RETENTION)
OBJECTIVE_MS = 150.0


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    config = {
        "tick_period_s": "2", "stale_after_s": "10", "min_apply_interval_s": "2",
        "min_requests": "10", "min_bin_requests": "10",
    }  # fmt: skip
    with running_onemachine(tmp_path, tuner_config=config) as running:
        yield running


def model(name: str, **kw: Any) -> dict[str, Any]:
    return capacity_isvc(name, capacity=2, base_ms=100, **kw)


def recommendation(om: RunningOneMachine, name: str) -> dict[str, Any]:
    return dict((get_obj(om, "modelscaler", name).get("status") or {}).get("recommendation") or {})


def tuner_events(om: RunningOneMachine) -> list[dict[str, Any]]:
    out = om.kubectl("get", "events", "-o", "json")
    items = json.loads(out.stdout).get("items", []) if out.returncode == 0 else []
    return [e for e in items if (e.get("involvedObject") or {}).get("kind") == "ModelScaler"]


def test_recommend_and_pause_write_no_annotation(om: RunningOneMachine) -> None:
    apply(om, model("rec"))
    apply(om, model("paused", annotations={"modelscale.dev/paused": "true"}))
    wait_ready(om, "rec")
    wait_ready(om, "paused")
    before = {
        n: annotations(get_obj(om, "revision", f"{n}-predictor-00001")) for n in ("rec", "paused")
    }
    loads = [ClosedLoad(om, n, 4).start() for n in ("rec", "paused")]
    try:
        apply(om, model_scaler("rec", OBJECTIVE_MS, updateMode="Recommend"))
        apply(om, model_scaler("paused", OBJECTIVE_MS, updateMode="Auto"))
        # Both judge the 200 ms they see as a miss and recommend a lower target, several ticks on.
        for name in ("rec", "paused"):
            om.wait(
                lambda name=name: float(recommendation(om, name).get("target") or 100) < 100,
                120,
                f"{name}: a lower target recommended",
            )
        ticks = om.machine.tuner.ticks
        om.wait(lambda: om.machine.tuner.ticks >= ticks + 5, 60, "five more ticks")
    finally:
        for load in loads:
            load.stop()
    for name in ("rec", "paused"):
        after = annotations(get_obj(om, "revision", f"{name}-predictor-00001"))
        assert {k: after.get(k) for k in TUNED} == {k: before[name].get(k) for k in TUNED}
        assert after.get(MIN_SCALE) == before[name].get(MIN_SCALE)
        pa = annotations(get_obj(om, "podautoscaler", f"{name}-predictor-00001"))
        assert TARGET not in pa
    scaler = get_obj(om, "modelscaler", "rec")
    assert scaler["status"]["mode"] == "Recommend"
    assert condition(scaler, "Applied").get("status") == "False"
    paused = get_obj(om, "modelscaler", "paused")
    assert "paused" in " ".join(recommendation(om, "paused").get("reasons", []))
    assert "pause" in (condition(paused, "Applied").get("message") or "").lower()
    assert tuner_events(om) == []


def test_new_revision_inherits_the_learned_target(om: RunningOneMachine) -> None:
    apply(om, model("inh"))
    wait_ready(om, "inh")
    load = ClosedLoad(om, "inh", 4).start()
    try:
        apply(om, model_scaler("inh", OBJECTIVE_MS, updateMode="Auto"))
        rev1 = "inh-predictor-00001"
        om.wait(
            lambda: float(annotations(get_obj(om, "revision", rev1)).get(TARGET) or 100) < 10,
            120,
            "the tuner lowered revision 1's target",
        )
    finally:
        load.stop()
    # No traffic: the tuner holds (it never changes a target on an idle interval).
    ticks = om.machine.tuner.ticks
    om.wait(lambda: om.machine.tuner.ticks >= ticks + 2, 30, "two idle ticks")
    learned = annotations(get_obj(om, "revision", rev1))[TARGET]

    changed = model("inh", extra_env={"MODEL_VERSION": "2"})
    apply(om, changed)
    rev2 = "inh-predictor-00002"
    om.wait(lambda: TARGET in annotations(get_obj(om, "revision", rev2)), 120, "target on rev 2")
    assert annotations(get_obj(om, "revision", rev2))[TARGET] == learned
    scaler = get_obj(om, "modelscaler", "inh")
    revisions = {r["name"]: r for r in scaler["status"].get("revisions", [])}
    assert revisions[rev2].get("inheritedFrom") == rev1
    assert scaler["status"]["recommendation"]["revision"] == rev2


def test_invalid_model_scaler_rejected_or_marked(om: RunningOneMachine) -> None:
    # Against the schema: the API server refuses it with the field named.
    bad = model_scaler("bad", 150)
    bad["spec"]["objective"]["percentile"] = 200
    out = om.kubectl("apply", "-f", "-", input=json.dumps(bad))
    assert out.returncode != 0 and "percentile" in out.stderr, out.stderr
    # Valid field by field, wrong across fields: accepted, then marked Invalid by the tuner.
    crossed = model_scaler("crossed", 150, target={"min": 8, "max": 2})
    apply(om, crossed)
    om.wait(
        lambda: condition(get_obj(om, "modelscaler", "crossed"), "Invalid").get("status") == "True",
        60,
        "Invalid condition",
    )
    invalid = condition(get_obj(om, "modelscaler", "crossed"), "Invalid")
    assert "spec.target.min (8) must be <= spec.target.max (2)" in invalid["message"], invalid
