"""``kubectl apply --dry-run=server`` of every kustomize build against the embedded API server,
which serves the built-in kinds the manifests use and the KServe, Knative and ModelScaler CRDs.

As on a real cluster, the namespace must exist before a dry run can place objects in it, and
the ModelScaler CRD must be established before a ModelScaler can be checked: both are created
first, the way a second ``kubectl apply`` finds them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.apiserver.testing import RunningAPIServer, running_apiserver
from tests.cluster.cluster_kit import BUILDS, MODELSCALER_CRD, kustomize, kustomize_text

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
