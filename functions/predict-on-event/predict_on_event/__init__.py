"""predict-on-event: a Knative Function that answers inference request events with predictions.

``create_app(config)`` builds the Flask app; ``python -m predict_on_event`` runs it with the
configuration from the environment (see ``config.py``).
"""

from predict_on_event.app import create_app
from predict_on_event.config import ConfigError, FunctionConfig

__all__ = ["ConfigError", "FunctionConfig", "create_app"]
