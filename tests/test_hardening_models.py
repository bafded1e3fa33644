"""One bad file never takes the service down: listing, loading and readiness with broken model files next
to good ones (issue 15, items 1, 2 and 8)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from api_factory import build_models, image_bytes
from checkpoint_factory import our_training_file
from conftest import tiny_config
from fastapi.testclient import TestClient
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from api.main import create_app
from api.settings import Settings
from lewel.config import ModelConfig
from lewel.files.checkpoints import CheckpointError, read_checkpoint, safe_load
from lewel.inference import load_model


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> dict[str, Path]:
    return build_models(tmp_path_factory.mktemp("hardening") / "good")


def with_config(source: Path, target: Path, **changes) -> Path:
    """A copy of the safetensors export ``source`` whose stored model config has ``changes``."""
    with safe_open(str(source), "pt") as handle:
        metadata = dict(handle.metadata())
    config = json.loads(metadata["config"])
    config.update(changes)
    metadata["config"] = json.dumps(config)
    save_file(load_file(str(source)), str(target), metadata=metadata)
    return target


def broken_folder(folder: Path, good: dict[str, Path]) -> Path:
    """Good models next to a 0-byte file, a truncated file, random bytes and exports with bad configs."""
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(good["tiny"].read_bytes())
    (folder / "tiny_m.safetensors").write_bytes(good["tiny_m"].read_bytes())
    (folder / "empty.pt").write_bytes(b"")
    (folder / "empty_export.safetensors").write_bytes(b"")
    (folder / "truncated.pt").write_bytes(good["tiny"].read_bytes()[:4096])
    (folder / "noise.pth").write_bytes(np.random.default_rng(0).bytes(5000))
    with_config(good["tiny_m"], folder / "zero_groups.safetensors", num_groups=0)
    with_config(good["tiny_m"], folder / "three_groups.safetensors", num_groups=3)
    with_config(good["tiny_m"], folder / "no_dim.safetensors", dim=-4)
    return folder


def settings(folder: Path, **overrides) -> Settings:
    values = dict(models_dir=folder, bundled_models_dir=folder / "none", warmup_size=64)
    values.update(overrides)
    return Settings(**values)


def test_every_file_is_listed_and_the_good_ones_are_served(tmp_path, good):
    folder = broken_folder(tmp_path / "models", good)
    with TestClient(create_app(settings(folder, default_model="tiny"))) as client:
        response = client.get("/v1/models")
        assert response.status_code == 200, response.text
        listed = {m["id"]: m for m in response.json()["models"]}
        assert set(listed) == {
            "tiny", "tiny_m", "empty", "empty_export", "truncated", "noise", "zero_groups", "three_groups", "no_dim",
        }
        assert listed["tiny"]["status"] in ("loaded", "available") and listed["tiny_m"]["status"] == "available"
        expected = {
            "empty": "the file is empty (0 bytes)",
            "empty_export": "the file is empty (0 bytes)",
            "truncated": "truncated or incomplete",
            "noise": "corrupt or not a torch.save file",
            "zero_groups": "num_groups must be a positive integer, got 0",
            "three_groups": "num_groups=3 (h) must divide dim=32 (d)",
            "no_dim": "dim must be a positive integer, got -4",
        }
        for model_id, words in expected.items():
            entry = listed[model_id]
            assert entry["status"] == "error" and entry["error_type"] == "CheckpointError", entry
            assert words in entry["error"] and entry["file"] in entry["error"], entry
            assert "unpickled" not in entry["error"]
        for model_id in ("tiny", "tiny_m"):
            answer = client.post(
                "/v1/maps", files={"image": ("a.png", image_bytes(), "image/png")}, data={"model": model_id, "size": "64"}
            )
            assert answer.status_code == 200, answer.text
        refused = client.post(
            "/v1/maps", files={"image": ("a.png", image_bytes(), "image/png")}, data={"model": "empty", "size": "64"}
        )
        assert refused.status_code == 500 and refused.json()["error"] == "model_load_failed"
        assert "empty (0 bytes)" in refused.json()["message"]
        assert client.get("/readyz").status_code == 200


def test_an_unexpected_exception_is_that_models_error_not_a_500(tmp_path, good, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(good["tiny"].read_bytes())
    (folder / "odd.pt").write_bytes(good["tiny"].read_bytes())
    import api.registry as registry

    real = registry.describe_checkpoint

    def describe(path, **kwargs):
        if Path(path).name == "odd.pt":
            raise IndexError("list index out of range")
        return real(path, **kwargs)

    monkeypatch.setattr(registry, "describe_checkpoint", describe)
    with TestClient(create_app(settings(folder, default_model="tiny"))) as client:
        response = client.get("/v1/models")
        assert response.status_code == 200, response.text
        listed = {m["id"]: m for m in response.json()["models"]}
        assert listed["odd"]["status"] == "error" and listed["odd"]["error_type"] == "IndexError"
        assert listed["odd"]["error"] == "IndexError: list index out of range"
        assert listed["tiny"]["status"] != "error"


def test_readyz_reports_a_broken_default_once_and_warms_up_at_most_once_at_a_time(tmp_path, good):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "empty.pt").write_bytes(b"")
    before = {t.ident for t in threading.enumerate()}
    with TestClient(create_app(settings(folder, default_model="empty"))) as client:
        readiness = client.app.state.service.readiness
        readiness.wait(30)
        answers = [client.get("/readyz") for _ in range(25)]
        assert {a.status_code for a in answers} == {503}
        message = answers[-1].json()["message"]
        assert "default model failed to load" in message and "empty.pt" in message and "0 bytes" in message
        assert readiness.attempts == 1  # 25 calls, one attempt: the file did not change
        warmups = [t for t in threading.enumerate() if t.name == "lewel-warm-up" and t.ident not in before]
        assert not any(t.is_alive() for t in warmups)
        # the file is replaced by a good model: the next call tries again and the service becomes ready
        (folder / "empty.pt").write_bytes(good["tiny"].read_bytes())
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").text
            time.sleep(0.05)
        assert readiness.attempts == 2


def test_readyz_with_a_default_that_crashes_in_its_first_run(tmp_path, good, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(good["tiny"].read_bytes())
    import api.registry as registry

    def explode(self, images, *, aligned_projection=True):
        raise IndexError("tuple index out of range")

    monkeypatch.setattr(registry.LoadedModel, "extract", explode)
    with TestClient(create_app(settings(folder, default_model="tiny"))) as client:
        readiness = client.app.state.service.readiness
        readiness.wait(30)
        for _ in range(10):
            answer = client.get("/readyz")
        assert answer.status_code == 503
        assert "failed its first run: IndexError: tuple index out of range" in answer.json()["message"]
        assert readiness.attempts == 1


def test_configs_are_validated_with_clear_messages(tmp_path):
    for changes, words in (
        (dict(num_groups=0), "num_groups must be a positive integer, got 0"),
        (dict(num_groups=5), "num_groups=5 (h) must divide dim=32 (d)"),
        (dict(dim=0), "dim must be a positive integer"),
        (dict(hidden_dim=-1), "hidden_dim must be a positive integer"),
        (dict(queue_size=0), "queue_size must be a positive integer"),
        (dict(num_groups=2.5), "num_groups must be a positive integer, got 2.5"),
    ):
        with pytest.raises(ValueError, match="must") as error:
            tiny_config("lewel_b", **changes)
        assert words in str(error.value)
    with pytest.raises(ValueError, match="backbone"):
        ModelConfig(backbone="")
    with pytest.raises(ValueError, match="method lewel_b has a plain momentum target, but eman=True"):
        tiny_config("lewel_b", eman=True)  # a recipe's eman: true must not turn plain LEWEL_B into EMAN
    with pytest.raises(ValueError, match="method lewel_b_eman has an EMAN target, but eman=False"):
        tiny_config("lewel_b_eman", eman=False)
    assert tiny_config("byol", eman=True).eman and not tiny_config("byol", eman=False).eman  # BYOL has both


def test_h_must_divide_the_feature_channels_of_the_stored_head(tmp_path):
    path = tmp_path / "d24.pt"
    our_training_file(path, tiny_config("lewel_b", dim=24, num_groups=4))
    state = torch.load(path, weights_only=True)
    state["model_config"]["num_groups"] = 3  # divides d = 24 but not D = 512
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="num_groups \\(h\\) = 3 does not divide the 512 feature channels"):
        read_checkpoint(path)
    with pytest.raises(CheckpointError, match="512 feature channels"):
        load_model(path)


def test_damaged_files_are_named_for_what_they_are(tmp_path, good):
    cases = {
        "empty.pt": b"",
        "noise.pt": np.random.default_rng(1).bytes(4000),
        "truncated.pt": good["tiny"].read_bytes()[:4096],
        "text.pt": b"hello world\n",
    }
    words = {
        "empty.pt": "the file is empty (0 bytes)",
        "noise.pt": "corrupt or not a torch.save file",
        "truncated.pt": "truncated or incomplete",
        "text.pt": "corrupt or not a torch.save file",
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(CheckpointError) as error:
            safe_load(tmp_path / name)
        assert words[name] in str(error.value) and name in str(error.value)
        assert "unpickled" not in str(error.value) and "arbitrary code" not in str(error.value)
