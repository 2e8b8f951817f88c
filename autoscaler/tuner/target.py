"""The concurrency target: explore upward with room, back off fast on a miss, settle.

The loop is closed: the KPA keeps per-replica concurrency near ``target x utilization``, so a
higher concurrency is only ever observed after the tuner raises the target. The stage reads
the latest interval (or the learned bin when the interval had too few requests) and:

- is **settling**: the interval began before the last change had ``settle_s`` to take effect
  (its latencies are the old target's): hold, judge nothing;
- **misses** the objective: back off at once to the highest learned concurrency that met it
  (minus the margin), or in proportion to the miss, and remember this level as the knee unless
  the learned curve there, with its evidence, still meets the objective (a one-off slow interval);
  never below ``min_shared_concurrency`` (one request per replica): under it requests do not
  share a replica, so a miss there is the model's own latency and **holds**, and such points
  stay out of the learned knee;
- **meets with room** (percentile below objective x (1 - explore_room_fraction)) while the
  target binds and a full interval ran at the current target: explore one step up, but stay
  under the remembered knee minus the margin, and never past the revision's containerConcurrency
  (Knative caps the target at it). The target binds when there are more replicas than the floor
  and the interval's per-replica concurrency reaches ``EXPLORE_BINDING_SHARE`` of the aim: with
  ``n`` replicas sized by ``ceil(total / aim)`` each has at least ``aim x (n - 1) / n``, half the
  aim for ``n >= 2``; under that something else holds the replicas (a scale-down delay, panic
  mode, min-scale) and a latency measured there says nothing about a higher target;
- meets with almost no room (under ``edge_room_fraction``): the edge, remembered as the knee,
  aim a margin below it;
- otherwise **holds**, which is how it settles: the next step up would cross the knee.

Besides the target, the decision carries its ``Judgement``: which of these the interval was
(``meets``, ``misses``, ``misses_unshared`` for a miss under ``min_shared_concurrency``,
``settling``, or ``no_requests`` / ``too_few`` when there was nothing to judge), with the
percentile and the concurrency judged. The controller's ObjectiveMet condition renders it.

Everything is in per-replica concurrency ("aim"), converted to the annotation by dividing by
the KPA's utilization: target 10 at 70 % aims at 7 concurrent requests per replica. The aim is
the target in force: with containerConcurrency 4, target 10 at 70 % aims at 2.8.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from autoscaler.tuner.estimators import (
    confidence,
    margin_fraction,
    misses,
    safe_concurrency,
    with_margin,
)
from autoscaler.tuner.latency_model import LatencyModel, at_least_scaled
from autoscaler.tuner.lived import lifetime_s
from autoscaler.tuner.observation import RevisionObservation
from autoscaler.tuner.percentile import percentile_from_counts
from autoscaler.tuner.settings import TargetSettings
from autoscaler.tuner.spec import ModelScalerSpec

# Explore only while the interval's per-replica concurrency reaches this share of the aim.
EXPLORE_BINDING_SHARE = 0.5


@dataclass(frozen=True, slots=True)
class Knee:
    """A per-replica concurrency not to explore past, and when it was found.

    ``missed``: the objective was missed there (the aim stays a margin below it and comes down
    if above); otherwise it was met with almost no room (the edge: not explored past, but
    nothing is lowered for it).
    """

    concurrency: float
    at_s: float
    missed: bool = True

    def cap(self, margin: float) -> float:
        """The highest aim this knee allows."""
        return self.concurrency * (1.0 - margin)


def _lower_knee(old: Knee | None, new: Knee, margin: float) -> Knee:
    """Of two knees, the one allowing the lower aim."""
    if old is None or new.cap(margin) <= old.cap(margin):
        return new
    return old


Outcome = Literal["no_requests", "too_few", "settling", "meets", "misses", "misses_unshared"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the stage made of the interval against the objective, as data (the reason says it
    in words).

    ``outcome``: ``meets`` or ``misses`` the objective at a concurrency the target controls;
    ``misses_unshared`` under ``min_shared_concurrency``, where requests had a replica each
    and the latency is the model's own (no target meets the objective); ``settling`` while the
    last change takes effect (the latency is the old target's); ``no_requests`` and
    ``too_few`` when there was nothing to judge. ``from_target`` is the target in place before
    the decision, ``latency_ms`` the objective's percentile judged (None without one),
    ``concurrency`` the per-replica concurrency it was served at and ``source`` where the
    latency was read ("this interval", "learned", requests in flight).
    """

    outcome: Outcome
    from_target: float
    latency_ms: float | None = None
    concurrency: float | None = None
    source: str = ""


