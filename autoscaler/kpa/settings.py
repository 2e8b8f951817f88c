"""The global autoscaler settings: Knative's ``config-autoscaler`` ConfigMap, parsed from strings.

Mirrors knative/serving ``pkg/autoscaler/config/config.go`` (keys, defaults and validation) and
``pkg/apis/autoscaling`` (the shared bounds such as the 6 s to 1 h window). Durations use Go's
``time.ParseDuration`` syntax ("60s", "1m30s", "500ms"). Every error names the key, the value and
the allowed range.

Departures from Knative: ``activation-scale`` is also accepted here as a global default (Knative
only has the per-revision annotation); keys the KPA does not use (``pod-autoscaler-class``,
``tick-interval``, ...) are ignored, as Knative ignores unknown keys.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

WINDOW_MIN_S = 6.0
WINDOW_MAX_S = 3600.0
PANIC_WINDOW_PERCENTAGE_MIN = 1.0
PANIC_WINDOW_PERCENTAGE_MAX = 100.0
PANIC_THRESHOLD_PERCENTAGE_MIN = 110.0
PANIC_THRESHOLD_PERCENTAGE_MAX = 1000.0
TARGET_MIN = 0.01
INT32_MAX = 2**31 - 1


class InvalidSetting(ValueError):
    """A setting that does not parse or is out of range; names the key, the value and the range."""

    def __init__(self, key: str, value: str, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"{key}={value!r} is invalid: {allowed}")


class InvalidConfig(InvalidSetting):
    """A bad key in the ``config-autoscaler`` ConfigMap."""


class InvalidAnnotation(InvalidSetting):
    """A bad ``autoscaling.knative.dev/*`` annotation (or containerConcurrency) on a revision."""


_DURATION_UNITS_S = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # Go accepts both micro signs
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration_s(text: str) -> float:
    """Seconds from a Go duration string: "60s", "1m30s", "1.5h", "500ms", "0"; ValueError if bad."""
    s = text.strip()
    sign = 1.0
    if s[:1] in "+-" and s:
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    if s == "0":
        return 0.0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0.0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += float(m.group(1)) * _DURATION_UNITS_S[m.group(2)]
        pos = m.end()
    return sign * total


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool``: 1, t, T, TRUE, true, True and their false forms."""
    if text in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if text in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ValueError(f"invalid boolean {text!r}")


def parse_int32(text: str) -> int:
    """A base-10 32-bit integer, as Go's ``strconv.ParseInt(v, 10, 32)``."""
    if not re.fullmatch(r"[+-]?\d+", text.strip()):
        raise ValueError(f"invalid integer {text!r}")
    value = int(text)
    if not -(2**31) <= value <= INT32_MAX:
        raise ValueError(f"integer {text!r} out of 32-bit range")
    return value


def parse_float(text: str) -> float:
    """A finite float, as Go's ``strconv.ParseFloat`` for the values Knative accepts."""
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(f"invalid number {text!r}")
    return value


def is_whole_seconds(seconds: float) -> bool:
    """Knative requires windows and delays with at most second precision."""
    return abs(seconds - round(seconds)) < 1e-9


T = TypeVar("T")

# Every ``config-autoscaler`` key ``AutoscalerConfig.from_configmap`` reads (a test keeps them
# equal); other keys of Knative's ConfigMap are not modelled and are ignored there.
# The keys read as plain numbers into the field of the same name (dashes as underscores).
_FLOAT_KEYS = (
    "max-scale-up-rate",
    "max-scale-down-rate",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "container-concurrency-target-default",
    "target-burst-capacity",
    "activator-capacity",
)
CONFIG_KEYS = (
    "enable-scale-to-zero",
    "allow-zero-initial-scale",
    *_FLOAT_KEYS,
    "requests-per-second-target-default",
    "container-concurrency-target-percentage",
    "initial-scale",
    "min-scale",
    "max-scale",
    "max-scale-limit",
    "activation-scale",
    "stable-window",
    "scale-to-zero-grace-period",
    "scale-to-zero-pod-retention-period",
    "scale-down-delay",
)


@dataclass(frozen=True, slots=True)
class AutoscalerConfig:
    """Knative's global ``config-autoscaler`` settings (defaults of knative-v1.23)."""

    enable_scale_to_zero: bool = True
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_period_s: float = 30.0
    scale_to_zero_pod_retention_period_s: float = 0.0
    stable_window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    container_concurrency_target_default: float = 100.0
    container_concurrency_target_percentage: float = 70.0
    rps_target_default: float = 200.0
    target_burst_capacity: float = 211.0
    activator_capacity: float = 100.0
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    min_scale: int = 0
    max_scale: int = 0
    max_scale_limit: int = 0
    scale_down_delay_s: float = 0.0
    activation_scale: int = 1

    def __post_init__(self) -> None:
        problem = _config_problem(self)
        if problem is not None:
            raise problem

    @classmethod
    def from_configmap(cls, data: Mapping[str, str]) -> AutoscalerConfig:
        """Parse a ``config-autoscaler`` ConfigMap's ``data``; missing keys keep the defaults."""
        values: dict[str, object] = {}

        def take(key: str, field: str, parse: Callable[[str], T], allowed: str) -> None:
            raw = data.get(key)
            if raw is None:
                return
            try:
                values[field] = parse(raw)
            except ValueError:
                raise InvalidConfig(key, raw, allowed) from None

        take("enable-scale-to-zero", "enable_scale_to_zero", parse_bool, "a boolean")
        take("allow-zero-initial-scale", "allow_zero_initial_scale", parse_bool, "a boolean")
        for key in _FLOAT_KEYS:
            take(key, key.replace("-", "_"), parse_float, "a number")
        take("requests-per-second-target-default", "rps_target_default", parse_float, "a number")
        take(
            "container-concurrency-target-percentage",
            "container_concurrency_target_percentage",
            _parse_percentage,
            "a number",
        )
        for key in (
            "initial-scale",
            "min-scale",
            "max-scale",
            "max-scale-limit",
            "activation-scale",
        ):
            take(key, key.replace("-", "_"), parse_int32, "a 32-bit integer")
        for key in (
            "stable-window",
            "scale-to-zero-grace-period",
            "scale-to-zero-pod-retention-period",
            "scale-down-delay",
        ):
            take(key, key.replace("-", "_") + "_s", parse_duration_s, "a duration such as 60s")
        try:
            return cls(**values)  # type: ignore[arg-type]
        except InvalidConfig as exc:
            # Report the string as written in the ConfigMap, not the parsed number.
            if exc.key in data:
                raise InvalidConfig(exc.key, data[exc.key], exc.allowed) from None
            raise

    @property
    def container_concurrency_target_fraction(self) -> float:
        return self.container_concurrency_target_percentage / 100.0


def _parse_percentage(raw: str) -> float:
    # Knative accepts a legacy fraction in (0, 1] as well as a percentage: 0.7 means 70 %.
    value = parse_float(raw)
    return value * 100.0 if 0 < value <= 1.0 else value


_CONFIG_KEYS = {
    "stable_window_s": "stable-window",
    "scale_to_zero_grace_period_s": "scale-to-zero-grace-period",
    "scale_to_zero_pod_retention_period_s": "scale-to-zero-pod-retention-period",
    "scale_down_delay_s": "scale-down-delay",
    "rps_target_default": "requests-per-second-target-default",
}


def _config_problem(cfg: AutoscalerConfig) -> InvalidConfig | None:
    """The first out-of-range setting (named by its ConfigMap key), or None."""

    def bad(field: str, allowed: str) -> InvalidConfig:
        key = _CONFIG_KEYS.get(field, field.replace("_", "-"))
        return InvalidConfig(key, str(getattr(cfg, field)), allowed)

    checks: list[tuple[bool, str, str]] = [
        # Knative refuses a grace period under the least window (config.go validate)
        (
            cfg.scale_to_zero_grace_period_s >= WINDOW_MIN_S,
            "scale_to_zero_grace_period_s",
            "must be at least 6s",
        ),
        (cfg.scale_down_delay_s >= 0, "scale_down_delay_s", "must be in [0s, 1h]"),
        (cfg.scale_down_delay_s <= WINDOW_MAX_S, "scale_down_delay_s", "must be in [0s, 1h]"),
        (
            is_whole_seconds(cfg.scale_down_delay_s),
            "scale_down_delay_s",
            "must have at most second precision",
        ),
        (
            cfg.scale_to_zero_pod_retention_period_s >= 0,
            "scale_to_zero_pod_retention_period_s",
            "must be >= 0s",
        ),
        (
            cfg.target_burst_capacity >= 0 or cfg.target_burst_capacity == -1,
            "target_burst_capacity",
            "must be >= 0, or -1 (activator always in path)",
        ),
        (
            0 < cfg.container_concurrency_target_percentage <= 100,
            "container_concurrency_target_percentage",
            "must be in (0, 100]",
        ),
        (
            cfg.container_concurrency_target_default * cfg.container_concurrency_target_fraction
            >= TARGET_MIN,
            "container_concurrency_target_default",
            f"default x percentage must give a target of at least {TARGET_MIN}",
        ),
        (cfg.rps_target_default >= TARGET_MIN, "rps_target_default", f"must be >= {TARGET_MIN}"),
        (cfg.activator_capacity >= 1, "activator_capacity", "must be >= 1"),
        (cfg.max_scale_up_rate > 1.0, "max_scale_up_rate", "must be > 1.0"),
        (cfg.max_scale_down_rate > 1.0, "max_scale_down_rate", "must be > 1.0"),
        (
            WINDOW_MIN_S <= cfg.stable_window_s <= WINDOW_MAX_S,
            "stable_window_s",
            "must be in [6s, 1h]",
        ),
        (
            is_whole_seconds(cfg.stable_window_s),
            "stable_window_s",
            "must have at most second precision",
        ),
        (
            PANIC_WINDOW_PERCENTAGE_MIN
            <= cfg.panic_window_percentage
            <= PANIC_WINDOW_PERCENTAGE_MAX,
            "panic_window_percentage",
            "must be in [1, 100]",
        ),
        (
            PANIC_THRESHOLD_PERCENTAGE_MIN
            <= cfg.panic_threshold_percentage
            <= PANIC_THRESHOLD_PERCENTAGE_MAX,
            "panic_threshold_percentage",
            "must be in [110, 1000]",
        ),
        (
            cfg.initial_scale >= (0 if cfg.allow_zero_initial_scale else 1),
            "initial_scale",
            "must be >= 1 (>= 0 when allow-zero-initial-scale is true)",
        ),
        (cfg.max_scale_limit >= 0, "max_scale_limit", "must be >= 0"),
        (
            cfg.max_scale >= (1 if cfg.max_scale_limit > 0 else 0)
            and (cfg.max_scale_limit == 0 or cfg.max_scale <= cfg.max_scale_limit),
            "max_scale",
            f"must be in [{1 if cfg.max_scale_limit > 0 else 0}, max-scale-limit"
            f"({cfg.max_scale_limit or 'none'})]",
        ),
        (
            cfg.min_scale >= 0 and (cfg.max_scale == 0 or cfg.min_scale <= cfg.max_scale),
            "min_scale",
            "must be in [0, max-scale]",
        ),
        (cfg.activation_scale >= 1, "activation_scale", "must be >= 1"),
    ]
    for ok, field, allowed in checks:
        if not ok:
            return bad(field, allowed)
    return None
