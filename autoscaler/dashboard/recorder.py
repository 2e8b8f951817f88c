"""The dashboard's short memory: per-model ring buffers of what each tuner tick (and, in one-machine
mode, the data plane) showed, so the time-series charts have history and cold starts can be counted.

Pure bookkeeping: every call takes the sample's time (wall seconds) as an argument; nothing here
reads a clock or does I/O. Two counts over the last hour, bounded by the window whether or not
anyone reads them:

- a scale-up from zero is a transition of a model's actual replicas from 0 to at least 1 that the
  recorder saw (the first sample of a model is never one: its past is unknown). It includes the
  tuner's pre-warms and any scale-up no request waited for.
- a cold start is a request that waited on a revision with no ready replica, as the source saw it
  (``record_cold_start``: one-machine mode's activator); a source that cannot see requests wait
  records none.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

ModelKey = tuple[str, str]  # (namespace, InferenceService name)

COLD_START_WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True)
class ReplicaSample:
    """Replica counts of a model (all its serving revisions) at ``t_s``."""

    t_s: float
    desired: int
    actual: int


@dataclass(frozen=True, slots=True)
class TickSample:
    """What the tuner observed of a model's live revision at one tick (None: not observed)."""

    t_s: float
    revision: str
    concurrency_per_replica: float | None
    target: float | None  # the target in force (autoscaling.knative.dev/target)
    request_rate_per_s: float | None
    latency_ms: float | None  # the objective's percentile over the tick's interval
    objective_latency_ms: float | None


@dataclass(frozen=True, slots=True)
class Decision:
    """One tuner decision on the live revision; identical consecutive decisions are folded."""

    t_s: float  # the last tick that made it
    first_t_s: float
    revision: str
    mode: str
    target: float
    keep_alive_s: float
    min_scale: int
    confidence: float
    fail_static: bool
    warm_from_s: float | None  # pre-warm: how long after the last request min-scale goes up
    written: tuple[str, ...]  # annotations written by that tick ("" none)
    reasons: tuple[str, ...]
    explain: tuple[str, ...] = ()
    repeats: int = 1

    def same_as(self, other: Decision) -> bool:
        return (
            self.revision,
            self.mode,
            self.target,
            self.keep_alive_s,
            self.min_scale,
            self.fail_static,
            self.reasons,
        ) == (
            other.revision,
            other.mode,
            other.target,
            other.keep_alive_s,
            other.min_scale,
            other.fail_static,
            other.reasons,
        ) and not other.written

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["written"] = list(self.written)
        out["reasons"] = list(self.reasons)
        out["explain"] = list(self.explain)
        return out


@dataclass
class _ModelHistory:
    replicas: deque[ReplicaSample]
    ticks: deque[TickSample]
    decisions: deque[Decision]
    scale_ups: deque[float] = field(default_factory=deque)
    cold_starts: deque[float] = field(default_factory=deque)
    last_actual: int | None = None


