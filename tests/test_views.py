"""Augmented views report their crop box and flip truthfully, and are reproducible from the seed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as F

from lewel.views import PRESETS, augmented_view, make_views, original_view, view_seed, views_batch
from lewel.views.augmentations import eval_transform


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    rng = np.random.default_rng(3)
    return Image.fromarray((rng.random((50, 90, 3)) * 255).astype(np.uint8))


def test_view_zero_is_the_whole_image(picture):
    view = original_view(picture, 64)
    assert view.box == (0, 0, 90, 50) and not view.flip and view.preset is None
    assert view.image.shape == (3, 64, 64) and view.image.dtype == torch.uint8
    # what eval_transform gives (PIL's and torchvision's antialiased resize differ by rounding only)
    torch.testing.assert_close(view.normalized(), eval_transform(64)(picture), atol=0.1, rtol=0)


def test_cropflip_view_is_exactly_its_box_and_flip(picture):
    source = F.to_image(picture)
    flips = set()
    for index in range(1, 13):
        view = augmented_view(picture, "cropflip", 48, seed=5, index=index)
        x0, y0, x1, y1 = view.box
        assert 0 <= x0 < x1 <= 90 and 0 <= y0 < y1 <= 50
        expected = F.resized_crop(source, y0, x0, y1 - y0, x1 - x0, [48, 48], antialias=True)
        if view.flip:
            expected = F.horizontal_flip(expected)
        assert torch.equal(view.image, expected.as_subclass(torch.Tensor))
        flips.add(view.flip)
    assert flips == {True, False}


def test_geometry_is_shared_by_all_presets_for_a_seed(picture):
    """The crop and flip are drawn first from the view's seed: a preset changes colours only."""
    geometry = {
        preset: [(v.box, v.flip) for v in make_views(picture, count=4, preset=preset, size=40, seed=9)]
        for preset in PRESETS
    }
    assert len({tuple(g) for g in geometry.values()}) == 1


def test_views_are_reproducible_and_independent_of_the_count(picture):
    three = make_views(picture, count=3, preset="byol2", size=40, seed=11)
    five = make_views(picture, count=5, preset="byol2", size=40, seed=11)
    for a, b in zip(three, five[:4], strict=True):
        assert a.box == b.box and a.flip == b.flip and torch.equal(a.image, b.image)
    other = make_views(picture, count=3, preset="byol2", size=40, seed=12)
    assert any(a.box != b.box for a, b in zip(three[1:], other[1:], strict=True))
    assert three[2].seed == view_seed(11, 2) < 2**53


def test_views_do_not_disturb_or_depend_on_the_global_generator(picture):
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    first = augmented_view(picture, "mocov2", 40, seed=0)
    assert torch.equal(torch.rand(3), expected)
    torch.manual_seed(123)
    assert torch.equal(augmented_view(picture, "mocov2", 40, seed=0).image, first.image)


def test_concurrent_views_match_sequential_ones(picture):
    sequential = [augmented_view(picture, "byol1", 40, seed=s).image for s in range(8)]
    results: dict[int, torch.Tensor] = {}

    def work(seed: int) -> None:
        results[seed] = augmented_view(picture, "byol1", 40, seed=seed).image

    threads = [threading.Thread(target=work, args=(s,)) for s in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(torch.equal(results[s], sequential[s]) for s in range(8))


def test_batch_and_errors(picture):
    views = make_views(picture, count=2, preset="cropflip", size=32, seed=0)
    batch = views_batch(views)
    assert batch.shape == (3, 3, 32, 32) and batch.dtype == torch.float32
    with pytest.raises(ValueError, match="unknown view preset"):
        make_views(picture, count=1, preset="simclr", size=32, seed=0)
    with pytest.raises(ValueError, match="numbered from 1"):
        augmented_view(picture, "byol1", 32, seed=0, index=0)
