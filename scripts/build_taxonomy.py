#!/usr/bin/env python3
"""Build negmine/data/wordnet-nouns.tsv.gz from WordNet 3.0's data.noun (Debian's wordnet-base).

    apt-get download wordnet-base && dpkg -x wordnet-base_*.deb wn
    pip download --no-deps timm        # for the ImageNet-1k class list (Apache-2.0)
    python scripts/build_taxonomy.py wn/usr/share/wordnet wn/usr/share/doc/wordnet-base/copyright timm-*.whl

One line per noun synset: offset (an ImageNet wnid is "n" + this), lemma names joined by "|",
hypernym offsets (pointers "@" and "@i") joined by ",". noun.exc (irregular plurals) is kept as is,
gzipped. The WordNet licence is copied beside them. imagenet-1k-classes.tsv: the 1000 ImageNet-1k
wnids with their lemma names, in class-index order, from timm's data/_info (Apache-2.0).
The senses' order and tag counts and the dataset vocabularies (COCO, LVIS, Open Images) are built by
scripts/build_vocab.py from the same wordnet-base; note that this script rewrites LICENSES.txt, so
the later paragraphs (co-occurrence table, vocabularies) must be kept when it is rerun.
"""

import gzip
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "negmine" / "data"


def parse(data_noun: Path):
    for line in data_noun.read_text(encoding="latin-1").splitlines():
        if line.startswith("  "):          # licence header
            continue
        fields = line.split(" | ", 1)[0].split()
        offset, n_words = fields[0], int(fields[3], 16)
        lemmas = [fields[4 + 2 * i] for i in range(n_words)]
        k = 4 + 2 * n_words
        n_ptrs = int(fields[k])
        hypernyms = []
        for i in range(n_ptrs):
            symbol, target, pos = fields[k + 1 + 4 * i: k + 4 + 4 * i]
            if symbol in ("@", "@i") and pos == "n":
                hypernyms.append(target)
        yield offset, lemmas, hypernyms


def imagenet_classes(timm_wheel: str) -> str:
    import zipfile

    with zipfile.ZipFile(timm_wheel) as z:
        wnids = z.read("timm/data/_info/imagenet_synsets.txt").decode().split()
        lemmas = dict(line.split("\t", 1) for line in
                      z.read("timm/data/_info/imagenet_synset_to_lemma.txt").decode().splitlines())
    return "".join(f"{w}\t{lemmas[w]}\n" for w in wnids)


def main(wordnet_dir: str, copyright_file: str, timm_wheel: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rows = sorted(parse(Path(wordnet_dir) / "data.noun"))
    with gzip.open(OUT / "wordnet-noun-exc.txt.gz", "wb", compresslevel=9) as f:
        f.write((Path(wordnet_dir) / "noun.exc").read_bytes())
    with gzip.open(OUT / "wordnet-nouns.tsv.gz", "wt", encoding="utf-8", compresslevel=9, newline="\n") as f:
        for offset, lemmas, hypernyms in rows:
            f.write(f"{offset}\t{'|'.join(lemmas)}\t{','.join(hypernyms)}\n")
    text = Path(copyright_file).read_text(encoding="utf-8")
    start = text.index("License: WordNet3.0")
    end = text.index("Files: debian/*")
    licence = "\n".join(l[1:] if l.startswith(" ") else l for l in text[start:end].splitlines())
    (OUT / "LICENSES.txt").write_text(
        "negmine/data/wordnet-nouns.tsv.gz is derived from WordNet 3.0 (data.noun).\n\n"
        + licence.replace("\n.\n", "\n\n").strip() + "\n\n"
        "negmine/data/imagenet-1k-classes.tsv (ImageNet-1k wnids and their WordNet lemma names) is taken\n"
        "from timm (pytorch-image-models), timm/data/_info, Apache License 2.0, Copyright Ross Wightman.\n")
    (OUT / "imagenet-1k-classes.tsv").write_text(imagenet_classes(timm_wheel), encoding="utf-8")
    print(f"{len(rows)} synsets -> {OUT / 'wordnet-nouns.tsv.gz'}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
