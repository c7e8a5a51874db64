"""The pixels a cutout removes, and the check that they hold the object.

A silhouette (a polygon, an RLE, a --masks PNG, or GrabCut seeded by the box) is only as good as
its source: GrabCut often keeps a whole raccoon's head outside its mask, and the old self-check
compared the cutout with the same mask, so it could not see that (issue 25: 22 of 167 GrabCut
masks covered under 40% of their box, and 8 of those cutouts still showed the raccoon). So every
silhouette is checked against evidence it was not made from: its box. An annotated box is tight
around its object, so the object fills much of it and touches each of its four sides; a
silhouette that covers too little of the box, or stops well short of one of its sides, has
missed part of the object. Such an object is removed by its box instead (or the image is skipped,
`--mask-fallback skip`), and the manifest says which fell back and why. The thresholds come from
composites whose object pixels are known exactly (bench/composites.py, BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from negmine.errors import NegmineError
from negmine.images import ImageRejected
from negmine.synthetic.annotations import Box
from negmine.synthetic.objects import box_mask, shape_mask

GRABCUT_WORK = 256       # px: the longer side of the crop GrabCut runs on (BENCHMARKS.md: composites, grabcut)
GRABCUT_CONTEXT = 0.5    # the crop: the box grown by this share of its size on each side
GRABCUT_ITERATIONS = 5
GRABCUT_DOUBT = 2.0      # log-likelihood ratio: see `grabcut` (BENCHMARKS.md: composites)
FALLBACK_PAD = 2         # px: a box stood in for a silhouette is grown by this beyond the margin
SILHOUETTE_PAD = 1       # px: every silhouette is grown by this (edges of masks and polygons are rarely exact)


def cv2_module():
    """OpenCV, or NegmineError naming the extra that installs it."""
    try:
        import cv2
    except ImportError:
        raise NegmineError("inpainting and GrabCut masks need OpenCV: pip install 'negmine[cv]'") from None
    return cv2


def _gmm_log_density(model: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log p(x) under one of GrabCut's colour models (OpenCV's 1 x 65 layout: 5 weights, 5 means,
    5 covariances of BGR), for x: n x 3 BGR."""
    weights, means, covs = model[0, :5], model[0, 5:20].reshape(5, 3), model[0, 20:65].reshape(5, 3, 3)
    total = np.zeros(len(x))
    for k in range(5):
        if weights[k] <= 0:
            continue
        cov = covs[k] + 1e-6 * np.eye(3)
        d = x - means[k]
        maha = np.einsum("ij,jk,ik->i", d, np.linalg.inv(cov), d)
        total += weights[k] * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))
    return np.log(total + 1e-300)


def grabcut(rgb: np.ndarray, box: Box, *, work: int | None = GRABCUT_WORK, context: float | None = GRABCUT_CONTEXT,
            iterations: int = GRABCUT_ITERATIONS, doubt: float | None = GRABCUT_DOUBT) -> tuple[np.ndarray, np.ndarray]:
    """(the object GrabCut finds in `box`, the pixels of the box it left out but cannot call
    background), each h x w bool over the whole image `rgb` (h x w x 3 uint8).

    It runs on the box grown by `context` x its size on each side (background for its colour
    model), scaled so the longer side is at most `work` px, and the mask is scaled back with
    bilinear interpolation; `work=None, context=None` runs it on the whole image at full
    resolution (the old way: ~1.5 s a photo). `doubt`: the second mask holds the pixels of the box
    GrabCut left out although their colour is at most e^doubt times likelier background than
    object under its own colour models (None: no such pixels, the old way); removing them too
    errs towards removing too much. Deterministic (OpenCV's RNG is seeded).
    Raises ImageRejected when the box leaves no background to seed GrabCut."""
    cv2 = cv2_module()
    h, w = rgb.shape[:2]
    x0, y0 = int(np.floor(box.x0)), int(np.floor(box.y0))
    x1, y1 = int(np.ceil(box.x1)), int(np.ceil(box.y1))
    if context is None:
        cx0, cy0, cx1, cy1 = 0, 0, w, h
    else:
        dx, dy = max(8, int(context * (x1 - x0))), max(8, int(context * (y1 - y0)))
        cx0, cy0, cx1, cy1 = max(0, x0 - dx), max(0, y0 - dy), min(w, x1 + dx), min(h, y1 + dy)
    if x1 - x0 >= cx1 - cx0 - 1 and y1 - y0 >= cy1 - cy0 - 1:
        raise ImageRejected("box covers the whole image: no background to seed GrabCut")
    crop = np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1, ::-1])
    ch, cw = crop.shape[:2]
    scale = 1.0 if work is None else min(1.0, work / max(ch, cw))
    if scale < 1:
        crop = cv2.resize(crop, (max(1, round(cw * scale)), max(1, round(ch * scale))), interpolation=cv2.INTER_AREA)
    sh, sw = crop.shape[:2]
    rx0, ry0 = int(np.floor((x0 - cx0) * scale)), int(np.floor((y0 - cy0) * scale))
    rx1, ry1 = min(sw, int(np.ceil((x1 - cx0) * scale))), min(sh, int(np.ceil((y1 - cy0) * scale)))
    cv2.setRNGSeed(0)                     # GrabCut's k-means init: same input, same mask
    m = np.zeros((sh, sw), np.uint8)
    bg_model, fg_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(crop, m, (rx0, ry0, max(1, rx1 - rx0), max(1, ry1 - ry0)), bg_model, fg_model, iterations,
                cv2.GC_INIT_WITH_RECT)
    fg = (m == cv2.GC_FGD) | (m == cv2.GC_PR_FGD)
    unsure = np.zeros_like(fg)
    if doubt is not None:
        unsure[ry0:ry1, rx0:rx1] = True
        px = crop.reshape(-1, 3).astype(np.float64)
        llr = (_gmm_log_density(fg_model, px) - _gmm_log_density(bg_model, px)).reshape(sh, sw)
        unsure &= ~fg & (llr > -doubt)
    inside = box_mask([box], w, h)        # GrabCut's object lies in its rectangle; scaling may spill a pixel
    masks = []
    for part in (fg, unsure):
        full = np.zeros((h, w), bool)
        small = part.astype(np.float32)
        if scale < 1:
            small = cv2.resize(small, (cw, ch), interpolation=cv2.INTER_LINEAR)
        full[cy0:cy1, cx0:cx1] = small >= 0.5
        masks.append(full & inside)
    return masks[0], masks[1]


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """`mask` (h x w bool) grown by `px` pixels (a square neighbourhood)."""
    if px <= 0:
        return mask
    im = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * px + 1))
    return np.asarray(im) > 0


