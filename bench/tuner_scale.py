"""One tuner tick over 10,000 ModelScalers, beside a no-op pass over the same snapshots.

Each model gets a synthetic plant (a latency knee, a load, an objective; some idle, some with
stale metrics) and a few warm-up ticks so its state holds a learned curve and idle history.
Then, measured with ``time.process_time``: the no-op pass (copy each snapshot, iterate its
histogram) and one ``recommend`` per model. Prints both CPU times, their ratio, and how many
models have annotations to write (writes happen only for values that changed).

Run: .venv/bin/python bench/tuner_scale.py [--models N] [--seed S]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import time

from autoscaler.tuner import (
    LATENCY_BUCKETS_MS,
    ModelScalerSpec,
    RevisionObservation,
    RevisionState,
    TunerConfig,
    new_state,
    recommend,
)

TICK_S = 30.0
WARMUP_TICKS = 6


def counts_for(p95_ms: float, n: int) -> tuple[float, ...]:
    """A fixed spread of ``n`` latencies whose 95th percentile is ``p95_ms``, bucketed."""
    out = [0.0] * (len(LATENCY_BUCKETS_MS) + 1)
    if n == 0:
        return tuple(out)
    for q, share in ((0.6, 0.5), (0.9, 0.45), (1.0, 0.05)):
        x = p95_ms * q
        i = next((k for k, b in enumerate(LATENCY_BUCKETS_MS) if x <= b), len(LATENCY_BUCKETS_MS))
        out[i] += n * share
    return tuple(out)


@dataclasses.dataclass
class Model:
    spec: ModelScalerSpec
    knee: float
    load: float
    period_s: float  # 0: steady traffic
    stale: bool
    target: float | None = None
    state: RevisionState = dataclasses.field(default_factory=lambda: new_state("r"))

    def observe(self, t: float) -> RevisionObservation | None:
        if self.stale and t > WARMUP_TICKS * TICK_S:
            return None
        active = self.period_s == 0 or (t - TICK_S) % self.period_s < TICK_S
        target = self.target if self.target is not None else 100.0
        replicas = max(1, math.ceil(self.load / (target * 0.7))) if active else 0
        c = self.load / replicas if active else 0.0
        p95 = 50.0 if c <= self.knee else 50.0 * (c / self.knee) ** 2
        n = int(self.load * 20) if active else 0
        return RevisionObservation(
            t_s=t,
            interval_s=TICK_S,
            ready_replicas=replicas,
            avg_concurrency_per_replica=c,
            request_count=n,
            latency_counts=counts_for(p95, n),
            applied_target=self.target,
        )


def build(n: int, rng: random.Random, config: TunerConfig) -> list[Model]:
    models = []
    for i in range(n):
        spec = ModelScalerSpec(f"m{i}", objective_latency_ms=rng.choice([100.0, 200.0, 500.0]))
        m = Model(
            spec=spec,
            knee=rng.choice([1.0, 4.0, 16.0]),
            load=rng.uniform(1, 100),
            period_s=rng.choice([0.0, 0.0, 0.0, 120.0, 300.0]),
            stale=rng.random() < 0.05,
            state=new_state(f"m{i}-00001"),
        )
        for k in range(1, WARMUP_TICKS + 1):
            t = k * TICK_S
            rec, m.state = recommend(m.observe(t), spec, config, m.state, t)
            if rec.should_apply:
                m.target = rec.target
        models.append(m)
    return models


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    config = TunerConfig()
    models = build(args.models, rng, config)
    now = (WARMUP_TICKS + 1) * TICK_S
    snapshots = [m.observe(now) for m in models]

    t0 = time.process_time()
    copied = 0.0
    for snap in snapshots:
        if snap is not None:
            dup = dataclasses.replace(snap)
            copied += sum(dup.latency_counts)
    noop_s = time.process_time() - t0

    t0 = time.process_time()
    writes = 0
    annotations = 0
    for m, snap in zip(models, snapshots, strict=True):
        rec, m.state = recommend(snap, m.spec, config, m.state, now)
        if rec.should_apply:
            writes += 1
            annotations += len(rec.changed)
    tick_s = time.process_time() - t0

    print(f"models {len(models)}  seed {args.seed}")
    print(f"no-op pass (copy + iterate snapshots): {noop_s:.3f} s CPU")
    print(f"tuner tick (recommend per model):      {tick_s:.3f} s CPU")
    print(
        f"ratio tick / no-op: {tick_s / max(noop_s, 1e-9):.1f}x   per model: {tick_s / len(models) * 1e6:.0f} us"
    )
    print(
        f"outputs changed: {writes} models, {annotations} annotations to write; {len(models) - writes} unchanged"
    )
    print(f"aim: tick under 1 s CPU -> {'met' if tick_s < 1.0 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
