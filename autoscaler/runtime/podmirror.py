"""Each revision's replicas as Kubernetes objects: a Deployment per revision, a Pod per replica.

In a cluster a Knative revision runs as the Deployment ``<revision>-deployment`` and its Pods;
one-machine mode runs replica processes instead (``RevisionPool``). ``PodMirror`` writes what a
cluster would show for them to the API server, so ``kubectl get pods -w``, ``kubectl get deploy``,
``kubectl logs`` and ``kubectl delete pod`` work as they do there:

- the Deployment carries the labels Knative puts on a revision's Deployment (the revision's,
  without its routing state, plus ``serving.knative.dev/revision``, ``revisionUID`` and ``app``),
  is controlled by the Revision, selects its Pods by ``revisionUID`` as Knative's does, has the
  pool's desired count as ``spec.replicas`` and the ready
  ones in its status, with ``Available`` and ``Progressing`` conditions;
- each replica is a Pod named as the replica (``<revision>-deployment-<hash>-<5 chars>``) with
  the Deployment's labels plus ``pod-template-hash``, controlled by the Deployment, with the user
  container (``kserve-container`` for an InferenceService) and ``queue-proxy`` naming their real
  loopback ports once the process has bound them. It is ``Pending`` (``ContainerCreating``) while
  the process starts and loads its model, ``Running`` once the process is up (READY 0/2 as its
  containers start) and READY 2/2 once ready; a replica draining on a
  scale-down is deleted with the runtime's finalizer on it, so it shows ``Terminating`` until the
  process has exited, and the finalizer's removal then removes the Pod;
- a Pod someone deletes (``kubectl delete pod``) stops its replica, and the pool starts a
  replacement, a new Pod, to keep its desired count, as a Deployment's ReplicaSet would;
- a replica that crashes (exits on its own, or fails to start or to load its model) is
  restarted in its Pod, as the kubelet restarts a container: the Pod keeps its name, the user
  container's ``restartCount`` counts the runs before the current one and ``lastState.terminated``
  says how the last of them ended (exit code, ``Error`` or ``Completed``, its start and end).
  Until the next run starts the container shows that end: ``state.waiting`` with reason
  ``CrashLoopBackOff`` (``back-off 2s restarting failed container=NAME pod=POD_NAMESPACE(UID)``,
  the kubelet's message) while the pool backs off, ``state.terminated`` while it restarts at
  once; the Pod stays ``Running`` with Ready and ContainersReady False, and its queue-proxy,
  which in a cluster is not restarted with the user container, keeps running, not ready.

The API server has no garbage collector: the Deployment is deleted when its revision's pool is
gone. A Deployment someone deletes is made again (watched), as Knative's revision reconciler
does. Pods are owned by the Deployment directly (there is no ReplicaSet in between).

None of this is on the data path. The pool notes each change with ``observe`` (a snapshot of the
revision's replicas, no I/O); one task writes the latest snapshot of each changed revision, so a
burst of changes (gathered for ``COALESCE_S``) becomes one write per object; API errors are logged and retried with backoff
(serving goes on while the API server is away). At start, Pods of an earlier run (their processes
are gone with it) are removed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from autoscaler.clock import Clock
from autoscaler.kube.endpoints import revision_of
from autoscaler.kube.informer import PODS, Informer, Resource
from autoscaler.runtime.reconcile import names
from autoscaler.runtime.replica import ReplicaState
from autoscaler.runtime.restarts import Crashed, Termination, pod_first_launch, run_number
from autoscaler.runtime.spec import RevisionKey

if TYPE_CHECKING:
    from autoscaler.runtime.pool import RevisionPool

log = logging.getLogger(__name__)

# Put on every Pod the runtime writes; the runtime removes it once the replica's process exited.
FINALIZER = "modelscale.dev/replica-process"
REVISION_UID_LABEL = "serving.knative.dev/revisionUID"
DEPLOYMENTS = Resource("apps", "v1", "deployments", "Deployment")
# How long the writer lets a burst of changes gather before writing it: a wake from zero is one
# round of writes after the first response (measured: writing each step at once added 30 to 45 ms
# to the first response from zero through `modelscale up`, `bench/coldstart.py`).
COALESCE_S = 0.25
ROUTING_STATE_LABEL = "serving.knative.dev/routingState"
POD_TEMPLATE_HASH_LABEL = "pod-template-hash"
APP_LABEL = "app"
QUEUE_PROXY = "queue-proxy"
QUEUE_PROXY_IMAGE = "modelscale/queue-proxy"  # in the runtime's process, not an image
DEFAULT_USER_CONTAINER = "user-container"
LOOPBACK = "127.0.0.1"
PROGRESS_DEADLINE_S = 600  # Knative's progress-deadline default


def iso(wall_s: float) -> str:
    return dt.datetime.fromtimestamp(wall_s, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def go_duration(seconds: float) -> str:
    """``seconds`` as Go prints a ``time.Duration`` (as the kubelet's back-off message has it):
    ``10s``, ``1m20s``, ``5m0s``, ``1.5s``, ``500ms``."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)

    def frac(value: int, unit: int, suffix: str) -> str:
        whole, rest = divmod(value, unit)
        digits = f"{rest:0{len(str(unit)) - 1}d}".rstrip("0")
        return f"{whole}.{digits}{suffix}" if digits else f"{whole}{suffix}"

    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return sign + frac(ns, 1_000, "µs")
    if ns < 1_000_000_000:
        return sign + frac(ns, 1_000_000, "ms")
    hours, ns = divmod(ns, 3600 * 10**9)
    minutes, ns = divmod(ns, 60 * 10**9)
    out = frac(ns, 10**9, "s")
    if hours:
        return f"{sign}{hours}h{minutes}m{out}"
    return f"{sign}{minutes}m{out}" if minutes else sign + out


def deployment_name(revision: str) -> str:
    """Knative's name for a revision's Deployment."""
    return f"{revision}-deployment"


# -- what the pool says ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReplicaView:
    """One replica as the mirror sees it; times are wall-clock seconds."""

    name: str
    state: ReplicaState
    stopping: bool
    created: float  # its Pod's (the first run's start, when it restarted a crashed replica)
    launched: float | None = None  # the process is up
    ready: float | None = None
    user_port: int | None = None
    proxy_port: int | None = None
    metrics_port: int | None = None
    restarted_from: Crashed | None = None  # the crashed run it restarted in its Pod

    @property
    def restart_count(self) -> int:
        return run_number(self.restarted_from)

    @property
    def pod_launched(self) -> float | None:
        """When the Pod's first process was up (its queue-proxy runs from then)."""
        return pod_first_launch(self.restarted_from, self.launched)

    @property
    def live(self) -> bool:
        return not self.stopping and self.state in (ReplicaState.STARTING, ReplicaState.READY)

    @property
    def terminating(self) -> bool:
        return self.state is ReplicaState.DRAINING or (
            self.stopping and self.state is not ReplicaState.GONE
        )


@dataclass(frozen=True)
class PoolView:
    key: RevisionKey
    desired: int
    template_hash: str
    replicas: tuple[ReplicaView, ...] = ()
    closed: bool = False  # the revision's pool is gone (its replicas are still stopping)
    crashed: tuple[Crashed, ...] = ()  # replicas waiting to be restarted (their Pods stay)


def view_of(pool: RevisionPool, wall_offset: float) -> PoolView:
    """A snapshot of ``pool``; ``wall_offset`` turns its monotonic times into wall times."""

    def wall(t: float | None) -> float | None:
        return None if t is None else t + wall_offset

    replicas = []
    for r in pool.replicas:
        qp = r.queue_proxy
        replicas.append(
            ReplicaView(
                name=r.name,
                state=r.state,
                stopping=r.stopping,
                created=r.pod_created_at + wall_offset,
                launched=wall(r.launched_at),
                ready=wall(r.ready_at),
                user_port=r.process.port if r.process is not None else None,
                proxy_port=qp.port if qp is not None else None,
                metrics_port=qp.metrics_port if qp is not None else None,
                restarted_from=(
                    None if r.restarted_from is None else r.restarted_from.shifted(wall_offset)
                ),
            )
        )
    crashed = tuple(c.shifted(wall_offset) for c in pool.crashed)
    return PoolView(
        pool.key, pool.desired, pool.template_hash, tuple(replicas), pool.closed, crashed
    )


# -- the objects ---------------------------------------------------------------------------------


def revision_labels(revision: Mapping[str, Any]) -> dict[str, str]:
    """The labels Knative puts on a revision's Deployment and Pods (its ``makeLabels``)."""
    meta = revision["metadata"]
    labels = {
        str(k): str(v) for k, v in (meta.get("labels") or {}).items() if k != ROUTING_STATE_LABEL
    }
    labels[names.REVISION_LABEL] = meta["name"]
    labels[REVISION_UID_LABEL] = str(meta.get("uid", ""))
    labels.setdefault(APP_LABEL, meta["name"])
    return labels


def user_container(revision: Mapping[str, Any]) -> dict[str, Any]:
    """The revision's container as the Pods show it (named ``user-container`` when unnamed)."""
    containers = (revision.get("spec") or {}).get("containers") or [{}]
    c = containers[0]
    out: dict[str, Any] = {"name": c.get("name") or DEFAULT_USER_CONTAINER}
    for k in ("image", "command", "args", "env", "workingDir", "resources"):
        if c.get(k):
            out[k] = c[k]
    return out


def _queue_proxy_container() -> dict[str, Any]:
    return {"name": QUEUE_PROXY, "image": QUEUE_PROXY_IMAGE}


def desired_deployment(revision: Mapping[str, Any], view: PoolView) -> dict[str, Any]:
    """The revision's Deployment without its status."""
    meta = revision["metadata"]
    labels = revision_labels(revision)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(meta["name"]),
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "ownerReferences": [names.owner_reference(revision)],
        },
        "spec": {
            "replicas": view.desired,
            "selector": {"matchLabels": {REVISION_UID_LABEL: labels[REVISION_UID_LABEL]}},
            "progressDeadlineSeconds": PROGRESS_DEADLINE_S,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [user_container(revision), _queue_proxy_container()],
                    "enableServiceLinks": False,
                },
            },
        },
    }


