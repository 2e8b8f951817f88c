"""The controller's settings (where it runs, what it tells, where it listens), parsed in one place.

The tuner's own settings (tick period, estimators, keep-alive) are not here: they come from the
tuner ConfigMap (``autoscaler.tuner.parse_tuner_config``), which the controller re-reads each
tick. Errors name the setting, the value and what is allowed.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .retry import Backoff

DEFAULT_LEASE = "modelscale-tuner"
DEFAULT_CONFIG_MAP = "modelscale-tuner"
DEFAULT_METRICS_BIND = "127.0.0.1:9095"


class ControllerSettingsError(ValueError):
    """A controller setting is not allowed; the message names it and its value."""


@dataclass(frozen=True, slots=True)
class ControllerSettings:
    # The controller's own namespace: its Lease and the tuner ConfigMap live there.
    namespace: str = "default"
    # Watch ModelScalers in this namespace only (None: all namespaces).
    watch_namespace: str | None = None
    config_map: str = DEFAULT_CONFIG_MAP
    lease_name: str = DEFAULT_LEASE
    identity: str = field(default_factory=lambda: socket.gethostname())
    sink_url: str | None = None
    sink_timeout_s: float = 2.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9095
    request_timeout_s: float = 10.0
    write_backoff: Backoff = field(default_factory=Backoff)
    # Scrape replicas for the direct metric source (needs Pods in the API).
    resolve_pods: bool = False


def parse_bind(value: str, key: str = "--metrics-bind") -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9095`` for IPv6) as a pair; the port 0..65535."""
    host, sep, port_text = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host:
        raise ControllerSettingsError(f"{key}: {value!r} is not HOST:PORT")
    try:
        port = int(port_text)
    except ValueError:
        raise ControllerSettingsError(f"{key}: {value!r} has no port number") from None
    if not 0 <= port <= 65535:
        raise ControllerSettingsError(f"{key}: port {port} is out of range, allowed [0, 65535]")
    return host, port


def parse_sink(value: str | None, key: str = "--sink") -> str | None:
    """An http(s) URL with a host, or None (no sink)."""
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ControllerSettingsError(f"{key}: {value!r} is not an http:// or https:// URL")
    return value
