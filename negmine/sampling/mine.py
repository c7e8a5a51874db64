"""`negmine mine`: the second round of negative mining. A trainer scored candidate negatives (the
highest positive-class probability or logit per image); keep the hardest N, skipping the very top
(ATOM/NTOM skip the hardest ~12.5% as likely mislabelled positives). The overlap and dedup filters
of `sample` still apply.

Candidate ids, as the scores file names them:
- pool = a negmine output folder (or its manifest.jsonl): the manifest `path` of each negative
  (its val/test negatives are left out unless --allow-held-out: `negmine.sampling.shortfall`);
- pool = a folder of images: the path relative to that folder;
- pool = parquet / Hub / save_to_disk: `FILE#ROW` (the manifest's `file` and `row`), or `#ROW`.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from negmine import __version__
from negmine.engine.distribute import ENGINE_OPTIONS, make_distributor
from negmine.sampling.draw import Candidate
from negmine.sampling.negatives import draw_negatives, place_negatives, positive_filters
from negmine.errors import NegmineError, PoolTooSmall
from negmine.filters.hashing import DEFAULT_DISTANCE
from negmine.images import EncodeOptions
from negmine.licences import licence_fields
from negmine.outputs.manifest import read_jsonl, write_outputs
from negmine.naming import UniqueNames, safe_name
from negmine.filters.concepts import recorded_exclusion_options
from negmine.filters.overlap import ClassPlan, hash_files, plan_classes
from negmine.filters.unlabelled import UnlabelledRows, check_sources, expected_share, unlabelled_mask, warning
from negmine.positives import scan_positives
from negmine.sampling.confused import AlreadyEvaluated, EvalScores, read_confused
from negmine.sampling.scores import ScoreClasses, read_scores
from negmine.sampling.shortfall import held_out_reason, held_out_warning, is_held_out, shortfall_message
from negmine.sources import FolderSource, Source, SourceSpec, open_source
from negmine.sources.archive import list_label_codes
from negmine.outputs.writers import RUN_RECORD, Run, check_workers, plain_record, refuse_out_inside, run_options

class _ManifestPool(FolderSource):
    """The negatives of an earlier negmine output, read from that output's files. Labels as the
    manifest records them: every label of an image from a multi-label pool (`labels`), else its
    one `label`; so `mine` excludes by every label, as `sample` did."""

    def __init__(self, out: Path):
        rows = read_jsonl(out / "manifest.jsonl")
        self.rows = [r for r in rows if r["role"] == "negative"]
        self.positive_paths = [out / r["path"] for r in rows if r["role"] == "positive"]
        self.positive_classes = sorted({r["class"] for r in rows if r["role"] == "positive" and r.get("class")})
        self.positive_ids = {r["path"] for r in rows if r["role"] == "positive"}
        self.splits = [r.get("split") for r in self.rows]
        self.negative_classes = sorted({r["class"] for r in self.rows if r.get("class")})
        try:
            self.record = json.loads((out / RUN_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.record = {}
        Source.__init__(self, id=str(out), short=safe_name(out.name, max_len=24), revision=None, licence=None)
        from fsspec.implementations.local import LocalFileSystem

        self._fs, self._root, self.is_remote = LocalFileSystem(), str(out), False
        self.paths = [r["path"] for r in self.rows]
        if any(isinstance(r.get("labels"), list) for r in self.rows):
            # a row from a single-label source (a run over several) carries its one label
            lists = [[(x, None) for x in r["labels"]] if isinstance(r.get("labels"), list)
                     else [(r["label"], None)] if r.get("label") else [] for r in self.rows]
            self.set_label_lists(list_label_codes(lists, None, f"the labels in {out / 'manifest.jsonl'}"))
        else:
            labels = sorted({r["label"] for r in self.rows if r.get("label")})
            lookup = {lab: k for k, lab in enumerate(labels)}
            self.classes = labels
            self.codes = np.array([lookup.get(r.get("label"), -1) for r in self.rows], dtype=np.int32)
        # the earlier run's licence fields, per image: a manifest is a pool with per-row licences
        self.licences = [{k: r.get(k) for k in ("licence", "licence_url", "credit", "page_url", "title")} for r in self.rows]

    def exclusion_options(self) -> dict:
        """The class-exclusion options of the run that drew these negatives (`plan_classes`
        keywords), so a term excluded here is judged by the same rule."""
        return recorded_exclusion_options(self.record)


def _score_classes(src: Source | None, pos, negative_class: str) -> ScoreClasses:
    """The class names a per-class scores file may use: an output pool's positive classes and its
    negative class (as its manifest records them, the names a trainer reading that folder uses),
    and the --positives class folders; the negative class of a pool that is no output is
    --negative-class."""
    positive = list(pos.classes) if pos is not None else []
    negative = [negative_class]
    if isinstance(src, _ManifestPool):
        positive += src.positive_classes
        negative = src.negative_classes or negative
    return ScoreClasses(sorted(set(positive)), sorted(set(negative)))


def _output_folder(pool: str) -> Path | None:
    """The negmine output folder `pool` names (the folder or its manifest.jsonl), else None."""
    p = Path(pool).expanduser()
    if p.is_file() and p.name.endswith(".jsonl"):
        p = p.parent
    if p.is_dir() and (p / "manifest.jsonl").is_file() and (p / RUN_RECORD).is_file():
        return p.resolve()
    return None


def open_pool(pool: str) -> Source:
    out = _output_folder(pool)
    return _ManifestPool(out) if out is not None else open_source(SourceSpec.parse(pool), progress=False)


@dataclass
class Warnings:
    """What a mine run must say in its output and negmine.json `warnings`, as `sample` says it: a
    positive name read as a part of it or matched only literally (`ClassPlan.notes`), and
    unlabelled images drawn under --allow-unlabelled with the expected contamination
    (negmine.filters.unlabelled.warning)."""

    plan: ClassPlan | None               # the ClassPlan of the exclusion terms, None without terms
    unlabelled: UnlabelledRows | None    # a pool's rows without a label (None: every row labelled)
    held_out: dict | None = None         # an output pool: its val/test images left out, or mined (--allow-held-out)

    def lines(self, src: Source, kept_rows: list[int]) -> list[str]:
        """The warning lines, given the pool rows the run kept."""
        out = list(self.plan.notes()) if self.plan is not None else []
        u = self.unlabelled
        if u is not None and u.drawn:
            concepts = self.plan.concepts if self.plan is not None else []
            estimate = expected_share(concepts, self.plan.unmapped_terms if self.plan is not None else ())
            taken = int(unlabelled_mask(src)[np.array(kept_rows, dtype=np.int64)].sum()) if kept_rows else 0
            out.append(warning(u, estimate, taken, "written"))
        if self.held_out is not None and self.held_out["allowed"]:
            mined = Counter(s for s in (src.splits[r] for r in kept_rows) if is_held_out(s))
            self.held_out["mined"] = dict(mined)
            if mined:
                out.append(held_out_warning(mined, src.id))
        return out


def _ids(src: Source) -> dict[str, int]:
    if isinstance(src, FolderSource):
        return {path: row for row, path in enumerate(src.paths)}
    if hasattr(src, "shard_rows"):          # parquet: FILE#ROW
        return {f"{name}#{local}": first + local for name, first, n in src.shard_rows() for local in range(n)}
    return {f"#{r}": r for r in range(len(src))}


@dataclass
class MineJob:
    scores: Path | None
    pool: str
    count: int
    out: Path | str                  # a local folder, or an fsspec URL (s3://bucket/ds, ...)
    skip_top: float | None = None    # default 0.125 with --scores, 0 with --from-eval
    from_eval: Path | None = None    # an eval.json: draw from the classes the model confuses (sampling.confused)
    positives: Path | None = None
    exclude: list[str] = field(default_factory=list)
    concepts: dict = field(default_factory=dict)      # --concept: {name: wnid or lemma}
    allow_unlabelled: bool = False   # a pool that is no negmine output: draw images no label vouches for, and say so
    allow_held_out: bool = False     # an output pool: mine its val/test images too (sampling.shortfall), and say so
    id_column: str | None = None
    score_column: str | None = None
    negative_class: str = "other"
    hash: str = "phash"
    hash_distance: int = DEFAULT_DISTANCE
    quality: int = 95
    max_size: int | None = None
    workers: int | None = None
    engine: str = "local"                    # "ray": the per-candidate work on Ray tasks (negmine.engine.distribute)
    ray_address: str | None = None           # with engine "ray": the cluster (default $RAY_ADDRESS, else a local Ray)
    overwrite: bool = False
    resume: bool = False
    progress: bool = True


def run_mine(job: MineJob) -> dict:
    t0 = time.monotonic()
    if job.count < 1:
        raise NegmineError("--count must be >= 1")
    if (job.scores is None) == (job.from_eval is None):
        raise NegmineError("give --scores (a model's scores of the pool) or --from-eval (an eval.json), one of them")
    if job.skip_top is None:
        job.skip_top = 0.0 if job.from_eval else 0.125
    if not 0 <= job.skip_top < 1:
        raise NegmineError("--skip-top must be a fraction in [0, 1)")
    if job.from_eval and job.skip_top:
        raise NegmineError("--skip-top ranks a model's scores; with --from-eval the draw is a weighted random one")
    refuse_out_inside(job.out, [("--scores", job.scores), ("--from-eval", job.from_eval), ("--pool", job.pool),
                                ("--positives", job.positives)])
    confused = read_confused(job.from_eval) if job.from_eval else None
    check_workers(job.out, job.workers, job.engine)
    # an output pool is its local manifest: open it first, its class names choose the score columns;
    # any other pool (a Hub repo) only once the scores file was read without error
    output = _output_folder(job.pool)
    src = _ManifestPool(output) if output is not None else None
    pos = scan_positives(job.positives) if job.positives else None
    if confused is None:
        scored = read_scores(job.scores, job.id_column, job.score_column, _score_classes(src, pos, job.negative_class))
    unlabelled, left_out = None, None
    if src is None:
        src = open_pool(job.pool)
        # the rule of `sample` before any work: a pool no label covers is refused, unlabelled rows of
        # a labelled one left out, unless opted in (an output pool's rows were vouched for when drawn)
        (unlabelled,), (left_out,) = check_sources(
            [src], [job.allow_unlabelled or SourceSpec.parse(job.pool).unlabelled == "allow"], None)
    ids = _ids(src)
    if confused is not None:
        labels = [src.label_of(row) for row in ids.values()]
        scored = EvalScores(confused.draw_keys(labels, list(ids)), confused, confused.absent(labels))
        if not scored.values:
            raise NegmineError(f"--from-eval: none of the confused classes ({', '.join(scored.absent)}) is a class "
                               f"of the pool {src.id}")
    scores = scored.values
    rejects, ranked = [], []
    pool_out = src if isinstance(src, _ManifestPool) else None
    held = {"allowed": job.allow_held_out, "left_out": {}} if pool_out is not None else None
    for cid, score in scores.items():
        split = pool_out.splits[ids[cid]] if pool_out is not None and cid in ids else None
        if cid in ids and is_held_out(split) and not job.allow_held_out:
            held["left_out"][split] = held["left_out"].get(split, 0) + 1
            rejects.append({"id": cid, "score": score, "reason": held_out_reason(split)})
        elif cid in ids:
            ranked.append((score, cid))
        elif pool_out is not None and cid in pool_out.positive_ids:
            rejects.append({"id": cid, "score": score, "reason": "a positive of the pool output (only its negatives "
                                                                 "are candidates)"})
        else:
            rejects.append({"id": cid, "score": score, "reason": "not in the pool"})
    if held and held["left_out"]:
        # the user scored images the pool output holds out for measuring: leaving them out quietly
        # would change which are "hardest", mining them would train on the yardstick; refuse and say both ways
        where = ", ".join(f"{n} of split {k}" for k, n in sorted(held["left_out"].items()))
        raise NegmineError(f"--scores {job.scores.name if job.scores else ''}: {sum(held['left_out'].values())} scored "
                           f"negatives are held out by the pool output for measuring ({where}): mining them "
                           "would train on them; score only its train split, or pass --allow-held-out (said in "
                           "the output)")
    if not ranked:
        raise NegmineError(f"none of the {len(scores)} scored ids is in the pool {src.id} "
                           f"(ids look like {next(iter(ids), '?')!r})")
    ranked.sort(key=lambda t: (-t[0], t[1]))          # hardest first; ties by id, so the order is stable
    skip = int(math.floor(job.skip_top * len(ranked)))
    for score, cid in ranked[:skip]:
        rejects.append({"id": cid, "score": score, "reason": f"in the top {job.skip_top:.1%} (likely mislabelled)"})
    ranked = ranked[skip:]
    # class-level overlap, when the pool has labels and positives are named
    positive_paths: list[Path] = []
    terms = list(job.exclude)
    if pos is not None:
        terms += list(pos.labels.values())
        positive_paths = [f.path for files in pos.classes.values() for f in files]
    elif isinstance(src, _ManifestPool):
        positive_paths = src.positive_paths
    if confused is not None:            # the evaluated run's positives and exclusions judge the new pool
        terms += confused.terms
        positive_paths += confused.positive_paths
    excluded, plan = set(), None
    if terms and (src.classes or unlabelled is not None):
        # the same class-level rule as `sample` (taxonomy and co-occurrence prior), with the options
        # of the run that drew an output pool
        rule = (src.exclusion_options() if isinstance(src, _ManifestPool)
                else confused.exclusion_options() if confused is not None else {})
        named = {**confused.concepts, **job.concepts} if confused is not None else job.concepts
        plan = plan_classes([src], terms, named=named, **rule)
        excluded = {i for i, v in enumerate(plan.per_source[0].verdicts) if v.excluded}
        if confused is not None:
            scored.note_excluded(plan.per_source[0].verdicts)
    # a multi-label pool: a row goes when any of its labels is excluded
    overlaps = src.rows_with_any(np.array(sorted(excluded), np.int32)) if excluded else None
    order = []
    for score, cid in ranked:
        row = ids[cid]
        if left_out is not None and left_out[row]:
            why = f"carries no label ({unlabelled.reason}): no class check can vouch for it (--allow-unlabelled draws it)"
            rejects.append({"id": cid, "score": score, "reason": why})
        elif overlaps is not None and overlaps[row]:
            what = f"a label of {src.labels_of(row)}" if src.multi_label else f"class {src.label_of(row)!r}"
            rejects.append({"id": cid, "score": score, "reason": f"{what} overlaps the positives"})
        else:
            order.append((score, cid, row))
    if confused is not None and not order:
        why = "; ".join(f"{x['label']} {x['reason']}" for x in scored.excluded) or "none left"
        raise NegmineError(f"--from-eval: every image of the confused classes in the pool is kept out ({why})")
    hash_kind = None if job.hash == "none" else job.hash
    # what negmine.json records: not how the run went (engine, progress, a resume), only what it wrote;
    # the run key is made from it, so the engine is not in it either
    record = plain_record({k: v for k, v in job.__dict__.items() if k not in ENGINE_OPTIONS + ("progress", "resume")})
    key = {"negmine_version": __version__,
           "scores_sha256": hashlib.sha256(Path(job.scores or confused.path).read_bytes()).hexdigest(),
           "options": run_options(record)}
    distributor = make_distributor(job.workers, job.engine, job.ray_address)
    try:
        with Run(job.out, key, overwrite=job.overwrite, resume=job.resume) as run:
            summary = _mine(job, src, order, positive_paths, rejects, scores, skip, hash_kind, run, distributor,
                            record, scored, Warnings(plan, unlabelled, held),
                            [AlreadyEvaluated(confused.rows, src.id)] if confused is not None else [])
    finally:
        distributor.close()
    summary["seconds"] = round(time.monotonic() - t0, 2)
    return summary


def _mine(job: MineJob, src: Source, order: list, positive_paths: list[Path], rejects: list[dict],
          scores: dict, skip: int, hash_kind: str | None, run: Run, distributor, record: dict, scored,
          warns: Warnings, more_filters: list) -> dict:
    writer = run.writer
    pos_hashes, pos_owner, pos_sha = [], [], {}
    for p in positive_paths:
        pos_sha[hashlib.sha256(p.read_bytes()).hexdigest()] = str(p)
    if positive_paths and hash_kind:
        hashed = hash_files([str(p) for p in positive_paths], hash_kind, False, distributor, job.progress)
        for p in positive_paths:
            if not isinstance(hashed[str(p)], str):
                pos_hashes += hashed[str(p)][0]
                pos_owner += [str(p)] * len(hashed[str(p)][0])
    filters = positive_filters(pos_sha, np.array(pos_hashes, dtype=np.uint64), pos_owner, hash_kind, job.hash_distance)
    filters += more_filters

    def candidate(p: int) -> Candidate:
        score, cid, row = order[p]
        return Candidate(p, 0, row, score=score)

    accepted, dropped = draw_negatives(candidate, len(order), job.count, [src], filters, writer, distributor,
                                       EncodeOptions(job.quality, job.max_size), hash_kind, run.journal,
                                       desc="mining", progress=job.progress)
    if len(accepted) < job.count:
        reasons = [r["reason"] for r in rejects] + [c.reason for c in dropped]
        raise PoolTooSmall(shortfall_message(len(accepted), job.count, reasons, from_eval=isinstance(scored, EvalScores),
                                             skip_top=job.skip_top), len(accepted), job.count)
    names, rows = UniqueNames(), []
    cls = safe_name(job.negative_class)
    credits = {} if isinstance(src, _ManifestPool) else src.attribution([c.row for c in accepted])
    for rank, c in enumerate(accepted):
        stem = safe_name(Path(c.origin.get("file") or f"{src.label_of(c.row) or 'img'}_{c.row}").stem)
        c.path = f"{cls}/{names.take(stem, '.jpg')}"
        rows.append({"path": c.path, "class": cls, "role": "negative", "score": order[c.priority][0],
                     "rank": rank, "id": order[c.priority][1], "source": src.id, "revision": src.revision,
                     "file": c.origin.get("file"), "row": c.origin.get("row"), "label": src.label_of(c.row),
                     **({"labels": src.labels_of(c.row)} if src.multi_label else {}),
                     "sha256": c.sha256, "width": c.encoded.width, "height": c.encoded.height,
                     **(src.licences[c.row] if isinstance(src, _ManifestPool) else
                        licence_fields(*src.licence_of(c.row), **credits.get(c.row, {}))),
                     "hash": f"{c.phash:016x}" if c.phash is not None else None})
    for c in dropped:
        score, cid, _ = order[c.priority]
        rejects.append({"id": cid, "score": score, "reason": c.reason})
    place_negatives(writer, distributor, [(c.tmp, c.path) for c in accepted])
    summary = {"negmine_version": __version__, "out": str(writer.out), "scored": len(scores),
               "kept": len(rows), "skipped_top": skip, "rejected": len(rejects),
               "score_range": [rows[-1]["score"], rows[0]["score"]] if rows else None,
               "scores": {"id_column": scored.id_column, "score_columns": scored.score_columns,
                          "ignored_columns": scored.ignored, "how": scored.how},
               "warnings": warns.lines(src, [c.row for c in accepted])}
    if warns.unlabelled is not None:
        summary["unlabelled"] = warns.unlabelled.as_dict()
    if warns.held_out is not None:
        summary["held_out"] = warns.held_out
    if isinstance(scored, EvalScores):
        summary["from_eval"] = scored.report([src.label_of(c.row) for c in accepted])
    write_outputs(writer, rows, rejects, {**summary, "out": None, "command": "mine", "job": record})
    run.journal.close()
    writer.publish()
    return summary
