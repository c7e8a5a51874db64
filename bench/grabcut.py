"""9. GrabCut masks from boxes on the raccoon photos: seconds per box, the new way (a crop of the
box and half its size around it, at most 256 px, colour-doubtful pixels kept) against the old way
(the whole image at full resolution, as negmine ran it before issue 25), taking turns box by box
in the same run so a slow spell of this shared machine hits both alike. Also: how many of the new
masks the box check (`regions.box_evidence`, the defaults) sends back to the box, and whether it
catches the issue's photos whose GrabCut cutouts still showed the raccoon."""

from __future__ import annotations

import time

import numpy as np

from bench.common import SHARED
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import CutoutOptions, load_rgb
from negmine.synthetic.regions import SILHOUETTE_PAD, box_evidence, dilate, grabcut, side_gap

KEPT_THE_RACCOON = [10, 16, 26, 29, 37, 50, 67, 110]    # issue 25, looked at by a person


def run(scale: str = "default") -> dict:
    n = {"tiny": 3, "default": 40, "full": 200}[scale]
    folder = SHARED / "raccoon-voc"
    boxes = match_images(parse_voc(folder / "annotations"), [p.name for p in (folder / "images").glob("*.jpg")])
    order = sorted(boxes, key=lambda k: int(k.split("-")[1].split(".")[0]))
    listed = {f"raccoon-{i}.jpg" for i in KEPT_THE_RACCOON}
    names = order[:n] if scale != "default" else sorted(set(order[:n]) | listed)
    opts = CutoutOptions()
    times = {"old": [], "new": []}
    fell, caught = 0, []
    for name in names:
        rgb = load_rgb((folder / "images" / name).read_bytes())
        for b in boxes[name]:
            for way, kw in (("old", {"work": None, "context": None, "doubt": None}), ("new", {})):
                t = time.perf_counter()
                try:
                    m = grabcut(rgb, b, **kw)[0]
                except Exception:
                    m = None
                times[way].append(time.perf_counter() - t)
            reason = "no background" if m is None else box_evidence(m, b, opts.min_mask_cover, opts.max_mask_gap)
            fell += reason is not None
            if int(name.split("-")[1].split(".")[0]) in KEPT_THE_RACCOON:
                caught.append(reason is not None)
    old, new = np.mean(times["old"]), np.mean(times["new"])
    return {"name": "grabcut", "images": len(names), "boxes": len(times["new"]),
            "seconds_per_box": {"old": round(float(old), 3), "new": round(float(new), 3)},
            "composites": on_composites({"tiny": 4, "default": 60, "full": 150}[scale]),
            "speedup": round(float(old / new), 1), "fell_back_to_box": fell,
            "kept_the_raccoon_caught": f"{sum(caught)} of {len(caught)}",
            "targets": {"every photo that kept the raccoon falls back": all(caught)} if caught else {}}


def on_composites(n: int) -> dict:
    """Object pixels left by each way's mask on the composites of bench/composites.py, both judged
    by the same box check and grown the same way (`regions.object_region`'s rule), a box that
    fails counting as removed: {way: {"fell_back", "max_pct", "mean_pct"}}."""
    import tempfile
    from pathlib import Path

    from bench.composites import build
    from negmine.synthetic.annotations import Box

    opts = CutoutOptions()
    out = {"old": [], "new": []}
    with tempfile.TemporaryDirectory() as tmp:
        alphas = build(Path(tmp), n)
        for key, alpha in alphas.items():
            rgb = load_rgb((Path(tmp) / "images" / key).read_bytes())
            ys, xs = np.nonzero(alpha)
            box = Box(float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
            for way, kw in (("old", {"work": None, "context": None, "doubt": None}), ("new", {})):
                sure, unsure = grabcut(rgb, box, **kw)
                if box_evidence(sure, box, opts.min_mask_cover, opts.max_mask_gap):
                    out[way].append(None)
                    continue
                region = dilate(sure | unsure, side_gap(sure, box) + SILHOUETTE_PAD)
                out[way].append(100.0 * (alpha & ~region).sum() / alpha.sum())
    kept = {way: [p for p in v if p is not None] for way, v in out.items()}
    return {way: {"fell_back": len(out[way]) - len(v), "max_pct": round(float(max(v, default=0.0)), 2),
                  "mean_pct": round(float(np.mean(v)), 3) if v else None} for way, v in kept.items()}
