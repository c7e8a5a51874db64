"""Source adapters: every pool of candidate negatives behind one small interface.

A source exposes its class labels up front (cheap: a label column or a file list) so the draw can
be planned over the whole pool, and then reads the bytes of just the rows that were drawn.
Adapters: parquet shards (Hub repo online or cached, or a local folder in Hub layout), a
``save_to_disk`` folder, and a folder of image files.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np

from negmine import hub, pages
from negmine.errors import NegmineError, SourceNotFound
from negmine.presets import DEFAULT_PRESET, PRESETS

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm",
                    ".jfif", ".avif", ".heic", ".mpo"}
_LABEL_NAMES = ("label", "labels", "class", "fine_label", "category", "wnid", "synset")
_IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "picture")
_WNID = re.compile(r"^n\d{8}$")
_GENERIC_FOLDERS = {"images", "image", "imgs", "img", "photos", "pictures", "pics", "jpg", "jpeg", "jpegimages"}


@dataclass(frozen=True)
class SourceSpec:
    """``--source LOCATION[?split=S&weight=W&image=COL&label=COL]``."""

    location: str
    split: str | None = None
    weight: float = 1.0
    image_column: str | None = None
    label_column: str | None = None

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        location, _, query = text.partition("?")
        opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        unknown = set(opts) - {"split", "weight", "image", "label"}
        if unknown:
            raise NegmineError(f"unknown source option(s) {sorted(unknown)} in {text!r}; "
                               "known: split, weight, image, label")
        try:
            weight = float(opts.get("weight", 1.0))
        except ValueError:
            raise NegmineError(f"source weight must be a number, got {opts['weight']!r}") from None
        if not weight > 0:
            raise NegmineError(f"source weight must be > 0, got {weight}")
        if not location:
            raise NegmineError(f"empty source location in {text!r}")
        return cls(location, opts.get("split"), weight, opts.get("image"), opts.get("label"))


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
                  ) -> Iterator[tuple[list[Item], "PageRead | None"]]:
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
        return {"id": self.id, "revision": self.revision, "split": self.split, "licence": self.licence,
                "rows": len(self), "classes": len(self.classes), "label_kind": self.label_kind,
                "weight": self.weight}


def _codes_from_values(values, names: list[str] | None) -> tuple[list[str], np.ndarray]:
    """Integer ClassLabel codes keep their names; anything else becomes sorted string classes.
    `values`: a list, or a pyarrow array/chunked array."""
    import pyarrow as pa

    arr = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(list(values))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks else pa.array([], pa.string())
    vocab: dict[str, int] = {}
    codes = _local_codes(arr, names, vocab)
    return (list(names), codes) if names is not None and not vocab else _sorted_classes(vocab, codes)


def _sorted_classes(vocab: dict[str, int], codes: np.ndarray) -> tuple[list[str], np.ndarray]:
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


def _local_codes(column, names: list[str] | None, vocab: dict[str, int]) -> np.ndarray:
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


def _feature_kinds(features) -> dict[str, tuple[str, list[str] | None]]:
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


def _schema_kinds(schema) -> dict | None:
    """Feature kinds from the `huggingface` metadata of a parquet schema, without importing
    `datasets` (a second of start-up); None when absent or not understood."""
    if not schema.metadata or b"huggingface" not in schema.metadata:
        return None
    try:
        features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
        return _feature_kinds(features) if isinstance(features, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def _pick_columns(kinds: dict | None, names: list[str], image_column: str | None, label_column: str | None,
                  where: str, image_like: set[str]) -> tuple[str, str | None, list[str] | None]:
    """Find the image and label columns by feature type first, then by conventional names.
    `kinds`: see `_feature_kinds`."""
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


def _card_data(card_text: str | None) -> dict:
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


def _card_licence(card_text: str | None) -> str | None:
    lic = _card_data(card_text).get("license")
    if isinstance(lic, list):
        lic = ", ".join(map(str, lic))
    return str(lic) if lic else None


def _card_features(card_text: str | None):
    data = _card_data(card_text)
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


# what `datasets` checks first: data/{split}-00000-of-00001*.* (push_to_hub's layout)
_SHARDED = re.compile(r"(?P<split>\w+(?:\.\w+)*)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]*")
_DEFAULT_SPLITS = ("train", "validation", "test")


def _sharded_parquet(base: str) -> dict[str, list[str]] | None:
    """Splits of a local folder in push_to_hub layout, all parquet, found as `datasets` finds them
    but without importing it; None for anything else (then `datasets` decides)."""
    data = os.path.join(base, "data")
    if "://" in base or not os.path.isdir(data):
        return None
    found: dict[str, list[str]] = {}
    for name in sorted(os.listdir(data)):
        path = os.path.join(data, name)
        if name.startswith(".") or not os.path.isfile(path):
            continue
        m = _SHARDED.fullmatch(name)
        if m is None:
            if re.fullmatch(r".*-[0-9]{5}-of-[0-9]{5}.*\..*", name):
                return None                      # a shard name datasets would judge: let it
            continue
        if not name.endswith(".parquet"):
            return None
        found.setdefault(m["split"], []).append(os.path.abspath(path))
    if not found:
        return None
    order = [s for s in _DEFAULT_SPLITS if s in found] + sorted(set(found) - set(_DEFAULT_SPLITS))
    return {s: found[s] for s in order}


def _split_files(base: str, split: str | None, where: str) -> tuple[str, list[str]]:
    """The data files of one split, found by the same conventions the Hub and `datasets` use."""
    files = _sharded_parquet(base)
    if files is None:
        from datasets.data_files import DataFilesDict, get_data_patterns

        try:
            patterns = get_data_patterns(base)
            files = DataFilesDict.from_patterns(patterns, base_path=base)
        except Exception as exc:
            raise SourceNotFound(f"no data files found in {where}: {exc}".splitlines()[0]) from None
    available = list(files)
    if split is None:
        split = "train" if "train" in files else available[0]
    if split not in files:
        raise SourceNotFound(f"{where} has no split {split!r}; splits: {', '.join(available)}")
    return split, sorted(str(f) for f in files[split])


class ParquetSource(Source):
    """Parquet shards on any fsspec file system: a label-column read to plan, row-group reads to fetch."""

    def __init__(self, *, id: str, short: str, revision: str | None, licence: str | None, base: str,
                 files: list[str], split: str, spec: SourceSpec, card_text: str | None = None,
                 progress: bool = True):
        from fsspec.core import url_to_fs

        super().__init__(id=id, short=short, revision=revision, licence=licence, weight=spec.weight,
                         split=split)
        self.base = base.rstrip("/")
        self.files = files
        self._fs, _ = url_to_fs(files[0])
        self._paths = [url_to_fs(f)[1] for f in files]
        self._remote = "file" not in (self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,))
        self._meta: dict[int, object] = {}
        self._why_whole: dict[int, str] = {}     # shard -> why it is read a row group at a time
        schema = self._with_file(0, lambda pf: pf.schema_arrow)
        kinds = _schema_kinds(schema)
        if kinds is None and schema.metadata and b"huggingface" in schema.metadata:
            import datasets

            kinds = _feature_kinds(datasets.Features.from_arrow_schema(schema))
        if not kinds and card_text:
            kinds = _feature_kinds(_card_features(card_text))
        structs = {n for n in schema.names if _is_image_struct(schema.field(n).type)}
        self.image_column, self.label_column, names = _pick_columns(
            kinds, list(schema.names), spec.image_column, spec.label_column, id, structs)
        self._image_struct = self.image_column in structs
        cached = self._cache_path()
        if cached is not None and cached.is_file():
            self._load_index(cached)
        else:
            self._build_index(names, progress)
            if cached is not None:
                self._save_index(cached)

    def _build_index(self, names: list[str] | None, progress: bool) -> None:
        """Row counts per row group, and the label column as int codes, one row group at a time
        (a million-row pool costs a few MB, never a Python object per row)."""
        from negmine.progress import bar

        self._row_groups: list[np.ndarray] = []   # per file: cumulative row counts per row group
        starts, parts = [0], []
        vocab: dict[str, int] = {}

        self._group_bytes: list[np.ndarray] = []  # per file: compressed bytes of the image column per row group
        self._page_tables: list[pages.PageTable | None] = []

        def index_one(pf):
            md = pf.metadata
            groups = np.cumsum([0] + [md.row_group(i).num_rows for i in range(md.num_row_groups)])
            leaves = [k for k in range(md.num_columns)
                      if md.schema.column(k).path.split(".")[0] == self.image_column]
            sizes = np.array([sum(md.row_group(g).column(k).total_compressed_size for k in leaves)
                              for g in range(md.num_row_groups)], dtype=np.int64)
            if not self.label_column:
                return groups, sizes, []
            codes = np.empty(int(groups[-1]), np.int32)     # filled in place: no per-group arrays kept
            for g in range(md.num_row_groups):
                codes[groups[g]:groups[g + 1]] = _local_codes(
                    pf.read_row_group(g, columns=[self.label_column]).column(0), names, vocab)
            return groups, sizes, [codes]

        for i in bar(range(len(self._paths)), desc=f"indexing {self.short}", unit="shard",
                      show=progress, leave=False):
            groups, sizes, file_parts = self._with_file(i, index_one)
            self._row_groups.append(groups)
            self._group_bytes.append(sizes)
            parts.extend(file_parts)
            starts.append(starts[-1] + int(groups[-1]))
            self._page_tables.append(self._page_table(i))
        self._starts = np.asarray(starts, dtype=np.int64)
        import pyarrow as pa

        pa.default_memory_pool().release_unused()   # label-column buffers: jemalloc would keep them
        if not self.label_column:
            self.codes = np.full(int(self._starts[-1]), -1, dtype=np.int32)
            return
        codes = (parts[0] if len(parts) == 1 else np.concatenate(parts)) if parts else np.zeros(0, np.int32)
        del parts
        if names is not None:
            self.classes, self.codes = list(names), codes
            return
        self.classes, self.codes = _sorted_classes(vocab, codes)

    def _cache_path(self) -> Path | None:
        """Hub revisions are immutable commits, so their index can be kept; local folders can change."""
        if not self.revision:
            return None
        from negmine.cache import cache_dir

        key = json.dumps(["index-v3", self.id, self.revision, [self._relative(i) for i in range(len(self.files))],
                          self.image_column, self.label_column])
        return cache_dir("index") / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npz")

    def _save_index(self, path: Path) -> None:
        tables = self._page_tables
        paged = {name: np.concatenate([getattr(t, name) for t in tables if t is not None] or [np.zeros(0, np.int64)])
                 for name in pages.PageTable.ARRAYS}
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, codes=self.codes, starts=self._starts, classes=np.array(json.dumps(self.classes)),
                 groups=np.concatenate(self._row_groups), group_sizes=[len(g) for g in self._row_groups],
                 group_bytes=np.concatenate(self._group_bytes),
                 page_meta=np.array(json.dumps([None if t is None else [t.path, t.max_def] for t in tables])),
                 page_counts=np.array([[len(getattr(t, n)) if t is not None else 0 for n in pages.PageTable.ARRAYS]
                                       for t in tables], np.int64).reshape(len(tables), -1),
                 **{f"page_{name}": a for name, a in paged.items()})
        os.replace(tmp, path)

    def _load_index(self, path: Path) -> None:
        with np.load(path) as z:
            self.codes, self._starts = z["codes"], z["starts"]
            self.classes = json.loads(str(z["classes"]))
            self._row_groups = np.split(z["groups"], np.cumsum(z["group_sizes"])[:-1])
            self._group_bytes = np.split(z["group_bytes"], np.cumsum([len(g) - 1 for g in self._row_groups])[:-1])
            counts = z["page_counts"]
            split = {n: np.split(z[f"page_{n}"], np.cumsum(counts[:, k])[:-1]) if len(counts) else []
                     for k, n in enumerate(pages.PageTable.ARRAYS)}
            self._page_tables = [None if m is None else pages.PageTable(m[0], m[1], *(split[n][i] for n in pages.PageTable.ARRAYS))
                                 for i, m in enumerate(json.loads(str(z["page_meta"])))]

    def _blocks_of(self, fi: int) -> tuple[np.ndarray, np.ndarray]:
        """(first row of each unit of reading, then the row count; image bytes of each unit) of shard
        i: its pages when it has a page index, else its row groups."""
        t = self._page_tables[fi]
        if t is not None:
            return t.start, t.size
        return self._row_groups[fi], self._group_bytes[fi]

    def blocks(self) -> tuple[np.ndarray, np.ndarray]:
        """(first row of every block, rows per block), in row order: the units this source reads at
        once (parquet pages or row groups), for a draw that takes several rows of each block it
        reads. Per block, not per row: the pool may have millions of rows."""
        starts, sizes = [], []
        for fi in range(len(self._paths)):
            bounds, _ = self._blocks_of(fi)
            starts.append(np.asarray(bounds[:-1], np.int64) + int(self._starts[fi]))
            sizes.append(np.diff(bounds))
        if not starts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(starts), np.concatenate(sizes)

    def read_estimate(self, rows: Sequence[int]) -> tuple[int, int]:
        """(bytes of image data in the pages or row groups holding `rows`, bytes of image data in the
        pool): what reading these rows costs."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        total = int(sum(int(g.sum()) for g in self._group_bytes))
        if not len(rows):
            return 0, total
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        touched = 0
        for fi in np.unique(file_of).tolist():
            local = rows[file_of == fi] - self._starts[fi]
            bounds, sizes = self._blocks_of(fi)
            touched += int(sizes[np.unique(np.searchsorted(bounds, local, side="right") - 1)].sum())
        return touched, total

    def _with_file(self, i: int, fn):
        """Run fn(ParquetFile) on shard i; remote reads are retried, failures become one-line errors."""
        import pyarrow.parquet as pq

        def once():
            with self._fs.open(self._paths[i], "rb") as f:
                # no pre-buffering: pages are read as the batches need them
                pf = pq.ParquetFile(f, metadata=self._meta.get(i), pre_buffer=False, buffer_size=1 << 20)
                self._meta[i] = pf.metadata
                return fn(pf)

        return self._guarded(i, once)

    def _ranges(self, i: int, ranges: list[tuple[int, int | None]]) -> list[bytes]:
        """Byte ranges of shard i (negative start: from the end), exactly those bytes: no read-ahead
        cache, so a remote file downloads only the pages asked for."""
        return self._with_ranges(i, lambda read: [read(a, b) for a, b in ranges])

    def _with_ranges(self, i: int, fn):
        """fn(read) on shard i opened once without read-ahead, `read(start, end)` taking negative
        offsets from the end (end None: to the end); retried and mapped like `_with_file`."""
        def once():
            with self._fs.open(self._paths[i], "rb", cache_type="none") as f:
                size = f.size if getattr(f, "size", None) is not None else self._fs.size(self._paths[i])

                def read(start: int, end: int | None) -> bytes:
                    start = size + start if start < 0 else start
                    end = size if end is None else (size + end if end < 0 else end)
                    f.seek(start)
                    return f.read(end - start)

                return fn(read)

        return self._guarded(i, once)

    def _guarded(self, i: int, once):
        try:
            return hub.retrying(once) if self._remote else once()
        except NegmineError:
            raise
        except Exception as exc:
            if self._remote and (hub._transient(exc) or isinstance(exc, OSError)):
                raise hub.unavailable(self.id, exc) from None
            raise SourceNotFound(f"cannot read {self._relative(i)} of {self.id}: {exc}".splitlines()[0]) from None

    def _page_table(self, i: int) -> "pages.PageTable | None":
        """Shard i's page table of the image bytes, or None (no page index, or a layout the page
        reader does not decode): then rows are read a row group at a time."""
        md = self._meta[i]
        path = [self.image_column, "bytes"] if self._image_struct else [self.image_column]
        leaf = [k for k in range(md.num_columns) if md.schema.column(k).path == ".".join(path)]
        if len(leaf) != 1 or md.schema.column(leaf[0]).max_repetition_level:
            self._why_whole[i] = "a nested image column"
            return None
        def build(read):                      # Unsupported is an answer here, not a read error
            try:
                return pages.page_table(read, path, md.schema.column(leaf[0]).max_definition_level)
            except pages.Unsupported as exc:
                return exc

        table = self._with_ranges(i, build)
        if isinstance(table, pages.Unsupported):
            self._why_whole[i] = str(table)
            return None
        return table

    def pages_unsupported(self, path: str, why: str) -> None:
        """A worker could not decode this shard's pages: read it a row group at a time from now on."""
        fi = self._paths.index(path)
        self._page_tables[fi] = None
        self._why_whole[fi] = why

    def read_note(self) -> str | None:
        """One line when some shards cannot be read page by page (and so cost whole row groups)."""
        whole = [i for i, t in enumerate(self._page_tables) if t is None]
        if not whole:
            return None
        why = sorted({self._why_whole.get(i, "no page index, or a layout the page reader lacks") for i in whole})
        return (f"{self.id}: {len(whole)} of {len(self._page_tables)} shards are read a row group at a time "
                f"({'; '.join(why)}), so draws read more than the pages they need")

    def _relative(self, i: int) -> str:
        f = self.files[i]
        return f[len(self.base) + 1:] if f.startswith(self.base + "/") else f

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        for fi in np.unique(file_of).tolist():
            local = rows[file_of == fi] - self._starts[fi]
            for k, data in self._read_file(fi, local):
                origin = {"file": self._relative(fi), "row": int(k)}
                row = int(k + self._starts[fi])
                if not data:
                    yield Item(row, None, origin, "row has no image bytes")
                else:
                    yield Item(row, bytes(data), origin)

    def read_jobs(self, rows: Sequence[int], max_items: int = 32, max_bytes: int = 2 << 20
                  ) -> Iterator[tuple[list[Item], "PageRead | None"]]:
        """Local shards with a page index are read by the workers, a run of pages each (the main
        process would otherwise read every image and pickle it over a pipe); the rest here."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        for fi in np.unique(file_of).tolist():
            part = rows[file_of == fi]
            table = self._page_tables[fi]
            if table is None or self._remote:
                yield from super().read_jobs(part, max_items, max_bytes)
                continue
            rel, base = self._relative(fi), int(self._starts[fi])
            for t, local in pages.plan_reads(table, part - base, 1 << 20):
                items = [Item(k + base, None, {"file": rel, "row": k}) for k in local.tolist()]
                yield items, PageRead(self._paths[fi], t, local, self.image_column, self._row_groups[fi])

    def _read_file(self, fi: int, local: np.ndarray) -> list[tuple[int, bytes | None]]:
        """(file-local row, image bytes) of some rows of shard fi: the rows' pages when the shard has
        a page index, else whole row groups (read a batch at a time)."""
        table = self._page_tables[fi]
        if table is not None:
            try:
                # remote: few large requests (each costs a round trip); local: small reads, less memory
                return pages.read_rows(table, local, lambda ranges: self._ranges(fi, ranges),
                                       max_bytes=(16 << 20) if self._remote else (1 << 20))
            except pages.Unsupported as exc:
                self._page_tables[fi] = None     # e.g. an encoding the page reader lacks
                self._why_whole[fi] = str(exc)
        return _take_rows(self._row_groups[fi], local,
                          lambda g, wanted: self._with_file(fi, lambda pf: _take(pf, self.image_column, g, wanted)))


def _take(pf, column: str, group: int, wanted: np.ndarray, batch: int = 512) -> list[tuple[int, bytes | None]]:
    """The image bytes of some rows of one row group, decoded a batch at a time: memory stays at
    a batch, not a row group (row groups of Hub shards reach 100 MB), and reading stops after
    the last wanted row."""
    out, start, last = [], 0, int(wanted.max())
    for rb in pf.iter_batches(batch_size=batch, row_groups=[group], columns=[column]):
        end = start + rb.num_rows
        col = rb.column(0)
        for k in wanted[(wanted >= start) & (wanted < end)].tolist():
            value = col[k - start].as_py()
            data = value.get("bytes") if isinstance(value, dict) else value
            out.append((k, bytes(data) if data else None))
        start = end
        if start > last:
            break
    return out


def _take_rows(row_groups: np.ndarray, rows: np.ndarray, take) -> list[tuple[int, bytes | None]]:
    """(row, bytes) of some file-local rows, a row group at a time: `take(group, wanted)` reads the
    wanted rows of one group (numbered within it), as `_take` does."""
    out = []
    groups = np.searchsorted(row_groups, rows, side="right") - 1
    for g in np.unique(groups).tolist():
        base = int(row_groups[g])
        out.extend((k + base, v) for k, v in take(g, (rows[groups == g] - base).astype(np.int64)))
    return out


@dataclass
class PageRead:
    """Some rows of a local parquet shard, read by a worker process from the pages that hold them."""
    path: str
    table: "pages.PageTable"         # just those pages
    rows: np.ndarray                 # file-local, sorted
    column: str
    row_groups: np.ndarray           # first row of each row group, then the row count

    def read(self) -> list[bytes | None]:
        return self.read_noted()[0]

    def read_noted(self) -> tuple[list[bytes | None], str | None]:
        """The rows' bytes, and why the pages could not be decoded when whole row groups were read
        instead (the main process then stops handing out page reads of this shard, and says so)."""
        t = self.table
        with open(self.path, "rb") as f:
            def fetch(ranges):
                return [os.pread(f.fileno(), b - a, a) for a, b in ranges]

            try:
                return pages.decode_read(t, self.rows, fetch([(int(t.offset[0]), int(t.offset[-1] + t.size[-1]))])[0],
                                         fetch), None
            except pages.Unsupported as exc:  # an encoding the page reader lacks: whole row groups
                import pyarrow.parquet as pq

                pf = pq.ParquetFile(f)
                got = dict(_take_rows(self.row_groups, self.rows, lambda g, wanted: _take(pf, self.column, g, wanted)))
                return [got.get(k) for k in self.rows.tolist()], str(exc)


def _is_image_struct(t) -> bool:
    import pyarrow as pa

    return pa.types.is_struct(t) and t.get_field_index("bytes") >= 0


class DiskSource(Source):
    """A ``Dataset.save_to_disk`` folder (memory-mapped arrow), read through `datasets` itself."""

    def __init__(self, path: Path, spec: SourceSpec):
        import datasets

        try:
            ds = datasets.load_from_disk(str(path))
        except Exception as exc:
            raise SourceNotFound(f"cannot load save_to_disk folder {path}: {exc}".splitlines()[0]) from None
        split = spec.split
        if isinstance(ds, datasets.DatasetDict):
            split = split or ("train" if "train" in ds else next(iter(ds)))
            if split not in ds:
                raise SourceNotFound(f"{path} has no split {split!r}; splits: {', '.join(ds)}")
            ds = ds[split]
        super().__init__(id=str(path), short=_short(path.name), revision=None,
                         licence=ds.info.license or None, weight=spec.weight, split=split)
        structs = {n for n in ds.column_names if _is_image_struct(ds.data.schema.field(n).type)}
        self.image_column, self.label_column, names = _pick_columns(
            _feature_kinds(ds.features), ds.column_names, spec.image_column, spec.label_column, str(path), structs)
        self._table = ds.with_format("arrow")
        if self.label_column:
            self.classes, self.codes = _codes_from_values(self._table[self.label_column], names)
        else:
            self.codes = np.full(len(ds), -1, dtype=np.int32)

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        rows = sorted(set(int(r) for r in rows))
        col = self._table.select_columns([self.image_column])[rows].column(0)
        for r, value in zip(rows, col.to_pylist()):
            data = value.get("bytes") if isinstance(value, dict) else value
            if not data and isinstance(value, dict) and value.get("path") and os.path.isfile(value["path"]):
                data = Path(value["path"]).read_bytes()
            yield Item(r, data or None, {"row": r}, None if data else "row has no image bytes")


class FolderSource(Source):
    """Image files under a folder, recursively; the class of a file is its parent folder's name."""

    def __init__(self, root: str, spec: SourceSpec, *, id: str | None = None, revision: str | None = None,
                 licence: str | None = None, follow_symlinks: bool = False):
        from fsspec.core import url_to_fs

        self._fs, self._root = url_to_fs(root)
        self._root = self._root.rstrip("/")
        protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        self._remote = "file" not in protocols
        super().__init__(id=id or root, short=_short(Path(self._root).name), revision=revision,
                         licence=licence, weight=spec.weight, split=spec.split)
        from negmine.images import is_image_file   # by name, or locally by content (.jpe, no extension)
        files = sorted(p for p in self._fs.find(self._root)
                       if not _hidden(p, self._root) and is_image_file(p, sniff=not self._remote))
        if not follow_symlinks and not self._remote:
            # A link out of the folder would let a pool read files its owner never meant to share.
            real_root = os.path.realpath(self._root)
            files = [p for p in files if os.path.realpath(p).startswith(real_root + os.sep)]
        self.paths = [p[len(self._root) + 1:] for p in files]
        labels = [str(Path(p).parent) if str(Path(p).parent) != "." else None for p in self.paths]
        # a folder called "images" says nothing about what is in it: no label rather than a fake class
        labels = [Path(lab).name if lab and Path(lab).name.lower() not in _GENERIC_FOLDERS else None
                  for lab in labels]
        self.classes, self.codes = _codes_from_values(labels, None)

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        for r in sorted(set(int(r) for r in rows)):
            rel = self.paths[r]
            def once():
                with self._fs.open(f"{self._root}/{rel}", "rb") as f:
                    return f.read()

            try:
                data = hub.retrying(once) if self._remote else once()
            except OSError as exc:
                yield Item(r, None, {"file": rel}, f"cannot read file: {exc}")
                continue
            except Exception as exc:
                if hub._transient(exc):
                    raise hub.unavailable(self.id, exc) from None
                raise
            yield Item(r, data, {"file": rel})


