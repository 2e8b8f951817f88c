"""Configuration -> Revision, and the Configuration's status.

Mirrors knative/serving ``pkg/reconciler/configuration``: every generation of a Configuration's
spec stamps one immutable Revision named ``<configuration>-<generation:05d>`` (or the template's own
name), labelled with its configuration and generation. The Configuration's status names the latest
created revision and the latest ready one; a newer revision that is not ready yet leaves the latest
ready one in place, so traffic keeps flowing to it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from . import names


def expected_revision_name(configuration: Mapping[str, Any]) -> str:
    meta = configuration["metadata"]
    template_name = (
        ((configuration.get("spec") or {}).get("template") or {}).get("metadata") or {}
    ).get("name")
    return template_name or names.revision_name(meta["name"], int(meta.get("generation", 1)))


def desired_revision(configuration: Mapping[str, Any]) -> dict[str, Any]:
    meta = configuration["metadata"]
    template = copy.deepcopy((configuration.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    labels = {
        **(tmeta.get("labels") or {}),
        names.CONFIGURATION_LABEL: meta["name"],
        names.CONFIGURATION_GENERATION_LABEL: str(meta.get("generation", 1)),
    }
    if names.SERVICE_LABEL in (meta.get("labels") or {}):
        labels[names.SERVICE_LABEL] = meta["labels"][names.SERVICE_LABEL]
    spec = template.get("spec") or {}
    spec.setdefault("containerConcurrency", 0)
    spec.setdefault("timeoutSeconds", 300)
    return {
        "apiVersion": f"{names.KNATIVE_SERVING_GROUP}/v1",
        "kind": "Revision",
        "metadata": {
            "name": expected_revision_name(configuration),
            "namespace": meta.get("namespace", "default"),
            "labels": labels,
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [names.owner_reference(configuration)],
        },
        "spec": spec,
    }


def _generation(revision: Mapping[str, Any]) -> int:
    labels = revision["metadata"].get("labels") or {}
    try:
        return int(labels.get(names.CONFIGURATION_GENERATION_LABEL, "0"))
    except ValueError:
        return 0


def status(
    configuration: Mapping[str, Any], revisions: Sequence[Mapping[str, Any]], now_iso: str
) -> dict[str, Any]:
    """Latest created and latest ready revisions among this configuration's revisions."""
    mine = sorted(
        (
            r
            for r in revisions
            if (r["metadata"].get("labels") or {}).get(names.CONFIGURATION_LABEL)
            == configuration["metadata"]["name"]
        ),
        key=_generation,
    )
    latest = mine[-1] if mine else None
    # As in Knative, the latest ready revision is kept once named, while it exists: a moment in
    # which it reads not ready does not take the configuration's routes away.
    named = ((configuration.get("status") or {}).get("latestReadyRevisionName")) or None
    ready = [r for r in mine if names.is_ready(r) or r["metadata"]["name"] == named]
    latest_ready = ready[-1] if ready else None
    out: dict[str, Any] = {"observedGeneration": configuration["metadata"].get("generation", 1)}
    if latest is not None:
        out["latestCreatedRevisionName"] = latest["metadata"]["name"]
    if latest_ready is not None:
        out["latestReadyRevisionName"] = latest_ready["metadata"]["name"]
    latest_cond = names.get_condition(latest or {}, "Ready")
    if latest is not None and names.is_ready(latest):
        cond = names.condition("Ready", True, now_iso=now_iso)
    elif latest_cond is not None and latest_cond.get("status") == "False":
        cond = names.condition(
            "Ready",
            False,
            latest_cond.get("reason", "RevisionFailed"),
            latest_cond.get("message", ""),
            now_iso,
        )
    else:
        cond = names.condition(
            "Ready", None, "RevisionMissing" if latest is None else "", "", now_iso
        )
    out["conditions"] = names.merge_conditions(
        (configuration.get("status") or {}).get("conditions"), [cond]
    )
    return out
