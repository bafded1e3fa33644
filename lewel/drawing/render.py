"""Pictures of alignment maps with matplotlib (Agg, no display needed, safe in worker threads).

``figure5`` draws the paper's Figure 5 layout for one image: a row per view with the input image (the
view's crop box drawn on it), the augmented view, then the chosen maps overlaid on the view.
``figure5_grid`` draws the same from plain arrays (what a client of the API holds), ``overlay`` blends one
map onto an image, ``draw_box`` outlines a view's crop on the image and ``figure_png`` encodes a figure.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image, ImageDraw

from ..maps.pattern_names import PATTERNS

if TYPE_CHECKING:  # this module runs without torch (the front end draws its tiles with it): names for hints only
    import torch

    from ..maps.analysis import MapAnalysis

Scale = Literal["peak", "range"]


def _as_rgb_array(image: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """PIL image, ``H×W×3`` uint8 array or ``3×H×W`` uint8 tensor -> ``H×W×3`` uint8 array. A tensor is
    recognised by its ``detach`` method, so that this module need not import torch."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if hasattr(image, "detach"):
        return np.asarray(image.detach().cpu()).transpose(1, 2, 0).astype(np.uint8)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got {array.shape}")
    return array.astype(np.uint8)


def colour_limits(heatmap: np.ndarray | torch.Tensor, scale: Scale) -> tuple[float, float]:
    """The map values drawn at the two ends of the colour scale of ``overlay``: ``range``: the map's own
    minimum and maximum (over its finite cells); ``peak``: 0 and its maximum."""
    values = np.asarray(heatmap, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if scale not in ("peak", "range"):
        raise ValueError(f"scale must be 'peak' or 'range', got {scale!r}")
    if not finite.size:
        return 0.0, 0.0
    high = float(finite.max())
    return (float(finite.min()) if scale == "range" else 0.0), high


def colour_bar(
    width: int, low: float, high: float, *, cmap: str = "jet", unit: float = 1.0, height: int = 26
) -> np.ndarray:
    """A horizontal colour bar ``height×width×3`` uint8 for values ``low`` .. ``high``, labelled in units of
    ``unit`` (e.g. the uniform value 1/(h·w) of a map: "0.97x" … "1.05x"), with a tick where the value
    equals ``unit`` when it lies inside. Drawn with Pillow (a few of these per page: no matplotlib figure)."""
    from PIL import ImageFont

    strip = max(4, height // 4)  # the labels get the rest: read at the size the page shows a tile
    gradient = colormaps[cmap](np.linspace(0, 1, width))[None, :, :3] * 255.0
    bar = np.full((height, width, 3), 255, dtype=np.uint8)
    bar[:strip] = np.repeat(gradient, strip, axis=0).astype(np.uint8)
    picture = Image.fromarray(bar)
    draw = ImageDraw.Draw(picture)
    text_top = strip + 1
    if high > low and low <= unit <= high and unit > 0:
        x = round((unit - low) / (high - low) * (width - 1))
        draw.line([(x, 0), (x, strip + 1)], fill=(0, 0, 0), width=1)
    left, right = f"{low / unit:.3g}x", f"{high / unit:.3g}x"  # "x": the default font has no ×
    # the largest font at which both end labels fit inside the tile with a gap between them (a small tile
    # would otherwise cut them at its edges or run them into each other)
    size = max(BAR_MIN_FONT, height - strip - 3)
    font = ImageFont.load_default(size=size)
    while size > BAR_MIN_FONT and _labels_width(draw, font, left, right) > width - 2 * BAR_MARGIN - BAR_GAP:
        size -= 1
        font = ImageFont.load_default(size=size)
    draw.text((BAR_MARGIN, text_top), left, fill=(0, 0, 0), font=font, anchor="la")
    draw.text((width - BAR_MARGIN, text_top), right, fill=(0, 0, 0), font=font, anchor="ra")
    return np.asarray(picture)


BAR_MIN_FONT = 5  #: the smallest label font a colour bar shrinks to (px)
BAR_MARGIN = 2  #: px kept free between a colour bar's end labels and the tile's edges
BAR_GAP = 4  #: px kept free between the two end labels


def _labels_width(draw: ImageDraw.ImageDraw, font: Any, left: str, right: str) -> float:
    """The ink width of both labels in ``font`` (their bounding boxes, bearings included)."""
    return sum(draw.textbbox((0, 0), text, font=font, anchor="la")[2] for text in (left, right))


def overlay_with_bar(
    image: Image.Image | np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    *,
    unit: float,
    alpha: float = 0.5,
    cmap: str = "jet",
    scale: Scale = "peak",
) -> np.ndarray:
    """``overlay`` with its ``colour_bar`` underneath, in units of ``unit`` (the uniform value of the map):
    what the colours mean, so that a nearly flat map stretched to its range is not read as a peaked one."""
    blended = overlay(image, heatmap, alpha=alpha, cmap=cmap, scale=scale)
    low, high = colour_limits(heatmap, scale)
    # about a sixth of the tile's width: a 224-px tile shown 110 px wide in a row of maps keeps labels ~10 px high
    bar = colour_bar(blended.shape[1], low, high, cmap=cmap, unit=unit, height=max(18, blended.shape[1] // 6))
    return np.concatenate([blended, bar], axis=0)


def overlay(
    image: Image.Image | np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
    scale: Scale = "peak",
) -> np.ndarray:
    """Blend a map (``h×w``, any non-negative scale, NaN = not seen) onto an image -> ``H×W×3`` uint8.

    The map is upsampled bilinearly to the image, scaled to [0, 1], coloured with ``cmap`` and mixed in with
    weight ``alpha``; where it is NaN the image shows unchanged. ``scale="peak"`` maps 0 -> 0 and the peak
    -> 1 (a nearly uniform map looks uniformly hot); ``"range"`` stretches the map's own minimum -> 0 and
    maximum -> 1 (where it looks *relative* to itself, as attention maps are usually drawn).
    """
    rgb = _as_rgb_array(image)
    height, width = rgb.shape[:2]
    values = np.asarray(heatmap, dtype=np.float64).astype(np.float32)
    if values.ndim != 2:
        raise ValueError(f"heatmap must be h×w, got {tuple(values.shape)}")
    valid = np.isfinite(values)
    filled = np.where(valid, values, np.float32(0.0))
    # normalised interpolation: unseen cells get no weight, so they do not darken the edge of what is seen
    support = _bilinear(valid.astype(np.float32), height, width)
    total = _bilinear(filled, height, width)
    up = total / np.maximum(support, np.float32(1e-6))
    seen = valid[np.ix_(_nearest_index(values.shape[0], height), _nearest_index(values.shape[1], width))]
    low, high = colour_limits(values, scale)
    scaled = np.clip((up - np.float32(low)) / np.float32(high - low) if high > low else np.zeros_like(up), 0, 1)
    colour = _lookup(cmap)[np.rint(scaled * (LUT_SIZE - 1)).astype(np.intp)]
    weight = np.where(seen, np.float32(alpha), np.float32(0.0))[..., None]
    return np.clip(rgb.astype(np.float32) * (1 - weight) + colour * weight, 0, 255).astype(np.uint8)


# The two resamplings below are torch's ``F.interpolate`` (``mode="bilinear", align_corners=False`` and
# ``mode="nearest"``) written in numpy, so that this module draws without torch (the front end has none);
# Pillow's BILINEAR filter would agree only when upscaling (it antialiases a downscale) and its NEAREST picks
# other source cells. tests/test_render_without_torch.py compares them with torch's.


def _linear_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Along one axis, torch's ``align_corners=False`` linear resampling from ``size_in`` to ``size_out``
    cells: per output cell the two source indices (``size_out`` intp each) and the second one's weight
    (``size_out`` float32). Source position ``(dst + 0.5)·in/out − 0.5``, clamped at 0, in float32 as torch
    computes it; the last cell repeats past the edge."""
    scale = np.float32(size_in) / np.float32(size_out)
    source = np.maximum((np.arange(size_out, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5), 0)
    first = np.minimum(source.astype(np.intp), size_in - 1)
    second = np.minimum(first + 1, size_in - 1)
    return first, second, np.clip(source - first.astype(np.float32), 0, 1)


def _bilinear(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """``h×w`` float32 -> ``height×width`` float32, as ``F.interpolate(mode="bilinear", align_corners=False)``
    (no antialiasing when it shrinks), in torch's order: along each row first, then between rows."""
    top, bottom, down = _linear_weights(values.shape[0], height)
    left, right, across = _linear_weights(values.shape[1], width)
    rows = values[:, left] * (1 - across) + values[:, right] * across
    return rows[top] * (1 - down)[:, None] + rows[bottom] * down[:, None]


def _nearest_index(size_in: int, size_out: int) -> np.ndarray:
    """Along one axis, the source index of each of ``size_out`` cells as ``F.interpolate(mode="nearest")``
    picks it: ``floor(dst·in/out)`` in float32, at most ``size_in − 1`` (``size_out`` intp)."""
    scale = np.float32(size_in) / np.float32(size_out)
    return np.minimum(np.floor(np.arange(size_out, dtype=np.float32) * scale).astype(np.intp), size_in - 1)


LUT_SIZE = 1024  #: colormap entries: a table lookup instead of matplotlib's per-pixel call (finer than 8 bits)


@lru_cache(maxsize=32)
def _lookup(cmap: str) -> np.ndarray:
    """``LUT_SIZE×3`` float32 colours (0–255) of a matplotlib colormap."""
    return (colormaps[cmap](np.linspace(0.0, 1.0, LUT_SIZE))[:, :3] * 255.0).astype(np.float32)


def figure5(
    analysis: MapAnalysis,
    indices: Sequence[int],
    source: Image.Image | np.ndarray | torch.Tensor,
    *,
    cell_inches: float = 1.5,
    cmap: str = "jet",
    alpha: float = 0.5,
    scale: Scale = "peak",
    titles: Sequence[Sequence[str]] | None = None,
    title: str | None = None,
    colour_bars: bool = True,
) -> Figure:
    """The Figure-5 grid of a ``MapAnalysis``: one row per view; columns: the ``source`` image with the
    view's crop box (dashed when flipped), the augmented view, then each map of ``indices`` overlaid on the
    view, titled ``titles[view][k]`` (default: its index and that view's heuristic pattern for it), with a
    colour bar in units of the uniform value. ``source`` may be a downscaled copy of the image the views were
    cut from (boxes are scaled to it)."""
    chosen = list(indices)
    patterns = analysis.statistics.pattern
    if titles is None:
        titles = [[f"map {m}\n{PATTERNS[int(patterns[row, m])]}" for m in chosen] for row in range(len(analysis.views))]
    return figure5_grid(
        source,
        [view.image for view in analysis.views],
        [view.box for view in analysis.views],
        [view.flip for view in analysis.views],
        analysis.views[0].source_size,
        analysis.maps[:, chosen],
        titles,
        presets=[view.preset for view in analysis.views],
        cell_inches=cell_inches,
        cmap=cmap,
        alpha=alpha,
        scale=scale,
        colour_bars=colour_bars,
        title=title,
    )


def figure5_grid(
    source: Image.Image | np.ndarray | torch.Tensor,
    view_images: Sequence[Image.Image | np.ndarray | torch.Tensor],
    boxes: Sequence[Sequence[int]],
    flips: Sequence[bool],
    source_size: tuple[int, int],
    maps: np.ndarray | torch.Tensor,
    titles: Sequence[Sequence[str]],
    *,
    presets: Sequence[str | None] | None = None,
    cell_inches: float = 1.5,
    cmap: str = "jet",
    alpha: float = 0.5,
    scale: Scale = "peak",
    colour_bars: bool = True,
    title: str | None = None,
) -> Figure:
    """Figure 5 from plain arrays (what a client of the API holds): V views with their images, crop boxes
    ``[x0, y0, x1, y1]`` in pixels of an image of ``source_size`` (width, height) and flips; ``maps``
    ``V×k×h×w``; ``titles`` V×k captions of the map cells; ``presets`` the views' augmentation names.

    With ``colour_bars`` every map gets a horizontal colour bar in units of its uniform value 1/(h·w) (the
    range the colours span: ``colour_limits``), so that a nearly flat map stretched to its range is not read
    as a peaked one; ``title`` goes above the grid."""
    values = np.asarray(maps, dtype=np.float32)
    rows, count = values.shape[:2]
    size = figure_inches(rows, count, cell_inches=cell_inches, colour_bars=colour_bars, title=bool(title))
    figure = Figure(figsize=size, layout="constrained")
    if title:
        figure.suptitle(title, fontsize=8)
    FigureCanvasAgg(figure)
    axes = np.atleast_2d(figure.subplots(rows, 2 + count, squeeze=False))
    picture = _as_rgb_array(source)
    for row in range(rows):
        ax = axes[row, 0]
        ax.imshow(picture)
        sx, sy = picture.shape[1] / source_size[0], picture.shape[0] / source_size[1]
        x0, y0, x1, y1 = boxes[row]
        ax.add_patch(
            Rectangle(
                (x0 * sx - 0.5, y0 * sy - 0.5),
                (x1 - x0) * sx,
                (y1 - y0) * sy,
                fill=False,
                edgecolor="yellow",
                linewidth=1.5,
                linestyle="--" if flips[row] else "-",
            )
        )
        ax.set_title(f"input, view {row}" + (" (flipped)" if flips[row] else ""), fontsize=7)
        view_picture = _as_rgb_array(view_images[row])
        axes[row, 1].imshow(view_picture)
        preset = presets[row] if presets is not None else None
        axes[row, 1].set_title(preset or ("whole image" if row == 0 else f"view {row}"), fontsize=7)
        for column in range(count):
            heat = values[row, column]
            blended = overlay(view_picture, heat, cmap=cmap, alpha=alpha, scale=scale)
            ax = axes[row, 2 + column]
            ax.imshow(blended)
            ax.set_title(titles[row][column], fontsize=7)
            if colour_bars:
                _colour_bar(figure, ax, heat, cmap=cmap, scale=scale)
    for ax in axes.flat:
        ax.set_axis_off()
    return figure


def _colour_bar(figure: Figure, ax, heat: np.ndarray, *, cmap: str, scale: Scale) -> None:
    """A horizontal colour bar under ``ax`` spanning what the overlay's colours mean, in units of the
    uniform value of ``heat`` (its sum over its number of finite cells)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    finite = np.isfinite(heat)
    uniform = float(np.nansum(heat)) / max(int(finite.sum()), 1)
    low, high = colour_limits(heat, scale)
    unit = uniform if uniform > 0 else 1.0
    norm = Normalize(low / unit, high / unit if high > low else low / unit + 1e-6)
    bar = figure.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax, orientation="horizontal", fraction=0.08, pad=0.02)
    bar.set_ticks([norm.vmin, norm.vmax])
    bar.set_ticklabels([f"{norm.vmin:.3g}×", f"{norm.vmax:.3g}×"])
    bar.ax.tick_params(labelsize=5, length=1.5, pad=1)
    # the bar's colours as one 256×1 picture instead of matplotlib's mesh: a mesh of many colours is rasterised,
    # and in a PDF each rasterisation renders a canvas of the whole figure at dpi (gigabytes at 300 dpi); as
    # 256 vector quads it would take some 50 kB per bar in an SVG; the picture takes a few hundred bytes
    bar.solids.remove()
    bar.ax.imshow(
        np.linspace(0.0, 1.0, 256)[None, :], cmap=cmap, aspect="auto", extent=(norm.vmin, norm.vmax, 0.0, 1.0),
        interpolation="nearest", zorder=0,
    )


def draw_box(
    image: Image.Image | np.ndarray | torch.Tensor,
    box: Sequence[int],
    *,
    source_size: tuple[int, int],
    flip: bool = False,
    colour: tuple[int, int, int] = (255, 221, 0),
) -> np.ndarray:
    """A copy of ``image`` (``H×W×3``) with a view's crop ``box`` (``[x0, y0, x1, y1]`` in pixels of an
    image of ``source_size`` = (width, height)) outlined; a flipped view's box gets a second, inner line."""
    rgb = Image.fromarray(_as_rgb_array(image))
    sx, sy = rgb.width / source_size[0], rgb.height / source_size[1]
    x0, y0, x1, y1 = box
    rect = [round(x0 * sx), round(y0 * sy), max(round(x1 * sx) - 1, 0), max(round(y1 * sy) - 1, 0)]
    width = max(2, round(min(rgb.size) / 100))
    draw = ImageDraw.Draw(rgb)
    draw.rectangle(rect, outline=colour, width=width)
    if flip:
        inner = [rect[0] + 2 * width, rect[1] + 2 * width, rect[2] - 2 * width, rect[3] - 2 * width]
        if inner[0] < inner[2] and inner[1] < inner[3]:
            draw.rectangle(inner, outline=colour, width=max(1, width // 2))
    return np.asarray(rgb)


FIGURE_FORMATS = {"png": "image/png", "pdf": "application/pdf", "svg": "image/svg+xml"}  #: format -> media type
VECTOR_FORMATS = ("pdf", "svg")  #: pictures embedded at their own resolution (``figure_bytes``)


MEBIBYTE = 2**20
#: the cost model of ``figure_cost``, fitted to ``benchmarks/figure_cost.py`` (noise pictures: the least
#: compressible) with a margin; every estimate there stays above its measured peak and size
COST_BASE_BYTES = 48 * MEBIBYTE  #: matplotlib's figure, axes and texts, beyond the pictures
COST_TILE_BYTES = 24.0  #: memory per picture pixel (the arrays, their RGBA copies, the overlay's blend): 10-14 measured
COST_CANVAS_BYTES = 7.0  #: PNG: memory per canvas pixel (Agg's RGBA buffer, its RGB copy, the encoder): 4.9 measured
COST_OUTPUT_BYTES = {"png": 3.1, "pdf": 3.4, "svg": 4.8}  #: file bytes per canvas (PNG) or picture (PDF, SVG) pixel
#: PNG: file bytes per picture pixel, the other bound of a PNG's size: pictures drawn larger than their pixels
#: repeat them (6.9 bytes measured at 2× upsampling, 4.9 at 4×), so past some dpi the file stops growing
COST_PNG_PICTURE_BYTES = 9.0
COST_OUTPUT_BASE = 256 * 1024  #: the files' own structure, the heading
COST_CELL_BYTES = 16 * 1024  #: per picture cell of the grid: its title, colour bar and ticks (paths in an SVG)
DEFAULT_FIGURE_MAX_BYTES = 32 * MEBIBYTE  #: the largest figure file drawn where no other limit is set (the app)
DEFAULT_FIGURE_MAX_MEMORY = 1024 * MEBIBYTE  #: the most memory one figure may take to draw there


@dataclass(frozen=True)
class FigureCost:
    """What drawing and encoding a Figure-5 grid is expected to take, before it is drawn: ``memory`` (bytes
    above the process's resident memory), ``output`` (bytes of the file), and the ``canvas`` and ``pictures``
    pixel counts they come from."""

    memory: int
    output: int
    canvas: int
    pictures: int


def figure_inches(rows: int, maps: int, *, cell_inches: float = 1.5, colour_bars: bool = True, title: bool = True) -> tuple[float, float]:
    """(width, height) in inches of ``figure5_grid`` with ``rows`` views and ``maps`` map columns."""
    height = cell_inches * rows * (1.35 if colour_bars else 1.1) + (0.3 if title else 0.0)
    return cell_inches * (2 + maps), height


def thumbnail_size(size: Sequence[int] | None, side: int) -> tuple[int, int]:
    """(width, height) of ``PIL.Image.thumbnail((side, side))`` of an image of ``size`` (width, height), rounded
    up, so that a cost estimate stays an upper bound; a square of ``side`` when the size is unknown."""
    if not size:
        return side, side
    width, height = size[0], size[1]
    scale = min(1.0, side / max(width, height, 1))
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def figure_cost(
    fmt: str, dpi: int, *, rows: int, maps: int, view_side: int, source_size: tuple[int, int], cell_inches: float = 1.5
) -> FigureCost:
    """The cost of ``figure5_grid`` with ``rows`` views of ``view_side``² pixels, ``maps`` map columns and an
    input picture of ``source_size`` (width, height: the copy drawn, e.g. a thumbnail), encoded as ``fmt`` at
    ``dpi``. A PNG costs its canvas (figure inches × dpi, squared); a PDF or SVG embeds every picture at its
    own pixels (``figure_bytes``), so its cost does not depend on ``dpi``."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"format must be one of {list(FIGURE_FORMATS)}, got {fmt!r}")
    width, height = figure_inches(rows, maps, cell_inches=cell_inches)
    pictures = rows * (source_size[0] * source_size[1] + (1 + maps) * view_side * view_side)
    if fmt == "png":
        canvas = round(width * dpi) * round(height * dpi)
        encoded = min(COST_OUTPUT_BYTES[fmt] * canvas, COST_PNG_PICTURE_BYTES * pictures)
    else:  # no canvas: the pictures are embedded as they are
        canvas, encoded = 0, COST_OUTPUT_BYTES[fmt] * pictures
    output = COST_OUTPUT_BASE + rows * (2 + maps) * COST_CELL_BYTES + int(encoded)
    memory = COST_BASE_BYTES + int(COST_TILE_BYTES * pictures + COST_CANVAS_BYTES * canvas) + 2 * output
    return FigureCost(memory=memory, output=output, canvas=canvas, pictures=pictures)


class FigureTooCostly(ValueError):
    """A figure over a size or memory limit, refused before it is drawn; the message says what to lower."""


def check_figure(cost: FigureCost, fmt: str, *, max_bytes: int, max_memory: int | None = None) -> None:
    """Raise ``FigureTooCostly`` when ``cost`` is over ``max_bytes`` of file or ``max_memory`` of memory."""
    lower = "a lower dpi, fewer views or fewer maps" if fmt == "png" else "fewer views, fewer maps or a smaller size"
    if cost.output > max_bytes:
        raise FigureTooCostly(
            f"the {fmt.upper()} figure would be about {cost.output / MEBIBYTE:,.1f} MiB, over the limit of "
            f"{max_bytes / MEBIBYTE:,.1f} MiB; ask for {lower}"
        )
    if max_memory is not None and cost.memory > max_memory:
        raise FigureTooCostly(
            f"drawing the {fmt.upper()} figure would take about {cost.memory / MEBIBYTE:,.0f} MiB of memory, over the "
            f"limit of {max_memory / MEBIBYTE:,.0f} MiB; ask for {lower}"
        )


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """Encode a matplotlib figure as PNG bytes (Agg)."""
    return figure_bytes(figure, "png", dpi=dpi)


def figure_bytes(figure: Figure, fmt: str = "png", *, dpi: int = 100) -> bytes:
    """Encode a matplotlib figure as ``png`` (opaque white, ``dpi``), ``pdf`` or ``svg`` (vector; the
    pictures are embedded at their own pixels, unresampled, and ``dpi`` only places them). One renderer for the app's downloads and the API's
    ``format=png|pdf|svg``."""
    if fmt not in FIGURE_FORMATS:
        raise ValueError(f"format must be one of {list(FIGURE_FORMATS)}, got {fmt!r}")
    if fmt in VECTOR_FORMATS:
        # unresampled: each picture is embedded at its own pixels whatever the dpi (matplotlib resamples it to
        # its printed size at dpi otherwise: 900×900 px per tile at 600 dpi), so a vector file's size is bounded
        for image in (image for ax in figure.axes for image in ax.images):
            image.set_interpolation("none")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=dpi, facecolor="white", metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, str | None]:
    """Reproducible files: no creation date in PDF and SVG."""
    if fmt == "pdf":
        return {"Creator": "lewel", "Producer": None, "CreationDate": None}
    if fmt == "svg":
        return {"Creator": "lewel", "Date": None}
    return {"Software": "lewel"}


def maps_grid(
    images: Sequence[Image.Image | np.ndarray | torch.Tensor],
    maps: np.ndarray | torch.Tensor,
    titles: Sequence[Sequence[str]],
    *,
    row_titles: Sequence[str] | None = None,
    cell_inches: float = 1.3,
    cmap: str = "jet",
    alpha: float = 0.5,
    scale: Scale = "peak",
    title: str | None = None,
) -> Figure:
    """Figure 5's layout over several whole images (the probe set of a training run): one row per image
    ``images[r]``, the image then each of its k maps ``maps[r]`` (``N×k×h×w``) overlaid on it, titled
    ``titles[r][c]``, each with a colour bar in units of the map's uniform value (so a flat map is read as
    flat); ``row_titles`` label the images."""
    values = np.asarray(maps, dtype=np.float32)
    rows, count = values.shape[:2]
    figure = Figure(figsize=(cell_inches * (1 + count), cell_inches * rows * 1.35 + (0.3 if title else 0.0)), layout="constrained")
    FigureCanvasAgg(figure)
    if title:
        figure.suptitle(title, fontsize=8)
    axes = np.atleast_2d(figure.subplots(rows, 1 + count, squeeze=False))
    for row in range(rows):
        picture = _as_rgb_array(images[row])
        axes[row, 0].imshow(picture)
        axes[row, 0].set_title(row_titles[row] if row_titles is not None else f"image {row}", fontsize=7)
        for column in range(count):
            heat = values[row, column]
            ax = axes[row, 1 + column]
            ax.imshow(overlay(picture, heat, cmap=cmap, alpha=alpha, scale=scale))
            ax.set_title(titles[row][column], fontsize=7)
            _colour_bar(figure, ax, heat, cmap=cmap, scale=scale)
    for ax in axes.flat:
        ax.set_axis_off()
    return figure
