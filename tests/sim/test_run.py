"""Whole runs: determinism by seed, and the CLI on a small slice of the real trace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from autoscaler.sim import cli
from autoscaler.sim.results import FIGURE_KEYS

SLICE = ["--functions", "12", "--minutes", "0:30"]
FAST_POLICIES = ["knative-default", "keepalive-10m", "oracle", "modelscale"]


def _simulate(functions_dir: Path, out: Path, seed: int, *extra: str) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--trace", str(functions_dir), *SLICE, "--seed", str(seed), "--out", str(out), *extra]
    )
    assert cli.run(args) == 0
    return json.loads((out / "results.json").read_text())


def test_cli_writes_report_plots_and_results_with_documented_keys(
    functions_dir: Path, tmp_path: Path
) -> None:
    doc = _simulate(functions_dir, tmp_path, 7)
    assert doc["seed"] == 7
    policies = doc["policies"]
    assert isinstance(policies, dict)
    assert set(policies) == set(cli.DEFAULT_POLICIES)
    for figures in policies.values():
        assert set(figures) == set(FIGURE_KEYS)
        assert 0.0 <= figures["within_objective_share"] <= 1.0
        assert figures["latency_p50_s"] <= figures["latency_p99_s"] <= figures["latency_p999_s"]
    assert (
        policies["kserve-default"]["cold_start_share"]
        <= policies["knative-default"]["cold_start_share"]
    )
    ratios = doc["ratios"]
    assert isinstance(ratios, dict)
    assert set(ratios) == set(cli.DEFAULT_POLICIES) - {"modelscale"}
    report = (tmp_path / "report.md").read_text()
    assert "Poisson" in report and "Serverless in the Wild" in report
    for name in ("coldstarts_vs_memory.png", "latency_cdf.png"):
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG")
    assert list(tmp_path.glob("replicas_*.png"))


def test_same_seed_same_results_other_seed_other_results(
    functions_dir: Path, tmp_path: Path
) -> None:
    args = ("--policies", *FAST_POLICIES)
    a = _simulate(functions_dir, tmp_path / "a", 11, *args)
    b = _simulate(functions_dir, tmp_path / "b", 11, *args)
    c = _simulate(functions_dir, tmp_path / "c", 12, *args)
    assert (tmp_path / "a" / "results.json").read_bytes() == (
        tmp_path / "b" / "results.json"
    ).read_bytes()
    assert a == b
    assert c["seed"] == 12 and c["policies"] != a["policies"]


def test_llm_trace_runs(llm_trace: Path, tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(
        ["--trace", str(llm_trace), "--format", "azure-llm", "--minutes", "0:5",
         "--policies", "knative-default", "modelscale", "--out", str(tmp_path)]
    )  # fmt: skip
    assert cli.run(args) == 0
    doc = json.loads((tmp_path / "results.json").read_text())
    assert doc["trace"]["models"] == 1 and doc["policies"]["modelscale"]["requests"] > 500


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--minutes", "9:3"], "--minutes"),
        (["--policies", "nope"], "unknown policy"),
    ],
    ids=["bad-minutes", "unknown-policy"],
)
def test_cli_rejects_bad_options(
    functions_dir: Path, tmp_path: Path, extra: list[str], message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--trace", str(functions_dir), "--out", str(tmp_path), *extra])
    assert cli.run(args) == 2
    assert message in capsys.readouterr().err
