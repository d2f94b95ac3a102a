"""The machinery of a check: what it is, what it reads, what it reports, and how it runs.

A :class:`Check` has a stable id (``gae.float32``, ``gae.jacobian``, ``identity.gae_summed``),
the kind of function it applies to (``gae``, ``discounted_returns``, … or ``identities`` for
checks of refmath's own oracles), a one-line summary, and a function ``func(fn, ctx)`` that
raises :class:`CheckFailure` when ``fn`` violates the property. :func:`run_check` turns that
into a :class:`CheckResult` (fields, JSON-serialisable).

Everything a check needs travels in one explicit :class:`Context` (capabilities, the
reproduction target, the Hypothesis profile, seed and example count, the per-call timeout,
the counterexamples found so far in this run): no global state, and no global Hypothesis
profile is ever registered or loaded here (see :mod:`refmath.profiles`).

The family modules (``steps``, ``policy``, ``trust``, ``identities``, ``lm``, ``off_policy``)
each build their :class:`CheckList` from this module alone; the registry
(:mod:`refmath.checks`) collects them by one explicit call. Importing this module imports
hypothesis only lazily; the family modules import torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import time
from dataclasses import dataclass, field, fields
from typing import Any, Callable

__all__ = ["Check", "CheckList", "CheckResult", "CheckFailure", "Context", "Capabilities",
           "Target", "Tracker", "NotApplicable", "UsageError", "TIERS", "run_check", "suggest"]

# What a failed check means, in the order a user weighs them: a wrong value or gradient; a
# number SPEC says is ignored leaking, a batch row depending on another; an input modified, a
# dtype not kept; bad input not named. (A value check's IMPRECISE failure is reported in the
# "precision" tier: beyond the derived bound, within 1e-5 of the result's scale.)
TIERS = ("correctness", "robustness", "hygiene", "validation")


class UsageError(ValueError):
    """A mistake in how refmath was asked to check (unknown kind, profile, target): exit 2."""


class CheckFailure(AssertionError):
    """Raised inside a check when the function under test violates the property.

    The keyword fields (``tier``, ``worst``, ``yours``, ``exact``, ``bound``,
    ``counterexample``, ``reproduction``, ``causes``, ``example``) are copied into the
    :class:`CheckResult`; ``example`` (the failing input as the check's keyword arguments)
    lets later checks of the same run try it first instead of searching again;
    ``diagnosis`` (a thunk returning the matching known mistakes) is run once, on the final
    counterexample, and replaces the :data:`LIKELY` marker of the message."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class NotApplicable(Exception):
    """Raised by a check that does not apply (declared capability missing)."""


@dataclass(frozen=True)
class Capabilities:
    """What the function under test declares it supports (all True for refmath's own).

    A check that needs an undeclared capability is reported "not applicable (declared)";
    the random inputs of the other checks are drawn without the undeclared features
    (no truncation flags, no masks, one scalar gamma, consistent next_values, [B, T] only).
    """

    truncated: bool = True  # distinguishes truncation from termination
    mask: bool = True  # takes a mask (compression semantics)
    per_step_gamma: bool = True  # gamma may be a per-step array
    batch: bool = True  # any number of leading batch axes (else exactly [B, T])
    inconsistent_values: bool = True  # reads next_values (else only values[t + 1])
    gradients: bool = True  # differentiable with torch autograd
    validates_input: bool = True  # raises on bad input (SPEC §1)
    flags: bool = True  # takes terminated/truncated (else: every row ends terminally at its
    # last present step, as token-level RLHF code has it: no bootstrap at the response end)
    half: bool = True  # takes float16/bfloat16 tensors (SPEC §1: computed in float32, rounded
    # once to the input dtype)

    def missing(self, required: frozenset[str]) -> list[str]:
        return [r for r in sorted(required) if not getattr(self, r)]

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass(frozen=True)
class Target:
    """How a reproduction snippet imports and calls the function under test."""

    imports: str
    callee: str


@dataclass
class Tracker:
    """What a check saw across its examples."""

    examples: int = 0
    worst_ratio: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # reason → inputs left out

    def saw(self, ratio: float = 0.0) -> None:
        self.examples += 1
        self.worst_ratio = max(self.worst_ratio, float(ratio))

    def skip(self, reason: str) -> None:
        """An input the check cannot use, and why (a check that uses none of its inputs is
        not applicable for that reason, never failed and never passed)."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


@dataclass(frozen=True)
class Context:
    """Everything a check needs besides the function: passed explicitly to every check."""

    capabilities: Capabilities = Capabilities()
    target: Target | None = None
    profile: str = "ci"
    seed: int | None = None
    max_examples: int | None = None
    timeout: float | None = None
    tracker: Tracker = field(default_factory=Tracker)
    # failing inputs found by earlier checks of this run, by kind: tried first by later ones
    known: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # option values the function supports (--only, or fixed by a layout): inputs use only these
    only: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    # accepts(kind, values): whether the function's layout can express an input at all
    accepts: Callable[[str, dict[str, Any]], bool] | None = None
    layout: str | None = None  # the built-in layout the function is written in
    wrap: Callable[[Callable], Callable] | None = None  # layout function → SPEC signature
    # the declared compute precision ("float32"): value checks allow that precision's bound
    computes_in: str | None = None
    # SPEC extensions of the oracle (FunctionSpec.extensions) the function does not take
    declined: frozenset[str] = frozenset()
    # adjust(case): the input as the library sees it, in SPEC's options (a layout's semantics)
    adjust: Callable[[Any], Any] | None = None
    # checked against a library's own semantics (a derived row), not SPEC's formula
    derived: bool = False
    # post(exact, bound, mask, u) -> (exact, bound): a library's step after SPEC's per-step
    # function (verl whitens its GAE), applied to the oracle's answer and to the bound
    post: Callable[..., tuple[Any, Any]] | None = None

    def gradcheck_tolerances(self, eps: float, atol: float, rtol: float
                             ) -> tuple[float, float, float]:
        """(eps, atol, rtol) for torch.autograd.gradcheck: the given float64 ones, or, for a
        function declared to compute in float32, a step far above float32's resolution
        (finite differences of 1e-7 would measure its rounding, not its slope)."""
        if self.computes_in == "float32":
            return 1e-3, 1e-2, 1e-2
        return eps, atol, rtol

    def bound_dtype(self, dtype: Any) -> Any:
        """The dtype whose error bound applies to a value check run in ``dtype``: the declared
        compute precision when it is coarser (float64 inputs computed in float32)."""
        import torch

        if self.computes_in == "float32" and dtype == torch.float64:
            return torch.float32
        return dtype

    def settings(self, cap: int | None = None,
                 shrink: bool = True) -> Callable[[Callable], Callable]:
        """Decorator for a check's ``@given`` test: this context's settings (at most ``cap``
        examples unless the profile lifts caps) and seed; ``shrink=False`` reports the first
        failing input as found (a check whose message does not depend on the input's size)."""
        from hypothesis import seed as hypothesis_seed

        from ..profiles import settings_for

        s = settings_for(self.profile, cap=cap, max_examples=self.max_examples,
                         derandomize=False if self.seed is not None else None, shrink=shrink)

        def apply(test: Callable) -> Callable:
            test = s(test)
            return hypothesis_seed(self.seed)(test) if self.seed is not None else test

        return apply

    def examples_for(self, kind: str, keys: set[str]) -> list[dict[str, Any]]:
        """Failing inputs earlier checks of this run found for ``kind``, given as exactly the
        keyword arguments ``keys`` of the asking check's test."""
        return [ex for ex in self.known.get(kind, ()) if set(ex) == keys]

    def for_check(self) -> "Context":
        return dataclasses.replace(self, tracker=Tracker())


@dataclass
class CheckResult:
    """The outcome of one check on one function."""

    id: str
    status: str  # "passed", "failed", "not applicable"
    examples: int = 0
    worst_ratio: float = 0.0  # worst error / allowed bound seen (value checks), else 0
    message: str = ""
    kind: str = ""
    tier: str = ""  # WRONG, IMPRECISE, ERROR (the function raised), TIMEOUT, NO EXAMPLES
    worst: str = ""  # the worst element, e.g. "batch=(0,), t=2"
    pattern: str = ""  # where the failing values differ, and how (refmath.checks.where)
    yours: str = ""
    exact: str = ""
    bound: str = ""
    counterexample: str = ""
    reproduction: str = ""
    causes: list[str] = field(default_factory=list)
    output: str = ""  # what the function printed (failed checks only), truncated
    seconds: float = 0.0
    severity: str = ""  # correctness, precision, robustness, hygiene, validation
    waiver: str = ""  # the reason given for an expected failure (status xfail / xpass)

    @property
    def passed(self) -> bool:
        return self.status not in ("failed",)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Check:
    """One named property: ``func(fn, ctx)`` raises :class:`CheckFailure` when ``fn``
    violates it. ``requires`` names the :class:`Capabilities` it cannot run without; ``tier``
    (one of :data:`TIERS`) is what its failure means."""

    id: str
    kind: str
    summary: str
    func: Callable[[Any, Context], None]
    requires: frozenset[str] = frozenset()
    tier: str = "correctness"

    def __post_init__(self) -> None:
        if self.tier not in TIERS:
            raise ValueError(f"check {self.id}: tier {self.tier!r} is not one of {TIERS}")

    def __call__(self, fn: Any = None, ctx: "Context | str" = "ci") -> CheckResult:
        return run_check(self, fn, ctx)


class CheckList(list):
    """A family module's checks, in order. The module fills its own list; only the registry
    (:func:`refmath.checks.checks_for`) reads it: nothing is registered globally on import."""

    def register(self, kind: str, name: str, summary: str, requires: tuple[str, ...] = (),
                 tier: str = "correctness") -> Callable:
        """Decorator: ``func(fn, ctx)`` becomes check ``{kind}.{name}`` (or ``name`` itself
        when it already has a dotted prefix, e.g. ``identity.gae_summed``)."""

        def wrap(func):
            check_id = name if "." in name else f"{kind}.{name}"
            self.append(Check(check_id, kind, summary, func, frozenset(requires), tier))
            return func

        return wrap


def suggest(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _as_context(ctx: "Context | str | None") -> Context:
    if ctx is None:
        return Context()
    if isinstance(ctx, str):
        from ..profiles import PROFILES, unknown_profile_message

        if ctx not in PROFILES:
            raise UsageError(unknown_profile_message(ctx))
        return Context(profile=ctx)
    return ctx


def _notes(err: BaseException) -> str:
    return "\n".join(n for n in getattr(err, "__notes__", [])
                     if not n.startswith(("Falsifying", "Failing explicit", "You can add",
                                          "Explanation", "    The test ", "Trying example")))


# Where a failure message names its likely cause: a check raises CheckFailure with this
# marker in its message and ``diagnosis=`` a thunk returning the matching known mistakes; the
# thunk runs once, after Hypothesis has shrunk the counterexample (not at every shrink step:
# a diagnosis runs every mutant of the kind).
LIKELY = "\x00likely cause\x00"


def likely_causes(matches: list) -> tuple[list[str], str]:
    """The names of the matching mistakes, and the message line naming them ("" if none).
    A mistake that reproduced the counterexample but not one of the fingerprint's probes
    (``matches.near``) is said not to match, and on which probe."""
    if not matches:
        near = "".join(f"; '{m.name}' reproduces this input but not {label}"
                       for m, label in getattr(matches, "near", ()))
        return [], ("\n  likely cause   no known mistake of this kind reproduces it (the "
                    "where line says what differs)" + near)
    if getattr(matches, "resembling", None):
        return [m.name for m in matches], (
            "\n  likely cause   resembles known mistake " + ", ".join(
                f"'{m.name}' ({m.description})" for m in matches)
            + " — it deviates where that mistake does, the same way and by about as much, on "
            "this input and on the fingerprint's probes, without reproducing its numbers")
    return [m.name for m in matches], "\n  likely cause   matches known mistake " + ", ".join(
        f"'{m.name}' ({m.description})" for m in matches)


def _failure(check: Check, ctx: Context, err: BaseException, fn: Any) -> CheckResult:
    from .guard import (CallMismatch, FunctionExited, FunctionTimeout, has_user_frames,
                        user_traceback)

    result = CheckResult(check.id, "failed", ctx.tracker.examples, ctx.tracker.worst_ratio,
                         kind=check.kind)
    if isinstance(err, CheckFailure):
        result.message = str(err)
        d = err.details
        for name in ("tier", "worst", "pattern", "yours", "exact", "bound",
                     "counterexample", "reproduction"):
            if name in d:
                setattr(result, name, str(d[name]))
        result.causes = list(d.get("causes", ()))
        if d.get("diagnosis") is not None:  # once, on the final (shrunk) counterexample
            matches = d["diagnosis"]()
            result.causes, line = likely_causes(matches)
            result.message = result.message.replace(LIKELY, line)
            _tier_from_causes(result, matches)
        if d.get("example") is not None:
            ctx.known.setdefault(check.kind, []).append(d["example"])
    elif isinstance(err, CallMismatch):
        result.tier = "BINDING"
        result.message = f"{check.id}: {err}"
    elif not isinstance(err, (FunctionExited, FunctionTimeout)) and not has_user_frames(err):
        import traceback

        result.tier = "INTERNAL"
        result.message = (f"{check.id}: refmath itself raised {type(err).__name__} (a bug in "
                          "refmath, not in your function: please report it)\n"
                          + "".join(traceback.format_exception(err)))
    else:
        result.tier = ("TIMEOUT" if isinstance(err, FunctionTimeout) else
                       "EXITED" if isinstance(err, FunctionExited) else "ERROR")
        counterexample = "\n".join(n for n in getattr(err, "__notes__", [])
                                   if n.startswith(("Falsifying", "Failing explicit"))
                                   or n.startswith("    "))
        result.counterexample = counterexample
        result.message = (f"{check.id}: the function raised {type(err).__name__} "
                          f"({result.tier})\n" + user_traceback(err)
                          + (f"\n{_notes(err)}" if _notes(err) else ""))
        result.pattern = ("nothing to compare: " + (
            "the function did not return in time" if result.tier == "TIMEOUT" else
            "the function ended the process" if result.tier == "EXITED" else
            f"the function raised {type(err).__name__} on this input"))
    if isinstance(err, CheckFailure) and not result.pattern:
        result.pattern = _said(result.message)
    first, sep, rest = result.message.partition("\n")
    if result.pattern and "\n  where " not in result.message and \
            result.pattern not in first:  # (below the first line, unless it says it)
        result.message = f"{first}\n  where          {result.pattern}" + (sep + rest if sep
                                                                           else "")
    return result


def _said(message: str) -> str:
    """A check's own statement of what differs (its message's first line, without the
    function's name), as the where line of a failure that has no pattern of elements."""
    first = message.split("\n", 1)[0].strip()
    head, sep, rest = first.partition(": ")
    return rest if sep and " " not in head.strip("()") else first


def _tier_from_causes(result: "CheckResult", matches: list) -> None:
    """The known mistakes that reproduce a failure decide its tier when they agree: all
    precision mistakes (the formula kept, digits lost) make a WRONG failure precision; all
    formula mistakes make an IMPRECISE one (a small effect on a shrunk input) WRONG."""
    tiers = {m.tier for m in matches}
    if tiers == {"precision"} and result.tier == "WRONG":
        result.tier = "IMPRECISE"
        result.message = re.sub(r"\bWRONG\b", "IMPRECISE", result.message, count=1)
        result.message += ("\n  tier           precision: the matching known mistake keeps "
                           "the formula and loses digits")
    elif tiers == {"correctness"} and result.tier.startswith("IMPRECISE"):
        result.tier = "WRONG"
        result.message = re.sub(r"\bIMPRECISE( \([^)]*\))?", "WRONG", result.message,
                                count=1)
        result.message += ("\n  tier           correctness: the matching known mistake is a "
                           "formula mistake (its effect on this shrunk input is small)")


def run_check(check: Check, fn: Any = None, ctx: "Context | str | None" = None) -> CheckResult:
    """Run one check: passed, failed (with its fields), or not applicable. A check that ran
    no example fails: it proved nothing."""
    ctx = _as_context(ctx).for_check()
    missing = ctx.capabilities.missing(check.requires)
    if missing:
        return CheckResult(check.id, "not applicable", kind=check.kind, message=(
            "declared: no " + ", no ".join(m.replace("_", " ") for m in missing)),
            severity=check.tier)
    start = time.perf_counter()
    try:
        check.func(fn, ctx)
    except NotApplicable as na:
        result = CheckResult(check.id, "not applicable", ctx.tracker.examples, 0.0, str(na),
                             kind=check.kind)
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # noqa: BLE001 - any failure of the function under test
        result = _failure(check, ctx, err, fn)
    else:
        result = CheckResult(check.id, "passed", ctx.tracker.examples, ctx.tracker.worst_ratio,
                             kind=check.kind)
        if ctx.tracker.examples == 0 and ctx.tracker.skipped:
            reasons = sorted(ctx.tracker.skipped.items(), key=lambda kv: -kv[1])
            result.status = "not applicable"
            result.message = "no applicable input: " + "; ".join(
                f"{reason} ({n} input{'s' if n > 1 else ''})" for reason, n in reasons)
        elif ctx.tracker.examples == 0:
            result.status, result.tier = "failed", "NO EXAMPLES"
            result.message = (f"{check.id} ran no example: every input was rejected or "
                              "skipped, so it proved nothing")
    result.seconds = round(time.perf_counter() - start, 3)
    result.severity = severity(check, result)
    return result


def severity(check: Check, result: CheckResult) -> str:
    """The tier a result is reported in: its check's, except that a correctness check failed
    as IMPRECISE (beyond the bound, within 1e-5 of the result's scale) is "precision"."""
    if check.tier == "correctness" and result.status == "failed" and result.tier.startswith(
            "IMPRECISE"):
        return "precision"
    return check.tier
