"""Our keep-alive and pre-warm policy: the cheapest windows for the learned idle times.

Where the baseline (``hybrid_baseline``) reads two percentiles, this policy prices each
choice. A cold start costs ``cold_start_cost_replica_s`` (seconds of one idle replica's
memory) when it delays one request in ``cold_start_share_requests``, and in proportion to the
share of the model's requests it delays (those that come within a cold start of the idle
period's end, of those an idle period stands for): five times that for a model called once per
idle period, a fifth for one called 25 times one at a time, next to nothing for a busy model
that rests only at night and comes back slowly; keeping a replica warm costs its
seconds; each pre-warm start costs ``prewarm_overhead_replica_s``. Over the learned idle-time
shares it evaluates

- keep-alive to each bin edge K (from Knative's floor, stable window + grace, 90 s by
  default, up to ``max_keep_alive_s``, a day: past Knative's 1 h retention limit plus the
  stable window the plan holds min-scale 1 for the rest), and
- pre-warm: unloaded after the floor, loaded ``lead`` seconds (cold start plus one tick)
  before each bin edge H and kept until each later edge T,

each widened by ``window_margin_fraction``, and takes the one with the least expected cost
per idle period (keep-alive on a tie). The best pre-warm's cost also counts a few pseudo idle
periods that end in its unloaded gap (``prewarm_gap_prior``): a few idle periods with none in
the gap do not show that none will end there, and each that does is a cold start the pre-warm
added. With too few idle periods (and those not regular, as a timer's: ``regular``) it falls
back to ``fallback_keep_alive_s``, never below Knative's default: no scale-to-zero for lack of
data.

Every price is quoted for a replica of ``reference_memory_mb``. Knowing the replica's memory
(its containers' memory requests), the policy weighs its seconds by the ratio: a 4 GB replica's
idle minute costs eight times a 512 MB one's, so at the same idle times the small model is kept
warm longer and the large one shorter, and the thin-history fallback scales the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cache, lru_cache

import numpy as np

from autoscaler.tuner.idle import IdleHistogram, idle_edges_s
from autoscaler.tuner.settings import KeepAliveSettings
from autoscaler.tuner.windows import KeepAliveWindows


@dataclass(frozen=True, slots=True)
class LearnedKeepAlive:
    settings: KeepAliveSettings
    prewarm_enabled: bool = True
    tick_period_s: float = 30.0
    # the replica's memory over ``reference_memory_mb``, the memory the prices are quoted
    # for (1: not known, or memory not weighed): a replica of twice the memory costs twice as
    # much to keep warm, so a cold start is worth half its seconds (a pre-warm start's cost is
    # in the replica's own seconds: a start holds its memory however large)
    memory_ratio: float = 1.0

    @staticmethod
    def ratio_for(settings: KeepAliveSettings, memory_mb: float | None) -> float:
        """``memory_ratio`` for a replica of ``memory_mb`` (None or not positive: unknown)."""
        ref = settings.reference_memory_mb
        if ref <= 0 or memory_mb is None or not memory_mb > 0 or not math.isfinite(memory_mb):
            return 1.0
        return memory_mb / ref

    @property
    def floor_s(self) -> float:
        """How long Knative keeps a replica after the last request with no retention set."""
        return self.settings.stable_window_s + self.settings.scale_to_zero_grace_period_s

    @property
    def lead_s(self) -> float:
        return self.settings.cold_start_s + self.tick_period_s

    @property
    def fallback_s(self) -> float:
        """Keep-alive while history is thin: ``fallback_keep_alive_s`` for a replica of the
        reference memory, longer for a smaller one and shorter for a larger one, between
        Knative's floor and ``max_keep_alive_s``."""
        s = self.settings
        return max(
            self.floor_s, min(s.fallback_keep_alive_s / self.memory_ratio, s.max_keep_alive_s)
        )

    def _memory_note(self) -> str:
        if self.memory_ratio == 1.0:
            return ""
        mb = self.memory_ratio * self.settings.reference_memory_mb
        return (
            f" (a {mb:.0f} MB replica: its seconds weigh {self.memory_ratio:.2g} times the "
            f"{self.settings.reference_memory_mb:.0f} MB the prices are quoted for)"
        )

    def decide(self, hist: IdleHistogram, now_s: float) -> KeepAliveWindows:
        """The windows for the idle periods learned as of ``now_s``."""
        windows = self._decide(hist, now_s)
        note = self._memory_note()
        return replace(windows, reason=windows.reason + note) if note else windows

    def _decide(self, hist: IdleHistogram, now_s: float) -> KeepAliveWindows:
        s = self.settings
        decayed = not hist.probabilities()  # every weight decayed to nothing
        thin = hist.count < s.min_idle_samples
        regular = thin and self.regular(hist)
        if (thin and not regular) or decayed:
            keep = self.fallback_s
            seen = (
                f"the {hist.count} idle period(s) seen have decayed to no weight (none for "
                "the last thousand idle half-lives)"
                if decayed and hist.count >= s.min_idle_samples
                else f"{hist.count} idle period(s) seen, {s.min_idle_samples} needed"
            )
            return KeepAliveWindows(
                0.0, keep, "fallback", f"{seen}: keep-alive {keep:.0f} s (fallback)"
            )
        windows = self._learned(hist, now_s)
        if regular:
            windows = replace(
                windows,
                reason=f"{hist.count} idle periods seen, within "
                f"{s.regular_idle_spread:.0%} of each other (regular, as a timer's): "
                f"{windows.reason}",
            )
        return windows

    def regular(self, hist: IdleHistogram) -> bool:
        """Whether the recent idle periods kept (``regular_idle_samples`` or more: every one
        seen, or the last ``RECENT_IDLE_KEPT`` when more were) are past Knative's floor and
        within ``regular_idle_spread`` of the shortest: a timer's, worth learning from before
        ``min_idle_samples``. Judged on the recent ones alone past that, so a timer learned
        early stays learned while ``min_idle_samples`` is above the count kept."""
        s = self.settings
        seen = hist.recent_s
        if s.regular_idle_samples <= 0 or len(seen) < s.regular_idle_samples:
            return False
        shortest = min(seen)
        return shortest > self.floor_s and max(seen) <= shortest * (1 + s.regular_idle_spread)

    def _learned(self, hist: IdleHistogram, now_s: float) -> KeepAliveWindows:
        """The cheapest windows for the idle periods learned as of ``now_s``."""
        s = self.settings
        price = self.cold_start_price(hist)
        p, lower, upper, overflow_known = idle_bins(hist, s.window_margin_fraction)
        grid = _candidate_grid(
            lower.tobytes(),
            upper.tobytes(),
            overflow_known,
            self.floor_s,
            s.window_margin_fraction,
            self.lead_s,
            s.max_keep_alive_s,
        )
        best = self._best_keep_alive(p, grid, price)
        if self.prewarm_enabled:
            pre = self._best_prewarm(p, grid, price)
            if pre is not None:
                n = hist.effective_count(now_s, s.idle_half_life_s)
                cost = self._with_gap_prior(pre[0], n, p, grid, price)
                if cost < best[0]:
                    return pre[1]
                if pre[0] < best[0]:  # the prior decided: say so
                    return replace(
                        best[1],
                        reason=f"{best[1].reason}; {pre[1].kind} {pre[1].warm_from_s:.0f}-"
                        f"{pre[1].warm_until_s:.0f} s would cost {pre[0]:.0f}, {cost:.0f} with "
                        f"the gap prior: {n:.1f} idle periods are too few to trust its unloaded gap",
                    )
        return best[1]

    def _with_gap_prior(
        self, cost: float, n: float, p: np.ndarray, grid: _CandidateGrid, price: float
    ) -> float:
        """A pre-warm's expected cost with ``a`` pseudo idle periods that end in its unloaded
        gap: each kept to Knative's floor, then a cold start. A few idle periods, none of them
        in the gap, do not show that none will end there. ``a`` is ``prewarm_gap_prior`` times
        the idle periods' coefficient of variation (capped at 1), so regular ones (a timer's)
        are trusted at once; ``n`` is the decayed count of idle periods seen."""
        a = self.settings.prewarm_gap_prior * min(1.0, _cv(p, grid.mid, grid.spread))
        if a <= 0:
            return cost
        return (n * cost + a * (self.floor_s + price)) / (n + a)

    def cold_start_price(self, hist: IdleHistogram) -> float:
        """A cold start's cost: the configured price, times the share of the model's requests
        it delays (those that come within a cold start of an idle period's end, of those an
        idle period stands for) against one request in ``cold_start_share_requests``, in this
        replica's seconds (the configured price is a reference replica's: ``memory_ratio``)."""
        s = self.settings
        share = hist.woken_per_idle() / hist.requests_per_idle()
        return s.cold_start_cost_replica_s * s.cold_start_share_requests * share / self.memory_ratio

    def _best_keep_alive(
        self, p: np.ndarray, grid: _CandidateGrid, price: float
    ) -> tuple[float, KeepAliveWindows]:
        covered = grid.covered
        cost = (p * (grid.memory + np.where(covered, 0.0, price))).sum(axis=1)
        k = int(cost.argmin())
        keep = float(grid.cover[k, 0]) if grid.cands[k] > self.floor_s else self.floor_s
        miss = float((p * ~covered[k]).sum())
        return float(cost[k]), KeepAliveWindows(
            0.0,
            keep,
            "keep-alive",
            f"keep-alive {keep:.0f} s covers {1 - miss:.0%} of idle periods "
            f"(expected cost {cost[k]:.0f} replica-s per idle period)",
        )

    def _best_prewarm(
        self, p: np.ndarray, grid: _CandidateGrid, price: float
    ) -> tuple[float, KeepAliveWindows] | None:
        if grid.pair_h.size == 0:
            return None
        # Prefix sums make each (H, T) pair O(1): cum[i] = sum of the first i bins.
        cum_p = _prefix_sums(p)
        cum_pm = _prefix_sums(p * grid.mid)
        # A bin is cold on Knative's default when any of it lies past the floor: a bin that
        # straddles it (floor 12 s, bin [10, 20): an idle period of 17 s) is not covered.
        cum_cold = _prefix_sums(np.where(grid.cold, p, 0.0))
        base = float((p * grid.kept_on_floor).sum())
        h, end = grid.pair_h, grid.pair_end  # each pair: bins h to end - 1 warm
        # the idle periods that last past each bin's start. Clamped at 0: a total a rounding
        # above 1 would make every T past the last idle period seen look cheaper the later it is
        reaching = np.maximum(1.0 - cum_p, 0.0)
        after = reaching[end]  # idle periods ending after T: cold
        before = cum_cold[h]  # idle periods ending between the floor and H: cold
        inside_p = cum_p[end] - cum_p[h]
        inside_pm = cum_pm[end] - cum_pm[h]
        warm = inside_pm - grid.load * inside_p + after * grid.warm_after
        loads = reaching[h]  # each idle period reaching H: one start
        cost = (
            base
            + warm
            + (before + after) * price
            + loads * self.settings.prewarm_overhead_replica_s
        )
        i = int(cost.argmin())
        best = float(cost[i])
        if not math.isfinite(best):
            return None
        a, b = int(h[i]), int(grid.pair_t[i])
        lower, upper = grid.lower, grid.upper
        margin = self.settings.window_margin_fraction
        warm_from = float(lower[a] * (1 - margin))
        warm_until = float(grid.until[b])
        miss = float(before[i] + after[i])
        return best, KeepAliveWindows(
            warm_from,
            warm_until,
            "pre-warm",
            f"pre-warm {warm_from:.0f}-{warm_until:.0f} s after the last request covers "
            f"{1 - miss:.0%} of idle periods (bins {lower[a]:.0f}-{upper[b]:.0f} s; expected "
            f"cost {best:.0f} replica-s per idle period)",
        )


