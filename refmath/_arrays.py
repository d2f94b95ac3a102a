"""Input handling shared by every oracle: exactness, shapes, validation, rows, compression.

The oracles compute in one of three *modes*, chosen from the inputs:

* ``"float"``: every numeric input is a float (Python, NumPy or anything ``np.asarray`` turns
  into a float array). The oracle computes in float64 and returns a float64 array.
* ``"exact"``: some input is a :class:`fractions.Fraction` (or everything is an integer). Every
  number is converted exactly to ``Fraction`` (``Fraction(0.1)`` is the exact binary value of
  the float), and the result is an object array of ``Fraction``.
* ``"symbolic"``: some input is a SymPy object. Every number becomes an exact SymPy number and
  the result is an object array of SymPy expressions.

Validation follows SPEC §1 "Bad input": a ``ValueError``/``TypeError`` that names the argument.
"""

from __future__ import annotations

import math
from fractions import Fraction
from numbers import Integral, Real
from typing import Annotated, Any, Callable, Iterator, Sequence, get_args, get_origin

import numpy as np
import sympy

__all__ = ["Array", "is_array", "Prepared", "prepare", "map_rows", "check_unit_interval",
           "check_positive_int"]


class _ArrayParameter:
    """The tag of :data:`Array` (what the checker reads to know a parameter is an array)."""

    def __repr__(self) -> str:
        return "array"


ARRAY = _ArrayParameter()
# An array of numbers: a NumPy array, nested lists, of floats, Fractions or SymPy numbers.
# The one array type of every oracle: ``typing.get_type_hints(oracle, include_extras=True)``
# tells the checker which parameters are arrays (refmath.checks.specs), not a string.
Array = Annotated[Any, ARRAY]


def is_array(hint: Any) -> bool:
    """Whether a resolved annotation is :data:`Array` (or ``Array | None``)."""
    if get_origin(hint) is Annotated:
        return ARRAY in hint.__metadata__
    return any(is_array(arg) for arg in get_args(hint))


def _elements(x: Any) -> Iterator[Any]:
    arr = np.asarray(x, dtype=object)
    return iter(arr.reshape(-1))


def _kind(x: Any) -> str:
    """'symbolic', 'exact' or 'float' for one input (scalar or array-like)."""
    arr = np.asarray(x) if not isinstance(x, sympy.Basic) else None
    if arr is not None and arr.dtype.kind == "f":
        return "float"
    if arr is not None and arr.dtype.kind in "iub":
        return "exact"
    kinds = set()
    for e in _elements(x):
        if isinstance(e, sympy.Basic):
            kinds.add("symbolic")
        elif isinstance(e, (Fraction, Integral, np.integer, np.bool_)):
            kinds.add("exact")
        elif isinstance(e, (float, np.floating)):
            kinds.add("float")
        else:
            raise TypeError(f"unsupported number type {type(e).__name__!r}")
    if "symbolic" in kinds:
        return "symbolic"
    if "float" in kinds:
        return "float" if "exact" not in kinds else "mixed"
    return "exact"


def _mode(numeric: dict[str, Any]) -> str:
    kinds = set()
    for name, x in numeric.items():
        if x is None:
            continue
        try:
            kinds.add(_kind(x))
        except TypeError as err:
            raise TypeError(f"{name}: {err}") from None
    if "symbolic" in kinds:
        return "symbolic"
    if "mixed" in kinds or ("exact" in kinds and "float" in kinds):
        # Fractions mixed with floats: the floats are converted exactly, nothing is rounded.
        has_fraction = any(
            isinstance(e, Fraction)
            for x in numeric.values()
            if x is not None
            for e in _elements(x)
        )
        return "exact" if has_fraction else "float"
    if kinds == {"exact"}:
        return "exact"
    return "float"


