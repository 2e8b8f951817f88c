"""The reconcilers' pure transforms: InferenceService -> Knative objects, status and traffic."""

from __future__ import annotations

from typing import Any

import pytest

from autoscaler.runtime.reconcile import configuration, kserve, names, revision, route, serving

NOW = "2026-01-01T00:00:00Z"


def isvc(
    predictor: dict[str, Any], annotations: dict[str, str] | None = None, **status: Any
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "iris",
            "namespace": "models",
            "uid": "u1",
            "generation": 1,
            "annotations": annotations or {},
        },
        "spec": {"predictor": predictor},
    }
    if status:
        obj["status"] = status
    return obj


SKLEARN = {"sklearn": {"storageUri": "file:///models/iris"}}


def revisions(*ready: str, configuration: str = "iris-predictor") -> dict[str, dict[str, Any]]:
    """Ready revisions by name, created from ``configuration``, as a Route resolves against."""
    return {
        name: {
            "metadata": {
                "name": name,
                "generation": 1,
                "labels": {names.CONFIGURATION_LABEL: configuration},
            },
            "status": {"observedGeneration": 1, "conditions": [names.condition("Ready", True)]},
        }
        for name in ready
    }


def template_annotations(ksvc: dict[str, Any]) -> dict[str, str]:
    return dict(ksvc["spec"]["template"]["metadata"]["annotations"])


class TestInferenceServiceToKnativeService:
    def test_minimal_sklearn_scales_from_one_by_default(self) -> None:
        ksvc = kserve.desired_ksvc(isvc(dict(SKLEARN)), None)
        assert ksvc["metadata"]["name"] == "iris-predictor"
        assert ksvc["metadata"]["namespace"] == "models"
        ann = template_annotations(ksvc)
        assert ann[names.MIN_SCALE] == "1"
        assert ann[names.CLASS_ANNOTATION] == names.KPA_CLASS
        assert ann[kserve.STORAGE_URI_ANNOTATION] == "file:///models/iris"
        assert ksvc["spec"]["traffic"] == [{"latestRevision": True, "percent": 100}]
        assert "--model_name=iris" in ksvc["spec"]["template"]["spec"]["containers"][0]["args"]

    def test_scaling_fields_map_to_annotations_and_template(self) -> None:
        pred = {
            **SKLEARN,
            "minReplicas": 0,
            "maxReplicas": 5,
            "scaleTarget": 4,
            "scaleMetric": "concurrency",
            "containerConcurrency": 2,
            "timeout": 30,
        }
        ksvc = kserve.desired_ksvc(isvc(pred), None)
        ann = template_annotations(ksvc)
        assert (
            ann[names.MIN_SCALE],
            ann[names.MAX_SCALE],
            ann[names.TARGET],
            ann[names.METRIC],
        ) == ("0", "5", "4", "concurrency")
        spec = ksvc["spec"]["template"]["spec"]
        assert (spec["containerConcurrency"], spec["timeoutSeconds"]) == (2, 30)

    def test_annotations_copied_except_min_and_max_scale(self) -> None:
        ann_in = {
            "team": "a",
            names.MIN_SCALE: "3",
            names.MAX_SCALE: "9",
            "autoscaling.knative.dev/window": "10s",
        }
        ksvc = kserve.desired_ksvc(isvc({**SKLEARN, "minReplicas": 0}, ann_in), None)
        ann = template_annotations(ksvc)
        assert ann["team"] == "a"
        assert ann["autoscaling.knative.dev/window"] == "10s"
        assert ann[names.MIN_SCALE] == "0"
        assert names.MAX_SCALE not in ann

    @pytest.mark.parametrize(
        ("canary", "rolled_out", "tags", "expected"),
        [
            pytest.param(
                None,
                "iris-predictor-00001",
                False,
                [{"latestRevision": True, "percent": 100}],
                id="no-canary",
            ),
            pytest.param(
                20,
                None,
                False,
                [{"latestRevision": True, "percent": 100}],
                id="canary-before-first-rollout",
            ),
            pytest.param(
                20,
                "iris-predictor-00001",
                False,
                [
                    {"latestRevision": True, "percent": 20},
                    {
                        "tag": "prev",
                        "revisionName": "iris-predictor-00001",
                        "latestRevision": False,
                        "percent": 80,
                    },
                ],
                id="canary-20",
            ),
            pytest.param(
                0,
                "iris-predictor-00001",
                True,
                [
                    {"latestRevision": True, "percent": 0, "tag": "latest"},
                    {
                        "tag": "prev",
                        "revisionName": "iris-predictor-00001",
                        "latestRevision": False,
                        "percent": 100,
                    },
                ],
                id="canary-0-tag-routing",
            ),
            pytest.param(
                100,
                "iris-predictor-00001",
                False,
                [{"latestRevision": True, "percent": 100}],
                id="canary-promoted",
            ),
            pytest.param(
                None,
                "iris-predictor-00001",
                True,
                [{"latestRevision": True, "percent": 100, "tag": "latest"}],
                id="tag-routing-100",
            ),
        ],
    )
    def test_traffic_split(
        self,
        canary: int | None,
        rolled_out: str | None,
        tags: bool,
        expected: list[dict[str, Any]],
    ) -> None:
        assert kserve.traffic(canary, rolled_out, tag_routing=tags) == expected

    def test_latest_tag_only_with_tag_routing_annotation(self) -> None:
        rolled = {"latestRolledoutRevision": "iris-predictor-00001"}
        obj = isvc({**SKLEARN, "canaryTrafficPercent": 20}, components={"predictor": rolled})
        plain = kserve.desired_ksvc(obj, "iris-predictor-00001")["spec"]["traffic"]
        assert [t.get("tag") for t in plain] == [None, "prev"]
        obj["metadata"]["annotations"][kserve.TAG_ROUTING_ANNOTATION] = "true"
        tagged = kserve.desired_ksvc(obj, "iris-predictor-00001")["spec"]["traffic"]
        assert [t.get("tag") for t in tagged] == ["latest", "prev"]


