"""Helpers for the cluster-path checks: where the manifests are, ``kubectl kustomize`` builds, and
validation of one document against the schema that governs its kind.

- KServe and Knative kinds: the upstream CRDs' ``openAPIV3Schema`` in ``../shared/crds``.
- The ModelScaler: our own CRD (manifests/crds).
- Built-in kinds (and the CustomResourceDefinition itself): the Kubernetes OpenAPI schemas of
  ``K8S_VERSION`` through kubernetes-validate, strict (unknown fields are errors).
A document of any other kind is an error: nothing goes unvalidated.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from autoscaler.apiserver.testing import KUBECTL

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("MODELSCALE_SHARED", REPO / ".." / "shared")).resolve()
MANIFESTS = REPO / "manifests"
MODELSCALER_CRD = MANIFESTS / "crds" / "modelscale.dev_modelscalers.yaml"
# The Kubernetes version of scripts/cluster-up.sh's kind node image (v1.33.1): the schemas of
# its minor release.
K8S_VERSION = "1.33.0"
# Every kustomization a user applies: the base, each overlay and the samples.
BUILDS = (
    "base",
    "overlays/prometheus",
    "overlays/knative-legacy-pa",
    "overlays/recommend-only",
    "samples",
)
OVERLAYS = tuple(b for b in BUILDS if b.startswith("overlays/"))


def kustomize(build: str) -> list[dict[str, Any]]:
    """The documents of ``kubectl kustomize manifests/<build>`` (fails the test with its stderr)."""
    return [dict(d) for d in _kustomize(build)]


@functools.cache
def _kustomize(build: str) -> tuple[dict[str, Any], ...]:
    text = kustomize_text(build)
    return tuple(d for d in yaml.safe_load_all(text) if isinstance(d, dict))


@functools.cache
def kustomize_text(build: str) -> str:
    result = subprocess.run(
        [KUBECTL, "kustomize", str(MANIFESTS / build)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize manifests/{build} failed: {result.stderr}"
    return result.stdout


def readme_block(marker: str, lang: str) -> str:
    """README.md's fenced ``lang`` block that holds ``marker`` (exactly one must)."""
    blocks = re.findall(rf"```{lang}\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (block,) = [b for b in blocks if marker in b]
    return str(block)


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest file in manifests/ (not kustomizations, not the dashboard)."""
    return sorted(
        p
        for p in MANIFESTS.rglob("*.yaml")
        if p.name not in ("kustomization.yaml", "kustomization.yml")
    )


def documents(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for doc in yaml.safe_load_all(f):
            if isinstance(doc, dict):
                yield doc


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d.get("kind") == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


# --- schemas ---------------------------------------------------------------------------------

Key = tuple[str, str]  # (apiVersion, kind)


def _crd_schemas(path: Path) -> dict[Key, dict[str, Any]]:
    out = {}
    for crd in documents(path):
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        spec = crd["spec"]
        for version in spec["versions"]:
            schema = (version.get("schema") or {}).get("openAPIV3Schema")
            if schema:
                out[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = schema
    return out


@functools.cache
def upstream_schemas() -> dict[Key, dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every CRD in ../shared/crds."""
    out: dict[Key, dict[str, Any]] = {}
    for path in sorted((SHARED / "crds").glob("*.yaml")):
        out.update(_crd_schemas(path))
    assert out, f"no CRDs under {SHARED / 'crds'} (set MODELSCALE_SHARED)"
    return out


@functools.cache
def own_schemas() -> dict[Key, dict[str, Any]]:
    return _crd_schemas(MODELSCALER_CRD)


def schema_source(doc: dict[str, Any]) -> str:
    """Which schema governs ``doc``: "upstream-crd", "own-crd" or "kubernetes"."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    if key in upstream_schemas():
        return "upstream-crd"
    if key in own_schemas():
        return "own-crd"
    return "kubernetes"


def validate(doc: dict[str, Any]) -> list[str]:
    """The schema errors of ``doc`` (empty: valid)."""
    key = (str(doc.get("apiVersion")), str(doc.get("kind")))
    source = schema_source(doc)
    if source != "kubernetes":
        schema = (upstream_schemas() if source == "upstream-crd" else own_schemas())[key]
        validator = jsonschema.Draft7Validator(schema)
        return [
            f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)
        ]
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path)) or '<root>'}: {exc.message}"]
    except kubernetes_validate.SchemaNotFoundError:
        return [f"no schema for {key[0]} {key[1]} in Kubernetes {K8S_VERSION} or ../shared/crds"]
    return []
