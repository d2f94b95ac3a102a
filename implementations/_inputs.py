"""Validation and layout shared by the Torch implementations (SPEC §1).

``StepInputs`` flattens ``[..., T]`` inputs to ``[N, T]``, deletes masked steps by moving the
present steps of every row to its front (a gather, no per-row Python loop), and marks the
segment ends. ``restore`` writes results back to the original positions (0 where masked).
Bad input raises ``ValueError``/``TypeError`` naming the argument.
"""

from __future__ import annotations

import numbers
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator

import torch

from ._scan import FusedScan, at

__all__ = ["StepInputs", "prepare", "FlatSteps", "flat_steps", "check_unit_scalar",
           "check_finite_result", "finite_or_retry", "unchecked", "checking"]

_CHECKING: ContextVar[bool] = ContextVar("refmath_torch_checking", default=True)


@contextmanager
def unchecked() -> Iterator[None]:
    """Skip every check that reads tensor values, and so synchronises the host with the
    device: finiteness of the step inputs, 0/1 flags given as numbers, the range of a
    per-step γ, probabilities and ratios of the policy functions.

    Inside, ``gae``, ``lambda_returns``, ``discounted_returns`` (bool flags, γ and λ as
    Python numbers) make no host synchronisation at all; numbers SPEC says are ignored
    (masked steps, next_values of terminated steps) are still ignored (selected out with
    ``torch.where``), but a NaN or inf where an input *is* read gives a non-finite result
    instead of an error naming it. Shapes, dtypes and devices are still checked.
    """
    token = _CHECKING.set(False)
    try:
        yield
    finally:
        _CHECKING.reset(token)


def checking() -> bool:
    """False inside :func:`unchecked`."""
    return _CHECKING.get()



def _tensor(name: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}"
                        + (": wrap it with torch.as_tensor" if type(x).__name__ in (
                            "ndarray", "list", "tuple") else ""))
    if x.is_meta:
        raise ValueError(f"{name} is a meta tensor (shape only, no numbers): refmath_torch "
                         "reads values (validation, segment ends); pass a tensor with data")
    if x.layout != torch.strided:
        raise TypeError(f"{name} is a {x.layout} tensor: pass a dense one (.to_dense())")
    return x


def _floating(name: str, x: object, like: torch.Tensor | None,
              reference: str = "rewards") -> torch.Tensor:
    x = _tensor(name, x)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if like is not None:
        if x.shape != like.shape:
            raise ValueError(
                f"{name} has shape {tuple(x.shape)} but {reference} has shape "
                f"{tuple(like.shape)}: the inputs must all have the same shape"
                + (" [..., T]" if reference == "rewards" else "")
            )
        if x.dtype != like.dtype:
            raise TypeError(f"{name} has dtype {x.dtype} but {reference} has dtype {like.dtype}")
        if x.device != like.device:
            raise ValueError(f"{name} is on {x.device} but {reference} is on {like.device}")
    return x


def _flag(name: str, x: object, like: torch.Tensor) -> torch.Tensor | None:
    if x is None:
        return None
    x = _tensor(name, x)
    if x.shape != like.shape:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)} but the values have shape "
            f"{tuple(like.shape)}: per-step inputs must all have the same shape [..., T]"
        )
    if x.device != like.device:
        raise ValueError(f"{name} is on {x.device} but rewards is on {like.device}")
    if x.dtype == torch.bool:
        return x
    if x.is_complex() or checking() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(f"{name} must contain only 0 and 1 (or booleans)")
    return x != 0


