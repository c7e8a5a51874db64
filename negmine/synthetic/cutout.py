"""Synthetic negatives: cut the object out of a positive image and fill the hole, or crop the
background around it. Pure functions of (image bytes, boxes, options, seed), so every output can
be reproduced from its manifest row, and they run unchanged in worker processes.

Fills: noise (matched to the ring of background around the hole: colour, spectrum, grain, see
`negmine.synthetic.texture`; or plain uniform / gaussian noise), blur (the
surrounding background spread into the hole by normalised convolution: no blurred silhouette of
the object is left), mean, black, tile (Backgrounds Challenge Only-BG-T: the largest background
strip beside the box, repeated), inpaint (OpenCV Telea or Navier-Stokes). When the source is a
JPEG, a hole filled to imitate the photo (matched noise, blur, tile, inpaint) goes through the
source's own quantisation tables (`texture.jpeg_like`), so it carries the same block artefacts
as the pixels around it.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from negmine.synthetic.annotations import Box
from negmine.errors import NegmineError
from negmine.images import ImageRejected, open_image, to_rgb
from negmine.synthetic.objects import box_mask
from negmine.synthetic.regions import (annotated_shapes, cv2_module, grow, object_region, parse_margin,
                                       uncovered)
from negmine.synthetic.shortcuts import DEFAULT_FILLS
from negmine.synthetic.texture import background_blur, jpeg_like, jpeg_tables, matched_noise

FILLS = ("noise", "blur", "mean", "black", "tile", "inpaint")
REGIONS = ("box", "mask")


@dataclass(frozen=True)
class CutoutOptions:
    region: str = "box"
    margin: str = "0"                  # pixels ("8") or percent of each box side ("10%")
    fills: tuple[str, ...] = DEFAULT_FILLS   # chosen by bench/shortcut.py
    noise: str = "matched"             # matched | uniform | gaussian
    inpaint: str = "telea"             # telea | ns
    max_cover: float = 0.9             # skip when the region covers more of the image
    min_mask_cover: float = 0.4        # a silhouette covering less of its box falls back (regions.box_evidence)
    max_mask_gap: float = 0.05         # ... or stopping short of a box side by more of the box than this
    mask_fallback: str = "box"         # box: remove the box instead | skip: skip the image
    min_background: int = 1024         # pixels that must be left outside the region
    image_format: str = "jpg"          # jpg | png (png: pixels outside the region are bit-exact)
    quality: int = 95

    def validate(self) -> "CutoutOptions":
        bad = [f for f in self.fills if f not in FILLS]
        if bad or not self.fills:
            raise NegmineError(f"unknown fill {', '.join(bad) or '(none)'}; choose from {', '.join(FILLS)}")
        if self.region not in REGIONS:
            raise NegmineError(f"--region must be one of {', '.join(REGIONS)}")
        if self.noise not in ("matched", "uniform", "gaussian"):
            raise NegmineError("--noise must be matched, uniform or gaussian")
        if self.inpaint not in ("telea", "ns"):
            raise NegmineError("--inpaint-method must be telea or ns")
        if self.image_format not in ("jpg", "png"):
            raise NegmineError("--image-format must be jpg or png")
        if not 0 < self.max_cover <= 1:
            raise NegmineError("--max-cover must be in (0, 1]")
        if not 0 <= self.min_mask_cover <= 1 or not 0 <= self.max_mask_gap <= 1:
            raise NegmineError("--min-mask-cover and --max-mask-gap must be in [0, 1]")
        if self.mask_fallback not in ("box", "skip"):
            raise NegmineError("--mask-fallback must be box or skip")
        parse_margin(self.margin)
        if "inpaint" in self.fills or self.region == "mask":
            cv2_module()
        return self


@dataclass
class Cutout:
    data: bytes
    width: int
    height: int
    fill: str
    region: str
    boxes: list = field(default_factory=list)
    seed: int = 0
    crop: list | None = None           # [x0, y0, x1, y1] in crops mode
    region_area: int = 0               # pixels filled
    fell_back: list = field(default_factory=list)   # "box N: why its silhouette was replaced by the box"


def _region_reason(mask: np.ndarray, opts: CutoutOptions) -> str | None:
    """Why a region (h x w bool) leaves no usable negative: it covers too much of the image, or
    too little background is left outside it; None when it is usable."""
    cover = mask.mean()
    if cover > opts.max_cover:
        return f"region covers {cover:.0%} of the image (more than --max-cover {opts.max_cover:.0%})"
    if (~mask).sum() < opts.min_background:
        return "too little background left outside the region"
    return None


def box_region_reason(boxes: list[Box], w: int, h: int, opts: CutoutOptions) -> str | None:
    """Before any pixel is read: why `cutout` would refuse an image of `w` x `h` upright pixels with
    these objects (upright frame, as `objects.resolve` gives them), as far as the geometry decides it:
    with region "box" (and no --masks file) the region is the boxes grown by the margin plus their
    polygon/RLE shapes, so `cutout`'s own checks (`_region_reason`) give the same answer here.
    None when the geometry allows a cutout, or (region "mask") when only the pixels can tell."""
    if opts.region != "box":
        return None
    clipped = [c for c in (b.clip(w, h) for b in boxes) if c is not None]
    if not clipped:
        return "no annotated object inside the image"
    margin = parse_margin(opts.margin)
    mask = box_mask([grow(b, margin, w, h) for b in clipped], w, h) | annotated_shapes(clipped, w, h, None)
    return _region_reason(mask, opts)


def _noise(rgb: np.ndarray, mask: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """matched: `texture.matched_noise` over the blur fill; uniform / gaussian: white noise that
    ignores the photo (what a model learns to spot; kept to reproduce older runs and benchmarks)."""
    n = int(mask.sum())
    if kind == "matched":
        return matched_noise(rgb, mask, rng)
    if kind == "uniform":
        return rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return np.clip(rng.normal(127.5, 50.0, (n, 3)) + 0.5, 0, 255).astype(np.uint8)


def _blur_fill(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The hole's pixels (n x 3 uint8) of `texture.background_blur`."""
    return np.clip(background_blur(rgb, mask)[mask] + 0.5, 0, 255).astype(np.uint8)


