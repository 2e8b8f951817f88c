"""The one-machine serving controller: the driver around the pure reconcilers.

It watches InferenceServices, Knative Services, Configurations, Revisions, Routes and
PodAutoscalers through the Kubernetes API (the official client, as any controller in a cluster),
writes the objects and status the pure transforms ask for, and drives the data plane: a Revision
becomes a replica pool, a Route becomes ingress hosts, a PodAutoscaler's annotations become the
revision's KPA settings, and every KPA decision goes back into PodAutoscaler and Revision status.

All reconciling runs on one asyncio task, one key at a time (informer callbacks only enqueue); API
calls run in threads. Deleting an owner deletes what it owns (the garbage collector's job in a
cluster).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client import CollectorRegistry

from autoscaler.clock import Clock
from autoscaler.kpa import AutoscalerConfig, InvalidSetting, RevisionScaling, ScaleDecision
from autoscaler.kube.informer import Resource
from autoscaler.runtime.autoscaling import ScalingLoop
from autoscaler.runtime.dataplane import DataPlane
from autoscaler.runtime.spec import RevisionKey

from . import configuration, kserve, names, revision, route, serving
from .replicas import replica_spec
from .workloop import WorkLoop

log = logging.getLogger(__name__)

KINDS: dict[str, Resource] = {
    "isvc": Resource(names.KSERVE_GROUP, "v1beta1", "inferenceservices", "InferenceService"),
    "ksvc": Resource(names.KNATIVE_SERVING_GROUP, "v1", "services", "Service"),
    "cfg": Resource(names.KNATIVE_SERVING_GROUP, "v1", "configurations", "Configuration"),
    "rev": Resource(names.KNATIVE_SERVING_GROUP, "v1", "revisions", "Revision"),
    "route": Resource(names.KNATIVE_SERVING_GROUP, "v1", "routes", "Route"),
    "pa": Resource(names.AUTOSCALING_GROUP, "v1alpha1", "podautoscalers", "PodAutoscaler"),
}
CLUSTER_LOCAL_SUFFIX = "svc.cluster.local"


class _PoolView:
    """The scaling loop's view of the data plane."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dp = dataplane

    def set_desired(self, key: RevisionKey, n: int) -> None:
        self._dp.set_desired(key, n)

    def set_activator_in_path(self, key: RevisionKey, in_path: bool) -> None:
        self._dp.set_activator_in_path(key, in_path)

    def ready_replicas(self, key: RevisionKey) -> int:
        return self._dp.status(key).ready


