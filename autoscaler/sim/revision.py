"""One simulated revision's control plane: replicas, KPA ticks, policy ticks and accounting.

Both engines (``exact`` and ``fluid``) move requests; this class owns everything else about a
revision, so the two engines decide alike: replicas starting (ready after a sampled cold start)
and ready, the KPA fed each finished 1 s bucket (in one batch before it next decides) and asked
every ``KPA_TICK_S`` on a grid shared by all revisions (and at once when a request reaches a
revision at zero), the policy ticked when it asks, the tuner's observation built from what
happened since its last tick, and the figures: replica-seconds, idle memory-time and scaling
changes.

Ticks the KPA provably decides as the one before come in three kinds. Quiet and light steady
spells jump over them (no engine event: as in every run before, the figures sum time in those
pieces). A quiet spell (no request for a window, replicas kept, the decider settled) runs to
the next arrival, a steady one as far as it is proven, through the policy's ticks; one that
patches the annotations ends it at the KPA's last tick. A quiet spell's seconds reach the KPA
as the zeros the replicas reported, written so that no window restarts a partial one. Held
ticks (``_held_by_averages``: the KPA's own window averages, or the buckets recorded since,
show the decision unchanged) and band spells (``band_until``: many requests in
flight, their count bounded by the arrivals and the soonest completions) still stop the engine
at every tick but skip the KPA's ``decide``, so every sum is cut into the same pieces and comes
out bit for bit as when ticking.

Scaling down removes replicas still starting first, then ready ones; a removed ready replica's
requests share the remaining replicas (the pool model of ``autoscaler.sim.model``).

What the tuner observes is what its metrics source reads in a cluster: the queue-proxies'
request latency histogram and the concurrency per ready replica, time-weighted (the time
requests spent in ready pods over the replicas' time, as the Prometheus source reads it from
the autoscaler's gauge) or, with ``concurrency_from_completions``, the time of the requests
that finished in the interval over the replicas' time (the direct scrape's Little's law on
the histogram's ``_sum``: a request longer than the interval counts all at its finish). A
request that waited at the activator for a cold start reaches a queue-proxy only when a
replica is ready, so the engines hand ``completed`` the latency *without* that activator wait
(the figures of the run keep the whole latency), and in-system time counts toward the
per-replica concurrency only while a replica is ready.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from autoscaler.kpa.windows import bucket_count
from autoscaler.sim.model import ColdStart, ModelSpec
from autoscaler.sim.seams import AutoscalerFactory, HoldingAutoscaler, RevisionPolicy
from autoscaler.tuner.observation import LATENCY_BUCKETS_MS, N_LATENCY_COUNTS, RevisionObservation

KPA_TICK_S = 2.0
# Steady spells: a tick is covered by a non-zero bucket at most this far before the window's
# far end; successive busy seconds further apart than the window less this end a spell.
STEADY_MARGIN_S = 4.0
# Held ticks: how often a tick whose averages hold checks every bucket of the windows (a
# bucket out of the band leaves them a window later).
HOLD_RECHECK_S = 20.0
# A band spell that could not start is not looked for again for this long (an optimisation
# only: a tick not skipped decides what it would have anyway).
BAND_RETRY_S = 10.0
_BUCKET_BOUNDS_S = np.asarray(LATENCY_BUCKETS_MS, dtype=np.float64) / 1000.0
_NO_COUNTS = (0.0,) * N_LATENCY_COUNTS  # an interval in which no request finished
_BOUNDS_S: tuple[float, ...] = tuple(_BUCKET_BOUNDS_S.tolist())
_LAST_BOUND_S = _BOUNDS_S[-1]
_INF_BUCKET = N_LATENCY_COUNTS - 1
_FEW_LATENCIES = 16  # up to this many are counted without arrays (faster for so few)


def latency_counts(latencies_s: np.ndarray) -> tuple[float, ...]:
    """Per-bucket counts in Knative's latency buckets (``le`` bounds, then +Inf)."""
    if latencies_s.size == 0:
        return _NO_COUNTS
    if latencies_s.size <= _FEW_LATENCIES:
        # one by one, each where searchsorted puts it (past the last bound, NaN too: +Inf)
        few = [0.0] * N_LATENCY_COUNTS
        for x in latencies_s.tolist():
            few[bisect.bisect_left(_BOUNDS_S, x) if x <= _LAST_BOUND_S else _INF_BUCKET] += 1.0
        return tuple(few)
    idx = np.searchsorted(_BUCKET_BOUNDS_S, latencies_s, side="left")
    counts = np.bincount(idx, minlength=N_LATENCY_COUNTS).astype(np.float64)
    return tuple(counts.tolist())  # Python floats, as float(count) of each


