"""The README runs as written: its Python example (on a synthesised official checkpoint) prints what it
says, its curl examples answer 200 on the demo model, and its set-up commands are the scripts CI runs."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image
from servers import running_service

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


def curl_examples() -> list[str]:
    """The README's curl lines (the ``## API`` section), comments stripped."""
    section = README.read_text().split("## API", 1)[1]
    return [line.split("  #", 1)[0].strip() for line in section.splitlines() if line.startswith("curl ")]


def test_readme_curl_examples_run_against_the_demo_model(tmp_path, monkeypatch):
    """Every curl line of the README, as written, against the service on the bundled demo model (only the
    port and the photo differ)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    lines = curl_examples()
    assert len(lines) >= 6 and all("http://127.0.0.1:8000/" in line for line in lines)
    Image.fromarray(np.asarray(skimage.data.coffee())).save(tmp_path / "photo.jpg", quality=90)
    monkeypatch.delenv("LEWEL_API_TOKEN", raising=False)
    with running_service(README.parent / "models", "lewel_b_demo") as url:
        for line in lines:
            done = subprocess.run(
                ["bash", "-c", line.replace("http://127.0.0.1:8000", url) + " -f -w '%{http_code}'"],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode == 0 and done.stdout.endswith("200"), (line, done.stdout[-300:], done.stderr)
    body = json.loads((tmp_path / "maps.json").read_text())
    assert body["model"]["id"] == "lewel_b_demo" and len(body["views"]) == 3
    assert Image.open(tmp_path / "figure5.png").format == "PNG"
    with np.load(tmp_path / "maps.npz", allow_pickle=False) as archive:
        assert archive["maps"].shape[:2] == (2, 128)
    assert len(json.loads((tmp_path / "embeddings.json").read_text())["views"]) == 2


def test_readme_set_up_commands_are_the_scripts():
    block = re.search(r"## Set up\n.*?```bash\n(.*?)```", README.read_text(), re.S).group(1)
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines()]
    assert commands == ["./scripts/app", "./scripts/test"]
    root = README.parent
    assert "python -m app" in (root / "scripts" / "app").read_text()  # the launcher the browser test drives
    assert "pytest" in (root / "scripts" / "test").read_text()
    assert "./scripts/test" in (root / ".ci" / "run").read_text()
