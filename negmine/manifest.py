"""Manifest rows: where every written file came from, in a deterministic order.

Paths are relative to --out and rows are sorted, so two runs with the same seed and inputs give
byte-identical manifests wherever they were written.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

FIELDS = ("path", "split", "class", "role", "source", "revision", "file", "row", "member", "label", "sha256",
          "width", "height", "licence", "reencoded", "near", "hash", "cutout",
          "labels", "verified_absent")   # multi-label pools: every label; the absences a rater confirmed


def row(**values) -> dict:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown manifest fields {sorted(unknown)}")
    return {k: values.get(k) for k in FIELDS}


def sort_rows(rows: Iterable[dict], split_order: Sequence[str]) -> list[dict]:
    rank = {s: i for i, s in enumerate(split_order)}
    return sorted(rows, key=lambda r: (rank.get(r["split"], len(rank)), r["class"], r["path"]))


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_json(path: Path, data: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def write_outputs(writer, rows: list[dict], rejects: list[dict], record: dict) -> None:
    """manifest.jsonl, rejects.jsonl and negmine.json, the three files every negmine output has."""
    write_jsonl(writer.path("manifest.jsonl"), rows)
    write_jsonl(writer.path("rejects.jsonl"), rejects)
    from negmine.writers import RUN_RECORD

    write_json(writer.path(RUN_RECORD), record)
