"""The fluid engine: busy revisions in 1 s steps, requests as a flow, latencies per request.

For a revision with many requests per second, exact per-request events are too slow for a day
of trace. This engine advances in 1 s steps (split where a replica becomes ready) and treats
requests in the system as a fluid:

- in service ``n`` evolves by ``dn/dt = admitted - min(n, ready * capacity) / mean_service``,
  integrated with one implicit (backward Euler) step, stable for any service time;
- admission is FIFO: requests wait while no replica is ready, or beyond
  ``ready * container_concurrency``; a queue waiting when replicas become ready enters at once
  (as far as the limit allows);
- each request is served at the speed of every step it spends in service, ``1 / stretch``
  seconds of work per second with ``stretch = max(1, n / (ready * capacity))`` (processor
  sharing beyond capacity): it finishes when the work attained since its admission reaches its
  own service time. Its admission is read off the cumulative admission curve: request ``j``
  enters when cumulative admissions reach ``j + 1`` (at its arrival when it arrived in a step
  with no queue);
- a request that arrives while no replica is ready is a cold start; the KPA gets the
  time-averaged requests in the system per 1 s bucket, as in the exact engine. The tuner gets
  each latency without the cold-start wait at the activator (its queue-proxy's view), at the
  first policy tick after the request finished.

The approximation: service is memoryless in the flow equation that moves ``n``; each request's
own finish uses its own service time. When the flow has drained, the requests still short of
their own work stay in service (``n`` is their count), so a long request keeps its replica.
``tests/sim/test_fluid.py`` checks it against ``exact`` on busy cases, long requests under a
changing replica count among them.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from autoscaler.sim.exact import RequestResults
from autoscaler.sim.revision import RevisionControl


class _Grid:
    """The admission curve and per-step state, grown as the run goes (numpy, amortised O(1)).

    Points are appended as Python values and written to the arrays in one go when the arrays
    are read (``sync``): the same values (a float64 holds a Python float exactly, and the
    attained service is summed with the same double operations)."""

    def __init__(self) -> None:
        self.size = 0  # points in the arrays
        self.t = np.zeros(1024)  # step boundary times
        self.d = np.zeros(1024)  # cumulative admissions at those times
        self.stretch = np.ones(1024)  # stretch of the step starting at t[k]
        self.queued = np.zeros(1024, dtype=bool)  # a queue existed during that step
        # service a request in service since the start would have attained by t[k]: each step
        # gives 1 / stretch seconds of work per second
        self.v = np.zeros(1024)
        # points appended since the last sync, and the last point's t, stretch and v
        self._new: list[tuple[float, float, float, bool, float]] = []
        self._last: tuple[float, float, float] | None = None

    def append(self, t: float, d: float, stretch: float, queued: bool) -> None:
        last = self._last
        v = last[2] + (t - last[0]) / last[1] if last is not None else 0.0
        self._new.append((t, d, stretch, queued, v))
        self._last = (t, stretch, v)

    def sync(self) -> None:
        """Write the points appended since the last sync to the arrays."""
        new = self._new
        if not new:
            return
        k = self.size
        end = k + len(new)
        if end > self.t.size:
            grown = max(end, 2 * self.t.size)
            for name in ("t", "d", "stretch", "queued", "v"):
                old = getattr(self, name)
                arr = np.empty(grown, dtype=old.dtype)
                arr[:k] = old[:k]
                setattr(self, name, arr)
        t, d, stretch, queued, v = zip(*new, strict=True)
        self.t[k:end] = t
        self.d[k:end] = d
        self.stretch[k:end] = stretch
        self.queued[k:end] = queued
        self.v[k:end] = v
        self.size = end
        self._new = []

    @property
    def v_now(self) -> float:
        last = self._last
        assert last is not None  # the engine appends its first point at once
        return last[2]


def _admissions(grid: _Grid, arrivals: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """When requests ``lo..hi-1`` entered service, all admitted by the grid's last point."""
    grid.sync()
    n = grid.size
    t, d = grid.t[:n], grid.d[:n]
    arr = arrivals[lo:hi]
    # the step each request arrived in, and whether a queue existed then
    k_arr = np.clip(np.searchsorted(t, arr, side="right") - 1, 0, n - 1)
    queued = grid.queued[k_arr]
    # admission time: first point where cumulative admissions reach j + 1, linear before it
    need = np.arange(lo, hi, dtype=np.float64) + 1.0
    k = np.clip(np.searchsorted(d, need - 1e-9, side="left"), 1, n - 1)
    d0, d1 = d[k - 1], d[k]
    frac = np.where(d1 > d0, (need - d0) / np.maximum(d1 - d0, 1e-12), 1.0)
    admit = t[k - 1] + np.clip(frac, 0.0, 1.0) * (t[k] - t[k - 1])
    return np.where(queued, np.maximum(admit, arr), arr)


