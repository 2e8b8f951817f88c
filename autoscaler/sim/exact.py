"""The exact engine: every request is an event; replicas share their processor per request.

One revision at a time (revisions share nothing, so each runs alone over the whole trace).
Requests in service progress at ``min(1, ready * capacity / in_service)`` seconds of work per
second; the engine keeps one virtual clock of attained service per job, so each request's
finish is a heap entry and the work per request is O(log in-flight). Requests beyond
``ready * container_concurrency`` (or any while no replica is ready) wait in FIFO order. A
request that arrives while no replica is ready is a cold start; the time it waits for the first
ready replica is spent at the activator, which the tuner's queue-proxy latency does not see.

Time jumps: while a revision has no replica, wants none and holds no request, nothing is ticked;
the engine goes straight to the next arrival (or the policy's next tick).
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from autoscaler.sim.revision import RevisionControl


@dataclass
class RequestResults:
    """Per-request outcome, in arrival order."""

    latency_s: np.ndarray
    cold: np.ndarray


def run_exact(
    arrivals_s: np.ndarray, service_s: np.ndarray, control: RevisionControl, end_s: float
) -> RequestResults:
    """Run one revision through the trace; returns each request's latency and cold flag."""
    n_req = arrivals_s.size
    arr = arrivals_s.tolist()
    svc = service_s.tolist()
    latency = np.zeros(n_req)
    cold = np.zeros(n_req, dtype=bool)
    activator_wait = [0.0] * n_req  # cold requests: arrival to the first ready replica
    model = control.model
    cap = float(model.capacity)
    cc = model.container_concurrency

    heap: list[tuple[float, int]] = []  # (virtual finish, request index)
    queue: deque[int] = deque()
    vtime = 0.0  # attained service of a job in service since the start
    t = 0.0
    i = 0  # next arrival
    bucket = 0  # second whose concurrency integral is in `acc`
    acc = 0.0
    obs_from = 0  # first arrival not yet shown to the policy

    def admit_from_queue() -> None:
        while queue and control.ready > 0 and (cc == 0 or len(heap) < control.ready * cc):
            j = queue.popleft()
            heapq.heappush(heap, (vtime + svc[j], j))

    while True:
        in_service = len(heap)
        in_system = in_service + len(queue)
        t_arrival = arr[i] if i < n_req else math.inf
        resting = control.at_rest(in_system)
        if resting:
            # nothing happens until the next arrival or policy tick: jump there
            t_next = min(t_arrival, control.next_policy_s)
            if t_next == math.inf or (t_next >= end_s and i >= n_req):
                break
            if t_next > t:
                t = t_next
                bucket, acc = math.floor(t), 0.0
            control.align_kpa(t)
            t_done = math.inf
        else:
            ready = control.ready
            rate = min(1.0, ready * cap / in_service) if in_service and ready else 0.0
            if rate > 0:
                # a remainder within rounding of zero is done now: stepping it by ulps (each
                # step's vtime gain rounding away) would never reach it
                left = heap[0][0] - vtime
                t_done = t + left / rate if left > 1e-9 * (1.0 + vtime) else t
            else:
                t_done = math.inf
            t_next = min(t_arrival, t_done, control.next_ready_s, control.next_kpa_s,
                         control.next_policy_s)  # fmt: skip
            if in_system == 0 and i >= n_req and t_next >= end_s:
                control.account(max(0.0, end_s - t), 0, 0)  # the trace is over
                break
            dt = t_next - t
            if dt > 0:
                control.account(dt, in_system, in_service)
                vtime += rate * dt
                if control.quiet and in_system == 0:
                    bucket, acc = math.floor(t_next), 0.0  # skipped seconds: see busy()
                else:
                    edge = bucket + 1
                    while t_next >= edge:
                        acc += in_system * (edge - max(t, bucket))
                        control.record(float(bucket), acc)
                        bucket, acc = edge, 0.0
                        edge += 1
                    acc += in_system * (t_next - max(t, bucket))
                t = t_next
        # one event at t (ties: completion, readiness, arrival, KPA tick, policy tick)
        if t == t_done:
            _, j = heapq.heappop(heap)
            lat = t - arr[j]
            latency[j] = lat
            control.completed(lat - activator_wait[j])
            admit_from_queue()
            if not heap and not queue:
                control.idle(t)
        elif t == control.next_ready_s:
            if control.ready == 0:
                for j in queue:
                    if cold[j]:
                        activator_wait[j] = t - arr[j]
            control.promote(t)
            admit_from_queue()
        elif t == t_arrival:
            j = i
            i += 1
            if resting:
                control.wake_policy(t)
            control.busy(t)
            queue.append(j)
            if control.ready == 0:
                cold[j] = True
                if control.replicas == 0:
                    control.poke(t, len(heap) + len(queue))
            admit_from_queue()
        elif t == control.next_kpa_s:
            control.horizon_s = min(t_arrival, control.next_policy_s, end_s)
            control.steady_horizon_s = min(control.next_policy_s, end_s)
            control.kpa_tick(t, len(heap) + len(queue), arrivals_s, i)
            admit_from_queue()
        elif t == control.next_policy_s:
            control.policy_tick(t, arrivals_s[obs_from:i])
            obs_from = i
            admit_from_queue()
    return RequestResults(latency, cold)
