"""Named pools: good ImageNet-derived parquet repos on the Hub.

Only parquet repos are listed: script-based repos (a `*.py` loader) no longer load with
datasets >= 4. Row counts and licences are from the repos' cards; check a card before relying on it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    repo: str
    split: str
    rows: int
    classes: int
    label_kind: str   # "wnid" or "name": how source labels map to WordNet
    image_size: str
    licence: str
    note: str


PRESETS: dict[str, Preset] = {p.name: p for p in [
    Preset("imagenet-1k-256", "benjamin-paine/imagenet-1k-256x256", "train", 1_281_167, 1000, "name",
           "256x256", "other (ImageNet terms: research/education)",
           "default: all 1000 ImageNet classes, small images, readable class names"),
    Preset("imagenet-1k-128", "benjamin-paine/imagenet-1k-128x128", "train", 1_281_167, 1000, "name",
           "128x128", "other (ImageNet terms: research/education)", "same pool, smaller and faster"),
    Preset("imagenet-1k-64", "benjamin-paine/imagenet-1k-64x64", "train", 1_281_167, 1000, "name",
           "64x64", "other (ImageNet terms: research/education)", "thumbnails for tiny models"),
    Preset("mini-imagenet", "timm/mini-imagenet", "train", 50_000, 100, "wnid",
           "original", "other (ImageNet terms: research/education)", "100 classes at full resolution"),
    Preset("tiny-imagenet", "zh-plus/tiny-imagenet", "train", 100_000, 200, "wnid",
           "64x64", "not stated on the card (ImageNet-derived)", "200 classes, one shard per split"),
    Preset("imagenet-1k", "ILSVRC/imagenet-1k@refs/convert/parquet", "train", 1_281_167, 1000, "name",
           "original", "ImageNet terms; gated: accept the terms and log in",
           "full resolution; auto-converted parquet of the gated, script-based repo"),
]}

DEFAULT_PRESET = "imagenet-1k-256"
