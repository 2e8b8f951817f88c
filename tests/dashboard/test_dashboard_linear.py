"""The dashboard's work grows linearly with the number of models: every view and every tick reads
the objects through one index per ``World``, and one-machine mode's sampler costs one read of the
live counts when nothing changed. Also what that sampler records: the models that changed, cold
starts from the activator's pokes (not pre-warms), and nothing of models that are gone."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from autoscaler.clock import ManualClock
from autoscaler.dashboard import OneMachineSource, Recorder, World, feed_tick, view
from autoscaler.dashboard.source import WATCHED_S
from autoscaler.kube.controller import TickReport
from autoscaler.kube.reconciler import ModelReport
from autoscaler.runtime.spec import RevisionKey
from autoscaler.tuner import Recommendation, TunerConfig, parse_spec, recommend
from tests.dashboard.dashkit import (
    NS,
    T0,
    Scenario,
    StaticSource,
    isvc,
    observation,
    revision,
    scaler,
)


class Counted(list[dict[str, Any]]):
    """A list of objects that counts how often it is walked."""

    walks = 0

    def __iter__(self) -> Any:
        self.walks += 1
        return super().__iter__()


def world_of(n: int) -> World:
    isvcs = Counted(isvc(f"m{i}", [(f"m{i}-00001", 100)]) for i in range(n))
    revisions = Counted(revision(f"m{i}", f"m{i}-0000{j}", 1, 1) for i in range(n) for j in (1, 2))
    scalers = Counted(scaler(f"m{i}") for i in range(n))
    return World(T0, isvcs, scalers, revisions, {}, Recorder())


def walks(world: World) -> list[int]:
    return [lst.walks for lst in (world.isvcs, world.scalers, world.revisions)]  # type: ignore[attr-defined]


def test_overview_and_model_views_walk_the_objects_once() -> None:
    world = world_of(60)
    rows = view.overview(world)["models"]
    # revision 2 of each model takes no traffic: its replica is not counted
    assert len(rows) == 60 and rows[0]["replicasActual"] == 1
    for key in world.index.keys[:5]:
        view.detail(world, key)
        view.timeseries(world, key)
        view.capacity(world, key)
        view.idle(world, key)
        view.traffic(world, key)
    assert max(walks(world)) <= 1, walks(world)


def recommendation() -> Recommendation:
    """A real recommendation on a revision with traffic."""
    source = StaticSource()
    source.isvcs.append(isvc("m0", [("m0-00001", 100)]))
    source.scalers.append(scaler("m0"))
    sc = Scenario(source, "m0", "m0-00001")
    sc.tick(observation(T0, 400, 100), T0)
    assert sc.state is not None
    spec = parse_spec(scaler("m0")["spec"])
    return recommend(observation(T0, 400, 100), spec, TunerConfig(), sc.state, T0 + 10)[0]


def test_feed_tick_walks_the_objects_once_per_tick() -> None:
    n, r = 60, recommendation()
    world = world_of(n)
    report = TickReport(
        T0, True, {(NS, f"m{i}"): ModelReport("Auto", {f"m{i}-00001": r}) for i in range(n)}
    )
    feed_tick(world.recorder, report, world)
    assert len(world.recorder.models()) == n
    assert world.recorder.replicas((NS, "m7"))[-1].actual == 1, "the serving revision's"
    assert max(walks(world)) <= 2, walks(world)  # the index, and the scalers by name


# --- one-machine mode's sampler ----------------------------------------------------------------
@dataclass
class FakeDataPlane:
    """The data plane as the sampler reads it: revisions, their counts, the poke hook."""

    counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    reads: int = 0
    poke: Any = None

    def revisions(self) -> list[RevisionKey]:
        return [RevisionKey(ns, name) for ns, name in sorted(self.counts)]

    def status(self, key: RevisionKey) -> Any:
        self.reads += 1
        desired, ready = self.counts[(key.namespace, key.name)]
        return SimpleNamespace(desired=desired, ready=ready)

    def on_poke(self, callback: Any) -> None:
        self.poke = callback


@dataclass
class FakeTuner:
    """A tuner controller whose caches hold ``lists`` (by plural), leading."""

    lists: dict[str, list[dict[str, Any]]]
    reads: int = 0
    leader: bool = True
    config: TunerConfig = field(default_factory=TunerConfig)

    def ready(self) -> bool:
        return True

    def is_leader(self) -> bool:
        return self.leader

    def add_tick_listener(self, listener: Any) -> None:
        self.listener = listener

    def cached_list(self, resource: Any) -> list[dict[str, Any]]:
        self.reads += 1
        return self.lists[resource.plural]


def machine_of(models: list[str]) -> Any:
    dp = FakeDataPlane({(NS, f"{m}-00001"): (1, 1) for m in models})
    tuner = FakeTuner({
        "inferenceservices": [isvc(m, [(f"{m}-00001", 100)]) for m in models],
        "modelscalers": [],
        "revisions": [revision(m, f"{m}-00001", 0, 0) for m in models],
    })  # fmt: skip
    return SimpleNamespace(dataplane=dp, tuner=tuner, clock=ManualClock(start=0.0, epoch=T0))


async def test_sampler_reads_no_objects_while_nothing_changes() -> None:
    machine = machine_of([f"m{i}" for i in range(50)])
    source = OneMachineSource(machine)
    await source.world()  # the page is read
    await source.sample()
    assert len(source.recorder.models()) == 50
    reads = machine.tuner.reads
    for _ in range(5):
        machine.clock.advance(1.0)
        await source.sample()
    assert machine.tuner.reads == reads, "unchanged live counts: no objects read"
    machine.dataplane.counts[(NS, "m3-00001")] = (2, 1)
    machine.clock.advance(1.0)
    await source.sample()
    assert machine.tuner.reads > reads
    got = source.recorder.replicas((NS, "m3"))
    assert [(s.t_s, s.desired, s.actual) for s in got] == [(T0, 1, 1), (T0 + 6, 2, 1)]
    assert [s.t_s for s in source.recorder.replicas((NS, "m4"))] == [T0], "only what changed"


async def test_sampler_costs_nothing_while_nobody_reads_the_page() -> None:
    machine = machine_of([f"m{i}" for i in range(50)])
    source = OneMachineSource(machine)
    await source.world()
    await source.sample()
    machine.clock.advance(WATCHED_S + 1.0)  # the page was closed
    dp_reads, tuner_reads = machine.dataplane.reads, machine.tuner.reads
    machine.dataplane.counts[(NS, "m3-00001")] = (2, 1)
    for _ in range(5):
        machine.clock.advance(1.0)
        await source.sample()
    assert (machine.dataplane.reads, machine.tuner.reads) == (dp_reads, tuner_reads)
    await source.world()  # opened again: the next look records what changed
    await source.sample()
    assert source.recorder.replicas((NS, "m3"))[-1].desired == 2


async def test_cold_start_is_a_request_waiting_not_a_prewarm() -> None:
    machine = machine_of(["m"])
    dp, rev, key = machine.dataplane, (NS, "m-00001"), (NS, "m")
    source = OneMachineSource(machine)

    async def look() -> None:  # with the page open
        await source.world()
        await source.sample()

    dp.counts[rev] = (0, 0)
    await look()
    dp.counts[rev] = (1, 0)  # the tuner's pre-warm raises min-scale: no request waits
    await look()
    dp.counts[rev] = (1, 1)
    machine.clock.advance(5.0)
    await look()
    dp.counts[rev] = (0, 0)
    machine.clock.advance(60.0)
    await look()
    assert source.recorder.scale_ups_from_zero(key, machine.clock.wall()) == 1
    assert source.recorder.cold_starts(key, machine.clock.wall()) == 0
    # nobody reads the page; a request arrives at zero: the activator pokes while it waits
    machine.clock.advance(WATCHED_S + 10.0)
    for _ in range(3):
        dp.poke(RevisionKey(*rev))
    dp.counts[rev] = (1, 1)
    await source.sample()
    assert source.recorder.cold_starts(key, machine.clock.wall()) == 1
    row = view.overview(await source.world())["models"][0]
    assert (row["coldStartsLastHour"], row["coldStartsCount"]) == (1, "waited")
    assert row["scaleUpsFromZeroLastHour"] == 1
    # with a ready replica a poke is no cold start; the next zero period's is a new one
    dp.poke(RevisionKey(*rev))
    dp.counts[rev] = (0, 0)
    await source.sample()
    dp.poke(RevisionKey(*rev))
    await source.sample()
    assert source.recorder.cold_starts(key, machine.clock.wall()) == 2


async def test_sampler_forgets_models_that_are_gone_without_a_leading_tuner() -> None:
    machine = machine_of(["a", "b"])
    machine.tuner.leader = False
    source = OneMachineSource(machine)
    await source.world()
    await source.sample()
    assert source.recorder.models() == [(NS, "a"), (NS, "b")]
    del machine.dataplane.counts[(NS, "b-00001")]
    machine.tuner.lists["inferenceservices"].pop()
    machine.tuner.lists["revisions"].pop()
    await source.sample()
    assert source.recorder.models() == [(NS, "a")]
    overview = view.overview(await source.world())
    assert overview["leading"] is False


async def test_tick_records_replicas_when_it_reads_them_so_the_series_stays_ordered() -> None:
    machine = machine_of(["m"])
    machine.tuner.lists["modelscalers"].append(scaler("m"))
    source = OneMachineSource(machine)
    await source.world()  # hooks the tuner
    tick_started = machine.clock.wall()
    machine.clock.advance(1.0)
    machine.dataplane.counts[(NS, "m-00001")] = (2, 2)
    await source.sample()  # while the tick runs
    machine.clock.advance(0.5)  # the tick ends now and reads the counts now
    machine.tuner.listener(
        TickReport(
            tick_started, True, {(NS, "m"): ModelReport("Auto", {"m-00001": recommendation()})}
        )
    )
    ts = [s.t_s for s in source.recorder.replicas((NS, "m"))]
    assert ts == [T0 + 1.0, T0 + 1.5]
    assert [t.t_s for t in source.recorder.ticks((NS, "m"))] == [tick_started]
