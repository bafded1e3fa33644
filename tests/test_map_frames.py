"""Maps warped back into the image frame, cross-view agreement, and choosing maps to show."""

from __future__ import annotations

import math

import pytest
import torch

from lewel.maps import (
    PATTERNS,
    crop_coverage,
    cross_view_agreement,
    frame_density,
    frame_grid,
    intersect_boxes,
    map_statistics,
    pairwise_agreement,
    rank_maps,
    select_maps,
    top_per_pattern,
    warp_to_image,
)


def one_hot(h: int, w: int, y: int, x: int) -> torch.Tensor:
    maps = torch.zeros(h, w, dtype=torch.float64)
    maps[y, x] = 1
    return maps


def test_full_box_warp_on_the_same_grid_is_the_identity():
    maps = torch.rand(4, 7, 7, dtype=torch.float64)
    warped = warp_to_image(maps, (0, 0, 140, 140), False, (140, 140), (7, 7))
    torch.testing.assert_close(warped, maps / maps.sum(dim=(-2, -1), keepdim=True))


def test_warp_places_mass_where_the_crop_came_from():
    # a 2×2 view cut from the right half of a 4×2 image (W = 4, H = 2), mass in its top-left cell
    view = one_hot(2, 2, 0, 0)
    warped = warp_to_image(view, (2, 0, 4, 2), False, (4, 2), (2, 4))
    expected = torch.tensor([[math.nan, math.nan, 1, 0], [math.nan, math.nan, 0, 0]], dtype=torch.float64)
    torch.testing.assert_close(warped, expected, equal_nan=True)
    flipped = warp_to_image(view, (2, 0, 4, 2), True, (4, 2), (2, 4), outside=0.0)
    assert flipped.tolist() == [[0, 0, 0, 1], [0, 0, 0, 0]]


def test_warp_conserves_mass_and_marks_only_untouched_cells():
    maps = torch.rand(3, 5, 5, dtype=torch.float64)
    box, size, grid = (13, 7, 61, 40), (80, 50), (10, 16)
    warped = warp_to_image(maps, box, True, size, grid)
    torch.testing.assert_close(warped.nansum(dim=(-2, -1)), torch.ones(3, dtype=torch.float64))
    coverage = crop_coverage(box, size, grid)
    assert torch.equal(torch.isnan(warped[0]), coverage == 0)
    # the coverage of each cell is the share of its area inside the box; summed it is the box's area in cells
    cell_area = (80 / 16) * (50 / 10)
    assert coverage.sum().item() == pytest.approx((61 - 13) * (40 - 7) / cell_area)


def test_frame_grid_keeps_the_aspect_ratio():
    assert frame_grid((640, 480), 32) == (24, 32)
    assert frame_grid((100, 400), 32) == (32, 8)
    assert frame_grid((4000, 10), 8) == (1, 8)


def test_agreement_of_identical_flipped_disjoint_and_uniform_maps():
    maps = torch.rand(6, 4, 4, dtype=torch.float64)
    box = (0, 0, 100, 100)
    torch.testing.assert_close(
        pairwise_agreement(maps, box, False, maps, box, False), torch.ones(6, dtype=torch.float64)
    )
    # the same content seen through a flipped view (its maps are mirrored) agrees perfectly
    torch.testing.assert_close(
        pairwise_agreement(maps, box, False, maps.flip(-1), box, True), torch.ones(6, dtype=torch.float64)
    )
    # one-hot on opposite corners: no common mass
    assert pairwise_agreement(one_hot(4, 4, 0, 0), box, False, one_hot(4, 4, 3, 3), box, False).item() == 0.0
    # uniform maps agree wherever two crops overlap, whatever their sizes
    uniform = torch.ones(7, 7)
    assert pairwise_agreement(
        uniform, (0, 0, 80, 80), False, uniform, (40, 30, 100, 100), True
    ).item() == pytest.approx(1.0)


def test_agreement_follows_the_object_across_crops():
    """An 'object' at source pixels [40, 60) × [40, 60): one view sees it whole-image (7×7 cells of 20 px over
    a 140-px image), the other zoomed in (a 2×2 grid on the crop [40, 80) × [40, 80)). A map that follows
    the object in both agrees fully on the shared region; one that stays on the same view cell does not."""
    whole = one_hot(7, 7, 2, 2)  # cell (2, 2) = source pixels [40, 60)
    zoom_follow = one_hot(2, 2, 0, 0)  # crop cell (0, 0) = [40, 60)
    zoom_same_cell = one_hot(2, 2, 1, 1)  # [60, 80): beside the object
    follow = pairwise_agreement(whole, (0, 0, 140, 140), False, zoom_follow, (40, 40, 80, 80), False)
    stay = pairwise_agreement(whole, (0, 0, 140, 140), False, zoom_same_cell, (40, 40, 80, 80), False)
    assert follow.item() == pytest.approx(1.0) and stay.item() == pytest.approx(0.0)