def _port(name: str, port: int | None) -> list[dict[str, Any]]:
    return [] if port is None else [{"name": name, "containerPort": port, "protocol": "TCP"}]


def desired_pod(
    deployment: Mapping[str, Any],
    replica: ReplicaView,
    template_hash: str,
    node_name: str,
) -> dict[str, Any]:
    """A replica's Pod without its status (``deployment`` as written: it has its uid)."""
    dmeta = deployment["metadata"]
    template = deployment["spec"]["template"]
    labels = {**template["metadata"]["labels"], POD_TEMPLATE_HASH_LABEL: template_hash}
    user, _queue = template["spec"]["containers"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": replica.name,
            "namespace": dmeta["namespace"],
            "labels": labels,
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": dmeta["name"],
                    "uid": dmeta.get("uid", ""),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
            "finalizers": [FINALIZER],
        },
        "spec": {
            "containers": [
                {**user, "ports": _port("user-port", replica.user_port)},
                {
                    **_queue_proxy_container(),
                    # one port serves the gauges and the request metrics: declared once, under
                    # the gauges' name (the tuner's Pod resolver reads the declared ones)
                    "ports": _port("http1", replica.proxy_port)
                    + _port("http-autometric", replica.metrics_port),
                },
            ],
            "enableServiceLinks": False,
            "nodeName": node_name,
            "restartPolicy": "Always",
        },
    }


