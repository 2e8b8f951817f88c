"""Admission of InferenceServices and Knative objects, and what the work loop does with a spec it
cannot reconcile (no API server: the validators and the loop are driven directly)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.clock import ManualClock
from autoscaler.runtime.reconcile import admission, kserve, names
from autoscaler.runtime.reconcile.workloop import WorkLoop

SKLEARN = {"sklearn": {"storageUri": "file:///m"}}


def isvc(
    predictor: dict[str, Any], annotations: dict[str, str] | None = None, name: str = "b"
) -> dict[str, Any]:
    return {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
        "spec": {"predictor": {**SKLEARN, **predictor}},
    }


def fields(causes: list[Any]) -> dict[str, str]:
    return {c.field: c.message for c in causes}


class TestScalingFieldsRefused:
    @pytest.mark.parametrize(
        ("predictor", "annotations", "field", "words"),
        [
            pytest.param(
                {"scaleMetric": "cpu"},
                {},
                "spec.predictor.scaleMetric",
                "[cpu] is not a supported metric",
                id="cpu",
            ),
            pytest.param(
                {"scaleMetric": "memory"},
                {},
                "spec.predictor.scaleMetric",
                "[memory] is not a supported metric",
                id="memory",
            ),
            pytest.param(
                {"scaleMetric": "rps", "scaleTarget": 0},
                {},
                "spec.predictor.scaleTarget",
                "metric rps must be at least 1",
                id="rps-under-1",
            ),
            pytest.param(
                {"scaleTarget": 0}, {}, "spec.predictor.scaleTarget", "at least 0.01", id="target-0"
            ),
            pytest.param(
                {"timeout": "30s"}, {}, "spec.predictor.timeout", "integer", id="timeout-string"
            ),
            pytest.param(
                {"timeout": -5}, {}, "spec.predictor.timeout", "[0, 600]", id="timeout-negative"
            ),
            pytest.param(
                {"timeout": 100000}, {}, "spec.predictor.timeout", "[0, 600]", id="timeout-big"
            ),
            pytest.param(
                {},
                {names.CLASS_ANNOTATION: "hpa.autoscaling.knative.dev"},
                f"metadata.annotations[{names.CLASS_ANNOTATION}]",
                "runs the KPA only",
                id="hpa-class",
            ),
            pytest.param(
                {},
                {kserve.DEPLOYMENT_MODE: "RawDeployment"},
                f"metadata.annotations[{kserve.DEPLOYMENT_MODE}]",
                "serverless",
                id="raw-deployment",
            ),
        ],
    )
    def test_refused_with_the_field(
        self, predictor: dict[str, Any], annotations: dict[str, str], field: str, words: str
    ) -> None:
        causes = fields(admission.inference_service(isvc(predictor, annotations)))
        assert field in causes and words in causes[field], causes

    @pytest.mark.parametrize(
        "predictor",
        [
            pytest.param({"scaleMetric": "rps", "scaleTarget": 1}, id="rps-1"),
            pytest.param({"scaleMetric": "concurrency", "scaleTarget": 5}, id="concurrency"),
            pytest.param({"timeout": 0}, id="timeout-0"),
            pytest.param({"timeout": 600}, id="timeout-600"),
        ],
    )
    def test_accepted(self, predictor: dict[str, Any]) -> None:
        assert admission.inference_service(isvc(predictor)) == []

    def test_knative_service_with_hpa_class_refused(self) -> None:
        ksvc = {
            "metadata": {"name": "s"},
            "spec": {
                "template": {
                    "metadata": {
                        "annotations": {names.CLASS_ANNOTATION: "hpa.autoscaling.knative.dev"}
                    },
                    "spec": {"containers": [{"image": kserve.SKLEARN_IMAGE}]},
                }
            },
        }
        causes = fields(admission.knative_service(ksvc))
        assert "KPA only" in causes[f"spec.template.metadata.annotations[{names.CLASS_ANNOTATION}]"]


class _Loop(WorkLoop):
    """A work loop over one kind whose reconcile fails as told."""

    def __init__(self, clock: ManualClock, error: Exception) -> None:
        super().__init__(client.ApiClient(), {}, clock, "test")
        self.error: Exception | None = error
        self.calls = 0
        self.reports: list[tuple[str, str]] = []

    async def _reconcile_x(self, ns: str, name: str) -> None:
        self.calls += 1
        if self.error is not None:
            raise self.error

    async def _report_failure(
        self, kind: str, namespace: str, name: str, reason: str, message: str
    ) -> None:
        self.reports.append((reason, message))


def _invalid() -> ApiException:
    exc = ApiException(status=422, reason="Unprocessable Entity")
    exc.body = json.dumps({"kind": "Status", "message": 'Service "x" is invalid: spec.bad'})
    return exc


@pytest.mark.parametrize(
    ("error", "message"),
    [
        pytest.param(_invalid(), 'Service "x" is invalid: spec.bad', id="422"),
        pytest.param(ValueError("spec.x: bad"), "spec.x: bad", id="value-error"),
    ],
)
async def test_refused_spec_is_reported_and_retried_with_backoff(
    error: Exception, message: str
) -> None:
    clock = ManualClock()
    loop = _Loop(clock, error)
    loop._loop = asyncio.get_running_loop()
    worker = asyncio.create_task(loop._work())
    try:
        loop.enqueue("x", "default", "a")
        delays = []
        for _ in range(4):
            while clock.sleepers() == 0:
                await asyncio.sleep(0)
            due = min(w[0] for w in clock._waiters) - clock.now()
            delays.append(due)
            clock.advance(due)
            for _ in range(5):
                await asyncio.sleep(0)
        assert delays == [1.0, 2.0, 4.0, 8.0]  # not every 0.2 s
        assert loop.reports[0] == ("InvalidSpec", message)
        # an event for the key while a retry waits does not schedule a second retry
        loop.enqueue("x", "default", "a")
        for _ in range(5):
            await asyncio.sleep(0)
        assert clock.sleepers() == 1
        # a success resets the backoff
        loop.error = None
        clock.advance(16.0)
        for _ in range(5):
            await asyncio.sleep(0)
        assert ("x", "default", "a") not in loop._failures
    finally:
        worker.cancel()
        await loop.stop_work()


class TestPredictorAnnotationsAndFields:
    def test_predictor_annotation_checked_at_its_own_path(self) -> None:
        obj = isvc({"annotations": {names.TARGET: "-5"}})
        causes = fields(admission.inference_service(obj))
        assert f"spec.predictor.annotations[{names.TARGET}]" in causes, causes

    @pytest.mark.parametrize(
        ("validator", "obj", "field"),
        [
            pytest.param(
                admission.inference_service,
                isvc({"containerConcurrency": 5000}),
                "spec.predictor.containerConcurrency",
                id="isvc",
            ),
            pytest.param(
                admission.knative_service,
                {
                    "metadata": {"name": "s"},
                    "spec": {
                        "template": {
                            "spec": {
                                "containerConcurrency": 5000,
                                "containers": [{"image": kserve.SKLEARN_IMAGE}],
                            }
                        }
                    },
                },
                "spec.template.spec.containerConcurrency",
                id="ksvc",
            ),
            pytest.param(
                admission.revision,
                {"metadata": {"name": "r"}, "spec": {"containerConcurrency": 5000}},
                "spec.containerConcurrency",
                id="revision",
            ),
        ],
    )
    def test_container_concurrency_cause_names_the_spec_field(
        self, validator: Any, obj: dict[str, Any], field: str
    ) -> None:
        causes = fields(validator(obj))
        assert field in causes and "[0, 1000]" in causes[field], causes
        assert not any("[containerConcurrency]" in f for f in causes)

    @pytest.mark.parametrize(
        ("predictor", "field"),
        [
            pytest.param({"logger": {"mode": "all"}}, "spec.predictor.logger", id="logger"),
            pytest.param({"batcher": {"maxBatchSize": 4}}, "spec.predictor.batcher", id="batcher"),
            pytest.param(
                {"sklearn": {"storageUri": "/m", "protocolVersion": "grpc-v2"}},
                "spec.predictor.sklearn.protocolVersion",
                id="grpc",
            ),
            pytest.param(
                {"sklearn": {"storageUri": "/m", "image": "my/sklearn:1"}},
                "spec.predictor.sklearn.image",
                id="image",
            ),
            pytest.param(
                {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "/m", "runtime": "x"}},
                "spec.predictor.model.runtime",
                id="runtime",
            ),
        ],
    )
    def test_fields_one_machine_cannot_honour_are_refused(
        self, predictor: dict[str, Any], field: str
    ) -> None:
        obj = isvc(predictor)
        if "model" in predictor:
            del obj["spec"]["predictor"]["sklearn"]
        assert field in fields(admission.inference_service(obj))


class TestInferenceServiceName:
    @pytest.mark.parametrize("name", ["my.model", "9iris", "-a", "a-"])
    def test_refused_as_kserve_does(self, name: str) -> None:
        causes = fields(admission.inference_service(isvc({}, name=name)))
        assert "metadata.name" in causes
        assert "must start with alphabetical character" in causes["metadata.name"]
        assert "[a-z]([-a-z0-9]*[a-z0-9])?" in causes["metadata.name"]

    @pytest.mark.parametrize("name", ["iris", "my-model-2", "a"])
    def test_accepted(self, name: str) -> None:
        assert admission.inference_service(isvc({}, name=name)) == []
