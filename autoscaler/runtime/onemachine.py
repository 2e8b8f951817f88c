"""One-machine mode put together: the embedded API server, the data plane, the serving controller,
and (when present) the tuner, on one event loop.

``OneMachine`` is what ``modelscale up``, the demo and the end-to-end tests start. Every part
talks to the API server over real HTTP with the official client, exactly as it would in a
cluster; the replicas show there as each revision's Deployment and Pods (``PodMirror``), whose
``kubectl logs`` are the replica logs under ``data_dir/logs``. The tuner's direct metric source
finds each replica's queue-proxy through those Pods, as in a cluster (the ports they declare
under Knative's names). An admin server on 127.0.0.1 serves the autoscaler gauges
(``/metrics``) and the replicas' metrics endpoints as Prometheus HTTP service discovery
(``/sd/replicas``), so a Prometheus server finds every queue-proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from autoscaler.apiserver import APIServer
from autoscaler.clock import Clock, SystemClock
from autoscaler.kpa import AutoscalerConfig
from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.podmirror import QUEUE_PROXY, PodMirror
from autoscaler.runtime.reconcile import admission
from autoscaler.runtime.reconcile.controller import ServingController
from autoscaler.runtime.restarts import run_log_name
from autoscaler.runtime.spec import RevisionKey

log = logging.getLogger(__name__)


@dataclass
class OneMachineSettings:
    data_dir: Path
    api_port: int = 0
    ingress_port: int = 0
    admin_port: int = 0
    max_replicas: int | None = None
    domain: str = "example.com"
    legacy_pa_annotations: bool = False
    autoscaler_config: dict[str, str] = field(default_factory=dict)
    tuner: bool = True  # run the tuner controller against the embedded API
    tuner_sink_url: str | None = None  # where modelscale.scaling.changed CloudEvents go
    eventing: bool = True  # the Broker/Trigger reconciler and the broker ingress
    broker_port: int = 0  # the broker ingress on 127.0.0.1 (0: a free port)
    # The tuner's metric source, as the metrics ConfigMap keys (autoscaler.metrics.settings):
    # empty is the direct scrape; {"source": "prometheus", "prometheus_url": ...} reads PromQL.
    tuner_metrics: dict[str, str] = field(default_factory=dict)
    tuner_identity: str = "modelscale-up"
    # Take part in leader election on the tuner Lease, the one `modelscale controller` uses
    # (``modelscale-tuner`` in ``default``): a controller started against this API server
    # then stands by while this tuner leads, and leads when it stops.
    tuner_leader_election: bool = True
    # Written as the tuner ConfigMap before the tuner starts (its keys: autoscaler.tuner
    # settings, e.g. tick_period_s), so even the first tick runs on them. Empty: left alone.
    tuner_config: dict[str, str] = field(default_factory=dict)


# The ModelScaler CRD ships with the manifests; one-machine mode loads the same file.
MODELSCALER_CRD = (
    Path(__file__).resolve().parents[2] / "manifests" / "crds" / "modelscale.dev_modelscalers.yaml"
)


class OneMachine:
    def __init__(self, settings: OneMachineSettings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.registry = CollectorRegistry()
        self.apiserver = APIServer(
            settings.data_dir,
            port=settings.api_port,
            clock=self.clock,
            extra_crds=[MODELSCALER_CRD],
        )
        self.apiserver.validators.update(admission.VALIDATORS)
        self.dataplane = DataPlane(
            self.clock,
            domain=settings.domain,
            max_replicas=settings.max_replicas,
            log_dir=settings.data_dir / "logs",
            ingress_port=settings.ingress_port,
        )
        self.apiserver.log_source = self._log_path
        self.controller: ServingController | None = None
        self.mirror: PodMirror | None = None
        self.eventing: Any = None  # autoscaler.eventing.EventingController when started
        self.tuner: Any = None
        self._tuner_task: asyncio.Task[None] | None = None
        self._admin: web.AppRunner | None = None
        self.admin_url = ""
        self.dashboard_url = ""  # the live dashboard on the admin server

    @property
    def kubeconfig_path(self) -> Path:
        return self.apiserver.kubeconfig_path

    @property
    def ingress_url(self) -> str:
        return self.dataplane.ingress_url

    def api_client(self) -> Any:
        from kubernetes import client, config

        configuration = client.Configuration()
        # From memory: the kubeconfig file is written only once start-up has succeeded.
        config.load_kube_config_from_dict(
            self.apiserver.kubeconfig(), client_configuration=configuration
        )
        return client.ApiClient(configuration)

    async def start(self) -> None:
        """Start every part; the kubeconfig is written last, so it names a running server.
        If a part fails to start (a port in use), what did start is stopped again."""
        try:
            await self._start()
        except BaseException:
            with contextlib.suppress(Exception):
                await self.stop()
            raise
        self.apiserver.write_kubeconfig()

    async def _start(self) -> None:
        if self.settings.eventing:
            from autoscaler.eventing.crds import upstream_crds

            self.apiserver.extra_crds.extend(upstream_crds())
        await self.apiserver.start(write_kubeconfig=False)
        await self.dataplane.start()
        self.mirror = PodMirror(
            self.api_client(), self.clock, self._revision, self.dataplane.delete_replica
        )
        self.dataplane.on_replicas(self.mirror.on_pool)
        await self.mirror.start()
        self.controller = ServingController(
            self.api_client(),
            self.dataplane,
            self.clock,
            autoscaler_config=AutoscalerConfig.from_configmap(self.settings.autoscaler_config),
            legacy_pa_annotations=self.settings.legacy_pa_annotations,
            registry=self.registry,
        )
        await self.controller.start()
        if self.settings.eventing:
            from autoscaler.eventing.reconciler import start_onemachine_eventing

            self.eventing = await start_onemachine_eventing(self)
        await self._start_admin()
        if self.settings.tuner:
            await self._start_tuner()

    async def _start_tuner(self) -> None:
        from autoscaler.kube.controller import Controller
        from autoscaler.kube.endpoints import PodEndpoints
        from autoscaler.kube.leader import ElectionConfig, LeaderElector
        from autoscaler.kube.settings import ControllerSettings
        from autoscaler.metrics import make_source, parse_metrics_config

        settings = ControllerSettings(
            identity=self.settings.tuner_identity,
            sink_url=self.settings.tuner_sink_url,
            metrics_port=0,
        )
        metrics_config = parse_metrics_config(self.settings.tuner_metrics)
        api = self.api_client()
        if self.settings.tuner_config:
            from kubernetes import client
            from kubernetes.client.rest import ApiException

            from autoscaler.tuner import parse_tuner_config

            parse_tuner_config(self.settings.tuner_config)  # a bad key fails here, named
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=settings.config_map),
                data=dict(self.settings.tuner_config),
            )

            def write_config_map() -> None:  # create or replace (blocking: the official client)
                core = client.CoreV1Api(api)
                try:
                    core.create_namespaced_config_map(settings.namespace, body)
                except ApiException as exc:
                    if exc.status != 409:
                        raise
                    core.patch_namespaced_config_map(settings.config_map, settings.namespace, body)

            await asyncio.to_thread(write_config_map)
        elector = None
        if self.settings.tuner_leader_election:
            election = ElectionConfig(settings.namespace, settings.lease_name, settings.identity)
            elector = LeaderElector(api, election, self.clock)
            # One attempt now, so the first tick already leads when the Lease is free.
            if not await asyncio.to_thread(elector.try_acquire_or_renew):
                log.info(
                    "tuner standing by: another controller holds Lease %s/%s",
                    election.namespace,
                    election.name,
                )
        direct = metrics_config.source == "direct"
        self.tuner = Controller(
            api,
            make_source(metrics_config),
            settings,
            self.clock,
            elector=elector,
            # the replicas' Pods, watched through the API as in a cluster
            endpoints=PodEndpoints(api, namespace=settings.watch_namespace) if direct else None,
            owns_source=True,
        )
        self._tuner_task = asyncio.create_task(self.tuner.run(), name="tuner")

    async def stop(self) -> None:
        if self._tuner_task is not None:
            self._tuner_task.cancel()
            await asyncio.gather(self._tuner_task, return_exceptions=True)
            await self.tuner.stop()
        if self._admin is not None:
            await self._admin.cleanup()
        if self.eventing is not None:
            await self.eventing.stop()
        if self.controller is not None:
            await self.controller.stop()
        if self.mirror is not None:  # the replicas' Pods left go at the next start
            await self.mirror.stop()
        await self.dataplane.close()
        await self.apiserver.stop()

    async def __aenter__(self) -> OneMachine:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _revision(self, key: RevisionKey) -> dict[str, Any] | None:
        if self.controller is None:
            return None
        return self.controller.informers["rev"].get(key.namespace, key.name)

    def _log_path(self, namespace: str, pod: str, container: str, run: int) -> Path | None:
        """A replica Pod's user container logs each run (each replica process) to a file of its
        own (the queue-proxy runs in this process: its log is empty)."""
        if container == QUEUE_PROXY or self.dataplane.log_dir is None:
            return None
        path = self.dataplane.log_dir / run_log_name(pod, run)
        return path if path.is_file() else None

    # -- admin endpoints -------------------------------------------------------------------------
    def replica_targets(self) -> list[dict[str, Any]]:
        """Prometheus HTTP SD: one group per replica with Knative's labels."""
        groups = []
        for key in self.dataplane.revisions():
            pool = self.dataplane.pool(key)
            for qp in pool.ready_targets():
                if qp.metrics_port is None:
                    continue
                groups.append(
                    {
                        "targets": [f"127.0.0.1:{qp.metrics_port}"],
                        "labels": {
                            "namespace": key.namespace,
                            "revision": key.name,
                            "configuration": pool.configuration or "",
                            "pod": qp.name,
                        },
                    }
                )
        return groups

    async def _start_admin(self) -> None:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        async def sd(_: web.Request) -> web.Response:
            return web.json_response(self.replica_targets())

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/sd/replicas", sd)
        from autoscaler.dashboard import DEFAULT_PREFIX, OneMachineSource, mount_dashboard

        mount_dashboard(app, OneMachineSource(self), clock=self.clock)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.settings.admin_port)
        await site.start()
        self._admin = runner
        port = runner.addresses[0][1]
        self.admin_url = f"http://127.0.0.1:{port}"
        self.dashboard_url = f"{self.admin_url}{DEFAULT_PREFIX}/"


async def wait_for(predicate: Any, timeout_s: float, interval_s: float = 0.05) -> None:
    """Poll a condition with a deadline (for drivers and tests that watch real processes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        if predicate():
            return
        if loop.time() > deadline:
            raise TimeoutError(f"condition not met within {timeout_s}s")
        await asyncio.sleep(interval_s)
