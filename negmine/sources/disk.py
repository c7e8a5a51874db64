"""A `Dataset.save_to_disk` folder (memory-mapped arrow), read through `datasets` itself."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from negmine.errors import SourceNotFound
from negmine.sources.base import Item, Source, SourceSpec, short_name
from negmine.sources.columns import (feature_kinds, has_class_ids, image_columns_named_as_labels, is_image_struct,
                                     pick_columns)
from negmine.sources.labels import LabelListBuilder, codes_from_values, is_label_list
from negmine.sources.layout import default_split

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
            split = split or default_split(list(ds), str(path))
            if split not in ds:
                raise SourceNotFound(f"{path} has no split {split!r}; splits: {', '.join(ds)}")
            ds = ds[split]
        super().__init__(id=str(path), short=short_name(path.name), revision=None,
                         licence=ds.info.license or None, weight=spec.weight, split=split)
        structs = {n for n in ds.column_names if is_image_struct(ds.data.schema.field(n).type)}
        self.image_column, self.label_column, names = pick_columns(
            feature_kinds(ds.features), ds.column_names, spec.image_column, spec.label_column, str(path), structs)
        self.not_labels = image_columns_named_as_labels(feature_kinds(ds.features), ds.column_names, structs)
        self._table = ds.with_format("arrow")
        self.class_ids = has_class_ids(feature_kinds(ds.features), self.label_column, ds.data.schema.field(
            self.label_column).type if self.label_column else None, names)
        if self.label_column and is_label_list(ds.data.schema.field(self.label_column).type):
            lists = LabelListBuilder(names, f"label column {self.label_column!r} of {path}")
            for chunk in ds.data.table.column(self.label_column).chunks:     # memory-mapped: a chunk at a time
                lists.add(chunk)
            self.set_label_lists(lists.finish())
        elif self.label_column:
            self.classes, self.codes = codes_from_values(self._table[self.label_column], names)
        else:
            self.codes = np.full(len(ds), -1, dtype=np.int32)

    def read(self, rows: Sequence[int]) -> Iterator[Item]:
        rows = sorted(set(int(r) for r in rows))
        col = self._table.select_columns([self.image_column])[rows].column(0)
        for r, value in zip(rows, col.to_pylist()):
            data = value.get("bytes") if isinstance(value, dict) else value
            if not data and isinstance(value, dict) and value.get("path") and os.path.isfile(value["path"]):
                try:
                    data = Path(value["path"]).read_bytes()
                except OSError as exc:           # one unreadable file is that row's skip
                    yield Item(r, None, {"row": r}, f"cannot read file: {exc}")
                    continue
            yield Item(r, data or None, {"row": r}, None if data else "row has no image bytes")

