"""Declared boundaries: every module says what it exports (``__all__``, each name real); the
packages' exports are derived from their modules'; the import layering is kept: oracles ←
strategies and profiles ← checks ← conformance ← CLI, never back up."""

import ast
import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import refmath
import refmath_torch

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _modules(package) -> list[str]:
    names = [package.__name__]
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        names.append(info.name)
    return names


MODULES = _modules(refmath) + _modules(refmath_torch)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_all_and_each_name_exists(name):
    module = importlib.import_module(name)
    assert hasattr(module, "__all__"), f"{name} has no __all__"
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it lacks: {missing}"
    assert len(set(module.__all__)) == len(module.__all__), f"{name}: duplicates in __all__"


def test_package_exports_are_the_modules_exports():
    """A function added to its module's __all__ is exported by the package: no second list."""
    for package in (refmath, refmath_torch):
        for module in package._MODULES:
            for n in module.__all__:
                if not n.isupper():
                    assert n in package.__all__, f"{module.__name__}.{n} not exported"
    assert set(refmath_torch.__all__) <= set(refmath.__all__)


def _imports(path: pathlib.Path) -> set[str]:
    """The refmath modules a file imports (absolute names; relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("refmath")}


LAYERS = {  # a module may import its own layer and the ones below it, never one above
    "oracles": 0, "refmath.strategies": 1, "refmath.profiles": 1, "refmath.checks": 2,
    "refmath.claims": 2, "refmath.conformance": 3, "refmath.peers": 3,
    "refmath.peers_lm": 3, "refmath.pytest_plugin": 4, "refmath.suite": 4, "refmath.cli": 4,
    "refmath.__main__": 5,  # `python -m refmath`: the command line, above everything
}


def _layer(module: str) -> int:
    for prefix, layer in sorted(LAYERS.items(), key=lambda kv: -len(kv[0])):
        if module == prefix or module.startswith(prefix + "."):
            return layer
    return LAYERS["oracles"]


@pytest.mark.parametrize("path", sorted((ROOT / "refmath").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_reaches_up_a_layer(path):
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
    if module == "refmath":
        return  # the package itself re-exports the oracles only (checked below)
    up = sorted(m for m in _imports(path) if _layer(m) > _layer(module)
                and m not in ("refmath.__version__",))
    assert not up, f"{module} (layer {_layer(module)}) imports up: {up}"


def test_importing_refmath_and_its_strategies_imports_no_checker_and_no_torch():
    code = ("import sys, refmath, refmath.strategies, refmath.profiles; "
            "print(sorted(m for m in sys.modules if m == 'torch' "
            "or m.startswith('refmath.checks')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == "[]", out