def check_unit_scalar(name: str, value: object) -> float:
    """A Python number (or 0-dim tensor) in [0, 1]."""
    if type(value) is float and 0.0 <= value <= 1.0:  # the common case, first (per call)
        return value
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got shape {tuple(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number in [0, 1], got {type(value).__name__}")
    if not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def _gamma(gamma: object, like: torch.Tensor) -> torch.Tensor | float:
    if not isinstance(gamma, torch.Tensor) or gamma.numel() == 1 and gamma.dim() == 0:
        return check_unit_scalar("gamma", gamma)
    if checking() and not bool(((gamma >= 0) & (gamma <= 1)).all()):
        raise ValueError("gamma must lie in [0, 1] at every step")
    try:
        return gamma.to(dtype=like.dtype, device=like.device).expand(like.shape)
    except RuntimeError:
        raise ValueError(
            f"gamma has shape {tuple(gamma.shape)}, which does not broadcast to "
            f"{tuple(like.shape)}"
        ) from None


def _as_float(flag: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """bool -> float through uint8 (measured several times faster on CPU than bool -> float)."""
    return flag.view(torch.uint8).to(dtype)


@dataclass
class StepInputs:
    """Inputs in the working layout ``[N, T]``: masked steps deleted, rows left-aligned.

    ``alive`` is 1 where ``next_values`` is read (present and not terminated), ``cont`` is 1
    where the recursion continues from t+1 into t (not a segment end), ``present`` is 1 on
    the surviving steps (None when nothing is masked). All three are float tensors of the
    inputs' dtype, so the hot path is multiplications only.
    """

    shape: torch.Size
    tensors: dict[str, torch.Tensor]
    gamma: torch.Tensor | float
    alive: torch.Tensor
    cont: torch.Tensor
    present: torch.Tensor | None
    dest: torch.Tensor | None  # original position t -> working position

    def zero_absent(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.present is None else x * self.present

    def restore(self, y: torch.Tensor) -> torch.Tensor:
        """Back to the original positions; masked steps read the zero padding."""
        if self.dest is not None:
            y = y.gather(-1, self.dest)
        return y.reshape(self.shape)


def _compression(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where every step goes when the present steps of each row move to its front."""
    T = mask.shape[-1]
    count = mask.sum(-1, keepdim=True)
    rank_present = mask.cumsum(-1) - 1
    rank_absent = count + (~mask).cumsum(-1) - 1
    dest = torch.where(mask, rank_present, rank_absent)
    positions = torch.arange(T, device=mask.device).expand_as(dest)
    source = torch.empty_like(dest).scatter_(-1, dest, positions)
    present = positions < count
    return dest, source, present


def _sanitized(flat: dict[str, torch.Tensor], keep: torch.Tensor,
               alive: torch.Tensor) -> dict[str, torch.Tensor]:
    """Zero every number that is never read, so that a NaN or inf there cannot leak."""
    zero = flat["rewards"].new_zeros(())
    return {n: torch.where(alive if n == "next_values" else keep, x, zero) if n != "gamma"
            else x for n, x in flat.items()}


def _validated(rewards: object, steps: dict[str, object], gamma: object,
               flag_args: dict[str, object]):
    """The checks shared by :func:`prepare` and :func:`flat_steps`, in one order."""
    r = _floating("rewards", rewards, None)
    if r.dim() == 0:
        raise ValueError("rewards must have a time axis: shape [..., T], got a scalar")
    if r.shape[-1] == 0:
        raise ValueError("rewards has an empty time axis (T = 0)")
    tensors = {"rewards": r}
    for name, x in steps.items():
        if x is not None:
            tensors[name] = _floating(name, x, r)
    g = _gamma(gamma, r)
    flags = {n: _flag(n, x, r) for n, x in flag_args.items()}
    return r, tensors, g, flags


def prepare(rewards: object, steps: dict[str, object], *, gamma: object,
            terminated: object = None, truncated: object = None,
            mask: object = None, sanitize: bool = False) -> StepInputs:
    """Validate, flatten to ``[N, T]``, compress masked steps, mark segment ends.

    With ``sanitize``, numbers at ignored positions (masked steps, next_values of terminated
    steps) are replaced by 0 with ``torch.where``; the fast path multiplies by 0/1 instead,
    which is exact for finite numbers (the callers retry with ``sanitize`` when the result
    is not finite).
    """
    r, tensors, g, flags = _validated(rewards, steps, gamma, {
        "terminated": terminated, "truncated": truncated, "mask": mask})
    shape, T = r.shape, r.shape[-1]
    if isinstance(g, torch.Tensor):
        tensors["gamma"] = g
    flat = {n: x.reshape(-1, T) for n, x in tensors.items()}
    false = torch.zeros(flat["rewards"].shape, dtype=torch.bool, device=r.device)
    term = false if flags["terminated"] is None else flags["terminated"].reshape(-1, T)
    trunc = false if flags["truncated"] is None else flags["truncated"].reshape(-1, T)
    present = dest = None
    if flags["mask"] is not None:
        dest, source, keep = _compression(flags["mask"].reshape(-1, T))
        flat = {n: x.gather(-1, source) for n, x in flat.items()}
        term, trunc = term.gather(-1, source), trunc.gather(-1, source)
        last = keep & ~torch.roll(keep, -1, dims=-1)
        last[:, -1] = keep[:, -1]
        done = term | trunc | last | ~keep
        alive = keep & ~term
        present = _as_float(keep, r.dtype)
    else:
        keep = None
        done = term | trunc
        done[:, -1] = True
        alive = ~term
    if sanitize:
        flat = _sanitized(flat, true_like(alive) if keep is None else keep, alive)
    gamma_w = flat.pop("gamma", g)
    return StepInputs(shape, flat, gamma_w, _as_float(alive, r.dtype),
                      _as_float(~done, r.dtype), present, dest)


@dataclass
class FlatSteps:
    """The fused fast path's inputs: ``[N, T]`` views of the caller's tensors, a scalar γ,
    the terminated flags (None: none), the segment ends (terminated, truncated, or the last
    present step of a row) and the present steps (None: no mask).

    Masked steps are not moved: they *pass the recursion through* (``x = 0``, ``c = 1``, so
    a present step's successor is the next present step, exactly as if the masked steps
    were deleted) and their outputs are set to 0."""

    shape: torch.Size
    tensors: dict[str, torch.Tensor]
    gamma: float
    terminated: torch.Tensor | None
    ends: torch.Tensor
    keep: torch.Tensor | None

    def float_into(self, flag: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """The boolean ``flag`` as 0./1. in ``out`` (through uint8: measured faster)."""
        return out.copy_(flag.view(torch.uint8))

    def constant(self, value: float) -> torch.Tensor:
        r = self.tensors["rewards"]
        return torch.tensor(value, dtype=r.dtype, device=r.device)

    def write_continuation(self, scan: FusedScan, factor: float) -> None:
        """Write ``c = factor·(1 − end)`` on present steps and ``c = 1`` on masked ones (they
        pass the recursion through) into ``scan``'s c buffer, using ``scan.scratch("x")``."""
        going_on = self.float_into(~self.ends, scan.scratch("x"))
        keep = self.keep
        if keep is None:
            scan.write("c", lambda out, steps: torch.mul(at(going_on, steps, out), factor,
                                                         out=out))
            return
        going_on.mul_(factor)
        one = self.constant(1.0)
        scan.write("c", lambda out, steps: torch.where(
            at(keep, steps, out), at(going_on, steps, out), one, out=out))

    def finish(self, plus: torch.Tensor | None = None, safe: bool = False):
        """The writer of the result: ``y`` (+ ``plus``) on present steps, 0 on masked ones
        (with ``safe``, selected by ``torch.where``: a NaN in ``plus`` there cannot leak)."""
        keep, zero = self.keep, self.constant(0.0)

        def finish(y: torch.Tensor, steps: slice, out: torch.Tensor) -> None:
            if plus is not None:
                torch.add(y, at(plus, steps, y), out=out)
                if keep is not None and safe:
                    torch.where(at(keep, steps, y), out, zero, out=out)
                elif keep is not None:
                    out.mul_(at(keep, steps, y))
            elif keep is not None:
                torch.mul(y, at(keep, steps, y), out=out)
            else:
                out.copy_(y)

        return finish

    def select(self, flag: torch.Tensor | None, x: torch.Tensor,
               out: torch.Tensor) -> torch.Tensor:
        """``x`` where ``flag`` (everywhere if None), exactly 0 elsewhere, into ``out``."""
        if flag is None:
            return out.copy_(x)
        return torch.where(flag, x, self.constant(0.0), out=out)

    def reads_next_value(self, at_ends: bool = False) -> torch.Tensor | None:
        """Where next_values is read (None: everywhere): not terminated, present, and with
        ``at_ends``, a segment end."""
        read = self.ends if at_ends else None
        for flag in (None if self.terminated is None else ~self.terminated, self.keep):
            if flag is not None:
                read = flag if read is None else read & flag
        return read


def _last_present(keep: torch.Tensor) -> torch.Tensor:
    """[N, 1] index of every row's last present step (T − 1 for a row with none)."""
    T = keep.shape[-1]
    return (T - 1) - keep.flip(-1).view(torch.uint8).argmax(-1, keepdim=True)


def flat_steps(rewards: object, steps: dict[str, object], *, gamma: object,
               terminated: object = None, truncated: object = None,
               mask: object = None) -> FlatSteps | None:
    """Validate exactly as :func:`prepare`; return the fast path's inputs, or None where it
    does not apply (a per-step γ, or gradients wanted through the inputs)."""
    r, tensors, g, flags = _validated(rewards, steps, gamma, {
        "terminated": terminated, "truncated": truncated, "mask": mask})
    if isinstance(g, torch.Tensor):
        return None
    if torch.is_grad_enabled() and any(x.requires_grad for x in tensors.values()):
        return None
    T = r.shape[-1]
    term, trunc, keep = (None if f is None else f.reshape(-1, T)
                         for f in (flags["terminated"], flags["truncated"], flags["mask"]))
    given = [f for f in (term, trunc) if f is not None]
    if len(given) == 2:
        ends = term | trunc
    elif given:
        ends = given[0].clone()  # never write into the caller's flags
    else:
        ends = torch.zeros((r.numel() // T, T), dtype=torch.bool, device=r.device)
    ends[:, -1] = True
    if keep is not None:
        ends.scatter_(1, _last_present(keep), True)
    return FlatSteps(r.shape, {n: x.reshape(-1, T) for n, x in tensors.items()}, g, term,
                     ends, keep)


def kernel_steps(rewards: object, steps: dict[str, object], *, gamma: object,
                 terminated: object = None, truncated: object = None,
                 mask: object = None):
    """The compiled kernels' inputs (:class:`._kernels.Arrays`), validated exactly as by
    :func:`prepare`; None where the kernels do not apply (no numba, not CPU float32/float64,
    a per-step γ, gradients wanted). A plain call (:func:`._kernels.plain`) skips the
    validation: it has nothing to convert and nothing to name."""
    from . import _kernels

    flags = (terminated, truncated, mask)
    fast = _kernels.plain((rewards, *steps.values()), flags, gamma)
    if fast is not None:
        return fast
    raw = [x for x in (rewards, *steps.values()) if isinstance(x, torch.Tensor)]
    if not _kernels.available(*raw) or isinstance(gamma, torch.Tensor) and gamma.numel() > 1:
        return None  # no numba, CUDA or another dtype, or a per-step γ: not validated twice
    if torch.is_grad_enabled() and any(x.requires_grad for x in raw):
        return None
    r, tensors, g, checked = _validated(rewards, steps, gamma, dict(zip(
        ("terminated", "truncated", "mask"), flags)))
    if isinstance(g, torch.Tensor):
        return None
    return _kernels.plain((r, *(tensors.get(n) for n in steps)), tuple(checked.values()),
                          float(g))


def true_like(x: torch.Tensor) -> torch.Tensor:
    return torch.ones_like(x, dtype=torch.bool)


def finite_or_retry(compute, inputs: dict[str, torch.Tensor | None], used) -> torch.Tensor:
    """Run ``compute(sanitize=False)``; if its result is not finite, rerun it sanitized and
    name the offending input. Costs one reduction and one host synchronisation when all is
    well (a finite sum implies finite elements). Inside :func:`unchecked`: the sanitized
    computation, unchecked."""
    if not checking():
        return compute(sanitize=True)
    out = compute(sanitize=False)
    if bool(torch.isfinite(out.detach().sum())):
        return out
    return check_finite_result(compute(sanitize=True), inputs, used)


def check_finite_result(result: torch.Tensor, inputs: dict[str, torch.Tensor | None],
                        used) -> torch.Tensor:
    """Raise ``ValueError`` naming the input whose non-finite entries made the result non-finite.

    One reduction over the result (a single host synchronisation) when all is well.
    ``used`` (or a zero-argument callable returning it) maps an input's name to a boolean
    tensor of where it is actually read (None: everywhere).
    """
    if callable(used):
        used = used()
    if bool(torch.isfinite(result).all()):
        return result
    for name, x in inputs.items():
        if x is None:
            continue
        bad = ~torch.isfinite(x.detach())
        if used.get(name) is not None:
            bad &= used[name]
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} is not finite at index {idx}: {x[idx].item()}")
    raise ValueError(
        f"the result overflowed {result.dtype} although every input is finite: "
        "rescale the rewards or compute in a wider dtype"
    )
