"""A binding: how one user's function meets a kind's row — one object, one text form.

Everything that says how to call a function that is not written in SPEC's own layout is part
of its :class:`Binding`, and every runner (``check()``, ``refmath check``, the pytest plugin,
``parametrize_with_checks`` and a ``[tool.refmath.check.NAME]`` table of a ``pyproject.toml``)
builds one through :func:`binding_from` and hands it to the same resolver:

* ``layout``: a built-in layout (a named binding kept as data, :mod:`.layouts`);
* ``convention``: flags for a function in SPEC's names but another layout (time first, one
  ``done`` flag, values of length T+1, a trailing singleton axis, NumPy arrays) and
  ``no_<capability>`` for what it does not support (:class:`Convention`);
* ``args``: the user's names for parameters (``rewards=r``), of the layout or of SPEC;
* ``only``: the option values the function supports (``mode=token-mean|seq-mean-token-mean``);
* ``xfail``: waivers, ``CHECK_ID`` or ``CHECK_ID:DIFFERENCE`` (a known difference,
  :mod:`.differences`: only the failures that difference reproduces are waived);
* ``computes_in``: the declared compute precision (``float32``): every value check then
  allows that precision's error bound, and a value beyond it is still WRONG;
* ``result``: which part of what the function returns is the kind's result: an index of a
  tuple (``result=1``), a key of a dict or a field of a named tuple (``result=advantages``).

The text form is comma-separated words: ``cleanrl,no_mask,arg.rewards=r,
only.mode=token-mean|seq-mean-token-mean,xfail=gae.ignored_numbers:nan_bootstrap_multiplied,
computes_in=float32``; the mapping form (a TOML table, a dict) has the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from ..checks import Capabilities, UsageError, suggest

__all__ = ["Binding", "Convention", "binding_from", "parse_binding", "parse_convention",
           "parse_only", "parse_renames", "parse_xfails", "picked", "COMPUTE_DTYPES"]

COMPUTE_DTYPES = ("float32", "float64")


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
    * ``jax``: JAX arrays in and out (DLPack, float64 in scope, per-step shapes bucketed so
      that a jitted function compiles a handful of times: :mod:`.jax_bridge`; no autograd);
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
    jax: bool = False
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
        if self.numpy or self.jax:
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

    def reshapes(self) -> bool:
        """Whether the arrays themselves change (not only declared capabilities)."""
        return any(getattr(self, f.name) for f in fields(self)
                   if f.name not in ("unsupported", "half"))

    def words(self) -> list[str]:
        flags = [f.name for f in fields(self) if f.type == "bool" and getattr(self, f.name)]
        return flags + [f"no_{u}" for u in self.unsupported]

    def __str__(self) -> str:
        return ",".join(self.words()) or "spec"


_FLAGS = tuple(f.name for f in fields(Convention) if f.name != "unsupported")


def parse_convention(text: str | list[str] | tuple[str, ...] | None) -> Convention:
    """``"time_major,done,no_mask"`` → Convention (``no_X`` declares capability X missing)."""
    if isinstance(text, Convention):
        return text
    words = [w.strip() for w in (text.split(",") if isinstance(text, str) else (text or ()))
             if w.strip() and w.strip() != "spec"]
    flags, unsupported = {}, []
    for word in words:
        if word.startswith("no_"):
            unsupported.append(word[3:])
        elif word in _FLAGS:
            flags[word] = True
        else:
            raise UsageError(f"unknown convention flag {word!r}"
                             f"{suggest(word, list(_FLAGS) + ['no_' + c for c in Capabilities.names()])}"
                             f"; known: {sorted(_FLAGS)} and no_<capability> for "
                             f"{Capabilities.names()}")
    convention = Convention(**flags, unsupported=tuple(dict.fromkeys(unsupported)))
    convention.capabilities()  # unknown capability names: a usage error now
    return convention


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


def _pairs(items: list[str] | str, what: str, form: str) -> list[tuple[str, str]]:
    """``["k=v", ...]`` (or one such string) → ``[(k, v), ...]``; no ``=`` is a usage error."""
    pairs = []
    for item in [items] if isinstance(items, str) else items:
        if "=" not in item:
            raise UsageError(f"{what} {item!r}: expected {form}")
        key, _, value = item.partition("=")
        pairs.append((key.strip(), value))
    return pairs


def parse_only(items: list[str] | str | Mapping | None,
               separator: str = ",") -> dict[str, tuple[Any, ...]]:
    """``["mode=token-mean,seq-mean-token-mean"]`` (or one such string, or a mapping) →
    ``{"mode": ("token-mean", ...)}``."""
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {k: tuple(v) if isinstance(v, (list, tuple)) else (v,) for k, v in items.items()}
    return {key: tuple(_parse_value(v) for v in values.split(separator))
            for key, values in _pairs(items, "only", f"OPTION=V1{separator}V2")}


def parse_renames(items: list[str] | str | Mapping | None) -> dict[str, str]:
    """``["rewards=r", "values=v"]`` → ``{"rewards": "r", "values": "v"}``."""
    if not items:
        return {}
    if isinstance(items, Mapping):
        return {str(k): str(v) for k, v in items.items()}
    return {key: value.strip() for key, value in _pairs(items, "arg", "PARAMETER=YOUR_NAME")}


def parse_xfails(items: list[str] | str | Mapping | None,
                 path: str | None = None) -> dict[str, str]:
    """``["gae.ignored_numbers=leaks a NaN bootstrap by design"]`` (and the lines of an
    xfails file, ``#`` comments allowed) → ``{check id[:difference]: reason}``."""
    out: dict[str, str] = {}
    if isinstance(items, Mapping):
        out.update({str(k): str(v) for k, v in items.items()})
        items = []
    if isinstance(items, str):
        items = [items]
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


@dataclass(frozen=True)
class Binding:
    """How one function meets its kind's row (module docstring); ``Binding()`` is SPEC's own
    layout with every capability."""

    layout: str | None = None
    convention: Convention = Convention()
    args: Mapping[str, str] = field(default_factory=dict)
    only: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    xfail: Mapping[str, str] = field(default_factory=dict)
    computes_in: str | None = None
    result: str | None = None  # the part of the function's return value to check

    def __post_init__(self) -> None:
        if self.computes_in is not None and self.computes_in not in COMPUTE_DTYPES:
            raise UsageError(f"computes_in={self.computes_in!r}: one of "
                             f"{', '.join(COMPUTE_DTYPES)}")

    def merged(self, other: "Binding") -> "Binding":
        """``other`` on top of this one (a layout or precision it names wins; renames,
        option subsets, waivers and missing capabilities are joined)."""
        if self.layout and other.layout and self.layout != other.layout:
            raise UsageError(f"two layouts given: {self.layout!r} and {other.layout!r}")
        conv = Convention(**{f: getattr(self.convention, f) or getattr(other.convention, f)
                             for f in _FLAGS},
                          unsupported=tuple(dict.fromkeys(self.convention.unsupported
                                                          + other.convention.unsupported)))
        return Binding(other.layout or self.layout, conv, {**self.args, **other.args},
                       {**self.only, **other.only}, {**self.xfail, **other.xfail},
                       other.computes_in or self.computes_in, other.result or self.result)

    def text(self) -> str:
        """The one text form (parsed back by :func:`parse_binding`)."""
        words = ([self.layout] if self.layout else []) + self.convention.words()
        words += [f"arg.{k}={v}" for k, v in self.args.items()]
        words += [f"only.{k}={'|'.join(_show(v) for v in vs)}" for k, vs in self.only.items()]
        words += [f"xfail={k}" for k in self.xfail]
        if self.computes_in:
            words.append(f"computes_in={self.computes_in}")
        if self.result is not None:
            words.append(f"result={self.result}")
        return ",".join(words)

    def __str__(self) -> str:
        return self.text() or "spec"


def _show(v: Any) -> str:
    return "none" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


_KEYS = ("layout", "convention", "arg", "only", "xfail", "computes_in", "result")


def parse_binding(text: str | None) -> Binding:
    """The text form (module docstring) → :class:`Binding`."""
    from .layouts import LAYOUTS

    if not text or not text.strip() or text.strip() == "spec":
        return Binding()
    layout, conv, args, only, xfail, computes_in, result = None, [], {}, {}, {}, None, None
    for word in (w.strip() for w in text.split(",") if w.strip()):
        key, eq, value = word.partition("=")
        if not eq:
            if word in LAYOUTS:
                if layout and layout != word:
                    raise UsageError(f"binding {text!r}: two layouts ({layout}, {word})")
                layout = word
            elif word in _FLAGS or word.startswith("no_"):
                conv.append(word)
            elif word.startswith(("arg.", "only.", "xfail", "computes_in")):
                raise UsageError(f"binding word {word!r}: expected arg.NAME=YOURS, "
                                 "only.OPTION=V1|V2, xfail=CHECK_ID[:DIFFERENCE] or "
                                 "computes_in=float32")
            else:
                raise UsageError(f"binding word {word!r} is neither a layout "
                                 f"({', '.join(LAYOUTS)}) nor a convention flag"
                                 f"{suggest(word, list(LAYOUTS) + list(_FLAGS))}")
        elif key.startswith("arg."):
            args[key[4:]] = value
        elif key.startswith("only."):
            only.update(parse_only([f"{key[5:]}={value}"], separator="|"))
        elif key == "xfail":
            xfail[value] = "declared in the binding"
        elif key == "computes_in":
            computes_in = value
        elif key == "result":
            result = value.strip()
        else:
            raise UsageError(f"binding word {word!r}: expected arg.NAME=YOURS, "
                             "only.OPTION=V1|V2, xfail=CHECK_ID[:DIFFERENCE] or "
                             f"computes_in=float32 or result=INDEX_OR_KEY"
                             f"{suggest(key, ['arg.', 'only.', 'xfail', 'computes_in', 'result'])}")
    return Binding(layout, parse_convention(conv), args, only, xfail, computes_in, result)


def _from_mapping(table: Mapping[str, Any]) -> Binding:
    """A ``[tool.refmath.check.NAME]`` table (or a dict with the same keys) → Binding."""
    unknown = set(table) - set(_KEYS) - {"kind", "target", "binding"}
    if unknown:
        word = sorted(unknown)[0]
        raise UsageError(f"unknown binding key {word!r}{suggest(word, list(_KEYS))}; keys: "
                         f"{', '.join(_KEYS)} (and kind, target)")
    base = parse_binding(table.get("binding"))
    layout = table.get("layout")
    if layout is not None:
        from .layouts import LAYOUTS

        if layout not in LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}{suggest(layout, list(LAYOUTS))}; "
                             f"known: {', '.join(LAYOUTS)}")
    return base.merged(Binding(layout, parse_convention(table.get("convention")),
                               parse_renames(table.get("arg")), parse_only(table.get("only")),
                               parse_xfails(table.get("xfail")), table.get("computes_in"),
                               None if table.get("result") is None else str(table["result"])))


