"""Pictures of alignment maps with matplotlib (Agg, no display needed, safe in worker threads).

``figure5`` draws the paper's Figure 5 layout for one image: a row per view with the input image (the
view's crop box drawn on it), the augmented view, then the chosen maps overlaid on the view.
``overlay`` blends one map onto an image; ``figure_png`` encodes a figure.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from .analysis import MapAnalysis
from .maps import PATTERNS


def _as_rgb_array(image: Image.Image | np.ndarray | torch.Tensor) -> np.ndarray:
    """PIL image, ``H×W×3`` uint8 array or ``3×H×W`` uint8 tensor -> ``H×W×3`` uint8 array."""
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    if isinstance(image, torch.Tensor):
        return image.detach().cpu().permute(1, 2, 0).numpy().astype(np.uint8)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"image must be H×W×3, got {array.shape}")
    return array.astype(np.uint8)


def overlay(
    image: Image.Image | np.ndarray | torch.Tensor,
    heatmap: np.ndarray | torch.Tensor,
    *,
    alpha: float = 0.5,
    cmap: str = "jet",
) -> np.ndarray:
    """Blend a map (``h×w``, any non-negative scale, NaN = not seen) onto an image -> ``H×W×3`` uint8.

    The map is upsampled bilinearly to the image, scaled so that its peak is 1, coloured with ``cmap`` and
    mixed in with weight ``alpha``; where it is NaN the image shows unchanged.
    """
    rgb = _as_rgb_array(image)
    height, width = rgb.shape[:2]
    values = torch.as_tensor(np.asarray(heatmap, dtype=np.float64)).float()
    if values.dim() != 2:
        raise ValueError(f"heatmap must be h×w, got {tuple(values.shape)}")
    valid = torch.isfinite(values)
    filled = torch.where(valid, values, torch.zeros_like(values))
    up = F.interpolate(filled[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
    seen = F.interpolate(valid[None, None].float(), size=(height, width), mode="nearest")[0, 0] > 0.5
    peak = float(up.max())
    scaled = (up / peak if peak > 0 else up).clamp(0, 1).numpy()
    colour = colormaps[cmap](scaled)[..., :3] * 255.0
    weight = np.where(seen.numpy(), alpha, 0.0)[..., None]
    return np.clip(rgb * (1 - weight) + colour * weight, 0, 255).astype(np.uint8)


def figure5(
    analysis: MapAnalysis,
    indices: Sequence[int],
    source: Image.Image | np.ndarray | torch.Tensor,
    *,
    cell_inches: float = 1.5,
    cmap: str = "jet",
) -> Figure:
    """The Figure-5 grid: one row per view of ``analysis``; columns: the ``source`` image with the view's
    crop box (dashed when flipped), the augmented view, then each map of ``indices`` overlaid on the view,
    titled with its index and that view's pattern for it. ``source`` may be a downscaled copy of the image
    the views were cut from (boxes are scaled to it)."""
    rows, columns = len(analysis.views), 2 + len(indices)
    figure = Figure(figsize=(cell_inches * columns, cell_inches * rows * 1.1), layout="constrained")
    FigureCanvasAgg(figure)
    axes = np.atleast_2d(figure.subplots(rows, columns, squeeze=False))
    picture = _as_rgb_array(source)
    patterns = analysis.statistics.pattern
    for row, view in enumerate(analysis.views):
        ax = axes[row, 0]
        ax.imshow(picture)
        sx, sy = picture.shape[1] / view.source_size[0], picture.shape[0] / view.source_size[1]
        x0, y0, x1, y1 = view.box
        ax.add_patch(
            Rectangle(
                (x0 * sx - 0.5, y0 * sy - 0.5),
                (x1 - x0) * sx,
                (y1 - y0) * sy,
                fill=False,
                edgecolor="yellow",
                linewidth=1.5,
                linestyle="--" if view.flip else "-",
            )
        )
        ax.set_title(f"input, view {view.index}" + (" (flipped)" if view.flip else ""), fontsize=7)
        view_picture = _as_rgb_array(view.image)
        axes[row, 1].imshow(view_picture)
        axes[row, 1].set_title(view.preset or "whole image", fontsize=7)
        for column, index in enumerate(indices, start=2):
            axes[row, column].imshow(overlay(view_picture, analysis.maps[row, index], cmap=cmap))
            pattern = PATTERNS[int(patterns[row, index])]
            axes[row, column].set_title(f"map {index}\n{pattern}", fontsize=7)
    for ax in axes.flat:
        ax.set_axis_off()
    return figure


def figure_png(figure: Figure, *, dpi: int = 100) -> bytes:
    """Encode a matplotlib figure as PNG bytes (Agg)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
