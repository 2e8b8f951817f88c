"""Two controllers, one Lease: only the leader writes; the other takes over after expiry. A
leader that lost the Lease between two ticks resumes from the checkpoint; every Lease call is
bounded by the renew deadline; Lease times go out in MicroTime's format."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from typing import Any, cast

from kubernetes import client

from autoscaler.apiserver.testing import RunningAPIServer
from autoscaler.clock import ManualClock, SystemClock
from autoscaler.kube.leader import ElectionConfig, LeaderElector
from tests.kube.kit import ISVC, MSC, REV, TARGET, TICK_S, Cluster, sees
from tests.kube.relay import Relay


def election(identity: str) -> ElectionConfig:
    return ElectionConfig(
        "default", "modelscale-tuner", identity,
        lease_duration_s=2.0, renew_deadline_s=1.5, retry_period_s=0.2,
    )  # fmt: skip


async def until(cond: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_only_the_leader_writes_and_the_other_takes_over(
    cluster: Cluster, make_controller: Any
) -> None:
    wall = SystemClock()
    a = make_controller(identity="a", election=election("a"), clock_=wall)
    b = make_controller(identity="b", election=election("b"), clock_=wall)
    rev = cluster.deploy("m1")
    cluster.scaler("m1")
    for ctl in (a, b):
        await sees(ctl, MSC, "m1")
        await sees(ctl, REV, rev)
        await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))

    a.start_election()
    await until(a.is_leader, 5.0, "a to lead")
    b.start_election()
    assert await asyncio.to_thread(b._elector.try_acquire_or_renew) is False

    t0 = 2_000_000_000.0
    led = await a.tick(t0)
    followed = await b.tick(t0)
    assert led.leader and not followed.leader and followed.models == {}
    assert cluster.get(REV, rev)["metadata"]["annotations"][TARGET] == "50"
    assert (
        a.metrics.value("modelscale_tuner_writes_total"),
        b.metrics.value("modelscale_tuner_writes_total"),
    ) == (1, 0)

    # a stops without releasing the Lease (a crash): b waits out the lease, then leads.
    await a.stop(release=False)
    await until(b.is_leader, 8.0, "b to take over")
    assert not a.is_leader(), "fenced: a's last renewal is too old"
    assert (await a.tick(t0 + 10)).leader is False

    report = await b.tick(t0 + 10)
    written = report.models[("default", "m1")].written
    # b resumed from a's checkpoint: only the new change (50 -> 25) is written.
    assert [dict(w.new) for w in written] == [{TARGET: "25"}]
    await b.tick(t0 + 20)
    reasons = sorted(e.reason for e in cluster.events())
    assert reasons == ["KeepAliveChanged", "TargetChanged", "TargetChanged"], (
        "nothing applied twice"
    )


def manual_election(identity: str) -> ElectionConfig:
    return ElectionConfig(
        "default", "modelscale-tuner", identity,
        lease_duration_s=15.0, renew_deadline_s=10.0, retry_period_s=2.0,
    )  # fmt: skip


def learned_requests(status: dict[str, Any], revision: str) -> float:
    """The evidence (requests) behind a revision's learned latency points, as status shows."""
    entry = next((r for r in status.get("revisions") or [] if r["name"] == revision), None)
    return sum(p[2] for p in entry["points"]) if entry else 0.0


async def test_a_leader_that_lost_the_lease_between_ticks_resumes_from_the_checkpoint(
    cluster: Cluster, make_controller: Any, clock: ManualClock
) -> None:
    """a is cut off, b takes over, learns and writes its checkpoint, then releases; a wins the
    Lease back before its next tick. That tick starts from b's checkpoint, not a's memory."""
    a = make_controller(identity="a", election=manual_election("a"))
    b = make_controller(identity="b", election=manual_election("b"))
    rev = cluster.deploy("m1")
    cluster.scaler("m1")
    for ctl in (a, b):
        await sees(ctl, MSC, "m1")
        await sees(ctl, REV, rev)
        await sees(ctl, ISVC, "m1", lambda o: bool((o.get("status") or {}).get("components")))

    assert a._elector is not None and b._elector is not None
    assert a._elector.try_acquire_or_renew()
    for _ in range(2):
        clock.advance(TICK_S)
        assert a._elector.try_acquire_or_renew()
        assert (await a.tick()).leader
    after_a = learned_requests(cluster.get(MSC, "m1")["status"], rev)

    # a renews no more; b waits out the lease (on its own clock) and leads three ticks
    assert not b._elector.try_acquire_or_renew()
    clock.advance(16)
    assert b._elector.try_acquire_or_renew() and not a.is_leader()
    await sees(b, MSC, "m1", lambda o: learned_requests(o.get("status") or {}, rev) == after_a)
    for _ in range(3):
        clock.advance(TICK_S)
        assert b._elector.try_acquire_or_renew()
        assert (await b.tick()).leader
    after_b = learned_requests(cluster.get(MSC, "m1")["status"], rev)
    assert after_b > after_a

    # b releases; a takes the Lease back before it ticks again
    b._elector.release()
    await sees(a, MSC, "m1", lambda o: learned_requests(o.get("status") or {}, rev) == after_b)
    clock.advance(TICK_S)
    assert a._elector.try_acquire_or_renew() and a.is_leader()
    assert (await a.tick()).leader
    after_regain = learned_requests(cluster.get(MSC, "m1")["status"], rev)
    assert after_regain > after_b, f"b's learning lost: {after_b:g} -> {after_regain:g}"


