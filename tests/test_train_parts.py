"""Training's parts: recipes, sampler, seeded views, kNN."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from image_factory import make_image_folder
from lewel.data.folders import ImageFiles
from lewel.train.config import TrainConfig, load_recipe, merge
from lewel.train.data import EpochSampler, SeededViews
from lewel.train.knn import weighted_knn_predict
from lewel.views.augmentations import two_view_transform

CONFIGS = Path(__file__).parent.parent / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_parses(path):
    config = TrainConfig.from_dict(merge(load_recipe(path), {"data": "/data"})).validate()
    named = path.stem.removeprefix("demo_")
    assert config.model.method in path.stem or config.model.method.startswith(named) or path.stem.startswith(("byol", "mocov2", "cpu_"))


def test_released_recipes_hold_the_released_hyper_parameters():
    def read(name: str) -> TrainConfig:
        return TrainConfig.from_dict(load_recipe(CONFIGS / name))

    eman100, eman200, plain400 = read("lewel_b_eman_100ep.yaml"), read("lewel_b_eman_200ep.yaml"), read("lewel_b_400ep.yaml")
    for config, lr, batch, wd, m0, epochs in [
        (eman100, 3.6, 1024, 1e-6, 0.98, 100), (eman200, 3.6, 1024, 1.5e-6, 0.98, 200), (plain400, 7.2, 4096, 1e-6, 0.996, 400)
    ]:
        assert (config.lr, config.batch_size, config.weight_decay, config.base_momentum, config.epochs) == (lr, batch, wd, m0, epochs)
        assert (config.model.backbone, config.model.hidden_dim, config.model.dim, config.model.num_groups) == ("resnet50", 4096, 256, 4)
        assert (config.optimizer, config.warmup_epochs, config.augmentation) == ("lars", 10, "byol")
    assert eman100.model.eman and eman200.model.eman and not plain400.model.eman and plain400.sync_bn
    moco = read("lewel_m_200ep.yaml")
    assert (moco.optimizer, moco.lr, moco.batch_size, moco.weight_decay, moco.base_momentum) == ("sgd", 0.03, 256, 1e-4, 0.999)
    assert (moco.model.temperature, moco.model.queue_size, moco.momentum_schedule) == (0.2, 65536, "constant")
    baseline = read("mocov2_200ep.yaml")
    assert baseline.model.method == "mocov2" and (baseline.lr, baseline.batch_size) == (moco.lr, moco.batch_size)


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown training config keys"):
        TrainConfig.from_dict({"method": "byol", "learning_rate": 1})
    with pytest.raises(ValueError, match="no training data"):
        TrainConfig.for_method("byol").validate()
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: [unclosed")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_recipe(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_recipe(tmp_path / "none.yaml")


def test_epoch_sampler_shards_and_skips():
    full = list(EpochSampler(20, num_replicas=2, rank=0, seed=3, epoch=1))
    other = list(EpochSampler(20, num_replicas=2, rank=1, seed=3, epoch=1))
    assert len(full) == 10 and {i for _, i in full}.isdisjoint({i for _, i in other})
    assert all(epoch == 1 for epoch, _ in full)
    assert list(EpochSampler(20, num_replicas=2, rank=0, seed=3, epoch=1, skip=4)) == full[4:]
    assert full != list(EpochSampler(20, num_replicas=2, rank=0, seed=3, epoch=2))


def test_seeded_views_depend_only_on_seed_epoch_and_index(tmp_path):
    source = ImageFiles(make_image_folder(tmp_path, classes=1, per_class=2))
    views = SeededViews(source, two_view_transform("byol", 32), seed=7)
    first = views[(0, 1)]
    torch.manual_seed(12345)
    again = views[(0, 1)]
    torch.testing.assert_close(first[0][0], again[0][0])
    torch.testing.assert_close(first[0][1], again[0][1])
    assert not torch.equal(first[0][0], views[(1, 1)][0][0])
    state = torch.get_rng_state()
    views[(0, 0)]
    assert torch.equal(state, torch.get_rng_state())  # the caller's random stream is untouched


def test_weighted_knn_by_hand():
    bank = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9], [0.2, 1.0]]), dim=1)
    labels = torch.tensor([0, 0, 1, 1, 1])
    queries = F.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), dim=1)
    assert weighted_knn_predict(bank, labels, queries, k=3, temperature=0.07).tolist() == [0, 1]
    # with k = 5 and a huge temperature the votes are nearly equal: the majority class (1) wins
    assert weighted_knn_predict(bank, labels, queries, k=5, temperature=100.0).tolist() == [1, 1]


def test_labels_are_matched_by_class_name_across_splits():
    from lewel.train.knn import relabel, shared_classes

    class Split:
        def __init__(self, classes):
            self.classes = classes

    train, val = Split(["ant", "bee", "cat"]), Split(["bee", "dog"])
    classes = shared_classes(train, val)
    assert classes == ["ant", "bee", "cat", "dog"]
    assert relabel(torch.tensor([0, 1, 1]), val, classes).tolist() == [1, 3, 3]
    assert relabel(torch.tensor([2, 0]), train, classes).tolist() == [2, 0]
