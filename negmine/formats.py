"""Output layouts for the trainers' own loaders, and the files that go with them.

| format           | images                          | extra files                                   |
|------------------|---------------------------------|-----------------------------------------------|
| imagefolder      | split/class/file                | classes.txt                                   |
| hf               | split/class/file                | split/metadata.jsonl with an explicit label   |
| multilabel-csv   | split/class/file                | labels.csv: fname,labels,split + one-hot      |
| yolo-cls         | split/class/file (train, val)   | classes.txt                                   |
| yolo-det         | images/split/file               | labels/split/file.txt, data.yaml              |

Every format also gets class_weights.json.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from negmine.errors import NegmineError

FORMATS = ("imagefolder", "hf", "multilabel-csv", "yolo-cls", "yolo-det")
# Folder names loaders read as splits (datasets' imagefolder, fastai, Ultralytics), never as classes.
SPLIT_WORDS = {"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval", "evaluation"}
BACKGROUND_WARN = 0.10        # Ultralytics suggests 0-10% background images


def check_format(fmt: str, split_names: Sequence[str]) -> None:
    if fmt not in FORMATS:
        raise NegmineError(f"--format must be one of {', '.join(FORMATS)}")
    if fmt in ("yolo-cls", "yolo-det") and "val" not in split_names:
        raise NegmineError(f"--format {fmt} needs a val split (Ultralytics trains on train/ and validates on val/): "
                           "use --split 0.9,0.1 or 0.8,0.1,0.1")


def check_class_name(name: str, fmt: str = "imagefolder") -> None:
    reserved = SPLIT_WORDS | ({"images", "labels"} if fmt == "yolo-det" else set())
    if name.lower() in reserved:
        raise NegmineError(f"class name {name!r} would be read as a split by trainers' loaders; rename it")


def rel_path(fmt: str, split: str, cls: str, filename: str) -> str:
    if fmt == "yolo-det":
        return f"images/{split}/{cls}-{filename}"
    return f"{split}/{cls}/{filename}"


def class_weights(counts: dict[str, int], beta: float = 0.999) -> dict:
    """Inverse-frequency (n / (k * n_c)) and effective-number ((1 - beta) / (1 - beta^n_c), Cui et al.
    2019) weights, each scaled so that the weighted mean over the training samples is 1."""
    total, k = sum(counts.values()), len(counts)
    inv = {c: total / (k * n) for c, n in counts.items() if n}
    eff_raw = {c: (1 - beta) / (1 - beta ** n) for c, n in counts.items() if n}
    scale = total / sum(eff_raw[c] * counts[c] for c in eff_raw)
    return {"counts": counts, "inverse_frequency": inv,
            "effective_number": {c: w * scale for c, w in eff_raw.items()}, "beta": beta,
            "note": "computed on the train split; order follows classes.txt"}


def _yolo_line(box: list, w: int, h: int, idx: int) -> str:
    """`class cx cy w h` in 0..1 of a w x h image, corners ordered and clipped. Ultralytics drops
    an image with a negative, out-of-range or zero-size label, so a box that leaves no area is a
    NegmineError (boxes reach here validated by `objects.resolve`; this is the last guard)."""
    xs = sorted(max(0.0, min(float(v), w)) for v in (box[0], box[2]))
    ys = sorted(max(0.0, min(float(v), h)) for v in (box[1], box[3]))
    (x0, x1), (y0, y1) = xs, ys
    if not (x1 - x0 > 0 and y1 - y0 > 0):          # also false for NaN
        raise NegmineError(f"box {box[:4]} has no area inside the {w}x{h} image; refusing to write its YOLO label")
    return f"{idx} {(x0 + x1) / 2 / w:.6f} {(y0 + y1) / 2 / h:.6f} {(x1 - x0) / w:.6f} {(y1 - y0) / h:.6f}"


def finalize(fmt: str, writer, rows: list[dict], split_names: Sequence[str], negative_class: str,
             boxes: dict[str, list] | None = None) -> list[str]:
    """Write the format's extra files; returns warnings for the user."""
    warnings = []
    classes = sorted({r["class"] for r in rows})
    train = Counter(r["class"] for r in rows if r["split"] == split_names[0])
    weights = class_weights({c: train.get(c, 0) for c in classes})
    _text(writer, "class_weights.json", json.dumps(weights, indent=2) + "\n")
    for split in split_names:
        present = {r["class"] for r in rows if r["split"] == split}
        missing = sorted(set(classes) - present)
        if missing and fmt != "yolo-det":
            warnings.append(f"split {split} has no images of {', '.join(missing)} (too few to split): "
                            "loaders that list classes per folder will see fewer classes there")
    if fmt == "yolo-det":
        names = sorted({b[4] or r["label"] for r in rows if r["role"] == "positive" for b in (boxes or {}).get(r["file"], [])})
        index = {n: i for i, n in enumerate(names)}
        backgrounds = 0
        for r in rows:
            stem = Path(r["path"]).with_suffix(".txt").name
            lines = [_yolo_line(b, r["width"], r["height"], index[b[4] or r["label"]])
                     for b in ((boxes or {}).get(r["file"], []) if r["role"] == "positive" else [])]
            backgrounds += not lines
            _text(writer, f"labels/{r['split']}/{stem}", "\n".join(lines) + ("\n" if lines else ""))
        # `path` absolute: Ultralytics' check_det_dataset joins a relative `path` (`.` included) to the
        # current directory or to its datasets_dir, and uses the yaml's own folder for a missing one
        # only in recent releases; an absolute path reads the same from any directory in all of them.
        yaml = f"path: {json.dumps(str(Path(writer.out).resolve()))}\n" + \
            "".join(f"{s}: images/{s}\n" for s in split_names) + "names:\n" + \
            "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(names))
        _text(writer, "data.yaml", yaml)
        _text(writer, "classes.txt", "".join(n + "\n" for n in names))
        bg = backgrounds / max(1, len(rows))       # every image without a label line, positives included
        if bg > BACKGROUND_WARN:
            warnings.append(f"{bg:.0%} of the images are backgrounds; Ultralytics suggests 0-10% "
                            f"(try --ratio {BACKGROUND_WARN / (1 - BACKGROUND_WARN):.2f})")
        return warnings
    _text(writer, "classes.txt", "".join(c + "\n" for c in classes))
    if fmt == "hf":
        for split in split_names:
            lines = [json.dumps({"file_name": r["path"].split("/", 1)[1], "label": r["class"]})
                     for r in rows if r["split"] == split]
            if lines:
                _text(writer, f"{split}/metadata.jsonl", "\n".join(lines) + "\n")
    if fmt == "multilabel-csv":
        positives = [c for c in classes if c != negative_class]
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["fname", "labels", "split", *positives])
        for r in rows:
            label = "" if r["role"] == "negative" else r["class"]
            w.writerow([r["path"], label, r["split"], *(int(label == c) for c in positives)])
        _text(writer, "labels.csv", buf.getvalue())
    return warnings


