"""Class labels as the sources hold them: one class code per row, or a label list per row
(multi-label pools), built from label columns, metadata files or folder names.

Codes are int32 (int16 once the classes fit, `narrow_codes`) with -1 for "no label"; a label list
is CSR-like (`LabelLists`: offsets into one flat array of codes), so a million-row pool costs a few
MB, not a Python list per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from negmine.errors import NegmineError

# the field of a struct (an object, an Open Images label) that holds its class, and its confidence
LIST_LABEL_FIELDS = ("label", "category", "category_id", "categories", "class", "labels", "name", "tag")
CONFIDENCE_FIELDS = ("confidence", "score")


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


def class_counts(codes: np.ndarray, k: int, chunk: int = 1 << 16) -> np.ndarray:
    """Rows per class (codes -1 not counted), a chunk at a time: np.bincount would first turn a
    million int32 codes into int64 (and a mask copy before that)."""
    counts = np.zeros(k + 1, np.int64)
    for a in range(0, len(codes), chunk):
        counts += np.bincount(codes[a:a + chunk] + 1, minlength=k + 1)[:k + 1]
    return counts[1:]


def narrow_codes(codes: np.ndarray) -> np.ndarray:
    """Class codes as int16 when the classes fit (ImageNet's 1k or 21k do): the array lives through
    the whole run, one entry per pool row."""
    if codes.dtype != np.int16 and len(codes) and int(codes.max()) < 2**15 - 1:
        return codes.astype(np.int16)
    return codes
