"""Configuration of batch-predict, from the environment, checked at start.

The model endpoint is found as in predict-on-event: ``MODEL_URL_TEMPLATE`` (``{model}`` and
``{namespace}`` placeholders) or ``INGRESS_URL`` with ``MODEL_HOST_TEMPLATE`` (Host header).
Batching: ``BATCH_WINDOW_MS`` (default 20, in (0, 10000]) is how long the first event of a batch
waits for company; ``MAX_BATCH`` (default 32, in [1, 10000]) events close a batch at once.
Also ``MODEL_NAMESPACE``, ``PREDICT_TIMEOUT_S``, ``LISTEN_HOST``, ``PORT``, ``EVENT_SOURCE``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["BatchConfig", "ConfigError"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class BatchConfig:
    model_url_template: str | None = None
    ingress_url: str | None = None
    model_host_template: str | None = None
    model_namespace: str = "default"
    predict_timeout_s: float = 30.0
    batch_window_ms: float = 20.0
    max_batch: int = 32
    listen_host: str = "127.0.0.1"
    port: int = 8080
    event_source: str = "/modelscale/functions/batch-predict"

    def __post_init__(self) -> None:
        if bool(self.model_url_template) == bool(self.ingress_url):
            raise ConfigError(
                "set exactly one of MODEL_URL_TEMPLATE or INGRESS_URL (with MODEL_HOST_TEMPLATE); "
                f"got MODEL_URL_TEMPLATE={self.model_url_template!r}, INGRESS_URL={self.ingress_url!r}"
            )
        for key, value in (
            ("MODEL_URL_TEMPLATE", self.model_url_template),
            ("MODEL_HOST_TEMPLATE", self.model_host_template),
        ):
            if value:
                _check_template(key, value)
        base = self.model_url_template or self.ingress_url or ""
        parts = urlsplit(base.format(model="m", namespace="n"))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            key = "MODEL_URL_TEMPLATE" if self.model_url_template else "INGRESS_URL"
            raise ConfigError(f"{key}={base!r}: expected an absolute http(s) URL")
        if self.ingress_url and not self.model_host_template:
            raise ConfigError(
                "MODEL_HOST_TEMPLATE is required with INGRESS_URL, e.g. {model}.{namespace}.example.com"
            )
        if not _DNS_LABEL.match(self.model_namespace) or len(self.model_namespace) > 63:
            raise ConfigError(
                f"MODEL_NAMESPACE={self.model_namespace!r}: must be a namespace name (a DNS-1123 "
                "label: at most 63 lowercase letters, digits or '-', starting and ending with a "
                "letter or digit)"
            )
        _in_range("PREDICT_TIMEOUT_S", self.predict_timeout_s, 0.0, 3600.0, low_open=True)
        _in_range("BATCH_WINDOW_MS", self.batch_window_ms, 0.0, 10_000.0, low_open=True)
        _in_range("MAX_BATCH", self.max_batch, 1, 10_000)
        _in_range("PORT", self.port, 1, 65535)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BatchConfig:
        return cls(
            model_url_template=env.get("MODEL_URL_TEMPLATE") or None,
            ingress_url=env.get("INGRESS_URL") or None,
            model_host_template=env.get("MODEL_HOST_TEMPLATE") or None,
            model_namespace=env.get("MODEL_NAMESPACE", "default"),
            predict_timeout_s=_number(env, "PREDICT_TIMEOUT_S", "30", float),
            batch_window_ms=_number(env, "BATCH_WINDOW_MS", "20", float),
            max_batch=int(_number(env, "MAX_BATCH", "32", int)),
            listen_host=env.get("LISTEN_HOST", "127.0.0.1"),
            port=int(_number(env, "PORT", "8080", int)),
            event_source=env.get("EVENT_SOURCE", "/modelscale/functions/batch-predict"),
        )

    def endpoint(self, model: str, namespace: str) -> tuple[str, dict[str, str]]:
        """(base URL, extra headers) to reach ``model`` in ``namespace``."""
        if self.model_url_template:
            return self.model_url_template.format(model=model, namespace=namespace).rstrip("/"), {}
        assert self.ingress_url is not None and self.model_host_template is not None
        return self.ingress_url.rstrip("/"), {
            "Host": self.model_host_template.format(model=model, namespace=namespace)
        }


def _check_template(key: str, template: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"{key}={template!r}: not a valid template: {exc}") from None
    if names - {"model", "namespace"}:
        raise ConfigError(
            f"{key}={template!r}: unknown placeholder(s) {sorted(names - {'model', 'namespace'})}"
        )


def _in_range(key: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    if (value <= low if low_open else value < low) or value > high:
        bracket = "(" if low_open else "["
        raise ConfigError(f"{key}={value}: must be in {bracket}{low:g}, {high:g}]")


def _number(env: Mapping[str, str], key: str, default: str, kind: type[int] | type[float]) -> float:
    raw = env.get(key, default)
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r}: expected {'an integer' if kind is int else 'a number'}"
        ) from None
