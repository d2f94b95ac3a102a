"""Where a failing value differs from the exact one, said in the user's terms.

A failed value check names its worst element; the ``where`` line says the PATTERN of all the
elements beyond their bounds: which steps (terminated ones, time-limit cuts, segment ends,
inside segments — the carry —, the steps before a termination, masked positions, right after
a hole, one output of a pair) and how (a constant factor, a constant offset, the sign
flipped, NaN, yours 0). The pattern is read off the inputs' own flags, with no knowledge of
any particular mistake, so it is there on every failure, a known mistake matched or not.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["pattern", "changed", "OUTPUTS"]

# the names of a kind's outputs when it returns several, stacked on a last axis
OUTPUTS = {"vtrace": ("vs", "pg_advantages")}


def _flag(values: dict[str, Any] | None, name: str, shape: tuple[int, ...], default: bool
          ) -> np.ndarray:
    x = (values or {}).get(name)
    if x is None:
        return np.full(shape, default, dtype=bool)
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    if x.shape != shape or x.dtype == object:
        return np.full(shape, default, dtype=bool)
    return x.astype(bool)


def _segments(term: np.ndarray, trunc: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
    """Per position of [..., T]: the segment structure (masks by compression: a masked step
    is not in any segment, and the present steps around a hole are adjacent)."""
    shape = term.shape
    T = shape[-1] if shape else 0
    out = {k: np.zeros(shape, bool) for k in ("end", "first", "before_term", "before_trunc",
                                               "after_hole", "last")}
    for idx in np.ndindex(shape[:-1]):
        present = [t for t in range(T) if mask[idx + (t,)]]
        start = True
        segment: list[int] = []
        for i, t in enumerate(present):
            if start:
                out["first"][idx + (t,)] = True
            if t > 0 and not mask[idx + (t - 1,)]:
                out["after_hole"][idx + (t,)] = True
            segment.append(t)
            last = i == len(present) - 1
            end = term[idx + (t,)] or trunc[idx + (t,)] or last
            if last:
                out["last"][idx + (t,)] = True
            if end:
                out["end"][idx + (t,)] = True
                name = "before_term" if term[idx + (t,)] else \
                    "before_trunc" if trunc[idx + (t,)] else None
                if name:
                    for s in segment[:-1]:
                        out[name][idx + (s,)] = True
                segment, start = [], True
            else:
                start = False
    return out


def _places(off: np.ndarray, values: dict[str, Any] | None, time_axis: bool) -> str:
    """The tightest named set of positions that holds every deviation."""
    shape = off.shape
    mask = _flag(values, "mask", shape, True)
    term = _flag(values, "terminated", shape, False) & mask
    trunc = _flag(values, "truncated", shape, False) & mask & ~term
    named: list[tuple[str, np.ndarray]] = [("masked (padded) positions", ~mask)]
    time_axis = time_axis or any(k in (values or {}) for k in ("terminated", "truncated"))
    if shape and (time_axis or not mask.all()):
        seg = _segments(term, trunc, mask)
        step = "steps" if time_axis else "positions"
        named += [
            ("terminated steps (their bootstrap)", term),
            ("time-limit (truncated) steps (their bootstrap)", trunc),
            (f"the last unmasked {step[:-1]} of each row", seg["last"]),
            (f"segment ends (an episode's last step, or a row's last unmasked "
             f"{step[:-1]})", seg["end"]),
            (f"{step} before a termination, inside terminating episodes", seg["before_term"]),
            (f"{step} before a time-limit cut, inside truncated episodes",
             seg["before_trunc"]),
            (f"{step} of episodes that terminate (the terminal step and the {step} before "
             f"it)", seg["before_term"] | term),
            (f"{step} of episodes cut by a time limit (the cut and the {step} before it)",
             seg["before_trunc"] | trunc),
            (f"{step} right after a masked hole", seg["after_hole"]),
            (f"the first {step[:-1]} of each segment", seg["first"]),
            (f"{step} inside segments, never at a segment's last {step[:-1]} (the carry)",
             mask & ~seg["end"]),
            (f"unmasked {step}", mask),
        ]
    # the tightest set; of equal sets, the plainest name (the list runs specific → plain)
    fits = [(int(p.sum()), -i, text, p) for i, (text, p) in enumerate(named)
            if p.any() and not (off & ~p).any()]
    k = int(off.sum())
    if not fits and off.all():
        return "everywhere"
    hit = off.any(-1, keepdims=True)  # the rows (along the last axis) with a deviation
    if not fits and off.ndim >= 2 and not hit.all() and np.array_equal(
            off, np.broadcast_to(hit, off.shape)):
        rows = [tuple(int(i) for i in ix) for ix in np.argwhere(hit[..., 0])[:6]]
        return (f"every element of {int(hit.sum())} of the {hit.size} rows (the last axis: "
                f"a group, a sequence): rows {rows}")
    if not fits:
        where = [tuple(int(i) for i in ix) for ix in np.argwhere(off)[:6]]
        more = f" (+{k - 6} more)" if k > 6 else ""
        return f"at {k} of {off.size} positions: {where}{more}"
    n, _, text, _ = min(fits, key=lambda f: f[:2])
    if n == off.size and not (~mask).any():
        return "everywhere" if k == n else f"at {k} of the {n} positions"
    return (f"exactly at the {text} ({n})" if k == n else f"only at {text} ({k} of {n})")


def _how(got: np.ndarray, exact: np.ndarray) -> str:
    """How the deviating values relate to the exact ones, when one simple relation holds."""
    if got.size == 0:
        return ""
    several = got.size > 1  # a factor, an offset or a direction needs two witnesses
    if np.isnan(got).any():
        return "NaN where the exact value is finite" if np.isnan(got).all() else \
            "some NaN where the exact value is finite"
    scale = max(float(np.max(np.abs(exact))), 1e-300)
    tol = 1e-9 * scale
    nonzero = np.abs(exact) > tol
    if np.all(np.abs(got) <= tol) and nonzero.any():
        return "yours is 0 there"
    if nonzero.all() and np.all(np.abs(got + exact) <= tol):
        return "with the sign flipped (yours = −exact)"
    if not several:
        return ""
    with np.errstate(invalid="ignore"):  # ±inf − ±inf: no constant factor or offset there
        if nonzero.all():
            ratios = got / exact
            r0 = float(ratios.flat[0])
            if abs(r0 - 1) > 1e-6 and np.all(np.abs(ratios - r0) <= 1e-9 * max(abs(r0), 1.0)):
                return f"by a constant factor: yours = {r0:.6g} × exact"
        diff = got - exact
        d0 = float(diff.flat[0])
        if abs(d0) > tol and np.all(np.abs(diff - d0) <= tol):
            return f"by a constant offset: yours = exact {'+' if d0 >= 0 else '−'} {abs(d0):.6g}"
    if np.all(diff > 0):
        return "yours is larger at every one"
    if np.all(diff < 0):
        return "yours is smaller at every one"
    return ""


def pattern(got: np.ndarray, exact: np.ndarray, off: np.ndarray,
            values: dict[str, Any] | None = None, time_axis: bool = False,
            outputs: tuple[str, ...] = ()) -> str:
    """The ``where`` text: which elements are off (``off``: beyond their bound), and how."""
    got, exact, off = (np.asarray(a) for a in (got, exact, off))
    if not off.any():
        return ""
    parts = []
    if off.ndim == 0:
        how = _how(got.reshape(1), exact.reshape(1))
        if how or not float(exact) or not np.isfinite(float(got)):
            return how or "the one value differs"
        return f"the one value: yours / exact = {float(got) / float(exact):.6g}"
    flags_shape = next((tuple(np.shape(v)) for k, v in (values or {}).items()
                        if k in ("mask", "terminated", "truncated") and v is not None), None)
    if flags_shape is not None and off.ndim == len(flags_shape) + 1 and \
            off.shape[:-1] == flags_shape:  # a stacked pair (V-trace's vs, pg_advantages)
        which = [i for i in range(off.shape[-1]) if off[..., i].any()]
        if len(which) < off.shape[-1]:
            names = outputs or tuple(f"output {i + 1}" for i in range(off.shape[-1]))
            parts.append(f"only in {', '.join(names[i] for i in which)}")
        places = off.any(axis=-1)
    else:
        places = off
    parts.append(_places(places, values, time_axis))
    how = _how(got[off], exact[off])
    if how:
        parts.append(how)
    elif off.sum() == 1 and float(exact[off][0]) and np.isfinite(float(got[off][0])):
        parts.append(f"yours / exact = {float(got[off][0]) / float(exact[off][0]):.6g}")
    tail = "" if places.all() else "; everything else agrees"
    return "; ".join(parts) + tail


def changed(prefix: str, got: np.ndarray, reference: np.ndarray,
            values: dict[str, Any] | None = None, time_axis: bool = False,
            tol: Any = 0.0) -> str:
    """The ``where`` text of a comparison with another output of the same function (the same
    input with ignored numbers changed, a row alone, a column of a Jacobian): ``prefix`` and
    the pattern of the elements that differ by more than ``tol`` (NaN against NaN agrees)."""
    got, reference = np.asarray(got, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if got.shape != reference.shape:
        return f"{prefix}the shape: {got.shape} against {reference.shape}"
    with np.errstate(invalid="ignore"):
        off = ~((np.abs(got - reference) <= tol) | (got == reference)
                | (np.isnan(got) & np.isnan(reference)))
    try:
        text = pattern(got, reference, off, values, time_axis)
    except Exception:  # noqa: BLE001 - a description is never worth hiding the failure
        text = ""
    return prefix + (text or "the values differ")
