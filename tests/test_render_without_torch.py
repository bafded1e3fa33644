"""``lewel.drawing.render`` without torch: the front end draws its tiles with it in an environment without torch,
so the module imports and draws with torch blocked, and its numpy resampling gives the pictures that torch's
``F.interpolate`` gave (the reference here is the former torch implementation of ``overlay``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lewel import maps
from lewel.drawing import render
from lewel.drawing.render import LUT_SIZE, colour_limits, overlay
from lewel.maps import statistics
from lewel.maps.pattern_names import PATTERNS

#: a finder on ``sys.meta_path`` that makes ``import torch`` (and ``torch.*``) fail as where torch is not installed
BLOCK_TORCH = textwrap.dedent(
    """
    import sys

    class BlockTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, BlockTorch())
    """
)

DRAW = textwrap.dedent(
    """
    import io
    import numpy as np
    from PIL import Image

    try:
        import torch  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("torch was importable: the blocker does not work")

    import lewel.drawing.render as render

    rng = np.random.default_rng(0)
    view = (rng.random((64, 64, 3)) * 255).astype(np.uint8)
    heat = rng.random((7, 7))
    heat[0, 0] = np.nan
    tile = render.overlay_with_bar(view, heat, unit=1 / 49, scale="range")
    assert tile.dtype == np.uint8 and tile.shape[1:] == (64, 3) and tile.shape[0] > 64, tile.shape
    figure = render.figure5_grid(
        Image.fromarray(view), [view, view], [[0, 0, 64, 64], [8, 8, 40, 40]], [False, True], (64, 64),
        rng.random((2, 3, 7, 7)), [["a", "b", "c"], ["d", "e", "f"]], title="no torch",
    )
    png = render.figure_png(figure, dpi=50)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    assert "torch" not in sys.modules
    print("drawn", len(png))
    """
)


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=180)


def test_import_does_not_load_torch():
    done = run_python(
        "import sys, lewel.drawing.render, lewel.maps; "
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if 'torch' in m)"
    )
    assert done.returncode == 0, done.stderr


def test_draws_where_torch_cannot_be_imported():
    done = run_python(BLOCK_TORCH + DRAW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("drawn ")


def test_patterns_are_one_constant():
    assert statistics.PATTERNS is PATTERNS and maps.PATTERNS is PATTERNS and render.PATTERNS is PATTERNS
    assert PATTERNS == ("object", "multi-object", "global")


def torch_overlay(rgb: np.ndarray, heat: np.ndarray, *, alpha: float, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """The former ``overlay`` (torch's ``F.interpolate``), line for line: the ``H×W×3`` uint8 picture and the
    ``H×W`` float32 map values scaled to [0, 1] that picked its colours."""
    height, width = rgb.shape[:2]
    values = torch.as_tensor(np.asarray(heat, dtype=np.float64)).float()
    valid = torch.isfinite(values)
    filled = torch.where(valid, values, torch.zeros_like(values))
    support = F.interpolate(valid[None, None].float(), size=(height, width), mode="bilinear", align_corners=False)
    total = F.interpolate(filled[None, None], size=(height, width), mode="bilinear", align_corners=False)
    up = (total / support.clamp_min(1e-6))[0, 0]
    seen = F.interpolate(valid[None, None].float(), size=(height, width), mode="nearest")[0, 0] > 0.5
    low, high = colour_limits(values, scale)
    scaled = ((up - low) / (high - low) if high > low else torch.zeros_like(up)).clamp(0, 1).numpy()
    colour = render._lookup("jet")[np.rint(scaled * (LUT_SIZE - 1)).astype(np.intp)]
    weight = np.where(seen.numpy(), np.float32(alpha), np.float32(0.0))[..., None]
    return np.clip(rgb.astype(np.float32) * (1 - weight) + colour * weight, 0, 255).astype(np.uint8), scaled


#: (map h, w) -> (image H, W): upscaling by whole and odd factors, the small outputs torch resamples with another
#: kernel (H + W <= 128), a map as large as the image, and shrinking (torch does not antialias)
SHAPES = [
    ((7, 7), (224, 224)),
    ((14, 10), (300, 200)),
    ((8, 12), (37, 53)),
    ((2, 3), (97, 61)),
    ((7, 7), (7, 7)),
    ((56, 56), (20, 31)),
    ((40, 30), (33, 29)),
]

#: distance in colour-table entries from a rounding tie below which a pixel may take the neighbouring entry:
#: there the last bits of float32 arithmetic (numpy's order of operations against torch's, FMA or not; the
#: resampled values differ by up to ~2e-6, i.e. ~2e-3 entries) decide, and the next entry of matplotlib's
#: 256-colour jet can be 4.5 levels away (2.3 at alpha 0.5). Elsewhere both pick the same entry.
TIE = 1e-2


@pytest.mark.parametrize("nan", [False, True], ids=["finite", "with-nan"])
@pytest.mark.parametrize("scale", ["peak", "range"])
@pytest.mark.parametrize(("grid", "size"), SHAPES, ids=[f"{g[0]}x{g[1]}-to-{s[0]}x{s[1]}" for g, s in SHAPES])
def test_overlay_matches_torch_interpolate(grid, size, scale, nan):
    rng = np.random.default_rng([*grid, *size, scale == "peak", nan])
    heat = rng.random(grid) * rng.choice([1e-3, 1.0, 50.0])
    if nan:
        heat[rng.random(grid) < 0.3] = np.nan
        heat.flat[0] = 0.5  # at least one seen cell
    rgb = rng.integers(0, 256, (*size, 3), dtype=np.uint8)

    new = overlay(rgb, heat, alpha=0.5, scale=scale).astype(np.int16)
    old, scaled = torch_overlay(rgb, heat, alpha=0.5, scale=scale)
    difference = np.abs(new - old).max(axis=-1)
    entry = scaled * (LUT_SIZE - 1)
    on_tie = np.abs(entry - np.floor(entry) - 0.5) < TIE
    assert difference[~on_tie].max() <= 1, f"max |difference| {difference[~on_tie].max()} off colour-table ties"
    assert difference.max() <= 3 and on_tie.mean() < 0.05


def test_overlay_agrees_with_torch_over_random_maps():
    """Many random shapes at once: the largest uint8 difference off colour-table ties, and how rare ties are."""
    rng = np.random.default_rng(7)
    worst, pixels, off = 0, 0, 0
    for trial in range(24):
        heat = rng.random(tuple(rng.integers(1, 30, 2)))
        if trial % 2:
            heat[rng.random(heat.shape) < 0.4] = np.nan
        rgb = rng.integers(0, 256, (*rng.integers(4, 260, 2), 3), dtype=np.uint8)
        for scale in ("peak", "range"):
            new = overlay(rgb, heat, scale=scale).astype(np.int16)
            old, scaled = torch_overlay(rgb, heat, alpha=0.5, scale=scale)
            difference = np.abs(new - old).max(axis=-1)
            entry = scaled * (LUT_SIZE - 1)
            on_tie = np.abs(entry - np.floor(entry) - 0.5) < TIE
            worst = max(worst, int(difference[~on_tie].max()))
            pixels += difference.size
            off += int((difference > 1).sum())
    assert worst <= 1
    assert off <= pixels * 1e-4


@pytest.mark.parametrize(("grid", "size"), SHAPES + [((5, 9), (1000, 700))])
def test_resampling_matches_torch(grid, size):
    rng = np.random.default_rng(3)
    values = rng.random(grid).astype(np.float32)
    tensor = torch.from_numpy(values)[None, None]
    bilinear = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()
    nearest = F.interpolate(tensor, size=size, mode="nearest")[0, 0].numpy()
    np.testing.assert_allclose(render._bilinear(values, *size), bilinear, rtol=0, atol=4e-6)
    rows, columns = render._nearest_index(grid[0], size[0]), render._nearest_index(grid[1], size[1])
    np.testing.assert_array_equal(values[np.ix_(rows, columns)], nearest)


def test_pillow_bilinear_agrees_only_when_upscaling():
    """Why the resampling is numpy, not Pillow: Pillow's BILINEAR is torch's when it enlarges, not when it shrinks."""
    values = np.random.default_rng(4).random((14, 10)).astype(np.float32)

    def pillow(size: tuple[int, int]) -> np.ndarray:
        return np.asarray(Image.fromarray(values).resize(size[::-1], Image.BILINEAR))

    np.testing.assert_allclose(pillow((300, 200)), render._bilinear(values, 300, 200), atol=4e-6)
    assert np.abs(pillow((5, 4)) - render._bilinear(values, 5, 4)).max() > 1e-2


def test_tensors_are_accepted_as_before():
    rng = np.random.default_rng(5)
    view = torch.from_numpy(rng.integers(0, 256, (3, 40, 56), dtype=np.uint8))
    heat = torch.from_numpy(rng.random((7, 7)).astype(np.float32))
    from_tensors = overlay(view, heat)
    from_arrays = overlay(view.permute(1, 2, 0).numpy(), heat.numpy())
    np.testing.assert_array_equal(from_tensors, from_arrays)
    assert colour_limits(heat, "range") == colour_limits(heat.numpy(), "range")
    assert render.draw_box(view, [0, 0, 8, 8], source_size=(56, 40)).shape == (40, 56, 3)


@pytest.mark.parametrize("width", [40, 56, 64, 96, 224])
def test_colour_bar_end_labels_fit_inside_small_tiles(width):
    """Both end labels are drawn whole: no ink in the tile's outer columns and a blank gap between them
    (on small tiles they were cut at the edges and ran into each other)."""
    from lewel.drawing.render import colour_bar

    height = max(18, width // 6)
    bar = colour_bar(width, 0.000973, 0.001052, unit=0.001, height=height)
    strip = max(4, height // 4)
    ink = (bar[strip + 1 :] < 128).any(axis=(0, 2))  # columns of the label area with dark pixels
    assert ink.any() and not ink[0] and not ink[-1], ink.astype(int)
    runs = np.flatnonzero(np.diff(ink.astype(int)) == -1)  # where a block of text ends
    blank = np.flatnonzero(~ink)
    middle = blank[(blank > np.flatnonzero(ink)[0]) & (blank < np.flatnonzero(ink)[-1])]
    assert runs.size and middle.size, "the two labels touch"
    gaps = np.split(middle, np.flatnonzero(np.diff(middle) > 1) + 1)
    assert max(len(g) for g in gaps) >= 3, "the two labels run into each other"
