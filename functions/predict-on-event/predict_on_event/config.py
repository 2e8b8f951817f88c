"""Configuration of predict-on-event, from the environment, checked at start.

How the model's KServe endpoint is found, one of:

- ``MODEL_URL_TEMPLATE``: a base URL with ``{model}`` and ``{namespace}`` placeholders, for
  example ``http://{model}-predictor.{namespace}.svc.cluster.local`` (in-cluster) or
  ``http://{model}.{namespace}.example.com`` (a DNS name per model);
- ``INGRESS_URL`` with ``MODEL_HOST_TEMPLATE``: one ingress address, the model picked by the
  ``Host`` header (``{model}.{namespace}.example.com``), as Knative's ingress routes.

Also ``MODEL_NAMESPACE`` (default ``default``; an event may name another), ``PREDICT_TIMEOUT_S``
(default 30, in (0, 3600]), ``LISTEN_HOST`` (default 127.0.0.1), ``PORT`` (default 8080) and
``EVENT_SOURCE`` (the ``source`` of reply events).
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ConfigError", "FunctionConfig"]

_PLACEHOLDERS = {"model", "namespace"}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and the value."""


@dataclass(frozen=True)
class FunctionConfig:
    """Where models live and how long to wait for them."""

    model_url_template: str | None = None
    ingress_url: str | None = None
    model_host_template: str | None = None
    model_namespace: str = "default"
    predict_timeout_s: float = 30.0
    listen_host: str = "127.0.0.1"
    port: int = 8080
    event_source: str = "/modelscale/functions/predict-on-event"

    def __post_init__(self) -> None:
        if bool(self.model_url_template) == bool(self.ingress_url):
            raise ConfigError(
                "set exactly one of MODEL_URL_TEMPLATE or INGRESS_URL (with MODEL_HOST_TEMPLATE); "
                f"got MODEL_URL_TEMPLATE={self.model_url_template!r}, INGRESS_URL={self.ingress_url!r}"
            )
        if self.model_url_template:
            _check_template("MODEL_URL_TEMPLATE", self.model_url_template)
            _check_url(
                "MODEL_URL_TEMPLATE",
                self.model_url_template,
                self.model_url_template.format(model="m", namespace="n"),
            )
        if self.ingress_url:
            _check_url("INGRESS_URL", self.ingress_url, self.ingress_url)
            if not self.model_host_template:
                raise ConfigError(
                    "MODEL_HOST_TEMPLATE is required with INGRESS_URL, e.g. {model}.{namespace}.example.com"
                )
            _check_template("MODEL_HOST_TEMPLATE", self.model_host_template)
        if not 0 < self.predict_timeout_s <= 3600:
            raise ConfigError(
                f"PREDICT_TIMEOUT_S={self.predict_timeout_s}: must be in (0, 3600] seconds"
            )
        if not 0 < self.port <= 65535:
            raise ConfigError(f"PORT={self.port}: must be in [1, 65535]")
        if not _DNS_LABEL.match(self.model_namespace) or len(self.model_namespace) > 63:
            raise ConfigError(
                f"MODEL_NAMESPACE={self.model_namespace!r}: must be a namespace name (a DNS-1123 "
                "label: at most 63 lowercase letters, digits or '-', starting and ending with a "
                "letter or digit)"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> FunctionConfig:
        """The configuration in ``env`` (``os.environ`` in production)."""
        return cls(
            model_url_template=env.get("MODEL_URL_TEMPLATE") or None,
            ingress_url=env.get("INGRESS_URL") or None,
            model_host_template=env.get("MODEL_HOST_TEMPLATE") or None,
            model_namespace=env.get("MODEL_NAMESPACE", "default"),
            predict_timeout_s=_number(env, "PREDICT_TIMEOUT_S", "30", float),
            listen_host=env.get("LISTEN_HOST", "127.0.0.1"),
            port=int(_number(env, "PORT", "8080", int)),
            event_source=env.get("EVENT_SOURCE", "/modelscale/functions/predict-on-event"),
        )

    def endpoint(self, model: str, namespace: str) -> tuple[str, dict[str, str]]:
        """(base URL, extra headers) to reach ``model`` in ``namespace``."""
        if self.model_url_template:
            return self.model_url_template.format(model=model, namespace=namespace).rstrip("/"), {}
        assert self.ingress_url is not None and self.model_host_template is not None
        host = self.model_host_template.format(model=model, namespace=namespace)
        return self.ingress_url.rstrip("/"), {"Host": host}


def _check_template(key: str, template: str) -> None:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"{key}={template!r}: not a valid template: {exc}") from None
    unknown = names - _PLACEHOLDERS
    if unknown:
        raise ConfigError(
            f"{key}={template!r}: unknown placeholder(s) {sorted(unknown)}; allowed: {{model}}, {{namespace}}"
        )


def _check_url(key: str, raw: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{key}={raw!r}: expected an absolute http(s) URL")


def _number(env: Mapping[str, str], key: str, default: str, kind: type[int] | type[float]) -> float:
    raw = env.get(key, default)
    try:
        return kind(raw)
    except ValueError:
        raise ConfigError(
            f"{key}={raw!r}: expected {'an integer' if kind is int else 'a number'}"
        ) from None
