"""What the tuner remembers about one revision between ticks, and a new revision's start.

``RevisionState`` is immutable: the policy returns a new one each tick and the controller
keeps it (and checkpoints it, see ``checkpoint``). If writing a recommendation to Kubernetes
fails, the controller keeps the previous state so the policy tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from autoscaler.tuner.busy_window import RequestRate
from autoscaler.tuner.idle import Activity, IdleHistogram
from autoscaler.tuner.keepalive import LearnedKeepAlive
from autoscaler.tuner.latency_model import LatencyModel
from autoscaler.tuner.lived import ConcurrencyHistory
from autoscaler.tuner.target import Knee
from autoscaler.tuner.windows import KeepAliveWindows


@dataclass(frozen=True, slots=True)
class AppliedValues:
    """What the tuner last wrote onto the revision, and when."""

    target: float
    retention_s: float
    min_scale: int
    at_s: float
    window_s: float | None = None  # the stable window written, if the tuner wrote one


@dataclass(frozen=True, slots=True)
class RevisionState:
    revision: str
    latency: LatencyModel = field(default_factory=LatencyModel)
    idle: IdleHistogram = field(default_factory=IdleHistogram)
    activity: Activity = field(default_factory=Activity)
    knee: Knee | None = None
    applied: AppliedValues | None = None
    last_target_change_s: float | None = None
    last_target: float | None = None  # the last recommended target
    # The idle policy's answer, recomputed only when a new idle period arrives or the policy
    # (its settings, from the ConfigMap or the spec) changed.
    windows: KeepAliveWindows | None = None
    windows_samples: int = -1
    windows_policy: LearnedKeepAlive | None = None
    inherited_from: str | None = None
    # When the previous revision's target was proposed for this one (None: not yet): a
    # one-tick start, after which the revision is judged on its own evidence.
    inherited_start_s: float | None = None
    # End of the first of the intervals, up to now, that had requests in flight and none
    # finished: a request has been in flight at least since then (None: one finished).
    unfinished_since_s: float | None = None
    # Recent intervals' concurrency: where requests longer than a tick were served.
    history: ConcurrencyHistory = field(default_factory=ConcurrencyHistory)
    # Requests per second, decayed: whether the revision is busy enough for a short window.
    rate: RequestRate = field(default_factory=RequestRate)
    # The last window recommended: in Recommend mode, where nothing is applied, the busy
    # window's hysteresis holds on it (a rate between half the line and the line keeps it).
    last_window_s: float | None = None
    # Since when a longer window has waited for an idle replica (busy_window._longer_waits);
    # not checkpointed: after a restart the wait starts again.
    window_wait_since_s: float | None = None
    # Ready replicas at the end of the last interval seen (None: none seen since the start), and
    # the end of the last interval in which the revision came up from zero ready replicas:
    # requests the activator held reach the first ready replica together then, so that
    # interval's latency is the wake-up's, not the target's. Not checkpointed.
    ready_seen: int | None = None
    woke_s: float | None = None
    # The metadata.uid of the Revision object this state is about (None: not known yet). A
    # revision deleted and created again under the same name is another object: what was
    # applied to the old one is not on it.
    uid: str | None = None


def new_state(revision: str, bin_ratio: float = 1.1) -> RevisionState:
    """The state of a revision nothing is known about."""
    return RevisionState(revision, latency=LatencyModel(bin_ratio=bin_ratio))


def inherit_state(
    previous: RevisionState,
    revision: str,
    evidence_fraction: float = 0.25,
    traffic_fraction: float = 1.0,
) -> RevisionState:
    """A new revision of the same model starts from what the previous one learned.

    The latency curve comes over with its evidence scaled by ``evidence_fraction`` (so its
    confidence is lower and the new revision's own requests soon outweigh it); the knee and the
    idle-time history come over as they are (traffic belongs to the model, not the revision).
    The request rate comes over times ``traffic_fraction``, the share of the model's traffic
    the new revision is routed (a canary at 10 %: a tenth; the previous revision is taken to
    have carried it all), so a canary of a busy model is not taken for busy itself.
    What was applied does not: the new revision has its own annotations; the policy proposes
    the previous revision's last target for it at once, for one tick (until it is applied, in
    Auto mode): from then on the revision is judged on its own latency.
    """
    if not 0.0 <= traffic_fraction <= 1.0:
        raise ValueError(f"traffic_fraction must be within 0..1, got {traffic_fraction}")
    return replace(
        previous,
        revision=revision,
        rate=previous.rate.scaled(traffic_fraction),
        latency=previous.latency.scaled(evidence_fraction),
        activity=previous.activity,
        applied=None,
        last_target_change_s=None,
        windows=None,
        windows_samples=-1,
        windows_policy=None,
        inherited_from=previous.revision,
        inherited_start_s=None,
        unfinished_since_s=None,
        history=ConcurrencyHistory(),
        last_window_s=None,
        uid=None,
        ready_seen=None,
        woke_s=None,
    )
