"""Perceptual hashes, computed the same way everywhere so cached and fresh hashes compare.

Pure functions: bytes or an image in, 64-bit integers out. JPEGs are decoded at reduced size
(Pillow `draft`) and resized with an antialiased bilinear filter, within about a bit of a full
imagehash run on average; EXIF orientation is applied first (a rotated JPEG otherwise hashes 22-38
bits away), alpha is composited on white as in the written images. phash is computed with a
precomputed DCT matrix: `hash_image` with its default filter is bit-identical to `imagehash.phash`
on the same pixels (pinned in tests); the other kinds call imagehash. `fast_hash`, what negmine
hashes every file with, folds the resize into the DCT: one small matrix product per image.
"""

from __future__ import annotations

import io
from functools import lru_cache

import imagehash
import numpy as np
from PIL import Image

from negmine.images import ImageRejected, open_image, to_rgb

HASH_KINDS = ("phash", "dhash", "ahash", "whash")
DRAFT_SIZE = (64, 64)
# Default radius: among 1000 distinct ImageNet photos the closest 64-bit phash pair is 12 bits
# apart, while re-encodes, resizes and grayscale copies stay within ~4 (ukbench: 0). 10 keeps a
# margin on both sides; a false match only drops a negative, which the next candidate replaces.
DEFAULT_DISTANCE = 10

_N = 32
_DCT = 2 * np.cos(np.pi * np.arange(8)[:, None] * (2 * np.arange(_N) + 1) / (2 * _N))   # rows 0..7 of DCT-II


def open_for_hash(data: bytes, inspect=None) -> Image.Image:
    """Decode small and upright, as grayscale, exactly as written images are prepared (alpha on
    white, 16-bit scaled); decompression bombs are refused, not decoded."""
    im = open_image(data, draft=DRAFT_SIZE, inspect=inspect)
    if im.mode == "L" and "exif" not in im.info and "transparency" not in im.info:
        return im              # the common case, a JPEG drafted straight to gray: nothing to convert
    return to_rgb(im, icc=False).convert("L")      # L -> RGB -> L is exact, so both paths agree


def _pack(bits: np.ndarray) -> int:
    return int.from_bytes(np.packbits(bits.reshape(-1)).tobytes(), "big")


def _bits(block: np.ndarray) -> np.ndarray:
    """block > median(block), the median taken as numpy (and imagehash) do: mean of the middle two."""
    v = np.sort(block, axis=None)
    return block > (v[31] + v[32]) / 2


# fast_hash resizes with Pillow's (antialiased) bilinear filter: 3x faster than LANCZOS on the
# draft-decoded image, and within a bit of imagehash on average (BENCHMARKS.md). hash_image keeps
# imagehash's LANCZOS by default, so on the same pixels it is bit-identical to imagehash.phash.
FAST_RESAMPLE = Image.Resampling.BILINEAR


def _phash_block(gray: Image.Image, resample=Image.Resampling.LANCZOS) -> np.ndarray:
    px = np.asarray(gray.resize((_N, _N), resample), dtype=np.float64)
    return _DCT @ px @ _DCT.T


def _dihedral_blocks(block: np.ndarray) -> list[np.ndarray]:
    """The DCT blocks of the 8 rotations/flips, from one block: mirroring a row flips the sign of
    odd horizontal frequencies, transposing swaps the axes."""
    sign = (-1.0) ** np.arange(8)
    variants = [block, block * sign[None, :], block * sign[:, None], block * np.outer(sign, sign)]
    return variants + [v.T for v in variants]


def hash_image(gray: Image.Image, kind: str = "phash", dihedral: bool = False,
               resample=Image.Resampling.LANCZOS) -> list[int]:
    """The hash (or the 8 dihedral hashes, the identity first) of a grayscale image."""
    if kind == "phash":
        block = _phash_block(gray, resample)
        blocks = _dihedral_blocks(block) if dihedral else [block]
        return [_pack(_bits(b)) for b in blocks]
    fn = {"dhash": imagehash.dhash, "ahash": imagehash.average_hash, "whash": imagehash.whash}.get(kind)
    if fn is None:
        raise ValueError(f"unknown hash {kind!r}; choose from {', '.join(HASH_KINDS)}")
    images = [gray]
    if dihedral:
        t = Image.Transpose
        images += [gray.transpose(x) for x in (t.FLIP_LEFT_RIGHT, t.FLIP_TOP_BOTTOM, t.ROTATE_180,
                                                t.TRANSPOSE, t.ROTATE_90, t.ROTATE_270, t.TRANSVERSE)]
    return [int(str(fn(im)), 16) for im in images]


def _bilinear_matrix(n: int) -> np.ndarray:
    """(32, n): what Pillow's antialiased bilinear resize does to a line of n pixels (its
    precompute_coeffs: a triangle filter stretched by the scale, normalised per output pixel)."""
    scale = n / _N
    support = max(scale, 1.0)
    centre = (np.arange(_N) + 0.5) * scale
    w = np.clip(1.0 - np.abs((np.arange(n) + 0.5 - centre[:, None]) / support), 0.0, None)
    return w / w.sum(axis=1, keepdims=True)


@lru_cache(maxsize=256)
def _fast_basis(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(8 x h, w x 8): the 32x32 resize and the DCT's low 8x8 in one left and one right factor."""
    return _DCT @ _bilinear_matrix(h), _bilinear_matrix(w).T @ _DCT.T


# Above this many pixels (a large PNG, never a drafted JPEG) Pillow's resize runs first: the matrix
# product would need the whole image in float64.
_FAST_MAX_PIXELS = 1 << 18


def fast_hash(gray: Image.Image, kind: str = "phash", dihedral: bool = False, pixels: bytes | None = None
              ) -> list[int]:
    """How negmine hashes every image: phash with the bilinear resize folded into the DCT (the same
    filter as `gray.resize((32, 32), BILINEAR)`, without rounding the resized pixels to 8 bits),
    ~3x faster than resizing first. `pixels`: gray.tobytes(), when the caller has it already."""
    if kind != "phash":
        return hash_image(gray, kind, dihedral, FAST_RESAMPLE)
    w, h = gray.size
    if w * h > _FAST_MAX_PIXELS:
        block = _phash_block(gray, FAST_RESAMPLE)
    else:
        px = np.frombuffer(gray.tobytes() if pixels is None else pixels, np.uint8).reshape(h, w)
        left, right = _fast_basis(h, w)
        block = left @ px.astype(np.float64) @ right
    blocks = _dihedral_blocks(block) if dihedral else [block]
    return [_pack(_bits(b)) for b in blocks]


def hash_bytes(data: bytes, kind: str = "phash", dihedral: bool = False) -> list[int]:
    """How negmine hashes every file: reduced-size decode, upright, fast resize."""
    return fast_hash(open_for_hash(data), kind, dihedral)


def hash_file_or_reason(path: str, kind: str = "phash", dihedral: bool = False) -> tuple[list[int], tuple[int, int]] | str:
    """For worker pools: (hashes, displayed size) or the reason the file cannot be used."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        gray = open_for_hash(data)
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
        return fast_hash(gray, kind, dihedral), (w, h)
    except ImageRejected as exc:
        return str(exc)
    except OSError as exc:
        return f"cannot read file: {exc}"
    except Exception as exc:
        return f"unexpected decoder error: {type(exc).__name__}: {exc}"


def distance(a: int, b: int) -> int:
    return (a ^ b).bit_count()
