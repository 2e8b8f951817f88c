"""The trace-driven simulator: a fleet of Knative revisions under the KPA and a policy.

Readers (``traces``) turn a trace into a ``Workload``; ``run_policy`` replays it under one
``Policy`` with the KPA of ``autoscaler.kpa`` (through ``kpa_adapter``) and the tuner of
``autoscaler.tuner`` (through ``policies``); ``report`` writes ``results.json`` (keys in
``results``), ``report.md`` and plots; ``replay`` serves parity tests with one-machine mode.
"""

from autoscaler.sim.fleet import PolicyRun, SimSettings, run_policy, run_revision
from autoscaler.sim.model import DEFAULT_COLD_START_MEDIAN_S, ColdStart, ModelSpec, ServiceTime
from autoscaler.sim.parity import ParityResult, replay, tick_agreement
from autoscaler.sim.policies import POLICY_NAMES, make_policies
from autoscaler.sim.results import FIGURE_KEYS, PolicyFigures
from autoscaler.sim.seams import Policy, RevisionAutoscaler, RevisionPolicy

__all__ = [
    "DEFAULT_COLD_START_MEDIAN_S",
    "FIGURE_KEYS",
    "POLICY_NAMES",
    "ColdStart",
    "ModelSpec",
    "ParityResult",
    "Policy",
    "PolicyFigures",
    "PolicyRun",
    "RevisionAutoscaler",
    "RevisionPolicy",
    "ServiceTime",
    "SimSettings",
    "make_policies",
    "replay",
    "run_policy",
    "run_revision",
    "tick_agreement",
]
