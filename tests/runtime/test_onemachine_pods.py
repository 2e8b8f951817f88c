"""One-machine mode shows a revision's replicas as kubectl shows them in a cluster: the Pods of
the revision's Deployment come with a request that wakes it from zero and go when it scales back
to zero (the revision's Deployment stays, at 0/0); kubectl logs reads a replica's log; kubectl
delete pod replaces the replica; a replica that crashes restarts in its Pod (RESTARTS 1, and
kubectl logs --previous reads the run that crashed), and one that crashes again backs off in
CrashLoopBackOff first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from autoscaler.examples.build import build_iris
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine

pytestmark = pytest.mark.slow

REV = "lily-predictor-00001"
HOST = "lily.default.example.com"
SELECTOR = f"serving.knative.dev/revision={REV}"


@pytest.fixture(scope="module")
def om(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningOneMachine]:
    tmp = tmp_path_factory.mktemp("onemachine-pods")
    config = {"scale-to-zero-grace-period": "6s", "allow-zero-initial-scale": "true"}
    with running_onemachine(tmp, autoscaler_config=config, tuner=False, eventing=False) as running:
        yield running


def predict(om: RunningOneMachine) -> int:
    req = urllib.request.Request(
        om.ingress_url + "/v1/models/lily:predict",
        data=json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode(),
        headers={"Host": HOST, "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return int(resp.status)


def rows(om: RunningOneMachine, *args: str) -> list[list[str]]:
    out = om.kubectl("get", *args)
    assert out.returncode == 0, out.stderr
    return [line.split() for line in out.stdout.splitlines()[1:]]


def pods(om: RunningOneMachine) -> list[list[str]]:
    """NAME READY STATUS of the revision's Pods."""
    return [row[:3] for row in rows(om, "pods", "-l", SELECTOR)]


def test_replicas_show_as_pods_and_deployment_through_kubectl(
    om: RunningOneMachine, tmp_path_factory: pytest.TempPathFactory
) -> None:
    path, _ = build_iris(tmp_path_factory.mktemp("models"))
    isvc: dict[str, Any] = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": "lily",
            "annotations": {"autoscaling.knative.dev/window": "6s"},
        },
        "spec": {
            "predictor": {"minReplicas": 0, "sklearn": {"storageUri": f"file://{path.parent}"}}
        },
    }
    applied = om.kubectl("apply", "-f", "-", input=json.dumps(isvc))
    assert applied.returncode == 0, applied.stderr
    # the first replica (initial scale 1) shows, then goes once the window and grace pass
    om.wait(lambda: [p[1:] for p in pods(om)] == [["2/2", "Running"]], 30, "the first Pod")
    om.wait(lambda: pods(om) == [], 60, "no Pods once scaled to zero")
    assert rows(om, "deploy")[0][:4] == [f"{REV}-deployment", "0/0", "0", "0"]

    assert predict(om) == 200  # wakes it from zero
    om.wait(lambda: [p[1:] for p in pods(om)] == [["2/2", "Running"]], 20, "a Running Pod")
    first = pods(om)[0][0]
    assert first.startswith(f"{REV}-deployment-")
    assert rows(om, "pods", "-l", "serving.knative.dev/revision=other") == []
    om.wait(lambda: rows(om, "deploy")[0][1:4] == ["1/1", "1", "1"], 20, "the Deployment ready")

    logs = om.kubectl("logs", first, "-c", "kserve-container")
    assert (
        logs.returncode == 0
        and "Registering model: lily" in logs.stdout
        and "lily:predict" in logs.stdout
    ), logs.stderr
    bad = om.kubectl("logs", first, "-c", "nope")
    assert bad.returncode != 0 and f"container nope is not valid for pod {first}" in bad.stderr
    missing = om.kubectl("logs", f"{REV}-deployment-nope-nope1")
    assert missing.returncode != 0 and "not found" in missing.stderr
    previous = om.kubectl("logs", first, "-c", "kserve-container", "--previous")
    assert previous.returncode != 0
    assert f'previous terminated container "kserve-container" in pod "{first}" not found' in (
        previous.stderr
    )

    deleted = om.kubectl("delete", "pod", first)  # waits until the replica's process is gone
    assert deleted.returncode == 0, deleted.stderr
    om.wait(
        lambda: [p[1:] for p in pods(om)] == [["2/2", "Running"]] and pods(om)[0][0] != first,
        30,
        "a replacement Pod",
    )
    assert predict(om) == 200

    # its process crashes: restarted in the same Pod, one restart, the crashed run's log kept
    pod = pods(om)[0][0]
    (replica,) = om.machine.dataplane.pool(RevisionKey("default", REV)).replicas
    assert replica.name == pod and replica.process is not None
    replica.process.send_signal(signal.SIGKILL)
    om.wait(
        lambda: (
            [row[:4] for row in rows(om, "pods", "-l", SELECTOR)] == [[pod, "2/2", "Running", "1"]]
        ),
        30,
        "the Pod restarted",
    )
    user = json.loads(om.kubectl("get", "pod", pod, "-o", "json").stdout)["status"][
        "containerStatuses"
    ][0]
    assert user["lastState"]["terminated"]["exitCode"] == 137
    previous = om.kubectl("logs", pod, "-c", "kserve-container", "--previous")
    assert previous.returncode == 0 and "lily:predict" in previous.stdout, previous.stderr
    current = om.kubectl("logs", pod, "-c", "kserve-container")
    assert "Registering model: lily" in current.stdout and "lily:predict" not in current.stdout

    # it crashes again at once: the second crash in a row, so the Pod backs off (1 s here) in
    # CrashLoopBackOff, as a kubectl watch shows, before it runs again with RESTARTS 2
    watch = subprocess.Popen(
        ["kubectl", "get", "pod", pod, "-w", "--no-headers"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "KUBECONFIG": str(om.machine.kubeconfig_path), "HOME": str(om.home)},
    )
    try:
        assert watch.stdout is not None
        assert watch.stdout.readline().split()[:4] == [pod, "2/2", "Running", "1"]
        (replica,) = om.machine.dataplane.pool(RevisionKey("default", REV)).replicas
        assert replica.process is not None
        replica.process.send_signal(signal.SIGKILL)
        om.wait(
            lambda: (
                [row[:4] for row in rows(om, "pods", "-l", SELECTOR)]
                == [[pod, "2/2", "Running", "2"]]
            ),
            30,
            "the Pod running again",
        )
    finally:
        watch.terminate()
        seen, _ = watch.communicate(timeout=10)
    assert [pod, "0/2", "CrashLoopBackOff", "1"] in [line.split()[:4] for line in seen.splitlines()]
    user = json.loads(om.kubectl("get", "pod", pod, "-o", "json").stdout)["status"][
        "containerStatuses"
    ][0]
    assert user["lastState"]["terminated"]["exitCode"] == 137
