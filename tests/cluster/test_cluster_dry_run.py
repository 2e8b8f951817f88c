"""``kubectl apply --dry-run=server`` of every kustomize build against the embedded API server,
which serves the built-in kinds the manifests use and the KServe, Knative and ModelScaler CRDs.

As on a real cluster, the namespace must exist before a dry run can place objects in it, and
the ModelScaler CRD must be established before a ModelScaler can be checked: both are created
first, the way a second ``kubectl apply`` finds them.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from tests.cluster.cluster_kit import (
    BUILDS,
    MODELSCALER_CRD,
    find,
    kustomize,
    kustomize_text,
    readme_block,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAPIServer]:
    tmp = tmp_path_factory.mktemp("dry-run")
    with running_apiserver(Path(tmp), extra_crds=[MODELSCALER_CRD]) as handle:
        created = handle.kubectl("create", "namespace", "modelscale-system")
        assert created.returncode == 0, created.stderr
        yield handle


@pytest.mark.parametrize("build", BUILDS)
def test_server_side_dry_run_of_each_build_succeeds(server: RunningAPIServer, build: str) -> None:
    result = server.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-",
        input=kustomize_text(build), timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, f"manifests/{build}: {result.stderr}"
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == len(kustomize(build)), result.stdout
    assert all(line.endswith("(server dry run)") for line in lines), result.stdout
    # Nothing was stored: the dry run left the namespace without the controller.
    listed = server.kubectl("get", "deployments", "-n", "modelscale-system", "-o", "name")
    assert listed.returncode == 0 and listed.stdout.strip() == ""


def test_dry_run_refuses_a_broken_manifest(server: RunningAPIServer) -> None:
    text = kustomize_text("samples").replace("minReplicas: 0", "minReplicas: zero", 1)
    result = server.kubectl("apply", "--dry-run=server", "-f", "-", input=text, timeout=180)
    assert result.returncode != 0
    assert "minReplicas" in result.stderr


def _modelscaler(name: str, namespace: str = "default", **spec: object) -> dict[str, object]:
    return {
        "apiVersion": "modelscale.dev/v1alpha1",
        "kind": "ModelScaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"targetRef": {"name": name}, "objective": {"latencyMs": 200}, **spec},
    }


def test_the_readmes_move_from_the_legacy_overlay_repoints_defaulted_modelscalers(
    tmp_path: Path,
) -> None:
    """README.md, "Upgrade": ModelScalers with apply: podautoscaler (defaulted under the legacy
    overlay, or named), in every namespace, are patched to the Revision; one that named another
    method keeps it."""
    block = readme_block("podautoscaler", "sh")
    first, loop = block.split("\n", 1)
    assert first == "kubectl apply --server-side -k manifests/base"
    legacy_crd = find(kustomize("overlays/knative-legacy-pa"), "CustomResourceDefinition")
    base_crd = find(kustomize("base"), "CustomResourceDefinition")
    scalers = [
        _modelscaler("old"),
        _modelscaler("isvc", apply="inferenceservice"),
        _modelscaler("old", "team"),
        _modelscaler("named", "team", apply="podautoscaler"),
    ]
    with running_apiserver(tmp_path) as api:
        created = api.kubectl("create", "namespace", "team")
        assert created.returncode == 0, created.stderr

        def apply(docs: list[dict[str, object]]) -> None:
            applied = api.kubectl(
                "apply", "--server-side", "-f", "-", input=yaml.safe_dump_all(docs)
            )
            assert applied.returncode == 0, applied.stderr

        apply([legacy_crd])
        waited = api.kubectl(
            "wait", "crd/modelscalers.modelscale.dev", "--for=condition=Established",
            "--timeout=30s",
        )  # fmt: skip
        assert waited.returncode == 0, waited.stderr
        apply(scalers)
        # The base's CRD in place of the overlay's (what the README's first line does to it).
        apply([base_crd])
        _, env = api.kubectl_cmd()
        ran = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", loop], env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.count("patched") == 3, ran.stdout
        got = api.kubectl(
            "get", "modelscalers", "-A", "-o",
            "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}={.spec.apply} {end}",
        )  # fmt: skip
        assert got.returncode == 0, got.stderr
        assert sorted(got.stdout.split()) == [
            "default/isvc=inferenceservice", "default/old=revision", "team/named=revision",
            "team/old=revision",
        ]  # fmt: skip
