"""A trainer's scores for one split of a negmine output, read and joined to its manifest.

The file is CSV, JSON Lines (``.jsonl``/``.ndjson``) or parquet, read with pyarrow. Its columns are
chosen by name, never by position:

- the path: the one column named ``path``/``file``/``image``/``filepath``/... (`PATH_COLUMNS`), or
  ``--path-column``; a path is the manifest's ``path`` (relative to the output folder) or an absolute
  path under that folder;
- the scores: one column per class named as in the output's ``classes.txt`` (every positive class,
  and the negative class ``other`` or not), or one score column named ``score``/``prob``/``logit``/...
  (`SCORE_COLUMNS`), or ``--score-column``.

Direction: "higher = positive" unless the one score column is the negative class's (``other``), or
``--higher-is other``: then the score is negated (an image likelier "other" is less positive). With
per-class columns the positive score is ``1 - p(other)`` when an ``other`` column exists (for logits:
``-other``, same order), else the highest positive-class column. `Joined.how` says which.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine.errors import NegmineError
from negmine.filters.taxonomy import name_key

PATH_COLUMNS = ("path", "file", "filepath", "file_path", "filename", "file_name", "fname", "image",
                "image_path", "img", "id")
SCORE_COLUMNS = ("score", "scores", "prob", "probability", "max_prob", "logit", "confidence")
RUN_RECORD = "negmine.json"


@dataclass
class Output:
    """A negmine output folder as eval reads it: its manifest rows, class names (classes.txt, in
    the trainer's index order), negative class, and negmine.json (`record`, {} when unreadable)."""

    folder: Path
    rows: list[dict]
    classes: list[str]
    negative_class: str
    record: dict = field(default_factory=dict)

    def split_rows(self, split: str) -> list[dict]:
        """The manifest rows of one split; a split the output lacks is a NegmineError."""
        rows = [r for r in self.rows if r.get("split") == split]
        if not rows:
            have = sorted({str(r.get("split")) for r in self.rows})
            raise NegmineError(f"{self.folder}: no images in split {split!r} (splits: {', '.join(have)}); "
                               "choose one with --split")
        return rows


def open_output(folder: Path) -> Output:
    """Read a negmine output folder. Raises NegmineError when manifest.jsonl is missing or unreadable."""
    folder = Path(folder).expanduser().resolve()       # eval.json names it; `mine --from-eval` reads it from anywhere
    manifest = folder / "manifest.jsonl"
    if not manifest.is_file():
        sweep = sorted(p.parent.name for p in folder.glob("*/manifest.jsonl"))
        hint = f"; a sweep of {', '.join(sweep)}? give --scores NAME=FILE per member" if sweep else ""
        raise NegmineError(f"{folder}: not a negmine output (no manifest.jsonl){hint}")
    try:
        with open(manifest, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError) as exc:
        raise NegmineError(f"{manifest}: not readable ({exc})") from None
    try:
        record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        record = {}
    negative = (record.get("options") or {}).get("negative_class") or "other"
    classes_txt = folder / "classes.txt"
    if classes_txt.is_file():
        classes = [c.strip() for c in classes_txt.read_text(encoding="utf-8").splitlines() if c.strip()]
    else:
        classes = sorted({r["class"] for r in rows if r.get("class")})
    return Output(folder, rows, classes, negative, record)


def read_table(path: Path) -> dict[str, list]:
    """The columns of a CSV, JSONL or parquet file, {name: values} in file order (missing values None).
    Raises NegmineError for a file pyarrow cannot read."""
    import pyarrow as pa

    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            import pyarrow.json as pj

            table = pj.read_json(path)
        else:
            import pyarrow.csv as pc

            # every column as text first: a path column of digits stays text, scores are parsed below
            # with the row number in any error
            with pc.open_csv(path) as head:       # the header only: the column names
                names = head.schema.names
            table = pc.read_csv(path, convert_options=pc.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=True))
    except FileNotFoundError:
        raise NegmineError(f"--scores {path}: no such file") from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise NegmineError(f"--scores {path}: not a readable table ({str(exc).splitlines()[0]})") from None
    return table.to_pydict()


def _number(value: object) -> float:
    """A score as a float: NaN for a missing or non-numeric value (refused by the caller)."""
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


@dataclass
class Joined:
    """Scores joined to the manifest rows of one split, one entry per scored image of it.

    `rows`: the manifest rows; `y`: 1 for a positive, 0 for a negative (n,); `score`: the positive
    score, higher = more like a positive (n,); `matrix`: per-class scores (n, len(matrix_classes)) or
    None for a single score; `how`: how the positive score was made; `direction`: "positive" or
    "other" (what higher meant in the file); `counts`: missing / extra / other-split rows."""

    rows: list[dict]
    y: np.ndarray
    score: np.ndarray
    matrix: np.ndarray | None
    matrix_classes: list[str]
    path_column: str
    score_columns: list[str]
    how: str
    direction: str
    counts: dict = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
    other_column: str | None = None          # per-class scores: the negative class's column, if any


