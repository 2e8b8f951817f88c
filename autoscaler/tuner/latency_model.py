"""Model: latency against per-replica concurrency, binned by concurrency.

Each interval's latency histogram goes into the bin of the interval's average per-replica
concurrency (bins are geometric: with ``bin_ratio`` 1.1 a bin spans 10 %). A bin keeps the
histogram counts, the latency summed beyond the last bound (the +Inf bucket's share of the
histogram's sum, so percentiles past 100 s stay finite) and the request-weighted mean
concurrency of what fell in it, all with
decaying weights (``decay``), so recent behaviour counts more and old evidence fades. The
model is immutable: ``add`` returns a new one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

from autoscaler.tuner import decay
from autoscaler.tuner.observation import N_LATENCY_COUNTS
from autoscaler.tuner.percentile import percentile_from_counts


@dataclass(frozen=True, slots=True)
class LatencyBin:
    """One concurrency bin: decayed request weight, concurrency sum and bucket counts."""

    index: int
    weight: float
    concurrency_sum: float
    counts: tuple[float, ...]
    tail_sum: float = 0.0  # decayed ms summed over the +Inf bucket's requests
    # decayed ms summed over all its requests; None once an interval without a sum was added
    latency_sum: float | None = None


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """A point of the learned curve, as of some ``now``."""

    concurrency: float
    latency_ms: float  # the objective's percentile; math.inf beyond the last bucket
    requests: float  # decayed evidence behind the point


@dataclass(frozen=True, slots=True)
class LatencyModel:
    ref_s: float = 0.0
    bin_ratio: float = 1.1
    bins: tuple[LatencyBin, ...] = ()

    def bin_index(self, concurrency: float) -> int:
        return math.floor(math.log(concurrency) / math.log(self.bin_ratio))

    def add(
        self,
        t_s: float,
        concurrency: float,
        counts: tuple[float, ...],
        half_life_s: float,
        tail_sum: float = 0.0,
        latency_sum: float | None = None,
    ) -> LatencyModel:
        """The model with one interval's histogram (its +Inf bucket's latency sum and its
        whole sum, ms, if known) added at ``concurrency``."""
        total = math.fsum(counts)
        if concurrency <= 0 or total <= 0:
            return self
        model = self
        if decay.needs_rebase(t_s, self.ref_s, half_life_s):
            model = self.rebased(t_s, half_life_s)
        w = decay.sample_weight(t_s, model.ref_s, half_life_s)
        idx = model.bin_index(concurrency)
        bins = list(model.bins)
        pos = next((i for i, b in enumerate(bins) if b.index >= idx), len(bins))
        if pos < len(bins) and bins[pos].index == idx:
            old = bins[pos]
            bins[pos] = LatencyBin(
                idx,
                old.weight + total * w,
                old.concurrency_sum + concurrency * total * w,
                tuple(a + b * w for a, b in zip(old.counts, counts, strict=True)),
                old.tail_sum + tail_sum * w,
                _plus(old.latency_sum, latency_sum, w),
            )
        else:
            bins.insert(
                pos,
                LatencyBin(
                    idx,
                    total * w,
                    concurrency * total * w,
                    tuple(c * w for c in counts),
                    tail_sum * w,
                    None if latency_sum is None else latency_sum * w,
                ),
            )
        return replace(model, bins=tuple(bins))

    def rebased(self, new_ref_s: float, half_life_s: float) -> LatencyModel:
        f = decay.rebase_factor(new_ref_s, self.ref_s, half_life_s)
        return LatencyModel(
            new_ref_s,
            self.bin_ratio,
            tuple(
                LatencyBin(
                    b.index,
                    b.weight * f,
                    b.concurrency_sum * f,
                    tuple(c * f for c in b.counts),
                    b.tail_sum * f,
                    _times(b.latency_sum, f),
                )
                for b in self.bins
            ),
        )

    def scaled(self, factor: float) -> LatencyModel:
        """The same curve with its evidence times ``factor`` (a new revision's start)."""
        return LatencyModel(
            self.ref_s,
            self.bin_ratio,
            tuple(
                LatencyBin(
                    b.index,
                    b.weight * factor,
                    b.concurrency_sum * factor,
                    tuple(c * factor for c in b.counts),
                    b.tail_sum * factor,
                    _times(b.latency_sum, factor),
                )
                for b in self.bins
            ),
        )

    def evidence(self, now_s: float, half_life_s: float) -> float:
        """Total decayed requests as of ``now_s``."""
        return decay.weight_now(sum(b.weight for b in self.bins), now_s, self.ref_s, half_life_s)

    def points(
        self, q: float, now_s: float, half_life_s: float, min_requests: float = 0.0
    ) -> list[LatencyPoint]:
        """The learned curve, by increasing concurrency: bins with at least ``min_requests``."""
        out = []
        for b in self.bins:
            requests = decay.weight_now(b.weight, now_s, self.ref_s, half_life_s)
            if requests < min_requests or b.weight <= 0:
                continue
            p = _percentile(b.counts, q, b.tail_sum, b.latency_sum)
            if p is None:
                continue
            out.append(LatencyPoint(b.concurrency_sum / b.weight, p, requests))
        return out

    def point_at(
        self, concurrency: float, q: float, now_s: float, half_life_s: float
    ) -> LatencyPoint | None:
        """The learned point of the bin holding ``concurrency``, if any."""
        if concurrency <= 0:
            return None
        idx = self.bin_index(concurrency)
        for b in self.bins:
            if b.index == idx and b.weight > 0:
                p = _percentile(b.counts, q, b.tail_sum, b.latency_sum)
                if p is None:
                    return None
                requests = decay.weight_now(b.weight, now_s, self.ref_s, half_life_s)
                return LatencyPoint(b.concurrency_sum / b.weight, p, requests)
        return None


@lru_cache(maxsize=4096)
def _percentile(
    counts: tuple[float, ...], q: float, tail_sum: float, latency_sum: float | None
) -> float | None:
    """A bin's percentile: a pure function of its counts, read again at every tick while the
    bin is unchanged (decay scales counts and sums alike and leaves it as it is)."""
    return percentile_from_counts(counts, q, tail_sum=tail_sum, latency_sum=latency_sum)


def _plus(old: float | None, new: float | None, w: float) -> float | None:
    return None if old is None or new is None else old + new * w


def _times(v: float | None, f: float) -> float | None:
    return None if v is None else v * f


def empty_counts() -> tuple[float, ...]:
    return (0.0,) * N_LATENCY_COUNTS
