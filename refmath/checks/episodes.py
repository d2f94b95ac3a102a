"""The inputs of the §2 checks (:mod:`refmath.checks.steps`) that are not drawn: the pinned
boundary rows every value check tries first, the long half-precision row, the episode of a
function without flags, and the bad inputs of SPEC §1 as data."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from ..strategies import Episode

__all__ = ["PINNED", "BAD_INPUTS", "Replace", "terminal_ends", "half_pinned", "as_batch"]


def terminal_ends(ep: Episode) -> Episode:
    """The episode with no flags but a termination at each row's last present step (what a
    function without flags computes: token-level RLHF code never bootstraps at the end)."""
    term = np.zeros(ep.shape, dtype=bool)
    for idx in np.ndindex(ep.shape[:-1]):
        present = [t for t in range(ep.shape[-1]) if ep.mask is None or ep.mask[idx + (t,)]]
        if present:
            term[idx + (present[-1],)] = True
    return Episode(ep.rewards, ep.values, ep.next_values, term, np.zeros(ep.shape, bool),
                   ep.mask, ep.gamma, ep.lam)


def _row3(rewards, next_values, *, terminated=(0, 0, 0), truncated=(0, 0, 0), mask=None,
         gamma=Fraction(1, 2), lam=Fraction(1, 2)) -> Episode:
    def frac(xs):
        return np.array([Fraction(x) for x in xs], dtype=object)

    return Episode(frac(rewards), frac([Fraction(1, 8), Fraction(1, 4), Fraction(3, 8)]),
                   frac(next_values), np.array(terminated, bool), np.array(truncated, bool),
                   None if mask is None else np.array(mask, bool), gamma, lam)


# Boundary structures every implementation must get right, tried before the random search:
# a termination, a truncation and an interior masked step in the middle of a row, and a
# per-step discount. (Random search alone can miss an interior hole with 0 < γλ < 1.)
PINNED = [  # each a [1, 3] batch, so that functions limited to [B, T] take them too
    _row3([1, 2, 4], [1, 2, 4], terminated=(0, 1, 0)),
    _row3([1, 2, 4], [1, 2, 4], truncated=(0, 1, 0)),
    _row3([1, 2, 4], [1, 2, 4], mask=(1, 0, 1)),
    _row3([1, 2, 4], [1, 2, 4], mask=(1, 0, 1), truncated=(0, 1, 0), terminated=(1, 0, 0)),
    _row3([1, 2, 4], [1, 2, 4], mask=(1, 1, 0)),  # right padding, as LM batches have it
    _row3([1, 2, 4], [1, 2, 4], gamma=np.array([Fraction(1, 2), Fraction(1, 4), Fraction(1)],
                                              dtype=object)),
]


def half_pinned() -> Episode:
    """40 steps of rewards near 1 with γ = 0.99 and λ = 0.95 (float32 values): bfloat16 has
    γ = 0.98828125, and a running sum near 30 in float16 loses 2⁻⁷ per addition, so a
    computation in the half dtype itself is off by far more than one final rounding."""
    T = 40
    frac = lambda xs: np.array([Fraction(float(np.float32(x))) for x in xs], dtype=object)  # noqa: E731
    rewards = frac([1 + ((7 * t) % 5) / 8 for t in range(T)])
    values = frac([((3 * t) % 7) / 4 for t in range(T)])
    next_values = np.concatenate([values[1:], frac([0.5])])
    g, lam = (Fraction(float(np.float32(x))) for x in (0.99, 0.95))
    return Episode(rewards, values, next_values, np.zeros(T, bool), np.zeros(T, bool), None,
                   g, lam)


def as_batch(ep: Episode) -> Episode:
    def two_d(a):
        return None if a is None else a.reshape(1, -1)

    return Episode(two_d(ep.rewards), two_d(ep.values), two_d(ep.next_values),
                   two_d(ep.terminated), two_d(ep.truncated), two_d(ep.mask), ep.gamma, ep.lam)


@dataclass(frozen=True)
class Replace:
    """A bad input of SPEC §1 for a §2 function, as data: the valid call with argument
    ``name`` replaced by ``value`` — a number, or one of the transforms below of the valid
    tensor (``"one step shorter"``, ``"NaN at t = 0"``, ``"filled with X"``). ``needs``: the
    argument the function must take for the case to apply; the error must name ``word``."""

    needs: str
    word: str
    name: str
    value: Any

    def apply(self, kw: dict[str, Any]) -> dict[str, Any]:
        x, v = kw[self.name], self.value
        if v == "one step shorter":
            v = x[..., :-1]
        elif v == "NaN at t = 0":
            v = x.clone()
            v[..., 0] = float("nan")
        elif isinstance(v, str) and v.startswith("filled with "):
            v = torch.full(kw["rewards"].shape, float(v.removeprefix("filled with ")))
        return dict(kw, **{self.name: v})


BAD_INPUTS = (
    Replace("shape", "rewards", "rewards", "one step shorter"),  # than the other inputs
    Replace("gamma", "gamma", "gamma", 1.5),
    Replace("gamma", "gamma", "gamma", -0.1),
    Replace("lam", "lam", "lam", 1.01),
    Replace("mask", "mask", "mask", "filled with 2.0"),
    Replace("terminated", "terminated", "terminated", "filled with 0.5"),
    Replace("rewards", "rewards", "rewards", "NaN at t = 0"),
    Replace("values", "values", "values", "NaN at t = 0"),
    Replace("next_values", "next_values", "next_values", "NaN at t = 0"),
    Replace("n", "n", "n", 0),
)
