"""The Broker and Trigger reconciler: the embedded API's ``eventing.knative.dev/v1`` objects
drive a ``BrokerCore``, and their status goes back through the status subresource.

Mirrors what Knative Eventing's broker and trigger reconcilers do for the multi-tenant channel
broker (eventing ``pkg/reconciler/broker/broker.go``, ``pkg/reconciler/broker/trigger/trigger.go``)
reduced to one process: a Broker is given its address on the one ingress
(``http://127.0.0.1:<port>/<namespace>/<broker>``), a Trigger its resolved subscriber URI, and
both their conditions (``autoscaler.eventing.status``). Subscriber and dead-letter refs resolve
from the watched objects' ``status.address.url`` (``pkg/resolver`` in knative/pkg): a Knative
Service, an InferenceService or a Broker; a URI is used as is. An InferenceService ref without a
``uri`` gets KServe's V1 predict path for its model, the one path where KServe takes CloudEvents.

Like the serving controller, informers (list + watch, the official client) only enqueue keys;
one asyncio task reconciles one key at a time; API calls run in threads. Resolving happens again
at every delivery, from the informers' caches, so a subscriber that becomes addressable later is
reached without a Trigger update.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from kubernetes import client
from prometheus_client import CollectorRegistry

from autoscaler.clock import Clock, SystemClock
from autoscaler.eventing.broker import BrokerCore
from autoscaler.eventing.delivery import DeliveryConfigError, effective_delivery
from autoscaler.eventing.destination import resolve_destination
from autoscaler.eventing.routes import InvalidObject
from autoscaler.eventing.settings import BrokerSettings
from autoscaler.eventing.status import broker_status, trigger_status
from autoscaler.kube.informer import Resource
from autoscaler.runtime.reconcile.workloop import WorkKey, WorkLoop

__all__ = ["KINDS", "EventingController", "start_onemachine_eventing", "with_default_paths"]

log = logging.getLogger(__name__)

EVENTING_GROUP = "eventing.knative.dev"
KINDS: dict[str, Resource] = {
    "broker": Resource(EVENTING_GROUP, "v1", "brokers", "Broker"),
    "trigger": Resource(EVENTING_GROUP, "v1", "triggers", "Trigger"),
    "ksvc": Resource("serving.knative.dev", "v1", "services", "Service"),
    "isvc": Resource("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
}
# (API group, kind) of an addressable ref -> the informer that knows it.
_ADDRESSABLE = {
    ("serving.knative.dev", "Service"): "ksvc",
    ("serving.kserve.io", "InferenceService"): "isvc",
    (EVENTING_GROUP, "Broker"): "broker",
}


def _group(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def with_default_paths(trigger: Mapping[str, Any]) -> dict[str, Any]:
    """The Trigger with an InferenceService subscriber given its V1 predict path."""
    spec = dict(trigger.get("spec") or {})
    subscriber = spec.get("subscriber")
    if not isinstance(subscriber, Mapping):
        return dict(trigger)
    ref = subscriber.get("ref") or {}
    if (
        isinstance(ref, Mapping)
        and ref.get("kind") == "InferenceService"
        and _group(str(ref.get("apiVersion", ""))) == "serving.kserve.io"
        and not subscriber.get("uri")
        and ref.get("name")
    ):
        spec["subscriber"] = {**subscriber, "uri": f"/v1/models/{ref['name']}:predict"}
    return {**trigger, "spec": spec}


class EventingController(WorkLoop):
    """Owns a ``BrokerCore`` and keeps it and the API's Broker/Trigger status in step."""

    def __init__(
        self,
        api_client: client.ApiClient,
        db_path: str | Path,
        *,
        settings: BrokerSettings | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(api_client, KINDS, clock or SystemClock(), "eventing-reconciler")
        self.core = BrokerCore(
            db_path, self.resolve, settings=settings, clock=self.clock, registry=registry
        )
        self._applied: set[WorkKey] = set()

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, sync_timeout_s: float = 30.0) -> None:
        """Bind the ingress, list and watch, then reconcile until ``stop()``.

        The core is held (ingress 503, no delivery) until the informers have listed and every
        listed Broker and Trigger is loaded into it, Brokers first: an event is never routed on
        a partial table (accepted for nobody) and a stored one never tried under a Trigger
        route that lacks its Broker's ``delivery`` (retry, dead-letter sink).
        """
        await self.core.start(hold=True)  # bound first: a Broker's status has its address
        await self.start_work(sync_timeout_s)
        self._load_listed()
        self.core.release()

    async def stop(self) -> None:
        """Stop reconciling and watching; the core finishes deliveries in flight and closes."""
        await self.stop_work()
        await self.core.stop()

    @property
    def url(self) -> str:
        """The broker ingress, ``http://127.0.0.1:<port>``."""
        return self.core.url

    def _load_listed(self) -> None:
        """Apply every Broker, then every Trigger, of the informers' caches to the core; the
        work loop reconciles each of them (and writes its status) after."""
        for kind, apply in (
            ("broker", self.core.apply_broker),
            ("trigger", lambda obj: self.core.apply_trigger(with_default_paths(obj))),
        ):
            for obj in self.informers[kind].list():
                # its reconcile, queued by the informer, reports it if it is invalid
                self._apply((kind, *_names(obj)), apply, obj, logging.DEBUG)

    def _apply(
        self,
        key: WorkKey,
        apply: Callable[[dict[str, Any]], None],
        obj: dict[str, Any],
        level: int = logging.WARNING,
    ) -> None:
        """Load ``obj`` into the core with ``apply`` and remember it loaded; an invalid one is
        logged at ``level`` (its conditions say the same) and not loaded."""
        try:
            apply(obj)
            self._applied.add(key)
        except InvalidObject as exc:
            log.log(level, "%s", exc)

    # -- resolving -------------------------------------------------------------------------------
    def resolve(self, ref: Mapping[str, Any], namespace: str) -> str | None:
        """The address of an addressable ref from the caches (the core's ``Resolver``)."""
        kind = _ADDRESSABLE.get((_group(str(ref.get("apiVersion", ""))), str(ref.get("kind"))))
        if kind is None:
            return None
        obj = self.informers[kind].get(str(ref.get("namespace") or namespace), str(ref.get("name")))
        status = (obj or {}).get("status") or {}
        url = (status.get("address") or {}).get("url") or status.get("url")
        return str(url) if url else None

    # -- queueing --------------------------------------------------------------------------------
    def enqueue_related(self, kind: str, obj: dict[str, Any]) -> None:
        ns, name = _names(obj)
        if kind in ("broker", "trigger"):
            self.enqueue(kind, ns, name)
        # A Broker's or a subscriber's change can change any Trigger of the namespace (its
        # BrokerReady condition, its subscriber URI) and any Broker's dead-letter sink.
        if kind != "trigger":
            for trigger in self.informers["trigger"].list(ns):
                self.enqueue("trigger", ns, trigger["metadata"]["name"])
        if kind in ("ksvc", "isvc"):
            for broker in self.informers["broker"].list(ns):
                self.enqueue("broker", ns, broker["metadata"]["name"])

    # -- reconcilers -----------------------------------------------------------------------------
    async def _reconcile_broker(self, ns: str, name: str) -> None:
        broker = self.informers["broker"].get(ns, name)
        key = ("broker", ns, name)
        if broker is None:
            if key in self._applied:
                self._applied.discard(key)
                abandoned = await self.core.delete_broker(ns, name)
                log.info(
                    "broker %s/%s deleted; %d pending deliveries abandoned", ns, name, abandoned
                )
            return
        self._apply(key, self.core.apply_broker, broker)  # else its DeliveryValid condition
        spec = broker.get("spec") or {}
        dead_letter = resolve_destination(
            (spec.get("delivery") or {}).get("deadLetterSink"), ns, self.resolve
        )
        status = broker_status(
            broker,
            ingress_base_url=self.core.url,
            dead_letter_uri=dead_letter,
            now=self.clock.wall(),
            previous=broker.get("status"),
        )
        await self._write_status("broker", broker, status)

    async def _reconcile_trigger(self, ns: str, name: str) -> None:
        trigger = self.informers["trigger"].get(ns, name)
        key = ("trigger", ns, name)
        if trigger is None:
            if key in self._applied:
                self._applied.discard(key)
                await self.core.delete_trigger(ns, name)
            return
        effective = with_default_paths(trigger)
        self._apply(key, self.core.apply_trigger, effective)
        spec = effective.get("spec") or {}
        broker = self.informers["broker"].get(ns, str(spec.get("broker") or ""))
        subscriber = spec.get("subscriber")
        subscriber_uri = resolve_destination(
            subscriber if isinstance(subscriber, Mapping) else None, ns, self.resolve
        )
        try:
            sink = effective_delivery(effective, broker).dead_letter_sink
        except DeliveryConfigError:
            sink = None
        status = trigger_status(
            effective,
            broker=broker,
            subscriber_uri=subscriber_uri,
            dead_letter_uri=resolve_destination(sink, ns, self.resolve),
            now=self.clock.wall(),
            previous=trigger.get("status"),
        )
        await self._write_status("trigger", trigger, status)


async def start_onemachine_eventing(machine: Any) -> EventingController:
    """Start the broker of a started ``OneMachine``: its store in the data directory, its
    ingress on ``broker_port``, its metrics in the machine's registry, and cluster addresses
    reached through the machine's ingress."""
    settings = BrokerSettings(port=machine.settings.broker_port, proxy_url=machine.ingress_url)
    controller = EventingController(
        machine.api_client(),
        Path(machine.settings.data_dir) / "broker.db",
        settings=settings,
        clock=machine.clock,
        registry=machine.registry,
    )
    await controller.start()
    log.info("broker ingress on %s", controller.url)
    return controller


def _names(obj: Mapping[str, Any]) -> tuple[str, str]:
    """An object's namespace (``default`` when it has none) and name."""
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")
