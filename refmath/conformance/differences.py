"""Known differences: by-design departures from SPEC that excuse ONLY the inputs they name.

A waiver that names a check alone (``--xfail gae.ignored_numbers``) hides every failure of
that check, a real bug included. A waiver that names a difference
(``--xfail gae.ignored_numbers:nan_bootstrap_multiplied``) — or a layout that declares one for
the library it mirrors — waives a failure only if the difference reproduces it: the check is
run again with the excused inputs made finite (each a :class:`Difference`'s ``excuse``: a
finite stand-in no check draws, so a function that reads the number still differs), and
only if it then passes is the failure reported XFAIL with the difference named. Any other
failure of the check still fails.

The real code these describe: CleanRL ``ppo.py`` (``nextnonterminal * nextvalues``) and
Stable-Baselines3 ``RolloutBuffer.compute_returns_and_advantage``
(``self.gamma * next_values * next_non_terminal``, stable_baselines3/common/buffers.py,
DLR-RM/stable-baselines3 at 64a0a6b) multiply the bootstrap by ``1 − done``, so a NaN
bootstrap of a terminal step gives NaN·0 = NaN; verl 0.9's ``agg_loss``/``masked_mean``
(verl/trainer/ppo/core_algos.py) and TRL 1.16's ``(per_token_loss * completion_mask).sum()``
(trl/trainer/grpo_trainer.py) multiply padding by a 0/1 mask (see :mod:`refmath.peers_lm`), so a NaN at a padded position leaks. Padding and
terminal bootstraps are finite in practice: numerically the same answer, not a formula bug.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..checks import UsageError, suggest

__all__ = ["Difference", "DIFFERENCES", "difference_named", "excused"]


@dataclass(frozen=True)
class Difference:
    name: str
    text: str  # what the library does, in one line
    checks: tuple[str, ...]  # the check names (id suffixes) it can explain
    excuse: Callable[[dict[str, Any]], dict[str, Any]]  # SPEC-layout arguments → excused


# what an excused non-finite number becomes: finite, and unlike any number the checks draw,
# so a function that READS it (rather than multiplying it by 0) still gives another answer
STAND_IN = 1234.5


def _finite_where(x: Any, where: Any) -> Any:
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or where is None:
        return x
    where = torch.as_tensor(where, device=x.device).bool()
    if where.shape != x.shape:
        return x
    return torch.where(where & ~torch.isfinite(x), torch.full_like(x, STAND_IN), x)


def _terminal_bootstraps(values: dict[str, Any]) -> dict[str, Any]:
    """next_values of terminated steps: non-finite → STAND_IN (the library multiplies them by
    0)."""
    out = dict(values)
    if "next_values" in out and out.get("terminated") is not None:
        out["next_values"] = _finite_where(out["next_values"], out["terminated"])
    return out


def _padding(values: dict[str, Any]) -> dict[str, Any]:
    """Every array at masked-out positions: non-finite → STAND_IN (the library multiplies by
    the mask)."""
    mask = values.get("mask")
    if mask is None:
        return dict(values)
    import torch

    hole = ~torch.as_tensor(mask).bool()
    return {k: (v if k == "mask" else _finite_where(v, hole)) for k, v in values.items()}


DIFFERENCES: dict[str, Difference] = {d.name: d for d in (
    Difference("nan_bootstrap_multiplied",
               "the bootstrap is multiplied by (1 − done) instead of selected: a non-finite "
               "next value at a terminated step leaks (NaN·0 = NaN)",
               ("ignored_numbers",), _terminal_bootstraps),
    Difference("nan_padding_multiplied",
               "padding is multiplied by the 0/1 mask instead of selected out: a non-finite "
               "number at a masked position leaks (NaN·0 = NaN)",
               ("ignored_numbers",), _padding),
)}


def difference_named(name: str, kind: str | None = None) -> Difference:
    if name not in DIFFERENCES:
        raise UsageError(f"unknown difference {name!r}{suggest(name, list(DIFFERENCES))}; "
                         f"known: {', '.join(DIFFERENCES)}")
    return DIFFERENCES[name]


def excused(fn: Callable, kind: str, difference: Difference) -> Callable:
    """``fn`` (SPEC's signature) called with the inputs ``difference`` excuses made finite."""
    from ..checks.specs import SPECS

    spec = SPECS[kind]

    def call(*args: Any, **kw: Any) -> Any:
        values = dict(spec.signature.bind(*args, **kw).arguments)
        return spec.call(fn, difference.excuse(values))

    call.__name__ = getattr(fn, "__name__", "fn")
    return call
