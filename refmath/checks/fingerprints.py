"""Fingerprints: the small discriminating inputs a diagnosis runs beyond the counterexample.

A failure's shrunk counterexample is minimal, which makes it a poor witness: its numbers shrink
to 0 and 1, and on it many known mistakes coincide (a carry that is never reset and a
time-limit cut that is ignored give the same output when the only boundary is a cut). So a
known mistake is named only if it behaves like the function under test on the counterexample
AND on each probe built from it: the same flags with other numbers, another γ and λ, no flags,
terminations and time limits swapped. On each, the mistake must deviate from the exact answer
where the function does, the same way, by about as much (``refmath.checks.mutants._explains``),
and agree with it where the function agrees. A mistake that reproduces the counterexample but
not a probe is not named; the report says which probe it missed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, Callable

import numpy as np

from ..strategies import Episode, _consistent_next_values

__all__ = ["Probe", "episode_variants", "other_numbers"]

GAMMA, LAM = Fraction(3, 4), Fraction(1, 2)  # generic: no power of either is 0, 1 or another


@dataclass(frozen=True)
class Probe:
    """One discriminating input: ``call(f)`` runs ``f`` on it (through the user's binding);
    ``got`` is the function under test's output there, ``exact`` and ``bound`` its judge."""

    label: str  # what the probe changes, in the user's terms
    call: Callable[[Callable], Any]
    got: np.ndarray
    exact: np.ndarray
    bound: np.ndarray


def _numbers(shape: tuple[int, ...], seed: int, denominator: int = 16) -> np.ndarray:
    """Fixed dyadic numbers ±k/denominator, k in 1..32: exact in every dtype, none zero
    (never drawn: a diagnosis is deterministic)."""
    rng = np.random.default_rng(seed)
    k = rng.integers(1, 33, size=shape) * rng.choice([-1, 1], size=shape)
    return np.vectorize(lambda i: Fraction(int(i), denominator), otypes=[object])(k)


def episode_variants(ep: Episode, *, flags: bool, truncation: bool,
                     consistent: bool) -> list[tuple[str, Episode]]:
    """The probes of a §2 counterexample ``ep``: other numbers with its flags and mask; then
    γ = 3/4, λ = 1/2; then (if the function takes flags and ``ep`` has some) no flags, and
    terminations and time-limit cuts swapped (if it takes ``truncated``)."""
    numbers = replace(ep, rewards=_numbers(ep.shape, 1), values=_numbers(ep.shape, 2),
                      next_values=_numbers(ep.shape, 3))
    gamma = GAMMA if isinstance(ep.gamma, Fraction) else np.full(np.shape(ep.gamma), GAMMA,
                                                                   dtype=object)
    generic = replace(numbers, gamma=gamma, lam=LAM)
    out = [("the same flags, other numbers", numbers),
           ("other numbers, γ = 3/4, λ = 1/2", generic)]
    if flags and (ep.terminated.any() or ep.truncated.any()):
        none = np.zeros(ep.shape, bool)
        out.append(("no episode flags", replace(generic, terminated=none, truncated=none)))
        if truncation:
            out.append(("terminations and time-limit cuts swapped",
                        replace(generic, terminated=ep.truncated, truncated=ep.terminated)))
    if consistent:
        out = [(label, replace(e, next_values=_consistent_next_values(
            e.values, e.next_values, e.terminated, e.truncated, e.mask))) for label, e in out]
    return out


# the domain of each per-element input a probe may renumber (others — distributions, integer
# lengths — keep the counterexample's numbers)
_REALS = frozenset({"advantages", "greedy_rewards", "kl", "log_rhos", "logits", "logp",
                    "next_expected_q", "next_values", "old_logp", "old_values", "per_step_loss",
                    "q_values", "ref_logp", "returns", "rewards", "rollout_logp", "values",
                    "x"})
_POSITIVE = frozenset({"ratio", "rhos", "traces"})


def other_numbers(arrays: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray] | None:
    """The arrays with every real-valued input renumbered (±k/64, positive inputs k/64, k in
    1..32: within ½ of 0, below the clamps libraries put on log-ratios and estimates), shapes
    kept; None if none can be."""
    out, changed = dict(arrays), False
    for i, (name, a) in enumerate(arrays.items()):
        if name in _REALS or name in _POSITIVE:
            x = _numbers(np.shape(a), 100 * seed + i, 64)
            out[name] = np.vectorize(abs, otypes=[object])(x) if name in _POSITIVE else x
            changed = True
    return out if changed else None
