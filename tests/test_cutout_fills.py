"""The noise fill matches the photo around the hole (issue 25: a hole of white noise is what a
model learns instead of the object). Statistics are bench.fills.hole_vs_ring on real raccoon
photos (../shared/data/raccoon-voc): the hole against the ring of background around it."""

import io

import numpy as np
import pytest
from PIL import Image

from bench.fills import hole_vs_ring
from conftest import SHARED
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import CutoutOptions, cutout
from negmine.synthetic.objects import box_mask
from negmine.images import ImageRejected

RAC = SHARED / "raccoon-voc"
NAMES = [f"raccoon-{i}.jpg" for i in range(1, 9)]


def _stats(data: bytes, boxes, **kw) -> dict | None:
    """None when `cutout` refuses the image (raccoon-3's box fills 99% of it: --max-cover)."""
    try:
        c = cutout(data, boxes, CutoutOptions(fills=("noise",), image_format="png", **kw), 0)
    except ImageRejected:
        return None
    out = np.asarray(Image.open(io.BytesIO(c.data)).convert("RGB"))
    return hole_vs_ring(out, box_mask(boxes, c.width, c.height))


@pytest.fixture(scope="module")
def boxes():
    return match_images(parse_voc(RAC / "annotations"), NAMES)


def test_matched_noise_has_the_rings_colour_and_high_frequencies_white_noise_does_not(boxes):
    matched, white = [], []
    for name in NAMES:
        data = (RAC / "images" / name).read_bytes()
        if (row := _stats(data, boxes[name])) is not None:
            matched.append(row)
            white.append(_stats(data, boxes[name], noise="uniform"))
    assert len(matched) == 7
    med = lambda rows, k: float(np.median([r[k] for r in rows]))
    # colour: the hole's mean within a fraction of the ring's spread, its spread within 2x of the ring's
    assert med(matched, "mean_gap") < 0.4 < med(white, "mean_gap")
    assert all(r["mean_gap"] < 0.6 for r in matched)
    assert all(0.5 < r["std_ratio"] < 1.5 for r in matched)
    # high-frequency energy (RMS of neighbour differences): the ring's, within 2x; white noise is 3x+ rougher
    assert all(0.5 < r["hf_ratio"] < 2.0 for r in matched)
    assert 0.8 < med(matched, "hf_ratio") < 1.25
    assert med(white, "hf_ratio") > 3


def test_the_hole_gets_the_sources_jpeg_blocks(boxes):
    """A heavily compressed source (quality 30) shows 8x8 block edges; the filled hole goes
    through the same quantisation tables, so it shows them too. The same pixels given as PNG
    have no tables: the hole then has no block structure while the ring keeps it."""
    ratios = {"JPEG": [], "PNG": []}
    for name in NAMES:
        im = Image.open(RAC / "images" / name).convert("RGB")
        for fmt in ratios:
            buf = io.BytesIO()
            im.save(buf, fmt, **({"quality": 30} if fmt == "JPEG" else {}))
            if (row := _stats(buf.getvalue(), boxes[name])) is not None:
                ratios[fmt].append(row["block_ratio"])
    # block_ratio: (hole's edge-to-inner difference ratio) / (ring's); 1 = same blockiness
    assert abs(np.log2(np.median(ratios["JPEG"]))) < abs(np.log2(np.median(ratios["PNG"])))
    assert 0.85 < np.median(ratios["JPEG"]) < 1.2


def test_matched_noise_is_reproducible_from_the_seed(boxes):
    data = (RAC / "images" / NAMES[0]).read_bytes()
    opts = CutoutOptions(fills=("noise",))
    assert cutout(data, boxes[NAMES[0]], opts, 5).data == cutout(data, boxes[NAMES[0]], opts, 5).data
    assert cutout(data, boxes[NAMES[0]], opts, 5).data != cutout(data, boxes[NAMES[0]], opts, 6).data


def test_the_docs_say_what_each_fill_leaves_for_a_model_to_find():
    from pathlib import Path

    from negmine.synthetic.cutout import FILLS

    page = (Path(__file__).resolve().parents[1] / "docs" / "commands" / "cutout.md").read_text()
    section = page.split("## What each fill leaves for a model to find", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = {line.split("`")[1] for line in rows}
    assert set(FILLS) <= named                                   # a row per fill, what it leaves in its last column
    assert all(len(line.strip(" |").split(" | ")) == 3 and line.split(" | ")[-1].strip(" |") for line in rows)
