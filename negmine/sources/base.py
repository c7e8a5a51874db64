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

_LABEL_NAMES = ("label", "labels", "class", "fine_label", "coarse_label", "category", "wnid", "synset", "objects", "tags")
# the field of a struct (an object, an Open Images label) that holds its class, and its confidence
LIST_LABEL_FIELDS = ("label", "category", "category_id", "categories", "class", "labels", "name", "tag")
CONFIDENCE_FIELDS = ("confidence", "score")
_IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "picture")
_WNID = re.compile(r"^n\d{8}$")
GENERIC_FOLDERS = {"images", "image", "imgs", "img", "photos", "pictures", "pics", "jpg", "jpeg", "jpegimages"}


@dataclass(frozen=True)
class SourceSpec:
    """``--source LOCATION[?split=S&weight=W&image=COL&label=COL&unlabelled=allow]``."""

    location: str
    split: str | None = None
    weight: float = 1.0
    image_column: str | None = None
    label_column: str | None = None
    config: str | None = None
    unlabelled: str | None = None        # "allow": draw this source's unlabelled images (negmine.filters.unlabelled)

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        location, _, query = text.partition("?")
        opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        unknown = set(opts) - {"split", "weight", "image", "label", "config", "unlabelled"}
        if unknown:
            raise NegmineError(f"unknown source option(s) {sorted(unknown)} in {text!r}; "
                               "known: split, config, weight, image, label, unlabelled")
        if opts.get("unlabelled", "allow") != "allow":
            raise NegmineError(f"source option unlabelled takes one value, allow; got {opts['unlabelled']!r} in {text!r}")
        try:
            weight = float(opts.get("weight", 1.0))
        except ValueError:
            raise NegmineError(f"source weight must be a number, got {opts['weight']!r}") from None
        if not weight > 0:
            raise NegmineError(f"source weight must be > 0, got {weight}")
        if not location:
            raise NegmineError(f"empty source location in {text!r}")
        return cls(location, opts.get("split"), weight, opts.get("image"), opts.get("label"), opts.get("config"),
                   opts.get("unlabelled"))


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
    # multi-label pools (a label column that is a list): per row the class codes it carries, as
    # CSR pairs (row r: codes[offsets[r]:offsets[r + 1]]), and those a rater confirmed absent
    # (confidence 0). `codes` then holds each row's stratum (see `stratum_codes`). None: single label.
    label_offsets: np.ndarray | None = None
    label_codes: np.ndarray | None = None
    absent_offsets: np.ndarray | None = None
    absent_codes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def label_kind(self) -> str:
        if not self.classes:
            return "none"
        return "wnid" if all(_WNID.match(c) for c in self.classes) else "name"

    def label_of(self, row: int) -> str | None:
        """The row's class; for a multi-label pool its stratum label (its rarest one)."""
        code = int(self.codes[row])
        return self.classes[code] if code >= 0 else None

    @property
    def multi_label(self) -> bool:
        return self.label_offsets is not None

    def set_label_lists(self, lists: "LabelLists") -> None:
        """Take a multi-label pool's labels: the classes, the CSR lists and the per-row strata."""
        self.classes = lists.classes
        self.label_offsets, self.label_codes = lists.offsets, lists.codes
        self.absent_offsets, self.absent_codes = lists.absent_offsets, lists.absent_codes
        self.codes = stratum_codes(lists.offsets, lists.codes, len(lists.classes))

    def labels_of(self, row: int) -> list[str] | None:
        """Every label the row carries (sorted; confirmed-absent ones are not labels), or None for
        a single-label pool."""
        if self.label_offsets is None:
            return None
        a, b = int(self.label_offsets[row]), int(self.label_offsets[row + 1])
        return sorted(self.classes[c] for c in self.label_codes[a:b].tolist())

    def absent_labels_of(self, row: int) -> list[str]:
        """The labels a rater confirmed absent from the row (confidence 0); [] when none or unknown."""
        if self.absent_offsets is None:
            return []
        a, b = int(self.absent_offsets[row]), int(self.absent_offsets[row + 1])
        return sorted(self.classes[c] for c in self.absent_codes[a:b].tolist())

    def rows_with_any(self, codes: np.ndarray) -> np.ndarray:
        """bool per row: the row carries one of these class codes (any of its labels, for a
        multi-label pool). Vectorised over the CSR lists: no Python object per row."""
        if self.label_offsets is None:
            return np.isin(self.codes, codes)
        return any_in_lists(self.label_offsets, self.label_codes, codes)

    def rows_verified_absent(self, groups: Sequence[np.ndarray]) -> np.ndarray:
        """bool per row: for every group of class codes (one group per positive concept: the pool
        classes that would name it), a rater confirmed one of the group absent from the row. All
        False when the pool records no confirmed absences."""
        out = np.zeros(len(self.codes), bool)
        if self.absent_offsets is None or not len(groups):
            return out
        out[:] = True
        for g in groups:
            out &= any_in_lists(self.absent_offsets, self.absent_codes, np.asarray(g))
        return out

    def images_per_class(self) -> np.ndarray:
        """Images carrying each class (int64, one per class): of a multi-label pool, every label
        counts (an image is counted once per distinct label)."""
        from negmine.filters.overlap import class_counts

        return class_counts(self.label_codes if self.multi_label else self.codes, len(self.classes))

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
        if getattr(self, "image_column", None):        # a table source: the columns read, by detection or option
            d["columns"] = {"image": self.image_column, "label": getattr(self, "label_column", None)}
            if getattr(self, "not_labels", None):
                d["columns"]["not_labels"] = {c: "an image column, not class labels" for c in self.not_labels}
        if self.multi_label:
            d["label_lists"] = {"labels": int(len(self.label_codes)),
                                "images_without_label": int((np.diff(self.label_offsets) == 0).sum()),
                                "confirmed_absent": None if self.absent_codes is None else int(len(self.absent_codes))}
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


