"""Noise that matches the photo around the hole, and the source's JPEG compression for the fill.

A hole filled with white noise is found by its colour, its flat spectrum, its grain and its
missing JPEG blocks, whatever the rest of the image shows (issue 25: a CNN trained against such
cutouts called 81% of real held-out photos positive). `matched_noise` removes those cues that a
stationary texture can remove:

- colour: the hole keeps the surrounding background's low frequencies (the normalised-convolution
  blur of the ring, `base`), and the texture added to it is drawn in the ring's colour principal
  axes, so the channels co-vary as they do in the ring;
- frequency content and grain: each colour axis's texture is white Gaussian noise shaped by the
  ring's own 2-D power spectrum (Welch's method: the mean periodogram of Hann-windowed patches of
  background next to the hole), so its orientation, roughness and fine grain follow the ring's;
- JPEG blockiness: `jpeg_like` passes the filled image through the source's own quantisation
  tables and chroma subsampling (Pillow `im.quantization`), so the hole carries the same 8x8
  block artefacts as the pixels around it.

What a stationary texture cannot copy (edges, objects, shading that is not smooth) stays
detectable; docs/commands/cutout.md tabulates what each fill leaves.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PATCH = 32          # Welch segment side (px): resolves the spectrum down to 1/32 cycle per pixel
MAX_PATCHES = 64    # the nearest background patches averaged into the spectrum
DETAIL_SIGMA = 8.0  # px: what varies faster than this is texture, slower is the blur base's


def background_blur(rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The background spread into the hole `mask` (h x w bool) of `rgb` (h x w x 3 uint8), as an
    h x w x 3 float32 image: normalised convolution, blur(image * outside) / blur(outside), on a copy
    at most 256 px wide (the result is smooth anyway), widening the blur until the whole hole is
    reached. No blurred silhouette of the object is left, since hole pixels carry no weight."""
    from scipy.ndimage import gaussian_filter   # scipy comes with imagehash

    h, w = mask.shape
    scale = min(1.0, 256 / max(h, w))
    sw, sh = max(1, round(w * scale)), max(1, round(h * scale))

    def small(a: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(a.astype(np.float32), "F").resize((sw, sh), Image.Resampling.BOX))

    keep = small((~mask).astype(np.float32))
    chans = [small(rgb[:, :, c].astype(np.float32) * ~mask) for c in range(3)]
    sigma = max(2.0, 0.05 * max(sw, sh))
    for _ in range(8):
        weight = gaussian_filter(keep, sigma, mode="nearest")
        if weight.min() > 1e-4:
            break
        sigma *= 2
    filled = [gaussian_filter(ch, sigma, mode="nearest") / np.maximum(weight, 1e-6) for ch in chans]
    return np.stack([np.asarray(Image.fromarray(f.astype(np.float32), "F").resize((w, h), Image.Resampling.BILINEAR))
                     for f in filled], axis=2)


