"""The stable window of a busy revision: short while many requests fall in it.

Knative's KPA averages a revision's concurrency over its stable window (60 s by default,
``autoscaling.knative.dev/window`` per revision, at least 6 s) and scales to what the average
asks. A long window smooths a sparse load, where a few seconds hold a request or none; for a
busy revision it only lags: the average climbs for a minute while requests queue as the load
rises, and replicas stay a minute after it falls. So the tuner writes ``busy_window_s`` (15 s)
while the revision's request rate, decayed over ``rate_half_life_s``, reaches ``busy_rps``, and
the default back once it falls under half of that (the gap keeps a rate near the line from
switching at every tick). Keep-alive does not move with it: the retention period is longer by
what the window is shorter (``autoscaler.tuner.keepalive_plan``), so a replica goes as long
after the last request as before.

On the Azure Functions day in the simulator (``bench/policies.py --policies modelscale``):
requests within the objective 0.9577 to 0.9739, replica-seconds -1.3 %, idle memory-time
-8.4 %, the 75th percentile of cold-start shares as it was, 60 % more scaling changes; a 6 s
window gave a little more idle memory back (-10 %) for twice the changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from autoscaler.tuner import decay
from autoscaler.tuner.settings import KeepAliveSettings

# Seconds of history before the rate says anything: a few ticks of a burst are not a busy model.
MIN_RATE_HISTORY_S = 600.0


@dataclass(frozen=True, slots=True)
class RequestRate:
    """Requests per second with recent seconds weighing more: requests and elapsed time are
    both decayed by ``0.5 ** (age / half_life)``, so a revision idle for hours (no ticks while
    at zero) counts those hours when it next ticks."""

    requests: float = 0.0
    seconds: float = 0.0
    last_s: float | None = None

    def add(
        self, now_s: float, requests: float, half_life_s: float, interval_s: float = 0.0
    ) -> RequestRate:
        """``requests`` served since the last call (the first call: in the ``interval_s``
        before ``now_s``)."""
        if self.last_s is None:
            return RequestRate(float(requests), interval_s, now_s)
        now_s = max(self.last_s, now_s)  # a clock stepping back counts nothing twice
        f = decay.rebase_factor(now_s, self.last_s, half_life_s)
        # the seconds since the last call, each decayed by its own age (a long gap's early
        # hours weigh less than its last minutes)
        gap = half_life_s / math.log(2.0) * (1.0 - f)
        return RequestRate(self.requests * f + requests, self.seconds * f + gap, now_s)

    def scaled(self, fraction: float) -> RequestRate:
        """The same history with ``fraction`` of its requests: a share of the traffic."""
        return RequestRate(self.requests * fraction, self.seconds, self.last_s)

    def rps(self, min_history_s: float = MIN_RATE_HISTORY_S) -> float | None:
        """The rate, None while less than ``min_history_s`` (decayed) lies behind it."""
        if self.seconds < min_history_s or self.seconds <= 0:
            return None
        return self.requests / self.seconds


def decide_window(
    rate: RequestRate,
    applied_s: float | None,
    settings: KeepAliveSettings,
    *,
    managed: bool = True,
    user_s: float | None = None,
    replica_idle: bool = False,
) -> tuple[float | None, str]:
    """The stable window to have on the revision (None: the tuner leaves it alone, as long as
    it never wrote one) and the reason.

    ``applied_s``: the window the tuner last wrote (None: none). ``managed`` False: the apply
    method cannot write a window (on the InferenceService it would roll out a revision): none
    is written, one written before is left to the next rollout. ``user_s``: the window the
    user set on the revision (``autoscaler.kube.model.user_window_on``); the user's word wins,
    the tuner writes none (and gives a window it wrote before back to the user's).
    ``replica_idle``: a replica is up, idle since longer than the window in force, and no
    min-scale holds it. A longer window then waits: Knative resizes the window keeping only
    the short one's seconds, so the KPA would see no traffic for the whole long window at
    once and let the last replica go up to the difference before its keep-alive. The caller
    bounds the wait (``autoscaler.tuner.policy``: one keep-alive): traffic sparse enough to
    leave a replica idle at every tick would otherwise hold the short window for ever, and one
    replica let go up to the difference early is the lesser cost."""
    long_s, short_s = settings.stable_window_s, float(settings.busy_window_s)
    short_now = applied_s is not None and applied_s < long_s
    if not managed:
        why = f"stable window {user_s:g} s, as set on the revision" if user_s is not None else ""
        return None, why
    if user_s is not None:
        if applied_s is None or applied_s == user_s:
            return applied_s, f"stable window {user_s:g} s, as set on the revision"
        return _longer_waits(
            applied_s, user_s, replica_idle,
            f"stable window {user_s:g} s set on the revision: the tuner's {applied_s:g} s withdrawn",
        )  # fmt: skip
    if not 0 < short_s < long_s:
        if short_now:
            assert applied_s is not None
            return _longer_waits(
                applied_s,
                long_s,
                replica_idle,
                f"busy window off: stable window back to {long_s:g} s",
            )
        return applied_s, ""
    rps = rate.rps()
    if rps is None:
        return applied_s, ""
    if not short_now and rps >= settings.busy_rps:
        return short_s, (
            f"busy: {rps:.3g} requests/s (at least {settings.busy_rps:g}): stable window "
            f"{short_s:g} s, to follow the load sooner"
        )
    if short_now and rps < settings.busy_rps / 2:
        assert applied_s is not None
        return _longer_waits(
            applied_s, long_s, replica_idle,
            f"no longer busy: {rps:.3g} requests/s (under {settings.busy_rps / 2:g}): stable "
            f"window back to {long_s:g} s",
        )  # fmt: skip
    if short_now:
        return applied_s, f"busy: {rps:.3g} requests/s, stable window {applied_s:g} s"
    return applied_s, ""


def _longer_waits(
    applied_s: float, new_s: float, replica_idle: bool, why: str
) -> tuple[float, str]:
    """``new_s``, or ``applied_s`` while a longer window would cut an idle replica short."""
    if new_s > applied_s and replica_idle:
        return applied_s, (
            f"{why} once no replica waits idle (now the KPA would let it go up to "
            f"{new_s - applied_s:g} s before its keep-alive)"
        )
    return new_s, why
