"""Bad input to ``modelscale simulate``: a one-line error naming what was wrong, exit 2."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from autoscaler.sim import cli, parallel
from autoscaler.sim.report import plot_name

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


def test_model_names_make_safe_plot_names_and_working_links(tmp_path: Path) -> None:
    # the report plots the three busiest models
    names = ["meta-llama/Llama-3-8B", "my model (v2) $a^$", "fn-ab/../../" + "x" * 300]
    rows = "".join(f'{t},"{name}"\n' for name in names for t in (0, 1, 2))
    trace = _tiny(tmp_path, "timestamp,model\n" + rows)
    out = tmp_path / "out"
    assert _simulate("--trace", str(trace), "--format", "csv", "--out", str(out)) == 0
    plots = sorted(p.name for p in out.glob("replicas_*.png"))
    assert len(plots) == len(names)
    assert {p.parent for p in out.rglob("*.png")} == {out}
    assert all(len(p) <= 70 and re.fullmatch(r"[A-Za-z0-9._-]+", p) for p in plots)
    report = (out / "report.md").read_text()
    # CommonMark: a link destination has no spaces or unbalanced brackets
    links = re.findall(r"!\[([^\]\s]+)\]\(([^()\s]+)\)", report)
    assert sorted(dest for _, dest in links if dest.startswith("replicas_")) == plots
    assert all((out / dest).is_file() for _, dest in links)


def test_plot_names_stay_unique() -> None:
    names = ["A", "a", "a/b", "a b", "a?b", "..", "", "x" * 300, "x" * 301]
    plots = [plot_name(n) for n in names]
    assert len(set(plots)) == len(names)
    assert all(
        len(p) <= 70 and re.fullmatch(r"replicas_[A-Za-z0-9][A-Za-z0-9._-]*\.png", p) for p in plots
    )
