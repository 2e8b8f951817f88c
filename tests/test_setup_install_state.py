"""scripts/setup.sh installs the package only when pyproject.toml changed or an extra asked for
is not in yet (scripts/install_state.py decides; setup.sh runs it with the venv's Python)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
spec = importlib.util.spec_from_file_location("install_state", SCRIPTS / "install_state.py")
assert spec is not None and spec.loader is not None
install_state = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_state)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\n')
    return tmp_path / "venv-state.json", pyproject


def test_nothing_recorded_needs_an_install(files: tuple[Path, Path]) -> None:
    state, pyproject = files
    assert not install_state.covered(state, pyproject, [])
    state.write_text("not json")
    assert not install_state.covered(state, pyproject, [])


def test_alternating_runtime_and_test_setup_installs_once_each_way(
    files: tuple[Path, Path],
) -> None:
    state, pyproject = files
    install_state.record(state, pyproject, ["dev"])  # setup.sh --tests (test.sh)
    assert install_state.covered(state, pyproject, [])  # setup.sh (demo.sh): nothing to do
    assert install_state.covered(state, pyproject, ["dev"])

    state.unlink()
    install_state.record(state, pyproject, [])  # setup.sh first
    assert not install_state.covered(state, pyproject, ["dev"])  # --tests adds the extra
    install_state.record(state, pyproject, ["dev"])
    assert install_state.covered(state, pyproject, [])
    assert install_state.covered(state, pyproject, ["dev"])


def test_an_edited_pyproject_installs_again_and_forgets_the_old_extras(
    files: tuple[Path, Path],
) -> None:
    state, pyproject = files
    install_state.record(state, pyproject, ["dev"])
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["y"]\n')
    assert not install_state.covered(state, pyproject, [])
    install_state.record(state, pyproject, [])
    assert install_state.covered(state, pyproject, [])
    assert not install_state.covered(state, pyproject, ["dev"]), "dev's tools may be stale"


def test_the_command_line_setup_sh_runs(files: tuple[Path, Path]) -> None:
    state, pyproject = files

    def run(*args: str) -> int:
        command = [sys.executable, str(SCRIPTS / "install_state.py"), *args]
        return subprocess.run(command, capture_output=True, check=False).returncode

    assert run("check", str(state), str(pyproject), "dev") == 1
    assert run("record", str(state), str(pyproject), "dev") == 0
    assert run("check", str(state), str(pyproject)) == 0
    assert run("check", str(state), str(pyproject), "dev") == 0
    assert run("nonsense") == 2


def test_setup_sh_decides_with_install_state() -> None:
    text = (SCRIPTS / "setup.sh").read_text()
    assert 'scripts/install_state.py" check' in text
    assert 'scripts/install_state.py" record' in text
    assert "pip install -qq -e" in text