def test_every_lease_call_carries_a_timeout_within_the_renew_deadline(
    server: RunningAPIServer, clock: ManualClock
) -> None:
    config = manual_election("a")
    elector = LeaderElector(server.api_client(), config, clock)
    api_client = elector._api.api_client
    timeouts: list[tuple[str, Any]] = []
    call_api = api_client.call_api

    def recording(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        timeouts.append((method, kwargs.get("_request_timeout")))
        return call_api(method, url, *args, **kwargs)

    api_client.call_api = recording
    assert elector.try_acquire_or_renew()  # read (404), create
    clock.advance(config.retry_period_s)
    assert elector.try_acquire_or_renew()  # read, replace
    elector.release()  # read, replace
    assert [m for m, _ in timeouts] == ["GET", "POST", "GET", "PUT", "GET", "PUT"]
    assert all(
        isinstance(t, int | float) and 0 < t <= config.renew_deadline_s for _, t in timeouts
    ), timeouts


def in_thread(fn: Any, limit_s: float) -> tuple[bool, Any, float]:
    """(finished within ``limit_s``, its result, seconds taken) of ``fn()`` in a thread."""
    box: dict[str, Any] = {}
    t = threading.Thread(target=lambda: box.setdefault("result", fn()), daemon=True)
    started = time.monotonic()
    t.start()
    t.join(limit_s)
    return not t.is_alive(), box.get("result"), time.monotonic() - started


def test_a_silent_api_connection_ends_an_attempt_within_the_renew_deadline(
    relay: Relay, relayed: Any, clock: ManualClock
) -> None:
    """The API connection goes silent (open, nothing comes back): a renewal and a release each
    give up within about the renew deadline, neither blocks the election or a shutdown."""
    config = ElectionConfig(
        "default", "modelscale-tuner", "a",
        lease_duration_s=3.0, renew_deadline_s=1.0, retry_period_s=0.5,
    )  # fmt: skip
    elector = LeaderElector(relayed, config, clock)
    assert elector.try_acquire_or_renew()
    relay.freeze(later=True)
    for what, fn, expected in (
        ("renewal", elector.try_acquire_or_renew, False),
        ("release", elector.release, None),
    ):
        finished, result, took = in_thread(fn, 20.0)
        assert finished, f"the {what} was still waiting after {took:.0f} s"
        assert result is expected
        # an attempt's calls share the deadline, and none is sent again after a timeout
        assert took < 2.5 * config.renew_deadline_s, f"the {what} took {took:.1f} s"


def raw_lease(server: RunningAPIServer, name: str = "modelscale-tuner") -> dict[str, Any]:
    api = client.CoordinationV1Api(server.api_client())
    resp = api.read_namespaced_lease(name, "default", _preload_content=False)
    return cast(dict[str, Any], json.loads(resp.data))


MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_lease_times_are_sent_with_six_fraction_digits(
    server: RunningAPIServer, clock: ManualClock
) -> None:
    """metav1.MicroTime needs six fraction digits; a time on a whole second has a zero one."""
    assert clock.wall() == int(clock.wall())
    elector = LeaderElector(server.api_client(), manual_election("a"), clock)
    assert elector.try_acquire_or_renew()  # created
    spec = raw_lease(server)["spec"]
    assert MICRO_TIME.match(spec["acquireTime"]) and MICRO_TIME.match(spec["renewTime"]), spec
    clock.advance(2.0)
    assert elector.try_acquire_or_renew()  # renewed: the acquire time read back is sent again
    spec = raw_lease(server)["spec"]
    assert MICRO_TIME.match(spec["acquireTime"]) and MICRO_TIME.match(spec["renewTime"]), spec
    assert spec["acquireTime"] != spec["renewTime"]
    elector.release()
    spec = raw_lease(server)["spec"]
    assert MICRO_TIME.match(spec["acquireTime"]) and MICRO_TIME.match(spec["renewTime"]), spec