def ksvc_status(
    latest_ready: str,
    traffic: list[tuple[str, int, bool]],
    created: str | None = None,
    configurations_ready: str = "True",
) -> dict[str, Any]:
    """A Knative Service whose status observed its generation, with resolved traffic, its
    Route settled and its Configuration's Ready as given."""
    return {
        "metadata": {"name": "iris-predictor", "generation": 3},
        "status": {
            "observedGeneration": 3,
            "latestReadyRevisionName": latest_ready,
            "latestCreatedRevisionName": created or latest_ready,
            "traffic": [
                {"revisionName": r, "percent": p, "latestRevision": latest}
                for r, p, latest in traffic
            ],
            "conditions": [
                {"type": "ConfigurationsReady", "status": configurations_ready},
                {"type": "RoutesReady", "status": "True"},
            ],
        },
    }


class TestPredictorFieldsOnTheTemplate:
    def test_predictor_annotations_and_labels_merged_as_kserve(self) -> None:
        pred = {
            **SKLEARN,
            "annotations": {names.TARGET: "7", "team": "p", names.MIN_SCALE: "5"},
            "labels": {"team": "blue", "networking.knative.dev/visibility": "cluster-local"},
        }
        obj = isvc(pred, {"team": "i", "other": "x"})
        obj["metadata"]["labels"] = {"team": "isvc", "app": "iris"}
        ksvc = kserve.desired_ksvc(obj, None)
        ann = template_annotations(ksvc)
        assert (ann[names.TARGET], ann["team"], ann["other"]) == ("7", "p", "x")
        assert ann[names.MIN_SCALE] == "1"  # disallowed: minReplicas decides
        labels = ksvc["spec"]["template"]["metadata"]["labels"]
        assert (labels["team"], labels["app"]) == ("blue", "iris")
        assert "networking.knative.dev/visibility" not in labels
        assert ksvc["metadata"]["labels"]["networking.knative.dev/visibility"] == "cluster-local"

    @pytest.mark.parametrize(
        ("change", "where"),
        [
            pytest.param({"sklearn": {"args": ["--workers=2"]}}, "args", id="args"),
            pytest.param({"sklearn": {"command": ["python", "-m", "x"]}}, "command", id="command"),
            pytest.param({"sklearn": {"protocolVersion": "v2"}}, "env", id="protocol"),
            pytest.param({"serviceAccountName": "sa-x"}, "serviceAccountName", id="sa"),
            pytest.param({"nodeSelector": {"gpu": "a"}}, "nodeSelector", id="node-selector"),
        ],
    )
    def test_spec_change_changes_the_template(self, change: dict[str, Any], where: str) -> None:
        base = kserve.desired_ksvc(isvc(dict(SKLEARN)), None)["spec"]["template"]
        pred: dict[str, Any] = {**SKLEARN}
        for key, value in change.items():
            pred[key] = {**pred[key], **value} if key == "sklearn" else value
        changed = kserve.desired_ksvc(isvc(pred), None)["spec"]["template"]
        assert changed != base  # so the configuration stamps a new revision
        container = changed["spec"]["containers"][0]
        if where == "args":
            assert container["args"][:3] == base["spec"]["containers"][0]["args"]
            assert container["args"][-1] == "--workers=2"  # appended, as KServe merges
        elif where == "command":
            assert container["command"] == ["python", "-m", "x"]
        elif where == "env":
            assert {"name": "PROTOCOL", "value": "v2"} in container["env"]
        else:
            assert changed["spec"][where] == change[where]

    def test_custom_predictor_keeps_every_container(self) -> None:
        pred = {
            "containers": [
                {"env": [{"name": "MODEL_CLASS", "value": "m:C"}], "command": ["run"]},
                {"name": "sidecar", "image": "s"},
            ]
        }
        spec = kserve.desired_ksvc(isvc(pred), None)["spec"]["template"]["spec"]
        assert [c["name"] for c in spec["containers"]] == ["kserve-container", "sidecar"]
        assert spec["containers"][0]["command"] == ["run"]


