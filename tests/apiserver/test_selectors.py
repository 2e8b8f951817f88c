"""Label and field selectors, as tables of (selector, labels or object, expected)."""

from __future__ import annotations

import pytest

from autoscaler.apiserver.errors import APIError
from autoscaler.apiserver.selectors import (
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    supported_fields,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}

LABEL_CASES = [
    ("equals", "app=web", True),
    ("double-equals", "app==web", True),
    ("equals-miss", "app=db", False),
    ("not-equals", "app!=db", True),
    ("not-equals-absent-key", "zone!=x", True),
    ("in", "tier in (front, back)", True),
    ("in-miss", "tier in (back)", False),
    ("notin", "tier notin (back)", True),
    ("notin-absent-key", "zone notin (a)", True),
    ("exists", "app", True),
    ("exists-miss", "zone", False),
    ("not-exists", "!zone", True),
    ("not-exists-miss", "!app", False),
    ("and", "app=web,tier=front", True),
    ("and-one-fails", "app=web,tier=back", False),
    ("set-and-equality", "tier in (front,back),app=web", True),
    ("greater", "n>3", True),
    ("less", "n<3", False),
    ("empty-selects-all", "", True),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in LABEL_CASES], ids=[c[0] for c in LABEL_CASES]
)
def test_label_selector(text: str, expected: bool) -> None:
    assert labels_match(parse_label_selector(text), LABELS) is expected


@pytest.mark.parametrize(
    "text", ["app=(x", "a b c", "in (x)", "=x"], ids=["paren", "words", "no-key", "no-key-eq"]
)
def test_malformed_label_selector_is_bad_request(text: str) -> None:
    with pytest.raises(APIError) as info:
        parse_label_selector(text)
    assert info.value.code == 400


@pytest.mark.parametrize("text", ["env in ()", "env notin ( )", "app=web,env in ()"])
def test_an_empty_value_set_is_bad_request(text: str) -> None:
    # kube-apiserver refuses it; matching nothing (in) or everything (notin) would hide the typo
    with pytest.raises(APIError) as info:
        parse_label_selector(text)
    assert info.value.code == 400
    assert "values set can't be empty" in str(info.value)


EVENT = {
    "metadata": {"name": "e1", "namespace": "default"},
    "involvedObject": {"kind": "InferenceService", "name": "m1", "namespace": "default"},
    "reason": "Scaled",
    "type": "Normal",
}

FIELD_CASES = [
    ("name", "metadata.name=e1", True),
    ("name-miss", "metadata.name=e2", False),
    ("namespace-not", "metadata.namespace!=kube-system", True),
    ("involved-kind", "involvedObject.kind=InferenceService", True),
    ("involved-name-and-reason", "involvedObject.name=m1,reason=Scaled", True),
    ("type-double-equals", "type==Warning", False),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in FIELD_CASES], ids=[c[0] for c in FIELD_CASES]
)
def test_field_selector_on_events(text: str, expected: bool) -> None:
    sel = parse_field_selector(text, supported_fields("", "events"))
    assert fields_match(sel, EVENT) is expected


def test_unsupported_field_is_bad_request_naming_it() -> None:
    with pytest.raises(APIError) as info:
        parse_field_selector("spec.foo=1", supported_fields("", "configmaps"))
    assert info.value.code == 400
    assert "spec.foo" in info.value.message
