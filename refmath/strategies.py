"""Hypothesis strategies for RL trajectories, reusable in your own property tests.

Everything is generated exactly (``fractions.Fraction``), so the same example can be fed to
an exact oracle and, converted with :meth:`Episode.tensors` or :meth:`Episode.arrays`, to a
float implementation::

    from hypothesis import given
    from refmath.strategies import episodes

    @given(episodes(consistent=True))
    def test_my_gae(ep):
        expected = refmath.gae(**ep.oracle_kwargs())
        ...

Requires ``hypothesis`` (the ``test`` extra).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st

__all__ = [
    "Episode",
    "batch_shapes",
    "dyadics",
    "unit_dyadics",
    "floats_as_fractions",
    "episodes",
    "register_profiles",
]


def register_profiles() -> None:
    """Register refmath's profiles (``ci``, ``quick``, ``detect``, ``thorough``, ``random``,
    ``dev``; :mod:`refmath.profiles`) under their names in YOUR Hypothesis session,
    for your own tests to load. Opt-in: refmath itself never calls this, and never loads a
    profile — its checks apply their own settings objects."""
    from .profiles import PROFILES

    for name, values in PROFILES.items():
        settings.register_profile(name, settings.get_profile("default"), **values)


def batch_shapes(max_dims: int = 2, max_side: int = 3) -> st.SearchStrategy[tuple[int, ...]]:
    """Leading batch shapes: ``()`` (a single sequence) up to ``max_dims`` axes."""
    return st.lists(st.integers(1, max_side), max_size=max_dims).map(tuple)


def dyadics(max_abs: int = 8, max_exponent: int = 3) -> st.SearchStrategy[Fraction]:
    """Exact dyadic rationals ``k / 2^e`` with ``|k / 2^e| <= max_abs``: exact in any float."""
    scale = 2**max_exponent
    return st.integers(-max_abs * scale, max_abs * scale).map(lambda k: Fraction(k, scale))


def unit_dyadics() -> st.SearchStrategy[Fraction]:
    """Discounts in [0, 1], dyadic, with 0 and 1 (the boundary cases) drawn often."""
    return st.one_of(st.sampled_from([Fraction(0), Fraction(1)]),
                     st.integers(0, 16).map(lambda k: Fraction(k, 16)))


def floats_as_fractions(max_abs: float = 1e3) -> st.SearchStrategy[Fraction]:
    """General float64 values (no subnormals), returned as their exact Fraction."""
    return st.floats(-max_abs, max_abs, allow_nan=False, allow_subnormal=False,
                     width=32).map(Fraction)


def _fmt(a: np.ndarray) -> str:
    return np.array2string(np.vectorize(str, otypes=[object])(a), separator=", ",
                           formatter={"all": str}) if a.dtype == object else repr(a.tolist())


@dataclass
class Episode:
    """One batch of trajectories ``[..., T]`` with exact numbers and boolean flags."""

    rewards: np.ndarray
    values: np.ndarray
    next_values: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    mask: np.ndarray | None
    gamma: Fraction | np.ndarray
    lam: Fraction
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.rewards.shape

    def __repr__(self) -> str:
        parts = [f"rewards={_fmt(self.rewards)}", f"values={_fmt(self.values)}",
                 f"next_values={_fmt(self.next_values)}",
                 f"terminated={self.terminated.astype(int).tolist()}",
                 f"truncated={self.truncated.astype(int).tolist()}"]
        if self.mask is not None:
            parts.append(f"mask={self.mask.astype(int).tolist()}")
        gamma = self.gamma if isinstance(self.gamma, Fraction) else _fmt(self.gamma)
        parts += [f"gamma={gamma}", f"lam={self.lam}"]
        return "Episode(" + ", ".join(parts) + ")"

    def oracle_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the exact oracles (Fractions, boolean arrays)."""
        return dict(rewards=self.rewards, values=self.values, next_values=self.next_values,
                    gamma=self.gamma, lam=self.lam, terminated=self.terminated,
                    truncated=self.truncated, mask=self.mask)

    def tensors(self, dtype: Any = None, device: Any = None) -> dict[str, Any]:
        """The same inputs as torch tensors (floats rounded to ``dtype``, default float64)."""
        import torch

        dtype = dtype or torch.float64

        def f(a):
            return torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype, device=device)

        def b(a):
            return None if a is None else torch.tensor(np.asarray(a, dtype=bool), device=device)

        gamma = float(self.gamma) if isinstance(self.gamma, Fraction) else f(self.gamma)
        return dict(rewards=f(self.rewards), values=f(self.values),
                    next_values=f(self.next_values), gamma=gamma, lam=float(self.lam),
                    terminated=b(self.terminated), truncated=b(self.truncated),
                    mask=b(self.mask))


