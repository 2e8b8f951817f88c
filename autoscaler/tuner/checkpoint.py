"""The compact, versioned checkpoint of a model's learned state (a string in its status).

Format ``v1:`` + base64 (URL-safe) of zlib-compressed JSON: ``{"revisions": [...]}`` with one
short-keyed object per revision (see ``_dump``). A restarted tuner decodes it and resumes
without relearning. The cached keep-alive decision is not stored (it is recomputed from the
idle histogram). Anything that does not decode (another version, truncated, garbage) raises
``CheckpointError`` naming what was wrong; the controller then starts from scratch. So do
values the policy cannot work with: a bin ratio of 1 or less, negative weights, counts or
sums, times past ``MAX_TIME_S``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import zlib
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from autoscaler.tuner.busy_window import RequestRate
from autoscaler.tuner.idle import Activity, IdleHistogram, idle_edges_s
from autoscaler.tuner.latency_model import LatencyBin, LatencyModel
from autoscaler.tuner.lived import MAX_SPANS, ConcurrencyHistory
from autoscaler.tuner.observation import N_LATENCY_COUNTS
from autoscaler.tuner.state import AppliedValues, RevisionState
from autoscaler.tuner.target import Knee

_T = TypeVar("_T", LatencyBin, IdleHistogram)

VERSION = "v1"
MAX_DECODED_BYTES = 4 * 1024 * 1024  # a checkpoint is kilobytes; refuse to inflate a bomb
# Times are wall seconds (since 1970): one past the year 2286 is not a time the tuner wrote.
MAX_TIME_S = 1e10


class CheckpointError(ValueError):
    """A checkpoint string that cannot be decoded."""


_ENCODE = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode
# Where a revision's bins and idle histogram go in the text encoded without them (a NUL: in no
# Kubernetes name).
_MARK = "\x00part"
_MARK_TEXT = _ENCODE(_MARK)


def encode_checkpoint(states: Mapping[str, RevisionState]) -> str:
    """Encode the states of a model's revisions (keyed by revision name).

    The text is ``json.dumps(doc, separators=(",", ":"), allow_nan=False)`` of the document
    ``_dump`` describes; the parts of each latency bin and of the idle histogram are encoded
    once and kept with them (``LatencyBin.encoded``, ``IdleHistogram.encoded``: most are the
    same objects from one tick to the next), the rest each time, and the parts put in their
    places."""
    names = sorted(states)
    docs = []
    parts = []  # in the order the marks come in the text: bins, then idle, per revision
    for name in names:
        s = states[name]
        docs.append(_dump(s, _MARK, _MARK))
        parts.append("[" + ",".join([_kept_text(b, _bin_fields) for b in s.latency.bins]) + "]")
        parts.append(_kept_text(s.idle, _idle_fields))
    text = _ENCODE({"revisions": docs})
    pieces = text.split(_MARK_TEXT)
    if len(pieces) == len(parts) + 1:
        text = pieces[0] + "".join([b + p for b, p in zip(parts, pieces[1:], strict=True)])
    else:  # the mark in a name: encoded whole
        text = _ENCODE({"revisions": [_dump(states[name]) for name in names]})
    raw = text.encode()
    return f"{VERSION}:" + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii")


def _idle_fields(idle: IdleHistogram) -> list[Any]:
    # older checkpoints: 4 fields, then 5 (no requests woken at idle periods' ends)
    return (
        [list(idle.weights), idle.count, idle.ref_s, list(idle.recent_s)]
        + ([idle.requests] if idle.requests or idle.woken else [])
        + ([idle.woken] if idle.woken else [])
    )


def _bin_fields(b: LatencyBin) -> list[Any]:
    # older bins: no tail (loads as 0), no whole sum (loads as unknown)
    return (
        [b.index, b.weight, b.concurrency_sum, list(b.counts)]
        + ([b.tail_sum] if b.tail_sum or b.latency_sum is not None else [])
        + ([b.latency_sum] if b.latency_sum is not None else [])
    )


def _kept_text(part: _T, fields: Callable[[_T], list[Any]]) -> str:
    """``part``'s JSON text (of ``fields(part)``), encoded once and kept on it."""
    text = part.encoded
    if text is None:
        text = _ENCODE(fields(part))
        object.__setattr__(part, "encoded", text)  # frozen: its own text, set once
    return text


