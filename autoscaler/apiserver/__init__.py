"""The embedded Kubernetes-compatible API server (one-machine mode).

kubectl and the official ``kubernetes`` Python client work against it unchanged: discovery
(plain and aggregated), OpenAPI v3, Tables, watch, the four patch types, the status
subresource, a Pod's ``log`` (from the runtime's log files), finalizers, dryRun and fieldValidation, with objects kept in SQLite. Built-in
kinds: Namespace, ConfigMap, Secret, Event (core/v1 and events.k8s.io/v1), Lease,
CustomResourceDefinition, and (stored, not run) Deployment, Service, ServiceAccount, the RBAC
kinds and PodDisruptionBudget; a CRD registers its resource and its schema is enforced on writes
(CEL ``x-kubernetes-validations`` rules are not evaluated).

Embedding::

    server = APIServer(data_dir, host="127.0.0.1", port=0, extra_crds=(), clock=SystemClock())
    await server.start()          # server.url, server.token, server.kubeconfig_path
    ...
    await server.stop()

In tests, ``autoscaler.apiserver.testing.running_apiserver(tmp_path)`` runs one on a background
thread and gives ``api_client()`` and ``kubectl(...)``; ``server.record_requests()`` logs each
request as RBAC sees it (verb, group, resource, subresource, namespace, name, user).

Server-side apply tracks field ownership (``metadata.managedFields``, apply conflicts, removal
of fields a manager stops applying; see ``managed``), and limit/continue pages are read from the
first page's snapshot. Not done: garbage collection of owner references, protobuf,
authorization beyond the one bearer token.
"""

from autoscaler.apiserver.handlers import Settings as Settings
from autoscaler.apiserver.server import APIServer as APIServer

__all__ = ["APIServer", "Settings"]
