"""A tiny run of the benchmark script: it runs, and its refmath column agrees with its loop."""

import importlib.util
import pathlib

import numpy as np
import pytest
import torch

import refmath

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_advantages", ROOT / "benchmarks" / "bench_advantages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_smoke(capsys):
    bench = _bench()
    threads = torch.get_num_threads()
    try:
        rows = bench.run([(4, 33)], repeats=2, threads=1)
        masked = bench.run([(4, 40)], repeats=2, threads=1, functions=["gae"], masked=True)
    finally:
        torch.set_num_threads(threads)
    assert "vs refmath" in capsys.readouterr().out
    assert [row[0] for row in rows] == list(bench.FUNCTIONS) and len(masked) == 1
    for function, B, T, results in rows + masked:
        # float32 against float64 on |r|, |V| ~ 1, T = 33: well inside (5T+10)·u·Σ|x| ~ 1e-4
        assert results["refmath"][2] < 1e-5, function


def test_benchmark_loops_are_correct_references():
    """The loops the benchmark measures errors against compute the same functions as the
    oracles (float64: ~1e-12)."""
    bench = _bench()
    r, v, nv, term, trunc = (x.double() if x.is_floating_point() else x
                             for x in bench._inputs(3, 200))
    kw = dict(gamma=0.99, lam=0.95, terminated=term, truncated=trunc)
    a = {n: t.numpy() for n, t in dict(r=r, v=v, nv=nv).items()}
    flags = dict(terminated=term.numpy(), truncated=trunc.numpy())
    expected = {
        "gae": refmath.gae(a["r"], a["v"], a["nv"], gamma=0.99, lam=0.95, **flags),
        "lambda_returns": refmath.lambda_returns(a["r"], a["v"], a["nv"], gamma=0.99,
                                                 lam=0.95, **flags),
        "discounted_returns": refmath.discounted_returns(a["r"], next_values=a["nv"],
                                                         gamma=0.99, **flags),
        # the V-trace loop: vs with λ = 1, ρ̄ = c̄ = 1 on the benchmark's log-ratios
        "vtrace": refmath.vtrace(a["r"], a["v"], a["nv"], bench._log_rhos(3, 200).double()
                                 .numpy(), gamma=0.99, **flags)[0],
    }
    for name, loop in bench.LOOPS.items():
        got = loop(r, v, nv, **kw).numpy()
        np.testing.assert_allclose(got, np.asarray(expected[name], dtype=float), rtol=0,
                                   atol=1e-10, err_msg=name)


def test_round_robin_times_back_to_back_calls_per_call():
    """``--calls K``: each timing is K consecutive calls of one method, reported per call."""
    bench = _bench()
    made = {"a": 0, "b": 0}

    def counter(name):
        def call():
            made[name] += 1
        return call

    times = bench._time_round_robin({n: counter(n) for n in made}, {"a": 3, "b": 1}, calls=4)
    assert made == {"a": 1 + 3 * 4, "b": 1 + 1 * 4}  # one warm-up call, then rounds × calls
    assert set(times) == {"a", "b"} and all(len(t) == 3 for t in times.values())


def test_call_overhead_script_times_every_layer(capsys):
    pytest.importorskip("numba")  # (in the test extra; without it the script says so, exits)
    spec = importlib.util.spec_from_file_location(
        "call_overhead", ROOT / "benchmarks" / "call_overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    times = module.main(calls=20)
    assert len(times) == 7 and all(t > 0 for t in times.values())
    assert "refmath_torch.gae" in capsys.readouterr().out
