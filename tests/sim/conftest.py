"""Fixtures for the simulator's tests: where the shared traces are."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def shared_dir() -> Path:
    return Path(os.environ.get("MODELSCALE_SHARED", REPO / ".." / "shared")).resolve()


@pytest.fixture
def functions_dir() -> Path:
    path = shared_dir() / "traces" / "azure_functions_2019"
    if not path.is_dir():
        pytest.skip(f"shared traces not found at {path}")
    return path


@pytest.fixture
def llm_trace() -> Path:
    path = shared_dir() / "traces" / "AzureLLMInferenceTrace_code.csv"
    if not path.is_file():
        pytest.skip(f"shared LLM trace not found at {path}")
    return path