def _hidden(path: str, root: str) -> bool:
    return any(part.startswith(".") for part in Path(path[len(root) + 1:]).parts)


def _short(name: str) -> str:
    from negmine.naming import safe_name

    return safe_name(name, max_len=24)


def _is_disk_dataset(path: Path) -> bool:
    return (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file()


def open_source(spec: SourceSpec, progress: bool = True, follow_symlinks: bool = False) -> Source:
    """Resolve a spec: a preset name, a local folder, or a Hub repo id."""
    location = spec.location
    if location in PRESETS:
        preset = PRESETS[location]
        spec = SourceSpec(preset.repo, spec.split or preset.split, spec.weight, spec.image_column,
                          spec.label_column)
        return _open_hub(spec, *hub.parse_repo(preset.repo), progress=progress)
    path = Path(location).expanduser()
    if path.exists():
        if not path.is_dir():
            raise SourceNotFound(f"source {location} is a file; give a folder, a Hub repo or a preset")
        path = path.resolve()
        if _is_disk_dataset(path):
            return DiskSource(path, spec)
        if any(path.rglob("*.parquet")):
            split, files = _split_files(str(path), spec.split, str(path))
            card = (path / "README.md").read_text(encoding="utf-8") if (path / "README.md").is_file() else None
            return ParquetSource(id=str(path), short=_short(path.name), revision=None, licence=_card_licence(card),
                                     base=str(path), files=files, split=split, spec=spec, card_text=card,
                                 progress=progress)
        source = FolderSource(str(path), spec, follow_symlinks=follow_symlinks)
        if not len(source):
            raise SourceNotFound(f"source folder {path} holds no images")
        return source
    parsed = hub.parse_repo(location)
    if parsed is None or location.startswith((".", "/", "~")):
        raise SourceNotFound(f"source {location!r} is not a folder, a preset ({', '.join(PRESETS)}) "
                             "or a Hub dataset repo (OWNER/NAME)")
    return _open_hub(spec, *parsed, progress=progress)


def _open_hub(spec: SourceSpec, repo_id: str, revision: str | None, progress: bool = True) -> Source:
    repo = hub.resolve(repo_id, revision)
    where = f"{repo_id}@{repo.sha[:8]}"
    licence = _card_licence(repo.card_text)
    split, files = _split_files(repo.base, spec.split, where)
    if all(f.endswith(".parquet") for f in files):
        return ParquetSource(id=repo_id, short=_short(repo_id.split("/")[-1]), revision=repo.sha,
                             licence=licence, base=repo.base, files=files, split=split, spec=spec,
                             card_text=repo.card_text, progress=progress)
    if all(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files):
        # An imagefolder repo: the split's common folder is the root, classes are sub-folders.
        root = os.path.commonpath([f.split("://", 1)[-1] for f in files])
        prefix = repo.base.split("://", 1)[0] + "://" if "://" in repo.base else ""
        return FolderSource(prefix + root, SourceSpec(spec.location, split, spec.weight), id=repo_id,
                            revision=repo.sha, licence=licence)
    kinds = sorted({Path(f).suffix for f in files})
    raise SourceNotFound(f"{where} split {split!r} holds {', '.join(kinds)} files; negmine reads parquet "
                         "shards or image files")


def open_sources(specs: Iterable[SourceSpec], progress: bool = True, follow_symlinks: bool = False) -> list[Source]:
    specs = list(specs) or [SourceSpec(DEFAULT_PRESET)]
    sources = [open_source(s, progress, follow_symlinks) for s in specs]
    for src in sources:
        src.codes = narrow_codes(src.codes)
    return sources


def narrow_codes(codes: np.ndarray) -> np.ndarray:
    """Class codes as int16 when the classes fit (ImageNet's 1k or 21k do): the array lives through
    the whole run, one entry per pool row."""
    if codes.dtype != np.int16 and len(codes) and int(codes.max()) < 2**15 - 1:
        return codes.astype(np.int16)
    return codes