def _terminated(t: Termination) -> dict[str, Any]:
    """A run's end as a container state's ``terminated``."""
    out: dict[str, Any] = {"exitCode": t.exit_code, "reason": t.reason}
    if t.message:
        out["message"] = t.message
    out["startedAt"] = iso(t.started_at)
    out["finishedAt"] = iso(t.finished_at)
    return out


def _container(
    name: str,
    image: str,
    state: dict[str, Any],
    ready: bool,
    restart_count: int = 0,
    last_state: Termination | None = None,
) -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "imageID": "",
        "lastState": {} if last_state is None else {"terminated": _terminated(last_state)},
        "ready": ready,
        "started": "running" in state,
        "restartCount": restart_count,
        "state": state,
    }


def _running_since(at: float | None) -> dict[str, Any]:
    return (
        {"waiting": {"reason": "ContainerCreating"}}
        if at is None
        else {"running": {"startedAt": iso(at)}}
    )


def _user_container(name: str, image: str, replica: ReplicaView) -> dict[str, Any]:
    """The user container of a live replica's Pod. A restarted run not yet up shows the run it
    restarts as ended, with that run's restart count, as the kubelet does until the new container
    exists."""
    crashed = replica.restarted_from
    ready = replica.ready is not None
    if replica.launched is None and crashed is not None:
        return _container(
            name,
            image,
            {"terminated": _terminated(crashed.terminated)},
            ready,
            crashed.restart_count,
            crashed.last_state,
        )
    return _container(
        name,
        image,
        _running_since(replica.launched),
        ready,
        replica.restart_count,
        None if crashed is None else crashed.terminated,
    )