def _floats(arr, missing: float) -> np.ndarray:
    """A float64 arrow array as numpy, nulls as `missing`, from its buffers (as `_ints`)."""
    n = len(arr)
    if arr.null_count == n:
        return np.full(n, missing)
    values = np.frombuffer(arr.buffers()[1], np.float64, count=n, offset=arr.offset * 8).copy()
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(arr.buffers()[0], np.uint8), bitorder="little")
        values[~bits[arr.offset:arr.offset + n].astype(bool)] = missing
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


def is_label_list(t) -> bool:
    """An arrow type that holds several labels per row: a list (of ints, strings, or structs with a
    label field), or a struct of lists with a label field (a `datasets` Sequence of objects)."""
    import pyarrow as pa

    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return True
    if pa.types.is_struct(t):
        return any(t.field(i).name in LIST_LABEL_FIELDS and _is_list(t.field(i).type) for i in range(t.num_fields))
    return False


def _is_list(t) -> bool:
    import pyarrow as pa

    return pa.types.is_list(t) or pa.types.is_large_list(t)


def _struct_field(t, names: Sequence[str]) -> str | None:
    have = [t.field(i).name for i in range(t.num_fields)]
    return next((n for n in names if n in have), None)


def _label_parts(arr, where: str = "the label column"):
    """(labels per row: int64, the labels flat: an arrow array, their confidence: float64 or None)
    of one chunk of a list label column. Raises NegmineError for a list shape without labels."""
    import pyarrow as pa

    t = arr.type
    if pa.types.is_struct(t):                        # {bbox: [[..]], category: [..]}: the label list
        name = next(t.field(i).name for i in range(t.num_fields)
                    if t.field(i).name in LIST_LABEL_FIELDS and _is_list(t.field(i).type))
        conf = _struct_field(t, CONFIDENCE_FIELDS)
        lab = arr.field(name)
        lengths = np.maximum(_ints(lab.value_lengths()), 0)
        values = lab.flatten()
        cvals = arr.field(conf).flatten() if conf and _is_list(t.field(conf).type) else None
    else:
        lengths = np.maximum(_ints(arr.value_lengths()), 0)
        values = arr.flatten()
        cvals = None
        if pa.types.is_struct(values.type):          # [{label, confidence}, ...] or [{bbox, category}, ...]
            name = _struct_field(values.type, LIST_LABEL_FIELDS)
            if name is None:
                raise NegmineError(f"{where} is a list of records without a label field "
                                   f"(one of {', '.join(LIST_LABEL_FIELDS)}); name another with --label-column")
            conf = _struct_field(values.type, CONFIDENCE_FIELDS)
            cvals = values.field(conf) if conf else None
            values = values.field(name)
    if _is_list(values.type) or pa.types.is_struct(values.type):
        raise NegmineError(f"{where} is a list of lists; negmine reads a list of labels or of records with a label")
    conf = None
    if cvals is not None:
        import pyarrow.compute as pc

        if isinstance(cvals, pa.ChunkedArray):
            cvals = cvals.combine_chunks()
        # a missing confidence counts as present: only an explicit 0 says "confirmed absent"
        conf = _floats(pc.cast(cvals, pa.float64()), missing=1.0)
    return lengths, values, conf


