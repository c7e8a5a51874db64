"""1. Hashing throughput: negmine vs plain imagehash vs decode-only at reduced size."""

from __future__ import annotations

import io

import imagehash
import numpy as np
from PIL import Image

from bench.common import interleaved, photos, timed
from negmine.engine.distribute import ProcessDistributor
from negmine.filters.hashing import DRAFT_SIZE, hash_bytes


def _plain(data: bytes) -> int:
    return int(str(imagehash.phash(Image.open(io.BytesIO(data)))), 16)


def _decode_only(data: bytes):
    im = Image.open(io.BytesIO(data))
    im.draft("L", DRAFT_SIZE)
    im.load()
    return im.size


def _negmine(data: bytes) -> int:
    return hash_bytes(data)[0]


def run(scale: str = "default") -> dict:
    n = {"tiny": 20, "default": 500, "full": 500}[scale]
    datas = [p.read_bytes() for p in photos()[:n]]
    repeat = 1 if scale == "tiny" else 5
    r = interleaved({"plain": lambda: [_plain(d) for d in datas], "decode": lambda: [_decode_only(d) for d in datas],
                     "negmine": lambda: [_negmine(d) for d in datas]}, repeat)
    (t_plain, plain), (t_dec, _), (t_neg, ours) = r["plain"], r["decode"], r["negmine"]
    cores = {}
    for workers in (1, 2):
        pool = ProcessDistributor(workers)
        try:
            list(pool.imap(_negmine, datas[:4]))          # start the workers outside the timing
            # batches of 32, as `sample` sends pool images to its workers
            t, _ = timed(lambda: list(pool.imap(_negmine, datas, batch=32)), repeat=repeat)
        finally:
            pool.close()
        cores[workers] = len(datas) / t
    bits = [(a ^ b).bit_count() for a, b in zip(ours, plain)]
    per_img = lambda t: t / len(datas) * 1000
    vs_plain, vs_decode = t_plain / t_neg, t_neg / t_dec
    return {
        "name": "hashing", "images": len(datas),
        "ms_per_image": {"plain_imagehash": round(per_img(t_plain), 3), "negmine": round(per_img(t_neg), 3),
                         "decode_only_reduced": round(per_img(t_dec), 3)},
        "negmine_vs_plain": round(vs_plain, 2), "negmine_vs_decode_only": round(vs_decode, 2),
        "images_per_s_processes": {k: round(v, 1) for k, v in cores.items()},
        "scaling_2_vs_1": round(cores[2] / cores[1], 2),
        "agreement_bits": {"mean": round(float(np.mean(bits)), 2), "max": int(max(bits)),
                           "identical": round(float(np.mean(np.array(bits) == 0)), 3)},
        "targets": {">= 2.3x plain per core": vs_plain >= 2.3, "<= 1.15x decode-only": vs_decode <= 1.15},
    }
