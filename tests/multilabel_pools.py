"""Small multi-label pools in every label-list shape, for tests/test_multilabel.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from conftest import jpeg_bytes

VOCAB = ["bicycle", "car", "cat", "chair", "dog", "raccoon", "tree"]
SHAPES = ("classlabel", "strings", "ints", "records", "coco", "coco-list", "openimages")


def label_lists(rows: int, seed: int = 0) -> list[list[str]]:
    """1-3 labels per image (some repeated, as objects are), a third of them carrying 'raccoon',
    a few images with no label at all."""
    rng = np.random.default_rng(seed)
    out = []
    for r in range(rows):
        if r % 11 == 10:
            out.append([])
            continue
        labels = [VOCAB[k] for k in rng.integers(0, len(VOCAB), rng.integers(1, 4))]
        if r % 3 == 0:
            labels.append("raccoon")
        out.append(labels)
    return out


def confidences(lists: list[list[str]], seed: int = 1) -> list[list[tuple[str, float]]]:
    """Open Images style: the present labels with confidence 1, and for most images 'raccoon' or
    'dog' verified absent (confidence 0) where they are not present."""
    rng = np.random.default_rng(seed)
    out = []
    for labels in lists:
        row = [(x, 1.0) for x in dict.fromkeys(labels)]
        for absent in ("raccoon", "dog"):
            if absent not in labels and rng.random() < 0.7:
                row.append((absent, 0.0))
        out.append(row)
    return out


def make_multilabel_pool(root: Path, shape: str, rows: int = 60, *, seed: int = 0, column: str | None = None,
                         row_group_rows: int = 16) -> tuple[Path, list]:
    """A parquet pool in Hub layout (data/train-00000-of-00001.parquet) whose label column has
    `shape`; returns (root, per row what it was given: label names, or (name, confidence) pairs)."""
    import datasets
    import pyarrow.parquet as pq

    lists = label_lists(rows, seed)
    images = [{"bytes": jpeg_bytes(seed * 100_000 + 50_000 + k), "path": None} for k in range(rows)]
    given: list = lists
    label = datasets.ClassLabel(names=VOCAB)
    if shape == "classlabel":
        col = column or "labels"
        feats = {col: datasets.List(label)}
        values = [[VOCAB.index(x) for x in xs] for xs in lists]
    elif shape == "strings":
        col = column or "labels"          # (a list of strings named `tags` is text: sources.text)
        feats = {col: datasets.List(datasets.Value("string"))}
        values = lists
    elif shape == "ints":                 # no ClassLabel: the ints are class ids with no names
        col = column or "labels"
        feats = {col: datasets.List(datasets.Value("int64"))}
        values = [[VOCAB.index(x) for x in xs] for xs in lists]
        given = [[str(VOCAB.index(x)) for x in xs] for xs in lists]
    elif shape == "records":
        col = column or "labels"
        feats = {col: datasets.List({"label": datasets.Value("string"), "score": datasets.Value("float32")})}
        values = [[{"label": x, "score": 0.9} for x in xs] for xs in lists]
    elif shape == "coco":                 # datasets' Sequence of objects: a struct of lists
        col = column or "objects"
        feats = {col: datasets.Sequence({"bbox": datasets.List(datasets.Value("float32"), length=4),
                                         "category": label})}
        values = [{"bbox": [[1.0, 2.0, 3.0, 4.0]] * len(xs), "category": [VOCAB.index(x) for x in xs]}
                  for xs in lists]
    elif shape == "coco-list":            # a list of object records
        col = column or "objects"
        feats = {col: datasets.List({"bbox": datasets.List(datasets.Value("float32")), "category": label})}
        values = [[{"bbox": [1.0, 2.0, 3.0, 4.0], "category": VOCAB.index(x)} for x in xs] for xs in lists]
    elif shape == "openimages":
        col = column or "labels"
        feats = {col: datasets.List({"label": datasets.Value("string"), "confidence": datasets.Value("float32")})}
        given = confidences(lists, seed + 1)
        values = [[{"label": x, "confidence": c} for x, c in row] for row in given]
    else:
        raise ValueError(shape)
    ds = datasets.Dataset.from_dict({"image": images, col: values},
                                    features=datasets.Features({"image": datasets.Image(), **feats}))
    (root / "data").mkdir(parents=True, exist_ok=True)
    table = ds.data.table
    if shape == "strings":                # a plain pyarrow file: no `datasets` metadata, found by name
        table = table.replace_schema_metadata(None)
    pq.write_table(table, str(root / "data" / "train-00000-of-00001.parquet"), row_group_size=row_group_rows)
    (root / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# multi-label test pool\n")
    return root, given
