"""The one interface every pool of candidate negatives sits behind, and what the adapters share.

A source exposes its class labels up front (cheap: a label column or a file list) so the draw can
be planned over the whole pool, and then reads the bytes of just the rows that were drawn.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import numpy as np

from negmine.errors import NegmineError, SourceNotFound
from negmine.images import IMAGE_EXTENSIONS  # noqa: F401  (one list: what Pillow reads, any case)

_LABEL_NAMES = ("label", "labels", "class", "fine_label", "category", "wnid", "synset")
_IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "picture")
_WNID = re.compile(r"^n\d{8}$")
GENERIC_FOLDERS = {"images", "image", "imgs", "img", "photos", "pictures", "pics", "jpg", "jpeg", "jpegimages"}


@dataclass(frozen=True)
class SourceSpec:
    """``--source LOCATION[?split=S&weight=W&image=COL&label=COL]``."""

    location: str
    split: str | None = None
    weight: float = 1.0
    image_column: str | None = None
    label_column: str | None = None
    config: str | None = None

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        location, _, query = text.partition("?")
        opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        unknown = set(opts) - {"split", "weight", "image", "label", "config"}
        if unknown:
            raise NegmineError(f"unknown source option(s) {sorted(unknown)} in {text!r}; "
                               "known: split, config, weight, image, label")
        try:
            weight = float(opts.get("weight", 1.0))
        except ValueError:
            raise NegmineError(f"source weight must be a number, got {opts['weight']!r}") from None
        if not weight > 0:
            raise NegmineError(f"source weight must be > 0, got {weight}")
        if not location:
            raise NegmineError(f"empty source location in {text!r}")
        return cls(location, opts.get("split"), weight, opts.get("image"), opts.get("label"), opts.get("config"))


@dataclass
class Item:
    """One drawn row, as read from its source."""

    row: int
    data: bytes | None          # None when the row has no image bytes
    origin: dict                # where it came from: file (+ row in file) inside the source
    error: str | None = None


@dataclass
class Source(ABC):
    id: str                              # repo id or absolute path, as recorded in the manifest
    short: str                           # short name used in file names
    revision: str | None
    licence: str | None
    classes: list[str] = field(default_factory=list)
    codes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))   # class per row, -1 none
    weight: float = 1.0
    split: str | None = None
    partial: bool = False                # only part of the split exists here (refs/convert/parquet `partial-*`)
    downloads: bool = False              # reading costs downloads (a Hub repo online), not local reads

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def label_kind(self) -> str:
        if not self.classes:
            return "none"
        return "wnid" if all(_WNID.match(c) for c in self.classes) else "name"

    def label_of(self, row: int) -> str | None:
        code = int(self.codes[row])
        return self.classes[code] if code >= 0 else None

    @abstractmethod
    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        """Yield the drawn rows (in any order); a row that cannot be read comes with `error` set."""

    def read_jobs(self, rows: Sequence[int], max_items: int = 32, max_bytes: int = 2 << 20
                  ) -> Iterator[tuple[list[Item], "object | None"]]:
        """The drawn rows in groups, for worker processes: (items, None) with their bytes read here,
        or (items without bytes, a picklable reader) where a worker can read them itself, its
        `read()` giving their bytes in the items' order."""
        batch: list[Item] = []
        size = 0
        for item in self.read(rows):
            batch.append(item)
            size += len(item.data or b"")
            if len(batch) >= max_items or size >= max_bytes:
                yield batch, None
                batch, size = [], 0
        if batch:
            yield batch, None

    def describe(self) -> dict:
        d = {"id": self.id, "revision": self.revision, "split": self.split, "licence": self.licence,
             "rows": len(self), "classes": len(self.classes), "label_kind": self.label_kind,
             "weight": self.weight}
        if self.partial:
            d["partial"] = True
        return d

    def partial_note(self) -> str | None:
        """One line when the source is not the whole split, so no plan presents it as the pool."""
        if not self.partial:
            return None
        return (f"{self.id}: split {self.split!r} is the Hub's partial conversion (its first ~5 GB): "
                f"the {len(self)} rows here are the start of the split, not all of it, and its later "
                "classes and rows cannot be drawn")


def codes_from_values(values, names: list[str] | None) -> tuple[list[str], np.ndarray]:
    """Integer ClassLabel codes keep their names; anything else becomes sorted string classes.
    `values`: a list, or a pyarrow array/chunked array."""
    import pyarrow as pa

    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    vocab: dict[str, int] = {}
    codes = local_codes(arr, names, vocab)
    return (list(names), codes) if names is not None and not vocab else sorted_classes(vocab, codes)


