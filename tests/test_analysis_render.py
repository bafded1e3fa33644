"""One image through a tiny model: views, maps, frame warps, agreement, grouped features, and the pictures."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from checkpoint_factory import our_training_file
from conftest import tiny_config
from PIL import Image

from lewel.drawing.render import draw_box, figure5, figure5_grid, figure_png, overlay
from lewel.inference import MapsUnavailableError, load_model
from lewel.maps import warp_to_image
from lewel.maps.analysis import analyze_maps, extract_views, grouped_aligned_features
from lewel.models.heads import group_aggregate
from lewel.views import views_batch


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("analysis") / "tiny.pt"
    our_training_file(path, tiny_config("lewel_b"))
    return load_model(path)


@pytest.fixture(scope="module")
def picture() -> Image.Image:
    return Image.fromarray((np.random.default_rng(1).random((48, 72, 3)) * 255).astype(np.uint8))


def test_analysis_of_views(model, picture):
    views, extraction = extract_views(model, picture, views=2, preset="byol1", size=64, seed=4)
    torch.testing.assert_close(extraction.maps, model.extract(views_batch(views)).maps)
    analysis = analyze_maps(views, extraction, frame_cells=12)
    assert analysis.maps.shape == (3, 32, 2, 2) and analysis.grid == (2, 2)
    assert analysis.frame_grid == (8, 12) and analysis.frame_maps.shape == (3, 32, 8, 12)
    assert analysis.statistics.pattern.shape == (3, 32) and analysis.agreement.shape == (32,)
    assert ((analysis.agreement >= 0) & (analysis.agreement <= 1 + 1e-9)).all()
    view = views[2]
    expected = warp_to_image(analysis.maps[2], view.box, view.flip, view.source_size, (8, 12))
    torch.testing.assert_close(analysis.frame_maps[2], expected.float(), equal_nan=True)
    assert analysis.groups.tolist() == [m // 8 for m in range(32)]
    assert analysis.aligned.tolist() == [m % 8 for m in range(32)]
    assert analysis.view_statistics(1).pattern.shape == (32,)


def test_maps_only_extraction_skips_the_aligned_projection(model, picture):
    views, full = extract_views(model, picture, views=1, size=64, seed=2)
    _, maps_only = extract_views(model, picture, views=1, size=64, seed=2, aligned_projection=False)
    torch.testing.assert_close(maps_only.maps, full.maps)
    torch.testing.assert_close(maps_only.aligned_features, full.aligned_features)
    with pytest.raises(MapsUnavailableError, match="not computed"):
        _ = maps_only.aligned_embeddings
    assert len(maps_only.select(slice(1, 2))) == 1
    with pytest.raises(MapsUnavailableError, match="not computed"):
        _ = maps_only.select(slice(0, 1)).aligned_embeddings


def test_grouped_aligned_features_name_their_group_and_map(model, picture):
    _, extraction = extract_views(model, picture, size=64)
    grouped = grouped_aligned_features(extraction)  # B×(d/h)×h×(D/h)
    assert grouped.shape == (1, 8, 4, 128)
    features, maps = extraction.feature_map.flatten(2), extraction.maps.flatten(2)
    n, g = 5, 2
    manual = (features[0, g * 128 : (g + 1) * 128] * maps[0, g * 8 + n]).sum(dim=1)
    torch.testing.assert_close(grouped[0, n, g], manual, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(
        grouped.flatten(2).transpose(1, 2), group_aggregate(features, maps, 4), rtol=1e-4, atol=1e-5
    )


def test_overlay_blends_peak_colour_and_leaves_unseen_pixels():
    image = np.full((20, 20, 3), 100, dtype=np.uint8)
    heat = torch.tensor([[0.0, 1.0], [float("nan"), 0.0]])
    blended = overlay(image, heat, alpha=0.5, cmap="gray")
    assert blended.shape == (20, 20, 3) and blended.dtype == np.uint8
    assert blended[15, 2].tolist() == [100, 100, 100]  # NaN: not seen, unchanged
    assert blended[2, 17].tolist() == [177, 177, 177]  # the peak in white, half mixed in
    assert blended[17, 17].tolist() == [50, 50, 50]  # zero in black


def test_figure5_has_a_row_per_view_and_encodes_as_png(model, picture):
    views, extraction = extract_views(model, picture, views=1, preset="cropflip", size=64, seed=0)
    analysis = analyze_maps(views, extraction)
    figure = figure5(analysis, [0, 5, 9], picture.resize((36, 24)))
    bars = [ax for ax in figure.axes if ax.get_label() == "<colorbar>"]
    assert len(figure.axes) == 2 * 5 + len(bars) and len(bars) == 2 * 3  # a colour bar under every map
    assert bars[0].get_xticklabels()[-1].get_text().endswith("×")  # in units of the uniform value
    assert figure.axes[3].get_title().startswith("map 5")
    png = figure_png(figure, dpi=40)
    assert Image.open(io.BytesIO(png)).format == "PNG"


def test_overlay_range_scale_stretches_a_nearly_flat_map():
    image = np.full((20, 20, 3), 100, dtype=np.uint8)
    heat = torch.tensor([[0.24, 0.26], [0.25, 0.25]])
    peak = overlay(image, heat, alpha=1.0, cmap="gray", scale="peak")
    stretched = overlay(image, heat, alpha=1.0, cmap="gray", scale="range")
    assert peak[2, 2, 0] > 200  # 0.24 / 0.26 of the peak: nearly white, like the peak itself
    assert stretched[2, 2].tolist() == [0, 0, 0] and stretched[2, 17].tolist() == [255, 255, 255]
    flat = overlay(image, torch.full((2, 2), 0.25), alpha=1.0, cmap="gray", scale="range")
    assert (flat == 0).all()  # no range: the lowest colour everywhere, not a division by zero
    with pytest.raises(ValueError, match="scale"):
        overlay(image, heat, scale="log")


def test_draw_box_outlines_the_crop_in_the_scaled_image():
    image = np.zeros((50, 100, 3), dtype=np.uint8)
    boxed = draw_box(image, [100, 50, 300, 150], source_size=(400, 200), colour=(255, 0, 0))
    assert boxed.shape == image.shape and not image.any()  # the input is not drawn on
    assert boxed[12, 40].tolist() == [255, 0, 0] and boxed[25, 25].tolist() == [255, 0, 0]  # top and left edges
    assert boxed[25, 50].tolist() == [0, 0, 0] and boxed[5, 5].tolist() == [0, 0, 0]  # inside and outside
    flipped = draw_box(image, [100, 50, 300, 150], source_size=(400, 200), flip=True, colour=(255, 0, 0))
    assert int((flipped[..., 0] > 0).sum()) > int((boxed[..., 0] > 0).sum())  # a second, inner line


def test_figure5_grid_from_arrays_matches_figure5(model, picture):
    views, extraction = extract_views(model, picture, views=1, preset="cropflip", size=64, seed=0)
    analysis = analyze_maps(views, extraction)
    titles = [["a", "b"], ["c", "d"]]
    figure = figure5_grid(
        picture,
        [v.image for v in views],
        [v.box for v in views],
        [v.flip for v in views],
        views[0].source_size,
        analysis.maps[:, [2, 3]].numpy(),
        titles,
        colour_bars=False,
    )
    assert len(figure.axes) == 2 * 4
    assert [figure.axes[i].get_title() for i in (2, 3, 6, 7)] == ["a", "b", "c", "d"]
    assert figure.axes[5].get_title() == "view 1"
    reference = figure5(analysis, [2, 3], picture, colour_bars=False)
    np.testing.assert_array_equal(figure.axes[2].images[0].get_array(), reference.axes[2].images[0].get_array())


def test_overlay_does_not_darken_the_edge_of_what_is_seen():
    image = np.zeros((40, 40, 3), dtype=np.uint8)
    heat = torch.tensor([[1.0, float("nan")], [1.0, float("nan")]])
    blended = overlay(image, heat, alpha=1.0, cmap="gray", scale="peak")
    assert (blended[:, :20] == 255).all()  # the seen half is uniformly at its peak, up to the unseen half
    assert (blended[:, 20:] == 0).all()