def box_evidence(obj: np.ndarray, box: Box, min_cover: float, max_gap: float) -> str | None:
    """Why the silhouette `obj` (h x w bool) cannot be the whole object annotated by `box`, judged
    by the box alone, or None when it may be: it covers under `min_cover` of the box's pixels, or
    it stops short of a side of the box by more than `max_gap` of the box's extent across it (a
    tight box touches its object on all four sides)."""
    h, w = obj.shape
    x0, y0 = max(0, int(np.floor(box.x0))), max(0, int(np.floor(box.y0)))
    x1, y1 = min(w, int(np.ceil(box.x1))), min(h, int(np.ceil(box.y1)))
    inside = obj[y0:y1, x0:x1]
    cover = inside.mean() if inside.size else 0.0
    if cover < min_cover:
        return f"mask covers {cover:.0%} of its box (under {min_cover:.0%})"
    cols, rows = np.flatnonzero(inside.any(axis=0)), np.flatnonzero(inside.any(axis=1))
    bw, bh = x1 - x0, y1 - y0
    gaps = {"left": cols[0] / bw, "right": (bw - 1 - cols[-1]) / bw, "top": rows[0] / bh,
            "bottom": (bh - 1 - rows[-1]) / bh}
    side, gap = max(gaps.items(), key=lambda kv: kv[1])
    if gap > max_gap:
        return f"mask stops {gap:.0%} of the box short of its {side} side (over {max_gap:.0%})"
    return None


@dataclass
class Region:
    mask: np.ndarray                                   # h x w bool: the pixels to fill
    fell_back: list[str] = field(default_factory=list)  # "box N: why its silhouette was not used"


def parse_margin(text: str) -> tuple[float, bool]:
    """--margin: (value, is_percent) from "8" (pixels) or "10%" (of each box side).
    Raises NegmineError on anything else or a negative value."""
    t = str(text).strip()
    pct = t.endswith("%")
    try:
        value = float(t[:-1] if pct else t)
    except ValueError:
        raise NegmineError(f"--margin takes pixels (8) or a percentage (10%), got {text!r}") from None
    if value < 0:
        raise NegmineError("--margin must be >= 0")
    return value, pct


def grow(box: Box, margin: tuple[float, bool], w: int, h: int) -> Box:
    """`box` grown by the margin (`parse_margin`) on each side, clipped to the w x h image."""
    value, pct = margin
    dx = (box.x1 - box.x0) * value / 100 if pct else value
    dy = (box.y1 - box.y0) * value / 100 if pct else value
    return Box(box.x0 - dx, box.y0 - dy, box.x1 + dx, box.y1 + dy, box.label).clip(w, h) or box


