"""8. Object pixels left in cutouts, on composites whose object pixels are known exactly.

A raccoon is cut from a raccoon-voc photo with a GrabCut mask (its largest part, holes filled;
only masks covering 50-90% of their box, so a silhouette and not the box) and pasted onto an imagenet-500 photo: the pasted mask *is* the composite's alpha, so every
object pixel is known by construction. The composites (PNG; object pixels kept off pure black so
a black fill tells them apart) are built at run time in a temporary folder, with the annotations
each region method reads: boxes (the alpha's tight box, CSV), mask PNGs (exact, eroded 2 px,
dilated 2 px), COCO polygons (contours simplified to 1.5 px) and COCO RLE (exact). `negmine
cutout --fill black --image-format png` runs once per method; an object pixel is left when the
written image does not show it black.

Caveat: the alphas are GrabCut's own output, so shapes GrabCut finds easily are over-represented;
the GrabCut method is still run on a new background, which is a new problem for it.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from bench.common import SHARED
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import CutoutOptions, load_rgb
from negmine.synthetic.regions import dilate, grabcut


def _alpha_object(name: str, box) -> tuple[np.ndarray, np.ndarray] | None:
    """(rgb crop, alpha crop) of the raccoon in `box`, or None when GrabCut finds no plausible
    silhouette (under half its box, or over 90%: the box itself, background included)."""
    from scipy.ndimage import binary_fill_holes, label

    rgb = load_rgb((SHARED / "raccoon-voc" / "images" / name).read_bytes())
    try:
        m, _ = grabcut(rgb, box, doubt=None)     # the plain silhouette: crisper alphas
    except Exception:
        return None
    parts, n = label(m)
    if n == 0:
        return None
    m = binary_fill_holes(parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1)
    x0, y0, x1, y1 = (int(np.floor(box.x0)), int(np.floor(box.y0)), int(np.ceil(box.x1)), int(np.ceil(box.y1)))
    if not 0.5 <= m[y0:y1, x0:x1].mean() <= 0.9:     # a silhouette: not a fragment, not the whole box
        return None
    ys, xs = np.nonzero(m)
    sl = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
    return rgb[sl], m[sl]


def build(folder: Path, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n composites in folder/images with their annotations; {file name: alpha (h x w bool)}."""
    import cv2
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    voc = match_images(parse_voc(SHARED / "raccoon-voc" / "annotations"),
                       sorted(p.name for p in (SHARED / "raccoon-voc" / "images").glob("*.jpg")))
    singles = [k for k in sorted(voc, key=lambda k: int(k.split("-")[1].split(".")[0])) if len(voc[k]) == 1]
    backgrounds = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
    for sub in ("images", "exact", "eroded", "dilated"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    alphas, rows, images, polys, rles = {}, [], [], [], []
    for name in singles:
        if len(alphas) == n:
            break
        obj = _alpha_object(name, voc[name][0])
        if obj is None:
            continue
        with Image.open(backgrounds[int(rng.integers(len(backgrounds)))]) as im:
            bg = im.convert("RGB")
        bg.thumbnail((640, 640))
        bg = np.asarray(bg).copy()
        bh, bw = bg.shape[:2]
        crop, a = obj
        s = rng.uniform(0.3, 0.7) * min(bh, bw) / max(a.shape)
        size = (max(8, round(a.shape[1] * s)), max(8, round(a.shape[0] * s)))
        crop = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR))
        a = np.asarray(Image.fromarray(a.astype(np.uint8) * 255).resize(size, Image.Resampling.BILINEAR)) >= 128
        y, x = int(rng.integers(0, bh - size[1] + 1)), int(rng.integers(0, bw - size[0] + 1))
        alpha = np.zeros((bh, bw), bool)
        alpha[y:y + size[1], x:x + size[0]] = a
        bg[alpha] = np.maximum(crop[a], 1)            # never pure black: a black fill tells them apart
        key = f"c{len(alphas):03d}.png"
        Image.fromarray(bg).save(folder / "images" / key)
        alphas[key] = alpha
        ys, xs = np.nonzero(alpha)
        x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
        rows.append([key, x0, y0, x1, y1, "raccoon"])
        for sub, m in (("exact", alpha), ("eroded", ~dilate(~alpha, 2)), ("dilated", dilate(alpha, 2))):
            Image.fromarray(m.astype(np.uint8) * 255).save(folder / sub / key)
        iid = len(images) + 1
        images.append({"id": iid, "file_name": key, "width": bw, "height": bh})
        contours, _ = cv2.findContours(alpha.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        seg = [(cv2.approxPolyDP(c, 1.5, True).reshape(-1, 2) + 0.5).ravel().tolist() for c in contours if len(c) >= 3]
        bbox = [x0, y0, x1 - x0, y1 - y0]
        polys.append({"id": iid, "image_id": iid, "category_id": 1, "bbox": bbox, "iscrowd": 0,
                      "segmentation": [p for p in seg if len(p) >= 6]})
        rle = mask_utils.encode(np.asfortranarray(alpha.astype(np.uint8)))
        rles.append({"id": iid, "image_id": iid, "category_id": 1, "bbox": bbox, "iscrowd": 0,
                     "segmentation": {"size": [bh, bw], "counts": rle["counts"].decode()}})
    with open(folder / "boxes.csv", "w", newline="") as f:
        csv.writer(f).writerows([["filename", "xmin", "ymin", "xmax", "ymax", "class"], *rows])
    cats = [{"id": 1, "name": "raccoon"}]
    (folder / "polygons.json").write_text(json.dumps({"images": images, "annotations": polys, "categories": cats}))
    (folder / "rle.json").write_text(json.dumps({"images": images, "annotations": rles, "categories": cats}))
    return alphas


METHODS = {   # name: (--boxes, --masks, --region)
    "box": ("boxes.csv", None, "box"),
    "mask file (exact)": ("boxes.csv", "exact", "mask"),
    "mask file (eroded 2 px)": ("boxes.csv", "eroded", "mask"),
    "mask file (dilated 2 px)": ("boxes.csv", "dilated", "mask"),
    "polygon (COCO, 1.5 px)": ("polygons.json", None, "mask"),
    "RLE (COCO)": ("rle.json", None, "mask"),
    "GrabCut (from the box)": ("boxes.csv", None, "mask"),
}


def left_in(out: Path, alphas: dict[str, np.ndarray]) -> dict:
    """Per written image of a `negmine cutout --fill black --image-format png` run: the share of
    its composite's object pixels not black. {"written", "skipped", "fell_back", "max_pct", "mean_pct"}."""
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines() if line.strip()]
    skipped = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines() if line.strip()]
    pcts = []
    for r in rows:
        arr = np.asarray(Image.open(out / r["path"]).convert("RGB"))
        a = alphas[r["file"]]
        pcts.append(100.0 * (a & arr.any(axis=2)).sum() / a.sum())
    return {"written": len(rows), "skipped": len(skipped), "fell_back": sum(bool(r.get("fell_back")) for r in rows),
            "max_pct": round(float(max(pcts)), 2) if pcts else None,
            "mean_pct": round(float(np.mean(pcts)), 2) if pcts else None, "over_2pct": int(sum(p >= 2 for p in pcts))}


def run_methods(n: int, options: dict | None = None, methods: dict = METHODS) -> dict:
    """Build n composites and run each method on them; {method: left_in(...)}."""
    from negmine.synthetic.command import CutoutJob, run_cutout

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        alphas = build(root / "c", n)
        out = {}
        for label, (boxes, masks, region) in methods.items():
            dest = root / f"out{len(out)}"
            opts = CutoutOptions(region=region, fills=("black",), image_format="png", **(options or {}))
            run_cutout(CutoutJob(images=root / "c" / "images", out=dest, boxes=root / "c" / boxes,
                                 masks=root / "c" / masks if masks else None, options=opts, seed=0, workers=1,
                                 progress=False))
            out[label] = left_in(dest, alphas)
        return out


def run(scale: str = "default") -> dict:
    n = {"tiny": 6, "default": 60, "full": 150}[scale]
    res = run_methods(n)
    return {"name": "composites", "composites": n, "methods": res,
            "targets": {"< 2% object pixels left in every written image, every method":
                        all(r["max_pct"] is None or r["max_pct"] < 2 for r in res.values())}}
