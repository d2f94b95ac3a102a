"""Half precision computed the way users expect (SPEC §1 "dtypes").

float16 and bfloat16 have 11 and 8 significant bits: a recursion or a sum run in them loses
everything (``γ = 0.99`` is ``0.98828125`` in bfloat16; 65 505 ones overflow float16). So a
twin given half-precision tensors computes in float32 — γ, λ, the sums and variances all in
float32 — and rounds its tensor results once to the input dtype. Autograd flows through the
two conversions, so gradients reach the half-precision inputs in their own dtype.

Only a call whose floating tensors all share one half dtype is lifted: a call mixing dtypes
goes through unchanged, so the twin's own check names the argument with the wrong dtype.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from typing import Any, Callable, TypeVar

import torch

__all__ = ["HALF", "float32_for_half", "source_dtype"]

_SOURCE: ContextVar[torch.dtype | None] = ContextVar("refmath_torch_source_dtype",
                                                     default=None)


def source_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the caller's tensors had (a half dtype inside a lifted call), for the
    tolerances of validation (a bfloat16 distribution sums to 1 only to ~K·2⁻⁹)."""
    return _SOURCE.get() or dtype


HALF = (torch.float16, torch.bfloat16)
_WIDE = (torch.float32, torch.float64)
F = TypeVar("F", bound=Callable[..., Any])


def _floating(x: Any) -> bool:
    return isinstance(x, torch.Tensor) and x.is_floating_point()


def _half_dtype(args: tuple, kwargs: dict) -> torch.dtype | None:
    """The one half dtype of every floating tensor argument (a per-step ``gamma`` may be of
    any floating dtype: the twins convert it), or None."""
    dtypes = {x.dtype for x in args if _floating(x)}
    dtypes |= {x.dtype for k, x in kwargs.items() if _floating(x) and k != "gamma"}
    if len(dtypes) == 1 and next(iter(dtypes)) in HALF:
        return next(iter(dtypes))
    return None


def _up(x: Any, dtype: torch.dtype) -> Any:
    if _floating(x) and x.dtype in HALF:
        return x.float()
    if callable(x) and not isinstance(x, torch.Tensor):  # an operator (Avp, objective, kl)
        return _lifted_operator(x, dtype)
    return x


def _lifted_operator(op: Callable, dtype: torch.dtype) -> Callable:
    """``op`` called on the input dtype, its tensor result returned in float32."""
    @functools.wraps(op)
    def call(v: Any) -> Any:
        out = op(v.to(dtype) if _floating(v) else v)
        return out.float() if _floating(out) else out

    return call


def _down(out: Any, dtype: torch.dtype) -> Any:
    if _floating(out):
        return out.to(dtype)
    if isinstance(out, tuple):
        return tuple(_down(x, dtype) for x in out)
    return out


def float32_for_half(fn: F) -> F:
    """Run ``fn`` in float32 when its tensors are float16/bfloat16; round results once."""
    @functools.wraps(fn)
    def twin(*args: Any, **kwargs: Any) -> Any:
        if args and isinstance(args[0], torch.Tensor) and args[0].dtype in _WIDE:
            return fn(*args, **kwargs)  # float32/float64 first: not one half dtype, not lifted
        dtype = _half_dtype(args, kwargs)
        if dtype is None:
            return fn(*args, **kwargs)
        token = _SOURCE.set(dtype)
        try:
            out = fn(*(_up(x, dtype) for x in args),
                     **{k: _up(v, dtype) for k, v in kwargs.items()})
        finally:
            _SOURCE.reset(token)
        return _down(out, dtype)

    twin.in_input_dtype = fn  # type: ignore[attr-defined]  # the computation without lifting
    return twin  # type: ignore[return-value]
