"""A simulated policy that changes nothing and keeps every observation it is ticked with."""

from __future__ import annotations

from autoscaler.sim.model import ModelSpec
from autoscaler.tuner.observation import RevisionObservation


class RecordingPolicy:
    """Ticks every 30 s on the grid, keeps each observation, never patches the revision."""

    name = "recording"

    def __init__(self, annotations: dict[str, str] | None = None) -> None:
        self.annotations = dict(annotations or {})
        self.seen: list[RevisionObservation] = []

    def for_revision(self, model: ModelSpec) -> RecordingPolicy:
        return self

    def initial_annotations(self) -> dict[str, str]:
        return dict(self.annotations)

    def next_tick_s(self, now_s: float) -> float:
        return (now_s // 30.0 + 1.0) * 30.0

    def tick(self, now_s: float, observation: RevisionObservation) -> None:
        self.seen.append(observation)
