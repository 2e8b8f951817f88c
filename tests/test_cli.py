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
