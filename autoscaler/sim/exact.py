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


def heap_smallest(heap: list[tuple[float, int]], d: int) -> list[float]:
    """The ``d`` smallest keys of a binary min-heap (all of them if it holds fewer), ascending:
    a best-first walk from the root, O(d log d) whatever the heap's size (``heapq.nsmallest``
    reads all of it)."""
    n = len(heap)
    d = min(d, n)
    if d <= 0:
        return []
    out: list[float] = []
    frontier = [(heap[0][0], 0)]
    push, pop = heapq.heappush, heapq.heappop
    while len(out) < d:
        key, k = pop(frontier)
        out.append(key)
        child = 2 * k + 1
        if child < n:
            push(frontier, (heap[child][0], child))
            if child + 1 < n:
                push(frontier, (heap[child + 1][0], child + 1))
    return out


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
    # per request, as lists while running (a Python float or bool per item, no array scalar);
    # the arrays at the end hold the same values
    latency = [0.0] * n_req
    cold = [False] * n_req
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
    starting = control.starting  # ready-at times of replicas starting (changed in place)
    inf = math.inf
    floor = math.floor
    # the hottest calls of the loop, bound once
    account = control.account
    record = control.record
    completed = control.completed
    heappop = heapq.heappop

    def earliest_completion(d: int, min_in_system: int) -> float:
        """The soonest ``d`` of the requests now in the system could all have finished while
        the replicas stay as they are and at least ``min_in_system`` requests are in it.

        Each request in service gets ``min(1, ready x capacity / in_service)`` seconds of work
        per second, at most the rate at ``min_in_system``; a queued request has all its
        work left."""
        if d > len(heap) + len(queue):
            return math.inf
        left = [f - vtime for f in heap_smallest(heap, d)]
        if queue:
            left = heapq.nsmallest(d, left + [svc[j] for j in queue])
        fewest = min(min_in_system, control.ready * cc) if cc else min_in_system
        rate = min(1.0, control.ready * cap / fewest) if fewest > 0 else 1.0
        r = left[d - 1]
        # less margins: a remainder within rounding of zero finishes at once (see below)
        return t + max(0.0, r - 1e-6 * (1.0 + vtime + r)) / rate - 1e-6 * (1.0 + t)

    def admit_from_queue() -> None:
        while queue and control.ready > 0 and (cc == 0 or len(heap) < control.ready * cc):
            j = queue.popleft()
            heapq.heappush(heap, (vtime + svc[j], j))

    while True:
        in_service = len(heap)
        in_system = in_service + len(queue)
        t_arrival = arr[i] if i < n_req else inf
        # control.at_rest(in_system), inlined: this runs once per event
        resting = not in_system and not control.ready and not starting and not control.desired
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
            # min and max of two or more values are written out as comparisons in this loop
            # (the same choice as the builtins: a later value only when strictly smaller or
            # larger), as it runs once per event
            if in_service and ready:
                rate = ready * cap / in_service
                if not rate < 1.0:
                    rate = 1.0
            else:
                rate = 0.0
            if rate > 0:
                # a remainder within rounding of zero is done now: stepping it by ulps (each
                # step's vtime gain rounding away) would never reach it
                left = heap[0][0] - vtime
                t_done = t + left / rate if left > 1e-9 * (1.0 + vtime) else t
            else:
                t_done = inf
            # min(t_arrival, t_done, next ready, next KPA tick, next policy tick)
            t_next = t_arrival
            if t_done < t_next:
                t_next = t_done
            if starting and starting[0] < t_next:  # control.next_ready_s
                t_next = starting[0]
            if control.next_kpa_s < t_next:
                t_next = control.next_kpa_s
            if control.next_policy_s < t_next:
                t_next = control.next_policy_s
            if in_system == 0 and i >= n_req and t_next >= end_s:
                account(max(0.0, end_s - t), 0, 0)  # the trace is over
                break
            dt = t_next - t
            if dt > 0:
                account(dt, in_system, in_service)
                vtime += rate * dt
                if in_system == 0 and control.quiet:
                    bucket, acc = floor(t_next), 0.0  # skipped seconds: see busy()
                else:
                    edge = bucket + 1
                    since = bucket if bucket > t else t  # max(t, bucket)
                    if t_next >= edge:
                        # the second in progress, then the whole seconds up to t_next, each at
                        # in_system exactly (0.0 + in_system x 1), as one run
                        acc += in_system * (edge - since)
                        record(float(bucket), acc)
                        top = floor(t_next)
                        if top > edge and in_system:
                            control.record_run(float(edge), top - edge, 0.0 + in_system)
                        bucket = top
                        acc = 0.0 + in_system * (t_next - bucket)
                    else:
                        acc += in_system * (t_next - since)
                t = t_next
        # one event at t (ties: completion, readiness, arrival, KPA tick, policy tick)
        if t == t_done:
            _, j = heappop(heap)
            lat = t - arr[j]
            latency[j] = lat
            completed(lat - activator_wait[j])
            if queue:
                admit_from_queue()
            if not heap and not queue:
                control.idle(t)
        elif t == (starting[0] if starting else inf):
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
                if not starting:  # no replica at all
                    control.poke(t, len(heap) + len(queue))
            admit_from_queue()
        elif t == control.next_kpa_s:
            # a quiet spell reaches the next arrival, a steady one the end of the trace: a
            # policy tick ends either only by a patch
            control.horizon_s = min(t_arrival, end_s)
            control.steady_horizon_s = end_s
            control.kpa_tick(t, len(heap) + len(queue), arr, i, earliest_completion)
            if queue:
                admit_from_queue()
        elif t == control.next_policy_s:
            control.policy_tick(t, arrivals_s[obs_from:i])
            obs_from = i
            if queue:
                admit_from_queue()
    return RequestResults(np.array(latency, dtype=np.float64), np.array(cold, dtype=bool))