class TestRolledOutRevision:
    R1, R2 = "iris-predictor-00001", "iris-predictor-00002"

    def obj(self, canary: int | None, current: str | None, previous: str | None) -> dict[str, Any]:
        comp = {"latestRolledoutRevision": current, "previousRolledoutRevision": previous}
        pred = {**SKLEARN, "canaryTrafficPercent": canary} if canary is not None else SKLEARN
        return isvc(dict(pred), components={"predictor": {k: v for k, v in comp.items() if v}})

    def test_first_revision_rolls_out_at_100(self) -> None:
        ksvc = ksvc_status(self.R1, [(self.R1, 100, True)])
        assert kserve.rolled_out_revision(self.obj(None, None, None), ksvc) == (self.R1, None)

    def test_promotion_needs_the_status_at_100(self) -> None:
        # ready but its traffic not yet at 100 % in the Knative Service's status: not rolled out
        ksvc = ksvc_status(self.R2, [(self.R2, 20, True), (self.R1, 80, False)])
        assert kserve.rolled_out_revision(self.obj(None, self.R1, None), ksvc) == (self.R1, None)
        ksvc = ksvc_status(self.R2, [(self.R2, 100, True)])
        assert kserve.rolled_out_revision(self.obj(None, self.R1, None), ksvc) == (
            self.R2,
            self.R1,
        )

    def test_canary_keeps_the_rolled_out_revision(self) -> None:
        ksvc = ksvc_status(self.R2, [(self.R2, 20, True), (self.R1, 80, False)])
        assert kserve.rolled_out_revision(self.obj(20, self.R1, None), ksvc) == (self.R1, None)

    def test_stale_status_changes_nothing(self) -> None:
        ksvc = ksvc_status(self.R2, [(self.R2, 100, True)])
        ksvc["metadata"]["generation"] = 4
        assert kserve.rolled_out_revision(self.obj(None, self.R1, None), ksvc) == (self.R1, None)

    @pytest.mark.parametrize("canary", [10, 0])
    def test_rollback_after_promotion(self, canary: int) -> None:
        # 00002 was promoted (rolled out at 100 %); canaryTrafficPercent set again with no spec
        # change: the first split names 00002 twice (summed 100 %), so the previous rolled-out
        # revision becomes the latest again and takes the rest of the traffic
        obj = self.obj(canary, self.R2, self.R1)
        assert kserve.desired_ksvc(obj, self.R2)["spec"]["traffic"][1]["revisionName"] == self.R2
        ksvc = ksvc_status(self.R2, [(self.R2, canary, True), (self.R2, 100 - canary, False)])
        rolled = kserve.rolled_out_revision(obj, ksvc)
        assert rolled == (self.R1, self.R1)
        traffic = kserve.desired_ksvc(obj, rolled[0])["spec"]["traffic"]
        assert [(t.get("revisionName"), t["percent"]) for t in traffic] == [
            (None, canary),
            (self.R1, 100 - canary),
        ]
        # and it stays rolled back once the split takes effect
        obj["status"]["components"]["predictor"]["latestRolledoutRevision"] = self.R1
        ksvc = ksvc_status(self.R2, [(self.R2, canary, True), (self.R1, 100 - canary, False)])
        assert kserve.rolled_out_revision(obj, ksvc) == (self.R1, self.R1)

    @pytest.mark.parametrize("configurations_ready", ["Unknown", "False"])
    def test_no_rollback_until_the_configuration_settles(self, configurations_ready: str) -> None:
        # a changed spec with canaryTrafficPercent: the Route already serves the new split over
        # the rolled-out revision, the Configuration has not yet created the new one
        ksvc = ksvc_status(
            self.R2,
            [(self.R2, 20, True), (self.R2, 80, False)],
            configurations_ready=configurations_ready,
        )
        assert kserve.rolled_out_revision(self.obj(20, self.R2, self.R1), ksvc) == (
            self.R2,
            self.R1,
        )

    def test_no_rollback_while_a_newer_revision_is_created(self) -> None:
        ksvc = ksvc_status(
            self.R2, [(self.R2, 10, True), (self.R2, 90, False)], created="iris-predictor-00003"
        )
        assert kserve.rolled_out_revision(self.obj(10, self.R2, self.R1), ksvc) == (
            self.R2,
            self.R1,
        )


class TestRolloutWhileKnativeCatchesUp:
    """``rolled_out_revision`` over the statuses ``serving.status`` derives from the
    Configuration and the Route at each step while they catch up with a new Knative Service spec,
    in either order: a rollback is read only from a settled status."""

    R1, R2, R3 = "iris-predictor-00001", "iris-predictor-00002", "iris-predictor-00003"
    V2 = {"sklearn": {"storageUri": "file:///models/iris2"}}
    V3 = {"sklearn": {"storageUri": "file:///models/iris3"}}

    @staticmethod
    def at(pred: dict[str, Any], current: str, previous: str | None) -> dict[str, Any]:
        comp = {"latestRolledoutRevision": current, "previousRolledoutRevision": previous}
        return isvc(dict(pred), components={"predictor": {k: v for k, v in comp.items() if v}})

    def knative(
        self,
        before: dict[str, Any],
        after: dict[str, Any],
        *,
        cfg_observed: bool,
        created: str,
        ready: str,
        route_resolved_at: str | None,
    ) -> dict[str, Any]:
        """The Knative Service KServe wrote for ``after`` (generation 3; ``before``'s was 2)
        with the status its Configuration and Route give it: the Configuration has or has not
        observed its spec (it has created ``created`` and ``ready`` is its latest ready
        revision); the Route has not observed its spec (None) or resolved it while its
        configuration's latest ready revision was ``route_resolved_at``."""
        rolled = kserve.rolled_out_revision(before, None)[0]
        old = kserve.desired_ksvc(before, rolled)
        new = kserve.desired_ksvc(after, rolled)
        old["metadata"]["generation"], new["metadata"]["generation"] = 2, 3
        cfg = serving.desired_configuration(new)
        cfg_gen = 2 if cfg == serving.desired_configuration(old) else 3
        cfg["metadata"]["generation"] = cfg_gen
        cfg["status"] = {
            "observedGeneration": cfg_gen if cfg_observed else cfg_gen - 1,
            "latestCreatedRevisionName": created if cfg_observed else self.R2,
            "latestReadyRevisionName": ready,
            "conditions": [names.condition("Ready", True if created == ready else None)],
        }
        resolved_cfg = {"status": {"latestReadyRevisionName": route_resolved_at or self.R2}}
        old_rt, new_rt = serving.desired_route(old), serving.desired_route(new)
        old_rt["metadata"]["generation"], new_rt["metadata"]["generation"] = 2, 3
        seen = new_rt if route_resolved_at else old_rt
        resolved = route.resolve(
            seen, {"iris-predictor": resolved_cfg}, revisions(self.R1, self.R2, self.R3)
        )
        new_rt["status"] = route.status(seen, resolved, domain="example.com", now_iso=NOW)
        new["status"] = serving.status(new, cfg, new_rt, NOW)
        return new

    @pytest.mark.parametrize(
        ("cfg_observed", "created", "ready", "route_resolved_at"),
        [
            pytest.param(False, R2, R2, None, id="neither-observed"),
            pytest.param(False, R2, R2, R2, id="route-first-over-the-old-revision"),
            pytest.param(True, R3, R2, None, id="configuration-first"),
            pytest.param(True, R3, R2, R2, id="both-revision-3-not-ready"),
            pytest.param(True, R3, R3, R2, id="revision-3-ready-route-not-migrated"),
            pytest.param(True, R3, R3, R3, id="settled"),
        ],
    )
    def test_changed_spec_with_canary_keeps_the_revision_rolled_out_at_100(
        self, cfg_observed: bool, created: str, ready: str, route_resolved_at: str | None
    ) -> None:
        # v1 then v2 rolled out at 100 %; v3 applied with canaryTrafficPercent 20
        before = self.at(self.V2, self.R2, self.R1)
        after = self.at({**self.V3, "canaryTrafficPercent": 20}, self.R2, self.R1)
        ksvc = self.knative(
            before,
            after,
            cfg_observed=cfg_observed,
            created=created,
            ready=ready,
            route_resolved_at=route_resolved_at,
        )
        assert names.observed(ksvc)
        rolled = kserve.rolled_out_revision(after, ksvc)
        assert rolled == (self.R2, self.R1)
        assert kserve.desired_ksvc(after, rolled[0])["spec"]["traffic"][1]["revisionName"] == (
            self.R2
        )

    def test_rollback_then_the_next_canary_and_promotion_as_kserve(self) -> None:
        promoted = self.at(self.V2, self.R2, self.R1)
        rollback = self.at({**self.V2, "canaryTrafficPercent": 20}, self.R2, self.R1)

        def step(after: dict[str, Any], **state: Any) -> tuple[str | None, str | None]:
            return kserve.rolled_out_revision(after, self.knative(promoted, after, **state))

        # the template is unchanged: the Configuration stays observed at revision 2
        same = {"cfg_observed": True, "created": self.R2, "ready": self.R2}
        assert step(rollback, **same, route_resolved_at=None) == (self.R2, self.R1)
        # the Route serves the split over revision 2 alone: a settled rollback
        rolled = step(rollback, **same, route_resolved_at=self.R2)
        assert rolled == (self.R1, self.R1)  # KServe leaves the previous one as it was
        rolled_back = self.at({**self.V2, "canaryTrafficPercent": 20}, *rolled)
        assert [
            (t.get("revisionName"), t["percent"])
            for t in kserve.desired_ksvc(rolled_back, rolled[0])["spec"]["traffic"]
        ] == [(None, 20), (self.R1, 80)]
        # the next canary (a changed spec) splits against the revision rolled back to, as
        # KServe's LatestRolledoutRevision then names it, at every step of its rollout
        canary = self.at({**self.V3, "canaryTrafficPercent": 20}, *rolled)
        for cfg_observed, created, ready, at in [
            (False, self.R2, self.R2, self.R2),
            (True, self.R3, self.R2, self.R2),
            (True, self.R3, self.R3, self.R3),
        ]:
            state = {"created": created, "ready": ready, "route_resolved_at": at}
            assert kserve.rolled_out_revision(
                canary, self.knative(rolled_back, canary, cfg_observed=cfg_observed, **state)
            ) == (self.R1, self.R1)
        # promoting it makes revision 3 the latest rolled out, the one rolled back to previous
        promote = self.at(self.V3, *rolled)
        ksvc = self.knative(
            rolled_back,
            promote,
            cfg_observed=True,
            created=self.R3,
            ready=self.R3,
            route_resolved_at=self.R3,
        )
        assert kserve.rolled_out_revision(promote, ksvc) == (self.R3, self.R1)