def _text(writer, rel: str, text: str) -> None:
    writer.write_bytes(rel, text.encode("utf-8"))


def dataset_card(summary: dict, rows: list[dict]) -> str:
    """README.md for --push-to-hub: counts, sources with revisions and licences, seed, how to load."""
    per_split = Counter((r["split"], r["class"]) for r in rows)
    splits = list(summary.get("counts") or sorted({s for s, _ in per_split}))
    classes = sorted({c for _, c in per_split})
    licences = sorted({r["licence"] for r in rows if r.get("licence")}) or ["other"]
    table = "| class | " + " | ".join(splits) + " |\n|---|" + "---|" * len(splits) + "\n" + "".join(
        f"| {c} | " + " | ".join(str(per_split[(s, c)]) for s in splits) + " |\n" for c in classes)
    sources = "".join(f"- `{s['id']}` @ `{s.get('revision') or 'local'}` ({s.get('licence') or 'licence unknown'}), "
                      f"{s['rows']} rows\n" for s in summary.get("sources", []))
    lic = licences[0] if len(licences) == 1 else "other"
    return (f"---\nlicense: {lic}\ntask_categories:\n- image-classification\ntags:\n- negmine\n---\n\n"
            f"# Dataset with a negative class\n\nBuilt with negmine {summary.get('negmine_version')} "
            f"(seed {summary.get('seed')}).\n\n{table}\n## Sources of the negatives\n\n{sources}\n"
            "Licences of the images: " + ", ".join(licences) + ". `manifest.jsonl` records the source, "
            "revision, file, row and licence of every image.\n\n## Load\n\n```python\nfrom datasets import "
            "load_dataset\nds = load_dataset(\"imagefolder\", data_dir=\"...\")  # or the repo id\n"
            "ds = ds.class_encode_column(\"label\")\n```\n")


def push_to_hub(out: Path, repo_id: str, summary: dict, rows: list[dict], private: bool = True) -> str:
    from huggingface_hub import HfApi

    from negmine.sources import hub

    api = HfApi()
    card = dataset_card(summary, rows)
    try:
        url = hub.retrying(lambda: api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True))
        hub.retrying(lambda: api.upload_file(path_or_fileobj=card.encode(), path_in_repo="README.md",
                                             repo_id=repo_id, repo_type="dataset"))
        hub.retrying(lambda: api.upload_folder(folder_path=str(out), repo_id=repo_id, repo_type="dataset",
                                               ignore_patterns=["README.md"]))
    except NegmineError:
        raise
    except Exception as exc:
        from huggingface_hub import errors as hf_errors

        status = getattr(getattr(exc, "response", None), "status_code", None)
        if isinstance(exc, hf_errors.HfHubHTTPError) and status in (401, 403):
            from negmine.errors import HubAuthError

            raise HubAuthError(f"cannot push to {repo_id}: log in with `hf auth login` or set HF_TOKEN "
                               "with write access") from None
        raise hub.unavailable(repo_id, exc) from None
    return str(url)
