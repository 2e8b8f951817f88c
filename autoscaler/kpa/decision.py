"""The frozen result of one KPA tick, with its inputs, a short reason and the autoscaler gauges.

Gauge names follow Knative's autoscaler metrics (``pkg/autoscaler/scaling/metrics.go`` and the KPA
reconciler's ``actual_pods``); for the rps metric the stable/panic/target gauges take Knative's
``*_requests_per_second`` names instead of ``*_request_concurrency``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScaleDecision:
    """What a driver applies (``desired_pods``, ``activator_in_path``) and why."""

    now: float
    desired_pods: int  # replicas the revision should run now
    activator_in_path: bool  # route requests through the activator
    excess_burst_capacity: float
    stable_concurrency: float  # stable-window average of the scaling metric (rps when metric=rps)
    panic_concurrency: float  # panic-window average of the scaling metric
    target_per_pod: float
    panic_mode: bool
    reason: str
    # The decider's own count before bounds and scale-to-zero handling; -1 before any data.
    decider_desired_pods: int
    want_pods: int  # the reconciler's want (0 while going inactive); -1 while unknown
    state: str  # activating | active | inactive
    ready_pods: int
    reachable: bool
    metric: str
    has_data: bool  # False when no report arrived for more than a stable window

    def gauges(self) -> dict[str, float]:
        """The autoscaler gauges by Knative's names (desired pods only once known)."""
        if self.metric == "rps":
            stable, panic, target = (
                "autoscaler_stable_requests_per_second",
                "autoscaler_panic_requests_per_second",
                "autoscaler_target_requests_per_second",
            )
        else:
            stable, panic, target = (
                "autoscaler_stable_request_concurrency",
                "autoscaler_panic_request_concurrency",
                "autoscaler_target_concurrency_per_pod",
            )
        out = {
            stable: self.stable_concurrency,
            panic: self.panic_concurrency,
            target: self.target_per_pod,
            "autoscaler_panic_mode": 1.0 if self.panic_mode else 0.0,
            "autoscaler_excess_burst_capacity": self.excess_burst_capacity,
            "autoscaler_actual_pods": float(self.ready_pods),
        }
        if self.decider_desired_pods >= 0:
            out["autoscaler_desired_pods"] = float(self.decider_desired_pods)
        return out
