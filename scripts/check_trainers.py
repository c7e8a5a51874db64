"""Write every output format from a tiny run and load it with the trainers' own loaders.

    pip install -e '.[trainers]'        # torch, torchvision, tensorflow, fastai, ultralytics (GBs)
    python scripts/check_trainers.py    # all loaders that are installed; --only datasets,torchvision

For each format and loader: the class names and their order, the number of images per split and
class, and the label of every image are compared with what negmine wrote (manifest.jsonl,
classes.txt, data.yaml), then one tiny epoch is trained (models built from configs, nothing
downloaded; Ultralytics runs with YOLO_OFFLINE=1). One class is too small for the val split on
purpose (--allow-missing-classes), the case where per-split class numbering used to shift ids.
A loader that is not installed is reported as SKIP; exit status 1 when any check FAILs.
Not run in CI (torch from the package index pulls GBs of CUDA libraries); CI loads `hf` with
`datasets` (tests/test_check_trainers.py runs this script with --only datasets).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

LOADERS = ("datasets", "torchvision", "keras", "fastai", "ultralytics")
RESULTS: list[tuple[str, str, str, str]] = []          # (format, loader, PASS/FAIL/SKIP, detail)


def _jpeg(seed: int, size=(64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    im = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8), "RGB").resize(size, Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def make_inputs(root: Path) -> tuple[Path, Path, Path]:
    """positives: cat 10, dog 10, tick 2 (too small for val and test); pool: 60 images in 6 folders;
    boxes.csv: one box per positive (for yolo-det)."""
    pos, pool = root / "pos", root / "pool"
    lines = ["filename,xmin,ymin,xmax,ymax,class"]
    for i, (cls, n) in enumerate((("cat", 10), ("dog", 10), ("tick", 2))):
        (pos / cls).mkdir(parents=True)
        for k in range(n):
            (pos / cls / f"{k}.jpg").write_bytes(_jpeg(1000 * (i + 1) + k))
            lines.append(f"{cls}/{k}.jpg,8,6,40,30,{cls}")
    # pool classes WordNet places (a made-up name is left out of the draw: no check vouches for it)
    for c, name in enumerate(("chair", "lamp", "bottle", "kettle", "clock", "ladder")):
        (pool / name).mkdir(parents=True)
        for k in range(10):
            (pool / name / f"{k}.jpg").write_bytes(_jpeg(90_000 + 100 * c + k))
    boxes = root / "boxes.csv"
    boxes.write_text("\n".join(lines) + "\n")
    return pos, pool, boxes


def build(fmt: str, pos: Path, pool: Path, boxes: Path, out: Path) -> list[dict]:
    from click.testing import CliRunner

    from negmine.cli import cli

    args = ["sample", "-q", "--workers", "1", "-p", str(pos), "-s", str(pool), "--ratio", "1", "--hash", "none",
            "--split", "0.6,0.2,0.2", "--seed", "1", "--allow-missing-classes", "--format", fmt, "-o", str(out)]
    if fmt == "yolo-det":
        args += ["--boxes", str(boxes), "--ratio", "0.1"]
    r = CliRunner().invoke(cli, args)
    if r.exit_code != 0:
        raise RuntimeError(f"negmine sample --format {fmt} failed: {r.output}")
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


def per_split(rows: list[dict], split: str) -> Counter:
    return Counter(r["class"] for r in rows if r["split"] == split)


# -- loaders ----------------------------------------------------------------------------------------
def check_datasets(fmt: str, out: Path, rows: list[dict], classes: list[str]) -> str:
    import datasets

    if fmt == "hf":
        dd = datasets.load_dataset(str(out))
    else:
        dd = datasets.load_dataset("imagefolder", data_dir=str(out))
    notes = []
    for split, d in dd.items():
        ours = {"validation": "val"}.get(split, split)
        names = d.features["label"].names
        if names != classes:
            notes.append(f"{split} numbers {len(names)} of {len(classes)} classes (ids shift there)")
        if fmt == "hf":
            expect(names == classes, f"{split}: label names {names} != classes.txt {classes}")
        # imagefolder names the classes of each split from its folders: ids can only agree when every
        # split holds every class, which is what --allow-missing-classes gives up; compare by name
        got = Counter(names[i] for i in d["label"])
        expect(got == per_split(rows, ours), f"{split}: {dict(got)} != manifest {dict(per_split(rows, ours))}")
    return "; ".join([f"splits {sorted(dd)}; names {dd['train'].features['label'].names}"] + notes)


def _tiny_torch_epoch(dataset, n_classes: int) -> float:
    import torch

    loader = torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=True)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, n_classes))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = torch.tensor(0.0)
    for x, y in loader:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return float(loss)


def check_torchvision(fmt: str, out: Path, rows: list[dict], classes: list[str]) -> str:
    from torchvision import datasets as tvd
    from torchvision import transforms

    t = transforms.Compose([transforms.Resize((32, 32)), transforms.ToTensor()])
    notes = []
    for split in ("train", "val", "test"):
        ds = tvd.ImageFolder(str(out / split), transform=t)
        present = sorted(c for c, n in per_split(rows, split).items() if n)
        expect(ds.classes == present, f"{split}: classes {ds.classes} != manifest {present}")
        got = Counter(ds.classes[y] for _, y in ds.samples)
        expect(got == per_split(rows, split), f"{split}: {dict(got)} != manifest")
        if ds.classes != classes:
            notes.append(f"{split} lists {len(ds.classes)} of {len(classes)} classes (ids shift there)")
        if split == "train":
            _tiny_torch_epoch(ds, len(ds.classes))
    return "; ".join(notes) or "classes, counts and labels match"


def check_keras(fmt: str, out: Path, rows: list[dict], classes: list[str]) -> str:
    import keras

    notes = []
    sets = {}
    for split in ("train", "val"):
        ds = keras.utils.image_dataset_from_directory(str(out / split), image_size=(32, 32), batch_size=8,
                                                      shuffle=False, class_names=classes if split == "val" else None)
        expect(ds.class_names == (classes if split == "val" else sorted(per_split(rows, split))),
               f"{split}: class names {ds.class_names}")
        labels = np.concatenate([y.numpy() for _, y in ds]) if len(ds) else np.zeros(0)
        got = Counter(ds.class_names[int(i)] for i in labels)
        expect(got == per_split(rows, split), f"{split}: {dict(got)} != manifest")
        sets[split] = ds
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
                              keras.layers.Dense(len(classes))])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(sets["train"], validation_data=sets["val"], epochs=1, verbose=0)
    notes.append("val read with class_names=classes.txt: the same ids as train")
    return "; ".join(notes)


def check_fastai(fmt: str, out: Path, rows: list[dict], classes: list[str]) -> str:
    import torch
    from fastai.vision.all import ImageDataLoaders, Learner, Resize, accuracy

    dls = ImageDataLoaders.from_folder(str(out), train="train", valid="val", item_tfms=Resize(32), bs=8,
                                       num_workers=0)
    expect(list(dls.vocab) == classes, f"vocab {list(dls.vocab)} != classes.txt {classes}")
    valid = Counter(dls.vocab[int(y)] for _, y in dls.valid_ds)         # the labels fastai assigned
    expect(valid == per_split(rows, "val"), f"val: {dict(valid)} != manifest")
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, len(classes)))
    Learner(dls, model, metrics=accuracy).fit(1)
    return f"vocab {list(dls.vocab)}"


def check_ultralytics(fmt: str, out: Path, rows: list[dict], classes: list[str]) -> str:
    from ultralytics import YOLO

    common = dict(epochs=1, imgsz=32, batch=8, device="cpu", workers=0, amp=False, plots=False, val=True,
                  project=str(out.parent / "runs"), name=fmt, exist_ok=True, verbose=False, pretrained=False)
    if fmt == "yolo-cls":
        model = YOLO("yolo11n-cls.yaml")
        model.train(data=str(out), **common)
        names = [model.names[i] for i in sorted(model.names)]
        expect(names == sorted(per_split(rows, "train")), f"names {names}")
        return f"names {names}"
    import yaml

    data = yaml.safe_load((out / "data.yaml").read_text())
    model = YOLO("yolo11n.yaml")
    model.train(data=str(out / "data.yaml"), **{**common, "imgsz": 64})
    names = [model.names[i] for i in sorted(model.names)]
    expect(names == [data["names"][i] for i in sorted(data["names"])], f"names {names} != data.yaml")
    return f"names {names}"


PLAN = {
    "imagefolder": ("datasets", "torchvision", "keras", "fastai"),
    "hf": ("datasets",),
    "multilabel-csv": ("torchvision",),
    "yolo-cls": ("ultralytics",),
    "yolo-det": ("ultralytics",),
}
CHECKS = {"datasets": check_datasets, "torchvision": check_torchvision, "keras": check_keras,
          "fastai": check_fastai, "ultralytics": check_ultralytics}
MODULE = {"datasets": "datasets", "torchvision": "torchvision", "keras": "keras", "fastai": "fastai",
          "ultralytics": "ultralytics"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help=f"comma-separated loaders ({', '.join(LOADERS)})")
    ap.add_argument("--workdir", type=Path, help="keep the inputs and outputs here (default: a temp folder)")
    args = ap.parse_args(argv)
    only = set(args.only.split(",")) if args.only else set(LOADERS)
    import importlib.util

    root = args.workdir or Path(tempfile.mkdtemp(prefix="negmine-trainers-"))
    pos, pool, boxes = make_inputs(root / "inputs")
    for fmt, loaders in PLAN.items():
        wanted = [name for name in loaders if name in only]
        if not wanted:
            continue
        out = root / fmt
        rows = build(fmt, pos, pool, boxes, out)
        classes = (out / "classes.txt").read_text().split()
        for name in wanted:
            if importlib.util.find_spec(MODULE[name]) is None:
                RESULTS.append((fmt, name, "SKIP", "not installed (pip install -e '.[trainers]')"))
                continue
            try:
                RESULTS.append((fmt, name, "PASS", CHECKS[name](fmt, out, rows, classes)))
            except Exception as exc:
                detail = f"{type(exc).__name__}: {exc}"
                if not isinstance(exc, AssertionError):
                    detail += "\n" + traceback.format_exc(limit=3)
                RESULTS.append((fmt, name, "FAIL", detail))
    for fmt, name, status, detail in RESULTS:
        print(f"{status:4}  {fmt:<15} {name:<12} {detail}")
    return 1 if any(s == "FAIL" for _, _, s, _ in RESULTS) else 0


if __name__ == "__main__":
    sys.exit(main())