@dataclass
class LabelLists:
    """A multi-label pool's labels: `classes`, and per row the codes it carries as a CSR pair
    (`offsets`: int64, rows + 1; `codes`: int32), and those confirmed absent (None: the pool has
    no confidence)."""

    classes: list[str]
    offsets: np.ndarray
    codes: np.ndarray
    absent_offsets: np.ndarray | None = None
    absent_codes: np.ndarray | None = None


class LabelListBuilder:
    """Reads a list label column a chunk at a time (a row group, a table) into `LabelLists`,
    with numpy only: a million-row pool never costs a Python object per row or per label."""

    def __init__(self, names: list[str] | None, where: str = "the label column"):
        self.names, self.where = names, where
        self.vocab: dict[str, int] = {}
        self._present: list[tuple[np.ndarray, np.ndarray]] = []
        self._absent: list[tuple[np.ndarray, np.ndarray]] = []
        self.confidence = False

    def add(self, column) -> None:
        """One chunk of the column (arrow array or chunked array), rows in order after the last."""
        import pyarrow as pa

        arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        lengths, values, conf = _label_parts(arr, self.where)
        n = len(arr)
        rows = np.repeat(np.arange(n, dtype=np.int64), lengths)
        codes = local_codes(values, self.names, self.vocab) if len(values) else np.zeros(0, np.int32)
        valid = codes >= 0
        if conf is None:
            self._present.append(_compact(rows[valid], codes[valid], n))
            self._absent.append((np.zeros(n, np.int64), np.zeros(0, np.int32)))
            return
        self.confidence = True
        # Open Images: confidence 0 means a rater confirmed the class absent, so it is no label
        gone = conf == 0
        self._present.append(_compact(rows[valid & ~gone], codes[valid & ~gone], n))
        self._absent.append(_compact(rows[valid & gone], codes[valid & gone], n))

    def finish(self) -> LabelLists:
        def join(parts):
            lengths = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
            codes = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.int32)
            return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64), codes.astype(np.int32)

        offsets, codes = join(self._present)
        a_offsets, a_codes = join(self._absent)
        if self.names is not None and not self.vocab:
            classes = list(self.names)
        else:                                   # names as text (also when a ClassLabel's values are not ints)
            classes, codes = sorted_classes(self.vocab, codes)
            a_codes = sorted_classes(self.vocab, a_codes)[1]
        return LabelLists(classes, offsets, codes, a_offsets if self.confidence else None,
                          a_codes if self.confidence else None)


