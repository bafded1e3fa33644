"""An independent set of objects on photographs, in COCO format, written without lewel's scene generator (#40).

The ``textured`` benchmark and its profile splits are drawn by ``lewel.data.scene_style``; a model judged only on
them could be judged on that code's quirks. This writer shares none of it: Pillow's ``alpha_composite`` pastes
Debian's Tux Paint cut-outs (their own soft alpha, no threshold, no blur of ours) at a random scale and rotation
onto random crops of every scikit-image photograph that loads offline, with its own random generator; an
instance's mask is where its cut-out's alpha is at least half and no later cut-out covers it at least half.
No jitter, no distractors, no blending. The images and ``annotations.json`` go to ``--out``; profile it with

    python benchmarks/photo_objects_coco.py --out /tmp/photo_objects --images 512
    lewel profile --checkpoint models/lewel_m_demo.safetensors --data coco:/tmp/photo_objects/annotations.json \
        --out /tmp/photo_objects/lewel_m_demo.profile.json

``--rotation``, ``--scale``, ``--hard`` and ``--png`` change one property at a time for studies of what makes
the set hard (docs/maps.md); left out, the benchmark is written byte for byte as before.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
from PIL import Image
from pycocotools import mask as coco_mask

STAMPS = Path("/usr/share/tuxpaint/stamps")
PHOTOS = ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "moon", "page", "rocket", "text")  # fmt: skip


def photographs() -> dict[str, Image.Image]:
    from skimage import data

    loaded = {}
    for name in PHOTOS:
        try:
            loaded[name] = Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")
        except Exception:  # noqa: BLE001 - a sample this scikit-image would download
            continue
    return loaded


def cutouts() -> list[tuple[str, Path]]:
    """(category, path) of every stamp PNG below a category folder, glyphs left out."""
    found = []
    for path in sorted(STAMPS.rglob("*.png")):
        relative = path.relative_to(STAMPS).as_posix()
        if "/" in relative and not relative.startswith(("symbols/alphabets", "symbols/math")):
            found.append((relative.split("/", 1)[0], path))
    return found


def write(
    out: Path, count: int, size: int, seed: int, *, rotation: float = 25.0, scale: tuple[float, float] = (0.2, 0.5),
    hard: bool = False, png: bool = False,
) -> Path:
    """``count`` images of ``size`` px and their annotations in ``out``: cut-outs rotated by up to ``rotation``
    degrees, their longest side a share in ``scale`` of the image side; ``hard``: their alpha cut at 128 (no
    soft edge); ``png``: lossless images (the defaults are the benchmark's: soft edges, JPEG)."""
    rng = random.Random(seed)
    photos, stamps = photographs(), cutouts()
    names = sorted({category for category, _ in stamps})
    ids = {name: k + 1 for k, name in enumerate(names)}
    (out / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        photo = photos[rng.choice(sorted(photos))]
        side = int(min(photo.size) * rng.uniform(0.4, 1.0))
        left, top = rng.randrange(photo.width - side + 1), rng.randrange(photo.height - side + 1)
        canvas = photo.crop((left, top, left + side, top + side)).resize((size, size), Image.Resampling.LANCZOS).convert("RGBA")
        masks, categories = [], []
        for _ in range(rng.randint(1, 4)):
            category, path = rng.choice(stamps)
            with Image.open(path) as opened:
                stamp = opened.convert("RGBA")
            box = stamp.getbbox()
            if box is None:
                continue
            stamp = stamp.crop(box).rotate(rng.uniform(-rotation, rotation), expand=True, resample=Image.Resampling.BICUBIC)
            factor = rng.uniform(*scale) * size / max(stamp.size)
            stamp = stamp.resize((max(1, round(stamp.width * factor)), max(1, round(stamp.height * factor))), Image.Resampling.LANCZOS)
            x, y = rng.randrange(size - stamp.width + 1), rng.randrange(size - stamp.height + 1)
            layer = Image.new("RGBA", (size, size))
            layer.paste(stamp, (x, y))
            if hard:
                layer.putalpha(layer.getchannel("A").point(lambda a: 255 if a >= 128 else 0))
            alpha = np.asarray(layer)[..., 3] >= 128
            if alpha.sum() < size * size // 400:
                continue
            masks = [m & ~alpha for m in masks]
            canvas = Image.alpha_composite(canvas, layer)
            masks.append(alpha)
            categories.append(category)
        name = f"{i:06d}.png" if png else f"{i:06d}.jpg"
        canvas.convert("RGB").save(out / "images" / name, **({} if png else {"quality": 92}))
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for visible, category in zip(masks, categories, strict=True):
            if visible.sum() == 0:
                continue
            rle = coco_mask.encode(np.asfortranarray(visible.astype(np.uint8)))
            annotations.append({
                "id": len(annotations) + 1, "image_id": i + 1, "category_id": ids[category], "iscrowd": 0,
                "segmentation": {"size": rle["size"], "counts": rle["counts"].decode()},
                "area": float(visible.sum()), "bbox": [float(v) for v in coco_mask.toBbox(rle)],
            })  # fmt: skip
    path = out / "annotations.json"
    categories = [{"id": ids[n], "name": n, "supercategory": "tuxpaint"} for n in names]
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=4_040_404)
    parser.add_argument("--rotation", type=float, default=25.0, help="cut-outs rotated by up to this many degrees (a study)")
    parser.add_argument("--scale", type=float, nargs=2, default=(0.2, 0.5), metavar=("LOW", "HIGH"),
                        help="an object's longest side as a share of the image side (a study)")
    parser.add_argument("--hard", action="store_true", help="cut the cut-outs' alpha at 128: no soft edge (a study)")
    parser.add_argument("--png", action="store_true", help="write lossless PNG instead of JPEG (a study)")
    args = parser.parse_args()
    print(write(args.out, args.images, args.size, args.seed, rotation=args.rotation, scale=tuple(args.scale), hard=args.hard, png=args.png))


if __name__ == "__main__":
    main()
