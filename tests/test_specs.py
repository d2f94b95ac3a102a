"""The spec table is derived from the oracles' signatures: it must agree with the twins and
with the enumerations both sides keep."""

import inspect

import pytest

import refmath
import refmath_torch
from refmath.checks import kinds
from refmath.checks.specs import FLAG_NAMES, SPECS


def test_every_twin_has_a_spec_and_every_spec_a_twin():
    assert set(SPECS) == set(refmath_torch.__all__)
    assert kinds() == list(SPECS) + ["identities"]


@pytest.mark.parametrize("name", list(SPECS))
def test_spec_reads_the_oracle_and_matches_the_twin(name):
    spec = SPECS[name]
    assert spec.oracle is getattr(refmath, name)
    twin = inspect.signature(getattr(refmath_torch, name)).parameters
    assert spec.parameters == tuple(twin)
    for p, param in spec.signature.parameters.items():
        assert twin[p].kind == param.kind
        if param.default is not inspect.Parameter.empty:  # same defaults (0.5 == Fraction(1, 2))
            assert twin[p].default == param.default, f"{name}.{p}"
    for option, values in spec.options.items():
        assert spec.has(option), f"{name}: option {option!r} is not a parameter"
        assert values, f"{name}.{option}: no allowed values"
    assert set(spec.flags) <= set(FLAG_NAMES)


def test_enumerations_agree_on_both_sides():
    """refmath_torch never imports refmath, so each side keeps its own copy of an
    enumeration: every one the twin module keeps (found, not listed here) equals the
    oracle module's."""
    import importlib

    mirrored = 0
    for name in refmath._MODULES:
        twin = importlib.import_module(name.__name__.replace("refmath.", "refmath_torch.", 1))
        for const in (n for n in dir(twin) if n.isupper() and not n.startswith("_")):
            if hasattr(name, const) and isinstance(getattr(twin, const), tuple):
                assert getattr(name, const) == getattr(twin, const), \
                    f"{twin.__name__}.{const} differs from {name.__name__}.{const}"
                mirrored += 1
    assert mirrored >= 7  # KL_ESTIMATORS, the clip forms, modes, group methods, correction
    # levels and modes, trace methods


def test_every_kind_is_in_the_docs_and_the_cli_help_names_every_capability():
    import pathlib

    from refmath.checks.core import Capabilities

    functions = pathlib.Path(__file__).resolve().parents[1] / "docs" / "functions.md"
    missing = [k for k in SPECS if f"`{k}(" not in functions.read_text()]
    assert not missing, f"the tables of docs/functions.md lack {missing}"
    from refmath.cli import main

    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(out.getvalue().split())
    assert all(c in text for c in Capabilities.names()), text


def test_derived_call_shapes():
    gae = SPECS["gae"]
    assert gae.positional_arrays == ("rewards", "values", "next_values")
    assert gae.flags == ("terminated", "truncated", "mask")
    assert SPECS["discounted_returns"].keyword_arrays == ("next_values",)
    assert SPECS["td_errors"].flags == ("terminated",)
    assert "per_step_gamma" in gae.capabilities and "mask" not in SPECS["td_errors"].capabilities
    args, kwargs = SPECS["whiten"].bind({"x": 1, "mask": None, "unbiased": False})
    assert args == [1] and kwargs == {"unbiased": False}  # an omitted mask is left out
    args, kwargs = SPECS["aggregate_loss"].bind({"per_step_loss": 1, "mask": 2, "mode": "m"})
    assert args == [1, 2, "m"] and kwargs == {}
