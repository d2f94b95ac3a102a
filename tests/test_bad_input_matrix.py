"""The bad-input matrix: every public function, on both sides (the exact oracle ``refmath.f``
and the Torch twin ``refmath_torch.f``), under every class of bad or awkward input a careful
user produces (SPEC §1 "Bad input", "dtypes").

Each case asserts one of two outcomes, never anything in between:

* ``error(arg)``: a ``ValueError``/``TypeError`` whose message names ``arg`` — no silent NaN,
  no wrong shape, no raw ``RuntimeError``/``LinAlgError``/``OverflowError`` from deep inside;
* ``correct``: the result equals the reference — the oracle on the same numbers (float64:
  within 1e-12 relative, the float64 rounding of a handful of operations), or on the clean
  input where the awkward part is one SPEC says is ignored.

Cases whose right answer is "whatever the definition says" (empty axes, 0-d input) are
``agree``: the oracle's outcome is the contract and the twin must match it — the same named
error, or the same value. The matrix is generated from one base input per function; the
class counts are printed by ``python tests/test_bad_input_matrix.py``.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import numpy as np
import pytest
import torch

import refmath
import refmath_torch as rt
from refmath import policy_gradient as pg
from refmath.checks.specs import SPECS

NAN, INF = math.nan, math.inf

# --- one valid input per function ([2, 3] arrays, dyadic numbers) ---------------------------
R = np.array([[1.0, 2.0, 4.0], [0.5, -1.0, 3.0]])
V = np.array([[0.125, 0.25, 0.375], [0.0, 0.5, -0.25]])
NV = np.array([[0.5, 0.75, 1.5], [0.25, -0.5, 1.0]])
TERM = np.array([[0, 1, 0], [0, 0, 0]], dtype=bool)
TRUNC = np.array([[0, 0, 0], [1, 0, 0]], dtype=bool)
MASK = np.array([[1, 1, 1], [1, 0, 1]], dtype=bool)
LOGP = np.array([[-1.0, -0.5, -2.0], [-0.25, -3.0, -1.0]])
OLD = np.array([[-1.5, -0.5, -1.0], [-0.5, -2.0, -1.25]])
RATIO = np.array([[0.5, 1.5, 3.0], [1.0, 0.25, 2.0]])
ADV = np.array([[1.0, -2.0, 0.5], [-0.5, 1.5, -1.0]])
P = np.array([[0.5, 0.25, 0.25], [0.125, 0.375, 0.5]])
Q = np.array([[0.25, 0.25, 0.5], [0.5, 0.25, 0.25]])
SPD = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 1.5]])
G3 = np.array([1.0, -0.5, 0.25])
STEP = dict(terminated=TERM, truncated=TRUNC, mask=MASK)
MDP = pg.TabularMDP(P=[[[0.5, 0.5], [0.25, 0.75]], [[1.0, 0.0], [0.5, 0.5]]],
                    R=[[1.0, 0.0], [0.5, 2.0]], rho=[0.5, 0.5], H=2, gamma=0.5)

class _Base(dict):
    """One valid input per function: listed below, or else derived from the function's
    spec row (its first pinned input, :func:`refmath.checks.arrays.first_case`), so that
    adding a function to refmath needs no entry here."""

    def __missing__(self, name: str) -> dict[str, Any]:
        from refmath.checks import array_row
        from refmath.checks.arrays import first_case

        row = array_row(name)
        if row is None:
            raise KeyError(f"{name}: no base input listed and no array row to derive one from")
        values = first_case(row).values(torch.float64)
        self[name] = {k: (v.numpy() if isinstance(v, torch.Tensor) else
                          float(v) if isinstance(v, Fraction) else v)
                      for k, v in values.items()}
        return self[name]


BASE: dict[str, dict[str, Any]] = _Base({
    "td_errors": dict(rewards=R, values=V, next_values=NV, gamma=0.5, terminated=TERM),
    "discounted_returns": dict(rewards=R, gamma=0.5, next_values=NV, **STEP),
    "n_step_returns": dict(rewards=R, next_values=NV, gamma=0.5, n=2, **STEP),
    "gae": dict(rewards=R, values=V, next_values=NV, gamma=0.5, lam=0.5, **STEP),
    "lambda_returns": dict(rewards=R, values=V, next_values=NV, gamma=0.5, lam=0.5, **STEP),
    "importance_ratio": dict(logp=LOGP, old_logp=OLD),
    "sequence_log_ratio": dict(logp=LOGP, old_logp=OLD, mask=MASK),
    "geometric_mean_ratio": dict(logp=LOGP, old_logp=OLD, mask=MASK),
    "truncated_importance_weight": dict(ratio=RATIO, cap=2.0),
    "kl_divergence": dict(p=P, q=Q),
    "entropy": dict(p=P),
    "entropy_from_logits": dict(logits=LOGP),
    "kl_estimate": dict(logp=LOGP, ref_logp=OLD, kind="k3"),
    "clipped_surrogate": dict(ratio=RATIO, advantages=ADV, clip_low=0.2, dual_clip=3.0),
    "kl_penalized_surrogate": dict(ratio=RATIO, advantages=ADV, kl=np.abs(V), beta=0.5),
    "adaptive_kl_coefficient": dict(beta=1.0, kl=0.1, target=0.01),
    "value_loss": dict(values=V, returns=R, old_values=NV, clip=0.5),
    "whiten": dict(x=R, mask=MASK, shift_mean=True, unbiased=True, eps=1e-8),
    "aggregate_loss": dict(per_step_loss=R, mask=MASK, mode="seq-mean-token-sum-norm",
                           normalizer=4.0),
    "group_advantages": dict(rewards=R, method="grpo", eps=1e-6, unbiased=True),
    "policy_loss": dict(logp=LOGP, old_logp=OLD, advantages=ADV, mask=MASK, clip_low=0.2,
                        dual_clip=3.0, mode="token-mean"),
    "expected_return": dict(mdp=MDP, pi=np.array([[0.5, 0.5], [0.25, 0.75]])),
    "critic_loss": dict(values=V, returns=R),
    "actor_loss": dict(logp=LOGP, advantages=ADV),
    "fisher_matrix": dict(p=P[0]),
    "conjugate_gradient": dict(Avp=SPD, g=G3, iters=3, damping=0.0),
    "natural_gradient_step": dict(g=G3, F=SPD, max_kl=0.01),
    "backtracking_line_search": dict(objective=G3, kl=SPD, x=np.zeros(3), full_step=G3,
                                     max_kl=0.01, backtrack=0.5, max_backtracks=10),
    "vtrace": dict(rewards=R, values=V, next_values=NV, log_rhos=LOGP - OLD, gamma=0.5,
                   lam=0.5, rho_clip=1.0, c_clip=1.0, pg_rho_clip=2.0, **STEP),
    "off_policy_q_targets": dict(rewards=R, q_values=V, next_expected_q=NV, traces=np.abs(V),
                                 gamma=0.5, **STEP),
    "trace_coefficients": dict(method="retrace", lam=0.5, log_rhos=LOGP - OLD),
    "importance_weighted_kl_estimate": dict(logp=LOGP, ref_logp=OLD, old_logp=LOGP / 2,
                                            kind="k3"),
    "kl_shaped_rewards": dict(rewards=R, logp=LOGP, ref_logp=OLD, beta=0.125, kind="k2",
                              mask=MASK),
    "overlong_penalty": dict(lengths=np.array([[10.0, 25.0, 40.0], [0.0, 28.0, 32.0]]),
                             max_length=32, cache_length=8),
    "cispo_surrogate": dict(logp=LOGP, old_logp=OLD, advantages=ADV, mask=MASK,
                            clip_low=0.2, clip_high=0.25),
    "rollout_correction": dict(logp=LOGP, rollout_logp=OLD, mask=MASK, level="sequence",
                               mode="mask", low=0.25, high=4.0),
    "gspo_surrogate": dict(logp=LOGP, old_logp=OLD, advantages=ADV[:, 0], mask=MASK,
                           clip_low=0.2, clip_high=0.25),
    "gspo_token_surrogate": dict(logp=LOGP, old_logp=OLD, advantages=ADV, mask=MASK,
                                 clip_low=0.2, clip_high=0.25),
    "split_aggregate_loss": dict(per_step_loss=R, mask=MASK, mode="token-mean", splits=[1, 1]),
    "remax_advantages": dict(rewards=R, greedy_rewards=V),
})
# Avp, objective and kl are given as the matrix/vector they apply; ``_side`` makes the
# callable of each side: Avp(v) = M·v, objective(x) = g·x, kl(x) = ½ xᵀMx.
OPERATORS = {"Avp": "matvec", "objective": "dot", "kl": "quadratic"}
OPERATOR_FUNCTIONS = ("conjugate_gradient", "backtracking_line_search")
# numbers the oracle reads as options, not arrays
SCALAR_ARGS = {"gamma", "lam", "n", "cap", "kind", "clip_low", "clip_high", "dual_clip", "beta",
               "clip", "clip_form", "shift_mean", "unbiased", "eps", "mode", "normalizer",
               "method", "iters", "damping", "max_kl", "backtrack", "max_backtracks", "mdp",
               "target", "tolerance", "factor", "kl_scalar", "rho_clip", "c_clip",
               "pg_rho_clip", "max_length", "cache_length", "level", "low", "high",
               "splits"}
FLAGS = ("terminated", "truncated", "mask")


def arrays_of(name: str) -> list[str]:
    base = BASE[name]
    return [k for k, v in base.items() if isinstance(v, np.ndarray) and v.dtype != bool
            and not _is_operator(name, k) and k not in SCALAR_ARGS]


def _is_operator(name: str, arg: str) -> bool:
    return name in OPERATOR_FUNCTIONS and arg in OPERATORS


def flags_of(name: str) -> list[str]:
    return [k for k in FLAGS if k in BASE[name]]


def read_index(name: str, arg: str) -> tuple[int, ...]:
    """An index where ``arg`` is read (present, and not terminated for next_values)."""
    a = BASE[name][arg]
    if name == "discounted_returns" and arg == "next_values":
        return (0, 2)  # read only at segment ends: the last step of a row
    return (0,) * a.ndim


# --- calling one side ------------------------------------------------------------------------
def _operator(kind: str, M: Any, side: str) -> Callable:
    if side == "oracle":
        M = np.asarray(M, dtype=object)
        return {"matvec": lambda v: [sum(M[i, j] * v[j] for j in range(len(v)))
                                     for i in range(M.shape[0])],
                "dot": lambda x: sum(a * b for a, b in zip(M, x)),
                "quadratic": lambda x: sum(x[i] * M[i, j] * x[j] for i in range(len(x))
                                           for j in range(len(x))) / 2}[kind]
    Mt = torch.as_tensor(np.asarray(M, dtype=np.float64))
    return {"matvec": lambda v: Mt.to(v.dtype) @ v, "dot": lambda x: Mt.to(x.dtype) @ x,
            "quadratic": lambda x: 0.5 * x @ Mt.to(x.dtype) @ x}[kind]


def to_twin(name: str, values: dict[str, Any]) -> dict[str, Any]:
    """numpy floats -> float64 tensors, numpy bools -> bool tensors; anything else as is."""
    out = {}
    for k, v in values.items():
        if _is_operator(name, k):
            out[k] = _operator(OPERATORS[k], v, "twin") if isinstance(v, np.ndarray) else v
        elif isinstance(v, np.ndarray) and k not in ("mdp",):
            out[k] = torch.tensor(v)
        else:
            out[k] = v
    return out


def to_oracle(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {k: (_operator(OPERATORS[k], v, "oracle") if _is_operator(name, k)
                and isinstance(v, np.ndarray) else v) for k, v in values.items()}


def call(name: str, side: str, values: dict[str, Any]) -> Any:
    fn = getattr(refmath if side == "oracle" else rt, name)
    return SPECS[name].call(fn, values)


def as_numbers(out: Any) -> np.ndarray:
    """A result as a float64 array (tensors, SymPy matrices, Fractions, tuples of x and k)."""
    if isinstance(out, tuple) and all(isinstance(x, (torch.Tensor, np.ndarray)) for x in out):
        return np.stack([as_numbers(x) for x in out], axis=-1)  # V-trace's (vs, pg)
    if isinstance(out, tuple):
        out = out[0]  # the line search's (x, k)
    if isinstance(out, torch.Tensor):
        return out.detach().cpu().double().numpy()
    if hasattr(out, "tolist") and not isinstance(out, np.ndarray):  # SymPy matrix
        out = out.tolist()
    a = np.asarray(out, dtype=object)
    return np.vectorize(lambda x: float(x.evalf(30)) if hasattr(x, "evalf") else float(x),
                        otypes=[np.float64])(a) if a.size else a.astype(np.float64)


# --- the cases --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    name: str  # the function
    side: str  # "oracle" or "twin"
    cls: str  # the bad-input class
    what: str  # what was done
    make: Callable[[], dict[str, Any]]  # the side's arguments
    expect: str  # "error:<arg>", "correct", "agree", "clean" (as the clean input)
    reference: Callable[[], dict[str, Any]] | None = None  # twin args of the reference call
    dtype: torch.dtype | None = None  # half precision: the result's dtype

    @property
    def id(self) -> str:
        return f"{self.name}-{self.side}-{self.cls}-{self.what}"


def _replace(name: str, **changes: Any) -> dict[str, Any]:
    return dict(BASE[name], **changes)


def _with(a: np.ndarray, idx: tuple, value: float) -> np.ndarray:
    b = np.array(a, dtype=np.float64)
    b[idx] = value
    return b


def _both(name: str, cls: str, what: str, values: Callable[[], dict], expect: str) -> list[Case]:
    return [Case(name, "oracle", cls, what, lambda: to_oracle(name, values()), expect),
            Case(name, "twin", cls, what, lambda: to_twin(name, values()), expect)]


def shape_cases(name: str) -> list[Case]:
    out = []
    for arg in arrays_of(name)[1:] + [f for f in flags_of(name)]:
        a = BASE[name][arg]
        if a.ndim == 0 or a.shape[-1] < 2:
            continue
        out += _both(name, "shape", f"{arg}-one-shorter",
                     lambda arg=arg, a=a: _replace(name, **{arg: a[..., :-1]}), f"error:{arg}")
        if a.ndim >= 2:  # [T] where [B, T] is expected: would broadcast silently
            out += _both(name, "broadcasting", f"{arg}-missing-batch-axis",
                         lambda arg=arg, a=a: _replace(name, **{arg: a[0]}), f"error:{arg}")
    return out


def nonfinite_cases(name: str) -> list[Case]:
    out = []
    for arg in arrays_of(name):
        idx = read_index(name, arg)
        for label, value in (("nan", NAN), ("inf", INF), ("-inf", -INF)):
            allowed = label == "inf" and arg == "ratio" and name in (
                "clipped_surrogate", "truncated_importance_weight")  # the overflowed ratio
            expect = "agree" if allowed else f"error:{arg}"
            out += _both(name, "non-finite where read", f"{arg}-{label}",
                         lambda arg=arg, idx=idx, value=value: _replace(
                             name, **{arg: _with(BASE[name][arg], idx, value)}), expect)
    return out


def ignored_cases(name: str) -> list[Case]:
    """NaN where SPEC says a number is never read: masked positions, terminated next_values."""
    base = BASE[name]
    out = []
    if "mask" in base and name not in ("aggregate_loss",) or name == "aggregate_loss":
        hole = tuple(int(i) for i in np.argwhere(~base["mask"])[0])
        for arg in [a for a in arrays_of(name) if base[a].shape == base["mask"].shape]:
            out += _both(name, "non-finite where ignored", f"{arg}-nan-masked",
                         lambda arg=arg: _replace(name, **{arg: _with(base[arg], hole, NAN)}),
                         "clean")
    if "terminated" in base and "next_values" in base:
        at = tuple(int(i) for i in np.argwhere(base["terminated"])[0])
        out += _both(name, "non-finite where ignored", "next_values-nan-terminated",
                     lambda: _replace(name, next_values=_with(base["next_values"], at, NAN)),
                     "clean")
    return out


def flag_cases(name: str) -> list[Case]:
    out = []
    for f in flags_of(name):
        a = BASE[name][f]
        for label, bad in (("half", 0.5), ("two", 2.0), ("minus-one", -1.0)):
            out += _both(name, "flags not 0/1", f"{f}-{label}",
                         lambda f=f, a=a, bad=bad: _replace(name, **{f: np.where(a, bad, 0.0)}),
                         f"error:{f}")
        for label, dtype in (("float", np.float64), ("int", np.int64)):
            out += _both(name, "flag dtypes", f"{f}-as-{label}-0-1",
                         lambda f=f, a=a, dtype=dtype: _replace(name, **{f: a.astype(dtype)}),
                         "clean")
        out.append(Case(name, "twin", "flag dtypes", f"{f}-complex",
                        lambda f=f, a=a: to_twin(name, _replace(name, **{f: a.astype(
                            np.complex128)})), f"error:{f}"))
    return out


def tensor_type_cases(name: str) -> list[Case]:
    """Twins take floating tensors of one dtype: integer/bool/complex tensors, NumPy arrays
    and lists are usage mistakes named by argument. Oracles take NumPy/lists/Fractions."""
    out = []
    for arg in arrays_of(name):
        a = BASE[name][arg]
        for label, conv in (("int64", lambda t: t.round().long()),
                            ("bool", lambda t: t != 0),
                            ("complex", lambda t: t.to(torch.complex128)),
                            ("numpy", lambda t: t.numpy()),
                            ("list", lambda t: t.tolist()),
                            ("float32-among-float64", lambda t: t.float())):
            if label == "float32-among-float64" and len(arrays_of(name)) < 2:
                continue
            counts = name == "overlong_penalty" and label == "int64"  # lengths are counts
            out.append(Case(name, "twin", "tensor types", f"{arg}-{label}",
                            lambda arg=arg, conv=conv: dict(
                                to_twin(name, BASE[name]), **{arg: conv(
                                    torch.tensor(BASE[name][arg]))}),
                            "clean" if counts else f"error:{arg}"))
        out.append(Case(name, "oracle", "tensor types", f"{arg}-complex",
                        lambda arg=arg, a=a: to_oracle(name, _replace(
                            name, **{arg: a.astype(np.complex128)})), f"error:{arg}"))
        out.append(Case(name, "oracle", "tensors given to oracles", f"{arg}-requires-grad",
                        lambda arg=arg: to_oracle(name, _replace(name, **{arg: torch.tensor(
                            BASE[name][arg], requires_grad=True)})), "clean"))
        out.append(Case(name, "oracle", "tensors given to oracles", f"{arg}-bfloat16-tensor",
                        lambda arg=arg: to_oracle(name, _replace(name, **{arg: torch.tensor(
                            BASE[name][arg]).to(torch.bfloat16)})), "clean"))
        out.append(Case(name, "twin", "meta tensors", f"{arg}-meta",
                        lambda arg=arg: dict(to_twin(name, BASE[name]), **{arg: torch.empty(
                            BASE[name][arg].shape, device="meta", dtype=torch.float64)}),
                        f"error:{arg}"))
    return out


def view_cases(name: str) -> list[Case]:
    """Views: the same numbers through non-contiguous, expanded and strided tensors (twins),
    negative-stride NumPy arrays (oracles)."""
    out = []
    for arg in arrays_of(name):
        a = BASE[name][arg]
        if a.ndim == 2:
            out.append(Case(name, "twin", "views", f"{arg}-non-contiguous",
                            lambda arg=arg, a=a: dict(to_twin(name, BASE[name]), **{
                                arg: torch.tensor(a.T.copy()).T}), "clean"))
        out.append(Case(name, "twin", "views", f"{arg}-strided",
                        lambda arg=arg, a=a: dict(to_twin(name, BASE[name]), **{
                            arg: torch.tensor(np.repeat(a, 2, axis=-1))[..., ::2]}), "clean"))
        out.append(Case(name, "oracle", "views", f"{arg}-negative-stride",
                        lambda arg=arg, a=a: to_oracle(name, _replace(name, **{
                            arg: a[..., ::-1].copy()[..., ::-1]})), "clean"))
    if "rewards" in BASE[name] and BASE[name]["rewards"].ndim == 2 and name in (
            "td_errors", "gae", "lambda_returns", "discounted_returns", "n_step_returns"):
        def expanded():  # every per-step input row 0, expanded to two rows (stride 0)
            v = {k: (torch.tensor(x[:1]).expand(x.shape) if isinstance(x, np.ndarray) else x)
                 for k, x in BASE[name].items()}
            return v

        def reference():
            return {k: (torch.tensor(np.repeat(x[:1], 2, axis=0)) if isinstance(x, np.ndarray)
                        else x) for k, x in BASE[name].items()}

        out.append(Case(name, "twin", "views", "all-expanded-from-one-row", expanded,
                        "correct", reference))
    return out


def half_cases(name: str) -> list[Case]:
    """float16/bfloat16: computed in float32, rounded once (SPEC §1)."""
    if not arrays_of(name) or name in ("natural_gradient_step",):
        return []
    out = []
    for dtype in (torch.float16, torch.bfloat16):
        def make(dtype=dtype):
            v = to_twin(name, BASE[name])
            return {k: (x.to(dtype) if isinstance(x, torch.Tensor) and x.is_floating_point()
                        else x) for k, x in v.items()}

        out.append(Case(name, "twin", "half precision", str(dtype).split(".")[1], make,
                        "correct", make, dtype))
    return out


def shape_extreme_cases(name: str) -> list[Case]:
    """Empty time axis, empty batch, 0-d: the oracle's outcome is the contract."""
    arrays = arrays_of(name) + flags_of(name)
    if not arrays or BASE[name][arrays[0]].ndim < 1:
        return []

    def reshaped(f):
        return lambda: {k: (f(v) if k in arrays else v) for k, v in BASE[name].items()}

    out = []
    for label, f in (("empty-last-axis", lambda a: a[..., :0]),
                     ("empty-batch", lambda a: a[:0] if a.ndim >= 2 else a[:0]),
                     ("0-d", lambda a: np.asarray(a.reshape(-1)[0]))):
        out += _both(name, "empty and 0-d", label, reshaped(f), "agree")
    return out