def decode_checkpoint(text: str) -> dict[str, RevisionState]:
    """The states encoded by ``encode_checkpoint``; raises ``CheckpointError``."""
    if not isinstance(text, str):
        raise CheckpointError(f"checkpoint must be a string, got {type(text).__name__}")
    version, sep, body = text.partition(":")
    if not sep:
        raise CheckpointError("checkpoint has no version prefix (expected 'v1:...')")
    if version != VERSION:
        raise CheckpointError(
            f"checkpoint version {version!r} is not supported (expected {VERSION!r})"
        )
    try:
        packed = base64.b64decode(body.encode("ascii"), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise CheckpointError(f"checkpoint is not valid base64: {exc}") from None
    try:
        d = zlib.decompressobj()
        raw = d.decompress(packed, MAX_DECODED_BYTES)
        if d.unconsumed_tail:
            raise CheckpointError(f"checkpoint inflates beyond {MAX_DECODED_BYTES} bytes")
        if not d.eof:
            raise CheckpointError("checkpoint is truncated (compressed stream incomplete)")
    except zlib.error as exc:
        raise CheckpointError(f"checkpoint is not valid zlib data: {exc}") from None
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint is not valid JSON: {exc}") from None
    try:
        states = [_load(r) for r in doc["revisions"]]
    except CheckpointError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint content is malformed: {type(exc).__name__}: {exc}"
        ) from None
    return {s.revision: s for s in states}


def _dump(s: RevisionState, bins: Any = None, idle: Any = None) -> dict[str, Any]:
    """One revision's object; ``bins`` and ``idle`` stand in for its latency bins and idle
    histogram if given."""
    lat = s.latency
    out: dict[str, Any] = {
        "r": s.revision,
        "l": [
            lat.ref_s,
            lat.bin_ratio,
            [_bin_fields(b) for b in lat.bins] if bins is None else bins,
        ],
        "i": _idle_fields(s.idle) if idle is None else idle,
        "a": [s.activity.last_request_s, s.activity.last_active_end_s],
    }
    if s.knee is not None:
        out["k"] = [s.knee.concurrency, s.knee.at_s, s.knee.missed]
    if s.applied is not None:
        a = s.applied
        out["p"] = [a.target, a.retention_s, a.min_scale, a.at_s] + (
            [a.window_s] if a.window_s is not None else []
        )
    if s.last_target_change_s is not None:
        out["c"] = s.last_target_change_s
    if s.last_target is not None:
        out["t"] = s.last_target
    if s.inherited_from is not None:
        out["h"] = s.inherited_from
    if s.inherited_start_s is not None:
        out["s"] = s.inherited_start_s
    if s.unfinished_since_s is not None:
        out["u"] = s.unfinished_since_s
    if s.history.spans:
        out["n"] = [list(span) for span in s.history.spans]
    if s.rate.last_s is not None:
        out["q"] = [s.rate.requests, s.rate.seconds, s.rate.last_s]
    if s.last_window_s is not None:
        out["w"] = s.last_window_s
    if s.uid is not None:
        out["o"] = s.uid
    return out


