"""Validation for the elementwise and reduction twins (SPEC §3–4): same-shape floating tensors,
0/1 masks, scalar ranges; ``ValueError``/``TypeError`` naming the argument."""

from __future__ import annotations

import numbers

import torch

from ._inputs import _flag, _floating

__all__ = ["tensors", "mask_of", "number", "where0"]


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


def where0(condition: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x where condition, exactly 0 elsewhere (NaN/inf there never leak)."""
    return torch.where(condition, x, x.new_zeros(()))