def binding_from(binding: "Binding | str | Mapping | None" = None, *,
                 convention: Convention | str | None = None, layout: str | None = None,
                 arg: list[str] | Mapping | None = None,
                 only: list[str] | str | Mapping | None = None,
                 expected_failures: list[str] | Mapping | None = None,
                 xfails_file: str | None = None, computes_in: str | None = None) -> Binding:
    """Every way of saying it, joined into one :class:`Binding`: a binding (object, text or
    mapping) and the separate options of ``check()`` and the CLI."""
    if isinstance(binding, Binding):
        base = binding
    elif isinstance(binding, Mapping):
        base = _from_mapping(binding)
    else:
        base = parse_binding(binding)
    if layout is not None:
        from .layouts import LAYOUTS

        if layout not in LAYOUTS:
            raise UsageError(f"unknown layout {layout!r}{suggest(layout, list(LAYOUTS))}; "
                             f"known: {', '.join(LAYOUTS)}")
    extra = Binding(layout, parse_convention(convention), parse_renames(arg), parse_only(only),
                    parse_xfails(expected_failures, xfails_file), computes_in)
    return base.merged(extra)


def picked(fn: Any, result: str | None) -> Any:
    """``fn`` returning only the part of its value that ``result`` names (module docstring):
    an index of a tuple or list, else a dict key or a named-tuple field. A value without
    that part is the binding's error (``CallMismatch``: exit 2), not the function's."""
    if result is None:
        return fn
    import functools

    from ..checks.guard import CallMismatch

    index = int(result) if result.lstrip("-").isdigit() else None

    @functools.wraps(fn)
    def call(*args: Any, **kw: Any) -> Any:
        out = fn(*args, **kw)
        try:
            if index is not None:
                return out[index]
            return out[result] if isinstance(out, Mapping) else getattr(out, result)
        except (IndexError, KeyError, TypeError, AttributeError):
            raise CallMismatch(f"binding result={result}: your function returned "
                               f"{type(out).__name__}"
                               + (f" with keys {list(out)}" if isinstance(out, Mapping) else "")
                               + f", which has no part {result!r}") from None

    return call
