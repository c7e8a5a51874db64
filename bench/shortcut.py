"""12. Do synthetic negatives teach the object, or a shortcut? A small CNN (CPU, one thread) learns
raccoon vs not-raccoon from the 200 raccoon photos (../shared/data/raccoon-voc) against (a) real
negatives only, (b) cutouts of one fill only (made by negmine.synthetic.cutout from the same
raccoon photos and their VOC boxes, with the options `negmine sample --synthetic` uses), (c) mixes:
a share of cutouts, real photos for the rest. Measured per configuration:

- `fpr_real`: share of REAL held-out non-raccoon photos (ImageNet-500 photos never seen in
  training) the model calls raccoon (sigmoid > 0.5): what a user sees in production;
- `auc_split`: AUC on the model's own test split (same make-up as its training set): what the
  user's own evaluation reports;
- `fpr_real_tpr90`: the same at the threshold that keeps 90% of the split's test raccoons (what a
  user who sets the threshold on the split gets; free of the 0.5 cut's calibration);
- `auc_real`: AUC of the test raccoons against the held-out real photos.

The ImageNet photos are split once (fixed seed): 200 may be drawn as real negatives, 300 are only
ever used to measure. Each seed re-splits the raccoons 80/20 (by photo; a photo's cutouts go where
the photo goes), draws the real negatives and initialises the model. Negatives per split = the
photos of that split with a cutout (ratio ~1); a share f of them are cutouts, the rest real.
Fills use negmine's default noise kind (matched); the row `noise-uniform` is white noise
(`--noise uniform`), the fill issue 25 measured. Run: `nice -n 10 python -m bench.shortcut` (prints
the table; `--scale tiny|default|full`; ~10 min on one core at default). The means go by hand into
negmine/synthetic/shortcuts.py (MEASURED), whose defaults and warning rule read them.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import time

import numpy as np
from PIL import Image

from bench.common import SHARED, photos
from negmine.images import ImageRejected
from negmine.synthetic.annotations import match_images, parse_voc
from negmine.synthetic.cutout import FILLS, CutoutOptions, cutout

SIZE = 64
HELD_OUT = 300               # ImageNet-500 photos kept for measuring only
OLD = ("noise-uniform",)     # the noise fill before it matched the photo (--noise uniform), for comparison
MIXES = (("tile", "blur", "inpaint"), ("tile", "blur"))     # the recipe's mix; the same without OpenCV
SCALES = {  # seeds, epochs, raccoon photos used, fractions
    "tiny": dict(seeds=[0], epochs=1, photos=24, fractions=[1.0], fills=("noise", "tile")),
    "default": dict(seeds=[0, 1, 2], epochs=12, photos=200, fractions=[0.2, 0.5, 1.0], fills=FILLS + OLD),
    "full": dict(seeds=[0, 1, 2, 3, 4], epochs=12, photos=200, fractions=[0.2, 0.5, 1.0], fills=FILLS + OLD),
}


def small(data_or_image) -> np.ndarray:
    """SIZE x SIZE x 3 uint8, squashed as a trainer's Resize((SIZE, SIZE)) would."""
    im = data_or_image if isinstance(data_or_image, Image.Image) else Image.open(io.BytesIO(data_or_image))
    return np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR))


def load(scale: str) -> dict:
    """Raccoon photos, their cutouts per fill (or None where negmine skips the photo) and the
    ImageNet photos, all at SIZE x SIZE."""
    cfg = SCALES[scale]
    folder = SHARED / "raccoon-voc" / "images"
    boxes = match_images(parse_voc(SHARED / "raccoon-voc" / "annotations"), [p.name for p in folder.glob("*.jpg")])
    names = sorted(boxes)[:cfg["photos"]]
    pos, cuts = [], {f: [] for f in cfg["fills"]}
    for i, name in enumerate(names):
        data = (folder / name).read_bytes()
        pos.append(small(data))
        for f in cfg["fills"]:
            try:     # the options `sample --synthetic` uses: box region, no margin, max cover 0.9
                opts = CutoutOptions(fills=(f.split("-")[0],), **({"noise": "uniform"} if f == "noise-uniform" else {}))
                cuts[f].append(small(cutout(data, boxes[name], opts, seed=i).data))
            except ImageRejected:
                cuts[f].append(None)
    imagenet = photos()
    if scale == "tiny":
        imagenet = imagenet[:60]
    order = np.random.default_rng(12345).permutation(len(imagenet))
    held = 30 if scale == "tiny" else HELD_OUT
    real = [small(Image.open(imagenet[i])) for i in order]
    return {"pos": np.stack(pos), "cuts": cuts, "real_train": np.stack(real[held:]), "held_out": np.stack(real[:held]),
            "names": names}


