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
    * ``numpy``: NumPy arrays in and out (no autograd);
    * ``half``: the function promises SPEC §1's half precision (float16/bfloat16 computed in
      float32, rounded once), so the float16/bfloat16 checks run — off by default, as most
      code is never given half tensors and computes in whatever dtype it gets.

    ``unsupported`` names further :class:`refmath.checks.Capabilities` the function lacks
    (e.g. ``("mask", "validates_input")``).
    """

    time_major: bool = False
    done: bool = False
    values_with_bootstrap: bool = False
    trailing_singleton: bool = False
    numpy: bool = False
    half: bool = False
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
        if not self.half:
            off.add("half")
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


SEVERITIES = ("correctness", "precision", "robustness", "hygiene", "validation")  # TIERS + precision


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
    layout: str | None = None
    strict: bool = False
    fail_on: tuple[str, ...] = SEVERITIES

    def failing(self) -> list[CheckResult]:
        """The results that fail the run: failed checks in a ``fail_on`` tier, and XPASS
        under ``strict``."""
        return [r for r in self.results
                if (r.status == "failed" and (r.severity or "correctness") in self.fail_on)
                or (r.status == "xpass" and self.strict)]

    @property
    def passed(self) -> bool:
        return not self.failing()

    def counts(self) -> tuple[int, int, int]:
        na = sum(r.status == "not applicable" for r in self.results)
        failed = sum(r.status == "failed" for r in self.results)
        return len(self.results) - na, failed, na

    def _settings_text(self) -> str:
        seed = f"; seed {self.seed}" if self.seed is not None else ""
        how = f"layout {self.layout}" if self.layout else f"convention {self.convention}"
        return f"{how}; profile {self.profile}{seed}; {_versions()}"

    def verdict_line(self) -> str:
        run, failed, na = self.counts()
        by_tier = {t: sum(r.status == "failed" and r.severity == t for r in self.results)
                   for t in SEVERITIES}
        tiers = ", ".join(f"{n} {t}" for t, n in by_tier.items() if n)
        waived = [f"{sum(r.status == s for r in self.results)} {s.upper()}"
                  for s in ("xfail", "xpass") if any(r.status == s for r in self.results)]
        extra = (f" ({tiers})" if tiers else "") + (", " + ", ".join(waived) if waived else "")
        return (f"refmath check {self.kind} {self.target}: {'PASS' if self.passed else 'FAIL'}"
                f" — {run} checks run, {failed} failed{extra}, {na} not applicable (declared) "
                f"[{self._settings_text()}]")

    def to_dict(self) -> dict[str, Any]:
        run, failed, na = self.counts()
        return {"kind": self.kind, "target": self.target, "convention": str(self.convention),
                "layout": self.layout, "profile": self.profile, "seed": self.seed,
                "passed": self.passed, "strict": self.strict, "fail_on": list(self.fail_on),
                "checks_run": run, "failed": failed, "not_applicable": na,
                "versions": _versions(), "results": [r.to_dict() for r in self.results]}

    def __str__(self) -> str:
        rows = [("check", "status", "examples", "worst err/bound", "seconds", "note")]
        for r in self.results:
            note = r.message.splitlines()[0][:60] if r.status != "passed" and r.message else ""
            if r.status in ("xfail", "xpass"):
                note = f"waived: {r.waiver}"[:60]
            rows.append((r.id, r.status, str(r.examples), f"{r.worst_ratio:.2g}",
                         f"{r.seconds:.1f}", note))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        for r in self.results:
            if r.status == "failed":
                lines += ["", f"refmath check {r.id} FAILED ({r.severity}) for {self.target}"
                          f"   [profile {self.profile}]", _indent(failure_text(r))]
            elif r.status in ("xfail", "xpass"):
                lines += ["", f"refmath check {r.id} {r.status.upper()} (expected to fail: "
                          f"{r.waiver})"]
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


def _target(fn: Callable | str, kind: str, plan: "Plan") -> tuple[str, Target]:
    text, target = _describe(fn)
    if plan.layout is not None:
        imports = (f"{target.imports}\nfrom refmath.conformance.layouts import LAYOUTS, "
                   f"layout_adapter\nfn = layout_adapter({target.callee}, {kind!r}, "
                   f"LAYOUTS[{plan.layout.name!r}], {plan.renames!r})  # SPEC's layout")
        return text, Target(imports, "fn")
    if plan.convention.is_spec():
        return text, target
    imports = (f"{target.imports}\nfrom refmath.conformance import adapt, parse_convention\n"
               f"fn = adapt({target.callee}, {kind!r}, "
               f"parse_convention({str(plan.convention)!r}))")
    return text, Target(imports, "fn")


@dataclass
class Plan:
    """Everything :func:`resolve` decided before any example: what to call and how."""

    function: Callable
    convention: Convention
    checks: list
    layout: Any = None
    renames: dict[str, str] = field(default_factory=dict)
    only: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    expected_failures: dict[str, str] = field(default_factory=dict)

    def capabilities(self) -> Capabilities:
        caps = self.convention.capabilities()
        if self.layout is not None:
            caps = replace(caps, **{c: False for c in self.layout.unsupported})
        return caps

    def adapt(self, fn: Callable, kind: str) -> Callable:
        if self.layout is not None:
            from .layouts import layout_adapter

            return layout_adapter(fn, kind, self.layout, self.renames)
        return adapt(fn, kind, self.convention)


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return float(text) if any(c in text for c in ".e") else int(text)
    except ValueError:
        return text.strip()


def parse_only(items: list[str] | dict | None) -> dict[str, tuple[Any, ...]]:
    """``["mode=token-mean,seq-mean-token-mean"]`` → ``{"mode": ("token-mean", ...)}``."""
    if not items:
        return {}
    if isinstance(items, dict):
        return {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in items.items()}
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--only {item!r}: expected OPTION=V1,V2")
        key, _, vals = item.partition("=")
        out[key.strip()] = tuple(_parse_value(v) for v in vals.split(","))
    return out


def parse_renames(items: list[str] | dict | None) -> dict[str, str]:
    """``["rewards=r", "values=v"]`` → ``{"rewards": "r", "values": "v"}``."""
    if not items:
        return {}
    if isinstance(items, dict):
        return dict(items)
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"--arg {item!r}: expected LAYOUT_NAME=YOUR_NAME")
        key, _, value = item.partition("=")
        out[key.strip()] = value.strip()
    return out


def parse_xfails(items: list[str] | dict | None, path: str | None = None) -> dict[str, str]:
    """``["gae.ignored_numbers=leaks a NaN bootstrap by design"]`` (and the lines of an
    xfails file, ``#`` comments allowed) → ``{check id: reason}``."""
    out: dict[str, str] = {}
    if isinstance(items, dict):
        out.update(items)
        items = []
    lines = list(items or [])
    if path:
        try:
            with open(path, encoding="utf-8") as fh:
                lines += [ln.strip() for ln in fh if ln.strip() and not ln.startswith("#")]
        except OSError as err:
            raise UsageError(f"--xfails-file {path!r}: {err.strerror}") from None
    for item in lines:
        cid, _, reason = item.partition("=")
        out[cid.strip()] = reason.strip() or "expected to fail (declared)"
    return out


def _spec_call_names(kind: str, caps: Capabilities) -> tuple[int, list[str]]:
    """How the checks call a function in SPEC's layout: (number of positional arguments,
    keyword names), given what it declares it supports."""
    spec = SPECS[kind]
    if spec.family == "steps":
        keywords = [n for n in spec.keyword_only
                    if n not in spec.flags or (getattr(caps, n, True)
                                               and (caps.flags or n == "mask"))]
        return len(spec.positional_arrays), keywords
    return len([n for n in spec.positional if n in spec.required]), \
        [n for n in spec.parameters if n not in spec.positional or n not in spec.required]


def _signature_text(fn: Callable) -> str:
    import inspect

    try:
        return f"{getattr(fn, '__name__', 'fn')}{inspect.signature(fn)}"
    except (TypeError, ValueError):
        return repr(fn)


def _precheck(kind: str, function: Callable, plan: Plan) -> None:
    """Bind the function's signature against the call the checks will make: a mismatch is a
    usage error naming the expected signature and the layouts its parameter names fit."""
    from .layouts import binds, matching_layouts

    fits = matching_layouts(function, kind)
    hint = f"; layouts that fit your parameter names: {', '.join(fits)}" if fits else ""
    if plan.layout is not None:
        lay = plan.layout
        names = [plan.renames.get(p, p) for p in lay.params[kind]]
        if not binds(function, names):
            raise UsageError(
                f"your function {_signature_text(function)} cannot be called as the "
                f"{lay.name} layout calls it: {lay.signature(kind)} (by keyword; rename with "
                f"--arg LAYOUT_NAME=YOUR_NAME){hint}")
        return
    if not plan.convention.is_spec():
        return
    positional, keywords = _spec_call_names(kind, plan.capabilities())
    if binds(function, keywords, positional):
        return
    import inspect

    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    missing = [] if takes_any else [k for k in keywords if k not in params]
    advice = ""
    if missing:
        declare = [f"no_{m}" for m in missing if m in Capabilities.names()]
        advice = (f"; it does not take {', '.join(repr(m) for m in missing)}"
                  + (f": declare --convention {','.join(declare)}" if declare else ""))
    raise UsageError(f"your function {_signature_text(function)} cannot be called as SPEC's "
                     f"{SPECS[kind].describe()}{advice}{hint}")


def resolve(kind: str, fn: Callable | str, convention: Convention | str | None = None,
            profile: str = "ci", checks: list[str] | None = None, *, layout: str | None = None,
            arg: list[str] | dict | None = None, only: list[str] | dict | None = None,
            expected_failures: list[str] | dict | None = None,
            xfails_file: str | None = None) -> Plan:
    """Every usage mistake, found before any example runs: the kind, the convention or
    layout, the profile, the function and its signature, the check ids, the renames, the
    option subsets and the waivers."""
    from ..profiles import PROFILES, unknown_profile_message
    from .layouts import LAYOUTS

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
    lay = None
    if layout is not None:
        if layout not in LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}{suggest(layout, list(LAYOUTS))}; "
                             f"known: {', '.join(LAYOUTS)}")
        lay = LAYOUTS[layout]
        if kind not in lay.kinds:
            raise UsageError(f"the {layout} layout has no {kind!r}; its kinds: "
                             f"{', '.join(lay.kinds)}")
        if not convention.is_spec() and (convention.time_major or convention.done
                                          or convention.numpy):
            raise UsageError("--layout and the layout flags of --convention exclude each "
                             "other (no_<capability> flags may be combined)")
    function = load(fn) if isinstance(fn, str) else fn
    if not callable(function):
        raise UsageError(f"the function to check is not callable: {function!r}")
    renames = parse_renames(arg)
    if renames:
        known = lay.params[kind] if lay is not None else SPECS[kind].parameters
        for key in renames:
            if key not in known:
                raise UsageError(f"--arg {key}=...: {key!r} is not a parameter of "
                                 f"{'the ' + layout + ' layout' if lay else kind}"
                                 f"{suggest(key, list(known))}; its parameters: "
                                 f"{', '.join(known)}")
        if lay is None:
            raise UsageError("--arg renames the parameters of a layout: give --layout too "
                             "(or write the function with SPEC's names)")
    restrictions = dict(lay.only.get(kind, {})) if lay is not None else {}
    for key, values in parse_only(only).items():
        allowed = SPECS[kind].options.get(key)
        if not SPECS[kind].has(key):
            raise UsageError(f"--only {key}=...: {kind} has no option {key!r}"
                             f"{suggest(key, list(SPECS[kind].parameters))}")
        bad = [v for v in values if allowed is not None and v not in allowed]
        if bad:
            raise UsageError(f"--only {key}: {bad} not among {list(allowed)}")
        restrictions[key] = values
    if only:
        _check_only(kind, parse_only(only))
    plan = Plan(function, convention, [], lay, renames, restrictions)
    if lay is None:
        adapt(function, kind, convention)  # a convention that does not fit the kind
    _precheck(kind, function, plan)
    selected = checks_for(kind)
    ids = [c.id for c in selected]

    def full_id(cid: str, what: str) -> str:
        if cid in ids:
            return cid
        if f"{kind}.{cid}" in ids:
            return f"{kind}.{cid}"
        raise UsageError(f"{what} {cid!r}: no such check for {kind}{suggest(cid, ids)}; its "
                         f"checks: {', '.join(ids)}")

    if checks:
        wanted = {full_id(c, "--check") for c in checks}
        selected = [c for c in selected if c.id in wanted]
    elif not plan.capabilities().half:  # opt-in (Convention.half): not run, not reported
        selected = [c for c in selected if "half" not in c.requires]
    if not selected:  # nothing passes by having nothing to check
        raise UsageError(f"{kind} has no check to run: refmath cannot verify it (a spec row "
                         "without checks is a gap in refmath; please report it)")
    plan.checks = selected
    plan.expected_failures = {full_id(cid, "--xfail"): reason for cid, reason in
                              parse_xfails(expected_failures, xfails_file).items()}
    return plan


