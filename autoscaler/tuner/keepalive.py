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
  default, up to the 1 h retention limit plus the stable window), and
- pre-warm: unloaded after the floor, loaded ``lead`` seconds (cold start plus one tick)
  before each bin edge H and kept until each later edge T,

each widened by ``window_margin_fraction``, and takes the one with the least expected cost
per idle period (keep-alive on a tie). The best pre-warm's cost also counts a few pseudo idle
periods that end in its unloaded gap (``prewarm_gap_prior``): a few idle periods with none in
the gap do not show that none will end there, and each that does is a cold start the pre-warm
added. With too few idle periods it falls back to ``fallback_keep_alive_s``, never below
Knative's default: no scale-to-zero for lack of data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from autoscaler.tuner.idle import IdleHistogram, idle_edges_s
from autoscaler.tuner.settings import KeepAliveSettings
from autoscaler.tuner.spec import MAX_RETENTION_S
from autoscaler.tuner.windows import KeepAliveWindows


@dataclass(frozen=True, slots=True)
class LearnedKeepAlive:
    settings: KeepAliveSettings
    prewarm_enabled: bool = True
    tick_period_s: float = 30.0

    @property
    def floor_s(self) -> float:
        """How long Knative keeps a replica after the last request with no retention set."""
        return self.settings.stable_window_s + self.settings.scale_to_zero_grace_period_s

    @property
    def lead_s(self) -> float:
        return self.settings.cold_start_s + self.tick_period_s

    def decide(self, hist: IdleHistogram, now_s: float) -> KeepAliveWindows:
        """The windows for the idle periods learned as of ``now_s``."""
        s = self.settings
        if hist.count < s.min_idle_samples:
            keep = max(self.floor_s, s.fallback_keep_alive_s)
            return KeepAliveWindows(
                0.0,
                keep,
                "fallback",
                f"{hist.count} idle period(s) seen, {s.min_idle_samples} needed: "
                f"keep-alive {keep:.0f} s (fallback)",
            )
        price = self.cold_start_price(hist)
        p, lower, upper, overflow_known = idle_bins(hist, s.window_margin_fraction)
        mid = (lower + upper) / 2
        best = self._best_keep_alive(p, lower, upper, mid, price)
        if self.prewarm_enabled:
            pre = self._best_prewarm(p, lower, upper, mid, price, overflow_known)
            if pre is not None:
                n = hist.effective_count(now_s, s.idle_half_life_s)
                cost = self._with_gap_prior(pre[0], n, p, lower, upper, price)
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
        self,
        cost: float,
        n: float,
        p: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        price: float,
    ) -> float:
        """A pre-warm's expected cost with ``a`` pseudo idle periods that end in its unloaded
        gap: each kept to Knative's floor, then a cold start. A few idle periods, none of them
        in the gap, do not show that none will end there. ``a`` is ``prewarm_gap_prior`` times
        the idle periods' coefficient of variation (capped at 1), so regular ones (a timer's)
        are trusted at once; ``n`` is the decayed count of idle periods seen."""
        a = self.settings.prewarm_gap_prior * min(1.0, idle_cv(p, lower, upper))
        if a <= 0:
            return cost
        return (n * cost + a * (self.floor_s + price)) / (n + a)

    def cold_start_price(self, hist: IdleHistogram) -> float:
        """A cold start's cost: the configured price, times the share of the model's requests
        it delays (those that come within a cold start of an idle period's end, of those an
        idle period stands for) against one request in ``cold_start_share_requests``."""
        s = self.settings
        share = hist.woken_per_idle() / hist.requests_per_idle()
        return s.cold_start_cost_replica_s * s.cold_start_share_requests * share

    def _best_keep_alive(
        self, p: np.ndarray, lower: np.ndarray, upper: np.ndarray, mid: np.ndarray, price: float
    ) -> tuple[float, KeepAliveWindows]:
        s = self.settings
        m = 1.0 + s.window_margin_fraction
        max_cover = s.stable_window_s + MAX_RETENTION_S
        # Candidate covers: the floor and each bin's upper edge that fits under the limit.
        cands = np.unique(np.concatenate(([self.floor_s], upper[(upper * m <= max_cover)])))
        cands = cands[cands >= self.floor_s]
        # covered[k, i]: bin i lies wholly under candidate k.
        covered = upper[None, :] <= cands[:, None] * m + 1e-9
        covered |= upper[None, :] <= self.floor_s
        cover = np.minimum(cands * m, max_cover)[:, None]
        memory = np.where(covered, np.minimum(mid[None, :], cover), cover)
        cost = (p * (memory + np.where(covered, 0.0, price))).sum(axis=1)
        k = int(np.argmin(cost))
        keep = float(cover[k, 0]) if cands[k] > self.floor_s else self.floor_s
        miss = float((p * ~covered[k]).sum())
        return float(cost[k]), KeepAliveWindows(
            0.0,
            keep,
            "keep-alive",
            f"keep-alive {keep:.0f} s covers {1 - miss:.0%} of idle periods "
            f"(expected cost {cost[k]:.0f} replica-s per idle period)",
        )

    def _best_prewarm(
        self,
        p: np.ndarray,
        lower: np.ndarray,
        upper: np.ndarray,
        mid: np.ndarray,
        price: float,
        overflow_known: bool = True,
    ) -> tuple[float, KeepAliveWindows] | None:
        s = self.settings
        floor = self.floor_s
        margin = s.window_margin_fraction
        # Pre-warm is worth considering only where loading ahead leaves a real unloaded gap.
        a_idx = np.nonzero(lower * (1 - margin) - self.lead_s > floor)[0]
        if a_idx.size == 0:
            return None
        b_idx = np.arange(len(lower))
        load = lower[a_idx] * (1 - margin) - self.lead_s  # when the replica starts loading
        until = upper * (1 + margin)
        # Prefix sums make each (H, T) pair O(1): cum[i] = sum of the first i bins.
        cum_p = np.concatenate(([0.0], np.cumsum(p)))
        cum_pm = np.concatenate(([0.0], np.cumsum(p * mid)))
        # A bin is cold on Knative's default when any of it lies past the floor: a bin that
        # straddles it (floor 12 s, bin [10, 20): an idle period of 17 s) is not covered.
        cum_cold = np.concatenate(([0.0], np.cumsum(np.where(upper > floor + 1e-9, p, 0.0))))
        base = float((p * np.minimum(mid, floor)).sum())
        a2, b2 = a_idx[:, None], b_idx[None, :]
        # idle periods ending after T: cold. Clamped at 0: a total a rounding above 1 would
        # make every T past the last idle period seen look cheaper the later it is
        after = np.maximum(1.0 - cum_p[b2 + 1], 0.0)
        before = cum_cold[a2]  # idle periods ending between the floor and H: cold
        inside_p = cum_p[b2 + 1] - cum_p[a2]
        inside_pm = cum_pm[b2 + 1] - cum_pm[a2]
        warm = inside_pm - load[:, None] * inside_p + after * (until[b2] - load[:, None])
        loads = np.maximum(1.0 - cum_p[a2], 0.0)  # each idle period reaching H: one start
        cost = base + warm + (before + after) * price + loads * s.prewarm_overhead_replica_s
        cost = np.where(b2 >= a2, cost, np.inf)
        if not overflow_known:  # no window ends in the overflow bin when its end is not known
            cost[:, -1] = np.inf
        ai, bi = np.unravel_index(int(np.argmin(cost)), cost.shape)
        best = float(cost[ai, bi])
        if not np.isfinite(best):
            return None
        a, b = int(a_idx[ai]), int(b_idx[bi])
        warm_from = float(lower[a] * (1 - margin))
        warm_until = float(until[b])
        miss = float(before[ai, 0] + after[0, bi])
        return best, KeepAliveWindows(
            warm_from,
            warm_until,
            "pre-warm",
            f"pre-warm {warm_from:.0f}-{warm_until:.0f} s after the last request covers "
            f"{1 - miss:.0%} of idle periods (bins {lower[a]:.0f}-{upper[b]:.0f} s; expected "
            f"cost {best:.0f} replica-s per idle period)",
        )


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
    lower = np.asarray(idle_edges_s())
    overflow_s = float(lower[-1])
    over = [x for x in hist.recent_s if x >= overflow_s]
    if not over:
        upper = np.append(lower[1:], overflow_s * UNKNOWN_OVERFLOW_RATIO)
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


def idle_cv(p: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Coefficient of variation of idle times with bin shares ``p``, each bin's times spread
    evenly over it (so one wide bin still counts its width); 1 when there is nothing to read."""
    mid = (lower + upper) / 2
    mean = float((p * mid).sum())
    if mean <= 0:
        return 1.0
    var = float((p * ((mid - mean) ** 2 + (upper - lower) ** 2 / 12.0)).sum())
    return float(np.sqrt(var)) / mean
