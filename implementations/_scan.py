"""The one primitive behind every recursion: a reverse linear scan ``y_t = x_t + c_t·y_{t+1}``.

``y_{T} = 0`` beyond the last step, so ``y_t = Σ_{s≥t} (Π_{j=t}^{s−1} c_j)·x_s``. GAE is the scan
of ``x = δ`` with ``c = γλ·(1 − segment end)``; returns are the scan of the rewards (plus the
bootstrap at segment ends) with ``c = γ·(1 − segment end)``.

Algorithm: a chunked two-level scan, with no Python loop over T and no exp/log of cumulative
products (which would overflow or lose all precision for long sequences):

1. cut the time axis into ``n_chunks`` chunks of length ``L ≈ √T``; run the recursion inside
   every chunk with a zero carry-in, keeping only the chunk's head value and its product
   ``Π c`` (a loop over the L positions, each step one fused multiply-add over all
   ``N·n_chunks`` chunks at once);
2. propagate the carries across chunks (a loop over ``n_chunks`` steps on ``N`` values);
3. rerun every chunk with its true carry-in, keeping every position.

Every output is the sequential recursion's own sum; the carry into a chunk is computed with
at most ``L + n_chunks`` roundings on any path, so the float error stays within the usual
backward-recursion bound (see ``refmath.bounds``). Work is O(N·T), memory O(N·T).

The backward pass is the adjoint recurrence — the same scan run forward in time:
``∂L/∂x_t = g_t = ∂L/∂y_t + c_{t−1}·g_{t−1}`` and ``∂L/∂c_t = g_t·y_{t+1}`` — so no
intermediate of the forward pass is stored beyond ``y`` and ``c``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["reverse_scan"]


def _scan_no_grad(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    N, T = x.shape
    L = math.isqrt(T - 1) + 1 if T > 1 else 1
    n_chunks = -(-T // L)
    pad = n_chunks * L - T
    if pad:
        x = F.pad(x, (0, pad))
        c = F.pad(c, (0, pad))
    # [N, L, n_chunks]: one loop step reads all chunks at one position (measured faster on
    # CPU than [L, N, n_chunks], whose transposes cost more than they save).
    xs = _chunk_major(x, N, n_chunks, L).unbind(1)
    c_major = _chunk_major(c, N, n_chunks, L)
    cs = c_major.unbind(1)
    # 1. every chunk with a zero carry-in: its head value, and its total product Π c (one
    #    reduction: a product of L factors in any order, no logarithms).
    head = xs[L - 1]
    for i in range(L - 2, -1, -1):
        head = torch.addcmul(xs[i], cs[i], head)
    prod = c_major.prod(dim=1)
    # 2. carries across chunks: carry[k] = y at the first step of chunk k.
    head_t, prod_t = head.t().contiguous(), prod.t().contiguous()
    carry = torch.zeros((n_chunks + 1, N), dtype=x.dtype, device=x.device)
    for k in range(n_chunks - 1, -1, -1):
        torch.addcmul(head_t[k], prod_t[k], carry[k + 1], out=carry[k])
    # 3. rerun every chunk with its true carry-in, keeping all positions.
    y = torch.addcmul(xs[L - 1], cs[L - 1], carry[1:].t())
    ys = [y] * L
    for i in range(L - 2, -1, -1):
        y = torch.addcmul(xs[i], cs[i], y)
        ys[i] = y
    out = torch.empty((N, n_chunks, L), dtype=x.dtype, device=x.device)
    out.copy_(torch.stack(ys, 1).transpose(1, 2))
    out = out.view(N, n_chunks * L)
    return out[:, :T] if pad else out


def _chunk_major(x: torch.Tensor, N: int, n_chunks: int, L: int) -> torch.Tensor:
    """[N, n_chunks·L] -> [N, L, n_chunks] (copied into a fresh buffer: measured ~3x faster
    on CPU than ``.contiguous()`` of the transposed view)."""
    buf = torch.empty((N, L, n_chunks), dtype=x.dtype, device=x.device)
    return buf.copy_(x.view(N, n_chunks, L).transpose(1, 2))


class _ReverseScan(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = _scan_no_grad(x, c)
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
    return _ReverseScan.apply(x.contiguous(), c.contiguous())