@dataclass(frozen=True, slots=True)
class TargetDecision:
    """The target stage's proposal, before guardrails."""

    target: float
    urgent: bool  # a backoff after a miss: exempt from the apply interval and hysteresis
    knee: Knee | None
    confidence: float
    latency_ms: float | None  # the percentile judged, None when nothing was judged
    reason: str
    judgement: Judgement | None = None  # None: nothing judged (a new revision's first target)


def settling(obs: RevisionObservation, last_change_s: float | None, settle_s: float) -> bool:
    """True when ``obs`` began before the last target change had ``settle_s`` to take effect.

    Worked case: a change at t=100 with settle_s 6; the interval [102, 104] began 2 s after it,
    while new replicas were starting and requests begun at the old target were finishing: its
    latency says nothing about the new target's concurrency. [106, 108] is the first to judge.
    """
    return last_change_s is not None and obs.start_s < last_change_s + settle_s - 1e-6


def _transitional(kind: str, after_s: float, settle_s: float) -> str:
    """Why an interval that began ``after_s`` after a ``change`` of target, or a ``wake`` from
    zero ready replicas, is not judged (negative: it began before)."""
    if kind == "change":
        if after_s < -1e-6:
            return "the interval began before the last change: waiting for a full interval at the new target"
        return (
            f"the interval began {after_s:.0f} s after the last change, under the "
            f"{settle_s:.0f} s it needs to take effect: waiting"
        )
    if after_s < -1e-6:
        return (
            "the revision came up from zero in this interval (the requests held at the "
            "activator reached its first replica together): judged on the next"
        )
    return (
        f"the interval began {after_s:.0f} s after the revision came up from zero, under the "
        f"{settle_s:.0f} s the wake-up needs to settle: judged on the next"
    )


def _ms(v: float) -> str:
    return "beyond 100 s" if v == float("inf") else f"{v:.0f} ms"


