"""Inputs of the SPEC §3–4 checks: the :class:`Case` type, the Hypothesis strategies that draw
them, and the pinned corners every value check tries first (whatever the seed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st

from .. import divergences as dv
from .. import objectives as ob
from ..strategies import batch_shapes

__all__ = ["Case", "T", "M", "BadInput", "bad"]


@dataclass
class Case:
    """One input: named exact arrays (positional, in order), flags, scalar keywords."""

    arrays: dict[str, np.ndarray]
    kwargs: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, np.ndarray] = field(default_factory=dict)

    def __repr__(self) -> str:
        parts = [f"{k}={np.vectorize(str, otypes=[object])(v).tolist()}"
                 for k, v in self.arrays.items()]
        parts += [f"{k}={v.astype(int).tolist()}" for k, v in self.flags.items()]
        parts += [f"{k}={v}" for k, v in self.kwargs.items()]
        return "Case(" + ", ".join(parts) + ")"

    def torch_args(self, dtype: torch.dtype) -> tuple[list, dict]:
        args = [torch.tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
                for a in self.arrays.values()]
        kw = {k: (float(v) if isinstance(v, Fraction) else v) for k, v in self.kwargs.items()}
        kw.update({k: torch.tensor(v) for k, v in self.flags.items()})
        return args, kw

    def exact_args(self, dtype: torch.dtype) -> tuple[list, dict]:
        """The numbers the implementation saw (inputs rounded to dtype), as Fractions."""
        args = [_fractions(t) for t in self.torch_args(dtype)[0]]
        kw = {k: (Fraction(float(v)) if isinstance(v, (Fraction, float)) else v)
              for k, v in self.kwargs.items()}
        kw.update(self.flags)
        return args, kw

    def floats(self, dtype: torch.dtype) -> list[np.ndarray]:
        return [t.double().numpy() for t in self.torch_args(dtype)[0]]

    def values(self, dtype: torch.dtype) -> dict[str, Any]:
        """Every argument by parameter name, as the implementation gets it."""
        args, kw = self.torch_args(dtype)
        return dict(zip(self.arrays, args), **kw)

    def exact_values(self, dtype: torch.dtype) -> dict[str, Any]:
        """Every argument by parameter name, as the oracle gets it (the same numbers)."""
        args, kw = self.exact_args(dtype)
        return dict(zip(self.arrays, args), **kw)


def _fractions(t: torch.Tensor) -> np.ndarray:
    a = t.double().numpy()
    out = np.empty(a.shape, dtype=object)
    for idx, x in np.ndenumerate(a):
        out[idx] = Fraction(float(x))
    return out


# --- input strategies -------------------------------------------------------------------

def _grid(max_abs: float, denominator: int = 64) -> st.SearchStrategy[Fraction]:
    """Dyadic numbers k/denominator in [−max_abs, max_abs]: exact in float32 and float64."""
    top = int(max_abs * denominator)
    return st.integers(-top, top).map(lambda k: Fraction(k, denominator))


def _general(max_abs: float) -> st.SearchStrategy[Fraction]:
    return st.floats(-max_abs, max_abs, width=32, allow_subnormal=False).map(Fraction)


def _numbers(max_abs: float) -> st.SearchStrategy[Fraction]:
    return st.one_of(_grid(max_abs), _general(max_abs))


def _nonneg(max_abs: float) -> st.SearchStrategy[Fraction]:
    return _numbers(max_abs).map(abs)


@st.composite
def _arrays(draw, names: tuple[str, ...], elements: dict[str, st.SearchStrategy],
            min_ndim: int = 0, max_T: int = 8, shape: tuple | None = None):
    if shape is None:
        batch = draw(batch_shapes(max_dims=2), label="batch shape")
        shape = batch if min_ndim == 0 and draw(st.booleans(), label="no time axis") else (
            batch + (draw(st.integers(1, max_T), label="T"),))
        if len(shape) < min_ndim:
            shape = shape + (draw(st.integers(1, max_T), label="T"),)
    size = int(np.prod(shape)) if shape else 1
    out = {}
    for n in names:
        values = draw(st.lists(elements[n], min_size=size, max_size=size), label=n)
        out[n] = np.array(values, dtype=object).reshape(shape)
    return out


def _mask(draw, shape, label="mask"):
    bits = draw(st.lists(st.booleans(), min_size=int(np.prod(shape)),
                         max_size=int(np.prod(shape))), label=label)
    return np.array(bits, dtype=bool).reshape(shape)


@st.composite
def _ratio_cases(draw):
    a = draw(_arrays(("logp", "old_logp"), {"logp": _numbers(20), "old_logp": _numbers(20)}))
    return Case(a)


@st.composite
def _sequence_cases(draw):
    a = draw(_arrays(("logp", "old_logp"), {"logp": _numbers(20), "old_logp": _numbers(20)},
                     min_ndim=1))
    flags = {"mask": _mask(draw, a["logp"].shape)} if draw(st.booleans(), label="mask?") else {}
    return Case(a, flags=flags)


@st.composite
def _truncation_cases(draw):
    a = draw(_arrays(("ratio",), {"ratio": _nonneg(10)}))
    cap = draw(st.one_of(_grid(4).filter(lambda x: x > 0), st.just(Fraction(1))), label="cap")
    return Case(a, kwargs={"cap": cap})


@st.composite
def _distribution(draw, K: int, zeros: bool) -> list[Fraction]:
    """A dyadic probability vector (exact in float32): integer weights summing to 2^m."""
    m = draw(st.integers(2, 10), label="log2 denominator")
    weights = draw(st.lists(st.integers(0 if zeros else 1, 64), min_size=K, max_size=K))
    if sum(weights) == 0:
        weights[0] = 1
    scaled = [w * 2**m // sum(weights) for w in weights]
    scaled[int(np.argmax(scaled))] += 2**m - sum(scaled)
    if not zeros:
        scaled = [max(s, 1) for s in scaled]
        scaled[int(np.argmax(scaled))] -= sum(scaled) - 2**m
    return [Fraction(s, 2**m) for s in scaled]


@st.composite
def _distribution_cases(draw, names=("p", "q")):
    batch = draw(batch_shapes(max_dims=1), label="batch shape")
    K = draw(st.integers(1, 6), label="K")
    out = {}
    for n in names:
        rows = [draw(_distribution(K, zeros=True), label=n)
                for _ in range(int(np.prod(batch)) if batch else 1)]
        out[n] = np.array(rows, dtype=object).reshape(batch + (K,))
    return Case(out)


@st.composite
def _logit_cases(draw):
    a = draw(_arrays(("logits",), {"logits": st.one_of(_numbers(30), _grid(1e4, 1))},
                     min_ndim=1))
    return Case(a)


@st.composite
def _kl_estimate_cases(draw):
    a = draw(_arrays(("logp", "ref_logp"), {"logp": _numbers(15), "ref_logp": _numbers(15)}))
    return Case(a, kwargs={"kind": draw(st.sampled_from(dv.KL_ESTIMATORS), label="kind")})


@st.composite
def _clip_cases(draw):
    a = draw(_arrays(("ratio", "advantages"), {"ratio": _nonneg(3), "advantages": _numbers(8)}))
    kw = {"clip_low": draw(st.sampled_from([Fraction(1, 5), Fraction(1, 4), Fraction(0),
                                            Fraction(1, 2)]), label="clip_low")}
    if draw(st.booleans(), label="asymmetric"):
        kw["clip_high"] = draw(st.sampled_from([Fraction(7, 25), Fraction(1, 2), Fraction(3)]),
                               label="clip_high")
    if draw(st.booleans(), label="dual clip"):
        kw["dual_clip"] = draw(st.sampled_from([Fraction(3), Fraction(5, 4)]), label="dual")
    return Case(a, kwargs=kw)


@st.composite
def _penalized_cases(draw):
    a = draw(_arrays(("ratio", "advantages", "kl"),
                     {"ratio": _nonneg(3), "advantages": _numbers(8), "kl": _numbers(4)}))
    return Case(a, kwargs={"beta": draw(_grid(2).map(abs), label="beta")})


@st.composite
def _value_cases(draw):
    a = draw(_arrays(("values", "returns", "old_values"),
                     {k: _numbers(50) for k in ("values", "returns", "old_values")}))
    if draw(st.booleans(), label="clip?"):
        kw = {"clip": draw(_grid(2).map(abs), label="clip"),
              "clip_form": draw(st.sampled_from(ob.VALUE_CLIP_FORMS), label="form")}
        return Case(a, kwargs=kw)
    a.pop("old_values")
    return Case(a)


@st.composite
def _whiten_cases(draw):
    a = draw(_arrays(("x",), {"x": _numbers(100)}, min_ndim=1))
    flags = {}
    if draw(st.booleans(), label="mask?"):
        m = _mask(draw, a["x"].shape)
        m.flat[draw(st.integers(0, m.size - 1), label="one kept")] = True
        flags["mask"] = m
    kw = {"shift_mean": draw(st.booleans(), label="shift_mean"),
          "unbiased": draw(st.booleans(), label="unbiased"),
          "eps": draw(st.sampled_from([Fraction(1, 2**20), Fraction(1, 100), Fraction(1)]),
                      label="eps")}
    return Case(a, kwargs=kw, flags=flags)


@st.composite
def _aggregate_cases(draw):
    B = draw(st.integers(1, 4), label="B")
    T = draw(st.integers(1, 6), label="T")
    a = draw(_arrays(("per_step_loss",), {"per_step_loss": _numbers(10)}, shape=(B, T)))
    m = _mask(draw, (B, T))
    m[draw(st.integers(0, B - 1), label="row kept"), 0] = True
    mode = draw(st.sampled_from(ob.AGGREGATION_MODES), label="mode")
    kw = {"mode": mode}
    if mode == "seq-mean-token-sum-norm":
        kw["normalizer"] = Fraction(draw(st.integers(1, 16), label="normalizer"))
    return Case(a, kwargs=kw, flags={"mask": m})


@st.composite
def _group_cases(draw):
    method = draw(st.sampled_from(ob.GROUP_METHODS), label="method")
    batch = draw(batch_shapes(max_dims=1), label="batch shape")
    G = draw(st.integers(2 if method == "rloo" else 1, 8), label="G")
    element = st.one_of(_numbers(10), st.sampled_from([Fraction(0), Fraction(1)]))
    a = draw(_arrays(("rewards",), {"rewards": element}, shape=batch + (G,)))
    kw = {"method": method, "unbiased": draw(st.booleans(), label="unbiased"),
          "eps": draw(st.sampled_from([Fraction(1, 2**20), Fraction(1, 100)]), label="eps")}
    return Case(a, kwargs=kw)


@st.composite
def _policy_loss_cases(draw):
    B = draw(st.integers(1, 3), label="B")
    T = draw(st.integers(1, 5), label="T")
    a = draw(_arrays(("logp", "old_logp"), {"logp": _numbers(2), "old_logp": _numbers(2)},
                     shape=(B, T)))
    per_sequence = draw(st.booleans(), label="advantages per sequence")
    a["advantages"] = draw(_arrays(("advantages",), {"advantages": _numbers(4)},
                                   shape=(B,) if per_sequence else (B, T)))["advantages"]
    m = _mask(draw, (B, T))
    m[draw(st.integers(0, B - 1), label="row kept"), 0] = True
    mode = draw(st.sampled_from(ob.AGGREGATION_MODES), label="mode")
    kw: dict[str, Any] = {"mode": mode, "clip_low": draw(st.sampled_from(
        [Fraction(1, 5), Fraction(1, 4), Fraction(0)]), label="clip_low")}
    if mode == "seq-mean-token-sum-norm":
        kw["normalizer"] = Fraction(draw(st.integers(1, 16), label="normalizer"))
    if draw(st.booleans(), label="asymmetric"):
        kw["clip_high"] = draw(st.sampled_from([Fraction(7, 25), Fraction(1, 2)]),
                               label="clip_high")
    if draw(st.booleans(), label="dual clip"):
        kw["dual_clip"] = Fraction(3)
    return Case(a, kwargs=kw, flags={"mask": m})


# --- pinned corners ---------------------------------------------------------------------------

def _vector(*xs) -> np.ndarray:
    return np.array([Fraction(x) for x in xs], dtype=object)


def _sequence_pinned() -> tuple:
    return tuple(
        Case({"logp": np.array([[Fraction(-1), Fraction(-2), Fraction(-1, 2)]], dtype=object),
              "old_logp": np.array([[Fraction(-2), Fraction(-2), Fraction(-1)]],
                                   dtype=object)}, flags=flags)
        for flags in ({}, {"mask": np.array([[True, False, True]])},
                      {"mask": np.array([[False, False, False]])}))


def _matrix(*rows) -> np.ndarray:
    return np.array([[Fraction(x) for x in row] for row in rows], dtype=object)


# Corners every value check tries first, whatever the seed (SPEC §4's named cases and every
# value of every enumerated option). Large offsets with a small spread (4096 + {0, ½, 1})
# break a one-pass variance E[x²] − E[x]² in float32 (ulp(4096²) = 2 > the variance 1/6).
_OFFSET = _vector(4096, Fraction(8193, 2), 4097)
_WHITEN_PINNED = tuple(
    Case({"x": x}, kwargs={"shift_mean": True, "unbiased": unbiased, "eps": Fraction(1, 2**20)},
         flags=flags)
    for x, flags in ((_vector(3, 1, 2, 6), {}),
                     (_vector(3, 1, 2, 6), {"mask": np.array([True, False, True, True])}),
                     (_vector(5), {}),  # one element: unbiased variance taken as 0
                     (_vector(3, 1), {"mask": np.array([True, False])}),  # one kept element
                     (_vector(Fraction(1, 2), Fraction(1, 2), Fraction(1, 2)), {}),  # no spread
                     (_OFFSET, {}))
    for unbiased in (True, False))
# rows of different lengths with different means (token-mean ≠ seq-mean-token-mean), a fully
# masked row (left out of the sequence means), B = 3 (a sum over rows ≠ their mean)
_AGG_LOSS = _matrix([1, 2, 3], [8, 0, 0], [5, 7, 9])
_AGG_MASK = np.array([[True, True, True], [True, False, False], [False, False, False]])
_AGGREGATE_PINNED = tuple(
    Case({"per_step_loss": _AGG_LOSS},
         kwargs={"mode": mode, **({"normalizer": Fraction(4)}
                                  if mode == "seq-mean-token-sum-norm" else {})},
         flags={"mask": _AGG_MASK})
    for mode in ob.AGGREGATION_MODES)
_GROUP_PINNED = tuple(
    Case({"rewards": rewards}, kwargs={"method": method, "unbiased": unbiased,
                                       "eps": Fraction(1, 2**20)})
    for method in ob.GROUP_METHODS for unbiased in (True, False)
    for rewards in (_matrix([1, 0], [Fraction(1, 2), 3]),  # G = 2
                    _matrix([1, 0, 0, 1, 1]),
                    _matrix([Fraction(1, 2)] * 4),  # zero spread: zeros, never NaN
                    _OFFSET.reshape(1, 3),
                    _matrix([2]))  # a group of one: advantage 0 (rloo: an error, not drawn)
    if not (method == "rloo" and rewards.shape[-1] < 2))


def _policy_loss_pinned() -> tuple:
    """Every aggregation mode on rows of different lengths, a fully masked row, per-token and
    per-sequence advantages, ratios on both sides of the clip range (log r = ±1/2)."""
    logp = _matrix([Fraction(1, 2), 0, Fraction(-1, 2)], [Fraction(-1, 2), 0, 0], [1, 1, 1])
    old = _matrix([0, 0, 0], [0, 0, 0], [0, 0, 0])
    mask = np.array([[True, True, True], [True, False, False], [False, False, False]])
    cases = []
    for mode in ob.AGGREGATION_MODES:
        kw = {"mode": mode, "clip_low": Fraction(1, 5)}
        if mode == "seq-mean-token-sum-norm":
            kw["normalizer"] = Fraction(4)
        for A in (_matrix([1, -2, 3], [-1, 0, 0], [1, 1, 1]), _vector(-1, 2, 1)):
            cases.append(Case({"logp": logp, "old_logp": old, "advantages": A}, dict(kw),
                              {"mask": mask}))
    return tuple(cases)


# --- SPEC §7 ------------------------------------------------------------------------------

@st.composite
def _iw_kl_cases(draw):
    a = draw(_arrays(("logp", "ref_logp", "old_logp"),
                     {"logp": _numbers(3), "ref_logp": _numbers(3), "old_logp": _numbers(3)}))
    return Case(a, kwargs={"kind": draw(st.sampled_from(dv.KL_ESTIMATORS), label="kind")})


@st.composite
def _shaped_reward_cases(draw):
    a = draw(_arrays(("rewards", "logp", "ref_logp"),
                     {"rewards": _numbers(4), "logp": _numbers(3), "ref_logp": _numbers(3)},
                     min_ndim=1))
    flags = {"mask": _mask(draw, a["rewards"].shape)} if draw(st.booleans(),
                                                              label="masked") else {}
    kwargs = {"beta": draw(_grid(1, 64).map(abs), label="beta"),
              "kind": draw(st.sampled_from(dv.KL_ESTIMATORS), label="kind")}
    return Case(a, kwargs, flags)


@st.composite
def _overlong_cases(draw):
    a = draw(_arrays(("lengths",), {"lengths": st.integers(0, 48).map(Fraction)}))
    return Case(a, {"max_length": Fraction(draw(st.sampled_from([32, 40]), label="max")),
                    "cache_length": Fraction(draw(st.sampled_from([1, 4, 8]),
                                                  label="cache"))})


# every region of the penalty, its two boundaries included (L_max − L_cache = 24, L_max = 32)
_OVERLONG_PINNED = (Case({"lengths": np.array([Fraction(x) for x in (0, 24, 25, 28, 32, 33,
                                                                      40)], dtype=object)},
                         {"max_length": Fraction(32), "cache_length": Fraction(8)}),)


@st.composite
def _cispo_cases(draw):
    a = draw(_arrays(("logp", "old_logp", "advantages"),
                     {"logp": _numbers(3), "old_logp": _numbers(3), "advantages": _numbers(2)},
                     min_ndim=1))
    shape = a["logp"].shape
    eps = st.sampled_from([Fraction(1, 5), Fraction(1, 4), Fraction(0), Fraction(2)])
    return Case(a, {"clip_low": draw(eps, label="clip_low"),
                    "clip_high": draw(eps, label="clip_high")},
                {"mask": _mask(draw, shape)})


# --- bad inputs, as data ------------------------------------------------------------------------

@dataclass(frozen=True)
class T:
    """A tensor literal of a bad input (built at call time, so that a row imports no tensor):
    ``T([[1.0, 2.0]])`` is float64, ``M([[True, False]])`` a boolean mask."""

    values: Any
    dtype: str = "float64"

    def build(self) -> torch.Tensor:
        return torch.tensor(self.values, dtype=getattr(torch, self.dtype))


def M(values: Any) -> T:  # noqa: N802 - reads as the literal it is
    return T(values, "bool")


@dataclass(frozen=True)
class BadInput:
    """One call SPEC §1 says must raise ValueError/TypeError naming ``word``."""

    word: str
    args: tuple
    kwargs: tuple  # (name, value) pairs

    def call(self, fn: Any) -> Any:
        def build(x):
            return x.build() if isinstance(x, T) else x

        return fn(*map(build, self.args), **{k: build(v) for k, v in self.kwargs})


def bad(word: str, *args: Any, **kwargs: Any) -> BadInput:
    """``bad("clip_low", T([1.0]), T([1.0]), clip_low=-0.1)``: called so, the function must
    raise an error naming ``clip_low``."""
    return BadInput(word, args, tuple(kwargs.items()))
