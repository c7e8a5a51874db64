"""Perceptual hashes and the exact radius search, on real photos."""

import csv

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import SHARED
from negmine.filters.hashing import FAST_RESAMPLE, _bilinear_matrix, fast_hash, hash_bytes, hash_image, open_for_hash
from negmine.images import ImageRejected
from negmine.filters.neighbors import mih_pairs, nearest, nearest_within, pairs_within

TENCH = SHARED / "imagenet-500" / "images" / "n01440764_tench.JPEG"
UK = SHARED / "near-dups-ukbench"


def test_golden_phash_values_match_imagehash():
    # golden values are imagehash 4.3.2's own phash of the full-size decode (independent of negmine)
    golden = {TENCH: 0x90AF6DD09E6CE096, UK / "base_images" / "ukbench00120.jpg": 0x9FEE256238984D71}
    for path, value in golden.items():
        full = Image.open(path)
        assert int(str(imagehash.phash(full)), 16) == value
        assert hash_image(full.convert("L"))[0] == value                  # same pixels: bit-identical
        drafted = hash_bytes(path.read_bytes())[0]                        # reduced-size decode
        assert (drafted ^ value).bit_count() <= 4


def test_fast_phash_equals_imagehash_on_many_photos():
    files = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:60]
    for f in files:
        gray = ImageOps.exif_transpose(Image.open(f)).convert("L")
        assert hash_image(gray)[0] == int(str(imagehash.phash(gray)), 16), f.name


@pytest.mark.parametrize("n", [5, 32, 47, 94, 125, 333, 500, 1000])
def test_fast_resize_matrix_is_pillows_bilinear_filter(n):
    # Pillow resizes float images with its own coefficients and no rounding: an identity image
    # resized along one axis gives them back, one column per input pixel
    eye = Image.fromarray(np.eye(n, dtype=np.float32), "F").resize((32, n), FAST_RESAMPLE)
    assert np.allclose(np.asarray(eye, dtype=np.float64).T, _bilinear_matrix(n), atol=1e-6)


def test_fast_hash_agrees_with_resizing_first_and_with_imagehash():
    files = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:80]
    to_resized, to_plain = [], []
    for f in files:
        gray = open_for_hash(f.read_bytes())
        h = fast_hash(gray)[0]
        assert fast_hash(gray, pixels=gray.tobytes()) == [h]
        # the folded product skips only the rounding of the 32x32 pixels to 8 bits
        to_resized.append((h ^ hash_image(gray, resample=FAST_RESAMPLE)[0]).bit_count())
        to_plain.append((h ^ int(str(imagehash.phash(Image.open(f))), 16)).bit_count())
    assert max(to_resized) <= 3 and np.mean(to_resized) < 0.3
    assert np.mean(to_plain) < 1.5


def test_fast_hash_of_a_large_image_resizes_first_and_agrees():
    gray = ImageOps.exif_transpose(Image.open(TENCH)).convert("L").resize((1200, 900))   # > 2**18 pixels
    small = gray.resize((600, 450))
    assert (fast_hash(gray)[0] ^ fast_hash(small)[0]).bit_count() <= 4
    assert fast_hash(gray, dihedral=True)[0] == fast_hash(gray)[0]


def test_other_kinds_are_imagehash():
    gray = open_for_hash(TENCH.read_bytes())
    assert hash_image(gray, "dhash")[0] == int(str(imagehash.dhash(gray)), 16)
    assert hash_image(gray, "ahash")[0] == int(str(imagehash.average_hash(gray)), 16)


def test_orientation_is_applied_before_hashing():
    odd = SHARED / "odd-encodings"
    hashes = [hash_bytes((odd / f"hopper_orientation_{k}.jpg").read_bytes())[0] for k in (3, 6, 8)]
    assert max((a ^ b).bit_count() for a in hashes for b in hashes) <= 6


def test_dihedral_hashes_match_real_flips_and_rotations():
    im = ImageOps.exif_transpose(Image.open(UK / "base_images" / "ukbench00120.jpg")).convert("L")
    variants = hash_image(im, dihedral=True)
    assert len(variants) == 8 and variants[0] == hash_image(im)[0]
    t = Image.Transpose
    for op in (t.FLIP_LEFT_RIGHT, t.FLIP_TOP_BOTTOM, t.ROTATE_90, t.ROTATE_180, t.ROTATE_270, t.TRANSPOSE):
        actual = hash_image(im.transpose(op))[0]
        assert min((actual ^ v).bit_count() for v in variants) <= 2, op
    assert (hash_image(im.transpose(t.FLIP_LEFT_RIGHT))[0] ^ variants[0]).bit_count() > 16