def detail(rgb: np.ndarray, mask: np.ndarray, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    """The background's fine detail (h x w x 3 float64): each pixel minus the Gaussian-weighted
    mean (`sigma` px) of the background around it, hole pixels carrying no weight, so the
    object's edges do not leak into the background's statistics."""
    from scipy.ndimage import gaussian_filter

    keep = (~mask).astype(np.float64)
    weight = np.maximum(gaussian_filter(keep, sigma, mode="nearest"), 1e-6)
    img = rgb.astype(np.float64)
    local = np.stack([gaussian_filter(img[:, :, c] * keep, sigma, mode="nearest") for c in range(3)], axis=2)
    return img - local / weight[:, :, None]


def ring(mask: np.ndarray, width: int | None = None) -> np.ndarray:
    """Background pixels (h x w bool) at most `width` px from the hole `mask` (h x w bool); width
    defaults to a quarter of the hole's bounding-box diagonal, clamped to 8-48 px."""
    from scipy.ndimage import distance_transform_edt

    if width is None:
        ys, xs = np.nonzero(mask)
        diag = np.hypot(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) if len(xs) else 0.0
        width = int(np.clip(diag / 4, 8, 48))
    return (distance_transform_edt(~mask) <= width) & ~mask


def _patches(mask: np.ndarray, size: int) -> list[tuple[int, int]]:
    """Top-left corners of size x size squares holding no hole pixel, on a grid of half steps,
    nearest the hole first (at most MAX_PATCHES)."""
    from scipy.ndimage import distance_transform_edt

    h, w = mask.shape
    if h < size or w < size:
        return []
    integral = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    step = max(1, size // 2)
    ys, xs = np.meshgrid(np.arange(0, h - size + 1, step), np.arange(0, w - size + 1, step), indexing="ij")
    ys, xs = ys.ravel(), xs.ravel()
    inside = (integral[ys + size, xs + size] - integral[ys, xs + size] - integral[ys + size, xs]
              + integral[ys, xs])
    ys, xs = ys[inside == 0], xs[inside == 0]
    dist = distance_transform_edt(~mask)[ys + size // 2, xs + size // 2]
    order = np.argsort(dist, kind="stable")[:MAX_PATCHES]
    return [(int(ys[i]), int(xs[i])) for i in order]


def _spectra(comp: np.ndarray, corners: list[tuple[int, int]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """Welch estimate per component: (k x size x size power spectra, each normalised to mean 1;
    k within-patch variances). comp: h x w x k."""
    win = np.outer(np.hanning(size), np.hanning(size))
    k = comp.shape[2]
    power = np.zeros((k, size, size))
    var = np.zeros(k)
    for y, x in corners:
        seg = comp[y:y + size, x:x + size].transpose(2, 0, 1)
        seg = seg - seg.mean(axis=(1, 2), keepdims=True)
        var += seg.var(axis=(1, 2))
        power += np.abs(np.fft.fft2(seg * win)) ** 2
    power[:, 0, 0] = 0.0                   # the patch mean is the base's job
    power /= np.maximum(power.mean(axis=(1, 2), keepdims=True), 1e-12)
    return power, var / max(1, len(corners))


def _shaped(power: np.ndarray, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian noise of `shape` whose spectrum follows `power` (size x size, as
    np.fft.fft2 lays it out), resampled onto the target's frequency grid."""
    from scipy.ndimage import map_coordinates

    size = power.shape[0]
    hh, ww = shape
    fy, fx = np.meshgrid(np.fft.fftfreq(hh), np.fft.fftfreq(ww), indexing="ij")
    centred = np.fft.fftshift(power)
    amp = np.sqrt(map_coordinates(centred, [fy * size + size // 2, fx * size + size // 2], order=1, mode="nearest"))
    field = np.real(np.fft.ifft2(np.fft.fft2(rng.standard_normal(shape)) * amp))
    sd = field.std()
    return field / sd if sd > 0 else field


def matched_noise(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fill values (n x 3 uint8, n = mask.sum(), in row-major order of the hole) for the hole
    `mask` (h x w bool) of `rgb` (h x w x 3 uint8): the background's blur (`background_blur`) plus
    a texture with the colour covariance and 2-D power spectrum of the ring's fine detail
    (`detail`; see the module docstring). Deterministic given rng's state. Without four hole-free
    8 x 8 patches of background, the texture is white, with the ring's detail covariance."""
    base = background_blur(rgb, mask)[mask].astype(np.float64)
    near = ring(mask)
    fine = detail(rgb, mask)
    bg = fine[near if near.any() else ~mask]
    if len(bg) < 2:
        return np.clip(base + 0.5, 0, 255).astype(np.uint8)
    _, vecs = np.linalg.eigh(np.cov(bg, rowvar=False) + 1e-6 * np.eye(3))
    comp = fine @ vecs                     # the detail along the ring's colour principal axes
    for size in (PATCH, PATCH // 2, PATCH // 4):     # a thin strip of background still has a spectrum
        corners = _patches(mask, size)
        if len(corners) >= 4:
            break
    ys, xs = np.nonzero(mask)
    y0, x0 = ys.min(), xs.min()
    box = (ys.max() - y0 + 1, xs.max() - x0 + 1)
    if len(corners) >= 4:
        power, var = _spectra(comp, corners, size)
        fields = [_shaped(power[k], box, rng)[ys - y0, xs - x0] for k in range(3)]
    else:                                  # no clean patch: colour-matched white noise
        var = np.var(bg @ vecs, axis=0)
        fields = [rng.standard_normal(len(ys)) for _ in range(3)]
    texture = np.stack(fields, axis=1) * np.sqrt(var) @ vecs.T
    return np.clip(base + texture + 0.5, 0, 255).astype(np.uint8)


def jpeg_tables(data: bytes) -> dict | None:
    """The source's JPEG compression, as `jpeg_like` takes it ({"qtables", "subsampling"}), or
    None when `data` is not a readable JPEG. Reads only the header."""
    from PIL import JpegImagePlugin

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.format != "JPEG" or not getattr(im, "quantization", None):
                return None
            tables = [list(im.quantization[k]) for k in sorted(im.quantization)]
            sampling = JpegImagePlugin.get_sampling(im)
    except Exception:                      # the caller decodes the image itself and reports failures
        return None
    if len(tables) == 1:                   # a grey JPEG: its one table serves the chroma too
        tables = tables * 2
    return {"qtables": tables[:2], "subsampling": sampling if sampling in (0, 1, 2) else 2}


def jpeg_like(arr: np.ndarray, tables: dict) -> np.ndarray:
    """`arr` (h x w x 3 uint8) after one JPEG round trip with the source's tables (`jpeg_tables`):
    the same quantisation, so a filled hole gets the block artefacts of the pixels around it."""
    buf = io.BytesIO()
    Image.fromarray(arr, "RGB").save(buf, "JPEG", qtables=tables["qtables"], subsampling=tables["subsampling"])
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))
