"""The negatives stage: draw the pool's negatives in the planned order, through every filter
(exact and near duplicates of the positives, --content-check), give them their splits and names,
and write them out of scratch (the draw and the placing are `sampling.negatives`, shared with
`negmine mine`)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np

from negmine.errors import PoolTooSmall
from negmine.images import EncodeOptions
from negmine.outputs.formats import rel_path
from negmine.outputs.manifest import row as manifest_row
from negmine.licences import licence_fields
from negmine.naming import safe_name
from negmine.outputs.gallery import save_thumbnail
from negmine.outputs.report import DROP_THUMBNAILS
from negmine.pipeline.contract import RunContext, StageOutput
from negmine.pipeline.eval_from import HeldOutFilter
from negmine.sampling.draw import Candidate
from negmine.sampling.negatives import draw_negatives, place_negatives, positive_filters
from negmine.sampling.plan import negatives_needed, stable_splits
from negmine.seeds import rng_for


class DrawNegatives:
    """Draw and place the pool's share of the negatives. After `run`: `accepted` and `dropped`
    (the Candidates), `short` (fewer than `target` kept, under --allow-short), `content` and
    `content_info` (--content-check: the calibrated check, what it was calibrated on)."""

    def __init__(self) -> None:
        self.accepted: list[Candidate] = []
        self.dropped: list[Candidate] = []
        self.target = 0
        self.short = False
        self.content = None
        self.content_info: dict = {}

    def run(self, ctx: RunContext) -> StageOutput:
        """Draw `plan.needed` less the negatives already written (cutouts); raises PoolTooSmall
        when fewer pass the filters, unless --allow-short."""
        plan, writer = ctx.plan, ctx.writer
        opts = plan.opts
        # no pool opened (every negative a cutout): nothing to score, nothing to draw
        self.content = self._content_check(ctx) if opts.content_check and plan.pool is None else None
        written = Counter(r["class"] for r in ctx.rows if r["role"] == "positive")
        synthetic = sum(1 for r in ctx.rows if r["role"] == "negative")
        # --ratio and --balanced count the positives written: a positive that failed to encode is not one
        plan.needed = negatives_needed([written[c] for c in plan.positives.classes] or [0], ratio=opts.ratio,
                                       balanced=opts.balanced, count=opts.count)
        self.target = plan.needed - synthetic
        if plan.pool is not None:
            self.short = self.target > 0
            if self.short and not opts.allow_short:
                raise PoolTooSmall(f"{self.target} of the {plan.needed} negatives could not be cut out (see "
                                   "rejects.jsonl) and no pool was opened (every negative was planned as a "
                                   "cutout); pass --allow-short to keep fewer, or lower --synthetic to draw "
                                   "the rest from a pool", synthetic, plan.needed)
            return StageOutput()
        self.accepted, self.dropped = self._draw(ctx, self.target)
        self.short = len(self.accepted) < self.target
        if self.short and not opts.allow_short:
            raise PoolTooSmall(f"only {len(self.accepted)} usable negatives in the pool after filtering "
                               f"({len(self.dropped)} rejected), {self.target} needed; pass --allow-short "
                               "to keep fewer", len(self.accepted), self.target)
        # a negative's split depends on its place in the draw, not on how many are kept: runs of one
        # seed asking for fewer share their val and test with larger ones (sampling.plan.stable_splits)
        splits = stable_splits(len(self.accepted), plan.split_fracs, rng_for(plan.seed, "split-neg"))
        rows: list[dict] = []
        place_negatives(writer, ctx.distributor, self._negative_rows(ctx, splits, rows))
        return StageOutput(rows, [self._reject_row(ctx, c) for c in self.dropped])

    def _content_check(self, ctx: RunContext):
        """Load CLIP, build the prompts (positive terms and WordNet neighbour labels) and calibrate the
        threshold on the positives (negmine.filters.content)."""
        from negmine.filters.content import DEFAULT_MODEL, ClipScorer, ContentCheck, neighbour_labels, open_rgb

        plan = ctx.plan
        name = plan.opts.content_model or DEFAULT_MODEL
        terms = list(dict.fromkeys(list(plan.positives.labels.values()) + list(plan.opts.exclude)))
        check = ContentCheck(ClipScorer.load(name), terms, neighbour_labels(terms))
        images = [im for im in (open_rgb(f.path) for files in plan.positives.classes.values() for f in files)
                  if im is not None]
        self.content_info = {"model": name, "prompts": len(check.labels), "terms": terms,
                             **check.calibrate(images)}
        return check

    def _draw(self, ctx: RunContext, target: int) -> tuple[list[Candidate], list[Candidate]]:
        """Walk the planned order; keep the first `target` candidates that pass every filter."""
        plan, writer, journal = ctx.plan, ctx.writer, ctx.journal
        positives = [r for r in ctx.rows if r["role"] == "positive"]
        filters = positive_filters({r["sha256"]: r["path"] for r in positives}, *ctx.positive_hashes,
                                   plan.hash_kind, plan.opts.hash_distance)
        if plan.held_out is not None:       # --eval-from: nothing of the earlier val/test may be trained on
            filters.insert(0, HeldOutFilter(plan.held_out, plan.opts.hash_distance))
        if self.content is not None:        # last, so a duplicate is recorded as one; scores a window per batch
            from negmine.filters.content import ContentFilter

            filters.append(ContentFilter(self.content, lambda c: writer.read_scratch(c.tmp)))

        def candidate(p: int) -> Candidate:
            return Candidate(p, int(plan.order_src[p]), int(plan.order_row[p]),
                             near=plan.order_near[int(plan.order_stratum[p])])

        kept_thumbs = [sum(1 for e in journal.entries if e["t"] == "drop" and e.get("thumb"))]

        def on_drop(c: Candidate) -> None:
            # a few thumbnails of dropped duplicates, so the report can show them beside their twin
            flagged = (c.reason or "").startswith("looks like a positive")
            if (c.dup_of or flagged) and c.tmp and kept_thumbs[0] < DROP_THUMBNAILS:
                kept_thumbs[0] += 1
                c.thumbnail = f"report/drops/{c.priority}.jpg"
                thumb = io.BytesIO()
                save_thumbnail(io.BytesIO(writer.read_scratch(c.tmp)), thumb)
                writer.write_bytes(c.thumbnail, thumb.getvalue())

        return draw_negatives(candidate, plan.available, target, plan.sources, filters, writer, ctx.distributor,
                              EncodeOptions(plan.opts.quality, plan.opts.max_size), plan.hash_kind, journal,
                              desc="negatives", progress=plan.opts.progress, on_drop=on_drop)

    def _negative_rows(self, ctx: RunContext, splits: np.ndarray, rows: list[dict]):
        """Name each kept negative and add its manifest row; yields (scratch ref, path) to write."""
        plan, names = ctx.plan, ctx.negative_names
        # credit, page URL and title of the kept rows only, read now, once per source
        credits = {i: plan.sources[i].attribution([c.row for c in self.accepted if c.source == i])
                   for i in sorted({c.source for c in self.accepted})}
        for c, s in zip(self.accepted, splits):
            src = plan.sources[c.source]
            label = src.label_of(c.row)
            named = c.origin.get("member") or c.origin.get("file")   # a tar or zip member: its own name
            if c.origin.get("row") is None and named:                 # a file: its own name says most
                stem = safe_name(Path(named).stem)
            else:
                stem = safe_name(f"{label or 'img'}_{src.short}_{c.origin.get('row', c.row)}")
            c.path = rel_path(plan.opts.format, plan.split_names[s], plan.negative_class, names.take(stem, '.jpg'))
            rows.append(manifest_row(
                path=c.path, split=plan.split_names[s], **{"class": plan.negative_class}, role="negative",
                source=src.id, revision=src.revision, file=c.origin.get("file"), row=c.origin.get("row"),
                member=c.origin.get("member"),
                label=label, sha256=c.sha256, width=c.encoded.width, height=c.encoded.height,
                **licence_fields(*src.licence_of(c.row), **credits[c.source].get(c.row, {})),
                reencoded=c.encoded.reencoded, near=c.near,
                hash=f"{c.phash:016x}" if c.phash is not None else None,
                labels=src.labels_of(c.row), verified_absent=_verification(ctx, c)))
            if c.content is not None:
                rows[-1]["content_score"], rows[-1]["content_label"] = c.content
            yield c.tmp, c.path

    @staticmethod
    def _reject_row(ctx: RunContext, c: Candidate) -> dict:
        """The rejects.jsonl row of a dropped candidate: where it came from and why it went."""
        src = ctx.plan.sources[c.source]
        row = {"role": "negative", "source": src.id, "revision": src.revision, **c.origin,
               "label": src.label_of(c.row), "reason": c.reason}
        if src.multi_label:
            row["labels"] = src.labels_of(c.row)
        if c.dup_of:
            kind, other, dist = c.dup_of
            row["duplicate_of"] = other if kind == "positive" else other.path
            row["distance"] = dist
        if c.thumbnail:
            row["thumbnail"] = c.thumbnail
        if c.content is not None:
            row["content_score"], row["content_label"] = c.content
        return row


def _verification(ctx: RunContext, c: Candidate) -> dict | None:
    """--verified-absent: the positive concepts a rater confirmed absent from this negative,
    and the pool's confirmed-absent labels that say so."""
    plan = ctx.plan
    groups = plan.absence[c.source]
    if groups is None:
        return None
    src = plan.sources[c.source]
    wanted = {src.classes[k] for g in groups for k in g.tolist()}
    return {"concepts": plan.verified[src.id]["verified"],
            "absent_labels": [x for x in src.absent_labels_of(c.row) if x in wanted]}
