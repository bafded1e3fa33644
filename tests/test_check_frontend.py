"""``./scripts/check-frontend`` leaves the checkout as it found it: no ``build/`` or ``*.egg-info`` from
installing the front end. The script's Python is a stand-in whose "virtual environment" installs the package
with the real pip and setuptools (no dependencies, nothing downloaded) and skips rendering the page."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
STAND_IN = """#!/usr/bin/env bash
if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then
  mkdir -p "$3/bin"
  cat > "$3/bin/python" <<INNER
#!/usr/bin/env bash
if [ "\\$2" = "pip" ]; then
  spec="\\${@: -1}"
  exec REAL_PYTHON -m pip install --quiet --no-deps --no-build-isolation --no-index --target "$3/site" "\\${spec%\\[app\\]}"
fi
cat > /dev/null
INNER
  chmod +x "$3/bin/python"
fi
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="the script is a bash script")
def test_check_frontend_leaves_no_build_folder(tmp_path):
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    for name in ("lewel", "api", "app", "scripts"):
        shutil.copytree(ROOT / name, checkout / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    python = tmp_path / "python"
    python.write_text(STAND_IN.replace("REAL_PYTHON", sys.executable))
    python.chmod(0o755)
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "check-frontend"), "http://127.0.0.1:9"],
        env={**os.environ, "PYTHON": str(python)}, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "front-end environment:" in result.stdout
    left = sorted(p.name for p in checkout.iterdir())
    assert left == ["README.md", "api", "app", "lewel", "pyproject.toml", "scripts"], left