def scalar_cases(name: str) -> list[Case]:
    """Options: out of range, NaN, wrong type, unknown enumeration value."""
    bad = {
        "gamma": [1.5, -0.1, NAN], "lam": [1.01, -0.5, NAN], "n": [0, 1.5, True],
        "cap": [0.0, -1.0, NAN], "clip_low": [-0.1, NAN], "dual_clip": [0.5, 1.0],
        "beta": [-1.0, NAN], "clip": [-0.2, NAN], "eps": [0.0, -1.0, NAN],
        "normalizer": [0.0, -2.0], "shift_mean": [0.5, 2], "unbiased": [0.5, 2],
        "kind": ["k4"], "mode": ["sum"], "method": ["ppo"], "clip_form": ["huber"],
        "iters": [-1, 1.5], "damping": [-1.0, NAN], "max_kl": [0.0, -0.01, NAN],
        "backtrack": [0.0, 1.0, 2.0], "max_backtracks": [0, 2.5],
        "target": [0.0, -1.0], "tolerance": [0.5], "factor": [0.5],
        "rho_clip": [0.0, -1.0], "c_clip": [0.0], "pg_rho_clip": [-1.0],
        "cache_length": [0.0, -1.0, NAN], "max_length": [NAN],
    }
    out = []
    for arg, values in bad.items():
        if arg not in BASE[name]:
            continue
        for v in values:
            out += _both(name, "options", f"{arg}={v!r}",
                         lambda arg=arg, v=v: _replace(name, **{arg: v}), f"error:{arg}")
    if "n" in BASE[name]:
        out += _both(name, "options", "n=np.int64(2)", lambda: _replace(name, n=np.int64(2)),
                     "clean")
    if "gamma" in BASE[name]:
        out += _both(name, "options", "gamma-per-step-out-of-range",
                     lambda: _replace(name, gamma=np.full(R.shape, 1.25)), "error:gamma")
    return out


