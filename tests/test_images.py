"""The transform stage on real hard cases from ../shared/data/odd-encodings."""

import io

import numpy as np
import pytest
from PIL import Image

from conftest import SHARED
from negmine.images import EncodeOptions, ImageRejected, encode

ODD = SHARED / "odd-encodings"


def decoded(enc):
    im = Image.open(io.BytesIO(enc.data))
    return im


def test_exif_orientation_is_applied():
    upright = encode((ODD / "hopper_orientation_3.jpg").read_bytes())
    im = decoded(upright)
    assert im.mode == "RGB" and upright.reencoded
    assert im.getexif().get(0x0112, 1) == 1
    sideways = encode((ODD / "te_exif-rotn-6.jpg").read_bytes(), EncodeOptions(max_size=400))
    # stored 4032x3024 with orientation 6: displayed portrait
    assert (sideways.width, sideways.height) == (300, 400)
    assert decoded(sideways).size == (300, 400)


def test_orientation_variants_decode_to_the_same_picture():
    pics = [np.asarray(decoded(encode((ODD / f"hopper_orientation_{k}.jpg").read_bytes())), dtype=float)
            for k in (3, 6, 8)]
    assert pics[0].shape == pics[1].shape == pics[2].shape
    assert np.abs(pics[0] - pics[1]).mean() < 12 and np.abs(pics[0] - pics[2]).mean() < 12


@pytest.mark.parametrize("name", ["pil_sample_cmyk.jpg", "te_CMYK.jpg", "hopper_gray.jpg", "transparent.png",
                                  "uncompressed_la.png", "i_trns.png", "pil123p.png", "te_1.png",
                                  "transparent.webp", "iss634.gif", "chi.gif", "sugarshack.mpo",
                                  "tiff_16bit_RGB.tiff", "ukbench09380.png", "flower2.jpg", "hopper.avif"])
def test_odd_modes_become_rgb_jpeg(name):
    enc = encode((ODD / name).read_bytes())
    im = decoded(enc)
    assert im.format == "JPEG" and im.mode == "RGB" and im.size == (enc.width, enc.height)


def test_alpha_is_composited_on_white_and_16bit_is_scaled():
    im = np.asarray(decoded(encode((ODD / "transparent.png").read_bytes())))
    src = Image.open(ODD / "transparent.png").convert("RGBA")
    alpha = np.asarray(src.getchannel("A"))
    assert im[alpha == 0].mean() > 245                      # fully transparent pixels -> white
    # 16-bit gray with values 0..254 (of 65535) is near-black; value 255 is the tRNS transparent key
    raw = np.asarray(Image.open(ODD / "i_trns.png"))
    gray16 = np.asarray(decoded(encode((ODD / "i_trns.png").read_bytes())), dtype=float).mean(axis=2)
    assert gray16[raw == 255].mean() > 245 and gray16[raw < 200].max() < 12


@pytest.mark.parametrize("name,reason", [("truncated_jpeg.jpg", "unreadable"), ("truncated_image.png", "unreadable"),
                                         ("broken.png", "identify"), ("ukbench09268_corrupt.jpg", "identify"),
                                         ("decompression_bomb.gif", "decompression bomb")])
def test_bad_files_are_rejected_with_a_reason(name, reason):
    with pytest.raises(ImageRejected, match=reason):
        encode((ODD / name).read_bytes())


def test_clean_rgb_jpeg_is_kept_byte_for_byte_and_max_size_shrinks():
    data = (SHARED / "imagenet-500" / "images" / "n01440764_tench.JPEG").read_bytes()
    same = encode(data)
    assert not same.reencoded and same.data == data and (same.width, same.height) == (500, 375)
    small = encode(data, EncodeOptions(max_size=100))
    assert small.reencoded and (small.width, small.height) == (100, 75)
    # equal pixels, equal digest, whatever the container
    png = io.BytesIO()
    Image.open(io.BytesIO(data)).save(png, "PNG")
    assert encode(png.getvalue()).pixel_sha256 == same.pixel_sha256
