"""Check formula claims: a ledger of statements from RL notes, blogs and papers, each with an
exact verdict and its evidence, and an API to check your own.

A :class:`Claim` is a statement (prose + source), a check (Python code in this package —
never ``eval`` of a user string) and the verdict it is expected to get. Running the check
gives a :class:`Verdict`: ``TRUE``, ``FALSE`` (with the correct value or a counterexample),
``TRUE UNDER CONDITIONS`` (with the conditions), or ``UNPROVEN`` (no proof and no
counterexample found).

Check your own claim in two lines::

    from refmath.claims import check_identity
    print(check_identity(lambda a, b: (a + b)**2, lambda a, b: a**2 + b**2))   # FALSE, a=…, b=…

Requires only NumPy and SymPy (no torch).
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import sympy

from ..exact import is_zero

__all__ = ["Verdict", "Claim", "LEDGER", "claim", "check_value", "check_identity", "all_claims",
           "TRUE", "FALSE", "CONDITIONAL", "UNPROVEN"]

TRUE, FALSE, CONDITIONAL, UNPROVEN = "TRUE", "FALSE", "TRUE UNDER CONDITIONS", "UNPROVEN"


@dataclass
class Verdict:
    status: str
    evidence: str
    value: Any = None
    counterexample: dict[str, Any] | None = None
    conditions: str = ""
    headline: str = ""  # the one line a table shows, when the value alone says too little

    def __str__(self) -> str:
        lines = [self.status]
        if self.conditions:
            lines.append(f"conditions: {self.conditions}")
        lines.append(self.evidence)
        if self.counterexample is not None:
            lines.append("counterexample: " + ", ".join(f"{k} = {v}" for k, v in
                                                        self.counterexample.items()))
        return "\n".join(lines)

    def __bool__(self) -> bool:
        return self.status in (TRUE, CONDITIONAL)

    def headed(self, headline: str) -> "Verdict":
        """This verdict with the one-line ``headline`` a table shows."""
        self.headline = headline
        return self

    def summary(self) -> str:
        """The one line a table shows: the exact value, the counterexample or the
        conditions (else the start of the evidence)."""
        if self.headline:
            return self.headline
        if self.status == CONDITIONAL and self.conditions:
            return "if " + self.conditions
        if self.counterexample:
            return "counterexample: " + ", ".join(f"{k} = {v}" for k, v in
                                                  self.counterexample.items())
        if self.value is not None:
            return f"exact: {self.value}"
        return self.evidence

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.status, "evidence": self.evidence,
                "value": None if self.value is None else str(self.value),
                "counterexample": self.counterexample, "conditions": self.conditions,
                "summary": self.summary()}


@dataclass(frozen=True)
class Claim:
    """A statement, where it comes from, and its check.

    ``judges``: the refmath oracles (``"module.function"`` under ``refmath``) whose behaviour
    the statement is about — its evidence must not call them (``tests/test_claims.py`` runs
    the check with each of them replaced by one that raises). ``excerpt``: the source passage
    (for the study notes: the original Chinese and its translation). ``expected`` is the
    verdict the test suite holds the claim to, not something shown to users."""

    id: str
    source: str
    statement: str
    expected: str
    check: Callable[[], Verdict] = field(compare=False)
    judges: tuple[str, ...] = ()
    excerpt: tuple[str, str] | None = None

    def run(self) -> Verdict:
        return self.check()

    def to_dict(self, verdict: Verdict | None = None) -> dict[str, Any]:
        v = verdict or self.run()
        return {"id": self.id, "source": self.source, "statement": self.statement,
                **v.to_dict(), "excerpt": None if self.excerpt is None else {
                    "original": self.excerpt[0], "translation": self.excerpt[1]}}


LEDGER: dict[str, Claim] = {}


def claim(id: str, *, source: str, statement: str, expected: str,
          judges: tuple[str, ...] = (), excerpt: str | None = None):
    """Decorator: register ``check() -> Verdict`` as a ledger claim. ``excerpt`` names a
    passage of :mod:`refmath.claims.excerpts`."""

    def wrap(check: Callable[[], Verdict]) -> Callable[[], Verdict]:
        from .excerpts import EXCERPTS

        if id in LEDGER:
            raise ValueError(f"duplicate claim id {id!r}")
        if excerpt is not None and excerpt not in EXCERPTS:
            raise ValueError(f"claim {id!r}: no excerpt {excerpt!r}")
        LEDGER[id] = Claim(id, source, statement, expected, check, tuple(judges),
                           EXCERPTS.get(excerpt) if excerpt else None)
        return check

    return wrap


def all_claims() -> dict[str, Claim]:
    """The whole ledger (``refmath/claims/ledger.py``), by claim id."""
    from . import estimation, language_models, ledger, trust_regions  # noqa: F401  (registration side effects)

    return LEDGER


# --- the user API ---------------------------------------------------------------------------

def _exact(x: Any) -> Any:
    if isinstance(x, (float, np.floating)):
        return sympy.Rational(Fraction(float(x)).numerator, Fraction(float(x)).denominator)
    if isinstance(x, Fraction):
        return sympy.Rational(x.numerator, x.denominator)
    return sympy.sympify(x)


def check_value(value: Any, expected: Any, tolerance: Any, *,
                alternatives: Mapping[str, Any] | None = None,
                unit: str = "") -> Verdict:
    """Is the exact ``value`` within ``tolerance`` of the quoted ``expected`` number?

    ``value`` is a number or SymPy expression (or a zero-argument callable giving one),
    computed exactly; ``tolerance`` is what the quoted precision allows (e.g. 0.005 for a
    number quoted to two decimals). ``alternatives`` maps a description (another log base,
    the other KL direction, …) to its exact value; the verdict says which, if any, would
    make the quoted number right.
    """
    if callable(value):
        value = value()
    exact = _exact(value)
    numeric = float(sympy.N(exact, 30))
    ok = abs(numeric - float(expected)) <= float(tolerance)
    evidence = f"exact value {exact} = {numeric:.6g}{(' ' + unit) if unit else ''}; quoted " \
               f"{expected} (± {tolerance})"
    if not ok and alternatives:
        matches = [name for name, alt in alternatives.items()
                   if abs(float(sympy.N(_exact(alt), 30)) - float(expected)) <= float(tolerance)]
        listed = "; ".join(f"{name}: {float(sympy.N(_exact(alt), 30)):.6g}"
                           for name, alt in alternatives.items())
        evidence += f". Alternatives — {listed}. " + (
            f"The quoted number matches: {', '.join(matches)}." if matches
            else "None of them gives the quoted number.")
    return Verdict(TRUE if ok else FALSE, evidence, value=exact)


def _symbols(names: Sequence[str], assumptions: Mapping[str, Any]) -> list[sympy.Symbol]:
    out = []
    for n in names:
        kind = assumptions.get(n)
        kw = {"real": True}
        if kind == "positive" or (isinstance(kind, tuple) and kind[0] > 0):
            kw["positive"] = True
        elif kind == "nonnegative" or (isinstance(kind, tuple) and kind[0] >= 0):
            kw["nonnegative"] = True
        out.append(sympy.Symbol(n, **kw))
    return out


def _draw(name: str, assumptions: Mapping[str, Any], rng: random.Random) -> Fraction:
    kind = assumptions.get(name)
    if isinstance(kind, tuple):
        lo, hi = (Fraction(x) for x in kind)
        return lo + (hi - lo) * Fraction(rng.randint(0, 64), 64)
    x = Fraction(rng.randint(-64, 64), rng.choice([1, 2, 4, 8, 3]))
    if kind == "positive":
        return abs(x) + Fraction(1, 8)
    if kind == "nonnegative":
        return abs(x)
    return x


def _evaluate(f: Any, args: Sequence[Any]) -> np.ndarray:
    out = f(*args) if callable(f) else f
    return np.asarray(out, dtype=object).reshape(-1)


def _logs_not_shown_positive(diff: np.ndarray, syms: list[sympy.Symbol], names: Sequence[str],
                             assumptions: Mapping[str, Any]) -> list[Any]:
    """The arguments of the logs in ``diff`` that SymPy cannot show positive. A proof by
    :func:`refmath.exact.is_zero` splits logs of products and powers (``force=True``), which
    holds where those arguments are positive. An interval assumption ``(lo, hi)`` is made
    explicit first: x = lo + (hi − lo)·t/(1 + t) with t > 0 spans (lo, hi), so 1 − x for x in
    (0, 1) becomes 1/(1 + t), positive."""
    subs = {}
    for sym, name in zip(syms, names):
        kind = assumptions.get(name)
        if isinstance(kind, tuple):
            t = sympy.Symbol(f"_{name}_t", positive=True)
            lo, hi = (sympy.Rational(Fraction(x)) for x in kind)
            subs[sym] = lo + (hi - lo) * t / (1 + t)
    unsure = []
    for arg in {lg.args[0] for d in diff for lg in sympy.sympify(d).atoms(sympy.log)}:
        if arg.is_positive or sympy.simplify(arg.subs(subs)).is_positive:
            continue
        unsure.append(arg)
    return sorted(unsure, key=str)


def check_identity(lhs: Any, rhs: Any, symbols: Sequence[str] | None = None,
                   assumptions: Mapping[str, Any] | None = None, *, trials: int = 200,
                   seed: int = 0) -> Verdict:
    """Does ``lhs == rhs`` hold for all values of the symbols?

    ``lhs``/``rhs`` are callables of the symbols (their parameter names are the symbols when
    ``symbols`` is not given) returning numbers, SymPy expressions or arrays (e.g. refmath
    oracles called on symbolic sequences), or SymPy expressions. ``assumptions`` maps a symbol
    to ``"positive"``, ``"nonnegative"`` or an interval ``(lo, hi)``. First SymPy tries to
    prove the difference is 0 (TRUE, with the proof); otherwise exact random rationals drawn
    under the assumptions look for a counterexample (FALSE, with it); otherwise UNPROVEN.
    """
    assumptions = dict(assumptions or {})
    if symbols is None:
        source = lhs if callable(lhs) else rhs
        symbols = list(inspect.signature(source).parameters) if callable(source) else sorted(
            {s.name for e in (lhs, rhs) for s in sympy.sympify(e).free_symbols})
    syms = _symbols(symbols, assumptions)
    note = ""
    try:
        diff = _evaluate(lhs, syms) - _evaluate(rhs, syms)
    except Exception as err:  # noqa: BLE001 - a function that cannot take SymPy symbols
        # (TypeError, ValueError, or an AttributeError such as Symbol.numerator): the exact
        # rational points below still decide FALSE, or leave it UNPROVEN
        diff = None
        note = (f" (no symbolic proof attempted: a side does not accept SymPy symbols — "
                f"{type(err).__name__}: {err})")
    unsure: list[Any] = []  # log arguments a proof needs positive and SymPy cannot show so
    if diff is not None and all(is_zero(d) or is_zero(sympy.simplify(d)) for d in diff):
        unsure = _logs_not_shown_positive(diff, syms, symbols, assumptions)
        if not unsure:
            return Verdict(TRUE, "proven symbolically: SymPy reduces lhs − rhs to 0 for all "
                           + ", ".join(symbols)
                           + (f" under {assumptions}" if assumptions else ""))
    rng = random.Random(seed)
    for _ in range(trials):
        values = {n: _draw(n, assumptions, rng) for n in symbols}
        args = [sympy.Rational(v.numerator, v.denominator) for v in values.values()]
        try:
            d = _evaluate(lhs, args) - _evaluate(rhs, args)
        except (ZeroDivisionError, ValueError):
            continue
        nonzero = [x for x in d if not is_zero(x)]
        if nonzero:
            return Verdict(FALSE, f"lhs − rhs = {nonzero[0]} ≠ 0 at exact rational values"
                           + note,
                           value=nonzero[0], counterexample={k: str(v) for k, v in
                                                             values.items()})
    if unsure:
        conditions = "every log argument positive: " + ", ".join(f"{a} > 0" for a in unsure)
        return Verdict(CONDITIONAL, "proven symbolically with log(xy) = log x + log y and "
                       "log(x^k) = k·log x (expand_log(force=True)), valid where " + conditions
                       + f"; {trials} exact random rational points found no counterexample",
                       conditions=conditions)
    return Verdict(UNPROVEN, ("SymPy did not reduce lhs − rhs to 0" if diff is not None else
                              "no symbolic proof") + f", and {trials} exact random rational "
                   "points found no counterexample" + note)