def test_agreement_is_nan_without_overlap_or_mass_and_averages_over_pairs():
    maps = torch.rand(2, 3, 3, dtype=torch.float64)
    assert intersect_boxes((0, 0, 10, 10), (10, 0, 20, 10)) is None
    assert torch.isnan(pairwise_agreement(maps, (0, 0, 10, 10), False, maps, (10, 0, 20, 10), False)).all()
    # all of view a's mass lies outside the shared region
    corner = one_hot(2, 2, 0, 0)
    assert torch.isnan(pairwise_agreement(corner, (0, 0, 20, 20), False, corner, (10, 10, 30, 30), False))
    assert torch.isnan(cross_view_agreement([maps], [(0, 0, 5, 5)], [False])).all()
    box = (0, 0, 9, 9)
    three = cross_view_agreement([maps, maps, one_hot(3, 3, 0, 0).expand(2, 3, 3)], [box] * 3, [False] * 3)
    pairs = [
        torch.ones(2, dtype=torch.float64),
        pairwise_agreement(maps, box, False, one_hot(3, 3, 0, 0), box, False),
        pairwise_agreement(maps, box, False, one_hot(3, 3, 0, 0), box, False),
    ]
    torch.testing.assert_close(three, torch.stack(pairs).mean(dim=0))


def test_boxes_are_validated():
    with pytest.raises(ValueError, match="x0 < x1"):
        warp_to_image(torch.ones(2, 2), (5, 0, 5, 4), False, (10, 10), (2, 2))
    with pytest.raises(ValueError, match="not inside"):
        warp_to_image(torch.ones(2, 2), (0, 0, 11, 4), False, (10, 10), (2, 2))


def test_ranking_and_selection_follow_typicality():
    y, x = torch.meshgrid(torch.arange(7.0), torch.arange(7.0), indexing="ij")

    def bump(cy: float, cx: float, sigma: float) -> torch.Tensor:
        return torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * sigma**2))

    maps = torch.stack(
        [
            torch.ones(7, 7),
            bump(3, 3, 0.5),
            bump(1, 1, 0.6) + bump(5, 5, 0.6),
            bump(3, 3, 0.9),
            torch.ones(7, 7) + 0.2 * bump(0, 0, 2.0),
        ]
    )
    stats = map_statistics(maps)
    names = stats.pattern_names().tolist()
    assert names[1] == "object" and names[2] == "multi-object" and names[0] == "global"
    assert rank_maps(stats, "index").tolist() == [0, 1, 2, 3, 4]
    for pattern in PATTERNS:
        ranked = rank_maps(stats, pattern)
        scores = stats.typicality(pattern)[ranked]
        assert (scores[:-1] >= scores[1:]).all() and sorted(ranked.tolist()) == [0, 1, 2, 3, 4]
    top = top_per_pattern(stats, 1)
    assert top["multi-object"] == [2]
    assert all(names[m] == pattern for pattern, chosen in top.items() for m in chosen)
    assert select_maps(stats, maps="top", order="index", top_k=1) == top["object"] + top["multi-object"] + top["global"]
    assert select_maps(stats, maps="top", order="global", top_k=5) == top_per_pattern(stats, 5)["global"]
    assert select_maps(stats, maps="all", order="object", top_k=1) == rank_maps(stats, "object").tolist()
    with pytest.raises(ValueError, match="unknown order"):
        select_maps(stats, maps="all", order="size")


def test_frame_density_divides_mass_by_the_covered_share():
    size, grid = (40, 40), (4, 4)  # cells of 10×10 pixels
    coverage = crop_coverage((5, 0, 30, 40), size, grid)  # column 0 half covered, 1-2 fully, 3 not at all
    mass = torch.where(coverage > 0, 0.1 * coverage, torch.full_like(coverage, float("nan")))
    density = frame_density(mass, coverage)
    assert torch.allclose(density[:, :3], torch.full((4, 3), 0.1, dtype=torch.float64))
    assert density[:, 3].isnan().all()
    views = frame_density(torch.stack([mass, mass]), coverage)  # coverage broadcasts over leading dimensions
    assert views.shape == (2, 4, 4) and torch.equal(views[1].nan_to_num(), density.nan_to_num())
