"""Every manifest and every kustomize build validates against the schema of its kind, and the
base, overlays and samples carry what the cluster path promises (tests/cluster/cluster_kit.py
says which schema governs which kind)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from autoscaler.apiserver.testing import KUBECTL
from autoscaler.cli import build_parser
from autoscaler.runtime.reconcile import admission
from autoscaler.tuner import TunerConfig, parse_tuner_config
from tests.cluster.cluster_kit import (
    BUILDS,
    MANIFESTS,
    REPO,
    documents,
    find,
    kustomize,
    manifest_files,
    readme_block,
    schema_source,
    validate,
)

FILE_DOCS = [
    pytest.param(path, i, doc, id=f"{path.relative_to(MANIFESTS)}#{i}-{doc.get('kind')}")
    for path in manifest_files()
    for i, doc in enumerate(documents(path))
]


@pytest.mark.parametrize(("path", "index", "doc"), FILE_DOCS)
def test_every_manifest_file_validates(path: Path, index: int, doc: dict[str, Any]) -> None:
    assert validate(doc) == [], f"{path.relative_to(REPO)} document {index}"


@pytest.mark.parametrize("build", BUILDS)
def test_every_build_validates(build: str) -> None:
    docs = kustomize(build)
    assert docs, f"manifests/{build} builds to nothing"
    errors = {
        f"{d['kind']}/{d['metadata']['name']} ({schema_source(d)})": validate(d) for d in docs
    }
    assert {k: v for k, v in errors.items() if v} == {}


def test_validation_catches_a_wrong_field_in_each_kind_of_schema() -> None:
    base = kustomize("base")
    deployment = find(base, "Deployment")
    bad_deployment = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    samples = kustomize("samples")
    isvc = find(samples, "InferenceService")
    bad_isvc = {**isvc, "spec": {"predictor": {**isvc["spec"]["predictor"], "minReplicas": "0"}}}
    scaler = find(samples, "ModelScaler")
    bad_scaler = {**scaler, "spec": {**scaler["spec"], "updateMode": "Always"}}
    for doc, source in (
        (bad_deployment, "kubernetes"),
        (bad_isvc, "upstream-crd"),
        (bad_scaler, "own-crd"),
    ):
        assert schema_source(doc) == source
        assert validate(doc), f"{doc['kind']} with a wrong field passed"


# --- the base ------------------------------------------------------------------------------


def test_base_crd_has_schema_printer_columns_and_status() -> None:
    crd = find(kustomize("base"), "CustomResourceDefinition", "modelscalers.modelscale.dev")
    on_disk = next(documents(MANIFESTS / "crds" / "modelscale.dev_modelscalers.yaml"))
    assert crd["spec"] == on_disk["spec"], "the base ships the CRD file as it is"
    (version,) = crd["spec"]["versions"]
    assert version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    assert "status" in version["subresources"]
    assert version["additionalPrinterColumns"]


def test_base_controller_runs_restricted_with_two_replicas_and_probes() -> None:
    base = kustomize("base")
    dep = find(base, "Deployment", "modelscale-controller")
    assert dep["metadata"]["namespace"] == "modelscale-system"
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "modelscale-controller"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert set(c["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(c["resources"]["requests"]) & set(c["resources"]["limits"])
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    (port,) = c["ports"]
    assert port["containerPort"] == 9095
    svc = find(base, "Service", "modelscale-controller-metrics")
    assert svc["spec"]["ports"][0]["targetPort"] == port["name"]
    assert svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    assert find(base, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def _argv(container: dict[str, Any]) -> list[str]:
    """The container's command line as the kubelet expands $(VAR) from its env."""
    env = {e["name"]: f"<{e['name'].lower()}>" for e in container.get("env", [])}
    words = [*container["command"], *container.get("args", [])]
    return [re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], w) for w in words]


@pytest.mark.parametrize("build", [b for b in BUILDS if b != "samples"])
def test_controller_arguments_parse_with_the_cli(build: str) -> None:
    (c,) = find(kustomize(build), "Deployment")["spec"]["template"]["spec"]["containers"]
    argv = _argv(c)
    assert argv[0] == "modelscale"
    args = build_parser().parse_args(argv[1:])
    assert args.command == "controller"
    assert args.namespace == "<pod_namespace>" and args.identity == "<pod_name>"
    assert args.metrics_bind == "0.0.0.0:9095"
    assert args.config_map == find(kustomize(build), "ConfigMap")["metadata"]["name"]


def test_base_configmap_is_the_tuner_defaults_in_the_controller_namespace() -> None:
    cm = find(kustomize("base"), "ConfigMap", "modelscale-tuner")
    assert cm["metadata"]["namespace"] == "modelscale-system"
    assert parse_tuner_config(cm["data"]) == TunerConfig()


def test_bindings_give_the_roles_to_the_controller_service_account() -> None:
    base = kustomize("base")
    sa = find(base, "ServiceAccount")
    subject = {"kind": "ServiceAccount", "name": sa["metadata"]["name"],
               "namespace": sa["metadata"]["namespace"]}  # fmt: skip
    crb = find(base, "ClusterRoleBinding")
    rb = find(base, "RoleBinding")
    assert crb["subjects"] == [subject] and rb["subjects"] == [subject]
    assert crb["roleRef"]["name"] == find(base, "ClusterRole")["metadata"]["name"]
    assert rb["roleRef"]["name"] == find(base, "Role")["metadata"]["name"]
    assert rb["metadata"]["namespace"] == "modelscale-system"


