"""`negmine eval` end to end: which outputs and score files, the metrics of each, the comparison of
sweep members on one shared test set, and the files written (eval.json, index.html, PNGs).

`--scores FILE` evaluates OUT itself. `--scores NAME=FILE` (repeatable) evaluates the member NAME of a
sweep OUT (the folder OUT/NAME, e.g. `ratio-0.5`), or an output folder NAME; two or more members are
compared, and only when their split holds the same images (the manifests' sha256, role and class of
every image of the split), since metrics over different test sets cannot be compared.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from negmine import __version__
from negmine.errors import NegmineError
from negmine.evaluation import page, plots
from negmine.evaluation.evaluate import WORST, evaluate, text
from negmine.evaluation.scores import open_output, join_scores
from negmine.naming import safe_name

DEFAULT_DIR = "eval"            # OUT/eval, beside OUT/report of `negmine report`
FILES = ("eval.json", "index.html", "roc.png", "histogram.png", "fp_classes.png")


@dataclass
class EvalJob:
    out: Path
    scores: list[str]
    split: str = "test"
    target_fpr: float = 0.01
    path_column: str | None = None
    score_column: str | None = None
    higher_is: str | None = None          # "positive" | "other" | None (auto)
    allow_missing: bool = False
    allow_extra: bool = False
    worst: int = WORST
    dest: Path | None = None              # --out DIR (default OUT/eval)
    members: list[tuple[str, Path, Path]] = field(default_factory=list)


def parse_members(out: Path, scores: list[str]) -> list[tuple[str, Path, Path]]:
    """(name, output folder, score file) per --scores value. FILE alone: OUT itself; NAME=FILE: the
    sweep member OUT/NAME, else the output folder NAME. Raises NegmineError for a member that is no
    output, a name given twice, or several plain FILEs (which member would each be?)."""
    out = Path(out).expanduser()
    members = []
    for value in scores:
        name, sep, file = value.partition("=")
        if not sep or Path(value).expanduser().is_file():
            members.append((out.name, out, Path(value).expanduser()))
            continue
        # NAME is a member OUT/NAME, else an output folder of its own, named after its folder; an
        # absolute NAME is never joined to OUT (OUT / "/abs" is /abs itself, which would be taken for
        # a member and its files written into /abs)
        joined = not Path(name).expanduser().is_absolute()
        folder = out / name if joined else Path(name).expanduser()
        if not (folder / "manifest.jsonl").is_file():
            folder = Path(name).expanduser()
            if not (folder / "manifest.jsonl").is_file():
                raise NegmineError(f"--scores {value}: {out / name} is not a negmine output (no manifest.jsonl), "
                                   "nor is the folder " + name)
        members.append((name if joined and folder == out / name else folder.resolve().name, folder,
                        Path(file).expanduser()))
    if len(members) > 1 and any("=" not in v or Path(v).is_file() for v in scores):
        raise NegmineError("several --scores: give each as NAME=FILE, NAME a member of the sweep OUT "
                           "(OUT/NAME) or an output folder")
    names = [m[0] for m in members]
    twice = sorted(n for n, k in Counter(names).items() if k > 1)
    if twice:
        raise NegmineError(f"--scores names the member {', '.join(twice)} twice")
    return members


def split_fingerprint(rows: list[dict]) -> Counter:
    """The images of a split as comparable values: (sha256, role, class) per image."""
    return Counter((r.get("sha256"), r.get("role"), r.get("class")) for r in rows)


def check_same_split(outputs: dict, split: str) -> None:
    """Raise NegmineError unless every output's `split` holds the same images (sha256, role, class)."""
    prints = {}
    for name, o in outputs.items():
        rows = o.split_rows(split)
        if any(not r.get("sha256") for r in rows):
            raise NegmineError(f"{name}: manifest rows of split {split} without sha256: the members' {split} "
                               "sets cannot be compared")
        prints[name] = split_fingerprint(rows)
    first, *rest = prints
    for name in rest:
        a, b = prints[first], prints[name]
        if a != b:
            differ = sum(((a - b) + (b - a)).values())
            raise NegmineError(f"{first} and {name} do not share the {split} set ({differ} of "
                               f"{sum(a.values()) + sum(b.values())} image entries differ by sha256, role or class); "
                               "metrics over different test sets cannot be compared (a sweep, or --eval-from, "
                               "gives its members one)")


