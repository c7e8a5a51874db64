"""Page-level reads of one binary parquet column, through the page index.

pyarrow reads a column a whole column chunk (row group) at a time, and Hub shards written by
`datasets` 5.x have row groups of up to 100 MB; but they also carry a page index (the offset of
every page and its first row) and content-defined pages of 256 KB-1 MB. A draw that wants a few rows
of a row group then needs only those rows' pages. pyarrow 26 writes the page index but exposes no
way to read it or a single page, so this module parses the few thrift structures involved (the
footer, the offset index and page headers, compact protocol) and decodes the page itself: def
levels (RLE/bit-packed hybrid) and PLAIN or dictionary-encoded byte arrays, decompressed with
pyarrow's codecs. Anything else (repeated columns, delta encodings, encryption) raises
`Unsupported` and the caller falls back to row-group reads.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

# parquet's CompressionCodec enum -> pyarrow.Codec name (1 SNAPPY, 2 GZIP, 4 BROTLI, 6 ZSTD, 7 LZ4_RAW)
_CODECS = {1: "snappy", 2: "gzip", 4: "brotli", 6: "zstd", 7: "lz4_raw"}
_DATA_PAGE, _DICTIONARY_PAGE, _DATA_PAGE_V2 = 0, 2, 3
_PLAIN, _PLAIN_DICTIONARY, _RLE, _RLE_DICTIONARY = 0, 2, 3, 8
_ENCODINGS = {5: "DELTA_BINARY_PACKED", 6: "DELTA_LENGTH_BYTE_ARRAY", 7: "DELTA_BYTE_ARRAY", 9: "BYTE_STREAM_SPLIT"}
_BYTE_ARRAY = 6


class Unsupported(Exception):
    """The file or page uses a feature this reader does not decode: read whole row groups instead."""


class NeedsDictionary(Unsupported):
    """A dictionary-encoded page was decoded without its row group's dictionary page."""


class _Compact:
    """Thrift compact protocol, enough for parquet metadata: structs become {field id: value}."""

    def __init__(self, buf: bytes, pos: int = 0):
        self.buf, self.pos = buf, pos

    def varint(self) -> int:
        out = shift = 0
        while True:
            if self.pos >= len(self.buf):
                raise Unsupported("truncated thrift data")
            b = self.buf[self.pos]
            self.pos += 1
            out |= (b & 0x7F) << shift
            if not b & 0x80:
                return out
            shift += 7

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def value(self, t: int):
        if t in (1, 2):                       # bool inside a struct field header
            return t == 1
        if t == 3:
            self.pos += 1
            return struct.unpack_from("b", self.buf, self.pos - 1)[0]
        if t in (4, 5, 6):
            return self.zigzag()
        if t == 7:
            self.pos += 8
            return struct.unpack_from("<d", self.buf, self.pos - 8)[0]
        if t == 8:
            n = self.varint()
            self.pos += n
            return bytes(self.buf[self.pos - n:self.pos])
        if t in (9, 10):
            head = self.buf[self.pos]
            self.pos += 1
            n, et = head >> 4, head & 0x0F
            if n == 15:
                n = self.varint()
            if et in (1, 2):                  # bools in a list are one byte each
                self.pos += n
                return [b == 1 for b in self.buf[self.pos - n:self.pos]]
            return [self.value(et) for _ in range(n)]
        if t == 11:
            n = self.varint()
            if not n:
                return {}
            kt, vt = self.buf[self.pos] >> 4, self.buf[self.pos] & 0x0F
            self.pos += 1
            return {self.value(kt): self.value(vt) for _ in range(n)}
        if t == 12:
            return self.struct()
        raise Unsupported(f"thrift type {t}")

    def struct(self) -> dict:
        out, fid = {}, 0
        while True:
            if self.pos >= len(self.buf):
                raise Unsupported("truncated thrift data")
            head = self.buf[self.pos]
            self.pos += 1
            if head == 0:
                return out
            delta, t = head >> 4, head & 0x0F
            fid = fid + delta if delta else self.zigzag()
            out[fid] = self.value(t)


@dataclass(frozen=True)
class Chunk:
    """Where one row group's column chunk and its pages are."""
    codec: int
    dictionary: tuple[int, int] | None      # (offset, length) of the dictionary page, header included
    page_offsets: np.ndarray                # int64, per data page, header included
    page_sizes: np.ndarray                  # int64
    page_rows: np.ndarray                   # int64, first row of each page, then the row group's row count


