"""The baseline keep-alive policy: the hybrid histogram of "Serverless in the Wild".

USENIX ATC 2020, as summarised in ../shared/reference/knative-kserve.md section 7:
per app, idle times in 1-minute bins up to 4 h; pre-warm at the 5th percentile minus 10 % and
keep alive to the 99th percentile plus 10 %; a long fixed keep-alive (the histogram's whole
range) when the histogram is not representative (too few samples, or bin counts too evenly
spread: coefficient of variation below a threshold); and a forecast of the next idle time when
most idle times exceed the range. The forecast here is the mean of the recent out-of-range idle
times (the paper fits a time-series model); it is kept simple on purpose, since the simulator
uses this class as the yardstick, not as a product. Counts do not decay, as in the paper.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.tuner.windows import KeepAliveWindows, WindowKind


@dataclass(frozen=True, slots=True)
class HybridHistogram:
    counts: tuple[int, ...] = ()  # per 1-minute bin, empty until the first sample
    out_of_range: int = 0
    recent_out_of_range_s: tuple[float, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.counts) + self.out_of_range


@dataclass(frozen=True, slots=True)
class HybridHistogramPolicy:
    bin_s: float = 60.0
    range_s: float = 4 * 3600.0
    head_percentile: float = 5.0
    tail_percentile: float = 99.0
    margin_fraction: float = 0.1
    cv_threshold: float = 2.0
    min_samples: int = 5
    out_of_range_fraction: float = 0.5
    forecast_margin_fraction: float = 0.15

    @property
    def n_bins(self) -> int:
        return math.ceil(self.range_s / self.bin_s)

    def record(self, hist: HybridHistogram, idle_s: float) -> HybridHistogram:
        return self.record_many(hist, [idle_s])

    def record_many(self, hist: HybridHistogram, idle_s: list[float]) -> HybridHistogram:
        """The histogram with each idle time recorded in turn (one copy of the counts)."""
        if not idle_s:
            return hist
        counts = list(hist.counts)
        out, recent = hist.out_of_range, hist.recent_out_of_range_s
        for v in idle_s:
            if v >= self.range_s:
                out += 1
                recent = (*recent, v)[-8:]
            else:
                if not counts:
                    counts = [0] * self.n_bins
                counts[int(v // self.bin_s)] += 1
        return HybridHistogram(tuple(counts), out, recent)

    def decide(self, hist: HybridHistogram) -> KeepAliveWindows:
        total = hist.total
        if total and hist.out_of_range / total > self.out_of_range_fraction:
            pred = sum(hist.recent_out_of_range_s) / len(hist.recent_out_of_range_s)
            m = self.forecast_margin_fraction
            return KeepAliveWindows(
                pred * (1 - m),
                pred * (1 + m),
                "forecast",
                f"most idle times exceed {self.range_s / 3600:g} h: forecast {pred:.0f} s",
            )
        in_range = total - hist.out_of_range
        if in_range < self.min_samples:
            return KeepAliveWindows(
                0.0, self.range_s, "long", f"{in_range} samples: keep alive the whole range"
            )
        cv = _cv(hist.counts)
        if cv < self.cv_threshold:
            return KeepAliveWindows(
                0.0,
                self.range_s,
                "long",
                f"bin counts spread out (CV {cv:.2f}): keep alive the whole range",
            )
        head = self._percentile_edge(hist.counts, self.head_percentile, upper=False)
        tail = self._percentile_edge(hist.counts, self.tail_percentile, upper=True)
        warm_from = head * (1 - self.margin_fraction)
        warm_until = max(warm_from, tail * (1 + self.margin_fraction))
        kind: WindowKind = "pre-warm" if warm_from > 0 else "keep-alive"
        return KeepAliveWindows(
            warm_from, warm_until, kind, f"head {head:.0f} s, tail {tail:.0f} s (CV {cv:.2f})"
        )

    def _percentile_edge(self, counts: tuple[int, ...], pct: float, *, upper: bool) -> float:
        n = sum(counts)
        rank = pct / 100.0 * n
        cum = 0
        for i, c in enumerate(counts):
            cum += c
            if c and cum >= rank:
                return (i + 1 if upper else i) * self.bin_s
        return self.range_s


def _cv(counts: tuple[int, ...]) -> float:
    n = len(counts)
    total = sum(counts)
    if total == 0:
        return 0.0
    mean = total / n
    # sum((c - mean)^2) over the bins, with the empty ones (most of them) taken together
    var = (
        sum((c - mean) ** 2 for c in counts if c) + (n - sum(1 for c in counts if c)) * mean**2
    ) / n
    return math.sqrt(var) / mean