def _write_member(r: dict, joined, dest: Path, target_fpr: float) -> dict[str, Path]:
    """One evaluated output's files in `dest`: eval.json, index.html and the PNGs; returns the PNGs."""
    dest.mkdir(parents=True, exist_ok=True)
    o = r["positives_vs_other"]
    out = {"roc": plots.roc({"positives vs other": {**o["roc"], "auroc": o["auroc"]}}, dest / "roc.png", target_fpr)}
    out["histogram"] = plots.histogram(joined.y, joined.score, dest / "histogram.png", o["target"]["threshold"],
                                       "positive score (" + r["scores"]["how"].split(" = ", 1)[-1] + ")")
    out["fp_classes"] = plots.fp_classes(r["false_positives"]["classes"], dest / "fp_classes.png")
    (dest / "eval.json").write_text(json.dumps(r, indent=1) + "\n", encoding="utf-8")
    (dest / "index.html").write_text(page.page(f"negmine eval: {r['output']}", page.member_html(r, out)),
                                     encoding="utf-8")
    return out


def manifest_sha256(folder: Path) -> str:
    """The sha256 of an output's manifest.jsonl: an eval.json names the output it measured, and this
    says whether that output is still the one measured (a sweep rerun with --overwrite replaces it)."""
    return hashlib.sha256((Path(folder) / "manifest.jsonl").read_bytes()).hexdigest()


def is_eval_file(path: Path) -> bool:
    """True when `path` is an eval.json `negmine eval` wrote ("command": "eval")."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("command") == "eval"


def remove_eval_files(dest: Path) -> list[Path]:
    """Remove an earlier `negmine eval`'s files from DIR `dest`, so DIR holds only the next one: its
    FILES, and each member folder DIR/NAME whose eval.json eval wrote (its FILES, then the folder when
    nothing else is left in it). Recognised by an eval.json with "command": "eval" in DIR; nothing
    else is touched (a DIR without one is left as it is). Returns the paths removed."""
    dest = Path(dest)
    if not is_eval_file(dest / "eval.json"):
        return []
    removed = []
    folders = [d for d in sorted(dest.iterdir()) if d.is_dir() and is_eval_file(d / "eval.json")]
    for d in [*folders, dest]:
        for f in FILES:
            if (d / f).is_file():
                (d / f).unlink()
                removed.append(d / f)
        if d != dest and not any(d.iterdir()):
            d.rmdir()
            removed.append(d)
    return removed


def check_dest(dest: Path, member_dirs: list[Path]) -> None:
    """Refuse (NegmineError) a DIR, or a member folder DIR/NAME, that is a negmine output: eval
    writes its files in folders of its own, never among a dataset's."""
    for d in [dest, *member_dirs]:
        if (d / "manifest.jsonl").is_file():
            raise NegmineError(f"{d} is a negmine output (it has a manifest.jsonl): eval writes its files in a "
                               "folder of its own; choose another --out")


def comparison(results: dict[str, dict]) -> dict:
    """member x AUROC, AUPR-In, FPR@95TPR, TPR at the target FPR, the threshold rule, the top
    confused source classes: {"header": [...], "rows": [[...]] (text, as printed), "members":
    {name: {"auroc", "aupr_in", "fpr_at_95tpr", "tpr_at_target", "threshold_at_target"}} (numbers)}."""
    header = ["member", "AUROC", "AUPR-In", "FPR@95TPR", "TPR@target", "threshold at target", "top confused classes"]
    rows, numbers = [], {}
    for name, r in results.items():
        o = r["positives_vs_other"]
        # by the WordNet name where there is one ("killer whale", not n02071294)
        top = [f"{(c.get('wordnet') or c['label']).split(' (n')[0]} ({c['fp_95tpr']})"
               for c in r["false_positives"]["classes"] if c["fp_95tpr"]][:3]
        rows.append([name, f"{o['auroc']:.3f}", f"{o['aupr_in']:.3f}", f"{100 * o['fpr_at_95tpr']:.1f}%",
                     f"{100 * o['target']['tpr']:.1f}%", o["rule_at_target"], ", ".join(top) or "-"])
        numbers[name] = {"auroc": o["auroc"], "aupr_in": o["aupr_in"], "fpr_at_95tpr": o["fpr_at_95tpr"],
                         "tpr_at_target": o["target"]["tpr"], "threshold_at_target": o["target"]["threshold"]}
    return {"header": header, "rows": rows, "members": numbers}