def _compact(rows: np.ndarray, codes: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels per row, codes in row order) with each class once per row: COCO lists one entry
    per object, and an image with three dogs is one image carrying 'dog'."""
    order = np.lexsort((codes, rows))
    rows, codes = rows[order], codes[order]
    keep = np.ones(len(rows), bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (codes[1:] != codes[:-1])
    return np.bincount(rows[keep], minlength=n).astype(np.int64), codes[keep]


def any_in_lists(offsets: np.ndarray, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """bool per row of a CSR list (`offsets`, rows + 1; `values`): one of the row's values is in
    `codes`."""
    n = len(offsets) - 1
    out = np.zeros(n, bool)
    if not len(values) or not len(codes):
        return out
    hit = np.isin(values, codes)
    nonempty = offsets[1:] > offsets[:-1]
    # reduceat over the starts of the non-empty rows: each segment runs to the next such start
    out[nonempty] = np.logical_or.reduceat(hit, offsets[:-1][nonempty])
    return out


def stratum_codes(offsets: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
    """Each row's stratum for the stratified draw over a multi-label pool: its rarest label (the
    one fewest images of the pool carry; ties: the first class in sorted order), -1 for no label.
    Drawing round-robin over these strata reaches the rare labels, where a draw over each image's
    first label would follow the common ones ('person' in COCO). Returns int32, one per row."""
    n = len(offsets) - 1
    out = np.full(n, -1, np.int32)
    if not len(codes):
        return out
    counts = np.bincount(codes, minlength=k).astype(np.int64)
    key = counts[codes] * (k + 1) + codes          # rarest first, then lowest code
    nonempty = offsets[1:] > offsets[:-1]
    out[nonempty] = (np.minimum.reduceat(key, offsets[:-1][nonempty]) % (k + 1)).astype(np.int32)
    return out


def feature_kinds(features) -> dict[str, tuple[str, list[str] | None]]:
    """{column: (feature type, class names of a ClassLabel)} from `datasets.Features` or from the
    JSON `datasets` stores in a parquet schema ({"_type": "Image"}, {"_type": "ClassLabel", ...})."""
    out = {}
    if type(features) is not dict and hasattr(features, "to_dict"):     # datasets.Features (a dict subclass)
        features = features.to_dict()          # datasets.Features: the same JSON the parquet schema holds
    for name, f in (features or {}).items():
        listed = _list_label_names(f)
        if listed is not None:
            out[name] = ("LabelList", listed or None)
            continue
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


def _list_label_names(f) -> list[str] | None:
    """For a feature (JSON form) that is a list of labels: the class names of its ClassLabel ([]
    when the labels are plain values); None when it is not a label list. Shapes: List(ClassLabel),
    List(Value), List({label|category: ...}), {category: List(ClassLabel)} (a Sequence of objects)."""
    if not isinstance(f, dict):
        return None

    def names_of(x) -> list[str] | None:
        if not isinstance(x, dict):
            return None
        if x.get("_type") == "ClassLabel":
            names = x.get("names")
            if names is None and isinstance(x.get("num_classes"), int):
                names = [str(i) for i in range(x["num_classes"])]
            return list(names) if isinstance(names, list) else None
        return [] if x.get("_type") == "Value" else None

    kind = f.get("_type")
    if kind in ("List", "Sequence", "LargeList"):
        inner = f.get("feature")
        got = names_of(inner)
        if got is not None:
            return got
        if isinstance(inner, dict) and "_type" not in inner:        # a record per label
            field = next((k for k in LIST_LABEL_FIELDS if k in inner), None)
            return names_of(inner[field]) if field else None
        return None
    if kind is None:                                                  # a struct of lists
        field = next((k for k in LIST_LABEL_FIELDS if isinstance(f.get(k), dict)
                      and f[k].get("_type") in ("List", "Sequence", "LargeList")), None)
        return names_of(f[field].get("feature")) if field else None
    return None


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
    """(image column, label column or None, its ClassLabel names or None) of a table source.

    Detection goes by feature type first (`Image`; `ClassLabel`, then a list of labels), then by
    structure (`image_like`: struct columns holding image bytes), then by conventional names, and
    takes a column only when it is the one candidate of the first kind that has any: never the
    first of several by position (a segmentation pool's `mask` and `image`, CIFAR-100's
    `fine_label` and `coarse_label`). An image column (an `Image` feature, or image bytes) is never
    a label column, whatever its name (segments.ai pools name the mask `label`).
    `kinds`: see `feature_kinds`. Raises SourceNotFound for a named column that is not there, and
    NegmineError (one line naming the candidates and the option that chooses) for no image column,
    several, several label columns, or an image column named as the label."""
    kinds = kinds or {}
    images = [n for n in names if kinds.get(n, ("",))[0] == "Image" or n in image_like]

    def check(col: str, what: str) -> str:
        if col not in names:
            raise SourceNotFound(f"{where} has no {what} column {col!r}; columns: {', '.join(names)}")
        return col

    def not_labels() -> str:
        wrong = image_columns_named_as_labels(kinds, names, image_like)
        return (f"; {', '.join(repr(n) for n in wrong)} {'holds' if len(wrong) == 1 else 'hold'} images "
                "(a segmentation map?), not class labels") if wrong else ""

    if image_column:
        image = check(image_column, "image")
    else:
        typed = [n for n in names if kinds.get(n, ("",))[0] == "Image"]
        guess = (typed or [n for n in names if n in image_like]
                 or [n for n in names if n.lower() in _IMAGE_NAMES])
        if not guess:
            raise SourceNotFound(f"{where} has no image column (columns: {', '.join(names)}); "
                                 "name one with --image-column")
        image = one_of(guess, "image", "--image-column", "image", where, not_labels())
    if label_column and label_column.lower() == "none":
        return image, None, None
    if label_column:
        label = check(label_column, "label")
        if label in images:
            raise NegmineError(f"{where}: column {label!r} holds images, not class labels; name the label "
                               "column with --label-column (or ?label=), or --label-column none for no labels")
    else:
        typed = ([n for n in names if kinds.get(n, ("",))[0] == "ClassLabel"]
                 or [n for n in names if kinds.get(n, ("",))[0] == "LabelList"])
        guess = typed or [n for n in names if n.lower() in _LABEL_NAMES and n != image and n not in images]
        label = one_of(guess, "label", "--label-column", "label", where) if guess else None
    class_names = kinds[label][1] if label in kinds else None
    return image, label, class_names


def image_columns_named_as_labels(kinds: dict | None, names: list[str], image_like: set[str]) -> list[str]:
    """Image columns (an `Image` feature, or image bytes) with a label column's name: segments.ai's
    `label` map. They are never read as labels; the plan lists them so an unlabelled pool says why."""
    kinds = kinds or {}
    return [n for n in names if (kinds.get(n, ("",))[0] == "Image" or n in image_like) and n.lower() in _LABEL_NAMES]


def one_of(candidates: Sequence[str], what: str, option: str, query: str, where: str, more: str = "") -> str:
    """The one candidate column (or key) for `what`; NegmineError naming them all and the option
    (and the per-source query `?query=`) that chooses when there are several. Position in a schema
    says nothing about which is meant, so several are never resolved by order."""
    if len(candidates) == 1:
        return candidates[0]
    listed = ", ".join(repr(c) for c in candidates)
    raise NegmineError(f"{where} has {len(candidates)} {what} columns ({listed}){more}; say which with "
                       f"{option} NAME (or ?{query}=NAME on the source)")


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


def card_features(card_text: str | None, config: str | None = None):
    """The card's declared `datasets.Features`, or None. With `config` (a name from the card's
    `configs`), that config's alone, as `datasets.load_dataset_builder` takes them: its `configs`
    entry's `features`, else the `dataset_info` of that config name; never another config's."""
    data = card_data(card_text)
    if config is not None:
        entry = next((c for c in data.get("configs") or [] if isinstance(c, dict)
                      and c.get("config_name", "default") == config), None)
        if entry and entry.get("features"):
            try:
                from datasets import Features

                return Features._from_yaml_list(entry["features"])
            except Exception:
                return None
    if not data.get("dataset_info"):            # nothing to read: spare the `datasets` import
        return None
    try:
        from datasets.info import DatasetInfosDict

        infos = DatasetInfosDict.from_dataset_card_data(data)
        if config is not None:
            info = infos.get(config)
            return info.features if info else None
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
    from negmine.outputs.naming import safe_name

    return safe_name(name, max_len=24)


def narrow_codes(codes: np.ndarray) -> np.ndarray:
    """Class codes as int16 when the classes fit (ImageNet's 1k or 21k do): the array lives through
    the whole run, one entry per pool row."""
    if codes.dtype != np.int16 and len(codes) and int(codes.max()) < 2**15 - 1:
        return codes.astype(np.int16)
    return codes