@dataclass(frozen=True, slots=True, eq=False)
class _CandidateGrid:
    """What the candidates' costs need that does not depend on the idle-time shares: the same
    for every decision on the same bins and settings (the bins change only with the overflow
    bin's recent lengths), so it is computed once for them (``_candidate_grid``)."""

    lower: np.ndarray  # the bins' edges
    upper: np.ndarray
    mid: np.ndarray
    spread: np.ndarray  # the variance of a time spread evenly over its bin
    # keep-alive: candidate covers K (the floor and each bin's upper edge under the limit)
    cands: np.ndarray
    covered: np.ndarray  # [k, i]: bin i lies wholly under candidate k
    cover: np.ndarray  # [k, 0]: the window K, widened and capped
    memory: np.ndarray  # [k, i]: warm seconds of an idle period in bin i under candidate k
    # pre-warm: loaded ahead of the start of bin H and kept until the end of bin T, for
    # each pair (H, T) with T not before H (nor, when its end is not known, the overflow bin)
    # and a real unloaded gap before H, in order of H, then T
    pair_h: np.ndarray
    pair_t: np.ndarray
    pair_end: np.ndarray  # pair_t + 1
    load: np.ndarray  # by pair: when the replica starts loading
    warm_after: np.ndarray  # by pair: warm seconds of an idle period past T
    until: np.ndarray  # each bin's end, widened
    cold: np.ndarray  # the bins that lie past the floor in part or whole
    kept_on_floor: np.ndarray  # the bins' warm seconds on Knative's floor


