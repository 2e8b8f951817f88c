"""Reconcilers for one-machine mode: what KServe's and Knative's controllers do, as pure transforms.

The chain is the one a cluster runs:

    InferenceService --(kserve.py)--> Knative Service ``<isvc>-predictor``
    Knative Service  --(serving.py)--> Configuration + Route (same name)
    Configuration    --(configuration.py)--> Revision ``<configuration>-<generation:05d>``
    Revision         --(revision.py)--> PodAutoscaler (same name), replicas in the data plane
    Route            --(route.py)--> traffic targets for the ingress

Each module holds pure functions from observed objects (plain dicts as the API returns them) to the
desired objects and status; ``controller.py`` is the driver that reads and writes them through the
Kubernetes API.
"""
