"""One output's scores measured: the positives-vs-other decision, each positive class one-vs-rest,
OSCR, confusion tables, false positives per source class, the worst images; and the text table."""

from __future__ import annotations

import math

import numpy as np

from negmine.errors import NegmineError
from negmine.evaluation.attribution import false_positives, positive_synsets, worst
from negmine.evaluation.metrics import accuracy, binary, confusion, oscr
from negmine.evaluation.scores import Joined, Output
from negmine.filters.taxonomy import Taxonomy, name_key

WORST = 10


def rule(j: Joined, threshold: float | None) -> str:
    """The threshold as a reader applies it to the file's own column(s)."""
    if threshold is None:
        return "no threshold (call nothing positive)"
    col = j.score_columns[0]
    if j.direction == "other":
        return f"positive when {col} <= {-threshold:.4g}"
    if j.other_column is not None:
        return f"positive when {j.other_column} <= {1 - threshold:.4g}"
    if j.matrix is not None:
        return f"positive when the highest positive-class score >= {threshold:.4g}"
    return f"positive when {col} >= {threshold:.4g}"


def evaluate(out: Output, j: Joined, target_fpr: float, worst_n: int = WORST) -> dict:
    """Every number `negmine eval` reports for one output's joined scores (see the docs page for
    each field). Raises NegmineError when the split's scored images are all one role."""
    if not 0 < target_fpr < 1:
        raise NegmineError(f"--target-fpr must be a fraction in (0, 1), not {target_fpr}")
    if not j.rows:          # join_scores refuses this first; a library caller's empty join is one line too
        raise NegmineError(f"{out.folder}: no scored image to measure")
    neg_key = name_key(out.negative_class)
    overall = binary(j.y, j.score, target_fpr, f"split {j.rows[0].get('split')}")
    warnings = []
    if overall["auroc"] < 0.5:
        flip = ("--higher-is positive" if j.direction == "other" else "--higher-is other")
        warnings.append(f"AUROC {overall['auroc']:.3f} is below 0.5: the scores rank negatives above positives; "
                        f"if higher means 'other' in this file, the direction is inverted ({flip})"
                        if j.matrix is None else
                        f"AUROC {overall['auroc']:.3f} is below 0.5: check that the columns carry the classes "
                        "they are named after (classes.txt order)")
    for k, what in (("missing", "images of the split had no score (--allow-missing)"),
                    ("extra", "score rows named images not in the manifest (--allow-extra)")):
        if j.counts.get(k):
            warnings.append(f"{j.counts[k]} {what}: ignored")
    true = [str(r.get("class")) for r in j.rows]
    positives = [c for c in out.classes if name_key(c) != neg_key]
    per_class: dict[str, dict] = {}
    result_oscr = None
    conf: dict = {}
    t = overall["target"]["threshold"]
    if j.matrix is not None:
        pos_cols = [k for k, c in enumerate(j.matrix_classes) if name_key(c) != neg_key]
        for k in pos_cols:
            c = j.matrix_classes[k]
            yc = np.array([name_key(x) == name_key(c) for x in true], dtype=np.int8)
            try:
                per_class[c] = binary(yc, j.matrix[:, k], target_fpr, c)
                per_class[c].pop("roc")
            except NegmineError as exc:
                per_class[c] = {"skipped": str(exc)}
        best_pos = [j.matrix_classes[pos_cols[i]] for i in np.argmax(j.matrix[:, pos_cols], axis=1)]
        correct = np.array([name_key(b) == name_key(x) for b, x in zip(best_pos, true)])
        result_oscr = oscr(j.y, j.score, correct)
        argmax = [j.matrix_classes[i] for i in np.argmax(j.matrix, axis=1)]
        conf["argmax"] = {**confusion(true, argmax, out.classes, out.classes), "accuracy": accuracy(true, argmax)}
        at = [out.negative_class if t is None or s < t else b for s, b in zip(j.score, best_pos)]
        columns = out.classes
    else:
        # one score says positive or not, not which positive: with several classes the column is "positive"
        called = positives[0] if len(positives) == 1 else "positive"
        at = [out.negative_class if t is None or s < t else called for s in j.score]
        columns = out.classes if len(positives) == 1 else [out.negative_class, called]
    conf["at_threshold"] = {**confusion(true, at, out.classes, columns), "threshold": t, "rule": rule(j, t)}
    if j.matrix is not None:
        conf["at_threshold"]["accuracy"] = accuracy(true, at)
    tax = Taxonomy.load()
    anchors = positive_synsets(out.record, positives, tax)
    fp = false_positives(j.rows, j.y, j.score, {"95tpr": overall["threshold_at_95tpr"], "target": t}, anchors, tax)
    return {
        "output": str(out.folder), "split": j.rows[0].get("split"),
        "scores": {"path_column": j.path_column, "score_columns": j.score_columns, "how": j.how,
                   "higher_is": j.direction, "ignored_columns": j.ignored_columns},
        "counts": j.counts, "target_fpr": target_fpr,
        "positives_vs_other": {**overall, "rule_at_target": rule(j, t),
                               "rule_at_95tpr": rule(j, overall["threshold_at_95tpr"])},
        "per_class": per_class, "oscr": result_oscr, "confusion": conf,
        "false_positives": fp, "worst": worst(j.rows, j.y, j.score, worst_n), "warnings": warnings,
    }