def run_eval(job: EvalJob) -> dict:
    """Evaluate every member, compare them (two or more), write DIR's files. Returns the summary
    (what eval.json holds, plus `written`: the files, and `text`: the human summary). Raises
    NegmineError for the refusals of `negmine.evaluation.scores` and this module."""
    members = parse_members(job.out, job.scores)
    for _, _, f in members:
        if not f.is_file():
            raise NegmineError(f"--scores {f}: no such file")
    plots.require_extra()                            # a missing extra is said before any work
    outputs = {name: open_output(folder) for name, folder, _ in members}
    if len(members) > 1:
        check_same_split(outputs, job.split)
    results, joined = {}, {}
    for name, folder, file in members:
        o = outputs[name]
        j = join_scores(o, file, job.split, path_column=job.path_column, score_column=job.score_column,
                        higher_is=job.higher_is, allow_missing=job.allow_missing, allow_extra=job.allow_extra)
        r = evaluate(o, j, job.target_fpr, job.worst)
        r.update({"negmine_version": __version__, "command": "eval", "member": name,
                  "scores_file": str(file), "scores_sha256": hashlib.sha256(file.read_bytes()).hexdigest(),
                  "manifest_sha256": manifest_sha256(o.folder),
                  "negative_class": o.negative_class, "classes": o.classes})
        results[name], joined[name] = r, j
    single = len(results) == 1
    scored = {name: sorted(r["path"] for r in j.rows) for name, j in joined.items()}
    if len({tuple(v) for v in scored.values()}) > 1:
        # --allow-missing let each member drop other images: their numbers would describe other sets
        raise NegmineError("the members were scored on different images of the " + job.split + " set ("
                           + ", ".join(f"{n}: {len(v)}" for n, v in scored.items()) + "): their metrics are not "
                           "comparable; score every member on the same images")
    dest = Path(job.dest).expanduser() if job.dest else Path(job.out).expanduser() / DEFAULT_DIR
    # each member's files go in DIR/<safe name>: a NAME given as a path never reaches outside DIR
    folders = {name: dest / safe_name(name) for name in results}
    check_dest(dest, [] if single else list(folders.values()))
    if not single and len(set(folders.values())) < len(folders):
        raise NegmineError("two members share the folder name " + ", ".join(sorted(
            {f.name for f in folders.values() if list(folders.values()).count(f) > 1})) + " in DIR; rename one")
    remove_eval_files(dest)                 # DIR holds this evaluation only, never an earlier one's members
    written = []
    if single:
        (name, r), = results.items()
        _write_member(r, joined[name], dest, job.target_fpr)
        written = [str(dest / f) for f in FILES]
        summary = {**r, "written": written, "dir": str(dest)}
        summary["text"] = text(r)
        return summary
    sections = []
    for name, r in results.items():
        pngs = _write_member(r, joined[name], folders[name], job.target_fpr)
        sections.append(f"<h2>{page.html.escape(name)}</h2>" + page.member_html(r, pngs))
        written += [str(folders[name] / f) for f in FILES]
    table = comparison(results)
    curves = {n: {**r["positives_vs_other"]["roc"], "auroc": r["positives_vs_other"]["auroc"]}
              for n, r in results.items()}
    plots.roc(curves, dest / "roc.png", job.target_fpr)
    record = {"negmine_version": __version__, "command": "eval", "split": job.split, "target_fpr": job.target_fpr,
              "comparison": table, "members": {n: str(folders[n] / "eval.json") for n in results}}
    (dest / "eval.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    body = (page.comparison_html(table) + f"<img class=plot src='{page.data_uri(dest / 'roc.png')}' alt='roc'>"
            + "\n".join(sections))
    (dest / "index.html").write_text(page.page(f"negmine eval: {job.out}", body), encoding="utf-8")
    written = [str(dest / "eval.json"), str(dest / "index.html"), str(dest / "roc.png")] + written
    lines = [f"{len(results)} members share the {job.split} set ({next(iter(results.values()))['counts']['scored']} "
             "scored images each)", ""]
    widths = [max(len(str(x)) for x in col) for col in zip(table["header"], *table["rows"])]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip() for r in [table["header"], *table["rows"]]]
    for name, r in results.items():
        lines += [f"warning: {name}: {w}" for w in r["warnings"]]
    return {**record, "results": results,
            "written": written, "dir": str(dest), "text": "\n".join(lines)}


def read_eval(path: Path) -> dict:
    """The eval.json of one evaluated output, as `negmine mine --from-eval` reads it. Raises
    NegmineError when the file is unreadable, is no `negmine eval` result, or is a comparison
    (whose members each have their own DIR/NAME/eval.json)."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / "eval.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NegmineError(f"--from-eval {path}: not a readable eval.json ({exc})") from None
    if not isinstance(data, dict) or data.get("command") != "eval":
        raise NegmineError(f"--from-eval {path}: not written by negmine eval")
    if "members" in data:
        raise NegmineError(f"--from-eval {path}: compares {len(data['members'])} members; pass one member's "
                           f"eval.json ({', '.join(data['members'].values())})")
    if not isinstance((data.get("false_positives") or {}).get("classes"), list) or not data.get("output"):
        raise NegmineError(f"--from-eval {path}: holds no false positives per source class")
    return data