@lru_cache(maxsize=256)
def _candidate_grid(
    lower_bytes: bytes,
    upper_bytes: bytes,
    overflow_known: bool,
    floor: float,
    margin: float,
    lead: float,
    max_cover: float,
) -> _CandidateGrid:
    lower, upper = np.frombuffer(lower_bytes), np.frombuffer(upper_bytes)
    mid = (lower + upper) / 2
    m = 1.0 + margin
    cands = np.unique(np.concatenate(([floor], upper[(upper * m <= max_cover)])))
    cands = cands[cands >= floor]
    covered = upper[None, :] <= cands[:, None] * m + 1e-9
    covered |= upper[None, :] <= floor
    cover = np.minimum(cands * m, max_cover)[:, None]
    memory = np.where(covered, np.minimum(mid[None, :], cover), cover)
    # Pre-warm is worth considering only where loading ahead leaves a real unloaded gap.
    starts = np.nonzero(lower * (1 - margin) - lead > floor)[0]
    last = len(lower) if overflow_known else len(lower) - 1
    pairs = [(h, t) for h in starts.tolist() for t in range(h, last)]
    pair_h = np.array([h for h, _ in pairs], dtype=np.intp)
    pair_t = np.array([t for _, t in pairs], dtype=np.intp)
    load = lower[pair_h] * (1 - margin) - lead  # when the replica starts loading
    until = upper * (1 + margin)
    grid = _CandidateGrid(
        lower=lower,
        upper=upper,
        mid=mid,
        spread=(upper - lower) ** 2 / 12.0,
        cands=cands,
        covered=covered,
        cover=cover,
        memory=memory,
        pair_h=pair_h,
        pair_t=pair_t,
        pair_end=pair_t + 1,
        load=load,
        warm_after=until[pair_t] - load,
        until=until,
        cold=upper > floor + 1e-9,
        kept_on_floor=np.minimum(mid, floor),
    )
    for v in grid.__dataclass_fields__:
        getattr(grid, v).flags.writeable = False  # shared by every decision on these bins
    return grid


