"""benchmarks/photo_objects_coco.py, the independent COCO set of #40: deterministic, opened by lewel's COCO source,
and its study options change what they name only."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import needs_stamps
from lewel.data.sources import open_source

SCRIPT = Path(__file__).parent.parent / "benchmarks" / "photo_objects_coco.py"


def write(out: Path, *options: str) -> dict:
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--images", "4", "--size", "64", *options], check=True, capture_output=True)
    return json.loads((out / "annotations.json").read_text())


@needs_stamps
def test_the_coco_writer_is_deterministic_and_its_options_change_only_what_they_name(tmp_path) -> None:
    plain, again = write(tmp_path / "a"), write(tmp_path / "b")
    assert plain == again and (tmp_path / "a" / "images" / "000000.jpg").read_bytes() == (tmp_path / "b" / "images" / "000000.jpg").read_bytes()
    source = open_source(f"coco:{tmp_path / 'a' / 'annotations.json'}", size=64)
    assert len(source) == 4 and len(plain["annotations"]) >= 4
    lossless = write(tmp_path / "png", "--png")
    assert [i["file_name"] for i in lossless["images"]] == [f"{k:06d}.png" for k in range(4)]
    assert lossless["annotations"] == plain["annotations"]  # the same objects, stored without loss
    hard = write(tmp_path / "hard", "--hard", "--png")
    assert hard["annotations"] == plain["annotations"]  # the mask rule (alpha >= 128) is the cut itself
    soft, cut = (np.asarray(Image.open(tmp_path / d / "images" / "000000.png")) for d in ("png", "hard"))
    assert soft.shape == cut.shape and not np.array_equal(soft, cut)
    assert write(tmp_path / "upright", "--rotation", "0")["annotations"] != plain["annotations"]
