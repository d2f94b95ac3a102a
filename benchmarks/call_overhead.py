"""Where the time of one plain ``refmath_torch.gae`` call goes at a small size, warm.

    python benchmarks/call_overhead.py            # (8, 128), float32; min of 7 × 50 000 calls

Each line times one layer of the call in a tight loop (warm caches), next to the bare serial
numba loop of ``bench_advantages.py`` (``numba serial``: its segment ends precomputed, nothing
checked), so that the fixed per-call cost of refmath's compiled path can be read off: the
checks that make reading a tensor at its address safe, the result's allocation, the kernel.
"""

from __future__ import annotations

import pathlib
import sys
import timeit

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import bench_advantages as bench  # noqa: E402
import refmath_torch as rt  # noqa: E402
from refmath_torch import _kernels  # noqa: E402


def main(B: int = 8, T: int = 128, calls: int = 50_000) -> dict[str, float]:
    """µs per call of each layer (min of 7 repeats of ``calls`` calls); printed."""
    r, v, nv, term, trunc = bench._inputs(B, T)
    a = _kernels.plain((r, v, nv), (term, trunc, None), bench.GAMMA, bench.LAM)
    if a is None:
        raise SystemExit("the compiled kernels are not available (numba is not installed)")
    kernel = _kernels._kernel("gae", a)
    layers = {
        "refmath_torch.gae (public, plain call)": lambda: rt.gae(
            r, v, nv, gamma=bench.GAMMA, lam=bench.LAM, terminated=term, truncated=trunc),
        "  _kernels.plain: checks, addresses, the result": lambda: _kernels.plain(
            (r, v, nv), (term, trunc, None), bench.GAMMA, bench.LAM),
        "    _addresses: dtype, shape, device, grad, contiguity": lambda: _kernels._addresses(
            (r, v, nv), (term, trunc, None), r.dtype, r.shape, True),
        "    np.empty + torch.from_numpy (the result)": lambda: torch.from_numpy(
            np.empty((B, T), np.float32)),
        "  _kernels.gae_rows: the variant, the numba call": lambda: _kernels.gae_rows(
            a, bench.LAM, False),
        "    the compiled kernel alone (dispatch + pass)": lambda: kernel(
            *a.addresses, bench.GAMMA, bench.LAM, False, a.rows),
        "bare numba loop (numba serial, with its result)": bench._numba_method(
            "gae", r, v, nv, term, trunc),
    }
    print(f"gae at ({B}, {T}), float32, µs per call (min of 7 × {calls} calls, warm)")
    times = {}
    for name, fn in layers.items():
        fn()
        times[name] = min(timeit.repeat(fn, number=calls, repeat=7)) / calls * 1e6
        print(f"{name:58s} {times[name]:7.2f}")
    return times


if __name__ == "__main__":
    main()