def footer(read) -> dict:
    """FileMetaData of a parquet file; `read(start, end)` returns those bytes (end < 0: from the end)."""
    tail = read(-8, None)
    if tail[4:] != b"PAR1":
        raise Unsupported("not a plain parquet file (encrypted footers are not read page by page)")
    n = struct.unpack("<i", tail[:4])[0]
    return _Compact(read(-8 - n, -8)).struct()


def column_chunks(meta: dict, path: list[str], read) -> list[Chunk]:
    """Page tables of column `path` in every row group. The offset indexes sit together between the
    last row group and the footer, so they are fetched with one read."""
    groups = meta.get(4, [])
    picked = []
    for rg in groups:
        for cc in rg.get(1, []):
            md = cc.get(3, {})
            if [p.decode() for p in md.get(3, [])] == path:
                if md.get(1) != _BYTE_ARRAY:
                    raise Unsupported("not a byte-array column")
                if cc.get(8) is not None:
                    raise Unsupported("encrypted column")
                if cc.get(4) is None or cc.get(5) is None:
                    raise Unsupported("no page index")
                picked.append((rg.get(3, 0), md, cc[4], cc[5]))
                break
        else:
            raise Unsupported(f"column {'.'.join(path)} missing from a row group")
    if not picked:
        return []
    start = min(p[2] for p in picked)
    end = max(p[2] + p[3] for p in picked)
    region = read(start, end)
    out = []
    for num_rows, md, off, length in picked:
        index = _Compact(region[off - start: off - start + length]).struct()
        locs = index.get(1, [])
        codec = md.get(4, 0)
        if codec and codec not in _CODECS:
            raise Unsupported(f"compression codec {codec}")
        dict_off = md.get(11)
        dictionary = None
        if dict_off is not None and locs and dict_off < locs[0][1]:
            dictionary = (dict_off, locs[0][1] - dict_off)
        out.append(Chunk(codec, dictionary,
                         np.array([p[1] for p in locs], np.int64), np.array([p[2] for p in locs], np.int64),
                         np.array([p.get(3, 0) for p in locs] + [num_rows], np.int64)))
    return out


def _decompress(codec: int, data: bytes, size: int) -> bytes:
    if not codec:
        return data
    import pyarrow as pa

    return memoryview(pa.Codec(_CODECS[codec]).decompress(data, decompressed_size=size))   # no copy


