"""Fixtures for the simulator's tests: where the shared traces are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("MODELSCALE_SHARED", REPO / ".." / "shared")).resolve()


def missing(what: str, path: Path) -> None:
    """Skip on a developer machine without the traces; in CI (``CI`` set) that is a failure,
    so CI cannot pass without running the simulator on its small slice of the real trace."""
    message = f"{what} not found at {path}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run the simulator on a trace slice)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def functions_dir() -> Path:
    path = shared_dir() / "traces" / "azure_functions_2019"
    if not path.is_dir():
        missing("shared traces", path)
    return path


@pytest.fixture
def llm_trace() -> Path:
    path = shared_dir() / "traces" / "AzureLLMInferenceTrace_code.csv"
    if not path.is_file():
        missing("shared LLM trace", path)
    return path