def test_ukbench_near_duplicates_and_distinct_photos():
    rows = list(csv.DictReader(open(UK / "groups.csv")))
    base = hash_bytes((UK / "base_images" / "ukbench00120.jpg").read_bytes(), dihedral=True)
    for r in rows:
        if r["transform_or_role"] in ("gray", "resize"):
            h = hash_bytes((UK / r["file"]).read_bytes())[0]
            assert (h ^ base[0]).bit_count() <= 4, r["file"]
        if r["transform_or_role"] == "hflip":
            h = hash_bytes((UK / r["file"]).read_bytes())[0]
            assert (h ^ base[0]).bit_count() > 16 and min((h ^ v).bit_count() for v in base) <= 4
    with pytest.raises(ImageRejected):
        hash_bytes((UK / "transformed" / "ukbench09268_corrupt.jpg").read_bytes())


def test_no_false_merges_among_500_distinct_photos():
    files = sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))
    h = np.array([hash_bytes(f.read_bytes())[0] for f in files], dtype=np.uint64)
    i, j, d = pairs_within(h, None, 10)
    assert len(i) == 0


def test_radius_search_is_exact():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2**63, 400, dtype=np.uint64)
    flips = base ^ (np.uint64(1) << rng.integers(0, 63, 400).astype(np.uint64))   # 1-bit neighbours
    a = np.concatenate([base, flips])
    d_all = np.array([[(int(x) ^ int(y)).bit_count() for y in a] for x in a])
    for radius in (0, 1, 20):
        i, j, d = pairs_within(a, None, radius)
        expect = {(x, y) for x, y in zip(*np.nonzero(d_all <= radius)) if x < y}
        assert set(zip(i.tolist(), j.tolist())) == expect
        assert (d == d_all[i, j]).all()
    dist, idx = nearest(a[:50], a[400:])
    assert (dist == d_all[:50, 400:].min(axis=1)).all()


def test_hashes_of_files_are_cached(tmp_path, monkeypatch):
    import negmine.filters.overlap as overlap
    from negmine.engine.distribute import SerialDistributor

    files = [str(p) for p in sorted((SHARED / "imagenet-500" / "images").glob("*.JPEG"))[:5]]
    first = overlap.hash_files(files, "phash", False, SerialDistributor(), progress=False)

    def boom(*a, **k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(overlap, "hash_file_or_reason", boom)
    again = overlap.hash_files(files, "phash", False, SerialDistributor(), progress=False)
    assert again == first and all(isinstance(v, tuple) for v in again.values())
    with pytest.raises(AssertionError, match="decoded again"):     # other settings: not the same cache entry
        overlap.hash_files(files, "phash", True, SerialDistributor(), progress=False)


def test_multi_index_hashing_is_exact_on_clustered_hashes():
    rng = np.random.default_rng(1)
    base = rng.integers(0, 2**63, 3000, dtype=np.uint64) | np.uint64(1 << 63)     # phash-like: top bit set
    noise = np.zeros(3000, dtype=np.uint64)
    for _ in range(6):
        noise |= (np.uint64(1) << rng.integers(0, 64, 3000).astype(np.uint64)) * (rng.random(3000) < 0.5).astype(np.uint64)
    a = np.concatenate([base, base ^ noise])
    truth = pairs_within(a, None, 8, method="brute")
    for m in (3, 4, 5, 8):
        i, j, d = mih_pairs(a, None, 8, m)
        assert set(zip(i.tolist(), j.tolist())) == set(zip(truth[0].tolist(), truth[1].tolist()))
    q, db = a[:400], a[400:]
    exact_d, _ = nearest(q, db)
    for radius in (4, 8, 12):
        d, j = nearest_within(q, db, radius)
        close = exact_d <= radius
        assert ((d <= radius) == close).all() and (d[close] == exact_d[close]).all()
        assert (np.bitwise_count(q[close] ^ db[j[close]]) == d[close]).all()