def _hybrid(buf: bytes, pos: int, end: int, width: int, n: int) -> np.ndarray:
    """n values of the RLE/bit-packed hybrid encoding (def levels, dictionary indices)."""
    out = np.zeros(n, np.int64)
    if width == 0:
        return out
    r = _Compact(buf, pos)
    got = 0
    nbytes = (width + 7) // 8
    while got < n:
        if r.pos >= end:
            raise Unsupported("truncated levels")
        head = r.varint()
        if head & 1:                           # bit-packed: groups of 8 values, LSB first
            count = (head >> 1) * 8
            raw = np.frombuffer(buf, np.uint8, count * width // 8, r.pos)
            r.pos += count * width // 8
            bits = np.unpackbits(raw, bitorder="little").reshape(-1, width)
            vals = bits.astype(np.int64) @ (1 << np.arange(width, dtype=np.int64))
        else:                                  # run of one value
            count = head >> 1
            v = int.from_bytes(buf[r.pos:r.pos + nbytes], "little")
            r.pos += nbytes
            vals = np.full(count, v, np.int64)
        take = min(count, n - got)
        out[got:got + take] = vals[:take]
        got += take
    return out


def _plain(buf: bytes, pos: int, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        size = int.from_bytes(buf[pos:pos + 4], "little")
        pos += 4
        if pos + size > len(buf):
            raise Unsupported("truncated page")
        out.append(buf[pos:pos + size])
        pos += size
    return out


def _header(page: bytes) -> tuple[dict, int]:
    r = _Compact(page)
    h = r.struct()
    return h, r.pos


def dictionary_values(codec: int, page: bytes) -> list[memoryview]:
    """The values of a dictionary page, as views into it (a pyarrow dictionary page of large images
    can hold a thousand of them, and a page usually needs a few)."""
    page = memoryview(page)
    h, pos = _header(page)
    if h.get(1) != _DICTIONARY_PAGE:
        raise Unsupported("expected a dictionary page")
    dh = h.get(7, {})
    if dh.get(2, _PLAIN) not in (_PLAIN, _PLAIN_DICTIONARY):
        raise Unsupported("dictionary encoding")
    body = _decompress(codec, page[pos:pos + h[3]], h[2])
    return _plain(body, 0, dh.get(1, 0))


def page_values(codec: int, page: bytes, max_def: int, dictionary: list[bytes] | None = None) -> list[bytes | None]:
    """Every row's value in one data page (None where the value or a parent is null)."""
    h, pos = _header(page)
    kind = h.get(1)
    width = max_def.bit_length()
    if kind == _DATA_PAGE:
        dp = h.get(5, {})
        n, encoding = dp.get(1, 0), dp.get(2, _PLAIN)
        body = _decompress(codec, page[pos:pos + h[3]], h[2])
        at = 0
        if max_def:
            if dp.get(3, _RLE) != _RLE:
                raise Unsupported("bit-packed levels")
            size = int.from_bytes(body[:4], "little")
            levels = _hybrid(body, 4, 4 + size, width, n)
            at = 4 + size
        else:
            levels = np.zeros(n, np.int64)
    elif kind == _DATA_PAGE_V2:
        dp = h.get(8, {})
        n, encoding = dp.get(1, 0), dp.get(4, _PLAIN)
        rep_len, def_len = dp.get(6, 0), dp.get(5, 0)
        if rep_len:
            raise Unsupported("repeated column")
        levels = _hybrid(page, pos, pos + def_len, width, n) if max_def else np.zeros(n, np.int64)
        values = page[pos + rep_len + def_len: pos + h[3]]
        compressed = dp.get(7, True)
        body = _decompress(codec, values, h[2] - rep_len - def_len) if compressed else values
        at = 0
    else:
        raise Unsupported(f"page type {kind}")
    present = levels == max_def
    k = int(present.sum())
    if encoding == _PLAIN:
        vals = _plain(body, at, k)
    elif encoding in (_PLAIN_DICTIONARY, _RLE_DICTIONARY):
        if dictionary is None:
            raise NeedsDictionary("dictionary page missing")
        idx = _hybrid(body, at + 1, len(body), body[at], k) if k else np.zeros(0, np.int64)
        if len(idx) and int(idx.max()) >= len(dictionary):
            raise Unsupported("dictionary index out of range")
        vals = [dictionary[i] for i in idx.tolist()]
    else:
        raise Unsupported(f"value encoding {_ENCODINGS.get(encoding, encoding)}")
    it = iter(vals)
    return [next(it) if p else None for p in present.tolist()]


@dataclass
class PageTable:
    """Every data page of one column in one file, in row order (rows are file-local)."""
    path: list[str]
    max_def: int
    start: np.ndarray          # int64, first row of each page, then the file's row count
    offset: np.ndarray         # int64
    size: np.ndarray           # int64, header included
    group: np.ndarray          # int32, row group of each page
    codec: np.ndarray          # int8, per row group
    dict_offset: np.ndarray    # int64, per row group, -1 without a dictionary page
    dict_size: np.ndarray      # int64

    ARRAYS = ("start", "offset", "size", "group", "codec", "dict_offset", "dict_size")

    def pages(self, a: int, b: int) -> "PageTable":
        """Pages a..b only (rows keep their file numbering): small enough to hand to a worker."""
        return PageTable(self.path, self.max_def, self.start[a:b + 2], self.offset[a:b + 1], self.size[a:b + 1],
                         self.group[a:b + 1], self.codec, self.dict_offset, self.dict_size)


def page_table(read, path: list[str], max_def: int) -> PageTable:
    """`read(start, end)` reads bytes of the file (negative offsets: from its end)."""
    chunks = column_chunks(footer(read), path, read)
    starts, offsets, sizes, groups, row0 = [], [], [], [], 0
    for g, ch in enumerate(chunks):
        starts.append(ch.page_rows[:-1] + row0)
        offsets.append(ch.page_offsets)
        sizes.append(ch.page_sizes)
        groups.append(np.full(len(ch.page_offsets), g, np.int32))
        row0 += int(ch.page_rows[-1])
    cat = (lambda xs, t: np.concatenate(xs).astype(t) if xs else np.zeros(0, t))
    return PageTable(path, max_def, np.append(cat(starts, np.int64), row0), cat(offsets, np.int64),
                     cat(sizes, np.int64), cat(groups, np.int32), np.array([c.codec for c in chunks], np.int8),
                     np.array([c.dictionary[0] if c.dictionary else -1 for c in chunks], np.int64),
                     np.array([c.dictionary[1] if c.dictionary else -1 for c in chunks], np.int64))


def plan_reads(table: PageTable, rows: np.ndarray, max_bytes: int = 4 << 20) -> list[tuple[PageTable, np.ndarray]]:
    """Split file-local `rows` into reads of adjacent pages of up to `max_bytes` (a larger page is
    one read on its own): each read is (the table of its pages, its rows), and no page is in two."""
    rows = np.unique(np.asarray(rows, np.int64))
    if len(rows) and (rows[0] < 0 or rows[-1] >= table.start[-1]):
        raise IndexError("row outside the file")
    page_of = np.searchsorted(table.start, rows, side="right") - 1
    cuts = np.flatnonzero(np.diff(page_of)) + 1          # where the page changes
    firsts = np.concatenate([[0], cuts]).astype(np.int64)
    reads: list[list[int]] = []                          # [first page, last page, index of first row]
    for k, p in enumerate(page_of[firsts].tolist()):
        if reads:
            a, last = reads[-1][0], reads[-1][1]
            if (table.offset[p] == table.offset[last] + table.size[last]
                    and table.offset[p] + table.size[p] - table.offset[a] <= max_bytes):
                reads[-1][1] = p
                continue
        reads.append([p, p, int(firsts[k])])
    bounds = [r[2] for r in reads] + [len(rows)]
    return [(table.pages(a, b), rows[bounds[k]:bounds[k + 1]]) for k, (a, b, _) in enumerate(reads)]


def read_rows(table: PageTable, rows: np.ndarray, fetch, max_bytes: int = 4 << 20) -> list[tuple[int, bytes | None]]:
    """(row, value) for file-local `rows`, reading only their pages (and a row group's dictionary
    page when a page needs it). `fetch(list of (start, end))` returns those byte ranges; adjacent
    pages are fetched as one range, up to `max_bytes` at a time, so memory stays at that plus the
    values kept."""
    out: list = []
    dictionaries: dict[int, list] = {}
    batch: list = []
    size = 0
    reads = plan_reads(table, rows, max_bytes)
    for k, (t, r) in enumerate(reads):             # a few reads per fetch: one request, bounded memory
        batch.append((t, r))
        size += int(t.offset[-1] + t.size[-1] - t.offset[0])
        if size < max_bytes and k + 1 < len(reads):
            continue
        blobs = fetch([(int(t.offset[0]), int(t.offset[-1] + t.size[-1])) for t, _ in batch])
        for (t, r), blob in zip(batch, blobs):
            out.extend(zip(r.tolist(), decode_read(t, r, blob, fetch, dictionaries)))
        batch, size = [], 0
    return out


def decode_read(table: PageTable, rows: np.ndarray, blob: bytes, fetch, dictionaries: dict | None = None
                ) -> list[bytes | None]:
    """The values of `rows` (sorted, unique, all in `table`'s pages) from `blob`, the bytes of those
    pages; `dictionaries` carries a row group's decoded dictionary page from one read to the next."""
    dictionaries = {} if dictionaries is None else dictionaries
    blob = memoryview(blob)                     # pages and values are views: one copy per value kept
    base = int(table.offset[0])
    page_of = np.searchsorted(table.start, rows, side="right") - 1
    out = []
    for p in np.unique(page_of).tolist():
        g = int(table.group[p])
        codec = int(table.codec[g])
        page = blob[int(table.offset[p]) - base: int(table.offset[p] + table.size[p]) - base]
        try:
            values = page_values(codec, page, table.max_def, dictionaries.get(g))
        except NeedsDictionary:
            if table.dict_offset[g] < 0:
                raise
            lo = int(table.dict_offset[g])
            dictionaries.clear()                # pages come group by group: keep one dictionary
            dictionaries[g] = dictionary_values(codec, fetch([(lo, lo + int(table.dict_size[g]))])[0])
            values = page_values(codec, page, table.max_def, dictionaries[g])
        first = int(table.start[p])
        if len(values) != int(table.start[p + 1]) - first:
            raise Unsupported("page row count differs from the page index")
        lo, hi = np.searchsorted(page_of, [p, p + 1])
        for r in rows[lo:hi].tolist():
            v = values[r - first]
            out.append(None if v is None else bytes(v))
    return out
