"""6. Cutout throughput per fill (images/s, one process), on the raccoon photos."""

from __future__ import annotations

from bench.common import SHARED, interleaved
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import FILLS, CutoutOptions, cutout


def run(scale: str = "default") -> dict:
    n = {"tiny": 5, "default": 60, "full": 200}[scale]
    images = SHARED / "raccoon-voc" / "images"
    boxes = match_images(parse_voc(SHARED / "raccoon-voc" / "annotations"), [p.name for p in images.glob("*.jpg")])
    names = sorted(boxes)[:n]
    datas = [(SHARED / "raccoon-voc" / "images" / k).read_bytes() for k in names]

    def make(fill, region="box", limit=None):
        opts = CutoutOptions(fills=(fill,), region=region, max_cover=1.0, min_background=0)

        def go():
            done = 0
            for d, k in list(zip(datas, names))[:limit]:
                try:
                    cutout(d, boxes[k], opts, seed=0)
                    done += 1
                except Exception:
                    pass
            return done
        return go

    fns = {f: make(f) for f in FILLS}
    fns["black+grabcut"] = make("black", "mask", limit=max(2, n // 6))     # GrabCut is slow: fewer images
    res = interleaved(fns, 1 if scale == "tiny" else 2)
    return {"name": "cutout", "images": n,
            "images_per_s": {k: round(v[1] / v[0], 1) for k, v in res.items()}, "targets": {}}
