"""Checkpoint formats, safe loading, and clear errors."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torchvision import models

from checkpoint_factory import (
    authors_payload,
    our_training_file,
    save_legacy_numpy,
    tiny_authors_file,
)
from conftest import tiny_config
from lewel import CheckpointError, MapsUnavailableError, load_model
from lewel.files.checkpoints import atomic_save, read_checkpoint, safe_load


def test_official_checkpoint_loads_and_gives_maps(official_file):
    path, state = official_file
    model = load_model(path)
    online = {k.removeprefix("online_net."): v for k, v in state.items() if k.startswith("online_net.")}
    assert set(model.state_dict()) == set(online)  # no missing, no unexpected online keys
    torch.testing.assert_close(model.backbone.conv1.weight, online["backbone.conv1.weight"])
    torch.testing.assert_close(model.neck.proj_obj.mlp[3].weight, online["neck.proj_obj.mlp.3.weight"])
    info = model.describe()
    assert (info["method"], info["backbone"], info["d"], info["h"], info["num_aligned"]) == ("lewel_b_eman", "resnet50", 256, 4, 64)
    assert info["kind"] == "authors-lewelb" and info["best_acc1"] == 72.8 and info["arch"] == "BYOLEMANObj"
    out = model.extract(torch.randn(1, 3, 224, 224))
    assert out.maps.shape == (1, 256, 7, 7)
    torch.testing.assert_close(out.maps.sum(dim=(2, 3)), torch.ones(1, 256))
    assert out.global_embedding.shape == (1, 256)
    assert out.aligned_features.shape == (1, 64, 2048)
    assert out.aligned_embeddings.shape == (1, 64, 256)
    assert (out.d, out.h) == (256, 4)


def test_numpy1_float64_scalar_is_accepted(tmp_path):
    config = tiny_config("lewel_b")
    model = tiny_authors_file(tmp_path / "x.pth", config)
    legacy = tmp_path / "legacy.pth"
    save_legacy_numpy(authors_payload(model.state_dict()), legacy)
    assert b"numpy.core.multiarray" in legacy.read_bytes()
    loaded = safe_load(legacy)
    assert isinstance(loaded["best_acc1"], np.float64) and loaded["best_acc1"] == 72.8
    assert load_model(legacy).has_maps


class WritesAFile:
    """A hostile object: unpickling it would create ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


class RunsAShell:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("hostile", [WritesAFile, RunsAShell])
@pytest.mark.parametrize("zipped", [True, False])
def test_hostile_pickle_is_refused_and_does_not_run(tmp_path, hostile, zipped):
    marker = tmp_path / "side_effect"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "payload": hostile(str(marker))}, path, _use_new_zipfile_serialization=zipped)
    with pytest.raises(CheckpointError, match="refused") as error:
        load_model(path)
    assert "arbitrary code" in str(error.value)
    assert ("exec" in str(error.value)) or ("system" in str(error.value))
    assert not marker.exists()


def test_a_plain_pickle_is_refused_too(tmp_path):
    marker = tmp_path / "side_effect"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": WritesAFile(str(marker))}, protocol=2))
    with pytest.raises(CheckpointError):
        load_model(path)
    assert not marker.exists()


@pytest.mark.parametrize("value", [np.int64(3), np.float32(1.5)])
def test_only_float64_numpy_scalars_are_allowed(tmp_path, value):
    path = tmp_path / "other_numpy.pth"
    torch.save({"best_acc1": value}, path)
    with pytest.raises(CheckpointError, match="refused"):
        safe_load(path)


