"""One-machine mode end to end: kubectl applies InferenceServices; the controller, the KPA and the
data plane serve them from zero, scale them and split traffic as Knative and KServe would."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from autoscaler.examples.build import build_iris
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine

pytestmark = pytest.mark.slow

FAST = {
    "autoscaling.knative.dev/window": "6s",
}


def isvc_yaml(
    name: str, predictor: dict[str, Any], annotations: dict[str, str] | None = None
) -> str:
    obj = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": name,
            "namespace": "default",
            "annotations": {**FAST, **(annotations or {})},
        },
        "spec": {"predictor": predictor},
    }
    return json.dumps(obj)


def post(
    om: RunningOneMachine, host: str, path: str, body: dict[str, Any], timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        om.ingress_url + path,
        data=json.dumps(body).encode(),
        headers={"Host": host, "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def get_obj(om: RunningOneMachine, kind: str, name: str) -> dict[str, Any]:
    out = om.kubectl("get", kind, name, "-o", "json")
    return json.loads(out.stdout) if out.returncode == 0 else {}


def ready(obj: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in obj.get("status", {}).get("conditions", [])
    )


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    tmp = tmp_path_factory.mktemp("onemachine")
    with running_onemachine(tmp, autoscaler_config={"scale-to-zero-grace-period": "6s"}) as running:
        yield running


@pytest.fixture(scope="module")
def iris_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    path, _ = build_iris(tmp_path_factory.mktemp("models"))
    return f"file://{path.parent}"


def test_scale_from_zero_answers_first_request_and_returns_to_zero(
    om: RunningOneMachine, iris_uri: str
) -> None:
    applied = om.kubectl(
        "apply",
        "-f",
        "-",
        input=isvc_yaml("iris", {"minReplicas": 0, "sklearn": {"storageUri": iris_uri}}),
    )
    assert applied.returncode == 0, applied.stderr
    om.wait(lambda: ready(get_obj(om, "isvc", "iris")), 60, "iris ready")
    # with minReplicas 0 the first replica (initial scale 1) goes once the window and grace pass
    om.wait(
        lambda: (
            get_obj(om, "revision", "iris-predictor-00001").get("status", {}).get("actualReplicas")
            == 0
        ),
        90,
        "scale to zero",
    )
    status, body = post(
        om,
        "iris.default.example.com",
        "/v1/models/iris:predict",
        {"instances": [[5.1, 3.5, 1.4, 0.2]]},
    )
    assert (status, body) == (200, {"predictions": [0]})
    status, body = post(
        om,
        "iris.default.example.com",
        "/v2/models/iris/infer",
        {
            "inputs": [
                {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [6.7, 3.0, 5.2, 2.3]}
            ]
        },
    )
    assert status == 200 and body["outputs"][0]["data"] == [2]
    table = om.kubectl("get", "isvc", "iris")
    assert "http://iris.default.example.com" in table.stdout and "True" in table.stdout
    om.wait(
        lambda: (
            get_obj(om, "revision", "iris-predictor-00001").get("status", {}).get("actualReplicas")
            == 0
        ),
        90,
        "back to zero",
    )


@pytest.mark.parametrize(
    ("predictor", "annotations", "words"),
    [
        pytest.param(
            {"xgboost": {"storageUri": "file:///m"}},
            {},
            "spec.predictor.xgboost",
            id="unknown-predictor",
        ),
        pytest.param({"sklearn": {}}, {}, "spec.predictor.sklearn.storageUri", id="no-storage"),
        pytest.param(
            {"sklearn": {"storageUri": "/m"}},
            {"autoscaling.knative.dev/target": "-1"},
            "autoscaling.knative.dev/target",
            id="bad-target",
        ),
    ],
)
def test_refused_at_apply_with_the_field(
    om: RunningOneMachine, predictor: dict[str, Any], annotations: dict[str, str], words: str
) -> None:
    out = om.kubectl("apply", "-f", "-", input=isvc_yaml("bad", predictor, annotations))
    assert out.returncode != 0
    assert words in out.stderr and "is invalid" in out.stderr, out.stderr
    assert om.kubectl("get", "isvc", "bad").returncode != 0


def test_bad_requests(om: RunningOneMachine) -> None:
    status, body = post(
        om, "nope.default.example.com", "/v1/models/nope:predict", {"instances": []}
    )
    assert status == 404 and "error" in body
    status, body = post(
        om, "iris.default.example.com", "/v1/models/other:predict", {"instances": []}
    )
    assert status == 404 and "error" in body


def test_burst_reaches_kpa_replica_count(om: RunningOneMachine) -> None:
    # capacity model: 1 s per request; target 1 at 100 % utilization -> one pod per concurrent request
    pred = {
        "minReplicas": 0,
        "maxReplicas": 4,
        "containers": [
            {
                "name": "kserve-container",
                "env": [
                    {
                        "name": "MODEL_CLASS",
                        "value": "autoscaler.examples.capacity:CapacityLimitedModel",
                    },
                    {"name": "MODEL_BASE_LATENCY_MS", "value": "1500"},
                ],
            }
        ],
    }
    ann = {
        "autoscaling.knative.dev/target": "1",
        "autoscaling.knative.dev/target-utilization-percentage": "100",
    }
    assert om.kubectl("apply", "-f", "-", input=isvc_yaml("gpu", pred, ann)).returncode == 0
    om.wait(lambda: ready(get_obj(om, "isvc", "gpu")), 90, "gpu ready")
    results: list[int] = []

    def client() -> None:
        for _ in range(6):
            results.append(
                post(
                    om, "gpu.default.example.com", "/v1/models/gpu:predict", {"instances": [[1.0]]}
                )[0]
            )

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    om.wait(
        lambda: (
            get_obj(om, "podautoscaler", "gpu-predictor-00001")
            .get("status", {})
            .get("desiredScale")
            == 3
        ),
        60,
        "3 desired pods",
    )
    for t in threads:
        t.join(120)
    assert results == [200] * 18


def test_changed_spec_makes_revision_2_and_canary_split(
    om: RunningOneMachine, iris_uri: str
) -> None:
    pred = {"minReplicas": 1, "canaryTrafficPercent": 20, "sklearn": {"storageUri": iris_uri}}
    assert om.kubectl("apply", "-f", "-", input=isvc_yaml("iris", pred)).returncode == 0
    om.wait(
        lambda: (
            get_obj(om, "configuration", "iris-predictor")
            .get("status", {})
            .get("latestReadyRevisionName")
            == "iris-predictor-00002"
        ),
        90,
        "revision 2 ready",
    )

    def split() -> list[tuple[str, int]]:
        traffic = (
            get_obj(om, "isvc", "iris")
            .get("status", {})
            .get("components", {})
            .get("predictor", {})
            .get("traffic", [])
        )
        return sorted((t["revisionName"], t["percent"]) for t in traffic)

    om.wait(
        lambda: split() == [("iris-predictor-00001", 80), ("iris-predictor-00002", 20)],
        60,
        "80/20 split",
    )
    table = om.kubectl("get", "isvc", "iris").stdout
    assert "80" in table and "20" in table and "iris-predictor-00001" in table


def test_a_route_whose_traffic_cannot_be_resolved_keeps_serving_its_last_good_traffic(
    om: RunningOneMachine,
) -> None:
    # A Route of its own to revision 1; then traffic percents that do not add up to 100: the
    # Route reports it is not ready and why, and its host keeps answering with the traffic
    # it had, as in Knative (the data plane drops nothing); valid traffic takes effect again.
    def route(percent: int) -> str:
        return json.dumps(
            {
                "apiVersion": "serving.knative.dev/v1",
                "kind": "Route",
                "metadata": {"name": "pinned", "namespace": "default"},
                "spec": {"traffic": [{"revisionName": "iris-predictor-00001", "percent": percent}]},
            }
        )

    def condition() -> dict[str, Any]:
        conds = get_obj(om, "route", "pinned").get("status", {}).get("conditions", [])
        return next((c for c in conds if c.get("type") == "Ready"), {})

    host = "pinned.default.example.com"
    body = {"instances": [[6.8, 2.8, 4.8, 1.4]]}
    assert om.kubectl("apply", "-f", "-", input=route(100)).returncode == 0
    # each of Knative's route conditions, as kubectl wait reads them
    for cond in ("AllTrafficAssigned", "IngressReady", "CertificateProvisioned", "Ready"):
        out = om.kubectl("wait", f"--for=condition={cond}", "route/pinned", "--timeout=30s")
        assert out.returncode == 0, out.stderr
    assert post(om, host, "/v1/models/iris:predict", body)[0] == 200
    assert om.kubectl("apply", "-f", "-", input=route(50)).returncode == 0
    # a traffic error Knative's webhook would refuse: AllTrafficAssigned Unknown, reason Unknown
    om.wait(lambda: condition().get("reason") == "Unknown", 30, "route not ready")
    assert condition().get("status") != "True"
    assert "add up to 50" in condition().get("message", "")
    for _ in range(5):
        status, out = post(om, host, "/v1/models/iris:predict", body)
        assert status == 200, out
    assert om.kubectl("delete", "route", "pinned").returncode == 0
    om.wait(lambda: post(om, host, "/v1/models/iris:predict", body)[0] == 404, 30, "route gone")


def test_annotating_revision_changes_target_without_new_revision(om: RunningOneMachine) -> None:
    out = om.kubectl(
        "annotate",
        "--overwrite",
        "revision",
        "iris-predictor-00002",
        "autoscaling.knative.dev/target=7",
    )
    assert out.returncode == 0, out.stderr
    om.wait(
        lambda: (
            get_obj(om, "podautoscaler", "iris-predictor-00002")
            .get("metadata", {})
            .get("annotations", {})
            .get("autoscaling.knative.dev/target")
            == "7"
        ),
        30,
        "target on the PodAutoscaler",
    )
    refused = om.kubectl(
        "annotate",
        "--overwrite",
        "revision",
        "iris-predictor-00002",
        "autoscaling.knative.dev/window=1s",
    )
    assert refused.returncode != 0 and "autoscaling.knative.dev/window" in refused.stderr
    names = om.kubectl("get", "revisions", "-o", "name").stdout.split()
    assert (
        Counter(n.rsplit("-", 1)[0] for n in names)["revision.serving.knative.dev/iris-predictor"]
        == 2
    )


def test_tuner_reads_replica_metrics_and_recommends(om: RunningOneMachine) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "modelscale-tuner", "namespace": "default"},
        "data": {"tick_period_s": "2", "min_requests": "5", "min_bin_requests": "5"},
    }
    scaler = {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": "gpu", "namespace": "default"},
        "spec": {
            "targetRef": {"name": "gpu"},
            "objective": {"percentile": 95, "latencyMs": 5000},
            "updateMode": "Recommend",
        },
    }
    for obj in (config, scaler):
        out = om.kubectl("apply", "-f", "-", input=json.dumps(obj))
        assert out.returncode == 0, out.stderr
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            post(om, "gpu.default.example.com", "/v1/models/gpu:predict", {"instances": [[1.0]]})

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:

        def metrics_available() -> bool:
            conds = get_obj(om, "modelscaler", "gpu").get("status", {}).get("conditions", [])
            return any(
                c.get("type") == "MetricsAvailable" and c.get("status") == "True" for c in conds
            )

        om.wait(metrics_available, 60, "MetricsAvailable on the ModelScaler")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    table = om.kubectl("get", "modelscalers")
    assert table.returncode == 0 and "Recommend" in table.stdout, table.stdout
    explained = om.kubectl("get", "modelscaler", "gpu", "-o", "json")
    assert json.loads(explained.stdout)["status"].get("mode") == "Recommend"


def test_wait_after_apply_waits_for_the_new_revision_and_canary_rolls_back(
    om: RunningOneMachine, iris_uri: str
) -> None:
    # iris: revision 2 at 20 % (test_changed_spec_makes_revision_2_and_canary_split)
    def predictor(**extra: Any) -> dict[str, Any]:
        return {"minReplicas": 1, "sklearn": {"storageUri": iris_uri}, **extra}

    def component() -> dict[str, Any]:
        st = get_obj(om, "isvc", "iris").get("status", {})
        return dict(st.get("components", {}).get("predictor", {}))

    def split() -> list[tuple[str, int]]:
        return sorted((t["revisionName"], t["percent"]) for t in component().get("traffic", []))

    def apply_and_wait(pred: dict[str, Any]) -> None:
        assert om.kubectl("apply", "-f", "-", input=isvc_yaml("iris", pred)).returncode == 0
        out = om.kubectl("wait", "--for=condition=Ready", "isvc/iris", "--timeout=90s")
        assert out.returncode == 0, out.stderr

    # promotion: no canary; once rolled out, canaryTrafficPercent again rolls back to 00001
    apply_and_wait(predictor())
    om.wait(lambda: component().get("latestRolledoutRevision") == "iris-predictor-00002", 30, "")
    assert (
        om.kubectl(
            "apply", "-f", "-", input=isvc_yaml("iris", predictor(canaryTrafficPercent=10))
        ).returncode
        == 0
    )
    om.wait(
        lambda: split() == [("iris-predictor-00001", 90), ("iris-predictor-00002", 10)],
        30,
        "rollback: 90 % to the revision rolled out before",
    )
    # a spec change: kubectl wait right after the apply returns only once revision 3 serves
    apply_and_wait(
        predictor(sklearn={"storageUri": iris_uri, "env": [{"name": "X", "value": "1"}]})
    )
    comp = component()
    assert comp["latestCreatedRevision"] == comp["latestReadyRevision"] == "iris-predictor-00003"
    assert split() == [("iris-predictor-00003", 100)]
