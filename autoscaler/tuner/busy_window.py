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
    method cannot write a window (on the InferenceService it would roll out a revision).
    ``user_s``: the window the user set on the InferenceService; the user's word wins, the
    tuner writes none (and gives back a busy window it wrote before as the user's).
    ``replica_idle``: replicas are up and no request came in the last interval. The way back
    to the long window then waits: Knative's resized window holds only the short one's
    seconds, so the KPA would see no traffic for the whole long window at once and let the
    last replica go up to the difference sooner than its keep-alive."""
    long_s, short_s = settings.stable_window_s, float(settings.busy_window_s)
    enabled = managed and user_s is None and 0 < short_s < long_s
    short_now = applied_s is not None and applied_s < long_s
    if not enabled:
        if user_s is not None and applied_s is not None and applied_s != user_s:
            return user_s, (
                f"the InferenceService sets the stable window ({user_s:g} s): the tuner's "
                f"{applied_s:g} s withdrawn"
            )
        if user_s is not None:
            return applied_s, f"stable window {user_s:g} s, as the InferenceService sets it"
        if short_now:
            return long_s, f"busy window off: stable window back to {long_s:g} s"
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
        if replica_idle:
            return applied_s, (
                f"no longer busy: {rps:.3g} requests/s; stable window {applied_s:g} s until no "
                f"replica waits idle (switching now would cut its keep-alive short)"
            )
        return long_s, (
            f"no longer busy: {rps:.3g} requests/s (under {settings.busy_rps / 2:g}): stable "
            f"window back to {long_s:g} s"
        )
    if short_now:
        return applied_s, f"busy: {rps:.3g} requests/s, stable window {applied_s:g} s"
    return applied_s, ""