def matrix_cases() -> list[Case]:
    """The trust-region inputs that are not per-element: singular, indefinite, non-positive
    definite, wrong rank, wrong container, mixed dtypes; unnormalised probabilities."""
    ones = np.full(3, 1 / 3)
    singular = np.diag(ones) - np.outer(ones, ones)  # the softmax Fisher: F·1 = 0
    indefinite = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 1.0]])
    out = []
    for label, F in (("singular-softmax-fisher", singular), ("indefinite", indefinite),
                     ("zero", np.zeros((3, 3))), ("not-symmetric", SPD + np.triu(SPD, 1))):
        out += _both("natural_gradient_step", "singular matrices", f"F-{label}",
                     lambda F=F: _replace("natural_gradient_step", F=F), "error:F")
    for label, M in (("negative-definite", -SPD), ("zero", np.zeros((3, 3)))):
        out += _both("conjugate_gradient", "singular matrices", f"Avp-{label}",
                     lambda M=M: _replace("conjugate_gradient", Avp=M), "error:Avp")
    out += _both("natural_gradient_step", "shape", "g-two-axes",
                 lambda: _replace("natural_gradient_step", g=G3.reshape(3, 1)), "error:g")
    out += _both("conjugate_gradient", "shape", "g-two-axes",
                 lambda: _replace("conjugate_gradient", g=G3.reshape(3, 1)), "error:g")
    out.append(Case("natural_gradient_step", "twin", "tensor types", "F-numpy",
                    lambda: dict(to_twin("natural_gradient_step", BASE["natural_gradient_step"]),
                                 F=SPD), "error:F"))
    out.append(Case("natural_gradient_step", "twin", "tensor types", "F-float32",
                    lambda: dict(to_twin("natural_gradient_step", BASE["natural_gradient_step"]),
                                 F=torch.tensor(SPD, dtype=torch.float32)), "error:F"))
    for fn, arg, bad in (("fisher_matrix", "p", np.array([0.5, 0.25, 0.5])),
                         ("expected_return", "pi", np.array([[0.5, 0.75], [0.25, 0.75]])),
                         ("fisher_matrix", "p", np.array([0.5, 0.75, -0.25]))):
        out += _both(fn, "unnormalised probabilities", f"{arg}={bad.tolist()}",
                     lambda fn=fn, arg=arg, bad=bad: _replace(fn, **{arg: bad}), f"error:{arg}")
    for fn, arg in (("kl_divergence", "q"), ("entropy", "p")):
        out += _both(fn, "unnormalised probabilities", f"{arg}-sums-to-1.25",
                     lambda fn=fn, arg=arg: _replace(fn, **{arg: _with(BASE[fn][arg], (0, 0),
                                                                       BASE[fn][arg][0, 0]
                                                                       + 0.25)}),
                     f"error:{arg}")
    return out