def test_unreadable_files_give_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pth")
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint at all" * 10)
    with pytest.raises(CheckpointError, match="garbage.pth"):
        load_model(garbage)
    truncated = tmp_path / "truncated.pth"
    our_training_file(tmp_path / "full.pth", tiny_config("lewel_b"))
    truncated.write_bytes((tmp_path / "full.pth").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        load_model(truncated)
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], a_list)
    with pytest.raises(CheckpointError, match="not a checkpoint dict"):
        load_model(a_list)
    foreign = tmp_path / "foreign.pth"
    torch.save({"state_dict": {"encoder.weight": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="not a LEWEL, MoCo or ResNet checkpoint"):
        load_model(foreign)


def test_missing_unexpected_and_misshapen_keys_are_errors(tmp_path):
    config = tiny_config("lewel_b")
    state = build_state = tiny_authors_file(tmp_path / "ok.pth", config).state_dict()
    missing = dict(state)
    del missing["online_net.neck.proj_obj.mlp.3.weight"]
    torch.save(authors_payload(missing), tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="missing keys .*proj_obj"):
        load_model(tmp_path / "missing.pth")
    extra = dict(build_state, **{"online_net.backbone.layer9.weight": torch.zeros(1)})
    torch.save(authors_payload(extra), tmp_path / "extra.pth")
    with pytest.raises(CheckpointError, match="unexpected keys .*layer9"):
        load_model(tmp_path / "extra.pth")
    stray = dict(build_state, **{"online_net.classifier.weight": torch.zeros(1)})
    torch.save(authors_payload(stray), tmp_path / "stray.pth")
    with pytest.raises(CheckpointError, match="classifier"):
        load_model(tmp_path / "stray.pth")
    wrong = dict(build_state)
    wrong["online_net.neck.proj_obj.mlp.1.running_mean"] = torch.zeros(3)
    torch.save(authors_payload(wrong), tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_model(tmp_path / "wrong.pth")


def test_num_groups_defaults_and_override(tmp_path):
    path = tmp_path / "authors.pth"
    tiny_authors_file(path, tiny_config("lewel_b", num_groups=8))  # h is not stored in the authors' files
    assert load_model(path).h == 4
    model = load_model(path, num_groups=8)
    assert (model.h, model.num_aligned) == (8, 4)
    assert model.extract(torch.randn(1, 3, 64, 64)).aligned_embeddings.shape == (1, 4, 32)
    with pytest.raises(CheckpointError, match="num_groups=3"):
        load_model(path, num_groups=3)


@pytest.mark.parametrize("method", ["lewel_b", "lewel_b_eman", "lewel_m", "byol", "mocov2"])
def test_our_training_checkpoints_open_with_their_config(tmp_path, method):
    config = tiny_config(method, num_groups=8)
    trained = our_training_file(tmp_path / "ckpt.pth", config)
    model = load_model(tmp_path / "ckpt.pth")
    assert model.config == config and model.kind == "lewel-train"
    assert model.describe()["epoch"] == 3
    online = trained.online_encoder.eval()
    images = torch.randn(2, 3, 64, 64)
    out = model.extract(images)
    with torch.no_grad():
        expected = online(images)
    torch.testing.assert_close(out.global_embedding, expected.global_projection)
    if method.startswith("lewel"):
        assert model.h == 8
        torch.testing.assert_close(out.maps, expected.maps)
    else:
        with pytest.raises(MapsUnavailableError, match="without LEWEL's coupled head"):
            out.maps


def test_bare_backbone_gives_features_but_no_maps(tmp_path):
    path = tmp_path / "backbone.pth"
    reference = models.resnet18(weights=None)
    torch.save(reference.state_dict(), path)  # includes fc.*, ignored
    model = load_model(path)
    assert model.kind == "backbone" and not model.has_maps and model.d is None
    out = model.extract(torch.randn(1, 3, 64, 64))
    assert out.feature_map.shape == (1, 512, 2, 2)
    with pytest.raises(MapsUnavailableError, match="backbone only"):
        out.maps
    with pytest.raises(MapsUnavailableError):
        model.map_group(0)
    with pytest.raises(CheckpointError, match="LEWEL models only"):
        load_model(path, num_groups=4)


def test_moco_official_encoder_q_keys(tmp_path):
    net = models.resnet50(weights=None)
    state = {f"module.encoder_q.{k}": v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    state["module.encoder_q.fc.0.weight"] = torch.zeros(2048, 2048)
    state["module.encoder_q.fc.2.weight"] = torch.zeros(128, 2048)
    state["module.encoder_k.conv1.weight"] = torch.zeros(64, 3, 7, 7)
    state["module.queue"] = torch.zeros(128, 16)
    path = tmp_path / "moco_v2_200ep.pth.tar"
    torch.save({"epoch": 200, "arch": "resnet50", "state_dict": state}, path)
    model = load_model(path)
    assert (model.kind, model.backbone_name, model.has_maps) == ("moco", "resnet50", False)
    torch.testing.assert_close(model.backbone.layer4[2].bn3.running_var, net.layer4[2].bn3.running_var)


def test_read_checkpoint_strips_module_prefix(tmp_path):
    path = tmp_path / "a.pth"
    tiny_authors_file(path, tiny_config("lewel_b"))
    contents = read_checkpoint(path)
    assert contents.kind == "authors-lewelb"
    assert all(k.startswith(("backbone.", "neck.")) for k in contents.online_state)


def test_atomic_save_leaves_no_partial_file(tmp_path):
    path = tmp_path / "out" / "ckpt.pth"
    atomic_save({"a": torch.ones(2)}, path)
    assert torch.load(path, weights_only=True)["a"].sum() == 2
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask

    class Unsaveable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"a": Unsaveable()}, path)
    assert torch.load(path, weights_only=True)["a"].sum() == 2  # the old file is intact
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pth"]  # no temporary left behind
