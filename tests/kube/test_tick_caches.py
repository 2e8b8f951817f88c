"""What the controller keeps from one tick to the next to do less each tick: the parsed specs, the
checkpoint text of each latency bin, the formatted tick time and the metric children. Each must
give what the work it saves gives, and see a change."""

from __future__ import annotations

import base64
import copy
import json
import zlib
from collections import OrderedDict
from dataclasses import replace
from typing import Any

import pytest

from autoscaler.kube import model as km
from autoscaler.kube import world
from autoscaler.kube.scaler_status import _without_times, build_status, iso, same_status
from autoscaler.tuner import (
    ModelScalerSpec,
    RevisionState,
    decode_checkpoint,
    encode_checkpoint,
    inherit_state,
    new_state,
    parse_spec,
)
from autoscaler.tuner.checkpoint import _MARK, _dump
from autoscaler.tuner.latency_model import LatencyModel


def _spec(**extra: Any) -> dict[str, Any]:
    return {"targetRef": {"name": "m"}, "objective": {"latencyMs": 200}, **extra}


def _scaler(spec: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "m", "namespace": "default", "generation": 1}, "spec": spec}


def test_a_spec_changed_in_place_is_parsed_again() -> None:
    scaler = _scaler(_spec())
    assert km.plan_model(scaler, None, []).spec == parse_spec(_spec())
    scaler["spec"]["objective"]["latencyMs"] = 300  # same dict, same generation
    plan = km.plan_model(scaler, None, [])
    assert plan.spec is not None and plan.spec.objective_latency_ms == 300
    scaler["spec"]["target"] = {"min": 5, "max": 2}
    plan = km.plan_model(scaler, None, [])
    assert plan.spec is None and "must be <=" in plan.spec_errors[0]
    del scaler["spec"]["target"]
    assert km.plan_model(scaler, None, []).spec == parse_spec(scaler["spec"])


@pytest.mark.parametrize(
    ("first", "then"),
    [
        pytest.param(1, True, id="int-then-bool"),
        pytest.param(1, 1.0, id="int-then-float"),
        pytest.param(0.0, -0.0, id="zero-then-negative-zero"),
    ],
)
def test_values_equal_in_python_but_not_to_the_checks_are_told_apart(
    first: object, then: object
) -> None:
    cache = km.SpecCache(maxsize=8)
    spec = _spec(replicas={"min": first})
    cache.parsed(spec)
    spec["replicas"]["min"] = then
    assert cache.parsed(spec) == km._parse(copy.deepcopy(spec))


def test_the_spec_cache_stays_bounded_and_keeps_the_recent() -> None:
    cache = km.SpecCache(maxsize=4)
    specs = [_spec(targetRef={"name": f"m{i}"}) for i in range(10)]
    for spec in specs:
        assert cache.parsed(spec) == km._parse(spec)
    assert len(cache) == 4
    cache.parsed(specs[6])  # used again: kept
    cache.parsed(_spec(targetRef={"name": "new"}))
    assert len(cache) == 4
    kept = [json.loads(text)["targetRef"]["name"] for text in cache._entries]
    assert kept == ["m8", "m9", "m6", "new"]
    assert len(km.SPECS) <= km.SPECS.maxsize


def test_a_spec_that_is_not_json_is_parsed_each_time() -> None:
    cache = km.SpecCache(maxsize=4)
    odd = OrderedDict(_spec())
    assert cache.parsed(odd) == km._parse(odd)
    assert cache.parsed(_spec(targetRef={"name": object()}))[0] is None
    assert len(cache) == 0


def _old_encode(states: dict[str, RevisionState]) -> str:
    doc = {"revisions": [_dump(states[name]) for name in sorted(states)]}
    raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    return "v1:" + base64.urlsafe_b64encode(zlib.compress(raw, 9)).decode("ascii")


def _learned(name: str = "rev-1") -> RevisionState:
    state = new_state(name)
    model = state.latency
    counts = tuple([0.0] * 6 + [10.0] + [0.0] * 20)
    for i, c in enumerate((1.0, 2.0, 4.0, 8.0)):
        model = model.add(30.0 * (i + 1), c, counts, 3600.0, latency_sum=42.5)
    return replace(state, latency=model)


def test_the_checkpoint_text_is_what_encoding_it_whole_gives() -> None:
    state = _learned()
    states = {"rev-2": inherit_state(state, "rev-2"), "rev-1": state}
    assert encode_checkpoint(states) == _old_encode(states)
    assert all(b.encoded is not None for b in state.latency.bins)  # each bin's text kept with it
    assert encode_checkpoint(states) == _old_encode(states)  # from the kept texts
    # a bin added or changed is a new bin: its text is new, the others' are kept
    grown = replace(
        state,
        latency=state.latency.add(200.0, 2.0, tuple([1.0] * 27), 3600.0),
    )
    assert encode_checkpoint({"rev-1": grown}) == _old_encode({"rev-1": grown})
    assert decode_checkpoint(encode_checkpoint({"rev-1": grown}))["rev-1"].latency == grown.latency
    # a revision name holding the parts' mark is encoded whole
    name = "a" + _MARK
    marked = {name: _learned(name), "b": _learned("b")}
    assert encode_checkpoint(marked) == _old_encode(marked)


