"""The README's Python example runs as written (on a synthesised official checkpoint) and prints what it says."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def python_example() -> str:
    text = README.read_text()
    section = text[text.index("## Python API") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_python_example(official_file, monkeypatch):
    path, _ = official_file
    monkeypatch.chdir(path.parent)
    code = python_example()
    assert f'"{path.name}"' in code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own documentation
    # each print line ends with "# <what it prints>  <explanation>"
    claimed = [line.split("# ", 1)[1].split("  ")[0] for line in code.splitlines() if line.startswith("print(")]
    assert printed.getvalue().splitlines() == claimed
