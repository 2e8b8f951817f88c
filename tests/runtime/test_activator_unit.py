"""The activator's buffering, poke, balancing and retry logic against in-process targets."""

from __future__ import annotations

import asyncio
import json

from dataplane_testkit import RecordingTarget, request

from autoscaler.clock import ManualClock
from autoscaler.kpa import AutoscalerConfig, RevisionAutoscaler, RevisionScaling
from autoscaler.kpa.collector import MetricCollector
from autoscaler.runtime.activator import Activator, ActivatorSettings
from autoscaler.runtime.spec import RevisionKey
from autoscaler.runtime.stats import ACTIVATOR_FIRST_POD_NAME, Stat

KEY = RevisionKey("default", "m-00001")


async def test_buffers_at_zero_pokes_once_and_answers_when_a_target_appears() -> None:
    clock = ManualClock()
    pokes: list[RevisionKey] = []
    act = Activator(clock, on_poke=pokes.append)
    act.set_targets(KEY, [], 0)
    pending = [asyncio.create_task(act.handle(KEY, request())) for _ in range(3)]
    await asyncio.sleep(0)
    assert pokes == [KEY]
    assert act.queued(KEY) == 3
    target = RecordingTarget("pod-a")
    act.set_targets(KEY, [target], 0)
    responses = await asyncio.gather(*pending)
    assert [r.status for r in responses] == [200, 200, 200]
    assert target.proxied == [True, True, True]


async def test_timeout_is_the_revisions_timeout_seconds_and_gives_504() -> None:
    clock = ManualClock()
    act = Activator(clock, ActivatorSettings(request_timeout_s=60))
    act.set_targets(KEY, [], 0, timeout_s=5)
    task = asyncio.create_task(act.handle(KEY, request()))
    for _ in range(3):  # let the request start waiting on the clock
        await asyncio.sleep(0)
    clock.advance(4.9)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.1)
    resp = await task
    # Knative's activator timeout handler: 504, no Retry-After (503 stays for a full queue).
    assert resp.status == 504
    assert "Retry-After" not in resp.headers
    assert resp.headers["Content-Type"] == "application/json"
    error = json.loads(resp.body)["error"]
    assert "activator request timeout" in error
    assert str(KEY) in error and "(5s)" in error
    assert act.queued(KEY) == 0 and act.in_flight(KEY) == 0


async def test_timeout_defaults_to_knatives_300s_and_bounds_the_proxied_request() -> None:
    clock = ManualClock(start=100.0)
    act = Activator(clock)
    assert act.settings.request_timeout_s == 300.0
    target = RecordingTarget("a")
    act.set_targets(KEY, [target], 0)
    assert (await act.handle(KEY, request())).status == 200
    act.set_targets(KEY, [target], 0, timeout_s=7)
    act.set_targets(KEY, [target], 0)  # the pool's updates keep the revision's timeout
    assert (await act.handle(KEY, request())).status == 200
    # The queue-proxy gets what is left of the activator's bound as its deadline.
    assert target.deadlines == [400.0, 107.0]


async def test_queue_bound_refuses_past_max_queue() -> None:
    act = Activator(ManualClock(), ActivatorSettings(max_queue=1))
    first = asyncio.create_task(act.handle(KEY, request()))
    await asyncio.sleep(0)
    resp = await act.handle(KEY, request())
    assert resp.status == 503
    assert b"queue full" in resp.body
    act.set_targets(KEY, [RecordingTarget("a")], 0)
    assert (await first).status == 200


async def test_least_loaded_with_container_concurrency_never_exceeds_cc() -> None:
    act = Activator(ManualClock())
    a, b = RecordingTarget("a"), RecordingTarget("b")
    for t in (a, b):
        t.release.clear()
    act.set_targets(KEY, [a, b], 2)
    tasks = [asyncio.create_task(act.handle(KEY, request())) for _ in range(6)]
    for _ in range(5):
        await asyncio.sleep(0)
    assert (a.in_flight, b.in_flight) == (2, 2)
    assert act.queued(KEY) == 2
    a.release.set()
    b.release.set()
    await asyncio.gather(*tasks)
    assert a.max_in_flight == 2 and b.max_in_flight == 2
    assert a.served + b.served == 6


async def test_round_robin_without_container_concurrency() -> None:
    act = Activator(ManualClock())
    targets = [RecordingTarget(n) for n in "abc"]
    act.set_targets(KEY, targets, 0)
    for _ in range(9):
        await act.handle(KEY, request())
    assert [t.served for t in targets] == [3, 3, 3]


