"""The end of a `sample` run: the rows of every stage sorted, the format's files (`finalize`),
manifest.jsonl, rejects.jsonl and negmine.json, the report; returns the run's summary."""

from __future__ import annotations

import time
from collections import Counter

from negmine import __version__
from negmine.outputs.attribution import licence_counts
from negmine.outputs.formats import finalize
from negmine.outputs.manifest import sort_rows, write_outputs
from negmine.outputs.report import write_report
from negmine.pipeline.contract import RunContext
from negmine.pipeline.negatives import DrawNegatives
from negmine.pipeline.plan_summary import expected_contaminated, links_lines, unlabelled_lines
from negmine.sources import budget


def write_summary(ctx: RunContext, negatives: DrawNegatives, synthetic: int, t0: float) -> dict:
    """Sort `ctx.rows` (into `ctx.rows`), write the outputs and the report (--report), and return
    the summary `negmine sample` prints (counts per split and class, rejects by reason, warnings).
    `negatives`: the stage that drew the pool's negatives; `synthetic`: cutouts written; `t0`: the
    run's start (time.monotonic)."""
    plan, writer, opts = ctx.plan, ctx.writer, ctx.plan.opts
    accepted, dropped = negatives.accepted, negatives.dropped
    rows = ctx.rows = sort_rows(ctx.rows, plan.split_names)
    rejects = ctx.rejects
    held = {r["path"] for r in plan.held_out.rows} if plan.held_out is not None else set()
    counts: dict[str, dict[str, int]] = {s: {} for s in plan.split_names}
    for r in rows:
        counts[r["split"]][r["class"]] = counts[r["split"]].get(r["class"], 0) + 1
    reasons = Counter(r["reason"].split(" (")[0] for r in rejects)
    summary = {
        "negmine_version": __version__, "seed": plan.seed, "out": str(writer.out),
        # this run's positives, as the negatives are: with --eval-from, OUT's val/test are not counted
        # here (the summary's eval_from block counts them)
        "positives": sum(1 for r in rows if r["role"] == "positive" and r["path"] not in held),
        "negatives": len(accepted) + synthetic, "synthetic": synthetic,
        "negatives_needed": plan.needed, "short": negatives.short,
        "rejected": sum(1 for r in rejects if not r.get("skipped")),
        "reject_reasons": dict(sorted(reasons.items())), "counts": counts,
        "near": sum(1 for c in accepted if c.near) if opts.near else None,
        "hash": plan.hash_kind, "hash_distance": opts.hash_distance,
        "sources": [s.describe() for s in plan.sources],
        **({"pool": plan.pool} if plan.pool else {}),
        "skipped": sum(1 for r in rejects if r.get("skipped")),
        "duplicate_positives": groups_with_splits(plan.pos_groups, rows),
        "excluded_classes": {sc.source.id: [sum(v.excluded for v in sc.verdicts), len(sc.verdicts)]
                             for sc in plan.classes.per_source},
    }
    summary["licences"] = licence_counts(rows)
    if budget.used() is not None:
        summary["hub"] = budget.used()
    if negatives.content is not None:
        flagged = [c for c in dropped if c.reason and c.reason.startswith("looks like a positive")]
        summary["content_check"] = {**negatives.content_info, "flagged": len(flagged),
                                    "scored": sum(1 for c in accepted + dropped if c.content is not None)}
    boxes = {k: [[b.x0, b.y0, b.x1, b.y1, b.label] for b in v] for k, v in plan.pos_boxes.items()}
    summary["warnings"] = finalize(opts.format, writer, rows, plan.split_names, plan.negative_class, boxes)
    summary["warnings"] += [n for n in (s.read_note() for s in plan.sources if hasattr(s, "read_note")) if n]
    summary["warnings"] += [n for n in (s.partial_note() for s in plan.sources) if n]
    summary["warnings"] += [plan.fit_note] if plan.fit_note else []
    summary["warnings"] += [plan.shortcut_note] if plan.shortcut_note else []
    summary["warnings"] += unlabelled_lines(plan, accepted)[0] + links_lines(plan)
    summary["unlabelled"] = [u.as_dict() for u in plan.unlabelled if u is not None]
    if plan.text:                          # pools labelled by their text: what the text kept out
        summary["text"] = plan.text
    if plan.licences:                      # pools with per-row licences: rows per licence, left out and why
        summary["row_licences"] = plan.licences
    summary["warnings"] += plan.classes.notes()
    write_outputs(writer, rows, rejects, {**summary, "out": None, "options": opts.record(),
                                          "classes": plan.classes.report(),
                                          "contamination": expected_contaminated(plan, len(accepted)),
                                          **({"unlabelled_contamination": plan.unlabelled_estimate}
                                             if plan.unlabelled_estimate else {}),
                                          **({"verified_absent": plan.verified} if opts.verified_absent else {})})
    if opts.report:
        summary["report"] = write_report(writer.staging, display=writer.out)["html"]
    summary["seconds"] = round(time.monotonic() - t0, 2)
    return summary


def groups_with_splits(groups: list[dict], rows: list[dict]) -> list[dict]:
    """The duplicate groups of the positives (`plan.pos_groups`), each with the split its members went to."""
    split_of = {r["file"]: r["split"] for r in rows if r["role"] == "positive"}
    return [{**g, "split": next((split_of[f] for f in g["files"] if f in split_of), None)} for g in groups]
