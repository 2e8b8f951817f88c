"""The checkpoint: round trip, compactness, and clear errors on malformed input."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import replace

import pytest
from tuner_plant import KneePlant, Loop

from autoscaler.tuner import (
    CheckpointError,
    KeepAliveSettings,
    LearnedKeepAlive,
    ModelScalerSpec,
    decode_checkpoint,
    encode_checkpoint,
    inherit_state,
    new_state,
    recommend,
)
from autoscaler.tuner.state import RevisionState


def learned_state() -> RevisionState:
    loop = Loop(KneePlant(knee=4, load=40), ModelScalerSpec("m", 200))
    loop.run(20)
    return loop.state


def test_round_trip_restores_every_field_but_the_cached_windows_and_the_last_wake() -> None:
    """Not kept: the idle policy's cached answer (recomputed), and the ready replicas last seen
    and the last wake from zero (after a restart the next interval is taken as it comes)."""
    state = learned_state()
    assert state.knee is not None and state.applied is not None and state.latency.bins
    other = inherit_state(state, "rev-2")
    text = encode_checkpoint({"rev-1": state, "rev-2": other})
    assert text.startswith("v1:")
    back = decode_checkpoint(text)
    assert back["rev-1"] == replace(
        state, windows=None, windows_samples=-1, windows_policy=None, ready_seen=None, woke_s=None
    )
    assert back["rev-2"].inherited_from == "rev-1"
    assert encode_checkpoint(back) == text


def test_the_revision_objects_uid_round_trips_and_is_not_inherited() -> None:
    """The uid tells a revision created again under the same name from the one the state was
    learned on; a checkpoint from before it was kept loads without one."""
    state = replace(learned_state(), uid="5f0c-rev-1")
    back = decode_checkpoint(encode_checkpoint({"rev-1": state}))["rev-1"]
    assert back.uid == "5f0c-rev-1"
    assert inherit_state(state, "rev-2").uid is None
    older = decode_checkpoint(encode_checkpoint({"rev-1": replace(state, uid=None)}))["rev-1"]
    assert older.uid is None
    loop = Loop(KneePlant(knee=4, load=40), ModelScalerSpec("m", 200))
    loop.state = replace(loop.state, uid="5f0c-rev-1")
    loop.run(2)
    assert loop.state.uid == "5f0c-rev-1", "the policy carries it tick to tick"


def test_restored_state_decides_like_the_original() -> None:
    loop = Loop(KneePlant(knee=4, load=40), ModelScalerSpec("m", 200))
    loop.run(20)
    restored = decode_checkpoint(encode_checkpoint({"rev-1": loop.state}))["rev-1"]
    obs = loop.plant.observe(loop.now_s + 30, 30, loop.target)
    a, _ = recommend(obs, loop.spec, loop.config, loop.state, loop.now_s + 30)
    b, _ = recommend(obs, loop.spec, loop.config, restored, loop.now_s + 30)
    assert (a.target, a.keep_alive_s, a.min_scale) == (b.target, b.keep_alive_s, b.min_scale)


def test_tail_sums_round_trip_and_bins_without_one_still_load() -> None:
    loop = Loop(
        KneePlant(knee=4, load=40, base_ms=200_000.0, growth_exponent=1.0, spread_low=0.95),
        ModelScalerSpec("m", 600_000),
    )
    loop.run(10)
    assert any(b.tail_sum > 0 for b in loop.state.latency.bins)
    assert all(b.latency_sum is not None for b in loop.state.latency.bins)
    back = decode_checkpoint(encode_checkpoint({"rev-1": loop.state}))["rev-1"]
    assert back.latency == loop.state.latency
    for tail, whole, fields in ((0.0, None, 4), (5.0, None, 5), (0.0, 7.0, 6)):
        # four fields: written before tails were kept (read as zero); five: before whole sums
        # were kept (read as unknown)
        plain = replace(
            loop.state,
            latency=replace(
                loop.state.latency,
                bins=tuple(
                    replace(b, tail_sum=tail, latency_sum=whole) for b in loop.state.latency.bins
                ),
            ),
        )
        text = encode_checkpoint({"rev-1": plain})
        body = json.loads(zlib.decompress(base64.urlsafe_b64decode(text.split(":", 1)[1])))
        assert all(len(b) == fields for b in body["revisions"][0]["l"][2])
        assert decode_checkpoint(text)["rev-1"].latency == plain.latency


def test_requests_per_idle_period_round_trip() -> None:
    state = replace(new_state("rev-1"), unfinished_since_s=120.0)
    idle = state.idle.add(100.0, 900.0, 86400).count_requests(101.0, 7, 86400)
    state = replace(state, idle=idle)
    back = decode_checkpoint(encode_checkpoint({"rev-1": state}))["rev-1"]
    assert back.idle == idle and back.idle.requests_per_idle() == pytest.approx(7.0, rel=1e-3)
    assert back.unfinished_since_s == 120.0


@pytest.mark.parametrize("requests", [40.0, 0.0])
def test_requests_woken_at_idle_ends_round_trip(requests: float) -> None:
    state = new_state("rev-1")
    idle = state.idle.add(100.0, 900.0, 86400, woken=12.0).count_requests(101.0, requests, 86400)
    text = encode_checkpoint({"rev-1": replace(state, idle=idle)})
    back = decode_checkpoint(text)["rev-1"]
    assert back.idle == idle and back.idle.woken == pytest.approx(12.0, rel=1e-3)


@pytest.mark.parametrize("per_idle", [1.0, 3.0, 40.0, 1000.0])
def test_a_checkpoint_from_before_the_woken_count_keeps_its_price(per_idle: float) -> None:
    # written with five idle fields: the cold start keeps the price it had, 1,800 x max(1, 5 /
    # requests per idle period), until idle periods with their own counts come in
    state = new_state("rev-1")
    idle = state.idle.add(100.0, 900.0, 86400).count_requests(101.0, per_idle, 86400)
    text = encode_checkpoint({"rev-1": replace(state, idle=idle)})
    body = json.loads(zlib.decompress(base64.urlsafe_b64decode(text.split(":", 1)[1])))
    assert len(body["revisions"][0]["i"]) == 6
    body["revisions"][0]["i"] = body["revisions"][0]["i"][:5]
    old = decode_checkpoint(_wrap(json.dumps(body).encode()))["rev-1"]
    price = LearnedKeepAlive(KeepAliveSettings(), False, 30.0).cold_start_price(old.idle)
    assert price == pytest.approx(1800.0 * max(1.0, 5.0 / per_idle), rel=1e-3)
    # a checkpoint from a later version, with more idle fields: the known ones are read
    body["revisions"][0]["i"] = [*body["revisions"][0]["i"], 12.0, "later"]
    later = decode_checkpoint(_wrap(json.dumps(body).encode()))["rev-1"]
    assert later.idle.woken == pytest.approx(12.0, rel=1e-3)


def test_checkpoint_is_compact() -> None:
    assert len(encode_checkpoint({"rev-1": learned_state()})) < 4000
    assert len(encode_checkpoint({"r": new_state("r")})) < 200


def _wrap(raw: bytes) -> str:
    return "v1:" + base64.urlsafe_b64encode(zlib.compress(raw)).decode()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("v2:abcd", "version 'v2' is not supported", id="wrong-version"),
        pytest.param("no-prefix", "no version prefix", id="no-prefix"),
        pytest.param("v1:%%%%", "not valid base64", id="not-base64"),
        pytest.param(
            "v1:" + base64.urlsafe_b64encode(b"garbage!").decode(), "not valid zlib", id="not-zlib"
        ),
        pytest.param(_wrap(b"{not json"), "not valid JSON", id="not-json"),
        pytest.param(
            _wrap(b'{"revisions": [{"r": 5}]}'), "name 5 is not a string", id="wrong-shape"
        ),
        pytest.param(_wrap(b'{"revisions": [{"r": "x"}]}'), "malformed", id="missing-field"),
        pytest.param(_wrap(b'{"other": 1}'), "malformed", id="missing-key"),
        pytest.param(_wrap(b"[1, 2]"), "malformed", id="list-document"),
        pytest.param(
            _wrap(
                b'{"revisions":[{"r":"x","l":[0,1.1,[]],"i":[[],0,0,[]],"a":[null,null],"k":["a",1,true]}]}'
            ),
            "is not a finite number",
            id="bad-number",
        ),
        pytest.param(
            _wrap(
                b'{"revisions":[{"r":"x","l":[0,1.1,[[3,1,1,['
                + b",".join([b"0"] * 27)
                + b'],0,-2]]],"i":[[],0,0,[]],"a":[null,null]}]}'
            ),
            "latency sum -2",
            id="negative-latency-sum",
        ),
        pytest.param(
            _wrap(
                b'{"revisions":[{"r":"x","l":[0,1.1,[[3,1,1,['
                + b",".join([b"0"] * 27)
                + b"]],[3,1,1,["
                + b",".join([b"0"] * 27)
                + b']]]],"i":[[],0,0,[]],"a":[null,null]}]}'
            ),
            "not ordered by index",
            id="unordered-latency-bins",
        ),
    ],
)
def test_malformed_checkpoints_raise_clear_errors(text: str, message: str) -> None:
    with pytest.raises(CheckpointError, match=message):
        decode_checkpoint(text)


def test_truncated_checkpoint_raises() -> None:
    text = encode_checkpoint({"rev-1": learned_state()})
    for cut in (len(text) // 2, len(text) - 8):
        with pytest.raises(CheckpointError):
            decode_checkpoint(text[:cut])
