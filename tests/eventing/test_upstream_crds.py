"""Where one-machine mode finds Knative Eventing's own Broker and Trigger CRDs, and how loudly it
says it serves the built-in ones instead."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autoscaler.eventing.crds import UPSTREAM_CRD_FILES, upstream_crds


def test_the_files_under_modelscale_shared_are_used(tmp_path: Path) -> None:
    (tmp_path / "crds").mkdir()
    for name in UPSTREAM_CRD_FILES:
        (tmp_path / "crds" / name).write_text("kind: CustomResourceDefinition\n")
    paths = upstream_crds({"MODELSCALE_SHARED": str(tmp_path)})
    assert [p.name for p in paths] == list(UPSTREAM_CRD_FILES)


def test_a_modelscale_shared_without_them_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="autoscaler.eventing.crds"):
        assert upstream_crds({"MODELSCALE_SHARED": str(tmp_path)}) == []
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert str(tmp_path / "crds") in caplog.records[0].getMessage()


def test_a_plain_checkout_without_them_is_only_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import autoscaler.eventing.crds as crds

    monkeypatch.setattr(crds, "shared_dir", lambda environ=None: tmp_path / "no-shared")
    with caplog.at_level(logging.INFO, logger="autoscaler.eventing.crds"):
        assert upstream_crds({}) == []
    assert [r.levelno for r in caplog.records] == [logging.INFO]
    assert "serving the built-in ones" in caplog.records[0].getMessage()
