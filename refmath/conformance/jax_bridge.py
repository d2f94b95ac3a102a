"""JAX functions under refmath's checks: DLPack in and out, float64 in scope, shapes bucketed.

The checks draw Torch tensors; a function written in JAX (``jax.numpy``, ``jax.lax.scan``,
``jax.jit``) is given JAX arrays made from them by DLPack (no copy on the CPU) and its result
is read back the same way. Three things make that honest and fast:

* **float64 in scope.** JAX silently makes float64 input float32 unless ``jax_enable_x64`` is
  on; each call runs inside ``jax.enable_x64(True)`` (a scoped, thread-local setting: the
  user's own configuration is untouched), so the float64 checks really see float64.
* **Bucketed shapes.** ``jax.jit`` compiles once per input shape, and the checks draw dozens of
  shapes: a per-step kind (SPEC §2 and §6, where step t depends on steps t..T−1 only) gets its
  time axis padded AT THE FRONT to a power of two (at least 8) and a ``[B, T]`` batch padded at
  the end to a power of two (at least 4), then the padding is cut from the result. A backward
  recursion never reads steps before t, and rows are independent, so the real steps see the
  same operations in the same order: bit for bit the unpadded answer, with a handful of
  compilations per run instead of one per example.
* **No autograd.** Torch cannot differentiate through JAX: a JAX binding declares
  ``no_gradients``.
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Callable, Iterator

__all__ = ["bucket", "bucketed", "from_jax", "to_jax", "x64"]

_PER_STEP_FAMILIES = ("steps", "off_policy")  # output t depends on inputs t..T−1 only


def _jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        from ..checks import UsageError

        raise UsageError("this binding calls a JAX function, and JAX is not installed: "
                         "pip install 'refmath[jax]'") from None
    return jax, jnp


@contextlib.contextmanager
def x64() -> Iterator[None]:
    """float64 arrays stay float64 inside (``jax.enable_x64``, or ``jax.experimental.
    enable_x64`` before JAX 0.5); the setting is restored on exit."""
    jax, _ = _jax()
    scope = getattr(jax, "enable_x64", None)
    if scope is None:
        from jax.experimental import enable_x64 as scope
    with scope(True):
        yield


def to_jax(x: Any) -> Any:
    """A Torch tensor as a JAX array (DLPack; on the CPU unless JAX has the tensor's device);
    anything else unchanged."""
    import torch

    if not isinstance(x, torch.Tensor):
        return x
    jax, jnp = _jax()
    x = x.detach()
    if x.device.type != "cpu" and jax.default_backend() == "cpu":
        x = x.cpu()
    return jnp.from_dlpack(x.contiguous())


def from_jax(y: Any, like: Any = None) -> Any:
    """A JAX (or NumPy) result as a Torch tensor on ``like``'s device; tuples, lists and
    named tuples element by element."""
    import numpy as np
    import torch

    if isinstance(y, tuple) and hasattr(y, "_fields"):
        return type(y)(*(from_jax(e, like) for e in y))
    if isinstance(y, (tuple, list)):
        return type(y)(from_jax(e, like) for e in y)
    if isinstance(y, torch.Tensor):
        out = y
    elif hasattr(y, "__dlpack__") and not isinstance(y, np.ndarray):
        out = torch.from_dlpack(y).clone()  # JAX owns the buffer: keep our own copy
    else:
        out = torch.as_tensor(np.asarray(y))
    return out.to(like.device) if isinstance(like, torch.Tensor) else out


def bucket(n: int, least: int) -> int:
    """The smallest power of two ≥ max(n, least)."""
    size = least
    while size < n:
        size *= 2
    return size


def _pad(x: Any, front: int, rows: int) -> Any:
    import torch

    if front:
        x = torch.cat([x.new_zeros(x.shape[:-1] + (front,)), x], dim=-1)
    if rows:
        x = torch.cat([x, x.new_zeros((rows,) + tuple(x.shape[1:]))], dim=0)
    return x


def _cut(y: Any, T: int, front: int, B: int, rows: int) -> Any:
    import torch

    if isinstance(y, (tuple, list)):
        return type(y)(_cut(e, T, front, B, rows) for e in y)
    if not isinstance(y, torch.Tensor) or y.dim() == 0:
        return y
    if front and y.shape[-1] == T + front:
        y = y[..., front:]
    if rows and y.dim() >= 1 and y.shape[0] == B + rows:
        y = y[:B]
    return y


def bucketed(call: Callable, kind: str, batch: bool = True) -> Callable:
    """``call`` (SPEC's signature for ``kind``, a JAX function inside) with every call in
    float64 scope and, for a per-step kind whose arrays share one shape, that shape padded to
    its bucket (module docstring); arrays of different shapes (a bad input) pass unpadded.
    ``batch=False``: the function is called one row at a time (rlax): only time is padded."""
    import torch

    from ..checks.specs import SPECS

    per_step = SPECS[kind].family in _PER_STEP_FAMILIES

    @functools.wraps(call)
    def wrapper(*args: Any, **kw: Any) -> Any:
        with x64():
            arrays = [a for a in (*args, *kw.values())
                      if isinstance(a, torch.Tensor) and a.dim() >= 1]
            shapes = {tuple(a.shape) for a in arrays}
            if not per_step or len(shapes) != 1:
                return call(*args, **kw)
            shape = shapes.pop()
            T = shape[-1]
            B = shape[0] if len(shape) == 2 and batch else 0
            front = bucket(T, 8) - T
            rows = bucket(B, 4) - B if B else 0

            def padded(a: Any) -> Any:
                if isinstance(a, torch.Tensor) and a.dim() >= 1:
                    return _pad(a, front, rows)
                return a

            out = call(*(padded(a) for a in args), **{k: padded(v) for k, v in kw.items()})
            return _cut(out, T, front, B, rows)

    return wrapper