@pytest.mark.parametrize("build", [b for b in BUILDS if b != "samples"])
def test_no_wildcards_in_any_role(build: str) -> None:
    for kind in ("ClusterRole", "Role"):
        for rule in find(kustomize(build), kind)["rules"]:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{build} {kind}: {rule}"


# --- overlays ------------------------------------------------------------------------------


def _rules(build: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for rule in find(kustomize(build), "ClusterRole")["rules"]:
        for resource in rule["resources"]:
            out.setdefault(resource, set()).update(rule["verbs"])
    return out


def _crd_default(build: str, field: str) -> Any:
    crd = find(kustomize(build), "CustomResourceDefinition")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"][field]["default"]


def test_prometheus_overlay_reads_prometheus_and_lists_no_pods() -> None:
    (c,) = find(kustomize("overlays/prometheus"), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ]
    args = build_parser().parse_args(_argv(c)[1:])
    assert args.metrics_source == "prometheus"
    assert args.prometheus_url.startswith("http://")
    assert "pods" in _rules("base") and "pods" not in _rules("overlays/prometheus")


def test_legacy_overlay_makes_podautoscaler_the_default_apply_method() -> None:
    assert _crd_default("base", "apply") == "revision"
    assert _crd_default("overlays/knative-legacy-pa", "apply") == "podautoscaler"
    assert {"get", "patch"} <= _rules("overlays/knative-legacy-pa")["podautoscalers"]


def test_recommend_only_overlay_defaults_to_recommend_and_cannot_write_serving() -> None:
    assert _crd_default("base", "updateMode") == "Auto"
    assert _crd_default("overlays/recommend-only", "updateMode") == "Recommend"
    rules = _rules("overlays/recommend-only")
    for resource in ("inferenceservices", "revisions"):
        assert rules[resource] == {"list", "watch"}
    # A Recommend ModelScaler with apply: podautoscaler reads the values in force there
    # (autoscaler/kube/reconciler.py) and never writes it.
    assert rules["podautoscalers"] == {"get"}
    assert rules["modelscalers/status"] == {"patch"} and rules["events"] == {"create"}


# --- samples -------------------------------------------------------------------------------


def test_samples_scale_sklearn_to_zero_tuned_by_a_modelscaler_and_include_eventing() -> None:
    docs = kustomize("samples")
    isvc = find(docs, "InferenceService")
    assert isvc["spec"]["predictor"]["minReplicas"] == 0
    assert isvc["spec"]["predictor"]["model"]["modelFormat"]["name"] == "sklearn"
    scaler = find(docs, "ModelScaler")
    assert scaler["spec"]["targetRef"]["name"] == isvc["metadata"]["name"]
    eventing = [
        d
        for path in sorted((MANIFESTS / "samples" / "eventing").glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for d in documents(path)
    ]
    assert eventing, "manifests/samples/eventing has no manifests"
    built = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {(d["kind"], d["metadata"]["name"]) for d in eventing} <= built
    assert {"Broker", "Trigger"} <= {k for k, _ in built}


def test_samples_land_in_the_namespace_predict_on_event_reads_models_from() -> None:
    docs = kustomize("samples")
    assert {d["metadata"].get("namespace") for d in docs} == {"default"}
    (ksvc,) = [d for d in docs if d["metadata"]["name"] == "predict-on-event"]
    env = {
        e["name"]: e.get("value") for e in ksvc["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["MODEL_NAMESPACE"] == "default"


def test_the_sample_model_names_knatives_deployment_mode_which_one_machine_admits() -> None:
    isvc = find(kustomize("samples"), "InferenceService")
    # KServe serves an InferenceService without the annotation in its configured default
    # mode, Standard (a Deployment, no scale to zero) where none is configured.
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Knative"
    assert admission.inference_service(isvc) == []


def test_the_readmes_overlay_for_old_knative_metric_names_builds(tmp_path: Path) -> None:
    block = readme_block("my-overlay/kustomization.yaml", "yaml")
    legacy = MANIFESTS / "overlays" / "knative-legacy-pa"
    mine = tmp_path / "my-overlay"
    mine.mkdir()
    text = block.replace(
        "../modelscale/manifests/overlays/knative-legacy-pa", os.path.relpath(legacy, mine)
    )
    (mine / "kustomization.yaml").write_text(text)
    result = subprocess.run(
        [KUBECTL, "kustomize", str(mine)], capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    docs = [d for d in yaml.safe_load_all(result.stdout) if isinstance(d, dict)]
    (c,) = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    args = build_parser().parse_args(_argv(c)[1:])
    assert args.metric_names == "knative-opencensus"
    assert _argv(c).count("--metric-names=knative-opencensus") == 1
    assert not any("opentelemetry" in a for a in _argv(c))
    crd = find(docs, "CustomResourceDefinition")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec["properties"]["apply"]["default"] == "podautoscaler"


def test_the_legacy_overlay_names_knatives_metric_generations() -> None:
    text = (MANIFESTS / "overlays" / "knative-legacy-pa" / "kustomization.yaml").read_text()
    comment = " ".join(line for line in text.splitlines() if line.startswith("#"))
    assert "knative-opencensus" in comment and "knative-opentelemetry" in comment
    assert "1.18" in comment and "1.19" in comment


def test_kustomizations_list_files_that_exist() -> None:
    for kustomization in MANIFESTS.rglob("kustomization.yaml"):
        doc = yaml.safe_load(kustomization.read_text())
        for resource in doc.get("resources", []):
            assert (kustomization.parent / resource).exists(), f"{kustomization}: {resource}"