def _choose_path_column(names: list[str], given: str | None, path: Path) -> str:
    if given:
        hits = [n for n in names if name_key(n) == name_key(given)]
        if not hits:
            raise NegmineError(f"--scores {path}: no column {given!r} (--path-column); columns: {', '.join(names)}")
        return hits[0]
    hits = [n for n in names if name_key(n) in PATH_COLUMNS]
    if len(hits) != 1:
        what = "no path column" if not hits else f"{len(hits)} path columns ({', '.join(hits)})"
        raise NegmineError(f"--scores {path}: {what} among {', '.join(names)}; say which with --path-column")
    return hits[0]


def _choose_scores(names: list[str], data: dict[str, list], path_col: str, out: Output, score_column: str | None,
                   path: Path) -> tuple[list[str], str, list[str]]:
    """(score columns, kind, ignored numeric columns). kind: "matrix" (per class) or "single"."""
    keyed = {name_key(n): n for n in names if n != path_col}
    if score_column:
        hit = keyed.get(name_key(score_column))
        if hit is None:
            raise NegmineError(f"--scores {path}: no column {score_column!r} (--score-column); columns: {', '.join(names)}")
        return [hit], "single", []
    class_cols = [keyed[name_key(c)] for c in out.classes if name_key(c) in keyed]
    positives = [c for c in out.classes if name_key(c) != name_key(out.negative_class)]
    named = [n for k, n in keyed.items() if k in SCORE_COLUMNS]
    numeric = [n for n in names if n != path_col and any(v not in (None, "") for v in data[n])
               and all(not math.isnan(_number(v)) for v in data[n] if v not in (None, ""))]
    if named and class_cols:
        raise NegmineError(f"--scores {path}: both a score column ({', '.join(named)}) and per-class columns "
                           f"({', '.join(class_cols)}); say which with --score-column")
    if len(named) > 1:
        raise NegmineError(f"--scores {path}: {len(named)} score columns ({', '.join(named)}); "
                           "say which with --score-column")
    if named:
        return named, "single", [n for n in numeric if n not in named]
    pos_cols = [keyed[name_key(c)] for c in positives if name_key(c) in keyed]
    neg_col = keyed.get(name_key(out.negative_class))
    if not pos_cols and neg_col is not None:
        return [neg_col], "single", [n for n in numeric if n != neg_col]
    if pos_cols:
        lacking = [c for c in positives if name_key(c) not in keyed]
        if lacking:
            raise NegmineError(f"--scores {path}: per-class columns {', '.join(class_cols)} but none for "
                               f"{', '.join(lacking)} (classes.txt); add them, or name one score with --score-column")
        return class_cols, "matrix", [n for n in numeric if n not in class_cols]
    raise NegmineError(f"--scores {path}: no score column among {', '.join(n for n in names if n != path_col)} "
                       f"(a score is named {'/'.join(SCORE_COLUMNS[:4])}..., or one column per class of classes.txt: "
                       f"{', '.join(out.classes)}); say which with --score-column")


