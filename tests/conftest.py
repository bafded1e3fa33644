"""Shared fixtures: tiny model configs and the official fixtures copied from ../shared/fixtures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from lewel.config import ModelConfig
from lewel.data.scenes import STAMPS_DIR

FIXTURES = Path(__file__).parent / "fixtures"

#: for tests that draw generated scenes (or the profiles' scenes): they need Debian's Tux Paint cut-outs
needs_stamps = pytest.mark.skipif(
    not STAMPS_DIR.is_dir(), reason="Debian's tuxpaint-stamps-default is not installed (./scripts/setup as root)"
)


def tiny_config(method: str, **overrides) -> ModelConfig:
    """A ResNet-18 config with a tiny head (hidden 64, d 32, h 4) and short queues."""
    settings = dict(backbone="resnet18", hidden_dim=64, dim=32, num_groups=4, queue_size=48, aligned_queue_size=80)
    settings.update(overrides)
    return ModelConfig.for_method(method, **settings)


@pytest.fixture(scope="session", autouse=True)
def _control_cache(tmp_path_factory) -> None:
    """Profiles cache their random controls (lewel.maps.family_cache) in a folder of this session, not the user's
    cache folder; subprocesses (the CLI, the service, notebooks) inherit it."""
    os.environ["LEWEL_CACHE_DIR"] = str(tmp_path_factory.mktemp("control-cache"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def neck_reference() -> list[dict]:
    return torch.load(FIXTURES / "official_neck_reference.pt", weights_only=True)


@pytest.fixture(scope="session")
def official_manifest() -> dict:
    return json.loads((FIXTURES / "official_lewelb_r50_manifest.json").read_text())


@pytest.fixture(scope="session")
def official_file(tmp_path_factory, official_manifest) -> tuple[Path, dict[str, torch.Tensor]]:
    """A ResNet-50 LEWEL_B checkpoint synthesised from the official manifest (random values), and its state."""
    from checkpoint_factory import official_from_manifest

    path = tmp_path_factory.mktemp("official") / "lewelb_eman_200ep.pth.tar"
    return path, official_from_manifest(official_manifest, path)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> str:
    """A tiny LEWEL_M training checkpoint (``tiny_config``: d = 32), random weights, as ``tiny_m.pt``."""
    from checkpoint_factory import our_training_file

    path = tmp_path_factory.mktemp("profile") / "tiny_m.pt"
    our_training_file(path, tiny_config("lewel_m"))
    return str(path)