def overflow_cases() -> list[Case]:
    """Exact values beyond the largest float: inf, as documented — never OverflowError/NaN."""
    big = np.array([[1e4]]), np.array([[-1e4]])
    out = []
    for fn, values in (("importance_ratio", dict(logp=big[0], old_logp=big[1])),
                       ("geometric_mean_ratio", dict(logp=big[0], old_logp=big[1])),
                       ("kl_estimate", dict(logp=big[1], ref_logp=big[0], kind="k3"))):
        out += _both(fn, "overflow", "exp-beyond-float64", lambda values=values: values,
                     "inf")
    return out


def huge_cases() -> list[Case]:
    """T = 10^5 in float32 with γ = 1/2 on rewards 1, values 0: the exact returns are
    2 − 2^{−k} (k steps to the end of the row), all positive, so the condition term of
    refmath.bounds is the exact value itself and the bound is (5T + 10)·u₃₂·y."""
    out = []
    T = 100_000
    for name in ("td_errors", "discounted_returns", "n_step_returns", "gae",
                 "lambda_returns"):
        def make(name=name):
            v = {"rewards": torch.ones(1, T), "values": torch.zeros(1, T),
                 "next_values": torch.zeros(1, T), "gamma": 0.5, "lam": 1.0, "n": 3}
            return {k: x for k, x in v.items() if k in SPECS[name].parameters}

        out.append(Case(name, "twin", "huge T", "T=100000-float32", make, "huge"))
    return out