def _iso(wall_s: float) -> str:
    return dt.datetime.fromtimestamp(wall_s, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ServingController(WorkLoop):
    def __init__(
        self,
        api_client: client.ApiClient,
        dataplane: DataPlane,
        clock: Clock,
        *,
        autoscaler_config: AutoscalerConfig | None = None,
        legacy_pa_annotations: bool = False,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.domain = dataplane.domain
        self.legacy_pa_annotations = legacy_pa_annotations
        self.autoscaler_config = autoscaler_config or AutoscalerConfig()
        super().__init__(api_client, KINDS, clock, "serving-reconciler")
        self.scaling = ScalingLoop(
            _PoolView(dataplane),
            clock,
            config=self.autoscaler_config,
            on_decision=self._on_decision,
            registry=registry,
        )
        dataplane.on_stat(self.scaling.record)
        dataplane.on_poke(self.scaling.poke)
        self._route_hosts: dict[tuple[str, str], set[str]] = {}
        self._routed_by: dict[tuple[str, str], set[RevisionKey]] = {}
        self._ever_ready: set[RevisionKey] = set()
        self._shown: dict[RevisionKey, tuple[int, int, bool, str | None]] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self, sync_timeout_s: float = 30.0) -> None:
        await self.start_work(sync_timeout_s)
        self.spawn(self.scaling.run(), "scaling-loop")

    async def stop(self) -> None:
        await self.stop_work()

    # -- queueing --------------------------------------------------------------------------------
    def enqueue_related(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ns, name, labels = (
            meta.get("namespace", "default"),
            meta.get("name", ""),
            meta.get("labels") or {},
        )
        if kind == "pa":  # the revision reconciler owns the PodAutoscaler
            self.enqueue("rev", ns, name)
            return
        self.enqueue(kind, ns, name)
        if kind == "ksvc" and names.ISVC_LABEL in labels:
            self.enqueue("isvc", ns, labels[names.ISVC_LABEL])
        elif kind == "cfg":
            if names.SERVICE_LABEL in labels:
                self.enqueue("ksvc", ns, labels[names.SERVICE_LABEL])
            for rt in self.informers["route"].list(ns):
                self.enqueue("route", ns, rt["metadata"]["name"])
        elif kind == "rev":
            if names.CONFIGURATION_LABEL in labels:
                self.enqueue("cfg", ns, labels[names.CONFIGURATION_LABEL])
            # a Route naming the revision itself can assign its traffic once the revision is
            # there and ready, and no longer once it is not (Knative's route tracks it)
            for rt in self.informers["route"].list(ns):
                if route.names_revision(rt, name):
                    self.enqueue("route", ns, rt["metadata"]["name"])
        elif kind == "route" and names.SERVICE_LABEL in labels:
            self.enqueue("ksvc", ns, labels[names.SERVICE_LABEL])

    # -- API writes ------------------------------------------------------------------------------
    async def _create(self, kind: str, obj: dict[str, Any]) -> dict[str, Any] | None:
        """The object as created (None when it was already there: the informer will tell us)."""
        r = KINDS[kind]
        ns = obj["metadata"]["namespace"]
        try:
            created = await asyncio.to_thread(
                self._api.create_namespaced_custom_object, r.group, r.version, ns, r.plural, obj
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            return None
        return created if isinstance(created, dict) else None

    async def _replace(
        self, kind: str, current: dict[str, Any], desired: dict[str, Any]
    ) -> dict[str, Any]:
        """Write ``desired``'s spec, labels, annotations and owners over ``current``; the object
        as written (its generation moved on, its status not yet)."""
        r = KINDS[kind]
        meta = dict(current["metadata"])
        for field in ("labels", "annotations", "ownerReferences"):
            if field in desired["metadata"]:
                meta[field] = desired["metadata"][field]
        body = {**current, "metadata": meta, "spec": desired["spec"]}
        written = await asyncio.to_thread(
            self._api.replace_namespaced_custom_object,
            r.group,
            r.version,
            meta["namespace"],
            r.plural,
            meta["name"],
            body,
        )
        return written if isinstance(written, dict) else body

    async def _delete(self, kind: str, namespace: str, name: str) -> None:
        r = KINDS[kind]
        try:
            await asyncio.to_thread(
                self._api.delete_namespaced_custom_object,
                r.group,
                r.version,
                namespace,
                r.plural,
                name,
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def _ensure(
        self, kind: str, desired: dict[str, Any], compare_annotations: bool = True
    ) -> dict[str, Any] | None:
        """Create or update ``kind`` to ``desired``; the object as it now stands, when known.

        After a write that is the API server's answer, so a status computed from it sees that
        the object has not yet observed the spec just written (not the informer's older copy).
        """
        meta = desired["metadata"]
        current = self.informers[kind].get(meta["namespace"], meta["name"])
        if current is None:
            return await self._create(kind, desired)
        cmeta = current["metadata"]
        stale = (
            current.get("spec") != desired["spec"]
            or (cmeta.get("labels") or {}) != meta.get("labels", {})
            or (
                compare_annotations
                and (cmeta.get("annotations") or {})
                != meta.get("annotations", cmeta.get("annotations") or {})
            )
        )
        if stale:
            return await self._replace(kind, current, desired)
        return current

    def _now_iso(self) -> str:
        return _iso(self.clock.wall())

    # -- InferenceService ------------------------------------------------------------------------
    async def _reconcile_isvc(self, ns: str, name: str) -> None:
        isvc = self.informers["isvc"].get(ns, name)
        ksvc_name = names.predictor_service_name(name)
        if isvc is None:
            await self._delete_owned("ksvc", ns, ksvc_name, names.ISVC_LABEL, name)
            return
        errors = kserve.validate(isvc)
        if errors:
            msg = "; ".join(f"{e.field}: {e.message}" for e in errors)
            await self._write_status(
                "isvc", isvc, kserve.failed_status(isvc, "InvalidSpec", msg, self._now_iso())
            )
            return
        ksvc = self.informers["ksvc"].get(ns, ksvc_name)
        rolled = kserve.rolled_out_revision(isvc, ksvc)
        ksvc = await self._ensure("ksvc", kserve.desired_ksvc(isvc, rolled[0])) or ksvc
        st = kserve.status(
            isvc, ksvc, rolled_out=rolled, domain=self.domain, now_iso=self._now_iso()
        )
        await self._write_status("isvc", isvc, st)

    async def _report_failure(
        self, kind: str, namespace: str, name: str, reason: str, message: str
    ) -> None:
        """Ready=False with the reason on an object whose reconcile the API server or a
        transform refused (an InferenceService also says so in its model status)."""
        obj = self.informers[kind].get(namespace, name)
        if obj is None:
            return
        if kind == "isvc":
            st = kserve.failed_status(obj, reason, message, self._now_iso())
        else:
            cond = names.condition("Ready", False, reason, message, self._now_iso())
            prev = obj.get("status") or {}
            st = {**prev, "conditions": names.merge_conditions(prev.get("conditions"), [cond])}
            st["conditions"] += [
                c for c in prev.get("conditions") or [] if c.get("type") != "Ready"
            ]
        await self._write_status(kind, obj, st)

    async def _delete_owned(self, kind: str, ns: str, name: str, label: str, owner: str) -> None:
        obj = self.informers[kind].get(ns, name)
        if obj is not None and (obj["metadata"].get("labels") or {}).get(label) == owner:
            await self._delete(kind, ns, name)

    # -- Knative Service -------------------------------------------------------------------------
    async def _reconcile_ksvc(self, ns: str, name: str) -> None:
        ksvc = self.informers["ksvc"].get(ns, name)
        if ksvc is None:
            await self._delete_owned("cfg", ns, name, names.SERVICE_LABEL, name)
            await self._delete_owned("route", ns, name, names.SERVICE_LABEL, name)
            return
        cfg = await self._ensure("cfg", serving.desired_configuration(ksvc))
        rt = await self._ensure("route", serving.desired_route(ksvc))
        cfg = cfg or self.informers["cfg"].get(ns, name)
        rt = rt or self.informers["route"].get(ns, name)
        await self._write_status("ksvc", ksvc, serving.status(ksvc, cfg, rt, self._now_iso()))

    # -- Configuration ---------------------------------------------------------------------------
    async def _reconcile_cfg(self, ns: str, name: str) -> None:
        cfg = self.informers["cfg"].get(ns, name)
        revisions = [
            r
            for r in self.informers["rev"].list(ns)
            if (r["metadata"].get("labels") or {}).get(names.CONFIGURATION_LABEL) == name
        ]
        if cfg is None:
            for rev in revisions:
                await self._delete("rev", ns, rev["metadata"]["name"])
            return
        expected = configuration.expected_revision_name(cfg)
        if not any(r["metadata"]["name"] == expected for r in revisions):
            # As Knative's configuration reconciler, the status that observes this generation
            # names its revision as the latest created: one written from the revisions listed
            # before the create would say the generation is observed with the old revision
            # latest (created = ready, Ready True), which reads as settled on the new spec.
            created = await self._create("rev", configuration.desired_revision(cfg))
            if created is None:
                # already there though not yet in the informer: its event brings us back
                return
            revisions.append(created)
        await self._write_status("cfg", cfg, configuration.status(cfg, revisions, self._now_iso()))

    # -- Route -----------------------------------------------------------------------------------
    async def _reconcile_route(self, ns: str, name: str) -> None:
        rt = self.informers["route"].get(ns, name)
        old_hosts = self._route_hosts.pop((ns, name), set())
        old_routed = self._routed_by.pop((ns, name), set())
        if rt is None:
            for host in old_hosts:
                self.dataplane.remove_route(host)
            self._reachability_changed(old_routed)
            return
        cfgs = {c["metadata"]["name"]: c for c in self.informers["cfg"].list(ns)}
        revs = {r["metadata"]["name"]: r for r in self.informers["rev"].list(ns)}
        resolved = route.resolve(rt, cfgs, revs)
        if not resolved.problem:
            self._program_route(ns, name, rt, resolved, old_hosts, old_routed)
        elif old_hosts:
            # Knative keeps serving a Route's last good traffic while its traffic cannot be
            # resolved (its Ready condition says why): the data plane keeps its programming
            self._route_hosts[(ns, name)] = old_hosts
            self._routed_by[(ns, name)] = old_routed
        else:
            # Not programmed since this controller started, where Knative's ingress would still
            # hold the last good programming: program the traffic the Route last assigned
            # (its status.traffic; nothing on a Route that never had all its traffic assigned)
            self._program_route(ns, name, rt, route.last_assigned(rt), old_hosts, old_routed)
        st = route.status(
            rt,
            resolved,
            domain=self.domain,
            now_iso=self._now_iso(),
            serving=bool(self._route_hosts.get((ns, name))),
        )
        await self._write_status("route", rt, st)

    def _program_route(
        self,
        ns: str,
        name: str,
        rt: dict[str, Any],
        resolved: route.Resolved,
        old_hosts: set[str],
        old_routed: set[RevisionKey],
    ) -> None:
        """Point the data plane at what ``resolved`` says (nothing when it has a problem or no
        targets)."""
        assigned = resolved.targets and not resolved.problem
        hosts = route.hosts(rt, resolved, self.domain) if assigned else {}
        isvc_name = (rt["metadata"].get("labels") or {}).get(names.ISVC_LABEL)
        if isvc_name and hosts:
            # KServe's top-level host <isvc>.<ns>.<domain> reaches the predictor
            hosts[names.host(isvc_name, ns, self.domain)] = hosts[names.host(name, ns, self.domain)]
        # Each host is also reachable at its cluster-local name (<name>.<ns>.svc.cluster.local,
        # what status.address says): the broker and local functions send through the ingress.
        external = f".{ns}.{self.domain}"
        for host, targets in list(hosts.items()):
            if host.endswith(external):
                hosts[host[: -len(external)] + f".{ns}.{CLUSTER_LOCAL_SUFFIX}"] = targets
        for host, targets in hosts.items():
            self.dataplane.set_route(
                host, [(RevisionKey(ns, t.revision), t.percent, t.tag) for t in targets]
            )
        for host in old_hosts - set(hosts):
            self.dataplane.remove_route(host)
        self._route_hosts[(ns, name)] = set(hosts)
        routed = {RevisionKey(ns, t.revision) for t in resolved.targets if t.percent > 0 or t.tag}
        self._routed_by[(ns, name)] = routed
        self._reachability_changed(old_routed ^ routed)

    def _reachability_changed(self, keys: set[RevisionKey]) -> None:
        for key in keys:
            self.enqueue("rev", key.namespace, key.name)

    def _reachable(self, key: RevisionKey) -> bool:
        """Routed revisions are reachable; so is a new one until it first becomes ready."""
        return key not in self._ever_ready or any(key in r for r in self._routed_by.values())

    # -- Revision and PodAutoscaler --------------------------------------------------------------
    async def _reconcile_rev(self, ns: str, name: str) -> None:
        key = RevisionKey(ns, name)
        rev = self.informers["rev"].get(ns, name)
        if rev is None:
            self.scaling.remove_revision(key)
            await self.dataplane.remove_revision(key)
            self._ever_ready.discard(key)
            self._shown.pop(key, None)
            await self._delete("pa", ns, name)
            return
        labels = rev["metadata"].get("labels") or {}
        cc = int((rev.get("spec") or {}).get("containerConcurrency") or 0)
        pa_current = self.informers["pa"].get(ns, name)
        restored = None if self.scaling.has(key) else _restored(pa_current)
        if restored is not None:
            # First seen since start-up and initialized before: initial-scale is spent.
            self._ever_ready.add(key)
        if key not in self.dataplane.revisions():
            try:
                spec = replica_spec(rev)
            except ValueError as exc:
                await self._fail_revision(rev, str(exc))
                return
            self.dataplane.ensure_revision(
                key,
                spec,
                cc,
                service=labels.get(names.SERVICE_LABEL),
                configuration=labels.get(names.CONFIGURATION_LABEL),
                timeout_s=(rev.get("spec") or {}).get("timeoutSeconds"),
                # An InferenceService's revision runs KServe's model server: the ingress answers
                # a model path naming another model 404 itself. Every path reaches either kind.
                kserve_paths=names.ISVC_LABEL in labels,
            )
        reachable = self._reachable(key)
        pa = revision.desired_pa(
            rev,
            reachable=reachable,
            existing=pa_current,
            legacy_pa_annotations=self.legacy_pa_annotations,
        )
        await self._ensure("pa", pa)
        try:
            scaling = RevisionScaling.from_annotations(
                pa["metadata"]["annotations"], cc, self.autoscaler_config
            )
        except InvalidSetting as exc:
            await self._fail_revision(rev, str(exc))
            return
        self.scaling.add_revision(
            key,
            scaling,
            configuration=labels.get(names.CONFIGURATION_LABEL, name),
            reachable=reachable,
            initialized=restored is not None,
            active=bool(restored),
        )
        await self._write_revision_status(key, rev, pa_current)

    async def _fail_revision(self, rev: dict[str, Any], message: str) -> None:
        cond = names.condition("Ready", False, "InvalidSpec", message, self._now_iso())
        st = {
            "conditions": names.merge_conditions(
                (rev.get("status") or {}).get("conditions"), [cond]
            )
        }
        await self._write_status("rev", rev, st)

    def _scale_state(self, key: RevisionKey) -> revision.ScaleState:
        st = self.dataplane.status(key)
        if st.ready > 0:
            self._ever_ready.add(key)
        decision = self.scaling.last_decision(key)
        reason = st.reason or ""
        failure = reason if reason.startswith("CrashLoopBackOff") else ""
        return revision.ScaleState(
            desired=decision.desired_pods if decision is not None else st.desired,
            actual=st.ready,
            ever_ready=key in self._ever_ready,
            active=st.ready > 0 or not st.activator_in_path,
            failure=failure if key not in self._ever_ready else "",
            limited="" if failure else reason,
        )

    async def _write_revision_status(
        self, key: RevisionKey, rev: dict[str, Any], pa: dict[str, Any] | None
    ) -> None:
        state = self._scale_state(key)
        now = self._now_iso()
        self._shown[key] = (
            state.desired,
            state.actual,
            state.ever_ready,
            state.limited or state.failure,
        )
        await self._write_status("rev", rev, revision.revision_status(rev, state, now))
        if pa is not None:
            await self._write_status("pa", pa, revision.pa_status(pa, state, now))

    def _on_decision(self, key: RevisionKey, decision: ScaleDecision) -> None:
        """Re-write a revision's status when what it shows has changed."""
        try:
            state = self._scale_state(key)
        except KeyError:
            return
        shown = (state.desired, state.actual, state.ever_ready, state.limited or state.failure)
        if self._shown.get(key) != shown:
            self.enqueue("rev", key.namespace, key.name)


def _restored(pa: dict[str, Any] | None) -> bool | None:
    """What a stored PodAutoscaler says of a revision seen again after a restart: None when it
    never reached its initial scale (``ScaleTargetInitialized`` not True), else whether it was
    active then (Knative applies initial-scale only until the first time it is reached)."""
    if pa is None:
        return None
    initialized = names.get_condition(pa, "ScaleTargetInitialized")
    if initialized is None or initialized.get("status") != "True":
        return None
    active = names.get_condition(pa, "Active")
    return active is not None and active.get("status") == "True"