def _num(v: Any, what: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise CheckpointError(f"checkpoint field {what}: {v!r} is not a finite number")
    return float(v)


def _uid(v: Any) -> str | None:
    if v is not None and not isinstance(v, str):
        raise CheckpointError(f"checkpoint field uid: {v!r} is not a string")
    return v


def _opt(v: Any, what: str) -> float | None:
    return None if v is None else _num(v, what)


def _nonneg(v: Any, what: str) -> float:
    """A finite number >= 0 (weights, counts, sums, concurrencies)."""
    x = _num(v, what)
    if x < 0:
        raise CheckpointError(f"checkpoint field {what}: {x!r} is negative")
    return x


def _time(v: Any, what: str) -> float:
    """A time, not past ``MAX_TIME_S`` (decaying weights read at a time far before their
    reference would not be weights)."""
    x = _num(v, what)
    if abs(x) > MAX_TIME_S:
        raise CheckpointError(f"checkpoint field {what}: {x!r} is beyond +-{MAX_TIME_S:g} s")
    return x


def _opt_time(v: Any, what: str) -> float | None:
    return None if v is None else _time(v, what)


def _positive(v: Any, what: str) -> float:
    x = _num(v, what)
    if not x > 0:
        raise CheckpointError(f"checkpoint field {what}: {x!r} must be > 0")
    return x


def _opt_positive(v: Any, what: str) -> float | None:
    return None if v is None else _positive(v, what)


def _load(r: dict[str, Any]) -> RevisionState:
    name = r["r"]
    if not isinstance(name, str):
        raise CheckpointError(f"checkpoint revision name {name!r} is not a string")
    ref, ratio, bins = r["l"]
    lat_bins = []
    for fields in bins:
        if len(fields) not in (4, 5, 6):
            raise CheckpointError(f"checkpoint latency bin of {name} has {len(fields)} fields")
        idx, w, cs, counts = fields[:4]
        tail = _nonneg(fields[4], "tail sum") if len(fields) >= 5 else 0.0
        whole = _num(fields[5], "latency sum") if len(fields) == 6 else None
        if whole is not None and whole < 0:
            raise CheckpointError(f"checkpoint latency bin of {name} has latency sum {whole}")
        if isinstance(idx, bool) or not isinstance(idx, int):
            raise CheckpointError(f"checkpoint field bin index: {idx!r} is not an integer")
        if len(counts) != N_LATENCY_COUNTS:
            raise CheckpointError(f"checkpoint latency bin of {name} has {len(counts)} counts")
        lat_bins.append(
            LatencyBin(
                idx,
                _nonneg(w, "weight"),
                _nonneg(cs, "concurrency"),
                tuple(_nonneg(c, "count") for c in counts),
                tail,
                whole,
            )
        )
    if any(a.index >= b.index for a, b in itertools.pairwise(lat_bins)):
        raise CheckpointError(f"checkpoint latency bins of {name} are not ordered by index")
    idle_fields = r["i"]
    # 4 fields, then 5, then 6; more (from a later version) are ignored
    if len(idle_fields) < 4:
        raise CheckpointError(f"checkpoint idle histogram of {name} has {len(idle_fields)} fields")
    weights, count, iref, recent = idle_fields[:4]
    idle_weights = tuple(_nonneg(w, "idle weight") for w in weights)
    idle_requests = _nonneg(idle_fields[4], "idle requests") if len(idle_fields) >= 5 else 0.0
    idle_woken = (
        _nonneg(idle_fields[5], "idle woken requests")
        if len(idle_fields) >= 6
        # written before it was kept: as many as keep the price it had then (one request per
        # idle period, or a fifth of those an idle period stands for, whichever is more)
        else max(sum(idle_weights), idle_requests / 5.0)
    )
    if weights and len(weights) != len(idle_edges_s()):
        raise CheckpointError(f"checkpoint idle histogram of {name} has {len(weights)} bins")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise CheckpointError(f"checkpoint field idle count: {count!r} is not a count")
    if not math.isfinite(sum(idle_weights)):
        raise CheckpointError(
            f"checkpoint field idle weight: the weights of {name} sum past floats"
        )
    if count and not weights:
        raise CheckpointError(f"checkpoint idle histogram of {name}: {count} samples, no bins")
    ratio_value = _num(ratio, "bin_ratio")
    if not ratio_value > 1.0:
        raise CheckpointError(f"checkpoint field bin_ratio: {ratio_value!r} must be > 1")
    k = r.get("k")
    p = r.get("p")
    last_req, last_end = r["a"]
    inherited = r.get("h")
    spans: list[tuple[float, float, float]] = []
    for span in r.get("n", []):  # older checkpoints have no history
        if len(span) != 3:
            raise CheckpointError(f"checkpoint concurrency span of {name} has {len(span)} fields")
        a, b, c = (_num(v, "concurrency span") for v in span)
        if not (a < b and c >= 0 and (not spans or a >= spans[-1][1])):
            raise CheckpointError(
                f"checkpoint concurrency span of {name} [{a}, {b}] at {c}: not a later, "
                "non-empty span with a concurrency >= 0"
            )
        spans.append((a, b, c))
    if len(spans) > MAX_SPANS:
        raise CheckpointError(
            f"checkpoint history of {name} has {len(spans)} spans (at most {MAX_SPANS})"
        )
    return RevisionState(
        revision=name,
        latency=LatencyModel(_time(ref, "latency ref"), ratio_value, tuple(lat_bins)),
        idle=IdleHistogram(
            idle_weights,
            count,
            _time(iref, "idle ref"),
            tuple(_time(_nonneg(x, "idle time"), "idle time") for x in recent),
            idle_requests,
            idle_woken,
        ),
        activity=Activity(_opt_time(last_req, "last request"), _opt_time(last_end, "last active")),
        knee=Knee(_nonneg(k[0], "knee"), _time(k[1], "knee time"), bool(k[2]))
        if k is not None
        else None,
        applied=(
            AppliedValues(
                _positive(p[0], "target"),
                _nonneg(p[1], "retention"),
                int(_nonneg(p[2], "min-scale")),
                _time(p[3], "applied at"),
                _positive(p[4], "window") if len(p) > 4 else None,
            )
            if p is not None
            else None
        ),
        last_target_change_s=_opt_time(r.get("c"), "last change"),
        last_target=_opt_positive(r.get("t"), "last target"),
        inherited_from=str(inherited) if inherited is not None else None,
        inherited_start_s=_opt_time(r.get("s"), "inherited start"),
        unfinished_since_s=_opt_time(r.get("u"), "unfinished since"),
        history=ConcurrencyHistory(tuple(spans)),
        rate=_rate(r.get("q")),
        last_window_s=_opt(r.get("w"), "last window"),
        uid=_uid(r.get("o")),
    )


def _rate(q: Any) -> RequestRate:
    """The request rate, from ``[requests, seconds, last]`` (older checkpoints have none)."""
    if q is None:
        return RequestRate()
    if not isinstance(q, list) or len(q) != 3:
        raise CheckpointError(f"checkpoint request rate {q!r}: expected [requests, seconds, last]")
    return RequestRate(
        _nonneg(q[0], "rate requests"), _nonneg(q[1], "rate seconds"), _time(q[2], "rate time")
    )