def pod_phase(statuses: list[dict[str, Any]]) -> str:
    """The phase the kubelet gives a Pod of ``restartPolicy: Always`` with these container
    statuses (pkg/kubelet/kubelet_pods.go getPhase): Pending while a container waits for its
    first start, else Running (a container that ended waits for its restart)."""
    first_start = [
        c
        for c in statuses
        if "waiting" in c["state"] and not c.get("lastState", {}).get("terminated")
    ]
    return "Pending" if first_start else "Running"


def _pod_condition(type_: str, status: str, at: str, reason: str, message: str) -> dict[str, Any]:
    """A Pod condition; a reason (a not-ready one) comes with the message naming the containers."""
    out: dict[str, Any] = {
        "type": type_,
        "status": status,
        "lastProbeTime": None,
        "lastTransitionTime": at,
    }
    if reason:
        out["reason"] = reason
        out["message"] = message
    return out


def _status(
    created: float,
    sandbox_ready: bool,
    containers: list[dict[str, Any]],
    ready_since: float | None,
    unready_since: float,
) -> dict[str, Any]:
    """A replica Pod's status around its container statuses: Ready and ContainersReady True
    from ``ready_since`` once every container is ready, else False from ``unready_since``."""
    created_at = iso(created)
    not_ready = [c["name"] for c in containers if not c["ready"]]
    message = f"containers with unready status: [{' '.join(not_ready)}]"
    if not_ready or ready_since is None:
        ready, reason, at = "False", "ContainersNotReady", iso(unready_since)
    else:
        ready, reason, at = "True", "", iso(ready_since)

    def cond(type_: str, status: str, at: str, reason: str = "") -> dict[str, Any]:
        return _pod_condition(type_, status, at, reason, message)

    return {
        "phase": pod_phase(containers),
        "conditions": [
            cond("PodReadyToStartContainers", "True" if sandbox_ready else "False", created_at),
            cond("Initialized", "True", created_at),
            cond("Ready", ready, at, reason),
            cond("ContainersReady", ready, at, reason),
            cond("PodScheduled", "True", created_at),
        ],
        "hostIP": LOOPBACK,
        "hostIPs": [{"ip": LOOPBACK}],
        "podIP": LOOPBACK,
        "podIPs": [{"ip": LOOPBACK}],
        "startTime": created_at,
        "qosClass": "BestEffort",
        "containerStatuses": containers,
    }


def pod_status(
    pod: Mapping[str, Any], replica: ReplicaView, draining_since: float | None
) -> dict[str, Any]:
    """What the runtime knows of a replica, as a Pod's status. ``draining_since``: when it was
    seen to drain (its queue-proxy takes no more requests from then). A restarted replica's Pod
    is not ready from its last run's end until this run is ready."""
    user, queue = pod["spec"]["containers"]
    serving = replica.ready is not None and draining_since is None
    containers = [
        _user_container(user["name"], user.get("image", ""), replica),
        _container(
            QUEUE_PROXY, queue.get("image", ""), _running_since(replica.pod_launched), serving
        ),
    ]
    crashed = replica.restarted_from
    unready_since = replica.created if crashed is None else crashed.terminated.finished_at
    if draining_since is not None:
        unready_since = draining_since
    return _status(
        replica.created,
        replica.pod_launched is not None or crashed is not None,
        containers,
        replica.ready,
        unready_since,
    )


def crashed_status(pod: Mapping[str, Any], crashed: Crashed, uid: str) -> dict[str, Any]:
    """The Pod of a replica that crashed, until its next run starts: the user container shows
    how the run ended, waiting in CrashLoopBackOff with the kubelet's message while the pool
    backs off (``uid``: the Pod's, which the message names), else as that end; its queue-proxy
    runs on, not ready."""
    user, queue = pod["spec"]["containers"]
    namespace = pod["metadata"].get("namespace", "")
    state: dict[str, Any]
    last: Termination | None
    if crashed.backoff_s is not None:
        message = (
            f"back-off {go_duration(crashed.backoff_s)} restarting failed container="
            f"{user['name']} pod={crashed.name}_{namespace}({uid})"
        )
        state = {"waiting": {"reason": "CrashLoopBackOff", "message": message}}
        last = crashed.terminated  # the run that ended is the last one
    else:
        state = {"terminated": _terminated(crashed.terminated)}
        last = crashed.last_state  # the one before it
    containers = [
        _container(user["name"], user.get("image", ""), state, False, crashed.restart_count, last),
        _container(QUEUE_PROXY, queue.get("image", ""), _running_since(crashed.launched_at), False),
    ]
    return _status(crashed.created_at, True, containers, None, crashed.terminated.finished_at)


