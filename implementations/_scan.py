"""The one primitive behind every recursion: a reverse linear scan ``y_t = x_t + c_t·y_{t+1}``.

``y_{T} = 0`` beyond the last step, so ``y_t = Σ_{s≥t} (Π_{j=t}^{s−1} c_j)·x_s``. GAE is the scan
of ``x = δ`` with ``c = γλ·(1 − segment end)``; returns are the scan of the rewards (plus the
bootstrap at segment ends) with ``c = γ·(1 − segment end)``.

Algorithm: a recursive chunked scan, with no Python loop over T and no exp/log of cumulative
products (which would overflow or lose all precision for long sequences):

1. cut the time axis into chunks of ``L = 16`` steps and lay them out *chunk-major*,
   ``[N, L, n_chunks]``, so that one position of every chunk is one contiguous slab;
2. run the recursion inside every chunk with a zero carry-in, keeping only each chunk's head
   value, and take each chunk's product ``Π c`` (L fused multiply-adds over all chunks at
   once, one reduction);
3. the carries across chunks obey the same recursion, ``Y_k = head_k + prod_k·Y_{k+1}``, on
   ``[N, n_chunks]``: scan them recursively (rows of at most 32 steps are scanned one step
   at a time);
4. rerun every chunk with its true carry-in, keeping every position.

Every output is the sequential recursion's own sum; each level adds at most L roundings to a
path, so the float error stays within the usual backward-recursion bound (see
``refmath.bounds``). Work and memory are O(N·T); the launches number about 2L per level,
``log_L T`` levels (``gae`` at T = 4096: about 100 computing ops in all). The layout
changes (time-major → chunk-major and back) are the dominant memory traffic on CPU;
:class:`FusedScan` lets a caller write ``x`` and ``c`` straight into the chunk-major buffers
from its own elementwise operations and read ``y`` back the same way, so that no separate
transposing copy is made.

The backward pass is the adjoint recurrence — the same scan run forward in time:
``∂L/∂x_t = g_t = ∂L/∂y_t + c_{t−1}·g_{t−1}`` and ``∂L/∂c_t = g_t·y_{t+1}`` — so no
intermediate of the forward pass is stored beyond ``y`` and ``c``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["reverse_scan", "FusedScan", "at"]

CHUNK = 16  # measured on 2 CPU threads: 8-16 fastest at (256, 4096), 32 clearly slower
STEPWISE = 32  # rows of at most this many steps: one step at a time, time-major

# write(out, steps): fill ``out`` with the values of time steps ``steps`` (a slice), where
# ``out`` has the shape of ``source[:, steps].reshape(out.shape)`` for an [N, T] source.
Writer = Callable[[torch.Tensor, slice], object]


def at(x: torch.Tensor, steps: slice, like: torch.Tensor) -> torch.Tensor:
    """The [N, T] tensor ``x`` at time steps ``steps``, shaped like ``like`` (a view of a
    chunk-major buffer or of the result, as handed to a writer)."""
    return x[:, steps].reshape(like.shape)


def _stepwise(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The recursion one step at a time over ``[T, N]`` slabs (T ≤ STEPWISE); returns [N, T]."""
    xs, cs = x.t().contiguous().unbind(0), c.t().contiguous().unbind(0)
    T = len(xs)
    y = torch.empty((T, x.shape[0]), dtype=x.dtype, device=x.device)
    ys = y.unbind(0)
    ys[T - 1].copy_(xs[T - 1])
    for i in range(T - 2, -1, -1):
        torch.addcmul(xs[i], cs[i], ys[i + 1], out=ys[i])
    return y.t()


def _scan_chunks(xm: torch.Tensor, cm: torch.Tensor) -> torch.Tensor:
    """Steps 2-4 on chunk-major ``[N, L, n_chunks]`` tensors; returns y chunk-major, in
    ``xm``'s storage (``xm`` is overwritten)."""
    L = xm.shape[1]
    xs, cs = xm.unbind(1), cm.unbind(1)
    head = xs[L - 1]
    for i in range(L - 2, -1, -1):
        head = torch.addcmul(xs[i], cs[i], head)
    carry = _scan(head, cm.prod(dim=1))  # y at the first step of every chunk
    # y overwrites x in place, position by position (each x_i is read once more, by the
    # step that replaces it): one buffer less to allocate and fault in.
    xs[L - 1][:, :-1].addcmul_(cs[L - 1][:, :-1], carry[:, 1:])  # the last chunk: no carry
    for i in range(L - 2, -1, -1):
        torch.addcmul(xs[i], cs[i], xs[i + 1], out=xs[i])
    return xm


