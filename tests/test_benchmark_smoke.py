"""A tiny run of the benchmark script: it runs, and its refmath column agrees with its loop."""

import importlib.util
import pathlib

import torch

import refmath_torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_gae", ROOT / "benchmarks" / "bench_gae.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_smoke(capsys):
    bench = _bench()
    threads = torch.get_num_threads()
    try:
        rows = bench.run([(4, 33)], repeats=2, threads=1)
    finally:
        torch.set_num_threads(threads)
    assert len(rows) == 1 and "vs refmath" in capsys.readouterr().out


def test_benchmark_loop_is_a_correct_reference():
    """The loop the benchmark compares against computes the same GAE (float64: ~1e-12)."""
    bench = _bench()
    r, v, nv, term, trunc = (x.double() if x.is_floating_point() else x
                             for x in bench._inputs(3, 200))
    kw = dict(gamma=0.99, lam=0.95, terminated=term, truncated=trunc)
    torch.testing.assert_close(bench.loop_gae(r, v, nv, **kw), refmath_torch.gae(r, v, nv, **kw),
                               rtol=0, atol=1e-10)
