"""Route -> resolved traffic targets, and the Route's status.

Mirrors knative/serving ``pkg/reconciler/route/traffic`` (``traffic.go``, ``errors.go``) and the
route conditions of ``pkg/apis/serving/v1/route_lifecycle.go``: a target names a revision, or a
configuration with ``latestRevision: true`` (resolved to its latest ready revision); percents must
add up to 100; a tagged target also gets its own host ``<tag>-<route>.<namespace>.<domain>``.
A target that cannot be resolved leaves no traffic assigned at all: the Route keeps the traffic
it last assigned (its status and the ingress both), never a part of the new set.
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
class Problem:
    """Why one traffic target cannot be resolved, as Knative's ``TargetError``: the reason and
    message AllTrafficAssigned carries, and whether it is a failure (False: it will not resolve
    by itself) or a wait (Unknown)."""

    reason: str
    message: str
    failed: bool


@dataclass(frozen=True)
class Resolved:
    targets: tuple[Target, ...]  # empty while a problem stands: nothing partial is assigned
    problem: str  # empty when every target resolved
    reason: str = ""  # AllTrafficAssigned's reason while a problem stands
    failed: bool = False  # AllTrafficAssigned False (the problem will not resolve by itself)


def resolve(
    route: Mapping[str, Any],
    configurations: Mapping[str, Mapping[str, Any]],
    revisions: Mapping[str, Mapping[str, Any]],
) -> Resolved:
    """Resolve a Route's traffic block against the configurations and revisions of its
    namespace (each by name).

    Every target is looked at, as Knative's traffic builder defers target errors: the one
    reported is the first, unless a later one is a failure (a failure always replaces the one
    before it, so the last failure wins). Any target error leaves no target assigned. Percents
    that do not add up to 100 (which Knative's webhook refuses) are an Unknown traffic error.
    """
    route_name = route["metadata"]["name"]
    traffic = (route.get("spec") or {}).get("traffic") or [
        {"configurationName": route_name, "latestRevision": True, "percent": 100}
    ]
    targets: list[Target] = []
    problem: Problem | None = None
    total = 0
    for t in traffic:
        percent = int(t.get("percent") or 0)
        total += percent
        found = _flatten(t, route_name, configurations, revisions)
        if isinstance(found, Problem):
            if problem is None or found.failed:
                problem = found
            continue
        revision, latest = found
        targets.append(Target(revision, percent, t.get("tag"), latest))
    if problem is not None:
        return Resolved((), problem.message, problem.reason, problem.failed)
    if total != 100:
        return Resolved((), f"spec.traffic: percents add up to {total}, not 100", "Unknown")
    return Resolved(tuple(targets), "")


def _flatten(
    target: Mapping[str, Any],
    route_name: str,
    configurations: Mapping[str, Mapping[str, Any]],
    revisions: Mapping[str, Mapping[str, Any]],
) -> tuple[str, bool] | Problem:
    """One target flattened to (revision name, latestRevision), or why it cannot be.

    A named revision must exist (else RevisionMissing, False) and be ready (else RevisionMissing:
    Unknown while it may still become ready, False once its Ready is False), and the
    configuration it was created from must exist. A configuration target must exist (else
    ConfigurationMissing, False), have a latest ready revision (else RevisionMissing: Unknown
    while it waits for one, False once the configuration has failed), and that revision must
    still exist.
    """
    revision = target.get("revisionName")
    if revision:
        rev = revisions.get(revision)
        if rev is None:
            return _missing("Revision", revision)
        if not (names.observed(rev) and names.is_ready(rev)):
            if (names.get_condition(rev, "Ready") or {}).get("status") == "False":
                return Problem(
                    "RevisionMissing", f"Revision {_quoted(revision)} failed to become ready.", True
                )
            return Problem(
                "RevisionMissing", f"Revision {_quoted(revision)} is not yet ready.", False
            )
        cfg_name = ((rev.get("metadata") or {}).get("labels") or {}).get(names.CONFIGURATION_LABEL)
        if cfg_name and cfg_name not in configurations:
            return _missing("Configuration", cfg_name)
        return str(revision), bool(target.get("latestRevision"))
    cfg_name = target.get("configurationName") or route_name
    cfg = configurations.get(cfg_name)
    if cfg is None:
        return _missing("Configuration", cfg_name)
    latest_ready = (cfg.get("status") or {}).get("latestReadyRevisionName")
    if not latest_ready:
        if (names.get_condition(cfg, "Ready") or {}).get("status") == "False":
            message = "does not have any ready Revision."
            return Problem("RevisionMissing", f"Configuration {_quoted(cfg_name)} {message}", True)
        message = "is waiting for a Revision to become ready."
        return Problem("RevisionMissing", f"Configuration {_quoted(cfg_name)} {message}", False)
    if latest_ready not in revisions:
        return _missing("Revision", latest_ready)
    return str(latest_ready), True


def _missing(kind: str, name: str) -> Problem:
    """A target that does not exist, as Knative's ``MarkMissingTrafficTarget``: False with the
    reason ``<kind>Missing``."""
    return Problem(
        f"{kind}Missing", f"{kind} {_quoted(name)} referenced in traffic not found.", True
    )


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
    ``traffic`` is written only when all traffic is assigned: while it cannot be, the Route
    keeps the traffic it last assigned (none on a Route that never had it), as Knative sets
    ``status.traffic`` only after every target resolved.
    """
    meta = route["metadata"]
    ns = meta.get("namespace", "default")
    host = names.host(meta["name"], ns, domain)
    ok = not resolved.problem
    traffic = _traffic_status(resolved.targets, meta["name"], host) if ok else _last_traffic(route)
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


def _traffic_status(
    targets: tuple[Target, ...], route_name: str, host: str
) -> list[dict[str, Any]]:
    """``status.traffic`` for assigned targets: flattened to revisions, a tag with its URL."""
    traffic = []
    for t in targets:
        entry: dict[str, Any] = {
            "revisionName": t.revision,
            "percent": t.percent,
            "latestRevision": t.latest_revision,
        }
        if t.latest_revision:
            entry["configurationName"] = route_name
        if t.tag:
            entry["tag"] = t.tag
            entry["url"] = f"http://{t.tag}-{host}"
        traffic.append(entry)
    return traffic


def _last_traffic(route: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list((route.get("status") or {}).get("traffic") or [])


def last_assigned(route: Mapping[str, Any]) -> Resolved:
    """The traffic the Route last assigned (its ``status.traffic``), as its ingress was programmed
    with it: what keeps serving while new traffic cannot be assigned. No targets (so nothing to
    serve) on a Route that never had all its traffic assigned."""
    targets = tuple(
        Target(
            str(t["revisionName"]),
            int(t.get("percent") or 0),
            t.get("tag"),
            bool(t.get("latestRevision")),
        )
        for t in _last_traffic(route)
        if t.get("revisionName")
    )
    return Resolved(targets, "")


def names_revision(route: Mapping[str, Any], revision: str) -> bool:
    """Whether the Route's traffic names ``revision`` itself (a ``revisionName`` target), so the
    revision's coming, going or becoming ready changes what the Route can assign."""
    traffic = (route.get("spec") or {}).get("traffic") or []
    return any(t.get("revisionName") == revision for t in traffic)
