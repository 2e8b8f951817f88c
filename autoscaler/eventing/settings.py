"""Settings of the embedded broker, parsed from strings in one place.

``BrokerSettings.from_strings`` takes the same keys as the dataclass fields (from a config map,
flags or the environment) and names the key, the value and the allowed range in every error.
``default_ttl`` keeps Knative's broker default of 255 hops for ``knativebrokerttl``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

from autoscaler.eventing.store import SYNCHRONOUS_MODES

__all__ = ["BrokerSettings", "SettingsError"]


class SettingsError(ValueError):
    """A broker setting outside its allowed range."""


@dataclass(frozen=True)
class BrokerSettings:
    """Where the ingress listens and how hard the delivery loop works."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port; the chosen one is in BrokerCore.url
    max_event_bytes: int = 4 * 1024 * 1024
    sqlite_synchronous: str = "FULL"
    max_inflight_deliveries: int = 64
    request_timeout_s: float = 60.0
    drain_timeout_s: float = 10.0
    prune_interval_s: float = 30.0
    default_ttl: int = 255
    # Subscribers at cluster addresses (not loopback) are reached through this HTTP proxy: in
    # one-machine mode the ingress, which routes ``<name>.<ns>.svc.cluster.local`` by Host.
    proxy_url: str = ""

    def __post_init__(self) -> None:
        _in_range("port", self.port, 0, 65535)
        _in_range("max_event_bytes", self.max_event_bytes, 1024, 256 * 1024 * 1024)
        _in_range("max_inflight_deliveries", self.max_inflight_deliveries, 1, 10_000)
        _in_range("request_timeout_s", self.request_timeout_s, 0.01, 3600.0)
        _in_range("drain_timeout_s", self.drain_timeout_s, 0.0, 3600.0)
        _in_range("prune_interval_s", self.prune_interval_s, 0.1, 86400.0)
        _in_range("default_ttl", self.default_ttl, 1, 10_000)
        if self.proxy_url and not self.proxy_url.startswith(("http://", "https://")):
            raise SettingsError(f"proxy_url: {self.proxy_url!r} is not an http(s) URL")
        if self.sqlite_synchronous.upper() not in SYNCHRONOUS_MODES:
            raise SettingsError(
                f"sqlite_synchronous: {self.sqlite_synchronous!r} is not one of "
                f"{', '.join(SYNCHRONOUS_MODES)}"
            )

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> BrokerSettings:
        """Settings from string values keyed by field name; unknown keys are an error."""
        known = {f.name: f for f in fields(cls)}
        parsed: dict[str, object] = {}
        for key, raw in values.items():
            if key not in known:
                raise SettingsError(
                    f"{key}: unknown broker setting (known: {', '.join(sorted(known))})"
                )
            kind = known[key].type
            try:
                if kind in ("int", int):
                    parsed[key] = int(raw)
                elif kind in ("float", float):
                    parsed[key] = float(raw)
                else:
                    parsed[key] = str(raw)
            except ValueError:
                raise SettingsError(f"{key}: {raw!r} is not a {kind}") from None
        return cls(**parsed)  # type: ignore[arg-type]


def _in_range(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise SettingsError(f"{key}: {value} is outside the allowed range [{low}, {high}]")
