"""The tuner: per-model concurrency targets, keep-alive and pre-warm for Knative's KPA. Pure.

No I/O, no environment, no clock: a ``RevisionObservation`` (built by the controller from
metrics), the ``ModelScalerSpec`` and ``TunerConfig`` settings, the previous ``RevisionState``
and ``now`` go in; a frozen ``Recommendation`` and the new state come out.

Typical controller tick, per revision::

    spec = parse_spec(modelscaler["spec"])            # SpecError lists every problem
    config = parse_tuner_config(configmap["data"])     # SettingsError names key/value/range
    rec, next_state = recommend(obs, spec, config, state, now)   # obs None: fail-static
    if not rec.should_apply or patch_revision(rec.changed_annotations()):   # controller I/O
        state = next_state                             # a failed write keeps the old state
    status["checkpoint"] = encode_checkpoint(states)   # decode_checkpoint on restart

A new revision of the same model: ``inherit_state(old_state, new_revision_name)``.
``explain(rec)`` renders the reasons; ``HybridHistogramPolicy`` is the baseline idle-time
policy the simulator compares ``LearnedKeepAlive`` against.
"""

from autoscaler.tuner.checkpoint import CheckpointError, decode_checkpoint, encode_checkpoint
from autoscaler.tuner.explain import explain
from autoscaler.tuner.hybrid_baseline import HybridHistogram, HybridHistogramPolicy
from autoscaler.tuner.idle import Activity, IdleHistogram, observe_activity
from autoscaler.tuner.keepalive import LearnedKeepAlive
from autoscaler.tuner.keepalive_plan import KeepAlivePlan, plan
from autoscaler.tuner.latency_model import LatencyModel, LatencyPoint
from autoscaler.tuner.observation import (
    KNATIVE_DEFAULT_TARGET,
    LATENCY_BUCKETS_MS,
    N_LATENCY_COUNTS,
    RevisionObservation,
    counts_from_cumulative,
)
from autoscaler.tuner.policy import (
    ANNOTATION_MIN_SCALE,
    ANNOTATION_RETENTION,
    ANNOTATION_TARGET,
    ANNOTATION_WINDOW,
    Recommendation,
    recommend,
)
from autoscaler.tuner.settings import (
    KeepAliveSettings,
    LoopSettings,
    SettingsError,
    TargetSettings,
    TunerConfig,
    parse_tuner_config,
    tuner_config_to_configmap,
)
from autoscaler.tuner.spec import ModelScalerSpec, SpecError, parse_spec, validate_spec
from autoscaler.tuner.state import AppliedValues, RevisionState, inherit_state, new_state
from autoscaler.tuner.status import learned_status, recommendation_status
from autoscaler.tuner.target import Judgement, Knee
from autoscaler.tuner.windows import KeepAliveWindows

__all__ = [
    "ANNOTATION_MIN_SCALE",
    "ANNOTATION_RETENTION",
    "ANNOTATION_TARGET",
    "ANNOTATION_WINDOW",
    "KNATIVE_DEFAULT_TARGET",
    "LATENCY_BUCKETS_MS",
    "N_LATENCY_COUNTS",
    "Activity",
    "AppliedValues",
    "CheckpointError",
    "HybridHistogram",
    "HybridHistogramPolicy",
    "IdleHistogram",
    "Judgement",
    "KeepAlivePlan",
    "KeepAliveSettings",
    "KeepAliveWindows",
    "Knee",
    "LatencyModel",
    "LatencyPoint",
    "LearnedKeepAlive",
    "LoopSettings",
    "ModelScalerSpec",
    "Recommendation",
    "RevisionObservation",
    "RevisionState",
    "SettingsError",
    "SpecError",
    "TargetSettings",
    "TunerConfig",
    "counts_from_cumulative",
    "decode_checkpoint",
    "encode_checkpoint",
    "explain",
    "inherit_state",
    "learned_status",
    "new_state",
    "observe_activity",
    "parse_spec",
    "parse_tuner_config",
    "plan",
    "recommend",
    "recommendation_status",
    "tuner_config_to_configmap",
    "validate_spec",
]
