"""`negmine eval`: did the negatives help? A trainer's scores on a split, measured and attributed."""

from __future__ import annotations

from pathlib import Path

import click

from negmine.cli.common import emit, handle_errors


@click.command("eval")
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--scores", "scores", multiple=True, required=True, metavar="FILE|NAME=FILE",
              help="A trainer's scores for the images of --split (CSV, JSONL or parquet): a path column and one "
                   "column per class of classes.txt, or one score. NAME=FILE (repeatable): the sweep member OUT/NAME; "
                   "several are compared.")
@click.option("--split", default="test", show_default=True, help="The split the scores are for.")
@click.option("--target-fpr", type=float, default=0.01, show_default=True,
              help="Report the threshold that keeps the false-positive rate at or below this, and its TPR.")
@click.option("--path-column", help="The path column of --scores (default: the one named path/file/image/...).")
@click.option("--score-column", help="The one score column (default: the columns named like the classes, else the "
                                     "one named score/prob/logit/...).")
@click.option("--higher-is", type=click.Choice(["positive", "other"]),
              help="What a higher single score means (default: 'other' when the column is the negative class's).")
@click.option("--allow-missing", is_flag=True, help="Measure the scored images when some of the split have no score.")
@click.option("--allow-extra", is_flag=True, help="Ignore score rows for images not in the manifest.")
@click.option("--worst", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many worst images (highest-scoring negatives, lowest-scoring positives) to list.")
@click.option("--out", "-o", "dest", type=click.Path(path_type=Path, file_okay=False),
              help="Where eval.json, index.html and the PNGs go (default: OUT/eval).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@handle_errors
def eval_(out, scores, split, target_fpr, path_column, score_column, higher_is, allow_missing, allow_extra, worst,
          dest, as_json) -> None:
    """Measure a trainer's scores on a split of a negmine output: AUROC, AUPR, FPR at 95% TPR, the
    threshold for a target FPR, confusion, and which source classes the false positives come from.

    \b
    negmine eval ./ds --scores test-scores.csv
    negmine eval ./sweep --scores ratio-0.5=a.csv --scores ratio-1=b.csv
    """
    from negmine.evaluation.run import EvalJob, run_eval

    s = run_eval(EvalJob(out=out, scores=list(scores), split=split, target_fpr=target_fpr, path_column=path_column,
                         score_column=score_column, higher_is=higher_is, allow_missing=allow_missing,
                         allow_extra=allow_extra, worst=worst, dest=dest))
    human = s.pop("text") + f"\nwrote {s['dir']}/index.html (and eval.json, PNGs)"
    emit(s, as_json, human)