def decide_target(
    obs: RevisionObservation,
    model: LatencyModel,
    knee: Knee | None,
    current_target: float,
    spec: ModelScalerSpec,
    settings: TargetSettings,
    now_s: float,
    last_change_s: float | None,
    floor_replicas: int,
    *,
    step_limited: bool = True,
    unfinished_for_s: float = 0.0,
    lived_concurrency: float | None = None,
    woke_s: float | None = None,
) -> TargetDecision:
    """Propose a target for ``obs`` (already added to ``model``).

    ``step_limited`` (Auto mode): a back-off in proportion to a miss goes at most halfway
    down per step, as the applied change is seen before the next. Without it (Recommend mode:
    nothing applied, so no effect is ever seen) the estimate goes where the miss points.
    ``unfinished_for_s``: how long some request has been in flight with none finishing (an
    interval without completions says nothing else about latency).
    ``lived_concurrency``: the per-replica concurrency the judged requests were served at
    (``autoscaler.tuner.lived``; None: the interval's own). Requests longer than the interval
    are judged there, and while they began before the last change they show no room: a miss
    backs off only if the aim is not already below where it would back off to, and nothing is
    explored until requests begun at the current target finish.
    ``woke_s``: the end of the last interval the revision came up from zero ready replicas in.
    That interval, and those begun under ``settle_s`` after it, are transitional as after a
    change: the requests the activator held went to the first ready replica together, while the
    replicas started after it stood idle, so a high latency at a low average concurrency per
    replica says nothing about the target.
    """
    q = spec.objective_percentile
    objective = spec.objective_latency_ms
    util = obs.utilization
    cc = obs.container_concurrency
    aim = obs.target_in_force(current_target) * util
    c_now = obs.avg_concurrency_per_replica
    c = c_now if lived_concurrency is None else lived_concurrency
    hl = settings.latency_half_life_s

    if knee is not None and now_s - knee.at_s >= settings.knee_memory_s:
        knee = None  # old enough to retry
    conf = confidence(model.evidence(now_s, hl), settings.evidence_full_requests)

    def hold(reason: str, judged: Judgement) -> TargetDecision:
        return TargetDecision(current_target, False, knee, conf, judged.latency_ms, reason, judged)

    stuck = obs.request_count == 0 and c_now > 0 and unfinished_for_s * 1000.0 > objective
    if (obs.request_count == 0 or c_now <= 0) and not stuck:
        # most ticks of a revision kept warm between requests: nothing to judge
        return hold(
            f"no requests in the interval: target {current_target:.3g} held",
            Judgement("no_requests", current_target),
        )
    life = lifetime_s(obs, unfinished_for_s)
    long_requests = life > obs.interval_s
    # the judged requests began before the last change: they show the old target's room
    lagging = (
        long_requests
        and last_change_s is not None
        and obs.t_s - obs.interval_s / 2.0 - life < last_change_s + settings.settle_s
    )
    pname = f"p{q:g}"
    margin = margin_fraction(settings.safety_margin_fraction, conf)
    shared = settings.min_shared_concurrency
    # Beyond Knative's last bucket, percentiles are also read scaled from the lowest
    # concurrencies learned (see beyond_last_bound).
    reference = model.reference(q, now_s, hl, settings.min_bin_requests)

    # Stage 1: what latency to judge by.
    latency: float | None
    if stuck:
        # none finished, but one has been in flight longer than the objective: a miss
        latency = unfinished_for_s * 1000.0
        source = f"in flight {unfinished_for_s:.0f} s with none finished"
    elif obs.request_count >= settings.min_requests:
        read = percentile_from_counts(
            obs.latency_counts, q, tail_sum=obs.tail_sum_ms, latency_sum=obs.exact_sum_ms
        )
        latency = at_least_scaled(read, obs.latency_counts, q, obs.exact_sum_ms, reference)
        source = "this interval"
        if latency != read:
            source = "this interval, scaled from lower concurrency beyond the last bucket"
    else:
        point = model.point_at(c, q, now_s, hl, reference)
        enough = point is not None and point.requests >= settings.min_bin_requests
        latency = point.latency_ms if point is not None and enough else None
        source = "learned"
    # Requests that run longer than the interval finish in later ones: an interval with too few
    # completions to judge may hold only the short ones that finished. The requests in flight
    # tell the rest (Little's law, with a few completions' allowance for chance): past the
    # objective it is a miss.
    in_flight = in_flight_latency_ms(obs) if obs.request_count < settings.min_requests else None
    if in_flight is not None and in_flight > objective and (latency is None or in_flight > latency):
        latency, source = in_flight, "requests in flight, by Little's law"
    if latency is None:
        return hold(
            f"{obs.request_count} requests in the interval, too few to judge: "
            f"target {current_target:.3g} held",
            Judgement("too_few", current_target),
        )
    seen = f"{pname} {_ms(latency)} at {c:.3g} conc/replica ({source})"

    def judged(outcome: Outcome) -> Judgement:
        return Judgement(outcome, current_target, latency, c, source)

    # Neither a miss (no knee is learned, nothing backs off) nor room to explore: the interval
    # shows a change still taking effect (a new target, or the revision up from zero).
    for since, kind in ((last_change_s, "change"), (woke_s, "wake")):
        if settling(obs, since, settings.settle_s):
            assert since is not None
            why = _transitional(kind, obs.start_s - since, settings.settle_s)
            return hold(f"{seen}; {why}, target {current_target:.3g} held", judged("settling"))

    # Stage 2: a miss backs off now, to the learned safe level or in proportion to the miss.
    # Under min_shared_concurrency requests had a replica each: a lower target would only add
    # idle replicas, so the miss is the model's own latency and the target holds.
    if misses(latency, objective) and c < shared:
        return hold(
            f"{seen} misses the {_ms(objective)} objective at under {shared:g} request per "
            f"replica: not the target's doing (requests do not share a replica), "
            f"target {current_target:.3g} held",
            judged("misses_unshared"),
        )
    # The learned curve, read once there is a latency to judge. Points where requests did
    # not share a replica say nothing about the target's knee.
    curve_points = model.points(q, now_s, hl, settings.min_bin_requests, reference, shared)
    curve = safe_concurrency(curve_points, objective)
    # Where exploring stops (any knee) and where the aim must come down (a missed one).
    knees = [k for k in (knee, Knee(curve.knee, now_s) if curve.knee else None) if k is not None]
    cap = min((k.cap(margin) for k in knees), default=None)
    missed_caps = [k.cap(margin) for k in knees if k.missed]
    # never under one request per replica: below it a lower aim adds only idle replicas
    lower_to = max(min(missed_caps), shared) if missed_caps else None
    if misses(latency, objective):
        # Back off on any miss, but remember a knee only where the learned curve, with
        # min_bin_requests of evidence, misses too: one slow interval (a noisy neighbour, a
        # pause) must not keep the target down for knee_memory_s. A level seen too briefly is
        # confirmed when it misses again.
        point = model.point_at(c, q, now_s, hl, reference)
        confirmed = (
            point is not None
            and point.requests >= settings.min_bin_requests
            and misses(point.latency_ms, objective)
        )
        new_knee = _lower_knee(knee, Knee(c, now_s), margin) if confirmed else knee
        if curve.safe is not None and curve.safe < c:
            dest = with_margin(curve.safe, margin)
            how = f"to {dest:.3g} conc/replica, below {curve.safe:.3g} that met it"
        else:
            least = 0.5 if step_limited else 0.0
            ratio = min(1.0 - margin, 0.9 * objective / latency)
            # long requests: in proportion from where they were served, at most halfway down
            # from the aim per step
            dest = max(least * aim, c * ratio) if long_requests else c * max(least, ratio)
            how = f"to {dest:.3g} conc/replica in proportion to the miss"
        if dest < shared:
            # below one request per replica a lower aim adds only idle replicas
            dest = shared
            how = f"to {dest:.3g} conc/replica, where requests stop sharing a replica"
        if dest > aim or (long_requests and dest >= aim):
            # A miss never raises the target. The requests lived above the aim: long ones
            # begun before a back-off still finishing, or a step in traffic the replicas had
            # not caught up with (a canary promoted to all of it); the aim is already lower.
            why = (
                "waiting for requests begun at it"
                if long_requests
                else "the requests were in flight above it, before the replicas caught up"
            )
            return TargetDecision(
                current_target,
                False,
                new_knee,
                conf,
                latency,
                f"{seen} misses the {_ms(objective)} objective, but the aim {aim:.3g} is "
                f"already under the {dest:.3g} it would back off to: {why}, target "
                f"{current_target:.3g} held",
                judged("misses"),
            )
        return TargetDecision(
            dest / util,
            True,
            new_knee,
            conf,
            latency,
            f"{seen} misses the {_ms(objective)} objective: backing off {how}",
            judged("misses"),
        )

    room = 1.0 - latency / objective
    meets = f"{seen} meets the {_ms(objective)} objective with {room:.0%} room"
    met = judged("meets")

    # Stage 2b: meeting it with almost no room is the edge: remember it so exploring does not
    # come back, and step a margin down only if the curve shows lower concurrency has more
    # room (a latency floor near the objective would otherwise walk the target to nothing).
    # Under min_shared_concurrency the latency is the model's own, not an edge of the target.
    if room < settings.edge_room_fraction and c >= shared and not lagging:
        edge = _lower_knee(knee, Knee(c, now_s, missed=False), margin)
        dest = with_margin(c, margin)
        below = [p for p in curve_points if p.concurrency <= dest * 1.05]
        roomier = [
            p for p in below if p.latency_ms <= objective * (1.0 - settings.explore_room_fraction)
        ]
        edge_note = f"{meets}, under {settings.edge_room_fraction:.0%}: at the edge"
        if roomier:
            return TargetDecision(
                dest / util,
                False,
                edge,
                conf,
                latency,
                f"{edge_note}, aiming {dest:.3g} conc/replica",
                met,
            )
        return TargetDecision(
            current_target,
            False,
            edge,
            conf,
            latency,
            f"{edge_note}; lower concurrency shows no more room: holding, not exploring past {c:.3g}",
            met,
        )

    # Stage 3: a target above a known knee comes down even while traffic is light.
    if lower_to is not None and aim > lower_to * (1.0 + settings.hysteresis_fraction):
        return TargetDecision(
            lower_to / util,
            False,
            knee,
            conf,
            latency,
            f"{meets}, but the aim {aim:.3g} is above a concurrency that missed: "
            f"lowering to {lower_to:.3g} conc/replica",
            met,
        )

    # Stage 4: explore upward while there is room, the target binds and the loop has settled.
    if lagging:
        return hold(
            f"{meets}; its requests began before the last change: waiting for requests begun "
            f"at target {current_target:.3g}",
            met,
        )
    if room < settings.explore_room_fraction:
        return hold(f"{meets} (exploring needs {settings.explore_room_fraction:.0%}): holding", met)
    if obs.ready_replicas <= floor_replicas:
        return hold(
            f"{meets}; {obs.ready_replicas} replica(s) at the floor serve it all, a higher "
            "target would change nothing: holding",
            met,
        )
    if spec.replicas_max > 0 and obs.ready_replicas >= spec.replicas_max:
        return hold(f"{meets}; at max replicas {spec.replicas_max}: holding", met)
    if cc > 0 and current_target >= cc:
        return hold(
            f"{meets}; containerConcurrency {cc} caps the target (in force "
            f"{min(current_target, cc):.3g}): not exploring past it, holding",
            met,
        )
    if c_now < EXPLORE_BINDING_SHARE * aim:
        return hold(
            f"{meets}; {c_now:.3g} conc/replica is under {EXPLORE_BINDING_SHARE:.0%} of the aim "
            f"{aim:.3g}: the target does not bind ({obs.ready_replicas} replicas held by "
            "something else: containerConcurrency, a scale-down delay, panic mode, min-scale), "
            "holding",
            met,
        )
    dest = aim * settings.explore_step_ratio
    if curve.safe is not None:
        dest = max(dest, with_margin(curve.safe, margin))
    if cc > 0 and dest > cc * util:
        dest = cc * util  # Knative caps the target at containerConcurrency
    if cap is not None and dest > cap:
        dest = cap
        if dest <= aim * (1.0 + settings.hysteresis_fraction):
            return hold(
                f"{meets}; the knee at {min(k.concurrency for k in knees):.3g} is within reach: settled at "
                f"{aim:.3g} conc/replica",
                met,
            )
    return TargetDecision(
        dest / util,
        False,
        knee,
        conf,
        latency,
        f"{meets}: exploring up to {dest:.3g} conc/replica",
        met,
    )


def in_flight_latency_ms(obs: RevisionObservation) -> float | None:
    """A low estimate of the mean time requests spend in a replica, by Little's law.

    Time in the system over the interval (concurrency x replicas x interval) divided by the
    completions, counted high by ``2 sqrt(n) + 1`` so a few requests finishing by chance do not
    make a miss. None without requests in flight or completions.
    """
    n = obs.request_count
    busy_s = obs.avg_concurrency_per_replica * obs.ready_replicas * obs.interval_s
    if n <= 0 or busy_s <= 0:
        return None
    return busy_s * 1000.0 / (n + 2.0 * math.sqrt(n) + 1.0)
