"""The controller's pure parts: reading serving revisions, building writes and statuses,
settings. Tables of named cases."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from autoscaler.kube.apply import annotation_patch, isvc_patch, within_knative_ranges
from autoscaler.kube.kubeconfig import default_kubeconfig
from autoscaler.kube.scaler_status import same_status, status_patch
from autoscaler.kube.settings import ControllerSettingsError, parse_bind, parse_sink
from autoscaler.kube.world import parse_duration_s, replica_memory_mb, serving_revisions

TARGET = "autoscaling.knative.dev/target"
RETENTION = "autoscaling.knative.dev/scale-to-zero-pod-retention-period"
MIN_SCALE = "autoscaling.knative.dev/min-scale"


def rev(name: str, gen: int, ready: bool = True, **annotations: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"serving.knative.dev/configurationGeneration": str(gen)},
            "annotations": annotations,
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


def isvc(predictor_status: dict[str, Any] | None) -> dict[str, Any]:
    obj: dict[str, Any] = {"metadata": {"name": "m", "namespace": "default"}}
    if predictor_status is not None:
        obj["status"] = {"components": {"predictor": predictor_status}}
    return obj


REVS = [
    rev("m-predictor-00001", 1),
    rev("m-predictor-00002", 2),
    rev("m-predictor-00003", 3, ready=False),
]
SERVING_CASES = {
    "all-traffic-to-latest": (
        {"latestReadyRevision": "m-predictor-00002",
         "traffic": [{"latestRevision": True, "percent": 100}]},
        [("m-predictor-00002", 100)],
    ),
    "canary-split": (
        {"latestReadyRevision": "m-predictor-00002",
         "traffic": [{"revisionName": "m-predictor-00001", "percent": 80, "tag": "prev"},
                     {"revisionName": "m-predictor-00002", "percent": 20, "latestRevision": True}]},
        [("m-predictor-00001", 80), ("m-predictor-00002", 20)],
    ),
    "zero-percent-is-not-serving": (
        {"traffic": [{"revisionName": "m-predictor-00001", "percent": 100},
                     {"revisionName": "m-predictor-00002", "percent": 0}]},
        [("m-predictor-00001", 100)],
    ),
    "latest-ready-without-traffic": ({"latestReadyRevision": "m-predictor-00001"}, [("m-predictor-00001", None)]),
    "no-status-newest-ready-label": (None, [("m-predictor-00002", None)]),
    "unknown-revision-is-skipped": ({"latestReadyRevision": "m-predictor-00009"}, []),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SERVING_CASES), ids=list(SERVING_CASES))
def test_serving_revisions(case: str) -> None:
    status, expected = SERVING_CASES[case]
    got = serving_revisions(isvc(status), REVS)
    assert [(r.name, r.percent) for r in got] == expected


def test_with_no_traffic_status_a_tie_in_generation_goes_to_the_name_in_any_order() -> None:
    tied = [rev("m-predictor-00004", 4), rev("m-predictor-00005", 4)]
    for order in (tied, tied[::-1]):
        (got,) = serving_revisions(isvc(None), order)
        assert got.name == "m-predictor-00005"


EFFECTIVE_TARGET_CASES = {
    "knative-default": ({}, 0, 100.0),
    "annotation": ({TARGET: "7.5"}, 0, 7.5),
    "capped-by-container-concurrency": ({TARGET: "20"}, 8, 8.0),
    "container-concurrency-alone": ({}, 4, 4.0),
    "garbage-annotation-ignored": ({TARGET: "lots"}, 0, 100.0),
}


@pytest.mark.parametrize("case", list(EFFECTIVE_TARGET_CASES), ids=list(EFFECTIVE_TARGET_CASES))
def test_effective_target(case: str) -> None:
    annotations, cc, expected = EFFECTIVE_TARGET_CASES[case]
    r = rev("m-predictor-00001", 1, **annotations)
    r["spec"] = {"containerConcurrency": cc}
    (got,) = serving_revisions(isvc({"latestReadyRevision": "m-predictor-00001"}), [r])
    assert got.effective_target == expected


MEMORY_CASES = {
    "request": ([{"resources": {"requests": {"memory": "2Gi"}}}], 2048.0),
    "request-over-limit": ([{"resources": {"requests": {"memory": "1Gi"}, "limits": {"memory": "4Gi"}}}], 1024.0),
    "limit-alone": ([{"resources": {"limits": {"memory": "512Mi"}}}], 512.0),
    "decimal-units": ([{"resources": {"requests": {"memory": "1G"}}}], 1e9 / 2**20),
    "containers-summed": ([{"resources": {"requests": {"memory": "1Gi"}}},
                           {"resources": {"limits": {"memory": "256Mi"}}}], 1280.0),
    "undeclared-container-adds-nothing": ([{"resources": {"requests": {"memory": "1Gi"}}}, {}], 1024.0),
    "garbage-request-falls-to-limit": ([{"resources": {"requests": {"memory": "lots"}, "limits": {"memory": "1Gi"}}}], 1024.0),
    "garbage-alone": ([{"resources": {"requests": {"memory": "lots"}}}], None),
    "zero": ([{"resources": {"requests": {"memory": "0"}}}], None),
    "cpu-only": ([{"resources": {"requests": {"cpu": "1"}}}], None),
    "no-containers": ([], None),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MEMORY_CASES), ids=list(MEMORY_CASES))
def test_a_replicas_memory_is_its_containers_requests(case: str) -> None:
    containers, expected = MEMORY_CASES[case]
    r = rev("m-predictor-00001", 1)
    r["spec"] = {"containers": containers}
    assert replica_memory_mb(r) == (pytest.approx(expected) if expected is not None else None)
    (got,) = serving_revisions(isvc({"latestReadyRevision": "m-predictor-00001"}), [r])
    assert got.memory_mb == replica_memory_mb(r)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0s", 0.0), ("90s", 90.0), ("5m", 300.0), ("1h2m3s", 3723.0), ("45", 45.0),
     ("1.5m", 90.0), ("soon", None), ("", None), (None, None)],
    ids=["zero", "seconds", "minutes", "hms", "bare", "fractional", "garbage", "empty", "absent"],
)  # fmt: skip
def test_parse_duration(text: str | None, seconds: float | None) -> None:
    assert parse_duration_s(text) == seconds


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({TARGET: "0.001"}, {TARGET: "0.01"}),
        ({RETENTION: "7200s"}, {RETENTION: "3600s"}),
        ({MIN_SCALE: "-1"}, {MIN_SCALE: "0"}),
        ({TARGET: "4.2", RETENTION: "300s", MIN_SCALE: "1"}, {TARGET: "4.2", RETENTION: "300s", MIN_SCALE: "1"}),
    ],
    ids=["target-floor", "retention-cap", "min-scale-floor", "in-range-untouched"],
)  # fmt: skip
def test_within_knative_ranges(values: dict[str, str], expected: dict[str, str]) -> None:
    assert within_knative_ranges(values) == expected


def test_annotation_patch_writes_only_what_differs() -> None:
    obj = {"metadata": {"annotations": {TARGET: "50", MIN_SCALE: "0"}}}
    old, changed = annotation_patch(obj, {TARGET: "25", MIN_SCALE: "0", RETENTION: "0s"})
    assert old == {TARGET: "50", MIN_SCALE: "0", RETENTION: None}
    assert changed == {TARGET: "25", RETENTION: "0s"}


def test_isvc_patch_rounds_the_target_and_skips_equal_values() -> None:
    obj = {"metadata": {"annotations": {}}, "spec": {"predictor": {"minReplicas": 0}}}
    old, new, patch = isvc_patch(obj, {TARGET: "4.6", MIN_SCALE: "0", RETENTION: "120s"})
    assert patch == {
        "spec": {"predictor": {"scaleTarget": 5}},
        "metadata": {"annotations": {RETENTION: "120s"}},
    }
    assert new == {TARGET: "5", RETENTION: "120s"}
    assert old == {TARGET: None, MIN_SCALE: "0", RETENTION: None}
    assert isvc_patch(obj, {TARGET: "0.2"})[2] == {"spec": {"predictor": {"scaleTarget": 1}}}


def test_status_comparison_ignores_times_and_patch_removes_keys() -> None:
    a = {
        "mode": "Auto",
        "recommendation": {"target": 5, "time": "2024-01-01T00:00:00Z"},
        "conditions": [{"type": "Applied", "status": "True", "lastTransitionTime": "t1"}],
    }
    b = {
        "mode": "Auto",
        "recommendation": {"target": 5, "time": "2024-01-01T00:10:00Z"},
        "conditions": [{"type": "Applied", "status": "True", "lastTransitionTime": "t2"}],
    }
    assert same_status(a, b)
    assert not same_status(a, {**b, "mode": "Recommend"})
    patch = status_patch({**a, "applied": {"revision": "r"}}, {"mode": "Off"})
    assert patch == {
        "status": {"mode": "Off", "recommendation": None, "conditions": None, "applied": None}
    }


def test_default_kubeconfig_order(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "work"
    (home / ".kube").mkdir(parents=True)
    (cwd / ".data").mkdir(parents=True)
    assert default_kubeconfig({}, cwd, home) is None
    (home / ".kube" / "config").write_text("x")
    assert default_kubeconfig({}, cwd, home) == home / ".kube" / "config"
    (cwd / ".data" / "kubeconfig").write_text("x")
    assert default_kubeconfig({}, cwd, home) == cwd / ".data" / "kubeconfig"
    assert default_kubeconfig({"KUBECONFIG": "/k"}, cwd, home) == Path("/k")


@pytest.mark.parametrize(
    ("value", "message"),
    [("localhost", "is not HOST:PORT"), ("127.0.0.1:http", "has no port"), ("127.0.0.1:70000", "out of range")],
    ids=["no-port", "named-port", "port-range"],
)  # fmt: skip
def test_bad_metrics_bind(value: str, message: str) -> None:
    with pytest.raises(ControllerSettingsError, match=message):
        parse_bind(value)


def test_bind_and_sink() -> None:
    assert parse_bind("127.0.0.1:9095") == ("127.0.0.1", 9095)
    assert parse_bind("[::1]:0") == ("::1", 0)
    assert parse_sink(None) is None
    with pytest.raises(ControllerSettingsError, match="--sink"):
        parse_sink("ftp://x")


def _isvc_min(min_replicas: int | None, owners: tuple[str, ...] = ()) -> dict[str, Any]:
    predictor: dict[str, Any] = {"sklearn": {"storageUri": "file:///m"}}
    if min_replicas is not None:
        predictor["minReplicas"] = min_replicas
    managed = [
        {
            "manager": manager,
            "operation": "Update",
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:spec": {"f:predictor": {"f:minReplicas": {}}}},
        }
        for manager in owners
    ]
    managed.append(  # another manager's field elsewhere counts for nothing
        {"manager": "other", "fieldsV1": {"f:spec": {"f:predictor": {"f:scaleTarget": {}}}}}
    )
    meta = {"name": "m", "namespace": "default", "managedFields": managed}
    return {"metadata": meta, "spec": {"predictor": predictor}}


@pytest.mark.parametrize(
    ("scaler_replicas", "isvc_min", "apply", "floor", "owners"),
    [
        pytest.param({}, 1, "revision", 1, (), id="isvc-keeps-one-warm:floor-1"),
        pytest.param({}, None, "revision", 0, (), id="isvc-without-minReplicas:floor-0"),
        pytest.param({"min": 0}, 2, "revision", 0, (), id="scaler-says-0:its-word-wins"),
        pytest.param({"min": 3}, 1, "podautoscaler", 3, (), id="scaler-min-above-isvc:scaler"),
        pytest.param({}, 1, "inferenceservice", 0, (), id="tuner-writes-isvc:no-owner-is-ours"),
        pytest.param({}, 1, "inferenceservice", 0, ("modelscale-tuner",), id="isvc:the-tuners-own"),
        pytest.param({}, 1, "inferenceservice", 1, ("kubectl-edit",), id="isvc:a-users-edit"),
        pytest.param(
            {}, 2, "inferenceservice", 2, ("modelscale-tuner", "kubectl"), id="isvc:shared"
        ),
        pytest.param({"min": 0}, 2, "inferenceservice", 0, ("kubectl",), id="isvc:scaler-wins"),
    ],
)
def test_min_scale_floor_from_the_inferenceservice(
    scaler_replicas: dict[str, int],
    isvc_min: int | None,
    apply: str,
    floor: int,
    owners: tuple[str, ...],
) -> None:
    from autoscaler.kube.model import plan_model

    scaler = {
        "metadata": {"name": "m", "namespace": "default"},
        "spec": {
            "targetRef": {"name": "m"},
            "objective": {"percentile": 95, "latencyMs": 500},
            "updateMode": "Auto",
            "apply": apply,
            "replicas": scaler_replicas,
        },
    }
    plan = plan_model(scaler, _isvc_min(isvc_min, owners), [])
    assert plan.spec is not None, plan.errors
    assert plan.spec.replicas_min == floor


@pytest.mark.parametrize(
    ("window", "apply", "tuner_wrote", "now", "user"),
    [
        pytest.param("2m", "revision", None, 0.0, 120.0, id="set-on-the-revision"),
        pytest.param("15s", "revision", 15.0, 1000.0, None, id="the-tuners-own"),
        pytest.param("30s", "revision", 15.0, 30.0, None, id="differs-before-the-cache-followed"),
        pytest.param("30s", "revision", 15.0, 1000.0, 30.0, id="edited-by-the-user"),
        pytest.param("30s", "podautoscaler", 15.0, 0.0, 30.0, id="tuner-writes-the-pa"),
        pytest.param("30s", "inferenceservice", None, 0.0, 30.0, id="tuner-writes-the-isvc"),
        pytest.param("soon", "revision", None, 0.0, None, id="unreadable"),
        pytest.param("2h", "revision", None, 0.0, None, id="over-an-hour"),
        pytest.param("5s", "revision", None, 0.0, None, id="under-6s"),
        pytest.param(None, "revision", None, 0.0, None, id="unset"),
        pytest.param("15s/15s", "revision", None, 0.0, None, id="marked-the-tuners-own"),
        pytest.param("30s/15s", "revision", 15.0, 30.0, 30.0, id="marked-edited-at-once"),
        pytest.param("15s/60s", "revision", 60.0, 1000.0, 15.0, id="marked-edited-to-15s"),
        pytest.param("30s/15s", "podautoscaler", 15.0, 0.0, 30.0, id="mark-only-on-revision"),
    ],
)
def test_the_users_window_is_read_on_each_revision(
    window: str | None, apply: str, tuner_wrote: float | None, now: float, user: float | None
) -> None:
    """In a rollout the older revision keeps the window it was made with; on ``apply:
    revision`` a window the tuner wrote there is its own until it is seen to differ (the
    tuner wrote at t=0; the cache has followed a write 60 s later). ``window/mark``: the mark
    the tuner writes with its window tells its own from a user's edit at once, with no
    checkpoint (written before it, or lost) and no wait for the cache."""
    from autoscaler.kube.model import user_window_on
    from autoscaler.kube.world import ServingRevision
    from autoscaler.tuner import new_state
    from autoscaler.tuner.state import AppliedValues

    annotations = {}
    mark = None
    if window is not None:
        value, _, mark = window.partition("/")
        annotations["autoscaling.knative.dev/window"] = value
    rev = ServingRevision("default", "m-00001", 1, 100, annotations, window_mark=mark or None)
    state = new_state("m-00001")
    if tuner_wrote is not None:
        state = replace(state, applied=AppliedValues(4.0, 585.0, 0, 0.0, tuner_wrote))
    assert user_window_on(rev, state, apply, now, 60.0) == user


@pytest.mark.parametrize(
    ("annotations", "apply", "now", "claimed"),
    [
        pytest.param({"w": "15s", "mark": "15s"}, "revision", 1000.0, 15.0, id="learned-back"),
        pytest.param({"mark": "15s"}, "revision", 1000.0, None, id="removed-by-the-user"),
        pytest.param({"w": "30s", "mark": "15s"}, "revision", 1000.0, 60.0, id="users-edit"),
        pytest.param({"mark": "15s"}, "revision", 30.0, 60.0, id="cache-may-lag"),
        pytest.param({"w": "15s"}, "revision", 1000.0, 60.0, id="no-mark"),
        pytest.param({"w": "15s", "mark": "15s"}, "podautoscaler", 1000.0, 60.0, id="pa"),
    ],
)
def test_the_window_the_tuner_has_on_the_revision_follows_its_mark(
    annotations: dict[str, str], apply: str, now: float, claimed: float | None
) -> None:
    """The checkpoint says the tuner wrote 60 s at t=0 (or the write of 15 s reached the
    revision and the checkpoint did not): the revision's mark corrects it; a mark with no
    window is a user's removal, and the tuner claims none (it writes one again if it wants
    one). A user's edit is left to ``user_window_on``; within two ticks of the last write the
    cache may still show the revision from before it."""
    from autoscaler.kube.model import tuner_window_on
    from autoscaler.kube.world import ServingRevision
    from autoscaler.tuner import new_state
    from autoscaler.tuner.state import AppliedValues

    window = {"autoscaling.knative.dev/window": annotations["w"]} if "w" in annotations else {}
    rev = ServingRevision("default", "m-00001", 1, 100, window, window_mark=annotations.get("mark"))
    state = replace(new_state("m-00001"), applied=AppliedValues(4.0, 540.0, 0, 0.0, 60.0))
    after = tuner_window_on(rev, state, apply, now, 60.0)
    assert after.applied is not None and after.applied.window_s == claimed
    assert tuner_window_on(rev, new_state("m-00001"), apply, now, 60.0).applied is None


def test_the_keep_alive_in_force_counts_the_window_in_force() -> None:
    """What ``kubectl get modelscalers`` shows: a busy revision's 15 s window and 585 s
    retention keep a replica 600 s, as the tuner planned (not 645 s on the default window)."""
    from autoscaler.kube.model import applied_annotations, in_force, summary
    from autoscaler.kube.world import ServingRevision
    from autoscaler.tuner import TunerConfig, new_state
    from autoscaler.tuner.state import AppliedValues

    rev = ServingRevision("default", "m-00001", 1, 100, {"autoscaling.knative.dev/target": "4"})
    assert rev.window_s is None
    state = new_state("m-00001")
    applied = AppliedValues(4.0, 585.0, 0, 0.0, 15.0)
    assert applied_annotations(applied)["autoscaling.knative.dev/window"] == "15s"
    live = in_force(rev, replace(state, applied=applied), None)
    assert live.window_s == 15.0
    assert summary(live, TunerConfig())["keepAlive"] == "600s"
    assert summary(rev, TunerConfig())["keepAlive"] == "90s"  # nothing set: Knative's 60 + 30
    assert "autoscaling.knative.dev/window" not in applied_annotations(
        replace(applied, window_s=None)
    )


def test_the_recommendation_and_explain_show_the_window_the_tuner_has() -> None:
    from autoscaler.kube.explain import render
    from autoscaler.tuner import (
        ModelScalerSpec,
        RevisionObservation,
        TunerConfig,
        new_state,
        recommend,
        recommendation_status,
    )
    from autoscaler.tuner.state import AppliedValues

    spec = ModelScalerSpec("m", objective_latency_ms=200)
    state = replace(new_state("r"), applied=AppliedValues(4.0, 585.0, 0, 0.0, 15.0))
    obs = RevisionObservation(30.0, 30.0, 1, 0.0, 0, (0.0,) * 27, applied_target=4.0)
    rec, _ = recommend(obs, spec, TunerConfig(), state, 30.0)
    status = recommendation_status(rec)
    assert status["stableWindowSeconds"] == 15
    scaler = {
        "metadata": {"name": "m"},
        "status": {"mode": "Auto", "target": 4, "keepAlive": "600s", "recommendation": status},
    }
    lines = render("m", "default", scaler, {})
    assert any("stable window 15s" in line for line in lines), lines
    no_window = recommendation_status(recommend(obs, spec, TunerConfig(), new_state("r"), 30.0)[0])
    assert "stableWindowSeconds" not in no_window
