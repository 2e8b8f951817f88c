"""batch-predict: a Knative Function that batches inference request events for one model.

Events of type ``modelscale.inference.request`` (KServe V1 ``instances``) for the same model that
arrive within a small window, or until a maximum batch, become one predict call; each event is
answered with its own response event. ``python -m batch_predict`` serves it.
"""

from batch_predict.app import create_app
from batch_predict.config import BatchConfig, ConfigError

__all__ = ["BatchConfig", "ConfigError", "create_app"]
