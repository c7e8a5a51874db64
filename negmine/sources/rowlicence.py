"""Per-row licences and attribution of table pools: which columns say them, found by name as image,
label and text columns are, and read as cheaply as planning reads labels.

- Planning reads the licence column(s) only (`licence`/`licensename`... and `licenseurl`...),
  column chunk by column chunk, into one small code per row (`LicenceCodes`): a pool of millions
  of rows costs a few MB and the handful of distinct licence values, never a Python object per row.
  What each value allows is negmine.licences'; `--licence` leaves rows out by code before the draw
  (negmine.filters.licences).
- Credit, page URL and title (`AttributionColumns`) are read for the kept rows only, after the
  draw, through the same counted reads as their images (`read_attribution`): their pages where
  the shard has a page index, else the column chunks of their row groups.

Column names are those the pools carry: Flickr-derived pools (YFCC100M, CommonCatalog) name them
`licensename`, `licenseurl`, `unickname`, `pageurl`; Open Images `author`, `original_landing_url`;
others `license`, `creator`, `photographer`, `source_url`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from negmine.errors import NegmineError
from negmine.sources.pages import Unsupported

LICENCE_NAMES = ("license", "licence", "licensename", "license_name", "licence_name", "license_id", "licence_id",
                 "license_type")
LICENCE_URL_NAMES = ("licenseurl", "license_url", "licenceurl", "licence_url", "license_link")
# credit and page URL: several names may be present (Open Images has `author` and `author_profile_url`);
# the earlier name in these lists wins (a documented priority, not the schema's order)
CREDIT_NAMES = ("unickname", "author", "creator", "photographer", "owner", "ownername", "artist", "username",
                "user_nickname", "credit", "attribution")
# a bare `url` is not among them: in the web-scale pools (LAION, CC3M/CC12M, DataComp, COYO) it is
# the image file's URL, elsewhere a page's; which one a pool means is not read from its name, so
# `?page_url=url` on --source says it (Open Images' `original_url` is the photo's own Flickr URL)
PAGE_URL_NAMES = ("pageurl", "page_url", "photo_url", "flickr_url", "original_landing_url", "landing_url",
                  "source_url", "original_url")
TITLE_NAMES = ("title",)


@dataclass(frozen=True)
class AttributionColumns:
    """The columns of a table pool that say an image's licence and credit (None: absent)."""

    licence: str | None = None
    licence_url: str | None = None
    credit: str | None = None
    page_url: str | None = None
    title: str | None = None

    @property
    def per_row_licence(self) -> bool:
        return bool(self.licence or self.licence_url)

    def read_later(self) -> list[str]:
        """The columns read for kept rows only (the licence ones are read at planning)."""
        return [c for c in (self.credit, self.page_url, self.title) if c]


def _is_string(t) -> bool:
    import pyarrow as pa

    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t) and (
        pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type))


def pick_attribution_columns(schema, where: str, exclude: Sequence[str] = (),
                             page_url: str | None = None) -> AttributionColumns:
    """The licence, licence URL, credit, page URL and title columns of a table (string columns
    found by name, any case; `exclude`: columns already taken as image or label; `page_url`: the
    page URL column the user named, `?page_url=COL`, which wins over the names). Raises
    NegmineError (one line naming them) when several columns could be the licence or its URL:
    which one binds the image is not decided by position; or when `page_url` is not a string
    column of the table."""
    strings = [n for n in schema.names if n not in exclude and _is_string(schema.field(n).type)]
    if page_url is not None and page_url not in strings:
        raise NegmineError(f"{where}: ?page_url={page_url} names no string column (its string columns: "
                           f"{', '.join(strings) or 'none'})")
    low = {n: n.lower() for n in strings}

    def found(names: Sequence[str], what: str | None = None) -> str | None:
        hits = [n for n in strings if low[n] in names]
        if what is not None and len(hits) > 1:
            listed = ", ".join(repr(h) for h in hits)
            raise NegmineError(f"{where} has {len(hits)} {what} columns ({listed}): negmine reads one {what} per "
                               "image and does not choose one by position; such a pool cannot be used as it is")
        return min(hits, key=lambda n: names.index(low[n])) if hits else None

    return AttributionColumns(found(LICENCE_NAMES, "licence"), found(LICENCE_URL_NAMES, "licence URL"),
                              found(CREDIT_NAMES), page_url or found(PAGE_URL_NAMES), found(TITLE_NAMES))


class LicenceCodes:
    """Builds one code per row (int16, int32 past 32k distinct values) from the licence columns'
    chunks, added a row group at a time: code k is `values[k]` = (licence text, licence URL); -1
    where both are null or empty."""

    def __init__(self):
        self.values: list[tuple[str | None, str | None]] = []
        self._index: dict[tuple, int] = {}
        self._parts: list[np.ndarray] = []

    def add(self, text, url) -> None:
        """`text`, `url`: arrow arrays of one row group's licence and URL columns (either None)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        cols = [c for c in (text, url) if c is not None]
        n = len(cols[0])
        if isinstance(cols[0], pa.ChunkedArray):
            cols = [c.combine_chunks() for c in cols]
        cols = [pc.cast(c.dictionary_decode() if pa.types.is_dictionary(c.type) else c, pa.string()) for c in cols]
        key = cols[0] if len(cols) == 1 else pc.binary_join_element_wise(*cols, "\x1f", null_handling="replace",
                                                                         null_replacement="")
        enc = pc.dictionary_encode(key)
        local = []
        for v in enc.dictionary.to_pylist():
            parts = v.split("\x1f") if len(cols) == 2 else [v]
            pair = ((parts[0] if text is not None else None), (parts[-1] if url is not None else None))
            pair = tuple(p.strip() or None if isinstance(p, str) else None for p in pair)
            if pair == (None, None):
                local.append(-1)
                continue
            if pair not in self._index:
                self._index[pair] = len(self.values)
                self.values.append(pair)
            local.append(self._index[pair])
        lut = np.asarray(local + [-1], np.int32)
        idx = enc.indices.fill_null(len(local)).to_numpy(zero_copy_only=False).astype(np.int64) if n else \
            np.zeros(0, np.int64)
        self._parts.append(lut[idx])

    def finish(self) -> tuple[np.ndarray, list[tuple[str | None, str | None]]]:
        """(code per row, in the order added; the distinct (text, URL) values)."""
        codes = np.concatenate(self._parts) if self._parts else np.zeros(0, np.int32)
        self._parts = []
        # a pool has a handful of distinct licences: 2 bytes a row (20 MB for 10M rows)
        return codes.astype(np.int16 if len(self.values) < 2**15 else np.int32, copy=False), self.values


def read_attribution(columns: Sequence[str], local: np.ndarray, page_table: Callable, read_pages: Callable,
                     read_groups: Callable) -> dict[int, dict[str, str | None]]:
    """{file-local row: {column: value}} of the `columns` of some rows of one shard.

    Per column, its pages holding the rows when `page_table(column)` gives the column's page
    table (`read_pages(table, rows)` -> [(row, bytes)]), else its row groups' chunks
    (`read_groups(column, rows)` -> {row: value}). The callables do the counted reads."""
    out: dict[int, dict[str, str | None]] = {int(k): {} for k in local.tolist()}
    for col in columns:
        table = page_table(col)
        got = None
        if table is not None:
            try:
                got = {int(k): (None if v is None else bytes(v).decode("utf-8", "replace"))
                       for k, v in read_pages(table, local)}
            except Unsupported:                  # a page layout the page reader lacks: the row groups
                got = None
        if got is None:
            got = read_groups(col, local)
        for k, v in got.items():
            out[int(k)][col] = v
    return out
