"""7. How visible is the hole? Per fill, simple statistics of the filled hole against the ring of
background around it, on the raccoon photos (region box, PNG output so only the fill is measured).

Per image and fill: mean gap (|hole mean - ring mean| per channel, over the ring's std), std ratio
(hole std / ring std), high-frequency ratio (RMS of neighbouring-pixel differences, hole / ring)
and blockiness ratio (how much more pixels differ across JPEG 8x8 block edges than inside blocks,
hole / ring). A hole nothing gives away scores gap 0 and ratios 1; the table reports the median
over images and, for the ratios, the median of |log2 ratio| (0 = identical, 1 = off by 2x).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from bench.common import SHARED
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import FILLS, CutoutOptions, cutout
from negmine.synthetic.objects import box_mask
from negmine.synthetic.texture import ring


def _diffs(gray: np.ndarray, where: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour differences along `axis` between two pixels both in `where`, and whether each
    pair straddles an 8-px block edge."""
    d = np.diff(gray, axis=axis)
    both = (where[:, 1:] & where[:, :-1]) if axis == 1 else (where[1:] & where[:-1])
    pos = np.arange(d.shape[axis])
    edge = (pos % 8 == 7)[None, :] if axis == 1 else (pos % 8 == 7)[:, None]
    edge = np.broadcast_to(edge, d.shape)
    return d[both], edge[both]


def hole_vs_ring(out: np.ndarray, mask: np.ndarray) -> dict:
    """Statistics of the hole `mask` (h x w bool) in `out` (h x w x 3 uint8) against its ring
    (`texture.ring`): {"mean_gap", "std_ratio", "hf_ratio", "block_ratio"} (see the module
    docstring; per-channel values averaged over the channels)."""
    near = ring(mask)
    img = out.astype(np.float64)
    hole, bg = img[mask], img[near]
    sd = np.maximum(bg.std(axis=0), 1e-6)
    gray = img @ np.array([0.299, 0.587, 0.114])

    def hf_block(where):
        parts = [_diffs(gray, where, a) for a in (0, 1)]
        d = np.concatenate([p[0] for p in parts])
        e = np.concatenate([p[1] for p in parts])
        rms = np.sqrt((d ** 2).mean()) if len(d) else 0.0
        inner = np.abs(d[~e]).mean() if (~e).any() else 0.0
        block = np.abs(d[e]).mean() / inner if e.any() and inner > 0 else 1.0
        return rms, block

    hf_h, block_h = hf_block(mask)
    hf_r, block_r = hf_block(near)
    return {"mean_gap": float((np.abs(hole.mean(axis=0) - bg.mean(axis=0)) / sd).mean()),
            "std_ratio": float((hole.std(axis=0) / sd).mean()),
            "hf_ratio": float(hf_h / max(hf_r, 1e-6)),
            "block_ratio": float(block_h / max(block_r, 1e-6))}


def fill_stats(names: list[str], fills: dict[str, dict]) -> dict:
    """Median statistics per fill over the raccoon images `names`; fills: {label: CutoutOptions
    keywords}. Images a fill skips are left out of its medians."""
    ann = SHARED / "raccoon-voc"
    boxes = match_images(parse_voc(ann / "annotations"), names)
    out = {}
    for label, kw in fills.items():
        rows = []
        opts = CutoutOptions(image_format="png", max_cover=1.0, min_background=0, **kw)
        for n in names:
            data = (ann / "images" / n).read_bytes()
            try:
                c = cutout(data, boxes[n], opts, seed=0)
            except Exception:
                continue
            arr = np.asarray(Image.open(io.BytesIO(c.data)).convert("RGB"))
            mask = box_mask([b for b in boxes[n]], c.width, c.height)
            rows.append(hole_vs_ring(arr, mask))
        out[label] = {"images": len(rows),
                      "mean_gap": round(float(np.median([r["mean_gap"] for r in rows])), 2),
                      **{k: round(float(np.median([abs(np.log2(max(r[k], 1e-6))) for r in rows])), 2)
                         for k in ("std_ratio", "hf_ratio", "block_ratio")}}
    return out


def run(scale: str = "default") -> dict:
    n = {"tiny": 4, "default": 40, "full": 200}[scale]
    names = sorted(p.name for p in (SHARED / "raccoon-voc" / "images").glob("*.jpg"))[:n]
    fills = {"noise (matched)": {"fills": ("noise",), "noise": "matched"},
             "noise (uniform, before)": {"fills": ("noise",), "noise": "uniform"},
             "noise (gaussian)": {"fills": ("noise",), "noise": "gaussian"},
             **{f: {"fills": (f,)} for f in FILLS if f != "noise"}}
    return {"name": "fills", "images": n, "hole_vs_ring": fill_stats(names, fills), "targets": {}}
