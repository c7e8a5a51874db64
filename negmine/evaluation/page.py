"""index.html of `negmine eval`: one self-contained page (the PNGs and thumbnails of the worst images
inlined as data URIs, no script, no external file) with the tables of the text summary."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

from negmine.evaluation.evaluate import metric_row

THUMB = 112            # px, the longer side of a worst-image thumbnail

STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.warn{color:#a40}figure{display:inline-block;margin:4px;
font-size:11px;width:130px;vertical-align:top;word-break:break-all}img.plot{max-width:100%;margin:4px 0}"""


def _e(x: object) -> str:
    return html.escape(str(x))


def _table(header: list[str], rows: list[list[object]], left: int = 1) -> str:
    th = "".join(f"<th class=l>{_e(h)}</th>" if i < left else f"<th>{_e(h)}</th>" for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(f"<td class=l>{_e(v)}</td>" if i < left else f"<td>{_e(v)}</td>"
                                    for i, v in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{body}</table>"


def data_uri(path: Path) -> str:
    """A PNG file as a data URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def thumbnail(path: Path) -> str | None:
    """A small JPEG data URI of an image file; None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            im.thumbnail((THUMB, THUMB))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
    except (OSError, ValueError):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _worst(items: list[dict], folder: Path) -> str:
    out = []
    for x in items:
        uri = thumbnail(folder / x["path"])
        img = f"<img src='{uri}' alt=''>" if uri else "(unreadable)"
        out.append(f"<figure>{img}<figcaption>{_e(x['path'])}<br>{_e(x['label'])}<br>score "
                   f"{x['score']:.4g}</figcaption></figure>")
    return "".join(out) or "<p>none</p>"


def member_html(r: dict, plots: dict[str, Path]) -> str:
    """The sections of one evaluated output: metrics, thresholds, confusion, false positives, worst images."""
    o, c = r["positives_vs_other"], r["counts"]
    parts = [f"<p>{_e(r['output'])}, split <b>{_e(r['split'])}</b>: {c['scored']} scored images "
             f"({c['positives']} positives, {c['negatives']} negatives). {_e(r['scores']['how'])}.</p>"]
    parts += [f"<p class=warn>warning: {_e(w)}</p>" for w in r["warnings"]]
    head = ["decision", "AUROC", "AUPR-In", "AUPR-Out", "FPR@95TPR", f"TPR at FPR {r['target_fpr']:g}"]
    parts.append(_table(head, [metric_row("positives vs other", o)] +
                        [metric_row(k, m) for k, m in r["per_class"].items()]))
    parts.append(f"<p>Threshold for FPR &le; {r['target_fpr']:g}: <b>{_e(o['rule_at_target'])}</b> "
                 f"(TPR {o['target']['tpr']:.3f}, FPR {o['target']['fpr']:.3f}). At 95% TPR: "
                 f"{_e(o['rule_at_95tpr'])}.</p>")
    if r["oscr"] is not None:
        parts.append(f"<p>OSCR {r['oscr']:.3f}; argmax accuracy {r['confusion']['argmax']['accuracy']:.3f}.</p>")
    parts += [f"<img class=plot src='{data_uri(p)}' alt='{_e(k)}'>" for k, p in plots.items()]
    for key, title in (("at_threshold", "Confusion at the target-FPR threshold"), ("argmax", "Confusion, argmax")):
        conf = r["confusion"].get(key)
        if conf:
            parts.append(f"<h3>{title}</h3><p>rows: true class; columns: predicted</p>")
            parts.append(_table(["", *conf["columns"]], [[n, *row] for n, row in zip(conf["rows"], conf["counts"])]))
    fp = r["false_positives"]
    parts.append("<h3>False positives by source class</h3>")
    parts.append(_table(["source class", "WordNet", "source", "negatives", "FP@95TPR", "FP@target", "mean score",
                         "nearest positive", "WordNet path"],
                        [[x["label"], x.get("wordnet") or "-", x["source"], x["negatives"], x["fp_95tpr"],
                          x["fp_target"], f"{x['mean_score']:.3g}", x.get("nearest_positive") or "-",
                          x.get("path") or "-"] for x in fp["classes"]], left=3))
    parts.append("<h3>False positives by source</h3>")
    parts.append(_table(["source", "negatives", "FP@95TPR", "FP@target", "mean score"],
                        [[x["source"], x["negatives"], x["fp_95tpr"], x["fp_target"], f"{x['mean_score']:.3g}"]
                         for x in fp["sources"]]))
    folder = Path(r["output"])
    parts.append("<h3>Highest-scoring negatives</h3>" + _worst(r["worst"]["negatives"], folder))
    parts.append("<h3>Lowest-scoring positives</h3>" + _worst(r["worst"]["positives"], folder))
    return "\n".join(parts)


def page(title: str, body: str) -> str:
    """A whole HTML document."""
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{_e(title)}</h1>\n{body}\n</body></html>\n")


def comparison_html(table: dict) -> str:
    """The comparison table of several sweep members."""
    return _table(table["header"], table["rows"])
