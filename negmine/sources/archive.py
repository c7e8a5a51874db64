"""The archive layouts (WebDataset tar shards; imagefolder splits with zip archives or metadata
files): which one a local folder or Hub split is (`open_archive` in the package opens it), and
what their sources share: labels given per sample as values (ints or strings), class names from
the dataset card, a local copy of a Hub file."""

from __future__ import annotations

import json
import os
import posixpath
from pathlib import Path

import numpy as np

from negmine.errors import SourceNotFound
from negmine.sources.base import IMAGE_EXTENSIONS
from negmine.sources.cards import card_features
from negmine.sources.columns import feature_kinds
from negmine.sources.labels import (CONFIDENCE_FIELDS, LIST_LABEL_FIELDS, LabelListBuilder, LabelLists,
                                    codes_from_values)

LABEL_FIELDS = ("label", "labels", "class", "cls", "fine_label", "coarse_label", "category", "class_name", "wnid", "synset")


def card_class_names(card_text: str | None, prefer: tuple[str, ...] = (), config: str | None = None
                     ) -> list[str] | None:
    """The names of the dataset card's ClassLabel feature (the one named in `prefer` first, else
    its only one), or None when the card declares none; with `config`, only that config's features
    count (see `card_features`). NegmineError when it declares several and `prefer` names none of them."""
    try:
        kinds = feature_kinds(card_features(card_text, config))
    except ValueError:
        return None
    labels = {name: names for name, (kind, names) in kinds.items() if kind in ("ClassLabel", "LabelList") and names}
    for name in prefer:
        if name in labels:
            return labels[name]
    if not labels:
        return None
    from negmine.sources.columns import one_of

    # two ClassLabels (CIFAR-100's fine and coarse): which names the int labels is not the card's order
    return labels[one_of(list(labels), "label", "--label-column", "label", "the dataset card")]


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


def metadata_columns(records: list, image_column: str | None, label_column: str | None, where: str
                     ) -> tuple[str, list[str], str | None]:
    """(the key naming each record's image, keys naming other images of the record, the label key
    or None) of imagefolder metadata records, as `datasets` reads them: `file_name` is the `image`
    column and `X_file_name` the `X` column. Several image columns or several label keys
    (`LABEL_FIELDS`, objects, tags) are refused naming them (`base.one_of`) unless `image_column`
    / `label_column` chooses; a named column that is not there raises SourceNotFound."""
    from negmine.sources.columns import one_of

    dicts = [r for r in records if isinstance(r, dict)]
    keys = list(dict.fromkeys(k for r in dicts for k in r))
    images = {(k[:-len("_file_name")] or "image"): k for k in keys
              if (k == "file_name" or k.endswith("_file_name")) and any(isinstance(r.get(k), str) for r in dicts)}
    if image_column:
        if image_column not in images:
            raise SourceNotFound(f"{where} has no image column {image_column!r} (a {image_column}_file_name key); "
                                 f"image columns: {', '.join(images) or 'none'}")
        image = image_column
    else:
        image = one_of(list(images), "image", "--image-column", "image", where) if images else "image"
    key = images.get(image, "file_name")
    if label_column:
        label = label_column
    else:
        found = [k for k in LABEL_FIELDS + ("objects", "tags") if any(r.get(k) not in (None, "") for r in dicts)]
        label = one_of(found, "label", "--label-column", "label", where) if found else None
    return key, [k for k in images.values() if k != key], label


def json_label_list(obj, field: str | None) -> list[tuple[object, float | None]] | None:
    """The label list in a JSON record (`field`, else the first conventional one holding a list):
    [(label, confidence or None), ...] from a list of labels, a list of records with a label field
    (and maybe a confidence), or a record of lists (COCO-style objects: {"bbox": [...],
    "category": [...]}); None when the record holds no label list. A CSV cell holding a JSON list
    counts as one."""
    if not isinstance(obj, dict):
        return None
    for k in ((field,) if field else LABEL_FIELDS + ("objects", "tags")):
        v = obj.get(k)
        if isinstance(v, str) and v.lstrip().startswith("["):
            try:
                v = json.loads(v)
            except ValueError:
                return None
        if isinstance(v, dict):                       # a record of lists
            name = next((f for f in LIST_LABEL_FIELDS if isinstance(v.get(f), list)), None)
            if name is None:
                return None
            conf = next((f for f in CONFIDENCE_FIELDS if isinstance(v.get(f), list)), None)
            cs = v[conf] if conf else [None] * len(v[name])
            return [(x, c) for x, c in zip(v[name], cs)]
        if isinstance(v, list):
            out = []
            for x in v:
                if isinstance(x, dict):
                    name = next((f for f in LIST_LABEL_FIELDS if f in x), None)
                    conf = next((f for f in CONFIDENCE_FIELDS if f in x), None)
                    if name is not None:
                        out.append((x[name], x[conf] if conf else None))
                elif not isinstance(x, (list, bool)):
                    out.append((x, None))
            return out
    return None


