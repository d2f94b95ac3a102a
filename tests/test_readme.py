"""Every Python example of the README and of the documentation site (docs/) runs, and the
tests it defines pass (each block in a fresh namespace)."""

import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_the_examples_are_found():
    blocks = {p.name: _blocks(p) for p in PAGES}
    assert len(blocks["README.md"]) >= 2 and sum(map(len, blocks.values())) >= 6


def _blocks(page: pathlib.Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.S | re.M)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_run(page):
    for code in _blocks(page):
        namespace: dict = {}
        exec(compile(code, str(page), "exec"), namespace)
        for name, test in namespace.items():
            if name.startswith("test_") and not hasattr(test, "pytestmark"):
                test()
            elif name.startswith("test_"):  # a @parametrize_with_checks test: run each case
                (mark,) = test.pytestmark
                for case in mark.args[1][:3]:
                    try:
                        test(case)
                    except BaseException as err:  # pytest.skip for N/A checks
                        assert type(err).__name__ == "Skipped", err
