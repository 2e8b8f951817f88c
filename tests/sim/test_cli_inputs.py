"""Bad input to ``modelscale simulate``: a one-line error naming what was wrong, exit 2."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from autoscaler.sim import cli, parallel

TINY_CSV = "timestamp,model\n0,a\n1,a\n30,a\n"


def _simulate(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--jobs", "1", "--policies", "knative-default", *argv])
    return cli.run(args)


def _tiny(tmp_path: Path, text: str = TINY_CSV, name: str = "log.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def no_simulation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the simulation starts."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the simulation ran")

    monkeypatch.setattr(parallel, "run_policies", refuse)


@pytest.mark.parametrize(
    ("out", "message"),
    [("afile", "--out {out}: not a directory"), ("afile/sub", "--out {out}: cannot write")],
    ids=["existing-file", "under-a-file"],
)
def test_bad_out_is_refused_before_the_simulation(
    tmp_path: Path, out: str, message: str, no_simulation: None,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "afile").write_text("hi\n")
    trace = _tiny(tmp_path)
    out_path = tmp_path / out
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out_path)) == 2
    err = capsys.readouterr().err
    assert message.format(out=out_path) in err
    assert "Traceback" not in err


def test_out_is_created_with_its_parents(tmp_path: Path) -> None:
    trace = _tiny(tmp_path)
    out = tmp_path / "a" / "b"
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    assert json.loads((out / "results.json").read_text())["trace"]["requests"] == 3
