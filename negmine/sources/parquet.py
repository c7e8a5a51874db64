"""Parquet shards on any fsspec file system (a local folder in Hub layout, a cached or online Hub
repo): the label column (or the footer's statistics) to plan, then only the pages or row groups
holding the drawn rows.

Size: one class, `ParquetSource`, whose index (built, cached), estimates and reads all work on the
same per-shard state (row offsets, footers, page tables, the file system); the stateless parts
are already apart (`parquet_reads` for row reads, `pages` for page indexes, `remote` for ranges).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from negmine.errors import NegmineError, SourceNotFound
from negmine.sources import hub, image_paths, pages, remote
from negmine.sources.base import Item, Source, SourceSpec
from negmine.sources.cards import card_features
from negmine.sources.columns import (feature_kinds, has_class_ids, image_columns_named_as_labels, is_image_struct,
                                     pick_columns, schema_kinds)
from negmine.sources.labels import LabelListBuilder, is_label_list, local_codes, sorted_classes
from negmine.sources.rowlicence import LicenceCodes, pick_attribution_columns, read_attribution
from negmine.sources.text import TEXT_NAMES, is_text_type, noun_lists, pick_text_columns
from negmine.sources.parquet_reads import (UNKNOWN, PageRead, chunk_span, code_of, single_value, take_rows,
                                           take_rows_of_group)


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
        self.is_remote = "file" not in (self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,))
        self._meta: dict[int, object] = {}
        self._why_whole: dict[int, str] = {}     # shard -> why it is read a row group at a time
        # Hub files are read by exact ranges (remote.RangeFile), never through fsspec's read-ahead.
        self._hf = files[0].startswith("hf://")
        self._range_files: dict[int, remote.RangeFile] = {}
        self.downloads = self._hf               # every byte read is a download: the draw reads no spare
        self._footer_len: dict[int, int] = {}    # Hub shards: footer bytes and file size, for download estimates
        self._file_size: dict[int, int] = {}
        schema = self._with_file(0, lambda pf: pf.schema_arrow)
        kinds = schema_kinds(schema)
        if kinds is None and schema.metadata and b"huggingface" in schema.metadata:
            import datasets

            kinds = feature_kinds(datasets.Features.from_arrow_schema(schema))
        if not kinds and card_text:
            kinds = feature_kinds(card_features(card_text, spec.config))
        structs = {n for n in schema.names if is_image_struct(schema.field(n).type)}
        self.image_column, self.label_column, names = pick_columns(
            kinds, list(schema.names), spec.image_column, spec.label_column, id, structs)
        self.not_labels = image_columns_named_as_labels(kinds, list(schema.names), structs)
        self._image_struct = self.image_column in structs
        found = schema.field(self.label_column).type if self.label_column else None
        if not spec.label_column and found is not None and is_text_type(found) and (
                self.label_column.lower() in TEXT_NAMES
                or self.label_column in [c.strip() for c in (spec.text_column or "").split(",")]):
            # `tags` found by name ("dog, beach, sunset", or a list of tags or captions) is text, not
            # one class per distinct string (only --label-column tags reads it as labels); and a
            # column named by --text-column is text
            self.label_column = None
            names = None
        self.class_ids = has_class_ids(kinds, self.label_column, schema.field(self.label_column).type
                                       if self.label_column else None, names)
        # no label column: a caption, title or tags column is read as the nouns it names (sources.text)
        self.text_columns = pick_text_columns(schema, spec.text_column, self.label_column, id)
        # per-row licence and credit (sources.rowlicence): the licence read to plan, the rest when kept
        self.attribution_columns = pick_attribution_columns(
            schema, id, [self.image_column] + ([self.label_column] if self.label_column else []), spec.page_url_column)
        self._column_tables: dict[tuple[int, str], object] = {}
        self._lists = bool(self.label_column) and is_label_list(schema.field(self.label_column).type)
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

        self._group_span: list[np.ndarray] = []   # per file: [start, end) of the image column per row group
        self.index_stats = {"row_groups": 0, "labels_from_statistics": 0, "label_chunk_bytes": 0}
        lists = LabelListBuilder(names, f"label column {self.label_column!r} of {self.id}") if self._lists else None

        def index_one(i, pf):
            md = pf.metadata
            n = md.num_row_groups
            groups = np.cumsum([0] + [md.row_group(g).num_rows for g in range(n)])
            leaves = [k for k in range(md.num_columns)
                      if md.schema.column(k).path.split(".")[0] == self.image_column]
            spans = np.array([chunk_span([md.row_group(g).column(k) for k in leaves]) for g in range(n)],
                             dtype=np.int64).reshape(n, 2)
            sizes = np.array([sum(md.row_group(g).column(k).total_compressed_size for k in leaves)
                              for g in range(n)], dtype=np.int64)
            self.index_stats["row_groups"] += n
            if self.text_columns:
                return index_text(i, pf, groups, sizes, spans)
            if not self.label_column:
                return groups, sizes, spans, []
            if lists is not None:
                # a list column: every leaf under it, each row group read (statistics say nothing per row)
                leaf = [k for k in range(md.num_columns)
                        if md.schema.column(k).path.startswith(self.label_column + ".")]
                ranges = [chunk_span([md.row_group(g).column(k) for k in leaf]) for g in range(n)]
                self.index_stats["label_chunk_bytes"] += sum(b - a for a, b in ranges)
                self._prefetch(i, ranges)
                for g in range(n):
                    lists.add(pf.read_row_group(g, columns=[self.label_column]).column(0))
                return groups, sizes, spans, []
            codes = np.empty(int(groups[-1]), np.int32)     # filled in place: no per-group arrays kept
            label_leaf = [k for k in range(md.num_columns) if md.schema.column(k).path == self.label_column]
            to_read = []
            for g in range(n):
                value = single_value(md.row_group(g), label_leaf)
                if value is UNKNOWN:
                    to_read.append(g)
                    continue
                self.index_stats["labels_from_statistics"] += 1
                codes[groups[g]:groups[g + 1]] = code_of(value, names, vocab)
            if to_read and label_leaf:
                # exactly the label column chunks, fetched together (merged where they are close)
                ranges = [chunk_span([md.row_group(g).column(label_leaf[0])]) for g in to_read]
                self.index_stats["label_chunk_bytes"] += sum(b - a for a, b in ranges)
                self._prefetch(i, ranges)
            for g in to_read:
                codes[groups[g]:groups[g + 1]] = local_codes(
                    pf.read_row_group(g, columns=[self.label_column]).column(0), names, vocab)
            return groups, sizes, spans, [codes]

        texts = LabelListBuilder(None, f"text of {self.id}") if self.text_columns else None
        ac = self.attribution_columns
        licences = LicenceCodes() if ac.per_row_licence else None

        def index_licences(i, pf):
            # the licence columns' chunks only, fetched together: a few distinct values per row group
            md = pf.metadata
            cols = [c for c in (ac.licence, ac.licence_url) if c]
            leaf = [k for k in range(md.num_columns) if md.schema.column(k).path.split(".")[0] in cols]
            ranges = [chunk_span([md.row_group(g).column(k) for k in leaf]) for g in range(md.num_row_groups)]
            self.index_stats["licence_chunk_bytes"] = self.index_stats.get("licence_chunk_bytes", 0) + sum(
                b - a for a, b in ranges)
            self._prefetch(i, ranges)
            for g in range(md.num_row_groups):
                t = pf.read_row_group(g, columns=cols)
                licences.add(t.column(ac.licence) if ac.licence else None,
                             t.column(ac.licence_url) if ac.licence_url else None)

        def index_text(i, pf, groups, sizes, spans):
            # the text columns' chunks only, fetched together, as the label column's are
            md = pf.metadata
            leaf = [k for k in range(md.num_columns)
                    if md.schema.column(k).path.split(".")[0] in self.text_columns]
            ranges = [chunk_span([md.row_group(g).column(k) for k in leaf]) for g in range(md.num_row_groups)]
            self.index_stats["text_chunk_bytes"] = self.index_stats.get("text_chunk_bytes", 0) + sum(
                b - a for a, b in ranges)
            self._prefetch(i, ranges)
            for g in range(md.num_row_groups):
                table = pf.read_row_group(g, columns=self.text_columns)
                texts.add(noun_lists([table.column(c) for c in self.text_columns]))
            return groups, sizes, spans, []

        for i in bar(range(len(self._paths)), desc=f"indexing {self.short}", unit="shard",
                      show=progress, leave=False):
            groups, sizes, spans, file_parts = self._with_file(
                i, lambda pf: (index_one(i, pf), licences is not None and index_licences(i, pf))[0])
            self._row_groups.append(groups)
            self._group_bytes.append(sizes)
            self._group_span.append(spans)
            parts.extend(file_parts)
            starts.append(starts[-1] + int(groups[-1]))
            self._page_tables.append(self._page_table(i))
        self._starts = np.asarray(starts, dtype=np.int64)
        import pyarrow as pa

        pa.default_memory_pool().release_unused()   # label-column buffers: jemalloc would keep them
        if licences is not None:
            self.licence_codes, self.licence_values = licences.finish()
        if texts is not None:
            self.set_label_lists(texts.finish())
            return
        if not self.label_column:
            self.codes = np.full(int(self._starts[-1]), -1, dtype=np.int32)
            return
        if lists is not None:
            self.set_label_lists(lists.finish())
            return
        codes = (parts[0] if len(parts) == 1 else np.concatenate(parts)) if parts else np.zeros(0, np.int32)
        del parts
        if names is not None:
            self.classes, self.codes = list(names), codes
            return
        self.classes, self.codes = sorted_classes(vocab, codes)

    def _cache_path(self) -> Path | None:
        """Hub revisions are immutable commits, so their index can be kept; local folders can change."""
        if not self.revision:
            return None
        from negmine.cache import cache_dir

        key = json.dumps(["index-v7", self.id, self.revision, [self.relative_path(i) for i in range(len(self.files))],
                          self.image_column, self.label_column]
                         + ([["text-v1", self.text_columns]] if self.text_columns else [])
                         + ([["licence-v1", self.attribution_columns.licence, self.attribution_columns.licence_url]]
                            if self.attribution_columns.per_row_licence else []))
        return cache_dir("index") / (hashlib.sha256(key.encode()).hexdigest()[:32] + ".npz")

    def _save_index(self, path: Path) -> None:
        tables = self._page_tables
        paged = {name: np.concatenate([getattr(t, name) for t in tables if t is not None] or [np.zeros(0, np.int64)])
                 for name in pages.PageTable.ARRAYS}
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
        np.savez(tmp, codes=self.codes, starts=self._starts, classes=np.array(json.dumps(self.classes)),
                 groups=np.concatenate(self._row_groups), group_sizes=[len(g) for g in self._row_groups],
                 group_bytes=np.concatenate(self._group_bytes), group_span=np.concatenate(self._group_span),
                 footer_len=np.array([self._footer_len.get(i, 0) for i in range(len(self.files))], np.int64),
                 file_size=np.array([self._file_size.get(i, 0) for i in range(len(self.files))], np.int64),
                 why_whole=np.array(json.dumps({str(k): v for k, v in self._why_whole.items()})),
                 page_meta=np.array(json.dumps([None if t is None else [t.path, t.max_def] for t in tables])),
                 page_counts=np.array([[len(getattr(t, n)) if t is not None else 0 for n in pages.PageTable.ARRAYS]
                                       for t in tables], np.int64).reshape(len(tables), -1),
                 **{f"page_{name}": a for name, a in paged.items()},
                 **{name: a for name in ("label_offsets", "label_codes", "absent_offsets", "absent_codes")
                    if (a := getattr(self, name)) is not None},
                 **({"licence_codes": self.licence_codes, "licence_values": np.array(json.dumps(self.licence_values))}
                    if self.licence_codes is not None else {}))
        os.replace(tmp, path)

    def _load_index(self, path: Path) -> None:
        with np.load(path) as z:
            self.codes, self._starts = z["codes"], z["starts"]
            self.classes = json.loads(str(z["classes"]))
            for name in ("label_offsets", "label_codes", "absent_offsets", "absent_codes"):
                if name in z.files:
                    setattr(self, name, z[name])
            if "licence_codes" in z.files:
                self.licence_codes = z["licence_codes"]
                self.licence_values = [tuple(v) for v in json.loads(str(z["licence_values"]))]
            self._row_groups = np.split(z["groups"], np.cumsum(z["group_sizes"])[:-1])
            cuts = np.cumsum([len(g) - 1 for g in self._row_groups])[:-1]
            self._group_bytes = np.split(z["group_bytes"], cuts)
            self._group_span = np.split(z["group_span"], cuts)
            self._footer_len.update({i: int(n) for i, n in enumerate(z["footer_len"]) if n and i not in self._footer_len})
            self._file_size.update({i: int(n) for i, n in enumerate(z["file_size"]) if n and i not in self._file_size})
            self._why_whole.update({int(k): v for k, v in json.loads(str(z["why_whole"])).items()})
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

    def download_estimate(self, rows: Sequence[int]) -> dict:
        """What reading `rows` would fetch from the Hub now: {"bytes", "requests" (range requests,
        after what this run already fetched and merged as `remote.plan_requests` merges them),
        "resolver_requests" (one per shard read)}. Zeros for local shards. A page that turns
        out to need its row group's dictionary page costs one more range (rare for images)."""
        out = {"bytes": 0, "requests": 0, "resolver_requests": 0}
        if not self._hf:
            return out
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        for fi in np.unique(file_of).tolist():
            local = rows[file_of == fi] - self._starts[fi]
            table = self._page_tables[fi]
            if table is not None:
                idx = np.unique(np.searchsorted(table.start, local, side="right") - 1)
                ranges = list(zip(table.offset[idx].tolist(), (table.offset[idx] + table.size[idx]).tolist()))
            else:
                idx = np.unique(np.searchsorted(self._row_groups[fi], local, side="right") - 1)
                ranges = [tuple(map(int, self._group_span[fi][g])) for g in idx.tolist()]
            rf = self._range_file(fi)             # what this or an earlier run fetched is not fetched again
            reqs = rf.missing(ranges)
            if table is None and fi not in self._meta and fi in self._file_size:
                size = self._file_size[fi]          # pyarrow decodes row groups with the footer
                tail = rf.missing([(size - self._footer_len[fi], size)])
                reqs += tail
                out["requests"] += bool(tail)       # the footer is read as its length, then its body
            out["bytes"] += sum(b - a for a, b in reqs)
            out["requests"] += len(reqs)
            out["resolver_requests"] += 1     # a run locates each shard it reads once (a new process: again)
        return out

    def _with_file(self, i: int, fn):
        """Run fn(ParquetFile) on shard i; remote reads are retried, failures become one-line errors."""
        import pyarrow.parquet as pq

        def once():
            if self._hf and i not in self._meta:
                self._meta[i] = self._footer(i)
            with (self._range_file(i).open() if self._hf else self._fs.open(self._paths[i], "rb")) as f:
                # no pre-buffering: pages are read as the batches need them
                pf = pq.ParquetFile(f, metadata=self._meta.get(i), pre_buffer=False, buffer_size=1 << 20)
                self._meta[i] = pf.metadata
                return fn(pf)

        return self._guarded(i, once)

    def _footer(self, i: int):
        """A Hub shard's FileMetaData from exactly its footer: its last 8 bytes (the footer's length),
        then the footer (pyarrow would read the last 64 KB on speculation, image data included)."""
        import io
        import struct

        import pyarrow.parquet as pq

        rf = self._range_file(i)
        tail = rf.read([(-8, None)])[0]
        if tail[4:] != b"PAR1":
            raise SourceNotFound(f"{self.relative_path(i)} of {self.id} is not a parquet file")
        n = struct.unpack("<i", tail[:4])[0]
        body = rf.read([(-8 - n, -8)])[0]
        self._footer_len[i], self._file_size[i] = 8 + n, rf.size
        # the thrift footer holds absolute offsets: framed as a file of its own, pyarrow parses it
        return pq.ParquetFile(io.BytesIO(b"PAR1" + body + tail)).metadata

    def _range_file(self, i: int) -> "remote.RangeFile":
        if i not in self._range_files:
            self._range_files[i] = remote.RangeFile(self.files[i])
        return self._range_files[i]

    def _prefetch(self, i: int, ranges: list[tuple[int, int]]) -> None:
        """Fetch these byte ranges of a Hub shard in as few requests as `remote.plan_requests`
        allows, before pyarrow reads them one at a time (local files: nothing to do)."""
        if self._hf and ranges:
            self._guarded(i, lambda: self._range_file(i).read(ranges))

    def _ranges(self, i: int, ranges: list[tuple[int, int | None]]) -> list[bytes]:
        """Byte ranges of shard i (negative start: from the end), exactly those bytes: no read-ahead
        cache, so a remote file downloads only the pages asked for."""
        if self._hf:                           # all at once: merged, in parallel
            return self._guarded(i, lambda: self._range_file(i).read(ranges))
        return self._with_ranges(i, lambda read: [read(a, b) for a, b in ranges])

    def _with_ranges(self, i: int, fn):
        """fn(read) on shard i opened once without read-ahead, `read(start, end)` taking negative
        offsets from the end (end None: to the end); retried and mapped like `_with_file`."""
        if self._hf:
            rf = self._range_file(i)
            return self._guarded(i, lambda: fn(lambda a, b: rf.read([(a, b)])[0]))

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
            return hub.retrying(once) if self.is_remote else once()
        except NegmineError:
            raise
        except Exception as exc:
            if self.is_remote and (hub.transient(exc) or isinstance(exc, OSError)):
                raise hub.unavailable(self.id, exc) from None
            raise SourceNotFound(f"cannot read {self.relative_path(i)} of {self.id}: {exc}".splitlines()[0]) from None

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

    def relative_path(self, i: int) -> str:
        """Shard `i`'s path relative to the source's base (as manifests and messages name it)."""
        f = self.files[i]
        return f[len(self.base) + 1:] if f.startswith(self.base + "/") else f

    def shard_rows(self) -> list[tuple[str, int, int]]:
        """(relative path, first row in the pool, row count) of each shard, in pool order."""
        return [(self.relative_path(i), int(self._starts[i]), int(self._starts[i + 1] - self._starts[i]))
                for i in range(len(self.files))]

    def attribution(self, rows: Sequence[int]) -> dict[int, dict]:
        """{row: {"credit", "page_url", "title"}} of kept rows, read from the credit, page URL and
        title columns (`attribution_columns`): the pages holding the rows where the shard has a page
        index, else their row groups' column chunks; every byte through the counted reads."""
        ac = self.attribution_columns
        cols = ac.read_later()
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        if not cols or not len(rows):
            return {}
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        out = {}
        for fi in np.unique(file_of).tolist():
            local = rows[file_of == fi] - self._starts[fi]
            got = read_attribution(
                cols, local, lambda c: self._column_table(fi, c),
                lambda t, r: pages.read_rows(t, r, lambda ranges: self._ranges(fi, ranges), max_bytes=16 << 20),
                lambda c, r: self._column_rows(fi, c, r))
            for k, vals in got.items():
                out[int(k + self._starts[fi])] = {"credit": vals.get(ac.credit), "page_url": vals.get(ac.page_url),
                                                  "title": vals.get(ac.title)}
        return out

    def _column_table(self, fi: int, col: str):
        """Shard fi's page table of a flat string column, or None (no page index, or a layout the
        page reader lacks)."""
        key = (fi, col)
        if key not in self._column_tables:
            md = self._meta.get(fi) or self._with_file(fi, lambda pf: pf.metadata)
            leaf = [k for k in range(md.num_columns) if md.schema.column(k).path == col]

            def build(read):
                try:
                    return pages.page_table(read, [col], md.schema.column(leaf[0]).max_definition_level)
                except pages.Unsupported:
                    return None

            self._column_tables[key] = self._with_ranges(fi, build) if len(leaf) == 1 else None
        return self._column_tables[key]

    def _column_rows(self, fi: int, col: str, local: np.ndarray) -> dict[int, str | None]:
        """{file-local row: value} of one column, read a row group's column chunk at a time."""
        groups = self._row_groups[fi]
        of = np.searchsorted(groups, local, side="right") - 1

        def values(pf):
            md = pf.metadata
            leaf = [k for k in range(md.num_columns) if md.schema.column(k).path.split(".")[0] == col]
            self._prefetch(fi, [chunk_span([md.row_group(g).column(k) for k in leaf]) for g in np.unique(of).tolist()])
            out = {}
            for g in np.unique(of).tolist():
                column = pf.read_row_group(g, columns=[col]).column(0).combine_chunks()
                for k in local[of == g].tolist():
                    v = column[k - int(groups[g])].as_py()
                    out[k] = None if v is None else str(v)
            return out

        return self._with_file(fi, values)

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        for fi in np.unique(file_of).tolist():
            local = rows[file_of == fi] - self._starts[fi]
            got = self._read_file(fi, local)
            # cells holding a path to a file of the repo instead of bytes (image_paths)
            paths = self._cell_paths(fi, [k for k, data in got if not data]) if self._image_struct else {}
            for k, data in got:
                origin = {"file": self.relative_path(fi), "row": int(k)}
                row = int(k + self._starts[fi])
                why = "row has no image bytes"
                if not data and paths.get(k):
                    data, why = image_paths.read_cell(self.base, paths[k], self.id, self.image_column)
                if not data:
                    yield Item(row, None, origin, why)
                else:
                    yield Item(row, bytes(data), origin)

    def _cell_paths(self, fi: int, ks: list[int]) -> dict[int, str | None]:
        """{file-local row: the `path` of its image cell} for rows whose cell has no bytes: the
        path leaf's column chunks of their row groups, fetched exactly (Hub shards) and read."""
        if not ks:
            return {}
        groups = self._row_groups[fi]
        local = np.asarray(ks, dtype=np.int64)
        of = np.searchsorted(groups, local, side="right") - 1
        leaf_name = f"{self.image_column}.path"

        def paths(pf):
            md = pf.metadata
            leaf = [k for k in range(md.num_columns) if md.schema.column(k).path == leaf_name]
            if not leaf:
                return {}
            if self._hf:
                self._range_file(fi).read([chunk_span([md.row_group(g).column(leaf[0])]) for g in np.unique(of).tolist()])
            out = {}
            for g in np.unique(of).tolist():
                column = pf.read_row_group(g, columns=[leaf_name]).column(0).combine_chunks().field("path")
                for k in local[of == g].tolist():
                    out[k] = column[k - int(groups[g])].as_py()
            return out

        return self._with_file(fi, paths)

    def _holds_path_cells(self, fi: int) -> bool:
        """Whether shard fi's image cells may hold paths (its footer counts null bytes)."""
        if not self._image_struct:
            return False
        leaf_name = f"{self.image_column}.bytes"

        def nulls(pf):
            md = pf.metadata
            leaf = [k for k in range(md.num_columns) if md.schema.column(k).path == leaf_name]
            stats = [md.row_group(g).column(leaf[0]).statistics for g in range(md.num_row_groups)] if leaf else []
            return any(st is None or not st.has_null_count or st.null_count for st in stats)

        return self._with_file(fi, nulls)

    def read_jobs(self, rows: Sequence[int], max_items: int = 32, max_bytes: int = 2 << 20
                  ) -> Iterator[tuple[list[Item], "PageRead | None"]]:
        """Local shards with a page index are read by the workers, a run of pages each (the main
        process would otherwise read every image and pickle it over a pipe); the rest here."""
        rows = np.unique(np.asarray(rows, dtype=np.int64))
        file_of = np.searchsorted(self._starts, rows, side="right") - 1
        for fi in np.unique(file_of).tolist():
            part = rows[file_of == fi]
            table = self._page_tables[fi]
            if table is None or self.is_remote or self._holds_path_cells(fi):
                yield from super().read_jobs(part, max_items, max_bytes)
                continue
            rel, base = self.relative_path(fi), int(self._starts[fi])
            for t, local in pages.plan_reads(table, part - base, 1 << 20):
                items = [Item(k + base, None, {"file": rel, "row": k}) for k in local.tolist()]
                yield items, PageRead(self._paths[fi], t, local, self.image_column, self._row_groups[fi])

    def _read_file(self, fi: int, local: np.ndarray) -> list[tuple[int, bytes | None]]:
        """(file-local row, image bytes) of some rows of shard fi: the rows' pages when the shard has
        a page index, else whole row groups (read a batch at a time)."""
        table = self._page_tables[fi]
        if table is not None and self._hf:     # every page at once: contiguous pages are one request
            idx = np.unique(np.searchsorted(table.start, local, side="right") - 1)
            self._prefetch(fi, list(zip(table.offset[idx].tolist(), (table.offset[idx] + table.size[idx]).tolist())))
        if table is not None:
            try:
                # remote: few large requests (each costs a round trip); local: small reads, less memory
                return pages.read_rows(table, local, lambda ranges: self._ranges(fi, ranges),
                                       max_bytes=(16 << 20) if self.is_remote else (1 << 20))
            except pages.Unsupported as exc:
                self._page_tables[fi] = None     # e.g. an encoding the page reader lacks
                self._why_whole[fi] = str(exc)
        if self._hf:                           # the row groups' image chunks, exactly, in few requests
            groups = np.unique(np.searchsorted(self._row_groups[fi], local, side="right") - 1)
            self._prefetch(fi, [tuple(map(int, self._group_span[fi][g])) for g in groups.tolist()])
        return take_rows(self._row_groups[fi], local,
                          lambda g, wanted: self._with_file(fi, lambda pf: take_rows_of_group(pf, self.image_column, g, wanted)))