def compose(data: dict, fills: tuple[str, ...], fraction: float, seed: int) -> dict:
    """Train and test arrays for one configuration: positives split 80/20 by photo; negatives per
    split = that split's photos with a cutout of every fill; round(fraction x that) are cutouts
    (each one fill of `fills`, drawn per photo), the rest real photos."""
    rng = np.random.default_rng([seed, 7])
    n = len(data["pos"])
    order = rng.permutation(n)
    cut_at = int(round(n * 0.8))
    usable = {i for i in range(n) if all(data["cuts"][f][i] is not None for f in data["cuts"])}
    real = rng.permutation(len(data["real_train"]))
    out, r0 = {}, 0
    for split, idx in (("train", order[:cut_at]), ("test", order[cut_at:])):
        with_cut = [i for i in idx if i in usable]
        n_neg = len(with_cut)
        n_syn = int(round(fraction * n_neg))
        chosen = rng.permutation(with_cut)[:n_syn]
        syn = [data["cuts"][fills[int(rng.integers(len(fills)))]][i] for i in chosen]
        reals = [data["real_train"][j] for j in real[r0:r0 + n_neg - n_syn]]
        r0 += n_neg - n_syn
        x = np.stack([data["pos"][i] for i in idx] + syn + reals)
        y = np.array([1] * len(idx) + [0] * (len(syn) + len(reals)), dtype=np.float32)
        out[split] = (x, y)
    return out


def tensor(x: np.ndarray):
    import torch

    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.25)


def model():
    import torch.nn as nn

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 1))


def train_and_score(sets: dict, held_out: np.ndarray, seed: int, epochs: int) -> dict:
    """Train (Adam 2e-3, batch 32, horizontal flips) and score; returns the three measures."""
    import torch
    from sklearn.metrics import roc_auc_score

    torch.manual_seed(seed)
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    x, y = tensor(sets["train"][0]), torch.from_numpy(sets["train"][1])
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        for b in torch.randperm(len(x), generator=g).split(32):
            xb = x[b]
            flip = torch.rand(len(b), generator=g) < 0.5
            xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            opt.zero_grad()
            loss_fn(net(xb).squeeze(1), y[b]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        test = torch.sigmoid(net(tensor(sets["test"][0])).squeeze(1)).numpy()
        held = torch.sigmoid(net(tensor(held_out)).squeeze(1)).numpy()
    yt = sets["test"][1]
    pos_scores = test[yt == 1]
    at90 = np.quantile(pos_scores, 0.1)      # the threshold keeping 90% of the split's test raccoons
    return {"fpr_real": float((held > 0.5).mean()), "fpr_real_tpr90": float((held >= at90).mean()), "auc_split": float(roc_auc_score(yt, test)),
            "auc_real": float(roc_auc_score(np.r_[np.ones(len(pos_scores)), np.zeros(len(held))],
                                            np.r_[pos_scores, held])),
            "tpr_split": float((pos_scores > 0.5).mean())}


def configurations(cfg: dict) -> list[tuple[str, tuple[str, ...], float]]:
    """(name, fills, synthetic fraction): real only; each fill alone at each fraction; the mix."""
    out = [("real", ("noise",), 0.0)]
    for f in cfg["fills"]:
        out += [(f, (f,), fr) for fr in cfg["fractions"]]
    for mix in MIXES:
        if all(f in cfg["fills"] for f in mix):
            out += [("+".join(mix), mix, fr) for fr in cfg["fractions"]]
    return out


def run(scale: str = "default") -> dict:
    import torch

    torch.set_num_threads(1)
    cfg = SCALES[scale]
    t0 = time.monotonic()
    data = load(scale)
    load_s = time.monotonic() - t0
    rows = []
    for name, fills, fraction in configurations(cfg):
        per_seed = []
        for seed in cfg["seeds"]:
            sets = compose(data, fills, fraction, seed)
            per_seed.append(train_and_score(sets, data["held_out"], seed, cfg["epochs"]))
        row = {"fills": name, "synthetic": fraction,
               "train": [int(sets["train"][1].sum()), int((sets["train"][1] == 0).sum())]}
        for k in per_seed[0]:
            vals = [p[k] for p in per_seed]
            row[k] = {"mean": round(statistics.fmean(vals), 3), "min": round(min(vals), 3), "max": round(max(vals), 3)}
        rows.append(row)
        print(line(row), file=sys.stderr, flush=True)
    return {"name": "shortcut", "size": SIZE, "seeds": cfg["seeds"], "epochs": cfg["epochs"],
            "held_out_real": len(data["held_out"]), "positives": len(data["pos"]),
            "cutouts_per_fill": {f: sum(c is not None for c in v) for f, v in data["cuts"].items()},
            "rows": rows, "load_s": round(load_s, 1), "seconds": round(time.monotonic() - t0, 1), "targets": {}}


def line(row: dict) -> str:
    def cell(k):
        v = row[k]
        return f"{v['mean']:.2f} ({v['min']:.2f}-{v['max']:.2f})"
    return (f"| {row['fills']} | {row['synthetic']:g} | {cell('fpr_real')} | {cell('fpr_real_tpr90')} | {cell('auc_split')} | "
            f"{cell('auc_real')} | {cell('tpr_split')} |")


def table(result: dict) -> str:
    head = ("| fills | synthetic share | FP rate, real held-out (p > 0.5) | FP rate, real held-out (90% TPR) | "
            "AUC, own test split | AUC, test raccoons vs real held-out | TPR, own test split (p > 0.5) |\n"
            "|---|---|---|---|---|---|---|")
    return "\n".join([head] + [line(r) for r in result["rows"]])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scale", default="default", choices=list(SCALES))
    args = ap.parse_args(argv)
    result = run(args.scale)
    print(table(result))
    print(json.dumps({k: v for k, v in result.items() if k != "rows"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
