"""The modelscale command parses and lists its subcommands."""

import pytest

from autoscaler import cli


def test_no_subcommand_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    assert "usage: modelscale" in capsys.readouterr().err


def test_unknown_subcommand_is_an_error() -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["no-such-command"])
    assert info.value.code == 2


def test_controller_metric_name_choices_are_the_metric_presets() -> None:
    from autoscaler.kube.cli import METRIC_NAME_PRESETS
    from autoscaler.metrics.names import PRESETS

    assert tuple(PRESETS) == METRIC_NAME_PRESETS
    args = cli.build_parser().parse_args(["controller", "--metric-names", "knative-opentelemetry"])
    assert args.metric_names == "knative-opentelemetry"


def test_simulate_help_says_what_each_tuner_concurrency_is(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["simulate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "the direct scrape, from its samples between ticks" in text
    assert "completions (the direct scrape with sampling off" in text
