"""The tuner's own settings, one dataclass per concern, parsed from the tuner ConfigMap.

The ConfigMap's keys are the field names below (``tick_period_s: "30"``); every value is a
number with its unit in the key. ``parse_tuner_config`` is the one place strings become
settings: an unknown key, a value that is not a number or one outside its range is an error
that names the key, the value and the allowed range. Names follow Knative's where the concept
is Knative's (``stable_window_s``, ``scale_to_zero_grace_period_s``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar


class SettingsError(ValueError):
    """A setting is unknown, not a number or out of range; the message names key and value."""


def _range(lo: float, hi: float, *, integer: bool = False, lo_open: bool = False) -> Any:
    return {"range": (lo, hi), "integer": integer, "lo_open": lo_open}


@dataclass(frozen=True, slots=True)
class LoopSettings:
    """How often the controller ticks and when metrics count as stale."""

    tick_period_s: float = field(default=30.0, metadata=_range(1, 3600))
    # An observation older than this is stale: the policy goes fail-static.
    stale_after_s: float = field(default=120.0, metadata=_range(1, 86400))
    # Least time between two applied target changes (a backoff after a miss is exempt).
    min_apply_interval_s: float = field(default=60.0, metadata=_range(0, 86400))


@dataclass(frozen=True, slots=True)
class TargetSettings:
    """The concurrency-target estimators and their guardrails."""

    max_step_up_ratio: float = field(default=1.5, metadata=_range(1, 10, lo_open=True))
    max_step_down_ratio: float = field(default=2.0, metadata=_range(1, 10, lo_open=True))
    hysteresis_fraction: float = field(default=0.1, metadata=_range(0, 0.5))
    safety_margin_fraction: float = field(default=0.15, metadata=_range(0, 0.5))
    # Explore upward only while the percentile is below objective x (1 - this).
    explore_room_fraction: float = field(default=0.2, metadata=_range(0, 0.9))
    # Less room than this is the edge: treated as the knee, aim moves a margin below it.
    edge_room_fraction: float = field(default=0.05, metadata=_range(0, 0.5))
    explore_step_ratio: float = field(default=1.25, metadata=_range(1, 10, lo_open=True))
    # A concurrency that missed the objective is not retried for this long.
    knee_memory_s: float = field(default=3600.0, metadata=_range(0, 7 * 86400))
    # Fewer requests in an interval than this: judge from the learned model instead.
    min_requests: int = field(default=20, metadata=_range(1, 1_000_000, integer=True))
    # A concurrency bin needs this many (decayed) requests to count as evidence.
    min_bin_requests: float = field(default=20.0, metadata=_range(1, 1e9))
    # Evidence (decayed requests) at which confidence reaches 1.
    evidence_full_requests: float = field(default=2000.0, metadata=_range(1, 1e12))
    latency_half_life_s: float = field(default=6 * 3600.0, metadata=_range(60, 30 * 86400))
    # Width of a concurrency bin as a ratio (1.1: bins 10 % apart).
    bin_ratio: float = field(default=1.1, metadata=_range(1.01, 2))
    # A new revision starts from the previous one's evidence times this.
    inherit_evidence_fraction: float = field(default=0.25, metadata=_range(0, 1))
    # After a target change the KPA needs time to act (replicas start, the backlog of requests
    # begun at the old target drains): an interval that began less than this after the change
    # is transitional, neither learned from nor judged. Interval starting before the change are
    # always transitional. Set it to the replicas' start time plus the KPA's panic window when
    # ticks are shorter than that.
    settle_s: float = field(default=0.0, metadata=_range(0, 3600))
    # Per-replica concurrency under which requests do not share a replica: a miss there is the
    # model's own latency (service time, a cold pod), not the target's, so it neither backs the
    # target off nor enters the learned knee, and a back-off aims no lower than this.
    min_shared_concurrency: float = field(default=1.0, metadata=_range(0, 1000))


@dataclass(frozen=True, slots=True)
class KeepAliveSettings:
    """Idle-time learning, keep-alive and pre-warm."""

    # Knative's windows, for converting "stay warm K s after the last request" to annotations.
    stable_window_s: float = field(default=60.0, metadata=_range(6, 3600))
    scale_to_zero_grace_period_s: float = field(default=30.0, metadata=_range(0, 3600))
    # Gaps shorter than this are not idle periods (they never let a revision scale to zero).
    min_idle_s: float = field(default=60.0, metadata=_range(0, 3600))
    min_idle_samples: int = field(default=5, metadata=_range(1, 10000, integer=True))
    # Fewer idle periods than min_idle_samples are learned from at once when there are at
    # least regular_idle_samples of them, all longer than Knative's floor (stable window +
    # grace) and none longer than the shortest by more than regular_idle_spread: a timer's
    # (a model called every hour learns it after two hours, not five). 0: off.
    regular_idle_samples: int = field(default=2, metadata=_range(0, 10000, integer=True))
    regular_idle_spread: float = field(default=0.1, metadata=_range(0, 1))
    idle_half_life_s: float = field(default=86400.0, metadata=_range(60, 365 * 86400))
    # The cost of one cold start, in seconds of one idle replica's memory, when it delays one
    # request in cold_start_share_requests. A cold start weighs the share of the model's
    # requests it delays: those that come within cold_start_s of an idle period's end, of
    # those an idle period stands for. A model called once per idle period pays
    # cold_start_share_requests times the cost; one with 100 requests per idle period coming
    # one at a time, a twentieth of it; the same 100 coming as one burst, five times it, like
    # the model called once. No setting makes the price flat: the share always counts.
    cold_start_cost_replica_s: float = field(default=1800.0, metadata=_range(0, 86400))
    cold_start_share_requests: float = field(default=5.0, metadata=_range(1, 10000))
    # The cost of one pre-warm start (a replica started ahead of traffic), in seconds of the
    # replica's own memory, whatever its size (reference_memory_mb does not weigh it).
    prewarm_overhead_replica_s: float = field(default=60.0, metadata=_range(0, 86400))
    # A pre-warm unloads the replica between Knative's floor and the load. No idle period
    # seen ending in that gap does not mean none will: with n idle periods seen (decayed), the
    # pre-warm's expected cost counts a more that end in the gap (kept to the floor, then a
    # cold start), a = this x min(1, the idle times' coefficient of variation): regular ones,
    # a timer's, are trusted at once. 0: the histogram alone.
    prewarm_gap_prior: float = field(default=5.0, metadata=_range(0, 1000))
    # How long a replica takes to become ready; pre-warm starts this much earlier.
    cold_start_s: float = field(default=30.0, metadata=_range(0, 3600))
    # Added to learned windows (the baseline adds 10 % too).
    window_margin_fraction: float = field(default=0.1, metadata=_range(0, 1))
    # The memory of the replica the costs above (and the fallback below) are quoted for, MB
    # (2^20 bytes). A replica whose memory is known (its container's memory request, else its
    # limit) weighs its warm seconds by its memory over this: a cold start buys fewer seconds
    # of a larger replica. 0: memory is not weighed.
    reference_memory_mb: float = field(default=1536.0, metadata=_range(0, 1e7))
    # Keep-alive (s after the last request) while history is thin: the common fixed 10
    # minutes, for a replica of reference_memory_mb (a smaller one longer, up to
    # max_keep_alive_s; a larger one shorter, down to Knative's floor).
    fallback_keep_alive_s: float = field(default=600.0, metadata=_range(0, 3660))
    # The longest a replica is kept warm after the last request, learned or fallback. Past
    # Knative's 1 h retention (after the stable window) the tuner holds min-scale 1 for the
    # rest (``keepalive_plan``): a rarely called small model is worth keeping for hours when
    # its idle periods say so. Knative's 1 h: stable window + 3600.
    max_keep_alive_s: float = field(default=86400.0, metadata=_range(60, 30 * 86400))
    # A busy revision's stable window: while its requests per second (decayed with
    # rate_half_life_s) reach busy_rps, the tuner sets autoscaling.knative.dev/window to this
    # (Knative's least is 6 s; shorter follows the load closer, with more scaling changes). A window that holds many requests is a steady read of the load,
    # and a short one follows it sooner: fewer late requests as it rises, fewer idle replicas
    # as it falls. Below half of busy_rps the window goes back to stable_window_s. Keep-alive
    # is unchanged by it (the retention makes up the difference). 0: the window is left alone.
    # Whole seconds, as Knative takes a window. The half-life is at least 15 minutes: the rate
    # is read once ten minutes of (decayed) history lie behind it.
    busy_window_s: int = field(default=15, metadata=_range(0, 3600, integer=True))
    busy_rps: float = field(default=0.03, metadata=_range(0, 1e6, lo_open=True))
    rate_half_life_s: float = field(default=3600.0, metadata=_range(900, 30 * 86400))


@dataclass(frozen=True, slots=True)
class TunerConfig:
    """All tuner settings: the ConfigMap parsed."""

    loop: LoopSettings = field(default_factory=LoopSettings)
    target: TargetSettings = field(default_factory=TargetSettings)
    keep_alive: KeepAliveSettings = field(default_factory=KeepAliveSettings)


_S = TypeVar("_S")
_SECTIONS: tuple[tuple[str, type[Any]], ...] = (
    ("loop", LoopSettings),
    ("target", TargetSettings),
    ("keep_alive", KeepAliveSettings),
)


def _parse_value(key: str, raw: str, f: dataclasses.Field[Any]) -> float | int:
    lo, hi = f.metadata["range"]
    integer = f.metadata["integer"]
    lo_open = f.metadata["lo_open"]
    lo_sym = "(" if lo_open else "["
    allowed = f"{'an integer' if integer else 'a number'} in {lo_sym}{lo:g}, {hi:g}]"
    try:
        value: float | int = int(raw) if integer else float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{key}: {raw!r} is not {allowed}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise SettingsError(f"{key}: {raw!r} is not {allowed}")
    if value < lo or value > hi or (lo_open and value == lo):
        raise SettingsError(f"{key}: {raw!r} is out of range, allowed {allowed}")
    return value


def parse_tuner_config(data: Mapping[str, str]) -> TunerConfig:
    """Parse the tuner ConfigMap's ``data``; absent keys keep their defaults."""
    known: dict[str, tuple[str, dataclasses.Field[Any]]] = {}
    for section, cls in _SECTIONS:
        for f in dataclasses.fields(cls):
            known[f.name] = (section, f)
    values: dict[str, dict[str, Any]] = {section: {} for section, _ in _SECTIONS}
    for key, raw in data.items():
        if key not in known:
            raise SettingsError(f"{key}: unknown tuner setting (known: {', '.join(sorted(known))})")
        section, f = known[key]
        values[section][key] = _parse_value(key, str(raw).strip(), f)
    config = TunerConfig(
        loop=LoopSettings(**values["loop"]),
        target=TargetSettings(**values["target"]),
        keep_alive=KeepAliveSettings(**values["keep_alive"]),
    )
    _check_cross_fields(config)
    return config


def _check_cross_fields(config: TunerConfig) -> None:
    loop = config.loop
    busy = config.keep_alive.busy_window_s
    if 0 < busy < 6:
        raise SettingsError(
            f"busy_window_s ({busy:g}) must be 0 (the window left alone) or >= 6: "
            "Knative's stable window is at least 6 s"
        )
    if loop.stale_after_s < loop.tick_period_s:
        raise SettingsError(
            f"stale_after_s ({loop.stale_after_s:g}) must be >= tick_period_s "
            f"({loop.tick_period_s:g}): every observation would be stale"
        )


def tuner_config_to_configmap(config: TunerConfig | None = None) -> dict[str, str]:
    """The ConfigMap ``data`` that parses back to ``config`` (defaults when None): whole
    numbers in full (``"1234567"``), others as ``repr`` writes them (``"1.0000001"``), which
    reads back as the same float."""
    config = config or TunerConfig()
    out: dict[str, str] = {}
    for section, _ in _SECTIONS:
        obj = getattr(config, section)
        for f in dataclasses.fields(obj):
            out[f.name] = _setting_text(getattr(obj, f.name))
    return out


def _setting_text(value: float) -> str:
    v = float(value)
    if v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return repr(v)
