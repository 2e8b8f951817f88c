"""The embedded Knative/KServe data plane for one-machine mode.

Pieces, each in its own module:

- ``spec``: ``ReplicaSpec``, what one replica runs (KServe predictor kind, storage, class, args, env).
- ``predictors``: the sklearn predictor and the loader of custom ``kserve.Model`` classes.
- ``replica_main``: the replica entry point (a KServe model server bound to 127.0.0.1, no gRPC).
- ``zygote`` / ``launcher``: how replica processes are started (a warm pre-forked process, or a
  fresh interpreter per replica) and watched.
- ``replica``: one replica's lifecycle: start, ready, drain, stop.
- ``stats`` / ``breaker`` / ``queueproxy`` / ``qpmetrics``: Knative's queue-proxy (concurrency
  limit, per-second Stat, Prometheus metrics).
- ``activator``: Knative's activator (buffering at zero, poke, load balancing, retries).
- ``routing`` / ``ingress``: host routing (every path) with traffic splits and tags.
- ``capacity``: the machine-wide replica cap.
- ``pool``: ``RevisionPool``, one revision's replicas (a ReplicaSet plus the pod lifecycle).
- ``dataplane``: ``DataPlane``, the facade the reconcilers drive.

Nothing here runs at import time; the heavy imports (kserve) happen only in replica processes.
"""

from autoscaler.runtime.spec import PredictorKind, ReplicaSpec, RevisionKey
from autoscaler.runtime.stats import Stat

__all__ = ["PredictorKind", "ReplicaSpec", "RevisionKey", "Stat"]
