"""The service's default model is the one whose map profile says it localises best."""

from __future__ import annotations

import copy

import pytest
import torch
from api_factory import build_models

from api.registry import ModelRegistry
from lewel.data.scenes import STAMPS_DIR
from lewel.maps.profiles import build_profile, sidecar_path, write_profile

pytestmark = pytest.mark.skipif(not STAMPS_DIR.is_dir(), reason="the profile's scenes need tuxpaint-stamps-default")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    paths = build_models(tmp_path_factory.mktemp("default_model") / "models")
    for name in ("broken", "wrongkeys", "byol"):
        paths.pop(name).unlink()
    profiles = {name: build_profile(paths[name], data="scenes:4", size=96, batch_size=4, control_seeds=1) for name in ("tiny", "tiny_m")}
    return paths, profiles


def with_summary(profile: dict, auroc: float, verdict: str) -> dict:
    changed = copy.deepcopy(profile)
    changed["summary"].update(object_auroc=auroc, verdict=verdict)
    return changed


@pytest.mark.parametrize(
    ("tiny", "tiny_m", "expected"),
    [
        ((0.81, "localises"), (0.93, "localises"), "tiny_m"),
        ((0.93, "localises"), (0.81, "localises"), "tiny"),
        ((0.81, "localises"), (0.95, "not better than random"), "tiny"),  # a high score without the verdict does not count
        ((0.60, "not better than random"), (0.70, "not better than random"), "tiny"),  # none localises: the first found
        (None, None, "tiny"),  # no profiles: the first found
    ],
)
def test_default_is_the_best_localising_model(folder, tiny, tiny_m, expected):
    paths, profiles = folder
    for name, setting in (("tiny", tiny), ("tiny_m", tiny_m)):
        sidecar = sidecar_path(paths[name])
        sidecar.unlink(missing_ok=True)
        if setting is not None:
            write_profile(with_summary(profiles[name], *setting), sidecar)
    registry = ModelRegistry([("models", paths["tiny"].parent)], device=torch.device("cpu"))
    assert registry.default_id() == expected


def test_a_stale_profile_does_not_make_a_model_the_default(folder):
    paths, profiles = folder
    write_profile(with_summary(profiles["tiny"], 0.81, "localises"), sidecar_path(paths["tiny"]))
    stale = with_summary(profiles["tiny_m"], 0.99, "localises")
    stale["checkpoint"]["sha256"] = "0" * 64
    write_profile(stale, sidecar_path(paths["tiny_m"]))
    registry = ModelRegistry([("models", paths["tiny"].parent)], device=torch.device("cpu"))
    assert registry.default_id() == "tiny"
    assert ModelRegistry([("models", paths["tiny"].parent)], device=torch.device("cpu"), default_model="tiny_m").default_id() == "tiny_m"


def test_best_localising_for_the_notebooks(folder):
    from lewel.maps.profiles import best_localising

    paths, profiles = folder
    write_profile(with_summary(profiles["tiny"], 0.81, "localises"), sidecar_path(paths["tiny"]))
    write_profile(with_summary(profiles["tiny_m"], 0.91, "localises"), sidecar_path(paths["tiny_m"]))
    assert best_localising([paths["tiny"], paths["tiny_m"]]) == paths["tiny_m"]
    write_profile(with_summary(profiles["tiny_m"], 0.91, "not better than random"), sidecar_path(paths["tiny_m"]))
    assert best_localising([paths["tiny"], paths["tiny_m"]]) == paths["tiny"]
    sidecar_path(paths["tiny"]).unlink()
    assert best_localising([paths["tiny"], paths["tiny_m"]]) is None
