"""Validate anyone's implementation against refmath's check registry.

One core, three runners: :func:`check` (this module, no pytest needed), the CLI
``refmath check KIND module:function``, and the pytest plugin
(``pytest --pyargs refmath.suite --refmath-impl gae=mypkg.adv:gae``). All three run the same
registry (``refmath.checks``), with the same exact oracles and derived error bounds.

Conventions are declared, never guessed (:class:`Convention`): a function that puts time
first, takes one ``done`` flag, takes ``values`` of length T+1, has a trailing singleton axis,
or works on NumPy arrays is wrapped by :func:`adapt` into SPEC's layout. What a convention
cannot express (truncation with a single ``done`` flag, a mask, gradients through NumPy) is
declared unsupported, and the checks that need it are reported "not applicable (declared)".
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable

import numpy as np

from ..checks import (Capabilities, CheckResult, Context, Target, UsageError, checks_for,
                      family_of, run_check, suggest)
from ..checks.specs import SPECS

__all__ = ["Convention", "Report", "adapt", "check", "load", "parse_convention",
           "parametrize_with_checks", "resolve", "UsageError", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 60.0  # seconds one call of the function under test may take


@dataclass(frozen=True)
class Convention:
    """How the function under test differs from SPEC's layout (all False: SPEC itself).

    * ``time_major``: per-step arrays are ``[T, B]`` (time first) instead of ``[B, T]``;
    * ``done``: one ``done=`` flag (a terminal: nothing bootstrapped) instead of
      ``terminated``/``truncated`` — truncation cannot be expressed;
    * ``values_with_bootstrap``: ``values`` has length T+1 (the last entry bootstraps the last
      step) and there is no ``next_values`` — only consistent trajectories, no truncation;
    * ``trailing_singleton``: arrays are ``[..., T, 1]``;
    * ``numpy``: NumPy arrays in and out (no autograd).

    ``unsupported`` names further :class:`refmath.checks.Capabilities` the function lacks
    (e.g. ``("mask", "validates_input")``).
    """

    time_major: bool = False
    done: bool = False
    values_with_bootstrap: bool = False
    trailing_singleton: bool = False
    numpy: bool = False
    unsupported: tuple[str, ...] = ()

    def capabilities(self) -> Capabilities:
        off = set(self.unsupported)
        if self.done or self.values_with_bootstrap:
            off.add("truncated")
        if self.values_with_bootstrap:
            off |= {"inconsistent_values", "mask"}
        if self.time_major:  # exactly [T, B]; a per-step gamma would need its own layout
            off |= {"batch", "per_step_gamma"}
        if self.numpy:
            off.add("gradients")
        unknown = off - set(Capabilities.names())
        if unknown:
            raise UsageError(f"unknown capabilities {sorted(unknown)}; known: "
                             f"{Capabilities.names()}")
        return replace(Capabilities(), **{name: False for name in off})

    def is_spec(self) -> bool:
        return self == Convention()

    def __str__(self) -> str:
        flags = [f.name for f in fields(self) if f.type == "bool" and getattr(self, f.name)]
        flags += [f"no_{u}" for u in self.unsupported]
        return ",".join(flags) or "spec"


def parse_convention(text: str | None) -> Convention:
    """``"time_major,done,no_mask"`` → Convention (``no_X`` declares capability X missing)."""
    if not text or text == "spec":
        return Convention()
    flags, unsupported = {}, []
    names = {f.name for f in fields(Convention)} - {"unsupported"}
    for word in (w.strip() for w in text.split(",") if w.strip()):
        if word.startswith("no_"):
            unsupported.append(word[3:])
        elif word in names:
            flags[word] = True
        else:
            raise UsageError(f"unknown convention flag {word!r}"
                             f"{suggest(word, sorted(names) + ['no_' + c for c in Capabilities.names()])}"
                             f"; known: {sorted(names)} and no_<capability> for "
                             f"{Capabilities.names()}")
    return Convention(**flags, unsupported=tuple(unsupported))


def load(target: str) -> Callable:
    """``"package.module:function"`` → the function (a :class:`UsageError` when it cannot be
    found or is not callable)."""
    if ":" not in target:
        raise UsageError(f"expected module:function, got {target!r}")
    module, _, name = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
    except ModuleNotFoundError as err:
        raise UsageError(f"cannot import module {module!r} ({err}); run from the directory "
                         "that holds it, or install it") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            raise UsageError(f"{target}: {module!r} has no attribute {part!r}"
                             f"{suggest(part, names)}") from None
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{target} is not callable (it is a {type(obj).__name__})")
    return obj


def importable(path: str) -> None:
    """Make modules of directory ``path`` importable, after the installed packages (a
    ``torch.py`` there does not shadow torch)."""
    if path not in sys.path:
        sys.path.append(path)


def adapt(fn: Callable, kind: str, convention: Convention) -> Callable:
    """Wrap ``fn`` (written in ``convention``) into SPEC's signature for ``kind``."""
    if convention.is_spec():
        return fn
    import torch

    steps = SPECS[kind].positional_arrays if SPECS[kind].family == "steps" else None
    if steps is None and (convention.time_major or convention.done
                          or convention.values_with_bootstrap):
        raise UsageError(f"the layout flags apply to the per-step functions "
                         f"{sorted(k for k, s in SPECS.items() if s.family == 'steps')}, "
                         f"not to {kind!r}")

    def to_user(x: Any) -> Any:
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            return x
        if convention.time_major:
            x = x.movedim(-1, 0)
        if convention.trailing_singleton:
            x = x.unsqueeze(-1)
        return x.detach().cpu().numpy() if convention.numpy else x

    def from_user(y: Any, like: Any) -> Any:
        if convention.numpy:
            y = torch.as_tensor(np.asarray(y))
            if isinstance(like, torch.Tensor):
                y = y.to(like.device)
        if convention.trailing_singleton and y.dim() > 0 and y.shape[-1] == 1:
            y = y.squeeze(-1)
        if convention.time_major and y.dim() > 1:
            y = y.movedim(0, -1)
        return y

    if convention.values_with_bootstrap and (steps is None or "values" not in steps):
        raise UsageError(f"values_with_bootstrap needs a function of values, not {kind!r}")

    def wrapper(*args: Any, **kw: Any) -> Any:
        if steps is None:
            out = fn(*(to_user(a) for a in args), **{k: to_user(v) for k, v in kw.items()})
            return from_user(out, args[0] if args else None)
        named = dict(zip(steps, args))
        if convention.values_with_bootstrap:  # values of length T + 1, no next_values
            named["values"] = torch.cat([named["values"],
                                         named.pop("next_values")[..., -1:]], -1)
        if convention.done:  # one terminal flag; truncation is declared unsupported
            kw.pop("truncated", None)
            done = kw.pop("terminated", None)
            if done is not None:
                kw["done"] = done
        positional = [to_user(named[a]) for a in steps if a in named]
        out = fn(*positional, **{k: to_user(v) for k, v in kw.items()})
        return from_user(out, args[0])

    wrapper.__name__ = getattr(fn, "__name__", "adapted")
    return wrapper