def _consistent_next_values(values, next_values, terminated, truncated, mask):
    """Make ``next_values[t] = values[next present step]`` inside every segment (SPEC §1)."""
    nv = next_values.copy()
    for idx in np.ndindex(values.shape[:-1]):
        present = [t for t in range(values.shape[-1])
                   if mask is None or mask[idx + (t,)]]
        for a, b in zip(present, present[1:]):
            if not (terminated[idx + (a,)] or truncated[idx + (a,)]):
                nv[idx + (a,)] = values[idx + (b,)]
    return nv


@st.composite
def episodes(draw, *, min_T: int = 1, max_T: int = 6, shape: tuple[int, ...] | None = None,
             numbers: st.SearchStrategy[Fraction] | None = None, consistent: bool = False,
             masks: bool = True, per_step_gamma: bool = False, flag_rate: float = 0.25,
             gamma: st.SearchStrategy[Fraction] | None = None,
             lam: st.SearchStrategy[Fraction] | None = None, truncation: bool = True,
             batch_dims: tuple[int, int] = (0, 2)) -> Episode:
    """Batches of trajectories with random terminated/truncated/mask patterns.

    ``consistent=True`` sets ``next_values[t] = values[t']`` for the next present step t'
    inside each segment (what the telescoping identities need). Masks include all-masked
    rows, and flags on masked steps (which must be ignored). ``truncation=False`` draws no
    truncated flags; ``batch_dims=(lo, hi)`` bounds the number of leading batch axes.
    """
    numbers = dyadics() if numbers is None else numbers
    if shape is None:
        batch = draw(batch_shapes(max_dims=batch_dims[1]).filter(
            lambda b: len(b) >= batch_dims[0]), label="batch shape")
        T = draw(st.integers(min_T, max_T), label="T")
        shape = batch + (T,)
    size = int(np.prod(shape))

    def numeric(label):
        return np.array(draw(st.lists(numbers, min_size=size, max_size=size), label=label),
                        dtype=object).reshape(shape)

    def flags(label, rate):
        # shrinks towards 0, i.e. towards "no flag": minimal examples carry only the flags
        # that matter
        bits = draw(st.lists(st.floats(0, 1), min_size=size, max_size=size), label=label)
        return (np.array(bits) > 1 - rate).reshape(shape)

    rewards, values, next_values = numeric("rewards"), numeric("values"), numeric("next_values")
    terminated = flags("terminated", flag_rate)
    truncated = flags("truncated", flag_rate if truncation else 0.0)
    mask = None
    if masks and draw(st.booleans(), label="use a mask"):
        mask = ~flags("masked steps", draw(st.sampled_from([0.0, 0.3, 1.0]), label="mask rate"))
    unit = unit_dyadics() if gamma is None else gamma
    g = draw(unit, label="gamma")
    if per_step_gamma:
        g = np.array(draw(st.lists(unit, min_size=shape[-1],
                                   max_size=shape[-1]), label="per-step gamma"), dtype=object)
    lam_value = draw(unit_dyadics() if lam is None else lam, label="lam")
    if consistent:
        next_values = _consistent_next_values(values, next_values, terminated, truncated, mask)
    return Episode(rewards, values, next_values, terminated, truncated, mask, g, lam_value)