def deployment_status(
    deployment: Mapping[str, Any], view: PoolView, now_wall: float
) -> dict[str, Any]:
    """The Deployment's status for ``view`` (``deployment`` as written: its generation and its
    conditions so far, whose transition times stay while their status does)."""
    live = [r for r in view.replicas if r.live]
    ready = sum(1 for r in live if r.ready is not None)
    desired = view.desired
    max_unavailable = desired // 4  # the default rolling update's 25 %, rounded down
    available = ready >= desired - max_unavailable
    rs_name = f"{deployment['metadata']['name']}-{view.template_hash}"
    done = ready >= desired and len(live) == desired
    now = iso(now_wall)
    previous = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}

    def cond(type_: str, status: bool, reason: str, message: str) -> dict[str, Any]:
        text = "True" if status else "False"
        old = previous.get(type_) or {}
        same = old.get("status") == text
        kept = same and old.get("reason") == reason
        return {
            "type": type_,
            "status": text,
            "lastUpdateTime": old.get("lastUpdateTime", now) if kept else now,
            "lastTransitionTime": old.get("lastTransitionTime", now) if same else now,
            "reason": reason,
            "message": message,
        }

    status: dict[str, Any] = {
        "observedGeneration": int(deployment["metadata"].get("generation", 1) or 1),
        "replicas": len(live),
        "updatedReplicas": len(live),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "conditions": [
            cond(
                "Available",
                available,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            cond(
                "Progressing",
                True,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{rs_name}" has successfully progressed.'
                if done
                else f'ReplicaSet "{rs_name}" is progressing.',
            ),
        ],
    }
    if desired - ready > 0:
        status["unavailableReplicas"] = desired - ready
    for k in ("readyReplicas", "availableReplicas", "replicas", "updatedReplicas"):
        if status[k] == 0:
            del status[k]  # upstream omits zero counts
    return status


# -- the driver ----------------------------------------------------------------------------------


@dataclass
class _Pod:
    body: dict[str, Any]  # metadata and spec as last written
    status: dict[str, Any] | None = None
    deleting: bool = False
    uid: str = ""  # as the API server gave it


@dataclass
class _Deployment:
    obj: dict[str, Any]  # as the API server answered the last write (its uid and generation)
    body: dict[str, Any]  # metadata and spec as last written
    status: dict[str, Any] | None = None


def _revision_key(obj: Mapping[str, Any]) -> RevisionKey | None:
    """The revision a Pod or Deployment belongs to (its revision label), or None."""
    revision = revision_of(obj)
    if revision is None:
        return None
    return RevisionKey((obj.get("metadata") or {}).get("namespace", ""), revision)


def _json(resp: Any) -> dict[str, Any]:
    data = json.loads(resp.data or b"{}")
    return data if isinstance(data, dict) else {}


def _with_status(obj: Mapping[str, Any], status: Any) -> dict[str, Any]:
    """``obj`` carrying ``status``, for a write of its status subresource (which takes only the
    status from it; no resourceVersion: the runtime alone writes these statuses)."""
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**obj, "metadata": meta, "status": status}