@dataclass
class RevisionStats:
    """What a run of one revision adds to a policy's figures."""

    replica_s: float = 0.0
    idle_mb_s: float = 0.0
    scaling_changes: int = 0
    # replica count (starting + ready) after each change: (t_s, replicas)
    timeline: list[tuple[float, int]] = field(default_factory=list)
    # per KPA tick (when asked for): (t_s, desired, ready)
    kpa_ticks: list[tuple[float, int, int]] | None = None


class RevisionControl:
    """Replicas, KPA and policy of one revision; the engines call it as time moves."""

    def __init__(
        self,
        model: ModelSpec,
        policy: RevisionPolicy,
        autoscaler: AutoscalerFactory,
        cold_start: ColdStart,
        rng: np.random.Generator,
        *,
        record_kpa_ticks: bool = False,
        concurrency_from_completions: bool = False,
    ) -> None:
        self.model = model
        # the tuner's concurrency as the direct scrape reads it (SimSettings.tuner_concurrency)
        self.concurrency_from_completions = concurrency_from_completions
        self.memory_mb = model.memory_mb
        self.policy = policy
        self.cold_start = cold_start
        self.rng = rng
        self.annotations = dict(policy.initial_annotations())
        self.kpa = autoscaler(self.annotations, model.container_concurrency)
        self.ready = 0
        self.starting: list[float] = []  # ready-at times, ascending
        self.desired = 0
        self.next_kpa_s = 0.0
        self.next_policy_s = policy.next_tick_s(0.0)
        self.stats = RevisionStats(kpa_ticks=[] if record_kpa_ticks else None)
        # the tuner's interval: integrals and completed latencies since its last tick
        self._obs_start_s = 0.0
        self._obs_insys_s = 0.0
        self._obs_ready_s = 0.0
        self._obs_latencies: list[float] = []
        self._obs_latency_arrays: list[np.ndarray] = []
        # quiet spells: no request since `idle_since`; while `quiet`, identical ticks are skipped
        self.idle_since: float | None = 0.0
        self.quiet = False
        self.last_record_s = -1.0
        self.horizon_s = math.inf
        # how far a steady spell may reach: arrivals do not end one (steady_until bounds the
        # load they add), only the end of the trace and a policy's patch (policy_tick) do
        self.steady_horizon_s = math.inf
        # steady spells (see steady_until): recent per-second concurrency, a max-queue
        self.steady_enabled = not record_kpa_ticks
        # quiet spells (kpa_tick): off, every tick of an idle revision with replicas is ticked
        self.quiet_enabled = True
        # the engine's order of a policy tick and a KPA tick at the same time (fluid: policy)
        self.policy_before_kpa = False
        self._peaks: deque[tuple[float, float]] = deque()
        self.steady_skip = False  # ticks are being skipped by steady_until
        self.last_busy_s = -math.inf
        # band spells (band_until): ticks before this time decide as the last one did
        self.band_until_s = -math.inf
        self._band_retry_s = -math.inf  # band_until failed: not asked again before this
        # held ticks (_held_by_averages): the band the last decision holds in, from the KPA
        # the optional part of the seam (HoldingAutoscaler): None when the KPA has no proofs
        self._holding = (
            cast(HoldingAutoscaler, self.kpa)
            if callable(getattr(self.kpa, "hold", None))
            and callable(getattr(self.kpa, "steady_band", None))
            else None
        )
        self._hold: Any = None
        self._hold_bucketed = False  # every bucket was in the band at the last check
        self._hold_checked_s = -math.inf  # when the buckets were last checked
        self._hold_last_s = -math.inf  # the last second the hold's checks have seen
        self._hold_seen = 0  # pending buckets the hold's checks have seen
        # buckets for the KPA not yet handed over: written in one batch before it next decides
        self._pending_s: list[float] = []
        self._pending_c: list[float] = []
        # the revision is created now: the KPA applies its initial scale
        self.kpa_tick(0.0)

    # -- state ---------------------------------------------------------------------------------
    @property
    def replicas(self) -> int:
        return self.ready + len(self.starting)

    @property
    def next_ready_s(self) -> float:
        return self.starting[0] if self.starting else math.inf

    def at_rest(self, in_system: float) -> bool:
        """Nothing to tick: no replica, none wanted, no request in the system."""
        return self.replicas == 0 and self.desired == 0 and in_system == 0

    # -- accounting ----------------------------------------------------------------------------
    def account(self, dt_s: float, in_system: float, in_service: float) -> None:
        """Time passed with these counts constant (or averaged) over ``dt_s``."""
        ready = self.ready
        total = ready + len(self.starting)
        if total:
            stats = self.stats
            stats.replica_s += total * dt_s
            busy = float(ready)
            if in_service < busy:  # min(float(ready), in_service)
                busy = in_service
            stats.idle_mb_s += self.memory_mb * (total - busy) * dt_s
        if ready:  # requests at the activator during a cold start are in no pod yet
            self._obs_insys_s += in_system * dt_s
            self._obs_ready_s += ready * dt_s

    def completed(self, latency_s: float) -> None:
        """A request finished; ``latency_s`` as its queue-proxy measured it (no activator wait)."""
        self._obs_latencies.append(latency_s)

    def completed_many(self, latencies_s: np.ndarray) -> None:
        """Requests finished; latencies as their queue-proxies measured them."""
        if latencies_s.size:
            self._obs_latency_arrays.append(latencies_s)

    # -- replicas ------------------------------------------------------------------------------
    def promote(self, now_s: float) -> int:
        """Replicas whose cold start has ended become ready; returns how many."""
        n = bisect.bisect_right(self.starting, now_s)
        if n:
            del self.starting[:n]
            self.ready += n
        return n

    def _apply(self, desired: int, now_s: float) -> None:
        desired = max(0, int(desired))
        if desired != self.desired:
            self.stats.scaling_changes += 1
        self.desired = desired
        total = self.replicas
        if desired > total:
            for _ in range(desired - total):
                bisect.insort(self.starting, now_s + self.cold_start.sample(self.rng))
        elif desired < total:
            drop = total - desired
            cut = min(drop, len(self.starting))
            if cut:
                del self.starting[len(self.starting) - cut :]
            self.ready -= drop - cut
        if self.replicas != total:
            self.stats.timeline.append((now_s, self.replicas))

    # -- ticks ---------------------------------------------------------------------------------
    def record(self, second_s: float, concurrency: float) -> None:
        # Zero buckets are written only where a read would otherwise miss them: the windows
        # count gaps between writes as zeros, so only the second before a tick must be written
        # (see kpa_tick). Same averages, far fewer writes for revisions idling with replicas.
        if concurrency > 0.0:
            if self.steady_skip:
                self._fill_gap(second_s)
            self._pending_s.append(second_s)
            self._pending_c.append(concurrency)
            self.last_record_s = second_s
            self.last_busy_s = second_s
            if self.steady_enabled:
                peaks = self._peaks
                while peaks and peaks[-1][1] <= concurrency:
                    peaks.pop()
                peaks.append((second_s, concurrency))

    def record_run(self, first_s: float, count: int, concurrency: float) -> None:
        """``record(first_s + k, concurrency)`` for ``k`` in ``range(count)``: whole seconds at
        one concurrency (a long spell with the same requests in flight), in one call."""
        if count <= 0 or not concurrency > 0.0:
            return
        if count == 1:
            self.record(first_s, concurrency)
            return
        if self.steady_skip:
            self._fill_gap(first_s)  # the later seconds follow one another: no gap to fill
        last_s = first_s + (count - 1)
        self._pending_s.extend(np.arange(first_s, last_s + 0.5, 1.0).tolist())
        self._pending_c.extend([concurrency] * count)
        self.last_record_s = last_s
        self.last_busy_s = last_s
        if self.steady_enabled:
            # the run's later seconds each displace the one before (same value): only the last
            # stays on the max-queue
            peaks = self._peaks
            while peaks and peaks[-1][1] <= concurrency:
                peaks.pop()
            peaks.append((last_s, concurrency))

    def flush_records(self) -> None:
        """Hand the buckets recorded since the KPA last decided over in one batch: the KPA
        reads its windows only when it decides, so deferring the writes changes nothing."""
        if len(self._pending_s) > self._hold_seen:
            self._hold_bucketed = False  # buckets no hold check has seen reach the windows
        if self._pending_s:
            self.kpa.record_many(self._pending_s, self._pending_c)
            self._pending_s = []
            self._pending_c = []
        self._hold_seen = 0

    def _fill_gap(self, second_s: float) -> None:
        """During a steady skip: zeros where the skipped ticks' flushes would have kept writes
        close enough that no window restarts a partial window (a gap of a whole window)."""
        if second_s - self.last_record_s <= 1.0:
            return  # the step is at least 1 s: nothing to fill
        step = max(1.0, min(4.0, math.ceil(self.kpa.panic_window_s) - 1.0))
        while second_s - self.last_record_s > step:
            self.last_record_s += step
            self._pending_s.append(self.last_record_s)
            self._pending_c.append(0.0)

    def recent_peak(self, now_s: float) -> float:
        """The highest per-second concurrency recorded within a stable window (and margin)."""
        peaks = self._peaks
        oldest = now_s - self.kpa.stable_window_s - STEADY_MARGIN_S
        while peaks and peaks[0][0] < oldest:
            peaks.popleft()
        return peaks[0][1] if peaks else 0.0

    def band_until(
        self,
        now_s: float,
        in_system: int,
        arrivals_s: Sequence[float],
        next_arrival: int,
        earliest_completion: Callable[[int, int], float],
    ) -> float:
        """After a tick at ``now_s``: the time before which every tick decides the same, for a
        revision at any count with requests in flight (``steady_until`` is for a light load).

        The KPA keeps its count while each per-second concurrency stays in its band ``[low,
        high]`` around ``in_system`` (``KpaRevision.steady_band``). Concurrency stays at most
        ``floor(high)`` until the arrival that would pass it, and at least ``ceil(low)`` until
        ``earliest_completion(d, ceil(low))``: the soonest ``d`` of the requests now in the
        system could all have finished. The spell ends a tick before the policy's next tick,
        so the KPA has ticked then as when ticking every 2 s. Returns ``now_s`` when no tick
        may be skipped.
        """
        if self.starting or self.ready != self.desired or self.ready == 0:
            return now_s
        # The end of the trace ends no band spell: requests stay in the system throughout, so
        # the engine cannot stop there (it drains them on the grid of ticks).
        horizon = self.next_policy_s
        holding = self._holding
        if holding is None or horizon <= now_s + 2 * KPA_TICK_S:
            return now_s
        band = holding.steady_band(now_s, self.ready, float(in_system), KPA_TICK_S)
        if band is None or band[0] <= self.kpa.target_per_pod:
            # At one pod's target or less a tick may start a light spell (steady_until), which
            # jumps over the ticks instead of stopping at them: leave those to it.
            return now_s
        up = math.floor(band[1]) - in_system  # arrivals the band takes
        down = in_system - math.ceil(band[0])  # completions the band takes
        if up < 0 or down < 0:
            return now_s
        k = next_arrival + up
        until = min(float(arrivals_s[k]) if k < len(arrivals_s) else math.inf, horizon - KPA_TICK_S)
        if until <= now_s + 2 * KPA_TICK_S:
            return now_s
        return min(until, earliest_completion(down + 1, in_system - down))

    def steady_until(
        self, now_s: float, in_system: int, arrivals_s: Sequence[float], next_arrival: int
    ) -> float:
        """After a tick at ``now_s``: the time before which every tick decides the same.

        The KPA (``autoscaler.kpa.horizon``) keeps its count while each per-second concurrency
        in its windows is in ``(0, one pod's target]``. Concurrency can only rise by arrivals,
        so it stays at most ``in_system + m`` until the ``m + 1``-th next arrival; and each
        tick's stable window holds a busy second while the known arrivals come closer together
        than the window (less a margin). Returns ``now_s`` when no tick may be skipped.
        """
        if self.starting or self.ready != self.desired or self.ready == 0:
            return now_s
        kpa = self.kpa
        tpp = kpa.target_per_pod
        m = math.floor(tpp - in_system + 1e-9)
        if m < 0:
            return now_s
        horizon = self.steady_horizon_s
        n = len(arrivals_s)
        soon = now_s + 2 * KPA_TICK_S
        if next_arrival + m < n and arrivals_s[next_arrival + m] <= soon:
            return now_s  # the load may leave the band before the next tick but one
        past = self.recent_peak(now_s)
        if past > tpp or horizon <= soon:
            return now_s
        peak = max(past, float(in_system + m))
        peak = min(peak, tpp) if peak > 0 else tpp
        if not kpa.steady(now_s, self.ready, peak, KPA_TICK_S):
            return now_s
        hi = min(n, next_arrival + m)
        until = float(arrivals_s[hi]) if hi < n else math.inf
        # busy seconds: the last recorded one (or now, with requests in flight), then arrivals;
        # each covers the ticks up to `reach` after it, so the spell ends at the first wide gap
        reach = kpa.stable_window_s - STEADY_MARGIN_S
        busy = now_s if in_system else self.last_busy_s
        for j in range(next_arrival, hi):
            second = math.floor(arrivals_s[j])
            if second - busy > reach - STEADY_MARGIN_S:
                break
            busy = second
        return min(until, busy + reach, horizon)

    def _flush_zeros(self, now_s: float) -> None:
        last_second = math.floor(now_s) - 1.0
        if self.last_record_s < last_second and self.replicas + self.desired > 0:
            self._pending_s.append(last_second)
            self._pending_c.append(0.0)
            self.last_record_s = last_second

    def _zeros_through(self, second_s: float) -> None:
        """The zeros ready replicas reported every second through ``second_s`` (Knative
        records every scrape, zeros too), for a spell whose seconds were not written.

        A window restarts a partial window after a gap of its length, which reporting replicas
        never leave; three writes stand for the whole spell: one at the start of each window
        ending at ``second_s`` (stable, then panic) and ``second_s`` itself, each less than a
        window after the one before, so each window ends full of zeros as when ticking."""
        kpa = self.kpa
        for buckets in (bucket_count(kpa.stable_window_s), bucket_count(kpa.panic_window_s), 1):
            s = second_s - buckets + 1.0
            if self.last_record_s < s:
                self._pending_s.append(s)
                self._pending_c.append(0.0)
                self.last_record_s = s

    def _end_spell(self, tick_s: float) -> None:
        """Write what a tick at ``tick_s`` writes, and what the ticks a quiet or steady spell
        skipped would have: a quiet spell's seconds were zeros, a steady spell's unrecorded
        ones too. Ends the spell."""
        second = math.floor(tick_s) - 1.0
        if self.quiet:
            self._zeros_through(second)
        elif self.steady_skip:
            self._fill_gap(second)
        self.quiet = self.steady_skip = False
        self._flush_zeros(tick_s)

    def kpa_tick(
        self,
        now_s: float,
        in_system: int = -1,
        arrivals_s: Sequence[float] | None = None,
        next_arrival: int = 0,
        earliest_completion: Callable[[int, int], float] | None = None,
    ) -> None:
        """The KPA's tick; with the engine's state (exact engine: the requests in the system,
        the arrival times and the index of the next) it may skip steady ticks."""
        if now_s < self.band_until_s:
            # A band spell (band_until): this tick would decide what the last one did. The
            # engine still stops here, so its time is cut into the same pieces as when ticking
            # and every sum comes out bit for bit the same.
            self.next_kpa_s = now_s + KPA_TICK_S
            return
        if self.quiet or self.steady_skip:
            self._end_spell(now_s)
        else:
            self._flush_zeros(now_s)  # what _end_spell ends with
        held = self._hold_bucketed and self._held_by_buckets(now_s)
        if not held:
            self.flush_records()
            held = self._hold is not None and self._held_by_averages(now_s)
        if held:
            # what the KPA would decide again (see _held_by_averages): it only notes the time
            desired = self.desired
            assert self._holding is not None  # a hold exists only with one
            self._holding.note_time(now_s)
        else:
            desired = self.kpa.decide(now_s, self.ready)
            self._hold = None
            self._hold_bucketed = False
            if (
                self.steady_enabled
                and self._holding is not None
                and not self.starting
                and self.ready == desired == self.desired
                and desired > 0
            ):
                self._hold = self._holding.hold(now_s, self.ready, KPA_TICK_S)
                self._hold_checked_s = -math.inf
        if self.stats.kpa_ticks is not None:
            self.stats.kpa_ticks.append((now_s, desired, self.ready))
        if desired != self.desired or desired != self.ready + len(self.starting):
            self._apply(desired, now_s)  # (most ticks keep the count: nothing to apply)
        self.next_kpa_s = now_s + KPA_TICK_S
        if (
            self.idle_since is not None
            and not self.starting
            and self.replicas > 0
            and now_s - self.idle_since >= self.kpa.quiet_after_s
            and self.quiet_enabled
        ):
            until = self.kpa.quiet_until(now_s, self.ready, KPA_TICK_S, self.horizon_s)
            if until > now_s + KPA_TICK_S:
                self.next_kpa_s = until
                self.quiet = True
        elif self.steady_enabled and arrivals_s is not None and in_system >= 0:
            until = self.steady_until(now_s, in_system, arrivals_s, next_arrival)
            if until > now_s + KPA_TICK_S:
                # the first grid tick at or after `until` decides again
                self.next_kpa_s = math.ceil(until / KPA_TICK_S) * KPA_TICK_S
                self.steady_skip = True
            elif in_system > 0 and earliest_completion is not None and now_s >= self._band_retry_s:
                self.band_until_s = self.band_until(
                    now_s, in_system, arrivals_s, next_arrival, earliest_completion
                )
                if self.band_until_s <= now_s:  # costly to ask: not again for a while
                    self._band_retry_s = now_s + BAND_RETRY_S

    def _held_by_averages(self, now_s: float) -> bool:
        """Whether this tick (its buckets written) provably decides what the last one did.

        After a tick with replicas at their count, ``KpaRevision.hold`` gives a band; while
        both window averages lie in it, with the same replicas and annotations, the KPA would
        decide the same again and change none of its state but the windows, so its ``decide``
        is not called, only told the time (annotation changes resize its windows at the time
        it last saw). The rest of the tick runs as ever (the skips of quiet and steady spells
        read only what the two decisions share).
        """
        hold = self._hold
        holding = self._holding
        if hold is None or holding is None or not holding.holds(hold, now_s, self.ready):
            return False
        if now_s - self._hold_checked_s >= HOLD_RECHECK_S:
            # every bucket in the band too? then the next ticks need only look at new ones
            self._hold_checked_s = now_s
            if holding.holds_every_bucket(hold, now_s):
                self._hold_bucketed = True
                self._hold_last_s = self.last_record_s
        return True

    def _held_by_buckets(self, now_s: float) -> bool:
        """``_held_by_averages`` without writing the buckets to the KPA: while every bucket the
        windows average lies in the band, so do the averages. The windows held every bucket
        in it at the last check, and each tick's buckets are those of the tick before, less
        the oldest, plus the seconds recorded since (still pending) and, at one pod's target
        or less, seconds not recorded (zeros)."""
        hold = self._hold
        holding = self._holding
        if not self._hold_bucketed or holding is None or not holding.holds_for(hold, self.ready):
            return False
        seen = self._hold_seen
        seconds, values = self._pending_s[seen:], self._pending_c[seen:]
        self._hold_seen += len(seconds)
        if hold.low > 0.0:
            # every second since the last check recorded (no zero), and in the band
            last = self._hold_last_s
            if (
                not seconds
                or seconds[0] != last + 1.0
                or seconds[-1] != math.floor(now_s) - 1.0
                or len(seconds) != seconds[-1] - last
                or min(values) < hold.low
                or max(values) > hold.high
            ):
                self._hold_bucketed = False
                return False
            self._hold_last_s = seconds[-1]
            return True
        if values and max(values) > hold.high:
            self._hold_bucketed = False
            return False
        # and a second well above zero in the window: the latest such is on the max-queue
        oldest = math.floor(now_s) - hold.buckets + 1
        for second, value in reversed(self._peaks):
            if value >= hold.need:
                return second >= oldest
        return False

    def poke(self, now_s: float, in_system: float) -> None:
        """A request reached the revision at zero: the activator asks for a decision now."""
        self.flush_records()
        desired = self.kpa.poke(now_s, in_system, self.ready)
        self._apply(desired, now_s)

    def busy(self, now_s: float) -> None:
        """A request arrived: any quiet spell ends, the KPA sees zeros for the skipped seconds."""
        self.idle_since = None
        if self.quiet:
            self._end_quiet(now_s)

    def _end_quiet(self, now_s: float) -> None:
        """Back to ticking on the grid; the seconds skipped reach the KPA as the zeros they were."""
        self.quiet = False
        self._zeros_through(math.floor(now_s) - 1.0)
        self.align_kpa(now_s)

    def idle(self, now_s: float) -> None:
        """The last request in the system finished."""
        if self.idle_since is None:
            self.idle_since = now_s

    def _kpa_tick_before(self, now_s: float) -> float:
        """The last KPA tick on the grid before a policy tick at ``now_s`` (at the same time,
        the exact engine ticks the KPA first and the fluid engine the policy)."""
        tick = math.floor(now_s / KPA_TICK_S) * KPA_TICK_S
        return tick - KPA_TICK_S if self.policy_before_kpa and tick == now_s else tick

    def align_kpa(self, now_s: float) -> None:
        """After a jump over a resting spell: the next KPA tick on the shared 2 s grid."""
        self.next_kpa_s = math.floor(now_s / KPA_TICK_S) * KPA_TICK_S + KPA_TICK_S

    def wake_policy(self, now_s: float) -> None:
        self.next_policy_s = max(now_s, self.policy.next_tick_s(now_s))

    def policy_tick(self, now_s: float, arrivals_s: np.ndarray) -> None:
        """Give the policy its observation of the interval since its last tick."""
        interval = max(now_s - self._obs_start_s, 1e-9)
        if self._obs_latencies or self._obs_latency_arrays:
            parts = [np.asarray(self._obs_latencies, dtype=np.float64), *self._obs_latency_arrays]
            lat = np.concatenate(parts) if len(parts) > 1 else parts[0]
            n_done = int(lat.size)
            lat_sum_s = float(np.add.reduce(lat)) if n_done else 0.0  # as lat.sum()
            counts = latency_counts(lat)
        else:  # none finished: no array to build
            n_done, lat_sum_s, counts = 0, 0.0, _NO_COUNTS
        per_replica = self._obs_insys_s / self._obs_ready_s if self._obs_ready_s > 0 else 0.0
        from_completions = self.concurrency_from_completions and n_done > 0
        if from_completions and self._obs_ready_s > 0:
            # the queue-proxies' request time of those that finished, over the ready
            # replicas' time (with none finished, the time-weighted figure stands in for what
            # the sources read of requests in flight)
            per_replica = lat_sum_s / self._obs_ready_s
        target = self.annotations.get("autoscaling.knative.dev/target")
        util = self.annotations.get("autoscaling.knative.dev/target-utilization-percentage")
        observation = RevisionObservation(
            t_s=now_s,
            interval_s=interval,
            ready_replicas=self.ready,
            avg_concurrency_per_replica=per_replica,
            request_count=n_done,
            latency_counts=counts,
            applied_target=float(target) if target is not None else None,
            target_utilization_percentage=float(util) if util is not None else 70.0,
            arrivals_s=tuple(arrivals_s.tolist()),
            latency_sum_ms=lat_sum_s * 1000.0,
            sum_matches_counts=True,
            concurrency_from_completions=from_completions,
            container_concurrency=self.model.container_concurrency,
        )
        self._obs_start_s = now_s
        self._obs_insys_s = self._obs_ready_s = 0.0
        self._obs_latencies = []
        self._obs_latency_arrays = []
        patch = self.policy.tick(now_s, observation)
        if patch is not None and patch != self.annotations:
            self.annotations = dict(patch)
            in_spell = self.quiet or self.steady_skip
            if in_spell:
                # The KPA as ticking leaves it at its last tick before this policy tick: its
                # zeros written and its time noted, so the windows resize as they would.
                last_tick = self._kpa_tick_before(now_s)
                self._end_spell(last_tick)
                if self._holding is not None:
                    self._holding.note_time(last_tick)
            self.flush_records()
            self.kpa.update_annotations(self.annotations)
            if in_spell:  # new annotations may change the decision: tick on the grid again
                self.next_kpa_s = last_tick + KPA_TICK_S
            elif self.replicas == 0 and self.desired == 0:
                # At rest nothing ticks the KPA; Knative reconciles the autoscaler when the
                # annotations change, so a pre-warm min-scale takes effect now, not at the next
                # request.
                self.kpa_tick(now_s)
        self.next_policy_s = max(now_s + 1e-6, self.policy.next_tick_s(now_s))
