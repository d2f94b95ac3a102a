"""The ``refmath`` command.

``refmath`` (no arguments) runs the whole check registry: every bundled Torch implementation
(``refmath_torch``) against its exact oracle, and refmath's own oracles against the identities
of SPEC §2. It prints one table row per function and a final verdict line; exit code 0 when
every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Sequence

from . import __version__

__all__ = ["main", "run_main_job", "run_claims", "run_user_check", "run_discover", "run_list"]

IDENTITIES = "identities"


def _versions() -> str:
    import hypothesis
    import numpy
    import sympy
    import torch

    return (f"refmath {__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
            f"sympy {sympy.__version__}, hypothesis {hypothesis.__version__}")


def _table(rows: list[tuple[str, ...]], left: bool = False) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 or left else c.rjust(w)
                               for i, (c, w) in enumerate(zip(r, widths))).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def default_profile() -> str:
    """``$REFMATH_PROFILE`` if set, else ``ci`` (nothing is loaded globally)."""
    return os.environ.get("REFMATH_PROFILE") or "ci"


def _usage_error(err: Exception) -> int:
    print(f"refmath: usage error: {err}", file=sys.stderr)
    return 2


def _progress(out):
    def show(r) -> None:
        mark = {"passed": "ok", "failed": "FAILED", "not applicable": "n/a", "xfail": "XFAIL",
                "xpass": "XPASS"}[r.status]
        print(f"  {r.id:<40} {mark:<7} {r.examples:>5} examples  {r.seconds:6.1f} s",
              file=out, flush=True)

    return show


def run_main_job(kinds: Sequence[str] | None, profile: str, out=None, seed: int | None = None,
                 max_examples: int | None = None) -> int:
    """Run the registry on the bundled implementations and the identities; print; 0/1
    (2: an unknown kind or profile, before any check runs)."""
    out = out or sys.stdout
    import refmath_torch

    from .checks import Context, UsageError, checks_for, kinds as all_kinds, run_check
    from .profiles import PROFILES, unknown_profile_message

    try:
        if profile not in PROFILES:
            raise UsageError(unknown_profile_message(profile))
        selected = list(kinds) if kinds else all_kinds()
        for kind in selected:
            checks_for(kind)  # an unknown kind, or one without checks: exit 2
    except UsageError as err:
        return _usage_error(err)
    header = ("function", "checks", "passed", "failed", "n/a", "worst err/bound", "seconds")
    rows = [header]
    failures = []
    totals = {"run": 0, "failed": 0, "na": 0}
    print(f"refmath: checking the bundled implementations (refmath_torch) and the identities "
          f"[profile {profile}]", file=out, flush=True)
    for kind in selected:
        fn = None if kind == IDENTITIES else getattr(refmath_torch, kind)
        ctx = Context(profile=profile, seed=seed, max_examples=max_examples)
        start = time.perf_counter()
        results = [run_check(c, fn, ctx) for c in checks_for(kind)]
        failed = [r for r in results if r.status == "failed"]
        na = [r for r in results if r.status == "not applicable"]
        failures += failed
        totals["run"] += len(results) - len(na)
        totals["failed"] += len(failed)
        totals["na"] += len(na)
        worst = max((r.worst_ratio for r in results), default=0.0)
        row = (kind, str(len(results)), str(len(results) - len(failed) - len(na)),
               str(len(failed)), str(len(na)), f"{worst:.2g}",
               f"{time.perf_counter() - start:.1f}")
        rows.append(row)
        print(f"  {kind}: {row[2]}/{row[1]} passed", file=out, flush=True)
    print("", file=out)
    print(_table(rows), file=out)
    for r in failures:
        print(f"\nFAILED {r.id}\n{r.message}", file=out)
    verdict = "PASS" if not failures else "FAIL"
    print(f"\nrefmath verdict: {verdict} — {totals['run']} checks run, {totals['failed']} "
          f"failed, {totals['na']} not applicable [profile {profile}; {_versions()}]",
          file=out)
    print("(worst err/bound: the largest error seen against the exact oracle, as a fraction "
          "of the derived forward-error bound; 0 means exact)", file=out)
    return 0 if not failures else 1


def _claim_rows():
    from .claims import all_claims

    rows = []
    for cid, c in all_claims().items():
        verdict = c.run()
        rows.append((c, verdict))
    return rows


def _claim_failed(c, verdict) -> bool:
    """Only a claim expected to hold (TRUE, TRUE UNDER CONDITIONS) that does not is a failure."""
    from .claims import CONDITIONAL, TRUE

    return c.expected in (TRUE, CONDITIONAL) and verdict.status != c.expected


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 1] + "…"


def run_claims(claim_id: str | None = None, out=None, as_json: bool = False) -> int:
    """``refmath claims``: the ledger as a table (statement, verdict, exact value or
    counterexample); ``--id X``: one claim with its source text and evidence; ``--json``:
    ``id, source, statement, verdict, evidence`` (and value, counterexample, conditions,
    excerpt) per claim. Exit 1 when a claim the suite holds to TRUE (or TRUE UNDER
    CONDITIONS) does not get it."""
    out = out or sys.stdout
    from .claims import all_claims

    claims = all_claims()
    if claim_id is not None and claim_id not in claims:
        from .checks import suggest

        print(f"no claim {claim_id!r}{suggest(claim_id, list(claims))}; known: "
              f"{', '.join(claims)}", file=out)
        return 2
    chosen = [claims[claim_id]] if claim_id is not None else list(claims.values())
    rows = [(c, c.run()) for c in chosen]
    failed = sum(_claim_failed(c, v) for c, v in rows)
    if as_json:
        print(json.dumps([c.to_dict(v) for c, v in rows], indent=2, ensure_ascii=False),
              file=out)
    elif claim_id is not None:
        c, v = rows[0]
        print(c.id, file=out)
        print(f"  source:    {c.source}", file=out)
        print(f"  statement: {c.statement}", file=out)
        print(f"  verdict:   {v.status}", file=out)
        if v.conditions:
            print(f"  conditions: {v.conditions}", file=out)
        print(f"  evidence:  {v.evidence}", file=out)
        if v.counterexample:
            print(f"  counterexample: {v.counterexample}", file=out)
        if c.excerpt is not None:
            import textwrap

            print("  source text:\n" + textwrap.indent(c.excerpt[0], "    ") + "\n  "
                  "translation:\n" + textwrap.indent(textwrap.fill(c.excerpt[1], 92), "    "),
                  file=out)
    else:
        table = [("claim", "verdict", "statement", "exact value, counterexample or "
                                                  "conditions")]
        table += [(c.id, v.status, _short(c.statement, 56), _short(v.summary(), 84))
                  for c, v in rows]
        print(_table(table, left=True), file=out)
        print(f"\n{len(rows)} claims. `refmath claims --id ID` shows one with its source "
              "text and evidence; `--json` all of them.", file=out)
    if failed:
        print(f"{failed} claim(s) did not get their recorded verdict", file=sys.stderr)
    return 1 if failed else 0


def _claims_summary(out) -> int:
    from .claims import CONDITIONAL, FALSE, TRUE

    rows = _claim_rows()
    count = {s: sum(v.status == s for _, v in rows) for s in (TRUE, CONDITIONAL, FALSE)}
    failed = sum(_claim_failed(c, v) for c, v in rows)
    print(f"\nclaims ledger: {len(rows)} claims — {count[TRUE]} TRUE, {count[CONDITIONAL]} TRUE "
          f"UNDER CONDITIONS, {count[FALSE]} FALSE; {failed} expected-true claim(s) failed "
          "(`refmath claims` for the table)", file=out)
    for c, v in rows:
        if v.status == FALSE:
            print(f"  FALSE  {c.id}: {c.statement}", file=out)
    return failed


def run_user_check(kind: str, target: str, convention: str | None, profile: str | None,
                   out=None, *, seed: int | None = None, max_examples: int | None = None,
                   timeout: float | None = None, as_json: bool = False,
                   checks: list[str] | None = None, **options) -> int:
    """``refmath check``: the check set of ``kind`` on the user's function; 0 pass, 1 a check
    failed, 2 a usage error (decided before any example runs)."""
    out = out or sys.stdout
    from .checks import UsageError
    from .conformance import DEFAULT_TIMEOUT, check, importable

    importable(os.getcwd())  # module:function from the current directory, after site-packages
    progress = _progress(sys.stderr)
    try:
        report = check(kind, target, convention=convention, profile=profile or
                       default_profile(), seed=seed, max_examples=max_examples,
                       timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
                       checks=checks, progress=progress, **options)
    except UsageError as err:
        return _usage_error(err)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2), file=out)
    else:
        print(report, file=out)
        if not report.passed and not any(r.tier == "TIMEOUT" for r in report.results):
            _hint(kind, target, report.binding, out)  # (a function that hangs: no probe)
    return 0 if report.passed else 1


def run_configured(profile: str | None, convention: str | None, options: dict,
                   out=None, **run) -> int:
    """``refmath check`` with no KIND and TARGET: every ``[tool.refmath.check.NAME]`` table of
    ./pyproject.toml, each with its own binding (command-line options joined to each)."""
    from .checks import UsageError
    from .conformance import binding_from
    from .conformance.config import from_pyproject

    try:
        configured = from_pyproject(os.getcwd())
        if not configured:
            raise UsageError("nothing to check: give KIND and TARGET, or add "
                             "[tool.refmath.check.NAME] tables (target = \"module:function\""
                             ", layout, arg, only, xfail, ...) to ./pyproject.toml")
        joined = [(c, c.binding.merged(binding_from(**options, convention=convention)))
                  for c in configured]
    except UsageError as err:
        return _usage_error(err)
    status = 0
    for c, binding in joined:
        print(f"== [tool.refmath.check.{c.name}]: {c.kind} {c.target} [{binding}]",
              file=out or sys.stdout)
        status = max(status, run_user_check(c.kind, c.target, None, profile, out,
                                            binding=binding, **run))
    return status


def _hint(kind: str, target: str, binding, out) -> None:
    """After a failed run: what the capability probes (through the same binding) suggest
    (a suggestion: nothing is assumed)."""
    from .checks.guard import Guarded
    from .conformance import load
    from .conformance.discover import discover, suggestion

    guarded = Guarded(load(target), timeout=5.0)
    try:
        found = discover(kind, guarded, binding)
    except Exception:  # noqa: BLE001 - a hint is never worth a crash
        return
    if guarded.timed_out:  # a probe that never returned says nothing about capabilities
        return
    if found.get("base", (True, ""))[0] is False:
        print(f"\nhint: {suggestion(found, binding)}", file=out)
        return
    missing = [c for c, (ok, _) in found.items() if not ok]
    if missing:
        print(f"\nhint: the capability probes say your function does not support "
              f"{', '.join(missing)}; if that is by design, declare it: "
              f"{suggestion(found, binding)}  (refmath check {kind} {target} --discover for "
              "details)", file=out)


def run_discover(kind: str, target: str, out=None, convention: str | None = None,
                 **options) -> int:
    """``refmath check KIND TARGET --discover``: one tiny exact probe per capability the
    binding does not already declare missing, through that binding, and the line they
    suggest."""
    out = out or sys.stdout
    from .checks import UsageError
    from .conformance import importable, resolve
    from .conformance.discover import discover, suggestion

    importable(os.getcwd())
    try:
        if kind is None:
            raise UsageError("--discover needs KIND and TARGET")
        plan = resolve(kind, target, convention, **options)
    except UsageError as err:
        return _usage_error(err)
    from .checks.guard import Guarded

    found = discover(kind, Guarded(plan.function, timeout=5.0), plan.binding)
    if not found:
        print(f"no capability of {kind} can be probed through binding {plan.binding}",
              file=out)
    for cap, (ok, note) in found.items():
        print(f"  {cap:<20} {'yes' if ok else 'NO':<4} {note}", file=out)
    print(f"suggested: refmath check {kind} {target} {suggestion(found, plan.binding)}",
          file=out)
    return 0


def run_list(out) -> int:
    """``refmath list``: what can be checked, in which layouts, by which checks."""
    from .checks import checks_for
    from .checks.specs import SPECS
    from .conformance.layouts import LAYOUTS

    print("kinds (SPEC's signature; refmath check KIND module:function):", file=out)
    for spec in SPECS.values():
        print(f"  {spec.describe()}", file=out)
    print("\nlayouts (--layout NAME or --bind 'NAME,arg.LAYOUT_NAME=YOUR_NAME,...'):",
          file=out)
    for lay in LAYOUTS.values():
        arrays = f" [{lay.arrays} arrays]" if lay.arrays != "torch" else ""
        print(f"  {lay.name}: {lay.mirrors}{arrays}", file=out)
        for kind in lay.kinds:
            print(f"      {kind}: {lay.signature(kind)}", file=out)
            if kind in lay.differences:
                print(f"          by-design differences: {', '.join(lay.differences[kind])}",
                      file=out)
            if kind in lay.semantics:
                print(f"          checked against: {lay.semantics[kind].text}", file=out)
        print(f"      declared missing: {', '.join(lay.unsupported) or 'nothing'}; "
              f"{lay.notes}", file=out)
    print("\nchecks (id — tier — what it asserts):", file=out)
    for kind in SPECS:
        for c in checks_for(kind):
            print(f"  {c.id} — {c.tier} — {c.summary}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``refmath``: a missing torch (or another optional library a command needs) is one
    line naming the command that installs it, exit 2 — never a traceback."""
    try:
        return _main(argv)
    except ModuleNotFoundError as err:
        extra = {"torch": "pip install torch (CPU build: pip install torch --index-url "
                          "https://download.pytorch.org/whl/cpu)",
                 "jax": "pip install 'refmath[jax]'"}
        top = (err.name or "").partition(".")[0]
        if top not in extra and top not in ("numba", "hypothesis"):
            raise
        how = extra.get(top, f"pip install {top}")
        print(f"refmath: this command needs {top}, which is not installed: {how}",
              file=sys.stderr)
        return 2


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refmath",
        description="Verify the bundled Torch implementations against the exact oracles, "
                    "the oracles against the identities, and the claims ledger. Exit codes: "
                    "0 pass, 1 a check failed, 2 a usage error.")
    parser.add_argument("--version", action="version", version=f"refmath {__version__}")
    parser.add_argument("--kind", action="append", metavar="NAME",
                        help="only these functions (repeatable), e.g. gae, identities")
    _run_options(parser)
    sub = parser.add_subparsers(dest="command")
    claims = sub.add_parser("claims", help="the claims ledger with exact verdicts")
    claims.add_argument("--id", dest="claim_id", default=None, help="show one claim in full")
    claims.add_argument("--json", dest="as_json", action="store_true",
                        help="id, source, statement, verdict, evidence per claim")
    chk = sub.add_parser("check", help="check YOUR implementation: refmath check KIND "
                                       "module:function [--convention FLAGS]")
    chk.add_argument("kind", nargs="?", help="the function kind, e.g. gae, "
                     "discounted_returns, clipped_surrogate (with TARGET omitted too: every "
                     "[tool.refmath.check.NAME] table of ./pyproject.toml)")
    chk.add_argument("target", nargs="?",
                     help="module:function (importable from the current directory)")
    chk.add_argument("--bind", default=None, metavar="BINDING",
                     help="the binding in its text form, e.g. 'cleanrl,arg.rewards=r,"
                          "only.mode=token-mean|seq-mean-token-mean,xfail=CHECK:DIFFERENCE,"
                          "computes_in=float32' (joined with --layout, --convention, --arg, "
                          "--only, --xfail)")
    chk.add_argument("--computes-in", default=None, choices=("float32", "float64"),
                     help="the precision your function computes in: float64 inputs are then "
                          "allowed that precision's error bound (a value bug still fails)")
    from .checks.core import Capabilities

    chk.add_argument("--convention", default=None,
                     help="comma-separated flags: time_major, done, values_with_bootstrap, "
                          "trailing_singleton, numpy, and no_<capability> for "
                          + ", ".join(Capabilities.names()))
    chk.add_argument("--check", dest="checks", action="append", metavar="ID",
                     help="run only this check (repeatable), e.g. exact_small or "
                          "gae.exact_small")
    chk.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                     help="fail a check when one call takes longer (default 60)")
    chk.add_argument("--json", action="store_true", help="print the per-check results as JSON")
    chk.add_argument("--layout", default=None, help="your function is written as in: cleanrl, "
                     "sb3, verl, torchrl, trl (`refmath list` shows their signatures)")
    chk.add_argument("--arg", action="append", metavar="LAYOUT_NAME=YOUR_NAME",
                     help="your name for a parameter of the layout or of SPEC (repeatable)")
    chk.add_argument("--only", action="append", metavar="OPTION=V1,V2",
                     help="the values of an enumerated option your function supports, e.g. "
                          "loss_agg_mode: --only mode=token-mean (repeatable)")
    chk.add_argument("--xfail", action="append", metavar="CHECK_ID[:DIFFERENCE][=REASON]",
                     help="an expected failure: reported XFAIL, does not fail the run "
                          "(repeatable); with :DIFFERENCE (e.g. gae.ignored_numbers:"
                          "nan_bootstrap_multiplied) only the failures that known difference "
                          "reproduces are waived")
    chk.add_argument("--xfails-file", default=None, metavar="PATH",
                     help="expected failures, one CHECK_ID[=REASON] per line")
    chk.add_argument("--strict", action="store_true",
                     help="an expected failure that passes (XPASS) fails the run")
    chk.add_argument("--discover", action="store_true",
                     help="probe which capabilities your function has (one tiny exact call "
                          "each) and print the --convention line they suggest; runs no check")
    chk.add_argument("--fail-on", default=None, metavar="TIERS",
                     help="comma-separated tiers whose failures exit 1 (default all): "
                          "correctness, precision, robustness, hygiene, validation")
    _run_options(chk, suppress=True)
    sub.add_parser("list", help="the kinds with their signatures, the layouts, the checks "
                                "with their tiers")
    sub.add_parser("peers", help="check real libraries' functions (pip install "
                                 "'refmath[peers]'); prints the verdict table")
    args = parser.parse_args(argv)
    profile = args.profile or default_profile()
    if args.command == "peers":
        from .peers import markdown, run_peers

        print(markdown(run_peers(profile)))
        return 0
    if args.command == "claims":
        return run_claims(args.claim_id, as_json=args.as_json)
    if args.command == "list":
        return run_list(sys.stdout)
    if args.command == "check" and (args.kind is None) != (args.target is None):
        return _usage_error(ValueError("give KIND and TARGET, or neither (then every "
                                       "[tool.refmath.check.NAME] of ./pyproject.toml)"))
    options = {}
    if args.command == "check":
        options = dict(binding=args.bind, layout=args.layout, arg=args.arg, only=args.only,
                       expected_failures=args.xfail, xfails_file=args.xfails_file,
                       computes_in=args.computes_in)
    if args.command == "check" and args.discover:
        return run_discover(args.kind, args.target, convention=args.convention, **options)
    if args.command == "check":
        run = dict(seed=args.seed, max_examples=args.max_examples, timeout=args.timeout,
                   as_json=args.json, checks=args.checks, strict=args.strict,
                   fail_on=(args.fail_on.split(",") if args.fail_on else None))
        if args.kind is None:
            return run_configured(profile, args.convention, options, **run)
        return run_user_check(args.kind, args.target, args.convention, profile, **run,
                              **options)
    status = run_main_job(args.kind, profile, seed=args.seed, max_examples=args.max_examples)
    if args.kind is None and status != 2:
        status = max(status, 1 if _claims_summary(sys.stdout) else 0)
    return status


def _run_options(parser: argparse.ArgumentParser, suppress: bool = False) -> None:
    """--profile, --seed, --max-examples: on the main command and on ``check`` (either
    place works: ``refmath --seed 3 check ...`` and ``refmath check ... --seed 3``)."""
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--profile", default=default,
                        help="Hypothesis profile: ci (default, deterministic), quick, detect, "
                             "random, thorough (every per-check cap lifted)")
    parser.add_argument("--seed", type=int, default=default,
                        help="a random seed (randomized examples, reproducible by the seed)")
    parser.add_argument("--max-examples", type=int, default=default, metavar="N",
                        help="examples per check (overrides the profile)")


if __name__ == "__main__":
    sys.exit(main())
