"""Named pools: good ImageNet-derived parquet repos on the Hub, and pools a product may use.

Only parquet repos are listed: script-based repos (a `*.py` loader) no longer load with
datasets >= 4. Row counts and licences are from the repos' cards; check a card before relying on it.
Each preset's `verified` says what was read from public material (the Hub's repo pages and cards)
and what is assumed.
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
    licence: str      # the terms the preset stands for (an id negmine.licences reads where it can)
    note: str
    labelled_by: str = "classes"   # "classes" (a label per image), "text" (captions: sources.text),
    #                                "verified labels" (labels a rater confirmed present or absent)
    verified: str = ""             # what was checked on the Hub before relying on it, and what is assumed
    # the default --max-read-ratio for this pool (None: sampling.HUB_READ_RATIO). A pool without
    # classes and in no order of content (CommonCatalog: Flickr photos bucketed by size) loses no
    # spread when a draw takes neighbouring rows, so its draws may pay for each page they read
    max_read_ratio: float | None = None
    # the pool's rows carry their own licence (sources.rowlicence): `licence` is then the card's
    # fallback, and `--licence` judges rows, so the table alone cannot refuse the pool
    per_row_licences: bool = False


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
    # commercially usable: CC BY 4.0 per the card, each row's own licence read from `licensename`,
    # `licenseurl` (per-row licences win, sources.rowlicence), credit from `unickname`, `pageurl`
    Preset("commoncatalog-cc-by", "common-canvas/commoncatalog-cc-by", "train", 14_600_000, 0, "nouns",
           "original (up to 4k)", "cc-by-4.0",
           "Flickr photos (YFCC100M) under CC BY, BLIP-2 captions: no classes, kept free of the positives by "
           "the nouns of `blip2_caption`, `title`, `usertags`, `description`; credit and link per image",
           labelled_by="text", max_read_ratio=1.25, per_row_licences=True,     # bench/licence_pool.py: 1.25x the byte floor (BENCHMARKS.md, 14)
           verified="card `license: cc-by-4.0`, image column `jpg`, Spark-named parquet files "
                    "(part-NNNNN-tid-...-c000.parquet), 14.6M rows (the CommonCatalog collection page), from the "
                    "repo's Hub pages; assumed from the issue's reading of the card: the per-row columns "
                    "licensename, licenseurl, unickname, pageurl, photoid, blip2_caption, title, usertags, "
                    "description and the hive folders least_dim_range=.../aspect_ratio_bucket=..."),
    # verified absences: a rater's "not in this image" (confidence 0) read by --verified-absent
    Preset("openimages-human-labels", "vikhyatk/openimages-human-labels", "train", 0, 0, "name",
           "original", "cc-by-2.0",
           "Open Images photos with human-verified labels, present (confidence 1) and absent (0): "
           "--verified-absent keeps only images a person confirmed free of the positives",
           labelled_by="verified labels",
           verified="card features image, image_id, original_url, title, labels (list of label, confidence), "
                    "parquet under data/, 1M-10M rows (the Hub's size category), from the card; the card states no "
                    "licence: CC BY 2.0 is how Open Images lists its images (it makes no warranty per image); no "
                    "author column, so the attribution names the work's title and original URL only"),
]}

DEFAULT_PRESET = "imagenet-1k-256"
