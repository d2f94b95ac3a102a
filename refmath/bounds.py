"""Forward-error bounds for float implementations of the recursions (CONFORMANCE.md).

A fixed rtol/atol both fails correct float32 code (cancellation) and hides real bugs. For a
backward recursion ``y_t = x_t + c_t·y_{t+1}`` with ``0 ≤ c_t ≤ 1`` evaluated in floating
point with unit roundoff ``u``, every term ``w_{ts}·x_s`` of the exact sum
``y_t = Σ_s w_{ts}·x_s`` (``w_{ts} = Π_{j=t}^{s−1} c_j``) is computed with a relative error of
at most ``k·u`` (to first order), where ``k`` counts the roundings on its path:

* the inputs: ``γ`` and ``λ`` rounded to the dtype (1 each), their product (1), so each
  factor ``c_j`` carries ≤ 3 roundings and ``w_{ts}`` ≤ ``3(s − t)`` plus ``s − t``
  multiplications: ≤ ``4T``;
* ``x_s`` itself: ``δ_s = r_s + γ·V'_s − V_s`` has ≤ 3 roundings;
* the additions: at most ``T`` in any association order (sequential, chunked or tree).

Hence ``|ŷ_t − y_t| ≤ (5T + 10)·u·S_t + floor`` with the *condition term*
``S_t = Σ_s w_{ts}·|x|_s``, where ``|x|_s`` bounds the terms of ``x_s`` in absolute value
(``|r_s| + γ|V'_s| + |V_s|`` for GAE). ``S_t`` is the same recursion run on absolute values,
so it is computed by the oracles themselves on absolute-valued inputs. ``floor`` covers
gradual underflow: each of the ≤ ``5T + 10`` operations may lose up to the smallest normal
number times the largest magnitude involved.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["unit_roundoff", "smallest_normal", "roundings", "recursion_bound"]

_UNIT = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8, "float16": 2.0**-11}
_TINY = {"float64": 2.2250738585072014e-308, "float32": 1.1754943508222875e-38,
         "bfloat16": 1.1754943508222875e-38, "float16": 6.103515625e-05}


def _name(dtype: Any) -> str:
    return str(dtype).replace("torch.", "")


def unit_roundoff(dtype: Any) -> float:
    """u = 2^-p for a floating dtype given as a torch/NumPy dtype or its name."""
    return _UNIT[_name(dtype)]


def smallest_normal(dtype: Any) -> float:
    return _TINY[_name(dtype)]


def roundings(T: int) -> int:
    """The rounding count ``5T + 10`` of the derivation above."""
    return 5 * T + 10


def recursion_bound(condition: np.ndarray, T: int, dtype: Any,
                    magnitude: float | None = None) -> np.ndarray:
    """``(5T + 10)·u·S + floor`` elementwise, for the condition term ``S`` (float64 array)."""
    k = roundings(T)
    S = np.asarray(condition, dtype=np.float64)
    top = float(np.max(S)) if magnitude is None and S.size else (magnitude or 0.0)
    floor = k * smallest_normal(dtype) * max(top, 1.0)
    return k * unit_roundoff(dtype) * S + floor