@dataclass
class Report:
    """The outcome of :func:`check`: ``passed``, per-check ``results``, ``str()`` a table,
    :meth:`to_dict` the same as data (``refmath check --json``)."""

    kind: str
    target: str
    convention: Convention
    profile: str
    results: list[CheckResult] = field(default_factory=list)
    seed: int | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    def counts(self) -> tuple[int, int, int]:
        na = sum(r.status == "not applicable" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        return len(self.results) - na, failed, na

    def _settings_text(self) -> str:
        seed = f"; seed {self.seed}" if self.seed is not None else ""
        return f"convention {self.convention}; profile {self.profile}{seed}; {_versions()}"

    def verdict_line(self) -> str:
        run, failed, na = self.counts()
        return (f"refmath check {self.kind} {self.target}: {'PASS' if self.passed else 'FAIL'}"
                f" — {run} checks run, {failed} failed, {na} not applicable (declared) "
                f"[{self._settings_text()}]")

    def to_dict(self) -> dict[str, Any]:
        run, failed, na = self.counts()
        return {"kind": self.kind, "target": self.target, "convention": str(self.convention),
                "profile": self.profile, "seed": self.seed, "passed": self.passed,
                "checks_run": run, "failed": failed, "not_applicable": na,
                "versions": _versions(), "results": [r.to_dict() for r in self.results]}

    def __str__(self) -> str:
        rows = [("check", "status", "examples", "worst err/bound", "seconds", "note")]
        for r in self.results:
            note = r.message.splitlines()[0][:60] if r.status != "passed" and r.message else ""
            rows.append((r.id, r.status, str(r.examples), f"{r.worst_ratio:.2g}",
                         f"{r.seconds:.1f}", note))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for r in self.results:
            if r.status == "failed":
                lines += ["", f"refmath check {r.id} FAILED for {self.target}   "
                          f"[profile {self.profile}]", _indent(failure_text(r))]
        lines += ["", self.verdict_line()]
        return "\n".join(lines)


def failure_text(r: CheckResult) -> str:
    """A failed check as a person reads it: the message, then what the function printed."""
    text = r.message
    if r.output:
        shown = r.output if len(r.output) <= 1200 else "..." + r.output[-1200:]
        text += "\n  your function printed (last part):\n" + "\n".join(
            "      " + line for line in shown.splitlines())
    return text


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


def _versions() -> str:
    from .. import __version__

    torch = sys.modules.get("torch")
    return f"refmath {__version__}" + (f", torch {torch.__version__}" if torch else "")


def _describe(fn: Callable | str) -> tuple[str, Target]:
    """``module:qualname`` of the function and how a reproduction imports and calls it."""
    if isinstance(fn, str):
        module, _, name = fn.partition(":")
        return fn, Target(f"from {module} import {name.split('.')[0]}", name)
    module = getattr(fn, "__module__", None) or "?"
    qualname = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", repr(fn))
    text = f"{module}:{qualname}"
    if "<" in qualname or module in ("?", "__main__"):
        name = getattr(fn, "__name__", "fn")
        return text, Target(f"# {name}: your function ({text}); define or import it here", name)
    return text, Target(f"from {module} import {qualname.split('.')[0]}", qualname)


def _target(fn: Callable | str, kind: str, convention: Convention) -> tuple[str, Target]:
    text, target = _describe(fn)
    if convention.is_spec():
        return text, target
    imports = (f"{target.imports}\nfrom refmath.conformance import adapt, parse_convention\n"
               f"fn = adapt({target.callee}, {kind!r}, parse_convention({str(convention)!r}))")
    return text, Target(imports, "fn")


def resolve(kind: str, fn: Callable | str, convention: Convention | str | None = None,
            profile: str = "ci", checks: list[str] | None = None):
    """Every usage mistake, found before any example runs: the kind, the convention, the
    profile, the function, the check ids. Returns (function, convention, checks)."""
    from ..checks.profiles import PROFILES, unknown_profile_message

    if kind == "identities":
        raise UsageError("'identities' checks refmath's own oracles, not a function of "
                         "yours: run `refmath --kind identities`; kinds to check a function "
                         f"against: {', '.join(SPECS)}")
    family_of(kind)  # unknown kind: UsageError with a suggestion
    if profile not in PROFILES:
        raise UsageError(unknown_profile_message(profile))
    if not isinstance(convention, Convention):
        convention = parse_convention(convention)
    convention.capabilities()
    function = load(fn) if isinstance(fn, str) else fn
    if not callable(function):
        raise UsageError(f"the function to check is not callable: {function!r}")
    adapt(function, kind, convention)  # a convention that does not fit the kind
    selected = checks_for(kind)
    if checks:
        ids = [c.id for c in selected]
        for cid in checks:
            if cid not in ids and f"{kind}.{cid}" not in ids:
                raise UsageError(f"no check {cid!r} for {kind}{suggest(cid, ids)}; its checks:"
                                 f" {', '.join(ids)}")
        selected = [c for c in selected if c.id in checks or c.id.split(".", 1)[1] in checks]
    return function, convention, selected


def check(kind: str, fn: Callable | str, *, convention: Convention | str | None = None,
          profile: str = "ci", seed: int | None = None, max_examples: int | None = None,
          timeout: float | None = DEFAULT_TIMEOUT, checks: list[str] | None = None,
          progress: Callable[[CheckResult], None] | None = None) -> Report:
    """Run every check of ``kind`` (or only ``checks``) on ``fn`` (a callable or
    ``"module:function"``). Usage mistakes raise :class:`UsageError` before any example;
    everything the function does (raise, exit, hang past ``timeout`` seconds per call,
    print) becomes a failed check with its fields, never the end of the run."""
    from ..checks.guard import Guarded

    function, convention, selected = resolve(kind, fn, convention, profile, checks)
    target_text, target = _target(fn, kind, convention)
    guarded = Guarded(function, timeout)
    adapted = adapt(guarded, kind, convention)
    ctx = Context(capabilities=convention.capabilities(), target=target, profile=profile,
                  seed=seed, max_examples=max_examples, timeout=timeout)
    report = Report(kind, target_text, convention, profile, seed=seed)
    for c in selected:
        result = run_check(c, adapted, ctx)
        if result.status == "failed" and not result.output:
            result.output = guarded.captured()[-2000:]
        guarded.output.seek(0)
        guarded.output.truncate()
        report.results.append(result)
        if progress is not None:
            progress(result)
    return report


def run_one(kind: str, check_id: str, fn: Callable | str, convention: Convention | str | None,
            profile: str = "ci", seed: int | None = None, max_examples: int | None = None,
            timeout: float | None = DEFAULT_TIMEOUT) -> tuple[CheckResult, str]:
    """One check (for the pytest plugin and :func:`parametrize_with_checks`): the result and
    the target's description; the reproduction calls the function under test itself."""
    report = check(kind, fn, convention=convention, profile=profile, seed=seed,
                   max_examples=max_examples, timeout=timeout, checks=[check_id])
    return report.results[0], report.target


def parametrize_with_checks(kind: str, fn: Callable | str, *,
                            convention: Convention | str | None = None,
                            profile: str = "ci", seed: int | None = None):
    """A pytest decorator (like scikit-learn's ``parametrize_with_checks``): one test per
    check of ``kind``, each a zero-argument callable that raises with the check's message::

        @parametrize_with_checks("gae", my_gae, convention="no_mask")
        def test_my_gae(refmath_check):
            refmath_check()

    A check that is not applicable (declared) is skipped with its reason.
    """
    import pytest

    _, conv, selected = resolve(kind, fn, convention, profile)

    def make(check_id: str):
        def run() -> None:
            result, target = run_one(kind, check_id, fn, conv, profile, seed)
            if result.status == "not applicable":
                pytest.skip(f"{check_id}: not applicable ({result.message})")
            if result.status != "passed":
                raise AssertionError(f"refmath check {check_id} FAILED for {target} "
                                     f"[profile {profile}]\n{failure_text(result)}")

        return run

    ids = [c.id for c in selected]
    return pytest.mark.parametrize("refmath_check", [make(i) for i in ids], ids=ids)
