"""Exclusion by text, said per image: the rejects.jsonl rows of a captioned pool's images (read as
the nouns their text names, `negmine.sources.text`) that the class plan keeps out, each with the
words that named a positive, and of those whose text names no noun.

Which nouns exclude an image is the class plan's answer (`negmine.filters.overlap.plan_classes`):
a noun that is a positive concept, a kind of one or contains one in WordNet, each noun standing
for its common senses (`negmine.filters.words.caption_senses`): a word with two common senses
goes when either is excluded ('boxer' the dog and the fighter, for 'dog' and for 'person').
"""

from __future__ import annotations

import numpy as np

from negmine.filters.overlap import SourceClasses

REJECT_ROWS = 10_000      # rejects.jsonl rows per source and kind; the plan and negmine.json count them all


def is_text_source(src) -> bool:
    """The source's labels are the nouns of a text column (`negmine.sources.text`)."""
    return bool(getattr(src, "text_columns", None))


def origins(src, rows: np.ndarray) -> list[dict]:
    """Where pool rows are: {"file", "row"} (the row in its shard) for a sharded source, else {"row"}."""
    shards = getattr(src, "shard_rows", None)
    if shards is None:
        return [{"row": int(r)} for r in rows.tolist()]
    table = shards()
    starts = np.array([s for _, s, _ in table], np.int64)
    k = np.searchsorted(starts, rows, side="right") - 1
    return [{"file": table[j][0], "row": int(r - starts[j])} for j, r in zip(k.tolist(), rows.tolist())]


def matched_reason(sc: SourceClasses, row: int) -> str:
    """The reject reason of a row the text excludes: every excluded noun of its text with why,
    e.g. `text names a positive: "teddy bear" (is a kind of teddy ...)`."""
    src = sc.source
    a, b = int(src.label_offsets[row]), int(src.label_offsets[row + 1])
    hits = [sc.verdicts[c] for c in src.label_codes[a:b].tolist() if sc.verdicts[c].excluded]
    return "text names a positive: " + "; ".join(f'"{v.label}" ({v.reason})' for v in hits)


def text_rejects(sc: SourceClasses, no_text: np.ndarray | None, cap: int = REJECT_ROWS) -> tuple[list[dict], dict]:
    """(rejects.jsonl rows, counts) of a text source: the rows its text excludes (their words and
    why), and, when `no_text` (bool per row: left out for naming no noun) is given, those. At most
    `cap` rows of each kind are listed, the first in pool order; `counts` holds them all:
    {"excluded_by_text", "no_text_left_out", "listed"}."""
    src = sc.source
    base = {"role": "negative", "source": src.id, "revision": src.revision}
    excluded = np.flatnonzero(src.rows_with_any(sc.excluded_codes))
    rows = [{**base, **o, "label": None, "labels": src.labels_of(r), "reason": matched_reason(sc, r)}
            for r, o in zip(excluded[:cap].tolist(), origins(src, excluded[:cap]))]
    empty = np.flatnonzero(no_text) if no_text is not None else np.zeros(0, np.int64)
    cols = ", ".join(repr(c) for c in src.text_columns)
    why = (f"its text ({cols}) is empty or names no WordNet noun, so nothing vouches that it shows no positive "
           "(--allow-unlabelled draws it)")
    rows += [{**base, **o, "label": None, "labels": [], "reason": why} for o in origins(src, empty[:cap])]
    return rows, {"excluded_by_text": int(len(excluded)), "no_text_left_out": int(len(empty)), "listed": len(rows)}
