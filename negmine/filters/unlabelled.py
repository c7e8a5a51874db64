"""Pools negmine cannot label: refuse them, leave their unlabelled rows out, or (opted in) say the risk.

negmine keeps the positives out of a pool by its labels (negmine.filters.overlap) and by image hashes; an
image with no label passes the class checks unseen. So, before the draw:

- a source none of whose images carries a label (a flat folder of photos, a table with no label
  column or only ClassLabel -1, an imagefolder split whose metadata names none of its images) is
  refused with one line (`UnlabelledPool`) naming the ways forward: label it (a folder per class,
  a metadata.jsonl/csv, files named by ImageNet wnid), `--content-check clip` (zero-shot CLIP
  checks each image it keeps), or `--allow-unlabelled` / `SPEC?unlabelled=allow` (accept the risk);
- the unlabelled rows of a labelled source (ClassLabel -1, a null label, an image file no metadata
  record names, an image outside any class folder) are left out of the draw and counted;
- with `--allow-unlabelled` (or `--content-check clip`) they are drawn, and the plan, the run's
  stderr, negmine.json `warnings` and the report say so with the expected contamination below.

Multi-label pools: an image whose label list is empty is labelled (its annotation lists none of the
pool's classes) and stays eligible; only an imagefolder image with no metadata record at all counts
as unlabelled there. A pool labelled by its text (negmine.sources.text) is the exception: an image
whose text is empty or names no noun says nothing, so it is unlabelled.

Expected contamination of unlabelled images (`expected_share`): there is no label to estimate from,
so the estimate *assumes the pool's photos are like ImageNet-1k's*: the share of the 50,000
ImageNet-1k validation images that show a positive, counting every image of a class the positives
cover (is, is a kind of, or contains it, as negmine.filters.contamination judges) and every other image whose
ImageNet-ReaL labels (Beyer et al. 2020; the table shipped in negmine/data) include such a class.
A positive that covers no ImageNet-1k class (ImageNet has no raccoon) cannot be estimated this way:
its share is "unknown", and so is the total when no positive can be estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from negmine.errors import UnlabelledPool
from negmine.progress import warn

ASSUMPTION = ("assumes the pool's photos are like ImageNet-1k's: share of the 50,000 ImageNet-1k validation "
              "images that are of, or per ImageNet-ReaL show, a class a positive covers")


@dataclass
class UnlabelledRows:
    """One source's rows without a label, and what the run does with them."""

    source: str                          # the source's id
    rows: int                            # unlabelled rows
    of: int                              # all rows of the source
    reason: str                          # why they carry no label, in words
    drawn: bool                          # True: eligible (opted in, or content-checked); False: left out
    how: str | None = None               # the option that made them eligible
    examples: list[dict] = field(default_factory=list)   # a few origins ({"file": ...}), when known

    def as_dict(self) -> dict:
        return {"source": self.source, "rows": self.rows, "of": self.of, "reason": self.reason,
                "drawn": self.drawn, "how": self.how, "examples": self.examples}


def unlabelled_mask(src) -> np.ndarray:
    """bool per row of a `negmine.sources.Source`: the row carries no label. Single-label pools:
    code -1 (ClassLabel -1, null, no record, no class folder). Multi-label pools: only images with
    no metadata record (`ImageFolderSource.unlisted`); an empty label list is a label. Rows in the
    source's `label_errors` (if it has them) are not counted: the read rejects them with a reason."""
    if src.multi_label:
        mask = np.zeros(len(src), bool)
        mask[list(getattr(src, "unlisted", ()))] = True
        if getattr(src, "text_columns", None):          # no noun in its text: nothing vouches for it
            mask |= np.diff(src.label_offsets) == 0
    else:
        mask = np.asarray(src.codes) < 0
    # a row whose label is known to be broken is a broken sample, rejected with its reason when drawn
    # (a tar sample without its label in a labelled shard, a ClassLabel out of range), not unlabelled
    errors = getattr(src, "label_errors", None)
    if errors:
        mask[list(errors)] = False
    return mask


def _not_wnid_named(src) -> str:
    odd = getattr(src, "wnid_misfits", [])
    return ("they sit in no class folder and are not all named by ImageNet wnid (n01440764_*.JPEG)"
            + (f"; the files that keep a wnid-named folder unlabelled: {', '.join(odd)} (rename or remove "
               "them, and the rest are labelled by their wnid)" if odd else ""))


def _reason(src, mask: np.ndarray) -> str:
    """Why a source's rows carry no label, in words (a clause)."""
    from negmine.sources.folder import FolderSource
    from negmine.sources.imagefolder import ImageFolderSource
    from negmine.sources.webdataset import WebDatasetSource

    if isinstance(src, ImageFolderSource):
        unlisted = len(getattr(src, "unlisted", ()))
        if src.label_from == "metadata":
            if unlisted == int(mask.sum()):
                return "no metadata record names them (`datasets` does not load them either)"
            if not unlisted:
                return "their metadata record has a null or empty label"
            return f"{unlisted} have no metadata record, the others a null or empty label"
        return _not_wnid_named(src)
    if isinstance(src, FolderSource):
        return _not_wnid_named(src)
    if isinstance(src, WebDatasetSource):
        return ("their samples have no .cls member nor a label field in .json; a .txt member, a caption in "
                "most WebDatasets, is read as the label only with ?label=txt")
    if getattr(src, "text_columns", None):
        return f"their text ({', '.join(repr(c) for c in src.text_columns)}) is empty or names no WordNet noun"
    column = getattr(src, "label_column", None)
    if column is None and not src.classes:
        text = (", nor a text column (caption, title, tags, ...: --text-column names one)"
                if hasattr(src, "text_columns") else "")
        return f"no label column was found (or --label-column none){text}"
    if column is not None:
        return f"their label in column {column!r} is -1, null or not a class"
    return "their label is missing or not a class"