async def test_refused_request_is_retried_on_another_replica() -> None:
    act = Activator(ManualClock())
    dead, alive = RecordingTarget("dead", refuse=True), RecordingTarget("alive")
    act.set_targets(KEY, [dead, alive], 0)
    responses = [await act.handle(KEY, request()) for _ in range(4)]
    assert all(r.status == 200 for r in responses)
    assert alive.served == 4


async def test_request_waits_when_every_replica_refused_until_a_new_one() -> None:
    act = Activator(ManualClock())
    act.set_targets(KEY, [RecordingTarget("dead", refuse=True)], 0)
    task = asyncio.create_task(act.handle(KEY, request()))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()
    act.set_targets(KEY, [RecordingTarget("new")], 0)
    assert (await task).status == 200


async def test_a_replica_restarted_in_its_pod_is_a_new_target_under_the_same_name() -> None:
    """The crashed run refused a request; its restart (same Pod, same name, a new queue-proxy)
    takes it, and the crashed run's load does not count against the new one."""
    act = Activator(ManualClock())
    crashed = RecordingTarget("pod-a", refuse=True)
    act.set_targets(KEY, [crashed], 1)
    task = asyncio.create_task(act.handle(KEY, request()))
    for _ in range(3):
        await asyncio.sleep(0)
    assert not task.done()  # refused by the crashed run: waiting for another target
    restarted = RecordingTarget("pod-a")
    act.set_targets(KEY, [restarted], 1)
    assert (await task).status == 200 and restarted.served == 1


async def held_request(
    act: Activator, target: RecordingTarget, clock: ManualClock, held_s: float
) -> None:
    """One request through ``act`` that ``target`` holds for ``held_s`` of the manual clock."""
    target.release.clear()
    task = asyncio.create_task(act.handle(KEY, request()))
    await asyncio.sleep(0)
    clock.advance(held_s)
    target.release.set()
    await task


async def test_reports_time_weighted_stat_for_active_revisions() -> None:
    clock = ManualClock()
    stats = []
    act = Activator(clock, on_stat=lambda k, s: stats.append((k, s)))
    target = RecordingTarget("a")
    act.set_targets(KEY, [target], 0)
    await held_request(act, target, clock, 0.5)
    clock.advance(0.5)
    act.report()
    (_, first), (key, stat) = stats  # the first request's own report, then the period's
    assert (first.average_concurrent_requests, first.request_count) == (1, 1)
    assert key == KEY and stat.pod_name == "activator"
    # the period's: 0.5 and one request, less the first request already reported
    assert stat.average_concurrent_requests == 0
    assert stat.request_count == 0
    for _ in range(2):  # a later period: nothing taken off
        await held_request(act, target, clock, 0.25)
    clock.advance(0.5)
    act.report()
    assert len(stats) == 3  # no report at once: the revision was reported the period before
    assert stats[-1][1].average_concurrent_requests == 0.5
    assert stats[-1][1].request_count == 2
    clock.advance(1)
    act.report()  # a period with nothing in flight: reported as zero, and the last
    assert len(stats) == 4 and stats[-1][1].average_concurrent_requests == 0
    clock.advance(1)
    act.report()
    assert len(stats) == 4  # idle revisions are not reported


