"""A replica's runs in one Pod: how a run ended (``Termination``), a crashed replica waiting to
be restarted in its Pod (``Crashed``), and each run's log file.

In Kubernetes a container that exits on its own is restarted in the same Pod (the Pods of a
Deployment have ``restartPolicy: Always``): the Pod keeps its name, the container's
``restartCount`` goes up by one with each new run, ``lastState.terminated`` says how the run
before ended, and the kubelet keeps that run's log, which ``kubectl logs --previous`` reads
(k8s.io/kubernetes pkg/kubelet/kuberuntime: a container's runs log to ``<restartCount>.log`` in
its log directory). One-machine mode runs each attempt as a new replica process; the pool hands
it the crashed replica's ``Crashed`` record, so the new process keeps the Pod's name and takes the
next restart count, and each run logs to a file of its own (``run_log_name``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

COMPLETED = "Completed"  # a run that exited with 0 (kubelet: the container's reason)
ERROR = "Error"  # any other exit


@dataclass(frozen=True)
class Termination:
    """How one run of a replica ended, as a container's ``state.terminated`` tells it. Times are
    the pool's clock (``shifted`` turns them into wall-clock times for the Pod)."""

    exit_code: int
    reason: str
    message: str
    started_at: float
    finished_at: float

    def shifted(self, offset: float) -> Termination:
        return dataclasses.replace(
            self, started_at=self.started_at + offset, finished_at=self.finished_at + offset
        )


def termination(
    code: int | None, message: str, started_at: float, finished_at: float
) -> Termination:
    """A run that ended with the process's exit ``code`` (asyncio's ``-N`` for signal N; None:
    no process was left to say). As the container runtime reports it, a signal is exit code
    128 + N (SIGKILL: 137), and the reason is ``Completed`` for 0 and ``Error`` otherwise.
    ``OOMKilled`` is not told apart: that verdict comes from a container's memory cgroup, and a
    replica process has none of its own."""
    if code is None:
        code = 1
    elif code < 0:
        code = 128 - code
    return Termination(code, COMPLETED if code == 0 else ERROR, message, started_at, finished_at)


@dataclass(frozen=True)
class Crashed:
    """A replica that exited on its own or failed to start, its restart pending: its Pod stays
    (same name) until the next run takes it over, or it is given up (fewer replicas wanted, or
    its Pod deleted). ``restart_count`` is the crashed run's; the next run's is one more.
    ``backoff_s``: the CrashLoopBackOff wait before the next run (None: restarted at once);
    ``crashes``: the Pod's crashes in a row, this one included (the back-off's exponent)."""

    name: str
    created_at: float  # the Pod's (its first run's start)
    launched_at: float | None  # the Pod's first process up (its queue-proxy's start)
    restart_count: int
    terminated: Termination
    last_state: Termination | None  # how the run before it ended, if there was one
    backoff_s: float | None
    crashes: int = 1

    @property
    def restart_at(self) -> float:
        """When the next run may start: the crash, plus the back-off if there is one."""
        return self.terminated.finished_at + (self.backoff_s or 0.0)

    def shifted(self, offset: float) -> Crashed:
        return dataclasses.replace(
            self,
            created_at=self.created_at + offset,
            launched_at=None if self.launched_at is None else self.launched_at + offset,
            terminated=self.terminated.shifted(offset),
            last_state=None if self.last_state is None else self.last_state.shifted(offset),
        )


def run_log_name(pod: str, restart_count: int) -> str:
    """The log file of a Pod's run: ``<pod>.log`` for the first, ``<pod>.<n>.log`` for restart
    ``n``."""
    return f"{pod}.log" if restart_count == 0 else f"{pod}.{restart_count}.log"


def run_number(restarted_from: Crashed | None) -> int:
    """The restart count of the run that follows ``restarted_from`` in its Pod (0: none, the
    Pod's first run)."""
    return 0 if restarted_from is None else restarted_from.restart_count + 1


def pod_first_launch(restarted_from: Crashed | None, launched_at: float | None) -> float | None:
    """When the Pod's first process was up: its first run's, or this run's (``launched_at``)
    when it is the first or the first never came up."""
    first = None if restarted_from is None else restarted_from.launched_at
    return first if first is not None else launched_at
