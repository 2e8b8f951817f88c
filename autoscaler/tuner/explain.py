"""Rendering a ``Recommendation`` for people: what ``modelscale explain`` prints.

Plain lines, no terminal markup, so the same text serves the command, logs and the status.
"""

from __future__ import annotations

from autoscaler.tuner.policy import Recommendation


def explain(rec: Recommendation) -> list[str]:
    """The recommendation as lines: the values, then one line per decision stage."""
    obs = rec.observation
    util = obs.utilization if obs is not None else 0.7
    lines = [
        f"revision {rec.revision} at t={rec.now_s:.0f} s (mode {rec.mode})"
        + (" - FAIL-STATIC" if rec.fail_static else ""),
        f"  target     {rec.target:.3g}  (the KPA aims at {rec.target * util:.3g} concurrent "
        f"requests per replica at {util:.0%} utilization)",
        f"  keep-alive {rec.keep_alive_s:.0f} s after the last request "
        f"(scale-to-zero-pod-retention-period {rec.retention_s:.0f}s)",
        f"  min-scale  {rec.min_scale}"
        + (f"  (pre-warm at t={rec.prewarm_at_s:.0f} s)" if rec.prewarm_at_s is not None else ""),
        f"  confidence {rec.confidence:.0%}",
    ]
    if obs is not None:
        lines.append(
            f"  observed   {obs.request_count} requests, {obs.avg_concurrency_per_replica:.3g} "
            f"conc/replica on {obs.ready_replicas} replica(s) over {obs.interval_s:.0f} s"
        )
    lines.append("why:")
    lines += [f"  - {r}" for r in rec.reasons]
    if rec.should_apply:
        lines.append(
            "writes: " + ", ".join(f"{k}={v}" for k, v in rec.changed_annotations().items())
        )
    elif rec.changed:
        lines.append("would write (not applied): " + ", ".join(rec.changed))
    else:
        lines.append("writes: nothing (no change)")
    return lines
