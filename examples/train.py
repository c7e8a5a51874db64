"""Train a tiny CNN on a negmine output (imagefolder format) on CPU and write test-split scores.

    python examples/train.py OUT --scores scores.csv [--epochs 5] [--size 64] [--split test]

Writes a CSV: `path` (relative to OUT, as in OUT/manifest.jsonl) and one softmax probability per
class of OUT/classes.txt, `other` included: what `negmine eval OUT --scores scores.csv` reads.
Needs only torch, Pillow and numpy.
"""
import argparse, csv, json
from pathlib import Path

import numpy as np, torch, torch.nn as nn
from PIL import Image

ap = argparse.ArgumentParser()
ap.add_argument("out", type=Path); ap.add_argument("--scores", type=Path, required=True)
ap.add_argument("--epochs", type=int, default=5); ap.add_argument("--size", type=int, default=64)
ap.add_argument("--split", default="test"); ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.manual_seed(a.seed)
classes = (a.out / "classes.txt").read_text().split("\n")[:-1]          # the loaders' order, one per line
rows = [json.loads(line) for line in (a.out / "manifest.jsonl").read_text().splitlines() if line.strip()]

def load(split):                                                        # images N x 3 x size x size, labels N
    part = [r for r in rows if r["split"] == split]
    x = [np.asarray(Image.open(a.out / r["path"]).convert("RGB").resize((a.size, a.size))) for r in part]
    x = torch.tensor(np.stack(x)).permute(0, 3, 1, 2).float() / 255 if x else torch.zeros(0, 3, a.size, a.size)
    return [r["path"] for r in part], x, torch.tensor([classes.index(r["class"]) for r in part])

def block(i, o): return [nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2)]
net = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, len(classes)))
_, x, y = load("train")
opt = torch.optim.Adam(net.parameters(), lr=2e-3)
for epoch in range(a.epochs):
    net.train()
    for b in [b for b in torch.randperm(len(x)).split(32) if len(b) > 1]:    # BatchNorm needs 2 images
        opt.zero_grad(); loss = nn.functional.cross_entropy(net(x[b]), y[b]); loss.backward(); opt.step()
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}")
paths, x, _ = load(a.split)
net.eval()
with torch.no_grad():
    probs = torch.softmax(net(x), 1).tolist() if len(x) else []
with open(a.scores, "w", newline="") as f:
    w = csv.writer(f); w.writerow(["path", *classes]); w.writerows([p, *pr] for p, pr in zip(paths, probs))
print(f"wrote {len(paths)} rows to {a.scores}")