class TestInferenceServiceStatus:
    R1, R2 = "iris-predictor-00001", "iris-predictor-00002"

    def ksvc(
        self,
        ready: str,
        configs: str,
        routes: str = "True",
        created: str = "iris-predictor-00001",
        observed: int = 3,
        message: str = "",
    ) -> dict[str, Any]:
        def cond(t: str, s: str) -> dict[str, Any]:
            c: dict[str, Any] = {"type": t, "status": s}
            if s == "False" and message:
                c.update(reason="ExitCode", message=message)
            return c

        return {
            "metadata": {"name": "iris-predictor", "generation": 3},
            "status": {
                "observedGeneration": observed,
                "url": "http://iris-predictor.models.example.com",
                "latestReadyRevisionName": self.R1,
                "latestCreatedRevisionName": created,
                "traffic": [{"revisionName": self.R1, "percent": 100, "latestRevision": True}],
                "conditions": [
                    cond("ConfigurationsReady", configs),
                    cond("Ready", ready),
                    cond("RoutesReady", routes),
                ],
            },
        }

    def status(self, ksvc: dict[str, Any], **prev: Any) -> dict[str, Any]:
        obj = isvc(dict(SKLEARN), **prev)
        obj["metadata"]["generation"] = 2
        return kserve.status(
            obj, ksvc, rolled_out=(self.R1, None), domain="example.com", now_iso=NOW
        )

    @staticmethod
    def conds(st: dict[str, Any]) -> dict[str, str]:
        return {c["type"]: c["status"] for c in st["conditions"]}

    def test_status_reads_as_in_a_cluster(self) -> None:
        st = self.status(self.ksvc("True", "True"))
        assert st["url"] == "http://iris.models.example.com"
        assert st["address"]["url"] == "http://iris.models.svc.cluster.local"
        assert st["observedGeneration"] == 2
        assert self.conds(st) == {
            "IngressReady": "True",
            "LatestDeploymentReady": "True",
            "PredictorConfigurationReady": "True",
            "PredictorReady": "True",
            "PredictorRouteReady": "True",
            "Ready": "True",
            "RoutesReady": "True",
        }
        assert st["components"]["predictor"]["traffic"][0]["percent"] == 100
        assert st["modelStatus"] == {
            "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
            "transitionStatus": "UpToDate",
        }

    def test_healthy_rollout_is_unknown_not_false(self) -> None:
        st = self.status(self.ksvc("Unknown", "Unknown", created=self.R2))
        conds = self.conds(st)
        assert conds["Ready"] == conds["PredictorReady"] == "Unknown"
        assert conds["LatestDeploymentReady"] == conds["PredictorConfigurationReady"] == "Unknown"
        assert conds["IngressReady"] == conds["RoutesReady"] == "True"
        assert st["modelStatus"]["transitionStatus"] == "InProgress"
        assert st["modelStatus"]["states"]["activeModelState"] == "Loaded"

    def test_failed_rollout_blocks_while_the_old_revision_serves(self) -> None:
        ksvc = self.ksvc("False", "False", created=self.R2, message="CrashLoopBackOff: no model")
        st = self.status(ksvc)
        conds = self.conds(st)
        assert conds["Ready"] == conds["LatestDeploymentReady"] == "False"
        assert conds["IngressReady"] == "True"
        ready = next(c for c in st["conditions"] if c["type"] == "Ready")
        assert ready["message"] == "CrashLoopBackOff: no model"
        assert st["modelStatus"]["states"] == {
            "activeModelState": "Loaded",
            "targetModelState": "FailedToLoad",
        }
        assert st["modelStatus"]["transitionStatus"] == "BlockedByFailedLoad"
        assert st["modelStatus"]["lastFailureInfo"]["modelRevisionName"] == self.R2
        assert st["components"]["predictor"]["traffic"][0]["revisionName"] == self.R1

    def test_knative_service_that_has_not_observed_its_spec_says_nothing_yet(self) -> None:
        # the spec just written (generation 3) is not what the status (generation 2) reflects:
        # Ready is not True and observedGeneration stays, so kubectl wait keeps waiting
        st = self.status(self.ksvc("True", "True", observed=2), observedGeneration=1, conditions=[])
        assert self.conds(st)["Ready"] == "Unknown"
        assert self.conds(st)["PredictorReady"] == "Unknown"
        assert st["observedGeneration"] == 1
        ready = next(c for c in st["conditions"] if c["type"] == "Ready")
        assert ready["reason"] == "OutOfDate"


