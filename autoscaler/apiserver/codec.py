"""Request and response encoding: body decoding with errors that say where a body is
malformed, the media types a request may carry, and what an ``Accept`` header asks for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml

from autoscaler.apiserver import protobuf
from autoscaler.apiserver.errors import APIError, bad_request

JSON = "application/json"
YAML = "application/yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
TABLE_MEDIA = "application/json;as=Table;v=v1;g=meta.k8s.io"


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header (parameters dropped, lower case)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def decode_json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError as exc:
        raise bad_request(f"malformed JSON body: not UTF-8 at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise bad_request(
            f"malformed JSON body: {exc.msg} at line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos})"
        ) from exc


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def decode_yaml(raw: bytes) -> Any:
    if raw.lstrip()[:1] in (b"{", b"["):
        try:  # JSON is YAML, and clients usually send JSON: parse it fast
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass  # let the YAML parser say where it is malformed
    try:
        docs = list(yaml.load_all(raw, Loader=_LOADER))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise bad_request(f"malformed YAML body: {problem}{where}") from exc
    except yaml.YAMLError as exc:
        raise bad_request(f"malformed YAML body: {exc}") from exc
    docs = [d for d in docs if d is not None]
    if len(docs) != 1:
        raise bad_request(f"a YAML body must hold exactly one document, got {len(docs)}")
    return docs[0]


def decode_body(content_type: str | None, raw: bytes, allowed: tuple[str, ...]) -> Any:
    """Decode a request body of one of the ``allowed`` media types (415 for any other)."""
    mt = media_type(content_type) or JSON
    if mt not in allowed:
        raise APIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(allowed)}",
        )
    if not raw.strip():
        raise bad_request("the request body is empty")
    if mt == protobuf.PROTOBUF:
        return protobuf.decode(raw)
    if mt in (YAML, APPLY_PATCH):
        return decode_yaml(raw)
    return decode_json(raw)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Accept:
    """What a client asked for: a Table, partial metadata, aggregated discovery, or JSON."""

    table: bool = False
    partial_metadata: bool = False
    discovery: str = ""  # "v2" or "v2beta1" when aggregated discovery was asked for
    acceptable: bool = True


def parse_accept(header: str | None) -> Accept:
    if not header:
        return Accept()
    table = partial = json_ok = False
    discovery = ""
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        mt = fields[0].lower()
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        as_ = params.get("as", "")
        if mt in (JSON, "*/*", "application/*", YAML):
            json_ok = True
            if as_ == "Table":
                table = True
            elif as_.startswith("PartialObjectMetadata"):
                partial = True
            elif as_ == "APIGroupDiscoveryList" and params.get("v") in ("v2", "v2beta1"):
                discovery = discovery or params["v"]
    return Accept(table, partial, discovery, json_ok)