class PodMirror:
    """Writes the Deployments and Pods of the revisions it observes (see the module doc).

    ``revision_of(key)`` reads a Revision (the serving controller's cache); ``delete_replica(key,
    name)`` stops a live replica whose Pod was deleted (True when there was one).
    """

    def __init__(
        self,
        api_client: client.ApiClient,
        clock: Clock,
        revision_of: Callable[[RevisionKey], Mapping[str, Any] | None],
        delete_replica: Callable[[RevisionKey, str], bool],
        *,
        node_name: str | None = None,
        backoff_s: float = 0.2,
        backoff_max_s: float = 10.0,
        coalesce_s: float = COALESCE_S,
    ) -> None:
        self.clock = clock
        self._api_client = api_client
        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._revision_of = revision_of
        self._delete_replica = delete_replica
        self.node_name = node_name or socket.gethostname()
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.coalesce_s = coalesce_s
        self.wall_offset = clock.wall() - clock.now()
        # failed writes in a row, per revision (its backoff's exponent), and when to try again:
        # one revision's failing writes hold up no other's
        self._failures: dict[RevisionKey, int] = {}
        self._retry_at: dict[RevisionKey, float] = {}
        self._views: dict[RevisionKey, PoolView] = {}
        self._dirty: set[RevisionKey] = set()
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._deployments: dict[RevisionKey, _Deployment] = {}
        self._pods: dict[RevisionKey, dict[str, _Pod]] = {}
        self._draining: dict[str, float] = {}  # replica -> when it was seen draining
        self._task: asyncio.Task[None] | None = None
        self._informer: Informer | None = None
        self._deployment_informer: Informer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- inputs (on the data path: no I/O) -------------------------------------------------------
    def on_pool(self, pool: RevisionPool) -> None:
        """The ``DataPlane.on_replicas`` callback."""
        self.observe(view_of(pool, self.wall_offset))

    def observe(self, view: PoolView) -> None:
        self._views[view.key] = view
        self._mark(view.key)

    def _mark(self, key: RevisionKey) -> None:
        """``key``'s objects are to be written (again)."""
        self._dirty.add(key)
        self._settled.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Wait until every observed change is written, or the writes wait out a backoff."""
        await self._settled.wait()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Remove an earlier run's Pods, watch Pods for deletions, start writing."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._remove_stale()
        except Exception as exc:  # the API server answers later: the Pods stay until next start
            log.warning("removing the Pods of an earlier run failed: %s", exc)
        self._informer = Informer(self._api_client, PODS, label_selector=names.REVISION_LABEL)
        self._informer.add_handler(self._pod_event)
        self._informer.start()
        self._deployment_informer = Informer(
            self._api_client, DEPLOYMENTS, label_selector=names.REVISION_LABEL
        )
        self._deployment_informer.add_handler(self._deployment_event)
        self._deployment_informer.start()
        self._task = asyncio.create_task(self._run(), name="pod-mirror")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for informer in (self._informer, self._deployment_informer):
            if informer is not None:
                await asyncio.to_thread(informer.stop)
        self._informer = self._deployment_informer = None

    async def _remove_stale(self) -> None:
        pods = _json(
            await asyncio.to_thread(
                self._core.list_pod_for_all_namespaces,
                label_selector=names.REVISION_LABEL,
                _preload_content=False,
            )
        ).get("items", [])
        for pod in pods:
            meta = pod.get("metadata") or {}
            if FINALIZER in (meta.get("finalizers") or []):
                await self._remove_pod(meta["namespace"], meta["name"], deleting=False)
                log.info("removed Pod %s/%s of an earlier run", meta["namespace"], meta["name"])

    # -- Pod deletions by others -----------------------------------------------------------------
    def _pod_event(self, kind: str, pod: dict[str, Any]) -> None:  # on the informer's thread
        meta = pod.get("metadata") or {}
        if kind != "DELETED" and not meta.get("deletionTimestamp"):
            return
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._pod_deleted, pod)

    def _pod_deleted(self, pod: dict[str, Any]) -> None:
        key = _revision_key(pod)
        view = self._views.get(key) if key is not None else None
        if key is None or view is None:
            return
        name = (pod.get("metadata") or {}).get("name", "")
        live = any(r.name == name and r.live for r in view.replicas)
        if not live and all(c.name != name for c in view.crashed):
            return
        record = (self._pods.get(key) or {}).get(name)
        if record is not None:
            record.deleting = True
        if self._delete_replica(key, name):
            log.info("Pod %s/%s deleted: stopping its replica", key.namespace, name)

    def _deployment_event(self, kind: str, obj: dict[str, Any]) -> None:  # informer's thread
        key = _revision_key(obj)
        if kind != "DELETED" or self._loop is None or key is None:
            return
        uid = (obj.get("metadata") or {}).get("uid")
        self._loop.call_soon_threadsafe(self._forget_deployment, key, uid)

    # -- writing ---------------------------------------------------------------------------------
    @property
    def failures(self) -> int:
        """The most failed writes in a row of any revision (0: none is backing off)."""
        return max(self._failures.values(), default=0)

    def _due(self, key: RevisionKey, now: float) -> bool:
        return self._retry_at.get(key, now) <= now

    async def _run(self) -> None:
        while True:
            if self.coalesce_s > 0:
                # a replica's steps come in a burst as it starts (desired, launched, up, ready)
                # on the loop that serves its first request: written together, a moment later
                await self.clock.sleep(self.coalesce_s)
            self._wake.clear()
            now = self.clock.now()
            keys = {k for k in self._dirty if self._due(k, now)}
            self._dirty -= keys
            for key in sorted(keys):
                try:
                    await self._sync(key)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    n = self._failures.get(key, 0)
                    level = logging.WARNING if n == 0 else logging.DEBUG
                    log.log(level, "writing the Pods of %s failed (again later): %s", key, exc)
                    self._failures[key] = n + 1
                    delay = min(self.backoff_max_s, self.backoff_s * 2**n)
                    self._retry_at[key] = self.clock.now() + delay
                    self._dirty.add(key)
                else:
                    self._failures.pop(key, None)
                    self._retry_at.pop(key, None)
            now = self.clock.now()
            if any(self._due(k, now) for k in self._dirty):
                continue
            self._settled.set()
            if not self._dirty:
                await self._wake.wait()
                continue
            # the next retry, unless a change comes first
            delay = min(self._retry_at[k] for k in self._dirty) - now
            waits = [
                asyncio.ensure_future(self.clock.sleep(delay)),
                asyncio.ensure_future(self._wake.wait()),
            ]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _call(self, fn: Callable[..., Any], *args: Any, missing_ok: bool = False) -> Any:
        """An API call in a thread; its JSON answer (None: 404 and ``missing_ok``)."""
        try:
            resp = await asyncio.to_thread(fn, *args, _preload_content=False)
        except ApiException as exc:
            if missing_ok and exc.status == 404:
                return None
            raise
        return _json(resp)

    async def _sync(self, key: RevisionKey) -> None:
        view = self._views.get(key)
        if view is None:
            return
        records = self._pods.setdefault(key, {})
        present = {r.name: r for r in view.replicas if r.live or r.terminating}
        crashed = [c for c in view.crashed if c.name not in present]
        # Pods whose process has exited go first (those of crashed replicas stay for the restart)
        waiting = {c.name for c in crashed}
        gone = [n for n in records if n not in present and n not in waiting]
        for name in gone:
            await self._remove_pod(key.namespace, name, deleting=records[name].deleting)
            del records[name]
            self._draining.pop(name, None)
        if view.closed and not view.replicas:
            await self._call(
                self._apps.delete_namespaced_deployment,
                deployment_name(key.name),
                key.namespace,
                missing_ok=True,
            )
            self._deployments.pop(key, None)
            self._pods.pop(key, None)
            if self._views.get(key) is view:
                del self._views[key]
            return
        revision = None if view.closed else self._revision_of(key)
        if revision is not None:
            await self._ensure_deployment(key, revision, view)
        elif not view.closed and key not in self._deployments:
            # the serving controller's cache has not seen the revision yet: again after a while
            raise LookupError(f"revision {key} is not known yet")
        deployment = self._deployments.get(key)
        for replica in view.replicas:
            if replica.name not in present:
                continue
            await self._sync_pod(
                key, replica, view, deployment.obj if deployment else None, records
            )
        if not view.closed:
            for c in crashed:
                await self._show_crashed(key, c, view, deployment, records)
        if deployment is not None and not view.closed:
            shown = {**deployment.obj, "status": deployment.status or {}}
            status = deployment_status(shown, view, self.clock.wall())
            if deployment.status != status:
                meta = deployment.obj["metadata"]
                written = await self._call(
                    self._apps.replace_namespaced_deployment_status,
                    meta["name"],
                    meta["namespace"],
                    _with_status(deployment.obj, status),
                    missing_ok=True,
                )
                if written is None:  # deleted by someone: made again, as a revision's would be
                    self._forget_deployment(key)
                    return
                deployment.status = status

    def _forget_deployment(self, key: RevisionKey, uid: str | None = None) -> None:
        """The Deployment of ``key`` is gone (of that ``uid``, if given): written anew next."""
        known = self._deployments.get(key)
        if known is None or (uid is not None and known.obj["metadata"].get("uid") != uid):
            return
        del self._deployments[key]
        self._mark(key)

    async def _ensure_deployment(
        self, key: RevisionKey, revision: Mapping[str, Any], view: PoolView
    ) -> None:
        desired = desired_deployment(revision, view)
        known = self._deployments.get(key)
        if known is not None and known.body == desired:
            return
        name, ns = desired["metadata"]["name"], key.namespace
        written = None
        if known is not None:
            written = await self._call(
                self._apps.replace_namespaced_deployment, name, ns, desired, missing_ok=True
            )
        if written is None:  # new, or deleted by someone: (re)created
            try:
                written = await self._call(self._apps.create_namespaced_deployment, ns, desired)
            except ApiException as exc:
                if exc.status != 409:  # an earlier run's: taken over
                    raise
                written = await self._call(
                    self._apps.replace_namespaced_deployment, name, ns, desired
                )
            known = None
        self._deployments[key] = _Deployment(written, desired, known.status if known else None)

    async def _sync_pod(
        self,
        key: RevisionKey,
        replica: ReplicaView,
        view: PoolView,
        deployment: dict[str, Any] | None,
        records: dict[str, _Pod],
    ) -> None:
        record = records.get(replica.name)
        if replica.terminating:
            if record is None:
                return  # never shown: nothing to terminate
            self._draining.setdefault(replica.name, self.clock.wall())
        if record is None:
            if deployment is None:
                return  # the Deployment first (the revision is not in the cache yet)
            body = desired_pod(deployment, replica, view.template_hash, self.node_name)
            record = records[replica.name] = await self._create_pod(key, body)
        elif deployment is not None and not record.deleting:
            body = desired_pod(deployment, replica, view.template_hash, self.node_name)
            if body != record.body:  # the process bound its ports
                await self._call(
                    self._core.replace_namespaced_pod, replica.name, key.namespace, body
                )
                record.body = body
        status = pod_status(record.body, replica, self._draining.get(replica.name))
        if status != record.status:
            written = await self._call(
                self._core.replace_namespaced_pod_status,
                replica.name,
                key.namespace,
                _with_status(record.body, status),
                missing_ok=True,
            )
            record.status = status if written is not None else None
        if replica.terminating and not record.deleting:
            await self._call(
                self._core.delete_namespaced_pod, replica.name, key.namespace, missing_ok=True
            )
            record.deleting = True

    async def _create_pod(self, key: RevisionKey, body: dict[str, Any]) -> _Pod:
        """Create a replica's Pod (one of that name left by an earlier run is taken over)."""
        try:
            written = await self._call(self._core.create_namespaced_pod, key.namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            name = body["metadata"]["name"]
            written = await self._call(self._core.replace_namespaced_pod, name, key.namespace, body)
        return _Pod(body, uid=str((written.get("metadata") or {}).get("uid", "")))

    async def _show_crashed(
        self,
        key: RevisionKey,
        crashed: Crashed,
        view: PoolView,
        deployment: _Deployment | None,
        records: dict[str, _Pod],
    ) -> None:
        """The Pod of a replica waiting for its restart, saying how its run ended (written even
        when the replica came and went between two writes, so its log can be read)."""
        record = records.get(crashed.name)
        if record is None:
            if deployment is None:
                return
            gone = ReplicaView(crashed.name, ReplicaState.GONE, False, crashed.created_at)
            body = desired_pod(deployment.obj, gone, view.template_hash, self.node_name)
            record = records[crashed.name] = await self._create_pod(key, body)
        if record.deleting:
            return
        status = crashed_status(record.body, crashed, record.uid)
        if status == record.status:
            return
        written = await self._call(
            self._core.replace_namespaced_pod_status,
            crashed.name,
            key.namespace,
            _with_status(record.body, status),
            missing_ok=True,
        )
        record.status = status if written is not None else None

    async def _remove_pod(self, namespace: str, name: str, *, deleting: bool) -> None:
        """The replica's process has exited: its Pod goes (deleted, then the finalizer off)."""
        if not deleting:
            await self._call(self._core.delete_namespaced_pod, name, namespace, missing_ok=True)
        await self._call(
            self._core.patch_namespaced_pod,
            name,
            namespace,
            {"metadata": {"finalizers": None}},
            missing_ok=True,
        )