def _prefix_sums(v: np.ndarray) -> np.ndarray:
    """``out[i]``: the sum of the first ``i`` values (``out[0]`` is 0), as ``np.cumsum`` adds."""
    out = np.zeros(v.size + 1)
    np.cumsum(v, out=out[1:])
    return out


# The overflow bin's end, as a multiple of its start, when no recent idle period says how long
# its periods are: far past any window, so they are never covered (and they make the idle
# times' spread large: an idle period of days among ones of hours is irregular).
UNKNOWN_OVERFLOW_RATIO = 1000.0


def idle_bins(
    hist: IdleHistogram, spread: float = 1.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The idle-time shares and their bins' lower and upper edges, and whether the overflow
    bin's lengths are known.

    The last bin (idle periods of 4 h and longer) has no end of its own. Its share is split
    over the lengths of the recent idle periods in it, each a bin of its own reaching
    ``spread`` below it and not below the next shorter one (1: down to it): recent idle
    periods of 5 h, 5 h, 5 h and 3 days give bins of 4.5 to 5 h and of 2.7 to 3 days (spread
    0.1), with three quarters and a quarter of the share, so a window of hours covers the
    first and not the second (an outlier of days does not price out the window the others
    need); the pre-warm then opens at 4.05 h (the bin's start less the window margin), not at
    3.6 h. With none of the recent ones in it, its length is not known: it ends at
    ``UNKNOWN_OVERFLOW_RATIO`` times its start, past any window.
    """
    p = np.asarray(hist.probabilities())
    lower, upper = _edge_arrays()
    overflow_s = float(lower[-1])
    over = [x for x in hist.recent_s if x >= overflow_s]
    if not over:
        return p, lower, upper, False
    ends, counts = np.unique(np.asarray(over), return_counts=True)  # ascending
    shares = p[-1] * counts / counts.sum()
    starts = np.maximum(np.concatenate(([overflow_s], ends[:-1])), ends * (1.0 - spread))
    return (
        np.concatenate((p[:-1], shares)),
        np.concatenate((lower[:-1], starts)),
        np.concatenate((lower[1:], ends)),
        True,
    )


@cache
def _edge_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bins' lower edges and, the overflow bin's end not known, their upper edges
    (read-only: every ``idle_bins`` shares them)."""
    lower = np.asarray(idle_edges_s())
    upper = np.append(lower[1:], lower[-1] * UNKNOWN_OVERFLOW_RATIO)
    lower.flags.writeable = upper.flags.writeable = False
    return lower, upper


def idle_cv(p: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Coefficient of variation of idle times with bin shares ``p``, each bin's times spread
    evenly over it (so one wide bin still counts its width); 1 when there is nothing to read."""
    return _cv(p, (lower + upper) / 2, (upper - lower) ** 2 / 12.0)


def _cv(p: np.ndarray, mid: np.ndarray, spread: np.ndarray) -> float:
    """``idle_cv`` from the bins' midpoints and the variance within each bin."""
    mean = float((p * mid).sum())
    if mean <= 0:
        return 1.0
    var = float((p * ((mid - mean) ** 2 + spread)).sum())
    return float(np.sqrt(var)) / mean
