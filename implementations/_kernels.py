"""Compiled CPU kernels for the no-gradient paths of the SPEC §2 recursions (optional: numba).

One pass per row, reading every input once and writing the result once: the recursion
``A_t = x_t + c_t·A_{t'}`` (t' the next present step) run backwards over a row, fused with
the elementwise terms (δ, the bootstrap, the flags); serial by default (see
:data:`PARALLEL_FROM`), one parallel region over rows on request. It is the
sequential recursion SPEC defines, so it sits within the same forward-error bound as the
scan (``refmath.bounds``); flags are *selected*, never multiplied, so numbers SPEC says are
never read (terminated ``next_values``, masked steps) cannot leak.

Why: the pure-Torch scan issues ~100 small intra-op-parallel operations per call, each
ending in a barrier; on a machine whose cores are shared with other work (environment
workers, data loaders) a descheduled thread stalls every one of them (measured: 120–376 ms
for ``gae`` at (256, 4096) with one busy process on 2 cores, 5 ms quiet). A serial pass has
no barrier at all. At small sizes the kernels also skip Torch's per-op dispatch.

numba (the field's standard JIT for such loops; tianshou's GAE is one) is optional: without
it, or for CUDA tensors, gradients, a per-step γ or half precision's lifted calls, the
callers use the Torch scan. ``REFMATH_NO_KERNELS=1`` turns the kernels off.
"""

from __future__ import annotations

import os
import types
from functools import lru_cache
from typing import Any

import numpy as np
import torch

__all__ = ["available", "gae_rows", "returns_rows", "vtrace_rows"]

# rows × steps from which a parallel region over rows is used (None: never, the default).
# Measured, gae at (256, 4096), float32, 2 threads: quiet 2.5 ms parallel vs 2.9 serial; with
# one busy process competing 6.1-6.6 ms parallel vs 3.4-3.9 serial (a descheduled thread
# stalls the region); at (64, 1024) parallel was slower even quiet (0.50 vs 0.28 ms). Serial
# is the robust choice on shared machines; REFMATH_PARALLEL_FROM=65536 opts in.
PARALLEL_FROM: int | None = int(os.environ.get("REFMATH_PARALLEL_FROM", "0")) or None


_FLOATS = (torch.float32, torch.float64)


@lru_cache(maxsize=1)
def _numba() -> Any:
    if os.environ.get("REFMATH_NO_KERNELS"):
        return None
    try:
        import numba
    except ImportError:
        return None
    return numba


def available(*tensors: torch.Tensor | None) -> bool:
    """Whether the compiled kernels can take these tensors: numba installed, CPU, float32 or
    float64."""
    if _numba() is None:
        return False
    for x in tensors:
        if x is not None and (x.dtype not in _FLOATS or x.device.type != "cpu"):
            return False
    return True


prange = range  # numba.prange once numba is loaded (a serial range when compiled serially)

# Every kernel: each row backwards (rows one after another, or in parallel on request). A step is a segment end where it is
# terminated, truncated, or the row's last present step (the first one met going back);
# masked steps are skipped (the recursion passes over them) and output 0. Returns the number
# of rows with a non-finite output (the caller then takes the Torch path, which names the
# bad input): ``probe`` sums value·0, which is 0 until a value is ±inf or NaN. Inside a
# segment a non-finite value reaches every earlier one (c·inf is ±inf, or NaN for c = 0),
# so GAE and the returns check each segment's first value only, where the carry restarts;
# V-trace checks every output (its policy-gradient term is not in the carry).


def _gae(r, v, nv, term, trunc, keep, has_term, has_trunc, has_keep, gamma, lam, plus_v,
         out):
    N, T = r.shape
    bad = 0
    for n in prange(N):
        carry = 0.0
        probe = 0.0
        seen = False
        for t in range(T - 1, -1, -1):
            if has_keep and not keep[n, t]:
                out[n, t] = 0.0
                continue
            terminal = has_term and term[n, t]
            boot = 0.0 if terminal else gamma * nv[n, t]
            a = r[n, t] + boot - v[n, t]
            if seen and not (terminal or (has_trunc and trunc[n, t])):
                a += gamma * lam * carry
            else:  # a segment end: the later segment's first value is checked (below)
                probe += carry * 0.0
            seen = True
            carry = a
            out[n, t] = a + v[n, t] if plus_v else a
        if probe + carry * 0.0 != 0.0:
            bad += 1
    return bad


def _returns(r, nv, term, trunc, keep, has_nv, has_term, has_trunc, has_keep, gamma, out):
    N, T = r.shape
    bad = 0
    for n in prange(N):
        g = 0.0
        probe = 0.0
        seen = False
        for t in range(T - 1, -1, -1):
            if has_keep and not keep[n, t]:
                out[n, t] = 0.0
                continue
            terminal = has_term and term[n, t]
            alive = has_nv and not terminal
            if not seen or terminal or (has_trunc and trunc[n, t]):
                probe += g * 0.0  # the later segment's first value (checked below)
                g = nv[n, t] if alive else 0.0
            elif alive:  # SPEC reads V' at every step that is not terminal: a NaN there
                g += 0.0 * nv[n, t]  # must reach the result (and the caller's check)
            seen = True
            g = r[n, t] + gamma * g
            out[n, t] = g
        if probe + g * 0.0 != 0.0:
            bad += 1
    return bad


