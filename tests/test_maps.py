"""Map statistics, the pattern rule on hand-made maps, and the object-mass and pointing-game scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lewel.maps import (
    GLOBAL_AREA,
    MIN_BLOB_MASS,
    PATTERNS,
    MapScores,
    map_statistics,
    object_coverage,
    object_mass_ratio,
    pointing_chance,
    pointing_hits,
    score_maps,
    summarize_scores,
)


def bump(h: int, w: int, y: float, x: float, sigma: float) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    return torch.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * sigma**2))


def normalise(maps: torch.Tensor) -> torch.Tensor:
    return maps / maps.sum(dim=(-2, -1), keepdim=True)


def test_statistics_of_uniform_and_one_hot_maps():
    uniform, one_hot = torch.full((7, 7), 1 / 49), torch.zeros(7, 7)
    one_hot[3, 4] = 1
    stats = map_statistics(torch.stack([uniform, one_hot]))
    torch.testing.assert_close(stats.entropy, torch.tensor([math.log(49), 0.0], dtype=torch.float64))
    torch.testing.assert_close(stats.normalized_entropy, torch.tensor([1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(stats.effective_area, torch.tensor([1.0, 1 / 49], dtype=torch.float64))
    torch.testing.assert_close(stats.active_area, torch.tensor([1.0, 1 / 49], dtype=torch.float64))
    torch.testing.assert_close(stats.peak_ratio, torch.tensor([1.0, 49.0], dtype=torch.float64))
    torch.testing.assert_close(stats.top_mass, torch.tensor([5 / 49, 1.0], dtype=torch.float64))  # ceil(4.9) = 5
    assert stats.blobs.tolist() == [1, 1]
    assert stats.pattern_names().tolist() == ["global", "object"]


def test_pattern_rule_on_hand_made_maps():
    one = bump(7, 7, 3, 3, 0.8)
    two = bump(7, 7, 1, 1, 0.7) + bump(7, 7, 5, 5, 0.7)
    flat = torch.ones(7, 7, dtype=torch.float64) + 0.05 * torch.linspace(0, 1, 7, dtype=torch.float64).sqrt()  # a gentle rise
    diagonal = torch.zeros(7, 7, dtype=torch.float64)
    diagonal[2, 2] = diagonal[3, 3] = 1  # touching corners: one blob under 8-connectivity
    speck = bump(7, 7, 3, 3, 0.6)
    speck[0, 6] = speck.max() * 0.4  # below 0.5 × peak: never part of a blob
    maps = normalise(torch.stack([one, two, flat, diagonal, speck]))
    stats = map_statistics(maps)
    assert stats.blobs.tolist() == [1, 2, 1, 1, 1]
    assert stats.pattern_names().tolist() == ["object", "multi-object", "global", "object", "object"]
    assert stats.active_area[2] >= GLOBAL_AREA > stats.active_area[:2].max()
    torch.testing.assert_close(stats.other_blob_mass[1], stats.main_blob_mass[1], rtol=1e-6, atol=1e-9)
    # typicality orders maps within each pattern
    assert int(stats.typicality("object").argmax()) in (0, 3)
    assert int(stats.typicality("multi-object").argmax()) == 1
    assert int(stats.typicality("global").argmax()) == 2
    sharp_broad = map_statistics(normalise(torch.stack([bump(7, 7, 3, 3, 0.5), bump(7, 7, 3, 3, 1.2)])))
    assert sharp_broad.typicality("object")[0] > sharp_broad.typicality("object")[1]
    assert sharp_broad.typicality("global")[1] > sharp_broad.typicality("global")[0]
    with pytest.raises(ValueError, match="unknown pattern"):
        stats.typicality("background")


def test_blobs_with_too_little_mass_are_not_counted():
    faint = bump(14, 14, 6, 6, 1.5)
    peak = faint.max()
    faint[13, 0] = peak * 0.55  # above 0.5 × peak, but holds < MIN_BLOB_MASS of the mass
    maps = normalise(faint)
    assert maps[13, 0] < MIN_BLOB_MASS and maps[13, 0] >= 0.5 * maps.max()
    stats = map_statistics(maps)
    assert (stats.blobs.item(), stats.pattern_names().item()) == (1, "object")
    faint[13, 0] = peak * 0.9  # now it holds more than MIN_BLOB_MASS: a second blob
    assert normalise(faint)[13, 0] > MIN_BLOB_MASS
    assert map_statistics(normalise(faint)).blobs.item() == 2


def test_two_blobs_far_apart_at_other_resolutions():
    for h, w in ((3, 5), (14, 14)):
        maps = normalise(bump(h, w, 0, 0, 0.5) + bump(h, w, h - 1, w - 1, 0.5))
        assert map_statistics(maps).pattern_names().item() == "multi-object"


def test_statistics_keep_the_leading_shape_and_accept_numpy():
    maps = np.random.default_rng(0).dirichlet(np.ones(12), size=(2, 8)).reshape(2, 8, 3, 4)
    stats = map_statistics(maps)
    for value in (stats.entropy, stats.peak, stats.blobs, stats.pattern, stats.typicality("global")):
        assert value.shape == (2, 8)
    assert map_statistics(torch.ones(1, 1)).pattern_names().item() == "global"
    with pytest.raises(ValueError, match="non-negative"):
        map_statistics(-torch.ones(2, 2))


def test_coverage_is_exact_area_pooling():
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:32, :32] = True
    assert object_coverage(mask, (2, 2)).tolist() == [[1.0, 0.0], [0.0, 0.0]]
    odd = torch.rand(3, 50, 37) > 0.7
    for grid in ((7, 7), (3, 5), (2, 2), (50, 37)):
        coverage = object_coverage(odd, grid)
        assert coverage.shape == (3, *grid)
        torch.testing.assert_close(coverage.mean(dim=(-2, -1)), odd.double().mean(dim=(-2, -1)))
        assert coverage.min() >= 0 and coverage.max() <= 1 + 1e-12
    torch.testing.assert_close(object_coverage(odd, (50, 37)), odd.double())


def test_uniform_map_scores_exactly_one():
    masks = torch.rand(4, 50, 37) > 0.8
    for grid in ((7, 7), (2, 2), (3, 5)):
        maps = torch.full((4, 6, *grid), 1.0 / (grid[0] * grid[1]))
        ratio = object_mass_ratio(maps, object_coverage(masks, grid))
        assert ratio.shape == (4, 6)
        torch.testing.assert_close(ratio, torch.ones(4, 6, dtype=torch.float64), rtol=0, atol=1e-12)


def test_map_equal_to_mask_scores_high():
    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    mask[0, 16:48, 0:16] = True  # an eighth of the image, aligned with a 4×4 grid
    coverage = object_coverage(mask, (4, 4))
    maps = normalise(coverage)[:, None]
    assert object_mass_ratio(maps, coverage).item() == pytest.approx(8.0)
    assert pointing_hits(maps, coverage).tolist() == [[True]]
    misaligned = object_coverage(torch.roll(mask, 5, dims=-1), (7, 7))
    assert object_mass_ratio(normalise(misaligned)[:, None], misaligned).item() > 3
    inverted = normalise(1 - coverage)[:, None]
    assert object_mass_ratio(inverted, coverage).item() == 0.0
    assert pointing_hits(inverted, coverage).tolist() == [[False]]


def test_random_maps_score_near_one():
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(64, 64, 64, dtype=torch.bool)
    for b in range(64):
        y, x = torch.randint(0, 40, (2,), generator=generator).tolist()
        masks[b, y : y + 24, x : x + 20] = True
    dirichlet = torch.distributions.Dirichlet(torch.ones(49)).sample((64, 32)).reshape(64, 32, 7, 7)
    softmax = torch.softmax(torch.randn(64, 32, 49, generator=generator) * 2, dim=-1).reshape(64, 32, 7, 7)
    for maps in (dirichlet, softmax):
        scores = score_maps(maps, masks)
        assert scores.object_mass_ratio.mean().item() == pytest.approx(1.0, abs=0.05)
        chance = scores.pointing_chance.mean().item()
        assert scores.pointing_hit.double().mean().item() == pytest.approx(chance, abs=0.03)


def test_pointing_game_and_chance():
    coverage = torch.tensor([[[0.0, 0.6], [0.4, 1.0]]], dtype=torch.float64)
    maps = torch.zeros(1, 4, 2, 2)
    for m, (y, x) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        maps[0, m, y, x] = 1
    assert pointing_hits(maps, coverage).tolist() == [[False, True, False, True]]
    assert pointing_chance(coverage).tolist() == [0.5]


def test_summary_over_batches_and_groups():
    generator = torch.Generator().manual_seed(2)
    masks = torch.rand(3, 5, 32, 32, generator=generator) > 0.6
    maps = torch.softmax(torch.randn(3, 5, 8, 4, generator=generator) * 3, dim=-1).reshape(3, 5, 8, 2, 2)
    maps[:, :, :4] = 0.25  # group 0 and 1 uniform: ratio 1
    batches = [score_maps(maps[i], masks[i]) for i in range(3)]
    summary = summarize_scores(batches, num_groups=2)
    whole = summarize_scores(MapScores.cat(batches), num_groups=2)
    assert summary == whole
    assert summary["images"] == 15 and summary["maps_per_image"] == 8
    assert [g["maps"] for g in summary["groups"]] == [[0, 4], [4, 8]]
    assert summary["groups"][0]["object_mass_ratio"] == pytest.approx(1.0)
    assert summary["groups"][0]["patterns"]["global"] == 1.0
    assert sum(summary["patterns"].values()) == pytest.approx(1.0)
    assert set(summary["patterns"]) == set(PATTERNS)
    assert len(summary["per_map"]["object_mass_ratio"]) == 8
    assert summary["object_mass_ratio"] == pytest.approx(np.mean(summary["per_map"]["object_mass_ratio"]))
    with pytest.raises(ValueError, match="must divide"):
        summarize_scores(batches, num_groups=3)


def test_soft_lewel_maps_are_classified_relative_to_their_range():
    """LEWEL's maps are softmaxes of unit-norm projections at temperature 1, nearly flat: a map a little higher
    on one region is still an object map, one a little higher on two regions a multi-object map."""
    one = torch.full((7, 7), -1.0, dtype=torch.float64)
    one[1:3, 1:3] = 1.0
    two = one.clone()
    two[4:6, 4:6] = 1.0
    slope = torch.linspace(0, 1, 7, dtype=torch.float64).sqrt().expand(7, 7)  # rises over most of the image
    logits = 0.1 * torch.stack([one, two, slope]).reshape(3, -1)  # logits of about ±1/√d, as in trained models
    stats = map_statistics(torch.softmax(logits, dim=1).reshape(3, 7, 7))
    assert (stats.effective_area > GLOBAL_AREA).all()  # by absolute spread, all three look global
    assert stats.pattern_names().tolist() == ["object", "multi-object", "global"]


def test_the_package_offers_its_modules_names():
    """``lewel.maps.NAME`` is the defining module's object, for every name of ``__all__``, and nothing else."""
    import importlib

    import lewel.maps

    defining = ("pattern_names", "statistics", "selection", "mask_scores", "frames")
    modules = [importlib.import_module(f"lewel.maps.{name}") for name in defining]
    for name in lewel.maps.__all__:
        defined = [vars(m)[name] for m in modules if name in vars(m)]
        assert defined and all(getattr(lewel.maps, name) is value for value in defined), name
    assert {"rank_maps", "select_maps", "map_statistics", "warp_to_image", "score_maps"} <= set(dir(lewel.maps))
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(lewel.maps, "no_such_name")
