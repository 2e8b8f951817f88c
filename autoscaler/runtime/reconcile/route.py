"""Route -> resolved traffic targets, and the Route's status.

Mirrors knative/serving ``pkg/reconciler/route/traffic``: a target names a revision, or a
configuration with ``latestRevision: true`` (resolved to its latest ready revision); percents must
add up to 100; a tagged target also gets its own host ``<tag>-<route>.<namespace>.<domain>``.
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


def resolve(route: Mapping[str, Any], configurations: Mapping[str, Mapping[str, Any]]) -> Resolved:
    """Resolve a Route's traffic block against the configurations of its namespace (by name)."""
    route_name = route["metadata"]["name"]
    traffic = (route.get("spec") or {}).get("traffic") or [
        {"configurationName": route_name, "latestRevision": True, "percent": 100}
    ]
    targets: list[Target] = []
    total = 0
    for i, t in enumerate(traffic):
        percent = int(t.get("percent") or 0)
        total += percent
        revision = t.get("revisionName")
        latest = bool(t.get("latestRevision")) or not revision
        if latest and not revision:
            cfg_name = t.get("configurationName") or route_name
            cfg = configurations.get(cfg_name)
            revision = ((cfg or {}).get("status") or {}).get("latestReadyRevisionName")
            if not revision:
                return Resolved(
                    tuple(targets),
                    f"spec.traffic[{i}]: configuration {cfg_name!r} has no ready revision yet",
                )
        targets.append(Target(str(revision), percent, t.get("tag"), latest))
    if total != 100:
        return Resolved(tuple(targets), f"spec.traffic: percents add up to {total}, not 100")
    return Resolved(tuple(targets), "")


def status(
    route: Mapping[str, Any], resolved: Resolved, *, domain: str, now_iso: str
) -> dict[str, Any]:
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
    cond = (
        names.condition("Ready", True, now_iso=now_iso)
        if ok
        else names.condition("Ready", None, "RevisionMissing", resolved.problem, now_iso)
    )
    return {
        "observedGeneration": meta.get("generation", 1),
        "url": f"http://{host}",
        "address": {"url": f"http://{meta['name']}.{ns}.svc.cluster.local"},
        "traffic": traffic,
        "conditions": names.merge_conditions((route.get("status") or {}).get("conditions"), [cond]),
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
