"""Where a revision's replicas serve their metrics, for the direct metric source.

In a cluster the replicas are the Pods labelled ``serving.knative.dev/revision=<name>``; their
queue-proxy serves the autoscaling gauges on port 9090 and the request metrics on 9091 (Knative
≤ 1.18, ``pkg/queue``). One-machine mode passes its own ``EndpointResolver`` instead.
"""

from __future__ import annotations

import logging
from typing import Protocol

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.metrics.source import ReplicaEndpoint
from autoscaler.runtime.reconcile import names

log = logging.getLogger(__name__)

QUEUE_PROXY_PORTS = (9090, 9091)


class EndpointResolver(Protocol):
    def replicas(self, namespace: str, revision: str) -> tuple[ReplicaEndpoint, ...]:
        """The scrape endpoints of a revision's ready replicas (blocking I/O allowed)."""
        ...


class PodEndpoints:
    """Replicas from the Pods API (an API without Pods gives none, said once in the log)."""

    def __init__(self, api_client: client.ApiClient, request_timeout_s: float = 5.0) -> None:
        self._core = client.CoreV1Api(api_client)
        self._timeout = request_timeout_s
        self._unavailable = False

    def replicas(self, namespace: str, revision: str) -> tuple[ReplicaEndpoint, ...]:
        if self._unavailable:
            return ()
        try:
            pods = self._core.list_namespaced_pod(
                namespace,
                label_selector=f"{names.REVISION_LABEL}={revision}",
                _request_timeout=self._timeout,
            )
        except ApiException as exc:
            if exc.status == 404:
                log.warning("this API serves no Pods: the direct metric source has no replicas")
                self._unavailable = True
            return ()
        out = []
        for pod in pods.items or []:
            status, meta = pod.status, pod.metadata
            ip = status.pod_ip if status else None
            if status is None or meta is None or not ip or status.phase != "Running":
                continue
            host = f"[{ip}]" if ":" in ip else ip
            urls = tuple(f"http://{host}:{port}/metrics" for port in QUEUE_PROXY_PORTS)
            # the sampling rounds between ticks read only the gauges (port 9090)
            out.append(ReplicaEndpoint(str(meta.name), urls, gauge_urls=urls[:1]))
        return tuple(out)