def all_cases() -> list[Case]:
    cases = []
    for name in rt.__all__:
        for gen in (shape_cases, nonfinite_cases, ignored_cases, flag_cases,
                    tensor_type_cases, view_cases, half_cases, shape_extreme_cases,
                    scalar_cases):
            cases += gen(name)
    return cases + matrix_cases() + overflow_cases() + huge_cases()


CASES = all_cases()


# --- the assertions ---------------------------------------------------------------------------
def _outcome(case: Case, values: dict[str, Any], side: str | None = None) -> tuple[str, Any]:
    try:
        return "value", call(case.name, side or case.side, values)
    except (ValueError, TypeError) as err:
        return "error", err


def _named(err: BaseException, arg: str) -> bool:
    text = str(err)
    return arg in text or (arg == "Avp" and "operator" in text)


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    """float64 against the oracle: 1e-12 relative to the result's scale (a few roundings of
    float64 arithmetic on inputs of size ≤ 4)."""
    if got.shape != want.shape:
        return False
    both_inf = np.isinf(want) & (got == want)
    scale = max(1.0, float(np.max(np.abs(want[np.isfinite(want)]), initial=0.0)))
    with np.errstate(invalid="ignore"):
        ok = both_inf | (np.abs(got - want) <= 1e-12 * scale)
    return bool(np.all(ok))


