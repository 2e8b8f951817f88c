"""Models whose ``load()`` takes long (a big model read from disk), for the stop and close paths.

The replica imports it by name, so the zygote needs this directory on its PYTHONPATH.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import kserve


class SlowLoad(kserve.Model):
    def load(self) -> bool:
        time.sleep(300)
        self.ready = True
        return True


class HeldLoad(kserve.Model):
    """Loads for as long as the file named by env ``HOLD_FILE`` exists, then serves: a model
    whose load a test ends when it likes. Predict answers each instance with 1."""

    def __init__(self, name: str, env: dict[str, str] | None = None) -> None:
        super().__init__(name)
        self.hold = Path((env or {})["HOLD_FILE"])

    def load(self) -> bool:
        while self.hold.exists():
            time.sleep(0.02)
        self.ready = True
        return True

    async def predict(
        self, payload: dict[str, Any] | kserve.InferRequest, headers: dict[str, str] | None = None
    ) -> dict[str, Any] | kserve.InferResponse:
        from kserve.utils.utils import get_predict_input, get_predict_response

        instances = get_predict_input(payload)
        return get_predict_response(payload, [1] * len(instances), self.name)
