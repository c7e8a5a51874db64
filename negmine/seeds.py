"""The seeding rule every stage shares: one --seed, an independent random stream per purpose."""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, purpose: str, *extra: int) -> np.random.Generator:
    """Independent, stable streams per purpose, so adding a stage never shifts another's draw."""
    return np.random.default_rng([seed, zlib.crc32(purpose.encode()), *extra])
