"""The README's Python examples run and their tests pass."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)
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