def _pct(x: float | None) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    return ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [header, *rows]]


def metric_row(name: str, m: dict) -> list[str]:
    """One line of the metrics table: name, AUROC, AUPR-In/Out, FPR@95TPR, TPR at the target FPR."""
    if "skipped" in m:
        return [name, "-", "-", "-", "-", "-"]
    return [name, f"{m['auroc']:.3f}", f"{m['aupr_in']:.3f}", f"{m['aupr_out']:.3f}", _pct(m["fpr_at_95tpr"]),
            _pct(m["target"]["tpr"])]


def text(r: dict, top: int = 8) -> str:
    """The human summary of one `evaluate` result."""
    o, c = r["positives_vs_other"], r["counts"]
    ignored = r["scores"]["ignored_columns"]
    lines = [f"{r['output']} split {r['split']}: {c['scored']} scored images ({c['positives']} positives, "
             f"{c['negatives']} negatives); {r['scores']['how']}"
             + (f"; ignored columns: {', '.join(ignored)}" if ignored else "")
             + (f"; {c['other_split']} rows of other splits ignored" if c.get("other_split") else "")]
    head = ["decision", "AUROC", "AUPR-In", "AUPR-Out", "FPR@95TPR", f"TPR@FPR{_pct(r['target_fpr'])}"]
    rows = [metric_row("positives vs other", o)] + [metric_row(k, m) for k, m in r["per_class"].items()]
    lines += [""] + _table(head, rows)
    tgt = o["target"]
    lines += ["", f"threshold for FPR <= {_pct(r['target_fpr'])}: {o['rule_at_target']} "
                  f"(TPR {_pct(tgt['tpr'])}, FPR {_pct(tgt['fpr'])}); at 95% TPR: {o['rule_at_95tpr']}"]
    if r["oscr"] is not None:
        lines.append(f"OSCR {r['oscr']:.3f}; argmax accuracy {_pct(r['confusion']['argmax']['accuracy'])}")
    conf = r["confusion"]["at_threshold"]
    lines += ["", "confusion at that threshold (rows: true class, columns: predicted)"]
    lines += _table(["", *conf["columns"]], [[n, *map(str, row)] for n, row in zip(conf["rows"], conf["counts"])])
    fp = [x for x in r["false_positives"]["classes"]][:top]
    if fp:
        lines += ["", "false positives by source class (at 95% TPR; at the target FPR)"]
        lines += _table(["source class", "WordNet", "negatives", "FP@95", "FP@target", "nearest positive path"],
                        [[x["label"], x.get("wordnet") or "-", str(x["negatives"]), str(x["fp_95tpr"]),
                          str(x["fp_target"]), x.get("path") or "-"] for x in fp])
    w = r["worst"]["negatives"][:3]
    if w:
        lines += ["", "highest-scoring negatives: " + "; ".join(f"{x['path']} ({x['score']:.3g})" for x in w)]
    lines += [f"warning: {x}" for x in r["warnings"]]
    return "\n".join(lines)
