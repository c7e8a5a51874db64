"""Output layouts for the trainers' own loaders, and the files that go with them.

| format           | images                          | extra files                                   |
|------------------|---------------------------------|-----------------------------------------------|
| imagefolder      | split/class/file                | classes.txt                                   |
| hf               | split/class/file                | data/split-0000k-of-0000n.parquet (Image +    |
|                  |                                 | ClassLabel), README.md card, metadata.jsonl   |
| multilabel-csv   | split/class/file                | labels.csv: fname,labels,split + one-hot      |
| yolo-cls         | split/class/file (train, val)   | classes.txt                                   |
| yolo-det         | images/split/file               | labels/split/file.txt, data.yaml              |

Every single-label format also gets class_weights.json; multilabel-csv gets pos_weight.json instead
(BCE `pos_weight` per positive class: a sigmoid per class has no `other` class to weight).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from negmine.errors import NegmineError

FORMATS = ("imagefolder", "hf", "multilabel-csv", "yolo-cls", "yolo-det")
# Folder names loaders read as splits (datasets' imagefolder, fastai, Ultralytics), never as classes.
SPLIT_WORDS = {"train", "training", "val", "valid", "validation", "dev", "test", "testing", "eval", "evaluation"}
BACKGROUND_WARN = 0.10        # Ultralytics suggests 0-10% background images
# The Hub names the held-out split `validation` (datasets.Split.VALIDATION; every Hub dataset's
# `ds["validation"]`); the image folders keep `val/`, which torchvision/Keras users and Ultralytics expect.
HUB_SPLIT = {"val": "validation"}


def hub_split(split: str) -> str:
    """The split's name on the Hub and in the `hf` format's card and shards: 'val' -> 'validation'."""
    return HUB_SPLIT.get(split, split)


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


def bce_pos_weight(positives: dict[str, int], total: int) -> dict:
    """BCEWithLogitsLoss `pos_weight` per positive class: the train images without the class over
    those with it (PyTorch's documented choice, e.g. 300 negatives / 100 positives -> 3), in the
    order given (labels.csv's one-hot columns). `positives`: train images per positive class (the
    negative class left out: it is the all-zeros row, not a column); `total`: train images in all.
    A class with no train image gets weight 1.0 (nothing to balance) and is listed in `absent`."""
    weights = [(total - n) / n if n else 1.0 for n in positives.values()]
    return {"classes": list(positives), "pos_weight": weights, "positives": positives, "images": total,
            "absent": [c for c, n in positives.items() if not n],
            "note": "computed on the train split; order follows labels.csv's one-hot columns: "
                    "torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))"}


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
    if fmt == "multilabel-csv":
        positives = [c for c in classes if c != negative_class]
        weights = bce_pos_weight({c: train.get(c, 0) for c in positives}, sum(train.values()))
        _text(writer, "pos_weight.json", json.dumps(weights, indent=2) + "\n")
    else:
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
        # Ultralytics trains from local files only: an output on an object store gets no `path`,
        # to be set where it is copied down.
        local = isinstance(writer.out, Path)
        if not local:
            warnings.append(f"data.yaml has no `path`: Ultralytics reads local files only; copy {writer.out} "
                            "down and add `path: <that folder>` to its data.yaml")
        yaml = (f"path: {json.dumps(str(Path(writer.out).resolve()))}\n" if local else "") + \
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
        _hf_shards(writer, rows, split_names, classes)
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


HF_SHARD_BYTES = 500 << 20     # image bytes per parquet shard (the Hub's own uploads aim at ~500 MB)


def hf_card_header(rows: list[dict], split_names: Sequence[str], classes: Sequence[str],
                   split_bytes: dict[str, int] | None = None) -> dict:
    """The card header `push_to_hub` writes: features (the label a ClassLabel over every class,
    in classes.txt order), split sizes, and the config naming each split's shards. With it,
    `datasets.load_dataset(OUT)` reads the parquet shards with the same ids in every split."""
    counts = Counter(r["split"] for r in rows)
    present = [s for s in split_names if counts[s]]
    return {
        "dataset_info": {
            "features": [{"name": "image", "dtype": "image"},
                         {"name": "label", "dtype": {"class_label": {"names": {str(i): c for i, c in enumerate(classes)}}}}],
            "splits": [{"name": hub_split(s), "num_bytes": (split_bytes or {}).get(s, 0), "num_examples": counts[s]}
                       for s in present]},
        "configs": [{"config_name": "default",
                     "data_files": [{"split": hub_split(s), "path": f"data/{hub_split(s)}-*"} for s in present]}],
    }


def _hf_shards(writer, rows: list[dict], split_names: Sequence[str], classes: list[str]) -> None:
    """data/{split}-{k:05d}-of-{n:05d}.parquet in Hub layout, what `Dataset.push_to_hub` writes:
    the image bytes embedded, the label a ClassLabel shared by every split (datasets' `imagefolder`
    numbers the classes of each split on its own, so a class missing from one shifts the others).
    Written a batch at a time: the images are never all in memory."""
    import math

    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq
    import yaml

    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=list(classes))})
    schema = features.arrow_schema           # carries the features as "huggingface" metadata, as datasets writes
    index = {c: i for i, c in enumerate(classes)}
    split_bytes = {}
    for split in split_names:
        part = [r for r in rows if r["split"] == split]
        if not part:
            continue
        size = split_bytes[split] = sum(writer.size(r["path"]) for r in part)
        n = max(1, min(len(part), math.ceil(size / HF_SHARD_BYTES)))
        per = math.ceil(len(part) / n)
        for k in range(n):
            with writer.open_write(f"data/{hub_split(split)}-{k:05d}-of-{n:05d}.parquet") as f, \
                    pq.ParquetWriter(f, schema) as w:
                shard = part[k * per:(k + 1) * per]
                for a in range(0, len(shard), 64):
                    batch = shard[a:a + 64]
                    images = [{"bytes": writer.read_bytes(r["path"]), "path": Path(r["path"]).name}
                              for r in batch]
                    w.write_table(pa.table({"image": images, "label": [index[r["class"]] for r in batch]},
                                           schema=schema))
    header = yaml.safe_dump(hf_card_header(rows, split_names, classes, split_bytes), sort_keys=False, allow_unicode=True)
    _text(writer, "README.md", f"---\n{header}---\n\n# Dataset with a negative class\n\nBuilt with negmine. "
          "Load it with the same class ids in every split:\n\n```python\nfrom datasets import load_dataset\n"
          "ds = load_dataset(\"path/to/this/folder\")   # or the Hub repo id\n"
          "ds[\"train\"].features[\"label\"].names      # as in classes.txt\nds[\"validation\"]                            # the val/ folder\n```\n")


def _text(writer, rel: str, text: str) -> None:
    writer.write_bytes(rel, text.encode("utf-8"))


def dataset_card(summary: dict, rows: list[dict], header: dict | None = None) -> str:
    """README.md for --push-to-hub: counts, sources with revisions and licences, seed, how to load.
    `header`: more card metadata (the `hf` format's features and configs)."""
    per_split = Counter((r["split"], r["class"]) for r in rows)
    splits = list(summary.get("counts") or sorted({s for s, _ in per_split}))
    classes = sorted({c for _, c in per_split})
    counts = Counter(r["licence"] for r in rows if r.get("licence"))
    licences = sorted(counts) or ["other"]
    table = "| class | " + " | ".join(splits) + " |\n|---|" + "---|" * len(splits) + "\n" + "".join(
        f"| {c} | " + " | ".join(str(per_split[(s, c)]) for s in splits) + " |\n" for c in classes)
    sources = "".join(f"- `{s['id']}` @ `{s.get('revision') or 'local'}` ({s.get('licence') or 'licence unknown'}), "
                      f"{s['rows']} rows\n" for s in summary.get("sources", []))
    lic = hub_licence_id(licences[0]) if len(licences) == 1 else "other"
    extra = ""
    if header:
        import yaml

        extra = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    load = ('ds = load_dataset("REPO_OR_FOLDER")  # features and ids from the card: no class_encode_column\n'
            if header else 'ds = load_dataset("imagefolder", data_dir="...")  # or the repo id\n'
                           'ds = ds.class_encode_column("label")\n')
    return (f"---\nlicense: {lic}\ntask_categories:\n- image-classification\ntags:\n- negmine\n{extra}---\n\n"
            f"# Dataset with a negative class\n\nBuilt with negmine {summary.get('negmine_version')} "
            f"(seed {summary.get('seed')}).\n\n{table}\n## Sources of the negatives\n\n{sources}\n"
            "Licences of the images drawn from pools: " + (", ".join(f"{k} ({v})" for k, v in counts.most_common())
                                                          or "none recorded")
            + ". `manifest.jsonl` records the source, revision, file, row and licence of every image; "
            "`ATTRIBUTION.md` gives the credit each licence asks for.\n\n## Load\n\n```python\nfrom datasets import "
            "load_dataset\n" + load + "```\n")


def hub_licence_id(licence_id: str) -> str:
    """The Hub card's `license:` for a negmine licence id (negmine.licences.Licence.id): the Hub's
    lower-case ids (`cc-by-4.0`, `cc0-1.0`, `mit`, `apache-2.0`); `other` for what has no Hub id
    (a CC family without a version, ImageNet terms, unknown)."""
    low = licence_id.lower()
    if re.fullmatch(r"cc-by(-nc)?(-nd|-sa)?-\d\.\d|cc0-1\.0|mit|apache-2\.0|bsd-[23]-clause|odbl|odc-by|pddl|"
                    r"cdla-(permissive|sharing)-\d\.\d|unlicense|wtfpl|[al]?gpl-3\.0", low):
        return low
    return "other"


def push_to_hub(out: Path, repo_id: str, summary: dict, rows: list[dict], private: bool = True) -> str:
    from huggingface_hub import HfApi

    from negmine.sources import hub

    api = HfApi()
    header = None
    written = Path(out) / "README.md"           # the hf format's card: keep its features and configs
    if written.is_file() and written.read_text(encoding="utf-8").startswith("---\n"):
        import yaml

        header = yaml.safe_load(written.read_text(encoding="utf-8").split("---\n")[1])
    card = dataset_card(summary, rows, header)
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