def _attained(grid: _Grid, at: np.ndarray) -> np.ndarray:
    """The grid's attained service (``v``) at times ``at`` (past its end: at the speed of its
    last point, which the engine always appends at full speed)."""
    grid.sync()
    n = grid.size
    k = np.clip(np.searchsorted(grid.t[:n], at, side="right") - 1, 0, n - 1)
    return grid.v[k] + (at - grid.t[k]) / grid.stretch[k]


def _finish(grid: _Grid, target_v: np.ndarray) -> np.ndarray:
    """When the grid's attained service reaches ``target_v`` (past its end: at the speed of its
    last point, full speed)."""
    grid.sync()
    n = grid.size
    v = grid.v[:n]
    k = np.clip(np.searchsorted(v, target_v, side="left") - 1, 0, n - 1)
    return grid.t[k] + (target_v - v[k]) * grid.stretch[k]


def _floor(x: float) -> float:
    return float(math.floor(x)) if x != math.inf else x


def _ceil(x: float) -> float:
    return float(math.ceil(x)) if x != math.inf else x


def run_fluid(
    arrivals_s: np.ndarray, service_s: np.ndarray, control: RevisionControl, end_s: float
) -> RequestResults:
    """Run one revision through the trace in 1 s steps; same outputs as ``run_exact``."""
    n_req = arrivals_s.size
    arr = arrivals_s.tolist()  # the same values, cheaper to read one at a time
    starting = control.starting  # ready-at times of replicas starting (changed in place)
    control.policy_before_kpa = True  # at one time: the policy's tick, then the KPA's
    inf = math.inf
    model = control.model
    cap = float(model.capacity)
    cc = model.container_concurrency
    mean_s = max(model.service.mean_s, 1e-6)
    latency = np.zeros(n_req)
    cold = np.zeros(n_req, dtype=bool)
    activator_wait = np.zeros(n_req)  # cold requests: arrival to the first ready replica
    cold_from = 0  # cold requests before this index have their activator wait
    grid = _Grid()

    n = 0.0  # requests in service
    q = 0.0  # requests waiting
    admitted = 0.0  # cumulative admissions
    i = 0  # requests arrived so far (arrivals before t)
    admitted_to = 0  # requests 0..admitted_to-1 have entered service
    # requests in service: their index and the attained service (grid.v) they finish at. The
    # tuner gets each latency once the request finished, as its queue-proxy reports it then.
    pending_j = np.zeros(0, dtype=np.int64)
    pending_v = np.zeros(0)
    obs_from = 0
    t = 0.0
    grid.append(0.0, 0.0, 1.0, False)

    def update_pending(known: int) -> None:
        """Requests up to ``known`` (exclusive) have entered service: note when each finishes."""
        nonlocal admitted_to, pending_j, pending_v
        if known > admitted_to:
            admit = _admissions(grid, arrivals_s, admitted_to, known)
            target = _attained(grid, admit) + service_s[admitted_to:known]
            pending_j = np.concatenate((pending_j, np.arange(admitted_to, known)))
            pending_v = np.concatenate((pending_v, target))
            admitted_to = known

    def deliver() -> None:
        # whole requests admitted so far are in service; those whose work is done have
        # finished: their latencies go to the tuner
        nonlocal pending_j, pending_v
        update_pending(min(int(admitted + 1e-6), n_req))
        if pending_j.size:
            finished = pending_v <= grid.v_now
            if finished.any():
                over = pending_j[finished]
                latency[over] = _finish(grid, pending_v[finished]) - arrivals_s[over]
                control.completed_many(latency[over] - activator_wait[over])
                pending_j, pending_v = pending_j[~finished], pending_v[~finished]

    # the hottest calls of the loop, bound once
    account = control.account
    append = grid.append
    bisect_left = bisect.bisect_left

    while True:
        in_system = n + q
        next_arrival = arr[i] if i < n_req else inf
        # control.at_rest(in_system), inlined: this runs once per second
        if not in_system and not control.ready and not starting and not control.desired:
            t_next = min(_floor(next_arrival), control.next_policy_s)
            if t_next == math.inf or (t_next >= end_s and i >= n_req):
                break
            if t_next > t:
                t = _ceil(t_next)
                grid.append(t, admitted, 1.0, False)
            control.align_kpa(t)
            if control.next_policy_s <= t and not next_arrival <= t:
                # a tick due before the next arrival happens first (as in the exact engine)
                deliver()
                control.policy_tick(t, arrivals_s[obs_from:i])
                obs_from = i
            if next_arrival < t + 1.0:
                # a request arrives in this second: it ends the rest, at its arrival time
                control.wake_policy(max(t, next_arrival))
            if control.next_policy_s <= t:
                deliver()
                control.policy_tick(t, arrivals_s[obs_from:i])
                obs_from = i
        elif t >= end_s and i >= n_req and in_system < 0.5:
            break
        elif control.quiet and in_system == 0:
            # a quiet spell: the KPA's decision holds until its next tick; jump to the start of
            # the second that ends at it (ticks come at the end of a step, as on the grid),
            # or of the second of the next arrival
            t_next = min(
                _floor(next_arrival),
                control.next_kpa_s - 1.0,
                _ceil(control.next_policy_s) - 1.0,
            )
            if i >= n_req and t_next + 1.0 >= end_s:  # the tick it waits for is past the end
                control.account(max(0.0, end_s - t), 0.0, 0.0)
                break
            if t_next > t:
                control.account(t_next - t, 0.0, 0.0)
                t = t_next
                grid.append(t, admitted, 1.0, False)
        second = t
        step_end = t + 1.0
        bucket = 0.0
        arrived_before = i
        while t < step_end:
            if i < n_req and arr[i] < step_end and i == arrived_before:
                control.busy(arr[i])
            if not control.ready and not starting and i < n_req and arr[i] < step_end:
                # the activator wakes the revision; with nothing before the arrival in this
                # second, the step starts there, so the replica it starts is counted from then
                if arr[i] > t and not n + q:
                    t = arr[i]
                control.poke(arr[i], n + q + 1.0)
            # sub-step up to the next replica becoming ready (or the end of the second); min
            # and max of two values are written out as comparisons in this loop (the same
            # choice as the builtins: the later value only when strictly smaller or larger)
            t1 = starting[0] if starting else inf
            if t + 1e-6 > t1:
                t1 = t + 1e-6
            if not step_end > t1:  # min(step_end, t1)
                t1 = step_end
            dt = t1 - t
            ready = control.ready
            j = bisect_left(arr, t1, i)  # np.searchsorted(arrivals_s, t1), from i on
            a = float(j - i)
            if a and ready == 0:
                cold[i:j] = True
            i = j
            q0 = q
            n0 = n
            stretch = 1.0
            jump = 0.0
            if ready == 0:
                q += a
                x = 0.0
            else:
                limit = ready * cc if cc else math.inf
                room = limit - n
                if not room > 0.0:  # max(0.0, limit - n)
                    room = 0.0
                jump = room if room < q else q  # min(q, room): the waiting queue enters at once
                q -= jump
                n += jump
                rc = ready * cap
                want = q + a
                n_end = (n + want) / (1.0 + dt / mean_s)  # backward Euler, unsaturated
                if n_end > rc:
                    n_end = max(rc, n + want - dt * rc / mean_s)
                if n_end > limit:  # admission limited by containerConcurrency
                    done = dt * min(limit, rc) / mean_s
                    x = max(0.0, min(want, limit - n + done))
                    n_end = limit
                else:
                    x = want
                q = want - x
                stretch = 0.5 * (n + n_end) / rc
                if not stretch > 1.0:  # max(1.0, ...)
                    stretch = 1.0
                n = n_end
            if jump:
                append(t, admitted, stretch, True)
                admitted += jump
            queued = q0 > 1e-9 or q > 1e-9
            append(t, admitted, stretch, queued)
            admitted += x
            avg_sys = 0.5 * (n0 + q0 + n + q)
            avg_srv = 0.5 * (n0 + jump + n)
            account(dt, avg_sys, avg_srv)
            bucket += avg_sys * dt
            t = t1
            if starting and t >= starting[0]:  # t >= control.next_ready_s
                if control.ready == 0 and i > cold_from:
                    waited = t - arrivals_s[cold_from:i]
                    activator_wait[cold_from:i] = np.where(cold[cold_from:i], waited, 0.0)
                cold_from = i
                control.promote(t)
        drained = i == arrived_before and q < 1e-9 and n < 0.5
        append(t, admitted, 1.0, q > 1e-9)
        if drained:
            # the flow has drained; requests still short of their own work stay in service
            update_pending(min(int(admitted + 1e-6), n_req))
            n = float(np.count_nonzero(pending_v > grid.v_now))
        control.record(second, bucket)
        if t >= control.next_policy_s:
            deliver()
            control.policy_tick(t, arrivals_s[obs_from:i])
            obs_from = i
        if n + q == 0.0:
            control.idle(t)
        if t >= control.next_kpa_s:
            # a quiet spell reaches the next arrival: a policy tick ends it only by a patch
            control.horizon_s = min(next_arrival, end_s)
            control.kpa_tick(t)
    # the rest: in service at the end, or admitted after it (the grid's last point admits
    # all), finishing at full speed past the grid's end
    grid.append(t + 1.0, float(n_req), 1.0, False)
    update_pending(n_req)
    if pending_j.size:
        latency[pending_j] = _finish(grid, pending_v) - arrivals_s[pending_j]
    return RequestResults(latency, cold)