def _examples(src, rows: np.ndarray, k: int = 5) -> list[dict]:
    origin = getattr(src, "origin", None)
    if origin is not None:
        return [origin(int(r)) for r in rows[:k]]
    paths = getattr(src, "paths", None)
    if paths is not None:
        return [{"file": paths[int(r)]} for r in rows[:k]]
    return [{"row": int(r)} for r in rows[:k]]


def check_sources(sources, allowed: list[bool], content_check: bool | None) -> tuple[list[UnlabelledRows | None],
                                                                                       list[np.ndarray | None]]:
    """Decide, per source, what happens to its unlabelled rows, before any draw.

    `allowed[i]`: source i accepts unlabelled images (--allow-unlabelled or ?unlabelled=allow);
    `content_check`: --content-check clip vouches for each image it keeps (None: the command has no
    such option, and the refusal does not offer it). Returns
    (per source the `UnlabelledRows` or None when every row is labelled, per source the bool mask
    of rows to leave out of the draw or None). Raises `UnlabelledPool` (one line) for the first
    source none of whose rows carries a label, unless allowed or content-checked."""
    found: list[UnlabelledRows | None] = []
    masks: list[np.ndarray | None] = []
    for src, allow in zip(sources, allowed):
        mask = unlabelled_mask(src)
        n = int(mask.sum())
        if not n:
            found.append(None)
            masks.append(None)
            continue
        rows = np.flatnonzero(mask)
        how = "--allow-unlabelled" if allow else "--content-check clip" if content_check else None
        if n == len(src) and how is None:
            raise UnlabelledPool(refusal(src, _reason(src, mask), content_check is not None))
        found.append(UnlabelledRows(src.id, n, len(src), _reason(src, mask), how is not None, how,
                                    _examples(src, rows)))
        masks.append(None if how else mask)
    return found, masks


def refusal(src, reason: str, offer_content_check: bool = True) -> str:
    """The one-line refusal of a source none of whose images carries a label; `offer_content_check`:
    name --content-check clip among the ways forward (commands that have it)."""
    clip = "add --content-check clip (CLIP checks each image), " if offer_content_check else ""
    return (f"source {src.id}: none of its {len(src)} images carries a label ({reason}), so negmine cannot keep "
            "the positives out of it; label it (a folder per class, a metadata.jsonl/csv with file_name and "
            f"label, or files named by ImageNet wnid), {clip}or "
            f"accept the risk with --allow-unlabelled (this source only: {src.id}?unlabelled=allow)")


def expected_share(concepts, unmapped_terms=()) -> dict:
    """The share of unlabelled images expected to show a positive, under the module's ImageNet
    assumption. `concepts`: `concepts.Concept`s (the positives and --exclude terms); `unmapped_terms`:
    terms WordNet could not place (unknown). Returns {"share": float | None (None: unknown),
    "per_term": {term: share | None}, "unknown_terms": [...], "assumption": str}."""
    from negmine.filters.contamination import Cooccurrence, positive_classes
    from negmine.filters.taxonomy import Taxonomy

    table = Cooccurrence.load()
    tax = Taxonomy.load()
    covered = positive_classes(list(concepts), tax, table)
    total = sum(r.images for r in table.rows)

    def share(classes: set[int]) -> float:
        shown = sum(r.images if c in classes else table.showing(c, classes) for c, r in enumerate(table.rows))
        return shown / total

    per_term = {t: (round(share(cs), 4) if cs else None) for t, cs in covered.items()}
    per_term.update({t: None for t in unmapped_terms})
    union = set().union(*(cs for cs in covered.values())) if covered else set()
    unknown = [t for t, v in per_term.items() if v is None]
    return {"share": round(share(union), 4) if union else None, "per_term": per_term, "unknown_terms": unknown,
            "assumption": ASSUMPTION}


def warning(u: UnlabelledRows, estimate: dict, taken: int | None = None, what: str = "planned") -> str:
    """One line for stderr, negmine.json `warnings` and the report: unlabelled images are drawn.
    `taken`: how many of the negatives (`what`: "planned" or "written") are unlabelled images;
    `estimate`: `expected_share`."""
    share = estimate["share"]
    if share is None:
        exp = "how many show a positive is unknown (no positive covers an ImageNet-1k class)"
    else:
        exp = f"expected to show a positive: ~{share:.1%}"
        if taken:
            exp += f", ~{share * taken:.1f} of the {taken}"
        exp += f" ({estimate['assumption']}"
        exp += f"; unknown for {', '.join(estimate['unknown_terms'])}, so more)" if estimate["unknown_terms"] else ")"
    check = ("only the image-hash checks and CLIP (--content-check clip, quality not measured) keep the positives "
             "out of them" if u.how == "--content-check clip" else
             "only the image-hash checks keep the positives out of them")
    taken_text = "" if taken is None else f"; {taken} of the negatives {what} are such images"
    return (f"{u.source}: {u.rows} of its {u.of} images carry no label ({u.reason}) and are drawn ({u.how})"
            f"{taken_text}; {check}; {exp}")


def left_out_line(u: UnlabelledRows) -> str:
    """One line for the plan: unlabelled rows of a labelled source are not drawn."""
    shown = ", ".join(e.get("member") or e.get("file") or f"row {e.get('row')}" for e in u.examples[:3])
    return (f"{u.source}: {u.rows} of its {u.of} images carry no label ({u.reason}) and are left out of the draw"
            f" (e.g. {shown}); --allow-unlabelled draws them")


def say(lines: list[str], show: bool) -> None:
    """The warnings on stderr as the plan is made (before the draw), unless quiet."""
    for line in lines:
        warn(line, show)
