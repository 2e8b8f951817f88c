"""The machine-wide replica cap: how many replica processes this machine may run at once.

A KServe model server process takes about 135 MB here (reference, section 5). The default cap is
what the memory available at start-up holds at that size, keeping a 20 % reserve for everything
else; ``max_replicas`` overrides it. Pools take a slot before starting a replica and give it back
when the replica has exited; a pool that cannot get one says so in its status reason.
"""

from __future__ import annotations

from collections.abc import Callable

BYTES_PER_REPLICA = 135 * 1024 * 1024
RESERVE_FRACTION = 0.2


def replica_cap_for(
    available_bytes: int,
    bytes_per_replica: int = BYTES_PER_REPLICA,
    reserve_fraction: float = RESERVE_FRACTION,
) -> int:
    """Replicas that fit in ``available_bytes`` after the reserve; at least 1."""
    usable = available_bytes * (1.0 - reserve_fraction)
    return max(1, int(usable // bytes_per_replica))


def default_replica_cap() -> int:
    import psutil

    return replica_cap_for(int(psutil.virtual_memory().available))


class ReplicaBudget:
    """Slots shared by every pool of the runtime; listeners hear when a slot frees up."""

    def __init__(self, max_replicas: int | None = None) -> None:
        cap = default_replica_cap() if max_replicas is None else max_replicas
        if cap < 0:
            raise ValueError(f"max_replicas={cap}: must be >= 0")
        self.max_replicas = cap
        self.used = 0
        self._listeners: list[Callable[[], None]] = []

    def try_acquire(self) -> bool:
        if self.used >= self.max_replicas:
            return False
        self.used += 1
        return True

    def release(self) -> None:
        self.used = max(0, self.used - 1)
        for listener in list(self._listeners):
            listener()

    def subscribe(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def reason(self) -> str:
        return f"ReplicaCapReached: the machine-wide cap of {self.max_replicas} replicas is in use"