def margin_px(boxes: list[Box], margin: tuple[float, bool]) -> int:
    """The margin in pixels for a silhouette: a percentage is of the longest box side."""
    value, pct = margin
    if pct and boxes:
        value = value / 100 * max(max(b.x1 - b.x0, b.y1 - b.y0) for b in boxes)
    return int(round(value))


def annotated_shapes(boxes: list[Box], w: int, h: int, given_mask: np.ndarray | None) -> np.ndarray:
    """The objects' own pixels (h x w bool): polygon and RLE masks, and the --masks PNG."""
    mask = np.zeros((h, w), bool) if given_mask is None else given_mask.copy()
    for b in boxes:
        if b.shape:
            mask |= shape_mask(b, w, h)
    return mask


def side_gap(obj: np.ndarray, box: Box) -> int:
    """Pixels between the silhouette `obj` (h x w bool)'s extent inside `box` and the box side it
    stops farthest from (the box's longer side when it has no pixel there)."""
    h, w = obj.shape
    x0, y0 = max(0, int(np.floor(box.x0))), max(0, int(np.floor(box.y0)))
    x1, y1 = min(w, int(np.ceil(box.x1))), min(h, int(np.ceil(box.y1)))
    inside = obj[y0:y1, x0:x1]
    cols, rows = np.flatnonzero(inside.any(axis=0)), np.flatnonzero(inside.any(axis=1))
    if not len(cols):
        return max(x1 - x0, y1 - y0)
    return int(max(cols[0], x1 - x0 - 1 - cols[-1], rows[0], y1 - y0 - 1 - rows[-1]))


def object_region(rgb: np.ndarray, boxes: list[Box], *, region: str, margin: str, given_mask: np.ndarray | None = None,
                  min_cover: float, max_gap: float, fallback: str = "box") -> Region:
    """The pixels to fill for `boxes` (upright, clipped) on `rgb` (h x w x 3 uint8).

    region "box": every box grown by the margin, plus any polygon/RLE/--masks pixel outside it.
    region "mask": each object's silhouette (its polygon or RLE, the --masks pixels, or GrabCut
    seeded by its box) checked against its box (`box_evidence`). A silhouette that passes (with,
    for GrabCut, the pixels it left out but cannot call background) is grown by the margin, by its largest gap to a box side (it is that far off somewhere) and by
    SILHOUETTE_PAD; one that fails is replaced by its box grown by the margin and FALLBACK_PAD,
    and `Region.fell_back` says which and why; with fallback "skip" the image is refused instead
    (ImageRejected naming the box and the reason)."""
    h, w = rgb.shape[:2]
    m = parse_margin(margin)
    if region == "box":
        return Region(box_mask([grow(b, m, w, h) for b in boxes], w, h) | annotated_shapes(boxes, w, h, given_mask))
    px = margin_px(boxes, m)
    out = np.zeros((h, w), bool)
    fell = []
    for n, b in enumerate(boxes, 1):
        obj = shape_mask(b, w, h) if b.shape else None
        if given_mask is not None:
            obj = given_mask if obj is None else obj | given_mask
        reason, unsure = None, None
        if obj is None:
            try:
                obj, unsure = grabcut(rgb, b)
            except ImageRejected as exc:
                reason = str(exc)
        reason = reason or box_evidence(obj, b, min_cover, max_gap)     # GrabCut's own belief is what is judged
        name = f"box {n}" + (f" ({b.label})" if b.label else "")
        if reason and fallback == "skip":
            raise ImageRejected(f"{name}: {reason}")
        if reason:
            fell.append(f"{name}: {reason}")
            out |= box_mask([grow(b, (px + FALLBACK_PAD, False), w, h)], w, h)
        else:
            out |= dilate(obj if unsure is None else obj | unsure, px + side_gap(obj, b) + SILHOUETTE_PAD)
    # an annotated pixel is removed even where its silhouette fell back (fail closed)
    return Region(out | annotated_shapes(boxes, w, h, given_mask), fell)


def uncovered(mask: np.ndarray, boxes: list[Box], region: str, margin: str, given_mask: np.ndarray | None) -> int:
    """Annotated object pixels the region `mask` (h x w bool) leaves: 0 for a correct region (a
    guard against bugs in building it). Each object is its box grown by the margin (region box)
    or its polygon/RLE (region mask), and every --masks pixel; a box whose silhouette fell back
    is wholly in the region, and a GrabCut silhouette is no annotation, so not checked here
    (`box_evidence` checks it)."""
    h, w = mask.shape
    need = annotated_shapes(boxes, w, h, given_mask)
    if region == "box":
        need |= box_mask([grow(b, parse_margin(margin), w, h) for b in boxes], w, h)
    return int((need & ~mask).sum())