def _clear_run(hit: np.ndarray, from_end: bool) -> int:
    """How many entries of a 1-D bool array, counted from its end (or its start), are False."""
    idx = np.flatnonzero(hit[::-1] if from_end else hit)
    return int(idx[0]) if len(idx) else len(hit)


def _tile_fill(rgb: np.ndarray, mask: np.ndarray, boxes: list[Box]) -> np.ndarray:
    """Only-BG-T: per box, the largest background strip beside it, tiled over the box.

    A strip stops at the first pixel of any object region (`mask`: every box or silhouette being
    removed, margins included): tiling from beside one object must not copy another one, or a part
    of it, into the hole. ImageRejected when no box has object-free background beside it."""
    h, w = rgb.shape[:2]
    out = rgb.copy()
    ys, xs = np.nonzero(mask)
    targets = boxes or [Box(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)]
    for b in targets:
        x0, y0 = max(0, int(np.floor(b.x0))), max(0, int(np.floor(b.y0)))
        x1, y1 = min(w, int(np.ceil(b.x1))), min(h, int(np.ceil(b.y1)))
        left = _clear_run(mask[y0:y1, :x0].any(axis=0), from_end=True)      # columns next to the box
        right = _clear_run(mask[y0:y1, x1:].any(axis=0), from_end=False)
        top = _clear_run(mask[:y0, x0:x1].any(axis=1), from_end=True)
        bottom = _clear_run(mask[y1:, x0:x1].any(axis=1), from_end=False)
        strips = [(left * (y1 - y0), rgb[y0:y1, x0 - left:x0], "h"), (right * (y1 - y0), rgb[y0:y1, x1:x1 + right], "h"),
                  (top * (x1 - x0), rgb[y0 - top:y0, x0:x1], "v"), (bottom * (x1 - x0), rgb[y1:y1 + bottom, x0:x1], "v")]
        area, strip, axis = max(strips, key=lambda s: s[0])
        if area == 0:
            raise ImageRejected("no object-free background beside the box to tile from")
        th, tw = y1 - y0, x1 - x0
        reps = (1, -(-tw // strip.shape[1])) if axis == "h" else (-(-th // strip.shape[0]), 1)
        tiled = np.tile(strip, (*reps, 1))[:th, :tw]
        region = mask[y0:y1, x0:x1]
        out[y0:y1, x0:x1][region] = tiled[region]
    return out[mask]


def apply_fill(rgb: np.ndarray, mask: np.ndarray, fill: str, opts: CutoutOptions, rng: np.random.Generator,
               boxes: list[Box] | None = None, jpeg: dict | None = None) -> np.ndarray:
    """A copy of rgb with the masked pixels replaced; pixels outside the mask are untouched.
    jpeg: the source's tables (`texture.jpeg_tables`): a fill that imitates the photo (matched
    noise, blur, tile, inpaint) then gets its compression."""
    out = rgb.copy()
    if fill == "black":
        out[mask] = 0
    elif fill == "mean":
        out[mask] = np.round(rgb[~mask].reshape(-1, 3).mean(axis=0)).astype(np.uint8)
    elif fill == "noise":
        out[mask] = _noise(rgb, mask, opts.noise, rng)
    elif fill == "blur":
        out[mask] = _blur_fill(rgb, mask)
    elif fill == "tile":
        out[mask] = _tile_fill(rgb, mask, boxes or [])
    elif fill == "inpaint":
        cv2 = cv2_module()
        flag = cv2.INPAINT_TELEA if opts.inpaint == "telea" else cv2.INPAINT_NS
        bgr = cv2.inpaint(np.ascontiguousarray(rgb[:, :, ::-1]), mask.astype(np.uint8) * 255, 5, flag)
        out[mask] = bgr[:, :, ::-1][mask]
    else:
        raise NegmineError(f"unknown fill {fill!r}")
    if jpeg is not None and (fill in ("blur", "tile", "inpaint") or fill == "noise" and opts.noise == "matched"):
        out[mask] = jpeg_like(out, jpeg)[mask]       # black, mean, white noise: flat or plain by definition
    return out


def _encode(arr: np.ndarray, opts: CutoutOptions) -> bytes:
    buf = io.BytesIO()
    im = Image.fromarray(arr, "RGB")
    if opts.image_format == "png":
        im.save(buf, "PNG", optimize=False, compress_level=6)
    else:
        im.save(buf, "JPEG", quality=opts.quality)
    return buf.getvalue()


def load_rgb(data: bytes) -> np.ndarray:
    return np.asarray(to_rgb(open_image(data)))


def cutout(data: bytes, boxes: list[Box], opts: CutoutOptions, seed: int,
           given_mask: np.ndarray | None = None) -> Cutout:
    """Remove the annotated objects and fill the hole. boxes: in the upright frame (see
    `negmine.synthetic.objects.resolve`), with their polygon/RLE shapes; given_mask: h x w bool object
    pixels (--masks). A silhouette is checked against its box, and replaced by it when the box
    says it missed part of the object (`regions.object_region`; `Cutout.fell_back` says which);
    every annotated pixel (box or shape, margin included) is checked to lie in the filled region.
    Raises ImageRejected with the skip reason."""
    rgb = load_rgb(data)
    h, w = rgb.shape[:2]
    clipped = [c for c in (b.clip(w, h) for b in boxes) if c is not None]
    if not clipped:
        raise ImageRejected("no annotated object inside the image")
    if given_mask is not None and given_mask.shape != (h, w):
        raise ImageRejected(f"mask size {given_mask.shape[1]}x{given_mask.shape[0]} differs from the image {w}x{h}")
    found = object_region(rgb, clipped, region=opts.region, margin=opts.margin, given_mask=given_mask,
                          min_cover=opts.min_mask_cover, max_gap=opts.max_mask_gap, fallback=opts.mask_fallback)
    mask = found.mask
    left = uncovered(mask, clipped, opts.region, opts.margin, given_mask)
    if left:       # a negative that still shows part of the object is worse than none
        raise ImageRejected(f"the region misses {left} object pixels (a bug: please report it)")
    reason = _region_reason(mask, opts)
    if reason:
        raise ImageRejected(reason)
    # the fill is chosen on its own stream, so (fill, seed) alone reproduces the pixels
    fill = opts.fills[int(np.random.default_rng([seed, 1]).integers(len(opts.fills)))]
    rng = np.random.default_rng(seed)
    grown = [grow(b, parse_margin(opts.margin), w, h) for b in clipped] if opts.region == "box" else clipped
    out = apply_fill(rgb, mask, fill, opts, rng, grown, jpeg_tables(data))
    return Cutout(_encode(out, opts), w, h, fill, opts.region, [b.as_list() for b in clipped], seed,
                  region_area=int(mask.sum()), fell_back=found.fell_back)


def _iou(a: tuple, b: Box) -> float:
    ix = max(0.0, min(a[2], b.x1) - max(a[0], b.x0))
    iy = max(0.0, min(a[3], b.y1) - max(a[1], b.y0))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter
    return inter / union if union else 0.0


def background_crops(data: bytes, boxes: list[Box], opts: CutoutOptions, seed: int, *, size: float = 0.4,
                     count: int = 2, max_iou: float = 0.0, tries: int = 200) -> list[Cutout]:
    """The classic detector negative: crops (side = size x the image's shorter side) that overlap no
    box by more than max_iou. Fewer than `count` when the image has no room."""
    rgb = load_rgb(data)
    h, w = rgb.shape[:2]
    clipped = [c for c in (b.clip(w, h) for b in boxes) if c is not None]
    side = max(8, int(round(size * min(w, h))))
    if side > min(w, h):
        raise ImageRejected("crop size larger than the image")
    rng = np.random.default_rng(seed)
    crops = []
    for _ in range(tries):
        if len(crops) == count:
            break
        x0, y0 = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        rect = (x0, y0, x0 + side, y0 + side)
        if all(_iou(rect, b) <= max_iou for b in clipped) and rect not in [tuple(c.crop) for c in crops]:
            part = np.ascontiguousarray(rgb[y0:y0 + side, x0:x0 + side])
            crops.append(Cutout(_encode(part, opts), side, side, "crop", "crop", [b.as_list() for b in clipped],
                                seed, list(rect)))
    if not crops:
        raise ImageRejected(f"no {side}px crop overlaps no object (IoU <= {max_iou})")
    return crops
