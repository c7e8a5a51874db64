"""Annotated objects on a real image: the frame they were drawn in, validation, and masks.

An annotation is drawn either on the stored pixels of a file or on the upright image a viewer
shows after applying the EXIF orientation; the two differ in size when the orientation turns the
image by 90 degrees (phone photos). `resolve` compares the size an annotation declares (VOC
`<size>`, COCO `width`/`height`, an RLE's `size`) with both and brings every box and mask into the
upright frame, the one negmine decodes and trainers load (Ultralytics sizes images with
`exif_size` and reads them EXIF-applied). Without a declared size, or when both frames have the
same size (orientations 2-4), the upright frame is assumed, as Ultralytics does.

Masks are rasterised with pycocotools, so COCO polygons and RLE come out exactly as the COCO API
draws them (a pixel belongs to a polygon when its centre is inside).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from negmine.synthetic.annotations import Box, scale
from negmine.synthetic.masks import decode_rle
from negmine.errors import NegmineError
from negmine.images import ImageRejected

_ORIENTATION = 0x0112
# EXIF orientation -> the PIL transpose that makes the stored pixels upright (ImageOps.exif_transpose)
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def image_frame(path: Path) -> tuple[int, int, int]:
    """(stored width, stored height, EXIF orientation 1-8) from the file's header.
    Raises ImageRejected when the file cannot be opened."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            o = im.getexif().get(_ORIENTATION, 1)
    except Exception as exc:
        raise ImageRejected(f"unreadable image: {exc}".splitlines()[0]) from None
    return w, h, o if o in range(1, 9) else 1


def upright_size(w: int, h: int, orientation: int) -> tuple[int, int]:
    """(width, height) shown after the EXIF orientation: swapped for 5-8 (the 90-degree turns)."""
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def _point(x: float, y: float, o: int, w: int, h: int) -> tuple[float, float]:
    """A point of a stored w x h image in the upright image (continuous pixel coordinates)."""
    return {2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y), 5: (y, x), 6: (h - y, x),
            7: (h - y, w - x), 8: (y, w - x)}.get(o, (x, y))


def to_upright(box: Box, orientation: int, w: int, h: int) -> Box:
    """A box (and its shape) drawn on the stored pixels of a w x h file, in the upright frame."""
    if orientation == 1:
        return box
    (ax, ay), (bx, by) = _point(box.x0, box.y0, orientation, w, h), _point(box.x1, box.y1, orientation, w, h)
    shape = box.shape
    if shape and shape[0] == "poly":
        shape = ("poly", tuple(tuple(v for i in range(0, len(p), 2) for v in _point(p[i], p[i + 1], orientation, w, h))
                               for p in shape[1]))
    elif shape and shape[0] == "rle":
        shape = (*shape[:4], orientation)
    return replace(box, x0=min(ax, bx), y0=min(ay, by), x1=max(ax, bx), y1=max(ay, by), shape=shape,
                   frame=upright_size(w, h, orientation))


def resolve(boxes: list[Box], stored: tuple[int, int], orientation: int = 1) -> list[Box]:
    """An image's annotated objects as upright, ordered, clipped boxes (shapes alongside).

    Reversed corners are ordered and parts outside the image are clipped (real data spills a pixel
    over the edge). Raises ImageRejected, naming the box, when a box has a NaN or infinite
    coordinate, zero width or height, lies wholly outside the image or keeps under 1 px inside
    it, or when the declared size fits neither the stored nor the upright frame: a bad box may
    hide an object, so its image is left out rather than cut or labelled without it."""
    sw, sh = stored
    uw, uh = upright_size(sw, sh, orientation)
    out = []
    for n, b in enumerate(boxes, 1):
        name = f"box {n}" + (f" ({b.label})" if b.label else "")
        b = scale(b, uw, uh)
        if b.frame is not None and b.frame != (uw, uh):
            if b.frame != (sw, sh):
                raise ImageRejected(f"{name} is annotated on a {b.frame[0]}x{b.frame[1]} image, but the image is "
                                    f"{sw}x{sh} ({uw}x{uh} upright)")
            b = to_upright(b, orientation, sw, sh)
        corners = (b.x0, b.y0, b.x1, b.y1)
        if not all(math.isfinite(v) for v in corners):
            raise ImageRejected(f"{name} has a coordinate that is not a finite number: {list(corners)}")
        if b.x0 == b.x1 or b.y0 == b.y1:
            raise ImageRejected(f"{name} has zero {'width' if b.x0 == b.x1 else 'height'}: {list(corners)}")
        if max(b.x0, b.x1) <= 0 or max(b.y0, b.y1) <= 0 or min(b.x0, b.x1) >= uw or min(b.y0, b.y1) >= uh:
            raise ImageRejected(f"{name} lies outside the {uw}x{uh} image: {list(corners)}")
        c = b.clip(uw, uh)
        if c is None:
            raise ImageRejected(f"{name} keeps under 1 pixel inside the {uw}x{uh} image: {list(corners)}")
        out.append(replace(c, frame=(uw, uh)))
    return out


def shape_mask(box: Box, w: int, h: int) -> np.ndarray | None:
    """The object's own pixels (h x w bool) from its polygon or RLE in the upright frame; None
    for a plain box. Raises ImageRejected when an RLE mask has another size than the image."""
    if not box.shape:
        return None
    if box.shape[0] == "poly":
        from pycocotools import mask as mask_utils

        polys = [list(map(float, p)) for p in box.shape[1]]
        return mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polys, h, w))).astype(bool)
    _, rh, rw, counts, orientation = box.shape
    try:
        m = decode_rle(rh, rw, counts, "RLE")
    except NegmineError as exc:
        raise ImageRejected(str(exc)) from None
    if orientation in _TRANSPOSE:
        m = np.asarray(Image.fromarray(m).transpose(_TRANSPOSE[orientation]))
    if m.shape != (h, w):
        raise ImageRejected(f"RLE mask is {m.shape[1]}x{m.shape[0]}, the image {w}x{h}")
    return m


def box_mask(boxes: list[Box], w: int, h: int) -> np.ndarray:
    """Every pixel a box touches (h x w bool): corners rounded outwards."""
    mask = np.zeros((h, w), bool)
    for b in boxes:
        mask[max(0, int(np.floor(b.y0))):int(np.ceil(b.y1)), max(0, int(np.floor(b.x0))):int(np.ceil(b.x1))] = True
    return mask


def objects_mask(boxes: list[Box], w: int, h: int) -> np.ndarray:
    """The annotated objects' pixels: each polygon or RLE mask, or the box where there is none."""
    mask = box_mask([b for b in boxes if not b.shape], w, h)
    for b in boxes:
        if b.shape:
            mask |= shape_mask(b, w, h)
    return mask
