"""The service as it runs for real: ``uvicorn api.main:app`` in its own process on localhost, and
``python -m api``'s wiring (the ``lewel-serve`` console script)."""

from __future__ import annotations

import os
import signal
import sys

import httpx2
import pytest
from api_factory import build_models, image_bytes
from servers import start_service, stop, wait_until_ready

import api.__main__ as serve



def test_uvicorn_process_serves_maps(tmp_path):
    models = build_models(tmp_path / "models")
    server, base = start_service(models["tiny"].parent, "tiny")
    try:
        with httpx2.Client(base_url=base, timeout=30) as client:
            wait_until_ready(server, client, seconds=60)
            response = client.post(
                "/v1/maps", files={"image": ("x.png", image_bytes(), "image/png")}, data={"views": "1", "size": "64"}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model"]["id"] == "tiny" and len(body["views"]) == 2
            assert client.get("/metrics").status_code == 200
    finally:
        output = stop(server)
    assert server.returncode in (0, -signal.SIGTERM), output  # uvicorn re-raises the signal after a clean shutdown
    assert "Application startup complete" in output and "Finished server process" in output


def test_python_m_api_starts_uvicorn_on_the_app(monkeypatch, tmp_path):
    calls = []
    monkeypatch.setitem(sys.modules, "uvicorn", type(sys)("uvicorn"))
    sys.modules["uvicorn"].run = lambda app, **kwargs: calls.append((app, kwargs))
    monkeypatch.delenv("LEWEL_MODELS_DIR", raising=False)
    assert serve.main(["--port", "8123", "--models-dir", str(tmp_path)]) == 0
    assert calls == [("api.main:app", {"host": "127.0.0.1", "port": 8123, "log_level": "info"})]
    assert os.environ["LEWEL_MODELS_DIR"] == str(tmp_path)
    monkeypatch.delenv("LEWEL_MODELS_DIR")


@pytest.mark.parametrize("argv", [["--port", "x"], ["--log-level", "loud"]])
def test_python_m_api_rejects_bad_options(argv):
    with pytest.raises(SystemExit):
        serve.build_parser().parse_args(argv)


def test_lewel_has_no_serve_command():
    """The library does not start the service: ``lewel serve`` moved to ``python -m api``."""
    from lewel import cli

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["serve"])


def test_lewel_serve_is_a_console_script_of_api():
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["lewel-serve"] == "api.__main__:main"
