"""Estimators stacked into a target: safe concurrency, confidence, safety margin.

In the manner of the Kubernetes VPA recommender's estimators, each is a small pure function
tested alone: the learned curve gives the highest concurrency that met the objective (and the
lowest that missed: the knee), evidence gives a confidence in [0, 1], and the safety margin
widens when confidence is low. Guardrails (``guardrails``) bound the result afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from autoscaler.tuner.latency_model import LatencyPoint


@dataclass(frozen=True, slots=True)
class SafeConcurrency:
    """What the learned curve says: highest concurrency meeting, lowest missing."""

    safe: float | None  # highest concurrency meeting the objective below any miss
    knee: float | None  # lowest concurrency missing it


def safe_concurrency(points: Sequence[LatencyPoint], objective_ms: float) -> SafeConcurrency:
    """Scan the curve upward: the last point meeting ``objective_ms`` before the first miss.

    Latency is taken as non-decreasing in concurrency, so a point that meets above a miss
    (noise, or load that changed shape) is not trusted.
    """
    safe: float | None = None
    for p in sorted(points, key=lambda p: p.concurrency):
        if misses(p.latency_ms, objective_ms):
            return SafeConcurrency(safe, p.concurrency)
        safe = p.concurrency
    return SafeConcurrency(safe, None)


def misses(latency_ms: float, objective_ms: float) -> bool:
    """Above the objective; a hair's tolerance so decayed weights' rounding does not count."""
    return latency_ms > objective_ms * (1.0 + 1e-9)


def confidence(evidence_requests: float, full_requests: float) -> float:
    """Confidence in [0, 1] from decayed request evidence: sqrt of the share of ``full``.

    Square root so the first requests count most: 1/4 of the full evidence gives 0.5.
    """
    if evidence_requests <= 0:
        return 0.0
    return min(1.0, math.sqrt(evidence_requests / full_requests))


def margin_fraction(base_fraction: float, conf: float) -> float:
    """The safety margin: ``base`` at full confidence, up to twice ``base`` with none."""
    return base_fraction * (2.0 - max(0.0, min(1.0, conf)))


def with_margin(concurrency: float, margin: float) -> float:
    """Concurrency to aim at, ``margin`` below what was seen to work."""
    return concurrency * (1.0 - margin)
