"""Telling people and systems about an applied change: a Kubernetes Event on the ModelScaler
and a CloudEvent ``modelscale.scaling.changed`` to an optional sink.

The Event is a core/v1 Event (involvedObject the ModelScaler, reason ``TargetChanged``,
``KeepAliveChanged`` or ``MinScaleChanged``), as ``kubectl describe`` and ``kubectl get events``
show them. The CloudEvent goes in binary mode (``ce-*`` headers, ``Content-Type: application/json``,
JSON body) with the cloudevents SDK; it is sent on its own task with a short timeout, so a slow or absent sink never holds up a
tick. Failures of either are logged and counted, never raised.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from cloudevents.conversion import to_binary
from cloudevents.http import CloudEvent
from kubernetes import client

from autoscaler.runtime.reconcile import names

from .world import RETENTION_ANNOTATION, WINDOW_ANNOTATION

log = logging.getLogger(__name__)

EVENT_TYPE = "modelscale.scaling.changed"
EVENT_SOURCE = "modelscale/tuner"
CONTENT_TYPE = "application/json"  # binary mode: carried as the Content-Type header
COMPONENT = "modelscale-tuner"

REASONS: dict[str, str] = {
    names.TARGET: "TargetChanged",
    RETENTION_ANNOTATION: "KeepAliveChanged",
    names.MIN_SCALE: "MinScaleChanged",
    WINDOW_ANNOTATION: "StableWindowChanged",
}


def event_reason(annotation: str) -> str:
    return REASONS.get(annotation, "ScalingChanged")


def change_data(
    namespace: str,
    model: str,
    revision: str,
    old: Mapping[str, str | None],
    new: Mapping[str, str],
    reasons: tuple[str, ...],
    method: str,
) -> dict[str, Any]:
    """The CloudEvent's data: what changed where, from what to what, and why."""
    return {
        "namespace": namespace,
        "model": model,
        "revision": revision,
        "apply": method,
        "old": {k: old.get(k) for k in new},
        "new": dict(new),
        "reasons": list(reasons),
    }


class Notifier:
    """Sends Events (blocking, call from a worker thread) and CloudEvents (on the event loop)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        *,
        sink_url: str | None = None,
        sink_timeout_s: float = 2.0,
        identity: str = COMPONENT,
        is_leader: Callable[[], bool] = lambda: True,
        on_error: Callable[[str], None] = lambda kind: None,
        on_sent: Callable[[], None] = lambda: None,
        request_timeout_s: float = 10.0,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self.sink_url = sink_url
        self._sink_timeout_s = sink_timeout_s
        self._identity = identity
        self._is_leader = is_leader
        self._on_error = on_error
        self._on_sent = on_sent
        self._request_timeout_s = request_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    # --- Kubernetes Events ---------------------------------------------------------------
    def kube_event(
        self, scaler: Mapping[str, Any], reason: str, message: str, wall_s: float
    ) -> bool:
        """Create one Normal Event on ``scaler``; False (logged, counted) when it failed."""
        meta = scaler.get("metadata") or {}
        ns = meta.get("namespace") or "default"
        when = dt.datetime.fromtimestamp(int(wall_s), tz=dt.UTC)
        body = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta.get('name')}.{uuid.uuid4().hex[:16]}", namespace=ns
            ),
            involved_object=client.V1ObjectReference(
                api_version=scaler.get("apiVersion", "modelscale.dev/v1alpha1"),
                kind=scaler.get("kind", "ModelScaler"),
                name=meta.get("name"),
                namespace=ns,
                uid=meta.get("uid"),
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type="Normal",
            count=1,
            first_timestamp=when,
            last_timestamp=when,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component="modelscale.dev/tuner",
            reporting_instance=self._identity,
        )
        if not self._is_leader():
            return False
        try:
            self._core.create_namespaced_event(ns, body, _request_timeout=self._request_timeout_s)
            return True
        except Exception as exc:  # an Event is best effort: never fail the tick for one
            log.warning(
                "could not record event", extra={"fields": {"reason": reason, "error": str(exc)}}
            )
            self._on_error("event")
            return False

    # --- CloudEvents ---------------------------------------------------------------------
    def cloud_event(self, data: Mapping[str, Any]) -> None:
        """Send ``data`` as a ``modelscale.scaling.changed`` CloudEvent in the background."""
        if not self.sink_url:
            return
        task = asyncio.get_running_loop().create_task(self._send(dict(data)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, data: dict[str, Any]) -> None:
        assert self.sink_url is not None
        try:
            event = CloudEvent(
                {"type": EVENT_TYPE, "source": EVENT_SOURCE, "datacontenttype": CONTENT_TYPE},
                data,
            )
            headers, body = to_binary(event)
            if self._session is None:
                self._session = aiohttp.ClientSession()
            timeout = aiohttp.ClientTimeout(total=self._sink_timeout_s)
            async with self._session.post(
                self.sink_url, data=body, headers=headers, timeout=timeout
            ) as resp:
                if resp.status >= 300:
                    raise RuntimeError(f"sink answered {resp.status} {resp.reason}")
            self._on_sent()
        except Exception as exc:  # the sink is optional: log, count, carry on
            log.warning(
                "could not deliver CloudEvent",
                extra={"fields": {"sink": self.sink_url, "error": repr(exc)}},
            )
            self._on_error("cloudevent")

    async def drain(self) -> None:
        """Wait for the CloudEvents in flight (each bounded by the sink timeout)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self._session is not None:
            await self._session.close()
            self._session = None
