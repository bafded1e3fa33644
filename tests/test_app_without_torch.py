"""The front end runs without the library's heavy half: every module of ``app/`` imports, and the page renders
against a live service, in a Python where torch, torchvision, SciPy, scikit-image, FastAPI and ``api`` cannot be
imported at all (what ``pip install .[app]`` gives). Of ``lewel`` it may load only the torch-free drawing."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from api_factory import build_models
from servers import APP_MAIN, running_service

ROOT = Path(__file__).resolve().parent.parent
#: what the front end must never import: the model half of the project and the service
BLOCKED = ("torch", "torchvision", "scipy", "skimage", "sklearn", "fastapi", "uvicorn", "safetensors", "pycocotools", "api")
#: the only library modules the front end may load: the packages (lazy, or empty) and the torch-free drawing
ALLOWED_LEWEL = {"lewel", "lewel.lazy_exports", "lewel.drawing", "lewel.drawing.render", "lewel.maps", "lewel.maps.pattern_names"}

BLOCKER = textwrap.dedent(
    f"""
    import importlib, importlib.abc, json, os, pkgutil, sys

    BLOCKED = {BLOCKED!r}

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {{name!r}} (a front-end-only environment)", name=name)
            return None

    sys.meta_path.insert(0, Blocked())
    """
)


def run_without_torch(script: str, **env: str) -> dict:
    """Run ``script`` after the blocker in a fresh interpreter; its last printed line is JSON."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**_environment(), **env},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _environment() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k not in ("LEWEL_API_TOKEN", "PYTHONPATH")} | {"PYTHONPATH": str(ROOT)}


def test_every_app_module_imports_without_torch():
    got = run_without_torch(
        """
        import app
        names = sorted(m.name for m in pkgutil.walk_packages(app.__path__, "app."))
        for name in names:
            importlib.import_module(name)
        print(json.dumps({"imported": names, "lewel": sorted(m for m in sys.modules if m.split(".")[0] == "lewel"),
                          "blocked": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)}))
        """
    )
    assert {"app.main", "app.client", "app.figures", "app.gallery", "app.atlas_view", "app.preload"} <= set(got["imported"])
    assert set(got["lewel"]) <= ALLOWED_LEWEL and not got["blocked"]


def test_the_page_renders_without_torch(tmp_path):
    build_models(tmp_path)
    with running_service(tmp_path, "tiny") as url:
        got = run_without_torch(
            f"""
            from streamlit.testing.v1 import AppTest

            page = AppTest.from_file({str(APP_MAIN)!r}, default_timeout=120)
            page.session_state["size"] = 64
            page.session_state["gallery_item"] = "skimage:coffee"
            page.run()
            assert not page.exception, [e.value for e in page.exception]
            tab = page.tabs[1].label
            page.session_state["pattern_tab"] = tab
            page.run()
            assert not page.exception, [e.value for e in page.exception]
            print(json.dumps({{"tabs": [t.label for t in page.tabs], "errors": [e.value for e in page.error],
                              "images": sum(len(e.proto.imgs) for e in page.get("image")), "torch": "torch" in sys.modules}}))
            """,
            LEWEL_API_URL=url,
        )
    assert got["tabs"][:2] == ["Object (heuristic)", "Multi-object (heuristic)"] and not got["errors"]
    assert got["images"] > 6 and not got["torch"]


def test_the_app_extra_installs_the_front_end_alone():
    """``pip install .[app]`` (the base dependencies and the app extra) holds no torch and no service: the
    front end can be installed and deployed apart from the service (Dockerfile target ``frontend``)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]

    def names(requirements: list[str]) -> set[str]:
        return {r.split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower() for r in requirements}

    front = names(project["dependencies"]) | names(extras["app"])
    assert not front & {"torch", "torchvision", "scipy", "scikit-image", "fastapi", "uvicorn", "safetensors"}
    assert {"streamlit", "httpx", "numpy", "pillow", "matplotlib"} <= front
    assert {"torch", "torchvision"} <= names(extras["library"]) and "fastapi" in names(extras["service"])


APP_MODULES = sorted(f"app.{path.stem}" for path in (ROOT / "app").glob("*.py"))


@pytest.mark.parametrize("module", APP_MODULES)
def test_app_modules_name_no_library_module_but_the_drawing(module):
    """Read from the source: an ``import lewel.x`` anywhere in the front end is one of the allowed modules."""
    import ast

    path = ROOT / (module.replace(".", "/") + ".py")
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert {m for m in imported if m.split(".")[0] == "lewel"} <= ALLOWED_LEWEL
    assert not {m for m in imported if m.split(".")[0] in BLOCKED}


def test_app_modules_stay_under_600_lines():
    """The page is split by section (``app/main.py`` only composes them): no front-end module over 600 lines."""
    lengths = {module: len((ROOT / (module.replace(".", "/") + ".py")).read_text().splitlines()) for module in APP_MODULES}
    assert "app.main" in lengths and "app.figure5" in lengths
    assert not {module: lines for module, lines in lengths.items() if lines >= 600}


def test_library_commands_say_what_to_install_in_a_front_end_environment():
    """``lewel`` where only the front end is installed: a clear message naming the missing extra, no traceback."""
    got = run_without_torch(
        """
        import contextlib, io
        from lewel.cli import main
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors):
            code = main(["eval-maps", "--checkpoint", "x.pt", "--data", "scenes:2"])
        print(json.dumps({"code": code, "stderr": errors.getvalue()}))
        """
    )
    assert got["code"] == 2
    assert "torch is not installed" in got["stderr"] and 'pip install ".[library]"' in got["stderr"]
