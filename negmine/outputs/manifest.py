"""Manifest rows: where every written file came from, in a deterministic order.

Paths are relative to --out and rows are sorted, so two runs with the same seed and inputs give
byte-identical manifests wherever they were written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

FIELDS = ("path", "split", "class", "role", "source", "revision", "file", "row", "member", "label", "sha256",
          "width", "height", "licence", "licence_url", "credit", "page_url", "title", "reencoded", "near", "hash", "cutout",
          "labels", "verified_absent")   # multi-label pools: every label; the absences a rater confirmed


def row(**values) -> dict:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown manifest fields {sorted(unknown)}")
    return {k: values.get(k) for k in FIELDS}


def sort_rows(rows: Iterable[dict], split_order: Sequence[str]) -> list[dict]:
    rank = {s: i for i, s in enumerate(split_order)}
    return sorted(rows, key=lambda r: (rank.get(r["split"], len(rank)), r["class"], r["path"]))


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_outputs(writer, rows: list[dict], rejects: list[dict], record: dict) -> None:
    """manifest.jsonl, rejects.jsonl, ATTRIBUTION.csv/.md (negmine.outputs.attribution) and
    negmine.json, the files every negmine output has, through the writer (a local folder or an
    fsspec URL). negmine.json is written last: its presence says the rest is complete."""
    import io

    from negmine.outputs.attribution import ATTRIBUTION_CSV, ATTRIBUTION_MD, attribution_csv, attribution_md
    from negmine.outputs.writers import RUN_RECORD

    for rel, items in (("manifest.jsonl", rows), ("rejects.jsonl", rejects)):
        with writer.open_write(rel) as raw:
            f = io.TextIOWrapper(raw, encoding="utf-8")
            for r in items:
                f.write(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n")
            f.flush()
            f.detach()                 # the writer closes (and uploads or renames) the file
    writer.write_bytes(ATTRIBUTION_CSV, attribution_csv(rows))
    writer.write_bytes(ATTRIBUTION_MD, attribution_md(rows, record.get("sources") or ()).encode("utf-8"))
    writer.write_bytes(RUN_RECORD, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def add_to_record(writer, key: str, value) -> None:
    """Add `key` to the negmine.json `write_outputs` wrote through `writer` (before it is published)."""
    from negmine.outputs.writers import RUN_RECORD

    record = json.loads(writer.read_bytes(RUN_RECORD))
    record[key] = value
    writer.write_bytes(RUN_RECORD, (json.dumps(record, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
