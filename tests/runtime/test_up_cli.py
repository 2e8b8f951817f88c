"""``modelscale up --autoscaler-config KEY=VALUE``: Knative config-autoscaler settings for one
machine, checked before anything starts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from autoscaler import cli
from autoscaler.kpa.settings import CONFIG_KEYS, AutoscalerConfig
from autoscaler.runtime import onemachine
from autoscaler.runtime.cli import parse_autoscaler_config


class Recording(Mapping[str, str]):
    """Empty ConfigMap data that remembers every key asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.asked.append(key)
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.append(key)
        return default

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def test_config_keys_are_the_keys_the_kpa_reads() -> None:
    data = Recording()
    AutoscalerConfig.from_configmap(data)
    assert sorted(set(data.asked)) == sorted(CONFIG_KEYS)


def test_settings_parse_into_configmap_data() -> None:
    assert parse_autoscaler_config(
        ["scale-to-zero-grace-period=6s", "stable-window = 30s", "enable-scale-to-zero=false"]
    ) == {
        "scale-to-zero-grace-period": "6s",
        "stable-window": "30s",
        "enable-scale-to-zero": "false",
    }


@pytest.mark.parametrize(
    ("item", "said"),
    [
        ("no-such-key=1", "no-such-key: not a config-autoscaler key this runtime supports"),
        ("scale-to-zero-grace-period=2s", "must be at least 6s"),
        ("stable-window=soon", "a duration such as 60s"),
        ("stable-window", "not KEY=VALUE"),
    ],
)
def test_a_bad_setting_is_one_line_and_exit_2_before_anything_starts(
    item: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = cli.main(["up", "--data-dir", str(tmp_path / "data"), "--autoscaler-config", item])
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and said in err, err
    assert err.startswith("modelscale up: --autoscaler-config ")
    assert not (tmp_path / "data").exists()


def test_the_settings_reach_one_machine_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[onemachine.OneMachineSettings] = []

    class Started(Exception):
        pass

    class Machine:
        def __init__(self, settings: onemachine.OneMachineSettings) -> None:
            seen.append(settings)

        async def start(self) -> None:
            raise Started

        async def stop(self) -> None:
            return None

    monkeypatch.setattr(onemachine, "OneMachine", Machine)
    argv = ["up", "--data-dir", str(tmp_path), "--loop", "asyncio"]
    argv += ["--autoscaler-config", "scale-to-zero-grace-period=6s"]
    argv += ["--autoscaler-config", "stable-window=30s"]
    with pytest.raises(Started):
        cli.main(argv)
    assert seen[0].autoscaler_config == {
        "scale-to-zero-grace-period": "6s",
        "stable-window": "30s",
    }
