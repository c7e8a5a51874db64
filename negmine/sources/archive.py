"""What the archive layouts (WebDataset tar shards, imagefolder zips and metadata files) share:
labels given per sample as values (ints or strings), class names from the dataset card, and a
local copy of a Hub file."""

from __future__ import annotations

import numpy as np

from negmine.sources.base import card_features, codes_from_values, feature_kinds

LABEL_FIELDS = ("label", "labels", "class", "cls", "fine_label", "category", "class_name", "wnid", "synset")


def card_class_names(card_text: str | None, prefer: tuple[str, ...] = ()) -> list[str] | None:
    """The names of the dataset card's ClassLabel feature (the one named in `prefer` first, else
    the first one), or None when the card declares none."""
    try:
        kinds = feature_kinds(card_features(card_text))
    except ValueError:
        return None
    labels = {name: names for name, (kind, names) in kinds.items() if kind == "ClassLabel"}
    for name in prefer:
        if name in labels:
            return labels[name]
    return next(iter(labels.values()), None)


def label_codes(values: list, names: list[str] | None) -> tuple[list[str], np.ndarray, dict[int, str]]:
    """Class list, one code per value (-1: none) and {index: reason} for values that are not a
    usable label. Ints are ClassLabel codes when `names` is given (out of range: a reason), else
    their decimal text; strings are class names; None means no label."""
    errors: dict[int, str] = {}
    ints = names is not None and all(v is None or isinstance(v, int) for v in values)
    if ints:
        clean: list = []
        for i, v in enumerate(values):
            if v is not None and not 0 <= v < len(names):
                errors[i] = f"label {v} is outside the card's {len(names)} classes"
                v = None
            clean.append(v)
        import pyarrow as pa

        classes, codes = codes_from_values(pa.array(clean, pa.int64()), names)
        return classes, codes, errors
    text = [None if v is None else str(v).strip() or None for v in values]
    if not any(t is not None for t in text):
        return [], np.full(len(values), -1, np.int32), errors
    classes, codes = codes_from_values(text, None)
    return classes, codes, errors


def json_label(obj, field: str | None) -> object:
    """The label in a JSON sample or metadata record: `field`, else the first conventional one.
    Ints stay ints (ClassLabel codes); bools and containers are not labels."""
    if not isinstance(obj, dict):
        return None
    keys = (field,) if field else LABEL_FIELDS
    for k in keys:
        if k in obj:
            v = obj[k]
            if isinstance(v, bool) or isinstance(v, (list, dict)):
                return None
            return v
    return None


def hub_local_copy(base: str, rel: str) -> str:
    """A local path holding `rel` of the repo at `base`: the file itself for a local base (a folder
    or the HF-cache snapshot), else one download into the HF cache (`hf_hub_download`, shared with
    `datasets` and resumable), so a shard is fetched once however often it is read."""
    if "://" not in base:
        return f"{base.rstrip('/')}/{rel}"
    from huggingface_hub import hf_hub_download

    from negmine.sources import hub

    repo = base.split("://", 1)[1]
    if not repo.startswith("datasets/"):
        raise ValueError(f"not a Hub dataset path: {base}")
    repo_id, _, revision = repo[len("datasets/"):].partition("@")
    try:
        return hub.retrying(lambda: hf_hub_download(repo_id, rel, repo_type="dataset",
                                                    revision=revision or None))
    except Exception as exc:
        if hub.transient(exc):
            raise hub.unavailable(f"{repo_id}/{rel}", exc) from None
        raise
