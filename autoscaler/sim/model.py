"""The simulated model: what one revision serves, how fast, how much memory, and its objective.

A ``ModelSpec`` is everything the simulator knows about one model (one Knative revision):

- ``capacity``: concurrent requests one replica serves with flat latency. Beyond it the replica
  shares its processor: with ``n`` requests in flight on ``r`` ready replicas each request runs at
  speed ``min(1, r * capacity / n)`` (the router spreads load evenly, as the activator's
  least-loaded balancing does in the limit).
- ``container_concurrency``: Knative's hard limit per replica (0: none). Requests beyond
  ``r * container_concurrency`` wait in FIFO order (queue-proxy and activator queues taken as one).
- ``memory_mb``: memory of one replica, for the idle-memory figure.
- the latency objective: a request meets it when its latency (cold start and queueing included)
  is at most ``max(objective_slowdown * its own service time, objective_floor_s)``.

Cold starts follow ``ColdStart``: a lognormal around ``DEFAULT_COLD_START_MEDIAN_S``, the one
figure to change when the runtime's benchmark measures one-machine mode's cold start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# One-machine mode's cold start, seconds: the median of the lognormal every simulated replica
# start draws from. `bench/coldstart.py --runs 6` measures a request's first response from zero
# through `modelscale up` (activator report, KPA decision, replica forked with its model loaded,
# ready, answered): medians of 102 ms (92 to 113) and 67 ms (56 to 75) in two runs. A cluster's
# cold start (pod scheduling, image pull, model download) is longer: pass it with
# `modelscale simulate --cold-start-s`.
DEFAULT_COLD_START_MEDIAN_S = 0.1
# Spread of that lognormal (sigma of the underlying normal): about +-20 % for one standard deviation.
DEFAULT_COLD_START_SIGMA = 0.2

# The longest cold start or request service time accepted from an option or a trace: a day.
# The simulator ticks every in-flight request's revision (every 2 s), so a request that takes
# longer than this costs tens of thousands of ticks, and a non-finite one never ends.
MAX_SERVICE_S = 86400.0

# The most memory one replica may hold, MB (1 TB), from an option or a trace: larger figures
# are not a model's, and multiplied by a day's seconds they near float overflow in the
# idle-memory figure.
MAX_MEMORY_MB = 1_048_576.0

DEFAULT_OBJECTIVE_SLOWDOWN = 2.0
DEFAULT_OBJECTIVE_FLOOR_S = 0.5


@dataclass(frozen=True)
class ColdStart:
    """Replica start-up delay: lognormal with the given median and log-space sigma."""

    median_s: float = DEFAULT_COLD_START_MEDIAN_S
    sigma: float = DEFAULT_COLD_START_SIGMA

    def __post_init__(self) -> None:
        if not (math.isfinite(self.median_s) and 0 <= self.median_s <= MAX_SERVICE_S):
            raise ValueError(
                f"cold start median_s={self.median_s}: must be a number of seconds, "
                f"0 to {MAX_SERVICE_S:g}"
            )
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"cold start sigma={self.sigma}: must be >= 0")

    def sample(self, rng: np.random.Generator) -> float:
        if self.median_s == 0:
            return 0.0
        if self.sigma == 0:
            return self.median_s
        return float(self.median_s * np.exp(self.sigma * rng.standard_normal()))


@dataclass(frozen=True)
class ServiceTime:
    """A service-time distribution given by quantiles (piecewise-linear inverse CDF), seconds.

    ``probabilities`` rise from 0 to 1; ``quantiles_s`` are the matching service times. A single
    value is a constant service time.
    """

    probabilities: tuple[float, ...] = (0.0, 1.0)
    quantiles_s: tuple[float, ...] = (0.1, 0.1)

    def __post_init__(self) -> None:
        if len(self.probabilities) != len(self.quantiles_s) or len(self.probabilities) < 2:
            raise ValueError("service time: need as many probabilities as quantiles, at least 2")
        if self.probabilities[0] != 0.0 or self.probabilities[-1] != 1.0:
            raise ValueError(f"service time probabilities {self.probabilities}: must run 0 to 1")
        if any(b < a for a, b in zip(self.probabilities, self.probabilities[1:], strict=False)):
            raise ValueError(f"service time probabilities {self.probabilities}: must not fall")
        if any(b < a for a, b in zip(self.quantiles_s, self.quantiles_s[1:], strict=False)):
            raise ValueError(f"service time quantiles {self.quantiles_s}: must not fall")
        if self.quantiles_s[0] <= 0:
            raise ValueError(f"service time quantiles {self.quantiles_s}: must be > 0")

    @classmethod
    def constant(cls, seconds: float) -> ServiceTime:
        return cls((0.0, 1.0), (seconds, seconds))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        u = rng.random(n)
        return np.interp(u, self.probabilities, self.quantiles_s)

    @property
    def mean_s(self) -> float:
        """Mean of the piecewise-linear inverse CDF (trapezoids between quantiles)."""
        p = np.asarray(self.probabilities)
        q = np.asarray(self.quantiles_s)
        return float(np.sum(np.diff(p) * (q[1:] + q[:-1]) / 2.0))

    @property
    def median_s(self) -> float:
        return self.sample_quantile(0.5)

    def sample_quantile(self, probability: float) -> float:
        return float(np.interp(probability, self.probabilities, self.quantiles_s))


@dataclass(frozen=True)
class ModelSpec:
    """One model served by one revision."""

    name: str
    service: ServiceTime = field(default_factory=ServiceTime)
    capacity: int = 4
    container_concurrency: int = 0
    memory_mb: float = 256.0
    objective_slowdown: float = DEFAULT_OBJECTIVE_SLOWDOWN
    objective_floor_s: float = DEFAULT_OBJECTIVE_FLOOR_S

    def __post_init__(self) -> None:
        if self.capacity < 1:
            raise ValueError(f"model {self.name}: capacity={self.capacity} must be >= 1")
        if self.container_concurrency < 0:
            raise ValueError(
                f"model {self.name}: container_concurrency={self.container_concurrency} "
                "must be >= 0 (0: no limit)"
            )
        if self.memory_mb < 0:
            raise ValueError(f"model {self.name}: memory_mb={self.memory_mb} must be >= 0")
        if self.objective_slowdown < 1:
            raise ValueError(
                f"model {self.name}: objective_slowdown={self.objective_slowdown} must be >= 1"
            )

    @property
    def latency_objective_s(self) -> float:
        """The objective for a request of median service time: one number per model."""
        return max(self.objective_slowdown * self.service.median_s, self.objective_floor_s)

    def objective_s(self, service_s: np.ndarray) -> np.ndarray:
        """Each request's own latency objective, from its service time."""
        return np.maximum(self.objective_slowdown * service_s, self.objective_floor_s)


def capacity_from_name(name: str, choices: tuple[int, ...] = (1, 2, 4, 8, 16, 32)) -> int:
    """A stable per-model capacity for traces that do not give one.

    The Azure Functions trace says nothing about how many requests a replica serves at once, so
    each function gets one of ``choices`` picked by its hash: the same function always gets the
    same capacity, whatever the seed or the slice.
    """
    digest = 0
    for ch in name[:16]:
        digest = (digest * 131 + ord(ch)) % 1_000_003
    return choices[digest % len(choices)]
