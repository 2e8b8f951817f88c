"""Where a revision's replicas serve their metrics, for the direct metric source.

In a cluster the replicas are the Pods labelled ``serving.knative.dev/revision=<name>``; their
queue-proxy serves the autoscaling gauges on port 9090 (the autoscaler's ``Stat`` in protobuf
since Knative 1.6, Prometheus text before) and the request metrics on 9091 (``pkg/queue``), or
at the ports a Pod declares under Knative's names for them. ``PodEndpoints`` keeps a watch of
those Pods (every Pod with the label, in the namespace the controller tunes) in a cache once
started, so a tick and the sampling rounds between ticks read replicas without a request to the
API; until the watch has listed (and while it fails: a role without ``watch``, an API without
Pods, an outage), each call lists the revision's Pods. The cache files each Pod under its
revision and keeps of it only what a replica's endpoint needs (thousands of Pods: a call reads
its revision's, and of a Pod's spec only those named ports are held). One-machine mode passes
its own ``EndpointResolver`` instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.metrics.source import ReplicaEndpoint
from autoscaler.runtime.reconcile import names

from .informer import PODS, Informer

log = logging.getLogger(__name__)

QUEUE_PROXY_PORTS = (9090, 9091)
# The names Knative gives those two ports on the queue-proxy container (serving's
# AutoscalingQueueMetricsPortName and UserQueueMetricsPortName). A Pod that declares them is
# read at the ports it declares (one-machine mode's replicas listen on loopback ports of their
# own); one that does not, at Knative's numbers.
QUEUE_PROXY_PORT_NAMES = ("http-autometric", "http-usermetric")


def _metric_ports(pod: Mapping[str, Any]) -> tuple[int, ...]:
    """The gauge port, then the request-metrics port: those the Pod declares under Knative's
    names (one port that serves both is declared once), else Knative's numbers."""
    declared: dict[str, int] = {}
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            name, number = port.get("name"), port.get("containerPort")
            if name in QUEUE_PROXY_PORT_NAMES and isinstance(number, int):
                declared.setdefault(name, number)
    if not declared:
        return QUEUE_PROXY_PORTS
    return tuple(dict.fromkeys(declared[n] for n in QUEUE_PROXY_PORT_NAMES if n in declared))


def _serving(pod: Mapping[str, Any]) -> bool:
    """Running with an IP, not being deleted, and Ready when it says (a Pod starting up or
    draining is not an endpoint, as in a Service's Endpoints)."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    if not status.get("podIP") or status.get("phase") != "Running" or not meta.get("name"):
        return False
    if meta.get("deletionTimestamp"):
        return False
    ready = _ready_status(status)
    return ready is None or ready == "True"


def _ready_status(status: Mapping[str, Any]) -> str | None:
    """A Pod status's Ready condition's status (None: it says nothing of readiness)."""
    for c in status.get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("status"))
    return None


class EndpointResolver(Protocol):
    def replicas(self, namespace: str, revision: str) -> tuple[ReplicaEndpoint, ...]:
        """The scrape endpoints of a revision's ready replicas (blocking I/O allowed)."""
        ...


def replica_endpoints(pods: Iterable[Mapping[str, Any]]) -> tuple[ReplicaEndpoint, ...]:
    """The running Pods with an IP, as the queue-proxy's metric URLs, by Pod name."""
    out = []
    for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name") or "")):
        if not _serving(pod):
            continue
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ip = status["podIP"]
        host = f"[{ip}]" if ":" in ip else ip
        urls = tuple(f"http://{host}:{port}/metrics" for port in _metric_ports(pod))
        # the sampling rounds between ticks read only the gauges (port 9090); one URL serving
        # both is read whole
        gauges = urls[:1] if len(urls) > 1 else ()
        out.append(ReplicaEndpoint(str(meta["name"]), urls, gauge_urls=gauges))
    return tuple(out)


def revision_of(pod: Mapping[str, Any]) -> str | None:
    """The revision a Pod serves (its ``serving.knative.dev/revision`` label)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    value = labels.get(names.REVISION_LABEL)
    return str(value) if value is not None else None


def endpoint_fields(pod: dict[str, Any]) -> dict[str, Any]:
    """What ``replica_endpoints`` and the cache read of a Pod."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    keep = ("name", "namespace", "labels", "resourceVersion", "deletionTimestamp")
    kept_status: dict[str, Any] = {k: status[k] for k in ("phase", "podIP") if k in status}
    ready = _ready_status(status)
    if ready is not None:
        kept_status["conditions"] = [{"type": "Ready", "status": ready}]
    out: dict[str, Any] = {
        "apiVersion": pod.get("apiVersion"),
        "kind": pod.get("kind"),
        "metadata": {k: meta[k] for k in keep if k in meta},
        "status": kept_status,
    }
    ports = [
        {"name": p.get("name"), "containerPort": p.get("containerPort")}
        for c in (pod.get("spec") or {}).get("containers") or []
        for p in c.get("ports") or []
        if p.get("name") in QUEUE_PROXY_PORT_NAMES
    ]
    if ports:
        out["spec"] = {"containers": [{"name": "queue-proxy", "ports": ports}]}
    return out


class PodEndpoints:
    """Replicas from the Pods API: a watched cache once started and listed, else one LIST per
    call (an API without Pods gives none, said once in the log)."""

    def __init__(
        self,
        api_client: client.ApiClient,
        request_timeout_s: float = 5.0,
        *,
        namespace: str | None = None,
        watch: bool = True,
    ) -> None:
        self._core = client.CoreV1Api(api_client)
        self._timeout = request_timeout_s
        self._unavailable = False
        self._informer = (
            Informer(
                api_client,
                PODS,
                namespace=namespace,
                label_selector=names.REVISION_LABEL,
                index=revision_of,
                transform=endpoint_fields,
            )
            if watch
            else None
        )
        self.lists = 0  # LIST requests made because the cache was not there (yet)

    def start(self) -> None:
        """Start watching the Pods (the controller starts it with its informers)."""
        if self._informer is not None:
            self._informer.start()

    def stop(self) -> None:
        if self._informer is not None:
            self._informer.stop()

    def wait_synced(self, timeout_s: float) -> bool:
        """Whether the watch has listed the Pods once (False without one)."""
        return self._informer is not None and self._informer.wait_synced(timeout_s)

    def replicas(self, namespace: str, revision: str) -> tuple[ReplicaEndpoint, ...]:
        if self._unavailable:
            return ()
        informer = self._informer
        if informer is not None and informer.is_current():
            return self._cached(namespace, revision)
        self.lists += 1
        try:
            resp: Any = self._core.list_namespaced_pod(
                namespace,
                label_selector=f"{names.REVISION_LABEL}={revision}",
                _request_timeout=self._timeout,
                _preload_content=False,
            )
        except Exception as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                log.warning("this API serves no Pods: the direct metric source has no replicas")
                self._unavailable = True
                self.stop()
                return ()
            log.info("listing the Pods of %s/%s: %s", namespace, revision, exc)
            # the watch's cache, if it ever listed, rather than no replicas at all
            synced = informer is not None and informer.has_synced()
            return self._cached(namespace, revision) if synced else ()
        return replica_endpoints(json.loads(resp.data).get("items") or [])

    def _cached(self, namespace: str, revision: str) -> tuple[ReplicaEndpoint, ...]:
        assert self._informer is not None
        return replica_endpoints(self._informer.indexed(namespace, revision))
