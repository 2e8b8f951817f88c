"""Route -> resolved traffic targets, and the Route's status.

Mirrors knative/serving ``pkg/reconciler/route/traffic``: a target names a revision, or a
configuration with ``latestRevision: true`` (resolved to its latest ready revision); percents must
add up to 100; a tagged target also gets its own host ``<tag>-<route>.<namespace>.<domain>``.
Its status carries Knative's route conditions: AllTrafficAssigned, IngressReady and
CertificateProvisioned, and Ready over the three.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import names


@dataclass(frozen=True)
class Target:
    revision: str
    percent: int
    tag: str | None
    latest_revision: bool


@dataclass(frozen=True)
class Resolved:
    targets: tuple[Target, ...]
    problem: str  # empty when every target resolved
    reason: str = ""  # AllTrafficAssigned's reason while a problem stands
    failed: bool = False  # AllTrafficAssigned False (the problem will not resolve by itself)


def resolve(route: Mapping[str, Any], configurations: Mapping[str, Mapping[str, Any]]) -> Resolved:
    """Resolve a Route's traffic block against the configurations of its namespace (by name).

    As Knative's route reconciler marks a bad target: a configuration that does not exist is
    ConfigurationMissing (False); one with no ready revision is RevisionMissing, False once the
    configuration has failed and Unknown while it waits for a revision. Percents that do not add
    up to 100 (which Knative's webhook refuses) are an Unknown traffic error.
    """
    route_name = route["metadata"]["name"]
    traffic = (route.get("spec") or {}).get("traffic") or [
        {"configurationName": route_name, "latestRevision": True, "percent": 100}
    ]
    targets: list[Target] = []
    total = 0
    for t in traffic:
        percent = int(t.get("percent") or 0)
        total += percent
        revision = t.get("revisionName")
        latest = bool(t.get("latestRevision")) or not revision
        if latest and not revision:
            cfg_name = t.get("configurationName") or route_name
            cfg = configurations.get(cfg_name)
            if cfg is None:
                return Resolved(
                    tuple(targets),
                    f"Configuration {_quoted(cfg_name)} referenced in traffic not found.",
                    "ConfigurationMissing",
                    failed=True,
                )
            revision = (cfg.get("status") or {}).get("latestReadyRevisionName")
            if not revision:
                failed = (names.get_condition(cfg, "Ready") or {}).get("status") == "False"
                message = (
                    "does not have any ready Revision."
                    if failed
                    else "is waiting for a Revision to become ready."
                )
                return Resolved(
                    tuple(targets),
                    f"Configuration {_quoted(cfg_name)} {message}",
                    "RevisionMissing",
                    failed=failed,
                )
        targets.append(Target(str(revision), percent, t.get("tag"), latest))
    if total != 100:
        return Resolved(
            tuple(targets), f"spec.traffic: percents add up to {total}, not 100", "Unknown"
        )
    return Resolved(tuple(targets), "")


def _quoted(name: str) -> str:
    """A name as Go's ``%q`` prints it in Knative's messages (Kubernetes names need no escapes)."""
    return f'"{name}"'


TLS_NOT_ENABLED = ("TLSNotEnabled", "external-domain-tls is not enabled")
"""CertificateProvisioned's reason and message with external-domain TLS off (Knative's default,
and the only mode one-machine serves): True, no certificate to wait for."""


def status(
    route: Mapping[str, Any],
    resolved: Resolved,
    *,
    domain: str,
    now_iso: str,
    serving: bool | None = None,
) -> dict[str, Any]:
    """The Route's status: its URL, address and resolved traffic, and Knative's conditions.

    AllTrafficAssigned is True once every target resolves, else says why (see ``resolve``).
    IngressReady is True while the ingress serves the Route; ``serving`` says whether it does
    (the data plane is programmed in the same reconcile, so by default: when the traffic
    resolved; it keeps serving the last good traffic while new traffic cannot be resolved),
    Unknown with no reason (as Knative initializes it) before it ever has.
    CertificateProvisioned is True (TLSNotEnabled: external-domain TLS is off); while the traffic
    cannot be assigned Knative stops before the certificate, so it stays as it was.
    """
    meta = route["metadata"]
    ns = meta.get("namespace", "default")
    host = names.host(meta["name"], ns, domain)
    traffic = []
    for t in resolved.targets:
        entry: dict[str, Any] = {
            "revisionName": t.revision,
            "percent": t.percent,
            "latestRevision": t.latest_revision,
        }
        if t.latest_revision:
            entry["configurationName"] = meta["name"]
        if t.tag:
            entry["tag"] = t.tag
            entry["url"] = f"http://{t.tag}-{host}"
        traffic.append(entry)
    ok = not resolved.problem
    if ok:
        assigned = names.condition("AllTrafficAssigned", True, now_iso=now_iso)
        cert = names.condition("CertificateProvisioned", True, *TLS_NOT_ENABLED, now_iso)
    else:
        assigned = names.condition(
            "AllTrafficAssigned",
            False if resolved.failed else None,
            resolved.reason or "Unknown",
            resolved.problem,
            now_iso,
        )
        cert = names.copied_condition(  # as it was
            "CertificateProvisioned", names.get_condition(route, "CertificateProvisioned"), now_iso
        )
    serving = ok if serving is None else serving
    ingress = names.condition("IngressReady", True if serving else None, now_iso=now_iso)
    parts = [assigned, ingress, cert]
    conds = [*parts, names.aggregate("Ready", parts, now_iso)]
    return {
        "observedGeneration": meta.get("generation", 1),
        "url": f"http://{host}",
        "address": {"url": f"http://{meta['name']}.{ns}.svc.cluster.local"},
        "traffic": traffic,
        "conditions": sorted(
            names.merge_conditions((route.get("status") or {}).get("conditions"), conds),
            key=lambda c: c["type"],
        ),
    }


def hosts(route: Mapping[str, Any], resolved: Resolved, domain: str) -> dict[str, list[Target]]:
    """Each host the ingress must answer for this route, with its targets.

    The route's own host splits by percent; a tag's host sends everything to its revision.
    """
    meta = route["metadata"]
    host = names.host(meta["name"], meta.get("namespace", "default"), domain)
    out: dict[str, list[Target]] = {host: [t for t in resolved.targets if t.percent > 0]}
    for t in resolved.targets:
        if t.tag:
            out[f"{t.tag}-{host}"] = [Target(t.revision, 100, t.tag, t.latest_revision)]
    return out
