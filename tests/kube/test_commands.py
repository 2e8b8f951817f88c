"""``modelscale explain``, ``modelscale status``, ``modelscale controller`` and the controller's
``/metrics``, ``/healthz`` and ``/readyz``."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from autoscaler.kube import explain, status
from autoscaler.kube.telemetry import start_http
from tests.kube.kit import ISVC, MSC, REPO, REV, TARGET, TICK_S, Cluster, sees


def parse(module: Any, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


async def tuned(cluster: Cluster, ctl: Any, clock: Any) -> str:
    rev = cluster.deploy("m1")
    cluster.scaler("m1")
    await sees(ctl, MSC, "m1")
    await sees(ctl, REV, rev)
    await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))
    for _ in range(2):
        clock.advance(TICK_S)
        await ctl.tick()
    return rev


async def test_explain_says_why(
    cluster: Cluster, make_controller: Any, clock: Any, capsys: Any
) -> None:
    rev = await tuned(cluster, make_controller(), clock)
    kubeconfig = str(cluster.server.kubeconfig_path)
    assert explain.run(parse(explain, ["m1", "--kubeconfig", kubeconfig])) == 0
    out = capsys.readouterr().out
    assert "model default/m1 (ModelScaler m1, mode Auto)" in out
    assert "in force    target 25, keep-alive 600s, ready replicas 2" in out
    assert f"recommended on revision {rev}" in out
    assert "misses the 200 ms objective" in out, "the target's reason"
    assert "keep-alive 600 s (fallback)" in out, "the keep-alive's reason"
    assert f"last applied to {rev}" in out and "autoscaling.knative.dev/target=25" in out
    assert "Applied=True InForce" in out


async def canary(cluster: Cluster, ctl: Any, clock: Any) -> tuple[str, str]:
    """m1 tuned on revision 1, then revision 2 rolled out as a canary at 20 % (1 replica)."""
    rev1 = await tuned(cluster, ctl, clock)
    rev2 = cluster.roll_out("m1", 2)
    cluster.patch_status(REV, rev2, {"actualReplicas": 1, "desiredReplicas": 1})
    split = [
        {"revisionName": rev1, "percent": 80, "tag": "prev"},
        {"revisionName": rev2, "percent": 20, "latestRevision": True},
    ]
    cluster.patch_status(ISVC, "m1", {"components": {"predictor": {"traffic": split}}})

    def two(o: dict[str, Any]) -> bool:
        return len(o["status"]["components"]["predictor"]["traffic"]) == 2

    await sees(ctl, REV, rev2, lambda o: o["status"].get("actualReplicas") == 1)
    await sees(ctl, ISVC, "m1", two)
    for _ in range(2):
        clock.advance(TICK_S)
        await ctl.tick()
    return rev1, rev2


async def test_a_canary_status_describes_each_serving_revision(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    rev1, rev2 = await canary(cluster, make_controller(), clock)
    status = cluster.get(MSC, "m1")["status"]
    entries = {e["name"]: e for e in status["revisions"]}
    assert [(e["name"], e["percent"], e["readyReplicas"]) for e in status["revisions"]] == [
        (rev1, 80, 2),
        (rev2, 20, 1),
    ]
    for name, entry in entries.items():
        assert entry["recommendation"]["revision"] == name
        assert entry["recommendation"]["reasons"], f"why {name}'s values are what they are"
        assert entry["target"] == 25 and entry["keepAlive"] == "600s"
        assert entry["applied"]["annotations"][TARGET] == "25"
        assert entry["applied"]["time"].endswith("Z")
    applied = next(c for c in status["conditions"] if c["type"] == "Applied")
    assert applied["status"] == "True"
    assert f"revision {rev1} (80% of traffic): " in applied["message"]
    assert f"revision {rev2} (20% of traffic): " in applied["message"]
    ready = next(c for c in status["conditions"] if c["type"] == "RecommendationReady")
    assert f"revision {rev1} (80% of traffic): target 25" in ready["message"]
    assert f"revision {rev2} (20% of traffic): target 25" in ready["message"]
    assert status["applied"]["revision"] in entries, "the last write names a revision it lists"


async def test_explain_a_canary_revision_by_revision(
    cluster: Cluster, make_controller: Any, clock: Any, capsys: Any
) -> None:
    rev1, rev2 = await canary(cluster, make_controller(), clock)
    kubeconfig = str(cluster.server.kubeconfig_path)
    assert explain.run(parse(explain, ["m1", "--kubeconfig", kubeconfig])) == 0
    out = capsys.readouterr().out
    assert f"2 revisions serve ({rev1} 80%, {rev2} 20%), each tuned on its own" in out
    block1, block2 = out.split(f"  revision {rev1}: ")[1].split(f"  revision {rev2} (latest): ")
    assert block1.startswith("80% of the traffic")
    assert block2.startswith("20% of the traffic")
    assert "in force    target 25, keep-alive 600s, ready replicas 2" in block1
    assert "in force    target 25, keep-alive 600s, ready replicas 1" in block2
    for block in (block1, block2):
        assert "    recommended (" in block and "      target      25" in block
        assert "    why:\n      - " in block, "each revision's reasons"
        assert "    last applied at " in block and f"{TARGET}=25" in block
    last = cluster.get(MSC, "m1")["status"]["applied"]["revision"]
    assert f"  last write: {last} at " in block2


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("nothing", "no InferenceService or ModelScaler for model 'm1'"),
        ("isvc-only", "InferenceService default/m1 has no ModelScaler"),
        ("no-status", "has no status yet"),
    ],
    ids=["nothing", "isvc-only", "no-status"],
)
def test_explain_when_there_is_nothing_to_explain(
    cluster: Cluster, capsys: Any, setup: str, message: str
) -> None:
    if setup != "nothing":
        cluster.deploy("m1")
    if setup == "no-status":
        cluster.scaler("m1")
    kubeconfig = str(cluster.server.kubeconfig_path)
    assert explain.run(parse(explain, ["m1", "--kubeconfig", kubeconfig])) == 1
    assert message in capsys.readouterr().err


async def test_status_table(
    cluster: Cluster, make_controller: Any, clock: Any, capsys: Any
) -> None:
    rev = await tuned(cluster, make_controller(), clock)
    cluster.deploy("m2")  # a model nobody tunes
    kubeconfig = str(cluster.server.kubeconfig_path)
    assert status.run(parse(status, ["--kubeconfig", kubeconfig])) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE", "MODEL", "REVISION", "TRAFFIC", "REPLICAS", "TARGET", "KEEP-ALIVE", "MODE",
        "OBJECTIVE", "LAST", "CHANGE",
    ]  # fmt: skip
    m1 = next(line.split() for line in lines if " m1 " in line)
    # the last tick missed at 35 per replica (612 ms against 200) and backed off to 25
    assert m1[:9] == ["default", "m1", rev, "100%", "2/2", "25", "600s", "Auto", "Missed"]
    assert m1[9].endswith("Z"), "the time of the last applied change"
    m2 = next(line.split() for line in lines if " m2 " in line)
    assert m2[1:9] == ["m2", "m2-predictor-00001", "100%", "2/2", "-", "-", "untuned", "-"]


async def test_metrics_health_and_readiness(
    cluster: Cluster, make_controller: Any, clock: Any
) -> None:
    ctl = make_controller()
    runner, port = await start_http(ctl.metrics, ctl.ready, "127.0.0.1", 0)
    try:
        await tuned(cluster, ctl, clock)
        async with aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{port}"
            async with session.get(base + "/healthz") as r:
                assert r.status == 200
            async with session.get(base + "/readyz") as r:
                assert r.status == 200
            async with session.get(base + "/metrics") as r:
                text = await r.text()
        assert (
            'modelscale_tuner_decisions_total{model="m1",namespace="default",outcome="applied"} 2.0'
            in text
        )
        assert 'modelscale_tuner_applied_target{model="m1",namespace="default"} 25.0' in text
        assert "modelscale_tuner_tick_duration_seconds_count 2.0" in text
        assert "modelscale_tuner_leader 1.0" in text
    finally:
        await runner.cleanup()


@pytest.mark.slow
def test_controller_command_runs_leads_and_logs_json(cluster: Cluster, tmp_path: Path) -> None:
    """The real command as a process: it takes the Lease, tunes, logs JSON lines, stops on
    SIGTERM and releases the Lease."""
    rev = cluster.deploy("m1")
    cluster.scaler("m1", updateMode="Recommend")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoscaler.cli", "controller",
         "--kubeconfig", str(cluster.server.kubeconfig_path), "--namespace", "default",
         "--metrics-bind", "127.0.0.1:0", "--identity", "proc-1"],
        stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            assert time.monotonic() < deadline, "the controller wrote no status"
            got = cluster.get(MSC, "m1").get("status") or {}
            if got.get("mode") == "Recommend":
                break
            time.sleep(0.1)
        lease = cluster.server.kubectl("get", "lease", "modelscale-tuner", "-o", "json")
        assert json.loads(lease.stdout)["spec"]["holderIdentity"] == "proc-1"
        assert got["recommendation"]["revision"] == rev
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    logs = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert logs and all({"ts", "level", "msg"} <= set(doc) for doc in logs)
    started = next(doc for doc in logs if doc["msg"] == "controller started")
    assert started["identity"] == "proc-1" and started["metrics"].startswith("127.0.0.1:")
    lease = cluster.server.kubectl("get", "lease", "modelscale-tuner", "-o", "json")
    assert not json.loads(lease.stdout)["spec"].get("holderIdentity"), "released on SIGTERM"


def test_controller_command_refuses_a_bad_sample_period(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "autoscaler.cli", "controller", "--namespace", "default",
         "--concurrency-sample-period", "-1"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "concurrency_sample_period_s: '-1' is out of range" in proc.stderr