def sorted_classes(vocab: dict[str, int], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Renumber codes given in order of first appearance so classes are in sorted order, as for
    every source (-1, no label, stays -1)."""
    labels = sorted(vocab)
    remap = np.full(len(vocab) + 1, -1, np.int32)     # remap[-1] is the sentinel
    for rank, label in enumerate(labels):
        remap[vocab[label]] = rank
    np.take(remap, codes, out=codes, mode="wrap")    # in place: no second per-row array; wrap maps -1 to the sentinel
    return labels, codes


def _ints(arr) -> np.ndarray:
    """An integer arrow array as int64, nulls as -1, read from its buffers: Array.to_numpy and
    fill_null make pyarrow import pandas (a quarter of a second of start-up)."""
    import pyarrow as pa

    n = len(arr)
    if pa.types.is_null(arr.type) or arr.null_count == n:
        return np.full(n, -1, np.int64)
    dt = np.dtype(("u" if pa.types.is_unsigned_integer(arr.type) else "i") + str(arr.type.bit_width // 8))
    values = np.frombuffer(arr.buffers()[1], dtype=dt, count=n, offset=arr.offset * dt.itemsize).astype(np.int64)
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")
        values[~bits[arr.offset:arr.offset + n].astype(bool)] = -1
    return values


def local_codes(column, names: list[str] | None, vocab: dict[str, int]) -> np.ndarray:
    """Codes of one chunk of a label column: ClassLabel ints as they are, strings through `vocab`
    (shared across chunks, filled as new labels appear; -1 for missing or empty)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if names is not None and (pa.types.is_integer(arr.type) or pa.types.is_null(arr.type)):
        codes = _ints(arr)
        codes[(codes < 0) | (codes >= len(names))] = -1
        return codes.astype(np.int32)
    if not pa.types.is_dictionary(arr.type):
        arr = (pc.cast(arr, pa.string()) if not pa.types.is_string(arr.type) else arr).dictionary_encode()
    local = np.array([vocab.setdefault(str(v), len(vocab)) if v not in (None, "") else -1
                      for v in arr.dictionary.to_pylist()] + [-1], dtype=np.int32)
    idx = _ints(arr.indices)
    return local[idx]                          # -1 -> the appended -1


def feature_kinds(features) -> dict[str, tuple[str, list[str] | None]]:
    """{column: (feature type, class names of a ClassLabel)} from `datasets.Features` or from the
    JSON `datasets` stores in a parquet schema ({"_type": "Image"}, {"_type": "ClassLabel", ...})."""
    out = {}
    for name, f in (features or {}).items():
        if isinstance(f, dict):
            kind = f.get("_type")
            names = f.get("names")
            if kind == "ClassLabel" and names is None and isinstance(f.get("num_classes"), int):
                names = [str(i) for i in range(f["num_classes"])]
        else:
            kind, names = type(f).__name__, getattr(f, "names", None)
        if kind == "ClassLabel" and not isinstance(names, list):
            raise ValueError(f"ClassLabel {name!r} without names")
        out[name] = (kind, list(names) if kind == "ClassLabel" else None)
    return out


def schema_kinds(schema) -> dict | None:
    """Feature kinds from the `huggingface` metadata of a parquet schema, without importing
    `datasets` (a second of start-up); None when absent or not understood."""
    if not schema.metadata or b"huggingface" not in schema.metadata:
        return None
    try:
        features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
        return feature_kinds(features) if isinstance(features, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def pick_columns(kinds: dict | None, names: list[str], image_column: str | None, label_column: str | None,
                  where: str, image_like: set[str]) -> tuple[str, str | None, list[str] | None]:
    """Find the image and label columns by feature type first, then by conventional names.
    `kinds`: see `feature_kinds`."""
    kinds = kinds or {}

    def check(col: str, what: str) -> str:
        if col not in names:
            raise SourceNotFound(f"{where} has no {what} column {col!r}; columns: {', '.join(names)}")
        return col

    if image_column:
        image = check(image_column, "image")
    else:
        typed = [n for n in names if kinds.get(n, ("",))[0] == "Image"]
        guess = typed or [n for n in names if n in image_like] or [n for n in names if n.lower() in _IMAGE_NAMES]
        if not guess:
            raise SourceNotFound(f"{where} has no image column (columns: {', '.join(names)}); "
                                 "name one with --image-column")
        image = guess[0]
    if label_column and label_column.lower() == "none":
        return image, None, None
    if label_column:
        label = check(label_column, "label")
    else:
        typed = [n for n in names if kinds.get(n, ("",))[0] == "ClassLabel"]
        guess = typed or [n for n in names if n.lower() in _LABEL_NAMES and n != image]
        label = guess[0] if guess else None
    class_names = kinds[label][1] if label in kinds else None
    return image, label, class_names


# the YAML header of a dataset card, as huggingface_hub.repocard finds it
_CARD_YAML = re.compile(r"^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$))")


def card_data(card_text: str | None) -> dict:
    """The card's YAML metadata (licence, dataset_info), parsed with PyYAML directly:
    huggingface_hub's DatasetCard pulls in its whole Hub API (a tenth of a second of start-up)."""
    m = _CARD_YAML.match(card_text or "")
    if not m:
        return {}
    try:
        import yaml

        data = yaml.safe_load(m.group(2))
    except Exception:
        return {}
    return data if isinstance(data, dict) else {}


def card_licence(card_text: str | None) -> str | None:
    lic = card_data(card_text).get("license")
    if isinstance(lic, list):
        lic = ", ".join(map(str, lic))
    return str(lic) if lic else None


def card_features(card_text: str | None):
    data = card_data(card_text)
    if not data.get("dataset_info"):            # nothing to read: spare the `datasets` import
        return None
    try:
        from datasets.info import DatasetInfosDict

        infos = DatasetInfosDict.from_dataset_card_data(data)
        for info in infos.values():
            if info.features:
                return info.features
    except Exception:
        return None
    return None



def is_image_struct(t) -> bool:
    import pyarrow as pa

    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0


def short_name(name: str) -> str:
    from negmine.naming import safe_name

    return safe_name(name, max_len=24)


def narrow_codes(codes: np.ndarray) -> np.ndarray:
    """Class codes as int16 when the classes fit (ImageNet's 1k or 21k do): the array lives through
    the whole run, one entry per pool row."""
    if codes.dtype != np.int16 and len(codes) and int(codes.max()) < 2**15 - 1:
        return codes.astype(np.int16)
    return codes
