"""Reading rows out of parquet files, shared by the main process and the worker processes: the
image bytes of some rows of a row group, a run of pages a worker reads itself (`PageRead`), and
what a row group's footer metadata says (the byte span of a column chunk, a label column that holds
one value)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from negmine.sources import pages

UNKNOWN = object()


def chunk_span(chunks) -> tuple[int, int]:
    """[start, end) in the file of some column chunks of one row group (a struct column has one
    per leaf, written side by side): from the dictionary page, if any, to the last data page."""
    starts = [c.dictionary_page_offset if c.has_dictionary_page and c.dictionary_page_offset else c.data_page_offset
              for c in chunks]
    ends = [s + c.total_compressed_size for s, c in zip(starts, chunks)]
    return (min(starts), max(ends)) if chunks else (0, 0)


def single_value(row_group, leaf: list[int]):
    """The one value a row group's label column holds, when its statistics say min == max with no
    nulls and the value is exact (an int, or an untruncated string); else UNKNOWN."""
    if len(leaf) != 1:
        return UNKNOWN
    col = row_group.column(leaf[0])
    st = col.statistics
    if st is None or not st.has_min_max or not st.has_null_count or st.null_count:
        return UNKNOWN
    if col.physical_type not in ("INT32", "INT64", "BYTE_ARRAY") or st.min != st.max:
        return UNKNOWN
    if getattr(st, "is_min_value_exact", True) is False or getattr(st, "is_max_value_exact", True) is False:
        return UNKNOWN
    value = st.min
    if isinstance(value, bytes):
        try:
            value = value.decode()
        except UnicodeDecodeError:
            return UNKNOWN
    return value


def code_of(value, names: list[str] | None, vocab: dict[str, int]) -> int:
    """The class code of one label value, as `local_codes` gives it for a whole column."""
    if names is not None and isinstance(value, int):
        return value if 0 <= value < len(names) else -1
    if value is None or value == "":
        return -1
    return vocab.setdefault(str(value), len(vocab))


def take_rows_of_group(pf, column: str, group: int, wanted: np.ndarray, batch: int = 512) -> list[tuple[int, bytes | None]]:
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


def take_rows(row_groups: np.ndarray, rows: np.ndarray, take) -> list[tuple[int, bytes | None]]:
    """(row, bytes) of some file-local rows, a row group at a time: `take(group, wanted)` reads the
    wanted rows of one group (numbered within it), as `take_rows_of_group` does."""
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
                got = dict(take_rows(self.row_groups, self.rows, lambda g, wanted: take_rows_of_group(pf, self.column, g, wanted)))
                return [got.get(k) for k in self.rows.tolist()], str(exc)