def _reference(case: Case) -> np.ndarray:
    """The clean input's result on the same side (the oracle: exact answer in float64)."""
    clean = to_oracle(case.name, BASE[case.name]) if case.side == "oracle" else to_twin(
        case.name, BASE[case.name])
    return as_numbers(call(case.name, case.side, clean))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case):
    kind, got = _outcome(case, case.make())
    if case.expect.startswith("error:"):
        arg = case.expect.split(":", 1)[1]
        assert kind == "error", f"{case.id}: expected an error naming {arg}, got {got!r}"
        assert _named(got, arg), f"{case.id}: the error does not name {arg}: {got}"
        return
    if case.expect == "agree":
        oracle_kind, oracle = _outcome(case, to_oracle(case.name, (
            case.make() if case.side == "oracle" else _twin_as_numpy(case))), side="oracle")
        if case.side == "oracle":
            if kind == "error":  # the contract: a named error, never a raw one
                assert any(_named(got, a) for a in SPECS[case.name].parameters), got
            else:
                assert np.all(~np.isnan(as_numbers(got))), f"{case.id}: NaN"
            return
        assert kind == oracle_kind, (f"{case.id}: the twin gave {kind} ({got!r}) where the "
                                     f"oracle gave {oracle_kind} ({oracle!r})")
        if kind == "error":
            named = [a for a in SPECS[case.name].parameters if _named(oracle, a)]
            assert any(_named(got, a) for a in named), f"{case.id}: {got} vs oracle {oracle}"
        else:
            assert _close(as_numbers(got), as_numbers(oracle)), (case.id, got, oracle)
        return
    assert kind == "value", f"{case.id}: expected a result, got {type(got).__name__}: {got}"
    out = as_numbers(got)
    if case.expect == "clean":
        assert _close(out, _reference(case)), f"{case.id}: {out} vs {_reference(case)}"
    elif case.expect == "inf":
        assert np.all(np.isposinf(out)), f"{case.id}: {out}"
    elif case.expect == "huge":
        _assert_huge(case, got)
    elif case.dtype is not None:
        _assert_half(case, got)
    else:
        want = as_numbers(call(case.name, "twin", case.reference()))
        assert _close(out, want), f"{case.id}: {out} vs {want}"


