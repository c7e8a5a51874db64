"""The transform stage: raw bytes in, a normalised RGB JPEG (or a reason to skip) out.

Pure functions of their inputs, so they run unchanged in worker processes.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

# Alpha is composited on white: the usual look of a transparent image on the web and in viewers.
BACKGROUND = (255, 255, 255)
_ORIENTATION = 0x0112
_SRGB = ImageCms.createProfile("sRGB")


# Formats negmine reads as images. Pillow's registered extensions for them include every spelling
# in use (.jpe, .jfif, .pnm, ...); .jif is a JPEG spelling Pillow does not register.
_FORMATS = ("JPEG", "MPO", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "AVIF")
IMAGE_EXTENSIONS = frozenset({ext for ext, fmt in Image.registered_extensions().items() if fmt in _FORMATS}
                             | {".jif", ".avif", ".heic"})


def sniff_image(path: str) -> str | None:
    """The Pillow format name of the file at `path` judged by its content (the header only), or
    None when it is not an image negmine reads. For files whose extension does not say."""
    try:
        with Image.open(path, formats=[f for f in _FORMATS if f in Image.OPEN]) as im:
            return im.format
    except Exception:        # not an image, or unreadable: either way not one to take
        return None


def is_image_file(path: str, sniff: bool = True) -> bool:
    """True for a file named as an image (any case), or with `sniff`, one whose content is an image
    whatever its name (a camera's .JPE, a download saved without extension)."""
    suffix = path[path.rfind("."):].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return suffix in IMAGE_EXTENSIONS or (sniff and sniff_image(path) is not None)


class ImageRejected(Exception):
    """The image cannot be used; the message is the reason recorded in rejects.jsonl."""


@dataclass(frozen=True)
class EncodeOptions:
    quality: int = 95
    max_size: int | None = None


@dataclass(frozen=True)
class Encoded:
    data: bytes            # the bytes to write (the source bytes when no re-encode was needed)
    width: int
    height: int
    pixel_sha256: str      # digest of the RGB pixels: equal pixels, equal digest, whatever the file
    reencoded: bool


def open_image(data: bytes, draft: tuple[int, int] | None = None, inspect=None) -> Image.Image:
    """Decode (a truncated file must fail here, not in a trainer), refusing decompression bombs.
    `draft`: let a JPEG decode at a reduced scale no smaller than this (for hashing).
    `inspect(im)`: called on the opened, not yet decoded image (its header), e.g. to judge it."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse both, never decode them.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            if inspect is not None:
                inspect(im)
            if draft and im.format == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
                im.draft("L", draft)
            im.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(f"decompression bomb refused: {exc}") from None
    except UnidentifiedImageError:
        raise ImageRejected("not an image Pillow can identify") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"unreadable image: {exc}") from None
    except Exception as exc:  # a decoder bug on one file is that file's problem
        raise ImageRejected(f"unreadable image: {type(exc).__name__}: {exc}") from None
    return im


def to_rgb(im: Image.Image, icc: bool = True) -> Image.Image:
    """Upright, 8-bit sRGB-ish RGB, whatever the mode, orientation or profile (`icc=False` skips
    the colour-profile conversion: hashing does not need it)."""
    if "exif" in im.info or im.format not in ("JPEG", "PNG"):   # no EXIF block: nothing to rotate
        try:
            im = ImageOps.exif_transpose(im)
        except Exception:  # a broken EXIF block should not cost the image
            pass
    icc = im.info.get("icc_profile") if icc else None
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        raw = np.asarray(im)
        top = 65535.0 if im.mode != "I" or raw.max() > 255 else 255.0
        gray = np.clip(raw.astype(np.float64) / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        key = im.info.get("transparency")
        if isinstance(key, int):   # tRNS on a 16-bit gray PNG names one transparent value
            im = Image.fromarray(np.dstack([gray, np.where(raw == key, 0, 255).astype(np.uint8)]), "LA")
        else:
            im = Image.fromarray(gray, "L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.asarray(im), 0, 255).astype(np.uint8), "L")
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, BACKGROUND)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        im = canvas
    if icc and im.mode in ("RGB", "CMYK"):
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            im = ImageCms.profileToProfile(im, src, _SRGB, outputMode="RGB")
        except Exception:  # an unusable profile: fall back to the naive conversion below
            pass
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def pass_through_size(src: Image.Image, opts: EncodeOptions) -> tuple[int, int] | None:
    """(width, height) when the file can be kept byte for byte, judged from the header of an
    image opened but not yet decoded."""
    try:
        return src.size if _can_pass_through(src, opts) else None
    except Exception:
        return None


def _can_pass_through(src: Image.Image, opts: EncodeOptions) -> bool:
    orientation = src.getexif().get(_ORIENTATION, 1) if hasattr(src, "getexif") else 1
    return (
        src.format == "JPEG"
        and src.mode == "RGB"
        and orientation in (0, 1)
        and "icc_profile" not in src.info
        and (opts.max_size is None or max(src.size) <= opts.max_size)
    )


def jpeg_is_clean(data: bytes) -> bool:
    """False for a JPEG that libjpeg (under TensorFlow, OpenCV, torchvision) warns about while
    decoding: "Corrupt JPEG data: N extraneous bytes before marker", or "Premature end of JPEG
    file". Pillow silences those warnings, so the markers are walked instead (ITU T.81 B.1.1): each
    segment must start at an 0xFF (fill 0xFF allowed), and the file must end its last scan with an
    EOI. Scan data is skipped to its next marker (0xFF00 stuffing and RSTn belong to it); junk
    inside a scan's entropy-coded data needs a full decode to see and is not detected."""
    n = len(data)
    if data[:2] != b"\xff\xd8":
        return False
    i = 2
    while i < n:
        if data[i] != 0xFF:
            return False                              # extraneous bytes before the next marker
        while i < n and data[i] == 0xFF:
            i += 1
        if i >= n:
            return False
        marker = data[i]
        i += 1
        if marker == 0xD9:                            # EOI
            return True
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # standalone markers: no length
            continue
        if i + 2 > n or int.from_bytes(data[i:i + 2], "big") < 2:
            return False
        i += int.from_bytes(data[i:i + 2], "big")
        if marker == 0xDA:                            # SOS: entropy-coded data up to the next marker
            while True:
                j = data.find(b"\xff", i)
                if j < 0 or j + 1 >= n:
                    return False                      # no EOI: truncated
                if data[j + 1] == 0x00 or 0xD0 <= data[j + 1] <= 0xD7:
                    i = j + 2
                    continue
                i = j
                break
    return False


def encode(data: bytes, opts: EncodeOptions = EncodeOptions()) -> Encoded:
    """Normalise one image. Raises ImageRejected with the reason when it cannot be used.

    A baseline RGB JPEG that needs no rotation, colour conversion or resize is kept byte for byte:
    re-encoding it would only add loss and time.
    """
    src = open_image(data)
    # judged before anything below changes the image; a JPEG decoders warn about is rewritten clean
    keep = _can_pass_through(src, opts) and jpeg_is_clean(data)
    im = to_rgb(src)
    if opts.max_size is not None and max(im.size) > opts.max_size:
        im = im.copy() if im is src else im      # to_rgb may hand back src itself
        im.thumbnail((opts.max_size, opts.max_size), Image.Resampling.LANCZOS)
    pixel_sha = hashlib.blake2b(im.tobytes(), digest_size=16).hexdigest()   # identity, not security
    if keep:
        return Encoded(data, im.width, im.height, pixel_sha, reencoded=False)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=opts.quality, optimize=True)
    return Encoded(buf.getvalue(), im.width, im.height, pixel_sha, reencoded=True)


PORTABLE = {"JPEG": ".jpg", "PNG": ".png"}


def portable_extension(path: str) -> str | None:
    """The extension to copy a file under when every trainer's loader reads it the same way (an
    8-bit RGB or grayscale JPEG/PNG, already upright); None when it must be re-encoded instead.
    Loaders differ on the rest: torchvision's `convert("RGB")` clips 16-bit PNGs to white and ignores
    EXIF rotation, Keras reads no WebP/TIFF/AVIF, and alpha becomes black in some and white in others."""
    try:
        with Image.open(path) as im:
            ok = (im.format in PORTABLE and im.mode in ("RGB", "L") and "transparency" not in im.info
                  and im.getexif().get(_ORIENTATION, 1) in (0, 1) and getattr(im, "n_frames", 1) == 1
                  and (im.format != "JPEG" or jpeg_is_clean(Path(path).read_bytes())))
            return PORTABLE[im.format] if ok else None
    except Exception:
        return None


def probe_size(path: str) -> tuple[int, int]:
    """Displayed (EXIF-applied) size from the header alone, for positives copied as they are."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            orientation = im.getexif().get(_ORIENTATION, 1)
    except Exception as exc:
        raise ImageRejected(f"unreadable image: {exc}") from None
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)
