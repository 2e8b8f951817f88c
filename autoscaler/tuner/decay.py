"""Exponentially decaying sample weights without touching old samples.

As the Kubernetes VPA's decaying histograms do: a sample at time ``t`` weighs
``2 ** ((t - ref_s) / half_life_s)`` against a reference time, so newer samples weigh more and
nothing stored needs rescaling on every add. Read back at ``now``, a stored weight times
``2 ** -((now - ref_s) / half_life_s)`` is the sample's weight as of ``now`` (1 for a sample
taken at ``now``). When the exponent grows large the reference moves forward and stored
weights shrink by the same factor (``rebase_factor``).

A clock that steps back (``now`` before the reference: a failover to a controller whose clock
is behind) never makes a weight grow: ages are clamped at zero, and the next sample moves the
reference back to its own time with the stored weights as they are (old samples count as if
recorded then). Without the clamp, 17 h back at a 60 s half-life is ``2 ** 1020``: an overflow.
"""

from __future__ import annotations

# Rebase once a new sample would weigh more than 2**40 times the reference: far from float
# overflow (2**1023) yet rare (40 half-lives).
MAX_EXPONENT = 40.0


def sample_weight(t_s: float, ref_s: float, half_life_s: float) -> float:
    """Stored weight of a sample at ``t_s`` (1 at the reference time)."""
    return float(2.0 ** ((t_s - ref_s) / half_life_s))


def weight_now(stored: float, now_s: float, ref_s: float, half_life_s: float) -> float:
    """A stored weight as of ``now_s``: decayed requests, seconds, ... (never more than stored:
    a ``now_s`` before the reference reads as the reference)."""
    return stored * float(2.0 ** (-max(0.0, now_s - ref_s) / half_life_s))


def needs_rebase(t_s: float, ref_s: float, half_life_s: float) -> bool:
    """A sample at ``t_s`` would weigh more than ``2 ** MAX_EXPONENT``, or comes before the
    reference (the clock stepped back): the reference moves to ``t_s`` first."""
    return t_s < ref_s or (t_s - ref_s) / half_life_s > MAX_EXPONENT


def rebase_factor(new_ref_s: float, ref_s: float, half_life_s: float) -> float:
    """Multiply stored weights by this when the reference moves to ``new_ref_s`` (1 when it
    moves back: ages are clamped at zero, weights never grow)."""
    return float(2.0 ** (-max(0.0, new_ref_s - ref_s) / half_life_s))