def test_the_idle_histograms_text_is_kept_and_a_new_histogram_gets_its_own() -> None:
    state = _learned()
    idle = state.idle.add(100.0, 300.0, 3600.0).add(900.0, 120.0, 3600.0, woken=2.0)
    state = replace(state, idle=idle)
    assert encode_checkpoint({"r": state}) == _old_encode({"r": state})
    assert idle.encoded is not None
    later = replace(state, idle=idle.add(2000.0, 600.0, 3600.0))
    assert later.idle.encoded is None
    assert encode_checkpoint({"r": later}) == _old_encode({"r": later})
    assert decode_checkpoint(encode_checkpoint({"r": later}))["rev-1"].idle == later.idle
    assert replace(idle, count=idle.count).encoded is None  # a copy is encoded afresh


def test_a_replaced_bin_does_not_take_the_old_bins_text() -> None:
    state = _learned()
    encode_checkpoint({"r": state})
    b = state.latency.bins[0]
    other = replace(b, weight=b.weight * 2)
    assert other.encoded is None
    changed = replace(state, latency=LatencyModel(state.latency.ref_s, 1.1, (other,)))
    assert encode_checkpoint({"r": changed}) == _old_encode({"r": changed})


def test_a_non_finite_number_in_a_bin_still_refuses_to_encode() -> None:
    state = _learned()
    b = state.latency.bins[0]
    bad = replace(state, latency=LatencyModel(0.0, 1.1, (replace(b, weight=float("nan")),)))
    with pytest.raises(ValueError, match="not JSON compliant"):
        encode_checkpoint({"r": bad})


def test_iso_formats_each_time_it_is_given() -> None:
    assert iso(0.0) == "1970-01-01T00:00:00Z"
    assert iso(0.0) == "1970-01-01T00:00:00Z"
    assert iso(3600.0) == "1970-01-01T01:00:00Z"
    assert iso(3600) == "1970-01-01T01:00:00Z"


def _status(**over: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "mode": "Auto",
        "target": 3.5,
        "recommendation": {"target": 5, "reasons": ["a"], "time": "t1"},
        "applied": {"revision": "r", "annotations": {"k": "v"}, "time": "t1"},
        "revisions": [{"name": "r", "points": [[1.0, 2.0, 3.0]]}],
        "checkpoint": "v1:x",
        "conditions": [
            {"type": "Applied", "status": "True", "lastTransitionTime": "t1"},
            {"type": "Invalid", "status": "False"},
        ],
    }
    s.update(over)
    return s


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(_status(), id="same"),
        pytest.param(
            _status(
                recommendation={"target": 5, "reasons": ["a"], "time": "t2"},
                applied={"revision": "r", "annotations": {"k": "v"}, "time": "t9"},
                conditions=[
                    {"type": "Applied", "status": "True", "lastTransitionTime": "t2"},
                    {"type": "Invalid", "status": "False", "lastTransitionTime": "t3"},
                ],
            ),
            id="times-only",
        ),
        pytest.param(_status(checkpoint="v1:y"), id="checkpoint"),
        pytest.param(_status(revisions=[{"name": "r", "points": [[1.0, 2.0, 3.5]]}]), id="deep"),
        pytest.param(_status(recommendation={"target": 5, "reasons": ["b"]}), id="reasons"),
        pytest.param(_status(conditions=[{"type": "Applied", "status": "False"}]), id="cond"),
        pytest.param(_status(conditions=({"type": "Applied", "status": "True"},)), id="tuple"),
        pytest.param(_status(conditions="x"), id="not-a-list"),
        pytest.param(_status(applied="r"), id="applied-not-a-dict"),
        pytest.param(_status(recommendation=OrderedDict(target=5, reasons=["a"])), id="subclass"),
        pytest.param({}, id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_same_status_is_the_deep_copy_comparison(other: dict[str, Any] | None) -> None:
    base = _status()
    for a, b in ((base, other), (other, base), (other, other)):
        assert same_status(a, b) == (_without_times(a) == _without_times(b))
    assert base == _status()  # neither is changed


def test_the_applied_block_kept_is_a_copy() -> None:
    previous = _status()
    status = build_status(
        previous=previous, generation=1, mode="Auto", conditions=[], now_wall_s=0.0
    )
    assert status["applied"] == previous["applied"]
    assert status["applied"] is not previous["applied"]
    assert status["applied"]["annotations"] is not previous["applied"]["annotations"]


def test_unchanged_spec_objects_parse_once() -> None:
    cache = km.SpecCache(maxsize=4)
    spec = _spec()
    first = cache.parsed(spec)
    assert cache.parsed(copy.deepcopy(spec))[0] is first[0]  # same text: the same result
    assert isinstance(first[0], ModelScalerSpec)


@pytest.mark.parametrize(
    "raw", ["90s", "1h2m3s", "5m", "12", " 7 ", "abc", "", "0", "-1", "inf", "nan", None, 3.5, 0.0]
)
def test_annotation_values_read_the_same_from_the_cache(raw: Any) -> None:
    first = (world.parse_duration_s(raw), world._positive(raw))
    again = (world.parse_duration_s(raw), world._positive(raw))
    text = None if raw is None else str(raw)
    expected = (world._duration_of(raw), world._positive_of(raw))
    assert repr(first) == repr(again) == repr(expected)
    if text is not None:
        assert repr(world._positive(text)) == repr(world._positive_of(text))


def test_the_annotation_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world, "READ_KEPT", 8)
    for i in range(50):
        assert world.parse_duration_s(f"{i}s") == float(i)
        assert world._positive(f"{i}.5") == i + 0.5
    assert len(world._durations) <= 8 and len(world._read_strings) <= 8
