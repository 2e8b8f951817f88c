"""A model whose ``load()`` takes minutes (a big model read from disk), for the close-path tests.

The replica imports it by name, so the zygote needs this directory on its PYTHONPATH.
"""

from __future__ import annotations

import time

import kserve


class SlowLoad(kserve.Model):
    def load(self) -> bool:
        time.sleep(300)
        self.ready = True
        return True