def _pieces(T: int, L: int) -> list[tuple[slice, Callable[[torch.Tensor], torch.Tensor]]]:
    """The time steps of a chunk-major buffer's full chunks and of its partial last chunk,
    each with the view of a chunk-major buffer ``[N, L, n_chunks]`` that holds them."""
    full, rest = divmod(T, L)
    out = []
    if full:
        out.append((slice(0, full * L), lambda b: b.transpose(1, 2)[:, :full]))
    if rest:
        out.append((slice(full * L, T), lambda b: b[:, :rest, full]))
    return out


def _copier(x: torch.Tensor) -> Writer:
    return lambda out, steps: out.copy_(at(x, steps, out))


def _scan(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """The scan of ``[N, T]`` tensors (any strides); returns ``[N, T]`` (any strides)."""
    N, T = x.shape
    if T <= STEPWISE:
        return _stepwise(x, c)
    scan = FusedScan(N, T, x)
    scan.write("c", _copier(c))
    scan.write("x", _copier(x))
    return scan.run(lambda y, steps, out: out.copy_(y))


class FusedScan:
    """One no-gradient scan whose layout changes are fused into the caller's elementwise
    operations, with as few fresh buffers as possible (on CPU, every fresh multi-megabyte
    buffer is page-faulted in on first touch: measured ~0.8 ms per 4 MB on 2 threads, as
    much as the arithmetic).

    It owns three buffers: ``x`` and ``c`` (chunk-major) and the result ``out`` ([N, T]).
    Before :meth:`write`, the caller may use :meth:`scratch` views of them ([N, T]) for its
    own intermediates, in this order: ``scratch("c")`` and ``scratch("out")`` freely;
    ``write("c", fn)`` may read ``scratch("x")`` and ``scratch("out")``; then
    ``write("x", fn)`` may read ``scratch("out")`` only. :meth:`run` then scans and calls
    ``finish(y, steps, out)`` to write the result.

    ``fn(out, steps)`` fills ``out`` (shaped like ``source[:, steps].reshape(out.shape)``
    for an [N, T] source) with the values of time steps ``steps`` (a slice).
    """

    def __init__(self, N: int, T: int, like: torch.Tensor):
        self.N, self.T = N, T
        kw = dict(dtype=like.dtype, device=like.device)
        if T <= STEPWISE:
            self.chunked = False
            self.buffers = {"x": torch.empty((N, T), **kw), "c": torch.empty((N, T), **kw)}
        else:
            self.chunked = True
            n_chunks = -(-T // CHUNK)
            self.buffers = {n: torch.empty((N, CHUNK, n_chunks), **kw) for n in ("x", "c")}
        self.out = torch.empty((N, T), **kw)

    def scratch(self, name: str) -> torch.Tensor:
        if name == "out":
            return self.out
        return self.buffers[name].view(-1)[: self.N * self.T].view(self.N, self.T)

    def write(self, name: str, fn: Writer) -> None:
        buf = self.buffers[name]
        if not self.chunked:
            fn(buf, slice(0, self.T))
            return
        if self.T % CHUNK:
            buf[:, self.T % CHUNK:, -1] = 0  # past the end: x = 0 (and c = 0)
        for steps, view in _pieces(self.T, CHUNK):
            fn(view(buf), steps)

    def run(self, finish: Callable[[torch.Tensor, slice, torch.Tensor], object]
            ) -> torch.Tensor:
        x, c = self.buffers["x"], self.buffers["c"]
        if not self.chunked:
            finish(_scan(x, c), slice(0, self.T), self.out)
            return self.out
        ym = _scan_chunks(x, c)
        for steps, view in _pieces(self.T, CHUNK):
            y = view(ym)
            finish(y, steps, self.out[:, steps].view(y.shape))
        return self.out


def _scan_contiguous(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return _scan(x, c).contiguous()


class _ReverseScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = _scan_contiguous(x, c)
        ctx.save_for_backward(c, y)
        return y

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor):  # type: ignore[override]
        c, y = ctx.saved_tensors
        c_prev = F.pad(c[:, :-1], (1, 0))  # c_prev[t] = c[t-1]; nothing flows into t = 0
        grad_x = reverse_scan(grad_y.flip(-1), c_prev.flip(-1)).flip(-1)
        grad_c = None
        if ctx.needs_input_grad[1]:
            grad_c = grad_x * F.pad(y[:, 1:], (0, 1))
        return grad_x, grad_c


def reverse_scan(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``y_t = x_t + c_t·y_{t+1}`` along the last axis of ``[N, T]`` tensors (``y_T = 0``).

    Differentiable in ``x`` and ``c`` (twice: the backward pass is itself a scan).
    """
    if torch.is_grad_enabled() and (x.requires_grad or c.requires_grad):
        return _ReverseScan.apply(x, c)
    return _scan_contiguous(x, c)
