"""A trainer's scores for `negmine mine`: which column is the id and which the score, found by name
and never by position.

A scores file is CSV, JSON Lines (``.jsonl``/``.ndjson``) or parquet (``.parquet``). Its columns:

- the id: the one column named ``id``/``path``/``file``/... (`ID_COLUMNS`), or ``--id-column``;
- the score, "higher = more like a positive" (a probability or a logit): the one column named
  ``score``/``prob``/``logit``/... (`SCORE_COLUMNS`), or ``--score-column`` (several, comma
  separated: the highest of them), or, when the file has one column per class (the common export
  ``path,other,raccoon``, as ML Workbench and GaNDLF write it), the columns named like the positive
  classes (the highest of them per image), with the negative class's column left out: P(other) is
  the opposite of what mining ranks by.

Anything else (no such column, several, both a score column and per-class columns, unknown numeric
columns beside the class columns) is a one-line `NegmineError` naming the candidates and the
option that chooses.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from negmine.errors import NegmineError

ID_COLUMNS = ("id", "path", "file", "fname", "filename", "file_name", "filepath", "image", "image_path")
SCORE_COLUMNS = ("score", "prob", "probability", "max_prob", "logit", "confidence")


@dataclass
class ScoreClasses:
    """What the scored images' classes are called: `positive` classes (a column named like one is a
    positive-class score) and `negative` ones (a column named like one is not a score)."""

    positive: list[str] = field(default_factory=list)
    negative: list[str] = field(default_factory=list)


@dataclass
class Scores:
    """`values`: {id: score}, higher = more like a positive. `id_column`, `score_columns` (the
    score is the highest of these per id) and `ignored` (negative-class columns) as the file
    spells them; `how`: one line saying so."""

    values: dict[str, float]
    id_column: str
    score_columns: list[str]
    ignored: list[str] = field(default_factory=list)

    @property
    def how(self) -> str:
        cols = ", ".join(self.score_columns)
        what = (f"column {cols}" if len(self.score_columns) == 1
                else f"the highest of columns {cols}")
        ignored = f"; negative-class column {', '.join(self.ignored)} ignored" if self.ignored else ""
        return f"ranked by {what} (higher = more like a positive = harder){ignored}"


def _norm(name: object) -> str:
    """A column or class name as compared: case, and spaces/underscores/hyphens, do not count
    (a folder `red fox` is the class `red_fox` of a negmine output)."""
    return re.sub(r"[\s_-]+", "_", str(name).strip().lower())


def _table(path: Path) -> tuple[list[str], list[list], list[int]]:
    """(column names, rows of values, each row's line number or row number for messages)."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except (OSError, ValueError, pa.ArrowException) as exc:
            raise NegmineError(f"--scores {path}: not a readable parquet file ({str(exc).splitlines()[0]})") from None
        data = table.to_pydict()
        names = list(data)
        return names, [list(r) for r in zip(*(data[n] for n in names))], list(range(1, table.num_rows + 1))
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise NegmineError(f"--scores {path}: not a readable text file ({exc})") from None
    if suffix in (".jsonl", ".ndjson"):
        records, lines = [], []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                raise NegmineError(f"--scores {path}:{n}: not a JSON object") from None
            if not isinstance(rec, dict):
                raise NegmineError(f"--scores {path}:{n}: not a JSON object")
            records.append(rec)
            lines.append(n)
        names = list(dict.fromkeys(k for r in records for k in r))
        return names, [[r.get(k) for k in names] for r in records], lines
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise NegmineError(f"--scores {path}: not a readable CSV file ({exc})") from None
    if not rows:
        return [], [], []
    body = [(n, r) for n, r in enumerate(rows[1:], 2) if r and "".join(r).strip()]
    for n, r in body:
        if len(r) < len(rows[0]):
            raise NegmineError(f"--scores {path}:{n}: too few columns")
    return [h.strip() for h in rows[0]], [r for _, r in body], [n for n, _ in body]


def _number(value: object) -> float | None:
    """A score value as a float; None when it is not a number (bools are not)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        return None


def _find(names: list[str], wanted: str, path: Path, option: str) -> int:
    hits = [i for i, n in enumerate(names) if _norm(n) == _norm(wanted)]
    if not hits:
        raise NegmineError(f"--scores {path}: no column {wanted!r} ({option}); columns: {', '.join(names)}")
    return hits[0]


def _refuse(path: Path, what: str, candidates: Iterable[str], option: str, more: str = "") -> NegmineError:
    listed = ", ".join(repr(c) for c in candidates)
    return NegmineError(f"--scores {path}: {what} ({listed}){more}; say which with {option}")


def read_scores(path: Path, id_column: str | None = None, score_column: str | None = None,
                classes: ScoreClasses | None = None) -> Scores:
    """The scores of a CSV, JSON Lines or parquet file, columns chosen as the module says.
    `score_column`: one column, or several comma-separated (the score is their highest).
    `classes`: the scored images' class names, for files with one column per class. Raises
    NegmineError for an unreadable file, an ambiguous or missing column, a value that is not a
    finite number, and an id given twice."""
    path = Path(path)
    names, rows, where = _table(path)
    if not rows:
        raise NegmineError(f"--scores {path}: needs a header and at least one row")
    folded = [_norm(n) for n in names]
    twice = sorted({n for n in names if folded.count(_norm(n)) > 1})
    if twice:
        raise NegmineError(f"--scores {path}: column name(s) {', '.join(twice)} appear more than once")

    if id_column:
        i = _find(names, id_column, path, "--id-column")
    else:
        cands = [k for k, n in enumerate(folded) if n in ID_COLUMNS]
        if len(cands) != 1:
            raise _refuse(path, "no id column among its columns" if not cands else f"{len(cands)} id columns",
                          [names[k] for k in cands] or names, "--id-column",
                          "" if cands else f" (an id is named {'/'.join(ID_COLUMNS[:3])}...)")
        i = cands[0]

    def numeric(k: int) -> bool:
        vals = [r[k] for r in rows if r[k] not in (None, "")]
        return bool(vals) and all(_number(v) is not None for v in vals)

    ignored: list[str] = []
    if score_column:
        cols = [_find(names, c, path, "--score-column") for c in score_column.split(",") if c.strip()]
        if not cols:
            raise NegmineError("--score-column names no column")
    else:
        pos = {_norm(c) for c in (classes.positive if classes else [])}
        neg = {_norm(c) for c in (classes.negative if classes else [])} - pos
        named = [k for k, n in enumerate(folded) if n in SCORE_COLUMNS and k != i]
        per_class = [k for k, n in enumerate(folded) if n in pos and k != i]
        negative = [k for k, n in enumerate(folded) if n in neg and k != i]
        if named and per_class:
            raise _refuse(path, "has both a score column and per-class columns",
                          [names[k] for k in named + per_class], "--score-column")
        if len(named) > 1:
            raise _refuse(path, f"{len(named)} score columns", [names[k] for k in named], "--score-column")
        if named:
            cols = named
        elif per_class:
            unknown = [k for k in range(len(names)) if k not in (i, *per_class, *negative) and numeric(k)]
            if unknown:
                raise _refuse(path, "has numeric columns that are not the pool's classes",
                              [names[k] for k in unknown], "--score-column",
                              f" beside the positive-class columns {', '.join(names[k] for k in per_class)}")
            # every positive class needs its column: ranking by some would keep the easy negatives
            # of the others (an image much like the missing class scores nothing there)
            lacking = sorted(c for c in (classes.positive if classes else []) if _norm(c) not in
                             {folded[k] for k in per_class})
            if lacking:
                raise NegmineError(
                    f"--scores {path}: has per-class columns for {', '.join(names[k] for k in per_class)} but "
                    f"none for the positive class{'es' if len(lacking) > 1 else ''} {', '.join(lacking)}; "
                    "add a column per positive class, or name the ranking score with --score-column")
            cols, ignored = per_class, [names[k] for k in negative]
        else:
            others = [k for k in range(len(names)) if k != i and numeric(k)]
            if negative and all(k in negative for k in others):
                raise NegmineError(
                    f"--scores {path}: its only score is the negative class's column "
                    f"{', '.join(names[k] for k in negative)}; mining ranks by the positive classes' score "
                    "(higher = more like a positive): add that column, or name it with --score-column")
            more = (" (a score is named score/prob/logit, or a column per class named like the pool's "
                    "classes" + (f": {', '.join(sorted(classes.positive))}" if classes and classes.positive else "")
                    + ")")
            raise _refuse(path, "no score column among its numeric columns" if others else "no numeric column",
                          [names[k] for k in others] or names, "--score-column (several: A,B for their highest)",
                          more)

    scores: dict[str, float] = {}
    for row, n in zip(rows, where):
        cid = row[i]
        if cid is None or not str(cid).strip():
            raise NegmineError(f"--scores {path}:{n}: empty id")
        cid = str(cid)
        best = -math.inf
        for k in cols:
            value = _number(row[k])
            if value is None:
                raise NegmineError(f"--scores {path}:{n}: score {row[k]!r} is not a number")
            if not math.isfinite(value):
                raise NegmineError(f"--scores {path}:{n}: score {row[k]!r} is not finite")
            best = max(best, value)
        if cid in scores:
            raise NegmineError(f"--scores {path}:{n}: id {cid!r} appears twice")
        scores[cid] = best
    return Scores(scores, names[i], [names[k] for k in cols], ignored)