def _relative(value: object, folder: Path) -> str | None:
    """A path column value as a manifest path: relative as written, or absolute under the output."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    p = Path(text)
    if p.is_absolute():
        try:
            return p.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            return text                      # not under the output: counted as not in the manifest
    return re.sub(r"^(\./)+", "", p.as_posix())


def no_scored_image(path: Path, split: str, other_splits: list) -> str:
    """The one-line refusal for a scores file holding no image of `split`; `other_splits`: the
    manifest split of each score row that names an image of the output. Names the split the rows
    belong to (the usual mistake: test-split scores given with --split val); no option can measure
    a split nothing scored, so none is suggested."""
    have = Counter(str(s) for s in other_splits)
    if len(have) == 1:
        (other, n), = have.items()
        return (f"--scores {path}: no score row is an image of split {split}: every score row ({n}) is an image "
                f"of split {other}; --split {other}")
    if have:
        return (f"--scores {path}: no score row is an image of split {split}: the rows are images of "
                + ", ".join(f"{k} ({n})" for k, n in sorted(have.items())) + "; choose one with --split")
    return f"--scores {path}: no score row is an image of split {split} (nor of the output); nothing to measure"


def join_scores(out: Output, path: Path, split: str = "test", *, path_column: str | None = None,
                score_column: str | None = None, higher_is: str | None = None, allow_missing: bool = False,
                allow_extra: bool = False) -> Joined:
    """Read `path` and join it to the manifest rows of `split` of `out`.

    `higher_is`: "positive" or "other" (None: "other" only when the one score column is the
    negative class's). Raises NegmineError, one line each: an ambiguous or missing column, a
    path given twice, a score that is missing, not a number or NaN, images of the split without a
    score (unless `allow_missing`), score rows for images not in the manifest (unless
    `allow_extra`), and a split with only positives or only negatives scored."""
    path = Path(path)
    data = read_table(path)
    names = list(data)
    if not names or not any(len(v) for v in data.values()):
        raise NegmineError(f"--scores {path}: needs a header and at least one row")
    path_col = _choose_path_column(names, path_column, path)
    cols, kind, ignored = _choose_scores(names, data, path_col, out, score_column, path)
    by_path = {r["path"]: r for r in out.rows}
    wanted = {r["path"] for r in out.split_rows(split)}
    seen: dict[str, int] = {}
    extra, other_split, bad = [], 0, []
    for i, value in enumerate(data[path_col]):
        rel = _relative(value, out.folder)
        if rel is None:
            raise NegmineError(f"--scores {path}: row {i + 1} has an empty {path_col}")
        if rel in seen:
            raise NegmineError(f"--scores {path}: {rel} appears twice (rows {seen[rel] + 1} and {i + 1})")
        seen[rel] = i
        if rel not in by_path:
            extra.append(rel)
        elif rel not in wanted:
            other_split += 1
        elif any(math.isnan(_number(data[c][i])) or math.isinf(_number(data[c][i])) for c in cols):
            bad.append((i, rel))
    if bad:
        i, rel = bad[0]
        raise NegmineError(f"--scores {path}: {len(bad)} image(s) of split {split} have a missing, non-numeric or "
                           f"infinite score (first: row {i + 1}, {rel}); no metric is computed over a guess")
    if extra and not allow_extra:
        hint = (f"; they look relative to the split folder: write them relative to the output ({split}/{extra[0]})"
                if f"{split}/{extra[0]}" in by_path else "")
        raise NegmineError(f"--scores {path}: {len(extra)} row(s) name images not in {out.folder}/manifest.jsonl "
                           f"(first: {extra[0]}); a path is the manifest's path or absolute under the output "
                           f"(--allow-extra ignores them){hint}")
    missing = sorted(wanted - set(seen))
    if len(missing) == len(wanted):
        raise NegmineError(no_scored_image(path, split, [by_path[p].get("split") for p in seen if p in by_path]))
    if missing and not allow_missing:
        raise NegmineError(f"--scores {path}: {len(missing)} of the {len(wanted)} images of split {split} have no "
                           f"score (first: {missing[0]}); metrics over part of a test set are not comparable "
                           "(--allow-missing measures the rest)")
    rows = [r for r in out.split_rows(split) if r["path"] in seen]
    idx = [seen[r["path"]] for r in rows]
    values = np.array([[_number(data[c][i]) for c in cols] for i in idx], dtype=np.float64).reshape(len(idx), len(cols))
    y = np.array([1 if r.get("role") == "positive" else 0 for r in rows], dtype=np.int8)
    neg_key = name_key(out.negative_class)
    if kind == "matrix":
        if higher_is == "other":
            raise NegmineError(f"--higher-is other: {path} has one column per class ({', '.join(cols)}), whose "
                               "direction is known; it is for a single score column")
        matrix_classes = [next(c for c in out.classes if name_key(c) == name_key(col)) for col in cols]
        other = [k for k, c in enumerate(matrix_classes) if name_key(c) == neg_key]
        if other:
            score = 1.0 - values[:, other[0]]
            how = f"positive score = 1 - {cols[other[0]]} (the negative class's column)"
        else:
            score = values.max(axis=1)
            how = f"positive score = the highest of {', '.join(cols)} (no {out.negative_class} column)"
        direction, matrix = "positive", values
    else:
        matrix_classes, matrix = [], None
        direction = higher_is or ("other" if name_key(cols[0]) == neg_key else "positive")
        if direction == "other":
            score = -values[:, 0]
            how = f"positive score = -{cols[0]} (higher {cols[0]} = more like {out.negative_class})"
        else:
            score = values[:, 0]
            how = f"positive score = {cols[0]} (higher = more like a positive)"
    counts = {"scored": len(rows), "split_images": len(wanted), "missing": len(missing), "extra": len(extra),
              "other_split": other_split, "positives": int(y.sum()), "negatives": int(len(y) - y.sum())}
    other_col = cols[other[0]] if kind == "matrix" and other else None
    return Joined(rows, y, score, matrix, matrix_classes, path_col, cols, how, direction, counts, ignored, other_col)
