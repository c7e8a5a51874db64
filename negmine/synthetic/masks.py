"""COCO RLE masks: decoded to pixels, and the box they fill. Shared by the annotation readers
(an RLE segmentation gives its object's box) and the object masks of the cutouts."""

from __future__ import annotations

import numpy as np

from negmine.errors import NegmineError


def rle_box(h: int, w: int, counts, where: str = "RLE") -> tuple[float, float, float, float]:
    """[x0, y0, x1, y1] of a COCO RLE mask in pixels. Raises NegmineError if it is empty or unreadable."""
    m = decode_rle(h, w, counts, where)
    ys, xs = np.nonzero(m)
    if not len(xs):
        raise NegmineError(f"{where}: the RLE mask is empty")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def decode_rle(h: int, w: int, counts, where: str) -> np.ndarray:
    """A COCO RLE mask (`counts`: compressed string or run lengths) as an h x w bool array.
    Raises NegmineError, naming `where`, when the counts are unreadable or do not fill h x w."""
    from pycocotools import mask as mask_utils

    try:
        if isinstance(counts, str):
            rle = {"size": [h, w], "counts": counts.encode("ascii")}
        else:
            rle = mask_utils.frPyObjects({"size": [h, w], "counts": list(counts)}, h, w)
        m = mask_utils.decode(rle)
    except Exception as exc:
        raise NegmineError(f"{where}: unreadable RLE counts ({exc})".splitlines()[0]) from None
    if m.shape != (h, w):
        raise NegmineError(f"{where}: RLE counts do not fill a {w}x{h} mask")
    return m.astype(bool)