class TestInferenceServiceValidation:
    @pytest.mark.parametrize(
        ("predictor", "field", "words"),
        [
            pytest.param(
                {"xgboost": {"storageUri": "x"}},
                "spec.predictor.xgboost",
                "xgboost",
                id="unsupported-framework",
            ),
            pytest.param(
                {"model": {"modelFormat": {"name": "onnx"}, "storageUri": "x"}},
                "spec.predictor.model.modelFormat.name",
                "onnx",
                id="unsupported-format",
            ),
            pytest.param({}, "spec.predictor", "name a predictor", id="no-predictor-type"),
            pytest.param(
                {"sklearn": {}},
                "spec.predictor.sklearn.storageUri",
                "model location",
                id="no-storage",
            ),
            pytest.param(
                {"containers": [{"image": "x"}]},
                "spec.predictor.containers[0]",
                "module:Class",
                id="custom-without-class",
            ),
            pytest.param(
                {**SKLEARN, "canaryTrafficPercent": 150},
                "spec.predictor.canaryTrafficPercent",
                "between 0 and 100",
                id="canary-range",
            ),
            pytest.param(
                {**SKLEARN, "minReplicas": 3, "maxReplicas": 2},
                "spec.predictor.minReplicas",
                "greater than maxReplicas",
                id="min-over-max",
            ),
            pytest.param(
                {**SKLEARN, "minReplicas": -1},
                "spec.predictor.minReplicas",
                "at least 0",
                id="negative-min",
            ),
        ],
    )
    def test_refused_with_field_and_reason(
        self, predictor: dict[str, Any], field: str, words: str
    ) -> None:
        errors = kserve.validate(isvc(predictor))
        assert any(e.field == field and words in e.message for e in errors), errors

    @pytest.mark.parametrize(
        "predictor",
        [
            pytest.param(dict(SKLEARN), id="sklearn"),
            pytest.param(
                {"model": {"modelFormat": {"name": "sklearn"}, "storageUri": "/m"}},
                id="model-format",
            ),
            pytest.param(
                {"containers": [{"env": [{"name": "MODEL_CLASS", "value": "m:C"}]}]},
                id="custom-env",
            ),
            pytest.param({"containers": [{"args": ["--model_class", "m:C"]}]}, id="custom-arg"),
        ],
    )
    def test_accepted(self, predictor: dict[str, Any]) -> None:
        assert kserve.validate(isvc(predictor)) == []

    def test_missing_predictor(self) -> None:
        obj = isvc({})
        del obj["spec"]["predictor"]
        assert kserve.validate(obj)[0].field == "spec.predictor"


def ksvc_obj() -> dict[str, Any]:
    return kserve.desired_ksvc(isvc({**SKLEARN, "minReplicas": 0}), None) | {
        "metadata": {"name": "iris-predictor", "namespace": "models", "uid": "k1", "generation": 2}
    }


class TestServiceConfigurationRevision:
    def test_configuration_and_route_follow_the_service(self) -> None:
        ksvc = ksvc_obj()
        cfg = serving.desired_configuration(ksvc)
        rt = serving.desired_route(ksvc)
        assert cfg["metadata"]["name"] == rt["metadata"]["name"] == "iris-predictor"
        assert (
            cfg["spec"]["template"]["metadata"]["labels"][names.SERVICE_LABEL] == "iris-predictor"
        )
        assert rt["spec"]["traffic"] == [
            {"latestRevision": True, "percent": 100, "configurationName": "iris-predictor"}
        ]

    def test_revision_named_after_generation(self) -> None:
        cfg = serving.desired_configuration(ksvc_obj())
        cfg["metadata"].update(generation=3, uid="c1")
        rev = configuration.desired_revision(cfg)
        assert rev["metadata"]["name"] == "iris-predictor-00003"
        assert rev["metadata"]["labels"][names.CONFIGURATION_GENERATION_LABEL] == "3"
        assert rev["metadata"]["annotations"][names.MIN_SCALE] == "0"

    def test_configuration_status_keeps_latest_ready_while_new_one_deploys(self) -> None:
        cfg = {"metadata": {"name": "c", "generation": 2}}

        def rev(n: int, ready: str | None) -> dict[str, Any]:
            r: dict[str, Any] = {
                "metadata": {
                    "name": f"c-0000{n}",
                    "labels": {
                        names.CONFIGURATION_LABEL: "c",
                        names.CONFIGURATION_GENERATION_LABEL: str(n),
                    },
                }
            }
            if ready:
                r["status"] = {"conditions": [{"type": "Ready", "status": ready}]}
            return r

        st = configuration.status(cfg, [rev(2, None), rev(1, "True")], NOW)
        assert st["latestCreatedRevisionName"] == "c-00002"
        assert st["latestReadyRevisionName"] == "c-00001"
        assert names.get_condition({"status": st}, "Ready")["status"] == "Unknown"  # type: ignore[index]
        # once named it stays while the revision exists, even when it reads not ready for a
        # moment (Knative keeps it); a newer ready one takes over; a deleted one is dropped
        named = {**cfg, "status": {"latestReadyRevisionName": "c-00001"}}
        st = configuration.status(named, [rev(2, None), rev(1, None)], NOW)
        assert st["latestReadyRevisionName"] == "c-00001"
        st = configuration.status(named, [rev(2, "True"), rev(1, None)], NOW)
        assert st["latestReadyRevisionName"] == "c-00002"
        st = configuration.status(named, [rev(2, None)], NOW)
        assert "latestReadyRevisionName" not in st