def _check_only(kind: str, only: dict[str, tuple[Any, ...]]) -> None:
    """``--only`` narrows the options the array checks draw; a kind whose checks choose their
    own inputs cannot honour it, and a value refmath's own oracle rejects is no option."""
    from ..checks import array_row
    from ..checks.arrays import option_domain_error

    row = array_row(kind)
    if row is None:
        raise UsageError(f"--only: the checks of {kind} draw their own inputs and cannot be "
                         "narrowed by option; declare a missing capability with "
                         "--convention no_<capability> instead")
    problem = option_domain_error(row, only)
    if problem:
        raise UsageError(f"--only {problem}")


def _nothing_checked(report: "Report") -> str | None:
    """Why a run checked nothing (every check not applicable), or None."""
    if not report.results or any(r.status != "not applicable" for r in report.results):
        return None
    reasons = sorted({r.message for r in report.results if r.message})
    return (f"nothing was checked: every check of {report.kind} is not applicable ("
            + "; ".join(reasons)[:600] + "); a PASS would prove nothing")


def check(kind: str, fn: Callable | str, *, convention: Convention | str | None = None,
          profile: str = "ci", seed: int | None = None, max_examples: int | None = None,
          timeout: float | None = DEFAULT_TIMEOUT, checks: list[str] | None = None,
          progress: Callable[[CheckResult], None] | None = None, layout: str | None = None,
          arg: list[str] | dict | None = None, only: list[str] | dict | None = None,
          expected_failures: list[str] | dict | None = None, xfails_file: str | None = None,
          strict: bool = False, fail_on: list[str] | tuple[str, ...] | None = None
          ) -> Report:
    """Run every check of ``kind`` (or only ``checks``) on ``fn`` (a callable or
    ``"module:function"``), written in SPEC's signature, in a ``convention``, or in a built-in
    ``layout`` (``"cleanrl"``, ``"sb3"``, ``"verl"``, ``"torchrl"``, ``"trl"``; ``arg``
    renames its parameters). ``only`` restricts enumerated options to what the function
    supports; ``expected_failures`` (``{check id: reason}``) waives by-design differences:
    reported XFAIL, never failing the run (an XPASS fails it under ``strict``); ``fail_on``
    chooses the severity tiers that fail it (default all).

    Usage mistakes raise :class:`UsageError` before any example; everything the function
    does (raise, exit, hang past ``timeout`` seconds per call, print) becomes a failed check
    with its fields, never the end of the run."""
    from ..checks.guard import Guarded

    fail_on = tuple(fail_on) if fail_on else SEVERITIES
    unknown = [t for t in fail_on if t not in SEVERITIES]
    if unknown:
        raise UsageError(f"--fail-on {unknown}: the tiers are {', '.join(SEVERITIES)}")
    plan = resolve(kind, fn, convention, profile, checks, layout=layout, arg=arg, only=only,
                   expected_failures=expected_failures, xfails_file=xfails_file)
    target_text, target = _target(fn, kind, plan)
    guarded = Guarded(plan.function, timeout)
    adapted = plan.adapt(guarded, kind)
    ctx = Context(capabilities=plan.capabilities(), target=target, profile=profile,
                  seed=seed, max_examples=max_examples, timeout=timeout, only=plan.only,
                  accepts=(plan.layout.accepts if plan.layout is not None else None),
                  layout=plan.layout.name if plan.layout is not None else None,
                  wrap=_layout_wrap(plan.layout, kind))
    report = Report(kind, target_text, plan.convention, profile, seed=seed,
                    layout=plan.layout.name if plan.layout else None, strict=strict,
                    fail_on=fail_on)
    for c in plan.checks:
        result = run_check(c, adapted, ctx)
        output = guarded.take_output()  # what it printed during this check only
        if result.status == "failed":
            result.output = output[-2000:]
        reason = plan.expected_failures.get(c.id)
        if reason is not None and result.status == "failed":
            result.status, result.waiver = "xfail", reason
        elif reason is not None and result.status == "passed":
            result.status, result.waiver = "xpass", reason
        report.results.append(result)
        if progress is not None:
            progress(result)
    if not checks:  # (one check asked for by id may be not applicable: the plugin skips it)
        empty = _nothing_checked(report)
        if empty:
            raise UsageError(empty)
    return report


