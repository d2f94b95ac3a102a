"""Pieces shared by the check modules (imports torch)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .core import CheckFailure

__all__ = ["assert_hygienic", "expect_named_error", "exceeds", "worst_of"]


def assert_hygienic(name: str, call: Callable[[], Any], inputs: dict[str, Any],
                    dtype: torch.dtype, shape: tuple[int, ...] | None = None) -> None:
    """Call twice: the inputs must be untouched, the result a tensor of ``dtype`` on the
    inputs' device (and of ``shape`` when given), and both calls bitwise equal."""
    tensors = {k: v for k, v in inputs.items() if isinstance(v, torch.Tensor)}
    before = {k: v.clone() for k, v in tensors.items()}
    out1, out2 = call(), call()
    for k, v in tensors.items():
        if not torch.equal(v, before[k]):
            raise CheckFailure(f"{name} modified its input {k!r}",
                               pattern=f"in the input {k!r}: changed in place by the call")
    if not isinstance(out1, torch.Tensor):
        raise CheckFailure(f"{name} returned {type(out1).__name__}, not a torch.Tensor",
                           pattern=f"the result's type: {type(out1).__name__}, not a tensor")
    device = next(iter(tensors.values())).device if tensors else out1.device
    if out1.dtype != dtype or out1.device != device:
        raise CheckFailure(f"{name}: {dtype} input gave {out1.dtype} output on {out1.device}",
                           pattern=f"the result's dtype or device: {out1.dtype} on {out1.device} "
                                   f"for {dtype} input on {device}")
    if shape is not None and tuple(out1.shape) != tuple(shape):
        raise CheckFailure(f"{name}: shape {tuple(out1.shape)} != {tuple(shape)}",
                           pattern=f"the result's shape: {tuple(out1.shape)}, not {tuple(shape)}")
    nan = torch.isnan(out1.detach())
    if bool(nan.any()):
        idx = tuple(int(i) for i in torch.nonzero(nan)[0].tolist())
        raise CheckFailure(f"{name} returned NaN at {idx} for finite inputs",
                           pattern=f"NaN at {int(nan.sum())} of {nan.numel()} positions, the first "
                                   f"{idx}, for finite inputs")
    if not torch.equal(out1, out2):
        raise CheckFailure(f"{name} is not deterministic: two calls on the same inputs differ",
                           pattern="between two calls on the same input")


def expect_named_error(name: str, what: str, word: str, call: Callable[[], Any]) -> None:
    """``call()`` must raise ValueError/TypeError whose message names ``word`` (SPEC §1)."""
    from .guard import CallMismatch, FunctionExited, FunctionTimeout

    try:
        call()
    except CallMismatch:
        raise  # the binding does not fit the function: no verdict on its validation
    except (ValueError, TypeError) as err:
        if word not in str(err):
            raise CheckFailure(f"{name}: bad {what} raised {err!r}, which does not name "
                               f"{word!r}", pattern=f"on the bad input ({what}): the error "
                               f"does not name {word!r}") from None
    except (FunctionExited, FunctionTimeout):
        raise
    except Exception as err:  # noqa: BLE001 - the wrong kind of error is the finding
        raise CheckFailure(f"{name}: bad {what} raised {type(err).__name__}: {err} — SPEC §1 "
                           f"asks for a ValueError/TypeError naming {word!r}",
                           pattern=f"on the bad input ({what}): {type(err).__name__}, not a "
                           f"ValueError/TypeError naming {word!r}") from None
    else:
        raise CheckFailure(f"{name}: bad {what} ({word}) raised no error",
                           pattern=f"on the bad input ({what}): a result where SPEC §1 asks "
                           f"for an error naming {word!r}")


def exceeds(err: Any, tol: Any) -> bool:
    """Whether any error lies beyond its tolerance; a NaN error counts as beyond (``NaN > tol``
    is False, so a check written ``if err > tol`` lets an all-NaN result pass)."""
    return not bool(np.all(np.asarray(err, dtype=np.float64) <= tol))


def worst_of(*errors: Any) -> float:
    """The largest of several errors, NaN if any is NaN (Python's ``max`` drops a NaN that is
    not its first argument)."""
    return float(np.max([np.max(np.asarray(e, dtype=np.float64)) for e in errors]))