class TestServiceStatus:
    def children(
        self, cfg_ready: str | None, cfg_observed: int = 2, route_rev: str = "c-00001"
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        cfg: dict[str, Any] = {
            "metadata": {"name": "c", "generation": 2},
            "status": {
                "observedGeneration": cfg_observed,
                "latestReadyRevisionName": "c-00001",
                "conditions": [names.condition("Ready", names.tri(cfg_ready), "Deploying")],
            },
        }
        rt: dict[str, Any] = {
            "metadata": {"name": "c", "generation": 1},
            "spec": {
                "traffic": [{"configurationName": "c", "latestRevision": True, "percent": 100}]
            },
            "status": {
                "observedGeneration": 1,
                "traffic": [{"revisionName": route_rev, "latestRevision": True, "percent": 100}],
                "conditions": [names.condition("Ready", True)],
            },
        }
        return cfg, rt

    @staticmethod
    def conds(st: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        return {c["type"]: (c["status"], c.get("reason")) for c in st["conditions"]}

    def test_ready_when_both_children_are(self) -> None:
        st = serving.status(
            {"metadata": {"name": "c", "generation": 2}}, *self.children("True"), NOW
        )
        assert names.is_ready({"status": st})

    def test_deploying_configuration_is_unknown(self) -> None:
        st = serving.status(
            {"metadata": {"name": "c", "generation": 2}}, *self.children("Unknown"), NOW
        )
        conds = self.conds(st)
        assert conds["ConfigurationsReady"] == ("Unknown", "Deploying")
        assert conds["RoutesReady"] == ("True", None)
        assert conds["Ready"] == ("Unknown", "Deploying")

    def test_failed_configuration_is_false(self) -> None:
        st = serving.status(
            {"metadata": {"name": "c", "generation": 2}}, *self.children("False"), NOW
        )
        assert self.conds(st)["Ready"][0] == "False"

    def test_configuration_behind_its_generation_is_out_of_date(self) -> None:
        st = serving.status(
            {"metadata": {"name": "c", "generation": 2}},
            *self.children("True", cfg_observed=1),
            NOW,
        )
        conds = self.conds(st)
        assert conds["ConfigurationsReady"] == ("Unknown", "OutOfDate")
        assert conds["Ready"] == ("Unknown", "OutOfDate")

    def test_route_not_yet_at_the_latest_ready_revision(self) -> None:
        cfg, rt = self.children("True", route_rev="c-00000")
        st = serving.status({"metadata": {"name": "c", "generation": 2}}, cfg, rt, NOW)
        assert self.conds(st)["RoutesReady"] == ("Unknown", "TrafficNotMigrated")
        assert self.conds(st)["Ready"][0] == "Unknown"


class TestRoute:
    def route(self, traffic: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "metadata": {"name": "iris-predictor", "namespace": "models"},
            "spec": {"traffic": traffic},
        }

    CFGS = {"iris-predictor": {"status": {"latestReadyRevisionName": "iris-predictor-00002"}}}
    REVS = revisions("iris-predictor-00001", "iris-predictor-00002")

    def test_latest_resolves_to_latest_ready_and_tags_get_hosts(self) -> None:
        rt = self.route(kserve.traffic(20, "iris-predictor-00001", tag_routing=True))
        res = route.resolve(rt, self.CFGS, self.REVS)
        assert res.problem == ""
        assert [(t.revision, t.percent, t.tag) for t in res.targets] == [
            ("iris-predictor-00002", 20, "latest"),
            ("iris-predictor-00001", 80, "prev"),
        ]
        hosts = route.hosts(rt, res, "example.com")
        assert set(hosts) == {
            "iris-predictor.models.example.com",
            "prev-iris-predictor.models.example.com",
            "latest-iris-predictor.models.example.com",
        }
        st = route.status(rt, res, domain="example.com", now_iso=NOW)
        assert st["url"] == "http://iris-predictor.models.example.com"
        assert st["traffic"][0]["url"] == "http://latest-iris-predictor.models.example.com"

    @staticmethod
    def conds(st: dict[str, Any]) -> dict[str, tuple[str, str | None, str | None]]:
        return {
            c["type"]: (c["status"], c.get("reason"), c.get("message")) for c in st["conditions"]
        }

    def test_conditions_when_all_traffic_is_assigned(self) -> None:
        rt = self.route(kserve.traffic(None, None))
        st = route.status(
            rt, route.resolve(rt, self.CFGS, self.REVS), domain="example.com", now_iso=NOW
        )
        assert self.conds(st) == {
            "AllTrafficAssigned": ("True", None, None),
            "CertificateProvisioned": (
                "True",
                "TLSNotEnabled",
                "external-domain-tls is not enabled",
            ),
            "IngressReady": ("True", None, None),
            "Ready": ("True", None, None),
        }

    LATEST = [{"configurationName": "iris-predictor", "latestRevision": True, "percent": 100}]
    WAITING = {"iris-predictor": {"status": {}}}
    FAILED = {"iris-predictor": {"status": {"conditions": [names.condition("Ready", False)]}}}

    @pytest.mark.parametrize(
        ("traffic", "cfgs", "expected"),
        [
            pytest.param(
                LATEST,
                WAITING,
                (
                    "Unknown",
                    "RevisionMissing",
                    'Configuration "iris-predictor" is waiting for a Revision to become ready.',
                ),
                id="configuration-waiting",
            ),
            pytest.param(
                LATEST,
                FAILED,
                (
                    "False",
                    "RevisionMissing",
                    'Configuration "iris-predictor" does not have any ready Revision.',
                ),
                id="configuration-failed",
            ),
            pytest.param(
                LATEST,
                {},
                (
                    "False",
                    "ConfigurationMissing",
                    'Configuration "iris-predictor" referenced in traffic not found.',
                ),
                id="configuration-missing",
            ),
            pytest.param(
                [{"revisionName": "iris-predictor-00001", "percent": 50}],
                CFGS,
                ("Unknown", "Unknown", "spec.traffic: percents add up to 50, not 100"),
                id="percent-sum",
            ),
        ],
    )
    def test_unassigned_traffic_on_a_new_route(
        self,
        traffic: list[dict[str, Any]],
        cfgs: dict[str, Any],
        expected: tuple[str, str, str],
    ) -> None:
        rt = self.route(traffic)
        st = route.status(rt, route.resolve(rt, cfgs, self.REVS), domain="example.com", now_iso=NOW)
        # Knative stops before the ingress and the certificate: both as initialized
        assert self.conds(st) == {
            "AllTrafficAssigned": expected,
            "CertificateProvisioned": ("Unknown", None, None),
            "IngressReady": ("Unknown", None, None),
            "Ready": expected,
        }

    def test_unassigned_traffic_keeps_the_ingress_serving_the_last_good_traffic(self) -> None:
        rt = self.route(self.LATEST)
        rt["status"] = route.status(
            rt, route.resolve(rt, self.CFGS, self.REVS), domain="example.com", now_iso=NOW
        )
        st = route.status(
            rt,
            route.resolve(rt, self.WAITING, self.REVS),
            domain="example.com",
            now_iso=NOW,
            serving=True,
        )
        conds = self.conds(st)
        assert (
            conds["AllTrafficAssigned"][:2] == conds["Ready"][:2] == ("Unknown", "RevisionMissing")
        )
        assert conds["IngressReady"] == ("True", None, None)
        assert conds["CertificateProvisioned"][:2] == ("True", "TLSNotEnabled")

    R1, R2, R3 = "iris-predictor-00001", "iris-predictor-00002", "iris-predictor-00003"

    @staticmethod
    def revision(name: str, ready: bool | None, observed: bool = True) -> dict[str, Any]:
        rev = revisions(name)[name]
        rev["status"]["conditions"] = [names.condition("Ready", ready, "Deploying")]
        if not observed:
            rev["metadata"]["generation"] = 2
        return {name: rev}

    @pytest.mark.parametrize(
        ("traffic", "cfgs", "revs", "expected"),
        [
            pytest.param(
                [{"revisionName": R3, "percent": 100}],
                CFGS,
                REVS,
                ("False", "RevisionMissing", f'Revision "{R3}" referenced in traffic not found.'),
                id="revision-missing",
            ),
            pytest.param(
                [{"revisionName": R3, "percent": 100}],
                CFGS,
                {**REVS, **revision(R3, None)},
                ("Unknown", "RevisionMissing", f'Revision "{R3}" is not yet ready.'),
                id="revision-not-yet-ready",
            ),
            pytest.param(
                [{"revisionName": R3, "percent": 100}],
                CFGS,
                {**REVS, **revision(R3, True, observed=False)},
                ("Unknown", "RevisionMissing", f'Revision "{R3}" is not yet ready.'),
                id="revision-ready-for-an-older-generation",
            ),
            pytest.param(
                [{"revisionName": R3, "percent": 100}],
                CFGS,
                {**REVS, **revision(R3, False)},
                ("False", "RevisionMissing", f'Revision "{R3}" failed to become ready.'),
                id="revision-failed",
            ),
            pytest.param(
                [{"revisionName": R1, "percent": 100}],
                {},
                REVS,
                (
                    "False",
                    "ConfigurationMissing",
                    'Configuration "iris-predictor" referenced in traffic not found.',
                ),
                id="revision-of-a-missing-configuration",
            ),
            pytest.param(
                LATEST,
                CFGS,
                revisions(R1),
                ("False", "RevisionMissing", f'Revision "{R2}" referenced in traffic not found.'),
                id="latest-ready-revision-gone",
            ),
            pytest.param(
                [{"revisionName": R3, "percent": 50}, {"revisionName": R1, "percent": 40}],
                CFGS,
                {**REVS, **revision(R3, None)},
                ("Unknown", "RevisionMissing", f'Revision "{R3}" is not yet ready.'),
                id="first-error-reported",
            ),
            pytest.param(
                [
                    {"revisionName": R3, "percent": 50},
                    {"configurationName": "iris-predictor", "latestRevision": True, "percent": 30},
                    {"revisionName": "iris-predictor-00009", "percent": 20},
                ],
                WAITING,
                {**REVS, **revision(R3, None)},
                (
                    "False",
                    "RevisionMissing",
                    'Revision "iris-predictor-00009" referenced in traffic not found.',
                ),
                id="a-later-failure-replaces-a-wait",
            ),
        ],
    )
    def test_named_revisions_must_exist_and_be_ready(
        self,
        traffic: list[dict[str, Any]],
        cfgs: dict[str, Any],
        revs: dict[str, Any],
        expected: tuple[str, str, str],
    ) -> None:
        # Knative's traffic builder: RevisionMissing / ConfigurationMissing, and the first target
        # error unless a later one is a failure; nothing is assigned, not even the good targets
        rt = self.route(traffic)
        res = route.resolve(rt, cfgs, revs)
        assert res.targets == ()
        st = route.status(rt, res, domain="example.com", now_iso=NOW)
        conds = self.conds(st)
        assert conds["AllTrafficAssigned"] == conds["Ready"] == expected
        assert st["traffic"] == []

    def test_unassigned_traffic_keeps_the_traffic_last_assigned(self) -> None:
        rt = self.route(kserve.traffic(20, self.R1, tag_routing=True))
        res = route.resolve(rt, self.CFGS, self.REVS)
        rt["status"] = route.status(rt, res, domain="example.com", now_iso=NOW)
        assigned = rt["status"]["traffic"]
        assert [(t["revisionName"], t["percent"]) for t in assigned] == [
            (self.R2, 20),
            (self.R1, 80),
        ]
        # the next spec pins a revision that does not exist: nothing of it is published
        rt["spec"]["traffic"] = [
            {"revisionName": self.R2, "percent": 50},
            {"revisionName": self.R3, "percent": 50},
        ]
        st = route.status(
            rt,
            route.resolve(rt, self.CFGS, self.REVS),
            domain="example.com",
            now_iso=NOW,
            serving=True,
        )
        assert st["traffic"] == assigned
        assert self.conds(st)["AllTrafficAssigned"][:2] == ("False", "RevisionMissing")
        assert route.last_assigned(rt).targets == res.targets
        # once every target resolves, the new traffic replaces it
        st = route.status(
            rt,
            route.resolve(rt, self.CFGS, {**self.REVS, **revisions(self.R3)}),
            domain="example.com",
            now_iso=NOW,
        )
        assert [(t["revisionName"], t["percent"]) for t in st["traffic"]] == [
            (self.R2, 50),
            (self.R3, 50),
        ]

    def test_no_partial_traffic_is_published(self) -> None:
        # the pinned revision resolves, the configuration waits for its first ready revision:
        # status.traffic keeps what was last assigned, never the one target that resolved
        rt = self.route(self.LATEST)
        rt["status"] = route.status(
            rt, route.resolve(rt, self.CFGS, self.REVS), domain="example.com", now_iso=NOW
        )
        assigned = rt["status"]["traffic"]
        rt["spec"]["traffic"] = [
            {"revisionName": self.R1, "percent": 50},
            {**self.LATEST[0], "percent": 50},
        ]
        res = route.resolve(rt, self.WAITING, self.REVS)
        assert res.targets == ()
        assert route.status(rt, res, domain="example.com", now_iso=NOW)["traffic"] == assigned

    def test_knative_service_reflects_a_missing_revision_in_routes_ready(self) -> None:
        ksvc = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": "iris-predictor", "namespace": "models", "generation": 1},
            "spec": {"traffic": [{"revisionName": self.R3, "percent": 100}]},
        }
        rt = serving.desired_route(ksvc)
        rt["metadata"]["generation"] = 1
        rt["status"] = route.status(
            rt, route.resolve(rt, self.CFGS, self.REVS), domain="example.com", now_iso=NOW
        )
        cfg = {
            "metadata": {"name": "iris-predictor", "generation": 1},
            "status": {
                "observedGeneration": 1,
                "latestReadyRevisionName": self.R2,
                "conditions": [names.condition("Ready", True)],
            },
        }
        conds = self.conds(serving.status(ksvc, cfg, rt, NOW))
        missing = (
            "False",
            "RevisionMissing",
            f'Revision "{self.R3}" referenced in traffic not found.',
        )
        assert conds["RoutesReady"] == conds["Ready"] == missing
        assert conds["ConfigurationsReady"] == ("True", None, None)


class TestPodAutoscaler:
    REV = {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Revision",
        "metadata": {
            "name": "iris-predictor-00001",
            "namespace": "models",
            "uid": "r1",
            "labels": {names.CONFIGURATION_LABEL: "iris-predictor", "team": "a"},
            "annotations": {
                names.TARGET: "4",
                "autoscaling.knative.dev/window": "10s",
                "other": "x",
            },
        },
        "spec": {"containerConcurrency": 2},
    }

    def test_carries_revision_autoscaling_annotations_only(self) -> None:
        pa = revision.desired_pa(self.REV, reachable=True)
        assert pa["metadata"]["annotations"] == {
            names.TARGET: "4",
            "autoscaling.knative.dev/window": "10s",
            names.CLASS_ANNOTATION: names.KPA_CLASS,
        }
        assert pa["spec"]["containerConcurrency"] == 2
        assert pa["spec"]["reachability"] == "Reachable"
        assert "team" not in pa["metadata"]["labels"]

    def test_revision_is_source_of_truth_from_1_21(self) -> None:
        existing = {
            "metadata": {"annotations": {names.TARGET: "9", "autoscaling.knative.dev/extra": "1"}}
        }
        pa = revision.desired_pa(self.REV, reachable=False, existing=existing)
        assert pa["metadata"]["annotations"][names.TARGET] == "4"
        assert "autoscaling.knative.dev/extra" not in pa["metadata"]["annotations"]
        assert pa["spec"]["reachability"] == "Unreachable"

    def test_legacy_keeps_annotations_patched_on_the_pa(self) -> None:
        existing = {"metadata": {"annotations": {names.TARGET: "9"}}}
        pa = revision.desired_pa(
            self.REV, reachable=True, existing=existing, legacy_pa_annotations=True
        )
        assert pa["metadata"]["annotations"] == {names.TARGET: "9"}

    def test_status_says_why_it_cannot_scale(self) -> None:
        state = revision.ScaleState(
            desired=5,
            actual=2,
            ever_ready=True,
            active=True,
            limited="machine-wide replica cap 2 reached",
        )
        st = revision.revision_status(self.REV, state, NOW)
        assert (st["desiredReplicas"], st["actualReplicas"]) == (5, 2)
        res = names.get_condition({"status": st}, "ResourcesAvailable")
        assert res is not None and "cap" in res["message"]
        assert names.is_ready({"status": st})
