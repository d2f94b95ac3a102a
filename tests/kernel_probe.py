"""Run by tests/test_kernel_environments.py in a fresh process: the twins' kernel paths on
exact inputs, printed as one JSON line (where the module came from, whether the kernels
were taken, every result as float.hex). Integer rewards and values with γ = λ = 1/2 over
T = 24 steps: every intermediate is a dyadic rational of under 53 bits, so the compiled
kernel and the Torch scan must agree bit for bit."""

import json
import sys

import torch

if __name__ == "__main__" and "--no-numba" in sys.argv:
    sys.modules["numba"] = None  # numba absent: `import numba` raises ImportError



def run() -> dict:
    """Where refmath_torch came from, whether the kernels take these inputs, the results."""
    import refmath_torch as T

    gen = torch.Generator().manual_seed(0)
    x = {n: torch.randint(-4, 5, (3, 24), generator=gen).double()
         for n in ("rewards", "values", "next_values")}
    flags = {n: torch.rand(3, 24, generator=gen) < p
             for n, p in (("terminated", 0.1), ("truncated", 0.1), ("mask", 0.8))}
    results = {
        "gae": T.gae(*x.values(), gamma=0.5, lam=0.5, **flags),
        "discounted_returns": T.discounted_returns(x["rewards"], gamma=0.5,
                                                   next_values=x["next_values"], **flags),
    }
    return {"file": T.__file__, "kernels": T._kernels.available(x["rewards"]),
            "results": {n: [float(v).hex() for v in r.flatten()] for n, r in results.items()}}


if __name__ == "__main__":
    print(json.dumps(run()))