def _twin_as_numpy(case: Case) -> dict[str, Any]:
    """The twin case's arguments as the oracle takes them (operators rebuilt for the oracle)."""
    values = case.make()
    out = {}
    for k, v in values.items():
        if _is_operator(case.name, k):
            out[k] = BASE[case.name][k]
        elif isinstance(v, torch.Tensor):  # exactly, also from bfloat16
            t = v.detach().cpu()
            out[k] = (t.double() if t.is_floating_point() else t).numpy()
        else:
            out[k] = v
    return out


def _assert_half(case: Case, got: Any) -> None:
    """The result in the half dtype, equal to the float32 computation rounded once: the exact
    answer on the same (half-rounded) numbers within one half ulp plus the float32 error."""
    result = got[0] if isinstance(got, tuple) else got
    assert result.dtype == case.dtype, f"{case.id}: dtype {result.dtype}"
    numbers = {k: (v.double().numpy() if isinstance(v, torch.Tensor) and v.is_floating_point()
                   else v) for k, v in _twin_as_numpy(case).items()}
    want = as_numbers(call(case.name, "oracle", to_oracle(case.name, numbers)))
    u = torch.finfo(case.dtype).eps / 2
    out = as_numbers(got)
    scale = np.abs(want) + 1e-3 * max(1.0, float(np.max(np.abs(want), initial=0.0)))
    assert np.all(np.abs(out - want) <= 2 * u * scale), f"{case.id}: {out} vs {want}"


def _assert_huge(case: Case, got: torch.Tensor) -> None:
    from refmath.bounds import recursion_bound

    T = got.shape[-1]
    values = case.make()
    exact = as_numbers(call(case.name, "oracle", {k: (v.double().numpy() if isinstance(
        v, torch.Tensor) else v) for k, v in values.items()}))
    assert got.dtype == torch.float32 and got.shape == (1, T)
    err = np.abs(as_numbers(got) - exact)
    assert np.all(err <= recursion_bound(np.abs(exact), T, torch.float32)), err.max()


def test_matrix_size_and_classes():
    """At least 300 cases, every public function (35 twins) in it on both sides."""
    assert len(CASES) >= 300
    assert {c.name for c in CASES} == set(rt.__all__)
    assert {c.side for c in CASES} == {"oracle", "twin"}


if __name__ == "__main__":
    counts = Counter(c.cls for c in CASES)
    for cls, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{n:5d}  {cls}")
    print(f"{len(CASES):5d}  total over {len({c.name for c in CASES})} functions")