def _layout_wrap(layout: Any, kind: str) -> Callable | None:
    """Wraps the layout's own mutants (written with the layout's names) for the diagnosis."""
    if layout is None:
        return None
    from .layouts import layout_adapter

    return lambda f: layout_adapter(f, kind, layout)


def run_one(kind: str, check_id: str, fn: Callable | str, convention: Convention | str | None,
            profile: str = "ci", seed: int | None = None, max_examples: int | None = None,
            timeout: float | None = DEFAULT_TIMEOUT, **options: Any) -> tuple[CheckResult, str]:
    """One check (for the pytest plugin and :func:`parametrize_with_checks`): the result and
    the target's description; the reproduction calls the function under test itself."""
    report = check(kind, fn, convention=convention, profile=profile, seed=seed,
                   max_examples=max_examples, timeout=timeout, checks=[check_id], **options)
    return report.results[0], report.target


def parametrize_with_checks(kind: str, fn: Callable | str, *,
                            convention: Convention | str | None = None,
                            profile: str = "ci", seed: int | None = None, **options: Any):
    """A pytest decorator (like scikit-learn's ``parametrize_with_checks``): one test per
    check of ``kind``, each a zero-argument callable that raises with the check's message::

        @parametrize_with_checks("gae", my_gae, layout="cleanrl",
                                 expected_failures={"gae.ignored_numbers": "by design"})
        def test_my_gae(refmath_check):
            refmath_check()

    ``options`` are :func:`check`'s (``layout``, ``arg``, ``only``, ``expected_failures``,
    ``strict``, ``fail_on``). A check that is not applicable (declared) is skipped with its
    reason; an expected failure is reported as pytest's xfail.
    """
    import pytest

    plan_options = {k: v for k, v in options.items() if k in ("layout", "arg", "only",
                                                              "expected_failures")}
    plan = resolve(kind, fn, convention, profile, **plan_options)

    def make(check_id: str):
        def run() -> None:
            result, target = run_one(kind, check_id, fn, plan.convention, profile, seed,
                                     **options)
            if result.status == "not applicable":
                pytest.skip(f"{check_id}: not applicable ({result.message})")
            if result.status == "xfail":
                pytest.xfail(f"{check_id}: {result.waiver}")
            if result.status == "failed" or (result.status == "xpass"
                                             and options.get("strict")):
                raise AssertionError(f"refmath check {check_id} FAILED for {target} "
                                     f"[profile {profile}]\n{failure_text(result)}")

        return run

    ids = [c.id for c in plan.checks]
    return pytest.mark.parametrize("refmath_check", [make(i) for i in ids], ids=ids)