def _convert(x: Any, mode: str) -> np.ndarray:
    if mode == "float":
        return np.asarray(x, dtype=np.float64)
    arr = np.array(x, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    for idx, e in np.ndenumerate(arr):
        out[idx] = _to_exact(e, mode)
    return out


def _to_exact(e: Any, mode: str) -> Any:
    if isinstance(e, sympy.Basic):
        return e
    if isinstance(e, (np.bool_, bool)):
        e = int(e)
    if isinstance(e, (np.integer,)):
        e = int(e)
    if isinstance(e, (float, np.floating)):
        if not math.isfinite(float(e)):
            return float(e)  # rejected later by the finiteness check, naming the argument
        e = Fraction(float(e))
    frac = Fraction(e)
    return sympy.Rational(frac.numerator, frac.denominator) if mode == "symbolic" else frac


def _zero(mode: str) -> Any:
    return {"float": 0.0, "exact": Fraction(0), "symbolic": sympy.Integer(0)}[mode]


def _is_number(e: Any) -> bool:
    return not (isinstance(e, sympy.Basic) and not e.is_number)


def _finite(e: Any) -> bool:
    if isinstance(e, sympy.Basic):
        return not e.is_number or bool(e.is_finite)
    if isinstance(e, Fraction):
        return True
    return math.isfinite(float(e))


def check_unit_interval(name: str, x: Any) -> None:
    """Raise ``ValueError`` unless every numeric element of ``x`` lies in [0, 1]."""
    for e in _elements(x):
        if isinstance(e, bool) or not _is_number(e):
            continue
        if not isinstance(e, (Real, sympy.Basic, np.number)):
            raise TypeError(f"{name} must be a real number, got {type(e).__name__}")
        if not _finite(e) or not (0 <= e <= 1):
            raise ValueError(f"{name} must lie in [0, 1], got {e}")


def check_bool(name: str, value: Any) -> bool:
    """A boolean option: True/False only (``0.5`` or ``2`` is a usage mistake)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def plain(name: str, x: Any) -> Any:
    """An array-like the oracles can read: a torch tensor (even one that requires grad, or
    a bfloat16 one) becomes its NumPy values, exactly (every float dtype widens to float64
    without rounding). Torch is never imported here: the tensor is recognised by type."""
    if type(x).__module__.split(".")[0] != "torch" or not hasattr(x, "detach"):
        return x
    if getattr(x, "is_meta", False):
        raise ValueError(f"{name} is a meta tensor (shape only, no numbers)")
    t = x.detach().cpu()
    if t.is_complex():
        raise TypeError(f"{name} must be real, got dtype {t.dtype}")
    return (t.double() if t.is_floating_point() else t).numpy()


def check_positive_int(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (Integral, np.integer)):
        raise TypeError(f"{name} must be an integer >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {n}")
    return int(n)


def _flags(name: str, x: Any, shape: tuple[int, ...], default: bool) -> np.ndarray:
    if x is None:
        return np.full(shape, default, dtype=bool)
    arr = np.asarray(x)
    if arr.shape != shape:
        raise ValueError(
            f"{name} has shape {arr.shape} but rewards has shape {shape}: "
            "per-step inputs must all have the same shape [..., T]"
        )
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must hold booleans or 0/1") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold booleans or 0/1, got dtype {arr.dtype}")
    if arr.dtype.kind != "b" and not np.all((arr == 0) | (arr == 1)):
        raise ValueError(f"{name} must contain only 0 and 1 (or booleans)")
    return arr.astype(bool)


class Prepared:
    """Validated inputs of one oracle call: per-step arrays of one shape, flags, mode."""

    def __init__(self, mode: str, shape: tuple[int, ...], arrays: dict[str, np.ndarray],
                 flags: dict[str, np.ndarray], scalars: dict[str, Any]):
        self.mode, self.shape, self.arrays, self.flags, self.scalars = (
            mode, shape, arrays, flags, scalars)

    def empty(self, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """An output array: float64 in float mode, object (Fractions/SymPy) otherwise."""
        return np.empty(self.shape if shape is None else shape,
                        dtype=np.float64 if self.mode == "float" else object)

    @property
    def zero(self) -> Any:
        """An exact 0 of the mode (float, Fraction or SymPy), also for empty inputs."""
        return _zero(self.mode)

    def zeros(self) -> np.ndarray:
        if self.mode == "float":
            return np.zeros(self.shape, dtype=np.float64)
        out = np.empty(self.shape, dtype=object)
        out.fill(_zero(self.mode))
        return out


def prepare(
    steps: dict[str, Any],
    *,
    gamma: Any = None,
    scalars: dict[str, Any] | None = None,
    flags: dict[str, Any] | None = None,
) -> Prepared:
    """Validate and convert the inputs of an oracle.

    ``steps`` maps argument names to per-step arrays (the first one, ``rewards``, fixes the
    shape ``[..., T]``; ``None`` entries are skipped). ``gamma`` is broadcast to that shape.
    ``scalars`` (e.g. ``lam``) must lie in [0, 1]. ``flags`` are boolean per-step arrays;
    ``mask`` defaults to all ones, the others to all zeros.
    """
    scalars = {k: plain(k, v) for k, v in (scalars or {}).items()}
    flags = {k: plain(k, v) for k, v in (flags or {}).items()}
    steps = {k: plain(k, v) for k, v in steps.items()}
    gamma = plain("gamma", gamma)
    numeric = {k: v for k, v in steps.items() if v is not None}
    numeric_all = dict(numeric, gamma=gamma, **scalars)
    mode = _mode(numeric_all)
    ref_name = next(iter(steps))
    arrays = {k: _convert(v, mode) for k, v in numeric.items()}
    shape = arrays[ref_name].shape
    if len(shape) == 0:
        raise ValueError(f"{ref_name} must have a time axis: shape [..., T], got a scalar")
    if shape[-1] == 0:
        raise ValueError(f"{ref_name} has an empty time axis (T = 0)")
    for k, a in arrays.items():
        if a.shape != shape:
            raise ValueError(
                f"{k} has shape {a.shape} but {ref_name} has shape {shape}: "
                "per-step inputs must all have the same shape [..., T]"
            )
    if gamma is not None:
        g = _convert(gamma, mode)
        check_unit_interval("gamma", g)
        try:
            arrays["gamma"] = np.broadcast_to(g, shape)
        except ValueError:
            raise ValueError(
                f"gamma has shape {g.shape}, which does not broadcast to {shape}"
            ) from None
    converted = {}
    for k, v in scalars.items():
        c = _convert(v, mode)
        if c.shape != ():
            raise ValueError(f"{k} must be a scalar, got shape {c.shape}")
        check_unit_interval(k, c)
        converted[k] = c.item()
    flag_arrays = {
        k: _flags(k, v, shape, default=(k == "mask")) for k, v in flags.items()
    }
    prepared = Prepared(mode, shape, arrays, flag_arrays, converted)
    _check_finite(prepared)
    return prepared


def _check_finite(p: Prepared, allow_inf: tuple[str, ...] = ()) -> None:
    """Non-finite numbers are rejected where they are used (present, non-ignored steps);
    the arrays named in ``allow_inf`` may hold +inf (float mode: an overflowed ratio)."""
    used = p.flags.get("mask", np.ones(p.shape, dtype=bool))
    terminated = p.flags.get("terminated", np.zeros(p.shape, dtype=bool))
    for name, a in p.arrays.items():
        where = used & ~terminated if name == "next_values" else used
        if p.mode == "float":  # plain floats: one vectorized test (validation, not the math)
            a64 = np.asarray(a, dtype=np.float64)
            ok = np.isfinite(a64) | (np.isposinf(a64) if name in allow_inf else False)
            bad = np.argwhere(where & ~ok)
            if len(bad):
                idx = tuple(int(i) for i in bad[0])
                raise ValueError(f"{name} is not finite at index {idx}: {a[idx]}")
            continue
        for idx in np.ndindex(p.shape):
            if where[idx] and not _finite(a[idx]):
                raise ValueError(
                    f"{name} is not finite at index {tuple(int(i) for i in idx)}: {a[idx]}"
                )


RowFn = Callable[..., Sequence[Any]]


def map_rows(p: Prepared, row_fn: RowFn, names: Sequence[str], **kwargs: Any) -> np.ndarray:
    """Apply ``row_fn`` to every row, after deleting the masked steps (SPEC §1 "Masks").

    ``row_fn`` receives, as keyword arguments, the compressed rows (Python lists) of the
    arrays named in ``names`` and of the flags (``terminated``, ``truncated`` when given),
    plus ``kwargs``; it returns one value per compressed step. Results are written back to
    the surviving positions; masked positions of the output are 0.
    """
    out = p.zeros()
    mask = p.flags.get("mask", np.ones(p.shape, dtype=bool))
    for idx in np.ndindex(p.shape[:-1]):
        keep = [t for t in range(p.shape[-1]) if mask[idx + (t,)]]
        if not keep:
            continue
        rows = {
            n: [p.arrays[n][idx + (t,)] if n in p.arrays else None for t in keep]
            for n in names
        }
        for f in ("terminated", "truncated"):
            if f in p.flags:
                rows[f] = [bool(p.flags[f][idx + (t,)]) for t in keep]
        result = row_fn(**rows, **kwargs)
        for t, value in zip(keep, result):
            out[idx + (t,)] = value
    return out


def prepare_arrays(arrays: dict[str, Any], *, flags: dict[str, Any] | None = None,
                   numbers: dict[str, Any] | None = None, min_ndim: int = 1,
                   allow_inf: tuple[str, ...] = ()) -> Prepared:
    """Validate same-shape arrays (the first fixes the shape) plus scalar ``numbers``.

    Like :func:`prepare` but for the elementwise and reduction functions of SPEC §3–4: the
    scalars are only converted to the mode (each function checks its own range).
    """
    numbers = {k: plain(k, v) for k, v in (numbers or {}).items() if v is not None}
    arrays = {k: plain(k, v) for k, v in arrays.items()}
    flags = {k: plain(k, v) for k, v in (flags or {}).items()}
    present = {k: v for k, v in arrays.items() if v is not None}
    mode = _mode(dict(present, **numbers))
    converted = {k: _convert(v, mode) for k, v in present.items()}
    ref_name = next(iter(arrays))
    shape = converted[ref_name].shape
    if len(shape) < min_ndim:
        raise ValueError(f"{ref_name} must have at least {min_ndim} axis/axes, got shape {shape}")
    if min_ndim and shape[-1] == 0:
        raise ValueError(f"{ref_name} has an empty last axis")
    for k, a in converted.items():
        if a.shape != shape:
            raise ValueError(f"{k} has shape {a.shape} but {ref_name} has shape {shape}: "
                             "the inputs must all have the same shape")
    scalars = {}
    for k, v in numbers.items():
        c = _convert(v, mode)
        if c.shape != ():
            raise ValueError(f"{k} must be a scalar, got shape {c.shape}")
        if not _finite(c.item()):
            raise ValueError(f"{k} must be finite, got {c.item()}")
        scalars[k] = c.item()
    flag_arrays = {k: _flags(k, v, shape, default=(k == "mask"))
                   for k, v in (flags or {}).items()}
    p = Prepared(mode, shape, converted, flag_arrays, scalars)
    _check_finite(p, allow_inf)
    return p


def check_nonnegative(name: str, x: Any, *, strict: bool = False) -> None:
    """Raise ``ValueError`` unless the number ``x`` is ≥ 0 (> 0 with ``strict``)."""
    if isinstance(x, sympy.Basic) and not x.is_number:
        return
    bad = (x <= 0) if strict else (x < 0)
    if bad:
        raise ValueError(f"{name} must be {'positive' if strict else 'non-negative'}, got {x}")


def exp(x: Any) -> Any:
    """e^x: float for floats (``inf`` where e^x exceeds the largest float, as documented),
    an exact SymPy number for Fractions and SymPy input."""
    if isinstance(x, (float, np.floating)):
        try:
            return math.exp(x)
        except OverflowError:
            return math.inf
    return sympy.exp(_sym(x))


def log(x: Any) -> Any:
    """Natural log: float for floats (−inf at 0), exact SymPy for Fractions and SymPy."""
    if isinstance(x, (float, np.floating)):
        return math.log(x) if x > 0 else -math.inf
    return sympy.log(_sym(x))


def sqrt(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return math.sqrt(x)
    return sympy.sqrt(_sym(x))


def _sym(x: Any) -> Any:
    if isinstance(x, Fraction):
        return sympy.Rational(x.numerator, x.denominator)
    return sympy.sympify(x)