def list_label_codes(values: list, names: list[str] | None, where: str) -> LabelLists:
    """`LabelLists` of per-row label lists as `json_label_list` gives them (None or a scalar:
    no label, or that one label). Ints are ClassLabel codes when `names` is given and every label
    is an int, else text."""
    import pyarrow as pa

    rows = [v if isinstance(v, list) else [] if v is None else [(v, None)] for v in values]
    flat = [x for r in rows for x, _ in r]
    conf = [c for r in rows for _, c in r]
    ints = names is not None and all(isinstance(x, int) and not isinstance(x, bool) for x in flat)
    labels = pa.array(flat, pa.int64()) if ints else pa.array(
        [None if x is None else str(x).strip() or None for x in flat], pa.string())
    offsets = pa.array(np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32))
    if any(c is not None for c in conf):
        confidence = pa.array([None if c is None else float(c) for c in conf], pa.float64())
        labels = pa.StructArray.from_arrays([labels, confidence], ["label", "confidence"])
    builder = LabelListBuilder(names if ints else None, where)
    builder.add(pa.ListArray.from_arrays(offsets, labels))
    return builder.finish()


def hub_local_copy(base: str, rel: str) -> str:
    """A local path holding `rel` of the repo at `base`: the file itself for a local base (a folder
    or the HF-cache snapshot), else the whole file fetched through `remote.RangeFile` (counted
    under the run's request budget, kept per commit in $NEGMINE_CACHE/ranges), so a shard is
    fetched once however often it is read. Not `hf_hub_download`: with hf_xet installed that
    fetches Xet files through its own client, which no budget sees."""
    if "://" not in base:
        return f"{base.rstrip('/')}/{rel}"
    from negmine.sources.remote import RangeFile

    if not base.startswith("hf://datasets/"):
        raise ValueError(f"not a Hub dataset path: {base}")
    return RangeFile(f"{base.rstrip('/')}/{rel}").local_copy()


def unusable_summary(rows) -> dict:
    """What a source's plan says about the rows it indexed but cannot use (a repeated tar member,
    an undecodable zip member, a bad label): {"samples": n, "first": the first 20 rows as
    {"file", "member", "reason"}}. Drawn, each becomes a rejects.jsonl row with its reason."""
    rows = list(rows)
    return {"samples": len(rows), "first": rows[:20]}


METADATA_NAMES = ("metadata.jsonl", "metadata.csv")


def is_metadata(path: str) -> bool:
    return posixpath.basename(path) in METADATA_NAMES


def is_imagefolder_file(path: str) -> bool:
    """A file an imagefolder split may hold: an image, a zip of images, or a metadata file."""
    ext = posixpath.splitext(path)[1].lower()
    return ext in IMAGE_EXTENSIONS or ext == ".zip" or is_metadata(path)


def local_layout(path: Path) -> str | None:
    """"webdataset" for a folder of tar shards, "imagefolder" for one with zip archives or
    metadata.jsonl/csv files, else None (plain image files: the folder layout)."""
    tars = images = archive = False
    for folder, dirs, names in os.walk(path):
        # archives and metadata files sit at most in data/<split>/: no need to list deep class trees
        depth = len(Path(folder).relative_to(path).parts)
        dirs[:] = [d for d in dirs if not d.startswith(".")] if depth < 3 else []
        for name in names:
            low = name.lower()
            if name.startswith("."):
                continue
            tars = tars or low.endswith(".tar")
            archive = archive or low.endswith(".zip") or is_metadata(name)
            images = images or Path(low).suffix in IMAGE_EXTENSIONS
    if tars and images:
        # one stray tar in a folder of class folders must not silently replace the images
        raise SourceNotFound(f"source folder {path} holds both .tar shards and image files; give the folder "
                             "of the shards or of the images")
    return "webdataset" if tars else "imagefolder" if archive else None


def hub_layout(files: list[str]) -> str | None:
    """The archive layout of a Hub split's files, or None (parquet, plain images: not an archive)."""
    if any(f.lower().endswith(".tar") for f in files) and not any(f.endswith(".parquet") for f in files):
        # WebDataset repos may carry index or info files (.json, .idx) beside the shards: tars only
        return "webdataset"
    if all(is_imagefolder_file(f) for f in files) and any(f.lower().endswith(".zip") or is_metadata(f)
                                                          for f in files):
        return "imagefolder"
    return None
