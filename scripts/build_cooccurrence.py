#!/usr/bin/env python3
"""Build negmine/data/imagenet-real-cooccurrence.tsv.gz from ImageNet-ReaL (no images needed).

    python scripts/build_cooccurrence.py ../shared/data/imagenet-real

Inputs (both Apache-2.0): `val_synsets.txt`, the original wnid of each of the 50,000 ILSVRC-2012
validation images (tensorflow/models, research/slim/datasets/imagenet_2012_validation_synset_labels.txt),
and `real.json`, the Reassessed Labels of each image as indices into the 1000 wnids sorted
(google-research/reassessed-imagenet; Beyer et al. 2020, "Are we done with ImageNet?").

One line per ImageNet-1k class, in sorted-wnid order (line k = ReaL index k), tab-separated:
  wnid, images (50), images with no ReaL label at all, images whose ReaL labels omit the class itself,
  pairs: "j:n,..." -- n of the class's images show class j (j != the class; the co-occurrence table),
  sets:  "j+k:n,..." -- n of its images show exactly the other classes {j, k} (what a union over
         several positive classes needs: an image with two dog breeds is one dog image, not two).
`--images-from` keeps only some images per class (the benchmark builds a table from half of them).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from negmine.filters.contamination import table_lines

OUT = Path(__file__).resolve().parents[1] / "negmine" / "data" / "imagenet-real-cooccurrence.tsv.gz"


def read_real(folder: Path) -> tuple[list[str], list[list[int]]]:
    """(original wnid per validation image, ReaL label indices per image), in file-name order."""
    wnids = (folder / "val_synsets.txt").read_text().split()
    real = json.loads((folder / "real.json").read_text())
    if len(wnids) != len(real):
        raise SystemExit(f"{folder}: {len(wnids)} synsets but {len(real)} ReaL label lists")
    return wnids, real


HEADER = ("# ImageNet-ReaL co-occurrence per ImageNet-1k class (50 validation images each). Built by "
          "scripts/build_cooccurrence.py from val_synsets.txt (tensorflow/models, Apache-2.0) and real.json "
          "(google-research/reassessed-imagenet, Apache-2.0). Columns: wnid, images, no_label, not_own, "
          "pairs j:n, sets j+k:n (j, k: index of the wnid in sorted order).")


def write(lines: list[str], dest: Path) -> None:
    # mtime=0: the same inputs give the same bytes
    with open(dest, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(("\n".join([HEADER, *lines]) + "\n").encode())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path, help="folder with val_synsets.txt and real.json")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    wnids, real = read_real(args.folder)
    write(table_lines(wnids, real), args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
