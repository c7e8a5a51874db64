#!/usr/bin/env python3
"""Build negmine/data/wordnet-noun-senses.tsv.gz and negmine/data/vocab-names.tsv.

    apt-get download wordnet-base && dpkg -x wordnet-base_*.deb wn
    # detectron2 (Apache-2.0): a checkout of github.com/facebookresearch/detectron2
    # Open Images V6 boxable classes (CC BY 4.0): class-descriptions-boxable.csv
    python scripts/build_vocab.py wn/usr/share/wordnet detectron2/ class-descriptions-boxable.csv

wordnet-noun-senses.tsv.gz: one line per WordNet 3.0 noun lemma (index.noun), tab-separated:
  lemma, its senses in WordNet's sense order ("offset:tag_count,..."). The tag count is how often
  the sense was tagged in WordNet's semantic concordance (cntlist.rev); index.noun orders the senses
  by it. negmine reads it to tell a word's everyday senses from its rare ones ('dog' the animal,
  tagged 42 times, from 'cad', 0).

vocab-names.tsv: what the class names of common detection/classification datasets mean, as WordNet
3.0 synsets; tab-separated: source, name (as the dataset spells it), wnid. Sources:
  coco        the 80 COCO thing categories (detectron2 data/datasets/builtin_meta.py COCO_CATEGORIES),
              each mapped by LVIS' official COCO-to-synset table (detectron2
              datasets/prepare_cocofied_lvis.py COCO_SYNSET_CATEGORIES, from lvis-api coco_to_synset.json);
  lvis        the 1,203 LVIS v1 categories: name and synonyms -> synset (detectron2
              data/datasets/lvis_v1_categories.py);
  openimages  Open Images V6 boxable class names that LVIS or COCO spell the same (case, spaces and
              plural aside); the others are WordNet lemmas already, or are left out (listed on stdout).
ImageNet-1k's names ship separately (imagenet-1k-classes.tsv). The sources and licences are recorded
by hand in negmine/data/LICENSES.txt (this script does not write it).
"""

from __future__ import annotations

import ast
import csv
import gzip
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "negmine" / "data"


def _norm(text: str) -> str:
    return re.sub(r"[\s\-_]+", "_", text.strip().lower()).strip("_")


def read_index(wordnet_dir: Path) -> dict[str, list[str]]:
    """lemma -> synset offsets (8 digits) in sense order, from index.noun."""
    out = {}
    for line in (wordnet_dir / "index.noun").read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):
            continue
        f = line.split()
        n_syn, n_ptr = int(f[2]), int(f[3])
        out[f[0]] = f[4 + n_ptr + 2:4 + n_ptr + 2 + n_syn]
    return out


def read_counts(wordnet_dir: Path) -> dict[tuple[str, int], int]:
    """(lemma, sense number) -> tag count, nouns only (ss_type 1 in the sense key), from cntlist.rev."""
    out = {}
    for line in (wordnet_dir / "cntlist.rev").read_text(encoding="latin-1").splitlines():
        key, number, count = line.split()
        lemma, _, rest = key.partition("%")
        if rest.startswith("1:"):
            out[(lemma.lower(), int(number))] = int(count)
    return out


# LVIS names one synset WordNet 3.0 lacks; it stands for its LVIS definition's genus ("a traffic sign
# to notify drivers ..."), WordNet's street sign (also an ImageNet-1k class), the nearest 3.0 holds.
SYNSET_FIXES = {"stop_sign.n.01": "street_sign.n.01"}


# COCO's "potted plant" boxes the plant with its pot; LVIS' table names only the pot (pot.n.04,
# flowerpot). WordNet 3.0 has the plant too ("pot plant", a plant grown in a pot): both are meant.
COCO_ALSO = {"potted plant": ["pot_plant.n.01"]}


def synset_offset(name: str, index: dict[str, list[str]]) -> str:
    """'bag.n.04' (NLTK's name: lemma, pos, sense number) -> its 8-digit offset."""
    lemma, pos, number = SYNSET_FIXES.get(name, name).rsplit(".", 2)
    assert pos == "n", name
    return index[lemma.lower()][int(number) - 1]


def _literal(source: str, name: str):
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise KeyError(name)


def _git_show(repo: Path, path: str) -> str:
    if (repo / path).is_file():
        return (repo / path).read_text(encoding="utf-8")
    return subprocess.run(["git", "-C", str(repo), "show", f"HEAD:{path}"], check=True, capture_output=True,
                          text=True).stdout


def main(wordnet_dir: str, detectron2: str, openimages_csv: str) -> None:
    wn, d2 = Path(wordnet_dir), Path(detectron2)
    index, counts = read_index(wn), read_counts(wn)
    with gzip.open(OUT / "wordnet-noun-senses.tsv.gz", "wt", encoding="utf-8", compresslevel=9, newline="\n") as f:
        for lemma in sorted(index):
            senses = ",".join(f"{o}:{counts.get((lemma, i), 0)}" for i, o in enumerate(index[lemma], 1))
            f.write(f"{lemma}\t{senses}\n")

    coco = [c for c in _literal(_git_show(d2, "detectron2/data/datasets/builtin_meta.py"), "COCO_CATEGORIES")
            if c["isthing"]]
    coco_synset = {c["coco_cat_id"]: c["synset"] for c in
                   _literal(_git_show(d2, "datasets/prepare_cocofied_lvis.py"), "COCO_SYNSET_CATEGORIES")}
    lvis = _literal(_git_show(d2, "detectron2/data/datasets/lvis_v1_categories.py"), "LVIS_CATEGORIES")
    assert len(coco) == 80 and len(lvis) == 1203, (len(coco), len(lvis))
    rows: list[tuple[str, str, str]] = []
    for c in coco:
        rows.append(("coco", c["name"], "n" + synset_offset(coco_synset[c["id"]], index)))
        for extra in COCO_ALSO.get(c["name"], ()):
            rows.append(("coco", c["name"], "n" + synset_offset(extra, index)))
    spelled: dict[str, str] = {}              # normalised name -> wnid, for Open Images
    for c in lvis:
        wnid = "n" + synset_offset(c["synset"], index)
        for name in dict.fromkeys([c["name"], *c["synonyms"]]):
            rows.append(("lvis", name, wnid))
            spelled.setdefault(_norm(name), wnid)
    for source, name, wnid in rows:
        if source == "coco":
            spelled[_norm(name)] = wnid        # COCO's meaning wins for its own names
    left_out = []
    with open(openimages_csv, newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            if len(row) < 2 or not row[0].startswith("/m/"):
                continue
            key = _norm(row[1])
            keys = [key] + [key[:-len(a)] + b for a, b in (("es", ""), ("s", "")) if key.endswith(a)]
            wnid = next((spelled[k] for k in keys if k in spelled), None)
            if wnid:
                rows.append(("openimages", row[1], wnid))
            elif key not in index:
                left_out.append(row[1])
    with open(OUT / "vocab-names.tsv", "w", encoding="utf-8", newline="\n") as f:
        f.write("# source\tname\twnid  (built by scripts/build_vocab.py; see LICENSES.txt)\n")
        for source, name, wnid in rows:
            f.write(f"{source}\t{name}\t{wnid}\n")
    print(f"{len(index)} lemmas; {len(rows)} vocabulary names; Open Images names neither in LVIS/COCO nor "
          f"WordNet ({len(left_out)}, left out): {', '.join(left_out)}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
