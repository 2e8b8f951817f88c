"""Two tuner controllers against one one-machine instance: one leads and applies; the leader is
killed (it stops without releasing the Lease); the other takes over once the Lease expires,
resumes from the checkpoint in the ModelScaler's status and applies nothing twice.

"Nothing twice" is read off the Kubernetes Events the controllers emit, one per applied
annotation change ("Revision r: <annotation> <old> -> <new>"): per annotation they must form one
chain (each change starts where the previous one ended) with no change repeated.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoscaler.clock import SystemClock
from autoscaler.kube.controller import Controller
from autoscaler.kube.endpoints import PodEndpoints
from autoscaler.kube.leader import ElectionConfig, LeaderElector
from autoscaler.kube.settings import ControllerSettings
from autoscaler.metrics import DirectScrapeSource
from autoscaler.runtime.testing import RunningOneMachine, running_onemachine
from tests.e2e.e2e_kit import (
    ClosedLoad,
    annotations,
    apply,
    capacity_isvc,
    get_obj,
    model_scaler,
    tuner_config,
    wait_ready,
)

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(300)]

TARGET = "autoscaling.knative.dev/target"
REVISION = "lead-predictor-00001"
CHANGE = re.compile(
    r"^Revision (?P<rev>\S+): (?P<ann>\S+) (?P<old>\S+) -> (?P<new>[^.\s]+(?:\.\d+)?)"
)


@pytest.fixture
def om(tmp_path: Path) -> Iterator[RunningOneMachine]:
    with running_onemachine(tmp_path, tuner=False) as running:
        yield running


class Replica:
    """One tuner controller running on the one-machine loop, as a second pod would."""

    def __init__(self, om: RunningOneMachine, identity: str) -> None:
        self.om = om
        self.identity = identity
        self.source = DirectScrapeSource()
        api = om.api_client()
        election = ElectionConfig(
            "default", "modelscale-tuner", identity,
            lease_duration_s=6.0, renew_deadline_s=4.0, retry_period_s=1.0,
        )  # fmt: skip
        clock = SystemClock()
        self.ctl = Controller(
            api,
            self.source,
            ControllerSettings(identity=identity, metrics_port=0),
            clock,
            elector=LeaderElector(api, election, clock),
            endpoints=PodEndpoints(api),
        )
        self.task: asyncio.Task[None] | None = None

    async def _start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.ctl.run())

    def start(self) -> Replica:
        self.om.call(self._start())
        return self

    async def _kill(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None
        await self.ctl.stop(release=False)  # a crash: the Lease is left to expire
        await self.source.close()

    def kill(self) -> None:
        self.om.call(self._kill())

    def writes(self) -> float:
        return self.ctl.metrics.value("modelscale_tuner_writes_total")


def changes(om: RunningOneMachine) -> list[dict[str, str]]:
    out = om.kubectl("get", "events", "-o", "json")
    assert out.returncode == 0, out.stderr
    found = []
    for e in json.loads(out.stdout).get("items", []):
        if (e.get("involvedObject") or {}).get("kind") != "ModelScaler":
            continue
        m = CHANGE.match(e.get("message") or "")
        assert m, e.get("message")
        found.append(
            {**m.groupdict(), "count": str(e.get("count") or 1), "at": e.get("lastTimestamp") or ""}
        )
    return found


def test_leader_killed_the_other_takes_over_nothing_applied_twice(om: RunningOneMachine) -> None:
    apply(om, tuner_config(tick_period_s="2", stale_after_s="10", min_apply_interval_s="2",
                           min_requests="10", min_bin_requests="10"))  # fmt: skip
    apply(om, capacity_isvc("lead", capacity=2, base_ms=100))
    wait_ready(om, "lead")
    a = Replica(om, "tuner-a").start()
    om.wait(a.ctl.is_leader, 30, "a to lead")
    b = Replica(om, "tuner-b").start()
    load = ClosedLoad(om, "lead", 4).start()
    try:
        apply(om, model_scaler("lead", 150, updateMode="Auto"))
        om.wait(lambda: a.writes() >= 2, 90, "a applied the first values and a change")
        assert not b.ctl.is_leader() and b.writes() == 0
        a.kill()
        om.wait(b.ctl.is_leader, 30, "b to take over")
        ticks = b.ctl.ticks
        om.wait(lambda: b.ctl.ticks >= ticks + 6, 60, "six ticks led by b")
    finally:
        load.stop()
        b.kill()
    seen = changes(om)
    by_annotation: dict[str, list[dict[str, str]]] = defaultdict(list)
    for c in seen:
        by_annotation[c["ann"]].append(c)
    for ann, chain in by_annotation.items():
        assert all(c["count"] == "1" for c in chain), f"{ann} repeated: {chain}"
        pairs = [(c["old"], c["new"]) for c in chain]
        assert len(set(pairs)) == len(pairs), f"{ann} applied twice: {pairs}"
        assert all(old != new for old, new in pairs), pairs
    # The target's changes form one path from "unset" to the value in force now: had b
    # re-applied a change a made, a pair would repeat or the path would fork.
    target_chain = by_annotation[TARGET]
    step = {c["old"]: c["new"] for c in target_chain}
    assert len(step) == len(target_chain), target_chain
    walked, value = 0, "unset"
    while value in step and walked <= len(target_chain):
        value, walked = step[value], walked + 1
    assert walked == len(target_chain), f"not one chain from unset: {target_chain}"
    current = annotations(get_obj(om, "revision", REVISION)).get(TARGET)
    print(
        "LEADER", {"writes_a": a.writes(), "writes_b": b.writes(), "target_events": len(target_chain),
                   "target_now": current},
    )  # fmt: skip
    # Every event is one write's annotation: as many events as annotations written in all.
    assert a.writes() >= 2
    assert value == current, (value, current)