class Recorder:
    """Bounded per-model history: ``capacity`` samples per series (the tuner ticks every 30 s by
    default, so 900 ticks are 7.5 h; replica samples come with each tick and, in one-machine mode,
    with each change of the live counts, flat runs folded), ``decisions`` decisions, and the
    scale-ups and cold starts of the last ``window_s``."""

    def __init__(
        self, capacity: int = 900, decisions: int = 50, window_s: float = COLD_START_WINDOW_S
    ) -> None:
        if capacity < 1 or decisions < 1:
            raise ValueError(f"capacity ({capacity}) and decisions ({decisions}) must be >= 1")
        self.capacity = capacity
        self.decision_capacity = decisions
        self.window_s = window_s
        self._models: dict[ModelKey, _ModelHistory] = {}

    def _history(self, key: ModelKey) -> _ModelHistory:
        h = self._models.get(key)
        if h is None:
            h = self._models[key] = _ModelHistory(
                deque(maxlen=self.capacity),
                deque(maxlen=self.capacity),
                deque(maxlen=self.decision_capacity),
            )
        return h

    def models(self) -> list[ModelKey]:
        return sorted(self._models)

    def forget(self, keep: Iterable[ModelKey]) -> None:
        """Drop the history of models no longer present."""
        kept = set(keep)
        for key in [k for k in self._models if k not in kept]:
            del self._models[key]

    # -- writing -------------------------------------------------------------------------------
    def record_replicas(self, key: ModelKey, t_s: float, desired: int, actual: int) -> None:
        """One reading of the model's replicas; one older than the last recorded is ignored, so
        the series never goes back in time."""
        h = self._history(key)
        last = h.replicas[-1] if h.replicas else None
        if last is not None and t_s < last.t_s:
            return
        if h.last_actual == 0 and actual >= 1:
            h.scale_ups.append(t_s)
        _prune(h.scale_ups, t_s - self.window_s)
        h.last_actual = actual
        if (
            last is not None
            and (last.desired, last.actual) == (desired, actual)
            and (
                len(h.replicas) >= 2
                and (h.replicas[-2].desired, h.replicas[-2].actual) == (desired, actual)
            )
        ):
            # a flat run keeps its first and last point only: the ring holds more history
            h.replicas[-1] = ReplicaSample(t_s, desired, actual)
            return
        h.replicas.append(ReplicaSample(t_s, desired, actual))

    def record_cold_start(self, key: ModelKey, t_s: float) -> None:
        """A request waited on a revision of the model with no ready replica, at ``t_s``."""
        h = self._history(key)
        h.cold_starts.append(t_s)
        _prune(h.cold_starts, t_s - self.window_s)

    def record_tick(self, key: ModelKey, sample: TickSample) -> None:
        self._history(key).ticks.append(sample)

    def record_decision(self, key: ModelKey, decision: Decision) -> None:
        h = self._history(key)
        if h.decisions and decision.same_as(h.decisions[-1]) and not decision.written:
            prev = h.decisions[-1]
            h.decisions[-1] = Decision(
                **{
                    **{f: getattr(decision, f) for f in Decision.__dataclass_fields__},
                    "first_t_s": prev.first_t_s,
                    "repeats": prev.repeats + 1,
                }
            )
            return
        h.decisions.append(decision)

    # -- reading -------------------------------------------------------------------------------
    def replicas(self, key: ModelKey) -> list[ReplicaSample]:
        h = self._models.get(key)
        return list(h.replicas) if h else []

    def ticks(self, key: ModelKey) -> list[TickSample]:
        h = self._models.get(key)
        return list(h.ticks) if h else []

    def decisions(self, key: ModelKey) -> list[Decision]:
        """Newest first."""
        h = self._models.get(key)
        return list(reversed(h.decisions)) if h else []

    def last_tick(self, key: ModelKey) -> TickSample | None:
        h = self._models.get(key)
        return h.ticks[-1] if h and h.ticks else None

    def cold_starts(self, key: ModelKey, now_s: float) -> int:
        """Cold starts (requests that waited on no ready replica) in ``(now_s - window, now_s]``."""
        h = self._models.get(key)
        return _count(h.cold_starts, now_s, self.window_s) if h else 0

    def scale_ups_from_zero(self, key: ModelKey, now_s: float) -> int:
        """0 -> 1 transitions of actual replicas seen in ``(now_s - window, now_s]``."""
        h = self._models.get(key)
        return _count(h.scale_ups, now_s, self.window_s) if h else 0


def _prune(times: deque[float], before_s: float) -> None:
    while times and times[0] <= before_s:
        times.popleft()


def _count(times: deque[float], now_s: float, window_s: float) -> int:
    return sum(1 for t in times if now_s - window_s < t <= now_s)


def finite(x: float | None) -> float | None:
    """JSON has no infinity: a percentile beyond the last bucket is reported as None."""
    return x if x is not None and math.isfinite(x) else None


def series(samples: Iterable[Any], fields: Mapping[str, str]) -> dict[str, list[Any]]:
    """Column lists from dataclass samples: ``{"t": [...], "desired": [...]}``."""
    cols: dict[str, list[Any]] = {out: [] for out in fields}
    for s in samples:
        for out, attr in fields.items():
            cols[out].append(getattr(s, attr))
    return cols
