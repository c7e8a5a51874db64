"""`negmine mine`: hard negatives ranked by a model's scores."""

from __future__ import annotations

from pathlib import Path

import click

from negmine.cli.common import CONCEPT_HELP, OUT, emit, engine_options, handle_errors, parse_concepts, quiet_hub


@click.command()
@click.option("--scores", type=click.Path(path_type=Path),
              help="A trainer's scores (CSV, JSONL or parquet): an id column and a score column "
                   "(highest positive-class probability or logit), or one column per class.")
@click.option("--from-eval", type=click.Path(path_type=Path),
              help="Instead of --scores: the eval.json of `negmine eval`; draw from the pool classes the model "
                   "confused with the positives, weighted by their false positives.")
@click.option("--pool", required=True, metavar="OUTPUT|SPEC",
              help="What was scored: a negmine output folder, a folder of images, or a source as in `sample`.")
@click.option("--count", required=True, type=int, help="How many hard negatives to keep.")
@click.option("--out", "-o", required=True, type=OUT, help="Output folder, or an fsspec URL (s3://bucket/prefix, ...).")
@click.option("--skip-top", type=float,
              help="Skip this top fraction of the scores (likely mislabelled positives)  [default: 0.125; "
                   "0 with --from-eval]")
@click.option("--positives", "-p", type=click.Path(path_type=Path),
              help="Keep these out (classes and near-duplicates); default: the positives of an output pool.")
@click.option("--exclude", "-x", multiple=True, metavar="TERM|WNID")
@click.option("--concept", "concepts", multiple=True, metavar="NAME=WNID_OR_LEMMA", callback=parse_concepts,
              help=CONCEPT_HELP)
@click.option("--allow-unlabelled", is_flag=True,
              help="A pool that is no negmine output: keep images that carry no label, which no class check can "
                   "vouch for; the output and negmine.json warn with the expected contamination. Per pool: "
                   "SPEC?unlabelled=allow.")
@click.option("--allow-held-out", is_flag=True,
              help="A negmine output pool: also mine the images of its val and test splits (left out by default: "
                   "its metrics are measured on them); the output and negmine.json warn.")
@click.option("--id-column", help="The id column of --scores (default: the one named id/path/file/...).")
@click.option("--score-column", help="The score column of --scores; A,B: the highest of several (default: the one "
              "named score/prob/logit/..., else the columns named like the positive classes).")
@click.option("--negative-class", default="other", show_default=True)
@click.option("--hash", type=click.Choice(["phash", "dhash", "ahash", "whash", "none"]), default="phash", show_default=True)
@click.option("--hash-distance", type=int, default=10, show_default=True)
@click.option("--quality", type=int, default=95, show_default=True)
@click.option("--max-size", type=int)
@click.option("--workers", type=int, help="Processes for decoding/encoding (default: one per core; 1: none).")
@engine_options
@click.option("--overwrite", is_flag=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run (same options and scores).")
@click.option("--quiet", "-q", is_flag=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def mine(quiet, as_json, exclude, **kw) -> None:
    """Keep the hardest negatives a trainer scored (hard-negative mining, second round).

    \b
    negmine mine --scores preds.csv --pool ./ds --count 2000 --out ./hard
    negmine mine --from-eval ./ds/eval/eval.json --pool imagenet-1k-256 --count 2000 --out ./more

    Candidates are ranked by score, the top --skip-top fraction is skipped, and the rest pass the
    same overlap and duplicate filters as `sample` until --count are kept. Ids: a negmine output's
    manifest `path`, a folder's relative file path, or FILE#ROW for table sources.
    """
    from negmine.sampling.mine import MineJob, run_mine

    if quiet:
        quiet_hub()
    s = run_mine(MineJob(exclude=list(exclude), progress=not quiet, **kw))
    head = (f"kept {s['kept']} of {s['scored']} candidates of the confused classes, rejected {s['rejected']}"
            if s.get("from_eval") else
            f"kept {s['kept']} of {s['scored']} scored candidates (scores {s['score_range'][0]:.4g} to "
            f"{s['score_range'][1]:.4g}), skipped the top {s['skipped_top']}, rejected {s['rejected']}")
    emit(s, as_json, f"{head}; {s['scores']['how']}; wrote {s['out']}"
                      + _unlabelled_note(s.get("unlabelled")) + _eval_note(s.get("from_eval"))
                      + _held_out_note(s.get("held_out"))
                      + "".join(f"\nwarning: {w}" for w in s["warnings"]))


def _eval_note(e: dict | None) -> str:
    """Lines for --from-eval: the confused classes kept from, and those the pool lacks or excludes."""
    if not e:
        return ""
    out = "\nfrom " + e["eval"] + ": " + ", ".join(f"{c['label']} {c['kept']}" for c in e["classes"])
    out += "".join(f"\nnote: confused class {x['label']} stays excluded: {x['reason']}" for x in e["excluded"])
    if e["absent_from_pool"]:
        out += f"\nnote: confused classes not in the pool: {', '.join(e['absent_from_pool'])}"
    return out


def _held_out_note(h: dict | None) -> str:
    """A line for the val/test images of an output pool that were left out (rejects.jsonl names them)."""
    if not h or not h["left_out"]:
        return ""
    splits = ", ".join(f"{n} of split {k}" for k, n in sorted(h["left_out"].items()))
    return (f"\nnote: {sum(h['left_out'].values())} scored images held out by the pool output ({splits}) were left "
            "out: they measure the model (see rejects.jsonl; --allow-held-out mines them)")


def _unlabelled_note(u: dict | None) -> str:
    """A line for the unlabelled images of a labelled pool that were left out (rejects.jsonl names them)."""
    if not u or u["drawn"]:
        return ""
    return (f"\nnote: {u['source']}: {u['rows']} of its {u['of']} images carry no label; scored ones were left out "
            "(see rejects.jsonl; --allow-unlabelled keeps them)")
