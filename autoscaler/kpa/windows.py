"""Time-bucketed windows: the averages the KPA decides on, and the max window of scale-down delay.

Mirrors knative/serving ``pkg/autoscaler/aggregation/bucketing.go`` (``TimedFloat64Buckets``,
``WeightedFloat64Buckets``) and ``aggregation/max/`` (the ascending-minima max window).

A window is a ring of ``ceil(window / granularity)`` buckets; ``record(now, value)`` adds to the
bucket of ``floor(now / granularity)``. The plain average follows Knative exactly:

- a partial window (first write less than a window ago) averages over the buckets since the first
  write: one write of 10 at t=0 read at t=0 gives 10, not 10/60;
- gaps between writes count as zero buckets;
- time after the last write is left out of the divisor: written every second up to t=100 with a
  60 s window and read at t=110, the average is over the 50 buckets t=51..100;
- nothing written for a whole window: the average is 0, and ``is_empty`` once *more* than a
  window has passed (the decider then has no data);
- results are floored to 6 decimals, so 140.0000001 / 70 still needs 2 pods, not 3.

Cost: ``record`` (and ``record_many``, the same writes in one call) and the plain ``window_average`` are O(1) amortised (a write clears only the
buckets skipped since the last one; reads after the last write extend a cached sum). The weighted average walks the ring, O(window buckets) per call, as
Knative's does.
``value_range`` (the smallest and largest bucket an average reads, for
``autoscaler.kpa.horizon``) walks the ring.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

_PRECISION = 1e6  # Knative floors window averages to 6 digits.
_WEIGHT_PRECISION = 0.9999  # the weighted average's weights add up to at least this
_MIN_EXPONENT = 0.2  # and decay at least this fast, so huge windows are not a plain average


def _floor6(x: float) -> float:
    return math.floor(x * _PRECISION) / _PRECISION


_ZEROS: dict[int, list[float]] = {}


def _zeros(n: int) -> list[float]:
    """A shared list of ``n`` zeros to copy from (a ring is cleared in one slice assignment)."""
    zeros = _ZEROS.get(n)
    if zeros is None:
        zeros = _ZEROS[n] = [0.0] * n
    return zeros


def bucket_count(window_s: float, granularity_s: float = 1.0) -> int:
    """How many buckets a window of ``window_s`` holds."""
    return max(1, math.ceil(window_s / granularity_s - 1e-9))


class TimedBuckets:
    """Plain average over a sliding window of fixed-size time buckets."""

    __slots__ = (
        "_buckets",
        "_first",
        "_granularity_s",
        "_last",
        "_tail_sum",
        "_tail_through",
        "_total",
        "window_s",
    )

    def __init__(self, window_s: float, granularity_s: float = 1.0) -> None:
        self.window_s = window_s
        self._granularity_s = granularity_s
        self._buckets = [0.0] * bucket_count(window_s, granularity_s)
        self._first: int | None = None  # bucket index of the first write of this run of data
        self._last: int | None = None  # bucket index of the last write
        self._total = 0.0  # sum of all buckets in the ring
        # Reads after the last write leave out the ring slots for times (last, now]: they hold
        # data a window old. Their sum is cached for (last, _tail_through] until the next write,
        # so an idle revision read every tick costs O(1) amortised, not O(window).
        self._tail_through: int | None = None
        self._tail_sum = 0.0

    def _index(self, now: float) -> int:
        return math.floor(now / self._granularity_s)

    def _reset(self, index: int) -> None:
        for i in range(len(self._buckets)):
            self._buckets[i] = 0.0
        self._total = 0.0
        self._first = index
        self._last = index

    def record(self, now: float, value: float) -> None:
        """Add ``value`` to the bucket of ``now``; values older than a window are dropped."""
        b = math.floor(now / self._granularity_s)
        buckets = self._buckets
        n = len(buckets)
        last = self._last
        self._tail_through = None  # any write may change a slot the tail cache summed
        if b != last:
            if last is None or b - last >= n:
                # First write, or a whole window without data: start a new partial window.
                self._reset(b)
            elif b + n <= last:
                return  # older than the window: ignored, as Knative does
            else:
                if self._first is None or self._first > b:
                    self._first = b
                if b > last:
                    # Zero the slots skipped since the last write (a gap counts as zeros).
                    for i in range(last + 1, b + 1):
                        slot = i % n
                        self._total -= buckets[slot]
                        buckets[slot] = 0.0
                    self._last = b
        buckets[b % n] += value
        self._total += value

    def record_many(self, times: Sequence[float], values: Sequence[float]) -> None:
        """``record(t, v)`` for each pair in order: the same state, one call for a batch.

        The same float operations in the same order as the single writes, so a window fed a
        batch is bit-for-bit the window fed one write at a time (tests/kpa/test_kpa_batch.py).
        """
        if len(times) != len(values):
            raise ValueError(f"record_many: {len(times)} times but {len(values)} values")
        if not times:
            return
        granularity = self._granularity_s
        buckets = self._buckets
        n = len(buckets)
        last, first, total = self._last, self._first, self._total
        self._tail_through = None
        if not any(values) and not any(buckets):
            # Zeros into a ring of zeros (a window no one feeds, e.g. rps when only concurrency
            # is reported): every slot stays +0.0 (a sum of zeros is never -0.0) and the total
            # changes only on a restart, so only the indices move.
            for now in times:
                b = math.floor(now / granularity)
                if b != last:
                    if last is None or b - last >= n:
                        total = 0.0
                        first = last = b
                    elif b + n > last:
                        if first is None or first > b:
                            first = b
                        if b > last:
                            last = b
            self._last, self._first, self._total = last, first, total
            return
        floor = math.floor
        # the bucket after the last write, once a run of data has started: the common case
        after = last + 1 if last is not None and first is not None else None
        for now, value in zip(times, values, strict=True):
            b = floor(now / granularity)
            if b == after:
                # the next second: the general path below, unrolled
                slot = b % n
                total -= buckets[slot]
                buckets[slot] = 0.0 + value
                total += value
                last = b
                after = b + 1
                continue
            if b != last:
                if last is None or b - last >= n:
                    buckets[:] = _zeros(n)  # a new partial window, as in _reset
                    total = 0.0
                    first = last = b
                elif b + n <= last:
                    continue  # older than the window
                else:
                    if first is None or first > b:
                        first = b
                    if b > last:
                        for i in range(last + 1, b + 1):
                            slot = i % n
                            total -= buckets[slot]
                            buckets[slot] = 0.0
                        last = b
            buckets[b % n] += value
            total += value
            after = last + 1 if first is not None else None
        self._last, self._first, self._total = last, first, total

    def is_empty(self, now: float) -> bool:
        """True when nothing was written for more than a window (Knative's ErrNoData)."""
        if self._last is None:
            return True
        return self._index(now) - self._last > len(self._buckets)

    def _stale_tail(self, last: int, index: int) -> float:
        """Sum of the ring slots for times (last, index]: data a window old, not part of it."""
        through = self._tail_through
        if through is None or through > index:
            through, total = last, 0.0
        else:
            total = self._tail_sum
        n = len(self._buckets)
        for i in range(through + 1, index + 1):
            total += self._buckets[i % n]
        self._tail_through, self._tail_sum = index, total
        return total

    def window_average(self, now: float) -> float:
        """The plain average over the valid buckets of the window ending at ``now``."""
        last, first = self._last, self._first
        if last is None:
            return 0.0
        n = len(self._buckets)
        # Buckets written since the first write (+1: both ends count); a whole ring if unknown.
        span = last - first + 1 if first is not None else n
        b = math.floor(now / self._granularity_s)  # self._index(now)
        gap = b - last
        # min(span, ...) and _floor6 written out: a KPA tick reads two averages
        if gap <= 0:
            return math.floor(self._total / (n if n < span else span) * _PRECISION) / _PRECISION
        if gap >= n:
            return 0.0
        stale = self._stale_tail(last, b)
        n -= gap
        return (
            math.floor((self._total - stale) / (n if n < span else span) * _PRECISION) / _PRECISION
        )

    def average_unless_empty(self, now: float) -> float | None:
        """``window_average(now)``, or None when ``is_empty(now)``: both in one read."""
        return None if self.is_empty(now) else self.window_average(now)

    def value_range(self, now: float) -> tuple[float, float] | None:
        """``(min, max)`` of the ring slots a ``window_average(now)`` sums, or None with no
        data in the window.

        For ``autoscaler.kpa.horizon``: an average of buckets in a band is in the band. A
        partial window divides by fewer buckets than it sums, but the slots not written since
        it restarted hold zeros, so its average is still a mean of values in the range.
        """
        last, first = self._last, self._first
        if last is None or first is None:
            return None
        buckets = self._buckets
        n = len(buckets)
        count = n - max(0, self._index(now) - last)
        if count <= 0:
            return None
        start = (last - count + 1) % n
        end = start + count
        part = buckets[start:end] if end <= n else buckets[start:] + buckets[: end - n]
        return min(part), max(part)

    def resize(self, window_s: float, now: float) -> None:
        """Change the window length keeping the most recent buckets (Knative's ResizeWindow)."""
        if window_s == self.window_s:
            return
        old = self._buckets
        old_n = len(old)
        new_n = bucket_count(window_s, self._granularity_s)
        fresh = [0.0] * new_n
        total = 0.0
        last = self._last
        if last is not None and self._index(now) - last <= old_n:
            for k in range(min(new_n, old_n)):
                i = last - k
                fresh[i % new_n] = old[i % old_n]
                total += old[i % old_n]
            # As Knative: assume the old window was full, the earliest time data may be from.
            self._first = last - (old_n - 1)
        else:
            self._first = None
        self._tail_through = None
        self.window_s = window_s
        self._buckets = fresh
        self._total = total

    def copy_indices_from(self, other: TimedBuckets) -> None:
        """Take another window's first and last written bucket (same length), values left."""
        self._first, self._last = other._first, other._last
        self._tail_through = None


def smoothing_coefficient(bucket_count: int) -> float:
    """Decay per bucket so the weights of a full window add up to 0.9999, and at least 0.2."""
    return max(1.0 - (1.0 - _WEIGHT_PRECISION) ** (1.0 / bucket_count), _MIN_EXPONENT)


class WeightedBuckets(TimedBuckets):
    """Exponentially weighted average: recent buckets weigh more (weighted-exponential).

    With data [10, 10, 5, 5] (newest last) and a coefficient of 0.6 it gives
    ``5x0.6 + 5x0.6x0.4 + 10x0.6x0.4^2 + 10x0.6x0.4^3 = 5.544`` where the plain average is 7.5.
    """

    __slots__ = ("_alpha",)

    def __init__(self, window_s: float, granularity_s: float = 1.0) -> None:
        super().__init__(window_s, granularity_s)
        self._alpha = smoothing_coefficient(len(self._buckets))

    def window_average(self, now: float) -> float:
        last = self._last
        if last is None or self.is_empty(now):
            return 0.0
        n = len(self._buckets)
        alpha = self._alpha
        multiplier = alpha
        count = n
        b = self._index(now)
        if b > last:
            # Buckets after the last write are zeros: skip straight to their combined weight.
            gap = b - last
            multiplier *= (1.0 - alpha) ** gap
            count -= gap
        total = 0.0
        buckets = self._buckets
        for i in range(count):
            total += buckets[(last - i) % n] * multiplier
            multiplier *= 1.0 - alpha
        return total

    def resize(self, window_s: float, now: float) -> None:
        super().resize(window_s, now)
        self._alpha = smoothing_coefficient(len(self._buckets))


class MaxWindow:
    """The maximum recorded over a sliding window (scale-down delay), O(1) amortised.

    Granularity is the decider's 2 s tick: a 60 s delay keeps 30 buckets, and two decisions in one
    bucket (a tick and a poke) keep the larger.
    """

    __slots__ = ("_entries", "_granularity_s", "_size", "duration_s")

    def __init__(self, duration_s: float, granularity_s: float = 2.0) -> None:
        self.duration_s = duration_s
        self._granularity_s = granularity_s
        self._size = bucket_count(duration_s, granularity_s)
        # (bucket index, value), values strictly descending from the front.
        self._entries: deque[tuple[int, float]] = deque()

    def record(self, now: float, value: float) -> None:
        # Knative indexes by whole seconds divided by the whole-second granularity.
        index = math.floor(now) // max(1, int(self._granularity_s))
        entries = self._entries
        # A smaller-or-equal older value can never be the maximum again.
        while entries and value >= entries[-1][1]:
            entries.pop()
        while entries and index - entries[0][0] >= self._size:
            entries.popleft()
        if entries and entries[-1][0] == index:
            value = max(value, entries.pop()[1])
        entries.append((index, value))

    def current(self) -> float:
        """The maximum over the window as of the last record (0 before any)."""
        return self._entries[0][1] if self._entries else 0.0