def _vtrace(r, v, nv, rhos, given, term, trunc, keep, has_term, has_trunc, has_keep,
            gamma, lam, rho_clip, c_clip, pg_clip, vs, pg):
    N, T = r.shape
    bad = 0
    for n in prange(N):
        a_next = 0.0
        probe = 0.0
        seen = False
        for t in range(T - 1, -1, -1):
            if has_keep and not keep[n, t]:
                vs[n, t] = 0.0
                pg[n, t] = 0.0
                continue
            rho = rhos[n, t]
            terminal = has_term and term[n, t]
            end = not seen or terminal or (has_trunc and trunc[n, t])
            seen = True
            boot = 0.0 if terminal else gamma * nv[n, t]
            # min(clip, ρ) written so that a NaN ρ stays NaN (Python's min drops it)
            a = (rho_clip if rho > rho_clip else rho) * (r[n, t] + boot - v[n, t])
            v_next = nv[n, t]
            if not end:
                a += gamma * lam * (c_clip if rho > c_clip else rho) * a_next
                v_next += a_next
            boot = 0.0 if terminal else gamma * v_next
            p = (pg_clip if rho > pg_clip else rho) * (r[n, t] + boot - v[n, t])
            pg[n, t] = p
            vs[n, t] = v[n, t] + a
            a_next = a
            probe += (a + p + given[n, t]) * 0.0  # ±inf or NaN in the given ratio too
        if probe != 0.0:
            bad += 1
    return bad


_SOURCES = {"gae": _gae, "returns": _returns, "vtrace": _vtrace}


@lru_cache(maxsize=None)
def _compiled(name: str, parallel: bool):
    global prange
    numba = _numba()
    prange = numba.prange
    source = _SOURCES[name]
    # its own name per variant: numba's on-disk cache tells functions apart by name, not by
    # the parallel flag (a serial build would otherwise be loaded for the parallel one)
    variant = types.FunctionType(source.__code__, source.__globals__,
                                 f"{source.__name__}_{'parallel' if parallel else 'serial'}")
    variant.__qualname__ = variant.__name__
    try:
        return numba.njit(parallel=parallel, cache=True, nogil=True)(variant)
    except RuntimeError:  # no writable cache location (a read-only install): compile anew
        return numba.njit(parallel=parallel, nogil=True)(variant)


_NO_FLAGS = np.zeros((0, 0), dtype=np.bool_)
_NO_VALUES = {torch.float32: np.zeros((0, 0), dtype=np.float32),
              torch.float64: np.zeros((0, 0), dtype=np.float64)}


def _kernel(name: str, rows: int, steps: int):
    numba = _numba()
    threads = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)
    parallel = (PARALLEL_FROM is not None and threads > 1 and rows > 1
                and rows * steps >= PARALLEL_FROM)
    if parallel:
        numba.set_num_threads(threads)
    return _compiled(name, parallel)


def _flags(k) -> tuple:
    """(term, trunc, keep) as NumPy arrays (empty where absent), then their presence."""
    arrays = [_NO_FLAGS if f is None else f.numpy() for f in (k.terminated, k.truncated,
                                                              k.mask)]
    return (*arrays, k.terminated is not None, k.truncated is not None, k.mask is not None)


def gae_rows(k, lam: float, plus_values: bool) -> torch.Tensor | None:
    """GAE (or λ-returns with ``plus_values``) of a :class:`~._inputs.KernelSteps`; None
    when a result is not finite."""
    t = k.tensors
    r = t["rewards"]
    out = torch.empty(r.shape, dtype=r.dtype)
    term, trunc, keep, *has = _flags(k)
    bad = _kernel("gae", *r.shape)(r.numpy(), t["values"].numpy(), t["next_values"].numpy(),
                                   term, trunc, keep, *has, k.gamma, float(lam), plus_values,
                                   out.numpy())
    return None if bad else out.view(k.shape)


def returns_rows(k) -> torch.Tensor | None:
    """Discounted returns of a :class:`~._inputs.KernelSteps` (bootstrapped at segment ends
    from next_values, 0 after a termination); None when a result is not finite."""
    t = k.tensors
    r, nv = t["rewards"], t.get("next_values")
    out = torch.empty(r.shape, dtype=r.dtype)
    term, trunc, keep, *has = _flags(k)
    bad = _kernel("returns", *r.shape)(
        r.numpy(), _NO_VALUES[r.dtype] if nv is None else nv.numpy(), term, trunc, keep,
        nv is not None, *has, k.gamma, out.numpy())
    return None if bad else out.view(k.shape)


def vtrace_rows(k, kind: str, lam: float, clips: list
                ) -> tuple[torch.Tensor, torch.Tensor] | None:
    """V-trace ``(vs, pg_advantages)`` of a :class:`~._inputs.KernelSteps` whose tensors hold
    ``log_rhos`` or ``rhos`` (``kind``); a clip of None is no clip. None when a result is
    not finite."""
    t = k.tensors
    r = t["rewards"]
    vs, pg = (torch.empty(r.shape, dtype=r.dtype) for _ in range(2))
    inf = float("inf")
    rho_clip, c_clip, pg_clip = (inf if c is None else float(c) for c in clips)
    term, trunc, keep, *has = _flags(k)
    given = t[kind]
    # exp in one vectorized pass (the kernel's loop cannot vectorize it: measured 4x faster)
    rhos = torch.exp(given) if kind == "log_rhos" else given
    bad = _kernel("vtrace", *r.shape)(
        r.numpy(), t["values"].numpy(), t["next_values"].numpy(), rhos.numpy(),
        given.numpy(), term, trunc, keep, *has, k.gamma, float(lam), rho_clip, c_clip,
        pg_clip, vs.numpy(), pg.numpy())
    return None if bad else (vs.reshape(k.shape), pg.reshape(k.shape))
