"""modelscale: serverless model deployment with per-model autoscaling for KServe on Knative.

The import package is ``autoscaler``. The pure decision cores (``kpa``, ``tuner``) do no I/O; the
drivers (``apiserver``, ``runtime``, ``kube``, ``eventing``, ``sim``) gather inputs, call a core with
``now`` and apply what it returns. Nothing runs at import time.
"""

__version__ = "0.1.0"
