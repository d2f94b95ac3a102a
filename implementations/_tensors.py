"""Validation for the elementwise and reduction twins (SPEC §3–4): same-shape floating tensors,
0/1 masks, scalar ranges; ``ValueError``/``TypeError`` naming the argument."""

from __future__ import annotations

import numbers

import torch

from ._inputs import _flag, _floating, checking

__all__ = ["tensors", "mask_of", "number", "flag", "where0", "finite"]


def tensors(**named: object) -> list[torch.Tensor]:
    """The named floating tensors (None skipped in the check, returned as None), all of the
    first one's shape, dtype and device."""
    names = list(named)
    first = _floating(names[0], named[names[0]], None)
    out = [first]
    for n in names[1:]:
        x = named[n]
        out.append(None if x is None else _floating(n, x, first, reference=names[0]))
    return out


def mask_of(mask: object, like: torch.Tensor) -> torch.Tensor:
    """A boolean mask (all True when None) of ``like``'s shape."""
    if mask is None:
        return torch.ones(like.shape, dtype=torch.bool, device=like.device)
    return _flag("mask", mask, like)


def number(name: str, value: object, *, minimum: float | None = None, strict: bool = False,
           optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum:g}, got {value:g}")
    return value


def flag(name: str, value: object) -> bool:
    """A boolean option: ``True``/``False`` only (``0.5`` or ``2`` is a usage mistake)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def finite(named: dict[str, torch.Tensor | None], where: torch.Tensor | None = None,
           allow_inf: tuple[str, ...] = ()) -> None:
    """Raise ``ValueError`` naming the first input with a NaN or ±inf where it is read
    (``where``: None = everywhere), and its first bad index (SPEC §1 "Bad input").

    One reduction per input and ONE host synchronisation when all is well (a finite sum
    implies finite elements); nothing inside :func:`~refmath_torch.unchecked`. Inputs in
    ``allow_inf`` may hold ±inf (a documented limit, e.g. an overflowed ratio), not NaN."""
    if not checking():
        return
    parts = []
    for name, x in named.items():
        if x is None:
            continue
        x = x.detach()
        if name in allow_inf:
            x = torch.where(torch.isinf(x), x.new_zeros(()), x)
        parts.append((x if where is None else where0(where, x)).sum())
    if not parts or bool(torch.isfinite(torch.stack(parts).sum())):
        return
    for name, x in named.items():
        if x is None:
            continue
        bad = torch.isnan(x) if name in allow_inf else ~torch.isfinite(x)
        if where is not None:
            bad = bad & where
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} is not finite at index {idx}: {x[idx].item()}")
    # finite inputs whose sum overflowed: nothing to report


def where0(condition: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x where condition, exactly 0 elsewhere (NaN/inf there never leak)."""
    return torch.where(condition, x, x.new_zeros(()))
