"""The one interface every pool of candidate negatives sits behind.

A source exposes its class labels up front (cheap: a label column or a file list) so the draw can
be planned over the whole pool, and then reads the bytes of just the rows that were drawn.
What the adapters share beyond the interface lives beside it: class codes and label lists in
`labels`, image and label column detection in `columns`, dataset cards in `cards`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import numpy as np

from negmine.errors import NegmineError
from negmine.images import IMAGE_EXTENSIONS  # noqa: F401  (one list: what Pillow reads, any case)
from negmine.licences import parse_licence
from negmine.naming import safe_name
from negmine.sources.labels import LabelLists, any_in_lists, class_counts, stratum_codes

_WNID = re.compile(r"^n\d{8}$")
GENERIC_FOLDERS = {"images", "image", "imgs", "img", "photos", "pictures", "pics", "jpg", "jpeg", "jpegimages"}


@dataclass(frozen=True)
class SourceSpec:
    """``--source LOCATION[?split=S&weight=W&image=COL&label=COL&text=COL&unlabelled=allow&licence=ID&page_url=COL]``."""

    location: str
    split: str | None = None
    weight: float = 1.0
    image_column: str | None = None
    label_column: str | None = None
    config: str | None = None
    unlabelled: str | None = None        # "allow": draw this source's unlabelled images (negmine.filters.unlabelled)
    text_column: str | None = None       # text columns read as nouns (negmine.sources.text), comma-separated
    licence: str | None = None           # the pool's licence as the user declares it (negmine.sources.declared)
    page_url_column: str | None = None   # the column giving each image's page (negmine.sources.rowlicence)

    @classmethod
    def parse(cls, text: str) -> "SourceSpec":
        location, _, query = text.partition("?")
        opts = dict(parse_qsl(query, keep_blank_values=True)) if query else {}
        unknown = set(opts) - {"split", "weight", "image", "label", "config", "unlabelled", "text", "licence",
                               "page_url"}
        if unknown:
            raise NegmineError(f"unknown source option(s) {sorted(unknown)} in {text!r}; "
                               "known: split, config, weight, image, label, text, unlabelled, licence, page_url")
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
                   opts.get("unlabelled"), opts.get("text"), opts.get("licence"), opts.get("page_url"))


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
    is_remote: bool = False              # read through a network filesystem (hf://, s3://), not local files
    default_read_ratio: float | None = None   # a preset's --max-read-ratio default (sources.presets.Preset)
    class_ids: bool = False              # labels are bare integer ids with no names: never placed in WordNet
    # multi-label pools (a label column that is a list): per row the class codes it carries, as
    # CSR pairs (row r: codes[offsets[r]:offsets[r + 1]]), and those a rater confirmed absent
    # (confidence 0). `codes` then holds each row's stratum (see `stratum_codes`). None: single label.
    label_offsets: np.ndarray | None = None
    label_codes: np.ndarray | None = None
    absent_offsets: np.ndarray | None = None
    absent_codes: np.ndarray | None = None
    # per-row licences (sources.rowlicence): code per row into `licence_values` ((text, URL) pairs),
    # -1 where the row says none (then the card's `licence` holds). None: the card's for every row.
    licence_codes: np.ndarray | None = None
    licence_values: list | None = None
    licence_declared: bool = False       # `licence` is the user's ?licence=, not the pool's own (sources.declared)

    def licence_of(self, row: int) -> tuple[str | None, str | None]:
        """(licence text, licence URL) of a row: its own where the pool says one, else the card's."""
        if self.licence_codes is not None and int(self.licence_codes[row]) >= 0:
            text, url = self.licence_values[int(self.licence_codes[row])]
            if parse_licence(text, url).id != "unknown":       # "unknown", "none": the row says nothing
                return text, url
        return self.licence, None

    def attribution(self, rows: Sequence[int]) -> dict[int, dict]:
        """{row: {"credit", "page_url", "title"}} of kept rows, where the pool has such columns."""
        return {}

    def __len__(self) -> int:
        return len(self.codes)

    @property
    def label_kind(self) -> str:
        if not self.classes:
            return "none"
        if self.class_ids:
            return "id"
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
        lic = parse_licence(self.licence)
        d["licence_id"], d["commercial"] = lic.id, lic.commercial
        if self.licence_declared:
            d["licence_declared_by"] = "the user (?licence= on --source)"
        if self.partial:
            d["partial"] = True
        if getattr(self, "image_column", None):        # a table source: the columns read, by detection or option
            d["columns"] = {"image": self.image_column, "label": getattr(self, "label_column", None)}
            if getattr(self, "text_columns", None):
                d["columns"]["text"] = list(self.text_columns)
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


def short_name(name: str) -> str:
    return safe_name(name, max_len=24)