async def test_the_first_request_is_reported_at_once_so_the_kpa_wakes_from_zero() -> None:
    # Knative's activator reports a revision's first request at once (concurrency 1, one
    # request), so the autoscaler scales from zero on it, not a report period later.
    clock = ManualClock(start=10.0)
    config = AutoscalerConfig(allow_zero_initial_scale=True)
    ann = {"autoscaling.knative.dev/initial-scale": "0"}
    kpa = RevisionAutoscaler(config, RevisionScaling.from_annotations(ann, config=config), now=0.0)
    kpa.record(9.5, Stat("m-00001-pod", 0.0))  # the last report before the quiet spell
    assert kpa.tick(10.0, ready_pods=0).desired_pods == 0
    stats: list[tuple[RevisionKey, Stat]] = []

    def sink(key: RevisionKey, stat: Stat) -> None:
        stats.append((key, stat))
        kpa.record(clock.now(), stat)

    act = Activator(clock, on_stat=sink)
    act.set_targets(KEY, [], 0)
    first = asyncio.create_task(act.handle(KEY, request()))
    second = asyncio.create_task(act.handle(KEY, request()))
    await asyncio.sleep(0)
    ((key, stat),) = stats  # one for the first request, none for the second
    assert key == KEY and stat.pod_name == ACTIVATOR_FIRST_POD_NAME
    assert (stat.average_concurrent_requests, stat.request_count) == (1.0, 1.0)
    # no report period has closed, and the KPA already wants a replica
    assert kpa.should_poke(stat)
    assert kpa.tick(clock.now(), ready_pods=0).desired_pods == 1
    target = RecordingTarget("a")
    target.release.clear()
    act.set_targets(KEY, [target], 0)
    await asyncio.sleep(0)
    clock.advance(0.5)
    target.release.set()
    assert [r.status for r in await asyncio.gather(first, second)] == [200, 200]
    clock.advance(0.5)
    act.report()  # the period with both requests, less the first already reported
    assert len(stats) == 2 and stats[-1][1].request_count == 1
    clock.advance(1)
    act.report()  # a period with none in flight: its last report, as zero
    assert len(stats) == 3 and stats[-1][1].request_count == 0
    clock.advance(1)
    act.report()
    assert len(stats) == 3
    await act.handle(KEY, request())  # the next request is a first again: at once
    assert len(stats) == 4 and stats[-1][1].average_concurrent_requests == 1.0


async def test_the_first_requests_report_and_its_periods_add_up_in_one_second() -> None:
    # Knative's collector adds the reports of a 1 s bucket: the first request (1 at once) and
    # the period's report less it sum to the period's concurrency, whichever second each lands in.
    clock = ManualClock(start=100.0)
    collector = MetricCollector(60.0, 6.0)
    act = Activator(clock, on_stat=lambda k, s: collector.record(clock.now(), s))
    target = RecordingTarget("a")
    target.release.clear()
    act.set_targets(KEY, [target], 0)
    clock.advance(0.1)
    held = [asyncio.create_task(act.handle(KEY, request())) for _ in range(6)]
    await asyncio.sleep(0)
    clock.advance(0.8)
    act.report()  # the period closes in the second the first request was reported in
    target.release.set()
    await asyncio.gather(*held)
    _, panic = collector.stable_and_panic_concurrency(100.95)
    assert abs(panic - 6.0) < 1e-9  # six in flight since the first of them
    assert collector.stable_and_panic_rps(100.95)[1] == 6.0


async def test_the_first_period_after_a_quiet_spell_starts_at_its_first_request() -> None:
    # Knative makes a revision's stats at its first request: a burst after an hour at zero is
    # averaged over the time since it came, not over the hour.
    clock = ManualClock(start=0.0)
    stats: list[Stat] = []
    act = Activator(clock, on_stat=lambda k, s: stats.append(s))
    target = RecordingTarget("a")
    act.set_targets(KEY, [target], 0)
    await held_request(act, target, clock, 0.2)
    clock.set(1.0)
    act.report()
    clock.set(2.0)
    act.report()  # nothing in flight: the revision's last report
    target.release.clear()
    clock.set(3602.5)
    burst = [asyncio.create_task(act.handle(KEY, request())) for _ in range(10)]
    await asyncio.sleep(0)
    clock.set(3603.0)
    act.report()
    first, period = stats[-2:]
    assert first.pod_name == ACTIVATOR_FIRST_POD_NAME and first.average_concurrent_requests == 1
    # ten in flight for all of the 0.5 s since the first of them, less the one reported
    assert period.average_concurrent_requests == 9.0 and period.request_count == 9
    target.release.set()
    await asyncio.gather(*burst)


async def test_a_request_in_flight_keeps_its_revision_reported() -> None:
    # a request that comes as a period with nothing in it closes is reported every period it
    # is in flight, as Knative keeps a revision's stats while a request holds them
    clock = ManualClock(start=4.0)
    stats: list[tuple[float, Stat]] = []
    act = Activator(clock, on_stat=lambda k, s: stats.append((clock.now(), s)))
    target = RecordingTarget("a")
    target.release.clear()
    act.set_targets(KEY, [target], 0)
    clock.set(5.0)
    held = asyncio.create_task(act.handle(KEY, request()))
    await asyncio.sleep(0)
    act.report()  # at the same reading as the request
    for t in (6.0, 7.0):
        clock.set(t)
        act.report()
    later = [s.average_concurrent_requests for t, s in stats if t > 5.0]
    assert later == [1.0, 1.0]
    target.release.set()
    await held
