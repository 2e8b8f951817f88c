"""Keep-alive and pre-warm windows, relative to a revision's last request.

Every idle-time policy (the baseline and ours) answers with ``KeepAliveWindows``: a replica
should be warm during ``[0, warm_until_s]`` after the last request when ``warm_from_s`` is 0
(plain keep-alive), else during ``[warm_from_s, warm_until_s]`` (pre-warm: unloaded in
between, loaded again ahead of the predicted next request). ``plan`` turns that into what
Knative understands; see ``keepalive_plan``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

WindowKind = Literal["fallback", "keep-alive", "pre-warm", "forecast", "long", "fixed", "off"]


@dataclass(frozen=True, slots=True)
class KeepAliveWindows:
    warm_from_s: float
    warm_until_s: float
    kind: WindowKind
    reason: str

    def __post_init__(self) -> None:
        if self.warm_from_s < 0 or self.warm_until_s < self.warm_from_s:
            raise ValueError(
                f"windows must satisfy 0 <= warm_from_s <= warm_until_s, got "
                f"{self.warm_from_s} and {self.warm_until_s}"
            )

    @property
    def prewarm(self) -> bool:
        return self.warm_from_s > 0

    def is_warm(self, since_last_request_s: float) -> bool:
        """Whether the policy wants a replica warm this long after the last request."""
        return self.warm_from_s <= since_last_request_s <= self.warm_until_s
