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
from bisect import bisect_left
from dataclasses import dataclass, field
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
    # by percentile: the one read from its buckets and the mean latency when that rank lies
    # past the last bound (see beyond_last_bound). A bin is never changed (``add`` makes a new
    # one), and every tick reads every bin of the curve again.
    read: dict[float, tuple[float | None, float | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # its text in the checkpoint, once written (``checkpoint.encode_checkpoint``): a bin is
    # never changed, and most bins of a curve are the same from one tick to the next
    encoded: str | None = field(default=None, init=False, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class LatencyPoint:
    """A point of the learned curve, as of some ``now``."""

    concurrency: float
    latency_ms: float  # the objective's percentile; math.inf beyond the last bucket
    requests: float  # decayed evidence behind the point


@dataclass(frozen=True, slots=True)
class Reference:
    """The learned latency at the lowest concurrencies with enough evidence: its mean and the
    objective's percentile, ms (what ``beyond_last_bound`` scales)."""

    mean_ms: float
    percentile_ms: float


def beyond_last_bound(
    counts: tuple[float, ...], q: float, latency_sum: float | None, reference: Reference | None
) -> float | None:
    """The percentile scaled from the reference, where its rank lies beyond the last bound.

    Past Knative's last bucket (100 s) a histogram holds only a count and its share of the sum,
    and the tail's spread is a guess: requests of one to five minutes, all slowed three times,
    read as meeting an objective they miss by half. Requests that share a processor are slowed
    alike, so a percentile keeps its ratio to the mean: the reference's percentile times the
    growth of the mean. The reference is read where the fewest requests are past the bound.
    For a queueing delay (which narrows the spread) this is high: the safe side. None where the
    rank is in a finite bucket or nothing is known to scale.
    """
    return _scaled(_mean_beyond(counts, q, latency_sum), reference)


def _mean_beyond(counts: tuple[float, ...], q: float, latency_sum: float | None) -> float | None:
    """The mean latency (ms) where the ``q`` rank lies past the last bound, else None."""
    if not counts[-1] > 0 or latency_sum is None:
        return None
    total = math.fsum(counts)
    if total <= 0 or math.fsum(counts[:-1]) >= q / 100.0 * total:
        return None
    return latency_sum / total


def _scaled(mean_ms: float | None, reference: Reference | None) -> float | None:
    if mean_ms is None or reference is None or reference.mean_ms <= 0:
        return None
    return reference.percentile_ms * mean_ms / reference.mean_ms


@dataclass(frozen=True, slots=True)
class LatencyModel:
    ref_s: float = 0.0
    bin_ratio: float = 1.1
    bins: tuple[LatencyBin, ...] = ()  # by increasing index, one bin per index

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
        pos = bisect_left(bins, idx, key=_bin_key)  # bins are ordered by index
        if pos < len(bins) and bins[pos].index == idx:
            old = bins[pos]
            bins[pos] = LatencyBin(
                idx,
                old.weight + total * w,
                old.concurrency_sum + concurrency * total * w,
                tuple([a + b * w for a, b in zip(old.counts, counts, strict=True)]),
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
                    tuple([c * w for c in counts]),
                    tail_sum * w,
                    None if latency_sum is None else latency_sum * w,
                ),
            )
        return LatencyModel(model.ref_s, model.bin_ratio, tuple(bins))

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
        return decay.weight_now(sum([b.weight for b in self.bins]), now_s, self.ref_s, half_life_s)

    def points(
        self,
        q: float,
        now_s: float,
        half_life_s: float,
        min_requests: float = 0.0,
        reference: Reference | None = None,
        min_concurrency: float = 0.0,
    ) -> list[LatencyPoint]:
        """The learned curve, by increasing concurrency: bins with at least ``min_requests``
        (beyond the last bound, at least the reference scaled: ``beyond_last_bound``), at
        ``min_concurrency`` or more."""
        out = []
        now = decay.weight_now(1.0, now_s, self.ref_s, half_life_s)  # one factor for all bins
        for b in self.bins:
            weight = b.weight
            requests = weight * now
            if requests < min_requests or weight <= 0:
                continue
            concurrency = b.concurrency_sum / weight
            if concurrency < min_concurrency:
                continue
            p = _bin_percentile(b, q, reference)
            if p is not None:
                out.append(LatencyPoint(concurrency, p, requests))
        return out

    def point_at(
        self,
        concurrency: float,
        q: float,
        now_s: float,
        half_life_s: float,
        reference: Reference | None = None,
    ) -> LatencyPoint | None:
        """The learned point of the bin holding ``concurrency``, if any."""
        if concurrency <= 0:
            return None
        idx = self.bin_index(concurrency)
        pos = bisect_left(self.bins, idx, key=_bin_key)  # bins are ordered by index
        if pos == len(self.bins):
            return None
        b = self.bins[pos]
        if b.index != idx or not b.weight > 0:
            return None
        p = _bin_percentile(b, q, reference)
        if p is None:
            return None
        requests = decay.weight_now(b.weight, now_s, self.ref_s, half_life_s)
        return LatencyPoint(b.concurrency_sum / b.weight, p, requests)

    def reference(
        self, q: float, now_s: float, half_life_s: float, min_requests: float
    ) -> Reference | None:
        """The lowest-concurrency bins with whole sums, taken together until they hold
        ``min_requests``: None if all of them hold fewer, or if no bin has a request past the
        last bound (there is nothing to scale)."""
        for b in self.bins:
            if b.counts[-1] > 0:
                break
        else:
            return None
        weight = total = tail = 0.0
        counts = [0.0] * N_LATENCY_COUNTS
        for b in self.bins:  # ordered by concurrency
            if b.latency_sum is None or b.weight <= 0:
                continue
            weight += b.weight
            total += b.latency_sum
            tail += b.tail_sum
            counts = [a + c for a, c in zip(counts, b.counts, strict=True)]
            if decay.weight_now(weight, now_s, self.ref_s, half_life_s) >= min_requests:
                p = _percentile(tuple(counts), q, tail, total)
                if p is None or not math.isfinite(p) or not total > 0:
                    return None
                return Reference(total / weight, p)
        return None


def at_least_scaled(
    p: float | None,
    counts: tuple[float, ...],
    q: float,
    latency_sum: float | None,
    reference: Reference | None,
) -> float | None:
    """``p`` read from the buckets, raised to ``beyond_last_bound`` where that is higher."""
    scaled = beyond_last_bound(counts, q, latency_sum, reference)
    return p if p is None or scaled is None else max(p, scaled)


def _bin_percentile(b: LatencyBin, q: float, reference: Reference | None) -> float | None:
    got = b.read.get(q)
    if got is None:
        got = b.read[q] = (
            percentile_from_counts(b.counts, q, tail_sum=b.tail_sum, latency_sum=b.latency_sum),
            _mean_beyond(b.counts, q, b.latency_sum),
        )
    p, mean_beyond = got
    if p is None or mean_beyond is None:  # nothing past the last bound to scale
        return p
    scaled = _scaled(mean_beyond, reference)
    return p if scaled is None else max(p, scaled)


def _bin_key(b: LatencyBin) -> int:
    return b.index


def _plus(old: float | None, new: float | None, w: float) -> float | None:
    return None if old is None or new is None else old + new * w


def _times(v: float | None, f: float) -> float | None:
    return None if v is None else v * f


def empty_counts() -> tuple[float, ...]:
    return (0.0,) * N_LATENCY_COUNTS


@lru_cache(maxsize=4096)
def _percentile(
    counts: tuple[float, ...], q: float, tail_sum: float, latency_sum: float | None
) -> float | None:
    """The reference's percentile: a pure function of the lowest bins' counts, read again at
    every tick while they are unchanged."""
    return percentile_from_counts(counts, q, tail_sum=tail_sum, latency_sum=latency_sum)
