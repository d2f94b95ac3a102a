"""The ``refmath`` command.

``refmath`` (no arguments) runs the whole check registry: every bundled Torch implementation
(``refmath_torch``) against its exact oracle, and refmath's own oracles against the identities
of SPEC §2. It prints one table row per function and a final verdict line; exit code 0 when
every check passed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Sequence

from . import __version__

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


def run_main_job(kinds: Sequence[str] | None, profile: str, out=None) -> int:
    """Run the registry on the bundled implementations and the identities; print; 0/1."""
    out = out or sys.stdout
    import refmath_torch

    from .checks import checks_for, kinds as all_kinds, run_check

    selected = list(kinds) if kinds else all_kinds()
    header = ("function", "checks", "passed", "failed", "n/a", "worst err/bound", "seconds")
    rows = [header]
    failures = []
    totals = {"run": 0, "failed": 0, "na": 0}
    print(f"refmath: checking the bundled implementations (refmath_torch) and the identities "
          f"[profile {profile}]", file=out, flush=True)
    for kind in selected:
        fn = None if kind == IDENTITIES else getattr(refmath_torch, kind, None)
        if fn is None and kind != IDENTITIES:
            continue
        start = time.perf_counter()
        results = [run_check(c, fn, profile) for c in checks_for(kind)]
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


def run_claims(claim_id: str | None = None, out=None) -> int:
    """``refmath claims``: the ledger as a table; ``--id X``: one claim with its evidence."""
    out = out or sys.stdout
    from .claims import all_claims

    claims = all_claims()
    if claim_id is not None:
        if claim_id not in claims:
            print(f"no claim {claim_id!r}; known: {', '.join(claims)}", file=out)
            return 2
        c = claims[claim_id]
        v = c.run()
        print(c.id, file=out)
        print(f"  source:    {c.source}", file=out)
        print(f"  statement: {c.statement}", file=out)
        print(f"  verdict:   {v.status} (expected {c.expected})", file=out)
        if v.conditions:
            print(f"  conditions: {v.conditions}", file=out)
        print(f"  evidence:  {v.evidence}", file=out)
        if v.counterexample:
            print(f"  counterexample: {v.counterexample}", file=out)
        return 1 if _claim_failed(c, v) else 0
    rows = [("claim", "verdict", "expected", "source")]
    failed = 0
    for c, v in _claim_rows():
        failed += _claim_failed(c, v)
        mark = "" if v.status == c.expected else "  <-- differs"
        rows.append((c.id, v.status + mark, c.expected, c.source))
    print(_table(rows, left=True), file=out)
    print(f"\n{len(rows) - 1} claims; {failed} expected-true claim(s) failed. "
          "`refmath claims --id ID` shows one claim with its evidence.", file=out)
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
                   out=None) -> int:
    """``refmath check``: the whole check set of ``kind`` on the user's function; 0/1."""
    out = out or sys.stdout
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # module:function is looked up from the current directory
    from .conformance import check
    from .strategies import load_default_profile

    report = check(kind, target, convention=convention, profile=profile or
                   load_default_profile())
    print(report, file=out)
    return 0 if report.passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="refmath",
        description="Verify the bundled Torch implementations against the exact oracles, "
                    "the oracles against the identities, and the claims ledger.")
    parser.add_argument("--kind", action="append", metavar="NAME",
                        help="only these functions (repeatable), e.g. gae, identities")
    parser.add_argument("--profile", default=None,
                        help="Hypothesis profile: ci (default, deterministic) or thorough")
    sub = parser.add_subparsers(dest="command")
    claims = sub.add_parser("claims", help="the claims ledger with exact verdicts")
    claims.add_argument("--id", dest="claim_id", default=None, help="show one claim in full")
    chk = sub.add_parser("check", help="check YOUR implementation: refmath check KIND "
                                       "module:function [--convention FLAGS]")
    chk.add_argument("kind", help="the function kind, e.g. gae, discounted_returns, "
                                  "clipped_surrogate")
    chk.add_argument("target", help="module:function (importable from the current directory)")
    chk.add_argument("--convention", default=None,
                     help="comma-separated flags: time_major, done, values_with_bootstrap, "
                          "trailing_singleton, numpy, and no_<capability> for mask, truncated,"
                          " per_step_gamma, batch, gradients, validates_input, "
                          "inconsistent_values")
    chk.add_argument("--profile", dest="check_profile", default=None)
    sub.add_parser("peers", help="check real libraries' functions (pip install "
                                 "'refmath[peers]'); prints the verdict table")
    args = parser.parse_args(argv)
    if args.command == "peers":
        from .peers import markdown, run_peers
        from .strategies import load_default_profile

        print(markdown(run_peers(args.profile or load_default_profile())))
        return 0
    if args.command == "claims":
        return run_claims(args.claim_id)
    if args.command == "check":
        return run_user_check(args.kind, args.target, args.convention,
                              args.check_profile or args.profile)
    from .strategies import load_default_profile

    profile = args.profile or load_default_profile()
    status = run_main_job(args.kind, profile)
    if args.kind is None:
        status = max(status, 1 if _claims_summary(sys.stdout) else 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
